//! Namespace deletion as a real cluster runs it: the namespace turns `Terminating`, its
//! contents are deleted through their finalizers, nothing new may be created in it, and the
//! namespace goes last.

use crate::common::Fake;
use serde_json::{Value, json};

const NS: &str = "/api/v1/namespaces/team";
const CM: &str = "/api/v1/namespaces/team/configmaps";

fn configmap(name: &str, finalizers: &[&str]) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "finalizers": finalizers}, "data": {"a": "b"}})
}

/// The conditions without their timestamps.
fn conditions(ns: &Value) -> Vec<String> {
    ns["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {} {}: {}",
                c["type"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
                c["reason"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_namespace_terminates_through_its_contents_finalizers_and_goes_last() {
    let f = Fake::start();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    assert_eq!(f.post("/api/v1/namespaces", &ns).status, 201);
    let created = f.get(NS).body;
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(created["status"]["phase"], "Active");
    assert_eq!(f.post(CM, &configmap("free", &[])).status, 201);
    assert_eq!(
        f.post(CM, &configmap("held", &["example.com/hold"])).status,
        201
    );

    let r = f.delete(NS);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"]["phase"], "Terminating");
    assert!(
        r.body["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        r.text
    );
    assert_eq!(r.body["spec"]["finalizers"], json!(["kubernetes"]));

    // Content without finalizers is gone; the held one is marked and stays, and so does the
    // namespace, saying why.
    assert_eq!(f.get(&format!("{CM}/free")).status, 404);
    let held = f.get(&format!("{CM}/held")).body;
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    let ns = f.get(NS).body;
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(
        conditions(&ns),
        [
            "NamespaceDeletionDiscoveryFailure False ResourcesDiscovered: All resources successfully discovered",
            "NamespaceDeletionGroupVersionParsingFailure False ParsedGroupVersions: All legacy kube types successfully parsed",
            "NamespaceDeletionContentFailure False ContentDeleted: All content successfully deleted, may be waiting on finalization",
            "NamespaceContentRemaining True SomeResourcesRemain: Some resources are remaining: configmaps has 1 resource instances",
            "NamespaceFinalizersRemaining True SomeFinalizersRemain: Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances",
        ]
    );

    // Nothing new in a terminating namespace; another delete is a conflict.
    let r = f.post(CM, &configmap("new", &[]));
    assert_eq!(
        (r.status, &r.body),
        (
            403,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "configmaps \"new\" is forbidden: unable to create new content in namespace team because it is being terminated",
                "reason": "Forbidden",
                "details": {"name": "new", "kind": "configmaps", "causes": [{"reason": "NamespaceTerminating",
                    "message": "namespace team is being terminated", "field": "metadata.namespace"}]},
                "code": 403})
        ),
        "{}",
        r.text
    );
    let r = f.apply(&format!("{CM}/new"), "raystack", &configmap("new", &[]), "");
    assert_eq!(r.status, 403, "{}", r.text);
    let r = f.delete(NS);
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "Operation cannot be fulfilled on namespaces \"team\": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system."
    );
    // An update of what is there is still allowed.
    let r = f.merge_patch(&format!("{CM}/held"), &json!({"data": {"a": "c"}}));
    assert_eq!(r.status, 200, "{}", r.text);

    // Removing the last finalizer removes the object, and then the namespace.
    let r = f.merge_patch(
        &format!("{CM}/held"),
        &json!({"metadata": {"finalizers": null}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(f.get(&format!("{CM}/held")).status, 404);
    assert_eq!(f.get(NS).status, 404);
    // A namespace of the same name can be made again.
    assert_eq!(
        f.post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
        )
        .status,
        201
    );
    assert_eq!(f.get(&format!("{CM}/held")).status, 404);
}
