//! Binary-level test: `raystack apply` SIGKILLed at exact steps, then rerun, converges with
//! nothing duplicated or lost and a valid state. Each kill point is reached deterministically
//! through the `RAYSTACK_PAUSE_AT` test hook (docs/design.md §10.3): the binary stops at the
//! step and says so on stderr, and only then is it killed, so what was recorded before the kill
//! is known exactly.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

use crate::support::*;

/// Resources recorded in the state file (0 when there is none yet).
fn recorded(env: &Env) -> usize {
    if !env.state_path().exists() {
        return 0;
    }
    let text = std::fs::read_to_string(env.state_path()).unwrap();
    let state: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("state after a kill is not JSON: {e}\n{text}"));
    state["resources"].as_array().map_or(0, Vec::len)
}

/// Starts `apply`, waits until it pauses at `at`, SIGKILLs it; returns its stderr up to there.
fn kill_at(env: &Env, at: &str) -> String {
    let mut child = env
        .cmd(&["apply", env.stack_arg(), "--auto-approve"])
        .env("RAYSTACK_PAUSE_AT", at)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let paused = loop {
        match lines.next() {
            Some(Ok(line)) => {
                seen.push_str(&line);
                seen.push('\n');
                if line == format!("paused at {at} (RAYSTACK_PAUSE_AT)") {
                    break true;
                }
            }
            _ => break false,
        }
    };
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(paused, "apply never paused at {at} ({status}):\n{seen}");
    seen
}

fn password(env: &Env) -> Option<String> {
    env.fake
        .get(&env.ns_path("secrets", &format!("{NAME}-redis-auth")))
        .and_then(|s| s["data"]["password"].as_str().map(str::to_string))
}

#[test]
fn apply_killed_at_each_kind_of_step_resumes_on_rerun() {
    // The local stack applies 8 objects in this order: Namespace, Secret, ConfigMap, PVC,
    // StatefulSet, Service, NetworkPolicy, RayCluster. `applied:N` stops after the server
    // accepted object N and before its state entry is written; `recorded:N` right after.
    for (at, recorded_before_kill) in [
        ("applied:1", 0),
        ("recorded:1", 1),
        ("applied:2", 1), // the Secret exists, its password not generated yet
        ("recorded:2", 2),
        ("applied:4", 3),  // the PVC
        ("recorded:5", 5), // before the StatefulSet's readiness wait
        ("applied:8", 7),  // the RayCluster
        ("recorded:8", 8),
    ] {
        let env = Env::new(&[]);
        let stderr = kill_at(&env, at);
        assert_eq!(
            recorded(&env),
            recorded_before_kill,
            "state after a kill at {at}:\n{stderr}"
        );
        let before = password(&env);
        if at != "applied:2" && recorded_before_kill >= 2 {
            assert!(before.is_some(), "no password after {at}");
        }

        let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
        assert_eq!(r.code, 0, "rerun after a kill at {at}:\n{r}");
        assert_converged(&env);
        let after = password(&env).expect("a password after the rerun");
        if let Some(before) = before {
            assert_eq!(after, before, "password regenerated after a kill at {at}");
        }
    }
}
