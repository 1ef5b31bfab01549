//! Server-side apply (`application/apply-patch+yaml`): the applied configuration merged into the live
//! object under field-manager ownership, with conflicts reported as a real apiserver words them.

use super::ctx::Ctx;
use crate::error::{ApiError, Cause};
use crate::store::objects::strip;
use crate::store::registry::ResourceType;
use crate::store::ssa;
use crate::util::get;
use serde_json::{Value, json};

/// Applies `cfg` for the request's field manager; returns the new manager-owned content.
pub(super) fn apply(c: &mut Ctx, mut cfg: Value) -> Result<Value, ApiError> {
    if c.params.field_manager.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "PATCH: fieldManager is required for apply requests",
        ));
    }
    if get(&cfg, &["metadata", "managedFields"]).is_some_and(|m| !m.is_null()) {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    c.check_rv(&cfg)?;
    c.prune(&mut cfg)?;
    let applied = strip(&cfg, c.status_sub, c.rt.status_subresource);
    match ssa::apply(
        &c.live_stripped,
        &applied,
        &mut c.entries,
        &c.op,
        c.params.force,
        &c.ty,
    ) {
        Ok(v) => Ok(v),
        Err(ssa::ApplyError::Invalid(e)) => Err(ApiError::invalid(
            &c.rt.kind,
            &c.rt.group,
            c.name,
            vec![Cause {
                field: String::new(),
                reason: "FieldValueInvalid",
                message: e,
            }],
        )),
        Err(ssa::ApplyError::Conflicts(conflicts)) => Err(conflict_error(c.rt, c.name, conflicts)),
    }
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
