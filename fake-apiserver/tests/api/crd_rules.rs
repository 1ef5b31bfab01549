//! A CRD's `x-kubernetes-validations` rules: KubeRay 1.7's `backend` and `managedBy` are
//! immutable (`self == oldSelf`), and `managedBy` takes two values; a broken rule answers 422
//! with kube-apiserver's body, for every way of writing the object.

use crate::common::{CRD_V170, Fake, crds};
use serde_json::{Value, json};

const RC: &str = "/apis/ray.io/v1/namespaces/default/rayclusters";

fn raycluster(backend: &str) -> Value {
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "x"},
        "spec": {"rayVersion": "2.45.0",
            "gcsFaultToleranceOptions": {"backend": backend},
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.45.0"}]}}}}})
}

fn invalid_backend() -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "RayCluster.ray.io \"x\" is invalid: spec.gcsFaultToleranceOptions.backend: Invalid value: \"string\": gcsFaultToleranceOptions.backend is immutable",
        "reason": "Invalid",
        "details": {"name": "x", "group": "ray.io", "kind": "RayCluster", "causes": [{
            "reason": "FieldValueInvalid",
            "message": "Invalid value: \"string\": gcsFaultToleranceOptions.backend is immutable",
            "field": "spec.gcsFaultToleranceOptions.backend"}]},
        "code": 422,
    })
}

#[test]
fn an_in_place_backend_switch_is_refused_with_422() {
    // The simulated KubeRay writes the RayCluster's status once the readiness delay has
    // passed; the replace below sends the resourceVersion its GET read, so that write must not
    // come in between (under load it did, and the replace was a 409 Conflict).
    let mut opts = crds(&[CRD_V170]);
    opts.readiness_delay = std::time::Duration::from_secs(3600);
    let f = Fake::with(opts);
    let path = format!("{RC}/x");
    assert_eq!(
        f.apply(&path, "raystack", &raycluster("redis"), "").status,
        201
    );

    // Server-side apply, its dry run, a merge patch and a replace: all 422, nothing stored.
    let r = f.apply(&path, "raystack", &raycluster("rocksdb"), "");
    assert_eq!((r.status, &r.body), (422, &invalid_backend()), "{}", r.text);
    let r = f.apply(&path, "raystack", &raycluster("rocksdb"), "&dryRun=All");
    assert_eq!((r.status, &r.body), (422, &invalid_backend()), "{}", r.text);
    let r = f.merge_patch(
        &path,
        &json!({"spec": {"gcsFaultToleranceOptions": {"backend": "rocksdb"}}}),
    );
    assert_eq!((r.status, &r.body), (422, &invalid_backend()), "{}", r.text);
    let before = f.get(&path).body;
    let mut replaced = before.clone();
    replaced["spec"]["gcsFaultToleranceOptions"]["backend"] = json!("rocksdb");
    let r = f.put(&path, &replaced);
    assert_eq!((r.status, &r.body), (422, &invalid_backend()), "{}", r.text);
    let after = f.get(&path).body;
    assert_eq!(
        (
            &after["spec"]["gcsFaultToleranceOptions"],
            &after["metadata"]["generation"]
        ),
        (&json!({"backend": "redis"}), &json!(1))
    );

    // The same value again, or any other field, is an update like any other.
    let mut same = raycluster("redis");
    same["spec"]["rayVersion"] = json!("2.46.0");
    assert_eq!(f.apply(&path, "raystack", &same, "").status, 200);
    // Delete and create again: a new object may have any backend.
    assert_eq!(f.delete(&path).status, 200);
    f.wait_for(RC, std::time::Duration::from_secs(30), |l| {
        l["items"].as_array().is_some_and(Vec::is_empty)
    });
    assert_eq!(
        f.apply(&path, "raystack", &raycluster("rocksdb"), "")
            .status,
        201
    );
}

#[test]
fn a_transition_rule_needs_an_old_value_and_plain_rules_always_run() {
    let f = Fake::with(crds(&[CRD_V170]));
    let path = format!("{RC}/x");
    let mut rc = raycluster("redis");
    rc["spec"]
        .as_object_mut()
        .unwrap()
        .remove("gcsFaultToleranceOptions");
    assert_eq!(f.apply(&path, "raystack", &rc, "").status, 201);
    // Setting managedBy where there was none is no transition: only the value rule runs.
    rc["spec"]["managedBy"] = json!("someone-else");
    let r = f.apply(&path, "raystack", &rc, "");
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "RayCluster.ray.io \"x\" is invalid: spec.managedBy: Invalid value: \"string\": the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'"
    );
    rc["spec"]["managedBy"] = json!("kueue.x-k8s.io/multikueue");
    assert_eq!(f.apply(&path, "raystack", &rc, "").status, 200);
    // Now it is set, both rules run: two causes in one answer.
    rc["spec"]["managedBy"] = json!("someone-else");
    let r = f.apply(&path, "raystack", &rc, "");
    assert_eq!(
        r.body["message"],
        "RayCluster.ray.io \"x\" is invalid: [spec.managedBy: Invalid value: \"string\": the managedBy field is immutable, spec.managedBy: Invalid value: \"string\": the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue']",
        "{}",
        r.text
    );
}
