//! The patch formats that are not server-side apply: RFC 7386 JSON merge patch, RFC 6902 JSON patch and
//! (through `ssa::merge`) strategic merge patch, as pure functions on documents.

use super::ctx::Ctx;
use crate::error::ApiError;
use crate::store::objects::strip;
use crate::store::ssa;
use serde_json::{Value, json};

/// A JSON merge patch of the live object; returns the new manager-owned content.
pub(super) fn merge(c: &mut Ctx, b: Value) -> Result<Value, ApiError> {
    let live = c.need_live()?;
    c.check_rv(&b)?;
    let mut patched = merge_patch(live, &b);
    c.prune(&mut patched)?;
    c.update_from(&patched, false)
}

/// A strategic merge patch of the live object (list merge keys from the field types).
pub(super) fn strategic(c: &mut Ctx, b: Value) -> Result<Value, ApiError> {
    let live = c.need_live()?;
    c.check_rv(&b)?;
    let mut patched = ssa::merge(live, &b, &c.ty).map_err(ApiError::bad_request)?;
    c.prune(&mut patched)?;
    let n = strip(&patched, c.status_sub, c.rt.status_subresource);
    ssa::update(&c.live_stripped, &n, &mut c.entries, &c.op, &c.ty);
    Ok(n)
}

/// A JSON patch (list of operations) of the live object.
pub(super) fn json(c: &mut Ctx, ops: Value) -> Result<Value, ApiError> {
    let live = c.need_live()?;
    let mut patched = json_patch(live, &ops).map_err(|e| ApiError {
        code: 422,
        reason: "Invalid",
        message: e,
        details: json!({}),
    })?;
    if !patched.is_object() {
        return Err(ApiError::bad_request("the patched object is not an object"));
    }
    // The patched object's resourceVersion is a precondition, as on any update: a patch that
    // replaces it with a stale one conflicts (client-go's csaupgrade relies on this).
    c.check_rv(&patched)?;
    let wanted = patched.pointer("/metadata/managedFields").cloned();
    c.prune(&mut patched)?;
    let content = c.update_from(&patched, true)?;
    // A patch that changes metadata.managedFields sets them as written, as the API server's
    // field manager does; an empty list keeps the live ones (it guards clients that drop them).
    if let Some(wanted) = wanted
        && Some(&wanted) != live.pointer("/metadata/managedFields")
        && wanted.as_array().is_some_and(|a| !a.is_empty())
    {
        c.entries = ssa::parse_managed(&json!({"metadata": {"managedFields": wanted}}));
    }
    Ok(content)
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut t = target.as_object().cloned().unwrap_or_default();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    let cur = t.get(k).cloned().unwrap_or(Value::Null);
                    t.insert(k.clone(), merge_patch(&cur, v));
                }
            }
            Value::Object(t)
        }
        other => other.clone(),
    }
}

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn pointer_parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let toks: Vec<String> = path
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?
        .split('/')
        .map(unescape)
        .collect();
    let (last, parents) = toks.split_last().ok_or("empty JSON pointer")?;
    let mut cur = doc;
    for t in parents {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| format!("path {path:?} not found"))?,
            Value::Array(a) => {
                let i: usize = t.parse().map_err(|_| format!("bad index in {path:?}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("path {path:?} not found"))?
            }
            _ => return Err(format!("path {path:?} not found")),
        };
    }
    Ok((cur, last.clone()))
}

fn jp_get(doc: &Value, path: &str) -> Option<Value> {
    doc.pointer(path).cloned()
}

fn jp_remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = pointer_parent(doc, path)?;
    match parent {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("unable to remove nonexistent key: {last}")),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| format!("bad index {last}"))?;
            if i >= a.len() {
                return Err(format!("unable to remove nonexistent index {i}"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("path {path:?} not found")),
    }
}

fn jp_add(doc: &mut Value, path: &str, val: Value, replace: bool) -> Result<(), String> {
    if path.is_empty() {
        *doc = val;
        return Ok(());
    }
    let (parent, last) = pointer_parent(doc, path)?;
    match parent {
        Value::Object(m) => {
            if replace && !m.contains_key(&last) {
                return Err(format!(
                    "replace operation does not apply: doc is missing key: {path}"
                ));
            }
            m.insert(last, val);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(val);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| format!("bad index {last}"))?;
            if replace {
                *a.get_mut(i)
                    .ok_or_else(|| format!("index {i} out of range"))? = val;
            } else if i <= a.len() {
                a.insert(i, val);
            } else {
                return Err(format!("index {i} out of range"));
            }
            Ok(())
        }
        _ => Err(format!("path {path:?} not found")),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(doc: &Value, ops: &Value) -> Result<Value, String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    let mut doc = doc.clone();
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or("operation without op")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("operation without path")?;
        let value = || op.get("value").cloned().ok_or("operation without value");
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or("operation without from")
        };
        match kind {
            "add" => jp_add(&mut doc, path, value()?, false)?,
            "replace" => jp_add(&mut doc, path, value()?, true)?,
            "remove" => {
                jp_remove(&mut doc, path)?;
            }
            "test" => {
                if jp_get(&doc, path) != Some(value()?) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            "move" => {
                let v = jp_remove(&mut doc, from()?)?;
                jp_add(&mut doc, path, v, false)?;
            }
            "copy" => {
                let v = jp_get(&doc, from()?).ok_or("copy source not found")?;
                jp_add(&mut doc, path, v, false)?;
            }
            other => return Err(format!("unexpected operation {other:?}")),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches() {
        let doc = json!({"a": {"b": 1, "c": [1, 2]}});
        assert_eq!(
            merge_patch(&doc, &json!({"a": {"b": null, "d": 2}})),
            json!({"a": {"c": [1, 2], "d": 2}})
        );
        let p = json!([{"op": "add", "path": "/a/c/-", "value": 3}, {"op": "replace", "path": "/a/b", "value": 5}, {"op": "remove", "path": "/a/c/0"}]);
        assert_eq!(
            json_patch(&doc, &p).unwrap(),
            json!({"a": {"b": 5, "c": [2, 3]}})
        );
        assert!(json_patch(&doc, &json!([{"op": "test", "path": "/a/b", "value": 9}])).is_err());
    }
}
