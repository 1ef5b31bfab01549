//! `raystack diff BASE HEAD` and `raystack diff --base GITREF [STACK...]`: arguments. The
//! comparison is the engine's (`engine::diff_files`, `engine::diff_at_revision`: no cluster, no
//! state), the review `plan::review`'s and its rendering `output::review`'s.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::args::{FormatArgs, ReviewArgs};
use crate::output::review::{self, Describe};
use crate::plan::review::{Failed, Review, StackResult};

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
        let reviewed = Review::new(vec![review::planned(plan)]);
        let describe = Describe {
            title: "diff".into(),
            full_hint: "Run `raystack diff` with `--max-bytes 0` to see everything.".into(),
            nothing: "no stack file given".into(),
            one_stack: true,
        };
        let view = args.review.view(args.format.format, color);
        review::print(&reviewed, view, &args.review.marker, describe)?;
        let status = reviewed.exit_status(args.detailed_exitcode);
        return Ok(ExitCode::from(status.code()));
    };
    let diffed = crate::engine::diff_at_revision(reference, &args.stacks)?;
    let reviewed = Review::new(
        diffed
            .stacks
            .into_iter()
            .map(|(path, plan)| match plan {
                Ok(plan) => review::planned(plan),
                Err(err) => StackResult::Failed(Failed {
                    stack_file: path.display().to_string(),
                    error: crate::output::error_text(&err),
                }),
            })
            .collect(),
    );
    let title = format!("diff against `{reference}`");
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
    let describe = Describe {
        title,
        full_hint,
        nothing: "no stack file changed".into(),
        // However many stack files changed, the JSON is a review (a CI step reads one shape).
        one_stack: false,
    };
    let view = args.review.view(args.format.format, color);
    review::print(&reviewed, view, &args.review.marker, describe)?;
    Ok(ExitCode::from(
        reviewed.exit_status(args.detailed_exitcode).code(),
    ))
}
