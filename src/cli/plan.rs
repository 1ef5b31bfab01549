//! `raystack plan STACK...` and `raystack show PLANFILE`: arguments and views. The engine plans
//! (`Engine::plan_many`); this file saves the plan file and prints the review document.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::args::{ClusterArgs, FormatArgs, ReviewArgs};
use super::review::PlanFiles;
use crate::output::review::{self, Describe};
use crate::output::{Format, print_stdout};
use crate::plan::read_plan_file;
use crate::plan::review::{Failed, Review, StackResult};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Stack files; several are planned concurrently and reported in one document.
    #[arg(required = true, value_name = "STACK")]
    pub stacks: Vec<PathBuf>,
    /// Plan against the recorded state alone: no cluster, no cloud calls.
    #[arg(long)]
    pub offline: bool,
    /// Save the plan for `raystack apply PLANFILE` (one stack).
    #[arg(long = "out", value_name = "PLANFILE", conflicts_with = "out_dir")]
    pub out: Option<PathBuf>,
    /// Save each stack's plan as DIR/<stack name>.plan.json, for `raystack apply` one by one.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Exit 0 when there are no changes, 1 on error, 2 when there are changes.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// How many stacks to plan at once (each keeps its own requests concurrent too; one client
    /// keeps at most 200 requests in flight per API server whatever N is).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    #[command(flatten)]
    pub review: ReviewArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub async fn run(args: PlanArgs, color: bool) -> anyhow::Result<ExitCode> {
    if args.out.is_some() && args.stacks.len() > 1 {
        bail!(
            "--out saves one plan; got {} stacks: use --out-dir DIR to save one plan file per stack",
            args.stacks.len()
        );
    }
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create the plan directory `{}`", dir.display()))?;
    }
    super::ci::warn_default_state(&args.stacks, color);
    let engine = args.cluster.engine();
    let view = args.review.view(args.format.format, color);
    let count = args.stacks.len();
    let mut files = PlanFiles::new(args.out.as_deref(), args.out_dir.as_deref());
    let saving = files.saving();
    // A plan to save is kept whole; otherwise only what the review prints of it.
    let keep = move |plan| {
        if saving {
            review::planned(plan)
        } else {
            view.keep(plan, count)
        }
    };
    let parallelism = usize::from(args.parallelism);
    let planned = engine
        .plan_many(&args.stacks, args.offline, parallelism, saving, keep)
        .await;
    let mut stacks = Vec::new();
    for (path, result) in args.stacks.iter().zip(planned) {
        // A stack's error is its result, not the command's, unless it is the only stack.
        let stack = match result {
            Ok(stack) => stack,
            Err(err) if count == 1 => return Err(err),
            Err(err) => StackResult::Failed(Failed {
                stack_file: path.display().to_string(),
                error: crate::output::error_text(&err),
            }),
        };
        files.save(&stack)?;
        stacks.push(stack);
    }
    let describe = Describe {
        title: "plan".into(),
        full_hint: "For the full plan of a stack, run `raystack plan STACK --out PLANFILE` and `raystack show PLANFILE`, or this command with `--max-bytes 0`.".into(),
        nothing: "no stack file given".into(),
        one_stack: count == 1,
    };
    let reviewed = Review::new(stacks);
    review::print(&reviewed, view, &args.review.marker, describe)?;
    let status = reviewed.exit_status(args.detailed_exitcode);
    // Freeing many plans took a tenth of the command on one thread; the process ends meanwhile.
    std::thread::spawn(move || drop(reviewed));
    Ok(ExitCode::from(status.code()))
}

/// `raystack show PLANFILE`
pub fn show(planfile: &Path, format: Format, color: bool) -> anyhow::Result<ExitCode> {
    let plan = read_plan_file(planfile)?;
    print_stdout(&crate::output::render_plan(&plan, format, color))?;
    Ok(ExitCode::SUCCESS)
}
