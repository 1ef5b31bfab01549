//! What the KubeRay operator does after the API server stores a RayCluster change, which is
//! what a plan must tell: whose GCS state a delete or replace destroys (the Redis cleanup
//! finalizer and the UID-named storage namespace, or the embedded volume's deletionPolicy),
//! and whether an update reaches the running pods (`spec.upgradeStrategy`). Pure functions of
//! a change's before/after; the facts come from KubeRay's controller at v1.2.2, v1.3.0, v1.6.0
//! and v1.7.0.

use serde_json::Value;

use super::model::{Action, ResourceChange};
use crate::kind::Kind;

/// The finalizer KubeRay puts on a RayCluster whose GCS persists in Redis. On deletion it
/// removes the head, runs the cleanup Job, then drops the finalizer (also when the Job fails).
pub const CLEANUP_FINALIZER: &str = "ray.io/gcs-ft-redis-cleanup-finalizer";

/// The cleanup Job KubeRay creates for a deleted RayCluster `name` (KubeRay trims it to 63
/// characters; the stack loader keeps this name within 63, see `stack::derived_names`).
pub fn cleanup_job_name(ray_cluster: &str) -> String {
    format!("{ray_cluster}-redis-cleanup")
}

/// What a RayCluster's GCS state is lost to, as plans say it.
const GCS_STATE: &str = "detached actors, job records, Serve config";

/// Where a RayCluster keeps its GCS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcsStore {
    /// Redis (`gcsFaultToleranceOptions` without `backend: rocksdb`, or the pre-1.3
    /// `ray.io/ft-enabled` annotation); `namespace` is `externalStorageNamespace` if set.
    Redis { namespace: Option<String> },
    /// KubeRay 1.7's embedded RocksDB on `<name>-gcs-pvc`; `retain` when its deletionPolicy
    /// is `Retain`.
    Embedded { retain: bool },
    /// No GCS fault tolerance: the GCS lives in the head's memory only.
    None,
}

