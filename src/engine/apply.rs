//! Going from a plan to the cluster: the guard every plan passes before it is applied (blocking
//! problems, the DATA LOSS refusal), a saved plan file's checks (the stack planned again as
//! `apply STACK` would, and the file held against that plan: `plan::binding`), and the
//! execution under the state lock.

use std::path::Path;

use anyhow::{Context, bail};

use super::{Engine, Prepared};
use crate::apply::Progress;
use crate::plan::{Plan, read_plan_file};

/// Refuses a plan that cannot be applied, or that loses GCS state without `allow_data_loss`.
pub fn guard(plan: &Plan, allow_data_loss: bool) -> anyhow::Result<()> {
    let problems = plan.blocking_problems();
    if !problems.is_empty() {
        bail!("the plan cannot be applied:\n  {}", problems.join("\n  "));
    }
    let losses = plan.guarded_data_loss();
    if !losses.is_empty() && !allow_data_loss {
        let which: Vec<String> = losses
            .iter()
            .map(|c| {
                format!(
                    "{}: {}",
                    c.address,
                    c.data_loss_reason.as_deref().unwrap_or("loses data")
                )
            })
            .collect();
        bail!(
            "refusing to apply: the plan loses GCS state:\n  {}\nrerun with --allow-data-loss if that is intended (protect_volume = false is not enough)",
            which.join("\n  ")
        );
    }
    Ok(())
}

