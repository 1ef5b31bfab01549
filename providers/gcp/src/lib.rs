//! GKE preflight for raystack: asks the GKE API (google-cloud-container-v1) whether the cluster
//! is RUNNING and can provision persistent disks (the Compute Engine PD CSI driver add-on), and
//! returns the answers as plain findings, with the cluster's API server endpoints (which the main
//! crate compares with the kubeconfig's server). The StorageClass is chosen and rendered by the main crate
//! (`render/storage.rs`), so that choice has one home.
//!
//! Credentials are the SDK's Application Default Credentials, unless `RAYSTACK_GKE_ENDPOINT`
//! points at another endpoint (tests, air-gapped mirrors): then requests go there anonymously.

mod errors;
use std::time::Duration;

use google_cloud_container_v1::client::ClusterManager;
use google_cloud_container_v1::model::Cluster;
use google_cloud_container_v1::model::cluster::Status;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
pub use raystack_provider::{Finding, Severity};

/// Provider name used in every finding of this crate.
pub const PROVIDER: &str = "gcp";

/// The Compute Engine PD CSI driver's provisioner (named in findings; the StorageClass itself is
/// chosen and rendered by the main crate).
pub const PD_CSI_PROVISIONER: &str = "pd.csi.storage.gke.io";
/// Environment variable that overrides the GKE endpoint (requests then carry no credentials).
pub const ENDPOINT_ENV: &str = "RAYSTACK_GKE_ENDPOINT";

/// Check identifiers, stable for scripts and tests.
pub mod checks {
    pub const CLUSTER_RUNNING: &str = "gke-cluster-running";
    pub const KUBERNETES_VERSION: &str = "gke-kubernetes-version";
    pub const PD_CSI_DRIVER: &str = "gke-pd-csi-driver";
    /// Used when the GKE API could not be asked at all (credentials, access, network).
    pub const API: &str = "gke-api";
}

/// Time allowed for one HTTP attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the GetCluster call, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
/// Hard cap on the whole preflight, credential loading included.
pub const OVERALL_TIMEOUT: Duration = Duration::from_secs(25);

/// The GKE cluster a stack targets (`[cluster] project`, `location`, `name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GkeTarget {
    pub project: String,
    /// A region (`us-central1`) or a zone (`us-central1-a`).
    pub location: String,
    pub name: String,
}

impl GkeTarget {
    /// The API resource name: `projects/P/locations/L/clusters/N`.
    pub fn resource_name(&self) -> String {
        format!(
            "projects/{}/locations/{}/clusters/{}",
            self.project, self.location, self.name
        )
    }
}

/// How to reach the GKE API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GkeConnection {
    /// Another endpoint than `https://container.googleapis.com`.
    pub endpoint: Option<String>,
    /// Send no credentials (for fakes and mirrors) instead of Application Default Credentials.
    pub anonymous: bool,
}

impl GkeConnection {
    /// `RAYSTACK_GKE_ENDPOINT` (anonymous) when set and not empty, else the SDK's defaults.
    pub fn from_env() -> Self {
        match std::env::var(ENDPOINT_ENV) {
            Ok(url) if !url.trim().is_empty() => Self {
                endpoint: Some(url.trim().to_owned()),
                anonymous: true,
            },
            _ => Self::default(),
        }
    }
}

/// Everything the GKE preflight learned: findings plus the facts the renderer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpPreflight {
    pub findings: Vec<Finding>,
    /// The cluster is GKE Autopilot (`autopilot.enabled`). `false` when unknown.
    pub autopilot: bool,
    /// `currentMasterVersion`, when the cluster could be read.
    pub kubernetes_version: Option<String>,
    /// Every address GKE gives the cluster's API server, any of which a kubeconfig for it may
    /// name as its server: `endpoint` (an IP), the private endpoint, and the DNS endpoint
    /// (`controlPlaneEndpointsConfig`). Empty when the cluster could not be read.
    pub endpoints: Vec<String>,
}

impl GcpPreflight {
    /// True when no finding is an error.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error)
    }
}

/// Runs the GKE checks with the connection from the environment and returns the findings.
pub async fn preflight(target: &GkeTarget) -> Vec<Finding> {
    inspect(target, &GkeConnection::from_env()).await.findings
}

