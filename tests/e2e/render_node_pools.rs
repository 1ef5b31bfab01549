//! Stacks that fit real clusters (docs/design.md §1.2): a GPU stack on every provider with
//! placement, identity, env and images, golden and strictly valid against the Kubernetes types
//! and the RayCluster CRD of KubeRay 1.2, 1.3 and 1.7; the warnings a new user needs (GPU image,
//! GPU taints per cloud, Ray version); `[[patches]]` (merge and JSON patch, refusals located);
//! and the table of derived names with their limits.

use std::path::Path;

use assert_cmd::Command;
use raystack::render::{manifests, render};
use raystack::stack::{self, Stack};

use crate::render_crd::{fixture_for, problems};
use crate::render_k8s_types::check;

/// The GPU stack of this file on `provider`, with `[ray] kuberay = kuberay`.
fn gpu_stack_text(provider: &str, kuberay: &str) -> String {
    let (cluster, gpu_placement, redis_zone) = match provider {
        "aws" => (
            "provider = \"aws\"\nname = \"ml-eks\"\nregion = \"us-west-2\"",
            "node_selector = { \"karpenter.sh/nodepool\" = \"gpu\" }\ntolerations = [{ key = \"nvidia.com/gpu\", operator = \"Exists\", effect = \"NoSchedule\" }]",
            "us-west-2a",
        ),
        "gcp" => (
            "provider = \"gcp\"\nproject = \"acme-ml\"\nlocation = \"us-central1\"\nname = \"ml-gke\"",
            "node_selector = { \"cloud.google.com/gke-accelerator\" = \"nvidia-l4\" }\ntolerations = [{ key = \"nvidia.com/gpu\", operator = \"Equal\", value = \"present\", effect = \"NoSchedule\" }]",
            "us-central1-a",
        ),
        "azure" => (
            "provider = \"azure\"\nsubscription_id = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"ml\"\nname = \"ml-aks\"\nlocation = \"eastus\"",
            "node_selector = { \"kubernetes.azure.com/agentpool\" = \"gpupool\" }\ntolerations = [{ key = \"sku\", operator = \"Equal\", value = \"gpu\", effect = \"NoSchedule\" }, { key = \"node.kubernetes.io/unreachable\", operator = \"Exists\", effect = \"NoExecute\", toleration_seconds = 30 }]",
            "eastus-1",
        ),
        _ => (
            "provider = \"local\"",
            "node_selector = { \"nvidia.com/gpu.present\" = \"true\" }",
            "zone-a",
        ),
    };
    format!(
        r#"[stack]
name = "ray-np"
labels = {{ team = "ml-platform" }}
annotations = {{ "acme.com/owner" = "ml" }}

[cluster]
{cluster}

[durability]
max_data_loss = "2s"

[redis]
storage = "8Gi"
node_selector = {{ pool = "system" }}
affinity = {{ zone = "{redis_zone}" }}
service_account = "redis"
priority_class = "ray-critical"
annotations = {{ "karpenter.sh/do-not-disrupt" = "true" }}

[ray]
version = "2.45.0"
kuberay = "{kuberay}"

[ray.head]
node_selector = {{ pool = "system" }}
affinity = {{ same_zone_as_redis = true }}
service_account = "ray-head"
priority_class = "ray-critical"
labels = {{ "app.acme.com/tier" = "control" }}
env = {{ RAY_LOG_TO_STDERR = "1" }}

[[ray.workers]]
group = "gpu"
min_replicas = 0
max_replicas = 4
cpu = "8"
memory = "32Gi"
gpu = 1
{gpu_placement}
service_account = "ray-worker"
image_pull_secrets = ["regcred"]
env = {{ NCCL_DEBUG = "WARN" }}
env_from_secret = {{ HF_TOKEN = "hf-token/token" }}

[ray.workers.affinity]
required = [{{ key = "node.acme.com/gpu-memory", operator = "Gt", values = ["20"] }}]
preferred = [{{ weight = 50, key = "capacity-type", operator = "In", values = ["on-demand"] }}]
"#
    )
}

