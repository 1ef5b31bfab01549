//! The write pipeline shared by create, replace and every patch flavour: request checks (scope, type meta,
//! namespace and name), the new content per verb, then assembly, admission, finishing and commit through
//! the store-level object API. Create and replace content is computed here; patches in `patch`, server-side
//! apply in `apply`.

use super::ctx::Ctx;
use super::{Outcome, Params, Target, Write, apply, patch};
use crate::error::{ApiError, Cause};
use crate::store::State;
use crate::store::admission;
use crate::store::objects::{self, Slot, present, strip};
use crate::store::ssa::{self, Op};
use crate::store::validate;
use crate::util::{get_str, now_rfc3339, rand_suffix};
use serde_json::{Value, json};

/// Create, replace or patch one object (or its status), returning what was (or, in a dry run, would be) stored.
pub fn write(st: &mut State, t: &Target, w: Write, p: &Params) -> Result<Outcome, ApiError> {
    let rt = &t.rt;
    let status_sub = check_scope(t, &w)?;
    let ns = t.ns().to_string();
    let body = match &w {
        Write::Create(b)
        | Write::Replace(b)
        | Write::Apply(b)
        | Write::Merge(b)
        | Write::StrategicMerge(b) => Some(b),
        Write::JsonPatch(_) => None,
    };
    if let Some(b) = body {
        check_body(t, b, matches!(w, Write::Apply(_)))?;
    }
    let (name, generate_name) = resolve_name(t, &w)?;
    let name_causes = validate::name(&rt.group, &rt.kind, &name);
    if !name_causes.is_empty() {
        return Err(ApiError::invalid(&rt.kind, &rt.group, &name, name_causes));
    }
    if rt.namespaced && !st.namespace_exists(&ns) {
        return Err(ApiError::not_found("namespaces", "", &ns));
    }

    let k = t.key(&name);
    let live: Option<Value> = st.objects.get(&k).map(|s| s.obj.clone());
    if live.is_none() && rt.namespaced && st.namespace_terminating(&ns) {
        return Err(ApiError::namespace_terminating(
            &rt.plural, &rt.group, &name, &ns,
        ));
    }
    let manager = p
        .field_manager
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| p.default_manager.clone());
    let now = now_rfc3339();
    let api_version = rt.api_version(&t.version);
    let mut c = Ctx {
        rt: &t.rt,
        name: &name,
        live: live.as_ref(),
        live_stripped: live
            .as_ref()
            .map(|l| strip(l, status_sub, rt.status_subresource))
            .unwrap_or_else(|| json!({})),
        status_sub,
        entries: live.as_ref().map(ssa::parse_managed).unwrap_or_default(),
        op: Op {
            manager: &manager,
            api_version: &api_version,
            subresource: status_sub.then_some("status"),
            now: &now,
        },
        ty: objects::ty_of(rt),
        params: p,
        warnings: Vec::new(),
    };
    let content = match w {
        Write::Create(b) => create(&mut c, b)?,
        Write::Replace(b) => replace(&mut c, b)?,
        Write::Merge(b) => patch::merge(&mut c, b)?,
        Write::StrategicMerge(b) => patch::strategic(&mut c, b)?,
        Write::JsonPatch(ops) => patch::json(&mut c, ops)?,
        Write::Apply(cfg) => apply::apply(&mut c, cfg)?,
    };
    let Ctx {
        entries, warnings, ..
    } = c;

    let slot = Slot {
        rt,
        name: &name,
        ns: &ns,
        live: live.as_ref(),
        status_sub,
    };
    let mut cand = objects::assemble(&slot, &content, generate_name.as_deref(), &now);
    admission::admit(st, &slot.subject(), &mut cand, p.dry_run)?;
    let fin = objects::finish(live.as_ref(), &mut cand, &entries);
    if let Some(l) = live.as_ref().filter(|_| fin.noop) {
        return Ok(Outcome {
            code: 200,
            body: present(rt, &t.version, l),
            warnings,
        });
    }
    objects::commit(st, &slot, k, &mut cand, fin.spec_changed, p.dry_run);
    Ok(Outcome {
        code: if live.is_none() { 201 } else { 200 },
        body: present(rt, &t.version, &cand),
        warnings,
    })
}

fn create(c: &mut Ctx, mut b: Value) -> Result<Value, ApiError> {
    if c.live.is_some() {
        return Err(ApiError::already_exists(&c.rt.plural, &c.rt.group, c.name));
    }
    c.prune(&mut b)?;
    // A create never addresses the status subresource.
    let n = ssa::strip_nulls(&strip(&b, false, c.rt.status_subresource));
    ssa::field_set(&n, &c.ty).map_err(ApiError::bad_request)?;
    ssa::update(&json!({}), &n, &mut c.entries, &c.op, &c.ty);
    Ok(n)
}

fn replace(c: &mut Ctx, mut b: Value) -> Result<Value, ApiError> {
    c.need_live()?;
    c.check_rv(&b)?;
    c.prune(&mut b)?;
    c.update_from(&b, true)
}

/// Which part of the object the request addresses: `Ok(true)` for the status subresource.
fn check_scope(t: &Target, w: &Write) -> Result<bool, ApiError> {
    let status_sub = match t.sub.as_deref() {
        None => false,
        Some("status") if t.rt.status_subresource => true,
        Some(_) => return Err(ApiError::no_resource()),
    };
    if t.rt.namespaced && t.namespace.is_none() {
        return Err(ApiError::method_not_allowed());
    }
    let is_create = matches!(w, Write::Create(_));
    if is_create == t.name.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    Ok(status_sub)
}

/// The body is an object of the addressed kind, in the addressed namespace.
fn check_body(t: &Target, b: &Value, type_meta_required: bool) -> Result<(), ApiError> {
    if !b.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    check_type_meta(t, b, type_meta_required)?;
    if let Some(bns) = get_str(b, &["metadata", "namespace"])
        && t.rt.namespaced
        && !bns.is_empty()
        && bns != t.ns()
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
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

/// The object's name (from the body on create, generated from `generateName` if need be; else from the
/// URL, which a body name must match) and the `generateName` to record.
fn resolve_name(t: &Target, w: &Write) -> Result<(String, Option<String>), ApiError> {
    if let Write::Create(b) = w {
        return Ok(
            match get_str(b, &["metadata", "name"]).filter(|n| !n.is_empty()) {
                Some(n) => (n.to_string(), None),
                None => match get_str(b, &["metadata", "generateName"]).filter(|n| !n.is_empty()) {
                    Some(g) => (format!("{g}{}", rand_suffix(5)), Some(g.to_string())),
                    None => (String::new(), None),
                },
            },
        );
    }
    let url_name = t.name.clone().unwrap_or_default();
    let body = match w {
        Write::Replace(b) | Write::Apply(b) | Write::Merge(b) | Write::StrategicMerge(b) => b,
        Write::Create(_) | Write::JsonPatch(_) => return Ok((url_name, None)),
    };
    match get_str(body, &["metadata", "name"]) {
        Some(n) if n != url_name && !n.is_empty() => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({url_name})"
        ))),
        None if matches!(w, Write::Apply(_) | Write::Replace(_)) => Err(ApiError::invalid(
            &t.rt.kind,
            &t.rt.group,
            "",
            vec![Cause::required(
                "metadata.name",
                "name or generateName is required",
            )],
        )),
        _ => Ok((url_name, None)),
    }
}
