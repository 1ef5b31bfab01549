//! What `apply PLANFILE` checks before it executes a saved plan, so the plan applied is the plan
//! that was reviewed. A plan file is data, not authority: nothing in it is executed because the
//! file says so.
//!
//! The case designed for: a CI review job runs `raystack plan --out plan.json` and publishes the
//! plan; a later job, on another machine, in another working directory, on a checkout of the same
//! commit, applies that artifact with `raystack apply plan.json` against shared state (the
//! kubernetes backend). `apply PLANFILE` plans the stack again exactly as `apply STACK` would
//! (the stack file at the recorded path, relative to the working directory; the cluster from the
//! stack, flags and environment; the state its `[state]` section names; under the state lock),
//! and executes that fresh plan only when the saved one agrees with it:
//! - the stack file has the same bytes (SHA-256) as when planned, and names the same stack and
//!   namespace;
//! - the state is where the stack keeps it now ([`crate::state::Backend::binding`]: backend kind
//!   and a location that does not depend on the checkout's path), with the lineage and serial
//!   the plan was made from;
//! - the cluster has the identity the plan was made for;
//! - the manifests rendered now hash as recorded, and every manifest the file would send is the
//!   one the stack renders for that address;
//! - every entry of the file (no-ops included) has the same action as the fresh plan, and the
//!   fresh plan has no entry the file lacks. A delete or replace of an object the stack still
//!   renders therefore stands only when that object's own diff calls for it, and a no-op entry
//!   cannot make state record another stack's object.
//!
//! What is executed is the fresh plan, so `destroy`, `data_loss` and every reason are computed
//! now, never read from the file (a file marked `destroy` is refused: `plan --out` never writes
//! one). Not guaranteed: that the file's prose (reasons, before/after) is what was shown. A plan
//! file is not signed: whoever can write both the stack file and the plan file can apply anything
//! they could apply with `raystack apply STACK`.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::{Action, Plan};
use crate::state::applied_hash_of_all;

/// Why a saved plan is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BindingError {
    #[error(
        "plan file `{plan}` records no stack-file hash (made by an older raystack); run `raystack plan --out` again"
    )]
    Unbound { plan: String },
    #[error(
        "plan file `{plan}` is stale: the stack file `{stack_file}` changed since the plan was made; run `raystack plan --out` again"
    )]
    StackChanged { plan: String, stack_file: String },
    #[error(
        "plan file `{plan}` was made for stack `{planned}` (namespace `{planned_namespace}`), but `{stack_file}` is stack `{stack}` (namespace `{namespace}`)"
    )]
    OtherStack {
        plan: String,
        stack_file: String,
        planned: String,
        planned_namespace: String,
        stack: String,
        namespace: String,
    },
    #[error(
        "plan file `{plan}` is bound to state `{planned}`, but the stack's configured state is `{configured}`; the plan cannot choose where state is written"
    )]
    StatePath {
        plan: String,
        planned: String,
        configured: String,
    },
    #[error(
        "plan file `{plan}` is stale: the state changed since it was made (then: {then}; now: {now}); run `raystack plan --out` again"
    )]
    StaleState {
        plan: String,
        then: String,
        now: String,
    },
    #[error(
        "plan file `{plan}` is stale: it was made for another cluster (identity {then} then, {now} now); run `raystack plan --out` again"
    )]
    OtherCluster {
        plan: String,
        then: String,
        now: String,
    },
    #[error(
        "plan file `{plan}` does not match its stack: {what}; it was edited after it was made, so it is not the plan that was reviewed — run `raystack plan --out` again"
    )]
    Tampered { plan: String, what: String },
    #[error(
        "plan file `{plan}` is not what applying its stack would do now:\n  {}\nthe cluster changed since the plan was made, or the file was edited; nothing was applied — run `raystack plan --out` again and review it",
        .differences.join("\n  ")
    )]
    Diverged {
        plan: String,
        differences: Vec<String>,
    },
}

/// Lowercase hex SHA-256 of the stack file's bytes.
pub fn stack_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash of the rendered manifests, in apply order.
pub fn manifests_sha256(desired: &[Value]) -> String {
    applied_hash_of_all(desired)
}

/// How a binding's state reads in messages.
fn show_state(lineage: &Option<String>, serial: &Option<u64>) -> String {
    match (lineage, serial) {
        (Some(l), Some(s)) => format!("lineage {l}, serial {s}"),
        _ => "no state".to_string(),
    }
}

