//! `raystack apply STACK|PLANFILE`: show the plan, enforce the data-loss guard, ask for `yes`
//! (only on a terminal), execute with progress on stderr, report. The engine plans, checks a
//! saved plan file and executes; this file asks and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::args::ClusterArgs;
use super::confirm::confirm;
use super::interrupt::{cancelled, unless_interrupted};
use crate::engine::{Engine, Mode, Prepared, guard, guard_adoption};
use crate::output::plan_text::outcome_line;
use crate::output::progress::StderrProgress;
use crate::output::{Format, print_stdout, render_plan};
use crate::plan::{Plan, looks_like_plan_file};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A stack file, or a plan file saved with `plan --out`.
    pub target: PathBuf,
    /// Apply without asking for `yes` (required without a terminal). A plan file is applied
    /// without asking anyway: it was reviewed when it was saved.
    #[arg(long)]
    pub auto_approve: bool,
    /// Allow the changes the plan marks DATA LOSS: deleting, replacing or shrinking the Redis
    /// volume, deleting or replacing the RayCluster (its GCS state goes), or pointing it at
    /// another Redis, storage namespace or GCS backend.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Take over objects the stack renders that already exist but were not created by raystack
    /// (the plan marks each "adopt"); without it apply refuses and names them.
    #[arg(long)]
    pub adopt: bool,
    /// With --adopt: also take over objects another deployment tool manages (Helm, Argo CD,
    /// kapp), which would otherwise fight raystack over them.
    #[arg(long, requires = "adopt")]
    pub take_ownership: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub async fn run(args: ApplyArgs, color: bool) -> anyhow::Result<ExitCode> {
    // Ctrl-C, for the whole command: cancels it while it plans and asks, stops it at its next
    // step once it writes (`super::interrupt`).
    let listening = super::interrupt::listen();
    let result = apply(args, color).await;
    listening.abort();
    result
}

async fn apply(args: ApplyArgs, color: bool) -> anyhow::Result<ExitCode> {
    let engine = args.cluster.engine();
    let plan_file = looks_like_plan_file(&args.target);
    let stack_file = if plan_file {
        // The stack a saved plan was made from; a file that does not read is the engine's to
        // report.
        crate::plan::read_plan_file(&args.target)
            .ok()
            .map(|p| PathBuf::from(p.binding.stack_file))
    } else {
        Some(args.target.clone())
    };
    if let Some(stack_file) = stack_file {
        super::ci::refuse_default_state(&stack_file, "apply")?;
    }
    let prepared = if plan_file {
        // A saved plan was reviewed already: it is applied as it is, without asking.
        let Some(p) = unless_interrupted(engine.prepare_plan_file(&args.target)).await? else {
            return Ok(cancelled("apply"));
        };
        guard(&p.plan, args.allow_data_loss)?;
        guard_adoption(&p.plan, args.adopt, args.take_ownership)?;
        p
    } else {
        let planning = async {
            engine
                .prepare(&args.target, Mode::Plan { offline: false }, "apply")
                .await
                .with_context(|| format!("failed to plan `{}`", args.target.display()))
        };
        let Some(p) = unless_interrupted(planning).await? else {
            return Ok(cancelled("apply"));
        };
        print_stdout(&render_plan(&p.plan, Format::Text, color))?;
        guard(&p.plan, args.allow_data_loss)?;
        guard_adoption(&p.plan, args.adopt, args.take_ownership)?;
        let question = format!("Apply these changes to stack `{}`?", p.plan.stack);
        if p.plan.has_changes() {
            match ask(&question, args.auto_approve, "Apply", color).await? {
                Some(true) => {}
                Some(false) => {
                    release(p).await;
                    return Ok(ExitCode::from(1));
                }
                None => {
                    release(p).await;
                    return Ok(cancelled("apply"));
                }
            }
        }
        p
    };
    execute(&engine, prepared, color, "Apply").await?;
    Ok(ExitCode::SUCCESS)
}

/// Releases the lock of a plan that will not be executed.
pub(super) async fn release(prepared: Prepared) {
    if let Some(lock) = prepared.lock
        && let Err(e) = lock.release().await
    {
        eprintln!("warning: {e:#}");
    }
}

/// [`approved`], on a thread of its own so an interrupt can end the wait for an answer;
/// `None` when one did. The `planned` pause point (`RAYSTACK_PAUSE_AT=planned:1`) comes
/// first: the plan is made and shown, the lock held, and nothing is written yet.
pub(super) async fn ask(
    question: &str,
    auto_approve: bool,
    verb: &'static str,
    color: bool,
) -> anyhow::Result<Option<bool>> {
    let question = question.to_string();
    let asking = async move {
        crate::apply::pause::reached(
            crate::apply::pause::Point::Planned,
            &mut StderrProgress { color },
        )
        .await;
        tokio::task::spawn_blocking(move || approved(&question, auto_approve, verb))
            .await
            .context("the prompt failed")?
    };
    unless_interrupted(asking).await
}

/// Asks for `yes` to `question` unless `--auto-approve`; says "`verb` cancelled" on a no.
pub(super) fn approved(question: &str, auto_approve: bool, verb: &str) -> anyhow::Result<bool> {
    let yes = confirm(
        question,
        auto_approve,
        "review the plan and pass --auto-approve",
    )?;
    if !yes {
        eprintln!("{verb} cancelled; nothing was changed.");
    }
    Ok(yes)
}

/// Executes an approved plan with progress on stderr and prints the closing line.
pub(super) async fn execute(
    engine: &Engine,
    prepared: Prepared,
    color: bool,
    verb: &str,
) -> anyhow::Result<Plan> {
    let mut progress = StderrProgress { color };
    // From here on Ctrl-C stops at the next step and leaves state and the lock in order.
    crate::apply::interrupt::begin_writing();
    let plan = engine.execute(prepared, &mut progress).await?;
    if plan.has_changes() {
        print_stdout(&outcome_line(&plan, verb))?;
    }
    Ok(plan)
}
