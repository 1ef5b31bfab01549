//! The durable Redis behind the Ray GCS: Secret (no values), ConfigMap, PVC, StatefulSet (Redis
//! and, with `[redis] metrics`, the `redis_exporter` sidecar), Service and NetworkPolicy.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::meta::{labels, names, namespaced, redis_selector, redis_service_name};
use super::storage::storage_class_name;
use crate::durability::{REDIS_DATA_DIR, REDIS_PORT};
use crate::stack::{ProviderConfig, Stack, VolumeKind};

/// The key of the password in the `<stack>-redis-auth` Secret. The Secret is rendered without
/// data; apply generates this key's value once (32+ random bytes) and never regenerates it.
pub const REDIS_PASSWORD_KEY: &str = "password";

/// The environment variable that carries the password into the Redis and Ray head containers.
pub const REDIS_PASSWORD_ENV: &str = "REDIS_PASSWORD";

/// Pod-template annotation holding the SHA-256 of `redis.conf`: a configuration change changes
/// the template, so the StatefulSet rolls the Redis pod (Redis reads its file only at start).
pub const REDIS_CONF_HASH_ANNOTATION: &str = "raystack.dev/redis-conf-sha256";

/// The environment variable `redis-cli` reads the password from: the probes authenticate with
/// it, so the password is never an argument of a probe process.
pub const REDISCLI_AUTH_ENV: &str = "REDISCLI_AUTH";

/// Where the ConfigMap is mounted in the Redis container.
pub const CONF_DIR: &str = "/etc/redis";

/// A memory-backed emptyDir in the Redis container. At start the container writes
/// `requirepass` from the environment into [`AUTH_CONF`] here (mode 0600, never on disk) and
/// Redis includes it, so the password is in no process's arguments.
pub const AUTH_DIR: &str = "/run/redis-auth";

/// The config include holding `requirepass`, inside [`AUTH_DIR`].
pub const AUTH_CONF: &str = "/run/redis-auth/auth.conf";

/// The Redis container's start script (run by `sh -c`). `printf` is a shell builtin, so the
/// password is written without appearing in any process's arguments; the variables are unset
/// before `exec`, so the server's environment does not hold it either. `exec` so Redis itself
/// receives SIGTERM and shuts down cleanly (final fsync/snapshot).
pub fn redis_start_script() -> String {
    format!(
        "set -e; umask 077; printf 'requirepass %s\\n' \"${REDIS_PASSWORD_ENV}\" > {AUTH_CONF}; \
         unset {REDIS_PASSWORD_ENV} {REDISCLI_AUTH_ENV}; \
         exec redis-server {CONF_DIR}/redis.conf --include {AUTH_CONF}"
    )
}

/// The pinned `redis_exporter` image of the metrics sidecar (Debian packages the same program
/// as `prometheus-redis-exporter`, which the tests run).
pub const REDIS_EXPORTER_IMAGE: &str = "oliver006/redis_exporter:v1.67.0";

/// The exporter's port, in the container and behind the Service, named [`METRICS_PORT_NAME`].
pub const METRICS_PORT: u16 = 9121;

/// The name of the exporter's port on the container and the Service; `status` reaches
/// `/metrics` through the API server's service proxy by this name.
pub const METRICS_PORT_NAME: &str = "metrics";

/// The sidecar's container name.
pub const EXPORTER_CONTAINER: &str = "redis-exporter";

/// Seconds Kubernetes waits after SIGTERM before SIGKILL. On SIGTERM Redis fsyncs the AOF and,
/// with save rules configured, writes a final RDB snapshot; a few GiB at disk speed fits well
/// within two minutes, and a killed snapshot would leave only the previous one.
const TERMINATION_GRACE_SECONDS: u32 = 120;

pub(crate) fn secret(stack: &Stack) -> Value {
    let n = names(stack);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": namespaced(stack, &n.secret, labels(stack, "redis", "auth")),
        "type": "Opaque",
    })
}

pub(crate) fn config_map(stack: &Stack, conf: &str) -> Value {
    let n = names(stack);
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": namespaced(stack, &n.config_map, labels(stack, "redis", "config")),
        "data": { "redis.conf": conf },
    })
}

pub(crate) fn pvc(stack: &Stack) -> Value {
    let n = names(stack);
    let mut spec = Map::new();
    spec.insert("accessModes".into(), json!(["ReadWriteOnce"]));
    if let Some(class) = storage_class_name(stack) {
        spec.insert("storageClassName".into(), json!(class));
    }
    spec.insert(
        "resources".into(),
        json!({ "requests": { "storage": stack.redis.storage.as_str() } }),
    );
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": namespaced(stack, &n.pvc, labels(stack, "redis", "data")),
        "spec": Value::Object(spec),
    })
}

