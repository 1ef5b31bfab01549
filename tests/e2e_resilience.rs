//! Binary-level tests of what must survive bad days: `raystack apply` killed with SIGKILL at
//! several points and rerun, two concurrent applies, and the Redis password never leaking into
//! any output, plan file or state.

mod e2e_support;

use std::collections::BTreeSet;
use std::time::Duration;

use e2e_support::*;
use serde_json::Value;

fn assert_converged(env: &Env) {
    env.assert_no_changes();
    let state = env.state();
    let addrs: Vec<&str> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = addrs.iter().copied().collect();
    assert_eq!(addrs.len(), 8, "state: {addrs:?}");
    assert_eq!(unique.len(), 8, "duplicate state entries: {addrs:?}");
    for (path, name) in all_objects() {
        let names = env.fake.list_names(&path);
        assert_eq!(
            names.iter().filter(|n| **n == name).count(),
            1,
            "{path}: {names:?}"
        );
    }
    assert_eq!(
        state["secrets"].as_array().unwrap().len(),
        1,
        "secret fingerprint missing: {state}"
    );
}

#[test]
fn apply_killed_at_several_points_resumes_on_rerun() {
    const FAKE: &[&str] = &["--latency-ms", "30", "--readiness-delay-ms", "300"];
    // Time one uninterrupted apply, then kill others at fractions of that time: during planning,
    // between objects, during readiness waits, near the end.
    let timing = Env::new(FAKE);
    let start = std::time::Instant::now();
    timing.apply();
    let full = start.elapsed().as_millis() as u64;
    let mut partial = 0;
    for percent in [10u64, 45, 55, 65, 75, 85, 95] {
        let delay_ms = full * percent / 100;
        let env = Env::new(FAKE);
        let mut child = env
            .cmd(&["apply", env.stack_arg(), "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let recorded = if env.state_path().exists() {
            let text = std::fs::read_to_string(env.state_path()).unwrap();
            let state = serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("state after kill at {delay_ms} ms is not JSON: {e}"));
            state["resources"].as_array().map_or(0, Vec::len)
        } else {
            0
        };
        eprintln!("killed after {delay_ms} ms: {recorded} object(s) recorded in state");
        if (1..8).contains(&recorded) {
            partial += 1;
        }
        let password_before = env
            .fake
            .get(&env.ns_path("secrets", &format!("{NAME}-redis-auth")))
            .and_then(|s| s["data"]["password"].as_str().map(str::to_string));

        let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
        assert_eq!(r.code, 0, "rerun after kill at {delay_ms} ms:\n{r}");
        assert_converged(&env);
        if let Some(before) = password_before {
            let after = env
                .fake
                .get(&env.ns_path("secrets", &format!("{NAME}-redis-auth")))
                .unwrap();
            assert_eq!(
                after["data"]["password"].as_str(),
                Some(before.as_str()),
                "password regenerated after kill at {delay_ms} ms"
            );
        }
    }
    assert!(
        partial >= 2,
        "only {partial} kill(s) interrupted an apply midway; the fake's latency is too low to test this"
    );
}

#[test]
fn two_concurrent_applies_one_fails_clearly_and_state_stays_intact() {
    let env = Env::new(&["--latency-ms", "40"]);
    let spawn = || {
        env.cmd(&["apply", env.stack_arg(), "--auto-approve"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        Run::from(a.wait_with_output().unwrap()),
        Run::from(b.wait_with_output().unwrap()),
    );
    let (ok, failed) = match (a.code, b.code) {
        (0, 1) => (a, b),
        (1, 0) => (b, a),
        _ => panic!("expected one success and one failure:\n{a}\n{b}"),
    };
    assert!(ok.stdout.contains("Apply complete!"), "{ok}");
    assert!(failed.stderr.contains("is locked by `apply`"), "{failed}");
    assert!(
        failed.stdout.is_empty(),
        "the locked apply planned anyway:\n{failed}"
    );
    assert_converged(&env);
}

#[test]
fn the_password_never_appears_in_any_output_plan_file_or_state() {
    let env = Env::new(&[]);
    let mut seen = Vec::new();
    let mut record = |r: Run| {
        seen.push(r.stdout.clone());
        seen.push(r.stderr.clone());
        r
    };
    record(env.apply());
    let password = env.password();
    assert!(password.len() >= 32, "password too short");
    let planfile = env.dir.path().join("p.plan");
    let pf = planfile.to_str().unwrap();
    for format in ["text", "json", "markdown"] {
        record(env.plan(&["--format", format]));
        record(env.run(&["plan", env.stack_arg(), "--offline", "--format", format]));
    }
    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    record(env.run(&["plan", env.stack_arg(), "--out", pf]));
    for format in ["text", "json", "markdown"] {
        record(env.run(&["show", pf, "--format", format]));
    }
    record(env.run(&["apply", pf]));
    assert_eq!(
        env.password(),
        password,
        "the password changed on a later apply"
    );
    record(env.run(&["state", "show", env.stack_arg()]));
    record(env.run(&["state", "list", env.stack_arg()]));
    record(env.run(&["destroy", env.stack_arg(), "--auto-approve"]));
    seen.push(std::fs::read_to_string(&planfile).unwrap());
    seen.push(std::fs::read_to_string(env.state_path()).unwrap());
    if let Ok(backup) = std::fs::read_to_string(env.state_path().with_extension("json.backup")) {
        seen.push(backup);
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(password.as_bytes());
    for text in &seen {
        assert!(!text.contains(&password), "the password leaked:\n{text}");
        assert!(!text.contains(&b64), "the base64 password leaked:\n{text}");
    }
}
