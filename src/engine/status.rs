//! `status`: how a deployed stack's GCS storage is doing right now, read-only and without the
//! state lock (docs/design.md §9.2). Reads the state (backend, serial, lock holder), the
//! RayCluster and its head pod, the Redis pod, the PVC (and its usage from the kubelet's stats
//! summary through the node proxy, when allowed), and Redis's persistence figures from the
//! exporter sidecar through the API server's service proxy, and turns each into a [`Check`].
//! Embedded-backend stacks show the GCS volume and the head instead of Redis.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use super::Engine;
use crate::cluster::Cluster;
use crate::cluster::live::{ServicePort, pod_ready};
use crate::durability::redis_settings;
use crate::kind::{Kind, ObjectRef};
use crate::render::{EMBEDDED_GCS_PVC_SUFFIX, METRICS_PORT_NAME, STACK_LABEL, names};
use crate::stack::{GcsBackend, Stack};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It holds.
    Ok,
    /// It does not hold, or a required figure could not be read: `status` exits 1.
    Fail,
    /// An optional figure the API does not offer here; never fails the command.
    Unavailable,
}

/// One line of the status: what was looked at, what was found, and what to do when it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The part of the stack: `raycluster`, `head`, `redis`, `persistence`, `volume`, `gcs`,
    /// `state`, `verify`.
    pub area: &'static str,
    pub name: String,
    pub outcome: Outcome,
    /// What was found, in words and numbers.
    pub value: String,
    /// What to do, when it failed or is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The status of one stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackStatus {
    pub stack: String,
    pub namespace: String,
    /// `"redis"` or `"embedded"`.
    pub backend: &'static str,
    /// What the stack's durability settings promise, in numbers.
    pub durability: String,
    pub checks: Vec<Check>,
    /// Every check holds (unavailable optional figures aside).
    pub healthy: bool,
}

impl StackStatus {
    pub fn failed(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .collect()
    }
}

fn ok(area: &'static str, name: &str, value: impl Into<String>) -> Check {
    Check {
        area,
        name: name.into(),
        outcome: Outcome::Ok,
        value: value.into(),
        fix: None,
    }
}

fn fail(area: &'static str, name: &str, value: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        area,
        name: name.into(),
        outcome: Outcome::Fail,
        value: value.into(),
        fix: Some(fix.into()),
    }
}

fn unavailable(
    area: &'static str,
    name: &str,
    value: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        area,
        name: name.into(),
        outcome: Outcome::Unavailable,
        value: value.into(),
        fix: Some(fix.into()),
    }
}

/// The promise of the stack's settings, in numbers.
pub fn durability_promise(stack: &Stack) -> String {
    match stack.durability.backend {
        GcsBackend::Redis => redis_settings(&stack.durability).guarantee(),
        GcsBackend::Embedded => "backend = \"embedded\": Ray's RocksDB store on one volume; Ray documents no per-write fsync guarantee, so no loss bound in seconds is promised".to_string(),
    }
}

/// Prometheus text exposition → the value of each unlabelled (or first-seen) series by name.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        out.entry(name.to_string()).or_insert(value);
    }
    out
}

