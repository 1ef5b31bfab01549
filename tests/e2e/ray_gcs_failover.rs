//! The failover drill of docs/design.md §9 on real components: a real Ray head (Ray 2.60) whose GCS
//! lives in a real redis-server started with the `redis.conf` raystack renders for
//! `stacks/local.toml`.
//!
//! 1. Redis starts from the rendered ConfigMap's `redis.conf` (its `dir` and `port` rewritten,
//!    `--requirepass <random>` on the command line for brevity); the head starts
//!    with `RAY_REDIS_ADDRESS`, `--redis-password` and a fixed `RAY_external_storage_namespace`.
//! 2. A probe job runs to SUCCEEDED and a named detached actor (`max_restarts=-1`) is created;
//!    the GCS tables are then seen in Redis under the namespace.
//! 3. Redis and every process of the head (gcs_server, raylet, dashboard, workers) are SIGKILLed,
//!    then both are started again from the same data directory, ports and namespace.
//! 4. The job record is back with status SUCCEEDED, and the actor answers by name: a new process
//!    (the old one was killed) built from the creation arguments the GCS kept.
//! 5. Control: the same kill and restart with Redis's data directory wiped finds neither the job
//!    nor the actor, so step 4 depends on what Redis persisted, not on anything the head kept on
//!    its own disk.
//!
//! The same drill runs for `[durability] backend = "embedded"` (KubeRay 1.7's RocksDB GCS store):
//! a head with `RAY_gcs_storage=rocksdb` and a storage path (the PVC's mount in the cluster) is
//! SIGKILLed and started again on the same path, and the job record and actor are back; with the
//! path wiped, both are gone.
//!
//! Needs Ray in a virtualenv: `$RAYSTACK_RAY_VENV`, default `<repo>/.venv`, which `scripts/test`
//! creates (`pip install "ray[default]==2.60.0"`); and redis-server (see render_support).
//! Missing is a failure, not a skip. Everything listens on 127.0.0.1 only and lives in a temp dir.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ray_support::{Head, Ports, Redis, Store, Venv, is_alive, repo, tail};

/// `RAY_external_storage_namespace` of the drill's head.
const STORAGE_NAMESPACE: &str = "raystack-drill";
/// The Ray namespace the detached actor is named in.
const RAY_NAMESPACE: &str = "drill";
const JOB_ID: &str = "raystack-probe-job";
const ACTOR: &str = "raystack-probe-actor";

const PROBE_TIMEOUT: Duration = Duration::from_secs(150);
/// How long `check` keeps calling the actor while the restarted head brings it back.
const ACTOR_WAIT_SECS: &str = "90";

/// The redis.conf raystack renders for `stacks/local.toml` (the ConfigMap's `redis.conf`).
fn rendered_local_conf() -> String {
    let path = repo().join("stacks/local.toml");
    let stack = raystack::stack::load(&path)
        .unwrap_or_else(|d| panic!("{} is invalid:\n{d}", path.display()));
    let rendered = raystack::render::render(&stack);
    let cm = rendered
        .objects
        .iter()
        .find(|o| o.kind() == "ConfigMap")
        .expect("a ConfigMap");
    cm.manifest["data"]["redis.conf"]
        .as_str()
        .expect("ConfigMap data redis.conf")
        .to_string()
}

