//! Helpers shared by the render and Redis integration tests: the example stacks, and a real
//! `redis-server` started from a rendered `redis.conf`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use raystack::stack::Stack;

/// Every `stacks/*.toml`, sorted by file name, parsed. A stack that fails validation fails the
/// test with its diagnostics, so the examples can never rot.
pub fn examples() -> Vec<(String, Stack)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 10,
        "expected the example stacks in {}",
        dir.display()
    );
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let stack = raystack::render::load(&p)
                .unwrap_or_else(|d| panic!("{} is invalid:\n{d}", p.display()));
            (name, stack)
        })
        .collect()
}

/// `redis-server` from $REDIS_SERVER or /usr/bin/redis-server. Missing is a failure, not a
/// skip: CI installs it (`apt-get install -y redis-server`).
pub fn redis_server_binary() -> PathBuf {
    let path = std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/redis-server".into());
    assert!(
        path.exists(),
        "{} not found: these tests need a real Redis (apt-get install -y redis-server, or set REDIS_SERVER)",
        path.display()
    );
    path
}

/// A loopback port for a server a test starts later, by number (Redis, a Ray head's ports).
///
/// Not one the kernel hands out for `bind(0)`: a port taken that way and released is free for
/// the next `bind(0)` too, so a `fake-apiserver` started in between (or by a test running in
/// parallel) can get it, and the server the port was meant for then talks to the wrong process.
/// (A Ray raylet once sent its runtime-env requests to a fake API server that way.) The ports
/// come from below the kernel's ephemeral range (`ip_local_port_range`) and above Ray's default
/// worker ports (10002–19999), each handed out once per test process, and only if it binds now.
/// Test processes running side by side (`scripts/test` runs the real-Ray drills apart) never
/// get the same port: each holds a lock on `$TMPDIR/raystack-test-ports/PORT` for every port it
/// took, until it exits.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    const LOW: u32 = 20_000;
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
        .min(32_768);
    if high <= LOW + 100 {
        // No room below the ephemeral range: fall back to the kernel's choice.
        return TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
    }
    let locks = std::env::temp_dir().join("raystack-test-ports");
    std::fs::create_dir_all(&locks).unwrap();
    let span = high - LOW;
    // Different test processes (and reruns) start at different places in the range.
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % span) as u16;
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(locks.join(port.to_string()))
        else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // another test process has it
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("0.0.0.0", port)).is_ok()
        {
            HELD.lock().unwrap().push(file);
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{high}");
}

pub const PASSWORD: &str = "test-password-0123456789abcdef";

/// A redis-server started from the rendered `redis.conf` with the test password (here on the
/// command line, for brevity; the StatefulSet passes it through a config include, which
/// `redis_conf.rs` checks), in a temp dir (the rendered `dir /data` line rewritten)
/// on a free loopback port (`--port`, `--bind` on the command line).
pub struct RedisProcess {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub conf: PathBuf,
}

impl RedisProcess {
    pub fn start(conf_text: &str, dir: &Path) -> RedisProcess {
        // Redis changes into `dir` while reading the file, so `/data` must be rewritten in the
        // file itself (a `--dir` override would come too late).
        assert!(
            conf_text.lines().any(|l| l == "dir /data"),
            "rendered conf has `dir /data`"
        );
        let text: String = conf_text
            .lines()
            .map(|l| {
                if l == "dir /data" {
                    format!("dir {}\n", dir.display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let conf = dir.join("redis.conf");
        std::fs::write(&conf, text).unwrap();
        Self::start_with(conf, dir.to_path_buf(), free_port())
    }

    /// Takes over an already spawned server (e.g. one started by the rendered start script),
    /// waiting until it answers with [`PASSWORD`]. `restart` is not available for it.
    pub fn adopt(child: Child, port: u16, dir: PathBuf) -> RedisProcess {
        let mut p = RedisProcess {
            child,
            port,
            conf: dir.join("(adopted)"),
            dir,
        };
        p.wait_ready();
        p
    }

    fn start_with(conf: PathBuf, dir: PathBuf, port: u16) -> RedisProcess {
        let child = spawn(&conf, port);
        let mut p = RedisProcess {
            child,
            port,
            dir,
            conf,
        };
        p.wait_ready();
        p
    }

    /// Kills the server if it still runs, then starts it again with the same config, dir and port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.conf, self.port);
        self.wait_ready();
    }

    pub fn url(&self) -> String {
        format!("redis://:{PASSWORD}@127.0.0.1:{}/", self.port)
    }

    pub fn connect(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Waits until Redis answers PING with the password and has finished loading.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "redis-server exited early with {status}; conf:\n{}",
                    std::fs::read_to_string(&self.conf).unwrap_or_default()
                );
            }
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(200))
                && redis::cmd("PING")
                    .query::<String>(&mut con)
                    .is_ok_and(|s| s == "PONG")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} never became ready",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown save, no final fsync.
    pub fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn config_get(&self, con: &mut redis::Connection, key: &str) -> String {
        let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(key).query(con).unwrap();
        assert_eq!(v.len(), 2, "CONFIG GET {key} -> {v:?}");
        v[1].clone()
    }
}