/// Bytes in words: `1.5 MiB`.
fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// The persistence checks from the exporter's metrics, at `now` (seconds since the epoch).
pub fn persistence_checks(stack: &Stack, m: &BTreeMap<String, f64>, now: f64) -> Vec<Check> {
    const A: &str = "persistence";
    let settings = redis_settings(&stack.durability);
    let get = |k: &str| m.get(k).copied();
    let mut out = Vec::new();
    if get("redis_up") != Some(1.0) {
        out.push(fail(
            A,
            "redis_up",
            "the exporter answers but cannot reach Redis (redis_up 0)",
            "check the Redis container's logs (`kubectl logs -c redis`) and that the exporter has the password Secret",
        ));
        return out;
    }
    let status = |name: &str, metric: &str, fix: &str| -> Check {
        match get(metric) {
            Some(1.0) => ok(A, name, "ok"),
            Some(_) => fail(A, name, "err", fix),
            None => fail(
                A,
                name,
                format!("{metric} is missing from the exporter's metrics"),
                "check the exporter's version and logs",
            ),
        }
    };
    let aof = get("redis_aof_enabled") == Some(1.0);
    if aof != settings.appendonly {
        out.push(fail(
            A,
            "aof_enabled",
            format!(
                "{} (the stack wants {})",
                u8::from(aof),
                u8::from(settings.appendonly)
            ),
            "the running Redis does not use the rendered redis.conf: run `raystack plan` and apply",
        ));
    } else {
        out.push(ok(
            A,
            "aof_enabled",
            if aof {
                "yes"
            } else {
                "no (RDB snapshots only)"
            },
        ));
    }
    if aof {
        out.push(status(
            "aof_last_write_status",
            "redis_aof_last_write_status",
            "Redis cannot write its append-only file: the volume is full or failing; grow `[redis] storage` or free the volume, then run `raystack status` again",
        ));
        out.push(status(
            "aof_last_bgrewrite_status",
            "redis_aof_last_bgrewrite_status",
            "the last AOF rewrite failed: check free space on the volume and memory for the fork",
        ));
    }
    out.push(status(
        "rdb_last_bgsave_status",
        "redis_rdb_last_bgsave_status",
        "the last RDB snapshot failed (Redis now refuses writes): check free space on the volume and memory for the fork",
    ));
    match get("redis_rdb_last_save_timestamp_seconds") {
        Some(t) => {
            let age = (now - t).max(0.0);
            let changes = get("redis_rdb_changes_since_last_save").unwrap_or(0.0);
            let value = format!("{age:.0} s ago ({changes:.0} changes since)");
            match settings.rpo_rule {
                Some(rule) if changes > 0.0 && age > rule.seconds as f64 => out.push(fail(
                    A,
                    "last_successful_save",
                    value,
                    format!(
                        "unsaved writes are older than max_data_loss ({} s): snapshots are not happening; check rdb_last_bgsave_status and the volume",
                        rule.seconds
                    ),
                )),
                _ => out.push(ok(A, "last_successful_save", value)),
            }
        }
        None => out.push(fail(
            A,
            "last_successful_save",
            "redis_rdb_last_save_timestamp_seconds is missing from the exporter's metrics",
            "check the exporter's version and logs",
        )),
    }
    if aof {
        let delayed = get("redis_aof_delayed_fsync").unwrap_or(0.0);
        out.push(ok(
            A,
            "aof_delayed_fsync",
            if delayed == 0.0 {
                "0".to_string()
            } else {
                format!("{delayed:.0} since Redis started (writes that did not wait for a slow fsync; while it grows the ~2 s bound does not hold)")
            },
        ));
    }
    match get("redis_loading_dump_file") {
        Some(1.0) => out.push(fail(
            A,
            "loading",
            "yes: Redis is loading its data set and serves no GCS request yet",
            "wait for the load to finish (the liveness probe lets it), then run `raystack status` again",
        )),
        _ => out.push(ok(A, "loading", "no")),
    }
    let used = get("redis_memory_used_bytes").unwrap_or(0.0);
    let max = get("redis_memory_max_bytes").unwrap_or(0.0);
    out.push(if max > 0.0 {
        let share = used / max * 100.0;
        let value = format!("{} of maxmemory {} ({share:.0} %)", bytes(used), bytes(max));
        if share >= 90.0 {
            fail(
                A,
                "memory",
                value,
                "Redis will refuse writes at maxmemory (noeviction): raise `[redis] memory`",
            )
        } else {
            ok(A, "memory", value)
        }
    } else {
        ok(
            A,
            "memory",
            format!(
                "{} used; no maxmemory (the container's limit of {} applies)",
                bytes(used),
                stack.redis.memory
            ),
        )
    });
    out
}

