//! Pod lifecycle hooks (`--on-pod-delete SELECTOR:COMMAND`): when a pod matching the label
//! selector is deleted through the API, `sh -c COMMAND` runs with `POD_NAMESPACE`, `POD_NAME`
//! and `POD_UID` set — a test uses it to SIGKILL the local process the pod stands for and start
//! it again. Like a real cluster, the pod's controller (StatefulSet, RayCluster) reports not
//! ready at once and recreates the pod; the replacement is ready once the hook has exited 0
//! (the hook plays the container starting and passing its readiness probe). A hook that fails
//! leaves the owner not ready, like a container that never becomes ready.

use crate::store::{Key, State};
use crate::util::{get, get_str};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};

/// One `--on-pod-delete SELECTOR:COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Equality requirements (`k=v,k2=v2`), the selector form hooks need.
    pub selector: Vec<(String, String)>,
    pub command: String,
}

impl std::str::FromStr for Hook {
    type Err = String;
    fn from_str(s: &str) -> Result<Hook, String> {
        let usage = || format!("expected LABEL=VALUE[,LABEL=VALUE]:COMMAND, got {s:?}");
        // Label keys and values cannot hold ':', so the first one ends the selector.
        let (sel, command) = s.split_once(':').ok_or_else(usage)?;
        let selector = sel
            .split(',')
            .map(|req| {
                req.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(usage)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if command.trim().is_empty() {
            return Err(usage());
        }
        Ok(Hook {
            selector,
            command: command.to_string(),
        })
    }
}

impl Hook {
    fn matches(&self, pod: &Value) -> bool {
        let labels = get(pod, &["metadata", "labels"]).and_then(Value::as_object);
        self.selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v.as_str()))
    }
}

/// A hook that was started and the owner whose pod it replaces.
#[derive(Debug)]
struct Running {
    owner: Option<Key>,
    pod: String,
    child: Option<Child>,
    /// `Some(success)` once it exited.
    done: Option<bool>,
}

/// The configured hooks and the ones running.
#[derive(Debug, Default)]
pub struct Lifecycle {
    pub hooks: Vec<Hook>,
    running: Vec<Running>,
}

impl Lifecycle {
    /// Notes finished hooks (non-blocking).
    pub fn poll(&mut self) {
        for r in &mut self.running {
            if r.done.is_some() {
                continue;
            }
            if let Some(child) = r.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                if !status.success() {
                    eprintln!(
                        "fake-apiserver: the delete hook of pod {} exited with {status}; its replacement stays not ready",
                        r.pod
                    );
                }
                r.done = Some(status.success());
            }
        }
        // Forget succeeded hooks; failed ones keep blocking their owner.
        self.running.retain(|r| r.done != Some(true));
    }

    /// Whether a hook still holds back `owner`'s replacement pod.
    pub fn blocks(&self, owner: &Key) -> bool {
        self.running.iter().any(|r| r.owner.as_ref() == Some(owner))
    }
}

/// The StatefulSet or RayCluster that controls `pod`, by owner reference UID.
fn owner_of(st: &State, pod: &Value) -> Option<Key> {
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
    let ns = get_str(pod, &["metadata", "namespace"])
        .unwrap_or_default()
        .to_string();
    let name = get_str(pod, &["metadata", "name"])
        .unwrap_or_default()
        .to_string();
    let uid = get_str(pod, &["metadata", "uid"])
        .unwrap_or_default()
        .to_string();
    let hooks: Vec<Hook> = st
        .lifecycle
        .hooks
        .iter()
        .filter(|h| h.matches(pod))
        .cloned()
        .collect();
    for h in hooks {
        let child = Command::new("sh")
            .arg("-c")
            .arg(&h.command)
            .env("POD_NAMESPACE", &ns)
            .env("POD_NAME", &name)
            .env("POD_UID", &uid)
            .stdin(Stdio::null())
            .spawn();
        let (child, done) = match child {
            Ok(c) => (Some(c), None),
            Err(e) => {
                eprintln!("fake-apiserver: cannot run the delete hook of pod {name}: {e}");
                (None, Some(false))
            }
        };
        st.lifecycle.running.push(Running {
            owner: owner.clone(),
            pod: format!("{ns}/{name}"),
            child,
            done,
        });
    }
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
            crate::objects::update_by(st, k, "kube-controller-manager", true, |o| {
                if let Some(s) = o.get_mut("status").and_then(Value::as_object_mut) {
                    s.insert("readyReplicas".into(), json!(0));
                    s.insert("availableReplicas".into(), json!(0));
                }
            })
        }
        ("ray.io", "rayclusters") => {
            crate::objects::update_by(st, k, "kuberay-operator", true, |o| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_parse() {
        let h: Hook = "app.kubernetes.io/name=redis,tier=db:kill -9 $(cat pid) && ./start"
            .parse()
            .unwrap();
        assert_eq!(
            h.selector,
            vec![
                ("app.kubernetes.io/name".to_string(), "redis".to_string()),
                ("tier".to_string(), "db".to_string())
            ]
        );
        assert_eq!(h.command, "kill -9 $(cat pid) && ./start");
        assert!("noselector".parse::<Hook>().is_err());
        assert!("a=b:".parse::<Hook>().is_err());
        assert!(h.matches(
            &json!({"metadata": {"labels": {"app.kubernetes.io/name": "redis", "tier": "db"}}})
        ));
        assert!(!h.matches(&json!({"metadata": {"labels": {"app.kubernetes.io/name": "redis"}}})));
    }
}
