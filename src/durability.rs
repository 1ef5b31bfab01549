//! Durability goals → Redis settings (docs/design.md §2): one pure function from `[durability]` to
//! the `redis.conf` that honours it, plus the human explanation the plan prints. No I/O, no
//! Kubernetes: the renderer puts the text into a ConfigMap, the tests feed it to a real Redis.
//!
//! The password is never part of these settings: Redis receives it from the Secret through an
//! environment variable, written at start into a config include on a memory-backed volume, so
//! no ConfigMap and no process argument ever holds it.

use std::fmt::Write as _;
use std::time::Duration;

use crate::stack::units::format_duration;
use crate::stack::{Durability, VolumeKind};

/// Recovery point objectives at or above this are met with RDB snapshots alone (no AOF).
pub const RDB_ONLY_MIN_RPO: Duration = Duration::from_secs(60);

/// The most `appendfsync everysec` can lose (defined with the stack schema, whose validation
/// refuses a smaller non-zero RPO; the reason, from Redis's `aof.c`, is documented there).
pub use crate::stack::EVERYSEC_WORST_CASE;

/// The port Redis listens on, in the container and behind the Service.
pub const REDIS_PORT: u16 = 6379;

/// Where the Redis volume is mounted and Redis keeps its files.
pub const REDIS_DATA_DIR: &str = "/data";

/// How often Redis fsyncs the append-only file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFsync {
    /// fsync before every reply: no acknowledged write is ever lost.
    Always,
    /// fsync once a second in the background: a crash loses up to about 2 s
    /// ([`EVERYSEC_WORST_CASE`]).
    Everysec,
}

impl AppendFsync {
    /// The value as `redis.conf` and `CONFIG GET appendfsync` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::Everysec => "everysec",
        }
    }
}

/// One `save <seconds> <changes>` rule: snapshot when at least `changes` keys changed and
/// `seconds` passed since the last snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveRule {
    pub seconds: u64,
    pub changes: u64,
}

impl std::fmt::Display for SaveRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.seconds, self.changes)
    }
}

/// The Redis persistence settings that meet one `[durability]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// The goal these settings were derived from (kept for `explain`).
    pub max_data_loss: Duration,
    pub volume: VolumeKind,
    pub appendonly: bool,
    /// `None` when the append-only file is off.
    pub appendfsync: Option<AppendFsync>,
    /// In `redis.conf` order; never empty (an empty list would leave Redis's built-in defaults).
    pub save: Vec<SaveRule>,
    /// The `save R 1` rule added for an RDB-only RPO of R, if any.
    pub rpo_rule: Option<SaveRule>,
    /// Always `false` when AOF is on: `yes` stops fsyncing during rewrites (~30 s of exposure).
    pub no_appendfsync_on_rewrite: bool,
    pub aof_use_rdb_preamble: bool,
    /// Always `noeviction`: an evicted GCS key is lost data.
    pub maxmemory_policy: &'static str,
    /// Always `yes`: a failing snapshot must stop writes, not silently stop persisting them.
    pub stop_writes_on_bgsave_error: bool,
    pub dir: &'static str,
    pub port: u16,
}

/// Derives the Redis settings for a durability goal (docs/design.md §2):
///
/// | max_data_loss | appendonly | appendfsync | save |
/// |---|---|---|---|
/// | `0s` | yes | always | `<snapshot_every> <snapshot_min_writes>` |
/// | `2s`..`59s` | yes | everysec | same |
/// | `>= 1m` (R) | no | — | `R 1` and `<snapshot_every> <snapshot_min_writes>` |
///
/// `volume = "object-fuse"` never gets an append-only file (object storage cannot append).
/// Validation rejects object-fuse with an RPO under a minute; should such a value reach this
/// function anyway, it still yields RDB-only settings (with `save R 1`, R at least 1 s) rather
/// than an AOF that cannot work. Likewise validation refuses an RPO between `0s` and
/// [`EVERYSEC_WORST_CASE`]; should one reach this function, it gets `always`, the only policy
/// that keeps such a promise.
pub fn redis_settings(d: &Durability) -> RedisSettings {
    let rpo = d.max_data_loss;
    if d.volume == VolumeKind::ObjectFuse || rpo >= RDB_ONLY_MIN_RPO {
        return rdb_only_settings(rpo.max(Duration::from_secs(1)), d);
    }
    let fsync = if rpo < EVERYSEC_WORST_CASE {
        AppendFsync::Always
    } else {
        AppendFsync::Everysec
    };
    RedisSettings {
        max_data_loss: rpo,
        volume: d.volume,
        appendonly: true,
        appendfsync: Some(fsync),
        save: vec![snapshot_rule(d)],
        rpo_rule: None,
        ..base()
    }
}

