//! What `apply PLANFILE` checks before it executes a saved plan, so the plan applied is the plan
//! that was reviewed, and a plan file edited by hand (or by a compromised job) cannot become a
//! different change.
//!
//! The case designed for: a CI review job runs `raystack plan --out plan.json` and publishes the
//! plan; a later job applies that artifact with `raystack apply plan.json`, on a checkout of the
//! same commit. Guaranteed when apply starts executing:
//! - the stack file at the recorded path has the same bytes (SHA-256) as when planned, and
//!   renders the same manifests (SHA-256 of all of them);
//! - every manifest the plan would send is exactly the manifest that stack renders for that
//!   address, and every object it would delete is one the state records (a plan cannot name
//!   objects of its own);
//! - the state is the stack's configured state file, belongs to that stack, and has the
//!   lineage and serial the plan was made from; the cluster has the identity it was made for;
//! - whether the plan loses data is recomputed from the actions and kinds about to run; the
//!   `data_loss` flags in the file are ignored, so `--allow-data-loss` is needed exactly when a
//!   PVC or its namespace is deleted or recreated.
//!
//! Not guaranteed: that the file's prose (reasons, before/after) is what was shown — apply
//! executes actions and manifests, never reasons; that the cluster did not change between plan
//! and apply in ways state does not record (apply is server-side apply, so it converges the
//! fields raystack owns); that an action was not downgraded (a PVC replacement edited into an
//! update is sent as an update, which the API server refuses). A plan file is not signed:
//! whoever can write both the stack file and the plan file can apply anything they could apply
//! with `raystack apply STACK`.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::diff::mark_data_loss;
use super::model::{Action, Plan};
use crate::kind::ObjectRef;
use crate::render::Desired;
use crate::state::{State, applied_hash_of_all};

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
        "plan file `{plan}` does not match its stack: {what}; it was edited after it was made, so it is not the plan that was reviewed — run `raystack plan --out` again"
    )]
    Tampered { plan: String, what: String },
}

/// Lowercase hex SHA-256 of the stack file's bytes.
pub fn stack_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash of the rendered manifests, in apply order.
pub fn manifests_sha256(desired: &[Value]) -> String {
    applied_hash_of_all(desired)
}

/// Checks `plan` (read from `plan_path`) against its stack — `stack_bytes` as read now from the
/// recorded stack file, parsed into `stack` and rendered into `desired` — and the state read
/// from the stack's configured state file `configured_state` (absolute). Returns the plan with
/// its data-loss flags recomputed from its actions and kinds.
pub fn verify(
    mut plan: Plan,
    plan_path: &str,
    stack: &crate::stack::Stack,
    stack_bytes: &[u8],
    desired: &[Value],
    configured_state: &str,
    state: Option<&State>,
) -> Result<Plan, BindingError> {
    let b = &plan.binding;
    let p = || plan_path.to_string();
    let Some(planned_hash) = &b.stack_sha256 else {
        return Err(BindingError::Unbound { plan: p() });
    };
    if *planned_hash != stack_sha256(stack_bytes) {
        return Err(BindingError::StackChanged {
            plan: p(),
            stack_file: b.stack_file.clone(),
        });
    }
    if plan.stack != stack.meta.name || plan.namespace != stack.meta.namespace {
        return Err(BindingError::OtherStack {
            plan: p(),
            stack_file: b.stack_file.clone(),
            planned: plan.stack.clone(),
            planned_namespace: plan.namespace.clone(),
            stack: stack.meta.name.clone(),
            namespace: stack.meta.namespace.clone(),
        });
    }
    if b.state_path != configured_state {
        return Err(BindingError::StatePath {
            plan: p(),
            planned: b.state_path.clone(),
            configured: configured_state.to_string(),
        });
    }
    let tampered = |what: String| BindingError::Tampered { plan: p(), what };
    if b.manifests_sha256.as_deref() != Some(manifests_sha256(desired).as_str()) {
        return Err(tampered(
            "the rendered manifests hash differs from the one recorded".into(),
        ));
    }
    for c in &plan.resource_changes {
        match c.action {
            Action::Create | Action::Update | Action::Replace => {
                let Some(manifest) = &c.manifest else {
                    return Err(tampered(format!("`{}` has no manifest", c.address)));
                };
                let rendered = desired
                    .iter()
                    .find(|d| ObjectRef::of_rendered(d).address() == c.address);
                if rendered != Some(manifest) {
                    return Err(tampered(format!(
                        "the manifest of `{}` is not what the stack renders for it",
                        c.address
                    )));
                }
                let identity = Desired::new(manifest.clone());
                if identity.kind() != c.kind
                    || identity.name() != c.name
                    || identity.namespace() != c.namespace.as_deref()
                    || manifest["apiVersion"].as_str() != Some(c.api_version.as_str())
                {
                    return Err(tampered(format!(
                        "`{}` names another object than its manifest",
                        c.address
                    )));
                }
            }
            Action::Delete => {
                let recorded = state.and_then(|s| s.resource(&c.address));
                let matches = recorded.is_some_and(|r| r.object == c.object());
                if !matches {
                    return Err(tampered(format!(
                        "it deletes `{}`, which the state does not record",
                        c.address
                    )));
                }
            }
            Action::NoOp => {}
        }
    }
    for c in &mut plan.resource_changes {
        let mut probe = c.clone();
        mark_data_loss(&mut probe);
        c.data_loss = probe.data_loss;
        c.data_loss_reason = probe.data_loss_reason;
    }
    Ok(plan.finish())
}
