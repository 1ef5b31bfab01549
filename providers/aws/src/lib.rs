//! EKS preflight for raystack: asks the EKS API (aws-sdk-eks) whether the cluster is ready for a
//! Ray stack with durable Redis storage and returns the answers as plain findings, with the
//! cluster's API server endpoint (which the main crate compares with the kubeconfig's server).
//!
//! Checks: the cluster is ACTIVE (and its Kubernetes version), whether EKS Auto Mode block storage
//! is on (then the built-in `ebs.csi.eks.amazonaws.com` provisioner serves volumes), and otherwise
//! that the `aws-ebs-csi-driver` add-on is ACTIVE. Credentials, region-independent endpoint
//! overrides (`AWS_ENDPOINT_URL_EKS`, `AWS_ENDPOINT_URL`) and profiles come from the AWS SDK's own
//! default chain. Every failure becomes one finding with a fix, never a panic.

mod errors;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_eks::types::{Addon, AddonStatus, Cluster, ClusterStatus};
pub use raystack_provider::{Finding, Severity};

/// Provider name used in every finding of this crate.
pub const PROVIDER: &str = "aws";
/// The EKS add-on that installs the EBS CSI driver on clusters without Auto Mode.
pub const EBS_CSI_ADDON: &str = "aws-ebs-csi-driver";
/// The provisioner of the EBS CSI driver add-on.
pub const EBS_CSI_PROVISIONER: &str = "ebs.csi.aws.com";
/// The provisioner EKS Auto Mode's built-in block storage uses.
pub const AUTO_MODE_PROVISIONER: &str = "ebs.csi.eks.amazonaws.com";
/// The AWS managed policy the EBS CSI driver's IAM role needs.
pub const EBS_CSI_POLICY_ARN: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy";

/// Check identifiers, stable for scripts and tests.
pub mod checks {
    pub const CLUSTER_ACTIVE: &str = "eks-cluster-active";
    pub const KUBERNETES_VERSION: &str = "eks-kubernetes-version";
    pub const AUTO_MODE: &str = "eks-auto-mode-storage";
    pub const EBS_CSI_ADDON: &str = "eks-ebs-csi-addon";
    /// Used when the EKS API could not be asked at all (credentials, access, network).
    pub const API: &str = "eks-api";
}

/// Time allowed to open a TCP/TLS connection to the EKS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for one EKS API call, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
/// Hard cap on the whole preflight, credential loading included.
pub const OVERALL_TIMEOUT: Duration = Duration::from_secs(25);

/// The EKS cluster a stack targets (`[cluster] name`, `region`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksTarget {
    pub cluster_name: String,
    pub region: String,
}

/// Everything the EKS preflight learned: findings plus the facts the renderer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsPreflight {
    pub findings: Vec<Finding>,
    /// EKS Auto Mode block storage is on (`storageConfig.blockStorage.enabled`); volumes then use
    /// [`AUTO_MODE_PROVISIONER`]. `false` when unknown.
    pub auto_mode: bool,
    /// The cluster's Kubernetes version (e.g. `1.31`), when the cluster could be described.
    pub kubernetes_version: Option<String>,
    /// The API server endpoint EKS gives for the cluster (`cluster.endpoint`, a URL), which a
    /// kubeconfig for it names as its server; empty when the cluster could not be described.
    pub endpoints: Vec<String>,
}

impl AwsPreflight {
    /// True when no finding is an error.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error)
    }
}

/// The StorageClass provisioner to render: Auto Mode's built-in one, or the EBS CSI add-on's.
pub fn provisioner(auto_mode: bool) -> &'static str {
    if auto_mode {
        AUTO_MODE_PROVISIONER
    } else {
        EBS_CSI_PROVISIONER
    }
}

/// Runs the EKS checks and returns only the findings. See [`inspect`] for the detected facts.
pub async fn preflight(target: &EksTarget) -> Vec<Finding> {
    inspect(target).await.findings
}

