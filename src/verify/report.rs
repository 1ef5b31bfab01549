//! The drill's result as data: preflight findings, steps, checks, timings, what was lost and
//! why it most likely was, and whether cleanup worked. `--format json` is this struct; the text
//! and Markdown views (`crate::output::verify`) are rendered from it, so they never disagree.
//! Pure: the likely-cause reasoning is a function of the evidence the drill gathered.

use serde::Serialize;

/// The version of the JSON report's shape.
pub const FORMAT_VERSION: &str = "1";

/// Which pods the drill deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disrupt {
    Head,
    Redis,
    Both,
}

impl Disrupt {
    pub fn head(self) -> bool {
        matches!(self, Disrupt::Head | Disrupt::Both)
    }
    pub fn redis(self) -> bool {
        matches!(self, Disrupt::Redis | Disrupt::Both)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Disrupt::Head => "head",
            Disrupt::Redis => "redis",
            Disrupt::Both => "both",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

/// One preflight check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: String,
    pub level: Level,
    pub detail: String,
}

impl Finding {
    pub fn ok(check: &str, detail: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            level: Level::Ok,
            detail: detail.into(),
        }
    }
    pub fn warning(check: &str, detail: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            level: Level::Warning,
            detail: detail.into(),
        }
    }
    pub fn error(check: &str, detail: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            level: Level::Error,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Ok,
    Failed,
    Skipped,
}

/// One step of the drill: record, disrupt, recover, check, cleanup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub step: String,
    pub status: StepStatus,
    pub seconds: f64,
    pub detail: String,
}

/// One thing that must have survived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: String,
    pub passed: bool,
    pub expected: String,
    pub observed: String,
}

/// Seconds from the first pod deletion until each part was back (None: not measured).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    pub head_ready_seconds: Option<f64>,
    pub redis_ready_seconds: Option<f64>,
    pub gcs_answering_seconds: Option<f64>,
    pub total_seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cleanup {
    pub ok: bool,
    pub detail: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything recorded survived.
    Pass,
    /// Something recorded was lost.
    Fail,
    /// The drill could not run to the end (a precondition, a timeout, an API error).
    Error,
}

/// The report of one `raystack verify` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub format_version: String,
    pub stack: String,
    pub namespace: String,
    pub ray_cluster: String,
    pub disrupt: Disrupt,
    pub result: Outcome,
    pub preflight: Vec<Finding>,
    pub steps: Vec<Step>,
    pub checks: Vec<Check>,
    pub timings: Timings,
    /// What the GCS lost, one phrase each (e.g. "job record `raystack-verify-…-record`").
    pub lost: Vec<String>,
    /// The likeliest causes of a loss, most likely first.
    pub likely_causes: Vec<String>,
    pub cleanup: Cleanup,
    /// Why the drill stopped early, when it did.
    pub error: Option<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.result == Outcome::Pass
    }
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("the report serializes");
        s.push('\n');
        s
    }
}

/// What the drill saw before and after, for explaining a loss.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub disrupt: Option<Disrupt>,
    pub job_lost: bool,
    pub actor_lost: bool,
    /// `appendonly` of the live `redis.conf` (None: not known).
    pub appendonly: Option<bool>,
    /// The RDB rule `save <seconds> 1`, if any, for the message.
    pub snapshot_every_secs: Option<u64>,
    pub storage_namespace_before: Option<String>,
    pub storage_namespace_after: Option<String>,
    pub pvc_uid_before: Option<String>,
    pub pvc_uid_after: Option<String>,
    /// The Redis data volume is a PersistentVolumeClaim (false: e.g. an emptyDir).
    pub redis_volume_is_claim: Option<bool>,
}

