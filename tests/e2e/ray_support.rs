//! Real Ray and Redis processes for the failover tests: the Ray virtualenv, a redis-server
//! started the way the StatefulSet starts it (from a rendered `redis.conf`), and a Ray head
//! (`ray start --head --block`) in its own process group, each SIGKILLable and restartable on
//! the same ports, data directory and GCS storage namespace. Loopback only.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::render_support as support;

pub const RAY_VERSION: &str = "2.60.0";

/// Generous: a head starting on a loaded two-core machine is slow.
const HEAD_START_TIMEOUT: Duration = Duration::from_secs(180);

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv holding Ray.
pub struct Venv {
    bin: PathBuf,
}

impl Venv {
    pub fn find() -> Venv {
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
    pub fn ray(&self) -> PathBuf {
        self.bin.join("ray")
    }
    pub fn python(&self) -> PathBuf {
        self.bin.join("python")
    }
    /// The environment every Ray process of the drill gets, the head's and the probe's.
    pub fn env(&self) -> Vec<(String, String)> {
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

/// redis-server started the way the StatefulSet starts it, on a loopback port.
pub struct Redis {
    child: Option<Child>,
    conf: PathBuf,
    data: PathBuf,
    log: PathBuf,
    pub port: u16,
    pub password: String,
}

impl Redis {
    pub fn start(rendered: &str, root: &Path, password: &str) -> Redis {
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

    pub fn connect(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
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
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same server again: same config, data directory, port and password.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after sigkill");
        self.spawn();
    }

    /// Deletes everything Redis persisted (the AOF directory, any RDB file).
    pub fn wipe_data(&self) {
        assert!(self.child.is_none(), "wipe a stopped server");
        std::fs::remove_dir_all(&self.data).unwrap();
        std::fs::create_dir_all(&self.data).unwrap();
    }

    /// The keys Ray wrote under the storage namespace (`RAY<namespace>@<TABLE>`).
    pub fn gcs_keys(&self, namespace: &str) -> Vec<String> {
        let mut con = self.connect(Duration::from_secs(5)).unwrap();
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("RAY{namespace}@*"))
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

/// The head's ports, fixed for the whole drill (as a Kubernetes Service keeps them), from
/// `free_port`: below the kernel's ephemeral range, away from Ray's default worker ports.
pub struct Ports {
    pub gcs: u16,
    pub dashboard: u16,
    others: Vec<(&'static str, u16)>,
}

impl Ports {
    pub fn free() -> Ports {
        // Never two the same, and none the kernel gives a later `bind(0)` (see `free_port`).
        let p: Vec<u16> = (0..9).map(|_| support::free_port()).collect();
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

/// Where a head keeps its GCS.
#[derive(Clone, Copy)]
pub enum Store<'a> {
    /// An external Redis (`RAY_REDIS_ADDRESS`, `--redis-password`).
    Redis(&'a Redis),
    /// Ray's embedded RocksDB store in this directory (`RAY_gcs_storage=rocksdb`).
    Embedded(&'a Path),
}

/// A `ray start --head --block` in its own process group, and every process it starts.
pub struct Head {
    child: Option<Child>,
    temp: PathBuf,
    log: PathBuf,
    pub gcs: String,
    pub dashboard: String,
    dashboard_port: u16,
    /// `RAY_external_storage_namespace`: the prefix of every GCS key in Redis; a restarted
    /// head must use the same one to find its state.
    storage_namespace: String,
    starts: u32,
}

impl Head {
    pub fn start(
        venv: &Venv,
        redis: &Redis,
        ports: &Ports,
        root: &Path,
        storage_namespace: &str,
    ) -> Head {
        Head::start_with(venv, Store::Redis(redis), ports, root, storage_namespace)
    }

    /// A head keeping its GCS in `store`.
    pub fn start_with(
        venv: &Venv,
        store: Store,
        ports: &Ports,
        root: &Path,
        storage_namespace: &str,
    ) -> Head {
        let temp = root.join("ray");
        std::fs::create_dir_all(&temp).unwrap();
        let mut head = Head {
            child: None,
            temp,
            log: root.join("ray-head.log"),
            gcs: format!("127.0.0.1:{}", ports.gcs),
            dashboard: format!("http://127.0.0.1:{}", ports.dashboard),
            dashboard_port: ports.dashboard,
            storage_namespace: storage_namespace.to_string(),
            starts: 0,
        };
        head.spawn(venv, store, ports);
        head
    }

    /// Starts the head and waits until it serves; a start that dies on the way is started again,
    /// three starts at most, as a kubelet restarts a container: on a loaded two-core machine
    /// `ray start` gives up when its raylet has not registered within 30 s (fixed in Ray 2.60).
    fn spawn(&mut self, venv: &Venv, store: Store, ports: &Ports) {
        for attempt in 1..=3 {
            self.spawn_once(venv, store, ports);
            match self.wait_ready() {
                Ok(()) => return,
                Err(why) if attempt < 3 => {
                    eprintln!("{why}; starting the head again");
                    self.sigkill();
                }
                Err(why) => panic!("{why}{}", self.logs()),
            }
        }
    }

    fn spawn_once(&mut self, venv: &Venv, store: Store, ports: &Ports) {
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
            // Neither takes part in the GCS's fault tolerance, and each is one more Python
            // process starting on two shared cores: the autoscaler's monitor (KubeRay's head
            // runs without it too when its autoscaler sidecar is on) and the log monitor, which
            // streams worker logs to drivers (the probes print only from their drivers).
            .args(["--no-monitor", "--include-log-monitor", "false"])
            .arg("--temp-dir")
            .arg(&self.temp);
        for (flag, port) in &ports.others {
            cmd.args([*flag, &port.to_string()]);
        }
        match store {
            Store::Redis(redis) => {
                cmd.args(["--redis-password", &redis.password])
                    .env("RAY_REDIS_ADDRESS", format!("127.0.0.1:{}", redis.port));
            }
            // Ray's embedded GCS store (what KubeRay 1.7's `backend: rocksdb` sets on the head).
            Store::Embedded(path) => {
                cmd.env("RAY_gcs_storage", "rocksdb")
                    .env("RAY_gcs_storage_path", path);
            }
        }
        cmd.envs(venv.env())
            .env("RAY_external_storage_namespace", &self.storage_namespace)
            .env_remove("RAY_ADDRESS")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group: the drill kills the whole head with one signal.
            .process_group(0);
        self.child = Some(cmd.spawn().expect("failed to run ray start"));
    }

    /// Until `ray start` has finished starting the node (it says it will now block) and the
    /// dashboard's job API answers, which needs the GCS up and the job module loaded. Err when
    /// `ray start` exited first.
    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let marker = format!("==== raystack drill: head start #{}\n", self.starts);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!(
                    "ray start --head exited with {status} (start #{})",
                    self.starts
                ));
            }
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let this_start = log.rsplit_once(&marker).map_or("", |(_, rest)| rest);
            if this_start.contains("will now block") && http_ok(self.dashboard_port, "/api/jobs/") {
                eprintln!(
                    "head start #{} ready in {:.1}s",
                    self.starts,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
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
    pub fn sigkill(&mut self) {
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

    /// Whether `ray start` exited on its own (it does when a critical process such as the GCS
    /// server dies); false after `sigkill`, which reaps it.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    pub fn restart(&mut self, venv: &Venv, redis: &Redis, ports: &Ports) {
        self.restart_with(venv, Store::Redis(redis), ports);
    }

    pub fn restart_with(&mut self, venv: &Venv, store: Store, ports: &Ports) {
        assert!(self.child.is_none(), "restart after sigkill");
        self.spawn(venv, store, ports);
    }

    /// The GCS server's log of the current session (empty when there is none yet).
    pub fn gcs_log(&self) -> String {
        std::fs::read_to_string(self.temp.join("session_latest/logs/gcs_server.out"))
            .unwrap_or_default()
    }

    /// The tail of `ray start`'s output and of the GCS, raylet and job-API logs, for failure
    /// messages.
    pub fn logs(&self) -> String {
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
pub struct Proc {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    state: char,
    cmd: String,
}

/// Every process, from /proc/<pid>/stat.
pub fn processes() -> Vec<Proc> {
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

pub fn descendants(procs: &[Proc], root: u32) -> HashSet<u32> {
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

pub fn is_alive(pid: u32) -> bool {
    processes().iter().any(|p| p.pid == pid && p.state != 'Z')
}

pub fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// The last `lines` lines of a log, without the periodic event-loop statistics the GCS and the
/// raylet print (indented blocks, `[state-dump]` lines).
pub fn tail(path: &Path, lines: usize) -> String {
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
pub fn http_ok(port: u16, path: &str) -> bool {
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
