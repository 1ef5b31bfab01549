//! Projection of Kubernetes objects onto "the fields raystack manages", and redaction of secret
//! values. Pure functions on JSON; this is what keeps server-defaulted fields out of diffs.
//!
//! A *shape* is a JSON value read as a field set: an object selects its keys, an array selects
//! list elements (matched by merge key such as `name`, else by position), and any scalar means
//! "the whole value". The desired manifest is a shape; so is a `managedFields` entry once
//! converted with [`shape_from_fields_v1`], which lets removed fields show up in diffs too.

use serde_json::{Map, Value};

use crate::kind::Kind;

/// Field names that identify an element of a Kubernetes associative list, in preference order.
const MERGE_KEYS: &[&str] = &[
    "name",
    "groupName",
    "mountPath",
    "containerPort",
    "port",
    "devicePath",
    "type",
    "key",
    "ip",
    "topologyKey",
];

/// The text that replaces every secret value in plans, state and output.
pub const SENSITIVE: &str = "(sensitive)";

fn merge_key(elem: &Value) -> Option<(&'static str, &Value)> {
    let obj = elem.as_object()?;
    // A null value is a field-set placeholder (from `fieldsV1`), not an identity.
    MERGE_KEYS
        .iter()
        .find_map(|k| obj.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

/// Finds the shape element matching `elem` (same merge key, else same position).
fn matching<'a>(shape: &'a [Value], elem: &Value, index: usize) -> Option<&'a Value> {
    if let Some((key, value)) = merge_key(elem) {
        if let Some(found) = shape.iter().find(|s| s.get(key) == Some(value)) {
            return Some(found);
        }
        // Keyed lists: an unmatched key is an element raystack does not manage (or removes).
        if shape.iter().any(|s| merge_key(s).is_some()) {
            return None;
        }
    }
    shape
        .get(index)
        .filter(|s| s.is_object() == elem.is_object())
}

/// Keeps only the parts of `obj` that `shape` selects. List elements of `obj` that the shape
/// does not describe are kept whole, so an element that exists on one side only shows in a diff.
pub fn project(shape: &Value, obj: &Value) -> Value {
    match (shape, obj) {
        (Value::Object(s), Value::Object(o)) => {
            let mut out = Map::with_capacity(s.len().min(o.len()));
            for (k, sv) in s {
                if let Some(ov) = o.get(k) {
                    out.insert(k.clone(), project(sv, ov));
                }
            }
            Value::Object(out)
        }
        (Value::Array(s), Value::Array(o)) => {
            if s.iter().all(|e| !e.is_object()) && !s.is_empty() {
                return obj.clone();
            }
            Value::Array(
                o.iter()
                    .enumerate()
                    .map(|(i, e)| match matching(s, e, i) {
                        Some(se) => project(se, e),
                        None => e.clone(),
                    })
                    .collect(),
            )
        }
        _ => obj.clone(),
    }
}

/// Unites two shapes: every field either selects.
pub fn merge_shapes(a: &Value, b: &Value) -> Value {
    let mut out = a.clone();
    merge_shape_into(&mut out, b);
    out
}

