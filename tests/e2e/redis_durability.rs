//! Durability drills on a real redis-server started from the rendered settings.
//!
//! - `max_data_loss = "0s"` (AOF, `appendfsync always`): a writer records every acknowledged
//!   write, the server is SIGKILLed mid-stream, restarted from the same directory, and every
//!   acknowledged write must be there. A SIGKILL leaves the kernel's page cache intact, so this
//!   proves that no acknowledged write is lost across a *process* crash; it cannot tell `always`
//!   from `everysec` (that needs a simulated power loss, see docs/design.md §11). The
//!   same drill against a snapshot-only config shows the drill does detect loss.
//! - RDB-only RPO R: with the `save R 1` rule (built by the same code as for R >= 1m, with a
//!   short R so the test is quick), a trickle of writes is snapshotted within about R seconds
//!   and survives a SIGKILL; with `save 60 1000` alone it is not.
//!
//! Needs /usr/bin/redis-server (or $REDIS_SERVER): missing is a failure, not a skip.

use crate::render_support as support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use raystack::durability::{RedisSettings, SaveRule, rdb_only_settings, redis_settings};
use raystack::stack::Stack;
use support::RedisProcess;

fn example(name: &str) -> Stack {
    support::examples()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no stacks/{name}.toml"))
        .1
}

/// How many acknowledged writes to let through before the kill: 200 to 700, differing between
/// runs and rounds. Counted in writes, not time, so a loaded machine cannot make the drill
/// kill the server before it proved anything.
fn writes_before_kill(round: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    200 + (nanos / 1000 + round * 137) % 500
}

/// Writes `SET w:<i> <i>` and `INCR acked` until the server dies; returns the ids whose SET was
/// acknowledged. Meanwhile another thread SIGKILLs the server once `kill_after` writes were
/// acknowledged (the writer keeps writing while the kill lands).
fn write_until_killed(redis: &RedisProcess, kill_after: u64) -> Vec<u64> {
    let pid = redis.child.id();
    let killed = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let killer = {
        let (killed, count) = (killed.clone(), count.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while count.load(Ordering::SeqCst) < kill_after && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            let status = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -9 {pid} failed");
            killed.store(true, Ordering::SeqCst);
        })
    };
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut con = redis.connect();
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    for i in 0u64.. {
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("w:{i}"))
            .arg(i)
            .query(&mut con);
        if r.is_err() {
            break;
        }
        acked.lock().unwrap().push(i);
        count.fetch_add(1, Ordering::SeqCst);
        if redis::cmd("INCR")
            .arg("acked")
            .query::<u64>(&mut con)
            .is_err()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server was never killed"
        );
    }
    killer.join().unwrap();
    assert!(killed.load(Ordering::SeqCst));
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

/// Ids among `acked` whose key is missing (or wrong) after the restart.
fn lost(con: &mut redis::Connection, acked: &[u64]) -> Vec<u64> {
    let mut missing = Vec::new();
    for chunk in acked.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("w:{i}")).collect();
        let values: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query(con).unwrap();
        for (i, v) in chunk.iter().zip(values) {
            if v != Some(*i) {
                missing.push(*i);
            }
        }
    }
    missing
}

fn kill_drill(settings: &RedisSettings, round: u64) -> (usize, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisProcess::start(&settings.to_redis_conf(), dir.path());
    let kill_after = writes_before_kill(round);
    let acked = write_until_killed(&redis, kill_after);
    assert!(
        acked.len() as u64 >= kill_after,
        "too few writes before the kill ({}) to prove anything",
        acked.len()
    );
    redis.restart();
    let mut con = redis.connect();
    let missing = lost(&mut con, &acked);
    if missing.is_empty() {
        // Every acknowledged INCR is counted too (the last one may have been applied unacknowledged).
        let count: u64 = redis::cmd("GET").arg("acked").query(&mut con).unwrap();
        assert!(
            count + 1 >= acked.len() as u64,
            "acked counter {count} < {} acknowledged",
            acked.len()
        );
    }
    (acked.len(), missing)
}

