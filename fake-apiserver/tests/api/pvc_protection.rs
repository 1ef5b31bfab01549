//! `kubernetes.io/pvc-protection`: every PVC carries the finalizer; a PVC that a scheduled pod
//! mounts stays (with a deletionTimestamp, its phase unchanged) until that pod is gone, and a
//! pod that mounts a claim being deleted or missing is not scheduled.

use crate::common::Fake;
use fake_apiserver::Options;
use serde_json::{Value, json};
use std::time::Duration;

const NS: &str = "/api/v1/namespaces/default";
const PVC: &str = "/api/v1/namespaces/default/persistentvolumeclaims/data";
const STS: &str = "/apis/apps/v1/namespaces/default/statefulsets/redis";

fn pvc() -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
}

fn pod(name: &str, node: Option<&str>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}});
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

/// The fake with controllers acting at the next request (no readiness delay).
fn fake() -> Fake {
    Fake::with(Options {
        readiness_delay: Duration::ZERO,
        ..Options::default()
    })
}

#[test]
fn a_pvc_in_use_stays_until_its_pod_is_gone() {
    let f = fake();
    let r = f.post(&format!("{NS}/persistentvolumeclaims"), &pvc());
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    assert_eq!(
        f.post(&format!("{NS}/pods"), &pod("user", Some("fake-node")))
            .status,
        201
    );
    let bound = f.get(PVC).body;
    assert_eq!(bound["status"]["phase"], "Bound");

    let r = f.delete(PVC);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        r.text
    );
    let held = f.get(PVC);
    assert_eq!(held.status, 200, "{}", held.text);
    assert_eq!(
        (
            &held.body["metadata"]["finalizers"],
            &held.body["status"],
            &held.body["spec"]
        ),
        (
            &json!(["kubernetes.io/pvc-protection"]),
            &bound["status"],
            &bound["spec"]
        )
    );
    // A new pod that mounts it is not scheduled, and does not hold it.
    assert_eq!(
        f.post(&format!("{NS}/pods"), &pod("late", None)).status,
        201
    );
    assert_eq!(f.get(PVC).status, 200);

    // The pod that uses it goes: so does the claim.
    assert_eq!(f.delete(&format!("{NS}/pods/user")).status, 200);
    assert_eq!(f.get(PVC).status, 404);
    let late = f.get(&format!("{NS}/pods/late")).body;
    assert_eq!(
        (&late["spec"]["nodeName"], &late["status"]["phase"]),
        (&Value::Null, &json!("Pending"))
    );
    // A claim of the same name again: the waiting pod is scheduled and runs.
    assert_eq!(
        f.post(&format!("{NS}/persistentvolumeclaims"), &pvc())
            .status,
        201
    );
    let late = f.get(&format!("{NS}/pods/late")).body;
    assert_eq!(
        (&late["spec"]["nodeName"], &late["status"]["phase"]),
        (&json!("fake-node"), &json!("Running"))
    );
}

#[test]
fn replacing_a_statefulsets_claim_needs_its_pod_deleted() {
    let f = fake();
    assert_eq!(
        f.post(&format!("{NS}/persistentvolumeclaims"), &pvc())
            .status,
        201
    );
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "redis"},
        "spec": {"replicas": 1, "serviceName": "redis", "selector": {"matchLabels": {"app": "redis"}},
            "template": {"metadata": {"labels": {"app": "redis"}}, "spec": {
                "containers": [{"name": "redis", "image": "redis:7"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}}});
    assert_eq!(f.apply(STS, "raystack", &sts, "").status, 201);
    assert_eq!(f.get(STS).body["status"]["readyReplicas"], 1);

    // Deleting the claim alone leaves it held by the running Redis pod, for good.
    assert_eq!(f.delete(PVC).status, 200);
    for _ in 0..3 {
        assert_eq!(f.get(PVC).status, 200);
    }
    assert_eq!(f.get(STS).body["status"]["readyReplicas"], 1);
    // Deleting the pod releases it; the StatefulSet's new pod waits, unscheduled, for a claim.
    assert_eq!(f.delete(&format!("{NS}/pods/redis-0")).status, 200);
    assert_eq!(f.get(PVC).status, 404);
    let waiting = f.get(&format!("{NS}/pods/redis-0")).body;
    assert_eq!(waiting["status"]["phase"], "Pending", "{waiting}");
    assert_eq!(
        waiting["status"]["conditions"][0]["message"],
        "0/1 nodes are available: persistentvolumeclaim \"data\" not found."
    );
    let status = f.get(STS).body["status"].clone();
    assert_eq!(
        (&status["readyReplicas"], &status["availableReplicas"]),
        (&Value::Null, &json!(0))
    );
    // The new claim: the pod runs and the StatefulSet is ready again.
    assert_eq!(
        f.post(&format!("{NS}/persistentvolumeclaims"), &pvc())
            .status,
        201
    );
    assert_eq!(f.get(STS).body["status"]["readyReplicas"], 1);
    assert_eq!(
        f.get(&format!("{NS}/pods/redis-0")).body["status"]["phase"],
        "Running"
    );
}
