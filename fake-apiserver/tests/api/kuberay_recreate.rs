//! KubeRay 1.6+'s `upgradeStrategy.type: Recreate`: a spec change (but not of replica counts)
//! deletes every pod of the cluster and the status stops claiming ready until the new head
//! runs; without the strategy, pods are left alone.

use crate::common::{CRD_V170, Fake};
use fake_apiserver::{Options, PodHook};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const RC: &str = "/apis/ray.io/v1/namespaces/default/rayclusters/x";
const HEADS: &str = "/api/v1/namespaces/default/pods?labelSelector=ray.io%2Fnode-type%3Dhead";

/// A fake whose replacement head pods start only once `dir/go` exists: the pod delete hook
/// plays the new head starting, a pause point the test releases.
fn fake(dir: &Path) -> Fake {
    let hook: PodHook = format!(
        // Bounded, so a failing test leaves no process behind.
        "ray.io/node-type=head:for i in $(seq 6000); do [ -e {}/go ] && exit 0; sleep 0.01; done; exit 1",
        dir.display()
    )
    .parse()
    .unwrap();
    Fake::with(Options {
        crds: vec![PathBuf::from(CRD_V170)],
        readiness_delay: Duration::ZERO,
        on_pod_delete: vec![hook],
        ..Options::default()
    })
}

fn raycluster(strategy: Option<&str>, image: &str, replicas: i64) -> Value {
    let mut rc = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "x"},
        "spec": {"rayVersion": "2.45.0",
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": image}]}}},
            "workerGroupSpecs": [{"groupName": "cpu", "replicas": replicas, "minReplicas": 0, "maxReplicas": 5,
                "rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-worker", "image": image}]}}}]}});
    if let Some(s) = strategy {
        rc["spec"]["upgradeStrategy"] = json!({"type": s});
    }
    rc
}

fn heads(f: &Fake) -> Vec<(String, String)> {
    f.get(HEADS).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

fn head_ready(rc: &Value) -> &Value {
    rc["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "HeadPodReady"))
        .map_or(&Value::Null, |c| &c["status"])
}

#[test]
fn recreate_replaces_the_pods_and_resets_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let f = fake(dir.path());
    let r = f.apply(
        RC,
        "raystack",
        &raycluster(Some("Recreate"), "ray:2.45.0", 1),
        "",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let rc = f.get(RC).body;
    assert_eq!(head_ready(&rc), "True");
    let first = heads(&f);
    assert_eq!(first.len(), 1);

    // Replica counts are not in the hash: no pod is touched.
    let r = f.apply(
        RC,
        "raystack",
        &raycluster(Some("Recreate"), "ray:2.45.0", 3),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let rc = f.get(RC).body;
    assert_eq!(
        (head_ready(&rc), &rc["status"]["observedGeneration"]),
        (&json!("True"), &json!(2))
    );
    assert_eq!(heads(&f), first);

    // A new image: every pod goes, and the status says so at once, for the new generation.
    let r = f.apply(
        RC,
        "raystack",
        &raycluster(Some("Recreate"), "ray:2.46.0", 3),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    for _ in 0..3 {
        let rc = f.get(RC).body;
        assert_eq!(
            (
                head_ready(&rc),
                &rc["status"]["observedGeneration"],
                &rc["status"]["state"]
            ),
            (&json!("False"), &json!(3), &Value::Null),
            "{rc}"
        );
        assert_eq!(heads(&f), []);
    }
    // The new head starts: ready again, from the new template.
    std::fs::write(dir.path().join("go"), "").unwrap();
    f.wait_for(RC, Duration::from_secs(30), |rc| head_ready(rc) == "True");
    let now = heads(&f);
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].0, first[0].0);
    assert_eq!(now[0].1, "ray:2.46.0");
}

#[test]
fn without_recreate_a_new_template_leaves_the_pods() {
    let dir = tempfile::tempdir().unwrap();
    let f = fake(dir.path());
    assert_eq!(
        f.apply(RC, "raystack", &raycluster(None, "ray:2.45.0", 1), "")
            .status,
        201
    );
    let first = heads(&f);
    let r = f.apply(
        RC,
        "raystack",
        &raycluster(Some("None"), "ray:2.46.0", 1),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let rc = f.get(RC).body;
    assert_eq!(
        (head_ready(&rc), &rc["status"]["observedGeneration"]),
        (&json!("True"), &json!(2))
    );
    assert_eq!(heads(&f), first);
}
