//! The failover drill of docs/design.md §9 on real components: a real Ray head (Ray 2.60) whose GCS
//! lives in a real redis-server started with the `redis.conf` raystack renders for
//! `stacks/local.toml`.
//!
//! 1. Redis starts from the rendered ConfigMap's `redis.conf` (its `dir` and `port` rewritten,
//!    `--requirepass <random>` on the command line as the StatefulSet passes it); the head starts
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
//! Needs Ray in a virtualenv: `$RAYSTACK_RAY_VENV`, default `<repo>/.venv`, which `scripts/test`
//! creates (`pip install "ray[default]==2.60.0"`); and redis-server (see render_support).
//! Missing is a failure, not a skip. Everything listens on 127.0.0.1 only and lives in a temp dir.

use crate::render_support as support;

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const RAY_VERSION: &str = "2.60.0";
/// `RAY_external_storage_namespace`: the prefix of every GCS key in Redis; the restarted head
/// must use the same one to find its state.
const STORAGE_NAMESPACE: &str = "raystack-drill";
/// The Ray namespace the detached actor is named in.
const RAY_NAMESPACE: &str = "drill";
const JOB_ID: &str = "raystack-probe-job";
const ACTOR: &str = "raystack-probe-actor";

const HEAD_START_TIMEOUT: Duration = Duration::from_secs(90);
const PROBE_TIMEOUT: Duration = Duration::from_secs(150);
/// How long `check` keeps calling the actor while the restarted head brings it back.
const ACTOR_WAIT_SECS: &str = "90";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv holding Ray.
struct Venv {
    bin: PathBuf,
}

impl Venv {
    fn find() -> Venv {
        let dir = std::env::var_os("RAYSTACK_RAY_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".venv"));
        let bin = dir.join("bin");
        for exe in ["ray", "python"] {
            assert!(
                bin.join(exe).exists(),
                "{} not found: this test needs Ray {RAY_VERSION} in a virtualenv \
                 (scripts/test installs it: python3 -m venv .venv && \
                 .venv/bin/pip install \"ray[default]=={RAY_VERSION}\"), or set RAYSTACK_RAY_VENV",
                bin.join(exe).display()
            );
        }
        let venv = Venv { bin };
        let out = Command::new(venv.ray()).arg("--version").output().unwrap();
        let version = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && version.trim().ends_with(&format!("version {RAY_VERSION}")),
            "{} --version: expected Ray {RAY_VERSION}, got {:?} {}",
            venv.ray().display(),
            version.trim(),
            String::from_utf8_lossy(&out.stderr)
        );
        venv
    }
    fn ray(&self) -> PathBuf {
        self.bin.join("ray")
    }
    fn python(&self) -> PathBuf {
        self.bin.join("python")
    }
    /// The environment every Ray process of the drill gets, the head's and the probe's.
    fn env(&self) -> Vec<(String, String)> {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("PATH".into(), path),
            // Single-machine mode: the node's address is 127.0.0.1, not the first interface's.
            ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER".into(), "0".into()),
            ("RAY_USAGE_STATS_ENABLED".into(), "0".into()),
        ]
    }
}

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

/// redis-server started the way the StatefulSet starts it, on a loopback port.
struct Redis {
    child: Option<Child>,
    conf: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    password: String,
}

