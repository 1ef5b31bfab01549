//! The RayCluster (`ray.io/v1`) with GCS fault tolerance pointed at the stack's Redis, in the
//! shape the installed KubeRay understands (docs/design.md §4), or (KubeRay >= 1.7, `backend = "embedded"`) at
//! the GCS's own RocksDB store on a volume KubeRay creates; and `spec.upgradeStrategy` where
//! the operator has it (>= 1.6). Each group runs its own image and carries its pod settings
//! (`super::pod`).

use serde_json::{Map, Value, json};

use super::meta::{labels, names, namespaced, object};
use super::pod::apply_pod_settings;
use super::redis::{REDIS_PASSWORD_ENV, REDIS_PASSWORD_KEY};
use super::storage::storage_class_name;
use crate::durability::REDIS_PORT;
use crate::stack::{GcsBackend, Stack, WorkerGroup};

/// KubeRay names the embedded backend's volume `<RayCluster>-gcs-pvc` (it creates the PVC
/// itself, so raystack never renders or tracks it).
pub const EMBEDDED_GCS_PVC_SUFFIX: &str = "-gcs-pvc";

/// `gcsFaultToleranceOptions.storage.deletionPolicy` for the embedded backend: `Retain` when
/// the stack protects its volume (the PVC outlives the RayCluster, and a RayCluster of the
/// same name adopts it), else `DeleteWithCluster` (garbage-collected with the RayCluster).
pub fn embedded_deletion_policy(stack: &Stack) -> &'static str {
    if stack.durability.protect_volume {
        "Retain"
    } else {
        "DeleteWithCluster"
    }
}

/// The GCS's Redis address: `<stack>-redis.<namespace>.svc:6379`. Namespace-qualified so it
/// resolves from any pod, and without `cluster.local` so it works on clusters with another
/// cluster domain (the pod's DNS search path completes it).
pub fn redis_address(stack: &Stack) -> String {
    format!(
        "{}.{}.svc:{REDIS_PORT}",
        names(stack).redis,
        stack.meta.namespace
    )
}

/// KubeRay's in-tree autoscaler is enabled when some worker group may scale (min != max).
/// Such groups are rendered without `replicas`: the autoscaler owns that field, and a
/// server-side apply that kept setting it would fight the autoscaler on every apply. KubeRay
/// starts the group at `minReplicas`.
pub fn autoscaling_enabled(stack: &Stack) -> bool {
    stack.ray.workers.iter().any(scales)
}

fn scales(g: &WorkerGroup) -> bool {
    g.min_replicas != g.max_replicas
}

/// `num-cpus` for the head: `"0"` when the stack has workers, so no task or actor is scheduled
/// on the head. The head is restarted in every GCS failover (and by `raystack verify`); work on
/// it would be lost each time. A stack without workers keeps a schedulable head.
pub fn head_num_cpus(stack: &Stack) -> Option<&'static str> {
    stack
        .ray
        .workers
        .iter()
        .any(|g| g.max_replicas > 0)
        .then_some("0")
}

fn resources(cpu: &str, memory: &str, gpu: Option<u32>) -> Value {
    // requests = limits: Ray sizes itself from the limits; equal requests make the pod Guaranteed.
    let mut limits = Map::new();
    limits.insert("cpu".into(), json!(cpu));
    limits.insert("memory".into(), json!(memory));
    if let Some(gpu) = gpu {
        limits.insert("nvidia.com/gpu".into(), json!(gpu.to_string()));
    }
    object([
        ("requests", json!({ "cpu": cpu, "memory": memory })),
        ("limits", Value::Object(limits)),
    ])
}

fn password_from_secret(stack: &Stack) -> Value {
    json!({ "secretKeyRef": { "name": names(stack).secret, "key": REDIS_PASSWORD_KEY } })
}

/// Ray writes logs and spill files under /tmp/ray; an emptyDir keeps them across container
/// restarts within the pod.
fn log_volume() -> Value {
    json!([{ "name": "ray-logs", "emptyDir": {} }])
}

fn log_mount() -> Value {
    json!([{ "name": "ray-logs", "mountPath": "/tmp/ray" }])
}

