//! Saving the plans of several stacks (`plan STACK... --out-dir DIR`, `--out FILE`). The review
//! itself is `crate::plan::review`'s (its exit status too) and `crate::output::review`'s (its
//! rendering).

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::output::review::Kept;
use crate::plan::review::StackResult;

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

    /// Saves the plan of `stack` (kept whole while saving), refusing a second stack of the
    /// same name (its file would replace the first's).
    pub fn save(&mut self, stack: &StackResult<Kept>) -> anyhow::Result<()> {
        let StackResult::Planned(planned) = stack else {
            return Ok(());
        };
        let Some(plan) = &planned.kept.plan else {
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
