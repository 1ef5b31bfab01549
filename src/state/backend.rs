//! The backend interface: where a stack's state lives and how it is locked, as seen by the
//! commands. `LocalBackend` (a file) and `KubernetesBackend` (Secrets and a Lease) implement it;
//! `open` (in `open.rs`) picks one from the stack's `[state]` section. Methods return boxed futures so the
//! commands can hold a `dyn Backend` whichever the stack chose.

use std::future::Future;
use std::pin::Pin;

use super::local::{LocalBackend, StateLock};
use super::lock::LockInfo;
use super::{State, StateError};

/// A boxed, sendable future of a state operation.
pub type StateFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// Which backend keeps a state: the stack schema's enum, the one name for it everywhere.
pub use crate::stack::StateBackend;

/// Who holds a state lock, in the terms of either backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// What `raystack force-unlock STACK LOCK_ID` takes.
    pub id: String,
    /// Who runs what: `user@host pid N (apply)` (local: `pid N on host H (apply)`).
    pub who: String,
    /// `plan`, `apply`, `destroy`, `state migrate`, ...
    pub operation: String,
    /// RFC 3339.
    pub since: String,
    /// When a lease ends unless renewed (kubernetes); `None` for a lock that ends only with its
    /// holder (local flock) or a lease without a duration.
    pub expires: Option<String>,
}

impl LockHolder {
    pub(super) fn from_local(info: &LockInfo) -> Self {
        LockHolder {
            id: info.id.clone(),
            who: format!(
                "pid {} on host {} ({})",
                info.pid, info.host, info.operation
            ),
            operation: info.operation.clone(),
            since: info.created.clone(),
            expires: None,
        }
    }

    /// "alice@host pid 42 (apply) since T (lock ID x)".
    pub fn describe(&self) -> String {
        format!("{} since {} (lock ID {})", self.who, self.since, self.id)
    }
}

/// Where one stack's state lives.
pub trait Backend: Send + Sync {
    fn kind(&self) -> StateBackend;

    /// For messages: "`.raystack/x.state.json`" or "Secret `raystack-system/raystack-state-x`".
    fn location(&self) -> String;

    /// Whether reading the state crosses the network (a plan that reads it without the lock
    /// says where it reads from).
    fn remote(&self) -> bool {
        false
    }

    /// What a plan file is bound to: the backend's kind and a location that names the same
    /// state from any checkout and any machine (the local file relative to `base`, the stack
    /// file's directory, when it lies below it; the Secret's namespace and name).
    fn binding(&self, base: &std::path::Path) -> String;

    /// Reads the current state without locking; `None` when none is recorded. Never returns a
    /// mix of two versions (each backend's write makes sure of it).
    fn read(&self) -> StateFuture<'_, Option<State>>;

    /// [`read`](Self::read) for a plan: also refuses a state that is not the one last seen here
    /// (the local backend's `.seen` marker), as a locked read does, but remembers nothing.
    fn read_checked(&self) -> StateFuture<'_, Option<State>> {
        self.read()
    }

    /// Takes the exclusive write lock for `operation`, or fails at once naming the holder.
    fn lock<'a>(&'a self, operation: &'a str) -> StateFuture<'a, Box<dyn Lock>>;

    /// The current holder of the lock, if any (reading needs no write permission).
    fn holder(&self) -> StateFuture<'_, Option<LockHolder>>;

    /// Releases a lock left by someone else, if its ID is `id`; returns who held it.
    /// Refuses any other ID with [`StateError::WrongLockId`].
    fn force_unlock<'a>(&'a self, id: &'a str) -> StateFuture<'a, LockHolder>;
}

/// A held write lock: the only way to write state.
pub trait Lock: Send {
    fn holder(&self) -> &LockHolder;

    /// Warnings from taking the lock (e.g. an expired lease that was taken over), for the
    /// command to show.
    fn notes(&self) -> Vec<String>;

    fn read(&mut self) -> StateFuture<'_, Option<State>>;

    /// Fencing: fails with [`StateError::LockLost`] once this lock may no longer be held, so a
    /// run that lost it makes no further write (to the cluster or to state). A local lock lasts
    /// as long as its process; a lease is lost when someone else replaced or deleted it, or when
    /// it was not renewed for longer than its duration (the process was stopped, or every
    /// renewal failed), whether or not anyone took it over yet.
    fn check_held(&self) -> Result<(), StateError> {
        Ok(())
    }

    /// Increments `state.serial` and stores it, refusing a different lineage, a newer serial,
    /// or (kubernetes) a state someone else wrote since it was read. On error `state` is
    /// unchanged and the stored state is whatever it was.
    fn write<'a>(&'a mut self, state: &'a mut State) -> StateFuture<'a, ()>;

    /// Removes the state from this backend once it has moved elsewhere (`state migrate`): the
    /// local file is kept as `<path>.migrated` (returned: where the retired state is kept);
    /// kubernetes deletes its Secrets (`None`).
    fn retire(&mut self) -> StateFuture<'_, Option<std::path::PathBuf>>;

    /// Releases the lock. Dropping a lock releases it too, on a best-effort basis.
    fn release(self: Box<Self>) -> StateFuture<'static, ()>;
}

impl Backend for LocalBackend {
    fn kind(&self) -> StateBackend {
        StateBackend::Local
    }

    fn location(&self) -> String {
        format!("`{}`", self.path().display())
    }

    fn binding(&self, base: &std::path::Path) -> String {
        let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.into());
        let path = absolute(self.path());
        let shown = path.strip_prefix(absolute(base)).unwrap_or(&path);
        format!("local: {}", shown.display())
    }

    fn read(&self) -> StateFuture<'_, Option<State>> {
        Box::pin(async move { LocalBackend::read(self) })
    }

    fn read_checked(&self) -> StateFuture<'_, Option<State>> {
        Box::pin(async move { LocalBackend::read_checked(self) })
    }

    fn lock<'a>(&'a self, operation: &'a str) -> StateFuture<'a, Box<dyn Lock>> {
        Box::pin(async move {
            let lock = LocalBackend::lock(self, operation)?;
            let holder = LockHolder::from_local(lock.info());
            Ok(Box::new(LocalLock { lock, holder }) as Box<dyn Lock>)
        })
    }

    fn holder(&self) -> StateFuture<'_, Option<LockHolder>> {
        Box::pin(async move {
            Ok(self
                .current_holder()?
                .map(|info| LockHolder::from_local(&info)))
        })
    }

    fn force_unlock<'a>(&'a self, id: &'a str) -> StateFuture<'a, LockHolder> {
        Box::pin(async move {
            let info = self.force_unlock(id)?;
            Ok(LockHolder::from_local(&info))
        })
    }
}

/// The local backend's [`Lock`]: the flock-held [`StateLock`].
struct LocalLock {
    lock: StateLock,
    holder: LockHolder,
}

impl Lock for LocalLock {
    fn holder(&self) -> &LockHolder {
        &self.holder
    }

    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    fn read(&mut self) -> StateFuture<'_, Option<State>> {
        Box::pin(async move { self.lock.read() })
    }

    fn write<'a>(&'a mut self, state: &'a mut State) -> StateFuture<'a, ()> {
        Box::pin(async move { self.lock.write(state) })
    }

    fn retire(&mut self) -> StateFuture<'_, Option<std::path::PathBuf>> {
        Box::pin(async move { self.lock.retire().map(Some) })
    }

    fn release(self: Box<Self>) -> StateFuture<'static, ()> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}
