//! The real kubectl against fake-apiserver, unmodified and with no extra flags: every verb a user would
//! try in a session (create, get, apply with client-side validation, diff, server-side apply, patch,
//! label, annotate, explain, wait, delete).
//!
//! Runs `/usr/bin/kubectl` and prints its `kubectl version --client` first. Written against kubectl
//! v1.33.1 (the Google Cloud SDK's kubectl dispatcher, v1.32.4-dispatcher, runs its bundled 1.33.1 for
//! this 1.33 server); `scripts/test` installs kubectl 1.33 when there is none. The test fails, never
//! skips, when kubectl is absent.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "tests report what they saw"
)]

use fake_apiserver::testing::FakeApiServer;
use std::path::Path;
use std::process::{Command, Output};

const KUBECTL: &str = "/usr/bin/kubectl";
const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/kuberay/ray.io_rayclusters.v1.3.0.yaml"
);

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  greeting: hello
";

const RAYCLUSTER: &str = "apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: demo
spec:
  rayVersion: '2.45.0'
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.45.0
          ports:
          - containerPort: 6379
            name: gcs-server
  workerGroupSpecs:
  - groupName: cpu
    replicas: 1
    minReplicas: 1
    maxReplicas: 1
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.45.0
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: demo
spec:
  selector:
    app: demo
  ports:
  - name: http
    port: 80
    targetPort: 8080
";

const STATEFULSET: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: demo
spec:
  serviceName: demo
  replicas: 1
  selector:
    matchLabels:
      app: demo
  template:
    metadata:
      labels:
        app: demo
    spec:
      containers:
      - name: web
        image: nginx:1.27
        env:
        - name: MODE
          value: demo
";

struct Kubectl {
    kubeconfig: std::path::PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Runs kubectl, expects exit code `code`, returns stdout.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "kubectl {}\n--- stdout\n{stdout}--- stderr\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn ok(&self, args: &[&str]) -> String {
        self.expect(0, args)
    }
}

fn write_dir(dir: &Path, greeting: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("1-configmap.yaml"),
        CONFIGMAP.replace("hello", greeting),
    )
    .unwrap();
    std::fs::write(dir.join("2-raycluster.yaml"), RAYCLUSTER).unwrap();
    std::fs::write(dir.join("3-service.yaml"), SERVICE).unwrap();
    std::fs::write(dir.join("4-statefulset.yaml"), STATEFULSET).unwrap();
}

