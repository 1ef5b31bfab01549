//! The verbs: get, list, create, replace, the patch flavours (server-side apply, merge, strategic merge,
//! JSON patch) and delete, each run against the store the way a real apiserver's registry would: system
//! metadata, status reset, defaulting, schema pruning, validation, managedFields, no-op detection, dry run.

use crate::defaults;
use crate::error::{ApiError, Cause};
use crate::registry::ResourceType;
use crate::schema::{self, Ty};
use crate::ssa::{self, Entry, Op};
use crate::store::{Key, State, Stored, key};
use crate::util::{get, get_str, new_uid, now_rfc3339, quantity_of, rand_suffix};
use crate::validate;
use serde_json::{Map, Value, json};
use std::time::Instant;

/// What a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub rt: ResourceType,
    pub version: String,
    /// Namespace from the URL (None for cluster-scoped kinds or all-namespace lists).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Target {
    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
    fn key(&self, name: &str) -> Key {
        key(&self.rt.group, &self.rt.plural, self.ns(), name)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Params {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    /// Manager name for non-apply writes without `fieldManager` (derived from the User-Agent).
    pub default_manager: String,
    pub force: bool,
    /// `fieldValidation`: Strict, Warn (default) or Ignore.
    pub field_validation: String,
}

#[derive(Debug)]
pub enum Write {
    Create(Value),
    Replace(Value),
    Apply(Value),
    Merge(Value),
    StrategicMerge(Value),
    JsonPatch(Value),
}

#[derive(Debug)]
pub struct Outcome {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

/// The object as served at `version` (no conversion beyond the apiVersion field).
pub fn present(rt: &ResourceType, version: &str, obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".into(), json!(rt.api_version(version)));
    }
    o
}

pub fn get_one(st: &State, t: &Target) -> Result<Value, ApiError> {
    let name = t.name.as_deref().unwrap_or("");
    if let Some(sub) = t.sub.as_deref()
        && !(sub == "status" && t.rt.status_subresource)
    {
        return Err(ApiError::no_resource());
    }
    st.objects
        .get(&t.key(name))
        .map(|s| present(&t.rt, &t.version, &s.obj))
        .ok_or_else(|| ApiError::not_found(&t.rt.plural, &t.rt.group, name))
}

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

pub fn list(
    st: &State,
    t: &Target,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Value, ApiError> {
    let reqs = match label_selector {
        Some(s) if !s.trim().is_empty() => parse_selector(s)?,
        _ => Vec::new(),
    };
    let mut items = Vec::new();
    for (_, obj) in st.list(&t.rt.group, &t.rt.plural, t.ns()) {
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
        items.push(present(&t.rt, &t.version, obj));
    }
    Ok(json!({
        "apiVersion": t.rt.api_version(&t.version),
        "kind": format!("{}List", t.rt.kind),
        "metadata": {"resourceVersion": st.rv.to_string()},
        "items": items,
    }))
}

const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
];

/// The part of an object that field managers can own: no apiVersion/kind/system metadata, and either no
/// status (main resource of a kind with a status subresource) or only status (the status subresource).
pub fn strip(obj: &Value, status_sub: bool, has_status_sub: bool) -> Value {
    let Some(m) = obj.as_object() else {
        return json!({});
    };
    if status_sub {
        let mut out = Map::new();
        if let Some(s) = m.get("status") {
            out.insert("status".into(), s.clone());
        }
        return Value::Object(out);
    }
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" if has_status_sub => {}
            "metadata" => {
                if let Some(meta) = v.as_object() {
                    let rest: Map<String, Value> = meta
                        .iter()
                        .filter(|(k, _)| !SYSTEM_META.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if !rest.is_empty() {
                        out.insert("metadata".into(), Value::Object(rest));
                    }
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

const META_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
];

fn ordered_meta(meta: Map<String, Value>, entries: &[Entry]) -> Map<String, Value> {
    let mut out = Map::new();
    for k in META_ORDER {
        if let Some(v) = meta.get(*k) {
            out.insert(k.to_string(), v.clone());
        }
    }
    for (k, v) in meta {
        if !out.contains_key(&k) && k != "managedFields" {
            out.insert(k, v);
        }
    }
    if !entries.is_empty() {
        out.insert("managedFields".into(), ssa::render_managed(entries));
    }
    out
}

fn without(v: &Value, keys: &[&str]) -> Value {
    let mut m = v.as_object().cloned().unwrap_or_default();
    for k in keys {
        m.remove(*k);
    }
    Value::Object(m)
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

fn check_type_meta(t: &Target, body: &Value, required: bool) -> Result<(), ApiError> {
    let want_av = t.rt.api_version(&t.version);
    match body.get("apiVersion").and_then(Value::as_str) {
        Some(av) if av != want_av => {
            // Another served version of the same group is fine for writes.
            let ok = t.rt.versions.iter().any(|v| t.rt.api_version(v) == av);
            if !ok {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({want_av})"
                )));
            }
        }
        None if required => {
            return Err(ApiError::bad_request("apiVersion must be set"));
        }
        _ => {}
    }
    match body.get("kind").and_then(Value::as_str) {
        Some(k) if k != t.rt.kind => Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            t.rt.kind
        ))),
        None if required => Err(ApiError::bad_request("kind must be set")),
        _ => Ok(()),
    }
}

