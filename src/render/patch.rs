//! `[[patches]]`: the escape hatch for a field raystack does not model. Each patch (an RFC 7386
//! merge patch or an RFC 6902 JSON patch, applied with the `json-patch` crate) changes the
//! rendered objects it targets, in order, after rendering. A patched object must still pass
//! the schema checks of [`super::check`], keep its identity, and leave alone what the
//! durability promise rests on (GCS fault tolerance, the Redis persistence config and volume,
//! the password wiring, raystack's labels). [`check_patches`] (run by [`super::load`]) reports a
//! failure located at the patch.

use std::collections::BTreeMap;

use serde_json::Value;

use super::check::check_object;
use super::meta::{OWNED_LABEL_KEYS, STACK_LABEL};
use crate::stack::{Diagnostic, Diagnostics, Patch, PatchType, Stack};

/// Why a patch was refused: the patch's index, the object and the field, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    pub index: usize,
    pub message: String,
    pub help: String,
}

/// Environment variables of Ray and Redis containers that carry the GCS and password wiring.
const WIRING_ENV: &[&str] = &[
    "RAY_REDIS_ADDRESS",
    "REDIS_PASSWORD",
    "REDIS_USERNAME",
    "REDISCLI_AUTH",
    "RAY_external_storage_namespace",
];

/// The fields of `object` the durability promise rests on, each as (field path, value; `Null`
/// when absent). A patch must leave every one as rendered.
fn protected(object: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut at = |path: &str, pointer: &str| {
        out.push((
            path.to_string(),
            object.pointer(pointer).cloned().unwrap_or(Value::Null),
        ));
    };
    at("apiVersion", "/apiVersion");
    at("kind", "/kind");
    at("metadata.name", "/metadata/name");
    at("metadata.namespace", "/metadata/namespace");
    for key in OWNED_LABEL_KEYS.iter().chain([&STACK_LABEL]) {
        let escaped = key.replace('~', "~0").replace('/', "~1");
        at(
            &format!("metadata.labels.{key}"),
            &format!("/metadata/labels/{escaped}"),
        );
    }
    match object["kind"].as_str().unwrap_or_default() {
        "RayCluster" => {
            at(
                "spec.gcsFaultToleranceOptions",
                "/spec/gcsFaultToleranceOptions",
            );
            at(
                "metadata.annotations.ray.io/ft-enabled",
                "/metadata/annotations/ray.io~1ft-enabled",
            );
            at(
                "metadata.annotations.ray.io/external-storage-namespace",
                "/metadata/annotations/ray.io~1external-storage-namespace",
            );
            at(
                "spec.headGroupSpec.rayStartParams.redis-password",
                "/spec/headGroupSpec/rayStartParams/redis-password",
            );
            pod_wiring(
                object.pointer("/spec/headGroupSpec/template/spec"),
                "spec.headGroupSpec.template.spec",
                &mut out,
            );
            if let Some(groups) = object
                .pointer("/spec/workerGroupSpecs")
                .and_then(Value::as_array)
            {
                for (i, g) in groups.iter().enumerate() {
                    pod_wiring(
                        g.pointer("/template/spec"),
                        &format!("spec.workerGroupSpecs[{i}].template.spec"),
                        &mut out,
                    );
                }
            }
        }
        "ConfigMap" => at("data (the Redis persistence config)", "/data"),
        "PersistentVolumeClaim" => at("spec (the Redis volume)", "/spec"),
        "Secret" => {
            at("data", "/data");
            at("stringData", "/stringData");
            at("type", "/type");
        }
        "StorageClass" => {
            at("provisioner", "/provisioner");
            at("reclaimPolicy", "/reclaimPolicy");
        }
        "StatefulSet" => {
            at("spec.replicas", "/spec/replicas");
            at("spec.selector", "/spec/selector");
            at("spec.template.spec.volumes", "/spec/template/spec/volumes");
            at(
                "spec.template.metadata.annotations.raystack.dev/redis-conf-sha256",
                "/spec/template/metadata/annotations/raystack.dev~1redis-conf-sha256",
            );
            if let Some(cs) = object
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
            {
                for c in cs.iter().filter(|c| c["name"] == "redis") {
                    let name = "spec.template.spec.containers[redis]";
                    out.push((format!("{name}.command"), c["command"].clone()));
                    out.push((format!("{name}.args"), c["args"].clone()));
                    out.push((format!("{name}.env"), c["env"].clone()));
                    out.push((format!("{name}.volumeMounts"), c["volumeMounts"].clone()));
                }
            }
        }
        "Service" | "NetworkPolicy" => {
            at("spec.selector", "/spec/selector");
            at("spec.podSelector", "/spec/podSelector");
        }
        _ => {}
    }
    out
}

