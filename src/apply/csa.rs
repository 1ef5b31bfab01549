//! Moving field ownership from client-side apply to raystack, the way client-go's `csaupgrade`
//! (`UpgradeManagedFields`) does: the `Update` entries of kubectl's managers
//! (`kubectl-client-side-apply`, `kubectl`, `kubectl-create`, ...) are merged into raystack's
//! `Apply` entry (made from the newest of them when raystack has none yet) and removed, sent as
//! a JSON patch of `metadata.managedFields` with the resourceVersion as precondition. The next
//! server-side apply then prunes what only kubectl set and the stack does not (kubernetes#99003:
//! without the move, such fields, and the `last-applied-configuration` annotation with them,
//! stay forever). A Secret's `data` goes to `raystack-secret`'s entry instead (the password
//! stays what it is: raystack's regular applies carry no `data` and would prune it).

use serde_json::{Map, Value, json};

use crate::cluster::{Cluster, ClusterError};
use crate::kind::{Kind, ObjectRef};
use crate::plan::project::merge_shape_into;

/// Whether `manager` is one of kubectl's client-side managers.
pub fn is_kubectl(manager: &str) -> bool {
    manager == "kubectl" || manager.starts_with("kubectl-")
}

fn is_csa(e: &Value) -> bool {
    e.get("operation").and_then(Value::as_str) == Some("Update")
        && e.get("subresource").is_none_or(|s| s.as_str() == Some(""))
        && e.get("manager")
            .and_then(Value::as_str)
            .is_some_and(is_kubectl)
}

fn apply_entry_of(entries: &[Value], manager: &str) -> Option<usize> {
    entries.iter().position(|e| {
        e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some("Apply")
            && e.get("subresource").is_none_or(|s| s.as_str() == Some(""))
    })
}

/// The managedFields after the move, or `None` when no kubectl manager owns anything.
/// `data_manager`: where a Secret's `f:data`/`f:stringData` go instead of `manager`.
pub fn upgraded(
    entries: &[Value],
    manager: &str,
    data_manager: Option<&str>,
) -> Option<Vec<Value>> {
    let csa: Vec<&Value> = entries.iter().filter(|e| is_csa(e)).collect();
    let newest = *csa.first()?;
    let mut merged = json!({});
    for e in &csa {
        merge_shape_into(&mut merged, e.get("fieldsV1").unwrap_or(&Value::Null));
    }
    let mut data = Map::new();
    if data_manager.is_some()
        && let Value::Object(m) = &mut merged
    {
        for key in ["f:data", "f:stringData"] {
            if let Some(v) = m.remove(key) {
                data.insert(key.into(), v);
            }
        }
    }
    let mut out: Vec<Value> = entries.iter().filter(|e| !is_csa(e)).cloned().collect();
    let merge_into = |out: &mut Vec<Value>, who: &str, fields: Value| match apply_entry_of(out, who)
    {
        Some(i) => {
            let slot = out[i].as_object_mut().expect("an entry is an object");
            let set = slot.entry("fieldsV1").or_insert_with(|| json!({}));
            merge_shape_into(set, &fields);
        }
        None => {
            let mut e = newest.clone();
            e["manager"] = json!(who);
            e["operation"] = json!("Apply");
            e["fieldsV1"] = fields;
            out.insert(0, e);
        }
    };
    merge_into(&mut out, manager, merged);
    if let Some(dm) = data_manager
        && !data.is_empty()
    {
        merge_into(&mut out, dm, Value::Object(data));
    }
    Some(out)
}

/// Moves `r`'s kubectl-owned fields to `manager` (see the module doc). Returns whether anything
/// moved. The patch carries the resourceVersion read, so a concurrent write makes it fail
/// (409) rather than overwrite ownership that changed meanwhile.
pub async fn upgrade(
    cluster: &Cluster,
    r: &ObjectRef,
    manager: &str,
) -> Result<bool, ClusterError> {
    let Some(live) = cluster.get(r).await? else {
        return Ok(false);
    };
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let data_manager = (r.kind == Kind::Secret).then_some(super::secret::SECRET_MANAGER);
    let Some(next) = upgraded(&entries, manager, data_manager) else {
        return Ok(false);
    };
    let rv = live
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(Value::Null);
    let ops = json!([
        { "op": "replace", "path": "/metadata/managedFields", "value": next },
        // "replace", not "test": the API server answers a stale version with 409 Conflict.
        { "op": "replace", "path": "/metadata/resourceVersion", "value": rv },
    ]);
    cluster.patch_json(r, &ops, manager).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, op: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": op, "apiVersion": "v1", "time": "t",
               "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    #[test]
    fn kubectl_entries_merge_into_the_apply_entry_and_leave() {
        let entries = vec![
            entry("raystack", "Apply", json!({"f:data": {"f:a": {}}})),
            entry(
                "kubectl-client-side-apply",
                "Update",
                json!({"f:data": {"f:b": {}}, "f:metadata": {"f:annotations": {".": {}}}}),
            ),
            entry("kubectl", "Update", json!({"f:data": {"f:c": {}}})),
            entry("kube-controller-manager", "Update", json!({"f:status": {}})),
        ];
        let out = upgraded(&entries, "raystack", None).unwrap();
        let managers: Vec<&str> = out.iter().map(|e| e["manager"].as_str().unwrap()).collect();
        assert_eq!(managers, ["raystack", "kube-controller-manager"]);
        assert_eq!(
            out[0]["fieldsV1"],
            json!({"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}, "f:metadata": {"f:annotations": {".": {}}}})
        );
    }

    #[test]
    fn without_an_apply_entry_the_newest_kubectl_entry_becomes_it() {
        let entries = vec![entry(
            "kubectl-client-side-apply",
            "Update",
            json!({"f:spec": {}}),
        )];
        let out = upgraded(&entries, "raystack", None).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0]["manager"].as_str(), out[0]["operation"].as_str()),
            (Some("raystack"), Some("Apply"))
        );
        assert!(upgraded(&[entry("raystack", "Apply", json!({}))], "raystack", None).is_none());
    }

    #[test]
    fn a_secrets_data_goes_to_the_password_manager() {
        let entries = vec![entry(
            "kubectl-client-side-apply",
            "Update",
            json!({"f:data": {"f:password": {}}, "f:type": {}}),
        )];
        let out = upgraded(&entries, "raystack", Some("raystack-secret")).unwrap();
        let by = |m: &str| out.iter().find(|e| e["manager"] == m).unwrap()["fieldsV1"].clone();
        assert_eq!(by("raystack"), json!({"f:type": {}}));
        assert_eq!(by("raystack-secret"), json!({"f:data": {"f:password": {}}}));
    }
}
