//! Printing the results of several stacks (`plan STACK...`, `diff`): one review document in
//! the chosen format, sized per `--max-bytes`, and the exit code they add up to.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::{Format, ReviewArgs};
use crate::output::review::{self, GITHUB_COMMENT_LIMIT, Options, Outcome};

/// What the results are of, for the heading and the "how to see everything" sentence.
pub(super) struct Describe {
    pub title: String,
    pub full_hint: String,
}

/// The size limit `--max-bytes` asks for (Markdown defaults to GitHub's comment limit).
fn max_bytes(args: &ReviewArgs, format: Format) -> Option<usize> {
    match (args.max_bytes, format) {
        (Some(0), _) => None,
        (Some(n), _) => Some(n),
        (None, Format::Markdown) => Some(GITHUB_COMMENT_LIMIT),
        (None, _) => None,
    }
}

/// Prints the review of `outcomes` on stdout; warnings (a review over its limit, and each
/// failed stack's error) go to stderr.
pub(super) fn print(
    outcomes: &[Outcome],
    format: Format,
    color: bool,
    args: &ReviewArgs,
    describe: Describe,
) -> anyhow::Result<()> {
    let opts = Options {
        title: describe.title,
        max_bytes: max_bytes(args, format),
        full_hint: describe.full_hint,
        marker: args.marker.clone(),
    };
    let text = match format {
        Format::Json => match outcomes {
            [Outcome::Planned(plan)] => crate::output::plan_json::render(plan),
            _ => {
                let items: Vec<Value> = outcomes
                    .iter()
                    .map(|o| match o {
                        Outcome::Planned(plan) => crate::output::plan_json::value(plan),
                        Outcome::Failed { stack_file, error } => {
                            json!({"stack_file": stack_file, "error": error})
                        }
                    })
                    .collect();
                format!("{}\n", serde_json::to_string_pretty(&items)?)
            }
        },
        Format::Markdown | Format::Text => {
            let r = if format == Format::Markdown {
                review::markdown(outcomes, &opts)
            } else {
                review::text(outcomes, color, &opts)
            };
            if r.over_limit {
                eprintln!(
                    "warning: the review is {} bytes, over --max-bytes {}, even with only the summary table, DATA LOSS lines and errors",
                    r.text.len(),
                    opts.max_bytes.unwrap_or_default()
                );
            }
            r.text
        }
    };
    super::plan::print_stdout(&text)?;
    for o in outcomes {
        if let Outcome::Failed { stack_file, error } = o {
            eprintln!("error: `{stack_file}` failed:\n{error}");
        }
    }
    Ok(())
}

/// 1 when any stack failed or cannot be applied, else 2 for changes under
/// `--detailed-exitcode`, else 0. Blocking problems are reported on stderr.
pub(super) fn exit_code(outcomes: &[Outcome], detailed_exitcode: bool) -> ExitCode {
    let mut failed = false;
    let mut changes = false;
    for o in outcomes {
        match o {
            Outcome::Failed { .. } => failed = true,
            Outcome::Planned(plan) => {
                changes |= plan.has_changes();
                for p in plan.blocking_problems() {
                    eprintln!("error: {}: {p}", plan.stack);
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else if detailed_exitcode && changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
