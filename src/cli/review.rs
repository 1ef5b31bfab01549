//! The results of several stacks (`plan STACK...`, `diff`): printing one review document, and
//! the exit code the results add up to.

use std::process::ExitCode;

use super::args::ReviewArgs;
use crate::output::review::{Describe, Outcome, View};

/// Prints the review of `outcomes` as `view` says, marked per `--marker`.
pub fn print(
    outcomes: &[Outcome],
    view: View,
    args: &ReviewArgs,
    describe: Describe,
) -> anyhow::Result<()> {
    crate::output::review::print(outcomes, view, &args.marker, describe)
}

/// 1 when any stack failed or cannot be applied, else 2 for changes under
/// `--detailed-exitcode`, else 0. Blocking problems are reported on stderr.
pub fn exit_code(outcomes: &[Outcome], detailed_exitcode: bool) -> ExitCode {
    let mut failed = false;
    let mut changes = false;
    for o in outcomes {
        match o {
            Outcome::Failed { .. } => failed = true,
            Outcome::Planned(p) => {
                changes |= p.digest.has_changes;
                for problem in &p.digest.blocking {
                    eprintln!("error: {}: {problem}", p.digest.stack);
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
