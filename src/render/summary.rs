//! The durability summary at the top of every plan: the goal, the derived Redis settings, and
//! the volume that holds them; or, with `backend = "embedded"`, what KubeRay's RocksDB store
//! promises and what it does not.

use serde::{Deserialize, Serialize};

use super::ray::{EMBEDDED_GCS_PVC_SUFFIX, embedded_deletion_policy};
use super::storage::storage_class_name;
use crate::durability::redis_settings;
use crate::stack::units::format_duration;
use crate::stack::{GcsBackend, Stack};

/// What the plan shows first (docs/design.md §6). Plain data, serialized as-is into JSON plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurabilitySummary {
    /// The RPO as stack files write it: `"0s"`, `"1s"`, `"5m"`.
    pub max_data_loss: String,
    pub appendonly: bool,
    /// `"always"` or `"everysec"`; `None` when the append-only file is off.
    pub appendfsync: Option<String>,
    /// Save rules in `redis.conf` order, each `"<seconds> <changes>"`, e.g. `["300 1", "60 1000"]`.
    pub save: Vec<String>,
    /// `"disk"` or `"object-fuse"`.
    pub volume: String,
    /// The PVC's storage class, or `"(cluster default)"` when the field is omitted.
    pub storage_class: String,
    /// The PVC size as written, e.g. `"8Gi"`.
    pub storage: String,
    pub protect_volume: bool,
    /// Why each setting was derived (`RedisSettings::explain`).
    pub explanation: Vec<String>,
}

/// The embedded backend's summary: where the GCS lives and what that promises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedSummary {
    /// Always `"embedded"` (KubeRay's `gcsFaultToleranceOptions.backend: rocksdb`).
    pub backend: String,
    /// The PVC KubeRay creates for the store: `<stack>-gcs-pvc`.
    pub volume: String,
    pub storage_class: String,
    pub storage: String,
    /// `"Retain"` (protect_volume) or `"DeleteWithCluster"`.
    pub deletion_policy: String,
    pub protect_volume: bool,
    /// What the backend promises and what it does not, from Ray's and KubeRay's documentation.
    pub explanation: Vec<String>,
}

/// The summary of either backend; serialized untagged, so a Redis stack's JSON is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Summary {
    Embedded(EmbeddedSummary),
    Redis(DurabilitySummary),
}

/// Text used for `storage_class` when the PVC leaves the class to the cluster's default.
pub const CLUSTER_DEFAULT_CLASS: &str = "(cluster default)";

pub fn summarize(stack: &Stack) -> Summary {
    match stack.durability.backend {
        GcsBackend::Redis => Summary::Redis(summarize_redis(stack)),
        GcsBackend::Embedded => Summary::Embedded(summarize_embedded(stack)),
    }
}

fn summarize_embedded(stack: &Stack) -> EmbeddedSummary {
    let volume = format!("{}{EMBEDDED_GCS_PVC_SUFFIX}", stack.meta.name);
    let policy = embedded_deletion_policy(stack);
    let mut explanation = vec![
        format!(
            "backend embedded: the GCS keeps its tables in an embedded RocksDB store (Ray's `RAY_gcs_storage=rocksdb`) on the PVC `{volume}`, which KubeRay creates and mounts on the head pod; no Redis is deployed"
        ),
        "a restarted head pod (crash, SIGKILL, eviction, upgrade) reattaches the same volume and the GCS reloads detached actors, job records and Serve config from it; running tasks and actors on workers stay up while it recovers".to_string(),
        "not replicated: the volume is the only copy of the GCS state; losing the disk (or its zone, for a zonal class) loses the state; Ray documents no per-write fsync guarantee for this backend".to_string(),
        "single writer: RocksDB admits one GCS at a time, so the volume is ReadWriteOnce and one head pod uses it".to_string(),
        "alpha in Ray and in KubeRay (feature gate GCSFaultToleranceEmbeddedStorage): the backend is immutable on a RayCluster, and its behaviour may change between releases; Redis is the officially supported backend".to_string(),
    ];
    explanation.push(match policy {
        "Retain" => format!(
            "deletionPolicy Retain (protect_volume): deleting the RayCluster keeps `{volume}`; a RayCluster of the same name adopts it with its state (delete the PVC by hand for a fresh store)"
        ),
        _ => format!(
            "deletionPolicy DeleteWithCluster (protect_volume = false): deleting the RayCluster deletes `{volume}` and the GCS state on it"
        ),
    });
    EmbeddedSummary {
        backend: "embedded".into(),
        volume,
        storage_class: storage_class_name(stack)
            .unwrap_or_else(|| CLUSTER_DEFAULT_CLASS.to_string()),
        storage: stack
            .durability
            .embedded_storage
            .as_ref()
            .map_or_else(|| "1Gi".to_string(), |q| q.as_str().to_string()),
        deletion_policy: policy.into(),
        protect_volume: stack.durability.protect_volume,
        explanation,
    }
}

fn summarize_redis(stack: &Stack) -> DurabilitySummary {
    let s = redis_settings(&stack.durability);
    DurabilitySummary {
        max_data_loss: format_duration(stack.durability.max_data_loss),
        appendonly: s.appendonly,
        appendfsync: s.appendfsync.map(|f| f.as_str().to_string()),
        save: s.save.iter().map(|r| r.to_string()).collect(),
        volume: stack.durability.volume.as_str().to_string(),
        storage_class: storage_class_name(stack)
            .unwrap_or_else(|| CLUSTER_DEFAULT_CLASS.to_string()),
        storage: stack.redis.storage.as_str().to_string(),
        protect_volume: stack.durability.protect_volume,
        explanation: s.explain(),
    }
}
