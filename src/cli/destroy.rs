//! `raystack destroy STACK`: show what goes (and what is kept), ask for `yes`, delete with
//! progress on stderr, RayCluster first. The engine plans the destruction and executes it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::args::ClusterArgs;
use super::confirm::confirm;
use crate::engine::{Mode, guard};
use crate::output::plan_text::outcome_line;
use crate::output::progress::StderrProgress;
use crate::output::{Format, print_stdout, render_plan};

#[derive(Debug, Args)]
pub struct DestroyArgs {
    pub stack: PathBuf,
    #[arg(long)]
    pub auto_approve: bool,
    /// Also delete the protected Redis volume (PVC).
    #[arg(long)]
    pub allow_data_loss: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub async fn run(args: DestroyArgs, color: bool) -> anyhow::Result<ExitCode> {
    let engine = args.cluster.engine();
    let mode = Mode::Destroy {
        allow_data_loss: args.allow_data_loss,
    };
    let p = engine
        .prepare(&args.stack, mode, "destroy")
        .await
        .with_context(|| {
            format!(
                "failed to plan the destruction of `{}`",
                args.stack.display()
            )
        })?;
    print_stdout(&render_plan(&p.plan, Format::Text, color))?;
    // `protect_volume = false` lets destroy delete the Redis volume with everything else (the
    // plan still says DATA LOSS, and confirmation is still asked); true keeps it unless
    // --allow-data-loss. Apply's replacements need --allow-data-loss either way.
    guard(&p.plan, args.allow_data_loss || !p.protect_volume)?;
    if !p.plan.has_changes() {
        return Ok(ExitCode::SUCCESS);
    }
    let question = format!("Destroy stack `{}`?", p.plan.stack);
    if !confirm(
        &question,
        args.auto_approve,
        "review the plan and pass --auto-approve",
    )? {
        eprintln!("Destroy cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    let mut progress = StderrProgress { color };
    let plan = engine.execute(p, &mut progress).await?;
    if plan.has_changes() {
        print_stdout(&outcome_line(&plan, "Destroy"))?;
    }
    for k in &plan.kept {
        eprintln!(
            "kept `{k}` (protected Redis volume); `raystack destroy --allow-data-loss` deletes it"
        );
    }
    Ok(ExitCode::SUCCESS)
}
