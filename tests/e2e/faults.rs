//! Deadlines, retries and error messages through a fault-injecting proxy
//! (`fake_apiserver::faults`) between the real `raystack` binary and fake-apiserver: a server
//! that never answers fails at the deadline instead of hanging; an apply whose PATCH is never
//! answered stops, releases the lock, and a rerun converges; a persistent 429 shows progress
//! and gives up at the deadline; an error status on the first request says what the cluster
//! answered; a dropped connection is retried a bounded number of times and prints its cause
//! once; 503s on the state Secret and the Lease during an apply are retried and the apply
//! succeeds.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_apiserver::faults::{Fault, FaultProxy, Rule};
use serde_json::json;

use crate::support::*;

/// The env's fake-apiserver behind a proxy, and a kubeconfig that points at the proxy.
fn proxied(env: &Env) -> (FaultProxy, std::path::PathBuf) {
    let proxy = FaultProxy::start(&env.fake.url).expect("start the fault proxy");
    let kubeconfig = env.dir.path().join("kubeconfig-proxy");
    proxy.write_kubeconfig(&kubeconfig).unwrap();
    (proxy, kubeconfig)
}

/// `text` with the proxy's URL as `[PROXY]` and the test's directory as `[DIR]`.
fn scrub(env: &Env, proxy: &FaultProxy, text: &str) -> String {
    text.replace(proxy.url().trim_end_matches('/'), "[PROXY]")
        .replace(&env.dir.path().display().to_string(), "[DIR]")
}

/// `raystack ARGS --kubeconfig KUBECONFIG`, bounded: a command still running after 90 s fails
/// the test (the point of these tests is that nothing waits forever).
fn run_via(env: &Env, kubeconfig: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(raystack_bin());
    cmd.current_dir(env.dir.path())
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("NO_COLOR", "1")
        .env("RAYSTACK_WAIT_TIMEOUT", "60")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let out = Run::from(child.wait_with_output().unwrap());
            panic!("raystack {args:?} was still running after 90 s:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn a_server_that_never_answers_fails_at_the_deadline_flag_or_env() {
    let env = Env::new(&[]);
    let (proxy, kc) = proxied(&env);
    proxy.push(Rule::new(None, "/", Fault::Blackhole));
    let r = run_via(
        &env,
        &kc,
        &["plan", env.stack_arg(), "--request-timeout", "2s"],
        &[],
    );
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("never_answers_flag_stderr", scrub(&env, &proxy, &r.stderr));
    let r = run_via(
        &env,
        &kc,
        &["plan", env.stack_arg()],
        &[("RAYSTACK_REQUEST_TIMEOUT", "1")],
    );
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("never_answers_env_stderr", scrub(&env, &proxy, &r.stderr));
}

#[test]
fn an_apply_whose_patch_is_never_answered_stops_and_a_rerun_converges() {
    let env = Env::new(&[]);
    let (proxy, kc) = proxied(&env);
    // The real apply of the StatefulSet is never answered; the plan's dry-runs are.
    proxy.push(Rule::new(Some("PATCH"), "/statefulsets/", Fault::Blackhole).unless("dryRun"));
    let r = run_via(
        &env,
        &kc,
        &[
            "apply",
            env.stack_arg(),
            "--auto-approve",
            "--request-timeout",
            "3s",
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(&format!(
            "failed to apply `StatefulSet/{NAME}/{NAME}-redis`: no answer from the API server within 3s"
        )) && r.stderr.contains("rerunning apply resumes"),
        "{r}"
    );
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.fault == Some(Fault::Blackhole)),
        "the PATCH reached the proxy"
    );
    let lock = env.state_path().with_extension("json.lock");
    assert!(!lock.exists(), "the state lock outlived the apply");
    // What was applied before the timeout is in state; a rerun converges from it.
    let kinds: Vec<String> = env.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.contains(&"PersistentVolumeClaim".to_string()),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"StatefulSet".to_string()), "{kinds:?}");
    proxy.clear();
    let r = run_via(
        &env,
        &kc,
        &["apply", env.stack_arg(), "--auto-approve"],
        &[],
    );
    assert_eq!(r.code, 0, "{r}");
    assert_converged(&env);
}

