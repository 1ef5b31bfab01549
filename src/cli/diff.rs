//! `raystack diff BASE HEAD` and `raystack diff --base GITREF [STACK...]`: arguments and the
//! review document. The comparison is the engine's (`engine::diff_files`,
//! `engine::diff_at_revision`): no cluster, no state.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::args::{FormatArgs, ReviewArgs};
use super::review::{exit_code, print};
use crate::output::review::{Describe, Outcome, marker};
use crate::output::{Format, print_stdout};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// BASE_STACK HEAD_STACK; with --base, the stack files to compare (default: every stack
    /// file changed since GITREF).
    #[arg(value_name = "STACK")]
    pub stacks: Vec<PathBuf>,
    /// Compare with the stack files' versions at this git revision (branch, tag, commit).
    #[arg(long, value_name = "GITREF")]
    pub base: Option<String>,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Exit 0 when there are no changes, 1 on error, 2 when there are changes.
    #[arg(long)]
    pub detailed_exitcode: bool,
    #[command(flatten)]
    pub review: ReviewArgs,
}

pub fn run(args: DiffArgs, color: bool) -> anyhow::Result<ExitCode> {
    let Some(reference) = args.base.as_deref() else {
        let [base, head] = args.stacks.as_slice() else {
            bail!(
                "diff takes BASE_STACK HEAD_STACK, or --base GITREF [STACK...]; got {} file(s)",
                args.stacks.len()
            );
        };
        let plan = crate::engine::diff_files(base, head)?;
        let outcomes = [Outcome::planned(plan)];
        let describe = Describe {
            title: "diff".into(),
            full_hint: "Run `raystack diff` with `--max-bytes 0` to see everything.".into(),
        };
        let view = args.review.view(args.format.format, color);
        print(&outcomes, view, &args.review, describe)?;
        return Ok(exit_code(&outcomes, args.detailed_exitcode));
    };
    let diffed = crate::engine::diff_at_revision(reference, &args.stacks)?;
    let outcomes: Vec<Outcome> = diffed
        .stacks
        .into_iter()
        .map(|(path, plan)| match plan {
            Ok(plan) => Outcome::planned(plan),
            Err(err) => Outcome::Failed {
                stack_file: path.display().to_string(),
                error: crate::output::error_text(&err),
            },
        })
        .collect();
    let title = format!("diff against `{reference}`");
    if outcomes.is_empty() {
        print_stdout(&match args.format.format {
            Format::Json => "[]\n".to_string(),
            Format::Markdown => format!(
                "{}\n**raystack {title}**: no stack file changed.\n",
                marker(&args.review.marker)
            ),
            Format::Text => format!("No stack file changed since `{reference}`.\n"),
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    // The revision goes into the suggested command only when it is plain: a branch name can be
    // a shell command list (`evil;id` is a valid one), and the document is posted where others
    // copy commands from.
    let plain = !reference.starts_with('-')
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '~' | '^'));
    let full_hint = if plain {
        format!(
            "Run `raystack diff --base {reference}` with `--max-bytes 0` (or `--format text`) to see everything."
        )
    } else {
        "Run `raystack diff` with the same `--base` and `--max-bytes 0` (or `--format text`) to see everything.".to_string()
    };
    let view = args.review.view(args.format.format, color);
    print(&outcomes, view, &args.review, Describe { title, full_hint })?;
    Ok(exit_code(&outcomes, args.detailed_exitcode))
}
