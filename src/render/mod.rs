//! Stack → desired Kubernetes objects (docs/design.md §4), in apply order, plus the durability
//! summary every plan starts with and the YAML form `raystack render` prints. Pure: no cluster, no
//! cloud, no secret values (the Redis Secret is rendered empty; apply generates its value once).
//!
//! Objects are built with `serde_json::json!` in a fixed key order (serde_json's
//! `preserve_order` is on), so the same stack always renders byte-identical YAML. The stack's
//! pod settings are applied to every pod template (`pod.rs`) and its `[[patches]]` last
//! (`patch.rs`, checked by `check.rs`); [`load`] is how commands load a stack: the file read
//! and parsed by `crate::stack`, then its patches checked against what it renders.

mod alerts;
pub mod check;
mod meta;
mod object;
mod patch;
mod pod;
mod ray;
mod redis;
mod storage;
mod summary;
mod yaml;

pub use alerts::prometheus_rule_name;
pub use meta::{Names, OWNED_LABEL_KEYS, STACK_LABEL, common_labels, names};
pub use object::{Desired, Rendered};
pub use patch::{PatchError, apply_patches, check_patches};
pub use ray::{
    EMBEDDED_GCS_PVC_SUFFIX, autoscaling_enabled, embedded_deletion_policy, head_num_cpus,
    redis_address,
};
pub use redis::{
    AUTH_CONF, AUTH_DIR, CONF_DIR, EXPORTER_CONTAINER, METRICS_PORT, METRICS_PORT_NAME,
    REDIS_CONF_HASH_ANNOTATION, REDIS_EXPORTER_IMAGE, REDIS_PASSWORD_ENV, REDIS_PASSWORD_KEY,
    REDISCLI_AUTH_ENV, redis_start_script,
};
pub use storage::{aws_provisioner, storage_class, storage_class_name};
pub use summary::{CLUSTER_DEFAULT_CLASS, DurabilitySummary, EmbeddedSummary, Summary, summarize};
pub use yaml::{document, file_name, manifests};

use std::path::Path;

use crate::durability::redis_settings;
use crate::stack::{Diagnostics, GcsBackend, Stack};

/// [`crate::stack::load`], then the stack's `[[patches]]` applied to what it renders and
/// checked ([`check_patches`]): what every command loads a stack with.
pub fn load(path: &Path) -> Result<Stack, Diagnostics> {
    load_with_bytes(path).map(|(stack, _)| stack)
}

/// [`load`], also returning the bytes parsed (see [`crate::stack::load_with_bytes`]).
pub fn load_with_bytes(path: &Path) -> Result<(Stack, Vec<u8>), Diagnostics> {
    let (stack, bytes) = crate::stack::load_with_bytes(path)?;
    check_patches(&stack)?;
    Ok((stack, bytes))
}

/// [`crate::stack::parse_str`] with the patches checked, as [`load`].
pub fn parse_str(path: &Path, text: &str) -> Result<Stack, Diagnostics> {
    let stack = crate::stack::parse_str(path, text)?;
    check_patches(&stack)?;
    Ok(stack)
}

/// Every object raystack wants in the cluster for `stack`, in apply order: Namespace (when
/// `create_namespace`), StorageClass (when raystack owns one), Secret, ConfigMap, PVC,
/// StatefulSet, Service, NetworkPolicy, RayCluster, and the PrometheusRule when
/// `[monitoring] prometheus_rules` asks for it. With `backend = "embedded"` there is no
/// Redis object at all: the RayCluster asks KubeRay for its own GCS volume. The stack's
/// `[[patches]]` are applied last ([`load`] has checked that they apply).
pub fn render(stack: &Stack) -> Rendered {
    let mut objects = render_unpatched(stack);
    if !stack.patches.is_empty() {
        let mut patched = objects.clone();
        match apply_patches(stack, &mut patched, &stack.patches) {
            Ok(()) => objects = patched,
            // A stack from `load` has had its patches applied and checked; a stack built
            // otherwise with a failing patch renders unpatched.
            Err(e) => debug_assert!(
                false,
                "patch {} failed after validation: {}",
                e.index, e.message
            ),
        }
    }
    Rendered {
        objects: objects.into_iter().map(Desired::new).collect(),
    }
}

/// The objects before `[[patches]]`.
pub fn render_unpatched(stack: &Stack) -> Vec<serde_json::Value> {
    let settings = redis_settings(&stack.durability);
    let conf = settings.to_redis_conf();
    let mut objects = Vec::new();
    if stack.meta.create_namespace {
        objects.push(meta::namespace(stack));
    }
    if let Some(class) = storage::storage_class(stack) {
        objects.push(class);
    }
    if stack.durability.backend == GcsBackend::Embedded {
        objects.push(ray::ray_cluster(stack));
        return objects;
    }
    objects.push(redis::secret(stack));
    objects.push(redis::config_map(stack, &conf));
    objects.push(redis::pvc(stack));
    objects.push(redis::stateful_set(stack, &conf));
    objects.push(redis::service(stack));
    objects.push(redis::network_policy(stack));
    objects.push(ray::ray_cluster(stack));
    if stack.monitoring.prometheus_rules {
        objects.push(alerts::prometheus_rule(stack));
    }
    objects
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
