//! Binary-level tests of what must survive bad days: two concurrent applies, and the Redis
//! password never leaking into any output, plan file or state. (SIGKILL: `e2e_kill.rs`.)

use crate::support::*;

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

/// A plan only reads, and a state read is consistent without the lock (writes are atomic), so a
/// plan while an apply holds the lock plans: it takes no lock of its own, and warns who holds
/// it. (It used to fail with "is locked by `apply`".)
#[test]
fn a_plan_while_an_apply_holds_the_lock_plans_and_names_the_holder() {
    use std::io::{BufRead, BufReader};
    let env = Env::new(&[]);
    env.apply();
    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    let mut apply = env
        .cmd(&["apply", env.stack_arg(), "--auto-approve"])
        .env("RAYSTACK_PAUSE_AT", "applied:1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(apply.stderr.take().unwrap()).lines();
    let paused = lines.any(|l| l.is_ok_and(|l| l == "paused at applied:1 (RAYSTACK_PAUSE_AT)"));
    let lock_file = env.state_path().with_extension("json.lock");
    let holder: serde_json::Value = serde_json::from_slice(&std::fs::read(&lock_file).unwrap())
        .unwrap_or_else(|e| panic!("the apply's lock file: {e}"));
    let r = env.plan(&[]);
    apply.kill().unwrap();
    apply.wait().unwrap();
    assert!(paused, "the apply never paused");
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.stderr,
        format!(
            "warning: stack `{NAME}` is locked by pid {} on host {} (apply) since {} (lock ID {}); the state may change when that run ends\n",
            apply.id(),
            holder["host"].as_str().unwrap(),
            holder["created"].as_str().unwrap(),
            holder["id"].as_str().unwrap(),
        )
    );
    // The same plan as once the apply is gone (killed before it recorded anything).
    let after = env.plan(&[]);
    assert_eq!((after.code, &after.stderr), (0, &String::new()), "{after}");
    assert_eq!(r.stdout, after.stdout);
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

#[test]
fn a_readiness_timeout_is_reported_clearly_and_state_keeps_what_was_applied() {
    let env = Env::new(&["--readiness-delay-ms", "600000"]);
    let out = env
        .cmd(&["apply", env.stack_arg(), "--auto-approve"])
        .env("RAYSTACK_WAIT_TIMEOUT", "2")
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(&format!(
            "timed out after 2s waiting for `StatefulSet/{NAME}/{NAME}-redis`"
        )),
        "{r}"
    );
    assert!(r.stderr.contains("rerunning apply resumes"), "{r}");
    let state = env.state();
    let kinds: Vec<&str> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "Namespace",
            "Secret",
            "ConfigMap",
            "PersistentVolumeClaim",
            "StatefulSet"
        ]
    );
}

/// One command's client keeps at most `MAX_IN_FLIGHT` requests in flight to its API server.
/// `MAX_IN_FLIGHT` reads are held by the proxy (read, never answered) on a clone of the client
/// with a long deadline; once the proxy has seen them all, one more read on a clone with a 1 s
/// deadline (clones share the cap) must wait for a slot that never frees: it ends in its
/// deadline, never sent. Without the cap it would be forwarded and answered at once. No clock
/// decides the outcome: the held reads free their slots only at their 60 s deadline.
#[test]
fn one_client_keeps_at_most_max_in_flight_requests_in_flight() {
    use fake_apiserver::faults::{Fault, FaultProxy, Rule};
    use raystack::cluster::{ClusterError, MAX_IN_FLIGHT};
    use raystack::kind::{Kind, ObjectRef};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start(dir.path(), &[]);
    let proxy = FaultProxy::start(&fake.url).expect("start the fault proxy");
    let kubeconfig = dir.path().join("proxied.kubeconfig");
    proxy.write_kubeconfig(&kubeconfig).unwrap();
    proxy.push(Rule::new(Some("GET"), "/configmaps/absent", Fault::Blackhole).times(MAX_IN_FLIGHT));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (one_more, seen) = rt.block_on(async {
        let cluster = raystack::cluster::connect(Some(&kubeconfig), None)
            .await
            .unwrap();
        let absent = ObjectRef::new(Kind::ConfigMap, Some("default"), "absent");
        let held: Vec<_> = (0..MAX_IN_FLIGHT)
            .map(|_| {
                let (cluster, absent) = (cluster.clone(), absent.clone());
                tokio::spawn(async move { cluster.get(&absent).await })
            })
            .collect();
        // Every held read has reached the proxy (bounded: 30 s).
        for _ in 0..3000 {
            if proxy.seen().len() >= MAX_IN_FLIGHT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            proxy.seen().len(),
            MAX_IN_FLIGHT,
            "the held reads did not all arrive"
        );
        let mut short = cluster.clone();
        short.deadline = Duration::from_secs(1);
        let one_more = short.get(&absent).await;
        let seen = proxy.seen().len();
        for read in held {
            read.abort();
        }
        (one_more, seen)
    });
    assert!(
        matches!(one_more, Err(ClusterError::Timeout { .. })),
        "one read more than {MAX_IN_FLIGHT} was not held back: {one_more:?}"
    );
    assert_eq!(
        seen, MAX_IN_FLIGHT,
        "one read more than {MAX_IN_FLIGHT} reached the server"
    );
}
