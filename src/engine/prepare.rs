//! Making a plan: load and render the stack, connect, check that the cluster reached is the
//! cloud cluster the stack names, open its state backend, lock and read the state (a plan
//! reads without the lock), look for a second state of the stack in the other backend, then
//! run preflight and observe the cluster concurrently. `plan` stops here; `apply`, `destroy`
//! and `verify` go on from the [`Prepared`] plan under the same lock. [`Engine::plan_many`] plans several stacks at
//! once, in the order given.

use std::path::{Path, PathBuf};

use anyhow::Context;
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use std::sync::Arc;

use super::Engine;
use super::listing::Listing;
use super::observe::{PlanInputs, plan_destroy, plan_offline, plan_online};
use crate::cluster::Cluster;
use crate::plan::{Binding, Plan};
use crate::stack::Stack;
use crate::state::{Lock, State};

/// What a plan was made with; apply and destroy continue from here under the same lock.
pub struct Prepared {
    pub plan: Plan,
    /// The stack the plan was made from, as loaded once for it.
    pub stack: Stack,
    /// The state lock; `None` when planning on the kubernetes backend, which reads without it.
    pub lock: Option<Box<dyn Lock>>,
    pub state: State,
    pub cluster: Option<Cluster>,
    /// The stack's `protect_volume`: destroy keeps the Redis volume unless it is false or
    /// `--allow-data-loss` is given.
    pub protect_volume: bool,
}

/// What the plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Converge on the stack; `offline` plans against state alone.
    Plan { offline: bool },
    /// Delete everything the stack created; the Redis volume too when `allow_data_loss`.
    Destroy { allow_data_loss: bool },
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// How a plan file names its stack file: relative to the working directory when it was given
/// relative (or lies below it), so `apply PLANFILE` in another checkout of the repository finds
/// the same file; otherwise absolute.
fn as_given(p: &Path) -> PathBuf {
    let cwd = std::env::current_dir().ok();
    let full = absolute(p);
    if p.is_relative() {
        // `./stacks/x.toml` and `stacks/x.toml` are one file.
        return p
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
    }
    match cwd.as_deref().and_then(|cwd| full.strip_prefix(cwd).ok()) {
        Some(rel) => rel.to_path_buf(),
        None => full,
    }
}

impl Engine {
    /// Plans the stack at `path` for `operation` ("plan", "apply", "destroy", "verify": the name
    /// the lock records). "plan" reads without the lock.
    pub async fn prepare(
        &self,
        path: &Path,
        mode: Mode,
        operation: &str,
    ) -> anyhow::Result<Prepared> {
        let loaded = crate::render::load_with_bytes(path)?;
        self.prepare_listed(path, loaded, mode, operation, None, true)
            .await
    }

