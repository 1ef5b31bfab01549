//! Preflight end to end: the real `raystack plan` against `fake-apiserver`, with each cloud SDK
//! pointed at a local HTTP fake that answers in the real API's shape (EKS, GKE, ARM). Checks
//! that findings reach the text, JSON and Markdown plans, that errors make the plan fail (exit 1)
//! and apply refuse, and that the Kubernetes-side checks (StorageClass, RayCluster CRD version)
//! see the cluster as it is; and that a kubeconfig reaching another cluster than the cloud
//! cluster the stack names fails plan and apply before anything is read.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{Fake, Run, raystack_bin};
use serde_json::Value;
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
use serde_json::json;

/// A stack for `cluster` (the `[cluster]` table and any provider section) in a temp dir.
fn write_stack(dir: &Path, cluster: &str, kuberay: &str) -> std::path::PathBuf {
    let path = dir.join("stack.toml");
    std::fs::write(
        &path,
        format!(
            "[stack]\nname = \"pf\"\n\n{cluster}\n[redis]\nstorage = \"1Gi\"\n\n[ray]\nkuberay = \"{kuberay}\"\n\n[[ray.workers]]\ngroup = \"cpu\"\nreplicas = 1\n"
        ),
    )
    .unwrap();
    path
}

/// A temp dir, a `fake-apiserver` with the KubeRay 1.3.0 CRD, and a stack for `cluster` in it.
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn cluster_with(cluster: &str) -> (tempfile::TempDir, Fake, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start(dir.path(), &[]);
    let stack = write_stack(dir.path(), cluster, "1.3.0");
    (dir, fake, stack)
}

fn raystack(dir: &Path, kubeconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(raystack_bin());
    c.current_dir(dir)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig);
    c.env("NO_COLOR", "1")
        .env("RAYSTACK_WAIT_TIMEOUT", "60")
        .stdin(Stdio::null());
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_EKS",
        "AWS_PROFILE",
        "RAYSTACK_GKE_ENDPOINT",
        "RAYSTACK_AZURE_ENDPOINT",
        "RAYSTACK_AZURE_TOKEN",
    ] {
        c.env_remove(var);
    }
    c.env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().expect("run raystack"))
}

/// A fake API server started with exactly these flags (no CRD unless given).
fn fake_with(dir: &Path, args: &[&str]) -> (Fake, std::path::PathBuf) {
    let fake = Fake::start_flags(dir, args);
    let kubeconfig = fake.kubeconfig.clone();
    (fake, kubeconfig)
}

fn crd(version: &str) -> String {
    format!(
        "{}/tests/fixtures/kuberay/ray.io_rayclusters.v{version}.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn json_plan(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("plan JSON: {e}\n{run}"))
}

fn finding<'a>(plan: &'a Value, check: &str) -> &'a Value {
    plan["preflight"]
        .as_array()
        .expect("preflight array")
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no `{check}` finding in {}", plan["preflight"]))
}

/// The text plan's preflight section, from its heading to the next blank line.
fn preflight_section(text: &str) -> String {
    let start = text.find("Preflight").expect("a Preflight section");
    let rest = &text[start..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    rest[..end].to_string()
}

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// The identity check (`preflight::identity_mismatch`): a stack naming the cloud cluster whose
/// fake answers with another API server than fake-apiserver's (127.0.0.1). `plan` and `apply`
/// fail (exit 1) naming both, and the only request the cluster saw is the identity read
/// (`kube-system`): no state read or lock (no state file), no object observed or written.
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn assert_other_cluster_refused(cluster: &str, env: &[(&str, &str)], snapshot: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let fake = Fake::start(dir.path(), &["--audit-log-path", log.to_str().unwrap()]);
    let stack = write_stack(dir.path(), cluster, "1.3.0");
    let s = stack.to_str().unwrap();
    let scrub = |text: &str| {
        text.replace(&dir.path().display().to_string(), "[DIR]")
            .replace(fake.url.trim_end_matches('/'), "[FAKE]")
    };
    let plan = raystack(dir.path(), &fake.kubeconfig, &["plan", s], env);
    assert_eq!(plan.code, 1, "{plan}");
    insta::assert_snapshot!(snapshot, scrub(&plan.stderr));
    let apply = raystack(
        dir.path(),
        &fake.kubeconfig,
        &["apply", s, "--auto-approve"],
        env,
    );
    assert_eq!(apply.code, 1, "{apply}");
    assert_eq!(scrub(&apply.stderr), scrub(&plan.stderr));
    let requests: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| {
            let e: Value = serde_json::from_str(line).unwrap();
            format!(
                "{} {}",
                e["verb"].as_str().unwrap(),
                e["requestURI"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        requests
            .iter()
            .all(|r| r == "get /api/v1/namespaces/kube-system"),
        "{requests:#?}"
    );
    assert!(
        !dir.path().join(".raystack").exists(),
        "state was read or locked"
    );
}

// ---------------------------------------------------------------- kubernetes side (every build)

#[test]
fn local_without_a_default_storage_class_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, kubeconfig) = fake_with(
        dir.path(),
        &["--crd", &crd("1.3.0"), "--no-default-storageclass"],
    );
    let stack = write_stack(dir.path(), "[cluster]\nprovider = \"local\"\n", "1.3.0");
    let run = raystack(
        dir.path(),
        &kubeconfig,
        &["plan", stack.to_str().unwrap(), "--format", "json"],
        &[],
    );
    drop(fake);
    assert_eq!(run.code, 1, "{run}");
    let plan = json_plan(&run);
    let f = finding(&plan, "storage-class");
    assert_eq!(f["severity"], "error");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("no default StorageClass"),
        "{f}"
    );
    assert!(f["fix"].as_str().unwrap().contains("storage_class"), "{f}");
}