pub(crate) fn ray_cluster(stack: &Stack) -> Value {
    let n = names(stack);
    let embedded = stack.durability.backend == GcsBackend::Embedded;
    let ft_options = stack.ray.kuberay.has_gcs_ft_options();

    let mut metadata = namespaced(stack, &n.ray_cluster, labels(stack, "ray", "cluster"));
    if !ft_options {
        // KubeRay < 1.3: GCS fault tolerance is switched on by annotation.
        let mut ann = Map::new();
        ann.insert("ray.io/ft-enabled".into(), json!("true"));
        if let Some(ns) = &stack.ray.external_storage_namespace {
            ann.insert("ray.io/external-storage-namespace".into(), json!(ns));
        }
        metadata["annotations"] = Value::Object(ann);
    }

    let mut head_params = Map::new();
    head_params.insert("dashboard-host".into(), json!("0.0.0.0"));
    if let Some(cpus) = head_num_cpus(stack) {
        head_params.insert("num-cpus".into(), json!(cpus));
    }
    let mut head = Map::new();
    head.insert("name".into(), json!("ray-head"));
    head.insert("image".into(), json!(stack.ray.head.image));
    if !ft_options && !embedded {
        head_params.insert(
            "redis-password".into(),
            json!(format!("${REDIS_PASSWORD_ENV}")),
        );
        head.insert(
            "env".into(),
            json!([
                { "name": "RAY_REDIS_ADDRESS", "value": redis_address(stack) },
                { "name": REDIS_PASSWORD_ENV, "valueFrom": password_from_secret(stack) },
            ]),
        );
    }
    head.insert(
        "ports".into(),
        json!([
            { "name": "gcs-server", "containerPort": 6379 },
            { "name": "dashboard", "containerPort": 8265 },
            { "name": "client", "containerPort": 10001 },
        ]),
    );
    head.insert(
        "resources".into(),
        resources(
            stack.ray.head.cpu.as_str(),
            stack.ray.head.memory.as_str(),
            None,
        ),
    );
    head.insert("volumeMounts".into(), log_mount());

    let workers: Vec<Value> = stack
        .ray
        .workers
        .iter()
        .map(|g| worker_group(stack, g))
        .collect();

    let mut spec = Map::new();
    if let Some(strategy) = stack.ray.upgrade_strategy {
        spec.insert(
            "upgradeStrategy".into(),
            json!({ "type": strategy.crd_value() }),
        );
    }
    spec.insert("rayVersion".into(), json!(stack.ray.version));
    spec.insert(
        "enableInTreeAutoscaling".into(),
        json!(autoscaling_enabled(stack)),
    );
    if embedded {
        let mut storage = Map::new();
        let size = stack
            .durability
            .embedded_storage
            .as_ref()
            .map_or("1Gi", |q| q.as_str());
        storage.insert("size".into(), json!(size));
        if let Some(class) = storage_class_name(stack) {
            storage.insert("storageClassName".into(), json!(class));
        }
        // RocksDB allows one writer: one head attaches the volume at a time.
        storage.insert("accessModes".into(), json!(["ReadWriteOnce"]));
        storage.insert(
            "deletionPolicy".into(),
            json!(embedded_deletion_policy(stack)),
        );
        spec.insert(
            "gcsFaultToleranceOptions".into(),
            json!({ "backend": "rocksdb", "storage": Value::Object(storage) }),
        );
    } else if ft_options {
        let mut ft = Map::new();
        ft.insert("redisAddress".into(), json!(redis_address(stack)));
        ft.insert(
            "redisPassword".into(),
            json!({ "valueFrom": password_from_secret(stack) }),
        );
        if let Some(ns) = &stack.ray.external_storage_namespace {
            ft.insert("externalStorageNamespace".into(), json!(ns));
        }
        spec.insert("gcsFaultToleranceOptions".into(), Value::Object(ft));
    }
    let mut head_template = object([
        (
            "metadata",
            object([("labels", labels(stack, "ray", "head"))]),
        ),
        (
            "spec",
            object([
                ("containers", Value::Array(vec![Value::Object(head)])),
                ("volumes", log_volume()),
            ]),
        ),
    ]);
    apply_pod_settings(stack, &mut head_template, &stack.ray.head.pod);
    spec.insert(
        "headGroupSpec".into(),
        object([
            ("rayStartParams", Value::Object(head_params)),
            ("template", head_template),
        ]),
    );
    spec.insert("workerGroupSpecs".into(), Value::Array(workers));

    object([
        ("apiVersion", json!("ray.io/v1")),
        ("kind", json!("RayCluster")),
        ("metadata", metadata),
        ("spec", Value::Object(spec)),
    ])
}

fn worker_group(stack: &Stack, g: &WorkerGroup) -> Value {
    let mut group = Map::new();
    group.insert("groupName".into(), json!(g.group));
    if !scales(g) {
        group.insert("replicas".into(), json!(g.replicas));
    }
    group.insert("minReplicas".into(), json!(g.min_replicas));
    group.insert("maxReplicas".into(), json!(g.max_replicas));
    group.insert("rayStartParams".into(), json!({}));
    let container = object([
        ("name", json!("ray-worker")),
        ("image", json!(g.image)),
        (
            "resources",
            resources(g.cpu.as_str(), g.memory.as_str(), g.gpu),
        ),
        ("volumeMounts", log_mount()),
    ]);
    let mut template = object([
        (
            "metadata",
            object([("labels", labels(stack, "ray", "worker"))]),
        ),
        (
            "spec",
            object([
                ("containers", Value::Array(vec![container])),
                ("volumes", log_volume()),
            ]),
        ),
    ]);
    apply_pod_settings(stack, &mut template, &g.pod);
    group.insert("template".into(), template);
    Value::Object(group)
}
