//! Executes a plan against the cluster (docs/design.md §7): deletes first in reverse order
//! (RayCluster first), then creates, updates and replaces in apply order, waiting for readiness
//! after each object and writing state after each object under the lock, so an interrupted apply is
//! resumed by the next. Never prints: progress leaves through [`Progress`].

pub mod csa;
pub mod interrupt;
pub mod pause;
pub mod secret;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::readiness::{self, Readiness};
use crate::cluster::{Cluster, ClusterError};
use crate::kind::{Kind, ObjectRef};
use crate::plan::{Action, FIELD_MANAGER, Plan, ResourceChange, execution_order};
use crate::state::{Lock, ResourceState, State, StateError, applied_hash};

/// What apply reports while it works (rendered by `crate::output::progress`).
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        address: String,
        action: Action,
    },
    Waiting {
        address: String,
        message: String,
    },
    Ready {
        address: String,
        note: Option<String>,
        elapsed: Duration,
    },
    Finished {
        address: String,
        action: Action,
        elapsed: Duration,
    },
    Refreshed {
        address: String,
    },
    /// Stopped for good at a `RAYSTACK_PAUSE_AT` test point (see [`pause`]).
    Paused {
        at: String,
    },
    /// Something went wrong that does not stop apply, but that the user must know.
    Warning {
        address: String,
        message: String,
    },
}

pub trait Progress {
    fn event(&mut self, event: Event);
}

/// Apply stopped. State holds everything done before the failure.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("failed to record progress in state")]
    State(#[source] StateError),
    /// The lock was lost (fencing): nothing more was written, to the cluster or to state.
    #[error(transparent)]
    Fenced(StateError),
    #[error("`{address}` is not ready: {message}")]
    NotReady { address: String, message: String },
    #[error("timed out after {}s waiting for `{address}` ({last}); raise RAYSTACK_WAIT_TIMEOUT (seconds) or check the cluster, then rerun apply to resume", .waited.as_secs())]
    Timeout {
        address: String,
        waited: Duration,
        last: String,
    },
    #[error("the plan has no manifest for `{0}`")]
    NoManifest(String),
    /// A stop was asked for ([`interrupt`]): nothing more was started.
    #[error(
        "Interrupted: {applied} of {total} change(s) applied{}, {} not; state records what was applied; rerun `raystack {verb}` to continue",
        .abandoned.as_ref().map(|a| format!(" (`{a}` applied, its readiness wait abandoned)")).unwrap_or_default(),
        .total - .applied
    )]
    Interrupted {
        applied: usize,
        total: usize,
        /// The object applied whose readiness wait was cut short, if any.
        abandoned: Option<String>,
        /// `apply` or `destroy`: what to rerun.
        verb: &'static str,
    },
    /// A wait or step cut short by [`interrupt`]; `execute` turns it into `Interrupted`.
    #[error("interrupted")]
    Stopped,
}

impl From<StateError> for ApplyError {
    fn from(err: StateError) -> Self {
        match err {
            lost @ StateError::LockLost(_) => ApplyError::Fenced(lost),
            other => ApplyError::State(other),
        }
    }
}

