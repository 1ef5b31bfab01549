//! Server-side defaulting and admission mutations for built-in kinds (what a real apiserver adds to a stored
//! object: Service IPs and policies, StatefulSet and pod template defaults, PVC class and the
//! `kubernetes.io/pvc-protection` finalizer, Secret stringData, ...).

use crate::util::{default_at, get, get_str, obj_at};
use base64::Engine;
use serde_json::{Value, json};

/// The finalizer the StorageObjectInUseProtection admission plugin puts on every PVC; the
/// pvc-protection controller ([`crate::controllers::pvc_protection`]) drops it.
pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";

/// What defaulting may need from the rest of the server.
pub struct Ctx<'a> {
    pub is_create: bool,
    pub live: Option<&'a Value>,
    /// Name of the default StorageClass, if any.
    pub default_storage_class: Option<String>,
    pub alloc_ip: &'a mut dyn FnMut() -> String,
    pub alloc_node_port: &'a mut dyn FnMut() -> i64,
}

pub fn apply(group: &str, kind: &str, obj: &mut Value, ctx: &mut Ctx) -> Result<(), String> {
    match (group, kind) {
        ("", "Service") => service(obj, ctx),
        ("apps", "StatefulSet") => statefulset(obj),
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec);
            }
            if ctx.is_create {
                default_at(obj, &["status"], "phase", json!("Pending"));
            }
        }
        ("", "PersistentVolumeClaim") => pvc(obj, ctx),
        ("", "Secret") => secret(obj)?,
        ("", "Namespace") => namespace(obj),
        ("storage.k8s.io", "StorageClass") => {
            if obj.get("reclaimPolicy").is_none() {
                obj["reclaimPolicy"] = json!("Delete");
            }
            if obj.get("volumeBindingMode").is_none() {
                obj["volumeBindingMode"] = json!("Immediate");
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj),
        _ => {}
    }
    Ok(())
}

fn service(obj: &mut Value, ctx: &mut Ctx) {
    let live_spec = ctx.live.and_then(|l| l.get("spec")).cloned();
    let spec = obj_at(obj, &["spec"]);
    spec.entry("type").or_insert(json!("ClusterIP"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if ty != "ExternalName" {
        // Allocated values survive updates that omit them.
        if let Some(ls) = &live_spec {
            for k in ["clusterIP", "clusterIPs"] {
                if !spec.contains_key(k)
                    && let Some(v) = ls.get(k)
                {
                    spec.insert(k.into(), v.clone());
                }
            }
        }
        let ip = match spec.get("clusterIP").and_then(Value::as_str) {
            Some(ip) if !ip.is_empty() => ip.to_string(),
            _ => {
                let ip = (ctx.alloc_ip)();
                spec.insert("clusterIP".into(), json!(ip));
                ip
            }
        };
        spec.entry("clusterIPs").or_insert(json!([ip]));
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        spec.entry("internalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    spec.entry("sessionAffinity").or_insert(json!("None"));
    if ty == "NodePort" || ty == "LoadBalancer" {
        spec.entry("externalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        spec.entry("allocateLoadBalancerNodePorts")
            .or_insert(json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut() {
            let Some(pm) = p.as_object_mut() else {
                continue;
            };
            pm.entry("protocol").or_insert(json!("TCP"));
            if !pm.contains_key("targetPort")
                && let Some(port) = pm.get("port").cloned()
            {
                pm.insert("targetPort".into(), port);
            }
            if (ty == "NodePort" || ty == "LoadBalancer") && !pm.contains_key("nodePort") {
                let port = pm.get("port").cloned();
                let old = live_spec
                    .as_ref()
                    .and_then(|s| s.get("ports"))
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|lp| lp.get("port") == port.as_ref()))
                    .and_then(|lp| lp.get("nodePort"))
                    .cloned();
                let np = old.unwrap_or_else(|| json!((ctx.alloc_node_port)()));
                pm.insert("nodePort".into(), np);
            }
        }
    }
    if ctx.is_create {
        default_at(obj, &["status"], "loadBalancer", json!({}));
    }
}

fn statefulset(obj: &mut Value) {
    let spec = obj_at(obj, &["spec"]);
    spec.entry("replicas").or_insert(json!(1));
    spec.entry("podManagementPolicy")
        .or_insert(json!("OrderedReady"));
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    let us = spec
        .entry("updateStrategy")
        .or_insert(json!({"type": "RollingUpdate"}));
    if let Some(us) = us.as_object_mut() {
        us.entry("type").or_insert(json!("RollingUpdate"));
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = us.entry("rollingUpdate").or_insert(json!({}));
            if let Some(ru) = ru.as_object_mut() {
                ru.entry("partition").or_insert(json!(0));
            }
        }
    }
    let pol = spec
        .entry("persistentVolumeClaimRetentionPolicy")
        .or_insert(json!({}));
    if let Some(pol) = pol.as_object_mut() {
        pol.entry("whenDeleted").or_insert(json!("Retain"));
        pol.entry("whenScaled").or_insert(json!("Retain"));
    }
    if let Some(tspec) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        pod_spec(tspec);
    }
    if let Some(vcts) = spec
        .get_mut("volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for t in vcts.iter_mut().filter(|t| t.is_object()) {
            default_at(t, &[], "apiVersion", json!("v1"));
            default_at(t, &[], "kind", json!("PersistentVolumeClaim"));
            default_at(t, &["spec"], "volumeMode", json!("Filesystem"));
            default_at(t, &["status"], "phase", json!("Pending"));
        }
    }
}

/// Defaults of a PodSpec (also used for templates).
pub fn pod_spec(spec: &mut Value) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    m.entry("restartPolicy").or_insert(json!("Always"));
    m.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    m.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    m.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    m.entry("securityContext").or_insert(json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut() {
                container(c);
            }
        }
    }
    if let Some(vols) = m.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vols.iter_mut() {
            for src in ["configMap", "secret"] {
                if let Some(s) = v.get_mut(src).and_then(Value::as_object_mut) {
                    s.entry("defaultMode").or_insert(json!(420));
                }
            }
        }
    }
}

fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else {
        return;
    };
    m.entry("terminationMessagePath")
        .or_insert(json!("/dev/termination-log"));
    m.entry("terminationMessagePolicy").or_insert(json!("File"));
    let image = m
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    m.entry("imagePullPolicy")
        .or_insert(json!(pull_policy(&image)));
    m.entry("resources").or_insert(json!({}));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(probe).and_then(Value::as_object_mut) {
            p.entry("timeoutSeconds").or_insert(json!(1));
            p.entry("periodSeconds").or_insert(json!(10));
            p.entry("successThreshold").or_insert(json!(1));
            p.entry("failureThreshold").or_insert(json!(3));
            if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                h.entry("scheme").or_insert(json!("HTTP"));
            }
        }
    }
    if let Some(env) = m.get_mut("env").and_then(Value::as_array_mut) {
        for e in env.iter_mut() {
            if let Some(f) = e
                .pointer_mut("/valueFrom/fieldRef")
                .and_then(Value::as_object_mut)
            {
                f.entry("apiVersion").or_insert(json!("v1"));
            }
        }
    }
}

fn pvc(obj: &mut Value, ctx: &mut Ctx) {
    default_at(obj, &["spec"], "volumeMode", json!("Filesystem"));
    if ctx.is_create {
        if get(obj, &["spec", "storageClassName"]).is_none()
            && let Some(sc) = &ctx.default_storage_class
        {
            obj_at(obj, &["spec"]).insert("storageClassName".into(), json!(sc));
        }
        default_at(obj, &["status"], "phase", json!("Pending"));
        // The StorageObjectInUseProtection admission plugin.
        let f = obj_at(obj, &["metadata"])
            .entry("finalizers")
            .or_insert(json!([]));
        if let Some(f) = f.as_array_mut()
            && !f.iter().any(|x| x == PVC_PROTECTION_FINALIZER)
        {
            f.push(json!(PVC_PROTECTION_FINALIZER));
        }
    }
}

fn secret(obj: &mut Value) -> Result<(), String> {
    if obj.get("type").is_none() {
        obj["type"] = json!("Opaque");
    }
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let Some(s) = v.as_str() else {
                return Err(format!("Secret.data[{k}]: must be a base64 string"));
            };
            if let Err(e) = base64::engine::general_purpose::STANDARD.decode(s) {
                return Err(format!(
                    "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data[{k}]: {e}"
                ));
            }
        }
    }
    if let Some(sd) = obj
        .as_object_mut()
        .and_then(|m| m.remove("stringData"))
        .and_then(|v| v.as_object().cloned())
    {
        let data = obj_at(obj, &["data"]);
        for (k, v) in sd {
            let s = v
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string());
            data.insert(
                k,
                json!(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())),
            );
        }
    }
    Ok(())
}

fn namespace(obj: &mut Value) {
    let name = get_str(obj, &["metadata", "name"])
        .unwrap_or("")
        .to_string();
    obj_at(obj, &["metadata", "labels"]).insert("kubernetes.io/metadata.name".into(), json!(name));
    default_at(obj, &["spec"], "finalizers", json!(["kubernetes"]));
    default_at(obj, &["status"], "phase", json!("Active"));
}

fn network_policy(obj: &mut Value) {
    let has_egress = get(obj, &["spec", "egress"]).is_some();
    let spec = obj_at(obj, &["spec"]);
    if !spec.contains_key("policyTypes") {
        let mut t = vec![json!("Ingress")];
        if has_egress {
            t.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(t));
    }
    for dir in ["ingress", "egress"] {
        if let Some(rules) = spec.get_mut(dir).and_then(Value::as_array_mut) {
            for r in rules.iter_mut() {
                if let Some(ports) = r.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

fn crd(obj: &mut Value) {
    default_at(obj, &["spec", "conversion"], "strategy", json!("None"));
    let names = get(obj, &["spec", "names"]).cloned().unwrap_or(json!({}));
    let storage: Vec<Value> = get(obj, &["spec", "versions"])
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let now = crate::util::now_rfc3339();
    let status = obj_at(obj, &["status"]);
    status.insert("acceptedNames".into(), names);
    status.entry("conditions").or_insert(json!([
        {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
        {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
    ]));
    status
        .entry("storedVersions")
        .or_insert(Value::Array(storage));
}

#[cfg(test)]
mod tests {
    use super::pull_policy;

    #[test]
    fn image_pull_policy() {
        assert_eq!(pull_policy("redis:7.2"), "IfNotPresent");
        assert_eq!(pull_policy("redis"), "Always");
        assert_eq!(pull_policy("redis:latest"), "Always");
        assert_eq!(pull_policy("localhost:5000/redis"), "Always");
        assert_eq!(pull_policy("r@sha256:abc"), "IfNotPresent");
    }
}
