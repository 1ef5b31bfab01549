//! One authorization rule, enough to test read-only credentials: requests bearing
//! [`READ_ONLY_TOKEN`] (user [`READ_ONLY_USER`], context `fake-readonly` in the kubeconfig) may
//! only read (get, list, watch); anything else is 403 Forbidden with the message a real RBAC
//! authorizer gives. Every other token, or none, may do anything.

use crate::error::ApiError;
use crate::ops::Target;
use hyper::Method;

pub const READ_ONLY_TOKEN: &str = "fake-readonly-token";
pub const READ_ONLY_USER: &str = "fake-readonly";

/// The user of the kubeconfig's `fake` context (any other bearer token), who may do anything.
pub const ADMIN_USER: &str = "fake";

/// Who sent a request, by its `Authorization` header: the read-only user, the admin (any other
/// token), or `system:anonymous` (none), as an audit log names them.
pub fn username(authorization: Option<&str>) -> &'static str {
    match (read_only_user(authorization), authorization) {
        (Some(user), _) => user,
        (None, Some(_)) => ADMIN_USER,
        (None, None) => "system:anonymous",
    }
}

/// The user a bearer token (the `Authorization` header's value) is restricted as, if any.
pub fn read_only_user(authorization: Option<&str>) -> Option<&'static str> {
    let token = authorization?.strip_prefix("Bearer ")?.trim();
    (token == READ_ONLY_TOKEN).then_some(READ_ONLY_USER)
}

/// Refuses a write by a read-only user.
pub fn check(user: Option<&str>, method: &Method, t: &Target) -> Result<(), ApiError> {
    let Some(user) = user else {
        return Ok(());
    };
    let verb = match *method {
        Method::GET | Method::HEAD => return Ok(()),
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if t.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "use",
    };
    let resource = match &t.sub {
        Some(sub) => format!("{}/{sub}", t.rt.plural),
        None => t.rt.plural.clone(),
    };
    let scope = match &t.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".to_owned(),
    };
    let why = format!(
        "User {user:?} cannot {verb} resource {resource:?} in API group {:?} {scope}",
        t.rt.group
    );
    let name = t.name.clone().unwrap_or_default();
    let mut err = ApiError::forbidden(&t.rt.plural, &t.rt.group, &name, &why);
    if name.is_empty() {
        // A real server leaves the name out of the message when the request has none.
        err.message = format!(
            "{} is forbidden: {why}",
            crate::error::qualified(&t.rt.plural, &t.rt.group)
        );
    }
    Err(err)
}
