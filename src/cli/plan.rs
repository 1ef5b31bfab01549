//! `raystack plan` and `raystack show`, and the preparation `apply` and `destroy` share:
//! load and render the stack, lock and read state, connect, run preflight, build the plan.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::Value;

use super::review::{Describe, exit_code, print};
use super::{ClusterArgs, Format, PlanArgs};
use crate::apply::observe::{PlanInputs, plan_destroy, plan_offline, plan_online};
use crate::cluster::{self, Cluster};
use crate::output::review::Outcome;
use crate::plan::{Binding, Plan, read_plan_file, write_plan_file};
use crate::state::{BackendKind, Lock, State};

/// What a plan was made with; apply and destroy continue from here under the same lock.
pub(super) struct Prepared {
    pub plan: Plan,
    /// The state lock; `None` when planning on the kubernetes backend, which reads without it.
    pub lock: Option<Box<dyn Lock>>,
    pub state: State,
    pub cluster: Option<Cluster>,
    /// The stack's `protect_volume`: destroy keeps the Redis volume unless it is false or
    /// `--allow-data-loss` is given.
    pub protect_volume: bool,
}

#[derive(Clone, Copy)]
pub(super) enum Mode {
    Plan { offline: bool },
    Destroy { allow_data_loss: bool },
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Connects with `--kubeconfig`/`--context` (else the stack's context) and reads the identity.
pub(super) async fn connect(
    args: &ClusterArgs,
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<(Cluster, String)> {
    let kubeconfig = args.kubeconfig.as_deref().or(kubeconfig);
    let context = args.context.as_deref().or(context);
    let mut cluster = cluster::connect_with_deadline(kubeconfig, context, args.request_timeout)
        .await
        .context("failed to connect to the cluster")?;
    cluster.on_retry = Some(std::sync::Arc::new(|note: &cluster::RetryNote| {
        eprintln!("{note}");
    }));
    let identity = match cluster.identity().await {
        Ok(identity) => identity,
        // It answered: say what, not that it cannot be reached.
        Err(err) if err.server_answered() => {
            return Err(anyhow::Error::new(err).context(format!(
                "the cluster at {} refused the first request",
                cluster.server
            )));
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!(
                "cannot reach the cluster at {}; use `raystack plan --offline` to plan against state alone",
                cluster.server
            )));
        }
    };
    Ok((cluster, identity))
}

type ConnectionCell = Arc<tokio::sync::OnceCell<Result<(Cluster, String), String>>>;

/// What the stacks of one `plan` command share: one client (and connection pool) per cluster
/// target, so stacks on the same cluster reuse connections and the identity read, and the
/// preflight calls, made once per cloud target and API server.
#[derive(Default)]
pub(super) struct Shared {
    connections: Mutex<HashMap<(Option<PathBuf>, Option<String>), ConnectionCell>>,
    preflight: crate::preflight::Memo,
}

impl Shared {
    /// [`connect`], once per (kubeconfig, context); later stacks get a clone of the client.
    async fn connect(
        &self,
        args: &ClusterArgs,
        context: Option<&str>,
    ) -> anyhow::Result<(Cluster, String)> {
        let key = (args.kubeconfig.clone(), context.map(str::to_string));
        let cell = self
            .connections
            .lock()
            .expect("connection cache lock")
            .entry(key)
            .or_default()
            .clone();
        let result = cell
            .get_or_init(|| async {
                connect(args, None, context)
                    .await
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        match result {
            Ok(found) => Ok(found.clone()),
            Err(message) => Err(anyhow::anyhow!("{message}")),
        }
    }
}

pub(super) async fn prepare(
    path: &Path,
    args: &ClusterArgs,
    mode: Mode,
    operation: &str,
) -> anyhow::Result<Prepared> {
    prepare_with(path, args, mode, operation, None).await
}

/// [`prepare`], sharing connections and preflight calls with the other stacks of the command.
async fn prepare_with(
    path: &Path,
    args: &ClusterArgs,
    mode: Mode,
    operation: &str,
    shared: Option<&Shared>,
) -> anyhow::Result<Prepared> {
    let (stack, stack_bytes) = crate::stack::load_with_bytes(path)?;
    let rendered = crate::render::render(&stack);
    let desired: Vec<Value> = rendered.objects.into_iter().map(|d| d.manifest).collect();
    let durability = serde_json::to_value(crate::render::summarize(&stack))
        .context("failed to summarize durability")?;

    let backend = super::backend::open(&stack, args).await?;
    let (lock, existing) = if backend.kind() == BackendKind::Kubernetes && operation == "plan" {
        // A consistent read needs no lock, and a read-only account can plan.
        eprintln!(
            "note: reading state from {} without locking it (plan only reads; apply takes the lock)",
            backend.location()
        );
        if let Ok(Some(holder)) = backend.holder().await {
            eprintln!(
                "warning: stack `{}` is locked by {}; the state may change when that run ends",
                stack.meta.name,
                holder.describe()
            );
        }
        (None, backend.read().await?)
    } else {
        let mut lock = backend.lock(operation).await?;
        for note in lock.notes() {
            eprintln!("warning: {note}");
        }
        let existing = lock.read().await?;
        (Some(lock), existing)
    };
    if existing.is_none() {
        super::backend::refuse_unmigrated(&stack, backend.as_ref())?;
    }
    if let Some(s) = &existing {
        s.check_belongs(&stack.state.path, &stack.meta.name, &stack.meta.namespace)?;
    }
    let offline = matches!(mode, Mode::Plan { offline: true });
    let context = args
        .context
        .clone()
        .or_else(|| stack.cluster.context.clone());
    let (cluster, identity) = if offline {
        (None, None)
    } else {
        let (c, id) = match shared {
            Some(shared) => shared.connect(args, context.as_deref()).await?,
            None => connect(args, None, context.as_deref()).await?,
        };
        (Some(c), Some(id))
    };
    // Preflight runs concurrently with observing the cluster; both only read.
    let own_memo;
    let memo = match shared {
        Some(shared) => &shared.preflight,
        None => {
            own_memo = crate::preflight::Memo::new();
            &own_memo
        }
    };
    let target =
        cluster
            .as_ref()
            .zip(identity.as_deref())
            .map(|(c, id)| crate::preflight::KubeTarget {
                client: c.client(),
                key: id,
            });
    let preflight = crate::preflight::run_with(&stack, target, offline, memo);
    let binding = Binding {
        stack_file: absolute(path).display().to_string(),
        state_path: match backend.kind() {
            BackendKind::Local => absolute(&stack.state.path).display().to_string(),
            BackendKind::Kubernetes => backend.location(),
        },
        lineage: existing.as_ref().map(|s| s.lineage.clone()),
        serial: existing.as_ref().map(|s| s.serial),
        cluster_identity: identity.clone(),
        context,
        kubeconfig: args
            .kubeconfig
            .as_deref()
            .map(|p| absolute(p).display().to_string()),
        stack_sha256: Some(crate::plan::binding::stack_sha256(&stack_bytes)),
        manifests_sha256: Some(crate::plan::binding::manifests_sha256(&desired)),
    };
    let inputs = PlanInputs {
        stack: &stack.meta.name,
        namespace: &stack.meta.namespace,
        desired: &desired,
        durability,
        preflight: Vec::new(),
        state: existing.as_ref(),
        binding,
    };
    let observe = async {
        match (mode, &cluster) {
            (Mode::Destroy { allow_data_loss }, Some(c)) => {
                let delete_volume = allow_data_loss || !stack.durability.protect_volume;
                plan_destroy(inputs, c, delete_volume).await
            }
            (_, Some(c)) => plan_online(inputs, c).await,
            (_, None) => Ok(plan_offline(inputs)),
        }
    };
    let (preflight, plan) = tokio::join!(preflight, observe);
    let mut plan = plan?;
    plan.preflight = preflight;
    let mut state = existing.unwrap_or_else(|| State::new(&stack.meta.name));
    state.namespace = Some(stack.meta.namespace.clone());
    Ok(Prepared {
        plan,
        lock,
        state,
        cluster,
        protect_volume: stack.durability.protect_volume,
    })
}

pub async fn run(args: PlanArgs, color: bool) -> anyhow::Result<ExitCode> {
    if args.out.is_some() && args.stacks.len() > 1 {
        bail!("--out saves one plan; got {} stacks", args.stacks.len());
    }
    // Stacks are planned concurrently, at most --parallelism at once; `buffered` yields the
    // results in the order given. A stack's error is its outcome, not the command's, unless it
    // is the only stack (then it is printed as before).
    let shared = Shared::default();
    let mode = Mode::Plan {
        offline: args.offline,
    };
    let single = args.stacks.len() == 1;
    let cluster_args = &args.cluster;
    let planned: Vec<anyhow::Result<Plan>> = futures::stream::iter(&args.stacks)
        .map(|path| {
            let shared = (!single).then_some(&shared);
            async move {
                let planned = async {
                    let prepared = prepare_with(path, cluster_args, mode, "plan", shared).await?;
                    if let Some(lock) = prepared.lock {
                        lock.release().await?;
                    }
                    Ok::<_, anyhow::Error>(prepared.plan)
                };
                planned
                    .await
                    .with_context(|| format!("failed to plan `{}`", path.display()))
            }
        })
        .buffered(usize::from(args.parallelism))
        .collect()
        .await;
    let mut outcomes = Vec::new();
    for (path, result) in args.stacks.iter().zip(planned) {
        let plan = match result {
            Ok(plan) => plan,
            Err(err) if single => return Err(err),
            Err(err) => {
                outcomes.push(Outcome::Failed {
                    stack_file: path.display().to_string(),
                    error: crate::output::error_text(&err),
                });
                continue;
            }
        };
        if let Some(out) = &args.out {
            write_plan_file(out, &plan)?;
            eprintln!(
                "Saved the plan to `{}`; apply exactly this plan with `raystack apply {}`.",
                out.display(),
                out.display()
            );
        }
        outcomes.push(Outcome::Planned(Box::new(plan)));
    }
    print(
        &outcomes,
        args.format,
        color,
        &args.review,
        Describe {
            title: "plan".into(),
            full_hint: "For the full plan of a stack, run `raystack plan STACK --out PLANFILE` and `raystack show PLANFILE`, or this command with `--max-bytes 0`.".into(),
        },
    )?;
    Ok(exit_code(&outcomes, args.detailed_exitcode))
}

pub fn show(planfile: &Path, format: Format, color: bool) -> anyhow::Result<ExitCode> {
    let plan = read_plan_file(planfile)?;
    print_stdout(&crate::output::render_plan(&plan, format, color))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout; a closed pipe (`| head`) ends quietly.
pub(super) fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}
