//! The pure diff engine: given what is desired, what the cluster holds, what a server-side
//! apply dry-run would hold and what state recorded, decide each object's action and reason.
//! No I/O here; the engine gathers the inputs (`crate::engine`, its `observe`), the password
//! Secret's facts too ([`PasswordFacts`]).

use std::borrow::Cow;

use serde_json::Value;

use super::model::{Action, ResourceChange};
use super::project::{
    managed_shape, merge_shapes, other_managers, project, redact_pair_owned, strip_server_fields,
};
use crate::kind::{Holds, ImmutableField, Kind};
use crate::stack::Quantity;

/// raystack's server-side-apply field manager.
pub const FIELD_MANAGER: &str = "raystack";

/// What a server-side-apply dry-run said about a desired object.
#[derive(Debug, Clone, PartialEq)]
pub enum DryRun {
    /// Not run (offline, or the object is not desired).
    NotRun,
    /// The object the server would hold after the apply.
    Ok(Value),
    /// The server refused the apply as invalid (HTTP 422), typically an immutable field.
    Invalid(String),
    /// The server would hold exactly the live object: the apply is a no-op (the dry-run
    /// answered with the resourceVersion state recorded, for a stack unchanged since; see
    /// `engine::observe`). The live object is that answer, so it is not held twice.
    Live,
}

/// Everything known about one object.
#[derive(Debug, Clone)]
pub struct ObjectInputs {
    pub address: String,
    pub api_version: String,
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
    pub desired: Option<Value>,
    /// `None` when absent from the cluster, or when planning offline.
    pub live: Option<Value>,
    pub dry_run: DryRun,
    /// The hash state recorded for the last manifest raystack applied.
    pub prior_hash: Option<String>,
    /// The hash of `desired` (same function as state's `applied_hash`); only compared with
    /// `prior_hash`, so it may be `None` when there is no prior hash.
    pub desired_hash: Option<String>,
    /// The manifest state recorded as last applied (states written before manifests were
    /// recorded have none). Offline plans compare `desired` with it.
    pub prior_manifest: Option<Value>,
    pub offline: bool,
    /// Whether the change keeps `desired` as its `manifest` (a plan file may be saved, or an
    /// apply follows). Without it the change carries no manifest (the review never shows it),
    /// and an object planned as it is has `desired` moved into `after` rather than copied.
    pub keep_manifest: bool,
    /// What the engine found of the Redis password in the live Secret (`apply::secret` reads
    /// it); the default for every other object.
    pub password: PasswordFacts,
}

/// The facts about the Redis password Secret's password that a plan decides on. The engine
/// gathers them (`engine::observe`, with `apply::secret`); the value itself never reaches a
/// plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PasswordFacts {
    /// The live Secret holds no password: apply generates it.
    pub missing: bool,
    /// The live Secret's password no longer matches the fingerprint state recorded at the last
    /// apply (changed outside raystack).
    pub changed: bool,
}

/// What a plan says when the Secret's password no longer matches the recorded fingerprint.
pub const PASSWORD_DRIFT_REASON: &str = "the Secret's password no longer matches the one recorded at the last apply (neither value is shown); \
     apply keeps the Secret's current password, records its fingerprint, and restarts the pods that read it \
     (Redis and the Ray head) so both use the same password";

