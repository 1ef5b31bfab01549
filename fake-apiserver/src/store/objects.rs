//! The store-level object API that every writer shares, the REST verbs and the simulated controllers
//! alike: how an object is presented at a version, which part of it field managers own, how a candidate
//! is assembled from live system metadata plus new content, finished (generation, ordered metadata,
//! managedFields, no-op detection) and committed (resourceVersion, readiness schedule); plus the
//! controllers' own create and update paths, deletion as the API server runs it (finalizers hold
//! an object with a `deletionTimestamp`; the write that removes the last one removes it) and
//! cascading removal.
//!
//! The verbs (`ops`) and the controllers (`controllers`) both build on this module; neither imports the
//! other, so there is no import circle between them.

use crate::store::admission;
use crate::store::registry::ResourceType;
use crate::store::schema::{self, Ty};
use crate::store::ssa::{self, Entry, Op};
use crate::store::validate;
use crate::store::{Key, State, Stored, key};
use crate::util::{get, get_str, new_uid, now_rfc3339, rand_suffix};
use serde_json::{Map, Value, json};
use std::time::Instant;

/// The object as served at `version` (no conversion beyond the apiVersion field).
pub fn present(rt: &ResourceType, version: &str, obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".into(), json!(rt.api_version(version)));
    }
    o
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

/// Whether objects `a` and `b` are equal apart from their top-level `keys`, without copying
/// either (every write compares the candidate with the stored object this way).
fn eq_except(a: &Value, b: &Value, keys: &[&str]) -> bool {
    let empty = Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    let kept = |m: &Map<String, Value>| m.keys().filter(|k| !keys.contains(&k.as_str())).count();
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !keys.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// The field-ownership type of a kind: its CRD schema at the storage version, or the built-in rules.
pub fn ty_of(rt: &ResourceType) -> Ty<'_> {
    match rt.schema(rt.storage_version()) {
        Some(s) => Ty::crd_root(s),
        None => Ty::builtin_root(),
    }
}

/// Where a write lands and what it starts from.
pub struct Slot<'a> {
    pub rt: &'a ResourceType,
    pub name: &'a str,
    /// The namespace ("" for cluster-scoped kinds).
    pub ns: &'a str,
    pub live: Option<&'a Value>,
    /// The write addresses the status subresource.
    pub status_sub: bool,
}