fn params_manager(p: &Params) -> String {
    p.field_manager
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| p.default_manager.clone())
}

/// Create, replace or patch one object (or its status), returning what was (or, in a dry run, would be) stored.
pub fn write(st: &mut State, t: &Target, w: Write, p: &Params) -> Result<Outcome, ApiError> {
    let rt = t.rt.clone();
    let status_sub = match t.sub.as_deref() {
        None => false,
        Some("status") if rt.status_subresource => true,
        Some(_) => return Err(ApiError::no_resource()),
    };
    if rt.namespaced && t.namespace.is_none() {
        return Err(ApiError::method_not_allowed());
    }
    let ns = t.ns().to_string();
    let is_create = matches!(w, Write::Create(_));
    if is_create && t.name.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    if !is_create && t.name.is_none() {
        return Err(ApiError::method_not_allowed());
    }
    let schemas = rt.schemas.clone();
    let schema_node: Option<&Value> = schemas.as_deref().and_then(|m| m.get(rt.storage_version()));
    let ty = match schema_node {
        Some(s) => Ty::crd_root(s),
        None => Ty::builtin_root(),
    };
    let mut warnings = Vec::new();
    let strict = p.field_validation == "Strict";
    // Custom resources: drop fields the schema does not declare, as decoding does.
    let prune = |v: &mut Value, warnings: &mut Vec<String>| -> Result<(), ApiError> {
        if let Some(s) = schema_node {
            let pruned = schema::prune(v, s);
            if strict && !pruned.is_empty() {
                let list: Vec<String> = pruned
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    list.join(", ")
                )));
            }
            if p.field_validation != "Ignore" {
                warnings.extend(pruned.iter().map(|f| format!("unknown field {f:?}")));
            }
        }
        Ok(())
    };

    // Body checks and the object's name.
    let body_ref = match &w {
        Write::Create(b)
        | Write::Replace(b)
        | Write::Apply(b)
        | Write::Merge(b)
        | Write::StrategicMerge(b) => Some(b),
        Write::JsonPatch(_) => None,
    };
    if let Some(b) = body_ref {
        if !b.is_object() {
            return Err(ApiError::bad_request("the request body must be an object"));
        }
        check_type_meta(t, b, matches!(w, Write::Apply(_)))?;
        if let Some(bns) = get_str(b, &["metadata", "namespace"])
            && rt.namespaced
            && !bns.is_empty()
            && bns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let generate_name = body_ref
        .filter(|_| is_create)
        .and_then(|b| get_str(b, &["metadata", "generateName"]))
        .filter(|g| {
            !g.is_empty()
                && get_str(body_ref.unwrap_or(&Value::Null), &["metadata", "name"])
                    .is_none_or(str::is_empty)
        })
        .map(String::from);
    let name = if is_create {
        let b = body_ref.expect("create has a body");
        match get_str(b, &["metadata", "name"]).filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match get_str(b, &["metadata", "generateName"]).filter(|n| !n.is_empty()) {
                Some(g) => format!("{g}{}", rand_suffix(5)),
                None => String::new(),
            },
        }
    } else {
        let url_name = t.name.clone().unwrap_or_default();
        if let Some(b) = body_ref {
            match get_str(b, &["metadata", "name"]) {
                Some(n) if n != url_name && !n.is_empty() => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({url_name})"
                    )));
                }
                None if matches!(w, Write::Apply(_) | Write::Replace(_)) => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        &rt.group,
                        "",
                        vec![Cause::required(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ));
                }
                _ => {}
            }
        }
        url_name
    };
    let name_causes = validate::name(&rt.group, &rt.kind, &name);
    if !name_causes.is_empty() {
        return Err(ApiError::invalid(&rt.kind, &rt.group, &name, name_causes));
    }
    if rt.namespaced && !st.namespace_exists(&ns) {
        return Err(ApiError::not_found("namespaces", "", &ns));
    }

    let k = t.key(&name);
    let live: Option<Value> = st.objects.get(&k).map(|s| s.obj.clone());
    let manager = params_manager(p);
    let now = now_rfc3339();
    let api_version = rt.api_version(&t.version);
    let op = Op {
        manager: &manager,
        api_version: &api_version,
        subresource: status_sub.then_some("status"),
        now: &now,
    };
    let mut entries: Vec<Entry> = live.as_ref().map(ssa::parse_managed).unwrap_or_default();
    let live_stripped = live
        .as_ref()
        .map(|l| strip(l, status_sub, rt.status_subresource))
        .unwrap_or_else(|| json!({}));
    let need_live = || ApiError::not_found(&rt.plural, &rt.group, &name);
    let check_rv = |b: &Value| -> Result<(), ApiError> {
        if let (Some(want), Some(l)) = (get_str(b, &["metadata", "resourceVersion"]), live.as_ref())
            && !want.is_empty()
            && Some(want) != get_str(l, &["metadata", "resourceVersion"])
        {
            return Err(ApiError::conflict_modified(&rt.plural, &rt.group, &name));
        }
        Ok(())
    };

    let new_stripped = match w {
        Write::Create(mut b) => {
            if live.is_some() {
                return Err(ApiError::already_exists(&rt.plural, &rt.group, &name));
            }
            prune(&mut b, &mut warnings)?;
            let n = ssa::strip_nulls(&strip(&b, false, rt.status_subresource));
            ssa::field_set(&n, &ty).map_err(ApiError::bad_request)?;
            ssa::update(&json!({}), &n, &mut entries, &op, &ty);
            n
        }
        Write::Replace(mut b) => {
            if live.is_none() {
                return Err(need_live());
            }
            check_rv(&b)?;
            prune(&mut b, &mut warnings)?;
            let n = ssa::strip_nulls(&strip(&b, status_sub, rt.status_subresource));
            ssa::field_set(&n, &ty).map_err(ApiError::bad_request)?;
            ssa::update(&live_stripped, &n, &mut entries, &op, &ty);
            n
        }
        Write::Merge(b) | Write::StrategicMerge(b) if live.is_none() => {
            let _ = b;
            return Err(need_live());
        }
        Write::JsonPatch(_) if live.is_none() => return Err(need_live()),
        Write::Merge(b) => {
            check_rv(&b)?;
            let mut patched = merge_patch(live.as_ref().expect("checked"), &b);
            prune(&mut patched, &mut warnings)?;
            let n = strip(&patched, status_sub, rt.status_subresource);
            ssa::field_set(&n, &ty).map_err(ApiError::bad_request)?;
            ssa::update(&live_stripped, &n, &mut entries, &op, &ty);
            n
        }
        Write::StrategicMerge(b) => {
            check_rv(&b)?;
            let mut patched = ssa::merge(live.as_ref().expect("checked"), &b, &ty)
                .map_err(ApiError::bad_request)?;
            prune(&mut patched, &mut warnings)?;
            let n = strip(&patched, status_sub, rt.status_subresource);
            ssa::update(&live_stripped, &n, &mut entries, &op, &ty);
            n
        }
        Write::JsonPatch(ops) => {
            let mut patched =
                json_patch(live.as_ref().expect("checked"), &ops).map_err(|e| ApiError {
                    code: 422,
                    reason: "Invalid",
                    message: e,
                    details: json!({}),
                })?;
            if !patched.is_object() {
                return Err(ApiError::bad_request("the patched object is not an object"));
            }
            prune(&mut patched, &mut warnings)?;
            let n = ssa::strip_nulls(&strip(&patched, status_sub, rt.status_subresource));
            ssa::field_set(&n, &ty).map_err(ApiError::bad_request)?;
            ssa::update(&live_stripped, &n, &mut entries, &op, &ty);
            n
        }
        Write::Apply(mut cfg) => {
            if p.field_manager.as_deref().is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(
                    "PATCH: fieldManager is required for apply requests",
                ));
            }
            if get(&cfg, &["metadata", "managedFields"]).is_some_and(|m| !m.is_null()) {
                return Err(ApiError::bad_request("metadata.managedFields must be nil"));
            }
            check_rv(&cfg)?;
            prune(&mut cfg, &mut warnings)?;
            let c = strip(&cfg, status_sub, rt.status_subresource);
            match ssa::apply(&live_stripped, &c, &mut entries, &op, p.force, &ty) {
                Ok(v) => v,
                Err(ssa::ApplyError::Invalid(e)) => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        &rt.group,
                        &name,
                        vec![Cause {
                            field: String::new(),
                            reason: "FieldValueInvalid",
                            message: e,
                        }],
                    ));
                }
                Err(ssa::ApplyError::Conflicts(c)) => return Err(conflict_error(&rt, &name, c)),
            }
        }
    };

    // Assemble the candidate: type meta, system metadata, user content, status.
    let mut meta: Map<String, Value> = Map::new();
    meta.insert("name".into(), json!(name));
    if rt.namespaced {
        meta.insert("namespace".into(), json!(ns));
    }
    match &live {
        Some(l) => {
            for f in [
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "generateName",
            ] {
                if let Some(v) = get(l, &["metadata", f]) {
                    meta.insert(f.into(), v.clone());
                }
            }
        }
        None => {
            meta.insert("uid".into(), json!(new_uid()));
            meta.insert("resourceVersion".into(), json!(""));
            meta.insert("generation".into(), json!(1));
            meta.insert("creationTimestamp".into(), json!(now));
            if let Some(g) = &generate_name {
                meta.insert("generateName".into(), json!(g));
            }
        }
    }
    let mut cand = Map::new();
    cand.insert(
        "apiVersion".into(),
        json!(rt.api_version(rt.storage_version())),
    );
    cand.insert("kind".into(), json!(rt.kind));
    cand.insert("metadata".into(), json!({}));
    if status_sub {
        let l = live.as_ref().expect("status writes need a live object");
        let user_meta = l
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k2, v) in user_meta {
            meta.entry(k2).or_insert(v);
        }
        for (k2, v) in l.as_object().into_iter().flatten() {
            if !["apiVersion", "kind", "metadata", "status"].contains(&k2.as_str()) {
                cand.insert(k2.clone(), v.clone());
            }
        }
        if let Some(s) = new_stripped.get("status") {
            cand.insert("status".into(), s.clone());
        }
    } else {
        if let Some(um) = new_stripped.get("metadata").and_then(Value::as_object) {
            for (k2, v) in um {
                meta.insert(k2.clone(), v.clone());
            }
        }
        for (k2, v) in new_stripped.as_object().into_iter().flatten() {
            if k2 != "metadata" {
                cand.insert(k2.clone(), v.clone());
            }
        }
        if rt.status_subresource {
            cand.remove("status");
            if let Some(s) = live.as_ref().and_then(|l| l.get("status")) {
                cand.insert("status".into(), s.clone());
            }
        }
    }
    cand.insert("metadata".into(), Value::Object(meta.clone()));
    let mut cand = Value::Object(cand);

    // Defaulting and admission.
    if !status_sub {
        let default_sc = st.default_storage_class();
        let mut ip_n = st.next_ip;
        let mut port_n = st.next_node_port;
        {
            let mut alloc_ip = || {
                ip_n += 1;
                crate::store::service_ip(ip_n - 1)
            };
            let mut alloc_port = || {
                port_n += 1;
                port_n - 1
            };
            let mut ctx = defaults::Ctx {
                is_create: live.is_none(),
                live: live.as_ref(),
                default_storage_class: default_sc,
                alloc_ip: &mut alloc_ip,
                alloc_node_port: &mut alloc_port,
            };
            defaults::apply(&rt.group, &rt.kind, &mut cand, &mut ctx)
                .map_err(ApiError::bad_request)?;
        }
        if !p.dry_run {
            st.next_ip = ip_n;
            st.next_node_port = port_n;
        }
    }
    if let Some(s) = schema_node {
        schema::apply_defaults(&mut cand, s);
        let causes = schema::validate(&cand, s);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.kind, &rt.group, &name, causes));
        }
    }

    // Validation.
    if !status_sub {
        let mut causes = validate::object(&rt.group, &rt.kind, &cand);
        if let Some(l) = &live {
            causes.extend(validate::update(&rt.group, &rt.kind, l, &cand));
        }
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            causes.extend(validate_crd(&cand, &name));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.kind, &rt.group, &name, causes));
        }
        if rt.is("", "PersistentVolumeClaim")
            && let Some(l) = &live
        {
            pvc_resize_admission(st, l, &cand, &name)?;
        }
    }

    // Generation, managedFields, no-op detection.
    let gen_live = live
        .as_ref()
        .and_then(|l| get(l, &["metadata", "generation"]))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let spec_changed = live.as_ref().is_some_and(|l| {
        without(l, &["metadata", "status", "apiVersion"])
            != without(&cand, &["metadata", "status", "apiVersion"])
    });
    let final_meta = {
        let mut m = cand["metadata"].as_object().cloned().unwrap_or_default();
        if spec_changed {
            m.insert("generation".into(), json!(gen_live + 1));
        }
        ordered_meta(m, &entries)
    };
    cand["metadata"] = Value::Object(final_meta);
    if let Some(l) = &live {
        let old_entries = ssa::parse_managed(l);
        let strip_mf = |v: &Value| {
            let mut v = without(v, &["apiVersion"]);
            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
            v
        };
        if strip_mf(l) == strip_mf(&cand) && ssa::same_ownership(&old_entries, &entries) {
            return Ok(Outcome {
                code: 200,
                body: present(&rt, &t.version, l),
                warnings,
            });
        }
    }
    if !p.dry_run {
        let rv = st.next_rv();
        cand["metadata"]["resourceVersion"] = json!(rv);
    } else if live.is_none()
        && let Some(m) = cand["metadata"].as_object_mut()
    {
        m.remove("resourceVersion");
    }
    if !p.dry_run {
        let gen_bumped = live.is_none() || spec_changed;
        let prev = st.objects.remove(&k);
        let mut stored = Stored {
            obj: cand.clone(),
            ready_due: prev.as_ref().and_then(|s| s.ready_due),
            status_pinned: prev.as_ref().is_some_and(|s| s.status_pinned),
        };
        if gen_bumped && crate::readiness::has_controller(&rt) {
            stored.ready_due = Some(Instant::now() + st.readiness_delay);
            stored.status_pinned = false;
        }
        if status_sub {
            stored.status_pinned = true;
        }
        st.objects.insert(k, stored);
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            st.rebuild_types();
        }
    }
    Ok(Outcome {
        code: if live.is_none() { 201 } else { 200 },
        body: present(&rt, &t.version, &cand),
        warnings,
    })
}

