//! Server-side apply: field sets in `fieldsV1` form, merging by list type, comparing, pruning fields a manager
//! stopped sending, and the managedFields bookkeeping for Apply and Update operations.

use crate::store::schema::{ListKind, Ty};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A set of field paths. Keys of `children` are encoded path elements (`f:name`, `k:{"name":"x"}`, `v:"x"`);
/// `member` says the path itself is in the set (rendered as `".": {}` when it also has children).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    pub member: bool,
    pub children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn leaf() -> FieldSet {
        FieldSet {
            member: true,
            children: BTreeMap::new(),
        }
    }
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }
    pub fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, c) in &other.children {
            self.children.entry(k.clone()).or_default().union_with(c);
        }
    }
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// The `fieldsV1` JSON of a root set.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_json());
        }
        Value::Object(m)
    }

    /// Whether `self` and `other` render the same `fieldsV1` ([`FieldSet::to_json`]): the
    /// same children, and the `"."` member marker only where there are children.
    pub fn renders_as(&self, other: &FieldSet) -> bool {
        let marked = |s: &FieldSet| s.member && !s.children.is_empty();
        marked(self) == marked(other)
            && self.children.len() == other.children.len()
            && self
                .children
                .iter()
                .zip(&other.children)
                .all(|((ka, a), (kb, b))| ka == kb && a.renders_as(b))
    }

    pub fn from_json(v: &Value) -> Result<FieldSet, String> {
        let m = v.as_object().ok_or("fieldsV1 must be an object")?;
        let mut out = FieldSet::default();
        for (k, c) in m {
            if k == "." {
                out.member = true;
                continue;
            }
            let mut child = FieldSet::from_json(c)?;
            if c.as_object().is_some_and(Map::is_empty) {
                child.member = true;
            }
            out.children.insert(k.clone(), child);
        }
        Ok(out)
    }

    /// Human-readable paths of the members, as in conflict messages (`.spec.containers[name="redis"].image`).
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_paths(String::new(), &mut out);
        out
    }
    fn collect_paths(&self, prefix: String, out: &mut Vec<String>) {
        if self.member && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            c.collect_paths(format!("{prefix}{}", pe_display(k)), out);
        }
    }
}

fn pe_display(pe: &str) -> String {
    if let Some(f) = pe.strip_prefix("f:") {
        format!(".{f}")
    } else if let Some(k) = pe.strip_prefix("k:") {
        match serde_json::from_str::<Map<String, Value>>(k) {
            Ok(m) => {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            Err(_) => format!("[{k}]"),
        }
    } else if let Some(v) = pe.strip_prefix("v:") {
        format!("[={v}]")
    } else if let Some(i) = pe.strip_prefix("i:") {
        format!("[{i}]")
    } else {
        pe.to_string()
    }
}

/// The path element of a list item for an associative (`Map`) or `Set` list.
fn item_pe(item: &Value, kind: &ListKind, list_ty: &Ty) -> Result<String, String> {
    match kind {
        ListKind::Map(keys) => {
            let obj = item
                .as_object()
                .ok_or("associative list item is not an object")?;
            let mut key = BTreeMap::new();
            for k in keys {
                let val = match obj.get(k) {
                    Some(v) => v.clone(),
                    None => list_ty.key_default(k).ok_or_else(|| {
                        format!("associative list with keys has an element that omits key field {k:?} (and doesn't have default value)")
                    })?,
                };
                key.insert(k.clone(), val);
            }
            Ok(format!(
                "k:{}",
                serde_json::to_string(&key).map_err(|e| e.to_string())?
            ))
        }
        ListKind::Set => Ok(format!(
            "v:{}",
            serde_json::to_string(item).map_err(|e| e.to_string())?
        )),
        ListKind::Atomic => Err("atomic lists have no item keys".into()),
    }
}

/// Path elements of every item; live data that cannot be keyed falls back to positional elements.
fn item_pes(
    items: &[Value],
    kind: &ListKind,
    ty: &Ty,
    lenient: bool,
) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for (i, it) in items.iter().enumerate() {
        let pe = match item_pe(it, kind, ty) {
            Ok(pe) => pe,
            Err(_) if lenient => format!("i:{i}"),
            Err(e) => return Err(e),
        };
        if !seen.insert(pe.clone()) {
            if lenient {
                out.push(format!("i:{i}"));
                continue;
            }
            return Err(format!(
                "duplicate entries for key {}",
                pe_display(&pe)
                    .trim_start_matches('[')
                    .trim_end_matches(']')
            ));
        }
        out.push(pe);
    }
    Ok(out)
}

