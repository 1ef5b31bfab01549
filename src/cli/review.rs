//! The results of several stacks (`plan STACK...`, `diff`): saving their plan files, printing
//! one review document, and the exit code the results add up to.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

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

/// Where `--out FILE` or `--out-dir DIR` save plans, and the files saved so far.
pub struct PlanFiles<'a> {
    out: Option<&'a Path>,
    dir: Option<&'a Path>,
    saved: Vec<PathBuf>,
}

impl<'a> PlanFiles<'a> {
    pub fn new(out: Option<&'a Path>, dir: Option<&'a Path>) -> Self {
        PlanFiles {
            out,
            dir,
            saved: Vec::new(),
        }
    }

    pub fn saving(&self) -> bool {
        self.out.is_some() || self.dir.is_some()
    }

    /// Saves the plan of `outcome` (kept whole while saving), refusing a second stack of the
    /// same name (its file would replace the first's).
    pub fn save(&mut self, outcome: &Outcome) -> anyhow::Result<()> {
        let Outcome::Planned(planned) = outcome else {
            return Ok(());
        };
        let Some(plan) = &planned.plan else {
            return Ok(());
        };
        let out = match (self.out, self.dir) {
            (Some(file), _) => file.to_path_buf(),
            (None, Some(dir)) => dir.join(format!("{}.plan.json", plan.stack)),
            (None, None) => return Ok(()),
        };
        if self.saved.contains(&out) {
            bail!(
                "two stacks are named `{}`: their plans would both be `{}`; plan them separately",
                plan.stack,
                out.display()
            );
        }
        crate::plan::write_plan_file(&out, plan)?;
        eprintln!(
            "Saved the plan to `{}`; apply exactly this plan with `raystack apply {}`.",
            out.display(),
            out.display()
        );
        self.saved.push(out);
        Ok(())
    }
}