/// Adds every field `b` selects to `out`, in place (a merge that returned a new value copied
/// the left side again at every level of nesting).
pub fn merge_shape_into(out: &mut Value, b: &Value) {
    match (&mut *out, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in y {
                match x.get_mut(k) {
                    Some(existing) => merge_shape_into(existing, v),
                    None => {
                        x.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, e) in y.iter().enumerate() {
                let pos = match merge_key(e) {
                    Some((key, value)) => x.iter().position(|s| s.get(key) == Some(value)),
                    None => (i < x.len() && x[i].is_object() == e.is_object()).then_some(i),
                };
                match pos {
                    Some(p) => merge_shape_into(&mut x[p], e),
                    None => x.push(e.clone()),
                }
            }
        }
        // A structured shape is more precise than "the whole value".
        (Value::Object(_) | Value::Array(_), _) => {}
        (_, Value::Object(_) | Value::Array(_)) => *out = b.clone(),
        _ => {}
    }
}

/// Converts a server-side-apply `fieldsV1` set into a shape.
pub fn shape_from_fields_v1(fields: &Value) -> Value {
    let Some(map) = fields.as_object() else {
        return Value::Null;
    };
    let children: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| k.as_str() != ".").collect();
    if children.is_empty() {
        return Value::Null;
    }
    if children
        .iter()
        .any(|(k, _)| k.starts_with("k:") || k.starts_with("v:") || k.starts_with("i:"))
    {
        let mut elems = Vec::new();
        for (k, sub) in &children {
            if let Some(json) = k.strip_prefix("k:") {
                let mut elem = serde_json::from_str::<Value>(json).unwrap_or(Value::Null);
                if let (Value::Object(e), Value::Object(s)) = (&mut elem, shape_from_fields_v1(sub))
                {
                    for (sk, sv) in s {
                        e.entry(sk).or_insert(sv);
                    }
                }
                elems.push(elem);
            } else if let Some(json) = k.strip_prefix("v:") {
                elems.push(serde_json::from_str::<Value>(json).unwrap_or(Value::Null));
            }
        }
        return Value::Array(elems);
    }
    let mut out = Map::with_capacity(children.len());
    for (k, sub) in children {
        if let Some(name) = k.strip_prefix("f:") {
            out.insert(name.to_string(), shape_from_fields_v1(sub));
        }
    }
    Value::Object(out)
}

/// The shape of what `manager` owns in `obj` per its `metadata.managedFields` (status
/// subresource entries excluded), or `None` when the object records nothing for it.
pub fn managed_shape(obj: &Value, manager: &str) -> Option<Value> {
    let entries = obj.pointer("/metadata/managedFields")?.as_array()?;
    let mut shape: Option<Value> = None;
    for e in entries {
        if e.get("manager").and_then(Value::as_str) != Some(manager) {
            continue;
        }
        if e.get("subresource")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            continue;
        }
        if let Some(f) = e.get("fieldsV1") {
            let s = shape_from_fields_v1(f);
            match &mut shape {
                Some(prev) => merge_shape_into(prev, &s),
                None => shape = Some(s),
            }
        }
    }
    shape
}

/// Managers other than raystack's own that own a field (outside status) whose value differs
/// between `before` and `after`: who changed what raystack is about to restore. Sorted.
pub fn other_managers(obj: &Value, before: &Value, after: &Value) -> Vec<String> {
    let mut out: Vec<String> = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| {
            e.get("subresource")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        })
        .filter(|e| {
            let shape = e
                .get("fieldsV1")
                .map(shape_from_fields_v1)
                .unwrap_or(Value::Null);
            shape.is_object() && project(&shape, before) != project(&shape, after)
        })
        .filter_map(|e| e.get("manager").and_then(Value::as_str))
        .filter(|m| !m.starts_with("raystack"))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Replaces every value under a Secret's `data` and `stringData` with [`SENSITIVE`] (and see
/// [`redact_in_place`] for what else is masked).
pub fn redact(obj: &Value) -> Value {
    let mut out = obj.clone();
    redact_in_place(&mut out);
    out
}

/// The `redis.conf` directives whose argument is a password (an imported ConfigMap may hold
/// them in plain text; raystack's never does).
const PASSWORD_DIRECTIVES: &[&str] = &["requirepass", "masterauth"];

/// `text` with the argument of every password directive replaced by [`SENSITIVE`].
fn redact_conf(text: &str) -> Option<String> {
    let mut hit = false;
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let t = line.trim_start();
            let word = t.split_whitespace().next().unwrap_or("");
            if PASSWORD_DIRECTIVES
                .iter()
                .any(|d| d.eq_ignore_ascii_case(word))
            {
                hit = true;
                format!("{}{word} {SENSITIVE}", &line[..line.len() - t.len()])
            } else {
                line.to_string()
            }
        })
        .collect();
    hit.then(|| lines.join("\n"))
}

