//! `raystack destroy STACK`: show what goes (and what is kept), ask for `yes`, delete with
//! progress on stderr, RayCluster first. The engine plans the destruction and executes it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::args::ClusterArgs;
use crate::engine::{Mode, guard};
use crate::output::{Format, print_stdout, render_plan};

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The stack file whose objects to delete.
    pub stack: PathBuf,
    /// Destroy without asking for `yes` (required without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Also delete the protected Redis volume (PVC).
    #[arg(long)]
    pub allow_data_loss: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub async fn run(args: DestroyArgs, color: bool) -> anyhow::Result<ExitCode> {
    // Ctrl-C, for the whole command, as for apply (`super::interrupt`).
    let listening = super::interrupt::listen();
    let result = destroy(args, color).await;
    listening.abort();
    result
}

async fn destroy(args: DestroyArgs, color: bool) -> anyhow::Result<ExitCode> {
    super::ci::refuse_default_state(&args.stack, "destroy")?;
    let engine = args.cluster.engine();
    let mode = Mode::Destroy {
        allow_data_loss: args.allow_data_loss,
    };
    let planning = async {
        engine
            .prepare(&args.stack, mode, "destroy")
            .await
            .with_context(|| {
                format!(
                    "failed to plan the destruction of `{}`",
                    args.stack.display()
                )
            })
    };
    let Some(p) = super::interrupt::unless_interrupted(planning).await? else {
        return Ok(super::interrupt::cancelled("destroy"));
    };
    print_stdout(&render_plan(&p.plan, Format::Text, color))?;
    // `protect_volume = false` lets destroy delete the Redis volume with everything else (the
    // plan still says DATA LOSS, and confirmation is still asked); true keeps it unless
    // --allow-data-loss. Apply's replacements need --allow-data-loss either way.
    guard(&p.plan, args.allow_data_loss || !p.protect_volume)?;
    if !p.plan.has_changes() {
        return Ok(ExitCode::SUCCESS);
    }
    let question = format!("Destroy stack `{}`?", p.plan.stack);
    match super::apply::ask(&question, args.auto_approve, "Destroy", color).await? {
        Some(true) => {}
        Some(false) => {
            super::apply::release(p).await;
            return Ok(ExitCode::from(1));
        }
        None => {
            super::apply::release(p).await;
            return Ok(super::interrupt::cancelled("destroy"));
        }
    }
    let plan = super::apply::execute(&engine, p, color, "Destroy").await?;
    for k in &plan.kept {
        eprintln!(
            "kept `{k}` (protected Redis volume); `raystack destroy --allow-data-loss` deletes it"
        );
    }
    Ok(ExitCode::SUCCESS)
}
