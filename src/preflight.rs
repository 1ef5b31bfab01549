//! Provider preflight checks (docs/design.md §3): the cloud side through each provider crate
//! (behind its cargo feature) and the cluster side through the Kubernetes API (a usable
//! StorageClass, the RayCluster CRD and whether it matches the stack's KubeRay version, and the
//! PrometheusRule CRD when `[monitoring] prometheus_rules` asks for alerts). Returns
//! plain findings for the plan; never prints, never panics on a cloud or cluster error. Also
//! whether the kubeconfig's server is the API server of the cloud cluster the stack names
//! ([`identity_mismatch`]), which the engine checks before it reads state or the cluster.
//!
//! Several stacks planned in one command often share a cloud cluster and a Kubernetes API
//! server. A [`Memo`] makes each distinct call once per command: the cloud checks per cloud
//! target, and the cluster reads (the RayCluster CRD, about 1 MB, and the StorageClass lookups)
//! per API server. Stacks that ask at the same time wait for the one call in flight.

use std::collections::BTreeMap;

use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
pub use raystack_provider::{Finding, Severity};

use crate::cluster::Retry;
use crate::render;
use crate::stack::{ProviderConfig, Stack};

/// One Kubernetes read during preflight may take this long before it is reported as a finding.
const RAYCLUSTER_CRD: &str = "rayclusters.ray.io";
const PROMETHEUS_RULE_CRD: &str = "prometheusrules.monitoring.coreos.com";
const CRD_PATH: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

type Cells<T> = crate::memo::OnceMap<String, T>;

/// Results of preflight calls already made in this command, by what they asked.
#[derive(Default)]
pub struct Memo {
    cloud: Cells<CloudFacts>,
    crds: Cells<Result<Option<CrdFields>, String>>,
    classes: Cells<Result<ClassLookup, String>>,
}

/// Which of the fields raystack renders the installed RayCluster CRD declares.
#[derive(Clone, Copy)]
struct CrdFields {
    gcs_ft_options: bool,
    embedded_backend: bool,
    upgrade_strategy: bool,
}

impl CrdFields {
    fn of(crd: &CrdOutline) -> Self {
        CrdFields {
            gcs_ft_options: crd_spec_has(crd, &["gcsFaultToleranceOptions"]),
            embedded_backend: crd_spec_has(crd, &["gcsFaultToleranceOptions", "backend"]),
            upgrade_strategy: crd_spec_has(crd, &["upgradeStrategy"]),
        }
    }
}

/// The part of a CustomResourceDefinition preflight reads: the fields each served version
/// declares under `spec`, two levels deep. The RayCluster CRD is about 260 KB of JSON, nearly all
/// of it nested schemas and descriptions; deserialized as the typed `CustomResourceDefinition`
/// it was a fifth of the CPU of a one-stack plan (`perf`, BENCHMARKS.md "The RayCluster CRD,
/// outlined"). Here everything else is skipped unparsed (`IgnoredAny`).
#[derive(Debug, serde::Deserialize)]
pub struct CrdOutline {
    spec: OutlineSpec,
}

#[derive(Debug, serde::Deserialize)]
struct OutlineSpec {
    #[serde(default)]
    versions: Vec<OutlineVersion>,
}

#[derive(Debug, serde::Deserialize)]
struct OutlineVersion {
    #[serde(default)]
    served: bool,
    schema: Option<OutlineSchema>,
}

#[derive(Debug, serde::Deserialize)]
struct OutlineSchema {
    #[serde(rename = "openAPIV3Schema")]
    open_api_v3_schema: Option<Properties<Properties<Properties<serde::de::IgnoredAny>>>>,
}

/// A schema node reduced to its `properties`, each of type `T`.
#[derive(Debug, serde::Deserialize)]
struct Properties<T> {
    #[serde(default = "BTreeMap::new")]
    properties: BTreeMap<String, T>,
}

/// What a StorageClass read found.
#[derive(Clone)]
enum ClassLookup {
    /// `get` of one class: whether it exists.
    Named(bool),
    /// `list`: the names of the classes marked default.
    Defaults(Vec<String>),
}

impl Memo {
    pub fn new() -> Self {
        Self::default()
    }
}

