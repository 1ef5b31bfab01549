//! Pod lifecycle hooks (`--on-pod-delete SELECTOR:COMMAND`): when a pod matching the label
//! selector is deleted through the API, `sh -c COMMAND` runs with `POD_NAMESPACE`, `POD_NAME`
//! and `POD_UID` set — a test uses it to SIGKILL the local process the pod stands for and start
//! it again. Like a real cluster, the pod's controller (StatefulSet, RayCluster) reports not
//! ready at once and recreates the pod; the replacement is ready once the hook has exited 0
//! (the hook plays the container starting and passing its readiness probe). A hook that fails
//! leaves the owner not ready, like a container that never becomes ready.
//!
//! This module is the controllers' side (who owns the pod, its status); the hooks themselves
//! and the ones running live in [`crate::store::controller_state`], which the store holds.

use crate::store::{Key, State};
use crate::util::{get, get_str};
use serde_json::{Value, json};

/// The StatefulSet or RayCluster that controls `pod`, by owner reference UID.
pub fn owner_of(st: &State, pod: &Value) -> Option<Key> {
    let refs = get(pod, &["metadata", "ownerReferences"]).and_then(Value::as_array)?;
    let uid = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)?;
    st.objects
        .iter()
        .find(|((g, p, _, _), s)| {
            ((g == "apps" && p == "statefulsets") || (g == "ray.io" && p == "rayclusters"))
                && get_str(&s.obj, &["metadata", "uid"]) == Some(uid)
        })
        .map(|(k, _)| k.clone())
}

/// A pod was deleted through the API: run its hooks, and have its controller notice (status
/// not ready now, the pod recreated after the readiness delay and once the hooks are done).
pub fn pod_deleted(st: &mut State, pod: &Value) {
    let owner = owner_of(st, pod);
    st.lifecycle.run_hooks(pod, owner.clone());
    let Some(k) = owner else {
        return;
    };
    mark_not_ready(st, &k);
    let due = std::time::Instant::now() + st.readiness_delay;
    if let Some(s) = st.objects.get_mut(&k) {
        s.ready_due = Some(due);
    }
}

/// The owner's status as its controller reports it while its pod is gone.
fn mark_not_ready(st: &mut State, k: &Key) {
    let now = crate::util::now_rfc3339();
    match (k.0.as_str(), k.1.as_str()) {
        ("apps", "statefulsets") => {
            crate::store::objects::update_by(st, k, "kube-controller-manager", true, |o| {
                if let Some(s) = o.get_mut("status").and_then(Value::as_object_mut) {
                    s.insert("readyReplicas".into(), json!(0));
                    s.insert("availableReplicas".into(), json!(0));
                }
            })
        }
        ("ray.io", "rayclusters") => {
            crate::store::objects::update_by(st, k, "kuberay-operator", true, |o| {
                if let Some(conds) = o
                    .pointer_mut("/status/conditions")
                    .and_then(Value::as_array_mut)
                {
                    for c in conds.iter_mut() {
                        if c.get("type").and_then(Value::as_str) == Some("HeadPodReady") {
                            c["status"] = json!("False");
                            c["reason"] = json!("HeadPodNotFound");
                            c["lastTransitionTime"] = json!(now);
                        }
                    }
                }
                if let Some(head) = o.pointer_mut("/status/head").and_then(Value::as_object_mut) {
                    head.insert("podIP".into(), json!(""));
                    head.insert("podName".into(), json!(""));
                }
            })
        }
        _ => {}
    }
}