fn spawn(conf: &Path, port: u16) -> Child {
    Command::new(redis_server_binary())
        .arg(conf)
        .args(["--requirepass", PASSWORD])
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("failed to start redis-server")
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port from `free_port` is never one the kernel could hand the next `bind(0)`: a
/// `fake-apiserver` started later (they bind port 0) cannot take a Ray head's or Redis's port.
#[test]
fn free_ports_are_outside_the_kernels_ephemeral_range_and_distinct() {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ports.len(), "{ports:?}");
    for p in &ports {
        assert!((20_000..low).contains(p), "port {p} is not in 20000..{low}");
    }
    // A port another process holds (here: its lock taken through another handle, as another
    // test process would hold it) is skipped.
    let next = ports.iter().max().unwrap() + 1;
    let other = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(
            std::env::temp_dir()
                .join("raystack-test-ports")
                .join(next.to_string()),
        )
        .unwrap();
    let held_elsewhere = other.try_lock().is_ok();
    let after = free_port();
    if held_elsewhere {
        assert_ne!(after, next, "a port locked elsewhere was handed out");
    }
    // Taken from the kernel now, for contrast: always in its range.
    let kernel = TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(kernel.local_addr().unwrap().port() >= low);
}

/// Debian's packaging of `redis_exporter` (the metrics sidecar's program), from
/// $REDIS_EXPORTER or /usr/bin/prometheus-redis-exporter. Missing is a failure, not a skip: CI
/// installs it (`apt-get install -y prometheus-redis-exporter`).
pub fn redis_exporter_binary() -> PathBuf {
    let path = std::env::var_os("REDIS_EXPORTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/prometheus-redis-exporter".into());
    assert!(
        path.exists(),
        "{} not found: these tests need the real exporter (apt-get install -y prometheus-redis-exporter, or set REDIS_EXPORTER)",
        path.display()
    );
    path
}

/// The rendered exporter sidecar run as a local process: the container's environment (the
/// Secret's password as `REDIS_PASSWORD`, `REDIS_ADDR` pointed at `redis_port`), listening on
/// a free loopback port instead of the container's 9121.
pub struct ExporterProcess {
    pub child: Child,
    pub port: u16,
}

impl ExporterProcess {
    pub fn start(container: &serde_json::Value, redis_port: u16) -> ExporterProcess {
        let port = free_port();
        let mut cmd = Command::new(redis_exporter_binary());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "REDIS_EXPORTER_WEB_LISTEN_ADDRESS",
                format!("127.0.0.1:{port}"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for e in container["env"].as_array().expect("the sidecar's env") {
            let name = e["name"].as_str().unwrap();
            if let Some(v) = e["value"].as_str() {
                cmd.env(name, v.replace(":6379", &format!(":{redis_port}")));
            } else if e["valueFrom"]["secretKeyRef"]["key"] == "password" {
                cmd.env(name, PASSWORD);
            } else {
                panic!("unexpected env entry {e}");
            }
        }
        let child = cmd.spawn().expect("failed to start the exporter");
        let p = ExporterProcess { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(port, "/health").is_none() {
            assert!(Instant::now() < deadline, "the exporter never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `/metrics`, as text.
    pub fn metrics(&self) -> String {
        http_get(self.port, "/metrics").expect("the exporter's /metrics")
    }
}

impl Drop for ExporterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET on loopback; the body when the answer is 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}