/// `redis-cli` against the local Redis; it reads the password from `REDISCLI_AUTH` in the
/// container's environment, never from its arguments.
fn redis_cli_ping() -> String {
    format!("redis-cli -h 127.0.0.1 -p {REDIS_PORT} ping")
}

pub(crate) fn stateful_set(stack: &Stack, conf: &str) -> Value {
    let mut sts = stateful_set_base(stack, conf);
    redis_pod_settings(stack, &mut sts);
    if stack.redis.metrics {
        add_exporter_sidecar(stack, &mut sts);
    }
    sts
}

/// `[redis]`'s pod settings (placement, identity, env, labels, annotations) on the Redis pod
/// template; see `super::pod`.
fn redis_pod_settings(stack: &Stack, sts: &mut Value) {
    if let Some(template) = sts.pointer_mut("/spec/template") {
        super::pod::apply_pod_settings(stack, template, &stack.redis.pod);
    }
}

/// The `redis_exporter` sidecar: it scrapes Redis over loopback and serves Prometheus metrics
/// on [`METRICS_PORT`]. The password reaches it as `REDIS_PASSWORD` from the Secret (the
/// exporter reads that variable), never as an argument.
fn exporter_container(stack: &Stack) -> Value {
    let n = names(stack);
    json!({
        "name": EXPORTER_CONTAINER,
        "image": REDIS_EXPORTER_IMAGE,
        "env": [
            { "name": "REDIS_ADDR", "value": format!("redis://127.0.0.1:{REDIS_PORT}") },
            {
                "name": REDIS_PASSWORD_ENV,
                "valueFrom": { "secretKeyRef": { "name": n.secret, "key": REDIS_PASSWORD_KEY } },
            },
        ],
        "ports": [{ "name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP" }],
        "resources": {
            "requests": { "cpu": "50m", "memory": "64Mi" },
            "limits": { "cpu": "50m", "memory": "64Mi" },
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        },
    })
}

fn add_exporter_sidecar(stack: &Stack, sts: &mut Value) {
    if let Some(Value::Array(containers)) = sts.pointer_mut("/spec/template/spec/containers") {
        containers.push(exporter_container(stack));
    }
}

/// The Service's and NetworkPolicy's metrics port, when the exporter runs.
fn add_metrics_port(stack: &Stack, obj: &mut Value, pointer: &str, port: Value) {
    if stack.redis.metrics
        && let Some(Value::Array(ports)) = obj.pointer_mut(pointer)
    {
        ports.push(port);
    }
}

