//! `raystack apply STACK|PLANFILE` and `raystack destroy STACK`: show the plan, enforce the
//! data-loss guard, ask for `yes` (only on a terminal), execute, report.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::plan::{Mode, Prepared, connect, prepare, print_stdout};
use super::{ApplyArgs, DestroyArgs, Format};
use crate::apply::execute;
use crate::output::progress::StderrProgress;
use crate::plan::{Plan, looks_like_plan_file, read_plan_file};
use crate::state::Backend;

fn guard(plan: &Plan, allow_data_loss: bool) -> anyhow::Result<()> {
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

fn confirm(question: &str, auto_approve: bool) -> anyhow::Result<bool> {
    if auto_approve {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to continue without confirmation: stdin is not a terminal; review the plan and pass --auto-approve"
        );
    }
    eprint!("{question}\n  Only 'yes' will be accepted: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

fn outcome_line(plan: &Plan, verb: &str) -> String {
    let s = &plan.summary;
    // A delete with nothing in the cluster before it only dropped a state entry.
    let gone = plan
        .resource_changes
        .iter()
        .filter(|c| c.action == crate::plan::Action::Delete && c.before.is_none())
        .count();
    let gone_note = if gone > 0 {
        format!(" ({gone} already gone from the cluster, dropped from state)")
    } else {
        String::new()
    };
    format!(
        "{verb} complete! Resources: {} added, {} changed, {} replaced, {} destroyed{gone_note}.\n",
        s.add,
        s.change,
        s.replace,
        s.destroy - gone
    )
}

async fn run_prepared(mut p: Prepared, color: bool, verb: &str) -> anyhow::Result<ExitCode> {
    let cluster = p.cluster.take().context("applying needs a cluster")?;
    let mut lock = p.lock.take().context("applying needs the state lock")?;
    let mut progress = StderrProgress { color };
    let result = execute(
        &p.plan,
        &cluster,
        lock.as_mut(),
        &mut p.state,
        &mut progress,
    )
    .await;
    let released = lock.release().await;
    result.context(
        "apply stopped; state records every object applied so far, so rerunning apply resumes",
    )?;
    released?;
    if p.plan.has_changes() {
        print_stdout(&outcome_line(&p.plan, verb))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_apply(args: ApplyArgs, color: bool) -> anyhow::Result<ExitCode> {
    if looks_like_plan_file(&args.target) {
        return apply_plan_file(&args, color).await;
    }
    let p = prepare(
        &args.target,
        &args.cluster,
        Mode::Plan { offline: false },
        "apply",
    )
    .await
    .with_context(|| format!("failed to plan `{}`", args.target.display()))?;
    print_stdout(&crate::output::render_plan(&p.plan, Format::Text, color))?;
    guard(&p.plan, args.allow_data_loss)?;
    if p.plan.has_changes()
        && !confirm(
            &format!("Apply these changes to stack `{}`?", p.plan.stack),
            args.auto_approve,
        )?
    {
        eprintln!("Apply cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    run_prepared(p, color, "Apply").await
}

async fn apply_plan_file(args: &ApplyArgs, color: bool) -> anyhow::Result<ExitCode> {
    let path = &args.target;
    let plan = read_plan_file(path)?;
    if plan.offline {
        bail!(
            "plan file `{}` was made with --offline and cannot be applied; run `raystack plan --out` against the cluster",
            path.display()
        );
    }
    // The stack the plan was made from, as it is now: the plan must still be what it renders,
    // and state goes where the stack says, never where the file says (see `plan::binding`).
    let stack_file = Path::new(&plan.binding.stack_file);
    let (stack, stack_bytes) = crate::stack::load_with_bytes(stack_file)
        .with_context(|| format!("failed to load the stack of plan file `{}`", path.display()))?;
    let desired: Vec<serde_json::Value> = crate::render::render(&stack)
        .objects
        .into_iter()
        .map(|d| d.manifest)
        .collect();
    let configured_state =
        std::path::absolute(&stack.state.path).unwrap_or_else(|_| stack.state.path.clone());
    let b = &plan.binding;
    let cluster_args = super::ClusterArgs {
        context: args.cluster.context.clone().or(b.context.clone()),
        kubeconfig: args
            .cluster
            .kubeconfig
            .clone()
            .or(b.kubeconfig.as_ref().map(Into::into)),
        request_timeout: args.cluster.request_timeout,
    };
    let backend: Box<dyn Backend> = super::backend::open(&stack, &cluster_args).await?;
    let mut lock = backend.lock("apply").await?;
    for note in lock.notes() {
        eprintln!("warning: {note}");
    }
    let state = lock.read().await?;
    if let Some(s) = &state {
        s.check_belongs(&stack.state.path, &stack.meta.name, &stack.meta.namespace)?;
    }
    // A state that moved on is the likeliest reason a saved plan no longer fits: say so first
    // (when the plan names the stack's state file at all; `verify` refuses it otherwise).
    let b = &plan.binding;
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
    let (cluster, identity) = connect(
        &args.cluster,
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
    guard(&plan, args.allow_data_loss)?;
    let mut state = state.unwrap_or_else(|| crate::state::State::new(&stack.meta.name));
    state.namespace = Some(stack.meta.namespace.clone());
    let p = Prepared {
        state,
        plan,
        lock: Some(lock),
        cluster: Some(cluster),
        protect_volume: stack.durability.protect_volume,
    };
    run_prepared(p, color, "Apply").await
}

pub async fn run_destroy(args: DestroyArgs, color: bool) -> anyhow::Result<ExitCode> {
    let p = prepare(
        &args.stack,
        &args.cluster,
        Mode::Destroy {
            allow_data_loss: args.allow_data_loss,
        },
        "destroy",
    )
    .await
    .with_context(|| {
        format!(
            "failed to plan the destruction of `{}`",
            args.stack.display()
        )
    })?;
    print_stdout(&crate::output::render_plan(&p.plan, Format::Text, color))?;
    // `protect_volume = false` lets destroy delete the Redis volume with everything else (the
    // plan still says DATA LOSS, and confirmation is still asked); true keeps it unless
    // --allow-data-loss. Apply's replacements need --allow-data-loss either way.
    guard(&p.plan, args.allow_data_loss || !p.protect_volume)?;
    if !p.plan.has_changes() {
        return Ok(ExitCode::SUCCESS);
    }
    if !confirm(
        &format!("Destroy stack `{}`?", p.plan.stack),
        args.auto_approve,
    )? {
        eprintln!("Destroy cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    let kept = p.plan.kept.clone();
    let code = run_prepared(p, color, "Destroy").await?;
    for k in kept {
        eprintln!(
            "kept `{k}` (protected Redis volume); `raystack destroy --allow-data-loss` deletes it"
        );
    }
    Ok(code)
}
