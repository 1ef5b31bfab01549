//! Hidden changes: what an apply would change in a live object outside the fields raystack
//! renders. A server-side apply replaces an atomic list (a RayCluster's `workerGroupSpecs`, a
//! container's `args`) whole and resets a field raystack stops sending to its default, so a
//! field another manager set there (`kubectl patch` adding tolerations to a worker group, a
//! `rayStartParams` key) disappears. The plan compares the server's dry-run answer with the live
//! object over the whole object (server-managed fields aside), and names each field that
//! changes where raystack's own fields would not show it, with the managers that set it
//! (`metadata.managedFields`). Pure.

use serde_json::{Map, Value};

use super::project::{shape_from_fields_v1, strip_server_fields};

/// One step of a path into an object: a key, or the element of a list, named by its merge key
/// (`name`, `groupName`, ...) when it has one, else by position.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Keyed(&'static str, Value),
    Index(usize),
}

/// A field whose value the apply changes, where raystack's projection did not show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hidden {
    /// `spec.workerGroupSpecs[cpu].template.spec.tolerations`.
    pub path: String,
    /// Managers other than raystack that own the field (or the atomic list holding it).
    pub set_by: Vec<String>,
    /// Whether the apply removes the field (else it changes its value).
    pub removed: bool,
}

/// Merge keys of list elements, as `project` reads them.
const MERGE_KEYS: &[&str] = &["name", "groupName", "mountPath", "containerPort", "key"];

fn merge_key(v: &Value) -> Option<(&'static str, &Value)> {
    let o = v.as_object()?;
    MERGE_KEYS
        .iter()
        .find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

/// A shape (as `project` reads one) that selects every field whose value differs between
/// `live` and `after` (server-managed fields aside), or `None` when they are the same.
pub fn difference_shape(live: &Value, after: &Value) -> Option<Value> {
    diff_shape(&strip_server_fields(live), &strip_server_fields(after))
}

fn diff_shape(a: &Value, b: &Value) -> Option<Value> {
    if a == b {
        return None;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut out = Map::new();
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                match (x.get(k), y.get(k)) {
                    (Some(av), Some(bv)) => {
                        if let Some(s) = diff_shape(av, bv) {
                            out.insert(k.clone(), s);
                        }
                    }
                    _ => {
                        out.insert(k.clone(), Value::Null);
                    }
                }
            }
            Some(Value::Object(out))
        }
        (Value::Array(x), Value::Array(y)) if keyed(x) && keyed(y) => {
            let mut out = Vec::new();
            for e in x.iter().chain(y.iter()) {
                let (key, value) = merge_key(e).expect("keyed");
                let find = |l: &[Value]| {
                    l.iter()
                        .find(|o| o.get(key) == Some(value))
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                let (ea, eb) = (find(x), find(y));
                if ea == eb || out.iter().any(|s: &Value| s.get(key) == Some(value)) {
                    continue;
                }
                // An element on one side only is kept whole by `project`; one on both sides
                // is selected by its key plus what differs in it.
                let mut s = match diff_shape(&ea, &eb) {
                    Some(Value::Object(m)) if ea.is_object() && eb.is_object() => m,
                    _ => Map::new(),
                };
                s.insert(key.to_string(), value.clone());
                out.push(Value::Object(s));
            }
            Some(Value::Array(out))
        }
        // Anything else is compared as a whole value.
        _ => Some(Value::Null),
    }
}

fn keyed(list: &[Value]) -> bool {
    !list.is_empty() && list.iter().all(|e| merge_key(e).is_some())
}

/// The fields whose value differs between `live` and `after`, as paths, leaves only.
fn leaf_paths(a: &Value, b: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                prefix.push(Step::Key(k.clone()));
                leaf_paths(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    prefix,
                    out,
                );
                prefix.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) if keyed(x) && keyed(y) => {
            let mut seen: Vec<(&'static str, &Value)> = Vec::new();
            for e in x.iter().chain(y.iter()) {
                let (key, value) = merge_key(e).expect("keyed");
                if seen.contains(&(key, value)) {
                    continue;
                }
                seen.push((key, value));
                let find = |l: &'_ [Value]| {
                    l.iter()
                        .find(|o| o.get(key) == Some(value))
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                prefix.push(Step::Keyed(key, value.clone()));
                leaf_paths(&find(x), &find(y), prefix, out);
                prefix.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (ea, eb)) in x.iter().zip(y).enumerate() {
                prefix.push(Step::Index(i));
                leaf_paths(ea, eb, prefix, out);
                prefix.pop();
            }
        }
        _ => out.push(prefix.clone()),
    }
}

