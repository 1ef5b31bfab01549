//! The simulated Ray autoscaler (`--simulate-autoscaler`, off by default): for a RayCluster
//! with `enableInTreeAutoscaling: true`, once its head runs, it scales every worker group
//! whose `minReplicas` and `maxReplicas` differ to `maxReplicas`, as under a load that fills
//! the cluster. Like the real one (the Ray autoscaler's KubeRay node provider sends a JSON
//! patch with the `requests` library), it writes `spec.workerGroupSpecs[*].replicas` as an
//! Update by its own field manager, `python-requests` (kube-apiserver names a manager after
//! the client's User-Agent), so the field is not the applier's and the generation moves.

use crate::store::objects::update_by;
use crate::store::{Key, State};
use crate::util::get;
use serde_json::{Value, json};

/// The autoscaler's field manager.
pub const MANAGER: &str = "python-requests";

/// Scales the autoscaled groups of the RayCluster `k` (its head is running); returns whether
/// it changed anything.
pub fn scale(st: &mut State, k: &Key) -> bool {
    if !st.simulate_autoscaler {
        return false;
    }
    let Some(rc) = st.objects.get(k).map(|s| &s.obj) else {
        return false;
    };
    if get(rc, &["spec", "enableInTreeAutoscaling"]).and_then(Value::as_bool) != Some(true) {
        return false;
    }
    let targets: Vec<Option<i64>> = get(rc, &["spec", "workerGroupSpecs"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|g| {
            let min = g.get("minReplicas").and_then(Value::as_i64).unwrap_or(0);
            let max = g.get("maxReplicas").and_then(Value::as_i64)?;
            (min != max && g.get("replicas").and_then(Value::as_i64) != Some(max)).then_some(max)
        })
        .collect();
    if targets.iter().all(Option::is_none) {
        return false;
    }
    update_by(st, k, MANAGER, false, |o| {
        let generation = o["metadata"]["generation"].as_i64().unwrap_or(1);
        o["metadata"]["generation"] = json!(generation + 1);
        for (g, t) in o["spec"]["workerGroupSpecs"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .zip(&targets)
        {
            if let Some(t) = t {
                g["replicas"] = json!(t);
            }
        }
    });
    true
}
