//! Admission of a candidate object, in the order a real apiserver runs it: built-in defaulting (with the
//! Service IP and node-port allocators), CRD schema defaulting and validation (the schema's
//! `x-kubernetes-validations` CEL rules included, [`crate::store::cel`]), built-in object and update
//! validation, CRD naming rules and the PVC resize admission check.

use crate::error::{ApiError, Cause};
use crate::store::State;
use crate::store::defaults;
use crate::store::registry::ResourceType;
use crate::store::schema;
use crate::store::validate;
use crate::util::{get, get_str, quantity_of};
use serde_json::Value;

/// The object being admitted and what it replaces.
pub struct Subject<'a> {
    pub rt: &'a ResourceType,
    pub name: &'a str,
    pub live: Option<&'a Value>,
    /// The write addresses the status subresource (no defaulting or built-in validation then).
    pub status_sub: bool,
}

/// Defaults and validates `cand`. A dry run leaves the allocators alone.
pub fn admit(st: &mut State, s: &Subject, cand: &mut Value, dry_run: bool) -> Result<(), ApiError> {
    let rt = s.rt;
    if !s.status_sub {
        default(st, s, cand, dry_run)?;
    }
    if let Some(sc) = rt.schema(rt.storage_version()) {
        schema::apply_defaults(cand, sc);
        let mut causes = schema::validate(cand, sc);
        causes.extend(crate::store::cel::validate(cand, s.live, sc));
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.kind, &rt.group, s.name, causes));
        }
    }
    if s.status_sub {
        return Ok(());
    }
    let mut causes = validate::object(&rt.group, &rt.kind, cand);
    causes.extend(crate::store::limits::data_size(&rt.group, &rt.kind, cand));
    if let Some(l) = s.live {
        causes.extend(validate::update(&rt.group, &rt.kind, l, cand));
    }
    if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
        causes.extend(validate_crd(cand, s.name));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&rt.kind, &rt.group, s.name, causes));
    }
    if rt.is("", "PersistentVolumeClaim")
        && let Some(l) = s.live
    {
        pvc_resize(st, l, cand, s.name)?;
    }
    crate::store::limits::stored_size(cand)
}

fn default(st: &mut State, s: &Subject, cand: &mut Value, dry_run: bool) -> Result<(), ApiError> {
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
            is_create: s.live.is_none(),
            live: s.live,
            default_storage_class: default_sc,
            alloc_ip: &mut alloc_ip,
            alloc_node_port: &mut alloc_port,
        };
        defaults::apply(&s.rt.group, &s.rt.kind, cand, &mut ctx).map_err(ApiError::bad_request)?;
    }
    if !dry_run {
        st.next_ip = ip_n;
        st.next_node_port = port_n;
    }
    Ok(())
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

fn pvc_resize(st: &State, old: &Value, new: &Value, name: &str) -> Result<(), ApiError> {
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
