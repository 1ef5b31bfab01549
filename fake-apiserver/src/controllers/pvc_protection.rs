//! `kubernetes.io/pvc-protection`, as kube-apiserver's StorageObjectInUseProtection admission
//! and kube-controller-manager's pvc-protection controller run it: every PVC gets the
//! finalizer when it is created ([`crate::store::defaults`]); a deleted PVC keeps its
//! `deletionTimestamp` and its phase while a scheduled pod that has not finished mounts it,
//! and this controller drops the finalizer (and so the PVC goes) once none does. A pod that
//! mounts a claim being deleted is not scheduled (the scheduler in `controllers`), so it does not hold the claim.

use crate::store::objects::update_by;
use crate::store::{Key, State};
use crate::util::{get, get_str};
use serde_json::{Value, json};

/// The finalizer every PVC carries (added at admission, [`crate::store::defaults`]).
pub use crate::store::defaults::PVC_PROTECTION_FINALIZER as FINALIZER;

/// One pass over the PVCs being deleted.
pub fn tick(st: &mut State) {
    let held: Vec<Key> = st
        .of_kind("", "persistentvolumeclaims")
        .filter(|(_, s)| {
            get(&s.obj, &["metadata", "deletionTimestamp"]).is_some()
                && get(&s.obj, &["metadata", "finalizers"])
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in held {
        if in_use(st, &k.2, &k.3) {
            continue;
        }
        update_by(st, &k, "kube-controller-manager", false, |o| {
            if let Some(f) = o
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
            {
                f.retain(|f| f != FINALIZER);
            }
            if o["metadata"]["finalizers"] == json!([]) {
                o["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("finalizers"));
            }
        });
    }
}

/// Whether a scheduled pod that has not finished mounts the claim (the controller's test:
/// the kubelet starts no pod whose claim is being deleted, so an unscheduled one does not
/// count).
pub fn in_use(st: &State, ns: &str, claim: &str) -> bool {
    st.list("", "pods", ns).into_iter().any(|(_, p)| {
        get_str(p, &["spec", "nodeName"]).is_some_and(|n| !n.is_empty())
            && !matches!(
                get_str(p, &["status", "phase"]),
                Some("Succeeded") | Some("Failed")
            )
            && claims(p).any(|c| c == claim)
    })
}

/// The claims a pod (or pod spec, at `spec`) mounts.
pub fn claims(pod: &Value) -> impl Iterator<Item = &str> {
    get(pod, &["spec", "volumes"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| get_str(v, &["persistentVolumeClaim", "claimName"]))
}
