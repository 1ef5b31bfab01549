//! What the KubeRay operator does after the API server stores a RayCluster change, which is
//! what a plan must tell: whose GCS state a delete or replace destroys (the Redis cleanup
//! finalizer and the UID-named storage namespace, or the embedded volume's deletionPolicy),
//! and whether an update reaches the running pods (`spec.upgradeStrategy`). Pure functions of
//! a change's before/after, and whether an update in place points the head at a store that
//! does not hold its GCS state (another Redis, storage namespace or backend); the facts come from KubeRay's controller at v1.2.2, v1.3.0, v1.6.0
//! and v1.7.0. Also what follows from them for other objects and fields: a Redis StatefulSet
//! change that restarts the Redis pod restarts the Ray head (Ray's GCS does not outlive a Redis
//! restart), and KubeRay never resizes or reconfigures an embedded GCS volume it created.

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
        return GcsStore::Redis {
            namespace: storage_namespace(rc),
        };
    }
    if annotation(rc, FT_ENABLED) == Some("true") {
        return GcsStore::Redis {
            namespace: storage_namespace(rc),
        };
    }
    GcsStore::None
}

/// The pre-1.3 switch of GCS fault tolerance (still honoured by 1.3 and later).
const FT_ENABLED: &str = "ray.io/ft-enabled";
/// The pre-1.3 storage namespace (still honoured, below `externalStorageNamespace`).
const STORAGE_NAMESPACE_ANNOTATION: &str = "ray.io/external-storage-namespace";
/// The head container's variable Ray reads the Redis address from; KubeRay 1.3+ sets it from
/// `redisAddress`, before 1.3 the RayCluster sets it itself.
const REDIS_ADDRESS_ENV: &str = "RAY_REDIS_ADDRESS";
/// The head container's variable Ray reads the storage namespace from; KubeRay sets it only
/// when the container does not already.
const STORAGE_NAMESPACE_ENV: &str = "RAY_external_storage_namespace";
/// Redis's port when an address names none.
const REDIS_DEFAULT_PORT: u16 = 6379;

fn annotation<'a>(rc: &'a Value, key: &str) -> Option<&'a str> {
    rc.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// The head's Ray container (KubeRay's `RayContainerIndex` is 0) variable `name`: its literal
/// value, or its `valueFrom` as JSON (compared as it is, never resolved).
fn head_env(rc: &Value, name: &str) -> Option<String> {
    let env = rc
        .pointer("/spec/headGroupSpec/template/spec/containers/0/env")?
        .as_array()?;
    let var = env
        .iter()
        .rev()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))?;
    match (var.get("value"), var.get("valueFrom")) {
        (Some(Value::String(v)), _) => Some(v.clone()),
        (_, Some(from)) => Some(format!("valueFrom {from}")),
        _ => Some(String::new()),
    }
}