#[test]
fn missing_raycluster_crd_blocks_apply() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, kubeconfig) = fake_with(dir.path(), &[]);
    let stack = write_stack(dir.path(), "[cluster]\nprovider = \"local\"\n", "1.3.0");
    let plan = raystack(
        dir.path(),
        &kubeconfig,
        &["plan", stack.to_str().unwrap()],
        &[],
    );
    assert_eq!(plan.code, 1, "{plan}");
    let section = preflight_section(&plan.stdout);
    assert!(
        section.contains("rayclusters.ray.io") && section.contains("not installed"),
        "{section}"
    );
    assert!(
        section.contains("helm install kuberay-operator"),
        "{section}"
    );

    let apply = raystack(
        dir.path(),
        &kubeconfig,
        &["apply", stack.to_str().unwrap(), "--auto-approve"],
        &[],
    );
    assert_eq!(apply.code, 1, "{apply}");
    // Nothing was created: the namespace does not exist.
    let state = dir.path().join(".raystack/pf.state.json");
    let recorded = std::fs::read_to_string(&state).unwrap_or_default();
    assert!(
        !recorded.contains("Namespace/pf"),
        "apply created objects despite a preflight error: {recorded}"
    );
    drop(fake);
}

/// `[monitoring] prometheus_rules`: without prometheus-operator's CRD the plan fails naming it;
/// with the CRD the check passes. A stack without alerts does not ask.
#[test]
fn prometheus_rules_need_the_prometheus_rule_crd() {
    let dir = tempfile::tempdir().unwrap();
    let stack = write_stack(dir.path(), "[cluster]\nprovider = \"local\"\n", "1.3.0");
    let text = std::fs::read_to_string(&stack).unwrap();
    std::fs::write(
        &stack,
        format!("{text}\n[monitoring]\nprometheus_rules = true\n"),
    )
    .unwrap();
    let s = stack.to_str().unwrap();

    let (fake, kubeconfig) = fake_with(dir.path(), &["--crd", &crd("1.3.0")]);
    let run = raystack(
        dir.path(),
        &kubeconfig,
        &["plan", s, "--format", "json"],
        &[],
    );
    drop(fake);
    assert_eq!(run.code, 1, "{run}");
    let plan = json_plan(&run);
    assert_eq!(
        finding(&plan, "prometheusrule-crd"),
        &serde_json::json!({
            "provider": "kubernetes",
            "check": "prometheusrule-crd",
            "severity": "error",
            "message": "`[monitoring] prometheus_rules = true` renders a PrometheusRule, but its CRD (`prometheusrules.monitoring.coreos.com`) is not installed: prometheus-operator is missing",
            "fix": "install prometheus-operator (e.g. the kube-prometheus-stack chart) first, or set prometheus_rules = false",
        })
    );

    let rules_crd = format!(
        "{}/tests/fixtures/prometheus-operator/monitoring.coreos.com_prometheusrules.v0.93.0.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let (fake, kubeconfig) = fake_with(dir.path(), &["--crd", &crd("1.3.0"), "--crd", &rules_crd]);
    let run = raystack(
        dir.path(),
        &kubeconfig,
        &["plan", s, "--format", "json"],
        &[],
    );
    drop(fake);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        finding(&json_plan(&run), "prometheusrule-crd")["severity"],
        "ok"
    );
}

