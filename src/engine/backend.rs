//! Opening a stack's state backend from its `[state]` section and the target: the local file,
//! or Secrets and a Lease in the cluster the state names (else the cluster the stack is managed
//! in).

use anyhow::{Context, bail};

use super::{Notice, Notify, Target};
use crate::stack::{Stack, StateBackend};
use crate::state::{Backend, BackendKind, KubernetesBackend, LocalBackend};

/// The kind of backend the stack's `[state]` section names.
pub fn kind_of(stack: &Stack) -> BackendKind {
    match stack.state.backend {
        StateBackend::Local => BackendKind::Local,
        StateBackend::Kubernetes => BackendKind::Kubernetes,
    }
}

/// The backend the stack's `[state]` section names.
pub async fn open(
    stack: &Stack,
    target: &Target,
    notify: &Notify,
) -> anyhow::Result<Box<dyn Backend>> {
    open_kind(stack, target, notify, kind_of(stack)).await
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
    kind: BackendKind,
) -> anyhow::Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Local => Ok(Box::new(LocalBackend::new(&stack.state.path))),
        BackendKind::Kubernetes => {
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
    if backend.kind() == BackendKind::Kubernetes && stack.state.path.exists() {
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
