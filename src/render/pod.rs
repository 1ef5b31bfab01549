//! The stack's pod settings (`[ray.head]`, `[[ray.workers]]`, `[redis]`: placement, identity,
//! env, labels and annotations) and `[stack] annotations`, applied to a rendered pod template
//! after its owner built it: one function for the Ray head, the worker groups and Redis alike.
//! Nothing is rendered for an empty setting, so stacks without them render as before.

use serde_json::{Map, Value, json};

use super::meta::{redis_selector, stack_annotations};
use crate::stack::{Affinity, NodeExpression, PodSettings, Stack};

/// The well-known node label holding the node's zone.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

fn expression(e: &NodeExpression) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), json!(e.key));
    m.insert("operator".into(), json!(e.operator));
    if !e.values.is_empty() {
        m.insert("values".into(), json!(e.values));
    }
    Value::Object(m)
}

/// `affinity` of a pod spec, `None` when the stack says nothing.
fn affinity(stack: &Stack, a: &Affinity) -> Option<Value> {
    if a.is_empty() {
        return None;
    }
    let mut out = Map::new();
    let mut required: Vec<Value> = a.required.iter().map(expression).collect();
    if let Some(zone) = &a.zone {
        required.push(json!({ "key": ZONE_LABEL, "operator": "In", "values": [zone] }));
    }
    let mut node = Map::new();
    if !required.is_empty() {
        node.insert(
            "requiredDuringSchedulingIgnoredDuringExecution".into(),
            json!({ "nodeSelectorTerms": [{ "matchExpressions": required }] }),
        );
    }
    if !a.preferred.is_empty() {
        let terms: Vec<Value> = a
            .preferred
            .iter()
            .map(|(w, e)| json!({ "weight": w, "preference": { "matchExpressions": [expression(e)] } }))
            .collect();
        node.insert(
            "preferredDuringSchedulingIgnoredDuringExecution".into(),
            Value::Array(terms),
        );
    }
    if !node.is_empty() {
        out.insert("nodeAffinity".into(), Value::Object(node));
    }
    if a.same_zone_as_redis {
        // The Redis volume is bound in the zone of the Redis pod (WaitForFirstConsumer), so
        // following the pod follows the volume.
        out.insert(
            "podAffinity".into(),
            json!({ "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": { "matchLabels": redis_selector(stack) },
                "topologyKey": ZONE_LABEL,
            }] }),
        );
    }
    Some(Value::Object(out))
}

/// Adds `pod`'s settings and the stack's annotations to `template` (a pod template:
/// `metadata` and `spec` with the main container first). Labels and env raystack set stay
/// as they are: the stack loader refuses keys that would collide with them.
pub(crate) fn apply_pod_settings(stack: &Stack, template: &mut Value, pod: &PodSettings) {
    let Some(t) = template.as_object_mut() else {
        return;
    };
    let metadata = t.entry("metadata").or_insert_with(|| json!({}));
    if !pod.labels.is_empty() {
        let labels = metadata
            .as_object_mut()
            .expect("metadata is an object")
            .entry("labels")
            .or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            for (k, v) in &pod.labels {
                l.entry(k.clone()).or_insert_with(|| json!(v));
            }
        }
    }
    let mut annotations: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(a)) = stack_annotations(stack) {
        annotations.extend(
            a.into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())),
        );
    }
    annotations.extend(pod.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !annotations.is_empty() {
        let a = metadata
            .as_object_mut()
            .expect("metadata is an object")
            .entry("annotations")
            .or_insert_with(|| json!({}));
        if let Some(a) = a.as_object_mut() {
            for (k, v) in annotations {
                // The pod's own annotation wins over the stack's.
                a.insert(k, json!(v));
            }
        }
    }
    let Some(spec) = t.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(container) = spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .and_then(|c| c.first_mut())
        .and_then(Value::as_object_mut)
        && (!pod.env.is_empty() || !pod.env_from_secret.is_empty())
    {
        let env = container.entry("env").or_insert_with(|| json!([]));
        if let Some(env) = env.as_array_mut() {
            for (name, value) in &pod.env {
                env.push(json!({ "name": name, "value": value }));
            }
            for (name, (secret, key)) in &pod.env_from_secret {
                env.push(json!({ "name": name, "valueFrom": { "secretKeyRef": { "name": secret, "key": key } } }));
            }
        }
    }
    if let Some(sa) = &pod.service_account {
        spec.insert("serviceAccountName".into(), json!(sa));
    }
    if !pod.image_pull_secrets.is_empty() {
        let secrets: Vec<Value> = pod
            .image_pull_secrets
            .iter()
            .map(|s| json!({ "name": s }))
            .collect();
        spec.insert("imagePullSecrets".into(), Value::Array(secrets));
    }
    if let Some(pc) = &pod.priority_class {
        spec.insert("priorityClassName".into(), json!(pc));
    }
    if !pod.node_selector.is_empty() {
        spec.insert("nodeSelector".into(), json!(pod.node_selector));
    }
    if !pod.tolerations.is_empty() {
        let tolerations: Vec<Value> = pod
            .tolerations
            .iter()
            .map(|t| {
                let mut m = Map::new();
                if let Some(k) = &t.key {
                    m.insert("key".into(), json!(k));
                }
                m.insert("operator".into(), json!(t.operator));
                if let Some(v) = &t.value {
                    m.insert("value".into(), json!(v));
                }
                if let Some(e) = &t.effect {
                    m.insert("effect".into(), json!(e));
                }
                if let Some(s) = t.toleration_seconds {
                    m.insert("tolerationSeconds".into(), json!(s));
                }
                Value::Object(m)
            })
            .collect();
        spec.insert("tolerations".into(), Value::Array(tolerations));
    }
    if let Some(a) = affinity(stack, &pod.affinity) {
        spec.insert("affinity".into(), a);
    }
}
