//! `raystack verify`: the GCS fault-tolerance drill on a live cluster, all through the
//! Kubernetes API (the API server's service proxy to the head's dashboard, Ray's job REST API,
//! pod deletes), so it needs no port-forward and no network path to the cluster's pods.
//!
//! 1. **record**: a probe job that finishes (SUCCEEDED) after creating a named, detached actor
//!    with `max_restarts=-1` holding a random token;
//! 2. **disrupt**: delete the head pod and/or the Redis pod (each bound to its UID);
//! 3. **recover**: wait for replacements (new UIDs) to be ready and the job API to answer;
//! 4. **check**: the probe job's record is still SUCCEEDED, and a new job finds the actor by
//!    name and gets the same token back (job logs lived on the old head's disk: not checked);
//! 5. **cleanup**, always: kill the actor, delete the probe job records; a failed cleanup is
//!    reported, never hidden.
//!
//! The outcome of a drill that ran is recorded for `raystack status` ([`record`]).
//!
//! With `backend = "embedded"` there is no Redis: the GCS is a RocksDB store on a volume
//! mounted on the head, so the drill disrupts the head only ([`disrupt_for`]).
//!
//! Preflight (`preflight`) runs first and any error stops the drill before it disrupts
//! anything. The result is a [`report::Report`]; progress leaves through [`Progress`]. Nothing
//! here prints or asks for consent: that is the command line's job.

pub mod jobs;
pub mod preflight;
pub mod probe;
pub mod record;
pub mod report;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::live::{PodRef, pod_ready};
use crate::cluster::readiness::{self, Readiness};
use crate::cluster::{Cluster, ClusterError};
use crate::kind::{Kind, ObjectRef};
use crate::stack::{GcsBackend, Stack};
use jobs::Jobs;
use preflight::{Preflight, Targets};
use probe::{JobKind, Probe, parse_result};
use report::{
    Check, Cleanup, DeletedPod, Disrupt, Evidence, Outcome, Report, Step, StepStatus, Timings,
    likely_causes,
};

pub use report::FORMAT_VERSION;

/// How long verify waits for the cluster to recover by default: long enough for a cloud
/// cluster to reschedule a pod, reattach its volume on another node and pull an image.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The drill stopped: a deadline passed or an API answered something unexpected.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("timed out waiting for {what}")]
    Deadline { what: String, after: Duration },
    #[error("Ray's job API answered {status} when {what}: {body}")]
    Ray {
        what: String,
        status: u16,
        body: String,
    },
    #[error("probe job `{id}` ended {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    ProbeJob {
        id: String,
        status: String,
        message: String,
    },
    #[error("{0}")]
    Probe(String),
    /// What was asked cannot be done on this stack (a usage error, before anything is touched).
    #[error("{0}")]
    Usage(String),
}

/// Which pods the drill disrupts on `stack`, from what was asked: an embedded stack has no
/// Redis, so `both` means the head only and `redis` is refused.
pub fn disrupt_for(stack: &Stack, asked: Disrupt) -> Result<Disrupt, VerifyError> {
    if stack.durability.backend != GcsBackend::Embedded {
        return Ok(asked);
    }
    match asked {
        Disrupt::Redis => Err(VerifyError::Usage(format!(
            "--disrupt redis: stack `{}` has backend = \"embedded\": its GCS is a RocksDB store on the \
             head's volume and there is no Redis pod to delete; use --disrupt head (what the default, \
             both, means on this stack)",
            stack.meta.name
        ))),
        Disrupt::Head | Disrupt::Both => Ok(Disrupt::Head),
    }
}

/// The note an embedded stack's report and dry run carry.
pub const EMBEDDED_NOTE: &str = "backend = \"embedded\": the GCS is a RocksDB store on the head's volume and there is no \
     Redis, so the drill disrupts the head pod only (--disrupt both, the default, means the head here)";

/// What the drill reports while it works (rendered by `crate::output::verify`).
#[derive(Debug, Clone)]
pub enum Event {
    /// A step began or did something worth a line.
    Step { step: &'static str, message: String },
    /// Still waiting; repeated every few seconds with what is and is not back yet.
    Waiting {
        step: &'static str,
        message: String,
        elapsed: Duration,
    },
}

pub trait Progress {
    fn event(&mut self, event: Event);
}

/// Progress that goes nowhere (tests, JSON-only callers).
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&mut self, _: Event) {}
}

