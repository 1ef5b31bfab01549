//! DELETE of one object (preconditions, dry run, orphan or cascading propagation) and of a collection.

use super::{Outcome, Params, Target, list};
use crate::error::ApiError;
use crate::objects::{present, remove_cascading, update_by};
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
    // An object with finalizers is only marked: it stays, with a deletionTimestamp, until its
    // finalizers are removed (by the simulated KubeRay, for its cleanup finalizer).
    let has_finalizers = live
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        if live.pointer("/metadata/deletionTimestamp").is_none() {
            let now = now_rfc3339();
            update_by(st, &k, "kube-apiserver", false, |o| {
                o["metadata"]["deletionTimestamp"] = json!(now);
                o["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            });
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
    if orphan && !t.rt.is("", "Namespace") {
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
            remove_cascading(st, &key(&t.rt.group, &t.rt.plural, ns, name));
        }
    }
    Ok(listed)
}