#[test]
fn kuberay_version_must_match_the_installed_crd() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, kubeconfig) = fake_with(dir.path(), &["--crd", &crd("1.2.2")]);
    // The stack claims 1.3.0, but the cluster's CRD predates gcsFaultToleranceOptions.
    let stack = write_stack(dir.path(), "[cluster]\nprovider = \"local\"\n", "1.3.0");
    let run = raystack(
        dir.path(),
        &kubeconfig,
        &["plan", stack.to_str().unwrap(), "--format", "json"],
        &[],
    );
    assert_eq!(run.code, 1, "{run}");
    let plan = json_plan(&run);
    let f = finding(&plan, "raycluster-crd");
    assert_eq!(f["severity"], "error");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("gcsFaultToleranceOptions"),
        "{f}"
    );

    // Saying the truth (the annotation form) passes.
    let stack = write_stack(dir.path(), "[cluster]\nprovider = \"local\"\n", "1.2.2");
    let run = raystack(
        dir.path(),
        &kubeconfig,
        &["plan", stack.to_str().unwrap(), "--format", "json"],
        &[],
    );
    drop(fake);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        finding(&json_plan(&run), "raycluster-crd")["severity"],
        "ok"
    );
}

#[test]
fn offline_plans_skip_cloud_calls_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let stack = write_stack(
        dir.path(),
        "[cluster]\nprovider = \"aws\"\nname = \"prod-eks\"\nregion = \"us-west-2\"\n",
        "1.3.0",
    );
    // An endpoint nobody listens on: an offline plan must not even try it.
    let run = raystack(
        dir.path(),
        Path::new("/nonexistent/kubeconfig"),
        &["plan", stack.to_str().unwrap(), "--offline"],
        &[("AWS_ENDPOINT_URL_EKS", "http://127.0.0.1:9")],
    );
    assert_eq!(run.code, 0, "{run}");
    let section = preflight_section(&run.stdout);
    assert!(
        section.contains("offline") && section.contains("skipped"),
        "{section}"
    );
    assert!(
        !run.stdout.contains("eks-"),
        "no EKS check ran offline:\n{run}"
    );
}

// ---------------------------------------------------------------- clouds (their features on)

#[cfg(feature = "aws")]
mod aws {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const EKS: &str =
        "[cluster]\nprovider = \"aws\"\nname = \"prod-eks\"\nregion = \"us-west-2\"\n";

    fn cluster(status: &str) -> Value {
        json!({"cluster": {
            "name": "prod-eks",
            "arn": "arn:aws:eks:us-west-2:123456789012:cluster/prod-eks",
            "version": "1.31",
            "status": status,
            // fake-apiserver's host: the kubeconfig's server is this cluster's.
            "endpoint": "https://127.0.0.1",
            "roleArn": "arn:aws:iam::123456789012:role/eks-cluster",
            "health": {"issues": []}
        }})
    }

    async fn eks(status: &str, addon: Option<&str>) -> MockServer {
        eks_with(cluster(status), addon).await
    }