/// How to run the drill.
#[derive(Debug, Clone)]
pub struct Options {
    pub disrupt: Disrupt,
    /// Bounds every wait of the drill (recovery, each probe job).
    pub timeout: Duration,
}

/// How often waits poll the cluster, and how often a wait repeats its progress line.
const POLL: Duration = Duration::from_secs(1);
const REMIND: Duration = Duration::from_secs(10);
/// How many polls in a row the job API must answer before the cluster counts as recovered.
const STEADY: u32 = 3;
/// How long cleanup waits for its job.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);

/// What `--dry-run` prints: exactly what the drill would do, step by step, with the names
/// preflight found (no Redis password: the drill never reads it).
pub fn dry_run_steps(p: &Preflight, opts: &Options, probe: &Probe) -> Vec<String> {
    let t = &p.targets;
    let dashboard = t
        .dashboard
        .as_ref()
        .map(|d| d.proxy_path("/api/jobs/"))
        .unwrap_or_else(|| {
            "(the head Service's dashboard port, through the API server's proxy)".into()
        });
    let pod = |p: &Option<PodRef>, what: &str| {
        p.as_ref()
            .map(|p| format!("pod `{}/{}` (uid {})", t.namespace, p.name, p.uid))
            .unwrap_or_else(|| format!("the {what} pod"))
    };
    let mut steps = vec![format!(
        "record: submit job `{}` to {dashboard}; it creates the detached actor `{}` (Ray namespace `{}`, \
         max_restarts=-1) holding a random token, and must end SUCCEEDED",
        probe.job_id(JobKind::Record),
        probe.actor,
        probe.ray_namespace
    )];
    let mut deletes = Vec::new();
    if opts.disrupt.head() {
        deletes.push(pod(&t.head_pod, "Ray head"));
    }
    if opts.disrupt.redis() {
        deletes.push(pod(&t.redis_pod, "Redis"));
    }
    steps.push(format!("disrupt: delete {}", deletes.join(" and ")));
    let mut waits = Vec::new();
    if opts.disrupt.head() {
        waits.push(format!(
            "a new head pod (-l {}) ready and RayCluster `{}` ready",
            t.head_selector, t.ray_cluster
        ));
    }
    if opts.disrupt.redis() {
        waits.push(format!(
            "a new Redis pod (-l {}) ready and StatefulSet `{}` ready",
            t.redis_selector, t.redis_statefulset
        ));
    }
    steps.push(format!(
        "recover: wait up to {}s for {}; then for the job API to answer again",
        opts.timeout.as_secs(),
        waits.join(", and for ")
    ));
    steps.push(format!(
        "check: job `{}` is still SUCCEEDED; job `{}` finds actor `{}` by name and gets the same token back",
        probe.job_id(JobKind::Record),
        probe.job_id(JobKind::Check),
        probe.actor
    ));
    steps.push(format!(
        "cleanup (always): job `{}` kills the actor; the records of jobs `{}`, `{}` and `{}` are deleted",
        probe.job_id(JobKind::Cleanup),
        probe.job_id(JobKind::Record),
        probe.job_id(JobKind::Check),
        probe.job_id(JobKind::Cleanup)
    ));
    steps
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// One run of the drill, after a preflight without errors.
struct Drill<'a> {
    cluster: &'a Cluster,
    jobs: Jobs<'a>,
    targets: Targets,
    opts: Options,
    probe: Probe,
    progress: &'a mut dyn Progress,
    steps: Vec<Step>,
    checks: Vec<Check>,
    timings: Timings,
    lost: Vec<String>,
    pods_deleted: Vec<DeletedPod>,
    /// Jobs submitted so far (their records are deleted at cleanup).
    submitted: Vec<String>,
}

/// A report that holds preflight only (the drill has not run).
pub fn drill_report_shell(preflight: &Preflight, opts: &Options) -> Report {
    let t = &preflight.targets;
    Report {
        format_version: FORMAT_VERSION.into(),
        stack: t.stack.clone(),
        namespace: t.namespace.clone(),
        ray_cluster: t.ray_cluster.clone(),
        backend: if t.embedded { "embedded" } else { "redis" }.into(),
        disrupt: opts.disrupt,
        result: Outcome::Error,
        notes: if t.embedded {
            vec![EMBEDDED_NOTE.to_string()]
        } else {
            Vec::new()
        },
        preflight: preflight.findings.clone(),
        steps: Vec::new(),
        pods_deleted: Vec::new(),
        checks: Vec::new(),
        timings: Timings::default(),
        lost: Vec::new(),
        likely_causes: Vec::new(),
        cleanup: Cleanup::default(),
        error: None,
    }
}