#[test]
fn a_persistent_429_shows_progress_and_gives_up_at_the_deadline() {
    let env = Env::new(&[]);
    env.apply();
    // Written since the apply, so the plan reads it after its dry-run (an unchanged one is not
    // read at all).
    let label = json!({"metadata": {"labels": {"team": "ml"}}});
    let path = env.ns_path("configmaps", &format!("{NAME}-redis-config"));
    assert_eq!(env.fake.merge_patch(&path, &label), 200);
    let (proxy, kc) = proxied(&env);
    let cm = format!("/configmaps/{NAME}-redis-config");
    proxy.push(Rule::new(
        Some("GET"),
        &cm,
        Fault::Status {
            code: 429,
            retry_after: Some(1),
        },
    ));
    let r = run_via(
        &env,
        &kc,
        &["plan", env.stack_arg(), "--request-timeout", "4s"],
        &[],
    );
    assert_eq!(r.code, 1, "{r}");
    let address = format!("ConfigMap/{NAME}/{NAME}-redis-config");
    let progress: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "the API server answered 429 Too Many Requests to read `{address}` (attempt "
            ))
        })
        .collect();
    assert!(progress.len() >= 2, "no retry progress:\n{r}");
    assert!(
        progress[0].ends_with("(attempt 1); retrying in 1s (0s spent, giving up at 4s)"),
        "{r}"
    );
    assert!(
        r.stderr.contains(&format!(
            "failed to read `{address}`: the API server answered 429 Too Many Requests "
        )) && r.stderr.contains(
            "gave up at the 4s request deadline (--request-timeout, RAYSTACK_REQUEST_TIMEOUT)"
        ),
        "{r}"
    );
    // A 429 that clears is retried through, with the same progress, and the plan succeeds.
    proxy.clear();
    proxy.push(
        Rule::new(
            Some("GET"),
            &cm,
            Fault::Status {
                code: 429,
                retry_after: Some(1),
            },
        )
        .times(2),
    );
    let r = run_via(
        &env,
        &kc,
        &["plan", env.stack_arg(), "--detailed-exitcode"],
        &[],
    );
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("No changes"), "{r}");
    assert_eq!(
        r.stderr
            .matches("the API server answered 429 Too Many Requests to read")
            .count(),
        2,
        "{r}"
    );
}

#[test]
fn an_error_status_on_the_first_request_says_what_the_cluster_answered() {
    let env = Env::new(&[]);
    let (proxy, kc) = proxied(&env);
    for (code, text) in [
        (500, "500 Internal Server Error"),
        (409, "409 Conflict"),
        (429, "429 Too Many Requests"),
    ] {
        proxy.clear();
        proxy.push(Rule::new(
            None,
            "/namespaces/kube-system",
            Fault::status(code),
        ));
        let r = run_via(
            &env,
            &kc,
            &["plan", env.stack_arg(), "--request-timeout", "3s"],
            &[],
        );
        assert_eq!(r.code, 1, "{code}: {r}");
        assert!(!r.stderr.contains("cannot reach"), "{code}: {r}");
        let text_out = r
            .stderr
            .replace(proxy.url().trim_end_matches('/'), "[PROXY]")
            .replace(&env.dir.path().display().to_string(), "[DIR]");
        if code == 429 {
            // A 429 is retried until the deadline: how many attempts fit, and the seconds
            // spent, depend on the machine's speed, so only the fixed parts are checked.
            assert!(
                text_out.contains("the cluster at [PROXY]/ refused the first request")
                    && text_out.contains(&format!(
                        "failed to read `Namespace/kube-system`: the API server answered {text}"
                    )),
                "{code}: {r}"
            );
        } else {
            insta::assert_snapshot!(format!("first_request_{code}_stderr"), text_out);
        }
    }
}