    async fn eks_with(cluster_body: Value, addon: Option<&str>) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/clusters/prod-eks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(cluster_body))
            .mount(&server)
            .await;
        let addon_response = match addon {
            Some(s) => ResponseTemplate::new(200).set_body_json(json!({"addon": {
                "addonName": "aws-ebs-csi-driver", "clusterName": "prod-eks", "status": s,
                "addonVersion": "v1.35.0-eksbuild.1", "health": {"issues": []}
            }})),
            None => ResponseTemplate::new(404)
                .insert_header("x-amzn-errortype", "ResourceNotFoundException")
                .set_body_json(
                    json!({"message": "No addon: aws-ebs-csi-driver found in cluster: prod-eks"}),
                ),
        };
        Mock::given(method("GET"))
            .and(path("/clusters/prod-eks/addons/aws-ebs-csi-driver"))
            .respond_with(addon_response)
            .mount(&server)
            .await;
        server
    }

    #[test]
    fn healthy_eks_passes_and_every_format_shows_the_checks() {
        let rt = runtime();
        let server = rt.block_on(eks("ACTIVE", Some("ACTIVE")));
        let (dir, fake, stack) = cluster_with(EKS);
        let env = [("AWS_ENDPOINT_URL_EKS", server.uri())];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s = stack.to_str().unwrap();

        let json = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", s, "--format", "json"],
            &env,
        );
        assert_eq!(json.code, 0, "{json}");
        let plan = json_plan(&json);
        assert_eq!(finding(&plan, "eks-cluster-active")["severity"], "ok");
        assert_eq!(finding(&plan, "eks-ebs-csi-addon")["severity"], "ok");
        assert_eq!(finding(&plan, "storage-class")["severity"], "ok");

        let text = raystack(dir.path(), &fake.kubeconfig, &["plan", s], &env);
        assert_eq!(text.code, 0, "{text}");
        let section = preflight_section(&text.stdout);
        assert!(
            section.contains("eks-cluster-active") && section.contains("ACTIVE"),
            "{section}"
        );

        let md = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", s, "--format", "markdown"],
            &env,
        );
        assert_eq!(md.code, 0, "{md}");
        assert!(
            md.stdout.contains("**Preflight**: all")
                && md.stdout.contains("`aws/eks-ebs-csi-addon`"),
            "{md}"
        );
    }

    #[test]
    fn missing_ebs_addon_is_an_error_with_the_fix_and_apply_refuses() {
        let rt = runtime();
        let server = rt.block_on(eks("ACTIVE", None));
        let (dir, fake, stack) = cluster_with(EKS);
        let uri = server.uri();
        let env = [("AWS_ENDPOINT_URL_EKS", uri.as_str())];
        let s = stack.to_str().unwrap();

        let text = raystack(dir.path(), &fake.kubeconfig, &["plan", s], &env);
        assert_eq!(text.code, 1, "{text}");
        let section = preflight_section(&text.stdout).replace(&uri, "http://EKS");
        insta::assert_snapshot!("preflight_aws_missing_addon", section);
        assert!(
            text.stderr.contains("eks-ebs-csi-addon"),
            "the error names the check:\n{text}"
        );

        let md = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", s, "--format", "markdown"],
            &env,
        );
        assert_eq!(md.code, 1, "{md}");
        assert!(md.stdout.contains("aws eks create-addon"), "{md}");

        let apply = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["apply", s, "--auto-approve"],
            &env,
        );
        assert_eq!(apply.code, 1, "{apply}");
        assert!(
            fake.get("/api/v1/namespaces/pf").is_none(),
            "apply created the namespace despite the error"
        );
    }

    #[test]
    fn auto_mode_must_match_the_stack() {
        let rt = runtime();
        let mut auto = cluster("ACTIVE");
        auto["cluster"]["storageConfig"] = json!({"blockStorage": {"enabled": true}});
        let auto_server = rt.block_on(eks_with(auto, None));
        let plain_server = rt.block_on(eks("ACTIVE", Some("ACTIVE")));
        let with_auto = format!("{EKS}\n[cluster.aws]\nauto_mode = true\n");
        let plan = |cluster: &str, uri: &str| {
            let (dir, fake, stack) = cluster_with(cluster);
            let run = raystack(
                dir.path(),
                &fake.kubeconfig,
                &["plan", stack.to_str().unwrap(), "--format", "json"],
                &[("AWS_ENDPOINT_URL_EKS", uri)],
            );
            (run.code, json_plan(&run))
        };
        // Auto Mode cluster, stack says so: passes.
        let (code, p) = plan(&with_auto, &auto_server.uri());
        assert_eq!(code, 0, "{p}");
        assert_eq!(finding(&p, "eks-auto-mode-storage-class")["severity"], "ok");
        // Auto Mode cluster, stack renders the add-on's provisioner: a warning with the fix.
        let (code, p) = plan(EKS, &auto_server.uri());
        assert_eq!(code, 0, "{p}");
        let f = finding(&p, "eks-auto-mode-storage-class");
        assert_eq!(f["severity"], "warning");
        assert!(
            f["fix"].as_str().unwrap().contains("auto_mode = true"),
            "{f}"
        );
        // Stack claims Auto Mode, cluster has none: an error.
        let (code, p) = plan(&with_auto, &plain_server.uri());
        assert_eq!(code, 1, "{p}");
        assert_eq!(
            finding(&p, "eks-auto-mode-storage-class")["severity"],
            "error"
        );
    }

    #[test]
    fn creating_cluster_is_not_ready() {
        let rt = runtime();
        let server = rt.block_on(eks("CREATING", Some("ACTIVE")));
        let (dir, fake, stack) = cluster_with(EKS);
        let uri = server.uri();
        let run = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", stack.to_str().unwrap(), "--format", "json"],
            &[("AWS_ENDPOINT_URL_EKS", uri.as_str())],
        );
        assert_eq!(run.code, 1, "{run}");
        let plan = json_plan(&run);
        let f = finding(&plan, "eks-cluster-active");
        assert_eq!(f["severity"], "error");
        assert!(f["message"].as_str().unwrap().contains("CREATING"), "{f}");
    }

    #[test]
    fn another_clusters_kubeconfig_fails_plan_and_apply_before_reading_anything() {
        let rt = runtime();
        let mut other = cluster("ACTIVE");
        other["cluster"]["endpoint"] = json!("https://ABCDEF.gr7.us-west-2.eks.amazonaws.com");
        let server = rt.block_on(eks_with(other, Some("ACTIVE")));
        let uri = server.uri();
        assert_other_cluster_refused(
            EKS,
            &[("AWS_ENDPOINT_URL_EKS", uri.as_str())],
            "preflight_aws_other_cluster",
        );
    }

    #[test]
    fn unreachable_eks_is_one_sentence() {
        let (dir, fake, stack) = cluster_with(EKS);
        let run = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", stack.to_str().unwrap(), "--format", "json"],
            &[("AWS_ENDPOINT_URL_EKS", "http://127.0.0.1:9")],
        );
        assert_eq!(run.code, 1, "{run}");
        let plan = json_plan(&run);
        let f = finding(&plan, "eks-api");
        let msg = f["message"].as_str().unwrap();
        assert!(
            !msg.contains('\n') && !msg.contains("DispatchFailure {"),
            "not a debug dump: {msg}"
        );
        assert!(!run.stderr.contains("panicked"), "{run}");
    }
}

