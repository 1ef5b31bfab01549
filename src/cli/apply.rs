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
use crate::state::{Backend, LocalBackend};

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
    format!(
        "{verb} complete! Resources: {} added, {} changed, {} replaced, {} destroyed.\n",
        s.add, s.change, s.replace, s.destroy
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
    let b = &plan.binding;
    // The backend the stack names (its file as planned); a plan whose stack file is gone falls
    // back to the local state file it was bound to.
    let cluster_args = super::ClusterArgs {
        context: args.cluster.context.clone().or(b.context.clone()),
        kubeconfig: args
            .cluster
            .kubeconfig
            .clone()
            .or(b.kubeconfig.as_ref().map(Into::into)),
    };
    let backend: Box<dyn Backend> = match crate::stack::load(Path::new(&b.stack_file)) {
        Ok(stack) => super::backend::open(&stack, &cluster_args).await?,
        Err(_) => Box::new(LocalBackend::new(&b.state_path)),
    };
    let mut lock = backend.lock("apply").await?;
    for note in lock.notes() {
        eprintln!("warning: {note}");
    }
    let state = lock.read().await?;
    let now = (
        state.as_ref().map(|s| s.lineage.clone()),
        state.as_ref().map(|s| s.serial),
    );
    if now != (b.lineage.clone(), b.serial) {
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
    let stack = plan.stack.clone();
    let p = Prepared {
        state: state.unwrap_or_else(|| crate::state::State::new(&stack)),
        plan,
        lock: Some(lock),
        cluster: Some(cluster),
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
    guard(&p.plan, args.allow_data_loss)?;
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