/// Decides one object's change.
pub fn classify(mut i: ObjectInputs) -> ResourceChange {
    let mut c = ResourceChange {
        address: i.address.clone(),
        api_version: i.api_version.clone(),
        kind: i.kind,
        namespace: i.namespace.clone(),
        name: i.name.clone(),
        action: Action::NoOp,
        reason: None,
        data_loss: false,
        data_loss_reason: None,
        rollout: None,
        notes: Vec::new(),
        adopt: None,
        drift: None,
        before: None,
        after: None,
        // Moved in at the end: `i` is read until then.
        manifest: None,
    };
    let in_state = i.prior_hash.is_some();
    // Planned as it is: offline, or to be created with no dry-run answer to show. Its `after`
    // is `desired` itself (the projection of an object onto itself is the object), set once
    // `desired` is no longer read.
    let as_it_is = i.desired.is_some()
        && (i.offline || (i.live.is_none() && !matches!(i.dry_run, DryRun::Ok(_))));
    match (&i.desired, i.offline) {
        (None, true) => {
            c.action = Action::Delete;
            c.reason = Some("no longer in the stack".into());
        }
        (None, false) => {
            c.action = Action::Delete;
            match &i.live {
                Some(live) => {
                    c.reason = Some("no longer in the stack".into());
                    let shape = managed_shape(live, FIELD_MANAGER)
                        .unwrap_or_else(|| strip_server_fields(live));
                    c.before = Some(project(&shape, live));
                }
                None => {
                    c.reason = Some("no longer in the stack and already gone from the cluster; only the state entry is removed".into());
                }
            }
        }
        (Some(desired), true) => {
            if !in_state {
                c.action = Action::Create;
                c.reason =
                    Some("not in state (offline plan: the cluster was not consulted)".into());
            } else if i.prior_hash != i.desired_hash {
                match &i.prior_manifest {
                    // The same classification `raystack diff` makes of two revisions: raystack
                    // owns every field of its last applied manifest, so a field it drops is a
                    // change the server sees too (a named storage class back to the default
                    // is a replacement, exactly as the online plan finds).
                    Some(prior) => {
                        c.before = Some(prior.clone());
                        match owned_immutable_change(i.kind, desired, prior) {
                            Some(why) => {
                                c.action = Action::Replace;
                                c.reason = Some(why);
                            }
                            None => {
                                c.action = Action::Update;
                                c.reason = Some(format!(
                                    "{} changed since the last apply (offline plan: compared with state only)",
                                    changed_fields(prior, desired).join(", ")
                                ));
                            }
                        }
                    }
                    None => {
                        c.action = Action::Update;
                        c.reason = Some("the stack changed since the last apply (offline plan: compared with state only)".into());
                    }
                }
            }
        }
        (Some(desired), false) => classify_online(&mut c, desired, &i, in_state),
    }
    if as_it_is {
        c.after = if i.keep_manifest {
            i.desired.clone()
        } else {
            i.desired.take()
        };
    }
    // Secret values never leave the engine; a changed one shows as changed, masked.
    (c.before, c.after) = redact_pair_owned(c.before.take(), c.after.take());
    c.manifest = i.desired.take();
    mark_data_loss(&mut c);
    if c.data_loss && c.action == Action::Delete && c.kind == Kind::Namespace {
        let r = c.reason.take().unwrap_or_default();
        c.reason = Some(format!(
            "{r}; deleting the namespace deletes everything in it, including the Redis volume"
        ));
    }
    if !i.keep_manifest {
        c.manifest = None;
    }
    if c.kind == Kind::Secret {
        password_rules(&mut c, i.password);
    }
    c
}

/// The Redis password Secret: a missing password is an update (apply generates it); a password
/// changed outside raystack is drift, an update, and a restart of the pods that read it.
fn password_rules(c: &mut ResourceChange, facts: PasswordFacts) {
    if facts.missing && c.action == Action::NoOp {
        c.action = Action::Update;
        c.reason = Some("the password is missing; apply generates it".into());
    }
    if facts.changed {
        // Neither value is shown: only that the fingerprint no longer matches.
        c.drift = Some("the password was changed outside raystack".into());
        if c.action == Action::NoOp {
            c.action = Action::Update;
        }
        c.reason = Some(PASSWORD_DRIFT_REASON.into());
        // Redis restarts to read the password, and the Ray head with it (`REDIS_RESTART_EFFECT`).
        c.rollout = Some(format!(
            "apply restarts the pods that read the password: {}",
            super::kuberay::REDIS_RESTART_EFFECT
        ));
    }
}

/// Sets `data_loss` and its reason: the Redis volume going (PVC, Namespace), or what KubeRay
/// does to a deleted or replaced RayCluster's GCS state; and the RayCluster's rollout notes.
pub fn mark_data_loss(c: &mut ResourceChange) {
    c.data_loss_reason = volume_loss_reason(c);
    c.data_loss = c.data_loss_reason.is_some();
    super::kuberay::annotate(c);
}

