//! AKS preflight for raystack: asks Azure Resource Manager (Microsoft.Compute resource SKUs)
//! whether the stack's managed-disk SKU is offered in the cluster's location, unrestricted for the
//! subscription, and zone-redundant where the SKU needs zones; and reads the managed cluster's
//! API server FQDNs, which the main crate compares with the kubeconfig's server. Returns plain
//! findings and those FQDNs. The StorageClass is chosen and rendered by the main crate
//! (`render/storage.rs`).
//!
//! The SDK calls live in [`arm`]; the checks below work on plain [`Sku`] data. Credentials are
//! chosen from the environment by [`arm`] (workload identity, a service principal, else the
//! Azure CLI's login, then the machine's managed identity) unless `RAYSTACK_AZURE_ENDPOINT`
//! points at another endpoint (tests, air-gapped mirrors): then the bearer token is
//! `RAYSTACK_AZURE_TOKEN`.

pub mod arm;

use std::time::Duration;

pub use arm::ArmError;
pub use raystack_provider::{Finding, Severity};

/// Provider name used in every finding of this crate.
pub const PROVIDER: &str = "azure";
/// Environment variable that overrides the ARM endpoint.
pub const ENDPOINT_ENV: &str = "RAYSTACK_AZURE_ENDPOINT";
/// Environment variable with the bearer token sent to an overridden endpoint.
pub const TOKEN_ENV: &str = "RAYSTACK_AZURE_TOKEN";
/// The token sent to an overridden endpoint when `RAYSTACK_AZURE_TOKEN` is not set.
pub const DEFAULT_TEST_TOKEN: &str = "raystack-test-token";
/// Hard cap on the whole preflight, token acquisition and paging included.
pub const OVERALL_TIMEOUT: Duration = Duration::from_secs(25);

/// Check identifiers, stable for scripts and tests.
pub mod checks {
    pub const DISK_SKU: &str = "azure-disk-sku";
    pub const DISK_ZONES: &str = "azure-disk-zones";
    /// Used when ARM could not be asked at all (credentials, access, network).
    pub const API: &str = "azure-api";
    /// The managed cluster's read (its API server FQDNs).
    pub const CLUSTER: &str = "aks-cluster";
}

/// The AKS cluster a stack targets (`[cluster]` and `[cluster.azure] disk_sku`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AksTarget {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    /// ARM location name, e.g. `eastus`.
    pub location: String,
    /// Managed disk SKU, e.g. `StandardSSD_LRS`, `Premium_LRS`, `StandardSSD_ZRS`, `Premium_ZRS`.
    pub disk_sku: String,
}

/// How to reach ARM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureConnection {
    /// Another endpoint than `https://management.azure.com`.
    pub endpoint: Option<String>,
    /// A fixed bearer token instead of the credential the environment provides.
    pub token: Option<String>,
}

impl AzureConnection {
    /// `RAYSTACK_AZURE_ENDPOINT` with the token `RAYSTACK_AZURE_TOKEN` (default
    /// [`DEFAULT_TEST_TOKEN`]) when set and not empty, else the SDK's defaults.
    pub fn from_env() -> Self {
        match std::env::var(ENDPOINT_ENV) {
            Ok(url) if !url.trim().is_empty() => Self {
                endpoint: Some(url.trim().to_owned()),
                token: Some(
                    std::env::var(TOKEN_ENV)
                        .ok()
                        .filter(|t| !t.is_empty())
                        .unwrap_or_else(|| DEFAULT_TEST_TOKEN.to_owned()),
                ),
            },
            _ => Self::default(),
        }
    }
}

/// One resource SKU as ARM lists it (only the fields the checks read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sku {
    /// e.g. `disks`, `virtualMachines`.
    pub resource_type: String,
    pub name: String,
    pub locations: Vec<String>,
    /// `locationInfo`: each location with its availability zones.
    pub location_zones: Vec<(String, Vec<String>)>,
    pub restrictions: Vec<Restriction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestrictionKind {
    Location,
    Zone,
    Other,
}

/// A SKU restriction: for `Location`, `values` are the locations; for `Zone`, `zones` are the
/// restricted zones of the locations in `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    pub kind: RestrictionKind,
    pub values: Vec<String>,
    pub zones: Vec<String>,
    /// `reasonCode`: `NotAvailableForSubscription` or `QuotaId`.
    pub reason: Option<String>,
}

