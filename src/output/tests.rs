//! Golden (insta) snapshots of the text, JSON and Markdown plans, rendered from one plan model
//! so the three can be compared side by side.

use serde_json::{Value, json};

use crate::kind::Kind;
use crate::plan::{Action, Binding, FORMAT_VERSION, Plan, ResourceChange};
use crate::preflight::Finding;

fn change(
    kind: Kind,
    name: &str,
    action: Action,
    reason: Option<&str>,
    before: Option<Value>,
    after: Option<Value>,
) -> ResourceChange {
    let namespaced = kind.namespaced();
    ResourceChange {
        address: if namespaced {
            format!("{kind}/demo/{name}")
        } else {
            format!("{kind}/{name}")
        },
        api_version: "v1".into(),
        kind,
        namespace: namespaced.then(|| "demo".to_string()),
        name: name.into(),
        action,
        reason: reason.map(str::to_string),
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

pub(super) fn sample() -> Plan {
    let mut pvc = change(
        Kind::PersistentVolumeClaim,
        "demo-redis-data",
        Action::Replace,
        Some("storageClassName is immutable on a PVC (standard → fast)"),
        Some(
            json!({"spec": {"storageClassName": "standard", "resources": {"requests": {"storage": "8Gi"}}}}),
        ),
        Some(
            json!({"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "8Gi"}}}}),
        ),
    );
    pvc.data_loss = true;
    pvc.data_loss_reason =
        Some("recreates the Redis volume empty: the GCS state in it is lost".into());
    let mut rc = change(
        Kind::RayCluster,
        "demo",
        Action::Update,
        Some("spec.rayVersion changed"),
        Some(json!({"spec": {"rayVersion": "2.45.0"}})),
        Some(json!({"spec": {"rayVersion": "2.46.0"}})),
    );
    rc.rollout = Some("rayVersion 2.45.0 → 2.46.0: KubeRay will not restart running pods (upgradeStrategy None): the change reaches only new pods".into());
    let mut cm = change(
        Kind::ConfigMap,
        "demo-redis-config",
        Action::Update,
        Some("live object changed outside raystack (by kubectl-edit); apply restores it"),
        Some(json!({"data": {"redis.conf": "port 6379\nappendonly no\nsave 60 1000\n"}})),
        Some(json!({"data": {"redis.conf": "port 6379\nappendonly yes\nsave 60 1000\n"}})),
    );
    cm.drift = Some("changed outside raystack (by kubectl-edit)".into());
    Plan {
        format_version: FORMAT_VERSION.into(),
        stack: "demo".into(),
        namespace: "demo".into(),
        offline: false,
        destroy: false,
        durability: json!({"max_data_loss": "1s", "appendonly": true, "appendfsync": "everysec", "save": ["60 1000"],
                           "volume": "disk", "storage_class": "fast", "storage": "8Gi", "protect_volume": true,
                           "explanation": ["appendfsync everysec: a crash loses at most ~1-2 s of writes"]}),
        preflight: vec![
            Finding::ok("local", "default-storage-class", "StorageClass `standard` is the cluster default"),
            Finding::warning("kubernetes", "kuberay", "KubeRay 1.2 is older than the stack's 1.3", "upgrade the operator"),
        ],
        resource_changes: vec![
            change(Kind::Namespace, "demo", Action::NoOp, None, None, None),
            change(
                Kind::Secret,
                "demo-redis-auth",
                Action::Create,
                Some("does not exist yet; the password is generated at apply time"),
                None,
                Some(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-redis-auth"}, "type": "Opaque"})),
            ),
            cm,
            pvc,
            change(
                Kind::StatefulSet,
                "demo-redis",
                Action::Update,
                Some("spec.replicas changed"),
                Some(json!({"spec": {"replicas": 1, "serviceName": "demo-redis"}})),
                Some(json!({"spec": {"replicas": 2, "serviceName": "demo-redis"}})),
            ),
            change(
                Kind::NetworkPolicy,
                "demo-redis",
                Action::Delete,
                Some("no longer in the stack"),
                Some(json!({"spec": {"podSelector": {"matchLabels": {"app": "redis"}}}})),
                None,
            ),
            rc,
        ],
        summary: Default::default(),
        data_loss: false,
        drift: false,
        errors: vec![],
        kept: vec![],
        other_states: Vec::new(),
        binding: Binding { stack_file: "/stacks/demo.toml".into(), state: "local: .raystack/demo.state.json".into(), ..Default::default() },
    }
    .finish()
}

#[test]
fn text_plan() {
    insta::assert_snapshot!(super::plan_text::render(&sample(), false));
}

#[test]
fn json_plan() {
    insta::assert_snapshot!(super::plan_json::render(&sample()));
}

#[test]
fn markdown_plan() {
    insta::assert_snapshot!(super::plan_markdown::render(&sample()));
}

#[test]
fn no_changes_plan() {
    let mut plan = sample();
    plan.resource_changes.retain(|c| c.action == Action::NoOp);
    plan.preflight.clear();
    let plan = plan.finish();
    insta::assert_snapshot!(super::plan_text::render(&plan, false));
}