/// Assembles the candidate object: type meta, system metadata (kept from the live object, or fresh for a
/// create), the new user content (`content`, as returned by [`strip`]) and the status.
pub fn assemble(s: &Slot, content: &Value, generate_name: Option<&str>, now: &str) -> Value {
    let rt = s.rt;
    let mut meta: Map<String, Value> = Map::new();
    meta.insert("name".into(), json!(s.name));
    if rt.namespaced {
        meta.insert("namespace".into(), json!(s.ns));
    }
    match s.live {
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
            if let Some(g) = generate_name {
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
    if s.status_sub {
        let l = s.live.expect("status writes need a live object");
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
        if let Some(st) = content.get("status") {
            cand.insert("status".into(), st.clone());
        }
    } else {
        if let Some(um) = content.get("metadata").and_then(Value::as_object) {
            for (k2, v) in um {
                meta.insert(k2.clone(), v.clone());
            }
        }
        for (k2, v) in content.as_object().into_iter().flatten() {
            if k2 != "metadata" {
                cand.insert(k2.clone(), v.clone());
            }
        }
        if rt.status_subresource {
            cand.remove("status");
            if let Some(st) = s.live.and_then(|l| l.get("status")) {
                cand.insert("status".into(), st.clone());
            }
        }
    }
    cand.insert("metadata".into(), Value::Object(meta));
    Value::Object(cand)
}

/// What [`finish`] found.
pub struct Finished {
    /// Anything but metadata, status and apiVersion changed: the generation was bumped.
    pub spec_changed: bool,
    /// The write changes neither the object nor its field ownership.
    pub noop: bool,
}

/// Bumps the generation on a spec change, orders the metadata and renders managedFields, then compares
/// with the live object.
pub fn finish(live: Option<&Value>, cand: &mut Value, entries: &[Entry]) -> Finished {
    let gen_live = live
        .and_then(|l| get(l, &["metadata", "generation"]))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let spec_changed =
        live.is_some_and(|l| !eq_except(l, cand, &["metadata", "status", "apiVersion"]));
    let mut m = cand["metadata"].as_object().cloned().unwrap_or_default();
    if spec_changed {
        m.insert("generation".into(), json!(gen_live + 1));
    }
    cand["metadata"] = Value::Object(ordered_meta(m, entries));
    let noop = live.is_some_and(|l| {
        fn meta(v: &Value) -> &Value {
            v.get("metadata").unwrap_or(&Value::Null)
        }
        eq_except(l, cand, &["apiVersion", "metadata"])
            && eq_except(meta(l), meta(cand), &["managedFields"])
            && ssa::same_ownership(&ssa::parse_managed(l), entries)
    });
    Finished { spec_changed, noop }
}

/// Stores a finished candidate under `k` (or, in a dry run, only shapes it as the stored form would be):
/// assigns the resourceVersion and schedules the simulated controller when the generation moved.
pub fn commit(
    st: &mut State,
    s: &Slot,
    k: Key,
    cand: &mut Value,
    spec_changed: bool,
    dry_run: bool,
) {
    if dry_run {
        if s.live.is_none()
            && let Some(m) = cand["metadata"].as_object_mut()
        {
            m.remove("resourceVersion");
        }
        return;
    }
    let rv = st.next_rv();
    cand["metadata"]["resourceVersion"] = json!(rv);
    let gen_bumped = s.live.is_none() || spec_changed;
    let prev = st.objects.remove(&k);
    let mut stored = Stored {
        obj: cand.clone(),
        ready_due: prev.as_ref().and_then(|p| p.ready_due),
        status_pinned: prev.as_ref().is_some_and(|p| p.status_pinned),
    };
    if gen_bumped && s.rt.has_controller() {
        stored.ready_due = Some(Instant::now() + st.readiness_delay);
        stored.status_pinned = false;
    }
    if s.status_sub {
        stored.status_pinned = true;
    }
    st.objects.insert(k.clone(), stored);
    if s.rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
        st.rebuild_types();
    }
    remove_if_finalized(st, &k);
}

impl<'a> Slot<'a> {
    /// What admission needs to know about this write.
    pub fn subject(&self) -> admission::Subject<'a> {
        admission::Subject {
            rt: self.rt,
            name: self.name,
            live: self.live,
            status_sub: self.status_sub,
        }
    }
}

/// Creates an object on behalf of a simulated controller or the server itself (manager `manager`, Update
/// operation), through the same defaulting and validation as a client's create; returns its stored form,
/// or `None` when the kind is unknown or the object is refused.
pub fn create_by(
    st: &mut State,
    group: &str,
    version: &str,
    plural: &str,
    ns: &str,
    mut obj: Value,
    manager: &str,
) -> Option<Value> {
    let rt = st.find_type(group, version, plural)?;
    // A real controller's create in a namespace being deleted is refused (403) too.
    if rt.namespaced && (ns.is_empty() || !st.namespace_exists(ns) || st.namespace_terminating(ns))
    {
        return None;
    }
    let (name, generate_name) = match get_str(&obj, &["metadata", "name"]).filter(|n| !n.is_empty())
    {
        Some(n) => (n.to_string(), None),
        None => {
            let g = get_str(&obj, &["metadata", "generateName"]).filter(|g| !g.is_empty())?;
            (format!("{g}{}", rand_suffix(5)), Some(g.to_string()))
        }
    };
    if !validate::name(&rt.group, &rt.kind, &name).is_empty() {
        return None;
    }
    let k = key(&rt.group, &rt.plural, ns, &name);
    if st.objects.contains_key(&k) {
        return None;
    }
    if let Some(s) = rt.schema(rt.storage_version()) {
        schema::prune(&mut obj, s);
    }
    let ty = ty_of(&rt);
    let content = ssa::strip_nulls(&strip(&obj, false, rt.status_subresource));
    ssa::field_set(&content, &ty).ok()?;
    let now = now_rfc3339();
    let api_version = rt.api_version(version);
    let op = Op {
        manager,
        api_version: &api_version,
        subresource: None,
        now: &now,
    };
    let mut entries = Vec::new();
    ssa::update(&json!({}), &content, &mut entries, &op, &ty);
    let slot = Slot {
        rt: &rt,
        name: &name,
        ns,
        live: None,
        status_sub: false,
    };
    let mut cand = assemble(&slot, &content, generate_name.as_deref(), &now);
    admission::admit(st, &slot.subject(), &mut cand, false).ok()?;
    let fin = finish(None, &mut cand, &entries);
    commit(st, &slot, k, &mut cand, fin.spec_changed, false);
    Some(present(&rt, version, &cand))
}

