//! Object names, labels and `[stack]` annotations shared by every rendered object, and the
//! Namespace.

use serde_json::{Map, Value, json};

use crate::stack::Stack;

/// Label carrying the stack name on every object raystack renders.
pub const STACK_LABEL: &str = "raystack.dev/stack";

/// The names of the objects of one stack (every name is prefixed by the stack name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub namespace: String,
    /// Secret holding the Redis password under [`super::REDIS_PASSWORD_KEY`].
    pub secret: String,
    pub config_map: String,
    pub pvc: String,
    /// StatefulSet, Service and NetworkPolicy share this name.
    pub redis: String,
    pub ray_cluster: String,
}

/// Raystack's own names, or the existing objects `[redis]` names (`name`, `pvc`, `config_map`,
/// `password_secret`).
pub fn names(stack: &Stack) -> Names {
    let n = &stack.meta.name;
    let o = &stack.redis.objects;
    let or = |given: &Option<String>, own: String| given.clone().unwrap_or(own);
    Names {
        namespace: stack.meta.namespace.clone(),
        secret: or(&o.password_secret, format!("{n}-redis-auth")),
        config_map: or(&o.config_map, format!("{n}-redis-config")),
        pvc: or(&o.pvc, format!("{n}-redis-data")),
        redis: o.name(n),
        ray_cluster: n.clone(),
    }
}

/// `app.kubernetes.io/managed-by: raystack` and `raystack.dev/stack: <name>`.
pub fn common_labels(stack: &Stack) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("app.kubernetes.io/managed-by".into(), json!("raystack"));
    m.insert(STACK_LABEL.into(), json!(stack.meta.name));
    m
}

pub use crate::stack::OWNED_LABEL_KEYS;

/// Common labels plus `app.kubernetes.io/name` and `app.kubernetes.io/component`, then the
/// stack's own `[stack] labels` (which may not use raystack's keys).
pub(crate) fn labels(stack: &Stack, app: &str, component: &str) -> Value {
    let mut m = common_labels(stack);
    m.insert("app.kubernetes.io/name".into(), json!(app));
    m.insert("app.kubernetes.io/component".into(), json!(component));
    for (k, v) in &stack.meta.labels {
        m.entry(k.clone()).or_insert_with(|| json!(v));
    }
    Value::Object(m)
}

/// `[stack] annotations` as a JSON object, `None` when there are none.
pub(crate) fn stack_annotations(stack: &Stack) -> Option<Value> {
    (!stack.meta.annotations.is_empty()).then(|| json!(stack.meta.annotations))
}

/// The labels that select the Redis pod. Kept small and fixed: a StatefulSet's selector is
/// immutable, so it must not grow with other labels. An adopted StatefulSet keeps its own
/// (`[redis] selector`).
pub(crate) fn redis_selector(stack: &Stack) -> Value {
    match &stack.redis.objects.selector {
        Some(selector) => json!(selector),
        None => json!({
            STACK_LABEL: stack.meta.name,
            "app.kubernetes.io/name": "redis",
        }),
    }
}

/// The StatefulSet's `spec.serviceName` (immutable): the Redis name, or `[redis] service_name`
/// (`None` when that is empty: the adopted StatefulSet has no governing Service).
pub(crate) fn redis_service_name(stack: &Stack) -> Option<String> {
    match &stack.redis.objects.service_name {
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s.clone()),
        None => Some(names(stack).redis),
    }
}

/// `metadata` of a namespaced object.
pub(crate) fn namespaced(stack: &Stack, name: &str, labels: Value) -> Value {
    let mut m = object([
        ("name", json!(name)),
        ("namespace", json!(stack.meta.namespace)),
        ("labels", labels),
    ]);
    if let Some(a) = stack_annotations(stack) {
        m["annotations"] = a;
    }
    m
}

/// A JSON object of `entries`, in this order. Unlike `json!`, which copies every value it is
/// given through serde (a deep copy of a nested object), this moves the values in.
pub(crate) fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut m = Map::with_capacity(N);
    for (k, v) in entries {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

pub(crate) fn namespace(stack: &Stack) -> Value {
    let mut labels = common_labels(stack);
    for (k, v) in &stack.meta.labels {
        labels.entry(k.clone()).or_insert_with(|| json!(v));
    }
    let mut metadata = object([
        ("name", json!(stack.meta.namespace)),
        ("labels", Value::Object(labels)),
    ]);
    if let Some(a) = stack_annotations(stack) {
        metadata["annotations"] = a;
    }
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata,
    })
}
