//! Validation of built-in kinds: object names, a few required fields, and the immutability rules a real
//! apiserver enforces on update (PVC spec, StorageClass, StatefulSet spec, Service clusterIP, immutable
//! Secrets and ConfigMaps).

use crate::error::Cause;
use crate::util::{get, get_str, quantity_of};
use serde_json::{Map, Value};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Name rules: Namespaces and Services need DNS labels, the rest DNS subdomains.
pub fn name(group: &str, kind: &str, name: &str) -> Vec<Cause> {
    if name.is_empty() {
        return vec![Cause::required(
            "metadata.name",
            "name or generateName is required",
        )];
    }
    let label = group.is_empty() && (kind == "Namespace" || kind == "Service");
    if label && !is_label(name) {
        let mut msg = LABEL_MSG.to_string();
        if kind == "Service" {
            msg = msg.replace("a lowercase RFC 1123 label", "a DNS-1035 label");
        }
        return vec![Cause::invalid("metadata.name", &format!("{name:?}"), &msg)];
    }
    if !label && !is_subdomain(name) {
        return vec![Cause::invalid(
            "metadata.name",
            &format!("{name:?}"),
            SUBDOMAIN_MSG,
        )];
    }
    Vec::new()
}

/// Create-and-update checks of a built-in object's content.
pub fn object(group: &str, kind: &str, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    match (group, kind) {
        ("apps", "StatefulSet") => {
            let sel = get(obj, &["spec", "selector"]);
            if sel.is_none() {
                out.push(Cause::required("spec.selector", ""));
            }
            if let Some(ml) = sel
                .and_then(|s| s.get("matchLabels"))
                .and_then(Value::as_object)
            {
                let labels = get(obj, &["spec", "template", "metadata", "labels"])
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if ml.iter().any(|(k, v)| labels.get(k) != Some(v)) {
                    out.push(Cause::invalid(
                        "spec.template.metadata.labels",
                        &go_map(&labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            match get(obj, &["spec", "template", "spec", "containers"]).and_then(Value::as_array) {
                Some(c) if !c.is_empty() => {}
                _ => out.push(Cause::required("spec.template.spec.containers", "")),
            }
        }
        ("", "PersistentVolumeClaim") => {
            match get(obj, &["spec", "accessModes"]).and_then(Value::as_array) {
                Some(a) if !a.is_empty() => {}
                _ => out.push(Cause::required(
                    "spec.accessModes",
                    "at least 1 access mode is required",
                )),
            }
            if get(obj, &["spec", "resources", "requests", "storage"]).is_none() {
                out.push(Cause::required("spec.resources[storage]", ""));
            }
        }
        ("", "Service") => {
            let headless = get_str(obj, &["spec", "clusterIP"]) == Some("None");
            let external = get_str(obj, &["spec", "type"]) == Some("ExternalName");
            let ports = get(obj, &["spec", "ports"]).and_then(Value::as_array);
            if !headless && !external && ports.is_none_or(|p| p.is_empty()) {
                out.push(Cause::required("spec.ports", ""));
            }
        }
        ("storage.k8s.io", "StorageClass")
            if get_str(obj, &["provisioner"]).is_none_or(str::is_empty) =>
        {
            out.push(Cause::required("provisioner", ""));
        }
        _ => {}
    }
    out
}

fn go_map(m: &Map<String, Value>) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| {
            format!(
                "{k:?}:{}",
                v.as_str()
                    .map(|s| format!("{s:?}"))
                    .unwrap_or_else(|| v.to_string())
            )
        })
        .collect();
    format!("map[string]string{{{}}}", parts.join(", "))
}

fn without(v: Option<&Value>, keys: &[&str]) -> Value {
    let mut m = v.and_then(Value::as_object).cloned().unwrap_or_default();
    for k in keys {
        m.remove(*k);
    }
    Value::Object(m)
}

/// Update-only rules, comparing the stored object with the defaulted candidate.
pub fn update(group: &str, kind: &str, old: &Value, new: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    match (group, kind) {
        ("", "PersistentVolumeClaim") => {
            let mut os = without(old.get("spec"), &["volumeAttributesClassName"]);
            let mut ns = without(new.get("spec"), &["volumeAttributesClassName"]);
            let bound = get_str(old, &["status", "phase"]) == Some("Bound");
            let o_req = get(old, &["spec", "resources", "requests"]).cloned();
            let n_req = get(new, &["spec", "resources", "requests"]).cloned();
            if bound {
                for s in [&mut os, &mut ns] {
                    if let Some(r) = s.get_mut("resources").and_then(Value::as_object_mut) {
                        r.remove("requests");
                    }
                }
            }
            if os != ns {
                out.push(Cause::forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                ));
            }
            let o_sz = o_req
                .as_ref()
                .and_then(|r| r.get("storage"))
                .and_then(quantity_of);
            let n_sz = n_req
                .as_ref()
                .and_then(|r| r.get("storage"))
                .and_then(quantity_of);
            if let (Some(o), Some(n)) = (o_sz, n_sz)
                && n < o
            {
                out.push(Cause::forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than previous value",
                ));
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            if old.get("parameters") != new.get("parameters") {
                out.push(Cause::forbidden(
                    "parameters",
                    "updates to parameters are forbidden.",
                ));
            }
            if old.get("provisioner") != new.get("provisioner") {
                out.push(Cause::forbidden(
                    "provisioner",
                    "updates to provisioner are forbidden.",
                ));
            }
            if old.get("reclaimPolicy") != new.get("reclaimPolicy") {
                out.push(Cause::forbidden(
                    "reclaimPolicy",
                    "updates to reclaimPolicy are forbidden.",
                ));
            }
            if old.get("volumeBindingMode") != new.get("volumeBindingMode") {
                out.push(Cause::forbidden("volumeBindingMode", "field is immutable"));
            }
        }
        ("apps", "StatefulSet") => {
            let allowed = [
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
                "revisionHistoryLimit",
            ];
            if without(old.get("spec"), &allowed) != without(new.get("spec"), &allowed) {
                out.push(Cause::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        ("", "Service") => {
            let o = get_str(old, &["spec", "clusterIP"]);
            let n = get_str(new, &["spec", "clusterIP"]);
            if o.is_some_and(|ip| !ip.is_empty()) && o != n {
                out.push(Cause::invalid(
                    "spec.clusterIP",
                    &format!("{:?}", n.unwrap_or("")),
                    "field is immutable",
                ));
            }
        }
        ("", "Secret") | ("", "ConfigMap") => {
            if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                if new.get("immutable").and_then(Value::as_bool) != Some(true) {
                    out.push(Cause::forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
                if old.get("data") != new.get("data") {
                    out.push(Cause::forbidden(
                        "data",
                        "field is immutable when `immutable` is set",
                    ));
                }
                if old.get("binaryData") != new.get("binaryData") {
                    out.push(Cause::forbidden(
                        "binaryData",
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
            if kind == "Secret" && old.get("type") != new.get("type") {
                out.push(Cause::invalid(
                    "type",
                    &format!("{:?}", get_str(new, &["type"]).unwrap_or("")),
                    "field is immutable",
                ));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("", "Secret", "a.b-c").is_empty());
        assert!(!name("", "Secret", "A").is_empty());
        assert!(!name("", "Service", "a.b").is_empty());
        assert_eq!(name("", "Secret", "")[0].field, "metadata.name");
    }
}
