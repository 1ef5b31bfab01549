//! A stop asked for from outside the apply (Ctrl-C, SIGTERM: the CLI listens and calls
//! [`request`]): apply starts no new write, abandons the wait in progress, keeps what it
//! recorded, and returns [`super::ApplyError::Interrupted`] so the lock is released and the user
//! told what was applied and what was not. Process-wide, like the signals it stands for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static WRITING: AtomicBool = AtomicBool::new(false);

/// From here on the command writes to the cluster (an interrupt stops it at its next step);
/// before, an interrupt cancels it with nothing written.
pub fn begin_writing() {
    WRITING.store(true, Ordering::SeqCst);
}

/// Whether the command has started writing ([`begin_writing`]).
pub fn writing() -> bool {
    WRITING.load(Ordering::SeqCst)
}
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Asks the running apply to stop at its next step.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
    WAKE.notify_waiters();
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Returns once a stop is asked for (at once if it was already).
pub async fn wait() {
    loop {
        let woken = WAKE.notified();
        if requested() {
            return;
        }
        woken.await;
    }
}

/// Sleeps for `d`, or less when a stop is asked for meanwhile; `true` when it was.
pub async fn sleep(d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => requested(),
        () = wait() => true,
    }
}
