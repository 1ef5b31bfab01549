//! Everything that can go wrong reading, writing or locking state. Messages are lowercase, name
//! the file in backticks and say what to do next; I/O causes are attached as sources, not
//! repeated in the message, so the error chain prints each fact once.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

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
}
