//! Shared harness of the binary-level tests: a `fake-apiserver` per test (in-process, from its
//! library's test helper), a stack file in a temp dir, the real `raystack` binary, and requests to
//! look at (and tamper with) the fake's objects behind raystack's back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fake_apiserver::Options;
use fake_apiserver::testing::{Client, FakeApiServer};

use serde_json::Value;

/// The tests run in CI, where `CI=true` makes `apply` and `destroy` refuse a stack whose
/// `[state]` names no backend (`cli::ci`), and most test stacks name none: they are about
/// something else, and a temp directory's state file is what they mean. So `CI` is removed from
/// this process before `main` (no other thread exists yet, so changing the environment is
/// sound), and every raystack the tests and benches spawn inherits its absence; the tests of
/// the CI rule set `CI=true` on the command they run.
#[ctor::ctor(unsafe)]
#[allow(
    unsafe_code,
    reason = "runs before main, while the process has one thread"
)]
fn outside_ci() {
    // SAFETY: a constructor runs before main and before any thread is spawned.
    unsafe { std::env::remove_var("CI") }
}

pub const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kuberay/ray.io_rayclusters.v1.3.0.yaml"
);

/// KubeRay 1.7's CRD: `spec.upgradeStrategy` and the embedded GCS backend.
pub const CRD_1_7: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kuberay/ray.io_rayclusters.v1.7.0.yaml"
);

pub fn raystack_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_raystack"))
}

/// The plans of a JSON review (`plan A B --format json`, `diff --base --format json`) whose
/// every stack planned, in order: its `format_version` is 1 and each entry is tagged `planned`.
pub fn reviewed_plans(stdout: &str) -> Vec<Value> {
    let review: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("not a JSON review ({e}):\n{stdout}"));
    assert_eq!(review["format_version"], "1", "{review}");
    review["stacks"]
        .as_array()
        .unwrap_or_else(|| panic!("no stacks:\n{review}"))
        .iter()
        .map(|s| {
            assert_eq!(s["status"], "planned", "{s}");
            s["plan"].clone()
        })
        .collect()
}

/// A `fake-apiserver` running in this test process (the library's test helper), stopped on drop.
pub struct Fake {
    server: FakeApiServer,
    pub url: String,
    /// A kubeconfig for it, in the test's directory.
    pub kubeconfig: PathBuf,
}

/// Server options from the `fake-apiserver` binary's flags (`--latency-ms N`,
/// `--readiness-delay-ms N`, `--no-default-storageclass`, `--crd FILE`, `--service-proxy ROUTE`,
/// `--on-pod-delete HOOK`, `--cleanup-job-delay-ms N`, `--cleanup-job-fail`, `--audit-log-path
/// PATH`, `--simulate-autoscaler`).
pub fn options(flags: &[&str]) -> Options {
    let mut o = Options::default();
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        let mut value = || *it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match *flag {
            "--latency-ms" => o.latency = Duration::from_millis(value().parse().unwrap()),
            "--readiness-delay-ms" => {
                o.readiness_delay = Duration::from_millis(value().parse().unwrap())
            }
            "--no-default-storageclass" => o.default_storage_class = false,
            "--crd" => o.crds.push(PathBuf::from(value())),
            "--service-proxy" => o.service_proxy.push(value().parse().unwrap()),
            "--on-pod-delete" => o.on_pod_delete.push(value().parse().unwrap()),
            "--cleanup-job-delay-ms" => {
                o.cleanup_job.delay = Duration::from_millis(value().parse().unwrap())
            }
            "--cleanup-job-fail" => o.cleanup_job.fail = true,
            "--audit-log-path" => o.audit_log = Some(PathBuf::from(value())),
            "--simulate-autoscaler" => o.simulate_autoscaler = true,
            other => panic!("unknown fake-apiserver flag {other}"),
        }
    }
    o
}

impl Fake {
    /// A fake with the KubeRay 1.3.0 RayCluster CRD installed.
    pub fn start(dir: &Path, extra: &[&str]) -> Fake {
        Fake::start_with_crd(dir, CRD, extra)
    }

    /// A fake with the RayCluster CRD from the file `crd`.
    pub fn start_with_crd(dir: &Path, crd: &str, extra: &[&str]) -> Fake {
        let mut flags = vec!["--crd", crd];
        flags.extend_from_slice(extra);
        Fake::start_flags(dir, &flags)
    }

    /// A fake started with exactly these flags (no CRD unless given).
    pub fn start_flags(dir: &Path, flags: &[&str]) -> Fake {
        let server = FakeApiServer::start_with(options(flags));
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, fake_apiserver::kubeconfig(server.url()))
            .expect("write the kubeconfig");
        Fake {
            url: server.url().to_string(),
            kubeconfig,
            server,
        }
    }

    /// A client another thread can own.
    pub fn client(&self) -> Client {
        self.server.client()
    }

    /// One HTTP request; returns (status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, String) {
        let r = self.server.request(
            method,
            path,
            &[
                ("Accept", "application/json"),
                ("Content-Type", content_type),
            ],
            body.as_bytes(),
        );
        (r.status, r.text)
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

/// A stack file in a temp dir, with its fake cluster.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub fake: Fake,
    pub stack: PathBuf,
}

pub const NAME: &str = "e2e";

/// `text` with the UUID after each `raystack.dev/lineage: ` as `[LINEAGE]` (a state's lineage
/// is drawn at random; the placeholder a plan of a new stack shows is kept).
pub fn scrub_lineage_annotations(text: &str) -> String {
    const MARKER: &str = "raystack.dev/lineage: ";
    let is_uuid = |s: &str| {
        s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARKER) {
        let (head, tail) = rest.split_at(at + MARKER.len());
        out.push_str(head);
        match tail.get(..36).filter(|s| is_uuid(s)) {
            Some(_) => {
                out.push_str("[LINEAGE]");
                rest = &tail[36..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

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
max_data_loss = "2s"

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
        Env::with_crd(CRD, fake_args)
    }

    /// An environment whose fake serves the RayCluster CRD in file `crd`.
    pub fn with_crd(crd: &str, fake_args: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::start_with_crd(dir.path(), crd, fake_args);
        let stack = dir.path().join("stack.toml");
        std::fs::write(&stack, stack_toml(&worker("cpu", 1), "", "")).unwrap();
        Env { dir, fake, stack }
    }

    pub fn write_stack(&self, toml: &str) {
        std::fs::write(&self.stack, toml).unwrap();
    }

    /// `text` with this test's temp directory as `[DIR]`, the fake's URL as `[FAKE]` and the
    /// lineage an object's `raystack.dev/lineage` annotation shows as `[LINEAGE]`, so a whole
    /// output can be a snapshot.
    pub fn scrub(&self, text: &str) -> String {
        scrub_lineage_annotations(
            &text
                .replace(&self.dir.path().display().to_string(), "[DIR]")
                .replace(self.fake.url.trim_end_matches('/'), "[FAKE]"),
        )
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
            Some(&"plan") | Some(&"apply") | Some(&"destroy") | Some(&"verify")
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
