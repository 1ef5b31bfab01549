//! Opening a stack's state backend from its `[state]` section and the target: the local file,
//! or Secrets and a Lease in the cluster the state names (else the cluster the stack is managed
//! in); and finding a second state of the same stack in the backend the stack does not name (a
//! fork: two states, two locks, one set of objects).

use anyhow::{Context, bail};

use super::{Notice, Notify, Target};
use crate::stack::{Stack, StateBackend};
use crate::state::{Backend, KubernetesBackend, LocalBackend};

/// The backend the stack's `[state]` section names.
pub async fn open(
    stack: &Stack,
    target: &Target,
    notify: &Notify,
) -> anyhow::Result<Box<dyn Backend>> {
    open_kind(stack, target, notify, stack.state.backend).await
}

/// A backend of `kind` for `stack`, whatever the stack's `[state] backend` says (migration
/// needs both). Kubernetes: the `[state]` context/kubeconfig when set, else the cluster the
/// stack is managed in (the target's kubeconfig/context, else `[cluster] context`).
/// Its requests go through the cluster's door like every other ([`crate::cluster::Cluster::send`]):
/// the request deadline, retries, and retry progress through `notify`.
pub async fn open_kind(
    stack: &Stack,
    target: &Target,
    notify: &Notify,
    kind: StateBackend,
) -> anyhow::Result<Box<dyn Backend>> {
    match kind {
        StateBackend::Local => Ok(Box::new(LocalBackend::new(&stack.state.path))),
        StateBackend::Kubernetes => {
            let kubeconfig = stack
                .state
                .kubeconfig
                .as_deref()
                .or(target.kubeconfig.as_deref());
            let context = stack
                .state
                .context
                .as_deref()
                .or(target.context.as_deref())
                .or(stack.cluster.context.as_deref());
            let mut cluster =
                crate::cluster::connect_with_deadline(kubeconfig, context, target.request_timeout)
                    .await
                    .context("failed to connect to the cluster that holds the stack's state")?;
            let notify = notify.clone();
            cluster.on_retry = Some(std::sync::Arc::new(move |note| {
                notify(Notice::Progress(note.to_string()));
            }));
            Ok(Box::new(KubernetesBackend::new(
                cluster,
                &stack.state.namespace,
                &stack.meta.name,
            )))
        }
    }
}

/// When a kubernetes backend has no state but the local file does, the stack file was switched
/// to `backend = "kubernetes"` without moving its state: refuse rather than start from nothing
/// (which would create every object anew, or fail on their existence).
pub fn refuse_unmigrated(stack: &Stack, backend: &dyn Backend) -> anyhow::Result<()> {
    if backend.kind() == StateBackend::Kubernetes && stack.state.path.exists() {
        bail!(
            "stack `{}` keeps its state in {}, which is empty, but a local state file `{}` exists; \
             move it with `raystack state migrate {} --to kubernetes`",
            stack.meta.name,
            backend.location(),
            stack.state.path.display(),
            stack.source.display()
        );
    }
    Ok(())
}

/// A state of the stack in the backend its `[state]` section does not name: with the local
/// backend, a `raystack-state-<stack>` Secret in the stack's cluster (`[state] namespace`,
/// default `raystack-system`); with the kubernetes backend, a local state file. Migration
/// retires its source (the Secret deleted, the file renamed `.migrated`), so a state found there
/// is a fork: a copy of the stack that lost its `[state]` section, applied with its own state
/// and its own lock. Returns the problem as a sentence with its fix, or `None`.
///
/// The Secret is looked for only when connected (`cluster`); a read that fails (an account
/// that may not read Secrets there) finds nothing: it cannot tell, and the local state is the
/// one the stack names.
pub async fn other_state(
    stack: &Stack,
    backend: &dyn Backend,
    cluster: Option<&crate::cluster::Cluster>,
) -> Option<String> {
    let name = &stack.meta.name;
    match backend.kind() {
        StateBackend::Local => {
            let other = KubernetesBackend::new(cluster?.clone(), &stack.state.namespace, name);
            let found = other.read().await.ok()??;
            Some(format!(
                "stack `{name}` keeps its state in {} (the local backend), but the cluster also holds a state of stack `{name}` in {} (lineage {}, serial {}): two states would manage the same objects, each with its own lock. \
                 If the Secret is this stack's state, restore the stack's `[state]` section (backend = \"kubernetes\", namespace = \"{ns}\"), then `raystack state pull {}` shows it; \
                 if it is obsolete, delete it with its chunks (`kubectl -n {ns} delete secret -l raystack.dev/stack={name},raystack.dev/state`)",
                backend.location(),
                other.location(),
                found.lineage,
                found.serial,
                stack.source.display(),
                ns = stack.state.namespace,
            ))
        }
        StateBackend::Kubernetes => {
            let path = &stack.state.path;
            if !path.exists() {
                return None;
            }
            let local = LocalBackend::new(path);
            let what = match local.read() {
                Ok(Some(s)) => format!(" (lineage {}, serial {})", s.lineage, s.serial),
                _ => String::new(),
            };
            Some(format!(
                "stack `{name}` keeps its state in {} (the kubernetes backend), but a local state file `{}` of stack `{name}` exists too{what}: two states would manage the same objects, each with its own lock. \
                 If the file is obsolete, remove it (`raystack state pull {}` shows what the Secret holds); \
                 if it is this stack's state, delete the Secret's (`kubectl -n {ns} delete secret -l raystack.dev/stack={name},raystack.dev/state`) and move the file there with `raystack state migrate {} --to kubernetes`",
                backend.location(),
                path.display(),
                stack.source.display(),
                stack.source.display(),
                ns = stack.state.namespace,
            ))
        }
    }
}