/// Runs the EKS checks: DescribeCluster, then (without Auto Mode) DescribeAddon for the EBS CSI
/// driver. Never panics and never takes longer than [`OVERALL_TIMEOUT`].
pub async fn inspect(target: &EksTarget) -> AwsPreflight {
    if target.cluster_name.trim().is_empty() || target.region.trim().is_empty() {
        return AwsPreflight {
            findings: vec![Finding::error(
                PROVIDER,
                checks::CLUSTER_ACTIVE,
                "The stack file names no EKS cluster or region to check.",
                "Set `name` and `region` under [cluster] in the stack file, e.g. name = \"prod-eks\", region = \"us-west-2\".",
            )],
            auto_mode: false,
            kubernetes_version: None,
            endpoints: Vec::new(),
        };
    }
    match tokio::time::timeout(OVERALL_TIMEOUT, inspect_inner(target)).await {
        Ok(result) => result,
        Err(_) => AwsPreflight {
            findings: vec![errors::overall_timeout(target)],
            auto_mode: false,
            kubernetes_version: None,
            endpoints: Vec::new(),
        },
    }
}

async fn client(target: &EksTarget) -> aws_sdk_eks::Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(target.region.clone()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .load()
        .await;
    aws_sdk_eks::Client::new(&sdk)
}

async fn inspect_inner(target: &EksTarget) -> AwsPreflight {
    let client = client(target).await;
    let mut out = AwsPreflight {
        findings: Vec::new(),
        auto_mode: false,
        kubernetes_version: None,
        endpoints: Vec::new(),
    };

    let cluster = match client
        .describe_cluster()
        .name(&target.cluster_name)
        .send()
        .await
    {
        Ok(output) => match output.cluster {
            Some(cluster) => cluster,
            None => {
                out.findings.push(Finding::error(
                    PROVIDER,
                    checks::CLUSTER_ACTIVE,
                    format!("EKS answered DescribeCluster for `{}` without a cluster.", target.cluster_name),
                    "Check that AWS_ENDPOINT_URL_EKS / AWS_ENDPOINT_URL (if set) point at the EKS API.",
                ));
                return out;
            }
        },
        Err(err) => {
            out.findings
                .push(errors::describe_cluster_failed(&err, target));
            return out;
        }
    };

    out.endpoints = cluster.endpoint().map(str::to_owned).into_iter().collect();
    out.findings.extend(cluster_findings(&cluster, target));
    if matches!(
        cluster.status(),
        Some(ClusterStatus::Failed | ClusterStatus::Deleting)
    ) {
        // The add-on does not matter for a cluster that cannot be used.
        return out;
    }
    out.kubernetes_version = cluster.version().map(str::to_owned);
    out.auto_mode = auto_mode(&cluster);
    if out.auto_mode {
        out.findings.push(Finding::ok(
            PROVIDER,
            checks::AUTO_MODE,
            format!(
                "EKS Auto Mode block storage is enabled, so volumes use the built-in provisioner {AUTO_MODE_PROVISIONER} and no EBS CSI add-on is needed."
            ),
        ));
        return out;
    }

    let account = account_from_arn(cluster.arn());
    match client
        .describe_addon()
        .cluster_name(&target.cluster_name)
        .addon_name(EBS_CSI_ADDON)
        .send()
        .await
    {
        Ok(output) => match output.addon {
            Some(addon) => out
                .findings
                .push(addon_finding(&addon, target, account.as_deref())),
            None => out.findings.push(addon_missing(target, account.as_deref())),
        },
        Err(err) => {
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception())
            {
                out.findings.push(addon_missing(target, account.as_deref()));
            } else {
                out.findings
                    .push(errors::describe_addon_failed(&err, target));
            }
        }
    }
    out
}

/// EKS Auto Mode block storage: `storageConfig.blockStorage.enabled`.
fn auto_mode(cluster: &Cluster) -> bool {
    cluster
        .storage_config()
        .and_then(|s| s.block_storage())
        .and_then(|b| b.enabled())
        .unwrap_or(false)
}

/// The account id in `arn:aws:eks:<region>:<account>:cluster/<name>`.
fn account_from_arn(arn: Option<&str>) -> Option<String> {
    let account = arn?.split(':').nth(4)?;
    (!account.is_empty()).then(|| account.to_owned())
}

