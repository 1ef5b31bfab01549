//! Ctrl-C and SIGTERM while `apply` or `destroy` writes to the cluster: the first asks the
//! apply to stop at its next step ([`crate::apply::interrupt`]), so state records what was
//! applied and the lock is released; a second exits at once. The exit code of an interrupted
//! run is [`EXIT_INTERRUPTED`].

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
            if signals == 1 {
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
