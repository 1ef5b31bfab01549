//! The simulated KubeRay Redis cleanup finalizer: which RayClusters get it, what a delete does
//! while it is on (deletionTimestamp, pods removed, the cleanup Job), and how it goes (Job
//! complete, or failed: dropped anyway).

use crate::common::{CRD_V122, CRD_V130, Fake, crds};
use fake_apiserver::Options;
use fake_apiserver::kuberay::{CLEANUP_FINALIZER, CleanupJob};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const RC: &str = "/apis/ray.io/v1/namespaces/default/rayclusters";
const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn raycluster(name: &str, ft: Option<Value>, annotations: Value) -> Value {
    let mut rc = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"rayVersion": "2.45.0",
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.45.0"}]}}},
            "workerGroupSpecs": []}});
    if let Some(ft) = ft {
        rc["spec"]["gcsFaultToleranceOptions"] = ft;
    }
    rc
}

fn fake(crd: &str, job: CleanupJob) -> Fake {
    Fake::with(Options {
        readiness_delay: Duration::from_millis(10),
        cleanup_job: job,
        ..crds(&[crd])
    })
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

/// Polls until the RayCluster `name` is gone; returns the states seen meanwhile.
fn until_gone(f: &Fake, name: &str) -> Vec<Value> {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let r = f.get(&format!("{RC}/{name}"));
        if r.status == 404 {
            return seen;
        }
        seen.push(r.body);
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the RayCluster never went away"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_redis_backed_raycluster_gets_the_finalizer_and_others_do_not() {
    let f = fake(CRD_V130, CleanupJob::default());
    let redis = raycluster("redis", Some(json!({"redisAddress": "r:6379"})), json!({}));
    assert_eq!(
        f.apply(&format!("{RC}/redis"), "raystack", &redis, "")
            .status,
        201
    );
    let plain = raycluster("plain", None, json!({}));
    assert_eq!(
        f.apply(&format!("{RC}/plain"), "raystack", &plain, "")
            .status,
        201
    );
    assert_eq!(
        finalizers(&f.get(&format!("{RC}/redis")).body),
        [CLEANUP_FINALIZER]
    );
    assert!(finalizers(&f.get(&format!("{RC}/plain")).body).is_empty());
    // Without a finalizer, deletion is immediate.
    assert_eq!(f.delete(&format!("{RC}/plain")).status, 200);
    assert_eq!(f.get(&format!("{RC}/plain")).status, 404);
}

#[test]
fn the_pre_1_3_annotation_gets_the_finalizer_too() {
    let f = fake(CRD_V122, CleanupJob::default());
    let rc = raycluster("old", None, json!({"ray.io/ft-enabled": "true"}));
    assert_eq!(
        f.apply(&format!("{RC}/old"), "raystack", &rc, "").status,
        201
    );
    assert_eq!(
        finalizers(&f.get(&format!("{RC}/old")).body),
        [CLEANUP_FINALIZER]
    );
}

#[test]
fn delete_runs_the_cleanup_job_then_drops_the_finalizer() {
    let f = fake(
        CRD_V130,
        CleanupJob {
            delay: Duration::from_millis(300),
            fail: false,
        },
    );
    let rc = raycluster("rc", Some(json!({"redisAddress": "r:6379"})), json!({}));
    f.apply(&format!("{RC}/rc"), "raystack", &rc, "");
    f.wait_for(PODS, Duration::from_secs(10), |l| {
        l["items"].as_array().is_some_and(|i| !i.is_empty())
    });
    let uid = f.get(&format!("{RC}/rc")).body["metadata"]["uid"].clone();
    let d = f.delete(&format!("{RC}/rc"));
    assert_eq!(d.status, 200, "{}", d.text);
    assert!(
        d.body["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        d.text
    );
    let seen = until_gone(&f, "rc");
    assert!(!seen.is_empty(), "the finalizer held the RayCluster");
    assert!(
        seen.iter()
            .all(|o| o["metadata"]["deletionTimestamp"].is_string())
    );
    // The head went before the Job, the Job completed, the finalizer went after it.
    let pods = f.get(PODS).body;
    assert!(pods["items"].as_array().unwrap().is_empty(), "{pods}");
    let job = f.get(&format!("{JOBS}/rc-redis-cleanup"));
    assert_eq!(job.status, 200, "{}", job.text);
    assert_eq!(
        job.body["metadata"]["labels"]["ray.io/node-type"],
        "redis-cleanup"
    );
    assert_eq!(
        job.body["metadata"]["annotations"]["ray.io/external-storage-namespace"], uid,
        "the storage namespace defaults to the RayCluster's UID"
    );
    assert_eq!(job.body["status"]["succeeded"], 1);
    assert_eq!(job.body["status"]["conditions"][0]["type"], "Complete");
}

#[test]
fn a_failed_cleanup_job_still_drops_the_finalizer() {
    let f = fake(
        CRD_V130,
        CleanupJob {
            delay: Duration::from_millis(50),
            fail: true,
        },
    );
    let rc = raycluster(
        "rc",
        Some(json!({"redisAddress": "r:6379", "externalStorageNamespace": "prod"})),
        json!({}),
    );
    f.apply(&format!("{RC}/rc"), "raystack", &rc, "");
    f.delete(&format!("{RC}/rc"));
    until_gone(&f, "rc");
    let job = f.get(&format!("{JOBS}/rc-redis-cleanup")).body;
    assert_eq!(job["status"]["conditions"][0]["type"], "Failed");
    assert_eq!(job["status"]["failed"], 1);
    assert_eq!(
        job["metadata"]["annotations"]["ray.io/external-storage-namespace"],
        "prod"
    );
}

#[test]
fn an_embedded_backend_raycluster_gets_no_redis_finalizer() {
    let crd_v170 = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/kuberay/ray.io_rayclusters.v1.7.0.yaml"
    );
    let f = fake(crd_v170, CleanupJob::default());
    let rc = raycluster(
        "emb",
        Some(json!({"backend": "rocksdb", "storage": {"size": "1Gi"}})),
        json!({}),
    );
    assert_eq!(
        f.apply(&format!("{RC}/emb"), "raystack", &rc, "").status,
        201
    );
    assert!(finalizers(&f.get(&format!("{RC}/emb")).body).is_empty());
}

/// KubeRay cannot create its cleanup Job in a namespace being deleted (403), so a Redis-backed
/// RayCluster holds the namespace; the 1.7 operator drops the finalizer once the deletion is
/// older than `ray.io/gcs-ft-deletion-timeout` seconds, and then the namespace goes.
#[test]
fn in_a_terminating_namespace_the_1_7_operator_gives_up_after_the_timeout() {
    let f = fake(crate::common::CRD_V170, CleanupJob::default());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    assert_eq!(f.post("/api/v1/namespaces", &ns).status, 201);
    let rc_path = "/apis/ray.io/v1/namespaces/team/rayclusters/redis";
    let mut rc = raycluster(
        "redis",
        Some(json!({"redisAddress": "r:6379"})),
        json!({"ray.io/gcs-ft-deletion-timeout": "1"}),
    );
    rc["metadata"]["namespace"] = json!("team");
    assert_eq!(f.apply(rc_path, "raystack", &rc, "").status, 201);
    f.wait_for(rc_path, Duration::from_secs(30), |rc| {
        finalizers(rc) == [CLEANUP_FINALIZER]
    });

    assert_eq!(f.delete("/api/v1/namespaces/team").status, 200);
    let held = f.get(rc_path).body;
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    assert_eq!(
        f.get("/api/v1/namespaces/team").body["status"]["phase"],
        "Terminating"
    );
    // Gone after the timeout, the namespace with it; no Job was ever created.
    let start = Instant::now();
    while f.get("/api/v1/namespaces/team").status != 404 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the namespace stayed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(f.get(rc_path).status, 404);
    assert_eq!(
        f.get("/apis/batch/v1/namespaces/team/jobs").body["items"],
        json!([])
    );
}

/// Before 1.7 nothing gives up: the cleanup Job is refused in the Terminating namespace, and
/// the RayCluster and the namespace stay until someone removes the finalizer.
#[test]
fn in_a_terminating_namespace_the_1_3_operator_holds_the_namespace() {
    let f = fake(CRD_V130, CleanupJob::default());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    assert_eq!(f.post("/api/v1/namespaces", &ns).status, 201);
    let rc_path = "/apis/ray.io/v1/namespaces/team/rayclusters/redis";
    let mut rc = raycluster("redis", Some(json!({"redisAddress": "r:6379"})), json!({}));
    rc["metadata"]["namespace"] = json!("team");
    assert_eq!(f.apply(rc_path, "raystack", &rc, "").status, 201);
    f.wait_for(rc_path, Duration::from_secs(30), |rc| {
        finalizers(rc) == [CLEANUP_FINALIZER]
    });
    assert_eq!(f.delete("/api/v1/namespaces/team").status, 200);
    for _ in 0..3 {
        let held = f.get(rc_path).body;
        assert_eq!(finalizers(&held), [CLEANUP_FINALIZER], "{held}");
        assert_eq!(
            f.get("/apis/batch/v1/namespaces/team/jobs").body["items"],
            json!([])
        );
        assert_eq!(
            f.get("/api/v1/namespaces/team/pods?labelSelector=ray.io%2Fcluster%3Dredis")
                .body["items"],
            json!([])
        );
    }
    let ns = f.get("/api/v1/namespaces/team").body;
    assert_eq!(ns["status"]["phase"], "Terminating");
    // Removing the finalizer by hand lets both go.
    let r = f.merge_patch(rc_path, &json!({"metadata": {"finalizers": null}}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(f.get("/api/v1/namespaces/team").status, 404);
}
