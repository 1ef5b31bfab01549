//! `raystack verify` end to end on real components: the real binary against fake-apiserver,
//! whose service proxy reaches a real Ray 2.60 head's dashboard and whose pod delete hooks
//! SIGKILL and restart the real processes the pods stand for — a Ray head and a redis-server
//! started from the `redis.conf` raystack rendered into the cluster, with the password raystack
//! generated into the Secret, and the RayCluster's UID as the GCS storage namespace (KubeRay's
//! default).
//!
//! - the drill passes with the append-only Redis of the default stack;
//! - the same drill with the Redis data directory wiped by the hook fails, and the report names
//!   the lost job record and actor;
//! - an RDB-only Redis (`max_data_loss = "5m"`) killed before its first snapshot fails too, and
//!   the report blames RDB-only persistence.
//!
//! Assertions are on the JSON report. Needs Ray in `$RAYSTACK_RAY_VENV` (default
//! `<repo>/.venv`) and redis-server; missing is a failure, not a skip. Every wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ray_support::{Head, Ports, Redis, Venv};
use crate::support::{self, Env, NAME, Run};
use serde_json::{Value, json};

/// What the fake's delete hooks do, played by this test process: it owns the processes.
struct Processes {
    venv: Venv,
    ports: Ports,
    redis: Mutex<Option<Redis>>,
    head: Mutex<Option<Head>>,
    /// Wipe Redis's data directory on its next restart (a volume that was not retained).
    wipe_redis: AtomicBool,
    head_restarts: AtomicU32,
    redis_restarts: AtomicU32,
    failures: Mutex<Vec<String>>,
}

impl Processes {
    /// One hook call: `head` or `redis`. Answers `ok` once the process is back and ready.
    fn handle(&self, what: &str) -> Result<(), String> {
        let run = || match what {
            "redis" => {
                let mut redis = lock(&self.redis);
                let r = redis.as_mut().expect("redis started");
                r.sigkill();
                if self.wipe_redis.swap(false, Ordering::SeqCst) {
                    r.wipe_data();
                }
                r.restart();
                self.redis_restarts.fetch_add(1, Ordering::SeqCst);
            }
            "head" => {
                lock(&self.head).as_mut().expect("head").sigkill();
                // The Redis pod is deleted right after the head's: let its hook take the Redis
                // lock first, so the new head never starts against the Redis about to be killed.
                std::thread::sleep(Duration::from_secs(1));
                let redis = lock(&self.redis);
                let mut head = lock(&self.head);
                let head = head.as_mut().expect("head");
                retry_start(
                    head,
                    |h| h.restart(&self.venv, redis.as_ref().expect("redis"), &self.ports),
                    |h| h.sigkill(),
                );
                self.head_restarts.fetch_add(1, Ordering::SeqCst);
            }
            other => panic!("unknown hook {other:?}"),
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into())
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the head, again after a failed start, at most three times in all — as the kubelet
/// restarts a container that failed: on a loaded two-core machine `ray start` can give up
/// waiting for its raylet (it allows 30 s).
fn retry_start<S, T>(
    state: &mut S,
    mut start: impl FnMut(&mut S) -> T,
    mut reset: impl FnMut(&mut S),
) -> T {
    let mut attempt = 1;
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| start(state))) {
            Ok(v) => return v,
            Err(e) if attempt >= 3 => std::panic::resume_unwind(e),
            Err(_) => {
                reset(state);
                attempt += 1;
            }
        }
    }
}

/// Listens for the hook script (`bash hook.sh head|redis`) on a loopback port.
fn serve_hooks(procs: Arc<Processes>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let procs = procs.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let what = line
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let answer = match procs.handle(&what) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => {
                        procs.failures.lock().unwrap().push(format!("{what}: {e}"));
                        "fail".to_string()
                    }
                };
                let mut stream = stream;
                let _ = writeln!(stream, "{answer}");
            });
        }
    });
    port
}

