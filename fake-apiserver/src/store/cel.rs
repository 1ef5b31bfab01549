//! The validation rules of a CRD's structural schema (`x-kubernetes-validations`), evaluated
//! as kube-apiserver's apiextensions validator does, with the `cel` crate's interpreter:
//! each rule runs at the schema node that carries it, with `self` bound to the value there
//! (a rule is skipped when the value is absent). A transition rule (one that names `oldSelf`)
//! runs only on an update and only where the old object has a value at the same place:
//! object properties and map values by name, items of `x-kubernetes-list-type: map` lists by
//! their keys; items of other lists have no old value. A rule that is not true is one 422
//! cause per rule in kube-apiserver's form, `<path>: Invalid value: "<schema type>": <message>`
//! (`message`, else `messageExpression`'s result, else `failed rule: <rule>`), or `Forbidden`,
//! `Required`, `Duplicate` when the rule names that `reason`.
//!
//! Not evaluated: `optionalOldSelf`, `fieldPath`, the cost budget, and the Kubernetes CEL
//! libraries beyond the standard ones the `cel` crate carries (regex `matches` included).

use crate::error::Cause;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The causes of every rule `new` breaks, against `old` (the stored object) on an update.
pub fn validate(new: &Value, old: Option<&Value>, schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    walk(new, old, schema, "", true, &mut out);
    out
}

fn walk(
    v: &Value,
    old: Option<&Value>,
    schema: &Value,
    path: &str,
    root: bool,
    out: &mut Vec<Cause>,
) {
    if v.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for r in rules {
            if let Some(c) = check(r, v, old, schema, path) {
                out.push(c);
            }
        }
    }
    let child = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, cv) in m {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let old_child = old.and_then(|o| o.get(k));
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    walk(cv, old_child, s, &child(k), false, out);
                } else if let Some(s) = addl {
                    walk(cv, old_child, s, &format!("{path}[{k}]"), false, out);
                }
            }
        }
        Value::Array(items) => {
            let Some(s) = schema.get("items") else {
                return;
            };
            let keys: Vec<&str> = (schema.get("x-kubernetes-list-type").and_then(Value::as_str)
                == Some("map"))
            .then(|| {
                schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
            })
            .flatten()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
            let olds = old.and_then(Value::as_array);
            for (i, it) in items.iter().enumerate() {
                // Only items of map lists correlate with an old item (by their keys).
                let old_item = olds.filter(|_| !keys.is_empty()).and_then(|os| {
                    os.iter()
                        .find(|o| keys.iter().all(|k| o.get(*k) == it.get(*k)))
                });
                walk(it, old_item, s, &format!("{path}[{i}]"), false, out);
            }
        }
        _ => {}
    }
}

/// One rule at one value: `None` when it holds (or does not apply).
fn check(
    rule: &Value,
    v: &Value,
    old: Option<&Value>,
    schema: &Value,
    path: &str,
) -> Option<Cause> {
    let text = rule
        .get("rule")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let field = if path.is_empty() { "<nil>" } else { path };
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let program = match compiled(text) {
        Ok(p) => p,
        Err(e) => {
            return Some(Cause::invalid(
                field,
                &format!("{ty:?}"),
                &format!("compilation failed: {e}"),
            ));
        }
    };
    let transition = program.references().has_variable("oldSelf");
    if transition && old.is_none() {
        return None;
    }
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("self", to_cel(v));
    if let Some(o) = old {
        ctx.add_variable_from_value("oldSelf", to_cel(o));
    }
    let detail = match program.execute(&ctx) {
        Ok(cel::Value::Bool(true)) => return None,
        Ok(cel::Value::Bool(false)) => message(rule, text, &ctx),
        Ok(other) => format!(
            "rule evaluation error: rule did not evaluate to a bool: {:?}",
            other.type_of()
        ),
        Err(e) => format!("rule evaluation error: {e}"),
    };
    Some(match rule.get("reason").and_then(Value::as_str) {
        Some("FieldValueForbidden") => Cause::forbidden(field, &detail),
        Some("FieldValueRequired") => Cause::required(field, &detail),
        Some("FieldValueDuplicate") => Cause {
            field: field.into(),
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: {ty:?}"),
        },
        _ => Cause::invalid(field, &format!("{ty:?}"), &detail),
    })
}

