//! Opening a stack's state: [`open`] picks the backend the stack's `[state]` section names (the
//! local file, or Secrets and a Lease in the cluster the state names, else the cluster the stack
//! is managed in), [`open_kind`] any backend for `state migrate`. Also the checks that look past
//! the backend opened: [`refuse_unmigrated`] (an empty backend beside a state not yet moved to
//! it) and [`other_state`] (a second state of the same stack in the backend the stack does not
//! name: a fork, two states and two locks for one set of objects). The engine calls these and
//! never branches on the backend's kind; a new backend is added here (and named in
//! `crate::stack::StateBackend`). Nothing here prints: problems come back as errors or sentences.

use std::path::Path;
use std::time::Duration;

use super::{Backend, KubernetesBackend, LocalBackend, StateBackend, StateError};
use crate::cluster::{Cluster, RetryObserver};
use crate::stack::StateConfig;

/// How to reach the cluster the stack is managed in (a `[state]` context or kubeconfig
/// overrides it for the state): its kubeconfig and context (`None`: the kubeconfig's defaults),
/// the deadline of each API call, and who is told about retries.
#[derive(Clone, Default)]
pub struct Reach<'a> {
    pub kubeconfig: Option<&'a Path>,
    pub context: Option<&'a str>,
    pub request_timeout: Duration,
    pub on_retry: Option<RetryObserver>,
}

/// The stack a state belongs to, as the messages here name it.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// `[stack] name`.
    pub name: &'a str,
    /// The stack file, for the commands a message suggests.
    pub source: &'a Path,
}

/// The backend the stack's `[state]` section names.
pub async fn open(
    config: &StateConfig,
    stack: &str,
    reach: &Reach<'_>,
) -> Result<Box<dyn Backend>, StateError> {
    open_kind(config.backend, config, stack, reach).await
}

/// A backend of `kind` for stack `stack`, whatever its `[state] backend` says (migration needs
/// both). Kubernetes: the `[state]` context/kubeconfig when set, else `reach`. Its requests go
/// through the cluster's door like every other ([`Cluster::send`]): the request deadline,
/// retries, and retry progress through `reach.on_retry`.
pub async fn open_kind(
    kind: StateBackend,
    config: &StateConfig,
    stack: &str,
    reach: &Reach<'_>,
) -> Result<Box<dyn Backend>, StateError> {
    match kind {
        StateBackend::Local => Ok(Box::new(LocalBackend::new(&config.path))),
        StateBackend::Kubernetes => {
            let kubeconfig = config.kubeconfig.as_deref().or(reach.kubeconfig);
            let context = config.context.as_deref().or(reach.context);
            let mut cluster =
                crate::cluster::connect_with_deadline(kubeconfig, context, reach.request_timeout)
                    .await
                    .map_err(|source| StateError::Connect { source })?;
            cluster.on_retry = reach.on_retry.clone();
            Ok(Box::new(KubernetesBackend::new(
                cluster,
                &config.namespace,
                stack,
            )))
        }
    }
}

/// Where `state migrate --to to` takes the state from: the other backend.
pub fn migration_source(to: StateBackend) -> StateBackend {
    match to {
        StateBackend::Local => StateBackend::Kubernetes,
        StateBackend::Kubernetes => StateBackend::Local,
    }
}

/// When a kubernetes backend has no state but the local file does, the stack file was switched
/// to `backend = "kubernetes"` without moving its state: refuse rather than start from nothing
/// (which would create every object anew, or fail on their existence). Call it when `backend`
/// holds no state.
pub fn refuse_unmigrated(
    config: &StateConfig,
    owner: Owner<'_>,
    backend: &dyn Backend,
) -> Result<(), StateError> {
    if backend.kind() == StateBackend::Kubernetes && config.path.exists() {
        return Err(StateError::Unmigrated {
            stack: owner.name.to_owned(),
            location: backend.location(),
            file: config.path.clone(),
            source_file: owner.source.to_path_buf(),
        });
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
    config: &StateConfig,
    owner: Owner<'_>,
    backend: &dyn Backend,
    cluster: Option<&Cluster>,
) -> Option<String> {
    let name = owner.name;
    let source = owner.source.display();
    let ns = &config.namespace;
    match backend.kind() {
        StateBackend::Local => {
            let other = KubernetesBackend::new(cluster?.clone(), ns, name);
            let found = Backend::read(&other).await.ok()??;
            Some(format!(
                "stack `{name}` keeps its state in {} (the local backend), but the cluster also holds a state of stack `{name}` in {} (lineage {}, serial {}): two states would manage the same objects, each with its own lock. \
                 If the Secret is this stack's state, restore the stack's `[state]` section (backend = \"kubernetes\", namespace = \"{ns}\"), then `raystack state pull {source}` shows it; \
                 if it is obsolete, delete it with its chunks (`kubectl -n {ns} delete secret -l raystack.dev/stack={name},raystack.dev/state`)",
                backend.location(),
                other.location(),
                found.lineage,
                found.serial,
            ))
        }
        StateBackend::Kubernetes => {
            let path = &config.path;
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
                 If the file is obsolete, remove it (`raystack state pull {source}` shows what the Secret holds); \
                 if it is this stack's state, delete the Secret's (`kubectl -n {ns} delete secret -l raystack.dev/stack={name},raystack.dev/state`) and move the file there with `raystack state migrate {source} --to kubernetes`",
                backend.location(),
                path.display(),
            ))
        }
    }
}