fn describe_cmd(target: &EksTarget) -> String {
    format!(
        "aws eks describe-cluster --name {} --region {} --query cluster.status",
        target.cluster_name, target.region
    )
}

fn cluster_findings(cluster: &Cluster, target: &EksTarget) -> Vec<Finding> {
    let name = &target.cluster_name;
    let mut findings = Vec::new();
    let issues: Vec<String> = cluster
        .health()
        .map(|h| {
            h.issues()
                .iter()
                .filter_map(|i| i.message().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let status = cluster.status();
    match status {
        Some(ClusterStatus::Active) => {
            findings.push(Finding::ok(
                PROVIDER,
                checks::CLUSTER_ACTIVE,
                format!("EKS cluster `{name}` in {} is ACTIVE.", target.region),
            ));
        }
        Some(s @ (ClusterStatus::Creating | ClusterStatus::Updating | ClusterStatus::Pending)) => {
            findings.push(Finding::error(
                PROVIDER,
                checks::CLUSTER_ACTIVE,
                format!("EKS cluster `{name}` is {}, not ready yet.", s.as_str()),
                format!(
                    "Wait until `{}` prints ACTIVE, then plan again.",
                    describe_cmd(target)
                ),
            ));
        }
        Some(ClusterStatus::Failed) => {
            let detail = if issues.is_empty() {
                String::new()
            } else {
                format!(" ({})", issues.join("; "))
            };
            findings.push(Finding::error(
                PROVIDER,
                checks::CLUSTER_ACTIVE,
                format!("EKS cluster `{name}` is FAILED{detail}."),
                "Fix the cause reported by `aws eks describe-cluster`, or delete and recreate the cluster, then plan again.",
            ));
        }
        Some(ClusterStatus::Deleting) => {
            findings.push(Finding::error(
                PROVIDER,
                checks::CLUSTER_ACTIVE,
                format!("EKS cluster `{name}` is DELETING."),
                "Point the stack file's [cluster] at a cluster that is ACTIVE.",
            ));
        }
        Some(other) => {
            findings.push(Finding::warning(
                PROVIDER,
                checks::CLUSTER_ACTIVE,
                format!(
                    "EKS cluster `{name}` reports status {}, which raystack does not know.",
                    other.as_str()
                ),
                format!("Check that `{}` prints ACTIVE.", describe_cmd(target)),
            ));
        }
        None => {
            findings.push(Finding::warning(
                PROVIDER,
                checks::CLUSTER_ACTIVE,
                format!("EKS cluster `{name}` reports no status."),
                format!("Check that `{}` prints ACTIVE.", describe_cmd(target)),
            ));
        }
    }
    match cluster.version() {
        Some(version) => findings.push(Finding::ok(
            PROVIDER,
            checks::KUBERNETES_VERSION,
            format!("EKS cluster `{name}` runs Kubernetes {version}."),
        )),
        None => findings.push(Finding::warning(
            PROVIDER,
            checks::KUBERNETES_VERSION,
            format!("EKS cluster `{name}` reports no Kubernetes version."),
            "Check the cluster with `aws eks describe-cluster`.",
        )),
    }
    findings
}

fn addon_fix(target: &EksTarget, account: Option<&str>) -> String {
    let account = account.unwrap_or("<account>");
    format!(
        "Create an IAM role for the EBS CSI driver (IRSA or EKS Pod Identity) with the policy {EBS_CSI_POLICY_ARN}, then run `aws eks create-addon --cluster-name {} --region {} --addon-name {EBS_CSI_ADDON} --service-account-role-arn arn:aws:iam::{account}:role/AmazonEKS_EBS_CSI_DriverRole`.",
        target.cluster_name, target.region
    )
}

fn addon_missing(target: &EksTarget, account: Option<&str>) -> Finding {
    Finding::error(
        PROVIDER,
        checks::EBS_CSI_ADDON,
        format!(
            "EKS cluster `{}` has no {EBS_CSI_ADDON} add-on, so Redis volumes ({EBS_CSI_PROVISIONER}) cannot be provisioned.",
            target.cluster_name
        ),
        addon_fix(target, account),
    )
}

fn addon_finding(addon: &Addon, target: &EksTarget, account: Option<&str>) -> Finding {
    let name = &target.cluster_name;
    let version = addon
        .addon_version()
        .map(|v| format!(" ({v})"))
        .unwrap_or_default();
    let issues: Vec<String> = addon
        .health()
        .map(|h| {
            h.issues()
                .iter()
                .map(|i| match (i.code(), i.message()) {
                    (Some(code), Some(msg)) => format!("{}: {msg}", code.as_str()),
                    (Some(code), None) => code.as_str().to_owned(),
                    (None, Some(msg)) => msg.to_owned(),
                    (None, None) => "unspecified issue".to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let issues_text = if issues.is_empty() {
        "no health issues reported".to_owned()
    } else {
        issues.join("; ")
    };
    match addon.status() {
        Some(AddonStatus::Active) => Finding::ok(
            PROVIDER,
            checks::EBS_CSI_ADDON,
            format!("The {EBS_CSI_ADDON} add-on{version} on EKS cluster `{name}` is ACTIVE."),
        ),
        Some(s @ (AddonStatus::Creating | AddonStatus::Updating)) => Finding::warning(
            PROVIDER,
            checks::EBS_CSI_ADDON,
            format!(
                "The {EBS_CSI_ADDON} add-on on EKS cluster `{name}` is {}, so volumes may not bind until it is ACTIVE.",
                s.as_str()
            ),
            format!(
                "Wait until `aws eks describe-addon --cluster-name {name} --region {} --addon-name {EBS_CSI_ADDON} --query addon.status` prints ACTIVE.",
                target.region
            ),
        ),
        Some(
            s @ (AddonStatus::Degraded | AddonStatus::CreateFailed | AddonStatus::UpdateFailed),
        ) => Finding::error(
            PROVIDER,
            checks::EBS_CSI_ADDON,
            format!(
                "The {EBS_CSI_ADDON} add-on on EKS cluster `{name}` is {} ({issues_text}).",
                s.as_str()
            ),
            format!(
                "Fix the reported issues (most often the driver's IAM role: it needs {EBS_CSI_POLICY_ARN}), then run `aws eks update-addon --cluster-name {name} --region {} --addon-name {EBS_CSI_ADDON} --resolve-conflicts OVERWRITE`.",
                target.region
            ),
        ),
        Some(s @ (AddonStatus::Deleting | AddonStatus::DeleteFailed)) => Finding::error(
            PROVIDER,
            checks::EBS_CSI_ADDON,
            format!(
                "The {EBS_CSI_ADDON} add-on on EKS cluster `{name}` is {}.",
                s.as_str()
            ),
            addon_fix(target, account),
        ),
        Some(other) => Finding::warning(
            PROVIDER,
            checks::EBS_CSI_ADDON,
            format!(
                "The {EBS_CSI_ADDON} add-on on EKS cluster `{name}` reports status {}, which raystack does not know.",
                other.as_str()
            ),
            "Check it with `aws eks describe-addon`; it must be ACTIVE.",
        ),
        None => Finding::warning(
            PROVIDER,
            checks::EBS_CSI_ADDON,
            format!("The {EBS_CSI_ADDON} add-on on EKS cluster `{name}` reports no status."),
            "Check it with `aws eks describe-addon`; it must be ACTIVE.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisioner_follows_auto_mode() {
        assert_eq!(provisioner(true), "ebs.csi.eks.amazonaws.com");
        assert_eq!(provisioner(false), "ebs.csi.aws.com");
    }

    #[test]
    fn account_is_read_from_cluster_arn() {
        assert_eq!(
            account_from_arn(Some("arn:aws:eks:us-west-2:123456789012:cluster/prod")).as_deref(),
            Some("123456789012")
        );
        assert_eq!(account_from_arn(Some("garbage")), None);
        assert_eq!(account_from_arn(None), None);
    }
}
