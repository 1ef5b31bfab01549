//! The context a write's verb-specific content function works in (create and replace in `write`, the
//! patches in `patch`, server-side apply in `apply`), with the checks and bookkeeping they share.

use super::Params;
use crate::error::ApiError;
use crate::store::objects::strip;
use crate::store::registry::ResourceType;
use crate::store::schema::{self, Ty};
use crate::store::ssa::{self, Entry, Op};
use crate::util::get_str;
use serde_json::Value;

/// What the verb-specific content functions work with.
pub struct Ctx<'a> {
    pub rt: &'a ResourceType,
    pub name: &'a str,
    pub live: Option<&'a Value>,
    /// The live object's manager-owned part (see [`strip`]), `{}` when there is none.
    pub live_stripped: Value,
    pub status_sub: bool,
    /// managedFields entries, updated by the verb.
    pub entries: Vec<Entry>,
    pub op: Op<'a>,
    pub ty: Ty<'a>,
    pub params: &'a Params,
    pub warnings: Vec<String>,
}

impl<'a> Ctx<'a> {
    pub fn need_live(&self) -> Result<&'a Value, ApiError> {
        self.live
            .ok_or_else(|| ApiError::not_found(&self.rt.plural, &self.rt.group, self.name))
    }

    /// Optimistic concurrency: a non-empty `metadata.resourceVersion` in the body must match the live one.
    pub fn check_rv(&self, b: &Value) -> Result<(), ApiError> {
        if let (Some(want), Some(l)) = (get_str(b, &["metadata", "resourceVersion"]), self.live)
            && !want.is_empty()
            && Some(want) != get_str(l, &["metadata", "resourceVersion"])
        {
            return Err(ApiError::conflict_modified(
                &self.rt.plural,
                &self.rt.group,
                self.name,
            ));
        }
        Ok(())
    }

    /// Custom resources: drops fields the schema does not declare, as decoding does (an error under
    /// `fieldValidation=Strict`, a warning under Warn).
    pub fn prune(&mut self, v: &mut Value) -> Result<(), ApiError> {
        let Some(s) = self.rt.schema(self.rt.storage_version()) else {
            return Ok(());
        };
        let pruned = schema::prune(v, s);
        if self.params.field_validation == "Strict" && !pruned.is_empty() {
            let list: Vec<String> = pruned
                .iter()
                .map(|f| format!("unknown field {f:?}"))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )));
        }
        if self.params.field_validation != "Ignore" {
            self.warnings
                .extend(pruned.iter().map(|f| format!("unknown field {f:?}")));
        }
        Ok(())
    }

    /// The manager-owned part of a whole new object, recorded as an Update by this manager.
    pub fn update_from(&mut self, obj: &Value, drop_nulls: bool) -> Result<Value, ApiError> {
        let n = strip(obj, self.status_sub, self.rt.status_subresource);
        let n = if drop_nulls { ssa::strip_nulls(&n) } else { n };
        ssa::field_set(&n, &self.ty).map_err(ApiError::bad_request)?;
        ssa::update(
            &self.live_stripped,
            &n,
            &mut self.entries,
            &self.op,
            &self.ty,
        );
        Ok(n)
    }
}
