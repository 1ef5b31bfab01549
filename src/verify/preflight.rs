//! Before anything is disrupted: find what the drill will touch (the head pod, the Redis pod,
//! the head's Service and dashboard port) and check that the drill can mean something — the
//! stack has no pending changes, the RayCluster is ready, GCS fault tolerance is configured, the
//! dashboard answers through the API server's proxy — and warn when the durability settings
//! would lose data on a pod kill. Reads only.
//!
//! A `backend = "embedded"` stack has no Redis: its GCS is a RocksDB store on a volume KubeRay
//! mounts on the head. Preflight then checks that the live RayCluster's embedded storage
//! settings are the ones the stack renders, and looks for the store's claim instead of Redis.

use serde_json::Value;

use super::jobs::{Jobs, brief};
use super::report::{Disrupt, Finding, Level};
use crate::cluster::Cluster;
use crate::cluster::live::{PodRef, ServicePort, owned_by, pod_ready};
use crate::cluster::readiness::{self, Readiness};
use crate::kind::{Kind, ObjectRef};
use crate::stack::{GcsBackend, Stack};

/// The dashboard's port in the head container when the template names none.
pub const DEFAULT_DASHBOARD_PORT: &str = "8265";

/// What the drill acts on, found by preflight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub stack: String,
    pub namespace: String,
    pub ray_cluster: String,
    pub redis_statefulset: String,
    pub config_map: String,
    /// The claim that holds the GCS data: Redis's, or (embedded) the store's `<cluster>-gcs-pvc`.
    pub pvc: String,
    /// `backend = "embedded"`: no Redis; the GCS is a RocksDB store on the head's volume.
    pub embedded: bool,
    /// Embedded: the `gcsFaultToleranceOptions` the stack renders, to compare with the live ones.
    pub rendered_ft: Option<Value>,
    /// `ray.io/cluster=<name>,ray.io/node-type=head`
    pub head_selector: String,
    /// The StatefulSet's pod labels.
    pub redis_selector: String,
    pub head_pod: Option<PodRef>,
    pub redis_pod: Option<PodRef>,
    pub dashboard: Option<ServicePort>,
    pub storage_namespace: Option<String>,
    pub pvc_uid: Option<String>,
    pub appendonly: Option<bool>,
    pub snapshot_every_secs: Option<u64>,
    pub redis_volume_is_claim: Option<bool>,
}

/// The result of preflight: findings (any error blocks the drill) and the targets.
#[derive(Debug, Clone, Default)]
pub struct Preflight {
    pub findings: Vec<Finding>,
    pub targets: Targets,
    pub ray_version: Option<String>,
}

impl Preflight {
    pub fn blocking(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.level == Level::Error)
            .collect()
    }
}

fn obj(kind: Kind, ns: &str, name: &str) -> ObjectRef {
    ObjectRef::new(kind, Some(ns), name)
}

/// The names and selectors of a stack's objects (no cluster needed).
pub fn targets_of(stack: &Stack) -> Targets {
    let names = crate::render::names(stack);
    let embedded = stack.durability.backend == GcsBackend::Embedded;
    let rendered_ft = embedded
        .then(|| {
            crate::render::render(stack)
                .objects
                .iter()
                .find(|o| o.kind() == Kind::RayCluster)
                .and_then(|o| {
                    o.manifest
                        .pointer("/spec/gcsFaultToleranceOptions")
                        .cloned()
                })
        })
        .flatten();
    Targets {
        stack: stack.meta.name.clone(),
        namespace: names.namespace.clone(),
        ray_cluster: names.ray_cluster.clone(),
        redis_statefulset: names.redis.clone(),
        config_map: names.config_map.clone(),
        pvc: if embedded {
            format!(
                "{}{}",
                names.ray_cluster,
                crate::render::EMBEDDED_GCS_PVC_SUFFIX
            )
        } else {
            names.pvc.clone()
        },
        embedded,
        rendered_ft,
        head_selector: format!("ray.io/cluster={},ray.io/node-type=head", names.ray_cluster),
        redis_selector: format!(
            "{}={},app.kubernetes.io/name=redis",
            crate::render::STACK_LABEL,
            stack.meta.name
        ),
        ..Targets::default()
    }
}

/// The storage namespace the head keeps its GCS under: the one the RayCluster sets, else its
/// UID (KubeRay's default).
pub fn storage_namespace(rc: &Value) -> Option<String> {
    let s = |p: &str| rc.pointer(p).and_then(Value::as_str).map(str::to_string);
    s("/spec/gcsFaultToleranceOptions/externalStorageNamespace")
        .or_else(|| s("/metadata/annotations/ray.io~1external-storage-namespace"))
        .or_else(|| s("/metadata/uid"))
}

