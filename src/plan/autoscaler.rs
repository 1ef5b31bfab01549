//! Living next to the Ray autoscaler: an autoscaled worker group (`minReplicas` !=
//! `maxReplicas`) is rendered without `replicas`, because the autoscaler owns that field. But
//! `workerGroupSpecs` is an atomic list in the KubeRay CRD: a server-side apply of the list
//! replaces it whole, so an apply without `replicas` resets the group to the CRD's default (0)
//! and KubeRay then scales the running workers down. So before a RayCluster is dry-run and
//! applied, each autoscaled group of the desired object carries the live `replicas` (and the
//! live `scaleStrategy`, which lists the workers the autoscaler is removing): no apply, related
//! or not, changes the size the autoscaler chose. When new bounds exclude the size the group
//! runs at, KubeRay moves it to the nearest bound itself (it runs max(min, min(replicas, max))
//! workers), and the plan says so. Pure; the engine reads the live object first for such a
//! RayCluster (`engine::observe`).

use serde_json::Value;

/// Whether `desired` (a rendered RayCluster) has a worker group without `replicas`: one the
/// autoscaler sizes.
pub fn has_autoscaled_groups(desired: &Value) -> bool {
    groups(desired).any(|g| g.get("replicas").is_none())
}

fn groups(rc: &Value) -> impl Iterator<Item = &Value> {
    rc.pointer("/spec/workerGroupSpecs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Gives each autoscaled group of `desired` the live group's `replicas` (as it is: KubeRay
/// applies the bounds itself) and `scaleStrategy`. Returns what the plan must say about groups
/// that new bounds move.
pub fn keep_live_replicas(desired: &mut Value, live: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    let live_groups: Vec<&Value> = groups(live).collect();
    let Some(Value::Array(wanted)) = desired.pointer_mut("/spec/workerGroupSpecs") else {
        return notes;
    };
    for group in wanted.iter_mut() {
        if group.get("replicas").is_some() {
            continue;
        }
        let name = group.get("groupName").cloned();
        let Some(live_group) = live_groups
            .iter()
            .find(|l| l.get("groupName") == name.as_ref())
        else {
            continue;
        };
        let Some(current) = live_group.get("replicas").and_then(Value::as_i64) else {
            continue;
        };
        let bound = |g: &Value, key: &str| g.get(key).and_then(Value::as_i64);
        let (min, max) = (
            bound(group, "minReplicas").unwrap_or(0),
            bound(group, "maxReplicas").unwrap_or(i64::MAX),
        );
        // KubeRay runs max(min, min(replicas, max)) workers (GetWorkerGroupDesiredReplicas),
        // so `replicas` is kept as it is; the plan says when new bounds move the group.
        let bounds_changed = (
            bound(live_group, "minReplicas"),
            bound(live_group, "maxReplicas"),
        ) != (Some(min), Some(max));
        let runs = current.clamp(min, max.max(min));
        let before = current.clamp(
            bound(live_group, "minReplicas").unwrap_or(0),
            bound(live_group, "maxReplicas").unwrap_or(i64::MAX),
        );
        if bounds_changed && runs != before {
            notes.push(format!(
                "worker group `{}` runs {before} worker(s), outside its new bounds [{min}, {max}]: KubeRay {} to {runs}; the autoscaler sizes it within the bounds from then on",
                name.as_ref().and_then(Value::as_str).unwrap_or("?"),
                if runs < before {
                    "scales it down, deleting workers,"
                } else {
                    "scales it up"
                }
            ));
        }
        if let Value::Object(g) = group {
            g.insert("replicas".into(), Value::from(current));
            if let Some(strategy) = live_group.get("scaleStrategy") {
                g.insert("scaleStrategy".into(), strategy.clone());
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc(groups: Value) -> Value {
        json!({"kind": "RayCluster", "spec": {"workerGroupSpecs": groups}})
    }

    #[test]
    fn an_autoscaled_group_keeps_the_size_the_autoscaler_chose() {
        let mut desired = rc(json!([
            {"groupName": "fixed", "replicas": 2, "minReplicas": 2, "maxReplicas": 2},
            {"groupName": "auto", "minReplicas": 0, "maxReplicas": 10}
        ]));
        assert!(has_autoscaled_groups(&desired));
        let live = rc(json!([
            {"groupName": "fixed", "replicas": 2, "minReplicas": 2, "maxReplicas": 2},
            {"groupName": "auto", "replicas": 5, "minReplicas": 0, "maxReplicas": 10,
             "scaleStrategy": {"workersToDelete": ["w-1"]}}
        ]));
        assert_eq!(
            keep_live_replicas(&mut desired, &live),
            Vec::<String>::new()
        );
        assert_eq!(desired["spec"]["workerGroupSpecs"][1]["replicas"], 5);
        assert_eq!(
            desired["spec"]["workerGroupSpecs"][1]["scaleStrategy"],
            json!({"workersToDelete": ["w-1"]})
        );
        assert_eq!(desired["spec"]["workerGroupSpecs"][0]["replicas"], 2);
    }

    #[test]
    fn new_bounds_that_exclude_the_live_size_are_said_and_left_to_kuberay() {
        let mut desired = rc(json!([{"groupName": "auto", "minReplicas": 0, "maxReplicas": 3}]));
        let live =
            rc(json!([{"groupName": "auto", "replicas": 5, "minReplicas": 0, "maxReplicas": 5}]));
        let notes = keep_live_replicas(&mut desired, &live);
        assert_eq!(desired["spec"]["workerGroupSpecs"][0]["replicas"], 5);
        assert_eq!(
            notes,
            [
                "worker group `auto` runs 5 worker(s), outside its new bounds [0, 3]: KubeRay scales it down, deleting workers, to 3; the autoscaler sizes it within the bounds from then on"
            ]
        );
        // Unchanged bounds: nothing to say, whatever `replicas` holds (the CRD's default 0
        // under a minimum of 1 runs 1 worker).
        let mut desired = rc(json!([{"groupName": "auto", "minReplicas": 1, "maxReplicas": 3}]));
        let live =
            rc(json!([{"groupName": "auto", "replicas": 0, "minReplicas": 1, "maxReplicas": 3}]));
        assert!(keep_live_replicas(&mut desired, &live).is_empty());
        assert_eq!(desired["spec"]["workerGroupSpecs"][0]["replicas"], 0);
    }

    #[test]
    fn a_group_new_to_the_cluster_starts_where_kuberay_starts_it() {
        let mut desired = rc(json!([{"groupName": "new", "minReplicas": 1, "maxReplicas": 4}]));
        let live = rc(json!([]));
        keep_live_replicas(&mut desired, &live);
        assert!(
            desired["spec"]["workerGroupSpecs"][0]
                .get("replicas")
                .is_none()
        );
    }
}