/// How long to wait for one object to become ready or gone.
pub fn wait_timeout() -> Duration {
    std::env::var("RAYSTACK_WAIT_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(600))
}

const POLL: Duration = Duration::from_millis(250);

/// Waits one poll interval between two looks at the cluster; stops waiting when a stop was asked
/// for or the lock was lost (another run may be writing: waiting on its objects means nothing).
async fn poll_pause(lock: &dyn Lock) -> Result<(), ApplyError> {
    lock.check_held()?;
    if interrupt::sleep(POLL).await {
        return Err(ApplyError::Stopped);
    }
    lock.check_held()?;
    Ok(())
}
/// How often a long wait repeats its progress line.
const REMIND: Duration = Duration::from_secs(15);

/// Applies `plan`. `state` is the state read under `lock`.
pub async fn execute(
    plan: &Plan,
    cluster: &Cluster,
    lock: &mut dyn Lock,
    state: &mut State,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    let total = plan
        .resource_changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .count();
    let mut applied = 0;
    let verb = if plan.destroy { "destroy" } else { "apply" };
    let interrupted = |applied: usize, abandoned: Option<String>| ApplyError::Interrupted {
        applied,
        total,
        abandoned,
        verb,
    };
    for idx in execution_order(&plan.resource_changes) {
        let c = &plan.resource_changes[idx];
        if interrupt::requested() {
            return Err(interrupted(applied, None));
        }
        let started = Instant::now();
        match c.action {
            Action::NoOp => {
                if plan.destroy {
                    continue;
                }
                refresh(c, cluster, lock, state, progress).await?;
                continue;
            }
            action => progress.event(Event::Started {
                address: c.address.clone(),
                action,
            }),
        }
        let done = match c.action {
            Action::Delete => delete(c, cluster, lock, state, progress).await,
            Action::Replace => match delete(c, cluster, lock, state, progress).await {
                // Deleted, not created again: the change is not applied.
                Err(ApplyError::Stopped) => return Err(interrupted(applied, None)),
                Err(e) => Err(e),
                Ok(()) => apply_one(c, cluster, lock, state, progress).await,
            },
            Action::Create | Action::Update => apply_one(c, cluster, lock, state, progress).await,
            Action::NoOp => unreachable!(),
        };
        match done {
            // Applied and recorded; only the wait for it was cut short.
            Err(ApplyError::Stopped) => {
                return Err(interrupted(applied + 1, Some(c.address.clone())));
            }
            other => other?,
        }
        applied += 1;
        progress.event(Event::Finished {
            address: c.address.clone(),
            action: c.action,
            elapsed: started.elapsed(),
        });
    }
    record_settled_versions(plan, cluster, lock, state).await
}

/// Records the resourceVersion each applied object settled at. Controllers write status while
/// an object becomes ready and shortly after (a claim that waits for its first consumer is
/// bound once the Redis pod is scheduled), and every write moves the version past the one the
/// apply answered with. With the settled version recorded, the next plan sees from a dry-run
/// alone that nothing has written the object since (`engine::observe`): one request an object
/// instead of two. Reads only the kinds a controller writes, once everything is ready.
async fn record_settled_versions(
    plan: &Plan,
    cluster: &Cluster,
    lock: &mut dyn Lock,
    state: &mut State,
) -> Result<(), ApplyError> {
    let written: Vec<ObjectRef> = plan
        .resource_changes
        .iter()
        .filter(|c| {
            matches!(c.action, Action::Create | Action::Update | Action::Replace)
                && c.kind.waited_on()
        })
        .map(ResourceChange::object)
        .collect();
    if written.is_empty() {
        return Ok(());
    }
    let settled = futures::future::join_all(written.iter().map(|r| cluster.get(r))).await;
    for (r, live) in written.iter().zip(settled) {
        // A failed read only costs the next plan that read: the apply itself is done.
        if let Ok(Some(live)) = live {
            state.update_resource_version(&r.address(), &live);
        }
    }
    // Written even when no version moved: whether a controller has written yet is a matter
    // of timing, and an apply's number of state writes (the serial it leaves) must not be.
    lock.write(state).await?;
    Ok(())
}

fn record(state: &mut State, c: &ResourceChange, manifest: &Value, live: &Value) {
    let s = |p: &str| {
        live.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    state.upsert_resource(ResourceState {
        address: c.address.clone(),
        object: c.object(),
        uid: s("/metadata/uid"),
        resource_version: s("/metadata/resourceVersion"),
        applied_hash: applied_hash(manifest),
    });
    state
        .manifests
        .insert(c.address.clone(), crate::plan::project::redact(manifest));
    if c.adopt.is_some() {
        state.adopted.insert(c.address.clone());
    }
}

async fn apply_one(
    c: &ResourceChange,
    cluster: &Cluster,
    lock: &mut dyn Lock,
    state: &mut State,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    let manifest = c
        .manifest
        .as_ref()
        .ok_or_else(|| ApplyError::NoManifest(c.address.clone()))?;
    // Fencing: a run that lost its lock writes nothing more to the cluster.
    lock.check_held()?;
    // An adopted object: kubectl's fields become raystack's first, so this apply prunes what
    // only kubectl set (the plan says so, `crate::plan::ownership::CSA_NOTE`).
    if c.adopt.is_some() {
        csa::upgrade(cluster, &c.object(), FIELD_MANAGER).await?;
        lock.check_held()?;
    }
    let live = cluster.apply(manifest, FIELD_MANAGER, false).await?;
    pause::reached(pause::Point::Applied, progress).await;
    persist(c, manifest, live, cluster, lock, state).await?;
    pause::reached(pause::Point::Recorded, progress).await;
    // Applied and recorded: a stop asked for meanwhile skips only the wait.
    if interrupt::requested() {
        return Err(ApplyError::Stopped);
    }
    wait_ready(c, cluster, lock, progress).await
}

/// Records `live` as the applied `manifest` and writes state; for the Secret, first makes sure
/// the password exists (generated once) and records its fingerprint.
async fn persist(
    c: &ResourceChange,
    manifest: &Value,
    mut live: Value,
    cluster: &Cluster,
    lock: &mut dyn Lock,
    state: &mut State,
) -> Result<(), ApplyError> {
    let mut rotated = false;
    if c.kind == Kind::Secret {
        lock.check_held()?;
        let (with_password, password) = secret::ensure_password(cluster, live).await?;
        live = with_password;
        rotated = state.secret(&c.name).is_some() && !state.secret_matches(&c.name, &password);
        state.set_secret_fingerprint(&c.name, &password);
    }
    record(state, c, manifest, &live);
    lock.write(state).await?;
    if rotated && let Some(ns) = &c.namespace {
        // The password changed outside raystack: running pods still hold the one they started
        // with. Restart every pod that reads the Secret (Redis, the Ray head) so all agree on
        // the Secret's current password; their controllers recreate them.
        for pod in cluster.pods_using_secret(ns, &c.name).await {
            lock.check_held()?;
            cluster
                .delete(&ObjectRef::new(Kind::Pod, Some(ns), &pod))
                .await?;
        }
    }
    Ok(())
}

/// A no-op object whose state entry is missing or outdated (e.g. after an apply was killed
/// between the server's answer and the state write): record it without touching the cluster
/// (except a Secret that lacks its fingerprint).
async fn refresh(
    c: &ResourceChange,
    cluster: &Cluster,
    lock: &mut dyn Lock,
    state: &mut State,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    let Some(manifest) = &c.manifest else {
        return Ok(());
    };
    let hash = applied_hash(manifest);
    let recorded = state
        .resource(&c.address)
        .is_some_and(|r| r.applied_hash == hash);
    let secret_recorded = c.kind != Kind::Secret || state.secret(&c.name).is_some();
    if recorded && secret_recorded {
        return Ok(());
    }
    let Some(live) = cluster.get(&c.object()).await? else {
        return Ok(());
    };
    persist(c, manifest, live, cluster, lock, state).await?;
    progress.event(Event::Refreshed {
        address: c.address.clone(),
    });
    Ok(())
}

async fn delete(
    c: &ResourceChange,
    cluster: &Cluster,
    lock: &mut dyn Lock,
    state: &mut State,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    let r = c.object();
    lock.check_held()?;
    if cluster.delete(&r).await? {
        // Kubernetes keeps a PVC that a pod mounts (pvc-protection) until that pod is gone: the
        // Redis pod is deleted so the volume is released; its StatefulSet recreates it, and the
        // new pod waits for the new claim.
        if c.kind == Kind::PersistentVolumeClaim
            && let Some(ns) = &c.namespace
        {
            for pod in cluster.pods_using_claim(ns, &c.name).await {
                progress.event(Event::Waiting {
                    address: c.address.clone(),
                    message: format!("deleting pod `{pod}` so the volume is released"),
                });
                lock.check_held()?;
                cluster
                    .delete(&ObjectRef::new(Kind::Pod, Some(ns), &pod))
                    .await?;
            }
        }
        if c.kind == Kind::RayCluster {
            wait_ray_cluster_gone(&r, cluster, lock, progress).await?;
        } else {
            wait_gone(&r, cluster, lock, progress).await?;
        }
    }
    state.remove_resource(&c.address);
    if c.kind == Kind::Secret {
        state.remove_secret(&c.name);
    }
    lock.write(state).await?;
    Ok(())
}

async fn wait_gone(
    r: &ObjectRef,
    cluster: &Cluster,
    lock: &dyn Lock,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    let start = Instant::now();
    let timeout = wait_timeout();
    let mut reported: Option<Instant> = None;
    while cluster.get(r).await?.is_some() {
        if start.elapsed() > timeout {
            return Err(ApplyError::Timeout {
                address: r.address(),
                waited: timeout,
                last: "still being deleted".into(),
            });
        }
        if start.elapsed() > Duration::from_secs(1)
            && reported.is_none_or(|t: Instant| t.elapsed() >= REMIND)
        {
            let message = match reported {
                None => "waiting until it is gone".to_string(),
                Some(_) => format!("still being deleted after {}s", start.elapsed().as_secs()),
            };
            progress.event(Event::Waiting {
                address: r.address(),
                message,
            });
            reported = Some(Instant::now());
        }
        poll_pause(lock).await?;
    }
    Ok(())
}

/// The progress lines of one wait: each new condition once, and a still-waiting line every
/// [`REMIND`] so a slow wait is never silent.
struct WaitLines {
    start: Instant,
    last: String,
    last_report: Instant,
}

impl WaitLines {
    fn new(start: Instant) -> Self {
        WaitLines {
            start,
            last: String::new(),
            last_report: Instant::now(),
        }
    }

    fn report(&mut self, address: &str, message: String, progress: &mut dyn Progress) {
        if message == self.last && self.last_report.elapsed() < REMIND {
            return;
        }
        let shown = if message == self.last {
            format!(
                "{message} (still waiting after {}s)",
                self.start.elapsed().as_secs()
            )
        } else {
            message.clone()
        };
        progress.event(Event::Waiting {
            address: address.to_string(),
            message: shown,
        });
        self.last = message;
        self.last_report = Instant::now();
    }
}

/// Waits until a deleted RayCluster is gone. KubeRay's cleanup finalizer keeps it while the
/// cleanup Job deletes its GCS state from Redis, so nothing of Redis may be touched before
/// (DESIGN §7). Reports the finalizer and the Job as they progress; a failed Job is a warning
/// (KubeRay drops its finalizer anyway and the keys stay in Redis).
async fn wait_ray_cluster_gone(
    r: &ObjectRef,
    cluster: &Cluster,
    lock: &dyn Lock,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    use crate::plan::kuberay::{CLEANUP_FINALIZER, cleanup_job_name};
    let start = Instant::now();
    let timeout = wait_timeout();
    let job = ObjectRef::new(
        Kind::Job,
        r.namespace.as_deref(),
        &cleanup_job_name(&r.name),
    );
    let mut waiting = WaitLines::new(start);
    let mut job_failed_reported = false;
    let mut finalizer_seen = false;
    let report_failed = |ns: &Option<String>, progress: &mut dyn Progress| {
        progress.event(Event::Warning {
            address: r.address(),
            message: format!(
                "KubeRay's cleanup Job `{}` failed; KubeRay removes its finalizer anyway, so this cluster's GCS keys{} stay in Redis: delete them by hand, or delete the Redis volume",
                job.name,
                ns.as_deref()
                    .map(|n| format!(" (storage namespace `{n}`)"))
                    .unwrap_or_default()
            ),
        });
    };
    while let Some(live) = cluster.get(r).await? {
        let finalizer = live
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(CLEANUP_FINALIZER)));
        finalizer_seen |= finalizer;
        let message = if finalizer {
            let job_state = match cluster.get(&job).await {
                Ok(Some(j)) => cleanup_job_state(&j),
                _ => JobState::Absent,
            };
            if let JobState::Failed(ns) = &job_state
                && !job_failed_reported
            {
                job_failed_reported = true;
                report_failed(ns, progress);
            }
            let job_text = match job_state {
                JobState::Absent => format!("the cleanup Job `{}` has not started", job.name),
                JobState::Running => format!(
                    "the cleanup Job `{}` is deleting the GCS state from Redis",
                    job.name
                ),
                JobState::Succeeded => format!("the cleanup Job `{}` finished", job.name),
                JobState::Failed(_) => format!("the cleanup Job `{}` failed", job.name),
            };
            format!(
                "waiting for KubeRay's finalizer {CLEANUP_FINALIZER}: {job_text}; no Redis object is touched until the RayCluster is gone"
            )
        } else {
            "waiting until it is gone".to_string()
        };
        if start.elapsed() > timeout {
            return Err(ApplyError::Timeout {
                address: r.address(),
                waited: timeout,
                last: format!("{message}; nothing of Redis was deleted"),
            });
        }
        waiting.report(&r.address(), message, progress);
        poll_pause(lock).await?;
    }
    // KubeRay drops its finalizer as soon as it sees the Job finished, so the Job can fail and
    // the RayCluster go between two looks: the Job (which KubeRay does not delete) says how
    // the cleanup ended.
    if finalizer_seen
        && !job_failed_reported
        && let Ok(Some(j)) = cluster.get(&job).await
        && let JobState::Failed(ns) = cleanup_job_state(&j)
    {
        report_failed(&ns, progress);
    }
    Ok(())
}

