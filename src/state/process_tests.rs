//! Tests that need a second process: a lock held by a process that is SIGKILLed, and a writer
//! killed at random instants. The child is this test binary re-run on `child_process_entry`,
//! which does nothing unless `RAYSTACK_STATE_TEST_CHILD` says what to do.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::tests::resource;
use super::{LocalBackend, State, StateError};
use crate::kind::Kind;

const CHILD_ENV: &str = "RAYSTACK_STATE_TEST_CHILD";
const PATH_ENV: &str = "RAYSTACK_STATE_TEST_PATH";

/// The child side, run only by `spawn_child` (which passes `--ignored`): in a normal test run
/// it is reported as ignored rather than as a test that passed without checking anything.
#[test]
#[ignore = "the child side of the tests below; they run it"]
fn child_process_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let backend = LocalBackend::new(std::env::var(PATH_ENV).expect("state path"));
    let mut lock = backend.lock("apply").expect("child takes the lock");
    match mode.as_str() {
        "hold-lock" => {
            say("@@LOCKED@@");
            std::thread::sleep(Duration::from_secs(60));
        }
        "write-loop" => {
            let mut state = lock.read().unwrap().unwrap_or_else(|| State::new("crash"));
            // Enough records that a write spans many bytes and a torn file would show.
            for i in 0..40 {
                state.upsert_resource(resource(Kind::ConfigMap, Some("ray"), &format!("cm-{i}")));
            }
            lock.write(&mut state).unwrap();
            say("@@READY@@");
            loop {
                let serial = state.serial.to_string();
                for r in &mut state.resources {
                    r.resource_version = serial.clone();
                }
                state.set_secret_fingerprint("redis-password", serial.as_bytes());
                lock.write(&mut state).unwrap();
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn spawn_child(mode: &str, state_path: &Path) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "state::process_tests::child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env(PATH_ENV, state_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// Reads the child's stdout until `marker`. The harness prints its own text around it, even on
/// the same line (`test ... ` precedes the test's output), hence `contains`.
fn wait_for(stdout: &mut BufReader<ChildStdout>, marker: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "child exited before printing {marker}");
        if line.contains(marker) {
            return;
        }
    }
}

fn sigkill(mut child: Child) {
    // `Child::kill` sends SIGKILL on Unix: no destructors, no cleanup.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
}

#[cfg(unix)]
#[test]
fn lock_of_a_sigkilled_process_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path().join("prod.state.json"));
    let (child, mut stdout) = spawn_child("hold-lock", backend.path());
    let child_pid = child.id();
    wait_for(&mut stdout, "@@LOCKED@@");

    let err = backend.lock("plan").unwrap_err();
    let StateError::Locked(info) = &err else {
        panic!("expected Locked, got {err:?}");
    };
    assert_eq!(info.pid, child_pid);
    assert_eq!(info.operation, "apply");
    assert!(
        err.to_string().contains(&format!("pid {child_pid}")),
        "{err}"
    );

    sigkill(child);
    assert!(
        backend.lock_path().exists(),
        "a killed holder leaves its lock file behind"
    );
    let lock = backend
        .lock("plan")
        .expect("the kernel released the dead holder's lock");
    assert_eq!(lock.info().pid, std::process::id());
}

#[cfg(unix)]
#[test]
fn lock_wait_takes_over_when_the_holder_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path().join("prod.state.json"));
    let (child, mut stdout) = spawn_child("hold-lock", backend.path());
    let child_pid = child.id();
    wait_for(&mut stdout, "@@LOCKED@@");
    // Killed once the wait has found it holding the lock (and reaped: its flock is gone).
    let mut child = Some(child);
    let mut holders = Vec::new();
    let lock = backend
        .lock_wait("apply", Duration::from_secs(20), |info| {
            holders.push(info.pid);
            if let Some(child) = child.take() {
                sigkill(child);
            }
        })
        .unwrap();
    assert!(child.is_none());
    assert_eq!(holders, [child_pid]);
    assert_eq!(lock.info().pid, std::process::id());
}

/// A writer SIGKILLed at random instants never leaves a partial state or backup, and the
/// serial only moves forward. Meanwhile a lockless reader must always find valid JSON.
#[cfg(unix)]
#[test]
fn writer_killed_at_random_moments_leaves_valid_state() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path().join("state/crash.state.json"));
    let mut last_serial = 0;
    let mut lineage: Option<String> = None;
    let mut reads_during_writes = 0;
    for round in 0..25 {
        let (child, mut stdout) = spawn_child("write-loop", backend.path());
        wait_for(&mut stdout, "@@READY@@");

        // Read without the lock while the child writes, for a random 1–40 ms, then kill it.
        let deadline = Instant::now() + Duration::from_millis(rand::random_range(1..=40));
        while Instant::now() < deadline {
            let state = backend
                .read()
                .unwrap_or_else(|e| panic!("round {round}: read during writes: {e}"))
                .expect("state exists while the child writes");
            assert!(state.serial >= last_serial);
            reads_during_writes += 1;
        }
        sigkill(child);

        let state = backend
            .read()
            .unwrap_or_else(|e| panic!("round {round}: state after kill: {e}"))
            .expect("state exists");
        assert!(
            state.serial > last_serial,
            "round {round}: serial {} did not increase past {last_serial}",
            state.serial
        );
        match &lineage {
            Some(l) => assert_eq!(&state.lineage, l, "round {round}: lineage changed"),
            None => lineage = Some(state.lineage.clone()),
        }
        last_serial = state.serial;

        if state.serial == 1 {
            // Killed before its second write: there is no previous version to back up yet.
            assert!(!backend.backup_path().exists());
            continue;
        }
        let backup = std::fs::read(backend.backup_path())
            .unwrap_or_else(|e| panic!("round {round}: no backup at serial {}: {e}", state.serial));
        let backup: State = serde_json::from_slice(&backup)
            .unwrap_or_else(|e| panic!("round {round}: backup is not valid state JSON: {e}"));
        // Killed between the two renames, the backup already holds the version still at
        // `path`; otherwise it holds an older one.
        assert!(backup.serial <= state.serial);
        assert_eq!(Some(&backup.lineage), lineage.as_ref());
    }
    assert!(reads_during_writes > 0);

    // The next writer cleans up whatever temp files the kills left behind.
    let mut lock = backend.lock("apply").unwrap();
    let mut state = lock.read().unwrap().expect("state exists");
    lock.write(&mut state).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(backend.path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