/// Runs the GKE checks over `connection`. Never panics and never takes longer than
/// [`OVERALL_TIMEOUT`].
pub async fn inspect(target: &GkeTarget, connection: &GkeConnection) -> GcpPreflight {
    let mut out = GcpPreflight {
        findings: Vec::new(),
        autopilot: false,
        kubernetes_version: None,
        endpoints: Vec::new(),
    };
    if [&target.project, &target.location, &target.name]
        .iter()
        .any(|s| s.trim().is_empty())
    {
        out.findings.push(Finding::error(
            PROVIDER,
            checks::CLUSTER_RUNNING,
            "The stack file does not name the GKE cluster's project, location and name.",
            "Set `project`, `location` and `name` under [cluster] in the stack file, e.g. project = \"acme-ml\", location = \"us-central1\", name = \"prod-gke\".",
        ));
        return out;
    }
    let cluster = match tokio::time::timeout(OVERALL_TIMEOUT, get_cluster(target, connection)).await
    {
        Ok(Ok(cluster)) => cluster,
        Ok(Err(finding)) => {
            out.findings.push(finding);
            return out;
        }
        Err(_) => {
            out.findings.push(errors::overall_timeout(target));
            return out;
        }
    };
    out.findings = cluster_findings(&cluster, target);
    out.autopilot = cluster.autopilot.as_ref().is_some_and(|a| a.enabled);
    out.kubernetes_version = Some(cluster.current_master_version.clone()).filter(|v| !v.is_empty());
    out.endpoints = endpoints(&cluster);
    out
}

/// The cluster's API server addresses, without empty ones and duplicates.
fn endpoints(cluster: &Cluster) -> Vec<String> {
    let mut all = vec![cluster.endpoint.clone()];
    if let Some(private) = &cluster.private_cluster_config {
        #[allow(
            deprecated,
            reason = "superseded by ipEndpointsConfig (read below), but GKE still fills these in, and a kubeconfig made from them names them"
        )]
        {
            all.push(private.private_endpoint.clone());
            all.push(private.public_endpoint.clone());
        }
    }
    if let Some(config) = &cluster.control_plane_endpoints_config {
        if let Some(dns) = &config.dns_endpoint_config {
            all.push(dns.endpoint.clone());
        }
        if let Some(ip) = &config.ip_endpoints_config {
            all.push(ip.public_endpoint.clone());
            all.push(ip.private_endpoint.clone());
        }
    }
    let mut out: Vec<String> = Vec::new();
    for e in all {
        if !e.is_empty() && !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

async fn get_cluster(target: &GkeTarget, connection: &GkeConnection) -> Result<Cluster, Finding> {
    let mut builder = ClusterManager::builder()
        .with_retry_policy(
            Aip194Strict
                .with_attempt_limit(3)
                .with_time_limit(OPERATION_TIMEOUT),
        )
        .with_attempt_timeout(ATTEMPT_TIMEOUT);
    if let Some(endpoint) = &connection.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    if connection.anonymous {
        builder = builder
            .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build());
    }
    let client = builder
        .build()
        .await
        .map_err(|e| errors::client_build_failed(&e))?;
    client
        .get_cluster()
        .set_name(target.resource_name())
        .send()
        .await
        .map_err(|e| errors::get_cluster_failed(&e, target))
}

/// The findings for a cluster the API returned: status, version, PD CSI driver.
fn cluster_findings(cluster: &Cluster, target: &GkeTarget) -> Vec<Finding> {
    let mut findings = vec![status_finding(cluster, target)];
    let name = &target.name;
    if cluster.current_master_version.is_empty() {
        findings.push(Finding::warning(
            PROVIDER,
            checks::KUBERNETES_VERSION,
            format!("GKE cluster `{name}` reports no Kubernetes version."),
            format!(
                "Check it with `gcloud container clusters describe {name} --location {}`.",
                target.location
            ),
        ));
    } else {
        findings.push(Finding::ok(
            PROVIDER,
            checks::KUBERNETES_VERSION,
            format!(
                "GKE cluster `{name}` runs Kubernetes {}.",
                cluster.current_master_version
            ),
        ));
    }
    findings.push(pd_csi_finding(cluster, target));
    findings
}

