//! Server-side apply behaviour: dry run, managed fields, removal of dropped fields, merge by key,
//! no-op applies, conflicts and force, Update operations.

use crate::common::{Fake, managed};
use serde_json::{Value, json};

const CM: &str = "/api/v1/namespaces/default/configmaps";
const STS: &str = "/apis/apps/v1/namespaces/default/statefulsets";

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
}

fn sts(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "redis", "labels": {"app": "redis"}},
        "spec": {
            "replicas": 1, "serviceName": "redis",
            "selector": {"matchLabels": {"app": "redis"}},
            "template": {"metadata": {"labels": {"app": "redis"}}, "spec": {"containers": containers}}
        }
    })
}

fn list_rv(f: &Fake) -> String {
    f.get(CM).body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn dry_run_apply_stores_nothing_and_returns_defaults() {
    let f = Fake::start();
    let rv_before = list_rv(&f);
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis"},
        "spec": {"selector": {"app": "redis"}, "ports": [{"name": "redis", "port": 6379}]}});
    let r = f.apply(
        "/api/v1/namespaces/default/services/redis?dryRun=All",
        "raystack",
        &svc,
        "&force=true",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["spec"]["type"], "ClusterIP");
    assert!(
        r.body["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );
    assert_eq!(r.body["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(r.body["spec"]["ports"][0]["targetPort"], 6379);
    assert!(managed(&r.body, "raystack", "Apply").is_some());
    assert_eq!(
        f.get("/api/v1/namespaces/default/services/redis").status,
        404
    );
    assert_eq!(
        list_rv(&f),
        rv_before,
        "dry run must not bump the resourceVersion counter"
    );

    // Dry-run update of an existing object: the result shows the change, the store keeps the old value.
    let r = f.apply(&format!("{CM}/c"), "raystack", &cm(json!({"a": "1"})), "");
    assert_eq!(r.status, 201, "{}", r.text);
    let rv = r.body["metadata"]["resourceVersion"].clone();
    let r = f.apply(
        &format!("{CM}/c?dryRun=All"),
        "raystack",
        &cm(json!({"a": "2"})),
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["a"], "2");
    assert_eq!(r.body["metadata"]["resourceVersion"], rv);
    let live = f.get(&format!("{CM}/c")).body;
    assert_eq!(live["data"]["a"], "1");
    assert_eq!(live["metadata"]["resourceVersion"], rv);

    // Dry-run delete keeps the object; dry-run create via POST stores nothing.
    assert_eq!(f.delete(&format!("{CM}/c?dryRun=All")).status, 200);
    assert_eq!(f.get(&format!("{CM}/c")).status, 200);
    let r = f.post(
        &format!("{CM}?dryRun=All"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}}),
    );
    assert_eq!(r.status, 201);
    assert_eq!(f.get(&format!("{CM}/d")).status, 404);
}

#[test]
fn managed_fields_use_fields_v1_with_keys() {
    let f = Fake::start();
    let r = f.apply(
        &format!("{STS}/redis"),
        "raystack",
        &sts(json!([{"name": "redis", "image": "redis:7", "ports": [{"containerPort": 6379}]}])),
        "",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let e = managed(&r.body, "raystack", "Apply").expect("entry");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    let fields = &e["fieldsV1"];
    assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
    let c = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"redis\"}"];
    assert_eq!(c["."], json!({}));
    assert_eq!(c["f:image"], json!({}));
    assert_eq!(
        c["f:ports"]["k:{\"containerPort\":6379,\"protocol\":\"TCP\"}"]["f:containerPort"],
        json!({})
    );
    // Server defaults are owned by nobody.
    assert!(c.get("f:imagePullPolicy").is_none());
    assert!(fields["f:spec"].get("f:podManagementPolicy").is_none());
    assert!(fields.get("f:status").is_none());
}

#[test]
fn dropping_a_field_removes_it() {
    let f = Fake::start();
    let path = format!("{CM}/c");
    let mut body = cm(json!({"a": "1", "b": "2"}));
    body["metadata"]["labels"] = json!({"keep": "x", "drop": "y"});
    assert_eq!(f.apply(&path, "raystack", &body, "").status, 201);
    let mut body = cm(json!({"a": "1"}));
    body["metadata"]["labels"] = json!({"keep": "x"});
    let r = f.apply(&path, "raystack", &body, "");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"], json!({"a": "1"}));
    assert_eq!(r.body["metadata"]["labels"], json!({"keep": "x"}));
    // A field another manager also owns is kept.
    let r = f.merge_patch(
        &format!("{path}?fieldManager=editor"),
        &json!({"data": {"shared": "s"}}),
    );
    assert_eq!(r.status, 200);
    let r = f.apply(&path, "raystack", &cm(json!({"a": "1", "shared": "s"})), "");
    assert_eq!(r.status, 200, "{}", r.text);
    let r = f.apply(&path, "raystack", &cm(json!({"a": "1"})), "");
    assert_eq!(r.body["data"], json!({"a": "1", "shared": "s"}));
}

#[test]
fn list_merge_by_key_keeps_other_managers_container() {
    let f = Fake::start();
    let path = format!("{STS}/redis");
    let mine = sts(json!([{"name": "redis", "image": "redis:7"}]));
    assert_eq!(f.apply(&path, "raystack", &mine, "").status, 201);
    let theirs = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "redis"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1"}]}}}});
    let r = f.apply(&path, "injector", &theirs, "");
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.body["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["redis", "sidecar"]);
    // Re-applying our config (without the sidecar) keeps it: it is not ours.
    let mine2 = sts(json!([{"name": "redis", "image": "redis:7.2"}]));
    let r = f.apply(&path, "raystack", &mine2, "");
    assert_eq!(r.status, 200, "{}", r.text);
    let cs = r.body["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["image"], "redis:7.2");
    assert_eq!(cs[1]["name"], "sidecar");
    // Atomic lists are replaced whole.
    let mut with_args = sts(json!([{"name": "redis", "image": "redis:7.2", "args": ["a", "b"]}]));
    f.apply(&path, "raystack", &with_args, "");
    with_args["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["c"]);
    let r = f.apply(&path, "raystack", &with_args, "");
    assert_eq!(
        r.body["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["c"])
    );
    // Our own container dropped from our config goes away.
    let r = f.apply(
        &path,
        "raystack",
        &sts(json!([{"name": "main", "image": "redis:7.2"}])),
        "",
    );
    let names: Vec<&str> = r.body["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sidecar", "main"]);
}

#[test]
fn identical_apply_is_a_noop() {
    let f = Fake::start();
    let path = format!("{STS}/redis");
    let body = sts(json!([{"name": "redis", "image": "redis:7"}]));
    let first = f.apply(&path, "raystack", &body, "").body;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The simulated controller may have written status meanwhile; take the live object as the baseline.
    let live = f.get(&path).body;
    let again = f.apply(&path, "raystack", &body, "");
    assert_eq!(again.status, 200);
    assert_eq!(
        again.body["metadata"]["resourceVersion"],
        live["metadata"]["resourceVersion"]
    );
    assert_eq!(
        again.body["metadata"]["generation"],
        first["metadata"]["generation"]
    );
    assert_eq!(
        managed(&again.body, "raystack", "Apply").unwrap()["time"],
        managed(&first, "raystack", "Apply").unwrap()["time"]
    );
    // A real change bumps both.
    let mut changed = body.clone();
    changed["spec"]["replicas"] = json!(2);
    let r = f.apply(&path, "raystack", &changed, "").body;
    assert_ne!(
        r["metadata"]["resourceVersion"],
        live["metadata"]["resourceVersion"]
    );
    assert_eq!(r["metadata"]["generation"], 2);
    // Label-only change: new resourceVersion, same generation.
    changed["metadata"]["labels"]["extra"] = json!("1");
    let r2 = f.apply(&path, "raystack", &changed, "").body;
    assert_ne!(
        r2["metadata"]["resourceVersion"],
        r["metadata"]["resourceVersion"]
    );
    assert_eq!(r2["metadata"]["generation"], 2);
}

#[test]
fn conflicts_need_force() {
    let f = Fake::start();
    let path = format!("{CM}/c");
    assert_eq!(
        f.apply(&path, "other", &cm(json!({"x": "1"})), "").status,
        201
    );
    let r = f.apply(&path, "raystack", &cm(json!({"x": "2"})), "");
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["reason"], "Conflict");
    let msg = r.body["message"].as_str().unwrap();
    assert!(
        msg.contains("Apply failed with 1 conflict: conflict with \"other\""),
        "{msg}"
    );
    assert!(msg.contains(".data.x"), "{msg}");
    assert_eq!(r.body["details"]["causes"][0]["field"], ".data.x");
    assert_eq!(f.get(&path).body["data"]["x"], "1");
    // Same value: shared ownership, no conflict.
    assert_eq!(
        f.apply(&path, "third", &cm(json!({"x": "1"})), "").status,
        200
    );
    // force=true takes ownership.
    let r = f.apply(&path, "raystack", &cm(json!({"x": "2"})), "&force=true");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["x"], "2");
    assert_eq!(
        managed(&r.body, "raystack", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:x": {}}})
    );
    assert!(
        managed(&r.body, "other", "Apply").is_none(),
        "other lost its only field"
    );
    // Conflicts with an Update manager (merge patch) too.
    let r = f.merge_patch(
        &format!("{path}?fieldManager=kubectl-edit"),
        &json!({"data": {"x": "3"}}),
    );
    assert_eq!(r.status, 200);
    let e = managed(&r.body, "kubectl-edit", "Update").expect("update entry");
    assert_eq!(e["fieldsV1"], json!({"f:data": {"f:x": {}}}));
    let r = f.apply(&path, "raystack", &cm(json!({"x": "2"})), "");
    assert_eq!(r.status, 409);
    assert!(r.body["message"].as_str().unwrap().contains("kubectl-edit"));
}

#[test]
fn apply_requires_field_manager_and_parses_yaml() {
    let f = Fake::start();
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n";
    let r = f.req(
        "PATCH",
        &format!("{CM}/y"),
        Some("application/apply-patch+yaml"),
        Some(yaml),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let r = f.req(
        "PATCH",
        &format!("{CM}/y?fieldManager=raystack"),
        Some("application/apply-patch+yaml"),
        Some(yaml),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["data"]["k"], "v");
    let r = f.req(
        "PATCH",
        &format!("{CM}/y?fieldManager=raystack"),
        Some("application/apply-patch+yaml"),
        Some("kind: [unclosed\n  - x: y"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["reason"], "BadRequest");
}

#[test]
fn update_operations_record_their_manager() {
    let f = Fake::start();
    let r = f.post(
        &format!("{CM}?fieldManager=creator"),
        &cm(json!({"a": "1"})),
    );
    assert_eq!(r.status, 201);
    assert!(managed(&r.body, "creator", "Update").is_some());
    // PUT without fieldManager: manager from the User-Agent, stale resourceVersion is a conflict.
    let mut body = r.body.clone();
    body["data"]["a"] = json!("2");
    let r2 = f.put(&format!("{CM}/c"), &body);
    assert_eq!(r2.status, 200, "{}", r2.text);
    assert!(managed(&r2.body, "harness", "Update").is_some());
    let r3 = f.put(&format!("{CM}/c"), &body);
    assert_eq!(r3.status, 409);
    assert_eq!(r3.body["reason"], "Conflict");
    // JSON patch and strategic merge patch.
    let r = f.req(
        "PATCH",
        &format!("{CM}/c"),
        Some("application/json-patch+json"),
        Some(r#"[{"op":"add","path":"/data/b","value":"x"}]"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["b"], "x");
    let r = f.req(
        "PATCH",
        &format!("{CM}/c"),
        Some("application/strategic-merge-patch+json"),
        Some(r#"{"data":{"b":null,"c":"y"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"], json!({"a": "2", "c": "y"}));
}

/// client-go's csaupgrade: a JSON patch replacing `metadata.managedFields` (with the
/// resourceVersion as precondition) moves ownership; a stale resourceVersion conflicts.
#[test]
fn a_json_patch_of_managed_fields_sets_them_with_a_resource_version_precondition() {
    let f = Fake::start();
    let r = f.post(
        &format!("{CM}?fieldManager=kubectl-client-side-apply"),
        &cm(json!({"a": "1", "b": "2"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let rv = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut entries = r.body["metadata"]["managedFields"].clone();
    assert_eq!(entries[0]["manager"], "kubectl-client-side-apply");
    entries[0]["manager"] = json!("raystack");
    entries[0]["operation"] = json!("Apply");
    let patch = |rv: &str| {
        json!([
            {"op": "replace", "path": "/metadata/managedFields", "value": entries},
            {"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
        ])
        .to_string()
    };
    let json_patch = |body: &str| {
        f.req(
            "PATCH",
            &format!("{CM}/c?fieldManager=raystack"),
            Some("application/json-patch+json"),
            Some(body),
        )
    };
    let stale = json_patch(&patch("1"));
    assert_eq!(stale.status, 409, "{}", stale.text);
    let ok = json_patch(&patch(&rv));
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(managed(&ok.body, "kubectl-client-side-apply", "Update").is_none());
    assert!(
        managed(&ok.body, "raystack", "Apply").is_some(),
        "{}",
        ok.text
    );
    // Now raystack's apply owns `b`: applying without it removes it (what the move is for).
    let r = f.apply(
        &format!("{CM}/c"),
        "raystack",
        &cm(json!({"a": "1"})),
        "&force=true",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"], json!({"a": "1"}));
}