#[cfg(feature = "gcp")]
mod gcp {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const GKE: &str = "[cluster]\nprovider = \"gcp\"\nproject = \"acme-ml\"\nlocation = \"us-central1\"\nname = \"prod-gke\"\n";

    async fn gke(csi_enabled: bool) -> MockServer {
        // fake-apiserver's host: the kubeconfig's server is this cluster's.
        gke_at(csi_enabled, "127.0.0.1").await
    }

    /// GKE answering for a cluster whose API server is at `endpoint` (an IP, as GKE gives it).
    async fn gke_at(csi_enabled: bool, endpoint: &str) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(
                "/v1/projects/acme-ml/locations/us-central1/clusters/prod-gke",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "name": "prod-gke", "location": "us-central1", "status": "RUNNING",
                "currentMasterVersion": "1.30.5-gke.1014001", "endpoint": endpoint,
                "addonsConfig": {"gcePersistentDiskCsiDriverConfig": {"enabled": csi_enabled}}
            })))
            .mount(&server)
            .await;
        server
    }

    #[test]
    fn another_clusters_kubeconfig_fails_plan_and_apply_before_reading_anything() {
        let rt = runtime();
        let server = rt.block_on(gke_at(true, "34.1.2.3"));
        let uri = server.uri();
        assert_other_cluster_refused(
            GKE,
            &[("RAYSTACK_GKE_ENDPOINT", uri.as_str())],
            "preflight_gcp_other_cluster",
        );
    }

    #[test]
    fn disabled_pd_csi_driver_is_an_error() {
        let rt = runtime();
        let server = rt.block_on(gke(false));
        let (dir, fake, stack) = cluster_with(GKE);
        let uri = server.uri();
        let run = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", stack.to_str().unwrap()],
            &[("RAYSTACK_GKE_ENDPOINT", uri.as_str())],
        );
        assert_eq!(run.code, 1, "{run}");
        let section = preflight_section(&run.stdout);
        insta::assert_snapshot!("preflight_gcp_csi_disabled", section);
    }

    #[test]
    fn running_cluster_with_the_driver_needs_the_standard_rwo_class() {
        let rt = runtime();
        let server = rt.block_on(gke(true));
        let (dir, fake, stack) = cluster_with(GKE);
        let uri = server.uri();
        let env = [("RAYSTACK_GKE_ENDPOINT", uri.as_str())];
        let s = stack.to_str().unwrap();
        // The fake cluster only has `standard`: GKE's `standard-rwo` is missing.
        let run = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", s, "--format", "json"],
            &env,
        );
        assert_eq!(run.code, 1, "{run}");
        let plan = json_plan(&run);
        assert_eq!(finding(&plan, "gke-pd-csi-driver")["severity"], "ok");
        assert_eq!(finding(&plan, "storage-class")["severity"], "error");
        // Once the class exists, the plan is applicable.
        let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard-rwo"}, "provisioner": "pd.csi.storage.gke.io",
            "volumeBindingMode": "WaitForFirstConsumer"});
        let (status, body) = fake.request(
            "POST",
            "/apis/storage.k8s.io/v1/storageclasses",
            "application/json",
            &sc.to_string(),
        );
        assert_eq!(status, 201, "{body}");
        let run = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", s, "--format", "json"],
            &env,
        );
        assert_eq!(run.code, 0, "{run}");
        assert_eq!(finding(&json_plan(&run), "storage-class")["severity"], "ok");
    }
}

