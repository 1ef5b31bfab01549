//! Whole-server behaviour: discovery, kubectl, CRDs, readiness simulation, status subresource, namespace
//! cascade delete, latency and the kubeconfig.

use crate::common::{CRD_V122, CRD_V130, Fake, crds};
use fake_apiserver::Options;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "/api/v1/namespaces/default";
const RC: &str = "/apis/ray.io/v1/namespaces/default/rayclusters";

#[test]
fn discovery_documents() {
    let f = Fake::start();
    let v = f.get("/version").body;
    assert_eq!(v["gitVersion"], "v1.33.0");
    assert_eq!(v["major"], "1");
    let api = f.get("/api").body;
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    let core = f.get("/api/v1").body;
    assert_eq!(core["kind"], "APIResourceList");
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for n in [
        "namespaces",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services",
        "pods",
        "pods/status",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let ns = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "namespaces")
        .unwrap();
    assert_eq!(ns["namespaced"], false);
    assert_eq!(ns["kind"], "Namespace");
    assert!(ns["verbs"].as_array().unwrap().contains(&json!("patch")));
    let groups = f.get("/apis").body;
    assert_eq!(groups["kind"], "APIGroupList");
    let gnames: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "networking.k8s.io",
        "storage.k8s.io",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
    ] {
        assert!(gnames.contains(&g), "{g} missing");
    }
    assert!(!gnames.contains(&"ray.io"));
    let apps = f.get("/apis/apps/v1").body;
    assert_eq!(apps["groupVersion"], "apps/v1");
    assert_eq!(apps["resources"][0]["kind"], "StatefulSet");
    assert_eq!(
        f.get("/apis/apps").body["preferredVersion"]["version"],
        "v1"
    );
    assert_eq!(f.get("/apis/ray.io/v1").status, 404);
    assert_eq!(
        f.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rayclusters.ray.io")
            .status,
        404
    );
}

#[test]
fn crd_flag_serves_rayclusters() {
    let f = Fake::with(crds(&[CRD_V130]));
    let crd = f.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rayclusters.ray.io");
    assert_eq!(crd.status, 200);
    assert_eq!(crd.body["spec"]["names"]["kind"], "RayCluster");
    assert_eq!(crd.body["status"]["acceptedNames"]["plural"], "rayclusters");
    let rl = f.get("/apis/ray.io/v1").body;
    let rc = rl["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "rayclusters")
        .expect("rayclusters");
    assert_eq!(rc["namespaced"], true);
    assert_eq!(rc["kind"], "RayCluster");
    assert_eq!(f.get(RC).body["kind"], "RayClusterList");
    assert_eq!(f.get("/apis/ray.io/v1/rayclusters").status, 200);
    let gnames: Vec<String> = f.get("/apis").body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    assert!(gnames.contains(&"ray.io".to_string()));
}

fn raycluster(name: &str) -> Value {
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name},
        "spec": {"rayVersion": "2.52.0",
            "gcsFaultToleranceOptions": {"redisAddress": "redis:6379"},
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.52.0",
                "ports": [{"containerPort": 6379, "name": "gcs-server"}, {"containerPort": 8265, "name": "dashboard"}]}]}}},
            "workerGroupSpecs": [{"groupName": "small", "replicas": 2, "minReplicas": 1, "maxReplicas": 5, "rayStartParams": {},
                "template": {"spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.52.0"}]}}}]}})
}