fn conflict_error(
    rt: &ResourceType,
    name: &str,
    c: Vec<(String, String, Vec<String>)>,
) -> ApiError {
    let total: usize = c.iter().map(|(_, _, p)| p.len()).sum();
    let mut causes = Vec::new();
    let mut parts = Vec::new();
    for (mgr, av, paths) in &c {
        for path in paths {
            causes.push(json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {mgr:?} using {av}"),
                "field": path,
            }));
        }
        if paths.len() == 1 {
            parts.push(format!("conflict with {mgr:?} using {av}: {}", paths[0]));
        } else {
            let list: Vec<String> = paths.iter().map(|p| format!("- {p}")).collect();
            parts.push(format!(
                "conflicts with {mgr:?} using {av}:\n{}",
                list.join("\n")
            ));
        }
    }
    let noun = if total == 1 { "conflict" } else { "conflicts" };
    let mut details = json!({"name": name, "kind": rt.plural, "causes": causes});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    ApiError::conflict(
        format!("Apply failed with {total} {noun}: {}", parts.join("\n")),
        details,
    )
}

fn validate_crd(crd: &Value, name: &str) -> Vec<Cause> {
    let plural = get_str(crd, &["spec", "names", "plural"]).unwrap_or("");
    let group = get_str(crd, &["spec", "group"]).unwrap_or("");
    let mut out = Vec::new();
    if name != format!("{plural}.{group}") {
        out.push(Cause::invalid(
            "metadata.name",
            &format!("{name:?}"),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if get_str(crd, &["spec", "names", "kind"]).is_none_or(str::is_empty) {
        out.push(Cause::required("spec.names.kind", ""));
    }
    out
}

fn pvc_resize_admission(st: &State, old: &Value, new: &Value, name: &str) -> Result<(), ApiError> {
    let size =
        |v: &Value| get(v, &["spec", "resources", "requests", "storage"]).and_then(quantity_of);
    let (Some(o), Some(n)) = (size(old), size(new)) else {
        return Ok(());
    };
    if n <= o {
        return Ok(());
    }
    let sc = get_str(new, &["spec", "storageClassName"]).unwrap_or("");
    let expandable = st
        .get("storage.k8s.io", "storageclasses", "", sc)
        .and_then(|c| c.get("allowVolumeExpansion"))
        .and_then(Value::as_bool)
        == Some(true);
    if !expandable {
        return Err(ApiError::forbidden(
            "persistentvolumeclaims",
            "",
            name,
            "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
        ));
    }
    Ok(())
}

/// Deletes one object (cascading to a namespace's contents and to owned objects).
pub fn delete(
    st: &mut State,
    t: &Target,
    p: &Params,
    opts: Option<&Value>,
) -> Result<Outcome, ApiError> {
    let name = t.name.clone().unwrap_or_default();
    if t.sub.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    let k = t.key(&name);
    let Some(live) = st.objects.get(&k).map(|s| s.obj.clone()) else {
        return Err(ApiError::not_found(&t.rt.plural, &t.rt.group, &name));
    };
    if let Some(pre) = opts.and_then(|o| o.get("preconditions")) {
        let uid = get_str(&live, &["metadata", "uid"]).unwrap_or("");
        if let Some(want) = pre.get("uid").and_then(Value::as_str)
            && want != uid
        {
            return Err(ApiError::conflict(
                format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
                json!({"name": name, "kind": t.rt.plural}),
            ));
        }
        let rv = get_str(&live, &["metadata", "resourceVersion"]).unwrap_or("");
        if let Some(want) = pre.get("resourceVersion").and_then(Value::as_str)
            && want != rv
        {
            return Err(ApiError::conflict(
                format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
                ),
                json!({"name": name, "kind": t.rt.plural}),
            ));
        }
    }
    let mut body = present(&t.rt, &t.version, &live);
    if t.rt.is("", "Namespace") {
        body["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        body["status"] = json!({"phase": "Terminating"});
    }
    if p.dry_run {
        return Ok(Outcome {
            code: 200,
            body,
            warnings: Vec::new(),
        });
    }
    let orphan = opts
        .and_then(|o| o.get("propagationPolicy"))
        .and_then(Value::as_str)
        == Some("Orphan");
    if orphan && !t.rt.is("", "Namespace") {
        st.objects.remove(&k);
        st.next_rv();
    } else {
        remove_cascading(st, &k);
    }
    Ok(Outcome {
        code: 200,
        body,
        warnings: Vec::new(),
    })
}

/// Removes an object, everything in it (namespaces), everything it owns, and a CRD's instances.
pub fn remove_cascading(st: &mut State, k: &Key) {
    let Some(gone) = st.objects.remove(k) else {
        return;
    };
    st.next_rv();
    let (g, p, _, name) = k;
    let mut follow: Vec<Key> = Vec::new();
    if g.is_empty() && p == "namespaces" {
        follow.extend(st.objects.keys().filter(|(_, _, n, _)| n == name).cloned());
    }
    if g == "apiextensions.k8s.io"
        && p == "customresourcedefinitions"
        && let Some(rt) = crate::registry::from_crd(&gone.obj)
    {
        follow.extend(
            st.objects
                .keys()
                .filter(|(g2, p2, _, _)| *g2 == rt.group && *p2 == rt.plural)
                .cloned(),
        );
    }
    if let Some(uid) = get_str(&gone.obj, &["metadata", "uid"]) {
        for (k2, s) in &st.objects {
            let owned = get(&s.obj, &["metadata", "ownerReferences"])
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                });
            if owned {
                follow.push(k2.clone());
            }
        }
    }
    for k2 in follow {
        remove_cascading(st, &k2);
    }
    if g == "apiextensions.k8s.io" {
        st.rebuild_types();
    }
}

/// DELETE on a collection: deletes every matching object, returns them as a list.
pub fn delete_collection(
    st: &mut State,
    t: &Target,
    p: &Params,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Value, ApiError> {
    let listed = list(st, t, label_selector, field_selector)?;
    if !p.dry_run {
        for item in listed["items"].as_array().into_iter().flatten() {
            let name = get_str(item, &["metadata", "name"]).unwrap_or("");
            let ns = get_str(item, &["metadata", "namespace"]).unwrap_or("");
            remove_cascading(st, &key(&t.rt.group, &t.rt.plural, ns, name));
        }
    }
    Ok(listed)
}

/// A write by a simulated controller (manager `manager`, Update operation), bypassing validation.
pub fn controller_write(
    st: &mut State,
    k: &Key,
    manager: &str,
    status: bool,
    f: impl FnOnce(&mut Value),
) {
    let Some(stored) = st.objects.get(k) else {
        return;
    };
    let old = stored.obj.clone();
    let mut new = old.clone();
    f(&mut new);
    if new == old {
        return;
    }
    let rt = st.find_kind(&k.0, old.get("kind").and_then(Value::as_str).unwrap_or(""));
    let has_status = rt.as_ref().is_some_and(|r| r.status_subresource);
    let schema_node = rt.as_ref().and_then(|r| r.schema(r.storage_version()));
    let ty = match schema_node {
        Some(s) => Ty::crd_root(s),
        None => Ty::builtin_root(),
    };
    let now = now_rfc3339();
    let av = old
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1")
        .to_string();
    let op = Op {
        manager,
        api_version: &av,
        subresource: status.then_some("status"),
        now: &now,
    };
    let mut entries = ssa::parse_managed(&old);
    ssa::update(
        &strip(&old, status, has_status),
        &strip(&new, status, has_status),
        &mut entries,
        &op,
        &ty,
    );
    let meta = new["metadata"].as_object().cloned().unwrap_or_default();
    new["metadata"] = Value::Object(ordered_meta(meta, &entries));
    let rv = st.next_rv();
    new["metadata"]["resourceVersion"] = json!(rv);
    if let Some(s) = st.objects.get_mut(k) {
        s.obj = new;
    }
}

/// Creates an object on behalf of a simulated controller; returns its stored form.
pub fn controller_create(
    st: &mut State,
    group: &str,
    version: &str,
    plural: &str,
    ns: &str,
    obj: Value,
    manager: &str,
) -> Option<Value> {
    let rt = st.find_type(group, version, plural)?;
    let t = Target {
        rt,
        version: version.into(),
        namespace: (!ns.is_empty()).then(|| ns.to_string()),
        name: None,
        sub: None,
    };
    let p = Params {
        field_manager: Some(manager.into()),
        default_manager: manager.into(),
        field_validation: "Ignore".into(),
        ..Params::default()
    };
    write(st, &t, Write::Create(obj), &p).ok().map(|o| o.body)
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
