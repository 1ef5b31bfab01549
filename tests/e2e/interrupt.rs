//! Ctrl-C during `apply`: once the plan is made and before anything is written, it cancels and
//! releases the lock; while writing, the binary stops at its next step, records what it applied, releases
//! the lock (the local file's and the kubernetes backend's Lease), says what was applied and what
//! was not, and exits 130; the next apply converges at once without `force-unlock`. The
//! interrupt arrives at an exact step through the `RAYSTACK_PAUSE_AT` hook (the binary pauses
//! and says so, and only then is SIGINT sent), so the outcome does not depend on timing.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use crate::support::*;

/// Starts `apply`, waits until it pauses at `at`, sends SIGINT; returns (exit code, stderr).
fn interrupt_at(env: &Env, at: &str) -> (i32, String) {
    interrupt_command_at(env, "apply", at)
}

/// Starts `command` (apply or destroy), waits until it pauses at `at`, sends SIGINT; returns
/// (exit code, stderr).
fn interrupt_command_at(env: &Env, command: &str, at: &str) -> (i32, String) {
    let mut child = env
        .cmd(&[command, env.stack_arg(), "--auto-approve"])
        .env("RAYSTACK_PAUSE_AT", at)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("apply never paused at {at} ({status}):\n{seen}");
        }
        seen.push_str(&line);
        if line.trim_end() == format!("paused at {at} (RAYSTACK_PAUSE_AT)") {
            break;
        }
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    stderr.read_to_string(&mut seen).unwrap();
    let code = child.wait().unwrap().code().expect("exited, not killed");
    (code, seen)
}

/// The lines from the pause on (what came before is the ordinary progress of the first steps).
fn from_pause(stderr: &str) -> String {
    let at = stderr.find("paused at ").expect("paused");
    stderr[at..].to_string()
}

#[test]
fn ctrl_c_on_the_kubernetes_backend_records_releases_the_lease_and_exits_130() {
    let env = Env::new(&[]);
    env.write_stack(&stack_toml(&worker("cpu", 1), "", "").replace(
        "[cluster]",
        "[state]\nbackend = \"kubernetes\"\n\n[cluster]",
    ));
    let (code, stderr) = interrupt_at(&env, "recorded:3");
    assert_eq!(code, 130, "{stderr}");
    insta::assert_snapshot!("ctrl_c_kubernetes_stderr", from_pause(&stderr));
    let lease = format!(
        "/apis/coordination.k8s.io/v1/namespaces/raystack-system/leases/raystack-lock-{NAME}"
    );
    assert!(env.fake.get(&lease).is_none(), "the Lease outlived the run");
    // No force-unlock: the next apply takes the lock and converges.
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(!r.stderr.contains("took over"), "{r}");
    env.assert_no_changes();
}

#[test]
fn ctrl_c_on_the_local_backend_writes_state_for_what_was_applied() {
    let env = Env::new(&[]);
    // Stopped after the server accepted the PVC and before its state entry was written: the
    // entry is written before the run stops.
    let (code, stderr) = interrupt_at(&env, "applied:4");
    assert_eq!(code, 130, "{stderr}");
    insta::assert_snapshot!("ctrl_c_local_stderr", from_pause(&stderr));
    let kinds: Vec<String> = env.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["Namespace", "Secret", "ConfigMap", "PersistentVolumeClaim"]
    );
    assert!(!env.state_path().with_extension("json.lock").exists());
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    assert_converged(&env);
}

/// The stack on the kubernetes backend (state in a Secret, the lock a Lease).
fn kubernetes_backend(env: &Env) {
    env.write_stack(&stack_toml(&worker("cpu", 1), "", "").replace(
        "[cluster]",
        "[state]\nbackend = \"kubernetes\"\n\n[cluster]",
    ));
}

fn lease_path() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/raystack-system/leases/raystack-lock-{NAME}")
}

#[test]
fn ctrl_c_after_planning_cancels_with_nothing_written_and_releases_the_lease() {
    let env = Env::new(&[]);
    kubernetes_backend(&env);
    // Paused once the plan is made and shown, holding the Lease, before the prompt.
    let (code, stderr) = interrupt_at(&env, "planned:1");
    assert_eq!(code, 130, "{stderr}");
    insta::assert_snapshot!("ctrl_c_after_planning_stderr", from_pause(&stderr));
    assert!(
        env.fake.get(&lease_path()).is_none(),
        "the Lease outlived the run"
    );
    assert!(
        env.fake
            .get(&format!("/api/v1/namespaces/{NAME}"))
            .is_none(),
        "nothing is written after a cancel"
    );
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(!r.stderr.contains("took over"), "{r}");
    env.assert_no_changes();

    // Destroy, the same: cancelled before its first delete, everything still there.
    let (code, stderr) = interrupt_command_at(&env, "destroy", "planned:1");
    assert_eq!(code, 130, "{stderr}");
    insta::assert_snapshot!("ctrl_c_destroy_after_planning_stderr", from_pause(&stderr));
    assert!(
        env.fake.get(&lease_path()).is_none(),
        "the Lease outlived the run"
    );
    env.assert_no_changes();
}