/// The field set of a value: leaves, empty maps and atomic lists are members; items of associative lists
/// are members with their fields below them.
pub fn field_set(v: &Value, ty: &Ty) -> Result<FieldSet, String> {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut out = FieldSet::default();
            for (k, c) in m {
                out.children
                    .insert(format!("f:{k}"), field_set(c, &ty.field(k))?);
            }
            Ok(out)
        }
        Value::Array(items) if !items.is_empty() => {
            let kind = ty.list_kind();
            if kind == ListKind::Atomic {
                return Ok(FieldSet::leaf());
            }
            let pes = item_pes(items, &kind, ty, false)?;
            let item_ty = ty.items();
            let mut out = FieldSet::default();
            for (pe, it) in pes.into_iter().zip(items) {
                let mut child = if kind == ListKind::Set {
                    FieldSet::default()
                } else {
                    field_set(it, &item_ty)?
                };
                child.member = true;
                out.children.insert(pe, child);
            }
            Ok(out)
        }
        _ => Ok(FieldSet::leaf()),
    }
}

/// Drops nulls (a null in an applied configuration or patch means "absent").
pub fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, c)| !c.is_null())
                .map(|(k, c)| (k.clone(), strip_nulls(c)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Merges an applied configuration into the live value: maps field by field, associative lists by key
/// (live-only items stay in place, configured items follow the configuration's order), the rest replaced.
pub fn merge(live: &Value, cfg: &Value, ty: &Ty) -> Result<Value, String> {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) => {
            // `l` copied, except the values `c` replaces or removes: those take a placeholder
            // in their place (the same order as a whole copy), and the loop below fills or
            // removes it exactly as it would the copy. Copying them too cost a copy of each
            // subtree for every level above it.
            let mut out = Map::with_capacity(l.len());
            for (k, lv) in l {
                let v = if c.contains_key(k) {
                    Value::Null
                } else {
                    lv.clone()
                };
                out.insert(k.clone(), v);
            }
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let nv = match l.get(k) {
                    Some(lv) => merge(lv, cv, &ty.field(k))?,
                    None => {
                        // Validate keys of new lists too.
                        field_set(cv, &ty.field(k))?;
                        strip_nulls(cv)
                    }
                };
                out.insert(k.clone(), nv);
            }
            Ok(Value::Object(out))
        }
        (Value::Array(l), Value::Array(c)) => {
            let kind = ty.list_kind();
            if kind == ListKind::Atomic {
                return Ok(strip_nulls(cfg));
            }
            let lpes = item_pes(l, &kind, ty, true)?;
            let cpes = item_pes(c, &kind, ty, false)?;
            let lmap: HashMap<&str, usize> = lpes
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i))
                .collect();
            let cset: HashSet<&str> = cpes.iter().map(String::as_str).collect();
            let item_ty = ty.items();
            let mut out = Vec::with_capacity(l.len().max(c.len()));
            let mut emitted: HashSet<&str> = HashSet::new();
            let mut ri = 0;
            let emit = |ci: usize, out: &mut Vec<Value>| -> Result<(), String> {
                let item = match lmap.get(cpes[ci].as_str()) {
                    Some(&li) if kind != ListKind::Set => merge(&l[li], &c[ci], &item_ty)?,
                    _ => strip_nulls(&c[ci]),
                };
                out.push(item);
                Ok(())
            };
            for (li, lk) in lpes.iter().enumerate() {
                if !cset.contains(lk.as_str()) {
                    out.push(l[li].clone());
                    continue;
                }
                while ri < c.len() {
                    let ck = cpes[ri].as_str();
                    ri += 1;
                    if !emitted.insert(ck) {
                        continue;
                    }
                    emit(ri - 1, &mut out)?;
                    if ck == lk {
                        break;
                    }
                }
            }
            while ri < c.len() {
                let ck = cpes[ri].as_str();
                ri += 1;
                if emitted.insert(ck) {
                    emit(ri - 1, &mut out)?;
                }
            }
            Ok(Value::Array(out))
        }
        _ => {
            field_set(cfg, ty)?;
            Ok(strip_nulls(cfg))
        }
    }
}