/// The GCS's storage namespace in Redis, as KubeRay's `configureGCSFaultTolerance` (v1.3.0,
/// `common/pod.go`; v1.2.2 the same without the options) picks it: a
/// `RAY_external_storage_namespace` the head container sets itself wins, then
/// `gcsFaultToleranceOptions.externalStorageNamespace`, then the
/// `ray.io/external-storage-namespace` annotation; `None` is the RayCluster's UID.
pub fn storage_namespace(rc: &Value) -> Option<String> {
    if let Some(ns) = head_env(rc, STORAGE_NAMESPACE_ENV) {
        return Some(ns);
    }
    let options = rc
        .pointer("/spec/gcsFaultToleranceOptions/externalStorageNamespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty());
    options
        .or_else(|| annotation(rc, STORAGE_NAMESPACE_ANNOTATION))
        .map(str::to_string)
}

/// The Redis address a RayCluster's head is given, as written: `gcsFaultToleranceOptions.
/// redisAddress` (1.3+), else the head container's `RAY_REDIS_ADDRESS` (the pre-1.3 form).
pub fn redis_address(rc: &Value) -> Option<String> {
    match rc.pointer("/spec/gcsFaultToleranceOptions") {
        Some(ft) if ft.is_object() => ft
            .get("redisAddress")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => head_env(rc, REDIS_ADDRESS_ENV),
    }
}

/// Writes `after`'s Redis address as `before` has it when both name the same server written
/// another way (`redis:6379` and `redis.NS.svc.cluster.local:6379`): that is no change, and
/// the plan shows none. Both forms (`redisAddress`, the head's `RAY_REDIS_ADDRESS`).
pub fn keep_written_address(before: &Value, after: &mut Value, fallback_namespace: &str) {
    let (Some(old), Some(new)) = (redis_address(before), redis_address(after)) else {
        return;
    };
    if old == new
        || canonical_redis_address(&old, namespace_of(before, fallback_namespace))
            != canonical_redis_address(&new, namespace_of(after, fallback_namespace))
    {
        return;
    }
    if let Some(slot) = after.pointer_mut("/spec/gcsFaultToleranceOptions/redisAddress") {
        *slot = Value::String(old);
        return;
    }
    let env = after
        .pointer_mut("/spec/headGroupSpec/template/spec/containers/0/env")
        .and_then(Value::as_array_mut);
    if let Some(var) = env.and_then(|env| {
        env.iter_mut()
            .rev()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(REDIS_ADDRESS_ENV))
    }) && var.get("value").is_some_and(Value::is_string)
    {
        var["value"] = Value::String(old);
    }
}

/// The server a Redis address reaches, written one way: the first of a comma-separated list
/// (what Ray and KubeRay's cleanup Job use), without scheme, credentials or database, the host
/// lower-cased, a Service name completed to `<svc>.<ns>.svc.cluster.local` (a one-label name is
/// in the RayCluster's namespace `namespace`, two labels are `<svc>.<ns>`, the resolver's search
/// path), and the port 6379 when none is given. So `redis:6379`, `redis.NS.svc:6379`,
/// `redis.NS.svc.cluster.local` and `redis://redis.NS:6379` are one server.
pub fn canonical_redis_address(address: &str, namespace: &str) -> String {
    let first = address.split(',').next().unwrap_or("").trim();
    let rest = first.split_once("://").map_or(first, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or("");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => (v6, None),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let port = port
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(REDIS_DEFAULT_PORT);
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = if host.parse::<std::net::IpAddr>().is_ok() || host.ends_with(".svc.cluster.local") {
        host
    } else if host.ends_with(".svc") {
        format!("{host}.cluster.local")
    } else {
        match host.split('.').count() {
            1 => format!("{host}.{namespace}.svc.cluster.local"),
            2 => format!("{host}.svc.cluster.local"),
            _ => host,
        }
    };
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An address as a plan shows it: the first of a list, without credentials.
fn shown_address(address: &str) -> String {
    let first = address.split(',').next().unwrap_or("").trim();
    match first.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => first.to_string(),
        },
        None => first.rsplit_once('@').map_or(first, |(_, h)| h).to_string(),
    }
}

/// The RayCluster's own namespace, for resolving a Service name in its Redis address.
fn namespace_of<'a>(rc: &'a Value, fallback: &'a str) -> &'a str {
    rc.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(fallback)
}

/// The fields that say where a RayCluster's GCS lives, as a projection shape: an update's
/// before and after carry them even when the stack does not declare them (an annotation
/// `kubectl` left), so a storage namespace that changes underneath shows.
pub fn gcs_shape() -> Value {
    serde_json::json!({
        "metadata": {"annotations": {FT_ENABLED: true, STORAGE_NAMESPACE_ANNOTATION: true}},
        "spec": {"gcsFaultToleranceOptions": {
            "backend": true, "redisAddress": true, "externalStorageNamespace": true}},
    })
}