/// How GCS fault tolerance is configured on a live RayCluster, or `None` when it is off.
pub fn gcs_ft(rc: &Value) -> Option<String> {
    if let Some(opts) = rc.pointer("/spec/gcsFaultToleranceOptions") {
        if let Some(addr) = opts.get("redisAddress").and_then(Value::as_str) {
            return Some(format!("gcsFaultToleranceOptions, Redis at {addr}"));
        }
        if let Some(backend) = opts.get("backend").and_then(Value::as_str) {
            return Some(format!("gcsFaultToleranceOptions, backend {backend}"));
        }
        return Some("gcsFaultToleranceOptions".into());
    }
    let annotated = rc
        .pointer("/metadata/annotations/ray.io~1ft-enabled")
        .and_then(Value::as_str)
        == Some("true");
    annotated.then(|| "annotation ray.io/ft-enabled".to_string())
}

/// The head Service and dashboard port of a live RayCluster.
pub fn dashboard_of(rc: &Value, namespace: &str, name: &str) -> ServicePort {
    let service = rc
        .pointer("/status/head/serviceName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{name}-head-svc"));
    let port = rc
        .pointer("/spec/headGroupSpec/template/spec/containers/0/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("name").and_then(Value::as_str) == Some("dashboard"))
        .and_then(|p| p.get("containerPort"))
        .map(|p| p.to_string().trim_matches('"').to_string())
        .unwrap_or_else(|| DEFAULT_DASHBOARD_PORT.to_string());
    ServicePort {
        namespace: namespace.to_string(),
        service,
        port,
    }
}

/// `appendonly` and the shortest `save <s> <n>` interval of a `redis.conf`.
pub fn persistence_of(conf: &str) -> (Option<bool>, Option<u64>) {
    let mut appendonly = None;
    let mut every: Option<u64> = None;
    for line in conf.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("appendonly") => appendonly = words.next().map(|v| v == "yes"),
            Some("save") => {
                let nums: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
                for pair in nums.chunks(2) {
                    every = Some(every.map_or(pair[0], |e| e.min(pair[0])));
                }
            }
            _ => {}
        }
    }
    (appendonly, every)
}

/// One ready pod matching `selector` and controlled by `owner` (kind, name), or why there is
/// none. A pod that only carries the labels (a debugging copy) is never the one disrupted.
fn one_ready(
    pods: &[Value],
    owner: (&str, &str),
    what: &str,
    selector: &str,
) -> Result<PodRef, String> {
    let pods: Vec<&Value> = pods
        .iter()
        .filter(|p| owned_by(p, owner.0, owner.1))
        .collect();
    let ready: Vec<&&Value> = pods.iter().filter(|p| pod_ready(p)).collect();
    match ready.as_slice() {
        [one] => Ok(PodRef::of(one)),
        [] if pods.is_empty() => Err(format!(
            "no {what} pod (-l {selector}) controlled by {} `{}`",
            owner.0, owner.1
        )),
        [] => Err(format!("the {what} pod is not ready (-l {selector})")),
        _ => Err(format!(
            "{} ready {what} pods (-l {selector}); expected one",
            ready.len()
        )),
    }
}