/// Fields added, modified and removed between two values.
#[derive(Debug, Default)]
pub struct Diff {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Diff {
    fn insert(&mut self, pe: String, d: Diff) {
        if !d.added.is_empty() {
            self.added.children.insert(pe.clone(), d.added);
        }
        if !d.modified.is_empty() {
            self.modified.children.insert(pe.clone(), d.modified);
        }
        if !d.removed.is_empty() {
            self.removed.children.insert(pe, d.removed);
        }
    }
    pub fn changed(&self) -> FieldSet {
        let mut s = self.added.clone();
        s.union_with(&self.modified);
        s
    }
}

/// The fields of a value added or removed as a whole (maps are not members themselves, like in an apply).
fn whole(v: &Value, ty: &Ty) -> FieldSet {
    field_set(v, ty).unwrap_or_else(|_| FieldSet::leaf())
}

pub fn compare(old: &Value, new: &Value, ty: &Ty) -> Diff {
    let mut d = Diff::default();
    // Nothing differs under equal values: most of an apply's subtrees, and all of a no-op's.
    if old == new {
        return d;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            if o.is_empty() != n.is_empty() {
                d.modified.member = true;
            }
            for (k, ov) in o {
                let cty = ty.field(k);
                match n.get(k) {
                    None => {
                        d.removed.children.insert(format!("f:{k}"), whole(ov, &cty));
                    }
                    Some(nv) => d.insert(format!("f:{k}"), compare(ov, nv, &cty)),
                }
            }
            for (k, nv) in n {
                if !o.contains_key(k) {
                    d.added
                        .children
                        .insert(format!("f:{k}"), whole(nv, &ty.field(k)));
                }
            }
        }
        (Value::Array(o), Value::Array(n)) if ty.list_kind() != ListKind::Atomic => {
            if o.is_empty() != n.is_empty() {
                d.modified.member = true;
            }
            let kind = ty.list_kind();
            let (Ok(opes), Ok(npes)) = (item_pes(o, &kind, ty, true), item_pes(n, &kind, ty, true))
            else {
                if old != new {
                    d.modified.member = true;
                }
                return d;
            };
            let item_ty = ty.items();
            let nmap: HashMap<&str, usize> = npes
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i))
                .collect();
            let omap: HashMap<&str, usize> = opes
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i))
                .collect();
            for (oi, pe) in opes.iter().enumerate() {
                match nmap.get(pe.as_str()) {
                    None => {
                        let mut w = whole(&o[oi], &item_ty);
                        w.member = true;
                        d.removed.children.insert(pe.clone(), w);
                    }
                    Some(&ni) => {
                        if kind != ListKind::Set {
                            d.insert(pe.clone(), compare(&o[oi], &n[ni], &item_ty));
                        }
                    }
                }
            }
            for (ni, pe) in npes.iter().enumerate() {
                if !omap.contains_key(pe.as_str()) {
                    let mut w = whole(&n[ni], &item_ty);
                    w.member = true;
                    d.added.children.insert(pe.clone(), w);
                }
            }
        }
        _ => {
            if old != new {
                d.modified.member = true;
            }
        }
    }
    d
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Removes from `v` the fields in `remove` that nobody in `keep` still owns (nor owns anything under).
/// Containers emptied by the removal are dropped too.
pub fn prune(v: &mut Value, remove: &FieldSet, keep: &FieldSet, ty: &Ty) {
    prune_inner(v, remove, keep, ty, &[]);
}

