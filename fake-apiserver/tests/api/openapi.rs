//! The OpenAPI documents kubectl reads (`/openapi/v3`, its group-version documents, `/openapi/v2`) and
//! request bodies in Kubernetes protobuf, as kubectl's typed clients send them.

use crate::common::{CRD_V130, Fake, crds};
use serde_json::{Value, json};

/// The operations of `doc` at `path`, or panics with the paths there are.
fn path<'a>(doc: &'a Value, p: &str) -> &'a Value {
    doc["paths"].get(p).unwrap_or_else(|| {
        let keys: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        panic!("no path {p} in {keys:?}")
    })
}

#[test]
fn v3_index_names_every_group_version_with_a_hash() {
    let f = Fake::with(crds(&[CRD_V130]));
    let index = f.get("/openapi/v3").body;
    let paths = index["paths"].as_object().unwrap();
    for gv in [
        "api/v1",
        "apis/apps/v1",
        "apis/ray.io/v1",
        "apis/apiextensions.k8s.io/v1",
    ] {
        let url = paths[gv]["serverRelativeURL"].as_str().unwrap();
        assert!(url.starts_with(&format!("/openapi/v3/{gv}?hash=")), "{url}");
        let doc = f.get(url);
        assert_eq!(doc.status, 200, "{url}");
        assert_eq!(doc.body["openapi"], "3.0.0");
    }
    assert_eq!(f.get("/openapi/v3/apis/nope/v1").status, 404);
}

#[test]
fn v3_describes_builtin_kinds_and_their_patch_operation() {
    let f = Fake::start();
    let doc = f.get("/openapi/v3/api/v1").body;
    let schemas = &doc["components"]["schemas"];
    let cm = &schemas["io.k8s.api.core.v1.ConfigMap"];
    assert_eq!(
        cm["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "ConfigMap", "version": "v1"}])
    );
    assert_eq!(cm["properties"]["data"]["type"], "object");
    // Associative lists carry the keys strategic merge patch and server-side apply merge by.
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    let ports = &schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        json!(["port", "protocol"])
    );
    let patch = &path(&doc, "/api/v1/namespaces/{namespace}/configmaps/{name}")["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "ConfigMap", "version": "v1"})
    );
    let params: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["dryRun", "fieldManager", "fieldValidation", "force"]
    );
    let types: Vec<&String> = patch["requestBody"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        types,
        [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
            "application/strategic-merge-patch+json"
        ]
    );
    // Every reference resolves inside the document.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(schemas.get(name).is_some(), "dangling $ref {name}");
    }
}

#[test]
fn v3_publishes_a_crd_schema_like_a_real_apiserver() {
    let f = Fake::with(crds(&[CRD_V130]));
    let doc = f.get("/openapi/v3/apis/ray.io/v1").body;
    let rc = &doc["components"]["schemas"]["io.ray.v1.RayCluster"];
    assert_eq!(
        rc["x-kubernetes-group-version-kind"],
        json!([{"group": "ray.io", "kind": "RayCluster", "version": "v1"}])
    );
    assert!(rc["properties"]["spec"]["properties"]["headGroupSpec"].is_object());
    assert_eq!(
        rc["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(
        doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object()
    );
    // Custom resources take no strategic merge patch.
    let patch = &path(
        &doc,
        "/apis/ray.io/v1/namespaces/{namespace}/rayclusters/{name}",
    )["patch"];
    assert!(
        patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_none()
    );
    assert!(
        path(
            &doc,
            "/apis/ray.io/v1/namespaces/{namespace}/rayclusters/{name}/status"
        )["patch"]
            .is_object()
    );
}

#[test]
fn v2_is_json_and_refuses_protobuf_only_requests() {
    let f = Fake::with(crds(&[CRD_V130]));
    let v2 = f.get("/openapi/v2").body;
    assert_eq!(v2["swagger"], "2.0");
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.StatefulSet"]["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "StatefulSet", "version": "v1"}])
    );
    assert!(v2["definitions"]["io.ray.v1.RayCluster"].is_object());
    let pb = f.server.request(
        "GET",
        "/openapi/v2",
        &[(
            "Accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )],
        b"",
    );
    assert_eq!(pb.status, 406, "{}", pb.text);
}

/// `kubectl create namespace foo` (kubectl 1.33): a protobuf body in the `k8s\0` envelope.
const CREATE_NAMESPACE_FOO: &[u8] = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x1b\x0a\x13\x0a\x03foo\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x00\x1a\x02\x0a\x00\x1a\x00\x22\x00";

#[test]
fn protobuf_bodies_of_known_kinds_are_read() {
    let f = Fake::start();
    let pb = "application/vnd.kubernetes.protobuf";
    let r = f.server.request(
        "POST",
        "/api/v1/namespaces?fieldManager=kubectl-create",
        &[
            ("Content-Type", pb),
            (
                "Accept",
                "application/vnd.kubernetes.protobuf,application/json",
            ),
        ],
        CREATE_NAMESPACE_FOO,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let ns = r.json();
    assert_eq!(ns["metadata"]["name"], "foo");
    assert_eq!(ns["status"]["phase"], "Active");
    // A kind it has no protobuf layout for is refused as a media type, not misread.
    let mut sts = CREATE_NAMESPACE_FOO.to_vec();
    sts.splice(6..21, *b"\x0a\x07apps/v1\x12\x0bStatefulSet");
    sts[5] = 0x16;
    let r = f.server.request(
        "POST",
        "/apis/apps/v1/namespaces/default/statefulsets",
        &[("Content-Type", pb)],
        &sts,
    );
    assert_eq!(r.status, 415, "{}", r.text);
}
