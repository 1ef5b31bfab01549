//! The persistence alerts of one stack (`[monitoring] prometheus_rules`): a prometheus-operator
//! `PrometheusRule` whose expressions read the Redis exporter sidecar's metrics (and the
//! kubelet's volume statistics), each alert with a runbook line that points at
//! `raystack status` (docs/design.md §4.2).

use serde_json::{Value, json};

use super::meta::{labels, names, namespaced};
use crate::durability::{AppendFsync, redis_settings};
use crate::stack::Stack;

/// The rule group's object name: `<stack>-redis-persistence`.
pub fn prometheus_rule_name(stack: &Stack) -> String {
    format!("{}-redis-persistence", stack.meta.name)
}

/// One alerting rule.
struct Alert {
    name: &'static str,
    expr: String,
    for_: &'static str,
    severity: &'static str,
    summary: String,
    runbook: String,
}

/// The alerts for `stack`, in a fixed order. Every series is selected by the labels a
/// Prometheus scraping the Redis Service (a ServiceMonitor, or the usual Kubernetes
/// service-discovery relabelling) gives it: `namespace` and `service`.
fn alerts(stack: &Stack) -> Vec<Alert> {
    let n = names(stack);
    let settings = redis_settings(&stack.durability);
    let sel = format!("namespace=\"{}\",service=\"{}\"", n.namespace, n.redis);
    let pvc_sel = format!(
        "namespace=\"{}\",persistentvolumeclaim=\"{}\"",
        n.namespace, n.pvc
    );
    let name = &stack.meta.name;
    let status = format!("run `raystack status` on the stack file of `{name}`");
    let mut out = Vec::new();
    if settings.appendonly {
        out.push(Alert {
            name: "RedisAofWriteFailing",
            expr: format!("redis_aof_last_write_status{{{sel}}} == 0"),
            for_: "1m",
            severity: "critical",
            summary: format!(
                "Redis of stack {name} cannot write its append-only file: acknowledged GCS writes are not persisted"
            ),
            runbook: format!(
                "{status}: it shows aof_last_write_status and the volume's usage; a full or failing volume is the usual cause (grow `[redis] storage`, or free the volume), then check that status reports the AOF healthy again"
            ),
        });
    }
    out.push(Alert {
        name: "RedisRdbSaveFailing",
        expr: format!("redis_rdb_last_bgsave_status{{{sel}}} == 0"),
        for_: "1m",
        severity: "critical",
        summary: format!(
            "Redis of stack {name} failed its last RDB snapshot: with stop-writes-on-bgsave-error it now refuses writes"
        ),
        runbook: format!(
            "{status}: it shows rdb_last_bgsave_status, memory and the volume's usage; a full volume or a fork that ran out of memory are the usual causes"
        ),
    });
    if let Some(rule) = settings.rpo_rule {
        out.push(Alert {
            name: "RedisNoRecentSave",
            expr: format!(
                "time() - redis_rdb_last_save_timestamp_seconds{{{sel}}} > {} and redis_rdb_changes_since_last_save{{{sel}}} > 0",
                rule.seconds
            ),
            for_: "1m",
            severity: "critical",
            summary: format!(
                "Redis of stack {name} has unsaved writes older than max_data_loss ({} s): a crash now would lose more than the stack promises",
                rule.seconds
            ),
            runbook: format!(
                "{status}: it shows the seconds since the last successful save and rdb_last_bgsave_status"
            ),
        });
    }
    if settings.appendfsync == Some(AppendFsync::Everysec) {
        out.push(Alert {
            name: "RedisAofDelayedFsyncGrowing",
            expr: format!("increase(redis_aof_delayed_fsync{{{sel}}}[10m]) > 0"),
            for_: "5m",
            severity: "warning",
            summary: format!(
                "Redis of stack {name} writes its append-only file without waiting for a slow fsync: the loss bound of about 2 s no longer holds"
            ),
            runbook: format!(
                "{status}: it shows aof_delayed_fsync; the volume's disk is too slow for the write rate (a faster storage class, or fewer writes)"
            ),
        });
    }
    out.push(Alert {
        name: "RedisDown",
        expr: format!("redis_up{{{sel}}} == 0 or absent(redis_up{{{sel}}})"),
        for_: "2m",
        severity: "critical",
        summary: format!(
            "Redis of stack {name} is down or its exporter is not scraped: the Ray GCS has no storage"
        ),
        runbook: format!(
            "{status}: it shows the Redis pod (ready, restarts) and whether the exporter answers"
        ),
    });
    out.push(Alert {
        name: "RedisRestarting",
        expr: format!("resets(redis_uptime_in_seconds{{{sel}}}[15m]) > 0"),
        for_: "0m",
        severity: "warning",
        summary: format!("Redis of stack {name} restarted in the last 15 minutes"),
        runbook: format!(
            "{status}: it shows the Redis pod's restarts and whether Redis is still loading its data"
        ),
    });
    out.push(Alert {
        name: "RedisVolumeFilling",
        expr: format!(
            "kubelet_volume_stats_used_bytes{{{pvc_sel}}} / kubelet_volume_stats_capacity_bytes{{{pvc_sel}}} > 0.8"
        ),
        for_: "5m",
        severity: "warning",
        summary: format!(
            "the Redis volume of stack {name} is more than 80 % full: a full volume stops AOF writes and snapshots"
        ),
        runbook: format!(
            "{status}: it shows the volume's capacity and usage; grow `[redis] storage` (the storage class must allow expansion)"
        ),
    });
    out
}

/// The `PrometheusRule` with the stack's persistence alerts.
pub(crate) fn prometheus_rule(stack: &Stack) -> Value {
    let rules: Vec<Value> = alerts(stack)
        .into_iter()
        .map(|a| {
            json!({
                "alert": a.name,
                "expr": a.expr,
                "for": a.for_,
                "labels": { "severity": a.severity, "raystack_stack": stack.meta.name },
                "annotations": { "summary": a.summary, "runbook": a.runbook },
            })
        })
        .collect();
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": namespaced(stack, &prometheus_rule_name(stack), labels(stack, "redis", "alerts")),
        "spec": {
            "groups": [{
                "name": format!("raystack.{}.redis-persistence", stack.meta.name),
                "rules": rules,
            }],
        },
    })
}
