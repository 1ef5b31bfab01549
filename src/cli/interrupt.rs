//! Ctrl-C and SIGTERM during `apply` or `destroy`. While the command plans and asks for `yes`
//! nothing is written yet: the first cancels it ([`unless_interrupted`]) and the lock it took
//! is released. Once it writes to the cluster, the first asks the apply to stop at its next
//! step ([`crate::apply::interrupt`]), so state records what was applied and the lock is
//! released. A second exits at once. The exit code of an interrupted run is
//! [`EXIT_INTERRUPTED`].

use std::io::Write;

/// 128 + SIGINT, the shell's code for a command ended by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Listens for SIGINT and SIGTERM until the returned task is aborted.
pub fn listen() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let Some(mut signals_in) = Signals::new() else {
            return;
        };
        let mut signals = 0u32;
        loop {
            if !signals_in.next().await {
                return;
            }
            signals += 1;
            let mut err = std::io::stderr();
            if signals == 1 && !crate::apply::interrupt::writing() {
                let _ = writeln!(
                    err,
                    "Interrupt received: cancelling before anything is written, then releasing the lock (interrupt again to exit at once)"
                );
                crate::apply::interrupt::request();
            } else if signals == 1 {
                let _ = writeln!(
                    err,
                    "Interrupt received: stopping after the step in progress, then recording state and releasing the lock (interrupt again to exit at once)"
                );
                crate::apply::interrupt::request();
            } else {
                let _ = writeln!(
                    err,
                    "Interrupted again: exiting at once; state records every object applied so far, and the lock ends with this process (local) or when its lease expires (kubernetes)"
                );
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
        }
    })
}

/// Runs `step` (planning, asking for `yes`: nothing written yet) unless an interrupt comes
/// first; `None` when one did, and then `step` is dropped with whatever it held (a lock taken
/// while planning is released as it is dropped). An interrupt that arrives as `step` finishes
/// counts too: nothing is written after it.
pub async fn unless_interrupted<T>(
    step: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    let done = tokio::select! {
        biased;
        () = crate::apply::interrupt::wait() => None,
        r = step => Some(r?),
    };
    Ok(done.filter(|_| !crate::apply::interrupt::requested()))
}

/// What an interrupted command says before anything was written, and its exit code.
pub fn cancelled(verb: &str) -> std::process::ExitCode {
    eprintln!("Interrupted: {verb} cancelled before anything was written; the lock is released.");
    std::process::ExitCode::from(EXIT_INTERRUPTED)
}

/// SIGINT and SIGTERM, registered once for the whole command.
#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> Option<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Signals {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
        })
    }

    /// The next one; `false` when no more can come.
    async fn next(&mut self) -> bool {
        tokio::select! {
            s = self.int.recv() => s.is_some(),
            s = self.term.recv() => s.is_some(),
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> Option<Signals> {
        Some(Signals)
    }

    async fn next(&mut self) -> bool {
        tokio::signal::ctrl_c().await.is_ok()
    }
}