/// The GCS store a RayCluster manifest (or live object) declares.
pub fn gcs_store(rc: &Value) -> GcsStore {
    let ft = rc.pointer("/spec/gcsFaultToleranceOptions");
    if let Some(ft) = ft.filter(|v| v.is_object()) {
        if ft.get("backend").and_then(Value::as_str) == Some("rocksdb") {
            let retain = ft
                .pointer("/storage/deletionPolicy")
                .and_then(Value::as_str)
                == Some("Retain");
            return GcsStore::Embedded { retain };
        }
        let namespace = ft
            .get("externalStorageNamespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        return GcsStore::Redis { namespace };
    }
    let ann = |k: &str| rc.pointer(&format!("/metadata/annotations/{}", k.replace('/', "~1")));
    if ann("ray.io/ft-enabled").and_then(Value::as_str) == Some("true") {
        return GcsStore::Redis {
            namespace: ann("ray.io/external-storage-namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
    }
    GcsStore::None
}

/// `gcsFaultToleranceOptions.backend` as the server holds it (absent means `redis`).
fn backend_name(rc: &Value) -> &'static str {
    match gcs_store(rc) {
        GcsStore::Embedded { .. } => "rocksdb",
        GcsStore::Redis { .. } => "redis",
        GcsStore::None => "none",
    }
}

/// `gcsFaultToleranceOptions.backend` is immutable (a CEL rule in the 1.7 CRD): a RayCluster
/// whose backend changes must be replaced. Compared as effective values, because the Redis
/// form leaves the field out.
pub fn immutable_change(desired: &Value, live: &Value) -> Option<String> {
    let (want, have) = (backend_name(desired), backend_name(live));
    let ft = |v: &Value| v.pointer("/spec/gcsFaultToleranceOptions").is_some();
    if want != have && (ft(desired) || ft(live)) && want != "none" && have != "none" {
        return Some(format!(
            "gcsFaultToleranceOptions.backend is immutable on a RayCluster ({have} → {want})"
        ));
    }
    None
}

/// Why deleting or replacing this RayCluster loses its GCS state, or `None` when it does not
/// (not a RayCluster, not destructive, an embedded store whose volume is retained and reused,
/// or no GCS fault tolerance at all).
pub fn data_loss_reason(c: &ResourceChange) -> Option<String> {
    if c.kind != Kind::RayCluster || !matches!(c.action, Action::Delete | Action::Replace) {
        return None;
    }
    let old = c.before.as_ref().or(c.manifest.as_ref());
    if c.action == Action::Replace
        && let (Some(b), Some(a)) = (old, c.after.as_ref())
        && backend_name(b) != backend_name(a)
    {
        return Some(format!(
            "the GCS moves to another store ({} → {}), which starts empty: this cluster's GCS state ({GCS_STATE}) stays behind",
            backend_name(b),
            backend_name(a)
        ));
    }
    let Some(old) = old else {
        // Offline, nothing recorded: assume the Redis store (what a stack renders by default).
        return Some(redis_reason(&c.name, None));
    };
    match gcs_store(old) {
        GcsStore::Redis { namespace } => Some(redis_reason(&c.name, namespace.as_deref())),
        GcsStore::Embedded { retain: false } => Some(format!(
            "KubeRay deletes the GCS volume `{}-gcs-pvc` with the RayCluster (deletionPolicy DeleteWithCluster), and with it the GCS state ({GCS_STATE})",
            c.name
        )),
        GcsStore::Embedded { retain: true } | GcsStore::None => None,
    }
}

fn redis_reason(name: &str, namespace: Option<&str>) -> String {
    let ns = match namespace {
        Some(ns) => format!(
            "its storage namespace `{ns}` in Redis; the RayCluster created again starts with an empty GCS"
        ),
        None => "its storage namespace in Redis, which is the RayCluster's UID, and a RayCluster created again gets a new UID, so it starts with an empty GCS even if Redis kept everything".to_string(),
    };
    format!(
        "KubeRay's cleanup finalizer ({CLEANUP_FINALIZER}) runs the Job `{}` that deletes this cluster's GCS state ({GCS_STATE}) from {ns}",
        cleanup_job_name(name)
    )
}

/// Notes that are true of this change but are not data loss: a retained embedded volume.
pub fn delete_notes(c: &ResourceChange) -> Vec<String> {
    if c.kind != Kind::RayCluster || !matches!(c.action, Action::Delete | Action::Replace) {
        return Vec::new();
    }
    match c.before.as_ref().map(gcs_store) {
        Some(GcsStore::Embedded { retain: true }) => vec![format!(
            "the GCS volume `{}-gcs-pvc` is kept (deletionPolicy Retain): a RayCluster of the same name adopts it with its GCS state; delete the PVC by hand for a fresh store",
            c.name
        )],
        _ => Vec::new(),
    }
}

/// Parts of a RayCluster spec whose change reaches the pods, by name, for the rollout note.
/// Replica counts are left out: KubeRay scales groups without restarting anything (and its
/// Recreate hash ignores them too).
fn pod_changes(before: &Value, after: &Value) -> Vec<String> {
    let spec = |v: &Value, p: &str| v.pointer(&format!("/spec{p}")).cloned();
    let mut out = Vec::new();
    if spec(before, "/rayVersion") != spec(after, "/rayVersion") {
        out.push(format!(
            "rayVersion {} → {}",
            show(spec(before, "/rayVersion")),
            show(spec(after, "/rayVersion"))
        ));
    }
    for p in ["/gcsFaultToleranceOptions", "/enableInTreeAutoscaling"] {
        if spec(before, p) != spec(after, p) {
            out.push(p.trim_start_matches('/').to_string());
        }
    }
    let head = |v: &Value| v.pointer("/spec/headGroupSpec").cloned();
    out.extend(
        group_changes(head(before).as_ref(), head(after).as_ref())
            .into_iter()
            .map(|what| format!("head {what}")),
    );
    let groups = |v: &Value| {
        v.pointer("/spec/workerGroupSpecs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (bg, ag) = (groups(before), groups(after));
    for g in &ag {
        let name = g.get("groupName").and_then(Value::as_str).unwrap_or("?");
        let old = bg
            .iter()
            .find(|o| o.get("groupName").and_then(Value::as_str) == Some(name));
        match old {
            None => out.push(format!("new worker group `{name}`")),
            Some(o) => out.extend(
                group_changes(Some(o), Some(g))
                    .into_iter()
                    .map(|what| format!("worker group `{name}` {what}")),
            ),
        }
    }
    out
}

fn show(v: Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s,
        Some(v) => v.to_string(),
        None => "(unset)".into(),
    }
}

/// What changed in a head or worker group's pods: image, resources, start params, the rest of
/// the template.
fn group_changes(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let null = Value::Null;
    let (b, a) = (before.unwrap_or(&null), after.unwrap_or(&null));
    let containers = |v: &Value| {
        v.pointer("/template/spec/containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let pick = |cs: &[Value], field: &str| -> Vec<Value> {
        cs.iter()
            .map(|c| c.get(field).cloned().unwrap_or(Value::Null))
            .collect()
    };
    let (bc, ac) = (containers(b), containers(a));
    let mut out = Vec::new();
    if pick(&bc, "image") != pick(&ac, "image") {
        out.push("image".to_string());
    }
    if pick(&bc, "resources") != pick(&ac, "resources") {
        out.push("resources".to_string());
    }
    if b.get("rayStartParams") != a.get("rayStartParams") {
        out.push("start params".to_string());
    }
    let rest = |v: &Value, cs: &[Value]| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            for k in [
                "rayStartParams",
                "replicas",
                "minReplicas",
                "maxReplicas",
                "scaleStrategy",
            ] {
                m.remove(k);
            }
        }
        let stripped: Vec<Value> = cs
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(m) = c.as_object_mut() {
                    m.remove("image");
                    m.remove("resources");
                }
                c
            })
            .collect();
        if let Some(spec) = v.pointer_mut("/template/spec")
            && let Some(m) = spec.as_object_mut()
        {
            m.insert("containers".into(), Value::Array(stripped));
        }
        v
    };
    if rest(b, &bc) != rest(a, &ac) {
        out.push("pod template".to_string());
    }
    out
}