fn prune_inner(v: &mut Value, remove: &FieldSet, keep: &FieldSet, ty: &Ty, protect: &[String]) {
    let empty = FieldSet::default();
    match v {
        Value::Object(m) => {
            for (pe, rchild) in &remove.children {
                let Some(name) = pe.strip_prefix("f:") else {
                    continue;
                };
                if protect.iter().any(|p| p == name) {
                    continue;
                }
                let kchild = keep.children.get(pe);
                if rchild.member && kchild.is_none_or(FieldSet::is_empty) {
                    m.remove(name);
                } else if let Some(cv) = m.get_mut(name) {
                    let was_empty = is_empty_container(cv);
                    prune_inner(cv, rchild, kchild.unwrap_or(&empty), &ty.field(name), &[]);
                    if !was_empty && is_empty_container(cv) {
                        m.remove(name);
                    }
                }
            }
        }
        Value::Array(items) => {
            let kind = ty.list_kind();
            if kind == ListKind::Atomic {
                return;
            }
            let Ok(pes) = item_pes(items, &kind, ty, true) else {
                return;
            };
            let item_ty = ty.items();
            let key_fields: Vec<String> = match &kind {
                ListKind::Map(k) => k.clone(),
                _ => Vec::new(),
            };
            let mut drop = vec![false; items.len()];
            for (i, pe) in pes.iter().enumerate() {
                let Some(rchild) = remove.children.get(pe) else {
                    continue;
                };
                let kchild = keep.children.get(pe);
                if rchild.member && kchild.is_none_or(FieldSet::is_empty) {
                    drop[i] = true;
                } else {
                    prune_inner(
                        &mut items[i],
                        rchild,
                        kchild.unwrap_or(&empty),
                        &item_ty,
                        &key_fields,
                    );
                }
            }
            let mut i = 0;
            items.retain(|_| {
                i += 1;
                !drop[i - 1]
            });
        }
        _ => {}
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub set: FieldSet,
}

impl Entry {
    fn same_slot(&self, manager: &str, operation: &str, sub: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == sub
    }
}

pub fn parse_managed(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            Some(Entry {
                manager: e.get("manager")?.as_str()?.to_string(),
                operation: e.get("operation")?.as_str()?.to_string(),
                api_version: e
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
                time: e.get("time").and_then(Value::as_str).unwrap_or("").into(),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(String::from),
                set: FieldSet::from_json(e.get("fieldsV1")?).ok()?,
            })
        })
        .collect()
}

pub fn render_managed(entries: &[Entry]) -> Value {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.operation != "Apply");
    Value::Array(
        sorted
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("manager".into(), json!(e.manager));
                m.insert("operation".into(), json!(e.operation));
                m.insert("apiVersion".into(), json!(e.api_version));
                m.insert("time".into(), json!(e.time));
                m.insert("fieldsType".into(), json!("FieldsV1"));
                m.insert("fieldsV1".into(), e.set.to_json());
                if let Some(s) = &e.subresource {
                    m.insert("subresource".into(), json!(s));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// Managed sets equal, ignoring timestamps: the same entries, in any order, whose sets render
/// the same `fieldsV1`.
pub fn same_ownership(a: &[Entry], b: &[Entry]) -> bool {
    fn slot(e: &Entry) -> (&str, &str, Option<&str>, &str) {
        (
            &e.manager,
            &e.operation,
            e.subresource.as_deref(),
            &e.api_version,
        )
    }
    if a.len() != b.len() {
        return false;
    }
    let mut sa: Vec<&Entry> = a.iter().collect();
    let mut sb: Vec<&Entry> = b.iter().collect();
    sa.sort_by(|x, y| slot(x).cmp(&slot(y)));
    sb.sort_by(|x, y| slot(x).cmp(&slot(y)));
    // Two entries of one slot in a list would make the pairing below depend on their order;
    // managers own one entry a slot, but compare such lists by rendering, the safe way.
    let unique = |s: &[&Entry]| s.windows(2).all(|w| slot(w[0]) != slot(w[1]));
    if !unique(&sa) || !unique(&sb) {
        fn key<'a>(e: &&'a Entry) -> ((&'a str, &'a str, Option<&'a str>, &'a str), String) {
            (slot(e), e.set.to_json().to_string())
        }
        let mut ka: Vec<_> = sa.iter().map(key).collect();
        let mut kb: Vec<_> = sb.iter().map(key).collect();
        ka.sort();
        kb.sort();
        return ka == kb;
    }
    sa.iter()
        .zip(&sb)
        .all(|(x, y)| slot(x) == slot(y) && x.set.renders_as(&y.set))
}

#[derive(Debug)]
pub enum ApplyError {
    /// (manager, apiVersion, conflicting paths)
    Conflicts(Vec<(String, String, Vec<String>)>),
    Invalid(String),
}

pub struct Op<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    pub now: &'a str,
}