fn status_finding(cluster: &Cluster, target: &GkeTarget) -> Finding {
    let name = &target.name;
    let describe = format!(
        "gcloud container clusters describe {name} --location {} --project {} --format='value(status)'",
        target.location, target.project
    );
    let detail = status_detail(cluster);
    let status = cluster.status.name().unwrap_or("UNKNOWN");
    match &cluster.status {
        Status::Running => Finding::ok(
            PROVIDER,
            checks::CLUSTER_RUNNING,
            format!("GKE cluster `{name}` in {} is RUNNING.", target.location),
        ),
        Status::Reconciling => Finding::warning(
            PROVIDER,
            checks::CLUSTER_RUNNING,
            format!(
                "GKE cluster `{name}` is RECONCILING (an upgrade or repair is in progress){detail}."
            ),
            format!("Applying may be slow or interrupted until `{describe}` prints RUNNING."),
        ),
        Status::Provisioning => Finding::error(
            PROVIDER,
            checks::CLUSTER_RUNNING,
            format!("GKE cluster `{name}` is PROVISIONING, not ready yet."),
            format!("Wait until `{describe}` prints RUNNING, then plan again."),
        ),
        Status::Stopping => Finding::error(
            PROVIDER,
            checks::CLUSTER_RUNNING,
            format!("GKE cluster `{name}` is STOPPING (being deleted)."),
            "Point the stack file's [cluster] at a cluster that is RUNNING.",
        ),
        Status::Error | Status::Degraded => Finding::error(
            PROVIDER,
            checks::CLUSTER_RUNNING,
            format!("GKE cluster `{name}` is {status}{detail}."),
            format!(
                "Fix the cause shown by `gcloud container clusters describe {name} --location {}`, then plan again.",
                target.location
            ),
        ),
        _ => Finding::warning(
            PROVIDER,
            checks::CLUSTER_RUNNING,
            format!("GKE cluster `{name}` reports status {status}, which raystack does not know."),
            format!("Check that `{describe}` prints RUNNING."),
        ),
    }
}

/// The cluster's condition messages (or its legacy `statusMessage`), as " (a; b)" or "".
fn status_detail(cluster: &Cluster) -> String {
    let mut messages: Vec<&str> = cluster
        .conditions
        .iter()
        .map(|c| c.message.trim().trim_end_matches('.'))
        .filter(|m| !m.is_empty())
        .collect();
    #[allow(deprecated)]
    let legacy = cluster.status_message.trim().trim_end_matches('.');
    if messages.is_empty() && !legacy.is_empty() {
        messages.push(legacy);
    }
    if messages.is_empty() {
        String::new()
    } else {
        format!(" ({})", messages.join("; "))
    }
}

fn pd_csi_finding(cluster: &Cluster, target: &GkeTarget) -> Finding {
    let name = &target.name;
    if cluster.autopilot.as_ref().is_some_and(|a| a.enabled) {
        return Finding::ok(
            PROVIDER,
            checks::PD_CSI_DRIVER,
            format!(
                "GKE cluster `{name}` is Autopilot, which always runs the Compute Engine PD CSI driver."
            ),
        );
    }
    let enabled = cluster
        .addons_config
        .as_ref()
        .and_then(|a| a.gce_persistent_disk_csi_driver_config.as_ref())
        .map(|c| c.enabled);
    let fix = format!(
        "Run `gcloud container clusters update {name} --location {} --project {} --update-addons=GcePersistentDiskCsiDriver=ENABLED`.",
        target.location, target.project
    );
    match enabled {
        Some(true) => Finding::ok(
            PROVIDER,
            checks::PD_CSI_DRIVER,
            format!("The Compute Engine PD CSI driver add-on is enabled on GKE cluster `{name}`."),
        ),
        Some(false) => Finding::error(
            PROVIDER,
            checks::PD_CSI_DRIVER,
            format!(
                "The Compute Engine PD CSI driver add-on is disabled on GKE cluster `{name}`, so Redis volumes ({PD_CSI_PROVISIONER}) cannot be provisioned."
            ),
            fix,
        ),
        None => Finding::error(
            PROVIDER,
            checks::PD_CSI_DRIVER,
            format!(
                "GKE cluster `{name}` does not report the Compute Engine PD CSI driver add-on (addonsConfig.gcePersistentDiskCsiDriverConfig), so it is not enabled."
            ),
            fix,
        ),
    }
}