fn parse(text: &str) -> Result<Stack, stack::Diagnostics> {
    raystack::render::parse_str(Path::new("stacks/np.toml"), text)
}

#[test]
fn a_gpu_stack_on_every_provider_renders_valid_objects_for_every_kuberay_generation() {
    for provider in ["local", "aws", "gcp", "azure"] {
        for kuberay in ["1.2.2", "1.3.0", "1.7.0"] {
            let stack = parse(&gpu_stack_text(provider, kuberay))
                .unwrap_or_else(|d| panic!("{provider} {kuberay}:\n{d}"));
            assert_eq!(stack.warnings, [], "{provider} {kuberay}");
            let fixture = fixture_for(stack.ray.kuberay);
            assert_eq!(fixture, kuberay);
            let rendered = render(&stack);
            for o in &rendered.objects {
                if o.kind() == "RayCluster" {
                    let p = problems(&o.manifest, fixture);
                    assert!(p.is_empty(), "{provider} {kuberay}:\n{}", p.join("\n"));
                } else if let Err(e) = check(&o.manifest) {
                    panic!("{provider} {kuberay}: {}: {e}", o.address());
                }
            }
            if kuberay == "1.3.0" {
                insta::assert_snapshot!(format!("gpu_{provider}"), manifests(&rendered.objects));
            }
        }
    }
}

/// The warnings a GPU group gets, as `validate` prints them.
fn warnings(text: &str) -> String {
    let stack = parse(text).unwrap_or_else(|d| panic!("{d}"));
    stack
        .warnings
        .iter()
        .map(|w| format!("warning: {w}\n"))
        .collect()
}

fn minimal(provider_lines: &str, ray: &str, workers: &str) -> String {
    format!(
        "[stack]\nname = \"w\"\n\n[cluster]\n{provider_lines}\n\n[ray]\nversion = \"2.45.0\"\n{ray}\n\n[[ray.workers]]\ngroup = \"gpu\"\ngpu = 1\n{workers}\n"
    )
}

const EKS: &str = "provider = \"aws\"\nname = \"e\"\nregion = \"us-west-2\"";
const GKE: &str = "provider = \"gcp\"\nproject = \"p\"\nlocation = \"us-central1\"\nname = \"g\"";
const AKS: &str = "provider = \"azure\"\nsubscription_id = \"s\"\nresource_group = \"r\"\nname = \"a\"\nlocation = \"eastus\"";

#[test]
fn gpu_groups_get_the_gpu_image_and_the_warnings_each_cloud_needs() {
    // No image anywhere: Ray's GPU image for the version, the head on the CPU image.
    let s = parse(&minimal("provider = \"local\"", "", "")).unwrap();
    assert_eq!(s.ray.workers[0].image, "rayproject/ray:2.45.0-gpu");
    assert_eq!(s.ray.head.image, "rayproject/ray:2.45.0");
    assert_eq!(s.warnings, []);

    let mut all = String::new();
    for (name, cluster) in [("eks", EKS), ("gke", GKE), ("aks", AKS)] {
        all.push_str(&format!("--- {name}, no toleration\n"));
        all.push_str(&warnings(&minimal(cluster, "", "")));
    }
    all.push_str("--- a CPU image for every group, another Ray version on the head\n");
    all.push_str(&warnings(&minimal(
        "provider = \"local\"",
        "image = \"registry.acme.com/ray:2.45.0\"\n\n[ray.head]\nimage = \"rayproject/ray:2.46.0\"",
        "",
    )));
    all.push_str("--- the group's own CPU image\n");
    all.push_str(&warnings(&minimal(
        "provider = \"local\"",
        "",
        "image = \"rayproject/ray:2.45.0-py311-cpu\"",
    )));
    all.push_str("--- tolerated and selected: no warning\n");
    all.push_str(&warnings(&minimal(
        EKS,
        "",
        "tolerations = [{ key = \"nvidia.com/gpu\", operator = \"Exists\" }]",
    )));
    all.push_str(&warnings(&minimal(
        GKE,
        "",
        "node_selector = { \"cloud.google.com/gke-accelerator\" = \"nvidia-l4\" }",
    )));
    all.push_str(&warnings(&minimal(
        AKS,
        "",
        "tolerations = [{ key = \"sku\", value = \"gpu\", effect = \"NoSchedule\" }]",
    )));
    insta::assert_snapshot!(all);
}