#[test]
fn a_kubectl_session() {
    assert!(
        Path::new(KUBECTL).exists(),
        "{KUBECTL} is absent: install kubectl (scripts/test installs kubectl 1.33 when it is missing)"
    );
    let fake = FakeApiServer::with_crds(&[CRD]);
    let k = Kubectl {
        kubeconfig: fake.kubeconfig().to_path_buf(),
        cache: tempfile::tempdir().unwrap(),
    };
    eprintln!("{}", k.ok(&["version", "--client"]));
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("manifests");
    let dir_s = dir.to_str().unwrap();
    write_dir(&dir, "hello");

    // create (a protobuf body) and get.
    assert_eq!(
        k.ok(&["create", "namespace", "demo"]),
        "namespace/demo created\n"
    );
    assert_eq!(
        k.ok(&["get", "namespace", "demo", "-o", "jsonpath={.status.phase}"]),
        "Active"
    );
    assert_eq!(
        k.ok(&[
            "create",
            "configmap",
            "extra",
            "-n",
            "demo",
            "--from-literal=k=v"
        ]),
        "configmap/extra created\n"
    );

    // diff against nothing, then client-side apply (validation on), then a no-op apply.
    let diff = k.expect(1, &["diff", "--server-side", "-f", dir_s, "-n", "demo"]);
    assert!(diff.contains("+  greeting: hello"), "{diff}");
    assert!(diff.contains("+  name: demo"), "{diff}");
    assert_eq!(
        k.ok(&["apply", "-f", dir_s, "-n", "demo"]),
        "configmap/app-config created\nraycluster.ray.io/demo created\nservice/demo created\nstatefulset.apps/demo created\n"
    );
    // The RayCluster's lists hold CRD defaults (e.g. a port's protocol) that the file does not, so
    // kubectl's three-way JSON merge patch is not empty ("configured", as against a real server), but the
    // server finds nothing to change: the resourceVersion stays.
    let rv = |k: &Kubectl| {
        k.ok(&[
            "get",
            "raycluster",
            "demo",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
    };
    let before = rv(&k);
    assert_eq!(
        k.ok(&["apply", "-f", dir_s, "-n", "demo"]),
        "configmap/app-config unchanged\nraycluster.ray.io/demo configured\nservice/demo unchanged\nstatefulset.apps/demo unchanged\n"
    );
    assert_eq!(rv(&k), before);
    assert_eq!(
        k.ok(&["get", "-f", dir_s, "-n", "demo", "-o", "name"]),
        "configmap/app-config\nraycluster.ray.io/demo\nservice/demo\nstatefulset.apps/demo\n"
    );

    // A change: client-side diff and apply.
    write_dir(&dir, "bonjour");
    let diff = k.expect(1, &["diff", "-f", dir_s, "-n", "demo"]);
    assert!(
        diff.contains("-  greeting: hello") && diff.contains("+  greeting: bonjour"),
        "{diff}"
    );
    assert_eq!(
        k.ok(&["apply", "-f", dir_s, "-n", "demo"]),
        "configmap/app-config configured\nraycluster.ray.io/demo configured\nservice/demo unchanged\nstatefulset.apps/demo unchanged\n"
    );
    assert_eq!(k.ok(&["diff", "-f", dir_s, "-n", "demo"]), "");

    // Server-side apply and diff in a second namespace.
    k.ok(&["create", "namespace", "ssa"]);
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", dir_s, "-n", "ssa"]),
        "configmap/app-config serverside-applied\nraycluster.ray.io/demo serverside-applied\nservice/demo serverside-applied\nstatefulset.apps/demo serverside-applied\n"
    );
    assert_eq!(
        k.ok(&["diff", "--server-side", "-f", dir_s, "-n", "ssa"]),
        ""
    );
    write_dir(&dir, "hallo");
    let diff = k.expect(1, &["diff", "--server-side", "-f", dir_s, "-n", "ssa"]);
    assert!(
        diff.contains("-  greeting: bonjour") && diff.contains("+  greeting: hallo"),
        "{diff}"
    );

    // patch in each flavour, label, annotate.
    assert_eq!(
        k.ok(&[
            "patch",
            "configmap",
            "app-config",
            "-n",
            "demo",
            "-p",
            r#"{"data":{"extra":"1"}}"#
        ]),
        "configmap/app-config patched\n"
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "raycluster",
            "demo",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"team":"ml"}}}"#
        ]),
        "raycluster.ray.io/demo patched\n"
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "service",
            "demo",
            "-n",
            "demo",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/ports/0/port","value":8080}]"#
        ]),
        "service/demo patched\n"
    );
    assert_eq!(
        k.ok(&["label", "statefulset", "demo", "-n", "demo", "tier=web"]),
        "statefulset.apps/demo labeled\n"
    );
    assert_eq!(
        k.ok(&[
            "annotate",
            "configmap",
            "app-config",
            "-n",
            "demo",
            "note=kept"
        ]),
        "configmap/app-config annotated\n"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "configmap",
            "app-config",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.extra} {.metadata.annotations.note}"
        ]),
        "1 kept"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "service",
            "demo",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.ports[0].port}"
        ]),
        "8080"
    );

    // explain, from the CRD's schema and from the built-in schemas.
    let explain = k.ok(&["explain", "raycluster.spec"]);
    assert!(
        explain.starts_with(
            "GROUP:      ray.io\nKIND:       RayCluster\nVERSION:    v1\n\nFIELD: spec <Object>\n"
        ),
        "{explain}"
    );
    assert!(
        explain.contains("headGroupSpec\t<Object> -required-"),
        "{explain}"
    );
    assert!(
        explain.contains("workerGroupSpecs\t<[]Object>"),
        "{explain}"
    );
    let explain = k.ok(&["explain", "statefulset.spec.template.spec.containers.ports"]);
    assert!(
        explain.contains("containerPort\t<integer> -required-"),
        "{explain}"
    );

    // wait for a condition the simulated operator sets, and for a deletion.
    assert_eq!(
        k.ok(&[
            "wait",
            "--for=condition=RayClusterProvisioned",
            "raycluster/demo",
            "-n",
            "demo",
            "--timeout=60s"
        ]),
        "raycluster.ray.io/demo condition met\n"
    );
    assert_eq!(
        k.ok(&[
            "wait",
            "--for=jsonpath={.status.readyReplicas}=1",
            "statefulset/demo",
            "-n",
            "demo",
            "--timeout=60s"
        ]),
        "statefulset.apps/demo condition met\n"
    );
    assert_eq!(
        k.ok(&["delete", "configmap", "extra", "-n", "demo"]),
        "configmap \"extra\" deleted\n"
    );
    k.ok(&[
        "wait",
        "--for=delete",
        "configmap/extra",
        "-n",
        "demo",
        "--timeout=60s",
    ]);

    // delete what apply created; the namespace takes the rest with it.
    assert_eq!(
        k.ok(&["delete", "-f", dir_s, "-n", "demo"]),
        "configmap \"app-config\" deleted\nraycluster.ray.io \"demo\" deleted\nservice \"demo\" deleted\nstatefulset.apps \"demo\" deleted\n"
    );
    assert_eq!(k.ok(&["get", "configmaps", "-n", "demo", "-o", "name"]), "");
    assert_eq!(
        k.ok(&["delete", "namespace", "ssa"]),
        "namespace \"ssa\" deleted\n"
    );
    let gone = k.expect(1, &["get", "namespace", "ssa"]);
    assert_eq!(gone, "");
}
