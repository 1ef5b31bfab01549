//! The durability summary at the top of every plan: the goal, the derived Redis settings, and
//! the volume that holds them.

use serde::{Deserialize, Serialize};

use super::storage::storage_class_name;
use crate::durability::redis_settings;
use crate::stack::Stack;
use crate::stack::units::format_duration;

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

/// Text used for `storage_class` when the PVC leaves the class to the cluster's default.
pub const CLUSTER_DEFAULT_CLASS: &str = "(cluster default)";

pub fn summarize(stack: &Stack) -> DurabilitySummary {
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
