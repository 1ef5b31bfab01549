//! Going from a plan to the cluster: the guard every plan passes before it is applied (blocking
//! problems, the DATA LOSS refusal), a saved plan file's checks (made online, for this stack as
//! it is now, for this state and this cluster), and the execution under the state lock.

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

impl Engine {
    /// Loads a plan saved with `plan --out` and checks that it may still be applied: it was
    /// made against the cluster, the stack file still renders what it planned, the state has
    /// not moved on, and the cluster is the one it was made for. Takes the state lock.
    /// The guard is the caller's (it knows `--allow-data-loss`).
    pub async fn prepare_plan_file(&self, path: &Path) -> anyhow::Result<Prepared> {
        let plan = read_plan_file(path)?;
        if plan.offline {
            bail!(
                "plan file `{}` was made with --offline and cannot be applied; run `raystack plan --out` against the cluster",
                path.display()
            );
        }
        // The stack the plan was made from, as it is now: the plan must still be what it
        // renders, and state goes where the stack says, never where the file says (see
        // `plan::binding`).
        let stack_file = Path::new(&plan.binding.stack_file);
        let (stack, stack_bytes) =
            crate::render::load_with_bytes(stack_file).with_context(|| {
                format!("failed to load the stack of plan file `{}`", path.display())
            })?;
        let desired: Vec<serde_json::Value> = crate::render::render(&stack)
            .objects
            .into_iter()
            .map(|d| d.manifest)
            .collect();
        let configured_state =
            std::path::absolute(&stack.state.path).unwrap_or_else(|_| stack.state.path.clone());
        let b = &plan.binding;
        let target = super::Target {
            context: self.target.context.clone().or(b.context.clone()),
            kubeconfig: self
                .target
                .kubeconfig
                .clone()
                .or(b.kubeconfig.as_ref().map(Into::into)),
            request_timeout: self.target.request_timeout,
        };
        let backend = super::backend::open(&stack, &target).await?;
        let mut lock = backend.lock("apply").await?;
        for note in lock.notes() {
            self.warn(note);
        }
        let state = lock.read().await?;
        if let Some(s) = &state {
            s.check_belongs(backend.as_ref(), &stack.meta.name, &stack.meta.namespace)?;
        }
        // A state that moved on is the likeliest reason a saved plan no longer fits: say so
        // first (when the plan names the stack's state file at all; `verify` refuses it
        // otherwise).
        let now = (
            state.as_ref().map(|s| s.lineage.clone()),
            state.as_ref().map(|s| s.serial),
        );
        if b.state_path == configured_state.display().to_string()
            && now != (b.lineage.clone(), b.serial)
        {
            let show = |l: &Option<String>, s: &Option<u64>| match (l, s) {
                (Some(l), Some(s)) => format!("lineage {l}, serial {s}"),
                _ => "no state".to_string(),
            };
            bail!(
                "plan file `{}` is stale: the state changed since it was made (then: {}; now: {}); run `raystack plan --out` again",
                path.display(),
                show(&b.lineage, &b.serial),
                show(&now.0, &now.1)
            );
        }
        let plan = crate::plan::binding::verify(
            plan,
            &path.display().to_string(),
            &stack,
            &stack_bytes,
            &desired,
            &configured_state.display().to_string(),
            state.as_ref(),
        )?;
        let b = &plan.binding;
        let (cluster, identity) = super::connect::connect(
            &self.target,
            &self.notify,
            b.kubeconfig.as_deref().map(Path::new),
            b.context.as_deref(),
        )
        .await?;
        if Some(&identity) != b.cluster_identity.as_ref() {
            bail!(
                "plan file `{}` is stale: it was made for another cluster (identity {} then, {identity} now); run `raystack plan --out` again",
                path.display(),
                b.cluster_identity.as_deref().unwrap_or("unknown")
            );
        }
        let mut state = state.unwrap_or_else(|| crate::state::State::new(&stack.meta.name));
        state.namespace = Some(stack.meta.namespace.clone());
        Ok(Prepared {
            state,
            plan,
            lock: Some(lock),
            cluster: Some(cluster),
            protect_volume: stack.durability.protect_volume,
        })
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
        let result =
            crate::apply::execute(&p.plan, &cluster, lock.as_mut(), &mut p.state, progress).await;
        let released = lock.release().await;
        result.context(
            "apply stopped; state records every object applied so far, so rerunning apply resumes",
        )?;
        released?;
        Ok(p.plan)
    }
}