/// Runs the AKS checks with the connection from the environment.
pub async fn preflight(target: &AksTarget) -> Vec<Finding> {
    preflight_with(target, &AzureConnection::from_env()).await
}

/// Everything the AKS preflight learned: the findings, and the cluster's API server FQDNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzurePreflight {
    pub findings: Vec<Finding>,
    /// `properties.fqdn`, `privateFQDN`, `azurePortalFQDN` of the managed cluster, any of
    /// which a kubeconfig for it may name as its server; empty when it could not be read.
    pub endpoints: Vec<String>,
}

/// Runs the AKS checks with the connection from the environment, keeping the facts.
pub async fn inspect(target: &AksTarget) -> AzurePreflight {
    inspect_with(target, &AzureConnection::from_env()).await
}

/// The SKU checks and the managed cluster's read, concurrently, over `connection`. A cluster
/// ARM does not know is an error; one that cannot be read otherwise is a warning (its endpoint
/// is then not compared with the kubeconfig's server).
pub async fn inspect_with(target: &AksTarget, connection: &AzureConnection) -> AzurePreflight {
    let cluster = async {
        if target.resource_group.trim().is_empty() || target.name.trim().is_empty() {
            return Err(None);
        }
        match tokio::time::timeout(
            OVERALL_TIMEOUT,
            arm::managed_cluster_fqdns(
                connection,
                &target.subscription_id,
                &target.resource_group,
                &target.name,
            ),
        )
        .await
        {
            Ok(Ok(fqdns)) => Ok(fqdns),
            Ok(Err(err)) => Err(Some(cluster_finding(&err, target))),
            Err(_) => Err(Some(Finding::warning(
                PROVIDER,
                checks::CLUSTER,
                format!(
                    "Reading AKS cluster `{}` did not finish within {} seconds, so its API server was not compared with the kubeconfig's.",
                    target.name,
                    OVERALL_TIMEOUT.as_secs()
                ),
                NETWORK_FIX,
            ))),
        }
    };
    let (mut findings, cluster) = tokio::join!(preflight_with(target, connection), cluster);
    let endpoints = match cluster {
        Ok(fqdns) => fqdns,
        Err(finding) => {
            findings.extend(finding);
            Vec::new()
        }
    };
    AzurePreflight {
        findings,
        endpoints,
    }
}

/// Why the managed cluster could not be read, as a finding.
fn cluster_finding(err: &ArmError, target: &AksTarget) -> Finding {
    let (name, rg) = (&target.name, &target.resource_group);
    match err {
        ArmError::Status { status: 404, .. } => Finding::error(
            PROVIDER,
            checks::CLUSTER,
            format!(
                "AKS cluster `{name}` does not exist in resource group `{rg}` of subscription {}.",
                target.subscription_id
            ),
            format!(
                "Check `name`, `resource_group` and `subscription_id` under [cluster] (`az aks list --resource-group {rg} -o table`)."
            ),
        ),
        other => Finding::warning(
            PROVIDER,
            checks::CLUSTER,
            format!(
                "AKS cluster `{name}` could not be read ({}), so its API server was not compared with the kubeconfig's.",
                describe_arm_error(other)
            ),
            format!(
                "Grant the identity Microsoft.ContainerService/managedClusters/read on the cluster (the Reader role on `{rg}`), or check `az aks show --resource-group {rg} --name {name}`."
            ),
        ),
    }
}

fn describe_arm_error(err: &ArmError) -> String {
    match err {
        ArmError::Status {
            status,
            code,
            message,
        } => {
            let mut s = format!("ARM answered {status}");
            if let Some(code) = code {
                s.push_str(&format!(" {code}"));
            }
            if let Some(message) = message {
                s.push_str(&format!(": {}", message.trim_end_matches('.')));
            }
            s
        }
        ArmError::Credential(e) => format!("no Azure credential: {e}"),
        ArmError::Network(e) | ArmError::Unreadable(e) | ArmError::Other(e) => e.clone(),
    }
}