/// A connected cluster as preflight sees it: its client, and a key naming its API server
/// (the same for every stack planned against it).
#[derive(Clone, Copy)]
pub struct KubeTarget<'a> {
    /// Every read goes through the cluster's door (deadline, retries, one error sentence).
    pub cluster: &'a crate::cluster::Cluster,
    pub key: &'a str,
}

/// Runs every check that applies to `stack`. `kube` is `None` when planning offline or when no
/// cluster is reachable; cloud calls are skipped when `offline` is true (a finding says so).
pub async fn run(
    stack: &Stack,
    kube: Option<&crate::cluster::Cluster>,
    offline: bool,
) -> Vec<Finding> {
    let target = kube.map(|cluster| KubeTarget { cluster, key: "" });
    run_with(stack, target, offline, &Memo::new()).await
}

/// [`run`] with calls shared through `memo` by the stacks of one command.
pub async fn run_with(
    stack: &Stack,
    kube: Option<KubeTarget<'_>>,
    offline: bool,
    memo: &Memo,
) -> Vec<Finding> {
    let provider = stack.cluster.provider.name();
    let mut findings = stack_findings(stack);
    if offline {
        findings.push(Finding::warning(
            provider,
            "offline",
            "planned offline: cloud and cluster checks were skipped",
            "run `raystack plan` without --offline before applying",
        ));
        return findings;
    }
    findings.extend(cloud_facts(stack, memo).await.findings);
    if let Some(target) = kube {
        findings.extend(cluster(stack, target, memo).await);
    }
    findings
}

/// What the cloud checks of `stack` depend on (every field of the provider's target), or
/// `None` when there are none to share.
fn cloud_key(stack: &Stack) -> Option<String> {
    match &stack.cluster.provider {
        ProviderConfig::Local => None,
        other => Some(format!("{other:?}")),
    }
}

/// The name of KubeRay's alpha feature gate for the embedded RocksDB GCS backend.
pub const EMBEDDED_GCS_FEATURE_GATE: &str = "GCSFaultToleranceEmbeddedStorage";

/// Findings that need no cluster: the stack's own warnings (e.g. `replicas` on an autoscaled
/// group), and what the embedded backend needs from the operator, which the Kubernetes API
/// cannot show (feature gates are operator flags).
pub fn stack_findings(stack: &Stack) -> Vec<Finding> {
    let mut findings: Vec<Finding> = stack
        .warnings
        .iter()
        .map(|w| {
            Finding::warning(
                "stack",
                &w.key,
                format!("{}:{}: {}", w.line, w.column, w.message),
                w.help.clone().unwrap_or_default(),
            )
        })
        .collect();
    if stack.durability.backend == crate::stack::GcsBackend::Embedded {
        findings.push(Finding::warning(
            "kuberay",
            "embedded-gcs-feature-gate",
            format!(
                "backend = \"embedded\" needs the KubeRay operator to run with the alpha feature gate `{EMBEDDED_GCS_FEATURE_GATE}` (off by default); without it KubeRay rejects the RayCluster and starts no head"
            ),
            format!(
                "start the operator with `--feature-gates={EMBEDDED_GCS_FEATURE_GATE}=true`; with the Helm chart, add `{{name: {EMBEDDED_GCS_FEATURE_GATE}, enabled: true}}` to the `featureGates` list in your values and `helm upgrade kuberay-operator kuberay/kuberay-operator --version {} -f values.yaml`",
                stack.ray.kuberay
            ),
        ));
    }
    findings
}

/// True when any finding makes the plan unappliable.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// What the cloud said about the cluster a stack names: the findings of its checks, and the
/// addresses of the cluster's API server (empty when it could not be read, for the local
/// provider, and in a build without the provider's feature).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudFacts {
    pub findings: Vec<Finding>,
    pub endpoints: Vec<String>,
}

impl From<Vec<Finding>> for CloudFacts {
    fn from(findings: Vec<Finding>) -> Self {
        CloudFacts {
            findings,
            endpoints: Vec::new(),
        }
    }
}

/// The cloud-side facts of `stack`, each cloud target asked once per command through `memo`.
pub async fn cloud_facts(stack: &Stack, memo: &Memo) -> CloudFacts {
    match cloud_key(stack) {
        Some(key) => memo.cloud.once(key, cloud(stack)).await,
        None => cloud(stack).await,
    }
}

