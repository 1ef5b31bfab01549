//! What a real apiserver refuses for size (413 body, 422 Secret/ConfigMap data, 500 from etcd),
//! resourceVersion preconditions on Leases and Secrets (409), and the read-only token's RBAC rule
//! (403 on any write, reads allowed).

use crate::common::Fake;
use base64::Engine as _;
use fake_apiserver::READ_ONLY_TOKEN;
use serde_json::{Value, json};

const NS: &str = "/api/v1/namespaces/default";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

fn secret(name: &str, bytes: usize) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(vec![7u8; bytes]);
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"k": data}})
}

#[test]
fn secret_data_over_one_mebibyte_is_invalid_like_a_real_apiserver() {
    let fake = Fake::start();
    let ok = fake.post(&format!("{NS}/secrets"), &secret("fits", 1024 * 1024));
    assert_eq!(ok.status, 201, "{}", ok.text);
    let r = fake.post(&format!("{NS}/secrets"), &secret("big", 1024 * 1024 + 1));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(
        r.body["message"],
        "Secret \"big\" is invalid: data: Too long: must have at most 1048576 bytes"
    );
    assert_eq!(
        r.body["details"]["causes"][0]["reason"],
        "FieldValueTooLong"
    );
    assert_eq!(fake.get(&format!("{NS}/secrets/big")).status, 404);
}

#[test]
fn configmap_data_over_one_mebibyte_is_invalid() {
    let fake = Fake::start();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                    "data": {"a": "x".repeat(600 * 1024), "b": "y".repeat(500 * 1024)}});
    let r = fake.post(&format!("{NS}/configmaps"), &cm);
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "ConfigMap \"big\" is invalid: []: Too long: must have at most 1048576 bytes"
    );
}

#[test]
fn a_request_body_over_three_mebibytes_is_413() {
    let fake = Fake::start();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"},
                    "data": {"a": "x".repeat(3 * 1024 * 1024)}});
    let r = fake.post(&format!("{NS}/configmaps"), &cm);
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["reason"], "RequestEntityTooLarge");
    assert_eq!(
        r.body["message"],
        "Request entity too large: limit is 3145728"
    );
}

#[test]
fn an_object_over_etcds_limit_fails_as_etcd_makes_it_fail() {
    let fake = Fake::start();
    // Under the 3 MiB body limit, no data-size rule for Leases, but over 1.5 MiB stored.
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "fat", "annotations": {"pad": "p".repeat(1_700_000)}},
                       "spec": {"holderIdentity": "x"}});
    let r = fake.post(LEASES, &lease);
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.body["message"], "etcdserver: request is too large");
}

#[test]
fn lease_writes_with_a_stale_resource_version_are_409_conflicts() {
    let fake = Fake::start();
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "lock"},
                       "spec": {"holderIdentity": "a", "leaseDurationSeconds": 30}});
    let created = fake.post(LEASES, &lease);
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        fake.post(LEASES, &lease).status,
        409,
        "create of an existing lease"
    );
    let rv = created.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut renewed = created.body.clone();
    renewed["spec"]["holderIdentity"] = json!("b");
    let r = fake.put(&format!("{LEASES}/lock"), &renewed);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(r.body["metadata"]["resourceVersion"], json!(rv));
    // Same body, old resourceVersion: someone else wrote in between.
    renewed["spec"]["holderIdentity"] = json!("c");
    let r = fake.put(&format!("{LEASES}/lock"), &renewed);
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["reason"], "Conflict");
    assert_eq!(
        r.body["message"],
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"lock\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let now = fake.get(&format!("{LEASES}/lock"));
    assert_eq!(now.body["spec"]["holderIdentity"], "b");
    // A delete with a stale precondition is refused too.
    let r = fake.req(
        "DELETE",
        &format!("{LEASES}/lock"),
        Some("application/json"),
        Some(&json!({"preconditions": {"resourceVersion": rv}}).to_string()),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(fake.get(&format!("{LEASES}/lock")).status, 200);
}

fn as_read_only(
    fake: &Fake,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> crate::common::Resp {
    let auth = format!("Bearer {READ_ONLY_TOKEN}");
    let mut headers = vec![
        ("Accept", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let text = body.map(Value::to_string).unwrap_or_default();
    let r = fake.server.request(method, path, &headers, text.as_bytes());
    crate::common::Resp {
        status: r.status,
        body: r.json(),
        headers: r.headers,
        text: r.text,
    }
}

#[test]
fn the_read_only_token_may_read_but_every_write_is_forbidden() {
    let fake = Fake::start();
    assert_eq!(
        fake.post(&format!("{NS}/secrets"), &secret("s", 3)).status,
        201
    );
    assert_eq!(
        as_read_only(&fake, "GET", &format!("{NS}/secrets/s"), None).status,
        200
    );
    assert_eq!(
        as_read_only(&fake, "GET", &format!("{NS}/secrets"), None).status,
        200
    );
    assert_eq!(
        as_read_only(&fake, "GET", "/api/v1/namespaces", None).status,
        200
    );

    let r = as_read_only(
        &fake,
        "POST",
        &format!("{NS}/secrets"),
        Some(&secret("t", 3)),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["reason"], "Forbidden");
    assert_eq!(
        r.body["message"],
        "secrets is forbidden: User \"fake-readonly\" cannot create resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    let r = as_read_only(&fake, "PUT", &format!("{LEASES}/l"), Some(&json!({})));
    assert_eq!(
        r.body["message"],
        "leases.coordination.k8s.io \"l\" is forbidden: User \"fake-readonly\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\""
    );
    let r = as_read_only(&fake, "DELETE", &format!("{NS}/secrets/s"), None);
    assert_eq!(r.status, 403, "{}", r.text);
    let r = as_read_only(&fake, "POST", "/api/v1/namespaces", Some(&json!({})));
    assert_eq!(
        r.body["message"],
        "namespaces is forbidden: User \"fake-readonly\" cannot create resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    assert_eq!(
        fake.get(&format!("{NS}/secrets/s")).status,
        200,
        "nothing deleted"
    );
    assert_eq!(
        fake.get(&format!("{NS}/secrets/t")).status,
        404,
        "nothing created"
    );
}

#[test]
fn the_kubeconfig_has_a_read_only_context() {
    let fake = Fake::start();
    let text = std::fs::read_to_string(&fake.kubeconfig).unwrap();
    assert!(text.contains("current-context: fake\n"), "{text}");
    assert!(
        text.contains(
            "- name: fake-readonly\n  context:\n    cluster: fake\n    user: fake-readonly\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("    token: {READ_ONLY_TOKEN}\n")),
        "{text}"
    );
}