/// The message of a broken rule: `message`, else what `messageExpression` gives, else the rule.
fn message(rule: &Value, text: &str, ctx: &cel::Context) -> String {
    if let Some(m) = rule
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty())
    {
        return m.to_string();
    }
    if let Some(expr) = rule.get("messageExpression").and_then(Value::as_str)
        && let Ok(p) = compiled(expr)
        && let Ok(cel::Value::String(s)) = p.execute(ctx)
        && !s.trim().is_empty()
    {
        return s.to_string();
    }
    if text.is_empty() {
        "failed rule: empty rule".to_string()
    } else {
        format!("failed rule: {text}")
    }
}

thread_local! {
    /// Compiled rules by their text: a CRD's few rules are parsed once per thread, not at
    /// every write.
    static PROGRAMS: std::cell::RefCell<HashMap<String, Arc<cel::Program>>> =
        std::cell::RefCell::new(HashMap::new());
}

fn compiled(text: &str) -> Result<Arc<cel::Program>, String> {
    if let Some(p) = PROGRAMS.with(|c| c.borrow().get(text).cloned()) {
        return Ok(p);
    }
    let p = Arc::new(cel::Program::compile(text).map_err(|e| e.to_string())?);
    PROGRAMS.with(|c| c.borrow_mut().insert(text.to_string(), p.clone()));
    Ok(p)
}

/// A JSON value as CEL sees it: integers as `int`, other numbers as `double`, objects as maps.
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<cel::objects::Key, cel::Value> = m
                .iter()
                .map(|(k, v)| (cel::objects::Key::from(k.clone()), to_cel(v)))
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "backend": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "backend is immutable"}]},
            "size": {"type": "integer", "x-kubernetes-validations": [{"rule": "self <= 10"}]},
            "groups": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer",
                    "x-kubernetes-validations": [{"rule": "self >= oldSelf", "reason": "FieldValueForbidden", "message": "may not shrink"}]}}}}
        }}}})
    }

    fn shown(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}: {}", c.reason, c.field, c.message))
            .collect()
    }

    #[test]
    fn transition_rules_need_an_old_value() {
        let s = schema();
        let new =
            json!({"spec": {"backend": "rocksdb", "size": 3, "groups": [{"name": "a", "n": 1}]}});
        assert!(validate(&new, None, &s).is_empty());
        let old = json!({"spec": {"size": 3}});
        assert!(
            validate(&new, Some(&old), &s).is_empty(),
            "no old backend: not a transition"
        );
        let old = json!({"spec": {"backend": "redis", "groups": [{"name": "b", "n": 9}, {"name": "a", "n": 2}]}});
        assert_eq!(
            shown(&validate(&new, Some(&old), &s)),
            [
                "FieldValueInvalid: spec.backend: Invalid value: \"string\": backend is immutable",
                "FieldValueForbidden: spec.groups[0].n: Forbidden: may not shrink",
            ]
        );
    }

    #[test]
    fn plain_rules_and_default_messages() {
        let s = schema();
        let new = json!({"spec": {"size": 11}});
        assert_eq!(
            shown(&validate(&new, None, &s)),
            ["FieldValueInvalid: spec.size: Invalid value: \"integer\": failed rule: self <= 10"]
        );
        let s = json!({"type": "object", "properties": {"m": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self in ['a', 'b']", "messageExpression": "'got ' + self"}]}}});
        assert_eq!(
            shown(&validate(&json!({"m": "c"}), None, &s)),
            ["FieldValueInvalid: m: Invalid value: \"string\": got c"]
        );
        assert!(validate(&json!({"m": "b"}), None, &s).is_empty());
    }
}