/// [`redact`] on a value the caller owns: objects other than Secrets are not copied. Also
/// masks a password directive in a ConfigMap's values and kubectl's
/// `last-applied-configuration` annotation (a copy of whatever kubectl applied, a Secret's
/// data or a redis.conf with its password included).
fn redact_in_place(obj: &mut Value) {
    if let Some(Value::String(a)) =
        obj.pointer_mut("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
    {
        *a = SENSITIVE.into();
    }
    if obj
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == Kind::ConfigMap)
        && let Some(Value::Object(m)) = obj.get_mut("data")
    {
        for v in m.values_mut() {
            if let Value::String(text) = v
                && let Some(masked) = redact_conf(text)
            {
                *text = masked;
            }
        }
    }
    if obj
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == Kind::Secret)
    {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(m)) = obj.get_mut(field) {
                for v in m.values_mut() {
                    *v = Value::String(SENSITIVE.into());
                }
            }
        }
    }
}

/// What replaces a secret value that a change modifies: masked, but visible as a change.
pub const SENSITIVE_CHANGED: &str = "(sensitive value changed)";

/// Redacts both sides of a change like [`redact`], except that a secret value present on both
/// sides with different values shows as [`SENSITIVE_CHANGED`] after the change, so the diff
/// says that it changes without saying what it was or becomes.
pub fn redact_pair(
    before: Option<&Value>,
    after: Option<&Value>,
) -> (Option<Value>, Option<Value>) {
    redact_pair_owned(before.cloned(), after.cloned())
}

/// [`redact_pair`] on values the caller owns (redacted where they are, not copied).
pub fn redact_pair_owned(
    mut before: Option<Value>,
    mut after: Option<Value>,
) -> (Option<Value>, Option<Value>) {
    let mut changed: Vec<(&'static str, String)> = Vec::new();
    if let (Some(b), Some(a)) = (&before, &after)
        && a.get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k == Kind::Secret)
    {
        for field in ["data", "stringData"] {
            let (Some(Value::Object(bm)), Some(Value::Object(am))) = (b.get(field), a.get(field))
            else {
                continue;
            };
            for (k, v) in am {
                if bm.get(k).is_some_and(|old| old != v) {
                    changed.push((field, k.clone()));
                }
            }
        }
    }
    if let Some(a) = after.as_mut() {
        redact_in_place(a);
        for (field, k) in &changed {
            if let Some(slot) = a.get_mut(*field).and_then(|m| m.get_mut(k)) {
                *slot = Value::String(SENSITIVE_CHANGED.into());
            }
        }
    }
    if let Some(b) = before.as_mut() {
        redact_in_place(b);
    }
    (before, after)
}

