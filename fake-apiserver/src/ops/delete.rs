//! DELETE of one object (preconditions, dry run, orphan or cascading propagation, finalizers, a
//! namespace turning Terminating) and of a collection.

use super::{Outcome, Params, Target, list};
use crate::error::ApiError;
use crate::store::objects::{delete_by, present, remove_cascading};
use crate::store::{State, key};
use crate::util::{get_str, now_rfc3339};
use serde_json::{Value, json};

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
    if t.rt.is("", "Namespace") && live.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::conflict(
            format!(
                "Operation cannot be fulfilled on namespaces {name:?}: The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system."
            ),
            json!({"name": name, "kind": "namespaces"}),
        ));
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
    // A namespace turns Terminating (the namespace controller empties it, then it goes); an
    // object with finalizers is only marked: it stays, with a deletionTimestamp, until they
    // are removed.
    let has_finalizers = crate::store::objects::has_finalizers(&live);
    if t.rt.is("", "Namespace") || has_finalizers {
        if t.rt.is("", "Namespace") {
            crate::controllers::namespaces::terminate(st, &k);
        } else {
            delete_by(st, &k);
        }
        let body = st
            .objects
            .get(&k)
            .map(|s| present(&t.rt, &t.version, &s.obj))
            .unwrap_or(body);
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
    if orphan {
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
            let k = key(&t.rt.group, &t.rt.plural, ns, name);
            if t.rt.is("", "Namespace") {
                crate::controllers::namespaces::terminate(st, &k);
            } else {
                delete_by(st, &k);
            }
        }
    }
    Ok(listed)
}
