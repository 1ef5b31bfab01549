//! Every rendered built-in object is a valid instance of its k8s-openapi type, and no field is
//! lost on the way through it (a misspelled or misplaced field would be dropped by the typed
//! struct exactly as the API server would prune or reject it).

use crate::render_support as support;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use raystack::render::check::strip_nulls;

/// Sorted-key form for comparison (the typed struct has its own field order).
fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sort(&strip_nulls(v))).unwrap()
}

fn round_trip<T: DeserializeOwned + Serialize>(manifest: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(manifest.clone())
        .map_err(|e| format!("does not deserialize: {e}"))?;
    let back = serde_json::to_value(&typed).unwrap();
    let (want, got) = (canonical(manifest), canonical(&back));
    if want != got {
        let diff = similar::TextDiff::from_lines(&want, &got)
            .unified_diff()
            .header("rendered", "typed")
            .to_string();
        return Err(format!(
            "fields lost or changed through the typed struct:\n{diff}"
        ));
    }
    Ok(())
}

pub(crate) fn check(manifest: &Value) -> Result<(), String> {
    match manifest["kind"].as_str().unwrap() {
        "Namespace" => round_trip::<Namespace>(manifest),
        "StorageClass" => round_trip::<StorageClass>(manifest),
        "Secret" => round_trip::<Secret>(manifest),
        "ConfigMap" => round_trip::<ConfigMap>(manifest),
        "PersistentVolumeClaim" => round_trip::<PersistentVolumeClaim>(manifest),
        "StatefulSet" => round_trip::<StatefulSet>(manifest),
        "Service" => round_trip::<Service>(manifest),
        "NetworkPolicy" => round_trip::<NetworkPolicy>(manifest),
        "RayCluster" => Ok(()), // checked against the CRD schema in render_crd.rs
        "PrometheusRule" => Ok(()), // checked against the CRD schema in render_alerts.rs
        other => Err(format!("no typed check for kind {other}")),
    }
}

#[test]
fn built_in_objects_round_trip_through_their_typed_structs() {
    let mut checked = std::collections::BTreeSet::new();
    for (name, stack) in support::examples() {
        for o in raystack::render::render(&stack).objects {
            if let Err(e) = check(&o.manifest) {
                panic!("{name}: {}: {e}", o.address());
            }
            checked.insert(o.kind().to_string());
        }
    }
    // The examples cover every kind the renderer can produce.
    assert_eq!(
        checked.into_iter().collect::<Vec<_>>(),
        [
            "ConfigMap",
            "Namespace",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "PrometheusRule",
            "RayCluster",
            "Secret",
            "Service",
            "StatefulSet",
            "StorageClass"
        ]
    );
}

#[test]
fn the_check_catches_a_misplaced_field() {
    // Regression guard for the check itself: a field in the wrong place is dropped by the typed
    // struct, and the comparison must notice.
    let (_, stack) = support::examples().into_iter().next().unwrap();
    let mut sts = raystack::render::render(&stack)
        .objects
        .into_iter()
        .find(|o| o.kind() == "StatefulSet")
        .unwrap()
        .manifest;
    sts["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] =
        serde_json::json!({"periodSeconds": 5});
    let err = check(&sts).unwrap_err();
    assert!(err.contains("readinessprobe"), "{err}");
}