#[test]
fn raycluster_becomes_ready_with_head_pod() {
    let f = Fake::with(Options {
        readiness_delay: Duration::from_millis(100),
        ..crds(&[CRD_V130])
    });
    let path = format!("{RC}/rc");
    let r = f.apply(&path, "raystack", &raycluster("rc"), "");
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body.get("status").is_none(), "not ready at once");
    // A custom resource's list is unstructured: its items keep apiVersion and kind.
    let item = &f.get(RC).body["items"][0];
    assert_eq!(
        (&item["apiVersion"], &item["kind"]),
        (&json!("ray.io/v1"), &json!("RayCluster"))
    );
    // Schema defaults were applied.
    assert_eq!(r.body["spec"]["workerGroupSpecs"][0]["numOfHosts"], 1);
    assert_eq!(
        r.body["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"],
        "TCP"
    );
    let rc = f.wait_for(&path, Duration::from_secs(5), |b| {
        b["status"]["state"] == "ready"
    });
    let st = &rc["status"];
    assert_eq!(st["observedGeneration"], 1);
    assert_eq!(st["desiredWorkerReplicas"], 2);
    assert_eq!(st["readyWorkerReplicas"], 2);
    let conds: Vec<(&str, &str)> = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert!(conds.contains(&("HeadPodReady", "True")));
    assert!(conds.contains(&("RayClusterProvisioned", "True")));
    let head = st["head"]["podName"].as_str().unwrap();
    assert!(
        head.starts_with("rc-head-") && head.len() == "rc-head-".len() + 5,
        "{head}"
    );
    assert!(
        st["head"]["serviceIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );
    let pods = f
        .get(&format!(
            "{NS}/pods?labelSelector=ray.io/cluster%3Drc,ray.io/node-type%3Dhead"
        ))
        .body;
    assert_eq!(pods["items"].as_array().unwrap().len(), 1);
    let pod = &pods["items"][0];
    assert_eq!(pod["metadata"]["name"], head);
    assert_eq!(pod["status"]["phase"], "Running");
    assert!(
        pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    );
    // Status is not changed by applying the main resource; a spec change re-runs readiness.
    let mut changed = raycluster("rc");
    changed["spec"]["workerGroupSpecs"][0]["replicas"] = json!(3);
    let r = f.apply(&path, "raystack", &changed, "");
    assert_eq!(r.body["metadata"]["generation"], 2);
    assert_eq!(r.body["status"]["observedGeneration"], 1);
    f.wait_for(&path, Duration::from_secs(5), |b| {
        b["status"]["observedGeneration"] == 2 && b["status"]["desiredWorkerReplicas"] == 3
    });
    // Deleting the cluster removes its pods (owner references).
    assert_eq!(f.delete(&path).status, 200);
    assert_eq!(f.get(&format!("{NS}/pods/{head}")).status, 404);
}

#[test]
fn status_subresource_can_simulate_failure() {
    let f = Fake::with(Options {
        readiness_delay: Duration::from_millis(300),
        ..crds(&[CRD_V130])
    });
    let path = format!("{RC}/rc");
    assert_eq!(
        f.apply(&path, "raystack", &raycluster("rc"), "").status,
        201
    );
    let r = f.merge_patch(
        &format!("{path}/status"),
        &json!({"status": {"state": "failed", "reason": "boom"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"]["state"], "failed");
    // Status writes do not touch spec; main-resource writes do not touch status.
    let r = f.merge_patch(
        &format!("{path}/status"),
        &json!({"spec": {"rayVersion": "9"}}),
    );
    assert_eq!(r.body["spec"]["rayVersion"], "2.52.0");
    let r = f.merge_patch(&path, &json!({"status": {"state": "ready"}}));
    assert_eq!(r.body["status"]["state"], "failed");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        f.get(&path).body["status"]["state"],
        "failed",
        "the simulated operator leaves a pinned status alone"
    );
}

#[test]
fn crd_schema_prunes_unknown_fields() {
    let f = Fake::with(crds(&[CRD_V122]));
    let r = f.apply(&format!("{RC}/old"), "raystack", &raycluster("old"), "");
    assert_eq!(r.status, 201, "{}", r.text);
    // KubeRay 1.2.2 has no gcsFaultToleranceOptions: pruned, with a warning.
    assert!(r.body["spec"].get("gcsFaultToleranceOptions").is_none());
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "warning" && v.contains("spec.gcsFaultToleranceOptions")),
        "{:?}",
        r.headers
    );
    let r = f.apply(
        &format!("{RC}/old?fieldValidation=Strict"),
        "raystack",
        &raycluster("old"),
        "",
    );
    assert_eq!(r.status, 400, "{}", r.text);
    // Schema validation: required field missing and wrong type.
    let mut bad = raycluster("bad");
    bad["spec"]["headGroupSpec"]
        .as_object_mut()
        .unwrap()
        .remove("rayStartParams");
    bad["spec"]["rayVersion"] = json!(2);
    let r = f.apply(&format!("{RC}/bad"), "raystack", &bad, "");
    assert_eq!(r.status, 422, "{}", r.text);
    let msg = r.body["message"].as_str().unwrap();
    assert!(
        msg.contains("spec.headGroupSpec.rayStartParams: Required value"),
        "{msg}"
    );
    assert!(msg.contains("spec.rayVersion"), "{msg}");
}

#[test]
fn wffc_pvc_pending_until_statefulset_mounts_it() {
    let f = Fake::with(Options {
        readiness_delay: Duration::from_millis(50),
        ..Options::default()
    });
    let pvc_path = format!("{NS}/persistentvolumeclaims/redis-data");
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "redis-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}}});
    assert_eq!(f.apply(&pvc_path, "raystack", &pvc, "").status, 201);
    std::thread::sleep(Duration::from_millis(200));
    let p = f.get(&pvc_path).body;
    assert_eq!(p["status"]["phase"], "Pending");
    assert!(p["spec"].get("volumeName").is_none());
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "redis"},
        "spec": {"replicas": 1, "serviceName": "redis", "selector": {"matchLabels": {"app": "redis"}},
            "template": {"metadata": {"labels": {"app": "redis"}}, "spec": {
                "containers": [{"name": "redis", "image": "redis:7", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "redis-data"}}]}}}});
    let sts_path = "/apis/apps/v1/namespaces/default/statefulsets/redis";
    let r = f.apply(sts_path, "raystack", &sts, "");
    assert_eq!(r.status, 201, "{}", r.text);
    let s = f.wait_for(sts_path, Duration::from_secs(5), |b| {
        b["status"]["readyReplicas"] == 1
    });
    assert_eq!(s["status"]["observedGeneration"], 1);
    assert_eq!(s["status"]["availableReplicas"], 1);
    assert_eq!(s["status"]["updatedReplicas"], 1);
    assert_eq!(s["status"]["currentReplicas"], 1);
    let pod = f.get(&format!("{NS}/pods/redis-0")).body;
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    let p = f.wait_for(&pvc_path, Duration::from_secs(5), |b| {
        b["status"]["phase"] == "Bound"
    });
    assert_eq!(
        p["spec"]["volumeName"],
        format!("pvc-{}", p["metadata"]["uid"].as_str().unwrap())
    );
    assert_eq!(p["status"]["capacity"]["storage"], "8Gi");
    // The binding controller's fields do not conflict with the next apply of the same config.
    assert_eq!(f.apply(&pvc_path, "raystack", &pvc, "").status, 200);
    // Scaling up re-runs the controller.
    let mut scaled = sts.clone();
    scaled["spec"]["replicas"] = json!(2);
    f.apply(sts_path, "raystack", &scaled, "");
    f.wait_for(sts_path, Duration::from_secs(5), |b| {
        b["status"]["readyReplicas"] == 2 && b["status"]["observedGeneration"] == 2
    });
    assert_eq!(f.get(&format!("{NS}/pods/redis-1")).status, 200);
}

