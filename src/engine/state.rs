//! The commands that work on a stack's state backend alone: reading the state (`state list`,
//! `state show`, `state pull`), releasing a dead run's lock (`force-unlock`) and moving the
//! state to the other backend (`state migrate`). Each returns what happened; the CLI words it.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::Engine;
use crate::stack::Stack;
use crate::state::{Backend, Owner, State, StateBackend};

/// A stack's recorded state, read without the lock (every backend's writes are atomic).
pub struct StateRead {
    pub stack: Stack,
    pub kind: StateBackend,
    /// For messages: "`.raystack/x.state.json`" or "Secret `ns/raystack-state-x`".
    pub location: String,
    /// `None`: no state recorded.
    pub state: Option<State>,
}

/// A lock found held with the ID the user gave, ready to be released once they confirm.
pub struct Unlocking {
    pub stack: String,
    /// Who holds it, since when, with which ID.
    pub holder: String,
    id: String,
    backend: Box<dyn Backend>,
}

impl Unlocking {
    /// Releases the lock; returns who held it.
    pub async fn release(self) -> anyhow::Result<String> {
        Ok(self.backend.force_unlock(&self.id).await?.describe())
    }
}

/// What `state migrate` did.
pub struct Migrated {
    pub stack: String,
    pub lineage: String,
    pub old_serial: u64,
    pub new_serial: u64,
    pub from: String,
    pub to: String,
    /// Where the source backend kept the state it retired (the local file, as
    /// `<path>.migrated`), if it kept it.
    pub kept_local: Option<PathBuf>,
    /// `(backend name, stack file)` when the stack file still names the old backend.
    pub set_backend: Option<(&'static str, PathBuf)>,
}

impl Engine {
    /// Reads the state of the stack at `stack_path`.
    pub async fn read_state(&self, stack_path: &Path) -> anyhow::Result<StateRead> {
        let stack = crate::render::load(stack_path)?;
        let backend = self.open_state(&stack).await?;
        let state = backend.read().await?;
        if state.is_none() {
            crate::state::refuse_unmigrated(&stack.state, owner(&stack), backend.as_ref())?;
        }
        Ok(StateRead {
            kind: backend.kind(),
            location: backend.location(),
            state,
            stack,
        })
    }

    /// Finds the lock on the stack's state and checks it carries `id`.
    pub async fn find_lock(&self, stack_path: &Path, id: &str) -> anyhow::Result<Unlocking> {
        let stack = crate::render::load(stack_path)?;
        let backend = self.open_state(&stack).await?;
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
        Ok(Unlocking {
            stack: stack.meta.name.clone(),
            holder: holder.describe(),
            id: id.to_owned(),
            backend,
        })
    }

    /// Copies the state from the other backend to `to` (same lineage, serial + 1) under both
    /// locks, reads the copy back, and only then retires the source.
    pub async fn migrate(&self, stack_path: &Path, to: StateBackend) -> anyhow::Result<Migrated> {
        let stack = crate::render::load(stack_path)?;
        let from = crate::state::migration_source(to);
        let reach = self.reach(&stack);
        let source = crate::state::open_kind(from, &stack.state, &stack.meta.name, &reach).await?;
        let dest = crate::state::open_kind(to, &stack.state, &stack.meta.name, &reach).await?;
        let mut source_lock = source.lock("state migrate").await?;
        let mut dest_lock = dest.lock("state migrate").await?;
        for note in source_lock.notes().into_iter().chain(dest_lock.notes()) {
            self.warn(note);
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
            let kept = source_lock.retire().await?;
            Ok((state.serial, moved, kept))
        }
        .await;
        let released = (source_lock.release().await, dest_lock.release().await);
        let (old_serial, moved, kept_local) = result?;
        released.0?;
        released.1?;
        Ok(Migrated {
            stack: stack.meta.name.clone(),
            lineage: moved.lineage.clone(),
            old_serial,
            new_serial: moved.serial,
            from: source.location(),
            to: dest.location(),
            kept_local,
            set_backend: (stack.state.backend != to).then(|| (to.name(), stack.source.clone())),
        })
    }
}

/// The stack a state belongs to, for `crate::state`'s messages.
pub(super) fn owner(stack: &Stack) -> Owner<'_> {
    Owner {
        name: &stack.meta.name,
        source: &stack.source,
    }
}
