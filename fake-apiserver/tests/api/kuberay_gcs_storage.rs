//! KubeRay 1.7's storage for the embedded GCS (`backend: rocksdb`): the operator's
//! `<cluster>-gcs-pvc`, owned by the RayCluster for `deletionPolicy: DeleteWithCluster` and
//! kept for `Retain`; a user's `claimName` is only mounted.

use crate::common::{CRD_V170, Fake};
use fake_apiserver::Options;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const RC: &str = "/apis/ray.io/v1/namespaces/default/rayclusters";
const PVCS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn fake() -> Fake {
    Fake::with(Options {
        crds: vec![PathBuf::from(CRD_V170)],
        readiness_delay: Duration::ZERO,
        ..Options::default()
    })
}

fn raycluster(storage: Value) -> Value {
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "x"},
        "spec": {"rayVersion": "2.45.0",
            "gcsFaultToleranceOptions": {"backend": "rocksdb", "storage": storage},
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.45.0"}]}}}}})
}

fn head(f: &Fake) -> Value {
    let pods = f
        .get(&format!("{PODS}?labelSelector=ray.io%2Fnode-type%3Dhead"))
        .body;
    pods["items"][0].clone()
}

fn head_ready(f: &Fake) -> Value {
    let rc = f.get(&format!("{RC}/x")).body;
    rc["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "HeadPodReady"))
        .map(|c| c["status"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn delete_with_cluster_owns_the_claim_and_it_goes_with_the_cluster() {
    let f = fake();
    let r = f.apply(&format!("{RC}/x"), "raystack", &raycluster(json!({})), "");
    assert_eq!(r.status, 201, "{}", r.text);
    let uid = r.body["metadata"]["uid"].clone();
    let pvc = f.get(&format!("{PVCS}/x-gcs-pvc")).body;
    assert_eq!(
        (
            &pvc["metadata"]["labels"],
            &pvc["metadata"]["ownerReferences"],
            &pvc["metadata"]["finalizers"],
            &pvc["spec"]["accessModes"],
            &pvc["spec"]["resources"],
            &pvc["spec"]["storageClassName"],
        ),
        (
            &json!({"ray.io/cluster": "x"}),
            &json!([{"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": "x", "uid": uid,
                "controller": true, "blockOwnerDeletion": true}]),
            &json!(["kubernetes.io/pvc-protection"]),
            &json!(["ReadWriteOnce"]),
            &json!({"requests": {"storage": "1Gi"}}),
            &json!("standard"),
        )
    );
    let pod = head(&f);
    assert_eq!(
        pod["spec"]["volumes"],
        json!([{"name": "gcs-storage", "persistentVolumeClaim": {"claimName": "x-gcs-pvc"}}])
    );
    assert_eq!(
        (
            &pod["spec"]["containers"][0]["env"],
            &pod["spec"]["containers"][0]["volumeMounts"]
        ),
        (
            &json!([{"name": "RAY_gcs_storage", "value": "rocksdb"},
                {"name": "RAY_gcs_storage_path", "value": "/data/gcs"}]),
            &json!([{"name": "gcs-storage", "mountPath": "/data/gcs"}])
        )
    );
    assert_eq!(head_ready(&f), "True");

    // Deleting the cluster: its head pod goes, so pvc-protection lets the claim go too.
    assert_eq!(f.delete(&format!("{RC}/x")).status, 200);
    assert_eq!(f.get(&format!("{RC}/x")).status, 404);
    assert_eq!(head(&f), Value::Null);
    assert_eq!(f.get(&format!("{PVCS}/x-gcs-pvc")).status, 404);
}

#[test]
fn retain_keeps_the_claim_for_a_cluster_of_the_same_name() {
    let f = fake();
    let retain = json!({"size": "2Gi", "deletionPolicy": "Retain"});
    assert_eq!(
        f.apply(
            &format!("{RC}/x"),
            "raystack",
            &raycluster(retain.clone()),
            ""
        )
        .status,
        201
    );
    let pvc = f.get(&format!("{PVCS}/x-gcs-pvc")).body;
    assert_eq!(pvc["metadata"].get("ownerReferences"), None, "{pvc}");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "2Gi");
    assert_eq!(f.delete(&format!("{RC}/x")).status, 200);
    assert_eq!(f.get(&format!("{RC}/x")).status, 404);
    let kept = f.get(&format!("{PVCS}/x-gcs-pvc")).body;
    assert_eq!(
        (
            &kept["metadata"]["uid"],
            &kept["metadata"]["deletionTimestamp"]
        ),
        (&pvc["metadata"]["uid"], &Value::Null)
    );

    // A cluster of the same name adopts it as it is; switching the policy gives it an owner.
    let r = f.apply(&format!("{RC}/x"), "raystack", &raycluster(retain), "");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(head_ready(&f), "True");
    let adopted = f.get(&format!("{PVCS}/x-gcs-pvc")).body;
    assert_eq!(adopted["metadata"]["uid"], pvc["metadata"]["uid"]);
    assert_eq!(adopted["metadata"].get("ownerReferences"), None);
    let r = f.apply(
        &format!("{RC}/x"),
        "raystack",
        &raycluster(json!({"size": "2Gi", "deletionPolicy": "DeleteWithCluster"})),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let owned = f.get(&format!("{PVCS}/x-gcs-pvc")).body;
    assert_eq!(
        owned["metadata"]["ownerReferences"][0]["uid"],
        r.body["metadata"]["uid"]
    );
}

#[test]
fn a_users_claim_is_mounted_and_waited_for_never_created() {
    let f = fake();
    let r = f.apply(
        &format!("{RC}/x"),
        "raystack",
        &raycluster(json!({"claimName": "mine"})),
        "",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(f.get(&format!("{PVCS}/x-gcs-pvc")).status, 404);
    assert_eq!(f.get(&format!("{PVCS}/mine")).status, 404);
    let pod = head(&f);
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        pod["status"]["conditions"][0]["message"],
        "0/1 nodes are available: persistentvolumeclaim \"mine\" not found."
    );
    assert_eq!(head_ready(&f), "False");
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "mine"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    assert_eq!(f.post(PVCS, &claim).status, 201);
    assert_eq!(head(&f)["status"]["phase"], "Running");
    assert_eq!(head_ready(&f), "True");
    // Deleting the cluster leaves the user's claim alone.
    assert_eq!(f.delete(&format!("{RC}/x")).status, 200);
    assert_eq!(f.get(&format!("{PVCS}/mine")).status, 200);
}