fn classify_online(c: &mut ResourceChange, desired: &Value, i: &ObjectInputs, in_state: bool) {
    let Some(live) = &i.live else {
        c.action = Action::Create;
        // Without the server's answer, `after` is the object as it is: `classify` sets it.
        if let DryRun::Ok(r) = &i.dry_run {
            c.after = Some(project(desired, r));
        }
        if in_state {
            c.reason = Some("recorded in state but missing from the cluster".into());
            c.drift = Some("deleted outside raystack".into());
        } else {
            c.reason = Some("does not exist yet".into());
        }
        if c.kind == Kind::Secret {
            c.reason = Some(format!(
                "{}; the password is generated at apply time",
                c.reason.as_deref().unwrap_or("")
            ));
        }
        if let DryRun::Invalid(msg) = &i.dry_run {
            c.reason = Some(format!(
                "{}; the server rejected a dry-run: {msg}",
                c.reason.as_deref().unwrap_or("")
            ));
        }
        return;
    };
    let shape: Cow<'_, Value> = match (&i.dry_run, managed_shape(live, FIELD_MANAGER)) {
        // No dry run (the credentials may not patch: a read-only plan): without the server's
        // version of the object, compare only the fields the stack declares, so values the
        // server defaulted into raystack's fields do not show as changes.
        (DryRun::NotRun, _) => Cow::Borrowed(desired),
        (_, Some(owned)) => Cow::Owned(merge_shapes(desired, &owned)),
        (_, None) => Cow::Borrowed(desired),
    };
    // Where a RayCluster's GCS lives is compared in full, also the parts the stack does not
    // declare (a storage namespace annotation left by `kubectl`): moving it loses the GCS
    // state (`kuberay::gcs_move_reason`). Not without a dry-run, whose `after` is the stack's
    // own fields only.
    let shape = if i.kind == Kind::RayCluster && !matches!(i.dry_run, DryRun::NotRun) {
        Cow::Owned(merge_shapes(&shape, &super::kuberay::gcs_shape()))
    } else {
        shape
    };
    let before = project(&shape, live);
    let immutable = immutable_change(i.kind, desired, live).or_else(|| {
        (i.kind == Kind::RayCluster)
            .then(|| super::kuberay::immutable_change(desired, live))
            .flatten()
    });
    if let Some(reason) = immutable {
        c.action = Action::Replace;
        c.reason = Some(reason);
        c.before = Some(before);
        c.after = Some(project(desired, desired));
        return;
    }
    let after = match &i.dry_run {
        DryRun::Live => {
            c.before = Some(before.clone());
            c.after = Some(before);
            return;
        }
        DryRun::Ok(r) => project(&shape, r),
        DryRun::Invalid(msg) => {
            c.action = Action::Replace;
            c.reason = Some(format!("the server refuses to update it in place: {msg}"));
            c.before = Some(before);
            c.after = Some(desired.clone());
            return;
        }
        DryRun::NotRun => project(&shape, desired),
    };
    let (mut before, mut after) = (before, after);
    // What the apply changes outside the fields projected above (an atomic list replaced
    // whole, a default restored): compared over the whole object, and shown (`plan::hidden`).
    if let DryRun::Ok(r) = &i.dry_run {
        let hidden = super::hidden::hidden_changes(live, r, &before, &after);
        if !hidden.is_empty()
            && let Some(extra) = super::hidden::difference_shape(live, r)
        {
            let wider = merge_shapes(&shape, &extra);
            before = project(&wider, live);
            after = project(&wider, r);
            c.notes.extend(hidden.iter().map(super::hidden::note));
        }
    }
    if i.kind == Kind::RayCluster {
        let ns = i.namespace.as_deref().unwrap_or("default");
        super::kuberay::keep_written_address(&before, &mut after, ns);
    }
    if before != after {
        c.action = Action::Update;
        let drifted = in_state && i.prior_hash == i.desired_hash;
        if drifted {
            let others = other_managers(live, &before, &after);
            let by = if others.is_empty() {
                String::new()
            } else {
                format!(" (by {})", others.join(", "))
            };
            c.drift = Some(format!("changed outside raystack{by}"));
            c.reason = Some(format!(
                "live object changed outside raystack{by}; apply restores it"
            ));
        } else {
            c.reason = Some(update_reason(&before, &after));
        }
    }
    c.before = Some(before);
    c.after = Some(after);
}