/// Runs the AKS checks over `connection`. Never panics and never takes longer than
/// [`OVERALL_TIMEOUT`].
pub async fn preflight_with(target: &AksTarget, connection: &AzureConnection) -> Vec<Finding> {
    if [&target.subscription_id, &target.location, &target.disk_sku]
        .iter()
        .any(|s| s.trim().is_empty())
    {
        return vec![Finding::error(
            PROVIDER,
            checks::DISK_SKU,
            "The stack file does not name the AKS cluster's subscription, location and disk SKU.",
            "Set `subscription_id` and `location` under [cluster] and `disk_sku` under [cluster.azure] in the stack file.",
        )];
    }
    let location = normalize_location(&target.location);
    match tokio::time::timeout(
        OVERALL_TIMEOUT,
        arm::list_skus(connection, &target.subscription_id, &location),
    )
    .await
    {
        Ok(Ok(skus)) => check_disk_sku(&skus, target),
        Ok(Err(err)) => vec![error_finding(&err, target)],
        Err(_) => vec![Finding::error(
            PROVIDER,
            checks::API,
            format!(
                "Listing Azure resource SKUs for {location} did not finish within {} seconds.",
                OVERALL_TIMEOUT.as_secs()
            ),
            NETWORK_FIX,
        )],
    }
}

const LOGIN_FIX: &str = "Run `az login` (and `az account set --subscription <id>`), or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, then plan again.";
const NETWORK_FIX: &str = "Check the network path to management.azure.com (proxy, VPN, firewall) and, if set, RAYSTACK_AZURE_ENDPOINT.";

/// `East US` and `eastus` name the same ARM location.
fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

fn same_location(a: &str, b: &str) -> bool {
    normalize_location(a) == normalize_location(b)
}

fn list_cmd(location: &str) -> String {
    format!(
        "az vm list-skus --location {location} --resource-type disks --query \"[].name\" -o tsv | sort -u"
    )
}

/// The disk SKU checks on an already fetched SKU list (pure).
pub fn check_disk_sku(skus: &[Sku], target: &AksTarget) -> Vec<Finding> {
    let location = normalize_location(&target.location);
    let wanted = &target.disk_sku;
    // ARM lists one entry per disk size (P1..P80, E1..E80): the SKU is usable if any entry is.
    let offered: Vec<&Sku> = skus
        .iter()
        .filter(|s| {
            s.resource_type.eq_ignore_ascii_case("disks") && s.name.eq_ignore_ascii_case(wanted)
        })
        .filter(|s| {
            s.locations.iter().any(|l| same_location(l, &location))
                || s.location_zones
                    .iter()
                    .any(|(l, _)| same_location(l, &location))
        })
        .collect();
    if offered.is_empty() {
        return vec![Finding::error(
            PROVIDER,
            checks::DISK_SKU,
            format!("Disk SKU {wanted} is not offered in {location}."),
            format!(
                "Choose another `disk_sku` under [cluster.azure] (StandardSSD_LRS, Premium_LRS, StandardSSD_ZRS, Premium_ZRS); `{}` lists the ones offered there.",
                list_cmd(&location)
            ),
        )];
    }
    let location_restriction = |s: &Sku| -> Option<Option<String>> {
        s.restrictions
            .iter()
            .find(|r| {
                r.kind == RestrictionKind::Location
                    && (r.values.is_empty() || r.values.iter().any(|v| same_location(v, &location)))
            })
            .map(|r| r.reason.clone())
    };
    let usable: Vec<&Sku> = offered
        .iter()
        .copied()
        .filter(|s| location_restriction(s).is_none())
        .collect();
    if usable.is_empty() {
        let reason = offered
            .iter()
            .find_map(|s| location_restriction(s))
            .flatten();
        let (why, fix) = match reason.as_deref() {
            Some("QuotaId") => (
                "the subscription's offer type does not allow it".to_owned(),
                "Choose another `disk_sku` under [cluster.azure], or use a subscription whose offer includes it.".to_owned(),
            ),
            Some(code) => (
                format!("it is restricted for this subscription ({code})"),
                format!(
                    "Choose another `disk_sku` under [cluster.azure] or location, or ask Azure support to enable {wanted} in {location} for the subscription."
                ),
            ),
            None => (
                "it is restricted for this subscription".to_owned(),
                format!("Choose another `disk_sku` under [cluster.azure] or location; `{}` shows what is offered.", list_cmd(&location)),
            ),
        };
        return vec![Finding::error(
            PROVIDER,
            checks::DISK_SKU,
            format!("Disk SKU {wanted} is offered in {location}, but {why}."),
            fix,
        )];
    }
    let mut findings = vec![Finding::ok(
        PROVIDER,
        checks::DISK_SKU,
        format!(
            "Disk SKU {wanted} is offered in {location} for subscription {}.",
            target.subscription_id
        ),
    )];
    if wanted.to_ascii_uppercase().ends_with("_ZRS") {
        let zones = usable_zones(&usable, &location);
        if zones.is_empty() {
            findings.push(Finding::error(
                PROVIDER,
                checks::DISK_ZONES,
                format!("Disk SKU {wanted} is zone-redundant, but {location} offers it in no availability zones for this subscription."),
                format!(
                    "Use {} (locally redundant) under [cluster.azure], or a location with availability zones.",
                    wanted[..wanted.len() - 4].to_owned() + "_LRS"
                ),
            ));
        } else {
            findings.push(Finding::ok(
                PROVIDER,
                checks::DISK_ZONES,
                format!(
                    "Disk SKU {wanted} spans availability zones {} in {location}.",
                    zones.join(", ")
                ),
            ));
        }
    }
    findings
}