fn stateful_set_base(stack: &Stack, conf: &str) -> Value {
    let n = names(stack);
    let conf_hash = hex::encode(Sha256::digest(conf.as_bytes()));
    let resources = json!({
        // requests = limits: Guaranteed QoS, the last class the kubelet evicts under pressure.
        "requests": { "cpu": stack.redis.cpu.as_str(), "memory": stack.redis.memory.as_str() },
        "limits": { "cpu": stack.redis.cpu.as_str(), "memory": stack.redis.memory.as_str() },
    });
    let mut pod_labels = redis_selector(stack);
    if let (Value::Object(m), Value::Object(extra)) =
        (&mut pod_labels, labels(stack, "redis", "gcs-storage"))
    {
        for (k, v) in extra {
            m.entry(k).or_insert(v);
        }
    }
    let mut annotations = Map::new();
    annotations.insert(REDIS_CONF_HASH_ANNOTATION.into(), json!(conf_hash));
    if stack.durability.volume == VolumeKind::ObjectFuse
        && matches!(stack.cluster.provider, ProviderConfig::Gcp(_))
    {
        // GKE injects the Cloud Storage FUSE sidecar only into pods that ask for it.
        annotations.insert("gke-gcsfuse/volumes".into(), json!("true"));
    }
    let mut sts = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": namespaced(stack, &n.redis, labels(stack, "redis", "gcs-storage")),
        "spec": {
            "replicas": 1,
            "serviceName": redis_service_name(stack),
            "selector": { "matchLabels": redis_selector(stack) },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": Value::Object(annotations),
                },
                "spec": {
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": {
                        // 999 is the redis user of the official image.
                        "runAsUser": 999,
                        "runAsGroup": 999,
                        "runAsNonRoot": true,
                        "fsGroup": 999,
                        // Skip the recursive chown of a large volume when ownership already fits.
                        "fsGroupChangePolicy": "OnRootMismatch",
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "containers": [{
                        "name": "redis",
                        "image": stack.redis.image,
                        // The password never appears in the pod spec, the ConfigMap, or any
                        // process's arguments (see `redis_start_script`).
                        "command": ["sh", "-c", redis_start_script()],
                        "env": [
                            {
                                "name": REDIS_PASSWORD_ENV,
                                "valueFrom": { "secretKeyRef": { "name": n.secret, "key": REDIS_PASSWORD_KEY } },
                            },
                            {
                                "name": REDISCLI_AUTH_ENV,
                                "valueFrom": { "secretKeyRef": { "name": n.secret, "key": REDIS_PASSWORD_KEY } },
                            },
                        ],
                        "ports": [{ "name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP" }],
                        "resources": resources,
                        // Ready only when Redis answers PONG with the password: not while it is
                        // still loading the AOF (LOADING), not when the password is wrong.
                        "readinessProbe": {
                            "exec": { "command": ["sh", "-c", format!("{} | grep -q PONG", redis_cli_ping())] },
                            "initialDelaySeconds": 2,
                            "periodSeconds": 5,
                            "timeoutSeconds": 5,
                            "failureThreshold": 3,
                        },
                        // Alive while Redis answers at all; LOADING counts, so replaying a large
                        // AOF after a crash is never interrupted by a restart.
                        "livenessProbe": {
                            "exec": { "command": ["sh", "-c", format!("{} | grep -Eq 'PONG|LOADING'", redis_cli_ping())] },
                            "initialDelaySeconds": 15,
                            "periodSeconds": 10,
                            "timeoutSeconds": 5,
                            "failureThreshold": 6,
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                        "volumeMounts": [
                            { "name": "data", "mountPath": REDIS_DATA_DIR },
                            { "name": "config", "mountPath": CONF_DIR, "readOnly": true },
                            { "name": "auth", "mountPath": AUTH_DIR },
                        ],
                    }],
                    // A plain PVC rather than volumeClaimTemplates: the PVC is a first-class
                    // object in plans and state, with its own data-loss guard.
                    "volumes": [
                        { "name": "data", "persistentVolumeClaim": { "claimName": n.pvc } },
                        { "name": "config", "configMap": { "name": n.config_map } },
                        // tmpfs: the password file never reaches a node's disk.
                        { "name": "auth", "emptyDir": { "medium": "Memory", "sizeLimit": "1Mi" } },
                    ],
                },
            },
        },
    });
    // An adopted StatefulSet without a governing Service (`service_name = ""`) has none.
    if let Some(Value::Object(spec)) = sts.get_mut("spec")
        && spec.get("serviceName").is_some_and(Value::is_null)
    {
        spec.shift_remove("serviceName");
    }
    sts
}

pub(crate) fn service(stack: &Stack) -> Value {
    let n = names(stack);
    let mut svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": namespaced(stack, &n.redis, labels(stack, "redis", "gcs-storage")),
        "spec": {
            "type": "ClusterIP",
            "selector": redis_selector(stack),
            "ports": [{ "name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP" }],
        },
    });
    add_metrics_port(
        stack,
        &mut svc,
        "/spec/ports",
        json!({ "name": METRICS_PORT_NAME, "port": METRICS_PORT, "targetPort": METRICS_PORT_NAME, "protocol": "TCP" }),
    );
    svc
}

/// Only this stack's Ray pods (KubeRay labels every pod of a RayCluster, including its Redis
/// cleanup job, with `ray.io/cluster: <name>`) may reach Redis. Probes run inside the container
/// (`exec`), so they need no rule.
///
/// The exporter's port (when `[redis] metrics` is on) is open to every source: a scraper may run
/// in any namespace (kube-prometheus, a managed collector), and `raystack status` reads it through
/// the API server's service proxy, whose traffic comes from the control plane rather than from a
/// pod a selector could name. The port serves metrics only (no keys, no values, no password, no
/// commands); the Redis port itself stays closed to everything but the Ray pods.
pub(crate) fn network_policy(stack: &Stack) -> Value {
    let n = names(stack);
    let mut policy = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": namespaced(stack, &n.redis, labels(stack, "redis", "gcs-storage")),
        "spec": {
            "podSelector": { "matchLabels": redis_selector(stack) },
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{ "podSelector": { "matchLabels": { "ray.io/cluster": n.ray_cluster } } }],
                "ports": [{ "protocol": "TCP", "port": REDIS_PORT }],
            }],
        },
    });
    add_metrics_port(
        stack,
        &mut policy,
        "/spec/ingress",
        json!({ "ports": [{ "protocol": "TCP", "port": METRICS_PORT }] }),
    );
    policy
}
