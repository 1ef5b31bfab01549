//! Validation, immutable fields, server defaults and error bodies.

use crate::common::Fake;
use fake_apiserver::Options;
use serde_json::{Value, json};
use std::time::Duration;

const NS: &str = "/api/v1/namespaces/default";

fn pvc(name: &str, class: Option<&str>, size: &str) -> Value {
    let mut v = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}});
    if let Some(c) = class {
        v["spec"]["storageClassName"] = json!(c);
    }
    v
}

fn sc(name: &str, mode: &str, params: Value, expand: bool) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
        "provisioner": "ebs.csi.aws.com", "parameters": params, "volumeBindingMode": mode,
        "allowVolumeExpansion": expand})
}

fn assert_invalid(r: &crate::common::Resp, needle: &str) {
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(r.body["code"], 422);
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}

#[test]
fn pvc_spec_is_immutable_and_cannot_shrink() {
    let f = Fake::start();
    let scp = "/apis/storage.k8s.io/v1/storageclasses";
    assert_eq!(
        f.apply(
            &format!("{scp}/fast"),
            "raystack",
            &sc("fast", "Immediate", json!({"type": "gp3"}), false),
            ""
        )
        .status,
        201
    );
    let path = format!("{NS}/persistentvolumeclaims/data");
    assert_eq!(
        f.apply(&path, "raystack", &pvc("data", Some("fast"), "10Gi"), "")
            .status,
        201
    );
    f.wait_for(&path, Duration::from_secs(5), |b| {
        b["status"]["phase"] == "Bound"
    });
    let r = f.apply(
        &path,
        "raystack",
        &pvc("data", Some("standard"), "10Gi"),
        "",
    );
    assert_invalid(
        &r,
        "PersistentVolumeClaim \"data\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests",
    );
    let r = f.apply(&path, "raystack", &pvc("data", Some("fast"), "5Gi"), "");
    assert_invalid(
        &r,
        "spec.resources.requests.storage: Forbidden: field can not be less than previous value",
    );
    // Growing needs a class that allows expansion (admission says 403 otherwise).
    let r = f.apply(&path, "raystack", &pvc("data", Some("fast"), "20Gi"), "");
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["reason"], "Forbidden");
    let r = f.apply(
        &format!("{scp}/fast"),
        "raystack",
        &sc("fast", "Immediate", json!({"type": "gp3"}), true),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = f.apply(&path, "raystack", &pvc("data", Some("fast"), "20Gi"), "");
    assert_eq!(r.status, 200, "{}", r.text);
    f.wait_for(&path, Duration::from_secs(5), |b| {
        b["status"]["capacity"]["storage"] == "20Gi"
    });
    // Dry run reports the same error.
    let r = f.apply(
        &format!("{path}?dryRun=All"),
        "raystack",
        &pvc("data", Some("standard"), "10Gi"),
        "",
    );
    assert_eq!(r.status, 422);
}