/// Drops the fields that describe a server's copy rather than the desired object.
pub fn strip_server_fields(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(Value::Object(meta)) = out.get_mut("metadata") {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
    }
    if let Value::Object(m) = &mut out {
        m.remove("status");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `classify` shows an object planned as it is (offline, or created with no dry-run
    /// answer) as `desired` itself, moved rather than projected: that is only the same if
    /// every rendered object projects onto itself as itself, in the same key order.
    #[test]
    fn every_rendered_object_projects_onto_itself_as_itself() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let stack = crate::stack::parse_str(&path, &text).unwrap();
            for object in crate::render::render(&stack).objects {
                let d = object.manifest;
                let projected = project(&d, &d);
                assert_eq!(
                    serde_json::to_string(&projected).unwrap(),
                    serde_json::to_string(&d).unwrap(),
                    "{}",
                    path.display()
                );
                seen += 1;
            }
        }
        assert!(seen >= 80, "{seen} objects");
    }

    #[test]
    fn server_defaults_are_projected_away() {
        let desired = json!({"spec": {"template": {"spec": {"containers": [{"name": "redis", "image": "redis:7"}]}}}});
        let live = json!({"metadata": {"uid": "u"}, "spec": {"replicas": 1, "template": {"spec": {
            "dnsPolicy": "ClusterFirst",
            "containers": [{"name": "redis", "image": "redis:7", "imagePullPolicy": "IfNotPresent"}]}}}});
        assert_eq!(
            project(&desired, &live),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "redis", "image": "redis:7"}]}}}})
        );
    }

    #[test]
    fn list_elements_missing_from_the_shape_are_kept_whole() {
        let desired = json!({"groups": [{"groupName": "cpu", "replicas": 1}]});
        let live = json!({"groups": [{"groupName": "cpu", "replicas": 1, "x": 1}, {"groupName": "gpu", "replicas": 2}]});
        assert_eq!(
            project(&desired, &live),
            json!({"groups": [{"groupName": "cpu", "replicas": 1}, {"groupName": "gpu", "replicas": 2}]})
        );
    }

    #[test]
    fn fields_v1_becomes_a_shape() {
        let f = json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:containers": {
            "k:{\"name\":\"redis\"}": {".": {}, "f:image": {}, "f:name": {}}}}});
        let shape = shape_from_fields_v1(&f);
        assert_eq!(
            shape,
            json!({"metadata": {"labels": {"a": null}}, "spec": {"containers": [{"name": "redis", "image": null}]}})
        );
        let live = json!({"spec": {"containers": [{"name": "redis", "image": "r", "tty": false}]}, "metadata": {"labels": {"a": "1", "b": "2"}}});
        assert_eq!(
            project(&shape, &live),
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "redis", "image": "r"}]}})
        );
    }

    #[test]
    fn merging_shapes_unites_maps_keyed_and_positional_lists_and_keeps_the_structured_side() {
        let a = json!({
            "spec": {"containers": [{"name": "ray", "image": null}], "args": [null]},
            "metadata": null,
        });
        let b = json!({
            "spec": {
                "containers": [{"name": "side", "image": null}, {"name": "ray", "env": null}],
                "args": [null, null],
                "replicas": null,
            },
            "metadata": {"labels": {"app": null}},
        });
        assert_eq!(
            merge_shapes(&a, &b),
            json!({
                "spec": {
                    "containers": [
                        {"name": "ray", "image": null, "env": null},
                        {"name": "side", "image": null},
                    ],
                    "args": [null, null],
                    "replicas": null,
                },
                "metadata": {"labels": {"app": null}},
            })
        );
        // A structured side wins over "the whole value" whichever side it is on.
        assert_eq!(
            merge_shapes(&json!({"x": 1}), &json!(null)),
            json!({"x": 1})
        );
        assert_eq!(merge_shapes(&json!(null), &json!([1])), json!([1]));
        assert_eq!(merge_shapes(&a, &a), a);
    }

    #[test]
    fn merged_shapes_select_removed_fields() {
        let desired = json!({"spec": {"limits": {"cpu": "1"}}});
        let owned = json!({"spec": {"limits": {"cpu": null, "nvidia.com/gpu": null}}});
        let shape = merge_shapes(&desired, &owned);
        let live =
            json!({"spec": {"limits": {"cpu": "1", "nvidia.com/gpu": "1", "memory": "2Gi"}}});
        assert_eq!(
            project(&shape, &live),
            json!({"spec": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}})
        );
    }

    #[test]
    fn a_changed_secret_value_is_masked_but_visible() {
        let before = json!({"kind": "Secret", "data": {"password": "b2xk", "user": "dQ=="}});
        let after = json!({"kind": "Secret", "data": {"password": "bmV3", "user": "dQ=="}});
        let (b, a) = redact_pair(Some(&before), Some(&after));
        assert_eq!(
            b.unwrap(),
            json!({"kind": "Secret", "data": {"password": "(sensitive)", "user": "(sensitive)"}})
        );
        assert_eq!(
            a.unwrap(),
            json!({"kind": "Secret", "data": {"password": "(sensitive value changed)", "user": "(sensitive)"}})
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let s = json!({"kind": "Secret", "data": {"password": "c2VjcmV0"}});
        assert_eq!(
            redact(&s),
            json!({"kind": "Secret", "data": {"password": "(sensitive)"}})
        );
    }

    #[test]
    fn a_password_in_a_config_map_or_kubectls_annotation_is_masked() {
        let cm = json!({"kind": "ConfigMap", "metadata": {"annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"redis.conf\":\"requirepass s3cret\"}}"}},
            "data": {"redis.conf": "port 6379\n  requirepass s3cret\nmasterauth s3cret\n"}});
        let out = redact(&cm);
        assert!(!out.to_string().contains("s3cret"), "{out}");
        assert_eq!(
            out["data"]["redis.conf"],
            "port 6379\n  requirepass (sensitive)\nmasterauth (sensitive)\n"
        );
    }
}