/// Runs every preflight check. `pending` lists the addresses the stack's plan would change.
pub async fn run(
    cluster: &Cluster,
    stack: &Stack,
    disrupt: Disrupt,
    pending: &[String],
) -> Preflight {
    let mut t = targets_of(stack);
    let mut f: Vec<Finding> = Vec::new();
    let mut ray_version = None;

    if pending.is_empty() {
        f.push(Finding::ok(
            "no pending changes",
            "the cluster matches the stack",
        ));
    } else {
        f.push(Finding::error(
            "no pending changes",
            format!(
                "the stack has pending changes ({}); run `raystack plan` and `raystack apply` first, \
                 so the drill tests what the stack declares",
                pending.join(", ")
            ),
        ));
    }

    let rc_ref = obj(Kind::RayCluster, &t.namespace, &t.ray_cluster);
    let rc = match cluster.get(&rc_ref).await {
        Ok(Some(rc)) => Some(rc),
        Ok(None) => {
            f.push(Finding::error(
                "RayCluster ready",
                format!(
                    "`{}` does not exist; apply the stack first",
                    rc_ref.address()
                ),
            ));
            None
        }
        Err(e) => {
            f.push(Finding::error("RayCluster ready", format!("{e}")));
            None
        }
    };
    if let Some(rc) = &rc {
        let deleting = rc.pointer("/metadata/deletionTimestamp").is_some();
        match readiness::check(rc, None) {
            // KubeRay's cleanup of its Redis keys (a finalizer) runs while the RayCluster is
            // being deleted, and its head still reports ready meanwhile.
            _ if deleting => f.push(Finding::error(
                "RayCluster ready",
                format!(
                    "`{}` is being deleted; apply the stack once it is gone",
                    rc_ref.address()
                ),
            )),
            Readiness::Ready(_) => f.push(Finding::ok(
                "RayCluster ready",
                format!("`{}` reports its head ready", rc_ref.address()),
            )),
            Readiness::Waiting(m) | Readiness::Failed(m) => f.push(Finding::error(
                "RayCluster ready",
                format!("`{}` is not ready: {m}", rc_ref.address()),
            )),
        }
        match gcs_ft(rc) {
            _ if t.embedded => f.push(embedded_ft(rc, t.rendered_ft.as_ref(), &t.pvc)),
            Some(how) => f.push(Finding::ok("GCS fault tolerance", how)),
            None => f.push(Finding::error(
                "GCS fault tolerance",
                "GCS fault tolerance is off on the live RayCluster (no gcsFaultToleranceOptions, no \
                 ray.io/ft-enabled annotation): a head restart loses every job and actor, so there is \
                 nothing to verify",
            )),
        }
        t.storage_namespace = storage_namespace(rc);
        t.dashboard = Some(dashboard_of(rc, &t.namespace, &t.ray_cluster));
    }

    match cluster.list_pods(&t.namespace, &t.head_selector).await {
        Ok(pods) => match one_ready(
            &pods,
            ("RayCluster", &t.ray_cluster),
            "Ray head",
            &t.head_selector,
        ) {
            Ok(p) => {
                f.push(Finding::ok("head pod", format!("`{}` is ready", p.name)));
                t.head_pod = Some(p);
            }
            Err(m) => f.push(Finding::error("head pod", m)),
        },
        Err(e) => f.push(Finding::error("head pod", format!("{e}"))),
    }

    if disrupt.redis() {
        let sts_ref = obj(Kind::StatefulSet, &t.namespace, &t.redis_statefulset);
        match cluster.get(&sts_ref).await {
            Ok(Some(sts)) => {
                match readiness::check(&sts, None) {
                    Readiness::Ready(_) => {}
                    Readiness::Waiting(m) | Readiness::Failed(m) => f.push(Finding::error(
                        "Redis ready",
                        format!("`{}` is not ready: {m}", sts_ref.address()),
                    )),
                }
                let data = sts
                    .pointer("/spec/template/spec/volumes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|v| v.get("name").and_then(Value::as_str) == Some("data"));
                t.redis_volume_is_claim = Some(
                    data.is_some_and(|v| v.get("persistentVolumeClaim").is_some())
                        || sts.pointer("/spec/volumeClaimTemplates/0").is_some(),
                );
            }
            Ok(None) => f.push(Finding::error(
                "Redis ready",
                format!(
                    "`{}` does not exist; apply the stack first",
                    sts_ref.address()
                ),
            )),
            Err(e) => f.push(Finding::error("Redis ready", format!("{e}"))),
        }
        match cluster.list_pods(&t.namespace, &t.redis_selector).await {
            Ok(pods) => match one_ready(
                &pods,
                ("StatefulSet", &t.redis_statefulset),
                "Redis",
                &t.redis_selector,
            ) {
                Ok(p) => {
                    if !f.iter().any(|x| x.check == "Redis ready") {
                        f.push(Finding::ok("Redis ready", format!("`{}` is ready", p.name)));
                    }
                    t.redis_pod = Some(p);
                }
                Err(m) => f.push(Finding::error("Redis ready", m)),
            },
            Err(e) => f.push(Finding::error("Redis ready", format!("{e}"))),
        }
    }

    // Durability: what the running Redis was told, not what the stack says.
    let cm_ref = obj(Kind::ConfigMap, &t.namespace, &t.config_map);
    if !t.embedded
        && let Ok(Some(cm)) = cluster.get(&cm_ref).await
        && let Some(conf) = cm.pointer("/data/redis.conf").and_then(Value::as_str)
    {
        let (aof, every) = persistence_of(conf);
        t.appendonly = aof;
        t.snapshot_every_secs = every;
    }
    let pvc_ref = obj(Kind::PersistentVolumeClaim, &t.namespace, &t.pvc);
    if let Ok(Some(pvc)) = cluster.get(&pvc_ref).await {
        t.pvc_uid = pvc
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    f.extend(durability_findings(&t, disrupt));

    if let Some(dashboard) = &t.dashboard {
        let jobs = Jobs {
            cluster,
            dashboard: dashboard.clone(),
        };
        let path = dashboard.proxy_path("/api/version");
        match jobs.version().await {
            Ok(Ok(v)) => {
                f.push(Finding::ok(
                    "dashboard through the API server",
                    format!("Ray {v} answers at {path}"),
                ));
                ray_version = Some(v);
            }
            Ok(Err(r)) => f.push(Finding::error(
                "dashboard through the API server",
                format!(
                    "{path} answered {}: {}; the drill talks to Ray's job API only through the API \
                     server's service proxy",
                    r.status,
                    brief(&r.body)
                ),
            )),
            Err(e) => f.push(Finding::error(
                "dashboard through the API server",
                format!("{e}"),
            )),
        }
    }

    Preflight {
        findings: f,
        targets: t,
        ray_version,
    }
}

/// The `GCS fault tolerance` finding of an embedded stack: the live RayCluster keeps its GCS in
/// the RocksDB store (`backend: rocksdb`) with the storage settings the stack renders (size,
/// access modes, class, deletion policy); anything else is an error, since the drill would not
/// test what the stack declares.
pub fn embedded_ft(rc: &Value, rendered: Option<&Value>, pvc: &str) -> Finding {
    const CHECK: &str = "GCS fault tolerance";
    let Some(live) = rc.pointer("/spec/gcsFaultToleranceOptions") else {
        return Finding::error(
            CHECK,
            "GCS fault tolerance is off on the live RayCluster (no gcsFaultToleranceOptions): the stack \
             declares backend = \"embedded\", and a head restart without the store loses every job and actor",
        );
    };
    let backend = live.get("backend").and_then(Value::as_str);
    if backend != Some("rocksdb") {
        let now = match (backend, live.get("redisAddress").and_then(Value::as_str)) {
            (_, Some(addr)) => format!("Redis at {addr}"),
            (Some(b), None) => format!("backend {b}"),
            (None, None) => "no backend".to_string(),
        };
        return Finding::error(
            CHECK,
            format!(
                "the stack declares backend = \"embedded\" (gcsFaultToleranceOptions.backend rocksdb) but the \
                 live RayCluster has {now}"
            ),
        );
    }
    let want = rendered
        .and_then(|r| r.get("storage"))
        .and_then(Value::as_object);
    let live_storage = live.get("storage");
    let mut differ = Vec::new();
    for (key, value) in want.into_iter().flatten() {
        let got = live_storage.and_then(|s| s.get(key));
        if got != Some(value) {
            differ.push(format!(
                "storage.{key} is {} (the stack renders {value})",
                got.map_or_else(|| "unset".to_string(), Value::to_string)
            ));
        }
    }
    if !differ.is_empty() {
        return Finding::error(
            CHECK,
            format!(
                "the live RayCluster's embedded storage settings are not the stack's: {}",
                differ.join("; ")
            ),
        );
    }
    let s = |k: &str| {
        live_storage
            .and_then(|v| v.get(k))
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    let mut how = vec![format!(
        "a {} volume `{pvc}`",
        s("size").unwrap_or_else(|| "default-size".into())
    )];
    if let Some(class) = s("storageClassName") {
        how.push(format!("class {class}"));
    }
    if let Some(policy) = s("deletionPolicy") {
        how.push(format!("deletionPolicy {policy}"));
    }
    Finding::ok(
        CHECK,
        format!(
            "gcsFaultToleranceOptions, backend rocksdb (embedded) on {}, as the stack renders",
            how.join(", ")
        ),
    )
}

/// Warnings about settings that would lose data on a pod kill (the drill still runs: it is the
/// way to see what they lose).
pub fn durability_findings(t: &Targets, disrupt: Disrupt) -> Vec<Finding> {
    let mut f = Vec::new();
    if t.embedded {
        f.push(match &t.pvc_uid {
            Some(_) => Finding::ok(
                "durability",
                format!(
                    "the embedded GCS store's claim `{}` exists (KubeRay mounts it on the head at the storage path)",
                    t.pvc
                ),
            ),
            None => Finding::warning(
                "durability",
                format!(
                    "the claim `{}` that KubeRay creates for the embedded GCS store was not found: the drill \
                     cannot tell whether the head's storage path is on a persistent volume (if it is not, the \
                     store dies with the head pod and the drill fails)",
                    t.pvc
                ),
            ),
        });
        return f;
    }
    if !disrupt.redis() {
        return f;
    }
    match t.appendonly {
        Some(false) => f.push(Finding::warning(
            "durability",
            format!(
                "Redis persists by RDB snapshots only (appendonly no{}): killing its pod loses every \
                 write since the last snapshot, so this drill is expected to fail",
                t.snapshot_every_secs
                    .map(|s| format!(", a snapshot at most every {s}s"))
                    .unwrap_or_default()
            ),
        )),
        Some(true) => f.push(Finding::ok(
            "durability",
            "Redis keeps an append-only file",
        )),
        None => f.push(Finding::warning(
            "durability",
            "the live redis.conf could not be read; the drill cannot tell what Redis persists",
        )),
    }
    if t.redis_volume_is_claim == Some(false) {
        f.push(Finding::warning(
            "durability",
            "the Redis data directory is not on a PersistentVolumeClaim: it dies with the pod",
        ));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn persistence_is_read_from_redis_conf() {
        let conf = "port 6379\nappendonly no\nsave 300 1\nsave 60 1000\n";
        assert_eq!(persistence_of(conf), (Some(false), Some(60)));
        assert_eq!(persistence_of("appendonly yes\n"), (Some(true), None));
    }

    #[test]
    fn gcs_ft_is_found_in_either_api_shape() {
        let new = json!({"spec": {"gcsFaultToleranceOptions": {"redisAddress": "r:6379"}}});
        assert_eq!(
            gcs_ft(&new).unwrap(),
            "gcsFaultToleranceOptions, Redis at r:6379"
        );
        let old = json!({"metadata": {"annotations": {"ray.io/ft-enabled": "true"}}});
        assert!(gcs_ft(&old).is_some());
        assert_eq!(gcs_ft(&json!({"spec": {}})), None);
    }

    #[test]
    fn embedded_ft_compares_the_live_storage_with_the_rendered() {
        let rendered = json!({"backend": "rocksdb", "storage": {"size": "2Gi", "accessModes": ["ReadWriteOnce"], "deletionPolicy": "Retain"}});
        let rc = json!({"spec": {"gcsFaultToleranceOptions": rendered.clone()}});
        let f = embedded_ft(&rc, Some(&rendered), "c-gcs-pvc");
        assert_eq!(f.level, Level::Ok, "{f:?}");
        assert_eq!(
            f.detail,
            "gcsFaultToleranceOptions, backend rocksdb (embedded) on a 2Gi volume `c-gcs-pvc`, deletionPolicy Retain, as the stack renders"
        );
        let smaller = json!({"spec": {"gcsFaultToleranceOptions": {"backend": "rocksdb", "storage": {"size": "1Gi", "accessModes": ["ReadWriteOnce"], "deletionPolicy": "Retain"}}}});
        let f = embedded_ft(&smaller, Some(&rendered), "c-gcs-pvc");
        assert_eq!(f.level, Level::Error);
        assert!(
            f.detail
                .ends_with("storage.size is \"1Gi\" (the stack renders \"2Gi\")"),
            "{f:?}"
        );
        let redis = json!({"spec": {"gcsFaultToleranceOptions": {"redisAddress": "r:6379"}}});
        let f = embedded_ft(&redis, Some(&rendered), "c-gcs-pvc");
        assert_eq!(f.level, Level::Error);
        assert!(
            f.detail
                .ends_with("the live RayCluster has Redis at r:6379"),
            "{f:?}"
        );
        let off = embedded_ft(&json!({"spec": {}}), Some(&rendered), "c-gcs-pvc");
        assert_eq!(off.level, Level::Error);
    }

    #[test]
    fn storage_namespace_defaults_to_the_uid() {
        let rc = json!({"metadata": {"uid": "u1"}, "spec": {}});
        assert_eq!(storage_namespace(&rc).as_deref(), Some("u1"));
        let rc = json!({"metadata": {"uid": "u1"}, "spec": {"gcsFaultToleranceOptions": {"externalStorageNamespace": "gcs"}}});
        assert_eq!(storage_namespace(&rc).as_deref(), Some("gcs"));
    }

    #[test]
    fn the_dashboard_port_comes_from_the_head_template() {
        let rc = json!({"spec": {"headGroupSpec": {"template": {"spec": {"containers": [
            {"ports": [{"name": "gcs-server", "containerPort": 6379}, {"name": "dashboard", "containerPort": 8266}]}
        ]}}}}, "status": {"head": {"serviceName": "x-head-svc"}}});
        let d = dashboard_of(&rc, "ns", "x");
        assert_eq!(
            (d.service.as_str(), d.port.as_str()),
            ("x-head-svc", "8266")
        );
        let d = dashboard_of(&json!({}), "ns", "x");
        assert_eq!(
            (d.service.as_str(), d.port.as_str()),
            ("x-head-svc", "8265")
        );
    }
}
