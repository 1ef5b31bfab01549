//! `raystack diff`: two revisions of a stack compared with no cluster and no state, for review
//! in a pull request. Both sides are rendered objects that raystack wholly owns, so the change
//! of each object is the plain difference of its manifests, classified with the same immutable
//! field rules and data-loss guard as a cluster plan.

use serde_json::Value;

use super::diff::{changed_fields, mark_data_loss, owned_immutable_change};
use super::model::{Action, Binding, FORMAT_VERSION, Plan, ResourceChange};
use super::project::redact_pair;
use crate::kind::{Kind, ObjectRef};

/// The plan that takes `base` (the objects of the old revision) to `head` (the new one), in
/// apply order: head's objects, then those only in base.
pub fn compare(
    stack: &str,
    namespace: &str,
    durability: Value,
    base: &[Value],
    head: &[Value],
) -> Plan {
    let key = |v: &Value| ObjectRef::of_rendered(v).address();
    let mut changes = Vec::new();
    for h in head {
        let before = base.iter().find(|b| key(b) == key(h));
        changes.push(change(&key(h), before, Some(h)));
    }
    for b in base {
        if !head.iter().any(|h| key(h) == key(b)) {
            changes.push(change(&key(b), Some(b), None));
        }
    }
    Plan {
        format_version: FORMAT_VERSION.into(),
        stack: stack.into(),
        namespace: namespace.into(),
        // Not a state-only plan: both manifests are known, so diffs are shown in full.
        offline: false,
        destroy: false,
        durability,
        preflight: Vec::new(),
        resource_changes: changes,
        summary: Default::default(),
        data_loss: false,
        drift: false,
        errors: Vec::new(),
        kept: Vec::new(),
        other_states: Vec::new(),
        binding: Binding::default(),
    }
    .finish()
}

fn change(addr: &str, base: Option<&Value>, head: Option<&Value>) -> ResourceChange {
    let any = head.or(base).expect("one side exists");
    // Both revisions are rendered by raystack.
    let object = ObjectRef::of_rendered(any);
    let (action, reason) = match (base, head) {
        (None, _) => (Action::Create, Some("new in this revision".to_string())),
        (_, None) => (Action::Delete, Some("removed in this revision".to_string())),
        (Some(b), Some(h)) if b == h => (Action::NoOp, None),
        (Some(b), Some(h)) => {
            let immutable = owned_immutable_change(object.kind, h, b).or_else(|| {
                (object.kind == Kind::RayCluster)
                    .then(|| super::kuberay::immutable_change(h, b))
                    .flatten()
            });
            match immutable {
                Some(why) => (Action::Replace, Some(why)),
                None => (
                    Action::Update,
                    Some(format!("{} changed", changed_fields(b, h).join(", "))),
                ),
            }
        }
    };
    let (before, after) = redact_pair(base, head);
    let mut c = ResourceChange {
        address: addr.to_string(),
        api_version: object.api_version,
        kind: object.kind,
        namespace: object.namespace,
        name: object.name,
        action,
        reason,
        data_loss: false,
        data_loss_reason: None,
        rollout: None,
        notes: Vec::new(),
        adopt: None,
        drift: None,
        before,
        after,
        manifest: None,
    };
    mark_data_loss(&mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pvc(class: &str, size: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "s-redis-data", "namespace": "s"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                     "resources": {"requests": {"storage": size}}}})
    }

    fn cm(conf: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "s-redis-config", "namespace": "s"}, "data": {"redis.conf": conf}})
    }

    #[test]
    fn identical_revisions_have_no_changes() {
        let objs = vec![pvc("gp3", "8Gi"), cm("appendonly yes")];
        let plan = compare("s", "s", json!({}), &objs, &objs);
        assert!(!plan.has_changes());
        assert_eq!(plan.resource_changes.len(), 2);
    }

    #[test]
    fn a_storage_class_change_is_a_data_losing_replace() {
        let plan = compare(
            "s",
            "s",
            json!({}),
            &[pvc("gp3", "8Gi")],
            &[pvc("fast", "8Gi")],
        );
        let c = &plan.resource_changes[0];
        assert_eq!(c.action, Action::Replace);
        assert!(c.data_loss && plan.data_loss);
        assert!(
            c.reason.as_deref().unwrap().contains("storageClassName"),
            "{:?}",
            c.reason
        );
    }

    #[test]
    fn dropping_a_named_storage_class_is_a_data_losing_replace() {
        let mut head = pvc("gp3", "8Gi");
        head["spec"]
            .as_object_mut()
            .unwrap()
            .remove("storageClassName");
        let plan = compare("s", "s", json!({}), &[pvc("fast", "8Gi")], &[head]);
        let c = &plan.resource_changes[0];
        assert_eq!(c.action, Action::Replace);
        assert!(c.data_loss && plan.data_loss);
        assert_eq!(
            c.reason.as_deref(),
            Some("storageClassName is immutable on a PVC (fast → (unset))")
        );
    }

    #[test]
    fn shrinking_is_data_loss_and_growing_is_an_update() {
        let shrink = compare(
            "s",
            "s",
            json!({}),
            &[pvc("gp3", "8Gi")],
            &[pvc("gp3", "4Gi")],
        );
        assert_eq!(shrink.resource_changes[0].action, Action::Replace);
        assert!(shrink.data_loss);
        let grow = compare(
            "s",
            "s",
            json!({}),
            &[pvc("gp3", "8Gi")],
            &[pvc("gp3", "16Gi")],
        );
        assert_eq!(grow.resource_changes[0].action, Action::Update);
        assert!(!grow.data_loss);
        assert_eq!(
            grow.resource_changes[0].reason.as_deref(),
            Some("spec.resources changed")
        );
    }

    #[test]
    fn added_and_removed_objects() {
        let plan = compare("s", "s", json!({}), &[pvc("gp3", "8Gi")], &[cm("x")]);
        let actions: Vec<Action> = plan.resource_changes.iter().map(|c| c.action).collect();
        assert_eq!(actions, [Action::Create, Action::Delete]);
        assert!(plan.data_loss, "removing the PVC loses its data");
        assert_eq!((plan.summary.add, plan.summary.destroy), (1, 1));
    }
}