impl Redis {
    fn start(rendered: &str, root: &Path, password: &str) -> Redis {
        let port = support::free_port();
        let data = root.join("redis-data");
        std::fs::create_dir_all(&data).unwrap();
        let mut saw = (false, false);
        let text: String = rendered
            .lines()
            .map(|l| {
                if l == "dir /data" {
                    saw.0 = true;
                    format!("dir {}\n", data.display())
                } else if l.starts_with("port ") {
                    saw.1 = true;
                    format!("port {port}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(
            saw.0 && saw.1,
            "rendered redis.conf has `dir /data` and a `port` line:\n{rendered}"
        );
        let conf = root.join("redis.conf");
        std::fs::write(&conf, text).unwrap();
        let mut redis = Redis {
            child: None,
            conf,
            data,
            log: root.join("redis.log"),
            port,
            password: password.to_string(),
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let log = append(&self.log);
        let child = Command::new(support::redis_server_binary())
            .arg(&self.conf)
            .args(["--requirepass", &self.password])
            .args(["--bind", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("failed to start redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn connect(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
        let url = format!("redis://:{}@127.0.0.1:{}/", self.password, self.port);
        redis::Client::open(url)?.get_connection_with_timeout(timeout)
    }

    /// Until Redis answers PING with the password (not while it is still loading its files).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "redis-server exited early with {status}; log:\n{}",
                    tail(&self.log, 30)
                );
            }
            if let Ok(mut con) = self.connect(Duration::from_millis(300))
                && redis::cmd("PING")
                    .query::<String>(&mut con)
                    .is_ok_and(|s| s == "PONG")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} never became ready; log:\n{}",
                self.port,
                tail(&self.log, 30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown save, no final fsync.
    fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same server again: same config, data directory, port and password.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after sigkill");
        self.spawn();
    }

    /// Deletes everything Redis persisted (the AOF directory, any RDB file).
    fn wipe_data(&self) {
        assert!(self.child.is_none(), "wipe a stopped server");
        std::fs::remove_dir_all(&self.data).unwrap();
        std::fs::create_dir_all(&self.data).unwrap();
    }

    /// The keys Ray wrote under the storage namespace (`RAY<namespace>@<TABLE>`).
    fn gcs_keys(&self) -> Vec<String> {
        let mut con = self.connect(Duration::from_secs(5)).unwrap();
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("RAY{STORAGE_NAMESPACE}@*"))
            .query(&mut con)
            .unwrap();
        keys.sort();
        keys
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// The head's ports, fixed for the whole drill (as a Kubernetes Service keeps them), all from
/// the ephemeral range, away from Ray's default worker ports (10002–19999).
struct Ports {
    gcs: u16,
    dashboard: u16,
    others: Vec<(&'static str, u16)>,
}

impl Ports {
    fn free() -> Ports {
        // Hold every listener until all are chosen, so no two are the same.
        let listeners: Vec<TcpListener> = (0..9)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let p: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        Ports {
            gcs: p[0],
            dashboard: p[1],
            others: vec![
                ("--node-manager-port", p[2]),
                ("--object-manager-port", p[3]),
                ("--ray-client-server-port", p[4]),
                ("--dashboard-agent-listen-port", p[5]),
                ("--dashboard-agent-grpc-port", p[6]),
                ("--runtime-env-agent-port", p[7]),
                ("--metrics-export-port", p[8]),
            ],
        }
    }
}

/// A `ray start --head --block` in its own process group, and every process it starts.
struct Head {
    child: Option<Child>,
    temp: PathBuf,
    log: PathBuf,
    gcs: String,
    dashboard: String,
    dashboard_port: u16,
    starts: u32,
}

impl Head {
    fn start(venv: &Venv, redis: &Redis, ports: &Ports, root: &Path) -> Head {
        let temp = root.join("ray");
        std::fs::create_dir_all(&temp).unwrap();
        let mut head = Head {
            child: None,
            temp,
            log: root.join("ray-head.log"),
            gcs: format!("127.0.0.1:{}", ports.gcs),
            dashboard: format!("http://127.0.0.1:{}", ports.dashboard),
            dashboard_port: ports.dashboard,
            starts: 0,
        };
        head.spawn(venv, redis, ports);
        head
    }

    fn spawn(&mut self, venv: &Venv, redis: &Redis, ports: &Ports) {
        self.starts += 1;
        let mut log = append(&self.log);
        writeln!(log, "==== raystack drill: head start #{}", self.starts).unwrap();
        let mut cmd = Command::new(venv.ray());
        cmd.args(["start", "--head", "--block", "--disable-usage-stats"])
            .args(["--node-ip-address", "127.0.0.1"])
            .args(["--port", &ports.gcs.to_string()])
            .args(["--dashboard-host", "127.0.0.1"])
            .args(["--dashboard-port", &ports.dashboard.to_string()])
            .args(["--num-cpus", "1"])
            .arg("--temp-dir")
            .arg(&self.temp)
            .args(["--redis-password", &redis.password]);
        for (flag, port) in &ports.others {
            cmd.args([*flag, &port.to_string()]);
        }
        cmd.envs(venv.env())
            .env("RAY_REDIS_ADDRESS", format!("127.0.0.1:{}", redis.port))
            .env("RAY_external_storage_namespace", STORAGE_NAMESPACE)
            .env_remove("RAY_ADDRESS")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group: the drill kills the whole head with one signal.
            .process_group(0);
        self.child = Some(cmd.spawn().expect("failed to run ray start"));
        self.wait_ready();
    }

    /// Until the dashboard's job API answers, which needs the GCS up and the job module loaded.
    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "ray start --head exited with {status} (start #{}){}",
                    self.starts,
                    self.logs()
                );
            }
            if http_ok(self.dashboard_port, "/api/jobs/") {
                eprintln!(
                    "head start #{} ready in {:.1}s",
                    self.starts,
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            if started.elapsed() > HEAD_START_TIMEOUT {
                panic!(
                    "the Ray head (start #{}) did not serve {}/api/jobs/ within {HEAD_START_TIMEOUT:?}{}",
                    self.starts,
                    self.dashboard,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGKILLs `ray start`, everything in its process group (gcs_server, raylet, dashboard,
    /// agents) and every descendant that left the group (workers, the detached actor's among
    /// them), then waits until none of them is left.
    fn sigkill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = child.id();
        let procs = processes();
        let mut targets: HashSet<u32> = descendants(&procs, pgid);
        targets.extend(procs.iter().filter(|p| p.pgrp == pgid).map(|p| p.pid));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut args = vec!["-9".to_string(), "--".to_string(), format!("-{pgid}")];
            args.extend(targets.iter().map(|p| p.to_string()));
            // Some are already gone: a non-zero status is expected.
            let _ = Command::new("kill")
                .args(&args)
                .stderr(Stdio::null())
                .status();
            let _ = child.try_wait();
            let procs = processes();
            let left: Vec<&Proc> = procs
                .iter()
                .filter(|p| p.state != 'Z' && (p.pgrp == pgid || targets.contains(&p.pid)))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Ray head processes survived SIGKILL: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.wait();
    }

    fn restart(&mut self, venv: &Venv, redis: &Redis, ports: &Ports) {
        assert!(self.child.is_none(), "restart after sigkill");
        self.spawn(venv, redis, ports);
    }

    /// The tail of `ray start`'s output and of the GCS, raylet and job-API logs, for failure
    /// messages.
    fn logs(&self) -> String {
        let mut s = format!(
            "\n--- {} (tail)\n{}",
            self.log.display(),
            tail(&self.log, 40)
        );
        let logs = self.temp.join("session_latest/logs");
        for name in [
            "gcs_server.out",
            "gcs_server.err",
            "raylet.out",
            "raylet.err",
            "dashboard_JobHead.log",
        ] {
            let path = logs.join(name);
            if path.exists() {
                s.push_str(&format!(
                    "\n--- {} (tail)\n{}",
                    path.display(),
                    tail(&path, 20)
                ));
            }
        }
        s
    }
}

impl Drop for Head {
    fn drop(&mut self) {
        self.sigkill();
    }
}

#[derive(Debug)]
#[allow(dead_code)] // `cmd` is read through Debug, in the failure message
struct Proc {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    state: char,
    cmd: String,
}

/// Every process, from /proc/<pid>/stat.
fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if fields.len() < 3 {
            continue;
        }
        out.push(Proc {
            pid,
            state: fields[0].chars().next().unwrap_or('?'),
            ppid: fields[1].parse().unwrap_or(0),
            pgrp: fields[2].parse().unwrap_or(0),
            cmd: stat[open + 1..close].to_string(),
        });
    }
    out
}

fn descendants(procs: &[Proc], root: u32) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut found = HashSet::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for &c in children.get(&pid).into_iter().flatten() {
            if found.insert(c) {
                stack.push(c);
            }
        }
    }
    found
}

fn is_alive(pid: u32) -> bool {
    processes().iter().any(|p| p.pid == pid && p.state != 'Z')
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// The last `lines` lines of a log, without the periodic event-loop statistics the GCS and the
/// raylet print (indented blocks, `[state-dump]` lines).
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text
        .lines()
        .filter(|l| {
            !(l.trim().is_empty()
                || l.starts_with('\t')
                || l.starts_with("[state-dump]")
                || l.ends_with(" stats:"))
        })
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A plain HTTP/1.0 GET on 127.0.0.1: true on a 200.
fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut status = [0u8; 12];
    s.read_exact(&mut status).is_ok() && status.starts_with(b"HTTP/1.") && status.ends_with(b" 200")
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
    let mut head = Head::start(&venv, &redis, &ports, root);

    // 2. GCS state: a finished job and a named detached actor that may restart forever.
    let token = uuid::Uuid::new_v4().simple().to_string();
    let recorded = probe(&venv, &head, root, &["record", "--token", &token]);
    assert_eq!(recorded["job_status"], "SUCCEEDED", "{recorded}");
    assert_eq!(recorded["actor"]["token"], token.as_str(), "{recorded}");
    let first_actor_pid = recorded["actor"]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("actor pid in {recorded}")) as u32;
    let keys = redis.gcs_keys();
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
    assert_eq!(
        after["job_status"],
        "SUCCEEDED",
        "the job record did not survive the failover: {after}{}",
        head.logs()
    );
    assert_eq!(
        after["actor"]["token"],
        token.as_str(),
        "the detached actor did not come back: {after}{}",
        head.logs()
    );
    assert_ne!(
        after["actor"]["pid"].as_u64(),
        Some(first_actor_pid as u64),
        "the actor answering is a new process restarted by the new head: {after}"
    );
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
    assert_eq!(
        wiped["job_status"],
        Value::Null,
        "with Redis wiped the job record must be gone, or the check above proves nothing: {wiped}"
    );
    assert!(
        wiped["actor_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("not found")),
        "with Redis wiped the actor must be unknown: {wiped}"
    );
    head.sigkill();
    redis.sigkill();
    eprintln!("drill done in {:.1}s", drill.elapsed().as_secs_f64());
}