/// Applies `cfg` (stripped of system fields) to `live` (likewise stripped). Updates `entries` and returns the
/// new stripped object.
pub fn apply(
    live: &Value,
    cfg: &Value,
    entries: &mut Vec<Entry>,
    op: &Op,
    force: bool,
    ty: &Ty,
) -> Result<Value, ApplyError> {
    let mut cfg_set = field_set(cfg, ty).map_err(ApplyError::Invalid)?;
    cfg_set.member = false;
    let mut merged = merge(live, cfg, ty).map_err(ApplyError::Invalid)?;
    let me = |e: &Entry| e.same_slot(op.manager, "Apply", op.subresource);
    let last = entries.iter().find(|e| me(e)).map(|e| e.set.clone());
    if let Some(last) = last {
        let mut keep = cfg_set.clone();
        for e in entries.iter().filter(|e| !me(e)) {
            keep.union_with(&e.set);
        }
        let remove = last.difference(&cfg_set);
        prune(&mut merged, &remove, &keep, ty);
    }
    let diff = compare(live, &merged, ty);
    let changed = diff.changed();
    let mut conflicts = Vec::new();
    for e in entries.iter_mut().filter(|e| !me(e)) {
        let c = e.set.intersection(&changed);
        if !c.is_empty() && e.manager != op.manager {
            conflicts.push((e.manager.clone(), e.api_version.clone(), c.paths()));
        }
        if force || e.manager == op.manager {
            e.set = e.set.difference(&c);
        }
        e.set = e.set.difference(&diff.removed);
    }
    if !conflicts.is_empty() && !force {
        return Err(ApplyError::Conflicts(conflicts));
    }
    match entries.iter_mut().find(|e| me(e)) {
        Some(e) => {
            if e.set != cfg_set || e.api_version != op.api_version {
                e.time = op.now.to_string();
            }
            e.set = cfg_set;
            e.api_version = op.api_version.to_string();
        }
        None => entries.push(Entry {
            manager: op.manager.into(),
            operation: "Apply".into(),
            api_version: op.api_version.into(),
            time: op.now.into(),
            subresource: op.subresource.map(String::from),
            set: cfg_set,
        }),
    }
    for e in entries.iter_mut() {
        e.set.member = false;
    }
    entries.retain(|e| !e.set.is_empty());
    Ok(merged)
}

