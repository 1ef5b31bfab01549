//! Every example in `stacks/` is planned by the test suite, so the examples cannot rot: all of
//! them offline, and all of them applied to `fake-apiserver` until `plan` says no changes. The
//! cloud examples are planned and applied online too: their cloud SDK is pointed at a local
//! fake of its API (EKS, GKE, ARM) that answers "healthy" with fake-apiserver's host as the
//! cluster's API server, the fake cluster holds the
//! StorageClass that cloud would have built in (or that the stack names), a namespace the stack
//! does not create exists already, and the fake's RayCluster CRD is the one of the stack's
//! KubeRay version. None is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use raystack::stack::{ProviderConfig, Stack};
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::render_crd::fixture_for;
use crate::support::*;

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    assert!(out.len() >= 10, "expected the example stacks");
    out
}

/// Copies an example into a fresh temp dir (its state lands next to it, not in the repo).
fn copy(example: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join(example.file_name().unwrap());
    std::fs::copy(example, &to).unwrap();
    (dir, to)
}

/// `raystack ARGS` with every cloud endpoint pointed at `cloud` (when given) and test
/// credentials, so no example ever reaches a real cloud.
fn raystack(dir: &Path, args: &[&str], cloud: Option<&str>) -> Run {
    let mut c = Command::new(raystack_bin());
    c.current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RAYSTACK_WAIT_TIMEOUT", "60")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RAYSTACK_AZURE_TOKEN", "raystack-test-token")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL");
    for var in [
        "AWS_ENDPOINT_URL_EKS",
        "RAYSTACK_GKE_ENDPOINT",
        "RAYSTACK_AZURE_ENDPOINT",
    ] {
        match cloud {
            Some(url) => c.env(var, url),
            None => c.env_remove(var),
        };
    }
    Run::from(c.output().unwrap())
}

#[test]
fn every_example_plans_offline() {
    for example in examples() {
        let (dir, stack) = copy(&example);
        let r = raystack(
            dir.path(),
            &[
                "plan",
                stack.to_str().unwrap(),
                "--offline",
                "--format",
                "json",
            ],
            None,
        );
        assert_eq!(r.code, 0, "{}:\n{r}", example.display());
        let plan: Value = serde_json::from_str(&r.stdout).unwrap();
        let n = plan["resource_changes"].as_array().unwrap().len();
        assert_eq!(plan["summary"]["add"], n, "{}", example.display());
        assert_eq!(plan["data_loss"], false);
        assert_eq!(plan["format_version"], "1");
    }
}

/// The last path segment of the request, e.g. the cluster name of `/clusters/NAME`.
fn segment(req: &Request, from_end: usize) -> String {
    let segments: Vec<&str> = req.url.path().split('/').collect();
    segments[segments.len() - 1 - from_end].to_string()
}

/// One local HTTP server that answers like a healthy EKS, GKE and ARM for any cluster name.
async fn healthy_clouds() -> MockServer {
    let server = MockServer::start().await;
    // EKS DescribeCluster and DescribeAddon.
    Mock::given(method("GET"))
        .and(path_regex(r"^/clusters/[^/]+$"))
        .respond_with(|req: &Request| {
            let name = segment(req, 0);
            ResponseTemplate::new(200).set_body_json(json!({"cluster": {
                "name": name,
                "arn": format!("arn:aws:eks:us-west-2:123456789012:cluster/{name}"),
                "version": "1.31",
                "status": "ACTIVE",
                // fake-apiserver's host: the kubeconfig's server is this cluster's (preflight
                // compares them).
                "endpoint": "https://127.0.0.1",
                "roleArn": "arn:aws:iam::123456789012:role/eks-cluster",
                "health": {"issues": []}
            }}))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/clusters/[^/]+/addons/aws-ebs-csi-driver$"))
        .respond_with(|req: &Request| {
            ResponseTemplate::new(200).set_body_json(json!({"addon": {
                "addonName": "aws-ebs-csi-driver", "clusterName": segment(req, 2),
                "status": "ACTIVE", "addonVersion": "v1.35.0-eksbuild.1",
                "health": {"issues": []}
            }}))
        })
        .mount(&server)
        .await;
    // GKE projects.locations.clusters.get.
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/v1/projects/[^/]+/locations/[^/]+/clusters/[^/]+$",
        ))
        .respond_with(|req: &Request| {
            ResponseTemplate::new(200).set_body_json(json!({
                "name": segment(req, 0), "location": segment(req, 2), "status": "RUNNING",
                "currentMasterVersion": "1.30.5-gke.1014001", "endpoint": "127.0.0.1",
                "addonsConfig": {"gcePersistentDiskCsiDriverConfig": {"enabled": true}}
            }))
        })
        .mount(&server)
        .await;
    // ARM managed cluster: its API server is fake-apiserver's host.
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.ContainerService/managedClusters/[^/]+$",
        ))
        .respond_with(|req: &Request| {
            ResponseTemplate::new(200).set_body_json(
                json!({"name": segment(req, 0), "properties": {"fqdn": "127.0.0.1"}}),
            )
        })
        .mount(&server)
        .await;
    // ARM resource SKUs: every managed-disk SKU, in the location the filter asks for.
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/subscriptions/[^/]+/providers/Microsoft.Compute/skus$",
        ))
        .respond_with(|req: &Request| {
            let location = req
                .url
                .query_pairs()
                .find(|(k, _)| k == "$filter")
                .and_then(|(_, f)| f.split('\'').nth(1).map(str::to_string))
                .unwrap_or_else(|| "eastus".into());
            let value: Vec<Value> = ["StandardSSD_LRS", "Premium_LRS", "StandardSSD_ZRS", "Premium_ZRS"]
                .iter()
                .map(|name| json!({
                    "resourceType": "disks", "name": name, "tier": "Premium", "size": "P1",
                    "locations": [location],
                    "locationInfo": [{"location": location, "zones": ["1", "2", "3"], "zoneDetails": []}],
                    "capabilities": [], "restrictions": []
                }))
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({"value": value}))
        })
        .mount(&server)
        .await;
    server
}