/// Names the top-level fields that differ, for a one-line reason.
fn update_reason(before: &Value, after: &Value) -> String {
    let mut paths = Vec::new();
    diff_paths(before, after, String::new(), &mut paths, 0);
    paths.truncate(4);
    if paths.is_empty() {
        "fields differ".into()
    } else {
        format!("{} changed", paths.join(", "))
    }
}

/// The top-level paths (`spec.workerGroupSpecs`, `data`) whose values differ, for the reason.
pub(crate) fn changed_fields(base: &Value, head: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for top in [
        "metadata",
        "spec",
        "data",
        "parameters",
        "provisioner",
        "type",
    ] {
        match (base.get(top), head.get(top)) {
            (Some(Value::Object(b)), Some(Value::Object(h)))
                if top == "spec" || top == "metadata" =>
            {
                // Keys of either side; a key in both is reported once (the `contains` below).
                for k in b.keys().chain(h.keys()) {
                    if b.get(k) != h.get(k) && !out.contains(&format!("{top}.{k}")) {
                        out.push(format!("{top}.{k}"));
                    }
                }
            }
            (b, h) if b != h => out.push(top.to_string()),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push("the manifest".into());
    }
    out
}

fn diff_paths(a: &Value, b: &Value, prefix: String, out: &mut Vec<String>, depth: usize) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) if depth < 3 => {
            let keys: Vec<&String> = x
                .keys()
                .chain(y.keys().filter(|k| !x.contains_key(*k)))
                .collect();
            for k in keys {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                diff_paths(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    p,
                    out,
                    depth + 1,
                );
            }
        }
        _ => out.push(if prefix.is_empty() {
            "object".into()
        } else {
            prefix
        }),
    }
}

fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer)
}

/// The reason `desired` cannot be applied over `live` in place, if any.
pub fn immutable_change(kind: Kind, desired: &Value, live: &Value) -> Option<String> {
    for ImmutableField { pointer, reason } in kind.immutable_fields() {
        let Some(want) = at(desired, pointer) else {
            continue;
        };
        let have = at(live, pointer).map(|h| project(want, h));
        if have.as_ref() != Some(want) {
            let shown = |v: Option<&Value>| v.map(compact).unwrap_or_else(|| "(unset)".into());
            return Some(format!(
                "{reason} ({} → {})",
                shown(have.as_ref()),
                shown(Some(want))
            ));
        }
    }
    if kind == Kind::PersistentVolumeClaim {
        let want = at(desired, "/spec/resources/requests/storage").and_then(Value::as_str);
        let have = at(live, "/spec/resources/requests/storage").and_then(Value::as_str);
        if let (Some(w), Some(h)) = (want, have)
            && let (Ok(wq), Ok(hq)) = (Quantity::parse(w), Quantity::parse(h))
            && wq.millis() < hq.millis()
        {
            return Some(format!("a PVC cannot shrink ({h} → {w})"));
        }
    }
    None
}