/// The host (or IP) an API server URL or endpoint names, lower-cased: `https://1.2.3.4:443/` and
/// `1.2.3.4` are one host; IPv6 without its brackets.
pub fn endpoint_host(endpoint: &str) -> String {
    let rest = endpoint
        .trim()
        .split_once("://")
        .map_or(endpoint.trim(), |(_, r)| r);
    let rest = rest.split(['/', '?', '#']).next().unwrap_or("");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.rsplit_once(':').map_or(rest, |(h, _)| h),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The cloud cluster a stack names, for messages, and how to get a kubeconfig context for it.
fn cloud_cluster(stack: &Stack) -> Option<(String, String)> {
    match &stack.cluster.provider {
        ProviderConfig::Local => None,
        ProviderConfig::Aws(aws) => Some((
            format!("EKS cluster `{}` ({})", aws.name, aws.region),
            format!(
                "`aws eks update-kubeconfig --name {} --region {}`",
                aws.name, aws.region
            ),
        )),
        ProviderConfig::Gcp(gcp) => Some((
            format!(
                "GKE cluster `{}` ({}, project {})",
                gcp.name, gcp.location, gcp.project
            ),
            format!(
                "`gcloud container clusters get-credentials {} --location {} --project {}`",
                gcp.name, gcp.location, gcp.project
            ),
        )),
        ProviderConfig::Azure(az) => Some((
            format!(
                "AKS cluster `{}` (resource group {})",
                az.name, az.resource_group
            ),
            format!(
                "`az aks get-credentials --resource-group {} --name {}`",
                az.resource_group, az.name
            ),
        )),
    }
}

/// When the stack names a cloud cluster whose API server the cloud gave (`facts.endpoints`),
/// whether the kubeconfig context raystack uses (`context`, `None`: the current one) reaches
/// it: its `server`'s host must be one of the endpoints' hosts. The mismatch as an error
/// naming both and the fix, or `None` (a match, or nothing to compare: the cloud could not be
/// read, and a finding already says why).
pub fn identity_mismatch(
    stack: &Stack,
    facts: &CloudFacts,
    server: &str,
    context: Option<&str>,
) -> Option<String> {
    let (cluster, get_credentials) = cloud_cluster(stack)?;
    if facts.endpoints.is_empty() {
        return None;
    }
    let host = endpoint_host(server);
    if facts.endpoints.iter().any(|e| endpoint_host(e) == host) {
        return None;
    }
    let context = match context {
        Some(c) => format!("the kubeconfig context `{c}`"),
        None => "the current kubeconfig context".to_string(),
    };
    Some(format!(
        "{}: [cluster] names {cluster}, whose API server is {}, but {context} points at {server}: \
         raystack would read and write another cluster than the one preflight checked. \
         Use the context of {cluster} (`--context`, or `context` under [cluster]; {get_credentials} creates one), \
         or fix [cluster] to name the cluster that context reaches",
        stack.source.display(),
        facts.endpoints.join(", "),
    ))
}

/// The cloud-side checks of the stack's provider, or a finding saying this build lacks them.
async fn cloud(stack: &Stack) -> CloudFacts {
    match &stack.cluster.provider {
        ProviderConfig::Local => CloudFacts::default(),
        #[cfg(feature = "aws")]
        ProviderConfig::Aws(aws) => {
            let target = raystack_aws::EksTarget {
                cluster_name: aws.name.clone(),
                region: aws.region.clone(),
            };
            let result = raystack_aws::inspect(&target).await;
            let mut findings = result.findings;
            let cluster_known = findings.iter().any(|f| {
                f.check == raystack_aws::checks::CLUSTER_ACTIVE && f.severity != Severity::Error
            });
            findings.extend(auto_mode_findings(
                aws.auto_mode,
                result.auto_mode,
                cluster_known,
            ));
            CloudFacts {
                findings,
                endpoints: result.endpoints,
            }
        }
        #[cfg(feature = "gcp")]
        ProviderConfig::Gcp(gcp) => {
            let target = raystack_gcp::GkeTarget {
                project: gcp.project.clone(),
                location: gcp.location.clone(),
                name: gcp.name.clone(),
            };
            let result =
                raystack_gcp::inspect(&target, &raystack_gcp::GkeConnection::from_env()).await;
            CloudFacts {
                findings: result.findings,
                endpoints: result.endpoints,
            }
        }
        #[cfg(feature = "azure")]
        ProviderConfig::Azure(az) => {
            let target = raystack_azure::AksTarget {
                subscription_id: az.subscription_id.clone(),
                resource_group: az.resource_group.clone(),
                name: az.name.clone(),
                location: az.location.clone(),
                disk_sku: az.disk_sku.as_str().to_string(),
            };
            let result = raystack_azure::inspect(&target).await;
            CloudFacts {
                findings: result.findings,
                endpoints: result.endpoints,
            }
        }
        #[allow(unreachable_patterns)]
        other => CloudFacts::from(vec![Finding::warning(
            other.name(),
            "provider-not-built",
            format!(
                "this raystack was built without the `{}` feature, so the cloud checks were skipped",
                other.name()
            ),
            format!(
                "install a build with the `{}` feature (the default) to check the cloud side",
                other.name()
            ),
        )]),
    }
}

/// Whether the stack's `[cluster.aws] auto_mode` matches the cluster: the rendered StorageClass's
/// provisioner only exists on one kind of cluster. `cluster_known` is false when the cluster
/// could not be described (another finding already says why).
pub fn auto_mode_findings(
    stack_auto_mode: bool,
    cluster_auto_mode: bool,
    cluster_known: bool,
) -> Vec<Finding> {
    let check = "eks-auto-mode-storage-class";
    match (stack_auto_mode, cluster_auto_mode) {
        (true, true) => vec![Finding::ok(
            "aws",
            check,
            "the StorageClass uses EKS Auto Mode's `ebs.csi.eks.amazonaws.com`, and Auto Mode block storage is on",
        )],
        (false, true) => vec![Finding::warning(
            "aws",
            check,
            "EKS Auto Mode block storage is on, but the stack renders a StorageClass for the EBS CSI add-on (`ebs.csi.aws.com`), which Auto Mode clusters run only if the add-on is installed",
            "set `auto_mode = true` under [cluster.aws] to use Auto Mode's `ebs.csi.eks.amazonaws.com`",
        )],
        (true, false) if cluster_known => vec![Finding::error(
            "aws",
            check,
            "the stack sets `auto_mode = true`, but the cluster's EKS Auto Mode block storage is off, so no provisioner would create the Redis volume",
            "remove `auto_mode` from [cluster.aws] (and install the aws-ebs-csi-driver add-on), or enable Auto Mode on the cluster",
        )],
        _ => Vec::new(),
    }
}

/// Cluster-side checks: the StorageClass the PVC will use, the RayCluster CRD, and the
/// PrometheusRule CRD when the stack renders alerts.
async fn cluster(stack: &Stack, target: KubeTarget<'_>, memo: &Memo) -> Vec<Finding> {
    let (mut findings, crd, rules) = tokio::join!(
        storage_class(stack, target, memo),
        raycluster_crd(stack, target, memo),
        prometheus_rule_crd(stack, target)
    );
    findings.extend(crd);
    findings.extend(rules);
    findings
}

/// With `[monitoring] prometheus_rules`, the PrometheusRule CRD must be installed (apply would
/// fail on the object otherwise). Nothing is read when the stack renders no alerts.
async fn prometheus_rule_crd(stack: &Stack, target: KubeTarget<'_>) -> Vec<Finding> {
    if !stack.monitoring.prometheus_rules {
        return Vec::new();
    }
    let check = "prometheusrule-crd";
    let read = read_crd(target, PROMETHEUS_RULE_CRD).await;
    match read {
        Ok(Some(crd)) if served_specs(&crd).next().is_some() => vec![Finding::ok(
            "kubernetes",
            check,
            "the PrometheusRule CRD is installed: the persistence alerts can be applied",
        )],
        Ok(_) => vec![Finding::error(
            "kubernetes",
            check,
            format!(
                "`[monitoring] prometheus_rules = true` renders a PrometheusRule, but its CRD (`{PROMETHEUS_RULE_CRD}`) is not installed: prometheus-operator is missing"
            ),
            "install prometheus-operator (e.g. the kube-prometheus-stack chart) first, or set prometheus_rules = false",
        )],
        Err(err) => vec![unreachable(check, &err)],
    }
}

/// Reads the class `name` (or lists the classes, for `None`), once per API server.
async fn lookup_class(
    target: KubeTarget<'_>,
    name: Option<&str>,
    memo: &Memo,
) -> Result<ClassLookup, String> {
    let api: Api<StorageClass> = Api::all(target.cluster.client().clone());
    let all = kube::api::ListParams::default();
    let key = format!("{}\n{}", target.key, name.unwrap_or("*"));
    memo.classes
        .once(key, async {
            match name {
                Some(name) => read(target, &format!("StorageClass/{name}"), || {
                    api.get_opt(name)
                })
                .await
                .map(|found| ClassLookup::Named(found.is_some())),
                None => read(target, "storageclasses", || api.list(&all))
                    .await
                    .map(|list| {
                        ClassLookup::Defaults(
                            list.items
                                .iter()
                                .filter(|sc| {
                                    sc.metadata
                                        .annotations
                                        .as_ref()
                                        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                                        .is_some_and(|v| v == "true")
                                })
                                .filter_map(|sc| sc.metadata.name.clone())
                                .collect(),
                        )
                    }),
            }
        })
        .await
}

async fn storage_class(stack: &Stack, target: KubeTarget<'_>, memo: &Memo) -> Vec<Finding> {
    let provider = "kubernetes";
    let check = "storage-class";
    // The class this stack creates itself, if any (only its name is needed here).
    let created = render::storage_class(stack).map(|sc| sc["metadata"]["name"].clone());
    match render::storage_class_name(stack) {
        // raystack creates this class itself: nothing to find.
        Some(name) if created.as_ref().and_then(|n| n.as_str()) == Some(name.as_str()) => {
            vec![Finding::ok(provider, check, format!("StorageClass `{name}` is created by this stack"))]
        }
        Some(name) => match lookup_class(target, Some(&name), memo).await {
            Ok(ClassLookup::Named(true)) | Ok(ClassLookup::Defaults(_)) => vec![Finding::ok(provider, check, format!("StorageClass `{name}` exists"))],
            Ok(ClassLookup::Named(false)) => vec![Finding::error(
                provider,
                check,
                format!("StorageClass `{name}` does not exist in the cluster, so the Redis volume would never be provisioned"),
                match &stack.redis.storage_class {
                    Some(_) => "create it, or change `[redis] storage_class` to one listed by `kubectl get storageclass`".to_string(),
                    None => format!("create `{name}` (the {} provider's default), or set `[redis] storage_class`", stack.cluster.provider.name()),
                },
            )],
            Err(err) => vec![unreachable(check, &err)],
        },
        None => match lookup_class(target, None, memo).await {
            Ok(ClassLookup::Named(_)) => Vec::new(),
            Ok(ClassLookup::Defaults(defaults)) => {
                match defaults.as_slice() {
                    [] => vec![Finding::error(
                        provider,
                        check,
                        "the cluster has no default StorageClass, and the stack names none, so the Redis volume would never be provisioned",
                        "set `[redis] storage_class` to one listed by `kubectl get storageclass`, or mark one as default with `kubectl annotate storageclass NAME storageclass.kubernetes.io/is-default-class=true`",
                    )],
                    [one] => vec![Finding::ok(provider, check, format!("the cluster's default StorageClass `{one}` will hold the Redis volume"))],
                    many => vec![Finding::warning(
                        provider,
                        check,
                        format!("the cluster marks several StorageClasses as default ({}); Kubernetes picks the newest", many.join(", ")),
                        "set `[redis] storage_class` to choose one explicitly",
                    )],
                }
            }
            Err(err) => vec![unreachable(check, &err)],
        },
    }
}

async fn raycluster_crd(stack: &Stack, target: KubeTarget<'_>, memo: &Memo) -> Vec<Finding> {
    let provider = "kubernetes";
    let check = "raycluster-crd";
    // Only which fields the CRD has is read and kept: the CRD itself is about 1 MB of YAML.
    let read = memo.crds.once(target.key.to_string(), async {
        read_crd(target, RAYCLUSTER_CRD)
            .await
            .map(|crd| crd.as_ref().map(CrdFields::of))
    });
    let fields = match read.await {
        Ok(Some(fields)) => fields,
        Ok(None) => {
            return vec![Finding::error(
                provider,
                check,
                format!(
                    "the RayCluster CRD (`{RAYCLUSTER_CRD}`) is not installed: the KubeRay operator is missing"
                ),
                format!(
                    "install KubeRay {} first: `helm repo add kuberay https://ray-project.github.io/kuberay-helm/ && helm install kuberay-operator kuberay/kuberay-operator --version {}`",
                    stack.ray.kuberay, stack.ray.kuberay
                ),
            )];
        }
        Err(err) => return vec![unreachable(check, &err)],
    };
    let wants_options = stack.ray.kuberay.has_gcs_ft_options();
    let crd_has_options = fields.gcs_ft_options;
    if stack.durability.backend == crate::stack::GcsBackend::Embedded && !fields.embedded_backend {
        return vec![Finding::error(
            provider,
            check,
            "backend = \"embedded\" renders `gcsFaultToleranceOptions.backend: rocksdb`, but the installed RayCluster CRD has no such field (KubeRay older than 1.7)",
            "upgrade KubeRay to 1.7.0 or later (CRDs included), or set backend = \"redis\"",
        )];
    }
    if stack.ray.upgrade_strategy.is_some() && !fields.upgrade_strategy {
        return vec![Finding::error(
            provider,
            check,
            format!(
                "the stack says kuberay = \"{}\" and renders `spec.upgradeStrategy`, but the installed RayCluster CRD has no such field (KubeRay older than 1.6)",
                stack.ray.kuberay
            ),
            "set `[ray] kuberay` to the installed operator version, or upgrade KubeRay (CRDs included)",
        )];
    }
    match (wants_options, crd_has_options) {
        (true, false) => vec![Finding::error(
            provider,
            check,
            format!(
                "the stack says kuberay = \"{}\", but the installed RayCluster CRD has no `gcsFaultToleranceOptions` (KubeRay older than 1.3): the fault-tolerance settings would be dropped",
                stack.ray.kuberay
            ),
            "set `[ray] kuberay` to the installed operator version (e.g. \"1.2.2\", which uses the annotation form), or upgrade KubeRay to 1.3 or later",
        )],
        (false, true) => vec![Finding::warning(
            provider,
            check,
            format!(
                "the installed RayCluster CRD supports `gcsFaultToleranceOptions` (KubeRay 1.3 or later), but the stack says kuberay = \"{}\" and renders the older annotation form",
                stack.ray.kuberay
            ),
            "set `[ray] kuberay` to the installed operator version",
        )],
        _ => vec![Finding::ok(
            provider,
            check,
            format!(
                "the RayCluster CRD is installed and matches kuberay = \"{}\"",
                stack.ray.kuberay
            ),
        )],
    }
}

/// The installed KubeRay, as far as its RayCluster CRD tells: the oldest version whose CRD has
/// the fields the installed one has (`raystack import`), with how that was told; `None` when
/// the CRD is not installed. A CRD carries no operator version, so fields are all there is.
pub async fn installed_kuberay(
    cluster: &crate::cluster::Cluster,
) -> Result<Option<(crate::stack::KubeRayVersion, String)>, String> {
    use crate::stack::KubeRayVersion;
    let target = KubeTarget {
        cluster,
        key: "import",
    };
    let Some(crd) = read_crd(target, RAYCLUSTER_CRD).await? else {
        return Ok(None);
    };
    let f = CrdFields::of(&crd);
    let (version, field) = if f.embedded_backend {
        (
            KubeRayVersion::new(1, 7, 0),
            "gcsFaultToleranceOptions.backend",
        )
    } else if f.upgrade_strategy {
        (KubeRayVersion::new(1, 6, 0), "upgradeStrategy")
    } else if f.gcs_ft_options {
        (KubeRayVersion::new(1, 3, 0), "gcsFaultToleranceOptions")
    } else {
        return Ok(Some((
            KubeRayVersion::new(1, 2, 2),
            "the installed RayCluster CRD has no gcsFaultToleranceOptions (KubeRay before 1.3); set the exact operator version".into(),
        )));
    };
    Ok(Some((
        version,
        format!(
            "the oldest KubeRay whose RayCluster CRD has `{field}`, as the installed one does; set the exact operator version"
        ),
    )))
}

/// Whether any served version of the CRD declares the field `spec.<path...>` (one or two keys).
pub fn crd_spec_has(crd: &CrdOutline, path: &[&str]) -> bool {
    served_specs(crd).any(|spec| match path {
        [field] => spec.properties.contains_key(*field),
        [field, sub] => spec
            .properties
            .get(*field)
            .is_some_and(|f| f.properties.contains_key(*sub)),
        _ => false,
    })
}

/// The `spec` schema of each served version.
fn served_specs(
    crd: &CrdOutline,
) -> impl Iterator<Item = &Properties<Properties<serde::de::IgnoredAny>>> {
    crd.spec
        .versions
        .iter()
        .filter(|v| v.served)
        .filter_map(|v| v.schema.as_ref()?.open_api_v3_schema.as_ref())
        .filter_map(|root| root.properties.get("spec"))
}

/// The outline of CRD `name` (`None`: not installed), read through the cluster's door.
async fn read_crd(target: KubeTarget<'_>, name: &str) -> Result<Option<CrdOutline>, String> {
    let request = kube::core::Request::new(CRD_PATH)
        .get(name, &Default::default())
        .map_err(|e| e.to_string())?;
    let address = format!("CustomResourceDefinition/{name}");
    let read = target
        .cluster
        .send("read", &address, Retry::BusyOrDropped, || {
            target
                .cluster
                .client()
                .request::<CrdOutline>(request.clone())
        })
        .await;
    match read {
        Ok(crd) => Ok(Some(crd)),
        Err(crate::cluster::ClusterError::Api { code: 404, .. }) => Ok(None),
        Err(err) => Err(err.to_string()),
    }
}

/// One read through the cluster's door; its error as the one sentence every command prints.
async fn read<T, F, Fut>(target: KubeTarget<'_>, address: &str, attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    target
        .cluster
        .send("read", address, Retry::BusyOrDropped, attempt)
        .await
        .map_err(|e| e.to_string())
}

fn unreachable(check: &str, err: &str) -> Finding {
    Finding::error(
        "kubernetes",
        check,
        format!("could not check the cluster: {err}"),
        "check the kubeconfig context and that the cluster is reachable (`kubectl get storageclass`)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(version: &str) -> CrdOutline {
        let path = format!(
            "{}/tests/fixtures/kuberay/ray.io_rayclusters.v{version}.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        serde_saphyr::from_str(&text).unwrap()
    }

    /// A build without a provider's feature still plans that provider's stacks: one warning in
    /// place of the cloud checks, the whole finding asserted. `scripts/test` runs the library
    /// tests without the provider features too, so every provider is checked there.
    #[cfg(not(all(feature = "aws", feature = "gcp", feature = "azure")))]
    #[tokio::test]
    async fn a_build_without_a_providers_feature_says_its_cloud_checks_were_skipped() {
        let providers = [
            (
                "aws",
                cfg!(feature = "aws"),
                "provider = \"aws\"\nname = \"prod-eks\"\nregion = \"us-west-2\"",
            ),
            (
                "gcp",
                cfg!(feature = "gcp"),
                "provider = \"gcp\"\nproject = \"p\"\nlocation = \"us-central1\"\nname = \"gke\"",
            ),
            (
                "azure",
                cfg!(feature = "azure"),
                "provider = \"azure\"\nsubscription_id = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"rg\"\nname = \"aks\"\nlocation = \"westeurope\"",
            ),
        ];
        let mut checked = 0;
        for (provider, built, cluster) in providers {
            if built {
                continue;
            }
            let toml = format!(
                "[stack]\nname = \"pf\"\n\n[cluster]\n{cluster}\n\n[redis]\nstorage = \"1Gi\"\n\n[ray]\nkuberay = \"1.3.0\"\n\n[[ray.workers]]\ngroup = \"cpu\"\nreplicas = 1\n"
            );
            let stack = crate::stack::parse_str(std::path::Path::new("stack.toml"), &toml)
                .unwrap_or_else(|d| panic!("{d}"));
            let expected = vec![Finding {
                provider: provider.into(),
                check: "provider-not-built".into(),
                severity: Severity::Warning,
                message: format!(
                    "this raystack was built without the `{provider}` feature, so the cloud checks were skipped"
                ),
                fix: Some(format!(
                    "install a build with the `{provider}` feature (the default) to check the cloud side"
                )),
            }];
            assert_eq!(cloud(&stack).await.findings, expected, "{provider}");
            checked += 1;
        }
        assert!(
            checked > 0,
            "this build lacks at least one provider feature"
        );
    }

    #[test]
    fn auto_mode_must_match_the_cluster() {
        let sev = |f: Vec<Finding>| f.iter().map(|f| f.severity).collect::<Vec<_>>();
        assert_eq!(sev(auto_mode_findings(true, true, true)), [Severity::Ok]);
        assert_eq!(
            sev(auto_mode_findings(false, true, true)),
            [Severity::Warning]
        );
        assert_eq!(
            sev(auto_mode_findings(true, false, true)),
            [Severity::Error]
        );
        assert!(auto_mode_findings(false, false, true).is_empty());
        assert!(
            auto_mode_findings(true, false, false).is_empty(),
            "unknown cluster: no claim"
        );
    }

    #[test]
    fn detects_gcs_ft_options_by_crd_version() {
        assert!(!crd_spec_has(&crd("1.2.2"), &["gcsFaultToleranceOptions"]));
        assert!(crd_spec_has(&crd("1.3.0"), &["gcsFaultToleranceOptions"]));
        assert!(crd_spec_has(&crd("1.7.0"), &["gcsFaultToleranceOptions"]));
    }

    #[test]
    fn detects_upgrade_strategy_and_embedded_backend_by_crd_version() {
        let backend = ["gcsFaultToleranceOptions", "backend"];
        assert!(!crd_spec_has(&crd("1.3.0"), &backend));
        assert!(crd_spec_has(&crd("1.7.0"), &backend));
        assert!(!crd_spec_has(&crd("1.3.0"), &["upgradeStrategy"]));
        assert!(crd_spec_has(&crd("1.7.0"), &["upgradeStrategy"]));
    }
    fn stack_for(cluster: &str) -> Stack {
        let toml = format!(
            "[stack]\nname = \"pf\"\n\n[cluster]\n{cluster}\n\n[ray]\nkuberay = \"1.3.0\"\n\n[[ray.workers]]\ngroup = \"cpu\"\nreplicas = 1\n"
        );
        crate::stack::parse_str(std::path::Path::new("stack.toml"), &toml)
            .unwrap_or_else(|d| panic!("{d}"))
    }

    fn facts(endpoints: &[&str]) -> CloudFacts {
        CloudFacts {
            findings: Vec::new(),
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn endpoint_hosts_compare_hosts_not_strings() {
        for (endpoint, host) in [
            (
                "https://ABCDEF.gr7.us-west-2.eks.amazonaws.com",
                "abcdef.gr7.us-west-2.eks.amazonaws.com",
            ),
            ("https://34.1.2.3:443/", "34.1.2.3"),
            ("34.1.2.3", "34.1.2.3"),
            (
                "prod-aks-dns-1a2b.hcp.eastus.azmk8s.io",
                "prod-aks-dns-1a2b.hcp.eastus.azmk8s.io",
            ),
            ("https://[fd00::1]:6443", "fd00::1"),
        ] {
            assert_eq!(endpoint_host(endpoint), host, "{endpoint}");
        }
    }

    #[test]
    fn the_kubeconfig_server_must_be_the_named_cloud_clusters() {
        let gke = stack_for(
            "provider = \"gcp\"\nproject = \"acme-ml\"\nlocation = \"us-central1\"\nname = \"prod-gke\"",
        );
        // GKE's endpoint is an IP; the kubeconfig's server is a URL around it.
        assert_eq!(
            identity_mismatch(&gke, &facts(&["34.1.2.3"]), "https://34.1.2.3", None),
            None
        );
        assert_eq!(
            identity_mismatch(&gke, &facts(&["34.1.2.3"]), "https://35.9.9.9/", Some("staging")),
            Some("stack.toml: [cluster] names GKE cluster `prod-gke` (us-central1, project acme-ml), whose API server is 34.1.2.3, but the kubeconfig context `staging` points at https://35.9.9.9/: raystack would read and write another cluster than the one preflight checked. Use the context of GKE cluster `prod-gke` (us-central1, project acme-ml) (`--context`, or `context` under [cluster]; `gcloud container clusters get-credentials prod-gke --location us-central1 --project acme-ml` creates one), or fix [cluster] to name the cluster that context reaches".to_string())
        );
        // Nothing to compare: the cloud could not be read (a finding says why).
        assert_eq!(
            identity_mismatch(&gke, &facts(&[]), "https://35.9.9.9/", None),
            None
        );
        // The local provider names no cloud cluster.
        let local = stack_for("provider = \"local\"");
        assert_eq!(
            identity_mismatch(&local, &facts(&["34.1.2.3"]), "https://35.9.9.9/", None),
            None
        );
    }
}
