//! Schema checks of one rendered (or patched) object, as the API server would judge it:
//! built-in kinds through their k8s-openapi types (a field the typed struct drops is a field
//! the API server would prune or reject), the RayCluster against the KubeRay CRD schema of the
//! stack's operator generation, embedded in the binary (src/render/crd/, the v1
//! openAPIV3Schema of tests/fixtures/kuberay without descriptions): JSON Schema validation
//! (types, required fields, enums) and a walk that refuses fields the schema does not declare.
//! `validate` runs it on every object a `[[patches]]` entry changed.

use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::stack::KubeRayVersion;

/// The embedded CRD generation for an operator version: < 1.3 → v1.2.2, 1.3–1.6 → v1.3.0,
/// >= 1.7 → v1.7.0 (the same choice as the tests' fixtures).
pub fn crd_generation(v: KubeRayVersion) -> &'static str {
    if v < KubeRayVersion::new(1, 3, 0) {
        "1.2.2"
    } else if v < KubeRayVersion::new(1, 7, 0) {
        "1.3.0"
    } else {
        "1.7.0"
    }
}

fn crd_text(generation: &str) -> &'static str {
    match generation {
        "1.2.2" => include_str!("crd/rayclusters.v1.2.2.json"),
        "1.3.0" => include_str!("crd/rayclusters.v1.3.0.json"),
        _ => include_str!("crd/rayclusters.v1.7.0.json"),
    }
}

/// The embedded openAPIV3Schema of a CRD generation (for the tests that keep it in step with
/// the fixtures).
pub fn embedded_crd_schema(generation: &str) -> Value {
    serde_json::from_str(crd_text(generation)).expect("the embedded CRD schema is JSON")
}

struct Crd {
    schema: Value,
    validator: jsonschema::Validator,
}

fn crd(generation: &str) -> &'static Crd {
    static CRDS: [OnceLock<Crd>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match generation {
        "1.2.2" => &CRDS[0],
        "1.3.0" => &CRDS[1],
        _ => &CRDS[2],
    };
    slot.get_or_init(|| {
        let schema = embedded_crd_schema(generation);
        let validator = jsonschema::validator_for(&to_json_schema(&schema))
            .expect("the embedded CRD schema compiles");
        Crd { schema, validator }
    })
}

/// OpenAPI v3 (structural schema) → JSON Schema: `nullable` widens the type to admit null;
/// `x-kubernetes-*` keywords are unknown to JSON Schema and ignored.
pub fn to_json_schema(s: &Value) -> Value {
    match s {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.clone(), to_json_schema(v));
            }
            if m.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(t)) = m.get("type")
            {
                out.insert("type".into(), json!([t, "null"]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// Fields the API server would prune: present in `value`, not declared by `schema`.
pub fn unknown_fields(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in m {
                let child = format!("{path}.{k}");
                if path.is_empty() && k == "metadata" {
                    continue; // ObjectMeta, validated by the API server, not the CRD
                }
                match (props.and_then(|p| p.get(k)), additional) {
                    (Some(s), _) => unknown_fields(v, s, &child, out),
                    (None, Some(s)) => unknown_fields(v, s, &child, out),
                    (None, None)
                        if schema.get("additionalProperties") == Some(&Value::Bool(true)) => {}
                    (None, None) => out.push(child),
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, v) in a.iter().enumerate() {
                    unknown_fields(v, items, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Every problem of a RayCluster against the CRD of `kuberay`'s generation, each starting
/// with the field it is about.
pub fn ray_cluster_problems(rc: &Value, kuberay: KubeRayVersion) -> Vec<String> {
    let crd = crd(crd_generation(kuberay));
    let mut out: Vec<String> = crd
        .validator
        .iter_errors(rc)
        .map(|e| format!("{}: {e}", pointer_to_path(&e.instance_path.to_string())))
        .collect();
    let mut unknown = Vec::new();
    unknown_fields(rc, &crd.schema, "", &mut unknown);
    out.extend(unknown.into_iter().map(|p| {
        format!(
            "{}: unknown field: the KubeRay {} CRD does not declare it (the API server would prune it)",
            p.trim_start_matches('.'),
            crd_generation(kuberay)
        )
    }));
    out
}

/// `/spec/workerGroupSpecs/0/x` → `spec.workerGroupSpecs[0].x`.
pub fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// Nulls removed (k8s-openapi omits `None`).
pub fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// The first field of `want` that `got` lacks or holds differently.
fn first_difference(want: &Value, got: &Value, path: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match g.get(k) {
                    None => {
                        return Some(format!(
                            "{child}: unknown field (the API server would prune or reject it)"
                        ));
                    }
                    Some(gv) => {
                        if let Some(d) = first_difference(v, gv, &child) {
                            return Some(d);
                        }
                    }
                }
            }
            None
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(a, b, &format!("{path}[{i}]"))),
        (a, b) if a == b => None,
        _ => Some(format!("{path}: not a valid value of this field")),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(manifest: &Value) -> Result<(), String> {
    let manifest = strip_nulls(manifest);
    let typed: T = serde_path_to_error::deserialize(&manifest)
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    let back = strip_nulls(&serde_json::to_value(&typed).expect("typed objects serialize"));
    match first_difference(&manifest, &back, "") {
        Some(d) => Err(d),
        None => Ok(()),
    }
}

/// Checks one object; `Err` names the first problem and the field it is about.
pub fn check_object(manifest: &Value, kuberay: KubeRayVersion) -> Result<(), String> {
    match manifest["kind"].as_str().unwrap_or_default() {
        "Namespace" => round_trip::<Namespace>(manifest),
        "StorageClass" => round_trip::<StorageClass>(manifest),
        "Secret" => round_trip::<Secret>(manifest),
        "ConfigMap" => round_trip::<ConfigMap>(manifest),
        "PersistentVolumeClaim" => round_trip::<PersistentVolumeClaim>(manifest),
        "StatefulSet" => round_trip::<StatefulSet>(manifest),
        "Service" => round_trip::<Service>(manifest),
        "NetworkPolicy" => round_trip::<NetworkPolicy>(manifest),
        "RayCluster" => {
            let p = ray_cluster_problems(manifest, kuberay);
            match p.into_iter().next() {
                Some(first) => Err(first),
                None => Ok(()),
            }
        }
        other => Err(format!("kind: raystack renders no {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_pointers() {
        assert_eq!(
            pointer_to_path("/spec/workerGroupSpecs/0/maxReplicas"),
            "spec.workerGroupSpecs[0].maxReplicas"
        );
        assert_eq!(
            pointer_to_path("/metadata/labels/ray.io~1cluster"),
            "metadata.labels.ray.io/cluster"
        );
    }

    #[test]
    fn a_misplaced_field_and_a_wrong_type_are_found() {
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "x"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "readinessprobe": {}}]}}}});
        let err = check_object(&sts, KubeRayVersion::new(1, 3, 0)).unwrap_err();
        assert_eq!(
            err,
            "spec.template.spec.containers[0].readinessprobe: unknown field (the API server would prune or reject it)"
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": 1}});
        assert!(check_object(&cm, KubeRayVersion::new(1, 3, 0)).is_err());
    }
}
