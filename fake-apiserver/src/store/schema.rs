//! Type information for server-side apply (which lists are associative and by which keys) and, for custom
//! resources, the structural-schema steps a real apiserver runs: pruning unknown fields, defaulting, validation.

use crate::error::Cause;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    Atomic,
    Map(Vec<String>),
    Set,
}

/// A cursor into the type of a value, used while walking objects for field sets and merges.
#[derive(Debug, Clone)]
pub enum Ty<'a> {
    /// Built-in kinds: list types are known by field name (`field`), with the enclosing field in `parent`.
    Builtin { field: String, parent: String },
    /// Custom resources: a node of the CRD's openAPIV3Schema (None when the field is not described).
    Crd { node: Option<&'a Value>, root: bool },
}

impl<'a> Ty<'a> {
    pub fn builtin_root() -> Ty<'a> {
        Ty::Builtin {
            field: String::new(),
            parent: String::new(),
        }
    }
    pub fn crd_root(schema: &'a Value) -> Ty<'a> {
        Ty::Crd {
            node: Some(schema),
            root: true,
        }
    }

    pub fn field(&self, name: &str) -> Ty<'a> {
        match self {
            Ty::Builtin { field, .. } => Ty::Builtin {
                field: name.to_string(),
                parent: field.clone(),
            },
            Ty::Crd { root: true, .. } if name == "metadata" => Ty::Builtin {
                field: "metadata".into(),
                parent: String::new(),
            },
            Ty::Crd { node, .. } => {
                let next = node.and_then(|n| {
                    n.get("properties")
                        .and_then(|p| p.get(name))
                        .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
                });
                Ty::Crd {
                    node: next,
                    root: false,
                }
            }
        }
    }

    pub fn items(&self) -> Ty<'a> {
        match self {
            Ty::Builtin { field, .. } => Ty::Builtin {
                field: format!("{field}[]"),
                parent: field.clone(),
            },
            Ty::Crd { node, .. } => Ty::Crd {
                node: node.and_then(|n| n.get("items")),
                root: false,
            },
        }
    }

    pub fn list_kind(&self) -> ListKind {
        match self {
            Ty::Builtin { field, parent } => builtin_list_kind(field, parent),
            Ty::Crd { node: None, .. } => ListKind::Atomic,
            Ty::Crd { node: Some(n), .. } => {
                match n.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("map") => ListKind::Map(
                        n.get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(|k| k.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    ),
                    Some("set") => ListKind::Set,
                    _ => ListKind::Atomic,
                }
            }
        }
    }

    /// Default for an associative-list key field missing from an item (this is the list's cursor).
    pub fn key_default(&self, key: &str) -> Option<Value> {
        match self {
            Ty::Builtin { .. } => (key == "protocol").then(|| Value::String("TCP".into())),
            Ty::Crd { node, .. } => node
                .and_then(|n| n.pointer(&format!("/items/properties/{key}/default")))
                .cloned(),
        }
    }
}

/// How a list field of a built-in kind merges: by field name, with the enclosing field in `parent`
/// (`spec` for a Service's ports, a name ending in `[]` for a container's).
pub fn builtin_list_kind(field: &str, parent: &str) -> ListKind {
    let keys = |k: &[&str]| ListKind::Map(k.iter().map(|s| s.to_string()).collect());
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => keys(&["name"]),
        "volumeMounts" => keys(&["mountPath"]),
        "volumeDevices" => keys(&["devicePath"]),
        "ports" if parent.ends_with("[]") => keys(&["containerPort", "protocol"]),
        "ports" if parent == "spec" => keys(&["port", "protocol"]),
        "ownerReferences" => keys(&["uid"]),
        "finalizers" => ListKind::Set,
        "conditions" => keys(&["type"]),
        "hostAliases" => keys(&["ip"]),
        "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
        // Only meaningful for custom resources whose CRD carries no schema.
        "workerGroupSpecs" => keys(&["groupName"]),
        _ => ListKind::Atomic,
    }
}

/// Removes fields the schema does not declare (unless it preserves unknown fields); returns their paths.
pub fn prune(v: &mut Value, schema: &Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_at(v, schema, "", true, &mut pruned);
    pruned
}

fn preserves(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn prune_at(v: &mut Value, schema: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties");
            let embedded = schema
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let child_path = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if (root || embedded) && (k == "apiVersion" || k == "kind" || k == "metadata") {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(&k)) {
                    if let Some(child) = m.get_mut(&k) {
                        prune_at(child, s, &child_path, false, out);
                    }
                } else if let Some(s) = addl.filter(|a| a.is_object()) {
                    if let Some(child) = m.get_mut(&k) {
                        prune_at(child, s, &child_path, false, out);
                    }
                } else if addl.and_then(Value::as_bool) == Some(true) || preserves(schema) {
                    // kept as is
                } else {
                    m.remove(&k);
                    out.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for it in items.iter_mut() {
                    prune_at(it, s, &format!("{path}[]"), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Applies `default:` values from the schema to absent fields of present objects.
pub fn apply_defaults(v: &mut Value, schema: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if !m.contains_key(k)
                        && let Some(d) = s.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = m.get_mut(k) {
                        apply_defaults(child, s);
                    }
                }
            } else if let Some(s) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in m.values_mut() {
                    apply_defaults(child, s);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for it in items.iter_mut() {
                    apply_defaults(it, s);
                }
            }
        }
        _ => {}
    }
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks types, required fields and enums against the schema (the subset of OpenAPI a structural schema uses).
pub fn validate(v: &Value, schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    validate_at(v, schema, "", true, &mut out);
    out
}

fn validate_at(v: &Value, schema: &Value, path: &str, root: bool, out: &mut Vec<Cause>) {
    let shown = if path.is_empty() { "<root>" } else { path };
    if v.is_null() {
        // Nulls of non-nullable fields are dropped before validation by a real apiserver.
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if int_or_string {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            out.push(Cause::invalid(
                shown,
                &format!("{:?}", go_type_name(v)),
                &format!("{shown} in body must be of type integer-or-string"),
            ));
        }
        return;
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let actual = go_type_name(v);
        let ok = match t {
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            other => other == actual,
        };
        if !ok {
            out.push(Cause::invalid(
                shown,
                &format!("{actual:?}"),
                &format!("{shown} in body must be of type {t}: {actual:?}"),
            ));
            return;
        }
    }
    if let Some(en) = schema.get("enum").and_then(Value::as_array)
        && !en.contains(v)
    {
        let supported: Vec<String> = en.iter().map(|e| e.to_string()).collect();
        let refs: Vec<&str> = supported.iter().map(|s| s.trim_matches('"')).collect();
        out.push(Cause::not_supported(shown, &v.to_string(), &refs));
    }
    match v {
        Value::Object(m) => {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        let p = if path.is_empty() {
                            r.to_string()
                        } else {
                            format!("{path}.{r}")
                        };
                        out.push(Cause::required(&p, ""));
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m {
                if root && (k == "apiVersion" || k == "kind" || k == "metadata") {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(s) = props.and_then(|p| p.get(k)).or(addl) {
                    validate_at(child, s, &p, false, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, it) in items.iter().enumerate() {
                    validate_at(it, s, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}