#[test]
fn immediate_pvc_binds_at_once() {
    let f = Fake::start();
    let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "now"}, "provisioner": "x", "volumeBindingMode": "Immediate"});
    assert_eq!(
        f.apply(
            "/apis/storage.k8s.io/v1/storageclasses/now",
            "raystack",
            &sc,
            ""
        )
        .status,
        201
    );
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"},
        "spec": {"storageClassName": "now", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    assert_eq!(
        f.apply(
            &format!("{NS}/persistentvolumeclaims/d"),
            "raystack",
            &pvc,
            ""
        )
        .status,
        201
    );
    assert_eq!(
        f.get(&format!("{NS}/persistentvolumeclaims/d")).body["status"]["phase"],
        "Bound"
    );
}

#[test]
fn namespace_delete_cascades() {
    let f = Fake::start();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    assert_eq!(
        f.apply("/api/v1/namespaces/team", "raystack", &ns, "")
            .status,
        201
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}}});
    assert_eq!(
        f.apply("/api/v1/namespaces/team/configmaps/c", "raystack", &cm, "")
            .status,
        201
    );
    let cm2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2", "labels": {"a": "z"}}});
    assert_eq!(
        f.apply(
            "/api/v1/namespaces/team/configmaps/c2",
            "raystack",
            &cm2,
            ""
        )
        .status,
        201
    );
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}});
    assert_eq!(
        f.apply(
            "/apis/coordination.k8s.io/v1/namespaces/team/leases/l",
            "raystack",
            &lease,
            ""
        )
        .status,
        201
    );
    // Label selectors, across namespaces too.
    assert_eq!(
        f.get("/api/v1/namespaces/team/configmaps?labelSelector=a%3Db")
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        f.get("/api/v1/configmaps?labelSelector=a").body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // A built-in kind's list is typed: its items carry no apiVersion or kind (a read does).
    let list = f
        .get("/api/v1/namespaces/team/configmaps?labelSelector=a%3Db")
        .body;
    assert_eq!(
        (&list["apiVersion"], &list["kind"]),
        (&json!("v1"), &json!("ConfigMapList"))
    );
    let item = list["items"][0].as_object().unwrap();
    let keys: Vec<&str> = item.keys().map(String::as_str).collect();
    assert_eq!(keys[0], "metadata", "{keys:?}");
    assert!(
        !item.contains_key("apiVersion") && !item.contains_key("kind"),
        "{keys:?}"
    );
    let read = f.get("/api/v1/namespaces/team/configmaps/c").body;
    assert_eq!(
        (&read["apiVersion"], &read["kind"]),
        (&json!("v1"), &json!("ConfigMap"))
    );
    let r = f.delete("/api/v1/namespaces/team");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["kind"], "Namespace");
    assert_eq!(f.get("/api/v1/namespaces/team").status, 404);
    assert_eq!(f.get("/api/v1/namespaces/team/configmaps/c").status, 404);
    assert_eq!(
        f.get("/apis/coordination.k8s.io/v1/namespaces/team/leases/l")
            .status,
        404
    );
    assert_eq!(
        f.get("/api/v1/configmaps?labelSelector=a").body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn latency_is_applied() {
    let f = Fake::with(Options {
        latency: Duration::from_millis(150),
        ..Options::default()
    });
    let start = Instant::now();
    assert_eq!(f.get("/version").status, 200);
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn kubeconfig_points_at_the_server() {
    let f = Fake::start();
    let text = std::fs::read_to_string(&f.kubeconfig).unwrap();
    assert!(text.contains(&format!("server: {}", f.url)), "{text}");
    assert!(text.contains("current-context: fake"));
    assert!(text.contains("token:"));
}

/// The binary's contract: the URL on the first line of stdout, a kubeconfig for it, CRDs from files.
#[test]
fn the_binary_prints_its_url_and_writes_a_kubeconfig() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("nested").join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--crd", CRD_V130, "--no-default-storageclass"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn fake-apiserver");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let url = line.trim();
    assert!(url.starts_with("http://127.0.0.1:"), "{line:?}");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert_eq!(text, fake_apiserver::kubeconfig(url));
}