/// The rollout note of a RayCluster update: which changes reach the pods and whether KubeRay
/// restarts the running ones now. `None` when the update touches no pod (e.g. replica counts).
pub fn rollout_note(c: &ResourceChange) -> Option<String> {
    if c.kind != Kind::RayCluster || c.action != Action::Update {
        return None;
    }
    let (before, after) = (c.before.as_ref()?, c.after.as_ref()?);
    let changes = pod_changes(before, after);
    if changes.is_empty() {
        return None;
    }
    let what = changes.join(", ");
    let strategy = after
        .pointer("/spec/upgradeStrategy/type")
        .and_then(Value::as_str);
    let ns = c.namespace.as_deref().unwrap_or("default");
    Some(match strategy {
        Some("Recreate") => format!(
            "{what}: pods will be recreated (upgradeStrategy Recreate: KubeRay deletes every pod of the cluster; the head restarts and GCS fault tolerance restores its state; running jobs are interrupted)"
        ),
        Some(_) => format!(
            "{what}: KubeRay will not restart running pods (upgradeStrategy None): the change reaches only new pods; to roll it out now, set `[ray] upgrade_strategy = \"recreate\"`, or delete the pods (`kubectl -n {ns} delete pod -l ray.io/cluster={}`; the head restarts and GCS fault tolerance restores its state; running jobs are interrupted)",
            c.name
        ),
        None => format!(
            "{what}: KubeRay will not restart running pods (this KubeRay has no spec.upgradeStrategy; 1.6 added it): the change reaches only new pods; to roll it out now, delete the pods (`kubectl -n {ns} delete pod -l ray.io/cluster={}`; the head restarts and GCS fault tolerance restores its state; running jobs are interrupted), or upgrade KubeRay to 1.6 or later and set `[ray] kuberay`",
            c.name
        ),
    })
}