/// The hook the fake runs on a pod delete: tell this test which process to restart and wait
/// for it to be ready (bounded), exit 0 on `ok`.
fn write_hook(dir: &Path, port: u16) -> String {
    let path = dir.join("hook.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/{port} || exit 1\necho \"$1 $POD_NAME\" >&3\n\
             read -r -t 600 answer <&3\n[ \"$answer\" = ok ]\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// A fake cluster whose head Service proxies to a real Ray head, with the stack applied and
/// Redis and the head running as the cluster's objects say.
struct Drill {
    env: Env,
    procs: Arc<Processes>,
    _hook_dir: tempfile::TempDir,
}

impl Drill {
    fn start(stack_toml: &str) -> Drill {
        let venv = Venv::find();
        let ports = Ports::free();
        let procs = Arc::new(Processes {
            venv,
            ports,
            redis: Mutex::new(None),
            head: Mutex::new(None),
            wipe_redis: AtomicBool::new(false),
            head_restarts: AtomicU32::new(0),
            redis_restarts: AtomicU32::new(0),
            failures: Mutex::new(Vec::new()),
        });
        let hook_dir = tempfile::tempdir().unwrap();
        let hook = write_hook(hook_dir.path(), serve_hooks(procs.clone()));
        let proxy = format!(
            "{NAME}/{NAME}-head-svc:8265=http://127.0.0.1:{}",
            procs.ports.dashboard
        );
        let head_hook = format!("ray.io/node-type=head:bash {hook} head");
        let redis_hook = format!("app.kubernetes.io/name=redis:bash {hook} redis");
        let env = Env::new(&[
            "--service-proxy",
            &proxy,
            "--on-pod-delete",
            &head_hook,
            "--on-pod-delete",
            &redis_hook,
        ]);
        env.write_stack(stack_toml);
        env.apply();

        // Redis from the ConfigMap raystack applied, with the password it generated.
        let cm = env
            .fake
            .get(&env.ns_path("configmaps", &format!("{NAME}-redis-config")))
            .expect("the ConfigMap exists");
        let conf = cm["data"]["redis.conf"].as_str().unwrap().to_string();
        let rc = env
            .fake
            .get(&env.ns_path("rayclusters", NAME))
            .expect("the RayCluster exists");
        let storage_namespace = rc["metadata"]["uid"].as_str().unwrap().to_string();
        let root = env.dir.path().join("processes");
        std::fs::create_dir_all(&root).unwrap();
        let redis = Redis::start(&conf, &root, &env.password());
        let head = retry_start(
            &mut (),
            |_| Head::start(&procs.venv, &redis, &procs.ports, &root, &storage_namespace),
            |_| {},
        );
        *procs.redis.lock().unwrap() = Some(redis);
        *procs.head.lock().unwrap() = Some(head);
        Drill {
            env,
            procs,
            _hook_dir: hook_dir,
        }
    }

    fn verify(&self) -> (Run, Value) {
        let r = self.env.run(&[
            "verify",
            self.env.stack_arg(),
            "--yes",
            "--format",
            "json",
            "--timeout",
            "6m",
        ]);
        let failures = self.procs.failures.lock().unwrap().clone();
        assert!(
            failures.is_empty(),
            "a delete hook failed: {failures:?}\n{r}"
        );
        let report: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("verify printed no JSON report ({e}):\n{r}"));
        (r, report)
    }

    fn head_logs(&self) -> String {
        self.procs
            .head
            .lock()
            .unwrap()
            .as_ref()
            .map(|h| h.logs())
            .unwrap_or_default()
    }
}

/// The report with everything that differs between runs replaced: timings, the probe's run id,
/// pod names and UIDs.
fn normalized(report: &Value) -> Value {
    let mut v = report.clone();
    for key in [
        "head_ready_seconds",
        "redis_ready_seconds",
        "gcs_answering_seconds",
        "total_seconds",
    ] {
        if v["timings"][key].is_number() {
            v["timings"][key] = "[seconds]".into();
        }
    }
    for step in v["steps"].as_array_mut().into_iter().flatten() {
        step["seconds"] = "[seconds]".into();
    }
    let text = serde_json::to_string(&v).unwrap();
    let text = replace_run_ids(&text);
    let text = replace_after(&text, &format!("{NAME}-head-"), 5, "[pod]");
    let text = replace_after(&text, "uid ", 36, "[uid]");
    let text = replace_seconds(&text);
    serde_json::from_str(&text).unwrap()
}

/// `raystack-verify-<8 hex>` → `raystack-verify-[run]`.
fn replace_run_ids(s: &str) -> String {
    replace_after(s, "raystack-verify-", 8, "[run]")
}

/// Replaces the `len` characters after each `prefix` with `with`.
fn replace_after(s: &str, prefix: &str, len: usize, with: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i + prefix.len()]);
        let after = &rest[i + prefix.len()..];
        let token: String = after.chars().take(len).collect();
        if token.len() == len && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            out.push_str(with);
            rest = &after[len..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// "after 12.3s" → "after [n]s" in progress-like details.
fn replace_seconds(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("after ") {
        out.push_str(&rest[..i + 6]);
        let after = &rest[i + 6..];
        let n = after
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .count();
        if n > 0 && after[n..].starts_with('s') {
            out.push_str("[n]");
            rest = &after[n..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn verify_passes_on_a_real_ray_head_then_fails_when_the_redis_volume_comes_back_empty() {
    let drill = Drill::start(&support::stack_toml(&support::worker("cpu", 1), "", ""));

    let (r, report) = drill.verify();
    assert_eq!(
        report["result"],
        "pass",
        "the drill should pass on an append-only Redis:\n{r}{}",
        drill.head_logs()
    );
    assert_eq!(r.code, 0, "{r}");
    for key in [
        "head_ready_seconds",
        "redis_ready_seconds",
        "gcs_answering_seconds",
    ] {
        assert!(
            report["timings"][key].is_number(),
            "{key} measured: {report}"
        );
    }
    assert_eq!(drill.procs.head_restarts.load(Ordering::SeqCst), 1);
    assert_eq!(drill.procs.redis_restarts.load(Ordering::SeqCst), 1);
    let n = normalized(&report);
    assert_eq!(
        n["checks"],
        json!([
            {"check": "probe job record survived", "passed": true, "expected": "SUCCEEDED", "observed": "SUCCEEDED"},
            {"check": "detached actor survived with its token", "passed": true, "expected": "alive, same token", "observed": "alive, same token"}
        ]),
        "{r}"
    );
    assert_eq!(n["lost"], json!([]));
    assert_eq!(n["likely_causes"], json!([]));
    assert_eq!(n["cleanup"]["ok"], true, "{r}");
    let steps: Vec<(&str, &str)> = n["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("record", "ok"),
            ("disrupt", "ok"),
            ("recover", "ok"),
            ("check", "ok"),
            ("cleanup", "ok")
        ]
    );

    // The same drill, with the hook wiping Redis's data directory before it restarts.
    drill.procs.wipe_redis.store(true, Ordering::SeqCst);
    let (r, report) = drill.verify();
    assert_eq!(report["result"], "fail", "{r}");
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(drill.procs.redis_restarts.load(Ordering::SeqCst), 2);
    let n = normalized(&report);
    assert_eq!(
        n["lost"],
        json!([
            "job record `raystack-verify-[run]-record`",
            "detached actor `raystack-verify-[run]` (Ray namespace `raystack-verify`)"
        ]),
        "{r}"
    );
    assert_eq!(n["checks"][0]["observed"], "missing", "{r}");
    assert_eq!(n["checks"][1]["passed"], false, "{r}");
    let cause = n["likely_causes"][0].as_str().unwrap_or_default();
    assert!(
        cause.starts_with("Redis came back without the GCS data") && cause.contains("not retained"),
        "the cause names the volume: {r}"
    );
    assert_eq!(n["cleanup"]["ok"], true, "{r}");
}

#[test]
fn verify_fails_with_rdb_only_persistence_and_says_why() {
    let toml = support::stack_toml(&support::worker("cpu", 1), "", "")
        .replace("max_data_loss = \"1s\"", "max_data_loss = \"5m\"");
    assert!(toml.contains("\"5m\""));
    let drill = Drill::start(&toml);
    let (r, report) = drill.verify();
    assert_eq!(report["result"], "fail", "{r}");
    assert_eq!(r.code, 1, "{r}");
    let n = normalized(&report);
    assert!(
        n["preflight"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "durability"
                && f["level"] == "warning"
                && f["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("Redis persists by RDB snapshots only")),
        "preflight warns before disrupting: {r}"
    );
    assert_eq!(
        n["lost"],
        json!([
            "job record `raystack-verify-[run]-record`",
            "detached actor `raystack-verify-[run]` (Ray namespace `raystack-verify`)"
        ]),
        "{r}"
    );
    let cause = n["likely_causes"][0].as_str().unwrap_or_default();
    assert!(
        cause.starts_with("RDB-only persistence (appendonly no)"),
        "{r}"
    );
}