/// Zones listed for the location minus the zones a `Zone` restriction takes away.
fn usable_zones(skus: &[&Sku], location: &str) -> Vec<String> {
    let mut zones: Vec<String> = Vec::new();
    for sku in skus {
        let restricted: Vec<&String> = sku
            .restrictions
            .iter()
            .filter(|r| {
                r.kind == RestrictionKind::Zone
                    && (r.values.is_empty() || r.values.iter().any(|v| same_location(v, location)))
            })
            .flat_map(|r| r.zones.iter())
            .collect();
        for (l, zs) in &sku.location_zones {
            if !same_location(l, location) {
                continue;
            }
            for z in zs {
                if !restricted.contains(&z) && !zones.contains(z) {
                    zones.push(z.clone());
                }
            }
        }
    }
    zones.sort();
    zones
}

fn error_finding(err: &ArmError, target: &AksTarget) -> Finding {
    let sub = &target.subscription_id;
    match err {
        ArmError::Status {
            status: 401, code, ..
        } => Finding::error(
            PROVIDER,
            checks::API,
            format!(
                "Authentication failed: Azure Resource Manager rejected the token{}.",
                code.as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
            LOGIN_FIX,
        ),
        ArmError::Status {
            status: 403,
            message,
            ..
        } => Finding::error(
            PROVIDER,
            checks::API,
            format!(
                "Access denied: the Azure identity may not list resource SKUs (Microsoft.Compute/skus/read) in subscription {sub}."
            ),
            format!(
                "Grant it the Reader role on the subscription (`az role assignment create --assignee <principal> --role Reader --scope /subscriptions/{sub}`), or log in as an identity that has it{}.",
                message
                    .as_deref()
                    .map(|m| format!("; ARM said: {}", m.trim_end_matches('.')))
                    .unwrap_or_default()
            ),
        ),
        ArmError::Status { status: 404, .. } => Finding::error(
            PROVIDER,
            checks::API,
            format!("Azure subscription {sub} was not found."),
            "Check `subscription_id` under [cluster] in the stack file; `az account list -o table` lists the subscriptions you can use.",
        ),
        ArmError::Status {
            status,
            code,
            message,
        } => {
            let what = match (code, message) {
                (Some(c), Some(m)) => format!("{c}: {}", m.trim_end_matches('.')),
                (Some(c), None) => c.clone(),
                (None, Some(m)) => m.trim_end_matches('.').to_owned(),
                (None, None) => "no details".to_owned(),
            };
            Finding::error(
                PROVIDER,
                checks::API,
                format!(
                    "Azure Resource Manager answered HTTP {status} when listing resource SKUs ({what})."
                ),
                "Retry later; if it persists, check the Azure status page and the subscription.",
            )
        }
        ArmError::Credential(detail) => Finding::error(
            PROVIDER,
            checks::API,
            format!("No usable Azure credentials were found: {detail}."),
            LOGIN_FIX,
        ),
        ArmError::Network(detail) => Finding::error(
            PROVIDER,
            checks::API,
            format!("Could not reach Azure Resource Manager: {detail}."),
            NETWORK_FIX,
        ),
        ArmError::Unreadable(detail) => Finding::warning(
            PROVIDER,
            checks::DISK_SKU,
            format!(
                "The resource SKU list from Azure Resource Manager could not be read ({detail}), so the disk SKU was not checked."
            ),
            format!(
                "Check by hand that `{}` lists {}.",
                list_cmd(&normalize_location(&target.location)),
                target.disk_sku
            ),
        ),
        ArmError::Other(detail) => Finding::error(
            PROVIDER,
            checks::API,
            format!("Could not list Azure resource SKUs: {detail}."),
            LOGIN_FIX,
        ),
    }
}