/// Why an update in place loses the RayCluster's GCS state: it points the head at another
/// store (another Redis server, another storage namespace in it, another backend), which does
/// not hold that state; the head restarts on it with an empty GCS. `None` when the GCS stays
/// where it is (the same server written another way included) or either side's address is not
/// known.
pub fn gcs_move_reason(c: &ResourceChange) -> Option<String> {
    if c.kind != Kind::RayCluster || c.action != Action::Update {
        return None;
    }
    let (before, after) = (c.before.as_ref()?, c.after.as_ref()?);
    let fallback = c.namespace.as_deref().unwrap_or("default");
    let stays = "the head restarts on it with an empty GCS, and this cluster's GCS state";
    let (b, a) = (backend_name(before), backend_name(after));
    // From no fault tolerance nothing was persisted: there is nothing to leave behind.
    if b != a && b != "none" {
        return Some(format!(
            "the GCS moves to another store ({b} → {a}), which starts empty: {stays} ({GCS_STATE}) stays behind"
        ));
    }
    if b != "redis" || a != "redis" {
        return None;
    }
    if let (Some(old), Some(new)) = (redis_address(before), redis_address(after)) {
        let canonical =
            |addr: &str, rc: &Value| canonical_redis_address(addr, namespace_of(rc, fallback));
        if canonical(&old, before) != canonical(&new, after) {
            return Some(format!(
                "the GCS moves to another Redis (`{}` → `{}`), which does not hold this cluster's GCS state: {stays} ({GCS_STATE}) stays behind in the old one",
                shown_address(&old),
                shown_address(&new)
            ));
        }
    }
    let (old, new) = (storage_namespace(before), storage_namespace(after));
    if old != new {
        let name = |ns: Option<String>| {
            ns.map_or("the RayCluster's UID".to_string(), |ns| format!("`{ns}`"))
        };
        return Some(format!(
            "the GCS moves to another storage namespace in Redis ({} → {}), which does not hold this cluster's GCS state: {stays} ({GCS_STATE}) stays behind under the old one",
            name(old),
            name(new)
        ));
    }
    None
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
    if c.kind == Kind::RayCluster && c.action == Action::Update {
        return gcs_move_reason(c);
    }
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

/// Pod template fields that KubeRay's Recreate hash leaves out (`shouldRecreatePodsForUpgrade`:
/// tolerations and scheduling gates), named on their own: their change alone restarts nothing.
const UNHASHED: [(&str, &str); 2] = [
    ("tolerations", "tolerations"),
    ("schedulingGates", "scheduling gates"),
];

/// Whether a `pod_changes` item is only a change of fields the Recreate hash leaves out.
fn unhashed(change: &str) -> bool {
    UNHASHED.iter().any(|(_, name)| change.ends_with(name))
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
    for (field, name) in UNHASHED {
        let at = |v: &Value| v.pointer(&format!("/template/spec/{field}")).cloned();
        if at(b) != at(a) {
            out.push(name.to_string());
        }
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
            for (field, _) in UNHASHED {
                m.remove(field);
            }
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
    let restart = if gcs_move_reason(c).is_some() {
        "the head restarts with an empty GCS (see the data loss above)"
    } else {
        "the head restarts and GCS fault tolerance restores its state"
    };
    let strategy = after
        .pointer("/spec/upgradeStrategy/type")
        .and_then(Value::as_str);
    let ns = c.namespace.as_deref().unwrap_or("default");
    Some(match strategy {
        Some("Recreate") if changes.iter().all(|c| unhashed(c)) => format!(
            "{what}: KubeRay will not restart running pods (its upgradeStrategy Recreate hash leaves tolerations and scheduling gates out): the change reaches only new pods; to roll it out now, delete the pods (`kubectl -n {ns} delete pod -l ray.io/cluster={}`; {restart}; running jobs are interrupted)",
            c.name
        ),
        Some("Recreate") => format!(
            "{what}: pods will be recreated (upgradeStrategy Recreate: KubeRay deletes every pod of the cluster; {restart}; running jobs are interrupted)"
        ),
        Some(_) => format!(
            "{what}: KubeRay will not restart running pods (upgradeStrategy None): the change reaches only new pods; to roll it out now, set `[ray] upgrade_strategy = \"recreate\"`, or delete the pods (`kubectl -n {ns} delete pod -l ray.io/cluster={}`; {restart}; running jobs are interrupted)",
            c.name
        ),
        None => format!(
            "{what}: KubeRay will not restart running pods (this KubeRay has no spec.upgradeStrategy; 1.6 added it): the change reaches only new pods; to roll it out now, delete the pods (`kubectl -n {ns} delete pod -l ray.io/cluster={}`; {restart}; running jobs are interrupted), or upgrade KubeRay to 1.6 or later and set `[ray] kuberay`",
            c.name
        ),
    })
}

/// What the Ray head does when the Redis pod restarts, as plans say it. Ray 2.45–2.60's GCS
/// Redis client retries a failed command `RAY_num_redis_request_retries` (5) times with a
/// backoff from 100 ms doubling to 1 s, and never reconnects a dropped connection (the async
/// context is dropped on disconnect), so the GCS exits about 3.5 s into any Redis restart;
/// raising the retries would only postpone that (docs/design.md, "What the plan knows about
/// the operator and the autoscaler").
pub const REDIS_RESTART_EFFECT: &str = "the Redis pod restarts, and Ray's GCS gives up about 3.5 s without Redis (it does not reconnect): the Ray head restarts, running jobs are interrupted, and the GCS state survives only as far as the durability settings kept it (see the durability summary)";

/// The rollout note of a change to the Redis StatefulSet: which parts of the Redis pod change
/// (a new `redis.conf` shows as its hash annotation on the template) and what that does to the
/// Ray head. `None` when no pod restarts (e.g. labels on the StatefulSet itself).
pub fn redis_rollout_note(c: &ResourceChange) -> Option<String> {
    if c.kind != Kind::StatefulSet {
        return None;
    }
    match c.action {
        Action::Replace => Some(format!(
            "the StatefulSet is deleted and recreated: {REDIS_RESTART_EFFECT}"
        )),
        Action::Update => {
            let (before, after) = (c.before.as_ref()?, c.after.as_ref()?);
            let template = |v: &Value| v.pointer("/spec/template").cloned();
            if template(before) == template(after) {
                return None;
            }
            let conf = |v: &Value| {
                v.pointer("/spec/template/metadata/annotations")
                    .and_then(|a| a.get(crate::render::REDIS_CONF_HASH_ANNOTATION))
                    .cloned()
            };
            // The config hash annotation is named as `redis.conf`, not as a template change.
            let (b, a) = (without_conf_hash(before), without_conf_hash(after));
            let mut what = group_changes(b.get("spec"), a.get("spec"));
            if conf(before) != conf(after) {
                what.insert(0, "redis.conf".to_string());
            }
            if what.is_empty() {
                what.push("pod template".to_string());
            }
            Some(format!("Redis {}: {REDIS_RESTART_EFFECT}", what.join(", ")))
        }
        _ => None,
    }
}

/// A StatefulSet without the `redis.conf` hash annotation on its pod template.
fn without_conf_hash(sts: &Value) -> Value {
    let mut v = sts.clone();
    if let Some(a) = v
        .pointer_mut("/spec/template/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(crate::render::REDIS_CONF_HASH_ANNOTATION);
    }
    v
}

/// Fills `data_loss_reason` and `notes` of a RayCluster change from what KubeRay will do, and
/// the rollout note of a Redis StatefulSet change (the Ray head restarts with Redis).
pub fn annotate(c: &mut ResourceChange) {
    if c.kind == Kind::StatefulSet {
        c.rollout = redis_rollout_note(c);
        return;
    }
    if c.kind != Kind::RayCluster {
        return;
    }
    if let Some(why) = data_loss_reason(c) {
        c.data_loss = true;
        c.data_loss_reason = Some(why);
    }
    c.notes.extend(delete_notes(c));
    let volume = gcs_volume_notes(c);
    if volume.iter().any(|n| n.starts_with(VOLUME_UNCHANGED)) {
        let r = c.reason.take().unwrap_or_default();
        c.reason = Some(format!("{r}; {VOLUME_UNCHANGED} (see the note)"));
    }
    c.notes.extend(volume);
    c.rollout = rollout_note(c);
}

/// How a plan says that a changed `storage` of an embedded RayCluster reaches no volume.
const VOLUME_UNCHANGED: &str = "KubeRay will not resize or reconfigure the existing GCS volume";

/// What an update of an embedded-backend RayCluster does to its GCS volume `<name>-gcs-pvc`.
/// KubeRay 1.7 (`reconcileGCSStoragePVC`) creates the claim once from `storage.size`,
/// `storageClassName` and `accessModes` and never changes it (a different size or class only
/// emits a warning event), so such a change reaches nothing; `deletionPolicy` it does follow,
/// moving the claim's owner reference.
pub fn gcs_volume_notes(c: &ResourceChange) -> Vec<String> {
    if c.kind != Kind::RayCluster || c.action != Action::Update {
        return Vec::new();
    }
    let (Some(before), Some(after)) = (c.before.as_ref(), c.after.as_ref()) else {
        return Vec::new();
    };
    if !matches!(gcs_store(before), GcsStore::Embedded { .. })
        || !matches!(gcs_store(after), GcsStore::Embedded { .. })
    {
        return Vec::new();
    }
    let field = |v: &Value, f: &str| {
        v.pointer(&format!("/spec/gcsFaultToleranceOptions/storage/{f}"))
            .cloned()
    };
    let pvc = format!("{}-gcs-pvc", c.name);
    let ns = c.namespace.as_deref().unwrap_or("default");
    let mut notes = Vec::new();
    let changed: Vec<String> = ["size", "storageClassName", "accessModes"]
        .into_iter()
        .filter(|f| field(before, f) != field(after, f))
        .map(|f| format!("{f} {} → {}", show(field(before, f)), show(field(after, f))))
        .collect();
    if !changed.is_empty() {
        // Only a larger size alone can be had in place (a claim never shrinks).
        let size = |v: &Value| {
            field(v, "size")
                .and_then(|q| q.as_str().map(str::to_string))
                .and_then(|q| {
                    crate::stack::Quantity::parse(&q)
                        .ok()
                        .map(|p| (q, p.millis()))
                })
        };
        let grow = match (size(before), size(after)) {
            (Some((_, was)), Some((q, now))) if changed.len() == 1 && now > was => Some(q),
            _ => None,
        };
        let instead = match grow {
            Some(size) => format!(
                "to grow it, expand the claim itself where its storage class allows it (`allowVolumeExpansion: true`): `kubectl -n {ns} patch pvc {pvc} -p '{{\"spec\":{{\"resources\":{{\"requests\":{{\"storage\":\"{size}\"}}}}}}}}'`; a claim cannot shrink, and a class without expansion needs a new volume: `raystack destroy --allow-data-loss` (or delete the RayCluster and the claim) and apply again, which is DATA LOSS (the GCS starts empty)"
            ),
            None => "a claim's class and access modes cannot change: a new volume means deleting the RayCluster and the claim (`raystack destroy --allow-data-loss`) and applying again, which is DATA LOSS (the GCS starts empty)".to_string(),
        };
        notes.push(format!(
            "{VOLUME_UNCHANGED} `{pvc}` ({}): it creates the claim once and only emits a warning event for a different one; {instead}",
            changed.join(", ")
        ));
    }
    let policy = |v: &Value| field(v, "deletionPolicy");
    if policy(before) != policy(after) {
        let goes = matches!(gcs_store(after), GcsStore::Embedded { retain: false });
        notes.push(format!(
            "deletionPolicy {} → {}: KubeRay moves the owner reference of `{pvc}`; from now on deleting the RayCluster (or `raystack destroy`) {}",
            show(policy(before)),
            show(policy(after)),
            if goes {
                "deletes the GCS volume with it (DATA LOSS)"
            } else {
                "keeps the GCS volume, and a RayCluster of the same name adopts it"
            }
        ));
    }
    notes
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
    fn tolerations_alone_are_outside_the_recreate_hash() {
        let b = rc(redis(), "2.45.0", "r", Some("Recreate"));
        let mut a = b.clone();
        a["spec"]["workerGroupSpecs"][0]["template"]["spec"]["tolerations"] =
            json!([{"key": "gpu", "operator": "Exists"}]);
        let mut c = change(Action::Update, Some(b.clone()), Some(a.clone()));
        annotate(&mut c);
        assert_eq!(
            c.rollout.as_deref(),
            Some(
                "worker group `cpu` tolerations: KubeRay will not restart running pods (its upgradeStrategy Recreate hash leaves tolerations and scheduling gates out): the change reaches only new pods; to roll it out now, delete the pods (`kubectl -n s delete pod -l ray.io/cluster=s`; the head restarts and GCS fault tolerance restores its state; running jobs are interrupted)"
            )
        );
        // With another template change, the hash moves: pods are recreated.
        a["spec"]["workerGroupSpecs"][0]["template"]["spec"]["priorityClassName"] = json!("high");
        let mut c = change(Action::Update, Some(b), Some(a));
        annotate(&mut c);
        assert!(
            c.rollout
                .as_deref()
                .unwrap_or_default()
                .starts_with("worker group `cpu` tolerations, worker group `cpu` pod template: pods will be recreated"),
            "{:?}",
            c.rollout
        );
    }

    #[test]
    fn a_redis_statefulset_replace_or_template_change_restarts_the_head() {
        let sts = |image: &str| {
            json!({"kind": "StatefulSet", "spec": {"replicas": 1, "template": {
                "metadata": {"annotations": {crate::render::REDIS_CONF_HASH_ANNOTATION: "a"}},
                "spec": {"containers": [{"name": "redis", "image": image}]}}}})
        };
        let mut c = change(Action::Replace, Some(sts("redis:7")), Some(sts("redis:7")));
        c.kind = Kind::StatefulSet;
        annotate(&mut c);
        assert_eq!(
            c.rollout,
            Some(format!(
                "the StatefulSet is deleted and recreated: {REDIS_RESTART_EFFECT}"
            ))
        );
        let mut c = change(Action::Update, Some(sts("redis:7")), Some(sts("redis:8")));
        c.kind = Kind::StatefulSet;
        annotate(&mut c);
        assert_eq!(
            c.rollout,
            Some(format!("Redis image: {REDIS_RESTART_EFFECT}"))
        );
        // Outside the pod template (the StatefulSet's own labels): no pod restarts.
        let mut labelled = sts("redis:7");
        labelled["metadata"] = json!({"labels": {"team": "ml"}});
        let mut c = change(Action::Update, Some(sts("redis:7")), Some(labelled));
        c.kind = Kind::StatefulSet;
        annotate(&mut c);
        assert_eq!(c.rollout, None);
    }

    #[test]
    fn an_embedded_volume_change_that_cannot_be_had_in_place_says_data_loss() {
        let emb = |size: &str, class: Option<&str>| {
            let mut storage = json!({"size": size, "deletionPolicy": "Retain"});
            if let Some(cl) = class {
                storage["storageClassName"] = json!(cl);
            }
            rc(
                json!({"backend": "rocksdb", "storage": storage}),
                "2.60.0",
                "r",
                Some("Recreate"),
            )
        };
        let notes =
            |b: Value, a: Value| gcs_volume_notes(&change(Action::Update, Some(b), Some(a)));
        assert_eq!(
            notes(emb("4Gi", None), emb("2Gi", None)),
            [
                "KubeRay will not resize or reconfigure the existing GCS volume `s-gcs-pvc` (size 4Gi → 2Gi): it creates the claim once and only emits a warning event for a different one; a claim's class and access modes cannot change: a new volume means deleting the RayCluster and the claim (`raystack destroy --allow-data-loss`) and applying again, which is DATA LOSS (the GCS starts empty)"
            ]
        );
        assert!(
            notes(emb("2Gi", Some("a")), emb("2Gi", Some("b")))[0]
                .contains("(storageClassName a → b)")
        );
        assert!(notes(emb("2Gi", None), emb("2Gi", None)).is_empty());
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
    fn pointed_at(ft: Value) -> Value {
        rc(ft, "2.45.0", "r", Some("Recreate"))
    }

    /// A pre-1.3 RayCluster: the annotation switch, the address in the head's environment.
    fn legacy(address: &str, namespace: Option<&str>) -> Value {
        let mut v = rc(Value::Null, "2.45.0", "r", None);
        v["spec"]
            .as_object_mut()
            .unwrap()
            .remove("gcsFaultToleranceOptions");
        v["metadata"]["annotations"] = json!({"ray.io/ft-enabled": "true"});
        if let Some(ns) = namespace {
            v["metadata"]["annotations"]["ray.io/external-storage-namespace"] = json!(ns);
        }
        v["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "RAY_REDIS_ADDRESS", "value": address}]);
        v
    }

    fn update(before: Value, after: Value) -> ResourceChange {
        let mut c = change(Action::Update, Some(before), Some(after));
        annotate(&mut c);
        c
    }

    #[test]
    fn another_redis_address_is_data_loss_and_restores_nothing() {
        let c = update(
            pointed_at(json!({"redisAddress": "redis:6379"})),
            pointed_at(json!({"redisAddress": "s-redis.s.svc:6379"})),
        );
        assert!(c.data_loss);
        assert_eq!(
            c.data_loss_reason.as_deref(),
            Some(
                "the GCS moves to another Redis (`redis:6379` → `s-redis.s.svc:6379`), which does not hold this cluster's GCS state: the head restarts on it with an empty GCS, and this cluster's GCS state (detached actors, job records, Serve config) stays behind in the old one"
            )
        );
        assert_eq!(
            c.rollout.as_deref(),
            Some(
                "gcsFaultToleranceOptions: pods will be recreated (upgradeStrategy Recreate: KubeRay deletes every pod of the cluster; the head restarts with an empty GCS (see the data loss above); running jobs are interrupted)"
            )
        );
    }

    #[test]
    fn the_same_service_written_another_way_is_no_move() {
        let forms = [
            "redis:6379",
            "redis",
            "redis.s:6379",
            "redis.s.svc:6379",
            "REDIS.s.svc.cluster.local:6379",
            "redis.s.svc.cluster.local.",
            "redis://redis.s.svc:6379/0",
            "redis://:secret@redis:6379",
            "redis:6379,redis-replica:6379",
        ];
        for a in forms {
            for b in forms {
                let c = update(
                    pointed_at(json!({"redisAddress": a})),
                    pointed_at(json!({"redisAddress": b})),
                );
                assert_eq!(c.data_loss_reason, None, "{a} → {b}");
            }
        }
        // Another namespace's Service, another port, another host are other servers.
        for other in [
            "redis.t:6379",
            "redis:6380",
            "redis-2:6379",
            "10.0.0.7:6379",
        ] {
            let c = update(
                pointed_at(json!({"redisAddress": "redis:6379"})),
                pointed_at(json!({"redisAddress": other})),
            );
            assert!(c.data_loss, "{other}");
        }
    }

    #[test]
    fn canonical_addresses() {
        let cases = [
            ("redis", "redis.s.svc.cluster.local:6379"),
            ("redis.t:7000", "redis.t.svc.cluster.local:7000"),
            (
                "rediss://u:p@redis.t.svc:6380",
                "redis.t.svc.cluster.local:6380",
            ),
            ("10.0.0.7", "10.0.0.7:6379"),
            ("[fd00::7]:6380", "[fd00::7]:6380"),
            ("redis.example.com:6379", "redis.example.com:6379"),
        ];
        for (written, canonical) in cases {
            assert_eq!(
                canonical_redis_address(written, "s"),
                canonical,
                "{written}"
            );
        }
    }

    #[test]
    fn credentials_in_an_address_never_show() {
        let c = update(
            pointed_at(json!({"redisAddress": "redis://:hunter2@redis:6379"})),
            pointed_at(json!({"redisAddress": "rediss://user:hunter2@other:6379"})),
        );
        let why = c.data_loss_reason.unwrap();
        assert!(
            why.contains("(`redis://redis:6379` → `rediss://other:6379`)"),
            "{why}"
        );
        assert!(!why.contains("hunter2"), "{why}");
    }

    #[test]
    fn another_storage_namespace_is_data_loss() {
        let c = update(
            pointed_at(json!({"redisAddress": "redis:6379"})),
            pointed_at(json!({"redisAddress": "redis:6379", "externalStorageNamespace": "s-gcs"})),
        );
        assert_eq!(
            c.data_loss_reason.as_deref(),
            Some(
                "the GCS moves to another storage namespace in Redis (the RayCluster's UID → `s-gcs`), which does not hold this cluster's GCS state: the head restarts on it with an empty GCS, and this cluster's GCS state (detached actors, job records, Serve config) stays behind under the old one"
            )
        );
        // The annotation still names the namespace when the options do not (KubeRay 1.3's
        // order): the same namespace written in the newer field is no move.
        let mut annotated = pointed_at(json!({"redisAddress": "redis:6379"}));
        annotated["metadata"]["annotations"] =
            json!({"ray.io/external-storage-namespace": "s-gcs"});
        let c = update(
            annotated,
            pointed_at(json!({"redisAddress": "redis:6379", "externalStorageNamespace": "s-gcs"})),
        );
        assert_eq!(c.data_loss_reason, None);
    }

    #[test]
    fn the_pre_1_3_form_moves_too() {
        let c = update(
            legacy("redis:6379", Some("a")),
            legacy("other:6379", Some("a")),
        );
        assert!(
            c.data_loss_reason
                .unwrap()
                .starts_with("the GCS moves to another Redis (`redis:6379` → `other:6379`)")
        );
        let c = update(
            legacy("redis:6379", Some("a")),
            legacy("redis.s.svc:6379", Some("b")),
        );
        assert!(
            c.data_loss_reason
                .unwrap()
                .starts_with("the GCS moves to another storage namespace in Redis (`a` → `b`)")
        );
        // Upgrading the form (1.2 → 1.3) at the same server and namespace keeps the GCS.
        let c = update(
            legacy("redis:6379", Some("a")),
            pointed_at(
                json!({"redisAddress": "redis.s.svc:6379", "externalStorageNamespace": "a"}),
            ),
        );
        assert_eq!(c.data_loss_reason, None);
        // The head's own RAY_external_storage_namespace wins over both.
        let mut pinned = legacy("redis:6379", Some("a"));
        pinned["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "RAY_external_storage_namespace", "value": "pinned"}));
        assert_eq!(storage_namespace(&pinned).as_deref(), Some("pinned"));
    }

    #[test]
    fn turning_fault_tolerance_off_leaves_the_state_behind_but_turning_it_on_loses_nothing() {
        let mut off = pointed_at(Value::Null);
        off["spec"]
            .as_object_mut()
            .unwrap()
            .remove("gcsFaultToleranceOptions");
        let on = pointed_at(redis());
        assert!(
            update(on.clone(), off.clone())
                .data_loss_reason
                .unwrap()
                .starts_with("the GCS moves to another store (redis → none)")
        );
        assert_eq!(update(off, on).data_loss_reason, None);
    }
    #[test]
    fn the_same_server_written_another_way_is_written_as_it_was() {
        let before = pointed_at(json!({"redisAddress": "redis:6379"}));
        let mut after = pointed_at(json!({"redisAddress": "redis.s.svc.cluster.local"}));
        keep_written_address(&before, &mut after, "s");
        assert_eq!(after, before);
        let (old, mut new) = (legacy("redis", None), legacy("redis.s.svc:6379", None));
        keep_written_address(&old, &mut new, "s");
        assert_eq!(new, old);
        // Another server stays what the stack says.
        let mut other = pointed_at(json!({"redisAddress": "redis.t:6379"}));
        keep_written_address(&before, &mut other, "s");
        assert_eq!(redis_address(&other).as_deref(), Some("redis.t:6379"));
    }
}