    /// [`Engine::prepare`] of a stack already loaded from `path` (its bytes bind a plan file),
    /// observing through the command's `listing` when it has one; without `keep_manifests` the
    /// plan's changes need not carry their manifests.
    pub(super) async fn prepare_listed(
        &self,
        path: &Path,
        (stack, stack_bytes): (Stack, Vec<u8>),
        mode: Mode,
        operation: &str,
        listing: Option<&Listing>,
        keep_manifests: bool,
    ) -> anyhow::Result<Prepared> {
        // The stack's own warnings (located; e.g. a GPU group on a CPU image) go to stderr
        // as well as into the preflight findings of the plan.
        for w in &stack.warnings {
            self.warn(w.to_string());
        }
        let rendered = crate::render::render(&stack);
        let desired: Vec<Value> = rendered.objects.into_iter().map(|d| d.manifest).collect();
        let durability = serde_json::to_value(crate::render::summarize(&stack))
            .context("failed to summarize durability")?;

        let offline = matches!(mode, Mode::Plan { offline: true });
        let context = self
            .target
            .context
            .clone()
            .or_else(|| stack.cluster.context.clone());
        let (cluster, identity) = if offline {
            (None, None)
        } else {
            let (c, id) = self.cluster(context.as_deref()).await?;
            (Some(c), Some(id))
        };
        // The cluster the kubeconfig context reaches must be the cloud cluster the stack
        // names, before any state is read or locked and any object observed: a green preflight
        // of prod must not apply to staging. The cloud's answer is kept for the preflight
        // below (`preflight::Memo`), so the cloud is asked once.
        if let Some(c) = &cluster {
            let facts = crate::preflight::cloud_facts(&stack, &self.preflight).await;
            if let Some(mismatch) =
                crate::preflight::identity_mismatch(&stack, &facts, &c.server, context.as_deref())
            {
                anyhow::bail!(mismatch);
            }
        }
        let backend = self.open_state(&stack).await?;
        let (lock, existing) = if operation == "plan" {
            // A plan only reads, and a read is consistent without the lock on either backend
            // (writes are atomic): a read-only account, or a read-only checkout, can plan.
            // Taking the local lock cost a created, written and deleted file per stack, a
            // sixth of a many-stack offline plan's CPU (BENCHMARKS.md).
            if backend.remote() {
                self.note(format!(
                    "reading state from {} without locking it (plan only reads; apply takes the lock)",
                    backend.location()
                ));
            }
            if let Ok(Some(holder)) = backend.holder().await {
                self.warn(format!(
                    "stack `{}` is locked by {}; the state may change when that run ends",
                    stack.meta.name,
                    holder.describe()
                ));
            }
            (None, backend.read_checked().await?)
        } else {
            let mut lock = backend.lock(operation).await?;
            for note in lock.notes() {
                self.warn(note);
            }
            let existing = lock.read().await?;
            (Some(lock), existing)
        };
        if existing.is_none() {
            crate::state::refuse_unmigrated(
                &stack.state,
                super::state::owner(&stack),
                backend.as_ref(),
            )?;
        }
        if let Some(s) = &existing {
            s.check_belongs(backend.as_ref(), &stack.meta.name, &stack.meta.namespace)?;
        }
        // A second state of this stack in the other backend: a run that writes refuses before
        // it touches anything; a plan is blocked by it (below).
        let mut fork_error = None;
        if let Some(fork) = crate::state::other_state(
            &stack.state,
            super::state::owner(&stack),
            backend.as_ref(),
            cluster.as_ref(),
        )
        .await
        {
            if matches!(operation, "apply" | "destroy") {
                anyhow::bail!("refusing to {operation}: {fork}");
            }
            fork_error = Some(fork);
        }
        // How the command names this cluster: the key of its listing.
        let named = listing.map(|_| super::connect::Connections::key(self, context.as_deref()));
        // Preflight runs concurrently with observing the cluster; both only read.
        let target =
            cluster
                .as_ref()
                .zip(identity.as_deref())
                .map(|(c, id)| crate::preflight::KubeTarget {
                    cluster: c,
                    key: id,
                });
        let preflight = crate::preflight::run_with(&stack, target, offline, &self.preflight);
        // Every object applied carries the lineage of the state that applies it
        // (`plan::ownership`). A state that does not exist yet gets its lineage now, but the
        // plan shows `NEW_LINEAGE` in its place (the first apply writes the state, then stamps
        // it): a plan of a new stack is the same every time it is made.
        let lineage = existing
            .as_ref()
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), |s| s.lineage.clone());
        let shown = match &existing {
            Some(_) => lineage.as_str(),
            None => crate::plan::ownership::NEW_LINEAGE,
        };
        let mut desired = desired;
        for d in &mut desired {
            crate::plan::ownership::stamp_lineage(d, shown);
        }
        let (manifests_sha256, desired_hashes) =
            crate::state::applied_hashes(&desired, existing.is_some());
        let binding = Binding {
            stack_file: as_given(path).display().to_string(),
            state: backend.binding(match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            }),
            lineage: existing.as_ref().map(|s| s.lineage.clone()),
            serial: existing.as_ref().map(|s| s.serial),
            cluster_identity: identity.clone(),
            context,
            kubeconfig: self
                .target
                .kubeconfig
                .as_deref()
                .map(|p| absolute(p).display().to_string()),
            stack_sha256: Some(crate::plan::binding::stack_sha256(&stack_bytes)),
            // `plan::binding::manifests_sha256`, written once with the objects' own hashes.
            manifests_sha256: Some(manifests_sha256),
        };
        let o = &stack.redis.objects;
        let declared: Vec<String> = [&o.name, &o.pvc, &o.config_map, &o.password_secret]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let inputs = PlanInputs {
            stack: &stack.meta.name,
            namespace: &stack.meta.namespace,
            desired,
            desired_hashes: &desired_hashes,
            durability,
            preflight: Vec::new(),
            state: existing.as_ref(),
            lineage: &lineage,
            binding,
            listing: listing.zip(named.as_ref()),
            keep_manifests,
            imported: &stack.imported,
            declared: &declared,
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
        // A plan apply would refuse is blocked, not "No changes": `plan` exits 1 and a review
        // counts the stack as blocked, so a reviewer never approves what cannot be applied.
        plan.errors.extend(fork_error);
        if !plan.other_states.is_empty() {
            let this = match &existing {
                Some(s) => format!("{} (lineage {})", backend.location(), s.lineage),
                None => format!("{}, which holds no state yet", backend.location()),
            };
            let second = format!(
                "stack `{name}` has objects in the cluster applied from another state of it: {}; this state is {this}. Two states would manage the same objects, each with its own lock (another checkout of the stack with its own state, or a copy of the stack file that lost its `[state]` section). \
                 Run raystack with the state that applied them: restore the stack's right `[state]` section, or use the checkout that holds it (`raystack state pull {}` there shows its lineage); if that state is lost, delete the objects yourself",
                plan.other_states.join(", "),
                stack.source.display(),
                name = stack.meta.name,
            );
            if matches!(operation, "apply" | "destroy") {
                anyhow::bail!("refusing to {operation}: {second}");
            }
            plan.errors.push(second);
        }
        let mut state = existing.unwrap_or_else(|| State {
            lineage: lineage.clone(),
            ..State::new(&stack.meta.name)
        });
        state.namespace = Some(stack.meta.namespace.clone());
        Ok(Prepared {
            plan,
            lock,
            state,
            cluster,
            protect_volume: stack.durability.protect_volume,
            stack,
        })
    }

    /// Plans every stack (`plan STACK...`), at most `parallelism` at once, and returns the
    /// results in the order given: a stack's error is its own result and does not hide the
    /// others'. Each plan's lock, if it took one, is released before it is handed to `finish`,
    /// which runs on the stack's task and makes of it what the command keeps (the review keeps
    /// far less than the plan).
    ///
    /// Without `keep_manifests` (no plan file will be saved) each change's `manifest`, the
    /// object apply would send, is dropped as soon as its stack is planned: the review never
    /// shows it, and on many stacks the copies held until the review is printed were most of
    /// the command's memory and much of its CPU (the kernel zeroing fresh pages).
    pub async fn plan_many<T, F>(
        &self,
        stacks: &[PathBuf],
        offline: bool,
        parallelism: usize,
        keep_manifests: bool,
        finish: F,
    ) -> Vec<anyhow::Result<T>>
    where
        F: Fn(Plan) -> T + Clone + Send + Sync + 'static,
        T: Send + 'static,
    {
        // Each stack file is read and parsed once, here; one that does not load is reported by
        // its own plan below.
        let loaded: Vec<_> = stacks
            .iter()
            .map(|path| crate::render::load_with_bytes(path))
            .collect();
        // Many stacks on a cluster: each kind is listed once for all of them.
        let listing = (!offline && stacks.len() > 1).then(|| {
            let ok = || {
                loaded
                    .iter()
                    .filter_map(|l| l.as_ref().ok())
                    .map(|(s, _)| s)
            };
            let mut contexts: Vec<Option<String>> = Vec::new();
            for stack in ok() {
                if !contexts.contains(&stack.cluster.context) {
                    contexts.push(stack.cluster.context.clone());
                }
            }
            let listing = Arc::new(Listing::new(ok().map(|s| s.meta.name.clone())));
            // Connect to each cluster now, and send its LISTs alongside the identity read:
            // their answers are on the way while the stacks' files and state are read.
            for context in contexts {
                let (engine, listing) = (self.clone(), listing.clone());
                tokio::spawn(async move {
                    if let Ok((cluster, named)) =
                        engine.connections.client(&engine, context.as_deref()).await
                    {
                        listing.prefetch(&cluster, &named);
                    }
                    // The outcome is kept for the stacks, errors included.
                    let _ = engine.cluster(context.as_deref()).await;
                });
            }
            listing
        });
        futures::stream::iter(stacks.iter().zip(loaded))
            .map(|(path, loaded)| {
                // Each stack is planned on its own task, so the stacks' CPU work (parsing
                // answers, diffing) runs on every worker thread, not only where this command
                // is polled.
                let engine = self.clone();
                let listing = listing.clone();
                let path = path.clone();
                let finish = finish.clone();
                let planned = async move {
                    let planned = async {
                        let prepared = engine
                            .prepare_listed(
                                &path,
                                loaded?,
                                Mode::Plan { offline },
                                "plan",
                                listing.as_deref(),
                                keep_manifests,
                            )
                            .await?;
                        if let Some(lock) = prepared.lock {
                            lock.release().await?;
                        }
                        Ok::<_, anyhow::Error>(finish(prepared.plan))
                    };
                    planned
                        .await
                        .with_context(|| format!("failed to plan `{}`", path.display()))
                };
                tokio::spawn(planned).map(|joined| match joined {
                    Ok(planned) => planned,
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                })
            })
            // `buffered` yields the results in the order given.
            .buffered(parallelism.max(1))
            .collect()
            .await
    }
}
