//! Everything that can go wrong reading, writing or locking state. Messages are lowercase, name
//! the file in backticks and say what to do next; I/O causes are attached as sources, not
//! repeated in the message, so the error chain prints each fact once.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::backend::LockHolder;
use super::lock::LockInfo;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("failed to read state `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The file exists but is not a state this version can load.
    #[error(
        "state `{}` is corrupted: {detail}; restore the previous version from `{}.backup` \
         (copy it over `{}`), or fix the file by hand",
        path.display(),
        path.display(),
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },

    #[error(
        "state `{}` has format_version `{found}`, but this raystack only understands format_version \
         `{}`; use the raystack release that wrote it",
        path.display(),
        super::FORMAT_VERSION
    )]
    UnsupportedVersion { path: PathBuf, found: String },

    #[error("failed to write state `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The file on disk is a different state (another stack's file copied over it, or a state
    /// created from scratch in place of the one that was read).
    #[error(
        "refusing to write state `{}`: the file on disk has lineage `{on_disk}`, not `{ours}`, so \
         it is a different state; check the stack's `[state] path`",
        path.display()
    )]
    LineageMismatch {
        path: PathBuf,
        ours: String,
        on_disk: String,
    },

    /// Someone wrote the file after this process read it, without holding the lock.
    #[error(
        "refusing to write state `{}`: it was changed since it was read (serial {on_disk} on disk, \
         {ours} in memory); run the command again",
        path.display()
    )]
    StaleSerial {
        path: PathBuf,
        ours: u64,
        on_disk: u64,
    },

    /// The state read is not the one this machine last saw at that path (see `seen`).
    #[error(
        "state `{}` is not the state last seen here: its lineage is `{found}`, not `{seen}` \
         (another state was copied over it, or it was recreated). If this state is the right one, \
         delete `{}` and run the command again",
        path.display(),
        marker.display()
    )]
    LineageChanged {
        path: PathBuf,
        seen: String,
        found: String,
        marker: PathBuf,
    },

    /// The state read is older than one this machine already saw at that path.
    #[error(
        "state `{}` went backwards: its serial is {found}, but serial {seen} was already seen here \
         (an old copy or backup was restored?); objects applied since would be forgotten. \
         If restoring it was intended, delete `{}` and run the command again",
        path.display(),
        marker.display()
    )]
    SerialWentBack {
        path: PathBuf,
        seen: u64,
        found: u64,
        marker: PathBuf,
    },

    /// The state records another stack (or namespace) than the one being run.
    #[error(
        "state {location} belongs to stack `{found_stack}`{}, not to stack `{stack}` (namespace \
         `{namespace}`): running with it would change or delete the other stack's objects. {}",
        found_namespace.as_deref().map(|n| format!(" (namespace `{n}`)")).unwrap_or_default(),
        if *shared_by_name {
            "Stacks sharing a state namespace need distinct `[stack] name`s (or their own \
             `[state] namespace`)"
        } else {
            "Give each stack its own `[state] path`; if the file was copied here by mistake, \
             move it back"
        }
    )]
    WrongStack {
        /// Where the state was read, as the backend names it ("`path`", "Secret `ns/name` (on
        /// server)").
        location: String,
        found_stack: String,
        found_namespace: Option<String>,
        stack: String,
        namespace: String,
        /// The backend keys state by stack name (kubernetes), so the clash is two stacks with
        /// one name rather than one file in two places.
        shared_by_name: bool,
    },

    #[error("failed to lock state `{}` (lock file `{}`)", path.display(), lock_path.display())]
    Lock {
        path: PathBuf,
        lock_path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Another process holds the lock.
    #[error("{}; wait for it to finish (the lock is released as soon as that process exits)", .0.describe())]
    Locked(LockInfo),

    /// `lock_wait` gave up.
    #[error(
        "{}, and it was still held after waiting {:?}; wait for it to finish (the lock is \
         released as soon as that process exits)",
        .0.describe(),
        .1
    )]
    LockTimeout(LockInfo, Duration),

    /// `force-unlock` found nothing to unlock.
    #[error("state {0} is not locked; there is nothing to unlock")]
    NotLocked(String),

    /// `force-unlock` was given another lock's ID.
    #[error(
        "refusing to unlock: lock ID `{given}` is not the current lock, which is {holder}; \
         check the ID in the error that reported the lock"
    )]
    WrongLockId { given: String, holder: String },

    /// Someone force-unlocked or took over this process's lock while it ran.
    #[error(
        "lost the lock on state {0} (it was force-unlocked, taken over by another run, or not \
         renewed for longer than its lease); stopped before writing anything more to the cluster \
         or to state; check what the other run did, then rerun"
    )]
    LockLost(String),

    /// Another run holds the kubernetes lease.
    #[error(
        "stack `{stack}` is locked: lease `{lease}` is held by {}{}; wait for it to finish, or, if \
         that run is dead, wait for the lease to expire or run `raystack force-unlock STACK {}`",
        .holder.describe(),
        match &.holder.expires {
            Some(t) => format!(", and expires at {t} unless renewed"),
            None => ", and has no duration, so it never expires on its own".to_owned(),
        },
        .holder.id
    )]
    LeaseHeld {
        stack: String,
        lease: String,
        holder: LockHolder,
    },

    /// A resourceVersion precondition failed: someone wrote the state since it was read.
    #[error(
        "state {0} was changed by someone else since this run read it (409 Conflict), so nothing \
         was overwritten; objects this run applied are in the cluster but not yet recorded: \
         rerun the command, which records them from the cluster (nothing is lost)"
    )]
    Conflict(String),

    /// A Kubernetes API call of the kubernetes backend failed.
    #[error("failed to {action} {location}: {message}{}", rbac_hint(*.code))]
    Kube {
        action: String,
        location: String,
        code: Option<u16>,
        message: String,
    },

    /// Stored state that does not decode.
    #[error(
        "state {location} is corrupted: {detail}; `raystack state pull` on a copy, or restore it \
         from a backup of the namespace"
    )]
    StoredCorrupt { location: String, detail: String },

    /// The cluster that holds the state could not be reached (kubeconfig, context).
    #[error("failed to connect to the cluster that holds the stack's state")]
    Connect {
        #[source]
        source: crate::cluster::ClusterError,
    },

    /// The backend the stack names is empty, but the local state file exists: the stack file
    /// was switched to another backend without moving its state.
    #[error(
        "stack `{stack}` keeps its state in {location}, which is empty, but a local state file \
         `{}` exists; move it with `raystack state migrate {} --to kubernetes`",
        file.display(),
        source_file.display()
    )]
    Unmigrated {
        stack: String,
        location: String,
        file: PathBuf,
        source_file: PathBuf,
    },

    /// Readers kept losing the race with writers.
    #[error("state {0} kept changing while it was read; try again")]
    Unstable(String),
}

fn rbac_hint(code: Option<u16>) -> &'static str {
    match code {
        Some(403) => {
            "\n  help: the credentials lack a permission the kubernetes state backend needs; \
             the README section \"Working as a team / in CI\" lists the Roles for plan and apply"
        }
        _ => "",
    }
}