/// A pod's readiness, restarts and last restart reason, in words.
fn pod_line(pod: &Value) -> (bool, String) {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let restarts: u64 = statuses
        .iter()
        .filter_map(|c| c.get("restartCount").and_then(Value::as_u64))
        .sum();
    let last = statuses.iter().find_map(|c| {
        c.pointer("/lastState/terminated/reason")
            .and_then(Value::as_str)
            .map(|r| {
                format!(
                    "{}: {r}",
                    c.get("name").and_then(Value::as_str).unwrap_or("?")
                )
            })
    });
    let ready = pod_ready(pod);
    let mut value = format!(
        "{name}: {}, {restarts} restart{}",
        if ready { "ready" } else { "not ready" },
        if restarts == 1 { "" } else { "s" }
    );
    if let Some(last) = last {
        value.push_str(&format!(" (last: {last})"));
    }
    (ready, value)
}

impl Engine {
    /// The status of the stack at `path`, read-only and without the lock.
    pub async fn status(&self, path: &Path) -> anyhow::Result<StackStatus> {
        let stack = crate::stack::load(path)?;
        let n = names(&stack);
        let embedded = stack.durability.backend == GcsBackend::Embedded;
        let mut checks = Vec::new();

        // State: read without the lock, as `plan` does with read-only credentials.
        match self.open_state(&stack).await {
            Ok(backend) => {
                let state = backend.read().await;
                let holder = backend.holder().await;
                let mut value = match &state {
                    Ok(Some(s)) => format!("{}, serial {}", backend.location(), s.serial),
                    Ok(None) => format!("{}: no state recorded", backend.location()),
                    Err(e) => format!("{}: {e}", backend.location()),
                };
                match &holder {
                    Ok(Some(h)) => value.push_str(&format!("; locked by {}", h.describe())),
                    Ok(None) => value.push_str("; not locked"),
                    Err(_) => value.push_str("; lock holder unreadable"),
                }
                checks.push(match state {
                    Ok(Some(_)) => ok("state", "state", value),
                    Ok(None) => fail(
                        "state",
                        "state",
                        value,
                        "the stack was never applied: run `raystack apply`",
                    ),
                    Err(_) => fail("state", "state", value, "check access to the state backend"),
                });
            }
            Err(e) => checks.push(fail(
                "state",
                "state",
                format!("{e:#}"),
                "check access to the state backend",
            )),
        }

        let cluster = match self.cluster(stack.cluster.context.as_deref()).await {
            Ok((cluster, _)) => cluster,
            Err(e) => {
                checks.push(fail(
                    "cluster",
                    "cluster",
                    format!("{e:#}"),
                    "check the kubeconfig and context (`--kubeconfig`, `--context`)",
                ));
                return Ok(finish(&stack, checks));
            }
        };

        let rc = self.ray_cluster_checks(&cluster, &stack, &mut checks).await;
        self.head_checks(&cluster, &stack, &mut checks).await;
        let pvc_name = if embedded {
            format!("{}{EMBEDDED_GCS_PVC_SUFFIX}", n.ray_cluster)
        } else {
            n.pvc.clone()
        };
        let mut node = None;
        if !embedded {
            node = self.redis_pod_checks(&cluster, &stack, &mut checks).await;
            self.exporter_checks(&cluster, &stack, &mut checks).await;
        } else if let Ok(pods) = cluster
            .list_pods(
                &n.namespace,
                &format!("ray.io/cluster={},ray.io/node-type=head", n.ray_cluster),
            )
            .await
        {
            node = pods
                .first()
                .and_then(|p| p.pointer("/spec/nodeName"))
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        self.volume_checks(&cluster, &stack, &pvc_name, node.as_deref(), &mut checks)
            .await;
        if let Some(rc) = rc {
            let uid = rc.pointer("/metadata/uid").and_then(Value::as_str);
            match crate::verify::preflight::storage_namespace(&rc) {
                Some(ns) if Some(ns.as_str()) == uid => checks.push(ok(
                    "gcs",
                    "storage_namespace",
                    format!("{ns} (the RayCluster's UID, KubeRay's default: a recreated RayCluster starts a new namespace)"),
                )),
                Some(ns) => checks.push(ok("gcs", "storage_namespace", ns)),
                None => checks.push(unavailable("gcs", "storage_namespace", "not set and the RayCluster has no UID", "apply the stack")),
            }
        }
        checks.push(match crate::verify::record::read(&stack) {
            Some(r) => {
                let value = r.describe();
                if r.passed {
                    ok("verify", "last_verify", value)
                } else {
                    fail("verify", "last_verify", value, "the last `raystack verify` failed: see its report, fix the cause and run it again")
                }
            }
            None => unavailable(
                "verify",
                "last_verify",
                "none recorded",
                "run `raystack verify` to record one",
            ),
        });
        Ok(finish(&stack, checks))
    }

    async fn ray_cluster_checks(
        &self,
        cluster: &Cluster,
        stack: &Stack,
        checks: &mut Vec<Check>,
    ) -> Option<Value> {
        let n = names(stack);
        let r = ObjectRef::new(Kind::RayCluster, Some(&n.namespace), &n.ray_cluster);
        match cluster.get(&r).await {
            Ok(Some(rc)) => {
                let state = rc
                    .pointer("/status/state")
                    .and_then(Value::as_str)
                    .unwrap_or("(no state yet)");
                checks.push(if state == "ready" {
                    ok("raycluster", "state", format!("{}: ready", r.address()))
                } else {
                    fail(
                        "raycluster",
                        "state",
                        format!("{}: {state}", r.address()),
                        "see `kubectl describe raycluster` and the KubeRay operator's logs",
                    )
                });
                Some(rc)
            }
            Ok(None) => {
                checks.push(fail(
                    "raycluster",
                    "state",
                    format!("{} does not exist", r.address()),
                    "run `raystack plan` and apply",
                ));
                None
            }
            Err(e) => {
                checks.push(fail(
                    "raycluster",
                    "state",
                    format!("cannot read {}: {e}", r.address()),
                    "check the credentials can read rayclusters",
                ));
                None
            }
        }
    }

    async fn head_checks(&self, cluster: &Cluster, stack: &Stack, checks: &mut Vec<Check>) {
        let n = names(stack);
        let selector = format!("ray.io/cluster={},ray.io/node-type=head", n.ray_cluster);
        checks.push(pod_check(cluster, &n.namespace, &selector, "head", "the Ray head").await);
    }

    /// The Redis pod's check; returns the node it runs on.
    async fn redis_pod_checks(
        &self,
        cluster: &Cluster,
        stack: &Stack,
        checks: &mut Vec<Check>,
    ) -> Option<String> {
        let n = names(stack);
        let selector = format!(
            "{STACK_LABEL}={},app.kubernetes.io/name=redis",
            stack.meta.name
        );
        checks.push(pod_check(cluster, &n.namespace, &selector, "redis", "the Redis").await);
        cluster
            .list_pods(&n.namespace, &selector)
            .await
            .ok()?
            .first()?
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    async fn exporter_checks(&self, cluster: &Cluster, stack: &Stack, checks: &mut Vec<Check>) {
        let n = names(stack);
        if !stack.redis.metrics {
            checks.push(fail(
                "persistence",
                "exporter",
                "`[redis] metrics = false`: no exporter to read persistence health from",
                "remove `metrics = false` from [redis] and apply",
            ));
            return;
        }
        let target = ServicePort {
            namespace: n.namespace.clone(),
            service: n.redis.clone(),
            port: METRICS_PORT_NAME.to_string(),
        };
        let path = target.proxy_path("/metrics");
        match cluster.proxy(&target, "GET", "/metrics", None).await {
            Ok(r) if r.ok() => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                checks.extend(persistence_checks(stack, &parse_metrics(&r.body), now));
            }
            Ok(r) => checks.push(fail(
                "persistence",
                "exporter",
                format!("the exporter is unreachable: {path} answered {}: {}", r.status, r.body.trim()),
                "check the Redis pod's redis-exporter container (`kubectl logs -c redis-exporter`) and that the credentials may use services/proxy",
            )),
            Err(e) => checks.push(fail(
                "persistence",
                "exporter",
                format!("the exporter is unreachable: {e}"),
                "check the Redis pod's redis-exporter container and that the credentials may use services/proxy",
            )),
        }
    }

    async fn volume_checks(
        &self,
        cluster: &Cluster,
        stack: &Stack,
        pvc: &str,
        node: Option<&str>,
        checks: &mut Vec<Check>,
    ) {
        let ns = &stack.meta.namespace;
        let r = ObjectRef::new(Kind::PersistentVolumeClaim, Some(ns), pvc);
        match cluster.get(&r).await {
            Ok(Some(obj)) => {
                let phase = obj
                    .pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("(no phase)");
                let capacity = obj
                    .pointer("/status/capacity/storage")
                    .and_then(Value::as_str)
                    .unwrap_or("(not reported)");
                let value = format!("{}: {phase}, capacity {capacity}", r.address());
                checks.push(if phase == "Bound" {
                    ok("volume", "pvc", value)
                } else {
                    fail(
                        "volume",
                        "pvc",
                        value,
                        "see `kubectl describe pvc`: the volume is not bound to a disk",
                    )
                });
            }
            Ok(None) => checks.push(fail(
                "volume",
                "pvc",
                format!("{} does not exist", r.address()),
                "run `raystack plan` and apply",
            )),
            Err(e) => checks.push(fail(
                "volume",
                "pvc",
                format!("cannot read {}: {e}", r.address()),
                "check the credentials can read persistentvolumeclaims",
            )),
        }
        checks.push(match node {
            None => unavailable("volume", "usage", "unavailable: no pod mounts the volume on a known node", "usage is read from the kubelet of the node that mounts the volume"),
            Some(node) => match volume_usage(cluster, node, ns, pvc).await {
                Ok(Some((used, cap))) => {
                    let share = if cap > 0.0 { used / cap * 100.0 } else { 0.0 };
                    let value = format!("{} of {} ({share:.0} %)", bytes(used), bytes(cap));
                    if share > 80.0 {
                        fail("volume", "usage", value, "the volume is more than 80 % full: grow `[redis] storage` (the storage class must allow expansion)")
                    } else {
                        ok("volume", "usage", value)
                    }
                }
                Ok(None) => unavailable("volume", "usage", "unavailable: the kubelet's stats summary does not list the volume", "usage appears once the kubelet reports the volume"),
                Err(why) => unavailable("volume", "usage", format!("unavailable: {why}"), "usage needs `get nodes/proxy` (the kubelet's stats summary); everything else works without it"),
            },
        });
    }
}

/// The kubelet's stats summary for `node` through the API server's node proxy: the used and
/// capacity bytes of the volume that `pvc` backs.
async fn volume_usage(
    cluster: &Cluster,
    node: &str,
    ns: &str,
    pvc: &str,
) -> Result<Option<(f64, f64)>, String> {
    let uri = format!("/api/v1/nodes/{node}/proxy/stats/summary");
    let req = http::Request::get(&uri)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    // Through the cluster's door (deadline, retries), like every other request.
    let text = cluster
        .send("read", &uri, crate::cluster::Retry::BusyOrDropped, || {
            cluster.client().request_text(req.clone())
        })
        .await
        .map_err(|e| e.to_string())?;
    let summary: Value = serde_json::from_str(&text).map_err(|e| format!("{uri}: {e}"))?;
    Ok(usage_from_summary(&summary, ns, pvc))
}

/// The used and capacity bytes of the volume `ns/pvc` in a kubelet stats summary
/// (`/stats/summary`: `pods[].volume[]` with `pvcRef`, `usedBytes`, `capacityBytes`).
pub fn usage_from_summary(summary: &Value, ns: &str, pvc: &str) -> Option<(f64, f64)> {
    let found = summary["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["volume"].as_array().into_iter().flatten())
        .find(|v| {
            v.pointer("/pvcRef/name").and_then(Value::as_str) == Some(pvc)
                && v.pointer("/pvcRef/namespace").and_then(Value::as_str) == Some(ns)
        })?;
    Some((
        found["usedBytes"].as_f64()?,
        found["capacityBytes"].as_f64()?,
    ))
}

/// The pod matching `selector`: ready or not, its restarts; no pod, or an unreadable list, fails.
async fn pod_check(
    cluster: &Cluster,
    ns: &str,
    selector: &str,
    area: &'static str,
    what: &str,
) -> Check {
    match cluster.list_pods(ns, selector).await {
        Ok(pods) if pods.is_empty() => fail(
            area,
            "pod",
            format!("no {what} pod (-l {selector})"),
            "run `raystack plan`: the workload may be missing or scaled to zero",
        ),
        Ok(pods) => {
            let (ready, value) = pod_line(&pods[0]);
            if ready {
                ok(area, "pod", value)
            } else {
                fail(
                    area,
                    "pod",
                    value,
                    format!("{what} pod is not ready: see `kubectl describe pod` and its logs"),
                )
            }
        }
        Err(e) => fail(
            area,
            "pod",
            format!("cannot read the {what} pod: {e}"),
            "check the credentials can list pods",
        ),
    }
}

fn finish(stack: &Stack, checks: Vec<Check>) -> StackStatus {
    let healthy = checks.iter().all(|c| c.outcome != Outcome::Fail);
    StackStatus {
        stack: stack.meta.name.clone(),
        namespace: stack.meta.namespace.clone(),
        backend: match stack.durability.backend {
            GcsBackend::Redis => "redis",
            GcsBackend::Embedded => "embedded",
        },
        durability: durability_promise(stack),
        checks,
        healthy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(extra: &[(&str, f64)]) -> BTreeMap<String, f64> {
        let mut m: BTreeMap<String, f64> = [
            ("redis_up", 1.0),
            ("redis_aof_enabled", 1.0),
            ("redis_aof_last_write_status", 1.0),
            ("redis_aof_last_bgrewrite_status", 1.0),
            ("redis_rdb_last_bgsave_status", 1.0),
            ("redis_rdb_last_save_timestamp_seconds", 1000.0),
            ("redis_rdb_changes_since_last_save", 5.0),
            ("redis_aof_delayed_fsync", 0.0),
            ("redis_loading_dump_file", 0.0),
            ("redis_memory_used_bytes", 2048.0),
            ("redis_memory_max_bytes", 0.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), *v);
        }
        m
    }

    fn failed(checks: &[Check]) -> Vec<(String, String)> {
        checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect()
    }

    #[test]
    fn volume_usage_comes_from_the_pvc_ref_in_the_kubelet_summary() {
        // The shape of a kubelet's /stats/summary (k8s.io/kubelet/pkg/apis/stats/v1alpha1).
        let summary = serde_json::json!({
            "node": {"nodeName": "n1"},
            "pods": [
                {"podRef": {"name": "other", "namespace": "ns"}, "volume": [
                    {"name": "data", "usedBytes": 1, "capacityBytes": 2, "pvcRef": {"name": "other-data", "namespace": "ns"}}
                ]},
                {"podRef": {"name": "ray-prod-redis-0", "namespace": "ns"}, "volume": [
                    {"name": "auth", "usedBytes": 0, "capacityBytes": 1048576},
                    {"name": "data", "availableBytes": 700, "usedBytes": 300, "capacityBytes": 1000,
                     "pvcRef": {"name": "ray-prod-redis-data", "namespace": "ns"}}
                ]}
            ]
        });
        assert_eq!(
            usage_from_summary(&summary, "ns", "ray-prod-redis-data"),
            Some((300.0, 1000.0))
        );
        assert_eq!(
            usage_from_summary(&summary, "other-ns", "ray-prod-redis-data"),
            None
        );
    }

    #[test]
    fn a_pod_line_names_restarts_and_the_last_reason() {
        let pod = serde_json::json!({
            "metadata": {"name": "ray-prod-redis-0"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "redis", "restartCount": 2, "lastState": {"terminated": {"reason": "OOMKilled"}}},
                    {"name": "redis-exporter", "restartCount": 0}
                ]}
        });
        assert_eq!(
            pod_line(&pod),
            (
                true,
                "ray-prod-redis-0: ready, 2 restarts (last: redis: OOMKilled)".to_string()
            )
        );
    }

