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

/// One pod the drill deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletedPod {
    /// `head` or `redis`.
    pub role: String,
    pub name: String,
    pub uid: String,
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
    /// Where the GCS persists: `redis` or `embedded` (the head's RocksDB store; no Redis).
    pub backend: String,
    /// What the drill disrupts (an embedded stack: the head only, whatever was asked).
    pub disrupt: Disrupt,
    pub result: Outcome,
    /// What the reader should know about this run's shape (e.g. why only the head was disrupted).
    pub notes: Vec<String>,
    pub preflight: Vec<Finding>,
    pub steps: Vec<Step>,
    /// The pods the drill deleted, in order (empty when it did not get that far).
    pub pods_deleted: Vec<DeletedPod>,
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
    /// `backend = "embedded"`: the GCS store is RocksDB on the head's volume, not Redis.
    pub embedded: bool,
    /// The claim that holds the GCS data (Redis's, or the embedded store's `<cluster>-gcs-pvc`).
    pub pvc: String,
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
        causes.push(if e.embedded {
            format!(
                "the storage namespace changed (`{a}` before, `{b}` after): the new head looks for its GCS \
                 under another namespace in its RocksDB store; it defaults to the RayCluster's UID, so a \
                 recreated RayCluster starts empty"
            )
        } else {
            format!(
                "the storage namespace changed (`{a}` before, `{b}` after): the new head reads another part of Redis; \
                 it defaults to the RayCluster's UID, so a recreated RayCluster starts empty unless \
                 `[ray] external_storage_namespace` is set"
            )
        });
    }
    if e.embedded {
        embedded_causes(e, &mut causes);
    } else {
        redis_causes(e, &mut causes);
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
        causes.push(if e.embedded {
            "the actor survived but the job record did not: the last writes before the head went away did not \
             reach the embedded store on its volume"
                .to_string()
        } else {
            "the actor survived but the job record did not: writes from just before the disruption were lost \
             (appendfsync everysec loses up to ~2 s; `max_data_loss = \"0s\"` fsyncs every write)"
                .to_string()
        });
    }
    causes
}

/// Causes of a loss with the GCS in Redis.
fn redis_causes(e: &Evidence, causes: &mut Vec<String>) {
    if !e.disrupt.is_none_or(Disrupt::redis) {
        return;
    }
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

/// Causes of a loss with the GCS in the head's embedded RocksDB store (no Redis): the store
/// lives on the storage path, which must be on the claim KubeRay mounts on the head.
fn embedded_causes(e: &Evidence, causes: &mut Vec<String>) {
    let pvc = &e.pvc;
    match (&e.pvc_uid_before, &e.pvc_uid_after) {
        (Some(a), Some(b)) if a != b => causes.push(format!(
            "the GCS volume was not retained: its claim `{pvc}` was recreated during the drill, so the \
             new head's storage path started empty"
        )),
        (Some(_), None) => causes.push(format!(
            "the GCS volume was not retained: its claim `{pvc}` is gone, so the new head's storage path \
             started empty"
        )),
        (None, _) if e.job_lost && e.actor_lost => causes.push(format!(
            "the storage path is not on a persistent volume, or it was wiped: the claim `{pvc}` that \
             KubeRay creates for the embedded store was not found, so the RocksDB files may have died \
             with the head pod"
        )),
        _ => {}
    }
    if causes.is_empty() && e.job_lost && e.actor_lost {
        causes.push(format!(
            "the head came back without its GCS store although its claim `{pvc}` was kept: the storage \
             path was wiped or re-provisioned, or the store is not written to that volume (check that the \
             head pod mounts `{pvc}` at the GCS storage path)"
        ));
    }
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

    fn embedded_lost_all() -> Evidence {
        Evidence {
            disrupt: Some(Disrupt::Head),
            embedded: true,
            pvc: "c-gcs-pvc".into(),
            appendonly: None,
            redis_volume_is_claim: None,
            ..lost_all()
        }
    }

    #[test]
    fn an_embedded_store_that_came_back_empty_points_at_the_storage_path() {
        let c = likely_causes(&embedded_lost_all());
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(
            c[0].starts_with(
                "the head came back without its GCS store although its claim `c-gcs-pvc` was kept"
            ) && c[0].contains("wiped"),
            "{c:?}"
        );
        let no_claim = Evidence {
            pvc_uid_before: None,
            pvc_uid_after: None,
            ..embedded_lost_all()
        };
        let c = likely_causes(&no_claim);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(
            c[0].starts_with("the storage path is not on a persistent volume"),
            "{c:?}"
        );
        let recreated = Evidence {
            pvc_uid_after: Some("b".into()),
            storage_namespace_after: Some("other".into()),
            ..embedded_lost_all()
        };
        let c = likely_causes(&recreated);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(
            c[0].starts_with("the storage namespace changed") && c[0].contains("RocksDB"),
            "{c:?}"
        );
        assert!(
            c[1].starts_with(
                "the GCS volume was not retained: its claim `c-gcs-pvc` was recreated"
            ),
            "{c:?}"
        );
    }

    #[test]
    fn an_embedded_loss_never_blames_redis() {
        for e in [
            embedded_lost_all(),
            Evidence {
                job_lost: false,
                ..embedded_lost_all()
            },
            Evidence {
                actor_lost: false,
                ..embedded_lost_all()
            },
        ] {
            for c in likely_causes(&e) {
                assert!(!c.contains("Redis") && !c.contains("appendfsync"), "{c}");
            }
        }
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