/// Runs `tests/fixtures/ray/gcs_probe.py <args>` against the head and returns the JSON object
/// it prints last. A non-zero exit or a timeout fails the test with the probe's and the head's
/// output.
fn probe(venv: &Venv, head: &Head, root: &Path, args: &[&str]) -> Value {
    let script = repo().join("tests/fixtures/ray/gcs_probe.py");
    let out_path = root.join("probe.out");
    let err_path = root.join("probe.err");
    let mut child = Command::new(venv.python())
        .arg(&script)
        .args(args)
        .args(["--gcs", &head.gcs, "--dashboard", &head.dashboard])
        .args([
            "--namespace",
            RAY_NAMESPACE,
            "--job",
            JOB_ID,
            "--actor",
            ACTOR,
        ])
        .envs(venv.env())
        .env_remove("RAY_ADDRESS")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("failed to run the probe script");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > PROBE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "gcs_probe.py {args:?} did not finish within {PROBE_TIMEOUT:?}\n--- stderr\n{}{}",
                tail(&err_path, 30),
                head.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        status.success(),
        "gcs_probe.py {args:?} failed with {status}\n--- stdout\n{stdout}\n--- stderr\n{}{}",
        tail(&err_path, 30),
        head.logs()
    );
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    let parsed = last.and_then(|l| serde_json::from_str::<Value>(l).ok());
    parsed.unwrap_or_else(|| {
        panic!(
            "gcs_probe.py {args:?} printed no JSON\n--- stdout\n{stdout}\n--- stderr\n{}",
            tail(&err_path, 30)
        )
    })
}

/// After the failover: the job record is SUCCEEDED and the actor answers with its token from a
/// new process (the old one died with the head), restarted by the new head.
fn assert_state_back(after: &Value, token: &str, first_actor_pid: u32, head: &Head) {
    assert_eq!(
        after["job_status"],
        "SUCCEEDED",
        "the job record did not survive the failover: {after}{}",
        head.logs()
    );
    assert_eq!(
        after["actor"]["token"],
        token,
        "the detached actor did not come back: {after}{}",
        head.logs()
    );
    assert_ne!(
        after["actor"]["pid"].as_u64(),
        Some(first_actor_pid as u64),
        "the actor answering is a new process restarted by the new head: {after}"
    );
}

/// The control run: with `wiped` gone, neither the job record nor the actor may be found, or the
/// survival check proves nothing.
fn assert_state_lost(check: &Value, wiped: &str) {
    assert_eq!(
        check["job_status"],
        Value::Null,
        "with {wiped} wiped the job record must be gone, or the check above proves nothing: {check}"
    );
    assert!(
        check["actor_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("not found")),
        "with {wiped} wiped the actor must be unknown: {check}"
    );
}

#[test]
fn ray_gcs_state_survives_sigkill_of_head_and_redis() {
    let drill = Instant::now();
    let venv = Venv::find();
    let root = tempfile::tempdir().unwrap();
    let root = root.path();

    // 1. Redis with the rendered config, and a head persisting its GCS there.
    let conf = rendered_local_conf();
    assert!(
        conf.lines().any(|l| l == "appendonly yes"),
        "stacks/local.toml renders an append-only Redis:\n{conf}"
    );
    let password = uuid::Uuid::new_v4().simple().to_string();
    let mut redis = Redis::start(&conf, root, &password);
    let ports = Ports::free();
    let mut head = Head::start(&venv, &redis, &ports, root, STORAGE_NAMESPACE);

    // 2. GCS state: a finished job and a named detached actor that may restart forever.
    let token = uuid::Uuid::new_v4().simple().to_string();
    let recorded = probe(&venv, &head, root, &["record", "--token", &token]);
    assert_eq!(recorded["job_status"], "SUCCEEDED", "{recorded}");
    assert_eq!(recorded["actor"]["token"], token.as_str(), "{recorded}");
    let first_actor_pid = recorded["actor"]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("actor pid in {recorded}")) as u32;
    let keys = redis.gcs_keys(STORAGE_NAMESPACE);
    for table in ["JOB", "ACTOR", "KV"] {
        let key = format!("RAY{STORAGE_NAMESPACE}@{table}");
        assert!(
            keys.contains(&key),
            "the head keeps its GCS in our Redis: no {key} among {keys:?}"
        );
    }
    eprintln!("recorded after {:.1}s", drill.elapsed().as_secs_f64());

    // 3. SIGKILL both, start both again from the same disk, ports and namespace.
    head.sigkill();
    redis.sigkill();
    assert!(
        !is_alive(first_actor_pid),
        "the actor's worker {first_actor_pid} outlived the head"
    );
    redis.restart();
    head.restart(&venv, &redis, &ports);

    // 4. The job record and the actor are back.
    let after = probe(&venv, &head, root, &["check", "--wait", ACTOR_WAIT_SECS]);
    assert_state_back(&after, &token, first_actor_pid, &head);
    eprintln!(
        "failover checked after {:.1}s",
        drill.elapsed().as_secs_f64()
    );

    // 5. Control: the same failover with Redis's data wiped loses both.
    head.sigkill();
    redis.sigkill();
    redis.wipe_data();
    redis.restart();
    head.restart(&venv, &redis, &ports);
    let wiped = probe(&venv, &head, root, &["check", "--wait", "5"]);
    assert_state_lost(&wiped, "Redis's data");
    head.sigkill();
    redis.sigkill();
    eprintln!("drill done in {:.1}s", drill.elapsed().as_secs_f64());
}