/// The wiring env entries of every container of a pod spec, by container name.
fn pod_wiring(spec: Option<&Value>, path: &str, out: &mut Vec<(String, Value)>) {
    let Some(cs) = spec.and_then(|s| s["containers"].as_array()) else {
        return;
    };
    for c in cs {
        let name = c["name"].as_str().unwrap_or_default();
        for var in WIRING_ENV {
            let entry = c["env"]
                .as_array()
                .and_then(|env| env.iter().find(|e| e["name"] == *var))
                .cloned()
                .unwrap_or(Value::Null);
            out.push((format!("{path}.containers[{name}].env.{var}"), entry));
        }
    }
}

fn address(o: &Value) -> String {
    crate::kind::ObjectRef::of_rendered(o).address()
}

/// Applies `patches` to `objects` in order; every object a patch changed is checked.
pub fn apply_patches(
    stack: &Stack,
    objects: &mut [Value],
    patches: &[Patch],
) -> Result<(), PatchError> {
    for (index, p) in patches.iter().enumerate() {
        let fail = |message: String, help: &str| PatchError {
            index,
            message,
            help: help.to_string(),
        };
        let mut matched = 0;
        for o in objects.iter_mut() {
            if o["kind"].as_str() != Some(p.kind.as_str())
                || p.name
                    .as_ref()
                    .is_some_and(|n| o["metadata"]["name"].as_str() != Some(n))
            {
                continue;
            }
            matched += 1;
            let before = o.clone();
            let what = address(&before);
            match p.patch_type {
                PatchType::Merge => json_patch::merge(o, &p.patch),
                PatchType::Json => {
                    let ops: json_patch::Patch = serde_json::from_value(p.patch.clone())
                        .map_err(|e| {
                            fail(
                                format!("is not an RFC 6902 JSON patch: {e}"),
                                "write a list of operations, e.g. [{ op = \"add\", path = \"/spec/x\", value = 1 }] or its YAML/JSON text",
                            )
                        })?;
                    json_patch::patch(o, &ops).map_err(|e| {
                        fail(
                            format!("does not apply to {what}: operation {} failed at `{}`: {}", e.operation, e.path, e.kind),
                            "check the path against `raystack render` output (array items by index, `~1` for '/' in a key)",
                        )
                    })?;
                }
            }
            let was: BTreeMap<String, Value> = protected(&before).into_iter().collect();
            let now: BTreeMap<String, Value> = protected(o).into_iter().collect();
            // A field the object did not have (e.g. the env of a new sidecar) must stay
            // absent; every other must keep its rendered value (also when its container went).
            let fields: std::collections::BTreeSet<&String> =
                was.keys().chain(now.keys()).collect();
            for field in fields {
                let (a, b) = (
                    was.get(field).unwrap_or(&Value::Null),
                    now.get(field).unwrap_or(&Value::Null),
                );
                if a != b {
                    return Err(fail(
                        format!(
                            "changes `{field}` of {what}, which raystack owns: the durability of the GCS (or the object's identity) rests on it"
                        ),
                        "patch other fields only; GCS fault tolerance, the Redis persistence config and volume, the password wiring, names and raystack's labels are set by the stack's own keys",
                    ));
                }
            }
            if let Err(problem) = check_object(o, stack.ray.kuberay) {
                return Err(fail(
                    format!("leaves {what} invalid: {problem}"),
                    "fix the patch so the object stays valid for its schema (the built-in kinds of Kubernetes 1.33, the RayCluster CRD of the stack's KubeRay version)",
                ));
            }
        }
        if matched == 0 {
            let rendered: Vec<String> = objects
                .iter()
                .map(|o| {
                    format!(
                        "{}/{}",
                        o["kind"].as_str().unwrap_or_default(),
                        o["metadata"]["name"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            return Err(fail(
                "matches no rendered object".to_string(),
                &format!("the stack renders: {}", rendered.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Applies the stack's patches to its rendered objects; a refusal is a diagnostic located at
/// the patch's text, keyed `patches[i]`, naming the target, the object and the field.
pub fn check_patches(stack: &Stack) -> Result<(), Diagnostics> {
    if stack.patches.is_empty() {
        return Ok(());
    }
    let mut objects = super::render_unpatched(stack);
    let Err(e) = apply_patches(stack, &mut objects, &stack.patches) else {
        return Ok(());
    };
    let p = &stack.patches[e.index];
    let target = match &p.name {
        Some(n) => format!("{}/{n}", p.kind),
        None => p.kind.clone(),
    };
    Err(Diagnostics(vec![Diagnostic {
        file: stack.source.clone(),
        line: p.line,
        column: p.column,
        key: format!("patches[{}]", e.index),
        message: format!(
            "{} patch to `{target}` {}",
            p.patch_type.as_str(),
            e.message
        ),
        help: Some(e.help),
    }]))
}