/// A write by a simulated controller (manager `manager`, Update operation), bypassing validation.
pub fn update_by(st: &mut State, k: &Key, manager: &str, status: bool, f: impl FnOnce(&mut Value)) {
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
    let ty = rt.as_ref().map(ty_of).unwrap_or_else(Ty::builtin_root);
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
    remove_if_finalized(st, k);
}

/// Whether finalizers hold an object: `metadata.finalizers`, and a namespace's
/// `spec.finalizers` (`kubernetes`, which the namespace controller removes once it is empty).
pub fn has_finalizers(obj: &Value) -> bool {
    let any = |path: &[&str]| {
        get(obj, path)
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
    };
    any(&["metadata", "finalizers"])
        || (obj.get("kind").and_then(Value::as_str) == Some("Namespace")
            && any(&["spec", "finalizers"]))
}

/// A delete as the API server runs it for a controller or the garbage collector (background
/// propagation): an object with finalizers only gets a `deletionTimestamp` and stays until
/// they are gone; any other is removed with what it owns.
pub fn delete_by(st: &mut State, k: &Key) {
    let Some(obj) = st.objects.get(k).map(|s| &s.obj) else {
        return;
    };
    if !has_finalizers(obj) {
        remove_cascading(st, k);
        return;
    }
    if get(obj, &["metadata", "deletionTimestamp"]).is_none() {
        let now = now_rfc3339();
        update_by(st, k, "kube-apiserver", false, |o| {
            o["metadata"]["deletionTimestamp"] = json!(now);
            o["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        });
    }
}

/// An object being deleted whose last finalizer a write just removed goes, as on a real API
/// server.
fn remove_if_finalized(st: &mut State, k: &Key) {
    if st.objects.get(k).is_some_and(|s| {
        get(&s.obj, &["metadata", "deletionTimestamp"]).is_some() && !has_finalizers(&s.obj)
    }) {
        remove_cascading(st, k);
    }
}

/// Removes an object, everything in it (namespaces), and a CRD's instances; the objects it
/// owns are deleted as the garbage collector does ([`delete_by`]: their finalizers hold them).
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
        && let Some(rt) = crate::store::registry::from_crd(&gone.obj)
    {
        follow.extend(
            st.objects
                .keys()
                .filter(|(g2, p2, _, _)| *g2 == rt.group && *p2 == rt.plural)
                .cloned(),
        );
    }
    let mut owned: Vec<Key> = Vec::new();
    if let Some(uid) = get_str(&gone.obj, &["metadata", "uid"]) {
        for (k2, s) in &st.objects {
            let is_owned = get(&s.obj, &["metadata", "ownerReferences"])
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                });
            if is_owned && !follow.contains(k2) {
                owned.push(k2.clone());
            }
        }
    }
    for k2 in follow {
        remove_cascading(st, &k2);
    }
    for k2 in owned {
        delete_by(st, &k2);
    }
    if g == "apiextensions.k8s.io" {
        st.rebuild_types();
    }
}
