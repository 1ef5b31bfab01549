//! LIST of one resource, in a namespace or across all, filtered by label and field selectors.

use super::Target;
use crate::error::ApiError;
use crate::store::State;
use crate::util::get;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

/// A parsed label selector requirement.
#[derive(Debug)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_selector(s: &str) -> Result<Vec<Req>, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "unable to parse requirement: invalid label selector {s:?}"
        ))
    };
    let mut out = Vec::new();
    for part in split_top(s) {
        let set = |rest: &str| -> Option<Vec<String>> {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        if let Some((k, v)) = part.split_once("!=") {
            out.push(Req::Ne(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = part.split_once("==") {
            out.push(Req::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = part.split_once('=') {
            out.push(Req::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            out.push(Req::NotIn(k.trim().into(), set(rest).ok_or_else(bad)?));
        } else if let Some((k, rest)) = part.split_once(" in ") {
            out.push(Req::In(k.trim().into(), set(rest).ok_or_else(bad)?));
        } else if let Some(k) = part.strip_prefix('!') {
            out.push(Req::NotExists(k.trim().into()));
        } else if !part.contains(' ') {
            out.push(Req::Exists(part));
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

fn matches(reqs: &[Req], labels: &Map<String, Value>) -> bool {
    let val = |k: &str| labels.get(k).and_then(Value::as_str);
    reqs.iter().all(|r| match r {
        Req::Eq(k, v) => val(k) == Some(v.as_str()),
        Req::Ne(k, v) => val(k) != Some(v.as_str()),
        Req::In(k, vs) => val(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        Req::NotIn(k, vs) => val(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        Req::Exists(k) => labels.contains_key(k),
        Req::NotExists(k) => !labels.contains_key(k),
    })
}

fn field_matches(sel: &str, obj: &Value) -> Result<bool, ApiError> {
    for part in split_top(sel) {
        let (path, want, eq) = if let Some((p, v)) = part.split_once("!=") {
            (p, v, false)
        } else if let Some((p, v)) = part.split_once("==") {
            (p, v, true)
        } else if let Some((p, v)) = part.split_once('=') {
            (p, v, true)
        } else {
            return Err(ApiError::bad_request(format!(
                "invalid selector: '{sel}'; can't understand '{part}'"
            )));
        };
        let segs: Vec<&str> = path.trim().split('.').collect();
        let actual = get(obj, &segs)
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_default();
        if (actual == want.trim()) != eq {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The list as kube-apiserver writes it, serialized straight from the store: a list of a
/// thousand stored objects is written once rather than copied into a new value first (that
/// copy was most of a list's cost, all of it under the store's lock).
pub fn list_json(
    st: &State,
    t: &Target,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let api_version = t.rt.api_version(&t.version);
    // kube-apiserver encodes a built-in kind's list as a typed list, whose items carry no
    // type meta; a custom resource's list is unstructured, and its items keep theirs.
    let type_meta = t.rt.schemas.is_some();
    let items = selected(st, t, label_selector, field_selector)?
        .into_iter()
        .map(|(_, obj)| Item {
            obj,
            api_version: &api_version,
            type_meta,
        })
        .collect();
    let body = ListBody {
        api_version: &api_version,
        kind: format!("{}List", t.rt.kind),
        metadata: json!({"resourceVersion": st.rv.to_string()}),
        items,
    };
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

/// The stored objects `t` addresses that the selectors select, in key order.
pub fn selected<'a>(
    st: &'a State,
    t: &Target,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Vec<(crate::store::Key, &'a Value)>, ApiError> {
    let reqs = match label_selector {
        Some(s) if !s.trim().is_empty() => parse_selector(s)?,
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (key, obj) in st.list(&t.rt.group, &t.rt.plural, t.ns()) {
        let empty = Map::new();
        let labels = get(obj, &["metadata", "labels"])
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if !matches(&reqs, labels) {
            continue;
        }
        if let Some(fs) = field_selector
            && !fs.trim().is_empty()
            && !field_matches(fs, obj)?
        {
            continue;
        }
        out.push((key, obj));
    }
    Ok(out)
}

/// [`list_json`] as a value.
pub fn list(
    st: &State,
    t: &Target,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Value, ApiError> {
    let bytes = list_json(st, t, label_selector, field_selector)?;
    Ok(serde_json::from_slice(&bytes).unwrap_or_default())
}

#[derive(serde::Serialize)]
struct ListBody<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: String,
    metadata: Value,
    items: Vec<Item<'a>>,
}

/// A stored object as a list item: at the served version (`objects::present`), with or without
/// its type meta.
struct Item<'a> {
    obj: &'a Value,
    api_version: &'a str,
    type_meta: bool,
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(fields) = self.obj.as_object() else {
            return self.obj.serialize(s);
        };
        let mut m = s.serialize_map(None)?;
        let mut versioned = false;
        for (k, v) in fields {
            match k.as_str() {
                "apiVersion" | "kind" if !self.type_meta => {}
                "apiVersion" => {
                    m.serialize_entry(k, self.api_version)?;
                    versioned = true;
                }
                _ => m.serialize_entry(k, v)?,
            }
        }
        if self.type_meta && !versioned {
            m.serialize_entry("apiVersion", self.api_version)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let labels: Map<String, Value> =
            serde_json::from_value(json!({"a": "1", "b": "2"})).unwrap();
        assert!(matches(&parse_selector("a=1,b==2").unwrap(), &labels));
        assert!(!matches(&parse_selector("a=1,b!=2").unwrap(), &labels));
        assert!(matches(&parse_selector("a in (1,3),!c").unwrap(), &labels));
        assert!(!matches(&parse_selector("c").unwrap(), &labels));
    }
}