#[test]
fn a_dropped_connection_prints_its_cause_once() {
    let env = Env::new(&[]);
    let (proxy, kc) = proxied(&env);
    proxy.push(Rule::new(None, "/", Fault::Drop));
    // A read may run twice, so a dropped connection is retried: at most 5 attempts, 7.5 s of
    // backoff in all, well inside the deadline, so the count never depends on timing.
    let r = run_via(
        &env,
        &kc,
        &["plan", env.stack_arg(), "--request-timeout", "30s"],
        &[],
    );
    assert_eq!(r.code, 1, "{r}");
    // The whole error: its innermost cause once, not the layers above it repeating it
    // (`client error (SendRequest)`), and each retry as a progress line.
    // The time spent so far (in each retry line) depends on the machine's load: cut.
    let stderr: String = r
        .stderr
        .lines()
        .map(|l| match l.find("s spent, giving up at") {
            Some(at) => format!("{}[N]{}", &l[..l[..at].rfind('(').unwrap() + 1], &l[at..]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("dropped_connection_stderr", scrub(&env, &proxy, &stderr));
}

/// Stacks of one command that share a cluster share its failure: with an API server that never
/// answers, the first stack waits out the deadline and the others report the same error at
/// once, instead of each waiting out the deadline in turn.
#[test]
fn stacks_that_share_an_unreachable_cluster_wait_out_its_deadline_once() {
    let env = Env::new(&[]);
    let (proxy, kc) = proxied(&env);
    proxy.push(Rule::new(None, "/", Fault::Blackhole));
    let stacks: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let toml = stack_toml(&worker("cpu", 1), "", "")
                .replace(&format!("name = \"{NAME}\""), &format!("name = \"{name}\""))
                .replace(
                    &format!("namespace = \"{NAME}\""),
                    &format!("namespace = \"{name}\""),
                );
            std::fs::write(env.dir.path().join(format!("{name}.toml")), toml).unwrap();
            // Relative to the directory raystack runs in, so the table's widths do not
            // depend on where the temporary directory is.
            format!("{name}.toml")
        })
        .collect();
    let mut args = vec!["plan", "--request-timeout", "2s"];
    args.extend(stacks.iter().map(String::as_str));
    let r = run_via(&env, &kc, &args, &[]);
    assert_eq!(r.code, 1, "{r}");
    // Each stack reports the whole error, the same causes in the same order.
    insta::assert_snapshot!("shared_unreachable_stdout", scrub(&env, &proxy, &r.stdout));
    insta::assert_snapshot!("shared_unreachable_stderr", scrub(&env, &proxy, &r.stderr));
    let identity_reads = proxy
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/api/v1/namespaces/kube-system"))
        .count();
    assert_eq!(
        identity_reads,
        1,
        "the cluster was tried once per stack: {:?}",
        proxy.seen().iter().map(|s| &s.path).collect::<Vec<_>>()
    );
}

/// The state backend goes through the same door as the objects: 503s on the Lease (taking the
/// lock) and on the state Secret (the writes after objects were applied) are retried, the apply
/// succeeds, and the next plan has nothing to do.
#[test]
fn service_unavailable_on_the_state_secret_and_the_lease_is_retried_during_apply() {
    let env = Env::new(&[]);
    env.write_stack(&stack_toml(&worker("cpu", 1), "", "").replace(
        "[cluster]",
        "[state]\nbackend = \"kubernetes\"\n\n[cluster]",
    ));
    let (proxy, kc) = proxied(&env);
    proxy.push(Rule::new(Some("POST"), "/leases", Fault::status(503)).times(1));
    proxy.push(
        Rule::new(
            None,
            "/namespaces/raystack-system/secrets",
            Fault::status(503),
        )
        .unless("labelSelector")
        .times(3),
    );
    let r = run_via(
        &env,
        &kc,
        &[
            "apply",
            env.stack_arg(),
            "--auto-approve",
            "--request-timeout",
            "30s",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{r}");
    let faulted: Vec<String> = proxy
        .seen()
        .iter()
        .filter(|s| s.fault.is_some())
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(faulted.len(), 4, "{faulted:#?}");
    let retries: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("the API server answered 503 Service Unavailable to "))
        .collect();
    assert_eq!(retries.len(), 4, "{r}");
    assert!(
        retries[0].starts_with(&format!(
            "the API server answered 503 Service Unavailable to create `Lease/raystack-system/raystack-lock-{NAME}` (attempt 1); retrying in 1s"
        )),
        "{r}"
    );
    proxy.clear();
    let r = run_via(
        &env,
        &kc,
        &["plan", env.stack_arg(), "--detailed-exitcode"],
        &[],
    );
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout
            .ends_with("No changes. The cluster matches the stack.\n"),
        "{r}"
    );
}
