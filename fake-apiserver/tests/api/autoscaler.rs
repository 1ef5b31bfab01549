//! The simulated Ray autoscaler (`--simulate-autoscaler`): once an autoscaled RayCluster
//! runs, groups that may scale are scaled to their maxReplicas by the manager
//! `python-requests`; pinned groups, clusters without in-tree autoscaling and servers without
//! the flag are left alone.

use crate::common::{CRD_V130, Fake, managed};
use fake_apiserver::Options;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const RC: &str = "/apis/ray.io/v1/namespaces/default/rayclusters/x";

fn fake(simulate: bool) -> Fake {
    Fake::with(Options {
        crds: vec![PathBuf::from(CRD_V130)],
        readiness_delay: Duration::ZERO,
        simulate_autoscaler: simulate,
        ..Options::default()
    })
}

fn raycluster(autoscaling: bool) -> Value {
    let group = |name: &str, min: i64, max: i64| {
        json!({"groupName": name, "minReplicas": min, "maxReplicas": max, "rayStartParams": {},
            "template": {"spec": {"containers": [{"name": "ray-worker", "image": "ray:2.45.0"}]}}})
    };
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "x"},
        "spec": {"rayVersion": "2.45.0", "enableInTreeAutoscaling": autoscaling,
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": "ray:2.45.0"}]}}},
            "workerGroupSpecs": [group("cpu", 1, 4), group("pinned", 2, 2)]}})
}

fn replicas(rc: &Value) -> Vec<Value> {
    rc["spec"]["workerGroupSpecs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.get("replicas").cloned().unwrap_or(Value::Null))
        .collect()
}

#[test]
fn the_autoscaler_scales_autoscaled_groups_with_its_own_field_manager() {
    let f = fake(true);
    let r = f.apply(RC, "raystack", &raycluster(true), "");
    assert_eq!(r.status, 201, "{}", r.text);
    // The CRD defaults `replicas` to 0.
    assert_eq!(replicas(&r.body), [json!(0), json!(0)]);
    let rc = f.wait_for(RC, Duration::from_secs(30), |rc| {
        rc["status"]["observedGeneration"] == 2
    });
    assert_eq!(replicas(&rc), [json!(4), json!(0)]);
    assert_eq!(rc["metadata"]["generation"], 2);
    assert_eq!(rc["status"]["desiredWorkerReplicas"], 6);
    let entry = managed(&rc, "python-requests", "Update").expect("the autoscaler's entry");
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:spec": {"f:workerGroupSpecs": {}}})
    );
    // Nothing more to scale: the cluster stays as it is.
    let again = f.get(RC).body;
    assert_eq!(
        again["metadata"]["resourceVersion"],
        rc["metadata"]["resourceVersion"]
    );
}

#[test]
fn without_in_tree_autoscaling_or_the_flag_nothing_scales() {
    for (simulate, autoscaling) in [(true, false), (false, true)] {
        let f = fake(simulate);
        assert_eq!(
            f.apply(RC, "raystack", &raycluster(autoscaling), "").status,
            201
        );
        f.wait_for(RC, Duration::from_secs(30), |rc| {
            rc["status"]["observedGeneration"] == 1
        });
        let rc = f.get(RC).body;
        assert_eq!(
            (replicas(&rc), &rc["metadata"]["generation"]),
            (vec![json!(0), json!(0)], &json!(1)),
            "{rc}"
        );
        assert!(managed(&rc, "python-requests", "Update").is_none());
    }
}
