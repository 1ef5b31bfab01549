//! `raystack verify` end to end on real components: the real binary against fake-apiserver,
//! whose service proxy reaches a real Ray 2.60 head's dashboard and whose pod delete hooks
//! SIGKILL and restart the real processes the pods stand for — a Ray head and a redis-server
//! started from the `redis.conf` raystack rendered into the cluster, with the password raystack
//! generated into the Secret, and the RayCluster's UID as the GCS storage namespace (KubeRay's
//! default).
//!
//! - the drill passes with the append-only Redis of the default stack, disrupting both pods,
//!   then the head only (`--disrupt head`), then Redis only (`--disrupt redis`: Ray's GCS server
//!   exits when it loses Redis, and the harness restarts the head as the kubelet restarts a
//!   container);
//! - the same drill with the Redis data directory wiped by the hook fails, and the report names
//!   the lost job record and actor;
//! - a `backend = "embedded"` stack (no Redis; the head's GCS is Ray's RocksDB store on a storage
//!   path standing in for the volume KubeRay mounts) passes disrupting the head only, and fails
//!   naming the lost job record and actor when the hook wipes the storage path;
//! - an RDB-only Redis (`max_data_loss = "5m"`) killed before its first snapshot fails too, and
//!   the report blames RDB-only persistence.
//!
//! Assertions are on the JSON report. Needs Ray in `$RAYSTACK_RAY_VENV` (default
//! `<repo>/.venv`) and redis-server; missing is a failure, not a skip. Every wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ray_support::{Head, Ports, Redis, Store, Venv};
use crate::support::{self, CRD_1_7, Env, NAME, Run};
use serde_json::{Value, json};

