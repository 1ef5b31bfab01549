//! State that lasts in CI: with `CI=true`, `apply` and `destroy` (of a stack file or of a saved
//! plan) refuse a stack whose `[state]` names no backend, before anything is changed, and say
//! how to fix it; `plan` warns and still plans. A stack that names its backend (`local` on
//! purpose, or `kubernetes`) is applied as usual, and `CI=false` is not CI.

use crate::support::*;

/// `raystack ARGS` with `CI` set to `ci` (the harness removes `CI` from every other run).
fn run_ci(env: &Env, ci: &str, args: &[&str]) -> Run {
    Run::from(env.cmd(args).env("CI", ci).output().expect("run raystack"))
}

fn with_state(env: &Env, state: &str) {
    env.write_stack(&format!(
        "{}\n[state]\n{state}\n",
        stack_toml(&worker("cpu", 1), "", "")
    ));
}

#[test]
fn apply_and_destroy_refuse_the_default_local_state_in_ci() {
    let env = Env::new(&[]);
    let stack = env.stack_arg();
    let r = run_ci(&env, "true", &["apply", stack, "--auto-approve"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(r.stdout, "", "{r}");
    insta::assert_snapshot!("apply_refused_stderr", env.scrub(&r.stderr));
    // Refused before anything was changed or recorded.
    assert!(env.fake.get("/api/v1/namespaces/e2e").is_none());
    assert!(!env.state_path().exists());

    // Outside CI the same stack applies; destroy then refuses in CI, and keeps everything.
    env.apply();
    let r = run_ci(
        &env,
        "true",
        &["destroy", stack, "--auto-approve", "--allow-data-loss"],
    );
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("destroy_refused_stderr", env.scrub(&r.stderr));
    assert!(env.fake.get("/api/v1/namespaces/e2e").is_some());
    assert_converged(&env);
}

#[test]
fn a_saved_plan_of_a_stack_without_a_backend_is_refused_in_ci_and_plan_warns() {
    let env = Env::new(&[]);
    let plan_file = env.dir.path().join("plan.json");
    let plan_arg = plan_file.to_str().unwrap();
    let r = run_ci(
        &env,
        "true",
        &[
            "plan",
            env.stack_arg(),
            "--out",
            plan_arg,
            "--detailed-exitcode",
        ],
    );
    // The plan is made and saved (exit 2: changes), with a warning first.
    assert_eq!(r.code, 2, "{r}");
    let warning = r.stderr.lines().next().unwrap_or_default();
    insta::assert_snapshot!("plan_warning", env.scrub(warning));
    let r = run_ci(&env, "true", &["apply", plan_arg]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .starts_with("error: refusing to apply stack `e2e` in CI (CI is set)"),
        "{r}"
    );
    assert!(env.fake.get("/api/v1/namespaces/e2e").is_none());
}

#[test]
fn a_declared_backend_is_applied_in_ci_and_ci_false_is_not_ci() {
    // `backend = "local"` written on purpose: applied in CI, and plan does not warn.
    let env = Env::new(&[]);
    with_state(&env, "backend = \"local\"");
    let r = run_ci(&env, "true", &["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    let r = run_ci(
        &env,
        "true",
        &["plan", env.stack_arg(), "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "{r}");
    assert!(!r.stderr.contains("warning"), "{r}");

    // The kubernetes backend: applied in CI.
    let env = Env::new(&[]);
    with_state(&env, "backend = \"kubernetes\"");
    let r = run_ci(&env, "true", &["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(!env.state_path().exists());

    // `CI=false` (and empty, and 0) is not CI.
    for ci in ["false", "0", ""] {
        let env = Env::new(&[]);
        let r = run_ci(&env, ci, &["apply", env.stack_arg(), "--auto-approve"]);
        assert_eq!(r.code, 0, "CI={ci:?}: {r}");
    }
}
