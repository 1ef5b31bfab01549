//! `[[patches]]`: each entry's `target` (a rendered kind, or `Kind/name`), `type` (`merge`:
//! RFC 7386, `json`: RFC 6902) and `patch` (YAML or JSON text), read, checked and located.
//! Applying them to the rendered objects is the renderer's (`crate::render::check_patches`,
//! a floor above), which reports a refusal at the position kept here.
//!
//! Also `[import]`: the `[[import.adopt]]` entries `raystack import` writes (kind, name, UID of
//! each object it found), read the same way, an array of tables naming rendered objects.

use serde_json::Value;

use super::{Cx, Table, did_you_mean, is_dns_subdomain};
use crate::stack::{ImportedObject, Patch, PatchType};

const PATCH_KEYS: &[&str] = &["target", "type", "patch"];

/// The kinds raystack renders (and so the kinds a patch can target).
const KINDS: &[&str] = &[
    "Namespace",
    "StorageClass",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "StatefulSet",
    "Service",
    "NetworkPolicy",
    "RayCluster",
];

/// The patches, each with the position of its `patch` text.
/// Whether `kind` is one raystack renders; if not, an error at `span` quoting `written` (what
/// the file says, e.g. the whole `Kind/name`) with the nearest kind as a suggestion.
fn rendered_kind(
    cx: &mut Cx<'_>,
    kind: &str,
    written: &str,
    span: std::ops::Range<usize>,
    key: &str,
) -> bool {
    if KINDS.contains(&kind) {
        return true;
    }
    let help = match did_you_mean(kind, KINDS) {
        Some(k) => format!("did you mean `{k}`? raystack renders: {}", KINDS.join(", ")),
        None => format!("raystack renders: {}", KINDS.join(", ")),
    };
    cx.error(
        span,
        key,
        format!("\"{written}\" names no kind that raystack renders"),
        help,
    );
    false
}

pub(super) fn patches(cx: &mut Cx<'_>, top: &Table<'_, '_>) -> Vec<Patch> {
    let mut out = Vec::new();
    for p in top.tables(cx, "patches", "declare each patch as a [[patches]] section") {
        p.check_keys(cx, PATCH_KEYS);
        let target = p.required_string(
            cx,
            "target",
            "RayCluster",
            ": a rendered kind, or Kind/name",
        );
        let target = target.and_then(|(t, span)| {
            let (kind, name) = match t.split_once('/') {
                Some((k, n)) => (k.to_string(), Some(n.to_string())),
                None => (t.clone(), None),
            };
            if !rendered_kind(cx, &kind, &t, span.clone(), &p.key("target")) {
                return None;
            }
            if let Some(n) = &name
                && !is_dns_subdomain(n)
            {
                cx.error(
                    span,
                    &p.key("target"),
                    format!("\"{n}\" is not an object name"),
                    "write Kind/name with the name `raystack render` shows, e.g. \"StatefulSet/ray-prod-redis\"",
                );
                return None;
            }
            Some((kind, name))
        });
        let (patch_type, _) = p.choice(
            cx,
            "type",
            &[("merge", PatchType::Merge), ("json", PatchType::Json)],
        );
        let text = p.required_string(
            cx,
            "patch",
            "spec: {}",
            ": the patch document, as YAML or JSON text",
        );
        let document = text.and_then(|(text, span)| {
            let doc: Value = match serde_saphyr::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    let first = e.to_string();
                    let first = first.lines().next().unwrap_or_default().to_string();
                    cx.error(
                        span,
                        &p.key("patch"),
                        format!("is not YAML or JSON: {first}"),
                        "write the patch as YAML or JSON text in a multi-line string ('''…''')",
                    );
                    return None;
                }
            };
            let ok = match patch_type {
                PatchType::Merge => doc.is_object(),
                PatchType::Json => doc.is_array(),
            };
            if !ok {
                cx.error(
                    span,
                    &p.key("patch"),
                    match patch_type {
                        PatchType::Merge => "a merge patch (RFC 7386) must be a mapping of the fields to change",
                        PatchType::Json => "a JSON patch (RFC 6902) must be a list of operations",
                    },
                    match patch_type {
                        PatchType::Merge => "e.g. patch = '''\nspec:\n  template: …'''",
                        PatchType::Json => "e.g. patch = '''\n- op: add\n  path: /spec/…\n  value: …'''",
                    },
                );
                return None;
            }
            if patch_type == PatchType::Json
                && let Err(e) = serde_json::from_value::<json_patch::Patch>(doc.clone())
            {
                cx.error(
                    span,
                    &p.key("patch"),
                    format!("is not an RFC 6902 JSON patch: {e}"),
                    "each operation has `op` (add, remove, replace, move, copy, test) and `path`, plus `value` or `from`",
                );
                return None;
            }
            Some(doc)
        });
        let (line, column) = cx.position(p.span_of("patch").start);
        if let (Some((kind, name)), Some(patch)) = (target, document) {
            out.push(Patch {
                kind,
                name,
                patch_type,
                patch,
                line,
                column,
            });
        }
    }
    out
}

const IMPORT_KEYS: &[&str] = &["adopt"];
const ADOPT_KEYS: &[&str] = &["kind", "name", "uid"];

/// `[[import.adopt]]`: what `raystack import` found, each a rendered kind, a name and a UID.
pub(super) fn imported(cx: &mut Cx<'_>, top: &Table<'_, '_>) -> Vec<ImportedObject> {
    let mut out = Vec::new();
    let im = top.section(cx, "import", IMPORT_KEYS);
    for a in im.tables(
        cx,
        "adopt",
        "declare each object as an [[import.adopt]] section",
    ) {
        a.check_keys(cx, ADOPT_KEYS);
        let kind = a.required_string(
            cx,
            "kind",
            "StatefulSet",
            ": the kind of the imported object",
        );
        let name = a.required_string(cx, "name", "redis", ": the name of the imported object");
        let uid = a.required_string(
            cx,
            "uid",
            "0b9f…",
            ": its metadata.uid when it was imported",
        );
        let (Some((kind, kspan)), Some((name, nspan)), Some((uid, uspan))) = (kind, name, uid)
        else {
            continue;
        };
        let mut ok = rendered_kind(cx, &kind, &kind, kspan, &a.key("kind"));
        if !is_dns_subdomain(&name) || name.is_empty() {
            cx.error(
                nspan,
                &a.key("name"),
                format!("\"{name}\" is not a valid object name"),
                "write the object's name as `raystack import` found it",
            );
            ok = false;
        }
        if uid.trim().is_empty() {
            cx.error(uspan, &a.key("uid"), "is empty", "write the object's metadata.uid as `raystack import` found it, or remove the entry (apply then adopts the object only with --adopt)");
            ok = false;
        }
        if ok {
            out.push(ImportedObject { kind, name, uid });
        }
    }
    out
}