#[test]
fn storageclass_fields_are_immutable() {
    let f = Fake::start();
    let path = "/apis/storage.k8s.io/v1/storageclasses/fast";
    assert_eq!(
        f.apply(
            path,
            "raystack",
            &sc("fast", "WaitForFirstConsumer", json!({"type": "gp3"}), true),
            ""
        )
        .status,
        201
    );
    let r = f.apply(
        path,
        "raystack",
        &sc("fast", "WaitForFirstConsumer", json!({"type": "io2"}), true),
        "",
    );
    assert_invalid(
        &r,
        "StorageClass.storage.k8s.io \"fast\" is invalid: parameters: Forbidden: updates to parameters are forbidden.",
    );
    let r = f.apply(
        path,
        "raystack",
        &sc("fast", "Immediate", json!({"type": "gp3"}), true),
        "",
    );
    assert_invalid(&r, "volumeBindingMode: Forbidden: field is immutable");
    let mut other = sc("fast", "WaitForFirstConsumer", json!({"type": "gp3"}), true);
    other["provisioner"] = json!("pd.csi.storage.gke.io");
    other["reclaimPolicy"] = json!("Retain");
    let r = f.apply(path, "raystack", &other, "");
    assert_invalid(
        &r,
        "provisioner: Forbidden: updates to provisioner are forbidden.",
    );
    assert_invalid(
        &r,
        "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
    );
    // allowVolumeExpansion may change.
    let r = f.apply(
        path,
        "raystack",
        &sc(
            "fast",
            "WaitForFirstConsumer",
            json!({"type": "gp3"}),
            false,
        ),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

fn sts(service: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "redis"},
        "spec": {"replicas": replicas, "serviceName": service, "selector": {"matchLabels": {"app": "redis"}},
            "template": {"metadata": {"labels": {"app": "redis"}}, "spec": {"containers": [{"name": "redis", "image": "redis:7",
                "ports": [{"containerPort": 6379}], "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}}}]}}}})
}

#[test]
fn statefulset_spec_rules_and_defaults() {
    let f = Fake::start();
    let path = "/apis/apps/v1/namespaces/default/statefulsets/redis".to_string();
    let r = f.apply(&path, "raystack", &sts("redis", 1), "");
    assert_eq!(r.status, 201, "{}", r.text);
    let spec = &r.body["spec"];
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["securityContext"], json!({}));
    let c = &pod["containers"][0];
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["readinessProbe"]["timeoutSeconds"], 1);
    assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(c["readinessProbe"]["successThreshold"], 1);
    assert_eq!(c["readinessProbe"]["failureThreshold"], 3);
    // serviceName is not updatable, replicas is.
    let r = f.apply(&path, "raystack", &sts("other", 1), "");
    assert_invalid(
        &r,
        "StatefulSet.apps \"redis\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    );
    assert_eq!(f.apply(&path, "raystack", &sts("redis", 3), "").status, 200);
    // Selector must match the template labels.
    let mut bad = sts("redis", 1);
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["selector"]["matchLabels"]["app"] = json!("nope");
    let r = f.apply(
        "/apis/apps/v1/namespaces/default/statefulsets/bad",
        "raystack",
        &bad,
        "",
    );
    assert_invalid(&r, "`selector` does not match template `labels`");
}

#[test]
fn service_defaults_and_cluster_ip_immutable() {
    let f = Fake::start();
    let path = format!("{NS}/services/redis");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis"},
        "spec": {"selector": {"app": "redis"}, "ports": [{"name": "redis", "port": 6379}]}});
    let r = f.apply(&path, "raystack", &svc, "");
    assert_eq!(r.status, 201, "{}", r.text);
    let s = &r.body["spec"];
    let ip = s["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_eq!(s["clusterIPs"], json!([ip]));
    assert_eq!(s["type"], "ClusterIP");
    assert_eq!(s["sessionAffinity"], "None");
    assert_eq!(s["ipFamilies"], json!(["IPv4"]));
    assert_eq!(s["ipFamilyPolicy"], "SingleStack");
    assert_eq!(s["internalTrafficPolicy"], "Cluster");
    assert_eq!(
        s["ports"][0],
        json!({"name": "redis", "port": 6379, "protocol": "TCP", "targetPort": 6379})
    );
    // Re-apply without clusterIP keeps the allocated one; changing it is rejected.
    let r = f.apply(&path, "raystack", &svc, "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["spec"]["clusterIP"], ip.as_str());
    let mut changed = svc.clone();
    changed["spec"]["clusterIP"] = json!("10.96.99.99");
    let r = f.apply(&path, "raystack", &changed, "");
    assert_invalid(
        &r,
        "spec.clusterIP: Invalid value: \"10.96.99.99\": field is immutable",
    );
    // A second Service gets another address.
    let r = f.apply(&format!("{NS}/services/other"), "raystack", &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other"}, "spec": {"ports": [{"port": 80}]}}), "");
    assert_ne!(r.body["spec"]["clusterIP"], ip.as_str());
}

#[test]
fn immutable_secrets_and_configmaps() {
    let f = Fake::start();
    let path = format!("{NS}/secrets/auth");
    let secret = |v: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "auth"}, "immutable": true, "stringData": {"password": v}});
    let r = f.apply(&path, "raystack", &secret("one"), "");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["type"], "Opaque");
    assert_eq!(r.body["data"]["password"], "b25l");
    assert!(r.body.get("stringData").is_none());
    assert_eq!(f.apply(&path, "raystack", &secret("one"), "").status, 200);
    let r = f.apply(&path, "raystack", &secret("two"), "");
    assert_invalid(
        &r,
        "Secret \"auth\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
    );
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "immutable": true, "data": {"k": v}});
    assert_eq!(
        f.apply(&format!("{NS}/configmaps/cfg"), "raystack", &cm("1"), "")
            .status,
        201
    );
    let r = f.apply(&format!("{NS}/configmaps/cfg"), "raystack", &cm("2"), "");
    assert_invalid(
        &r,
        "data: Forbidden: field is immutable when `immutable` is set",
    );
    // Bad base64 in data is a 400.
    let r = f.apply(&format!("{NS}/secrets/bad"), "raystack", &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}, "data": {"k": "***"}}), "");
    assert_eq!(r.status, 400, "{}", r.text);
}