/// Checks the `saved` plan (read from `plan_path`) against `fresh`, the plan `apply STACK` makes
/// now for the same stack file (online, manifests kept). `Ok` means executing `fresh` is
/// executing what was reviewed.
pub fn verify(saved: &Plan, plan_path: &str, fresh: &Plan) -> Result<(), BindingError> {
    let (b, now) = (&saved.binding, &fresh.binding);
    let p = || plan_path.to_string();
    let Some(planned_hash) = &b.stack_sha256 else {
        return Err(BindingError::Unbound { plan: p() });
    };
    if Some(planned_hash) != now.stack_sha256.as_ref() {
        return Err(BindingError::StackChanged {
            plan: p(),
            stack_file: b.stack_file.clone(),
        });
    }
    if saved.stack != fresh.stack || saved.namespace != fresh.namespace {
        return Err(BindingError::OtherStack {
            plan: p(),
            stack_file: b.stack_file.clone(),
            planned: saved.stack.clone(),
            planned_namespace: saved.namespace.clone(),
            stack: fresh.stack.clone(),
            namespace: fresh.namespace.clone(),
        });
    }
    if b.state != now.state {
        return Err(BindingError::StatePath {
            plan: p(),
            planned: b.state.clone(),
            configured: now.state.clone(),
        });
    }
    if (&b.lineage, b.serial) != (&now.lineage, now.serial) {
        return Err(BindingError::StaleState {
            plan: p(),
            then: show_state(&b.lineage, &b.serial),
            now: show_state(&now.lineage, &now.serial),
        });
    }
    if b.cluster_identity != now.cluster_identity {
        return Err(BindingError::OtherCluster {
            plan: p(),
            then: b.cluster_identity.as_deref().unwrap_or("unknown").into(),
            now: now.cluster_identity.as_deref().unwrap_or("unknown").into(),
        });
    }
    let tampered = |what: String| BindingError::Tampered { plan: p(), what };
    if saved.destroy {
        return Err(tampered(
            "it is marked as a destroy plan, which `raystack plan --out` never writes".into(),
        ));
    }
    if b.manifests_sha256 != now.manifests_sha256 {
        return Err(tampered(
            "the rendered manifests hash differs from the one recorded".into(),
        ));
    }
    let fresh_by_address: BTreeMap<&str, _> = fresh
        .resource_changes
        .iter()
        .map(|c| (c.address.as_str(), c))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut differences = Vec::new();
    for c in &saved.resource_changes {
        if !seen.insert(c.address.as_str()) {
            return Err(tampered(format!("`{}` appears twice", c.address)));
        }
        let now = fresh_by_address.get(c.address.as_str());
        if let Some(manifest) = &c.manifest {
            // The file's manifest is never sent (the fresh plan's is), but one that is not what
            // the stack renders says the file was edited.
            let rendered = now.and_then(|n| n.manifest.as_ref());
            if rendered != Some(manifest) {
                return Err(tampered(format!(
                    "the manifest of `{}` is not what the stack renders for it",
                    c.address
                )));
            }
        } else if matches!(c.action, Action::Create | Action::Update | Action::Replace) {
            return Err(tampered(format!("`{}` has no manifest", c.address)));
        }
        match now {
            None => differences.push(format!(
                "`{}`: the file says {}; the stack neither renders it nor does its state record it",
                c.address,
                c.action.as_str()
            )),
            Some(n) if n.action != c.action || n.object() != c.object() => {
                differences.push(format!(
                    "`{}`: the file says {}; applying the stack now would {}",
                    c.address,
                    c.action.as_str(),
                    n.action.as_str()
                ))
            }
            Some(_) => {}
        }
    }
    for n in &fresh.resource_changes {
        if !seen.contains(n.address.as_str()) {
            differences.push(format!(
                "`{}`: not in the file; applying the stack now would {}",
                n.address,
                n.action.as_str()
            ));
        }
    }
    if !differences.is_empty() {
        return Err(BindingError::Diverged {
            plan: p(),
            differences,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;
    use crate::plan::model::{Binding, FORMAT_VERSION, ResourceChange, Summary};
    use serde_json::json;

    fn change(kind: Kind, name: &str, action: Action) -> ResourceChange {
        ResourceChange {
            address: format!("{kind}/s/{name}"),
            api_version: kind.api_version(),
            kind,
            namespace: Some("s".into()),
            name: name.into(),
            action,
            reason: None,
            data_loss: false,
            data_loss_reason: None,
            rollout: None,
            notes: vec![],
            adopt: None,
            drift: None,
            before: None,
            after: None,
            manifest: Some(json!({"kind": kind.as_str(), "metadata": {"name": name}})),
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            stack: "s".into(),
            namespace: "s".into(),
            offline: false,
            destroy: false,
            durability: Value::Null,
            preflight: vec![],
            resource_changes: changes,
            summary: Summary::default(),
            data_loss: false,
            drift: false,
            errors: vec![],
            kept: vec![],
            other_states: Vec::new(),
            binding: Binding {
                stack_file: "stacks/s.toml".into(),
                state: "kubernetes: Secret `raystack-system/raystack-state-s`".into(),
                lineage: Some("l".into()),
                serial: Some(3),
                cluster_identity: Some("c".into()),
                stack_sha256: Some("h".into()),
                manifests_sha256: Some("m".into()),
                ..Default::default()
            },
        }
        .finish()
    }

    fn two() -> Vec<ResourceChange> {
        vec![
            change(Kind::NetworkPolicy, "s-redis", Action::NoOp),
            change(Kind::RayCluster, "s", Action::Update),
        ]
    }

    #[test]
    fn the_same_plan_made_again_is_accepted() {
        assert_eq!(verify(&plan(two()), "p.json", &plan(two())), Ok(()));
    }

    #[test]
    fn a_no_op_turned_into_a_delete_is_refused() {
        let mut saved = two();
        saved[0].action = Action::Delete;
        let err = verify(&plan(saved), "p.json", &plan(two())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plan file `p.json` is not what applying its stack would do now:\n  \
             `NetworkPolicy/s/s-redis`: the file says delete; applying the stack now would no-op\n\
             the cluster changed since the plan was made, or the file was edited; nothing was applied — run `raystack plan --out` again and review it"
        );
    }

    #[test]
    fn an_update_turned_into_a_replace_is_refused() {
        let mut saved = two();
        saved[1].action = Action::Replace;
        let err = verify(&plan(saved), "p.json", &plan(two())).unwrap_err();
        assert!(matches!(err, BindingError::Diverged { .. }), "{err}");
    }

    #[test]
    fn an_entry_the_stack_does_not_know_is_refused() {
        let mut saved = two();
        let mut foreign = change(Kind::PersistentVolumeClaim, "db", Action::NoOp);
        foreign.manifest = None;
        saved.push(foreign);
        let err = verify(&plan(saved), "p.json", &plan(two())).unwrap_err();
        assert_eq!(
            err,
            BindingError::Diverged {
                plan: "p.json".into(),
                differences: vec![
                    "`PersistentVolumeClaim/s/db`: the file says no-op; the stack neither renders it nor does its state record it".into()
                ],
            }
        );
    }

    #[test]
    fn an_entry_left_out_of_the_file_is_refused() {
        let saved = vec![two().remove(1)];
        let err = verify(&plan(saved), "p.json", &plan(two())).unwrap_err();
        assert!(
            err.to_string().contains(
                "`NetworkPolicy/s/s-redis`: not in the file; applying the stack now would no-op"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_destroy_flag_is_refused_whatever_the_entries() {
        let mut saved = plan(two());
        saved.destroy = true;
        let err = verify(&saved, "p.json", &plan(two())).unwrap_err();
        assert!(
            matches!(&err, BindingError::Tampered { what, .. } if what.contains("destroy plan")),
            "{err}"
        );
    }

    #[test]
    fn state_cluster_and_serial_must_be_the_ones_planned_against() {
        let fresh = plan(two());
        let mut moved = plan(two());
        moved.binding.serial = Some(2);
        assert!(matches!(
            verify(&moved, "p", &fresh),
            Err(BindingError::StaleState { .. })
        ));
        let mut elsewhere = plan(two());
        elsewhere.binding.state = "local:.raystack/s.state.json".into();
        assert!(matches!(
            verify(&elsewhere, "p", &fresh),
            Err(BindingError::StatePath { .. })
        ));
        let mut other = plan(two());
        other.binding.cluster_identity = Some("x".into());
        assert!(matches!(
            verify(&other, "p", &fresh),
            Err(BindingError::OtherCluster { .. })
        ));
    }
}