/// Runs the drill and returns its report; errors end up in the report, never skip cleanup.
pub async fn drill(
    cluster: &Cluster,
    preflight: Preflight,
    opts: Options,
    probe: Probe,
    progress: &mut dyn Progress,
) -> Report {
    let started = Instant::now();
    let targets = preflight.targets.clone();
    let mut report = drill_report_shell(&preflight, &opts);
    let blocking = preflight.blocking();
    let Some(dashboard) = targets.dashboard.clone().filter(|_| blocking.is_empty()) else {
        report.error = Some(format!(
            "preflight failed, nothing was disrupted: {}",
            blocking
                .iter()
                .map(|f| format!("{}: {}", f.check, f.detail))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        return report;
    };
    let mut d = Drill {
        cluster,
        jobs: Jobs { cluster, dashboard },
        targets,
        opts,
        probe,
        progress,
        steps: Vec::new(),
        checks: Vec::new(),
        timings: Timings::default(),
        lost: Vec::new(),
        pods_deleted: Vec::new(),
        submitted: Vec::new(),
    };
    let result = d.run().await;
    let cleanup = d.cleanup().await;
    let evidence = d.evidence().await;
    report.steps = std::mem::take(&mut d.steps);
    report.checks = std::mem::take(&mut d.checks);
    report.timings = std::mem::take(&mut d.timings);
    report.timings.total_seconds = secs(started.elapsed());
    report.lost = std::mem::take(&mut d.lost);
    report.pods_deleted = std::mem::take(&mut d.pods_deleted);
    report.cleanup = cleanup;
    match result {
        Ok(()) if report.checks.iter().all(|c| c.passed) => report.result = Outcome::Pass,
        Ok(()) => {
            report.result = Outcome::Fail;
            report.likely_causes = likely_causes(&evidence);
        }
        Err(e) => {
            report.result = Outcome::Error;
            report.error = Some(e.to_string());
        }
    }
    report
}

impl Drill<'_> {
    fn say(&mut self, step: &'static str, message: String) {
        self.progress.event(Event::Step { step, message });
    }

    fn finish_step(&mut self, step: &str, started: Instant, r: &Result<String, VerifyError>) {
        let (status, detail) = match r {
            Ok(detail) => (StepStatus::Ok, detail.clone()),
            Err(e) => (StepStatus::Failed, e.to_string()),
        };
        self.steps.push(Step {
            step: step.into(),
            status,
            seconds: secs(started.elapsed()),
            detail,
        });
    }

    fn skip_rest(&mut self, from: usize) {
        for step in ["record", "disrupt", "recover", "check"].iter().skip(from) {
            self.steps.push(Step {
                step: step.to_string(),
                status: StepStatus::Skipped,
                seconds: 0.0,
                detail: "an earlier step failed".into(),
            });
        }
    }

    async fn run(&mut self) -> Result<(), VerifyError> {
        let steps: [&'static str; 4] = ["record", "disrupt", "recover", "check"];
        for (i, step) in steps.into_iter().enumerate() {
            let started = Instant::now();
            let r = match step {
                "record" => self.record().await,
                "disrupt" => self.disrupt().await,
                "recover" => self.recover().await,
                _ => self.check().await,
            };
            self.finish_step(step, started, &r);
            if let Err(e) = r {
                self.skip_rest(i + 1);
                return Err(e);
            }
        }
        Ok(())
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.opts.timeout
    }

    /// Submits one probe job, waits for it to finish and returns its result line.
    async fn probe_job(
        &mut self,
        step: &'static str,
        kind: JobKind,
        deadline: Instant,
    ) -> Result<probe::ActorResult, VerifyError> {
        let id = self.probe.job_id(kind);
        // The check job waits for the actor for a while itself; leave it time to report.
        let actor_wait = (self.opts.timeout.as_secs() / 2).clamp(10, 120);
        let entrypoint = self.probe.entrypoint(kind, actor_wait);
        self.say(step, format!("submitting job `{id}`"));
        self.submitted.push(id.clone());
        self.jobs
            .submit(&id, &entrypoint, &self.probe.run, deadline)
            .await?;
        let info = self.jobs.wait_finished(&id, deadline).await?;
        let logs = self.jobs.logs(&id).await.unwrap_or_default();
        if info.status != "SUCCEEDED" {
            return Err(VerifyError::ProbeJob {
                id,
                status: info.status,
                message: if info.message.is_empty() {
                    jobs::brief(&logs)
                } else {
                    info.message
                },
            });
        }
        parse_result(&logs).ok_or_else(|| {
            VerifyError::Probe(format!(
                "job `{id}` SUCCEEDED but printed no result line; its logs end with: {}",
                jobs::brief(&logs)
            ))
        })
    }

    async fn record(&mut self) -> Result<String, VerifyError> {
        let r = self
            .probe_job("record", JobKind::Record, self.deadline())
            .await?;
        if r.actor != "alive" || r.token.as_deref() != Some(self.probe.token.as_str()) {
            return Err(VerifyError::Probe(format!(
                "the record job did not get its own token back from actor `{}` ({})",
                self.probe.actor,
                r.error.unwrap_or(r.actor)
            )));
        }
        Ok(format!(
            "job `{}` SUCCEEDED; actor `{}` holds the token",
            self.probe.job_id(JobKind::Record),
            self.probe.actor
        ))
    }

    async fn disrupt(&mut self) -> Result<String, VerifyError> {
        let ns = self.targets.namespace.clone();
        let mut deleted = Vec::new();
        let mut pods = Vec::new();
        if self.opts.disrupt.head() {
            pods.extend(self.targets.head_pod.clone().map(|p| ("head", p)));
        }
        if self.opts.disrupt.redis() {
            pods.extend(self.targets.redis_pod.clone().map(|p| ("redis", p)));
        }
        for (role, pod) in pods {
            self.say("disrupt", format!("deleting pod `{ns}/{}`", pod.name));
            if !self.cluster.delete_pod(&ns, &pod).await? {
                return Err(VerifyError::Probe(format!(
                    "pod `{ns}/{}` (uid {}) was already gone or replaced before the drill deleted it",
                    pod.name, pod.uid
                )));
            }
            deleted.push(format!("`{}`", pod.name));
            self.pods_deleted.push(DeletedPod {
                role: role.into(),
                name: pod.name.clone(),
                uid: pod.uid.clone(),
            });
        }
        Ok(format!("deleted {}", deleted.join(" and ")))
    }

    /// A replacement pod (another UID) is ready and its owner reports ready.
    async fn replaced(
        &self,
        selector: &str,
        old: Option<&PodRef>,
        owner: &ObjectRef,
    ) -> Result<Result<(), String>, VerifyError> {
        let pods = self
            .cluster
            .list_pods(&self.targets.namespace, selector)
            .await?;
        // Only the owner's pods count: a copy with the same labels is not a replacement.
        let new: Vec<&Value> = pods
            .iter()
            .filter(|p| crate::cluster::live::owned_by(p, owner.kind.as_str(), &owner.name))
            .filter(|p| old.is_none_or(|o| PodRef::of(p).uid != o.uid))
            .collect();
        if new.is_empty() {
            return Ok(Err("no replacement pod yet".into()));
        }
        if !new.iter().any(|p| pod_ready(p)) {
            let phase = new[0]
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending");
            return Ok(Err(format!("new pod {phase}, not ready")));
        }
        let Some(obj) = self.cluster.get(owner).await? else {
            return Ok(Err(format!("`{}` is gone", owner.address())));
        };
        Ok(match readiness::check(&obj, None) {
            Readiness::Ready(_) => Ok(()),
            Readiness::Waiting(m) | Readiness::Failed(m) => Err(m),
        })
    }

    async fn recover(&mut self) -> Result<String, VerifyError> {
        let started = Instant::now();
        let deadline = self.deadline();
        let ns = self.targets.namespace.clone();
        let rc = ObjectRef::new(Kind::RayCluster, Some(&ns), &self.targets.ray_cluster);
        let sts = ObjectRef::new(
            Kind::StatefulSet,
            Some(&ns),
            &self.targets.redis_statefulset,
        );
        let mut head_at = (!self.opts.disrupt.head()).then_some(Duration::ZERO);
        let mut redis_at = (!self.opts.disrupt.redis()).then_some(Duration::ZERO);
        let gcs_at: Option<Duration>;
        let mut answering_since: Option<Duration> = None;
        let mut streak = 0;
        let mut last_said = Instant::now();
        let mut head_state = String::from("deleted");
        let mut redis_state = String::from("deleted");
        let mut gcs_state = String::from("waiting for the head");
        self.say("recover", "waiting for the replacements to be ready".into());
        loop {
            if head_at.is_none() {
                let old = self.targets.head_pod.clone();
                match self
                    .replaced(&self.targets.head_selector.clone(), old.as_ref(), &rc)
                    .await?
                {
                    Ok(()) => {
                        head_at = Some(started.elapsed());
                        self.say(
                            "recover",
                            format!("head ready after {:.1}s", started.elapsed().as_secs_f64()),
                        );
                    }
                    Err(m) => head_state = m,
                }
            }
            if redis_at.is_none() {
                let old = self.targets.redis_pod.clone();
                match self
                    .replaced(&self.targets.redis_selector.clone(), old.as_ref(), &sts)
                    .await?
                {
                    Ok(()) => {
                        redis_at = Some(started.elapsed());
                        self.say(
                            "recover",
                            format!("Redis ready after {:.1}s", started.elapsed().as_secs_f64()),
                        );
                    }
                    Err(m) => redis_state = m,
                }
            }
            // The job API needs the GCS; before the new head is ready the old one may still
            // answer (a deleted pod has a grace period), so only ask after. And it must answer
            // several times in a row: with Redis gone the head's GCS server exits and its
            // container restarts, and the dying head may answer once more before it does.
            if head_at.is_some() && redis_at.is_some() {
                if self.jobs.answering().await.unwrap_or(false) {
                    let first = *answering_since.get_or_insert(started.elapsed());
                    streak += 1;
                    if streak >= STEADY {
                        gcs_at = Some(first);
                        self.say(
                            "recover",
                            format!(
                                "the job API answers again after {:.1}s",
                                first.as_secs_f64()
                            ),
                        );
                        break;
                    }
                } else {
                    streak = 0;
                    answering_since = None;
                    gcs_state = "not answering yet".into();
                }
            }
            if Instant::now() >= deadline {
                let mut missing = Vec::new();
                if head_at.is_none() {
                    missing.push(format!("the head ({head_state})"));
                }
                if redis_at.is_none() {
                    missing.push(format!("Redis ({redis_state})"));
                }
                missing.push(format!("the job API ({gcs_state})"));
                self.timings.head_ready_seconds = head_at.map(secs);
                self.timings.redis_ready_seconds = redis_at.map(secs);
                return Err(VerifyError::Deadline {
                    what: format!(
                        "the cluster to recover within {}s: {}",
                        self.opts.timeout.as_secs(),
                        missing.join(", ")
                    ),
                    after: started.elapsed(),
                });
            }
            if last_said.elapsed() >= REMIND {
                last_said = Instant::now();
                let part = |at: Option<Duration>, state: &str| match at {
                    Some(t) => format!("ready after {:.1}s", t.as_secs_f64()),
                    None => state.to_string(),
                };
                let mut parts = Vec::new();
                if self.opts.disrupt.head() {
                    parts.push(format!("head: {}", part(head_at, &head_state)));
                }
                if self.opts.disrupt.redis() {
                    parts.push(format!("Redis: {}", part(redis_at, &redis_state)));
                }
                parts.push(format!("job API: {gcs_state}"));
                self.progress.event(Event::Waiting {
                    step: "recover",
                    message: parts.join("; "),
                    elapsed: started.elapsed(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
        if self.opts.disrupt.head() {
            self.timings.head_ready_seconds = head_at.map(secs);
        }
        if self.opts.disrupt.redis() {
            self.timings.redis_ready_seconds = redis_at.map(secs);
        }
        self.timings.gcs_answering_seconds = gcs_at.map(secs);
        Ok(format!(
            "back after {:.1}s",
            started.elapsed().as_secs_f64()
        ))
    }

    async fn check(&mut self) -> Result<String, VerifyError> {
        let record = self.probe.job_id(JobKind::Record);
        self.say("check", format!("reading the record of job `{record}`"));
        let observed = match self.jobs.status_until(&record, self.deadline()).await? {
            Some(info) => info.status,
            None => "missing".to_string(),
        };
        let job_ok = observed == "SUCCEEDED";
        if !job_ok {
            self.lost.push(format!("job record `{record}`"));
        }
        self.checks.push(Check {
            check: "probe job record survived".into(),
            passed: job_ok,
            expected: "SUCCEEDED".into(),
            observed,
        });

        let r = self
            .probe_job("check", JobKind::Check, self.deadline())
            .await?;
        let token_ok = r.actor == "alive" && r.token.as_deref() == Some(self.probe.token.as_str());
        let observed = match (r.actor.as_str(), &r.token) {
            ("alive", Some(t)) if *t == self.probe.token => "alive, same token".to_string(),
            ("alive", _) => "alive, another token".to_string(),
            (state, _) => match &r.error {
                Some(e) => format!("{state}: {e}"),
                None => state.to_string(),
            },
        };
        if !token_ok {
            self.lost.push(format!(
                "detached actor `{}` (Ray namespace `{}`)",
                self.probe.actor, self.probe.ray_namespace
            ));
        }
        self.checks.push(Check {
            check: "detached actor survived with its token".into(),
            passed: token_ok,
            expected: "alive, same token".into(),
            observed,
        });
        let passed = self.checks.iter().filter(|c| c.passed).count();
        Ok(format!("{passed} of {} checks passed", self.checks.len()))
    }

    /// Kills the actor and deletes the probe job records, whatever happened before.
    async fn cleanup(&mut self) -> Cleanup {
        let mut problems = Vec::new();
        if self.submitted.is_empty() {
            return Cleanup {
                ok: true,
                detail: vec!["nothing to clean up".into()],
            };
        }
        let started = Instant::now();
        let mut detail = Vec::new();
        // Bounded on its own: cleanup also runs after a failed recovery, when the head may never answer.
        let deadline = Instant::now() + self.opts.timeout.min(CLEANUP_TIMEOUT);
        match self.probe_job("cleanup", JobKind::Cleanup, deadline).await {
            Ok(r) if r.actor == "killed" => {
                detail.push(format!("killed actor `{}`", self.probe.actor))
            }
            Ok(r) if r.actor == "missing" => {
                detail.push(format!("actor `{}` was already gone", self.probe.actor))
            }
            Ok(r) => problems.push(format!(
                "the cleanup job could not kill actor `{}`: {}",
                self.probe.actor,
                r.error.unwrap_or(r.actor)
            )),
            Err(e) => problems.push(format!(
                "actor `{}` (Ray namespace `{}`) may still be running: {e}",
                self.probe.actor, self.probe.ray_namespace
            )),
        }
        for id in self.submitted.clone() {
            let _ = self.jobs.stop(&id).await;
            match self.jobs.delete(&id).await {
                Ok(true) => detail.push(format!("deleted job record `{id}`")),
                Ok(false) => {}
                Err(e) => problems.push(format!("job record `{id}` was not deleted: {e}")),
            }
        }
        let ok = problems.is_empty();
        detail.extend(problems);
        self.steps.push(Step {
            step: "cleanup".into(),
            status: if ok {
                StepStatus::Ok
            } else {
                StepStatus::Failed
            },
            seconds: secs(started.elapsed()),
            detail: detail.join("; "),
        });
        Cleanup { ok, detail }
    }

    /// What the cluster looks like now, next to what preflight saw, for explaining a loss.
    async fn evidence(&self) -> Evidence {
        let ns = &self.targets.namespace;
        let rc = self
            .cluster
            .get(&ObjectRef::new(
                Kind::RayCluster,
                Some(ns),
                &self.targets.ray_cluster,
            ))
            .await
            .ok()
            .flatten();
        let pvc = self
            .cluster
            .get(&ObjectRef::new(
                Kind::PersistentVolumeClaim,
                Some(ns),
                &self.targets.pvc,
            ))
            .await
            .ok()
            .flatten();
        Evidence {
            disrupt: Some(self.opts.disrupt),
            embedded: self.targets.embedded,
            pvc: self.targets.pvc.clone(),
            job_lost: self.lost.iter().any(|l| l.starts_with("job record")),
            actor_lost: self.lost.iter().any(|l| l.starts_with("detached actor")),
            appendonly: self.targets.appendonly,
            snapshot_every_secs: self.targets.snapshot_every_secs,
            storage_namespace_before: self.targets.storage_namespace.clone(),
            storage_namespace_after: rc.as_ref().and_then(preflight::storage_namespace),
            pvc_uid_before: self.targets.pvc_uid.clone(),
            pvc_uid_after: pvc
                .as_ref()
                .and_then(|p| p.pointer("/metadata/uid"))
                .and_then(Value::as_str)
                .map(str::to_string),
            redis_volume_is_claim: self.targets.redis_volume_is_claim,
        }
    }
}
