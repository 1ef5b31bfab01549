//! GET of one object (or its status subresource).

use super::Target;
use crate::error::ApiError;
use crate::store::State;
use crate::store::objects::present;

pub fn get_one(st: &State, t: &Target) -> Result<serde_json::Value, ApiError> {
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