/// The RayCluster raystack renders for `stacks/embedded-rocksdb.toml` asks for the RocksDB GCS
/// store; the drill below runs a head the way that setting runs it.
fn embedded_backend_is_rendered() {
    let path = repo().join("stacks/embedded-rocksdb.toml");
    let stack = raystack::stack::load(&path)
        .unwrap_or_else(|d| panic!("{} is invalid:\n{d}", path.display()));
    let rendered = raystack::render::render(&stack);
    assert!(
        rendered.objects.iter().all(|o| o.kind() != "StatefulSet"),
        "an embedded stack renders no Redis"
    );
    let rc = rendered
        .objects
        .iter()
        .find(|o| o.kind() == "RayCluster")
        .expect("a RayCluster");
    assert_eq!(
        rc.manifest["spec"]["gcsFaultToleranceOptions"]["backend"], "rocksdb",
        "{}",
        rc.manifest
    );
}

#[test]
fn embedded_gcs_state_survives_sigkill_of_the_head() {
    embedded_backend_is_rendered();
    let drill = Instant::now();
    let venv = Venv::find();
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    // The storage path: in the cluster, the PVC KubeRay mounts on the head.
    let storage = root.join("gcs-storage");
    std::fs::create_dir_all(&storage).unwrap();
    let ports = Ports::free();
    let mut head = Head::start_with(
        &venv,
        Store::Embedded(&storage),
        &ports,
        root,
        STORAGE_NAMESPACE,
    );
    let gcs_log = head.gcs_log();
    assert!(
        gcs_log.contains("ROCKSDB"),
        "the GCS runs on its embedded RocksDB store{}",
        head.logs()
    );

    let token = uuid::Uuid::new_v4().simple().to_string();
    let recorded = probe(&venv, &head, root, &["record", "--token", &token]);
    assert_eq!(recorded["job_status"], "SUCCEEDED", "{recorded}");
    assert_eq!(recorded["actor"]["token"], token.as_str(), "{recorded}");
    let first_actor_pid = recorded["actor"]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("actor pid in {recorded}")) as u32;
    assert!(
        std::fs::read_dir(&storage).unwrap().next().is_some(),
        "the GCS wrote its store under {}",
        storage.display()
    );
    eprintln!("recorded after {:.1}s", drill.elapsed().as_secs_f64());

    // SIGKILL the whole head, start it again on the same storage path and ports.
    head.sigkill();
    assert!(
        !is_alive(first_actor_pid),
        "the actor's worker {first_actor_pid} outlived the head"
    );
    head.restart_with(&venv, Store::Embedded(&storage), &ports);
    let after = probe(&venv, &head, root, &["check", "--wait", ACTOR_WAIT_SECS]);
    assert_state_back(&after, &token, first_actor_pid, &head);

    // Control: the same restart with the storage path wiped loses both.
    head.sigkill();
    std::fs::remove_dir_all(&storage).unwrap();
    std::fs::create_dir_all(&storage).unwrap();
    head.restart_with(&venv, Store::Embedded(&storage), &ports);
    let wiped = probe(&venv, &head, root, &["check", "--wait", "5"]);
    assert_state_lost(&wiped, "the storage path");
    head.sigkill();
    eprintln!(
        "embedded drill done in {:.1}s",
        drill.elapsed().as_secs_f64()
    );
}