/// Fills `data_loss_reason` and `notes` of a RayCluster change from what KubeRay will do.
pub fn annotate(c: &mut ResourceChange) {
    if c.kind != Kind::RayCluster {
        return;
    }
    if let Some(why) = data_loss_reason(c) {
        c.data_loss = true;
        c.data_loss_reason = Some(why);
    }
    c.notes.extend(delete_notes(c));
    c.rollout = rollout_note(c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc(ft: Value, version: &str, image: &str, strategy: Option<&str>) -> Value {
        let mut v = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "s", "namespace": "s"},
            "spec": {"rayVersion": version, "gcsFaultToleranceOptions": ft,
                "headGroupSpec": {"rayStartParams": {"num-cpus": "0"}, "template": {"spec": {"containers": [{"name": "ray-head", "image": image}]}}},
                "workerGroupSpecs": [{"groupName": "cpu", "minReplicas": 1, "maxReplicas": 1, "replicas": 1,
                    "template": {"spec": {"containers": [{"name": "ray-worker", "image": image}]}}}]}});
        if let Some(s) = strategy {
            v["spec"]["upgradeStrategy"] = json!({"type": s});
        }
        v
    }

    fn redis() -> Value {
        json!({"redisAddress": "s-redis.s.svc:6379"})
    }

    fn change(action: Action, before: Option<Value>, after: Option<Value>) -> ResourceChange {
        ResourceChange {
            address: "RayCluster/s/s".into(),
            api_version: "ray.io/v1".into(),
            kind: Kind::RayCluster,
            namespace: Some("s".into()),
            name: "s".into(),
            action,
            reason: None,
            data_loss: false,
            data_loss_reason: None,
            rollout: None,
            notes: Vec::new(),
            adopt: None,
            drift: None,
            before,
            after,
            manifest: None,
        }
    }

    #[test]
    fn deleting_a_redis_backed_cluster_loses_its_gcs_state() {
        let mut c = change(Action::Delete, Some(rc(redis(), "2.45.0", "r", None)), None);
        annotate(&mut c);
        assert!(c.data_loss);
        let why = c.data_loss_reason.unwrap();
        assert!(why.contains(CLEANUP_FINALIZER), "{why}");
        assert!(why.contains("`s-redis-cleanup`"), "{why}");
        assert!(why.contains("UID"), "{why}");
    }

    #[test]
    fn the_pre_1_3_annotation_form_is_redis_too() {
        let old = json!({"kind": "RayCluster", "metadata": {"annotations": {"ray.io/ft-enabled": "true"}}});
        assert_eq!(gcs_store(&old), GcsStore::Redis { namespace: None });
    }

    #[test]
    fn a_retained_embedded_volume_is_not_data_loss_but_a_deleted_one_is() {
        let emb =
            |policy: &str| json!({"backend": "rocksdb", "storage": {"deletionPolicy": policy}});
        let mut kept = change(
            Action::Delete,
            Some(rc(emb("Retain"), "2.52.0", "r", None)),
            None,
        );
        annotate(&mut kept);
        assert!(!kept.data_loss);
        assert!(kept.notes[0].contains("`s-gcs-pvc` is kept"));
        let mut gone = change(
            Action::Delete,
            Some(rc(emb("DeleteWithCluster"), "2.52.0", "r", None)),
            None,
        );
        annotate(&mut gone);
        assert!(gone.data_loss);
    }

    #[test]
    fn a_backend_change_is_an_immutable_replace_that_loses_data() {
        let emb = json!({"backend": "rocksdb", "storage": {"deletionPolicy": "Retain"}});
        let (b, a) = (
            rc(redis(), "2.52.0", "r", None),
            rc(emb, "2.52.0", "r", None),
        );
        assert_eq!(
            immutable_change(&a, &b).as_deref(),
            Some("gcsFaultToleranceOptions.backend is immutable on a RayCluster (redis → rocksdb)")
        );
        assert_eq!(
            immutable_change(&b, &a).as_deref(),
            Some("gcsFaultToleranceOptions.backend is immutable on a RayCluster (rocksdb → redis)")
        );
        assert_eq!(immutable_change(&a, &a), None);
        let mut c = change(Action::Replace, Some(b), Some(a));
        annotate(&mut c);
        assert!(c.data_loss);
        assert!(
            c.data_loss_reason
                .unwrap()
                .starts_with("the GCS moves to another store (redis → rocksdb)")
        );
    }

    #[test]
    fn rollout_depends_on_the_upgrade_strategy() {
        let note = |strategy: Option<&str>| {
            let mut c = change(
                Action::Update,
                Some(rc(redis(), "2.45.0", "ray:2.45.0", strategy)),
                Some(rc(redis(), "2.46.0", "ray:2.46.0", strategy)),
            );
            annotate(&mut c);
            assert!(!c.data_loss);
            c.rollout.unwrap_or_default()
        };
        let recreate = note(Some("Recreate"));
        assert!(
            recreate.starts_with("rayVersion 2.45.0 → 2.46.0, head image, worker group `cpu` image: pods will be recreated"),
            "{recreate}"
        );
        assert!(
            note(Some("None"))
                .contains("KubeRay will not restart running pods (upgradeStrategy None)")
        );
        assert!(note(None).contains("this KubeRay has no spec.upgradeStrategy"));
    }

    #[test]
    fn replica_counts_restart_nothing() {
        let b = rc(redis(), "2.45.0", "r", Some("Recreate"));
        let mut a = b.clone();
        a["spec"]["workerGroupSpecs"][0]["replicas"] = json!(3);
        a["spec"]["workerGroupSpecs"][0]["maxReplicas"] = json!(3);
        let mut c = change(Action::Update, Some(b), Some(a));
        annotate(&mut c);
        assert_eq!(c.rollout, None);
    }
}