/// RDB-only settings for a recovery point objective of `rpo`: `save <rpo> 1` (so a Redis that
/// sees any write at all snapshots within `rpo`) plus the cadence rule from `d`.
///
/// `redis_settings` calls this for RPOs of a minute or more; it is public so that tests can
/// exercise the same code path with a short RPO (seconds) against a real Redis.
pub fn rdb_only_settings(rpo: Duration, d: &Durability) -> RedisSettings {
    let rpo_rule = SaveRule {
        seconds: rpo.as_secs().max(1),
        changes: 1,
    };
    // Both rules are kept even when one subsumes the other (as the design table says), except
    // an exact duplicate.
    let mut save = vec![rpo_rule, snapshot_rule(d)];
    save.dedup();
    RedisSettings {
        max_data_loss: rpo,
        volume: d.volume,
        appendonly: false,
        appendfsync: None,
        save,
        rpo_rule: Some(rpo_rule),
        ..base()
    }
}

fn snapshot_rule(d: &Durability) -> SaveRule {
    SaveRule {
        seconds: d.snapshot_every.as_secs(),
        changes: d.snapshot_min_writes,
    }
}

fn base() -> RedisSettings {
    RedisSettings {
        max_data_loss: Duration::ZERO,
        volume: VolumeKind::Disk,
        appendonly: false,
        appendfsync: None,
        save: Vec::new(),
        rpo_rule: None,
        no_appendfsync_on_rewrite: false,
        aof_use_rdb_preamble: true,
        maxmemory_policy: "noeviction",
        stop_writes_on_bgsave_error: true,
        dir: REDIS_DATA_DIR,
        port: REDIS_PORT,
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

impl RedisSettings {
    /// The `save` rules as `CONFIG GET save` prints them: `"300 1 60 1000"`.
    pub fn save_config_value(&self) -> String {
        self.save
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `redis.conf` text. Deterministic (the same settings give the same bytes, so its hash on
    /// the pod template only changes when a setting does) and free of secrets.
    pub fn to_redis_conf(&self) -> String {
        let mut c = String::new();
        let rpo = format_duration(self.max_data_loss);
        c.push_str("# Generated by raystack from [durability]; edit the stack file, not this.\n");
        let _ = writeln!(
            c,
            "# max_data_loss = \"{rpo}\", volume = \"{}\"",
            self.volume.as_str()
        );
        c.push_str("# The password is not here: the container writes it from the Secret into a config\n# include on a memory-backed volume at start (never a process argument).\n");
        let _ = writeln!(c, "port {}", self.port);
        // Default bind (all interfaces); the NetworkPolicy limits who can connect. Protected
        // mode stays on: if the password were ever missing, Redis would refuse remote clients
        // instead of serving the GCS to anyone.
        c.push_str("protected-mode yes\n");
        let _ = writeln!(c, "dir {}", self.dir);
        c.push_str("dbfilename dump.rdb\n");
        let _ = writeln!(c, "appendonly {}", yes_no(self.appendonly));
        if let Some(fsync) = self.appendfsync {
            let _ = writeln!(c, "appendfsync {}", fsync.as_str());
        }
        if self.appendonly {
            let _ = writeln!(
                c,
                "no-appendfsync-on-rewrite {}",
                yes_no(self.no_appendfsync_on_rewrite)
            );
        }
        let _ = writeln!(
            c,
            "aof-use-rdb-preamble {}",
            yes_no(self.aof_use_rdb_preamble)
        );
        // One `save` line resets Redis's built-in rules; the next ones add to it.
        for rule in &self.save {
            let _ = writeln!(c, "save {rule}");
        }
        let _ = writeln!(
            c,
            "stop-writes-on-bgsave-error {}",
            yes_no(self.stop_writes_on_bgsave_error)
        );
        let _ = writeln!(c, "maxmemory-policy {}", self.maxmemory_policy);
        c
    }

    /// What these settings really promise, in numbers, in one line (`validate`, the plan's
    /// summary and `status` print it).
    pub fn guarantee(&self) -> String {
        let rpo = format_duration(self.max_data_loss);
        match self.appendfsync {
            Some(AppendFsync::Always) => format!(
                "max_data_loss = \"{rpo}\": appendfsync always: Redis fsyncs the append-only file before it answers a write, so an acknowledged write is never lost (a failed write or fsync stops Redis instead)"
            ),
            Some(AppendFsync::Everysec) => format!(
                "max_data_loss = \"{rpo}\": appendfsync everysec: a crash loses at most about 2 s of acknowledged writes (typically under 1 s); a disk whose fsync stalls longer than 2 s widens this, and Redis counts each such write in aof_delayed_fsync"
            ),
            None => format!(
                "max_data_loss = \"{rpo}\": RDB snapshots only: a crash loses the writes since the last completed snapshot, at most {rpo} plus the time one snapshot takes to write"
            ),
        }
    }

    /// Human lines for the plan: what was derived and why.
    pub fn explain(&self) -> Vec<String> {
        let rpo = format_duration(self.max_data_loss);
        let mut lines = Vec::new();
        match self.appendfsync {
            Some(AppendFsync::Always) => lines.push(format!(
                "RPO {rpo}: appendonly yes, appendfsync always: every acknowledged write is on disk"
            )),
            Some(AppendFsync::Everysec) => lines.push(format!(
                "RPO {rpo}: appendonly yes, appendfsync everysec: the append-only file is fsynced once a second in the background, and Redis postpones writing it for up to 2 s while an fsync is still running, so a crash loses at most about 2 s of acknowledged writes"
            )),
            None => {
                if self.volume == VolumeKind::ObjectFuse {
                    lines.push(
                        "volume object-fuse: object storage cannot append, so Redis keeps no append-only file and persists by RDB snapshots only".to_string(),
                    );
                }
                lines.push(format!(
                    "RPO {rpo}: appendonly no: RDB snapshots only; a crash loses the writes since the last completed snapshot (at most {rpo} plus the time one snapshot takes to write), acceptable for idempotent jobs"
                ));
            }
        }
        if self.appendonly {
            lines.push(
                "no-appendfsync-on-rewrite no: fsync continues during AOF rewrites (yes would widen the loss window to ~30 s)".to_string(),
            );
            lines.push(
                "aof-use-rdb-preamble yes: rewritten AOFs start with a compact RDB snapshot, so restarts load fast".to_string(),
            );
        }
        if let Some(rule) = self.rpo_rule {
            let cadence = self.save.iter().find(|r| **r != rule);
            let why = match cadence {
                Some(c) => format!(
                    "`save {c}` alone never snapshots a GCS that writes fewer than {} keys in {} s",
                    c.changes, c.seconds
                ),
                None => "any write is snapshotted within the RPO".to_string(),
            };
            lines.push(format!("`save {rule}` added: {why}"));
        }
        for rule in &self.save {
            if Some(*rule) != self.rpo_rule {
                lines.push(format!(
                    "`save {rule}`: snapshot every {} s when at least {} keys changed",
                    rule.seconds, rule.changes
                ));
            }
        }
        lines.push(format!(
            "maxmemory-policy {}: Redis refuses writes rather than evict GCS keys (eviction is data loss)",
            self.maxmemory_policy
        ));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn durability(rpo_secs: u64, volume: VolumeKind) -> Durability {
        Durability {
            max_data_loss: Duration::from_secs(rpo_secs),
            snapshot_every: Duration::from_secs(60),
            snapshot_min_writes: 1000,
            volume,
            protect_volume: true,
            backend: crate::stack::GcsBackend::Redis,
            embedded_storage: None,
        }
    }

    fn rule(seconds: u64, changes: u64) -> SaveRule {
        SaveRule { seconds, changes }
    }

    /// (RPO seconds, volume, appendonly, appendfsync, save rules): one row of docs/design.md §2.
    type Row<'a> = (u64, VolumeKind, bool, Option<AppendFsync>, &'a [SaveRule]);

    #[test]
    fn goals_map_to_the_design_table() {
        use AppendFsync::*;
        use VolumeKind::*;
        let table: &[Row] = &[
            (0, Disk, true, Some(Always), &[rule(60, 1000)]),
            (1, Disk, true, Some(Always), &[rule(60, 1000)]),
            (2, Disk, true, Some(Everysec), &[rule(60, 1000)]),
            (59, Disk, true, Some(Everysec), &[rule(60, 1000)]),
            (60, Disk, false, None, &[rule(60, 1), rule(60, 1000)]),
            (300, Disk, false, None, &[rule(300, 1), rule(60, 1000)]),
            (
                300,
                ObjectFuse,
                false,
                None,
                &[rule(300, 1), rule(60, 1000)],
            ),
            (60, ObjectFuse, false, None, &[rule(60, 1), rule(60, 1000)]),
        ];
        for (rpo, volume, aof, fsync, save) in table {
            let s = redis_settings(&durability(*rpo, *volume));
            assert_eq!(s.appendonly, *aof, "appendonly for {rpo}s {volume:?}");
            assert_eq!(s.appendfsync, *fsync, "appendfsync for {rpo}s {volume:?}");
            assert_eq!(s.save, save.to_vec(), "save for {rpo}s {volume:?}");
            assert_eq!(s.rpo_rule.is_some(), !aof, "rpo rule for {rpo}s");
            assert_eq!(s.maxmemory_policy, "noeviction");
            assert!(!s.no_appendfsync_on_rewrite);
        }
    }

    #[test]
    fn object_fuse_never_gets_an_append_only_file() {
        // Validation rejects this stack; the mapping must still not produce an AOF on FUSE.
        let s = redis_settings(&durability(1, VolumeKind::ObjectFuse));
        assert!(!s.appendonly);
        assert_eq!(s.save[0], rule(1, 1));
        let s = redis_settings(&durability(0, VolumeKind::ObjectFuse));
        assert!(!s.appendonly);
        assert_eq!(s.save[0], rule(1, 1));
    }

    #[test]
    fn duplicate_save_rules_collapse() {
        let mut d = durability(300, VolumeKind::Disk);
        d.snapshot_every = Duration::from_secs(300);
        d.snapshot_min_writes = 1;
        assert_eq!(redis_settings(&d).save, vec![rule(300, 1)]);
    }

    #[test]
    fn redis_conf_for_always() {
        let conf = redis_settings(&durability(0, VolumeKind::Disk)).to_redis_conf();
        let lines: Vec<&str> = conf.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "port 6379",
                "protected-mode yes",
                "dir /data",
                "dbfilename dump.rdb",
                "appendonly yes",
                "appendfsync always",
                "no-appendfsync-on-rewrite no",
                "aof-use-rdb-preamble yes",
                "save 60 1000",
                "stop-writes-on-bgsave-error yes",
                "maxmemory-policy noeviction",
            ]
        );
    }

    #[test]
    fn redis_conf_for_rdb_only() {
        let conf = redis_settings(&durability(300, VolumeKind::Disk)).to_redis_conf();
        assert!(conf.contains("appendonly no\n"));
        assert!(
            !conf.contains("appendfsync"),
            "no fsync policy without AOF:\n{conf}"
        );
        assert!(conf.contains("save 300 1\nsave 60 1000\n"));
        assert!(
            conf.lines()
                .all(|l| l.starts_with('#') || !l.contains("requirepass"))
        );
    }

    #[test]
    fn explanations_name_the_reasons() {
        let always = redis_settings(&durability(0, VolumeKind::Disk)).explain();
        assert_eq!(
            always[0],
            "RPO 0s: appendonly yes, appendfsync always: every acknowledged write is on disk"
        );
        let everysec = redis_settings(&durability(2, VolumeKind::Disk)).explain();
        assert!(everysec[0].starts_with("RPO 2s: appendonly yes, appendfsync everysec"));
        assert!(
            everysec
                .iter()
                .any(|l| l.starts_with("no-appendfsync-on-rewrite no"))
        );
        let rdb = redis_settings(&durability(300, VolumeKind::Disk)).explain();
        assert!(rdb[0].starts_with("RPO 5m: appendonly no"));
        assert!(rdb.contains(
            &"`save 300 1` added: `save 60 1000` alone never snapshots a GCS that writes fewer than 1000 keys in 60 s"
                .to_string()
        ));
        let fuse = redis_settings(&durability(60, VolumeKind::ObjectFuse)).explain();
        assert!(fuse[0].starts_with("volume object-fuse: object storage cannot append"));
    }

    #[test]
    fn guarantees_are_stated_in_numbers() {
        let lines: Vec<String> = [
            (0, VolumeKind::Disk),
            (2, VolumeKind::Disk),
            (300, VolumeKind::Disk),
        ]
        .into_iter()
        .map(|(rpo, v)| redis_settings(&durability(rpo, v)).guarantee())
        .collect();
        assert_eq!(
            lines,
            [
                "max_data_loss = \"0s\": appendfsync always: Redis fsyncs the append-only file before it answers a write, so an acknowledged write is never lost (a failed write or fsync stops Redis instead)",
                "max_data_loss = \"2s\": appendfsync everysec: a crash loses at most about 2 s of acknowledged writes (typically under 1 s); a disk whose fsync stalls longer than 2 s widens this, and Redis counts each such write in aof_delayed_fsync",
                "max_data_loss = \"5m\": RDB snapshots only: a crash loses the writes since the last completed snapshot, at most 5m plus the time one snapshot takes to write",
            ]
        );
    }

    #[test]
    fn short_rdb_rpo_uses_the_same_builder() {
        let s = rdb_only_settings(Duration::from_secs(2), &durability(300, VolumeKind::Disk));
        assert_eq!(s.save, vec![rule(2, 1), rule(60, 1000)]);
        assert_eq!(s.save_config_value(), "2 1 60 1000");
    }
}
