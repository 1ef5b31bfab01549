//! Shared harness of the binary-level tests: a `fake-apiserver` per test, a stack file in a
//! temp dir, the real `raystack` binary, and a tiny HTTP client to look at (and tamper with)
//! the fake's objects behind raystack's back.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

pub const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kuberay/ray.io_rayclusters.v1.3.0.yaml"
);

pub fn raystack_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_raystack"))
}

/// The `fake-apiserver` binary: `$RAYSTACK_FAKE_APISERVER`, else next to `raystack` (built by
/// `cargo test --workspace` / `cargo build -p fake-apiserver`), else built once into a separate
/// target dir (its own cargo lock, so this never waits on the cargo running the tests).
pub fn fake_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("RAYSTACK_FAKE_APISERVER") {
            return PathBuf::from(p);
        }
        let sibling = raystack_bin().with_file_name("fake-apiserver");
        if sibling.exists() {
            return sibling;
        }
        let target = raystack_bin()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("fake-apiserver-for-tests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "fake-apiserver", "--target-dir"])
            .arg(&target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build -p fake-apiserver");
        assert!(status.success(), "cargo build -p fake-apiserver failed");
        target.join("debug").join("fake-apiserver")
    })
    .clone()
}

pub struct Fake {
    child: Child,
    pub url: String,
    pub kubeconfig: PathBuf,
}

impl Fake {
    /// A fake with the KubeRay 1.3.0 RayCluster CRD installed.
    pub fn start(dir: &Path, extra: &[&str]) -> Fake {
        Fake::start_with_crd(dir, CRD, extra)
    }

    /// A fake with the RayCluster CRD from the file `crd`.
    pub fn start_with_crd(dir: &Path, crd: &str, extra: &[&str]) -> Fake {
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(fake_bin())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--crd", crd])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fake-apiserver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("fake-apiserver prints its URL");
        let url = line.trim().to_string();
        assert!(url.starts_with("http://"), "fake-apiserver printed {url:?}");
        Fake {
            child,
            url,
            kubeconfig,
        }
    }

    fn hostport(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    /// One HTTP/1.1 request; returns (status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(self.hostport()).expect("connect to fake-apiserver");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            self.hostport(),
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        (status, body)
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        let (status, body) = self.request("GET", path, "application/json", "");
        (status == 200).then(|| serde_json::from_str(&body).expect("fake answers JSON"))
    }

    pub fn merge_patch(&self, path: &str, patch: &Value) -> u16 {
        let path = format!("{path}?fieldManager=kubectl-edit");
        self.request(
            "PATCH",
            &path,
            "application/merge-patch+json",
            &patch.to_string(),
        )
        .0
    }

    pub fn list_names(&self, path: &str) -> Vec<String> {
        self.get(path)
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|o| {
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stack file in a temp dir, with its fake cluster.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub fake: Fake,
    pub stack: PathBuf,
}

pub const NAME: &str = "e2e";

/// A local-provider stack; `workers` is the `[[ray.workers]]` TOML, `extra_redis` lines are
/// appended to `[redis]`, `extra_stack` to `[stack]`.
pub fn stack_toml(workers: &str, extra_redis: &str, extra_stack: &str) -> String {
    format!(
        r#"[stack]
name = "{NAME}"
namespace = "{NAME}"
{extra_stack}

[cluster]
provider = "local"

[durability]
max_data_loss = "1s"

[redis]
image = "redis:7.4.0"
storage = "1Gi"
cpu = "250m"
memory = "512Mi"
{extra_redis}

[ray]
version = "2.45.0"
kuberay = "1.3.0"

[ray.head]
cpu = "1"
memory = "2Gi"

{workers}
"#
    )
}

pub fn worker(group: &str, replicas: u32) -> String {
    format!(
        "[[ray.workers]]\ngroup = \"{group}\"\nreplicas = {replicas}\nmin_replicas = {replicas}\nmax_replicas = {replicas}\ncpu = \"1\"\nmemory = \"1Gi\"\n"
    )
}

impl Env {
    pub fn new(fake_args: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::start(dir.path(), fake_args);
        let stack = dir.path().join("stack.toml");
        std::fs::write(&stack, stack_toml(&worker("cpu", 1), "", "")).unwrap();
        Env { dir, fake, stack }
    }

    pub fn write_stack(&self, toml: &str) {
        std::fs::write(&self.stack, toml).unwrap();
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(".raystack")
            .join(format!("{NAME}.state.json"))
    }

    pub fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.state_path()).expect("state file exists");
        serde_json::from_str(&text).expect("state is valid JSON")
    }

