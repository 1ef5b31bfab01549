//! Binary-level test: `raystack apply` killed with SIGKILL at several points, then rerun,
//! converges with nothing duplicated or lost and a valid state. Alone in its test binary so its
//! timing is not disturbed by other tests running in parallel.

mod e2e_support;

use std::time::Duration;

use e2e_support::*;
use serde_json::Value;

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