#[test]
fn validate_prints_warnings_on_stderr_and_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(&path, minimal(EKS, "", "")).unwrap();
    let out = Command::cargo_bin("raystack")
        .unwrap()
        .arg("validate")
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stack = raystack::stack::load(&path).unwrap();
    let want: String = stack
        .warnings
        .iter()
        .map(|w| format!("warning: {w}\n"))
        .collect();
    assert_eq!(stack.warnings.len(), 1);
    assert_eq!(stderr, want);
}

/// Every diagnostic of `text`, as `validate` prints them.
fn errors(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("must be refused:\n{text}"),
        Err(d) => format!("{d}\n"),
    }
}

const LOCAL: &str = "[stack]\nname = \"ray-prod\"\n\n[cluster]\nprovider = \"local\"\n\n[ray]\nversion = \"2.45.0\"\nkuberay = \"1.3.0\"\n\n[[ray.workers]]\ngroup = \"cpu\"\n";

fn with_patch(patch: &str) -> String {
    format!("{LOCAL}\n{patch}")
}

/// The unified diff of the rendered YAML without and with `patch`.
fn patch_diff(patch: &str) -> String {
    let plain = manifests(&render(&parse(LOCAL).unwrap()).objects);
    let stack = parse(&with_patch(patch)).unwrap_or_else(|d| panic!("{d}"));
    let patched = manifests(&render(&stack).objects);
    similar::TextDiff::from_lines(&plain, &patched)
        .unified_diff()
        .context_radius(2)
        .header("rendered", "patched")
        .to_string()
}

