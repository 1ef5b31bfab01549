//! `raystack force-unlock STACK LOCK_ID` and `raystack state migrate`: the commands that change
//! a stack's state backend itself. The engine finds and releases the lock and moves the state;
//! this file asks and reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::args::ClusterArgs;
use super::confirm::confirm;
use crate::state::StateBackend;

#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// The stack file whose lock to release.
    pub stack: PathBuf,
    /// The lock ID, as printed by the command that found the stack locked.
    pub lock_id: String,
    /// Release the lock without asking for `yes` (required without a terminal).
    // `--force`: the flag's name before every command spelled it `--auto-approve`.
    #[arg(long, alias = "force")]
    pub auto_approve: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `raystack force-unlock STACK LOCK_ID`
pub async fn force_unlock(args: ForceUnlockArgs) -> anyhow::Result<ExitCode> {
    let engine = args.cluster.engine();
    let unlocking = engine.find_lock(&args.stack, &args.lock_id).await?;
    eprintln!(
        "The lock on stack `{}` is held by {}.\nIf that run is still working, unlocking lets another run write the same state at the same time.",
        unlocking.stack, unlocking.holder
    );
    if !confirm(
        "Release this lock?",
        args.auto_approve,
        "pass --auto-approve",
    )? {
        eprintln!("Unlock cancelled; the lock is still held.");
        return Ok(ExitCode::from(1));
    }
    let stack = unlocking.stack.clone();
    let released = unlocking.release().await?;
    eprintln!("Released the lock on stack `{stack}` (was held by {released}).");
    Ok(ExitCode::SUCCESS)
}

/// `raystack state migrate STACK --to KIND`
pub async fn migrate(
    stack: &Path,
    to: StateBackend,
    cluster: &ClusterArgs,
) -> anyhow::Result<ExitCode> {
    let m = cluster.engine().migrate(stack, to).await?;
    let kept = m
        .kept_local
        .map(|p| format!("; the local file is kept as `{}`", p.display()))
        .unwrap_or_default();
    eprintln!(
        "Moved the state of stack `{}` (lineage {}, serial {} -> {}) from {} to {}{kept}.",
        m.stack, m.lineage, m.old_serial, m.new_serial, m.from, m.to
    );
    if let Some((backend, file)) = m.set_backend {
        eprintln!(
            "Now set `[state] backend = \"{backend}\"` in `{}`.",
            file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