#[test]
fn owner_references_cascade_unless_orphaned() {
    let f = Fake::start();
    let owner = f
        .apply(
            &format!("{NS}/configmaps/owner"),
            "t",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}),
            "",
        )
        .body;
    let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
    for name in ["a", "b"] {
        let child = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}});
        assert_eq!(
            f.apply(&format!("{NS}/configmaps/{name}"), "t", &child, "")
                .status,
            201
        );
    }
    let r = f.req(
        "DELETE",
        &format!("{NS}/configmaps/owner"),
        Some("application/json"),
        Some(r#"{"propagationPolicy":"Orphan"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(f.get(&format!("{NS}/configmaps/a")).status, 200);
    // Deleting with the default (background) policy removes dependents.
    let owner2 = f
        .apply(
            &format!("{NS}/configmaps/owner2"),
            "t",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner2"}}),
            "",
        )
        .body;
    let child = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner2["metadata"]["uid"]}]}});
    f.apply(&format!("{NS}/configmaps/c"), "t", &child, "");
    let r = f.req(
        "DELETE",
        &format!("{NS}/configmaps/owner2"),
        Some("application/json"),
        Some(r#"{"propagationPolicy":"Background"}"#),
    );
    assert_eq!(r.status, 200);
    assert_eq!(f.get(&format!("{NS}/configmaps/c")).status, 404);
    // Stale resourceVersion in an applied config is a conflict.
    let r = f.apply(&format!("{NS}/configmaps/a"), "t", &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "1"}}), "");
    assert_eq!(r.status, 409, "{}", r.text);
}