/// Records a non-apply write (create, update, patch): the writer takes ownership of what it changed.
pub fn update(live: &Value, new: &Value, entries: &mut Vec<Entry>, op: &Op, ty: &Ty) {
    let diff = compare(live, new, ty);
    let changed = diff.changed();
    let me = |e: &Entry| e.same_slot(op.manager, "Update", op.subresource);
    for e in entries.iter_mut().filter(|e| !me(e)) {
        e.set = e.set.difference(&changed).difference(&diff.removed);
    }
    let idx = match entries.iter().position(me) {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: op.manager.into(),
                operation: "Update".into(),
                api_version: op.api_version.into(),
                time: op.now.into(),
                subresource: op.subresource.map(String::from),
                set: FieldSet::default(),
            });
            entries.len() - 1
        }
    };
    let e = &mut entries[idx];
    let mut set = e.set.difference(&diff.removed);
    set.union_with(&changed);
    if set != e.set {
        e.time = op.now.to_string();
    }
    set.member = false;
    e.set = set;
    e.api_version = op.api_version.to_string();
    for e in entries.iter_mut() {
        e.set.member = false;
    }
    entries.retain(|e| !e.set.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `renders_as` and `same_ownership` agree with comparing the rendered `fieldsV1` text,
    /// which is what they replace.
    #[test]
    fn ownership_compares_as_the_rendered_field_sets_do() {
        let sets: Vec<FieldSet> = [
            json!({}),
            json!({"f:a": {}}),
            json!({"f:a": {}, "f:b": {}}),
            json!({"f:a": {".": {}, "f:x": {}}}),
            json!({"f:a": {"f:x": {}}}),
            json!({"f:a": {"k:{\"name\":\"r\"}": {".": {}, "f:image": {}}}}),
            json!({"f:a": {"k:{\"name\":\"r\"}": {"f:image": {}}}}),
        ]
        .iter()
        .map(|v| FieldSet::from_json(v).unwrap())
        .collect();
        // Childless sets render `{}` whether or not they are members.
        let mut unmarked = FieldSet::from_json(&json!({"f:a": {}})).unwrap();
        unmarked.children.get_mut("f:a").unwrap().member = false;
        let all: Vec<FieldSet> = sets.into_iter().chain([unmarked]).collect();
        let entry = |m: &str, set: &FieldSet| Entry {
            manager: m.into(),
            operation: "Apply".into(),
            api_version: "v1".into(),
            time: "t".into(),
            subresource: None,
            set: set.clone(),
        };
        for x in &all {
            for y in &all {
                // As text: `Value` equality would ignore the order of keys.
                let (tx, ty) = (x.to_json().to_string(), y.to_json().to_string());
                let text = tx == ty;
                assert_eq!(x.renders_as(y), text, "{x:?} / {y:?}");
                let a = [entry("m", x), entry("n", y)];
                let b = [entry("n", y), entry("m", x)];
                assert!(same_ownership(&a, &b));
                assert_eq!(same_ownership(&[entry("m", x)], &[entry("m", y)]), text);
            }
        }
        // Two entries of one slot fall back to comparing the rendered text.
        let twice = [entry("m", &all[1]), entry("m", &all[2])];
        let swapped = [entry("m", &all[2]), entry("m", &all[1])];
        assert!(same_ownership(&twice, &swapped));
        assert!(!same_ownership(
            &twice,
            &[entry("m", &all[1]), entry("m", &all[1])]
        ));
    }

    fn b() -> Ty<'static> {
        Ty::builtin_root()
    }

    #[test]
    fn field_set_shape() {
        let v = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "redis", "image": "r"}]}}}});
        let s = field_set(&v, &b()).unwrap();
        assert_eq!(
            s.to_json(),
            json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"redis\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
        assert_eq!(FieldSet::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn ports_key_with_default_protocol() {
        let v = json!({"spec": {"ports": [{"port": 6379}]}});
        let s = field_set(&v, &b()).unwrap();
        assert!(
            s.to_json()
                .to_string()
                .contains(r#"k:{\"port\":6379,\"protocol\":\"TCP\"}"#)
        );
    }

    #[test]
    fn merge_by_key_keeps_others() {
        let live = json!({"c": {"containers": [{"name": "a", "image": "1"}, {"name": "side", "image": "s"}]}});
        let cfg = json!({"c": {"containers": [{"name": "a", "image": "2"}]}});
        let ty = b();
        let m = merge(&live, &cfg, &ty).unwrap();
        assert_eq!(
            m,
            json!({"c": {"containers": [{"name": "a", "image": "2"}, {"name": "side", "image": "s"}]}})
        );
    }

    #[test]
    fn apply_removes_dropped_fields_and_detects_conflicts() {
        let ty = b();
        let op = Op {
            manager: "a",
            api_version: "v1",
            subresource: None,
            now: "t",
        };
        let mut entries = Vec::new();
        let v1 = apply(
            &json!({}),
            &json!({"data": {"x": "1", "y": "2"}}),
            &mut entries,
            &op,
            false,
            &ty,
        )
        .unwrap();
        let v2 = apply(
            &v1,
            &json!({"data": {"x": "1"}}),
            &mut entries,
            &op,
            false,
            &ty,
        )
        .unwrap();
        assert_eq!(v2, json!({"data": {"x": "1"}}));
        let opb = Op { manager: "b", ..op };
        let err = apply(
            &v2,
            &json!({"data": {"x": "9"}}),
            &mut entries.clone(),
            &opb,
            false,
            &ty,
        )
        .unwrap_err();
        match err {
            ApplyError::Conflicts(c) => assert_eq!(c[0].2, vec![".data.x".to_string()]),
            other => panic!("{other:?}"),
        }
        let v3 = apply(
            &v2,
            &json!({"data": {"x": "9"}}),
            &mut entries,
            &opb,
            true,
            &ty,
        )
        .unwrap();
        assert_eq!(v3, json!({"data": {"x": "9"}}));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].manager, "b");
    }
}
