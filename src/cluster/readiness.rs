//! Readiness per kind (docs/design.md §7), as pure functions of the live object: waiting, ready, or
//! failed, each with a sentence for the progress line.

use serde_json::Value;

use crate::kind::Kind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready(Option<String>),
    Waiting(String),
    Failed(String),
}

/// Whether `obj` is ready. `binding_mode` is the `volumeBindingMode` of a PVC's StorageClass.
pub fn check(obj: &Value, binding_mode: Option<&str>) -> Readiness {
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .and_then(Kind::parse);
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str);
    let n = |p: &str| obj.pointer(p).and_then(Value::as_i64);
    match kind {
        Some(Kind::PersistentVolumeClaim) => match s("/status/phase") {
            Some("Bound") => Readiness::Ready(None),
            Some("Lost") => Readiness::Failed("its volume is lost".into()),
            phase if binding_mode == Some("WaitForFirstConsumer") => {
                Readiness::Ready(Some(format!(
                    "{}: WaitForFirstConsumer binds it when its pod is scheduled",
                    phase.unwrap_or("Pending")
                )))
            }
            phase => Readiness::Waiting(format!("phase {}", phase.unwrap_or("unknown"))),
        },
        Some(Kind::StatefulSet) => {
            let want = n("/spec/replicas").unwrap_or(1);
            let generation = n("/metadata/generation").unwrap_or(0);
            let observed = n("/status/observedGeneration").unwrap_or(0);
            let ready = n("/status/readyReplicas").unwrap_or(0);
            let updated = n("/status/updatedReplicas").unwrap_or(ready);
            if observed < generation {
                Readiness::Waiting("waiting for the controller to see the new spec".into())
            } else if ready >= want && updated >= want {
                Readiness::Ready(None)
            } else {
                Readiness::Waiting(format!("{ready}/{want} replicas ready"))
            }
        }
        Some(Kind::RayCluster) => {
            // KubeRay records the generation its status describes (`status.observedGeneration`,
            // in every CRD raystack supports); until it has seen the spec just written, a
            // "ready" status describes the old pods (under `upgradeStrategy: Recreate` those are
            // about to be replaced).
            let generation = n("/metadata/generation");
            let observed = n("/status/observedGeneration");
            if let (Some(g), Some(o)) = (generation, observed)
                && o < g
            {
                return Readiness::Waiting(format!(
                    "KubeRay has not seen the new spec yet (status describes generation {o}, the spec is {g})"
                ));
            }
            let head_ready = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("HeadPodReady")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                });
            match s("/status/state") {
                _ if head_ready => Readiness::Ready(None),
                Some("ready") => Readiness::Ready(None),
                Some("failed") => Readiness::Failed(format!(
                    "KubeRay reports the cluster failed: {}",
                    s("/status/reason").unwrap_or("no reason given")
                )),
                state => Readiness::Waiting(format!(
                    "head not ready (state: {})",
                    state.unwrap_or("pending")
                )),
            }
        }
        _ => Readiness::Ready(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_ray_cluster_status_of_an_older_generation_is_not_ready() {
        let rc = |generation: i64, observed: i64| {
            json!({"kind": "RayCluster", "metadata": {"generation": generation},
                   "status": {"observedGeneration": observed, "state": "ready",
                              "conditions": [{"type": "HeadPodReady", "status": "True"}]}})
        };
        assert_eq!(
            check(&rc(3, 2), None),
            Readiness::Waiting(
                "KubeRay has not seen the new spec yet (status describes generation 2, the spec is 3)"
                    .into()
            )
        );
        assert_eq!(check(&rc(3, 3), None), Readiness::Ready(None));
        // A status without observedGeneration (an operator that does not write it) is read as
        // before.
        let mut old = rc(3, 0);
        old["status"]
            .as_object_mut()
            .unwrap()
            .remove("observedGeneration");
        assert_eq!(check(&old, None), Readiness::Ready(None));
    }

    #[test]
    fn a_pending_pvc_under_wait_for_first_consumer_is_not_a_deadlock() {
        let pvc = json!({"kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}});
        assert!(matches!(
            check(&pvc, Some("WaitForFirstConsumer")),
            Readiness::Ready(Some(_))
        ));
        assert!(matches!(
            check(&pvc, Some("Immediate")),
            Readiness::Waiting(_)
        ));
    }

    #[test]
    fn statefulset_waits_for_ready_replicas() {
        let sts = json!({"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": {"replicas": 1},
                         "status": {"observedGeneration": 2, "readyReplicas": 0}});
        assert_eq!(
            check(&sts, None),
            Readiness::Waiting("0/1 replicas ready".into())
        );
        let sts = json!({"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": {"replicas": 1},
                         "status": {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 1}});
        assert_eq!(check(&sts, None), Readiness::Ready(None));
    }

    #[test]
    fn raycluster_is_ready_when_its_head_is() {
        let rc = json!({"kind": "RayCluster", "status": {"conditions": [{"type": "HeadPodReady", "status": "True"}]}});
        assert_eq!(check(&rc, None), Readiness::Ready(None));
        let rc = json!({"kind": "RayCluster", "status": {}});
        assert!(matches!(check(&rc, None), Readiness::Waiting(_)));
    }
}