#[test]
fn names_are_required_and_validated() {
    let f = Fake::start();
    let r = f.post(
        &format!("{NS}/configmaps"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
    );
    assert_invalid(
        &r,
        "metadata.name: Required value: name or generateName is required",
    );
    let r = f.apply(
        &format!("{NS}/configmaps/x"),
        "raystack",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
        "",
    );
    assert_invalid(&r, "metadata.name: Required value");
    let r = f.apply(
        &format!("{NS}/configmaps/Bad_Name"),
        "raystack",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}),
        "",
    );
    assert_invalid(&r, "RFC 1123");
    let r = f.apply(
        &format!("{NS}/configmaps/x"),
        "raystack",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}}),
        "",
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let r = f.post(
        &format!("{NS}/configmaps"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}),
    );
    assert_eq!(r.status, 201);
    assert!(
        r.body["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("gen-")
    );
}

#[test]
fn defaults_for_pvc_namespace_and_seed_objects() {
    let f = Fake::start();
    let sc = f
        .get("/apis/storage.k8s.io/v1/storageclasses/standard")
        .body;
    assert_eq!(
        sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert_eq!(sc["provisioner"], "rancher.io/local-path");
    assert_eq!(sc["volumeBindingMode"], "WaitForFirstConsumer");
    assert_eq!(sc["reclaimPolicy"], "Delete");
    let ks = f.get("/api/v1/namespaces/kube-system").body;
    assert!(ks["metadata"]["uid"].as_str().unwrap().len() >= 32);
    assert_eq!(f.get("/api/v1/namespaces/default").status, 200);

    let r = f.apply(
        &format!("{NS}/persistentvolumeclaims/data"),
        "raystack",
        &pvc("data", None, "1Gi"),
        "",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["spec"]["storageClassName"], "standard");
    assert_eq!(r.body["spec"]["volumeMode"], "Filesystem");
    assert_eq!(r.body["status"]["phase"], "Pending");

    let r = f.apply(
        "/api/v1/namespaces/team",
        "raystack",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
        "",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(r.body["status"]["phase"], "Active");
    assert_eq!(
        r.body["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );

    let g = Fake::with(Options {
        default_storage_class: false,
        ..Options::default()
    });
    assert_eq!(
        g.get("/apis/storage.k8s.io/v1/storageclasses/standard")
            .status,
        404
    );
    let r = g.apply(
        &format!("{NS}/persistentvolumeclaims/data"),
        "raystack",
        &pvc("data", None, "1Gi"),
        "",
    );
    assert!(r.body["spec"].get("storageClassName").is_none());
}

#[test]
fn error_bodies_are_status_objects() {
    let f = Fake::start();
    let r = f.get(&format!("{NS}/configmaps/missing"));
    assert_eq!(r.status, 404);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["reason"], "NotFound");
    assert_eq!(r.body["message"], "configmaps \"missing\" not found");
    assert_eq!(
        f.get("/apis/ray.io/v1/namespaces/default/rayclusters")
            .status,
        404
    );
    assert_eq!(
        f.get("/apis/ray.io/v1/namespaces/default/rayclusters").body["reason"],
        "NotFound"
    );
    let r = f.req(
        "POST",
        &format!("{NS}/configmaps"),
        Some("application/json"),
        Some("{not json"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["reason"], "BadRequest");
    let r = f.req(
        "PATCH",
        &format!("{NS}/configmaps/x"),
        Some("application/merge-patch+json"),
        Some("[1,"),
    );
    assert_eq!(r.status, 400);
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    assert_eq!(f.post(&format!("{NS}/configmaps"), &body).status, 201);
    let r = f.post(&format!("{NS}/configmaps"), &body);
    assert_eq!(r.status, 409);
    assert_eq!(r.body["reason"], "AlreadyExists");
    // Writing into a namespace that does not exist.
    let r = f.post("/api/v1/namespaces/nope/configmaps", &body);
    assert_eq!(r.status, 404);
    assert_eq!(r.body["message"], "namespaces \"nope\" not found");
    // Wrong kind for the endpoint.
    let r = f.post(&format!("{NS}/secrets"), &body);
    assert_eq!(r.status, 400);
}

#[test]
fn odd_bodies_never_break_the_server() {
    let f = Fake::with(Options {
        readiness_delay: Duration::from_millis(0),
        ..Options::default()
    });
    let odd: Vec<(&str, Value)> = vec![
        (
            "/api/v1/namespaces/default/persistentvolumeclaims/p",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p"}, "spec": "x"}),
        ),
        (
            "/api/v1/namespaces/default/services/s",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": "nope"}}),
        ),
        (
            "/api/v1/namespaces/default/services/t",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "t"}, "spec": {"ports": [{"name": "x"}]}}),
        ),
        (
            "/api/v1/namespaces/default/configmaps/c",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}),
        ),
        (
            "/api/v1/namespaces/default/configmaps/d",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d", "labels": [1, 2]}}),
        ),
        (
            "/api/v1/namespaces/default/secrets/e",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "e"}, "stringData": [1]}),
        ),
        (
            "/apis/apps/v1/namespaces/default/statefulsets/s",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
                "volumeClaimTemplates": [{"metadata": "bad"}, "x", {"metadata": {"name": "v", "labels": "y"}, "spec": 3}]}}),
        ),
        (
            "/apis/apps/v1/namespaces/default/statefulsets/t",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "t"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": "q"}, "spec": {"containers": [{"name": 5}]}}}}),
        ),
        (
            "/api/v1/namespaces/default/pods/p",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"noname": true}]}}),
        ),
        ("/api/v1/namespaces/default/configmaps/f", json!([1, 2, 3])),
        ("/api/v1/namespaces/default/configmaps/g", json!("str")),
    ];
    for (path, body) in &odd {
        let r = f.apply(path, "raystack", body, "");
        assert!(r.status < 500, "{path}: {} {}", r.status, r.text);
        assert_eq!(
            r.body["kind"].as_str().map(|_| ()),
            Some(()),
            "{path}: {}",
            r.text
        );
        let r = f.req(
            "PATCH",
            path,
            Some("application/merge-patch+json"),
            Some(&body.to_string()),
        );
        assert!(r.status < 500, "{path}: {} {}", r.status, r.text);
        let r = f.req(
            "PATCH",
            path,
            Some("application/json-patch+json"),
            Some(r#"[{"op":"remove","path":"/nope"}]"#),
        );
        assert!(r.status < 500, "{path}: {} {}", r.status, r.text);
    }
    std::thread::sleep(Duration::from_millis(50));
    for path in [
        "/api/v1/pods",
        "/api/v1/persistentvolumeclaims",
        "/apis/apps/v1/statefulsets",
        "/version",
    ] {
        assert_eq!(f.get(path).status, 200, "{path}");
    }
    let r = f.req(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        Some("text/plain"),
        Some("x"),
    );
    assert_eq!(r.status, 415);
    let r = f.get("/api/v1/namespaces/default/configmaps?labelSelector=a%20b%20c");
    assert_eq!(r.status, 400);
}