/// The likeliest causes of what was lost, most likely first; empty when nothing was lost.
pub fn likely_causes(e: &Evidence) -> Vec<String> {
    let mut causes = Vec::new();
    if !e.job_lost && !e.actor_lost {
        return causes;
    }
    if let (Some(a), Some(b)) = (&e.storage_namespace_before, &e.storage_namespace_after)
        && a != b
    {
        causes.push(format!(
            "the storage namespace changed (`{a}` before, `{b}` after): the new head reads another part of Redis; \
             it defaults to the RayCluster's UID, so a recreated RayCluster starts empty unless \
             `[ray] external_storage_namespace` is set"
        ));
    }
    let redis_disrupted = e.disrupt.is_none_or(Disrupt::redis);
    if redis_disrupted {
        if let (Some(a), Some(b)) = (&e.pvc_uid_before, &e.pvc_uid_after)
            && a != b
        {
            causes.push(
                "the Redis volume was not retained: its PersistentVolumeClaim was recreated during the drill, \
                 so Redis started on an empty disk"
                    .to_string(),
            );
        }
        if e.redis_volume_is_claim == Some(false) {
            causes.push(
                "the Redis volume was not retained: the data directory is not on a PersistentVolumeClaim \
                 (e.g. an emptyDir), so it died with the pod"
                    .to_string(),
            );
        }
        if e.appendonly == Some(false) {
            let every = e
                .snapshot_every_secs
                .map(|s| format!(" (a snapshot at most every {s}s)"))
                .unwrap_or_default();
            causes.push(format!(
                "RDB-only persistence (appendonly no): everything written since the last snapshot{every} \
                 was lost when the Redis pod was killed; set `[durability] max_data_loss` below \"1m\" \
                 for an append-only file"
            ));
        }
        if causes.is_empty() && e.job_lost && e.actor_lost {
            causes.push(
                "Redis came back without the GCS data although its claim was kept and its append-only file \
                 is on: the data on the volume did not survive (a volume that was not retained, re-provisioned \
                 or wiped), or the head is not writing its GCS to this Redis"
                    .to_string(),
            );
        }
    }
    if causes.is_empty() && e.job_lost && e.actor_lost {
        causes.push(
            "the restarted head did not read its GCS back from Redis: check that GCS fault tolerance is \
             enabled on the head (the RayCluster's gcsFaultToleranceOptions) and that its storage namespace \
             did not change"
                .to_string(),
        );
    }
    if causes.is_empty() && e.actor_lost {
        causes.push(
            "the job record survived but the actor did not come back: the GCS kept its state but the actor \
             could not be restarted (see the head's gcs_server and raylet logs)"
                .to_string(),
        );
    }
    if causes.is_empty() && e.job_lost {
        causes.push(
            "the actor survived but the job record did not: writes from just before the disruption were lost \
             (appendfsync everysec loses up to ~1 s; `max_data_loss = \"0s\"` fsyncs every write)"
                .to_string(),
        );
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost_all() -> Evidence {
        Evidence {
            disrupt: Some(Disrupt::Both),
            job_lost: true,
            actor_lost: true,
            appendonly: Some(true),
            redis_volume_is_claim: Some(true),
            pvc_uid_before: Some("a".into()),
            pvc_uid_after: Some("a".into()),
            storage_namespace_before: Some("ns".into()),
            storage_namespace_after: Some("ns".into()),
            ..Evidence::default()
        }
    }

    #[test]
    fn nothing_lost_needs_no_cause() {
        assert!(likely_causes(&Evidence::default()).is_empty());
    }

    #[test]
    fn rdb_only_persistence_is_named() {
        let e = Evidence {
            appendonly: Some(false),
            snapshot_every_secs: Some(300),
            ..lost_all()
        };
        let c = likely_causes(&e);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].starts_with("RDB-only persistence"), "{c:?}");
        assert!(c[0].contains("300s"), "{c:?}");
    }

    #[test]
    fn a_recreated_claim_and_a_changed_namespace_are_named() {
        let e = Evidence {
            pvc_uid_after: Some("b".into()),
            storage_namespace_after: Some("other".into()),
            ..lost_all()
        };
        let c = likely_causes(&e);
        assert!(c[0].starts_with("the storage namespace changed"), "{c:?}");
        assert!(
            c[1].starts_with("the Redis volume was not retained"),
            "{c:?}"
        );
    }

    #[test]
    fn an_empty_redis_with_aof_and_the_same_claim_points_at_the_volume() {
        let c = likely_causes(&lost_all());
        assert_eq!(c.len(), 1);
        assert!(c[0].contains("did not survive"), "{c:?}");
    }

    #[test]
    fn a_lost_actor_alone_points_at_its_restart() {
        let e = Evidence {
            job_lost: false,
            ..lost_all()
        };
        assert!(likely_causes(&e)[0].contains("could not be restarted"));
    }
}
