//! Stack → desired Kubernetes objects (docs/design.md §4), in apply order, plus the durability
//! summary every plan starts with and the YAML form `raystack render` prints. Pure: no cluster, no
//! cloud, no secret values (the Redis Secret is rendered empty; apply generates its value once).
//!
//! Objects are built with `serde_json::json!` in a fixed key order (serde_json's
//! `preserve_order` is on), so the same stack always renders byte-identical YAML.

mod alerts;
mod meta;
mod object;
mod ray;
mod redis;
mod storage;
mod summary;
mod yaml;

pub use alerts::prometheus_rule_name;
pub use meta::{Names, STACK_LABEL, common_labels, names};
pub use object::{Desired, Rendered};
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
pub use yaml::{document, file_name, to_yaml};

use crate::durability::redis_settings;
use crate::stack::{GcsBackend, Stack};

/// Every object raystack wants in the cluster for `stack`, in apply order: Namespace (when
/// `create_namespace`), StorageClass (when raystack owns one), Secret, ConfigMap, PVC,
/// StatefulSet, Service, NetworkPolicy, RayCluster, and the PrometheusRule when
/// `[monitoring] prometheus_rules` asks for it. With `backend = "embedded"` there is no
/// Redis object at all: the RayCluster asks KubeRay for its own GCS volume.
pub fn render(stack: &Stack) -> Rendered {
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
        return Rendered {
            objects: objects.into_iter().map(Desired::new).collect(),
        };
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
    Rendered {
        objects: objects.into_iter().map(Desired::new).collect(),
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