/// Refuses a plan that takes over objects raystack did not create, unless `adopt`; one that
/// takes them from a deployment tool (Helm, Argo CD, kapp) needs `take_ownership` as well.
pub fn guard_adoption(plan: &Plan, adopt: bool, take_ownership: bool) -> anyhow::Result<()> {
    // What `raystack import` found, still with its recorded UID, was consented to when the file
    // was written (with --take-ownership there for a deployment tool's object).
    let adopted: Vec<&crate::plan::ResourceChange> = plan
        .resource_changes
        .iter()
        .filter(|c| {
            c.adopt
                .as_ref()
                .is_some_and(|a| a.import != Some(crate::plan::ownership::ImportProof::Imported))
        })
        .collect();
    let tools: Vec<String> = adopted
        .iter()
        .filter_map(|c| {
            let a = c.adopt.as_ref()?;
            a.tool
                .as_ref()
                .map(|t| format!("{} (managed by {t})", c.address))
        })
        .collect();
    if !tools.is_empty() && !take_ownership {
        bail!(
            "refusing to apply: these objects are managed by another deployment tool, which would fight raystack over them:\n  {}\nremove them from that tool first, or rerun with --adopt --take-ownership to take them over",
            tools.join("\n  ")
        );
    }
    if !adopted.is_empty() && !adopt {
        let which: Vec<String> = adopted
            .iter()
            .map(|c| {
                let a = c.adopt.as_ref();
                format!(
                    "{} (managed by {}){}",
                    c.address,
                    a.map(|a| a.owner.as_str()).unwrap_or("unknown"),
                    if a.is_some_and(
                        |a| a.import == Some(crate::plan::ownership::ImportProof::Recreated)
                    ) {
                        " (recreated since import)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        bail!(
            "refusing to apply: these objects exist but were not created by raystack, and applying would take them over:\n  {}\n{}rerun with --adopt if the stack should own them (raystack then adds its labels and manages their fields; a Namespace it adopted is never deleted)",
            which.join("\n  "),
            if adopted
                .iter()
                .any(|c| c.adopt.as_ref().is_some_and(
                    |a| a.import == Some(crate::plan::ownership::ImportProof::Recreated)
                ))
            {
                "an object marked (recreated since import) has another UID than the one `raystack import` recorded: it is not the object that was imported; run `raystack import` again, or "
            } else {
                ""
            }
        );
    }
    Ok(())
}

impl Engine {
    /// Loads a plan saved with `plan --out`, plans its stack again exactly as `apply STACK`
    /// would (the stack file at the recorded path relative to the working directory, the
    /// cluster from the stack, flags and environment, the state its `[state]` names, under the
    /// lock), and returns that fresh plan when the saved one agrees with it (see
    /// `plan::binding`). The file only ever refuses or confirms: nothing in it is executed.
    /// The guard is the caller's (it knows `--allow-data-loss`).
    pub async fn prepare_plan_file(&self, path: &Path) -> anyhow::Result<Prepared> {
        let saved = read_plan_file(path)?;
        let shown = path.display().to_string();
        if saved.offline {
            bail!(
                "plan file `{shown}` was made with --offline and cannot be applied; run `raystack plan --out` against the cluster"
            );
        }
        let stack_file = Path::new(&saved.binding.stack_file);
        let bytes = std::fs::read(stack_file).with_context(|| {
            format!(
                "failed to read the stack file `{}` of plan file `{shown}` (a relative path is \
                 relative to the directory the plan was made in: run apply from there)",
                stack_file.display()
            )
        })?;
        // The cheap check first: a changed stack file is the commonest stale plan.
        if let Some(planned) = &saved.binding.stack_sha256
            && *planned != crate::plan::binding::stack_sha256(&bytes)
        {
            return Err(crate::plan::binding::BindingError::StackChanged {
                plan: shown,
                stack_file: saved.binding.stack_file.clone(),
            }
            .into());
        }
        let mut fresh = self
            .prepare(stack_file, super::Mode::Plan { offline: false }, "apply")
            .await
            .with_context(|| {
                format!(
                    "failed to plan `{}` to check plan file `{shown}`",
                    stack_file.display()
                )
            })?;
        if let Err(refused) = crate::plan::binding::verify(&saved, &shown, &fresh.plan) {
            if let Some(lock) = fresh.lock.take()
                && let Err(e) = lock.release().await
            {
                self.warn(format!("failed to release the state lock: {e}"));
            }
            return Err(refused.into());
        }
        Ok(fresh)
    }

    /// Executes a prepared (and guarded) plan, then releases the lock. State records every
    /// object applied before a failure, so rerunning resumes.
    pub async fn execute(
        &self,
        mut p: Prepared,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<Plan> {
        let cluster = p.cluster.take().context("applying needs a cluster")?;
        let mut lock = p.lock.take().context("applying needs the state lock")?;
        let result = async {
            // A new state is written before any object carries its lineage, so a run stopped
            // after its first object finds those objects to be its own state's, not another's.
            if p.state.serial == 0 && !p.plan.destroy && p.plan.summary.total() > 0 {
                lock.write(&mut p.state)
                    .await
                    .map_err(crate::apply::ApplyError::from)?;
            }
            for c in &mut p.plan.resource_changes {
                if let Some(m) = c.manifest.as_mut() {
                    crate::plan::ownership::settle_lineage(m, &p.state.lineage);
                }
            }
            crate::apply::execute(&p.plan, &cluster, lock.as_mut(), &mut p.state, progress).await
        }
        .await;
        let holder = lock.holder().clone();
        let released = lock.release().await;
        // A lock left behind only delays the next run: a warning, whatever the apply did.
        if let Err(err) = &released {
            self.warn(format!(
                "releasing the state lock failed: {err}; {}",
                match holder.expires {
                    Some(_) => format!(
                        "its Lease expires on its own one lease duration after its last renewal \
                         (60 s unless RAYSTACK_LEASE_SECONDS says otherwise), or `raystack \
                         force-unlock STACK {}` releases it now",
                        holder.id
                    ),
                    None => format!("`raystack force-unlock STACK {}` releases it", holder.id),
                }
            ));
        }
        match result {
            // Their own messages say what was applied and what to do.
            Err(
                err @ (crate::apply::ApplyError::Interrupted { .. }
                | crate::apply::ApplyError::Fenced(_)),
            ) => Err(err.into()),
            other => {
                other.context(
                    "apply stopped; state records every object applied so far, so rerunning apply resumes",
                )?;
                Ok(p.plan)
            }
        }
    }
}