#[test]
fn a_merge_patch_changes_exactly_what_it_says() {
    let diff = patch_diff(
        r#"[[patches]]
target = "RayCluster"
type = "merge"
patch = '''
spec:
  headGroupSpec:
    template:
      spec:
        terminationGracePeriodSeconds: 300
        dnsPolicy: ClusterFirst
'''

[[patches]]
target = "StatefulSet/ray-prod-redis"
type = "merge"
patch = '{"spec": {"template": {"metadata": {"annotations": {"sidecar.istio.io/inject": "false"}}}}}'
"#,
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn a_json_patch_changes_exactly_what_it_says() {
    let diff = patch_diff(
        r#"[[patches]]
target = "RayCluster/ray-prod"
type = "json"
patch = '''
- op: add
  path: /spec/workerGroupSpecs/0/template/spec/hostIPC
  value: false
- op: replace
  path: /spec/workerGroupSpecs/0/rayStartParams
  value: {num-gpus: "0"}
'''
"#,
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn a_json_patch_may_add_a_sidecar_that_leaves_the_wiring_alone() {
    let diff = patch_diff(
        r#"[[patches]]
target = "RayCluster"
type = "json"
patch = '[{"op": "add", "path": "/spec/headGroupSpec/template/spec/containers/-", "value": {"name": "log-shipper", "image": "fluent/fluent-bit:3.1", "env": [{"name": "LEVEL", "value": "info"}]}}]'
"#,
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn refused_patches_are_located_and_name_the_field() {
    let mut all = String::new();
    for (what, patch) in [
        (
            "schema: a string where the CRD wants an integer",
            "[[patches]]\ntarget = \"RayCluster\"\ntype = \"json\"\npatch = '[{\"op\": \"replace\", \"path\": \"/spec/workerGroupSpecs/0/maxReplicas\", \"value\": \"ten\"}]'\n",
        ),
        (
            "schema: a field the CRD does not declare",
            "[[patches]]\ntarget = \"RayCluster\"\ntype = \"merge\"\npatch = '''\nspec:\n  headGroupSpec:\n    replicas: 2\n'''\n",
        ),
        (
            "schema: a misspelled field of a built-in kind",
            "[[patches]]\ntarget = \"StatefulSet\"\ntype = \"merge\"\npatch = '''\nspec:\n  template:\n    spec:\n      hostnetwork: true\n'''\n",
        ),
        (
            "owned: gcsFaultToleranceOptions",
            "[[patches]]\ntarget = \"RayCluster\"\ntype = \"merge\"\npatch = '''\nspec:\n  gcsFaultToleranceOptions:\n    redisAddress: other-redis:6379\n'''\n",
        ),
        (
            "owned: the Redis persistence config",
            "[[patches]]\ntarget = \"ConfigMap\"\ntype = \"merge\"\npatch = '{\"data\": {\"redis.conf\": \"appendonly no\"}}'\n",
        ),
        (
            "owned: the password wiring of the Redis container",
            "[[patches]]\ntarget = \"StatefulSet\"\ntype = \"json\"\npatch = '[{\"op\": \"remove\", \"path\": \"/spec/template/spec/containers/0/env/1\"}]'\n",
        ),
        (
            "owned: a new sidecar of the head that reads the Redis password",
            "[[patches]]\ntarget = \"RayCluster\"\ntype = \"json\"\npatch = '[{\"op\": \"add\", \"path\": \"/spec/headGroupSpec/template/spec/containers/-\", \"value\": {\"name\": \"exporter\", \"image\": \"exporter:1\", \"env\": [{\"name\": \"REDIS_PASSWORD\", \"value\": \"x\"}]}}]'\n",
        ),
        (
            "owned: raystack's labels",
            "[[patches]]\ntarget = \"Service\"\ntype = \"merge\"\npatch = '{\"metadata\": {\"labels\": {\"raystack.dev/stack\": null}}}'\n",
        ),
        (
            "an operation that does not apply",
            "[[patches]]\ntarget = \"RayCluster\"\ntype = \"json\"\npatch = '[{\"op\": \"remove\", \"path\": \"/spec/nope\"}]'\n",
        ),
        (
            "a target that matches nothing",
            "[[patches]]\ntarget = \"StatefulSet/ray-prod-redix\"\ntype = \"merge\"\npatch = '{\"spec\": {}}'\n",
        ),
        (
            "not a kind raystack renders, and a merge patch that is a list",
            "[[patches]]\ntarget = \"Deployment\"\ntype = \"merge\"\npatch = '[]'\n",
        ),
    ] {
        all.push_str(&format!("--- {what}\n"));
        all.push_str(&errors(&with_patch(patch)));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn bad_pod_settings_are_located() {
    let text = r#"[stack]
name = "ray-prod"
labels = { "raystack.dev/stack" = "other", "Bad Key" = "x" }

[cluster]
provider = "local"

[redis]
env = { REDISCLI_AUTH = "x" }
affinity = { same_zone_as_redis = true }

[ray]
version = "2.45.0"

[ray.head]
env = { RAY_REDIS_ADDRESS = "elsewhere:6379", "1BAD" = "x" }
env_from_secret = { TOKEN = "just-a-value" }
annotations = { "ray.io/ft-enabled" = "false" }
service_account = "Ray_Head"

[[ray.workers]]
group = "gpu"
gpu = 1
node_selector = { pool = "has space" }
tolerations = [
  { key = "nvidia.com/gpu", operator = "Exist", effect = "NoScheduel" },
  { key = "x", operator = "Exists", value = "y" },
  { operator = "Equal", value = "y" },
  { key = "x", effect = "NoSchedule", toleration_seconds = 30 },
]

[ray.workers.affinity]
required = [
  { key = "zone", operator = "In", values = [] },
  { key = "gpu-mem", operator = "Gt", values = ["lots"] },
  { key = "spot", operator = "Exists", values = ["true"] },
]
preferred = [{ key = "a", operator = "In", values = ["b"] }, { weight = 101, key = "a", operator = "In", values = ["b"] }]
"#;
    insta::assert_snapshot!(errors(text));
}

#[test]
fn derived_names_table() {
    let stack = parse(
        "[stack]\nname = \"ray-prod\"\n\n[ray]\nversion = \"2.45.0\"\n\n[[ray.workers]]\ngroup = \"cpu\"\n\n[[ray.workers]]\ngroup = \"gpu-a100\"\ngpu = 1\n",
    )
    .unwrap();
    let table: String = stack::derived_names(&stack)
        .iter()
        .map(|d| {
            format!(
                "{:<34} {:<32} {:>3} <= {:>3}  {}\n",
                d.object,
                d.name,
                d.name.len(),
                d.limit,
                d.why
            )
        })
        .collect();
    insta::assert_snapshot!(table);
}

#[test]
fn names_over_their_limits_are_refused_at_the_name_that_derives_them() {
    let long_stack = "a".repeat(42);
    let long_group = "g".repeat(40);
    let text = format!(
        "[stack]\nname = \"{long_stack}\"\n\n[ray]\nversion = \"2.45.0\"\n\n[[ray.workers]]\ngroup = \"{long_group}\"\n"
    );
    insta::assert_snapshot!(errors(&text));
    // At the limit, fine: 41 + "-head-svc" = 50; 41 + 1 + 8 = 50 for the worker prefix.
    let ok = format!(
        "[stack]\nname = \"{}\"\n\n[ray]\nversion = \"2.45.0\"\n\n[[ray.workers]]\ngroup = \"{}\"\n",
        "a".repeat(41),
        "g".repeat(8)
    );
    parse(&ok).unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn the_embedded_crd_schemas_are_the_fixtures_without_descriptions() {
    fn strip(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .filter(|(k, _)| *k != "description")
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    for generation in ["1.2.2", "1.3.0", "1.7.0"] {
        let fixture = crate::render_crd::crd_schema(generation);
        assert_eq!(
            raystack::render::check::embedded_crd_schema(generation),
            strip(&fixture),
            "src/render/crd/rayclusters.v{generation}.json is out of step with tests/fixtures/kuberay"
        );
    }
}

#[test]
fn plan_prints_the_stack_warnings_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(&path, minimal(EKS, "", "")).unwrap();
    let out = Command::cargo_bin("raystack")
        .unwrap()
        .current_dir(dir.path())
        .args(["plan", "--offline"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stack = raystack::stack::load(&path).unwrap();
    let want = format!("warning: {}\n", stack.warnings[0]);
    assert!(stderr.contains(&want), "stderr:\n{stderr}\nwant:\n{want}");
}

#[test]
fn a_patch_shows_in_the_plan_like_any_other_change() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.toml");
    let head = dir.path().join("head.toml");
    std::fs::write(&base, LOCAL).unwrap();
    std::fs::write(
        &head,
        with_patch(
            "[[patches]]\ntarget = \"RayCluster\"\ntype = \"merge\"\npatch = '{\"spec\": {\"headGroupSpec\": {\"template\": {\"spec\": {\"terminationGracePeriodSeconds\": 300}}}}}'\n",
        ),
    )
    .unwrap();
    let out = Command::cargo_bin("raystack")
        .unwrap()
        .args(["diff", "--format", "json"])
        .arg(&base)
        .arg(&head)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes: Vec<(String, String, String)> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .filter(|(_, action, _)| action != "no-op")
        .collect();
    insta::assert_debug_snapshot!(changes);
}