/// Like [`immutable_change`], for a `prior` manifest that raystack wholly owns (the previous
/// revision of a stack, or the manifest state recorded as applied): an immutable field set in
/// `prior` and absent from `desired` is a change too, because server-side apply removes a field
/// its manager stops sending — and the server refuses that as it refuses any other value.
pub fn owned_immutable_change(kind: Kind, desired: &Value, prior: &Value) -> Option<String> {
    if let Some(why) = immutable_change(kind, desired, prior) {
        return Some(why);
    }
    for ImmutableField { pointer, reason } in kind.immutable_fields() {
        if at(desired, pointer).is_some() {
            continue;
        }
        if let Some(had) = at(prior, pointer) {
            return Some(format!("{reason} ({} → (unset))", compact(had)));
        }
    }
    None
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why a change recreates or removes the Redis volume, if it does.
fn volume_loss_reason(c: &ResourceChange) -> Option<String> {
    match (c.action, c.kind.holds()) {
        (Action::Delete, Some(Holds::Volume)) => {
            Some("deletes the Redis volume, and the GCS state in it".into())
        }
        (Action::Replace, Some(Holds::Volume)) => {
            Some("recreates the Redis volume empty: the GCS state in it is lost".into())
        }
        (Action::Delete | Action::Replace, Some(Holds::Contents)) => Some(
            "deletes the namespace and everything in it, including the GCS state (the Redis volume, or KubeRay's GCS volume)".into(),
        ),
        // A RayCluster's GCS state goes with KubeRay's cleanup, not with the object: see
        // `kuberay::annotate`.
        _ => None,
    }
}

/// Whether a change loses GCS state (the Redis volume, or a RayCluster's state in it).
pub fn loses_data(c: &ResourceChange) -> bool {
    let mut c = c.clone();
    mark_data_loss(&mut c);
    c.data_loss
}

/// Execution order: deletes first in reverse apply order (RayCluster first: KubeRay's Redis
/// cleanup needs Redis), then creates, updates and replaces in apply order. A replaced
/// RayCluster goes before everything: its old self's cleanup Job needs the Redis that the same
/// plan may be pruning (a switch to the embedded backend).
pub fn execution_order(changes: &[ResourceChange]) -> Vec<usize> {
    let first =
        |i: usize| changes[i].kind == Kind::RayCluster && changes[i].action == Action::Replace;
    let mut deletes: Vec<usize> = (0..changes.len()).filter(|&i| first(i)).collect();
    let mut only_deletes: Vec<usize> = (0..changes.len())
        .filter(|&i| changes[i].action == Action::Delete)
        .collect();
    only_deletes.sort_by_key(|&i| std::cmp::Reverse(changes[i].kind.apply_rank()));
    deletes.extend(only_deletes);
    let mut rest: Vec<usize> = (0..changes.len())
        .filter(|&i| changes[i].action != Action::Delete && !first(i))
        .collect();
    rest.sort_by_key(|&i| changes[i].kind.apply_rank());
    deletes.extend(rest);
    deletes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs(
        kind: Kind,
        desired: Option<Value>,
        live: Option<Value>,
        dry: DryRun,
    ) -> ObjectInputs {
        ObjectInputs {
            address: format!("{kind}/ns/x"),
            api_version: "v1".into(),
            kind,
            namespace: Some("ns".into()),
            name: "x".into(),
            desired,
            live,
            dry_run: dry,
            prior_hash: Some("h1".into()),
            desired_hash: Some("h1".into()),
            prior_manifest: None,
            offline: false,
            keep_manifest: true,
            password: PasswordFacts::default(),
        }
    }

    fn sts(replicas: u64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x", "namespace": "ns"},
               "spec": {"replicas": replicas, "serviceName": "x", "template": {"spec": {"containers": [{"name": "redis", "image": "redis"}]}}}})
    }

    fn with_defaults(mut v: Value) -> Value {
        v["metadata"]["uid"] = json!("u1");
        v["metadata"]["resourceVersion"] = json!("7");
        v["spec"]["podManagementPolicy"] = json!("OrderedReady");
        v["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        v["status"] = json!({"readyReplicas": 1});
        v
    }

    #[test]
    fn server_defaults_never_show_as_a_diff() {
        let live = with_defaults(sts(1));
        let c = classify(inputs(
            Kind::StatefulSet,
            Some(sts(1)),
            Some(live.clone()),
            DryRun::Ok(live),
        ));
        assert_eq!(c.action, Action::NoOp);
        assert_eq!(c.reason, None);
    }

    #[test]
    fn a_dry_run_that_is_the_live_object_is_a_no_op_shown_as_the_same_projection() {
        let live = with_defaults(sts(1));
        let as_read = classify(inputs(
            Kind::StatefulSet,
            Some(sts(1)),
            Some(live.clone()),
            DryRun::Ok(live.clone()),
        ));
        let c = classify(inputs(
            Kind::StatefulSet,
            Some(sts(1)),
            Some(live),
            DryRun::Live,
        ));
        assert_eq!(c.action, Action::NoOp);
        assert_eq!((&c.before, &c.after), (&as_read.before, &as_read.after));
        assert!(c.before.is_some());
    }

    #[test]
    fn a_changed_field_is_an_update_with_a_reason() {
        let live = with_defaults(sts(1));
        let mut i = inputs(
            Kind::StatefulSet,
            Some(sts(2)),
            Some(live),
            DryRun::Ok(with_defaults(sts(2))),
        );
        i.desired_hash = Some("h2".into());
        let c = classify(i);
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.reason.as_deref(), Some("spec.replicas changed"));
        assert!(c.drift.is_none());
        assert_eq!(c.before.unwrap()["spec"]["replicas"], json!(1));
    }

    #[test]
    fn an_unchanged_stack_with_a_different_live_object_is_drift() {
        let mut live = with_defaults(sts(3));
        live["metadata"]["managedFields"] = json!([{"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            // A bystander that owns fields the drift did not touch is not named.
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:spec": {"f:podManagementPolicy": {}}}}]);
        let c = classify(inputs(
            Kind::StatefulSet,
            Some(sts(1)),
            Some(live),
            DryRun::Ok(with_defaults(sts(1))),
        ));
        assert_eq!(c.action, Action::Update);
        assert_eq!(
            c.drift.as_deref(),
            Some("changed outside raystack (by kubectl-edit)")
        );
    }

    fn pvc(class: &str, size: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "x", "namespace": "ns"},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class, "resources": {"requests": {"storage": size}}}})
    }

    #[test]
    fn a_storage_class_change_replaces_the_pvc_and_loses_data() {
        let c = classify(inputs(
            Kind::PersistentVolumeClaim,
            Some(pvc("fast", "8Gi")),
            Some(pvc("standard", "8Gi")),
            DryRun::Invalid("field is immutable".into()),
        ));
        assert_eq!(c.action, Action::Replace);
        assert!(c.data_loss);
        assert_eq!(
            c.reason.as_deref(),
            Some("storageClassName is immutable on a PVC (standard → fast)")
        );
    }

    #[test]
    fn a_pvc_cannot_shrink() {
        let c = classify(inputs(
            Kind::PersistentVolumeClaim,
            Some(pvc("s", "4Gi")),
            Some(pvc("s", "8Gi")),
            DryRun::Invalid("x".into()),
        ));
        assert_eq!(c.action, Action::Replace);
        assert_eq!(c.reason.as_deref(), Some("a PVC cannot shrink (8Gi → 4Gi)"));
        assert!(c.data_loss);
    }

    #[test]
    fn growing_a_pvc_is_an_update() {
        let mut i = inputs(
            Kind::PersistentVolumeClaim,
            Some(pvc("s", "16Gi")),
            Some(pvc("s", "8Gi")),
            DryRun::Ok(pvc("s", "16Gi")),
        );
        i.desired_hash = Some("h2".into());
        let c = classify(i);
        assert_eq!(c.action, Action::Update);
        assert!(!c.data_loss);
    }

    #[test]
    fn objects_left_out_of_the_stack_are_pruned() {
        let c = classify(inputs(
            Kind::NetworkPolicy,
            None,
            Some(json!({"kind": "NetworkPolicy", "spec": {}})),
            DryRun::NotRun,
        ));
        assert_eq!(c.action, Action::Delete);
        assert_eq!(c.reason.as_deref(), Some("no longer in the stack"));
        let c = classify(inputs(
            Kind::PersistentVolumeClaim,
            None,
            Some(pvc("s", "8Gi")),
            DryRun::NotRun,
        ));
        assert!(c.data_loss);
    }

    #[test]
    fn offline_plans_compare_hashes() {
        let mut i = inputs(
            Kind::ConfigMap,
            Some(json!({"kind": "ConfigMap"})),
            None,
            DryRun::NotRun,
        );
        i.offline = true;
        assert_eq!(classify(i.clone()).action, Action::NoOp);
        i.desired_hash = Some("h2".into());
        assert_eq!(classify(i.clone()).action, Action::Update);
        i.prior_hash = None;
        assert_eq!(classify(i).action, Action::Create);
    }

    #[test]
    fn deletes_run_first_ray_cluster_first() {
        let mk = |kind: Kind, action| ResourceChange {
            address: kind.to_string(),
            api_version: "v1".into(),
            kind,
            namespace: None,
            name: "x".into(),
            action,
            reason: None,
            data_loss: false,
            data_loss_reason: None,
            rollout: None,
            notes: Vec::new(),
            adopt: None,
            drift: None,
            before: None,
            after: None,
            manifest: None,
        };
        let changes = vec![
            mk(Kind::Namespace, Action::Create),
            mk(Kind::StatefulSet, Action::Delete),
            mk(Kind::RayCluster, Action::Delete),
            mk(Kind::Secret, Action::Update),
        ];
        assert_eq!(execution_order(&changes), vec![2, 1, 0, 3]);
        // A switch to the embedded backend: the RayCluster is replaced before Redis is pruned.
        let changes = vec![
            mk(Kind::StatefulSet, Action::Delete),
            mk(Kind::PersistentVolumeClaim, Action::Delete),
            mk(Kind::RayCluster, Action::Replace),
        ];
        assert_eq!(execution_order(&changes), vec![2, 0, 1]);
    }

    #[test]
    fn without_a_dry_run_server_defaults_in_declared_lists_are_no_change() {
        let desired =
            json!({"kind": "Service", "spec": {"ports": [{"name": "redis", "port": 6379}]}});
        let live = json!({"kind": "Service", "metadata": {"managedFields": [{
                "manager": "raystack", "operation": "Apply",
                "fieldsV1": {"f:spec": {"f:ports": {"k:{\"port\":6379,\"protocol\":\"TCP\"}": {
                    ".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}}}}}]},
            "spec": {"ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}],
                     "clusterIP": "10.96.0.1"}});
        let c = classify(inputs(
            Kind::Service,
            Some(desired.clone()),
            Some(live.clone()),
            DryRun::NotRun,
        ));
        assert_eq!(c.action, Action::NoOp, "{c:?}");
        let mut changed = desired;
        changed["spec"]["ports"][0]["port"] = json!(6380);
        let mut i = inputs(Kind::Service, Some(changed), Some(live), DryRun::NotRun);
        i.desired_hash = Some("h2".into());
        assert_eq!(classify(i).action, Action::Update);
    }

    #[test]
    fn secret_values_never_appear() {
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": {"password": "c2VjcmV0"}});
        let c = classify(inputs(Kind::Secret, None, Some(live), DryRun::NotRun));
        assert_eq!(c.before.unwrap()["data"]["password"], json!("(sensitive)"));
    }

    fn secret(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "ns"}, "data": data})
    }

    /// The password Secret as it is, with the password facts the engine gathered.
    fn password_change(missing: bool, changed: bool) -> ResourceChange {
        let live = secret(json!({"password": "c2VjcmV0"}));
        let mut i = inputs(
            Kind::Secret,
            Some(secret(json!({}))),
            Some(live.clone()),
            DryRun::Ok(live),
        );
        i.password = PasswordFacts { missing, changed };
        classify(i)
    }

    #[test]
    fn a_password_secret_as_recorded_is_a_no_op() {
        let c = password_change(false, false);
        assert_eq!(
            (c.action, c.reason, c.drift, c.rollout),
            (Action::NoOp, None, None, None)
        );
    }

    #[test]
    fn a_missing_password_is_an_update_that_generates_it() {
        let c = password_change(true, false);
        assert_eq!(c.action, Action::Update);
        assert_eq!(
            c.reason.as_deref(),
            Some("the password is missing; apply generates it")
        );
        assert_eq!((c.drift, c.rollout), (None, None));
    }

    #[test]
    fn a_password_changed_outside_raystack_is_drift_and_restarts_its_readers() {
        let c = password_change(false, true);
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.reason.as_deref(), Some(PASSWORD_DRIFT_REASON));
        assert_eq!(
            c.drift.as_deref(),
            Some("the password was changed outside raystack")
        );
        assert_eq!(
            c.rollout,
            Some(format!(
                "apply restarts the pods that read the password: {}",
                super::super::kuberay::REDIS_RESTART_EFFECT
            ))
        );
        assert!(!c.data_loss);
    }

    #[test]
    fn password_facts_decide_nothing_for_other_kinds() {
        let live = with_defaults(sts(1));
        let c = classify(ObjectInputs {
            password: PasswordFacts {
                missing: true,
                changed: true,
            },
            ..inputs(
                Kind::StatefulSet,
                Some(sts(1)),
                Some(live.clone()),
                DryRun::Ok(live),
            )
        });
        assert_eq!((c.action, c.drift), (Action::NoOp, None));
    }
}
