//! Opens a stack's state backend from its `[state]` section and the command line, and the
//! commands that work on a backend alone: `force-unlock`, `state migrate`, `state pull`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::ClusterArgs;
use crate::stack::{Stack, StateBackend};
use crate::state::{Backend, BackendKind, KubernetesBackend, LocalBackend};

/// The backend the stack's `[state]` section names.
pub async fn open(stack: &Stack, args: &ClusterArgs) -> anyhow::Result<Box<dyn Backend>> {
    let kind = match stack.state.backend {
        StateBackend::Local => BackendKind::Local,
        StateBackend::Kubernetes => BackendKind::Kubernetes,
    };
    open_kind(stack, args, kind).await
}

/// A backend of `kind` for `stack`, whatever the stack's `[state] backend` says (migration
/// needs both). Kubernetes: the `[state]` context/kubeconfig when set, else the cluster the
/// stack is managed in (`--kubeconfig`/`--context`, else `[cluster] context`).
pub async fn open_kind(
    stack: &Stack,
    args: &ClusterArgs,
    kind: BackendKind,
) -> anyhow::Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Local => Ok(Box::new(LocalBackend::new(&stack.state.path))),
        BackendKind::Kubernetes => {
            let kubeconfig = stack
                .state
                .kubeconfig
                .as_deref()
                .or(args.kubeconfig.as_deref());
            let context = stack
                .state
                .context
                .as_deref()
                .or(args.context.as_deref())
                .or(stack.cluster.context.as_deref());
            let cluster = crate::cluster::connect(kubeconfig, context)
                .await
                .context("failed to connect to the cluster that holds the stack's state")?;
            Ok(Box::new(KubernetesBackend::new(
                cluster.client().clone(),
                &cluster.server,
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

fn load(path: &Path) -> anyhow::Result<Stack> {
    Ok(crate::stack::load(path)?)
}

/// Asks `question` on the terminal; `force` answers yes; no terminal and no `force` refuses.
fn confirm(question: &str, force: bool, flag: &str) -> anyhow::Result<bool> {
    if force {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to continue without confirmation: stdin is not a terminal; pass {flag}");
    }
    eprint!("{question}\n  Only 'yes' will be accepted: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// `raystack force-unlock STACK LOCK_ID`
pub async fn force_unlock(
    stack_path: &Path,
    id: &str,
    force: bool,
    args: &ClusterArgs,
) -> anyhow::Result<ExitCode> {
    let stack = load(stack_path)?;
    let backend = open(&stack, args).await?;
    let Some(holder) = backend.holder().await? else {
        bail!(
            "state {} of stack `{}` is not locked; there is nothing to unlock",
            backend.location(),
            stack.meta.name
        );
    };
    if holder.id != id {
        return Err(crate::state::StateError::WrongLockId {
            given: id.to_owned(),
            holder: holder.describe(),
        }
        .into());
    }
    eprintln!(
        "The lock on stack `{}` is held by {}.\nIf that run is still working, unlocking lets another run write the same state at the same time.",
        stack.meta.name,
        holder.describe()
    );
    if !confirm("Release this lock?", force, "--force")? {
        eprintln!("Unlock cancelled; the lock is still held.");
        return Ok(ExitCode::from(1));
    }
    let released = backend.force_unlock(id).await?;
    eprintln!(
        "Released the lock on stack `{}` (was held by {}).",
        stack.meta.name,
        released.describe()
    );
    Ok(ExitCode::SUCCESS)
}

/// `raystack state pull STACK`: the state document on stdout, as the local backend stores it.
pub async fn pull(stack_path: &Path, args: &ClusterArgs) -> anyhow::Result<ExitCode> {
    let stack = load(stack_path)?;
    let backend = open(&stack, args).await?;
    let Some(state) = backend.read().await? else {
        refuse_unmigrated(&stack, backend.as_ref())?;
        eprintln!(
            "No state recorded for stack `{}` ({}).",
            stack.meta.name,
            backend.location()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let mut text = serde_json::to_string_pretty(&state).context("failed to encode state")?;
    text.push('\n');
    super::plan::print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `raystack state migrate STACK --to KIND`: copies the state from the other backend (same
/// lineage, serial + 1) under both locks, reads the copy back, and only then retires the source.
pub async fn migrate(
    stack_path: &Path,
    to: BackendKind,
    args: &ClusterArgs,
) -> anyhow::Result<ExitCode> {
    let stack = load(stack_path)?;
    let from = match to {
        BackendKind::Local => BackendKind::Kubernetes,
        BackendKind::Kubernetes => BackendKind::Local,
    };
    let source = open_kind(&stack, args, from).await?;
    let dest = open_kind(&stack, args, to).await?;
    let mut source_lock = source.lock("state migrate").await?;
    let mut dest_lock = dest.lock("state migrate").await?;
    for note in source_lock.notes().into_iter().chain(dest_lock.notes()) {
        eprintln!("warning: {note}");
    }
    let result = async {
        let Some(state) = source_lock.read().await? else {
            bail!(
                "no state to migrate: {} holds none for stack `{}`",
                source.location(),
                stack.meta.name
            );
        };
        if state.stack != stack.meta.name {
            bail!(
                "refusing to migrate: {} holds the state of stack `{}`, not `{}`",
                source.location(),
                state.stack,
                stack.meta.name
            );
        }
        if let Some(existing) = dest_lock.read().await? {
            bail!(
                "refusing to migrate: {} already holds a state (lineage {}, serial {}); \
                 nothing was changed. Remove it first if it is obsolete",
                dest.location(),
                existing.lineage,
                existing.serial
            );
        }
        let mut moved = state.clone();
        dest_lock.write(&mut moved).await?;
        let back = dest.read().await?;
        if back.as_ref() != Some(&moved) {
            bail!(
                "the copy in {} does not read back as written; the source {} was kept",
                dest.location(),
                source.location()
            );
        }
        source_lock.retire().await?;
        Ok((state.serial, moved))
    }
    .await;
    let released = (source_lock.release().await, dest_lock.release().await);
    let (old_serial, moved) = result?;
    released.0?;
    released.1?;
    let kept = match from {
        BackendKind::Local => format!(
            "; the local file is kept as `{}`",
            crate::state::migrated_path(&stack.state.path).display()
        ),
        BackendKind::Kubernetes => String::new(),
    };
    eprintln!(
        "Moved the state of stack `{}` (lineage {}, serial {} -> {}) from {} to {}{kept}.",
        stack.meta.name,
        moved.lineage,
        old_serial,
        moved.serial,
        source.location(),
        dest.location()
    );
    let want = match to {
        BackendKind::Local => StateBackend::Local,
        BackendKind::Kubernetes => StateBackend::Kubernetes,
    };
    if stack.state.backend != want {
        eprintln!(
            "Now set `[state] backend = \"{}\"` in `{}`.",
            to.name(),
            stack.source.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