fn render(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Keyed(_, Value::String(v)) => s.push_str(&format!("[{v}]")),
            Step::Keyed(_, v) => s.push_str(&format!("[{v}]")),
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn value_at<'a>(v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut cur = v;
    for step in path {
        cur = match step {
            Step::Key(k) => cur.get(k)?,
            Step::Keyed(key, value) => cur
                .as_array()?
                .iter()
                .find(|e| e.get(*key) == Some(value))?,
            Step::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

/// Whether a `fieldsV1` shape owns `path` or a field holding it (an atomic list is owned as
/// one field).
fn owns(shape: &Value, path: &[Step]) -> bool {
    let mut cur = shape;
    for step in path {
        let next = match (step, cur) {
            // A leaf of the field set: the manager owns the whole value from here down.
            (_, Value::Null) => return true,
            (Step::Key(k), Value::Object(m)) => m.get(k),
            (Step::Keyed(key, value), Value::Array(l)) => {
                l.iter().find(|e| e.get(*key) == Some(value))
            }
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    true
}

/// The managers other than raystack whose `managedFields` own `path` in `live`. Sorted.
fn set_by(live: &Value, path: &[Step]) -> Vec<String> {
    let mut out: Vec<String> = live
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
            e.get("fieldsV1")
                .map(shape_from_fields_v1)
                .is_some_and(|s| s.is_object() && owns(&s, path))
        })
        .filter_map(|e| e.get("manager").and_then(Value::as_str))
        .filter(|m| !m.starts_with("raystack"))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The fields an apply changes in `live` (its dry-run answer is `after`) that the projection
/// onto raystack's own fields (`before`, `shown_after`) does not show.
pub fn hidden_changes(
    live: &Value,
    after: &Value,
    before: &Value,
    shown_after: &Value,
) -> Vec<Hidden> {
    let (l, a) = (strip_server_fields(live), strip_server_fields(after));
    let mut all = Vec::new();
    leaf_paths(&l, &a, &mut Vec::new(), &mut all);
    all.into_iter()
        .filter(|p| value_at(before, p) == value_at(shown_after, p))
        .map(|p| Hidden {
            path: render(&p),
            removed: value_at(&a, &p).is_none(),
            set_by: set_by(live, &p),
        })
        .collect()
}

/// The note a hidden change carries in the plan.
pub fn note(h: &Hidden) -> String {
    let who = if h.set_by.is_empty() {
        "outside the stack".to_string()
    } else {
        format!("by {}", h.set_by.join(", "))
    };
    let does = if h.removed {
        "the apply removes it"
    } else {
        "the apply resets it"
    };
    format!(
        "`{}` was set {who} and is not in the stack: {does} (raystack's apply replaces the fields it renders whole, atomic lists included); to keep it, put it in the stack (its setting, or a `[[patches]]` entry)",
        h.path
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc(group: Value, managed: Value) -> Value {
        json!({"kind": "RayCluster",
            "metadata": {"name": "s", "resourceVersion": "7", "generation": 2, "managedFields": managed},
            "spec": {"workerGroupSpecs": [group]},
            "status": {"state": "ready"}})
    }

    #[test]
    fn a_field_another_manager_set_in_an_atomic_list_is_named_with_its_manager() {
        let managed = json!([
            {"manager": "raystack", "operation": "Apply", "fieldsV1": {"f:spec": {"f:rayVersion": {}}}},
            {"manager": "kubectl-patch", "operation": "Update", "fieldsV1": {"f:spec": {"f:workerGroupSpecs": {}}}}
        ]);
        let live = rc(
            json!({"groupName": "cpu", "template": {"spec": {"tolerations": [{"key": "gpu", "operator": "Exists"}]}}}),
            managed,
        );
        let mut after = rc(
            json!({"groupName": "cpu", "template": {"spec": {}}}),
            json!([]),
        );
        after["metadata"]["resourceVersion"] = json!("8");
        after["metadata"]["generation"] = json!(3);
        // raystack's own fields show nothing.
        let shown = json!({"spec": {"workerGroupSpecs": [{"groupName": "cpu"}]}});
        let hidden = hidden_changes(&live, &after, &shown, &shown);
        assert_eq!(
            hidden,
            [Hidden {
                path: "spec.workerGroupSpecs[cpu].template.spec.tolerations".into(),
                set_by: vec!["kubectl-patch".into()],
                removed: true,
            }]
        );
        assert_eq!(
            note(&hidden[0]),
            "`spec.workerGroupSpecs[cpu].template.spec.tolerations` was set by kubectl-patch and is not in the stack: the apply removes it (raystack's apply replaces the fields it renders whole, atomic lists included); to keep it, put it in the stack (its setting, or a `[[patches]]` entry)"
        );
        let shape = difference_shape(&live, &after).unwrap();
        assert_eq!(
            shape,
            json!({"spec": {"workerGroupSpecs": [{"groupName": "cpu", "template": {"spec": {"tolerations": null}}}]}})
        );
    }

    #[test]
    fn server_managed_fields_and_shown_changes_are_not_hidden() {
        let live = rc(json!({"groupName": "cpu", "replicas": 1}), json!([]));
        let mut after = rc(json!({"groupName": "cpu", "replicas": 2}), json!([]));
        after["metadata"]["resourceVersion"] = json!("9");
        after["status"] = json!({});
        let before = json!({"spec": {"workerGroupSpecs": [{"groupName": "cpu", "replicas": 1}]}});
        let shown = json!({"spec": {"workerGroupSpecs": [{"groupName": "cpu", "replicas": 2}]}});
        assert_eq!(hidden_changes(&live, &after, &before, &shown), []);
        // Only server-managed fields differ: nothing at all.
        let mut same = live.clone();
        same["metadata"]["uid"] = json!("u");
        assert_eq!(difference_shape(&live, &same), None);
    }
}