enum JobState {
    Absent,
    Running,
    Succeeded,
    /// With the storage namespace the Job was cleaning, when it says.
    Failed(Option<String>),
}

fn cleanup_job_state(job: &Value) -> JobState {
    let condition = |t: &str| {
        job.pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| {
                c.get("type").and_then(Value::as_str) == Some(t)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
    };
    if condition("Failed") {
        JobState::Failed(
            job.pointer("/metadata/annotations/ray.io~1external-storage-namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
        )
    } else if condition("Complete") {
        JobState::Succeeded
    } else {
        JobState::Running
    }
}

async fn wait_ready(
    c: &ResourceChange,
    cluster: &Cluster,
    lock: &dyn Lock,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    if !c.kind.waited_on() {
        return Ok(());
    }
    let r = c.object();
    let start = Instant::now();
    let timeout = wait_timeout();
    let mut waiting = WaitLines::new(start);
    loop {
        let status = match cluster.get(&r).await? {
            None => Readiness::Waiting("not visible yet".into()),
            Some(live) => {
                let mode = match live
                    .pointer("/spec/storageClassName")
                    .and_then(Value::as_str)
                {
                    Some(class) if c.kind == Kind::PersistentVolumeClaim => {
                        let sc = ObjectRef::new(Kind::StorageClass, None, class);
                        cluster.get(&sc).await?.and_then(|s| {
                            s.get("volumeBindingMode")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                    }
                    _ => None,
                };
                readiness::check(&live, mode.as_deref())
            }
        };
        match status {
            Readiness::Ready(note) => {
                progress.event(Event::Ready {
                    address: c.address.clone(),
                    note,
                    elapsed: start.elapsed(),
                });
                return Ok(());
            }
            Readiness::Failed(message) => {
                return Err(ApplyError::NotReady {
                    address: c.address.clone(),
                    message,
                });
            }
            Readiness::Waiting(message) => {
                if start.elapsed() > timeout {
                    return Err(ApplyError::Timeout {
                        address: c.address.clone(),
                        waited: timeout,
                        last: message,
                    });
                }
                waiting.report(&c.address, message, progress);
            }
        }
        poll_pause(lock).await?;
    }
}