/// What the fake's delete hooks do, played by this test process: it owns the processes.
struct Processes {
    venv: Venv,
    ports: Ports,
    redis: Mutex<Option<Redis>>,
    head: Mutex<Option<Head>>,
    /// `backend = "embedded"`: the head's GCS storage path (the volume KubeRay mounts on the
    /// head), where its RocksDB store lives; no Redis.
    storage: Option<PathBuf>,
    /// Wipe Redis's data directory on its next restart (a volume that was not retained).
    wipe_redis: AtomicBool,
    /// Wipe the embedded store's storage path on the head's next restart.
    wipe_storage: AtomicBool,
    /// Head pod deletes handled.
    head_restarts: AtomicU32,
    redis_restarts: AtomicU32,
    /// Times `ray start` exited on its own and was started again in the same pod, as the kubelet
    /// restarts a container (Ray's GCS server exits when it loses Redis).
    head_container_restarts: AtomicU32,
    stop: AtomicBool,
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
                if self.storage.is_none() {
                    // The Redis pod is deleted right after the head's: let its hook take the
                    // Redis lock first, so the new head never starts against the Redis about to
                    // be killed.
                    std::thread::sleep(Duration::from_secs(1));
                }
                let redis = lock(&self.redis);
                let mut head = lock(&self.head);
                let head = head.as_mut().expect("head");
                if let Some(path) = &self.storage
                    && self.wipe_storage.swap(false, Ordering::SeqCst)
                {
                    std::fs::remove_dir_all(path).unwrap();
                    std::fs::create_dir_all(path).unwrap();
                }
                retry_start(
                    head,
                    |h| h.restart_with(&self.venv, self.store(&redis), &self.ports),
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

impl Processes {
    /// Where the head keeps its GCS: the embedded store's path, else Redis.
    fn store<'a>(&'a self, redis: &'a Option<Redis>) -> Store<'a> {
        match &self.storage {
            Some(path) => Store::Embedded(path),
            None => Store::Redis(redis.as_ref().expect("redis started")),
        }
    }

    /// Plays the kubelet for the head's container: when `ray start` exits on its own, start it
    /// again in place (same ports, same store). Locks Redis before the head, as the hooks do.
    fn supervise(self: &Arc<Self>) {
        let procs = self.clone();
        std::thread::spawn(move || {
            while !procs.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(500));
                let redis = lock(&procs.redis);
                let mut head = lock(&procs.head);
                let Some(h) = head.as_mut() else { continue };
                if procs.stop.load(Ordering::SeqCst) || !h.exited() {
                    continue;
                }
                eprintln!("the head's `ray start` exited on its own; starting it again in place");
                let restarted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // Its agents may outlive it: clear the process group first.
                    h.sigkill();
                    retry_start(
                        h,
                        |h| h.restart_with(&procs.venv, procs.store(&redis), &procs.ports),
                        |h| h.sigkill(),
                    );
                }));
                match restarted {
                    Ok(()) => {
                        procs.head_container_restarts.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => procs
                        .failures
                        .lock()
                        .unwrap()
                        .push("the head could not be started again after it exited".into()),
                }
            }
        });
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
    /// The default (Redis) stack's drill.
    fn start(stack_toml: &str) -> Drill {
        Drill::launch(stack_toml, false)
    }

    /// A `backend = "embedded"` stack's drill: KubeRay 1.7's CRD, no Redis, and the head's GCS
    /// in Ray's RocksDB store on a storage path that outlives the head process (the volume).
    fn start_embedded(stack_toml: &str) -> Drill {
        Drill::launch(stack_toml, true)
    }

    fn launch(stack_toml: &str, embedded: bool) -> Drill {
        let venv = Venv::find();
        let ports = Ports::free();
        let hook_dir = tempfile::tempdir().unwrap();
        let storage = embedded.then(|| hook_dir.path().join("gcs-storage"));
        let procs = Arc::new(Processes {
            venv,
            ports,
            redis: Mutex::new(None),
            head: Mutex::new(None),
            storage,
            wipe_redis: AtomicBool::new(false),
            wipe_storage: AtomicBool::new(false),
            head_restarts: AtomicU32::new(0),
            redis_restarts: AtomicU32::new(0),
            head_container_restarts: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            failures: Mutex::new(Vec::new()),
        });
        let hook = write_hook(hook_dir.path(), serve_hooks(procs.clone()));
        let proxy = format!(
            "{NAME}/{NAME}-head-svc:8265=http://127.0.0.1:{}",
            procs.ports.dashboard
        );
        let head_hook = format!("ray.io/node-type=head:bash {hook} head");
        let redis_hook = format!("app.kubernetes.io/name=redis:bash {hook} redis");
        let flags = [
            "--service-proxy",
            &proxy,
            "--on-pod-delete",
            &head_hook,
            "--on-pod-delete",
            &redis_hook,
        ];
        let env = if embedded {
            Env::with_crd(CRD_1_7, &flags)
        } else {
            Env::new(&flags)
        };
        env.write_stack(stack_toml);
        env.apply();

        let rc = env
            .fake
            .get(&env.ns_path("rayclusters", NAME))
            .expect("the RayCluster exists");
        let storage_namespace = rc["metadata"]["uid"].as_str().unwrap().to_string();
        let root = env.dir.path().join("processes");
        std::fs::create_dir_all(&root).unwrap();
        let redis = (!embedded).then(|| {
            // Redis from the ConfigMap raystack applied, with the password it generated.
            let cm = env
                .fake
                .get(&env.ns_path("configmaps", &format!("{NAME}-redis-config")))
                .expect("the ConfigMap exists");
            let conf = cm["data"]["redis.conf"].as_str().unwrap().to_string();
            Redis::start(&conf, &root, &env.password())
        });
        if let Some(path) = &procs.storage {
            std::fs::create_dir_all(path).unwrap();
            // KubeRay created the store's claim (the fake's operator does, as 1.7 does).
            crate::verify_cli::assert_gcs_claim(&env);
        }
        let head = retry_start(
            &mut (),
            |_| {
                Head::start_with(
                    &procs.venv,
                    procs.store(&redis),
                    &procs.ports,
                    &root,
                    &storage_namespace,
                )
            },
            |_| {},
        );
        *procs.redis.lock().unwrap() = redis;
        *procs.head.lock().unwrap() = Some(head);
        procs.supervise();
        Drill {
            env,
            procs,
            _hook_dir: hook_dir,
        }
    }

    /// `raystack verify --yes --format json` plus `extra`; the report parsed.
    fn verify(&self, extra: &[&str]) -> (Run, Value) {
        let mut args = vec![
            "verify",
            self.env.stack_arg(),
            "--auto-approve",
            "--format",
            "json",
            "--timeout",
            "6m",
        ];
        args.extend_from_slice(extra);
        let r = self.env.run(&args);
        let failures = self.procs.failures.lock().unwrap().clone();
        assert!(
            failures.is_empty(),
            "a delete hook failed: {failures:?}\n{r}"
        );
        let report: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("verify printed no JSON report ({e}):\n{r}"));
        (r, report)
    }

    fn restarts(&self) -> (u32, u32, u32) {
        (
            self.procs.head_restarts.load(Ordering::SeqCst),
            self.procs.redis_restarts.load(Ordering::SeqCst),
            self.procs.head_container_restarts.load(Ordering::SeqCst),
        )
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

impl Drop for Drill {
    /// The hook listener and the supervisor hold the processes for good: stop them here.
    fn drop(&mut self) {
        self.procs.stop.store(true, Ordering::SeqCst);
        let redis = lock(&self.procs.redis).take();
        let head = lock(&self.procs.head).take();
        drop(head);
        drop(redis);
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
    for pod in v["pods_deleted"].as_array_mut().into_iter().flatten() {
        pod["uid"] = "[uid]".into();
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

/// The roles of the pods the report says were deleted, in order.
fn deleted_roles(report: &Value) -> Vec<String> {
    report["pods_deleted"]
        .as_array()
        .unwrap_or_else(|| panic!("pods_deleted in {report}"))
        .iter()
        .map(|p| p["role"].as_str().unwrap().to_string())
        .collect()
}

/// Which timings the report measured: (head, Redis, GCS answering), each a number or null.
fn measured(report: &Value) -> [bool; 3] {
    let t = &report["timings"];
    for key in [
        "head_ready_seconds",
        "redis_ready_seconds",
        "gcs_answering_seconds",
    ] {
        assert!(t[key].is_number() || t[key].is_null(), "{key}: {report}");
    }
    [
        t["head_ready_seconds"].is_number(),
        t["redis_ready_seconds"].is_number(),
        t["gcs_answering_seconds"].is_number(),
    ]
}

/// A passing run: both checks passed, nothing lost, cleanup ok, every step ok.
fn assert_passed(drill: &Drill, r: &Run, report: &Value) {
    assert_eq!(
        report["result"],
        "pass",
        "the drill should pass:\n{r}{}",
        drill.head_logs()
    );
    assert_eq!(r.code, 0, "{r}");
    let n = normalized(report);
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
}

/// One Redis-backed cluster, four drills: both pods, the head only, Redis only (all pass), then
/// both with Redis's data directory wiped (fails, naming what was lost).
#[test]
fn verify_on_a_real_ray_head_passes_for_both_head_and_redis_then_fails_when_the_redis_volume_comes_back_empty()
 {
    let drill = Drill::start(&support::stack_toml(&support::worker("cpu", 1), "", ""));

    // Both (the default).
    let (r, report) = drill.verify(&[]);
    assert_passed(&drill, &r, &report);
    assert_eq!(report["backend"], "redis");
    assert_eq!(report["disrupt"], "both");
    assert_eq!(report["notes"], json!([]));
    assert_eq!(deleted_roles(&report), ["head", "redis"], "{r}");
    assert_eq!(measured(&report), [true, true, true], "{r}");
    let (head, redis, _) = drill.restarts();
    assert_eq!((head, redis), (1, 1), "head and Redis pod deletes");

    // The head only: Redis is left alone, and no Redis timing is reported.
    let (r, report) = drill.verify(&["--disrupt", "head"]);
    assert_passed(&drill, &r, &report);
    assert_eq!(report["disrupt"], "head");
    assert_eq!(deleted_roles(&report), ["head"], "{r}");
    assert_eq!(measured(&report), [true, false, true], "{r}");
    let (head, redis, _) = drill.restarts();
    assert_eq!((head, redis), (2, 1), "head and Redis pod deletes");
    let container_restarts = drill.restarts().2;

    // Redis only: the head pod is not deleted, but Ray's GCS server exits when it loses Redis
    // and the head's container starts again (once) — the drill waits for the job API through it.
    let (r, report) = drill.verify(&["--disrupt", "redis"]);
    assert_passed(&drill, &r, &report);
    assert_eq!(report["disrupt"], "redis");
    assert_eq!(deleted_roles(&report), ["redis"], "{r}");
    assert_eq!(measured(&report), [false, true, true], "{r}");
    assert_eq!(
        drill.restarts(),
        (2, 2, container_restarts + 1),
        "head pod deletes, Redis pod deletes, head container restarts"
    );

    // The same drill, with the hook wiping Redis's data directory before it restarts.
    drill.procs.wipe_redis.store(true, Ordering::SeqCst);
    let (r, report) = drill.verify(&[]);
    assert_eq!(report["result"], "fail", "{r}");
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(drill.restarts().1, 3);
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

/// `backend = "embedded"`: no Redis, so the default drill disrupts the head only and says so;
/// the head's RocksDB store on its storage path brings the job record and the actor back. With
/// the path wiped by the hook (a store that was not on a retained volume), both are lost.
#[test]
fn verify_on_an_embedded_stack_disrupts_the_head_only_then_fails_when_the_storage_path_is_wiped() {
    let drill = Drill::start_embedded(&crate::kuberay::embedded_stack(""));

    let (r, report) = drill.verify(&[]);
    assert_passed(&drill, &r, &report);
    assert_eq!(drill.restarts(), (1, 0, 0));
    insta::assert_json_snapshot!("verify_embedded_pass", normalized(&report));

    drill.procs.wipe_storage.store(true, Ordering::SeqCst);
    let (r, report) = drill.verify(&[]);
    assert_eq!(report["result"], "fail", "{r}");
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(drill.restarts(), (2, 0, 0));
    let n = normalized(&report);
    assert_eq!(deleted_roles(&report), ["head"], "{r}");
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
    assert_eq!(
        n["likely_causes"],
        json!([format!(
            "the head came back without its GCS store although its claim `{NAME}-gcs-pvc` was kept: the storage \
             path was wiped or re-provisioned, or the store is not written to that volume (check that the \
             head pod mounts `{NAME}-gcs-pvc` at the GCS storage path)"
        )]),
        "{r}"
    );
    assert_eq!(n["cleanup"]["ok"], true, "{r}");
}

/// The text report in the README's "Verifying fault tolerance" section comes from this run:
/// `cargo test -p raystack --no-default-features --test e2e verify_drill::readme_text_report -- --ignored --nocapture`.
#[test]
#[ignore = "prints a real text report for the README; run by hand"]
fn readme_text_report() {
    let drill = Drill::start(&support::stack_toml(&support::worker("cpu", 1), "", ""));
    let r = drill.env.run(&[
        "verify",
        drill.env.stack_arg(),
        "--auto-approve",
        "--timeout",
        "6m",
    ]);
    assert_eq!(r.code, 0, "{r}{}", drill.head_logs());
    println!("---- raystack verify (text)\n{}---- end", r.stdout);
}

#[test]
fn verify_fails_with_rdb_only_persistence_and_says_why() {
    let toml = support::stack_toml(&support::worker("cpu", 1), "", "")
        .replace("max_data_loss = \"2s\"", "max_data_loss = \"5m\"");
    assert!(toml.contains("\"5m\""));
    let drill = Drill::start(&toml);
    let (r, report) = drill.verify(&[]);
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