#[test]
fn zero_rpo_keeps_every_acknowledged_write_across_sigkill() {
    let stack = example("zero-loss");
    let settings = redis_settings(&stack.durability);
    assert_eq!(settings.appendfsync.map(|f| f.as_str()), Some("always"));
    for round in 0..3 {
        let (written, missing) = kill_drill(&settings, round);
        assert!(
            missing.is_empty(),
            "round {round}: {} of {written} acknowledged writes lost: {:?}…",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
    }
}

#[test]
fn the_kill_drill_detects_loss_without_the_append_only_file() {
    // Snapshot-only Redis with the cadence rule alone: everything since the last snapshot is
    // gone after a SIGKILL. If the drill could not see this, the test above would prove nothing.
    let stack = example("rdb-only");
    let mut settings = redis_settings(&stack.durability);
    settings.save = vec![SaveRule {
        seconds: 3600,
        changes: 1_000_000,
    }];
    let (written, missing) = kill_drill(&settings, 7);
    assert_eq!(
        missing.len(),
        written,
        "without AOF or a snapshot, every write is lost"
    );
}

fn info_persistence(con: &mut redis::Connection) -> HashMap<String, String> {
    let text: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
    text.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Starts Redis with `settings`, writes 5 keys over about a second (well under 1000/min),
/// waits `wait`, and reports whether a snapshot was taken; then SIGKILLs, restarts and returns
/// how many of the keys came back.
fn trickle(settings: &RedisSettings, wait: Duration) -> (bool, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisProcess::start(&settings.to_redis_conf(), dir.path());
    let mut con = redis.connect();
    let before = info_persistence(&mut con);
    let last_save_before: u64 = before["rdb_last_save_time"].parse().unwrap();
    for i in 0..5 {
        let _: () = redis::cmd("SET")
            .arg(format!("t:{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + wait;
    let mut snapshotted = false;
    while Instant::now() < deadline {
        let info = info_persistence(&mut con);
        let last_save: u64 = info["rdb_last_save_time"].parse().unwrap();
        if info["rdb_changes_since_last_save"] == "0"
            && last_save > last_save_before
            && info["rdb_bgsave_in_progress"] == "0"
        {
            assert_eq!(info["rdb_last_bgsave_status"], "ok");
            snapshotted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if snapshotted {
        assert!(
            dir.path().join("dump.rdb").exists(),
            "snapshot reported but no dump.rdb"
        );
    } else {
        let info = info_persistence(&mut con);
        assert_eq!(info["rdb_changes_since_last_save"], "5");
        assert!(!dir.path().join("dump.rdb").exists());
    }
    redis.sigkill();
    redis.restart();
    let mut con = redis.connect();
    let keys: Vec<String> = (0..5).map(|i| format!("t:{i}")).collect();
    let values: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
    (snapshotted, values.into_iter().flatten().count())
}

#[test]
fn rdb_only_rpo_rule_snapshots_a_trickle_and_survives_sigkill() {
    let stack = example("rdb-only");
    // The real builder, with R = 2 s instead of 5 m so the test takes seconds.
    let settings = rdb_only_settings(Duration::from_secs(2), &stack.durability);
    assert_eq!(settings.save_config_value(), "2 1 60 1000");
    assert!(!settings.appendonly);
    // Redis checks save points every 100 ms and needs strictly more than R seconds since the
    // last save (1 s resolution): a snapshot is due within about R + 2 s.
    let (snapshotted, survived) = trickle(&settings, Duration::from_secs(6));
    assert!(
        snapshotted,
        "`save 2 1` must snapshot a trickle of writes within ~R seconds"
    );
    assert_eq!(survived, 5, "the snapshotted keys survive a SIGKILL");
}

#[test]
fn cadence_rule_alone_never_snapshots_a_trickle() {
    let stack = example("rdb-only");
    let mut settings = rdb_only_settings(Duration::from_secs(2), &stack.durability);
    // Only `save 60 1000`, as in the KubeRay sample: 5 writes never reach 1000.
    settings.save.retain(|r| {
        *r == SaveRule {
            seconds: 60,
            changes: 1000,
        }
    });
    settings.rpo_rule = None;
    assert_eq!(settings.save_config_value(), "60 1000");
    let (snapshotted, survived) = trickle(&settings, Duration::from_secs(6));
    assert!(!snapshotted);
    assert_eq!(
        survived, 0,
        "without a snapshot, RDB-only Redis restores nothing"
    );
}
