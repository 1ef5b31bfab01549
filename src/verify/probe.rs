//! The probe: the names one drill run uses (job submission ids, the detached actor and its Ray
//! namespace, a random token) and the Python entrypoints of its jobs. Pure: no I/O.
//!
//! The record job creates a named, detached actor with `max_restarts=-1` that holds the token
//! as an argument of its creation task. The GCS keeps that task, so after a failover the new
//! head restarts the actor from what Redis kept and the check job gets the same token back. An
//! actor with the default `max_restarts=0` would be declared dead after a head restart even
//! when the GCS survives, and prove nothing.

use serde::{Deserialize, Serialize};

/// The Ray namespace every probe actor lives in.
pub const RAY_NAMESPACE: &str = "raystack-verify";

/// The prefix of the one line each probe job prints for raystack to read from its logs.
pub const RESULT_MARKER: &str = "RAYSTACK_VERIFY ";

/// The names of one drill run. `run` is random, so two runs (or a leftover of an interrupted
/// one) never collide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub run: String,
    pub actor: String,
    pub ray_namespace: String,
    #[serde(skip)]
    pub token: String,
}

/// Which job of the drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Record,
    Check,
    Cleanup,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Record => "record",
            JobKind::Check => "check",
            JobKind::Cleanup => "cleanup",
        }
    }
}

impl Probe {
    /// A fresh run: a random run id and token.
    pub fn new() -> Probe {
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        Probe::with(&run, &uuid::Uuid::new_v4().simple().to_string())
    }

    /// A run with given ids (tests and dry runs).
    pub fn with(run: &str, token: &str) -> Probe {
        Probe {
            run: run.to_string(),
            actor: format!("raystack-verify-{run}"),
            ray_namespace: RAY_NAMESPACE.to_string(),
            token: token.to_string(),
        }
    }

    /// The submission id of one of the run's jobs.
    pub fn job_id(&self, kind: JobKind) -> String {
        format!("raystack-verify-{}-{}", self.run, kind.as_str())
    }

    /// The shell entrypoint of one job: `python -c '<script>'`. The scripts hold no single
    /// quote, so the shell passes them through unchanged.
    pub fn entrypoint(&self, kind: JobKind, actor_wait_secs: u64) -> String {
        let script = match kind {
            JobKind::Record => self.record_script(),
            JobKind::Check => self.check_script(actor_wait_secs),
            JobKind::Cleanup => self.cleanup_script(),
        };
        debug_assert!(!script.contains('\''));
        format!("python -c '{script}'")
    }

    fn record_script(&self) -> String {
        format!(
            r#"import json, os, ray
ray.init(namespace="{ns}")
@ray.remote(num_cpus=0)
class RaystackVerifyProbe:
    def __init__(self, token):
        self._token = token
    def token(self):
        return {{"token": self._token, "pid": os.getpid()}}
actor = RaystackVerifyProbe.options(name="{actor}", lifetime="detached", max_restarts=-1).remote("{token}")
result = ray.get(actor.token.remote(), timeout=120)
result["actor"] = "alive"
print("{marker}" + json.dumps(result))
"#,
            ns = self.ray_namespace,
            actor = self.actor,
            token = self.token,
            marker = RESULT_MARKER,
        )
    }

    fn check_script(&self, wait: u64) -> String {
        format!(
            r#"import json, time, ray
ray.init(namespace="{ns}")
deadline = time.monotonic() + {wait}
result = {{"actor": "missing"}}
while True:
    try:
        actor = ray.get_actor("{actor}")
    except ValueError as e:
        result = {{"actor": "missing", "error": str(e)[:300]}}
        break
    try:
        result = ray.get(actor.token.remote(), timeout=10)
        result["actor"] = "alive"
        break
    except Exception as e:
        result = {{"actor": "unreachable", "error": (type(e).__name__ + ": " + str(e))[:300]}}
    if time.monotonic() > deadline:
        break
    time.sleep(1)
print("{marker}" + json.dumps(result))
"#,
            ns = self.ray_namespace,
            actor = self.actor,
            marker = RESULT_MARKER,
        )
    }

    fn cleanup_script(&self) -> String {
        format!(
            r#"import json, ray
ray.init(namespace="{ns}")
try:
    ray.kill(ray.get_actor("{actor}"), no_restart=True)
    result = {{"actor": "killed"}}
except ValueError:
    result = {{"actor": "missing"}}
print("{marker}" + json.dumps(result))
"#,
            ns = self.ray_namespace,
            actor = self.actor,
            marker = RESULT_MARKER,
        )
    }
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

/// What a probe job reported about the actor (its last `RAYSTACK_VERIFY` line).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ActorResult {
    /// `alive`, `missing`, `unreachable`, `killed`.
    pub actor: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub pid: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The result line of a probe job's logs, if it printed one.
pub fn parse_result(logs: &str) -> Option<ActorResult> {
    logs.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(RESULT_MARKER.trim_end()))
        .and_then(|json| serde_json::from_str(json.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoints_hold_no_single_quote_and_name_the_run() {
        let p = Probe::with("abc12345", "tok");
        for kind in [JobKind::Record, JobKind::Check, JobKind::Cleanup] {
            let e = p.entrypoint(kind, 60);
            assert!(e.starts_with("python -c '") && e.ends_with('\''), "{e}");
            assert_eq!(e.matches('\'').count(), 2, "{e}");
            assert!(e.contains("raystack-verify-abc12345"), "{e}");
        }
        assert!(
            p.entrypoint(JobKind::Record, 0)
                .contains(r#"lifetime="detached", max_restarts=-1"#)
        );
        assert_eq!(p.job_id(JobKind::Check), "raystack-verify-abc12345-check");
    }

    #[test]
    fn the_last_result_line_wins() {
        let logs = "probe\nRAYSTACK_VERIFY {\"actor\": \"unreachable\"}\nnoise\nRAYSTACK_VERIFY {\"actor\": \"alive\", \"token\": \"t\", \"pid\": 7}\n";
        let r = parse_result(logs).unwrap();
        assert_eq!(r.actor, "alive");
        assert_eq!(r.token.as_deref(), Some("t"));
        assert_eq!(parse_result("nothing here"), None);
    }
}