    #[test]
    fn the_exposition_format_is_read_by_series_name() {
        let m = parse_metrics(
            "# HELP redis_up up\n# TYPE redis_up gauge\nredis_up 1\nredis_memory_used_bytes 1.5e+06\nredis_db_keys{db=\"db0\"} 12\n",
        );
        assert_eq!(m["redis_up"], 1.0);
        assert_eq!(m["redis_memory_used_bytes"], 1.5e6);
        assert_eq!(m["redis_db_keys"], 12.0);
    }

    #[test]
    fn a_healthy_everysec_redis_passes_every_check() {
        let s = crate::render::testing::stack();
        assert_eq!(failed(&persistence_checks(&s, &metrics(&[]), 1010.0)), []);
    }

    #[test]
    fn failures_are_named() {
        let s = crate::render::testing::stack();
        let checks = persistence_checks(
            &s,
            &metrics(&[
                ("redis_rdb_last_bgsave_status", 0.0),
                ("redis_loading_dump_file", 1.0),
                ("redis_memory_max_bytes", 2200.0),
            ]),
            1010.0,
        );
        assert_eq!(
            failed(&checks),
            [
                ("rdb_last_bgsave_status".to_string(), "err".to_string()),
                (
                    "loading".to_string(),
                    "yes: Redis is loading its data set and serves no GCS request yet".to_string()
                ),
                (
                    "memory".to_string(),
                    "2.0 KiB of maxmemory 2.1 KiB (93 %)".to_string()
                ),
            ]
        );
        let down = persistence_checks(&s, &metrics(&[("redis_up", 0.0)]), 1010.0);
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].outcome, Outcome::Fail);
    }

    #[test]
    fn an_rdb_only_redis_fails_when_unsaved_writes_outlive_the_rpo() {
        let mut s = crate::render::testing::stack();
        s.durability.max_data_loss = std::time::Duration::from_secs(300);
        let m = metrics(&[("redis_aof_enabled", 0.0)]);
        assert_eq!(failed(&persistence_checks(&s, &m, 1000.0 + 300.0)), []);
        assert_eq!(
            failed(&persistence_checks(&s, &m, 1000.0 + 301.0)),
            [(
                "last_successful_save".to_string(),
                "301 s ago (5 changes since)".to_string()
            )]
        );
        // Nothing to save: no loss, however old the snapshot.
        let idle = metrics(&[
            ("redis_aof_enabled", 0.0),
            ("redis_rdb_changes_since_last_save", 0.0),
        ]);
        assert_eq!(failed(&persistence_checks(&s, &idle, 99_999.0)), []);
        // An AOF the stack does not want (or the reverse) means the conf was not applied.
        assert_eq!(
            failed(&persistence_checks(&s, &metrics(&[]), 1010.0))[0].0,
            "aof_enabled"
        );
    }
}