/// The StorageClass the Redis PVC names when raystack does not create it: what the cloud
/// builds into its clusters (`standard-rwo`, `managed-csi-premium`, …) or what the stack's
/// `storage_class` names. `None` for the local provider's cluster default and for classes
/// raystack renders itself.
fn class_the_cluster_must_have(stack: &Stack) -> Option<String> {
    let name = raystack::render::storage_class_name(stack)?;
    raystack::render::storage_class(stack)
        .is_none()
        .then_some(name)
}

#[test]
fn every_example_applies_to_the_fake_and_converges() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let clouds = rt.block_on(healthy_clouds());
    let mut providers_seen = std::collections::BTreeSet::new();
    for example in examples() {
        let stack_def = raystack::stack::load(&example).unwrap();
        providers_seen.insert(stack_def.cluster.provider.name());
        let (dir, stack) = copy(&example);
        let crd = format!(
            "{}/tests/fixtures/kuberay/ray.io_rayclusters.v{}.yaml",
            env!("CARGO_MANIFEST_DIR"),
            fixture_for(stack_def.ray.kuberay)
        );
        // prometheus-operator's PrometheusRule CRD too, for the stacks that render alerts.
        let rules_crd = format!(
            "{}/tests/fixtures/prometheus-operator/monitoring.coreos.com_prometheusrules.v0.93.0.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let fake = Fake::start_with_crd(dir.path(), &crd, &["--crd", &rules_crd]);
        if !stack_def.meta.create_namespace {
            // The stack deploys into a namespace someone else owns: it exists already.
            let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": stack_def.meta.namespace}});
            let (status, body) = fake.request(
                "POST",
                "/api/v1/namespaces",
                "application/json",
                &ns.to_string(),
            );
            assert_eq!(status, 201, "{}: {body}", example.display());
        }
        if let Some(class) = class_the_cluster_must_have(&stack_def) {
            let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": class}, "provisioner": "example.test/built-in",
                "volumeBindingMode": "WaitForFirstConsumer"});
            let (status, body) = fake.request(
                "POST",
                "/apis/storage.k8s.io/v1/storageclasses",
                "application/json",
                &sc.to_string(),
            );
            assert_eq!(status, 201, "{}: {body}", example.display());
        }
        let cloud = match stack_def.cluster.provider {
            ProviderConfig::Local => None,
            _ => Some(clouds.uri()),
        };
        let s = stack.to_str().unwrap();
        let k = fake.kubeconfig.to_str().unwrap();
        let what = example.display();

        let r = raystack(
            dir.path(),
            &["plan", s, "--format", "json", "--kubeconfig", k],
            cloud.as_deref(),
        );
        assert_eq!(r.code, 0, "{what}:\n{r}");
        let plan: Value = serde_json::from_str(&r.stdout).unwrap();
        for finding in plan["preflight"].as_array().unwrap() {
            let built = finding["check"] != "provider-not-built";
            // The embedded backend's feature gate cannot be read through the API: always a
            // warning, by design.
            let gate = finding["check"] == "embedded-gcs-feature-gate";
            assert!(
                finding["severity"] == "ok" || !built || gate,
                "{what}: preflight finding {finding}"
            );
        }

        let r = raystack(
            dir.path(),
            &["apply", s, "--auto-approve", "--kubeconfig", k],
            cloud.as_deref(),
        );
        assert_eq!(r.code, 0, "{what}:\n{r}");
        let r = raystack(
            dir.path(),
            &["plan", s, "--detailed-exitcode", "--kubeconfig", k],
            cloud.as_deref(),
        );
        assert_eq!(r.code, 0, "{what}:\n{r}");
        assert!(r.stdout.contains("No changes"), "{what}:\n{r}");
    }
    assert_eq!(
        providers_seen.into_iter().collect::<Vec<_>>(),
        ["aws", "azure", "gcp", "local"],
        "the examples cover every provider"
    );
}
