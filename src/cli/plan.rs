//! `raystack plan STACK...` and `raystack show PLANFILE`: arguments and views. The engine plans
//! (`Engine::plan_many`); this file saves the plan file and prints the review document.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::args::{ClusterArgs, ReviewArgs};
use super::review::{exit_code, print};
use crate::output::review::{Describe, Outcome};
use crate::output::{Format, print_stdout};
use crate::plan::{read_plan_file, write_plan_file};

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(required = true)]
    pub stacks: Vec<PathBuf>,
    /// Plan against the recorded state alone: no cluster, no cloud calls.
    #[arg(long)]
    pub offline: bool,
    /// Save the plan for `raystack apply PLANFILE`.
    #[arg(long = "out", value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 0 when there are no changes, 1 on error, 2 when there are changes.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// How many stacks to plan at once (each keeps its own requests concurrent too).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    #[command(flatten)]
    pub review: ReviewArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub async fn run(args: PlanArgs, color: bool) -> anyhow::Result<ExitCode> {
    if args.out.is_some() && args.stacks.len() > 1 {
        bail!("--out saves one plan; got {} stacks", args.stacks.len());
    }
    let engine = args.cluster.engine();
    let planned = engine
        .plan_many(&args.stacks, args.offline, usize::from(args.parallelism))
        .await;
    let single = args.stacks.len() == 1;
    let mut outcomes = Vec::new();
    for (path, result) in args.stacks.iter().zip(planned) {
        // A stack's error is its outcome, not the command's, unless it is the only stack.
        let plan = match result {
            Ok(plan) => plan,
            Err(err) if single => return Err(err),
            Err(err) => {
                outcomes.push(Outcome::Failed {
                    stack_file: path.display().to_string(),
                    error: crate::output::error_text(&err),
                });
                continue;
            }
        };
        if let Some(out) = &args.out {
            write_plan_file(out, &plan)?;
            eprintln!(
                "Saved the plan to `{}`; apply exactly this plan with `raystack apply {}`.",
                out.display(),
                out.display()
            );
        }
        outcomes.push(Outcome::Planned(Box::new(plan)));
    }
    let describe = Describe {
        title: "plan".into(),
        full_hint: "For the full plan of a stack, run `raystack plan STACK --out PLANFILE` and `raystack show PLANFILE`, or this command with `--max-bytes 0`.".into(),
    };
    print(&outcomes, args.format, color, &args.review, describe)?;
    Ok(exit_code(&outcomes, args.detailed_exitcode))
}

/// `raystack show PLANFILE`
pub fn show(planfile: &Path, format: Format, color: bool) -> anyhow::Result<ExitCode> {
    let plan = read_plan_file(planfile)?;
    print_stdout(&crate::output::render_plan(&plan, format, color))?;
    Ok(ExitCode::SUCCESS)
}
