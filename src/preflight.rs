//! Provider preflight checks (docs/design.md §3): the cloud side through each provider crate
//! (behind its cargo feature) and the cluster side through the Kubernetes API (a usable
//! StorageClass, the RayCluster CRD and whether it matches the stack's KubeRay version). Returns
//! plain findings for the plan; never prints, never panics on a cloud or cluster error.

use std::time::Duration;

use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
pub use raystack_provider::{Finding, Severity};

use crate::render;
use crate::stack::{ProviderConfig, Stack};

/// One Kubernetes read during preflight may take this long before it is reported as a finding.
const KUBE_TIMEOUT: Duration = Duration::from_secs(20);
const RAYCLUSTER_CRD: &str = "rayclusters.ray.io";
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// Runs every check that applies to `stack`. `kube` is `None` when planning offline or when no
/// cluster is reachable; cloud calls are skipped when `offline` is true (a finding says so).
pub async fn run(stack: &Stack, kube: Option<&kube::Client>, offline: bool) -> Vec<Finding> {
    let provider = stack.cluster.provider.name();
    if offline {
        return vec![Finding::warning(
            provider,
            "offline",
            "planned offline: cloud and cluster checks were skipped",
            "run `raystack plan` without --offline before applying",
        )];
    }
    let mut findings = cloud(stack).await;
    if let Some(client) = kube {
        findings.extend(cluster(stack, client).await);
    }
    findings
}

/// True when any finding makes the plan unappliable.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// The cloud-side checks of the stack's provider, or a finding saying this build lacks them.
async fn cloud(stack: &Stack) -> Vec<Finding> {
    match &stack.cluster.provider {
        ProviderConfig::Local => Vec::new(),
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
            findings
        }
        #[cfg(feature = "gcp")]
        ProviderConfig::Gcp(gcp) => {
            let target = raystack_gcp::GkeTarget {
                project: gcp.project.clone(),
                location: gcp.location.clone(),
                name: gcp.name.clone(),
            };
            raystack_gcp::preflight(&target).await
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
            raystack_azure::preflight(&target).await
        }
        #[allow(unreachable_patterns)]
        other => vec![Finding::warning(
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
        )],
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

/// Cluster-side checks: the StorageClass the PVC will use, and the RayCluster CRD.
async fn cluster(stack: &Stack, client: &kube::Client) -> Vec<Finding> {
    let mut findings = storage_class(stack, client).await;
    findings.extend(raycluster_crd(stack, client).await);
    findings
}

async fn storage_class(stack: &Stack, client: &kube::Client) -> Vec<Finding> {
    let provider = "kubernetes";
    let check = "storage-class";
    // The class this stack creates itself, if any (only its name is needed here).
    let created = render::storage_class(stack).map(|sc| sc["metadata"]["name"].clone());
    let api: Api<StorageClass> = Api::all(client.clone());
    match render::storage_class_name(stack) {
        // raystack creates this class itself: nothing to find.
        Some(name) if created.as_ref().and_then(|n| n.as_str()) == Some(name.as_str()) => {
            vec![Finding::ok(provider, check, format!("StorageClass `{name}` is created by this stack"))]
        }
        Some(name) => match with_timeout(api.get_opt(&name)).await {
            Ok(Some(_)) => vec![Finding::ok(provider, check, format!("StorageClass `{name}` exists"))],
            Ok(None) => vec![Finding::error(
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
        None => match with_timeout(api.list(&Default::default())).await {
            Ok(list) => {
                let defaults: Vec<String> = list
                    .items
                    .iter()
                    .filter(|sc| {
                        sc.metadata.annotations.as_ref().and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION)).is_some_and(|v| v == "true")
                    })
                    .filter_map(|sc| sc.metadata.name.clone())
                    .collect();
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

async fn raycluster_crd(stack: &Stack, client: &kube::Client) -> Vec<Finding> {
    let provider = "kubernetes";
    let check = "raycluster-crd";
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = match with_timeout(api.get_opt(RAYCLUSTER_CRD)).await {
        Ok(Some(crd)) => crd,
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
    let crd_has_options = crd_supports_gcs_ft_options(&crd);
    let wants_options = stack.ray.kuberay.has_gcs_ft_options();
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

/// Whether any served version of the CRD declares `spec.gcsFaultToleranceOptions`.
pub fn crd_supports_gcs_ft_options(crd: &CustomResourceDefinition) -> bool {
    crd.spec.versions.iter().filter(|v| v.served).any(|v| {
        v.schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| s.properties.as_ref())
            .and_then(|p| p.get("spec"))
            .and_then(|spec| spec.properties.as_ref())
            .is_some_and(|p| p.contains_key("gcsFaultToleranceOptions"))
    })
}

async fn with_timeout<T>(fut: impl Future<Output = Result<T, kube::Error>>) -> Result<T, String> {
    match tokio::time::timeout(KUBE_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(err)) => Err(kube_error_sentence(&err)),
        Err(_) => Err(format!(
            "the Kubernetes API did not answer within {}s",
            KUBE_TIMEOUT.as_secs()
        )),
    }
}

/// One readable sentence for a kube error (never a Debug dump).
fn kube_error_sentence(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!(
            "the Kubernetes API answered {} {}: {}",
            status.code, status.reason, status.message
        ),
        other => {
            let mut msg = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                msg = format!("{msg}: {s}");
                source = s.source();
            }
            msg
        }
    }
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

    fn crd(version: &str) -> CustomResourceDefinition {
        let path = format!(
            "{}/tests/fixtures/kuberay/ray.io_rayclusters.v{version}.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        serde_saphyr::from_str(&text).unwrap()
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
        assert!(!crd_supports_gcs_ft_options(&crd("1.2.2")));
        assert!(crd_supports_gcs_ft_options(&crd("1.3.0")));
        assert!(crd_supports_gcs_ft_options(&crd("1.7.0")));
    }
}