#[cfg(feature = "azure")]
mod azure {
    use super::*;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const AKS: &str = "[cluster]\nprovider = \"azure\"\nsubscription_id = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"ml\"\nname = \"prod-aks\"\nlocation = \"eastus\"\n\n[cluster.azure]\ndisk_sku = \"Premium_LRS\"\n";

    async fn arm(skus: &[&str]) -> MockServer {
        // fake-apiserver's host: the kubeconfig's server is this cluster's.
        arm_at(skus, "127.0.0.1").await
    }

    /// ARM answering the SKU list and a managed cluster whose API server FQDN is `fqdn`.
    async fn arm_at(skus: &[&str], fqdn: &str) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ml/providers/Microsoft.ContainerService/managedClusters/prod-aks"))
            .and(header("authorization", "Bearer raystack-test-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"name": "prod-aks", "properties": {"fqdn": fqdn}}),
            ))
            .mount(&server)
            .await;
        let value: Vec<Value> = skus
            .iter()
            .map(|name| json!({
                "resourceType": "disks", "name": name, "tier": "Premium", "size": "P1",
                "locations": ["eastus"],
                "locationInfo": [{"location": "eastus", "zones": ["1", "2", "3"], "zoneDetails": []}],
                "capabilities": [], "restrictions": []
            }))
            .collect();
        Mock::given(method("GET"))
            .and(path("/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Compute/skus"))
            .and(header("authorization", "Bearer raystack-test-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": value})))
            .mount(&server)
            .await;
        server
    }

    #[test]
    fn another_clusters_kubeconfig_fails_plan_and_apply_before_reading_anything() {
        let rt = runtime();
        let server = rt.block_on(arm_at(
            &["Premium_LRS"],
            "prod-aks-dns-1a2b.hcp.eastus.azmk8s.io",
        ));
        let uri = server.uri();
        assert_other_cluster_refused(
            AKS,
            &[("RAYSTACK_AZURE_ENDPOINT", uri.as_str())],
            "preflight_azure_other_cluster",
        );
    }

    #[test]
    fn disk_sku_not_offered_is_an_error_and_offered_passes() {
        let rt = runtime();
        let (dir, fake, stack) = cluster_with(AKS);
        let s = stack.to_str().unwrap();

        let without = rt.block_on(arm(&["StandardSSD_LRS"]));
        let uri = without.uri();
        let run = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", s, "--format", "json"],
            &[("RAYSTACK_AZURE_ENDPOINT", uri.as_str())],
        );
        assert_eq!(run.code, 1, "{run}");
        let plan = json_plan(&run);
        let f = finding(&plan, "azure-disk-sku");
        assert_eq!(f["severity"], "error");
        assert!(
            f["message"].as_str().unwrap().contains("Premium_LRS"),
            "{f}"
        );

        let with = rt.block_on(arm(&["StandardSSD_LRS", "Premium_LRS"]));
        let uri = with.uri();
        let run = raystack(
            dir.path(),
            &fake.kubeconfig,
            &["plan", s, "--format", "json"],
            &[("RAYSTACK_AZURE_ENDPOINT", uri.as_str())],
        );
        let plan = json_plan(&run);
        assert_eq!(finding(&plan, "azure-disk-sku")["severity"], "ok");
        // AKS's managed-csi-premium class is not in the fake cluster: still an error, and named.
        let sc = finding(&plan, "storage-class");
        assert_eq!(sc["severity"], "error");
        assert!(
            sc["message"]
                .as_str()
                .unwrap()
                .contains("managed-csi-premium"),
            "{sc}"
        );
    }
}