    /// `raystack ARGS --kubeconfig <fake>` (the kubeconfig flag only where the command takes it).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(raystack_bin());
        c.current_dir(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("RAYSTACK_WAIT_TIMEOUT", "60");
        if matches!(
            args.first(),
            Some(&"plan") | Some(&"apply") | Some(&"destroy")
        ) {
            c.arg("--kubeconfig").arg(&self.fake.kubeconfig);
        }
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).output().expect("run raystack");
        Run::from(out)
    }

    pub fn stack_arg(&self) -> &str {
        self.stack.to_str().unwrap()
    }

    pub fn apply(&self) -> Run {
        let r = self.run(&["apply", self.stack_arg(), "--auto-approve"]);
        assert_eq!(r.code, 0, "apply failed:\n{r}");
        r
    }

    pub fn plan(&self, extra: &[&str]) -> Run {
        let mut args = vec!["plan", self.stack_arg(), "--detailed-exitcode"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    pub fn assert_no_changes(&self) {
        let r = self.plan(&[]);
        assert_eq!(r.code, 0, "expected no changes:\n{r}");
        assert!(r.stdout.contains("No changes"), "{r}");
    }

    pub fn ns_path(&self, resource: &str, name: &str) -> String {
        let group = match resource {
            "statefulsets" => "/apis/apps/v1",
            "networkpolicies" => "/apis/networking.k8s.io/v1",
            "rayclusters" => "/apis/ray.io/v1",
            _ => "/api/v1",
        };
        format!("{group}/namespaces/{NAME}/{resource}/{name}")
    }

    /// The generated Redis password, read from the fake's Secret.
    pub fn password(&self) -> String {
        use base64::Engine;
        let secret = self
            .fake
            .get(&self.ns_path("secrets", &format!("{NAME}-redis-auth")))
            .expect("secret exists");
        let b64 = secret["data"]["password"]
            .as_str()
            .expect("password in secret");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Every object of the local stack, as (API path, name).
pub fn all_objects() -> Vec<(String, String)> {
    let n = NAME;
    vec![
        ("/api/v1/namespaces".into(), n.into()),
        (
            format!("/api/v1/namespaces/{n}/secrets"),
            format!("{n}-redis-auth"),
        ),
        (
            format!("/api/v1/namespaces/{n}/configmaps"),
            format!("{n}-redis-config"),
        ),
        (
            format!("/api/v1/namespaces/{n}/persistentvolumeclaims"),
            format!("{n}-redis-data"),
        ),
        (
            format!("/apis/apps/v1/namespaces/{n}/statefulsets"),
            format!("{n}-redis"),
        ),
        (
            format!("/api/v1/namespaces/{n}/services"),
            format!("{n}-redis"),
        ),
        (
            format!("/apis/networking.k8s.io/v1/namespaces/{n}/networkpolicies"),
            format!("{n}-redis"),
        ),
        (
            format!("/apis/ray.io/v1/namespaces/{n}/rayclusters"),
            n.into(),
        ),
    ]
}

/// The stack converged: no changes, each object once in the cluster and in state, the
/// password's fingerprint recorded.
pub fn assert_converged(env: &Env) {
    env.assert_no_changes();
    let state = env.state();
    let addrs: Vec<&str> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<&str> = addrs.iter().copied().collect();
    assert_eq!(addrs.len(), 8, "state: {addrs:?}");
    assert_eq!(unique.len(), 8, "duplicate state entries: {addrs:?}");
    for (path, name) in all_objects() {
        let names = env.fake.list_names(&path);
        assert_eq!(
            names.iter().filter(|n| **n == name).count(),
            1,
            "{path}: {names:?}"
        );
    }
    assert_eq!(
        state["secrets"].as_array().unwrap().len(),
        1,
        "secret fingerprint missing: {state}"
    );
}
