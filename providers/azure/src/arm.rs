//! Every Azure call of this crate: listing Microsoft.Compute resource SKUs
//! (`GET /subscriptions/{sub}/providers/Microsoft.Compute/skus?api-version=2021-07-01&$filter=
//! location eq '{loc}'`, following `nextLink`) and reading the AKS managed cluster's API server
//! FQDNs (`GET …/managedClusters/{name}?api-version=2024-05-01`), both through the GA SDK's HTTP
//! pipeline (azure_core 1.x: retries, user agent, client request ids) with a token from
//! azure_identity 1.x; and the credential plumbing they need. The GA SDK has no compute or
//! container-service crate, so the two reads are plain requests whose answers are read into
//! this module's own types. Everything leaves the module as plain data ([`Sku`], [`ArmError`]).

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{
    ClientOptions, Context, ExponentialRetryOptions, Method, Pipeline, PipelineSendOptions,
    Request, RetryOptions, Transport, Url,
};
use azure_identity::{
    ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential,
    WorkloadIdentityCredential,
};
use raystack_provider::error_root_cause;
use serde::Deserialize;

use crate::{AzureConnection, Restriction, RestrictionKind, Sku};

/// Time allowed to open a TCP/TLS connection to ARM.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one HTTP request to ARM.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// ARM's public endpoint.
const ARM: &str = "https://management.azure.com";
/// The token scope of ARM.
const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The Microsoft.Compute API version of the resource SKU list.
const SKUS_API_VERSION: &str = "2021-07-01";
/// The Microsoft.ContainerService API version read (GA, has `fqdn` and `privateFQDN`).
const AKS_API_VERSION: &str = "2024-05-01";
/// More pages than any location has (about 30 of 1,000 SKUs today): a `nextLink` loop ends.
const MAX_PAGES: usize = 200;

/// Why an ARM read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArmError {
    /// ARM answered with an HTTP error status.
    Status {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    /// No token could be obtained (no `az login`, no managed identity, ...).
    Credential(String),
    /// Connection refused, DNS, TLS, timeout.
    Network(String),
    /// ARM answered 200 with a body that is not what raystack understands.
    Unreadable(String),
    Other(String),
}

/// A bearer token handed out as is (for fakes, mirrors and tokens obtained elsewhere).
#[derive(Debug)]
struct StaticToken(String);

#[async_trait::async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            Secret::new(self.0.clone()),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

/// The first credential of a list that hands out a token; the error names why each failed.
#[derive(Debug)]
struct FirstOf(Vec<(&'static str, Arc<dyn TokenCredential>)>);

#[async_trait::async_trait]
impl TokenCredential for FirstOf {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let mut failures = Vec::new();
        for (name, credential) in &self.0 {
            match credential.get_token(scopes, options.clone()).await {
                Ok(token) => return Ok(token),
                Err(err) => failures.push(format!("{name}: {}", error_root_cause(&err))),
            }
        }
        Err(azure_core::Error::with_message(
            ErrorKind::Credential,
            failures.join("; "),
        ))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The credential the environment provides, chosen the way Azure's tools read it:
/// `AZURE_FEDERATED_TOKEN_FILE` (AKS workload identity, federated CI) is workload identity;
/// `AZURE_CLIENT_SECRET` with `AZURE_TENANT_ID` and `AZURE_CLIENT_ID` is a service principal;
/// otherwise the developer tools' login (`az login`, `azd auth login`), then the machine's
/// managed identity. A fixed token (`RAYSTACK_AZURE_TOKEN` with `RAYSTACK_AZURE_ENDPOINT`) wins.
fn credential(connection: &AzureConnection) -> Result<Arc<dyn TokenCredential>, ArmError> {
    let failed = |e: azure_core::Error| ArmError::Credential(error_root_cause(&e));
    if let Some(token) = &connection.token {
        return Ok(Arc::new(StaticToken(token.clone())));
    }
    if env("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        return Ok(WorkloadIdentityCredential::new(None).map_err(failed)?);
    }
    if let Some(secret) = env("AZURE_CLIENT_SECRET") {
        let (Some(tenant), Some(client)) = (env("AZURE_TENANT_ID"), env("AZURE_CLIENT_ID")) else {
            return Err(ArmError::Credential(
                "AZURE_CLIENT_SECRET is set, but AZURE_TENANT_ID or AZURE_CLIENT_ID is not".into(),
            ));
        };
        return Ok(
            ClientSecretCredential::new(&tenant, client, Secret::new(secret), None)
                .map_err(failed)?,
        );
    }
    Ok(Arc::new(FirstOf(vec![
        (
            "developer tools (az, azd)",
            DeveloperToolsCredential::new(None).map_err(failed)?,
        ),
        (
            "managed identity",
            ManagedIdentityCredential::new(None).map_err(failed)?,
        ),
    ])))
}

/// The GA SDK's pipeline with raystack's bounds: one retry of a throttled or failed request,
/// at most 15 s of retrying, and a transport with connect and request timeouts.
fn pipeline() -> Result<Pipeline, ArmError> {
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| ArmError::Other(error_root_cause(&e)))?;
    let options = ClientOptions {
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(200),
            max_retries: 1,
            max_total_elapsed: azure_core::time::Duration::seconds(15),
            ..ExponentialRetryOptions::default()
        }),
        transport: Some(Transport::new(Arc::new(http))),
        ..ClientOptions::default()
    };
    Ok(Pipeline::new(
        Some(env!("CARGO_PKG_NAME")),
        Some(env!("CARGO_PKG_VERSION")),
        options,
        Vec::new(),
        Vec::new(),
        None,
    ))
}

/// The URL of an ARM resource: `connection.endpoint` (or the public cloud's) with `segments`
/// appended, each percent-encoded, and `api-version`.
fn arm_url(
    connection: &AzureConnection,
    segments: &[&str],
    api_version: &str,
) -> Result<Url, ArmError> {
    let endpoint = connection.endpoint.as_deref().unwrap_or(ARM);
    let mut url = Url::parse(endpoint).map_err(|e| {
        ArmError::Other(format!(
            "RAYSTACK_AZURE_ENDPOINT `{endpoint}` is not a URL ({e})"
        ))
    })?;
    url.path_segments_mut()
        .map_err(|()| {
            ArmError::Other(format!(
                "RAYSTACK_AZURE_ENDPOINT `{endpoint}` cannot have a path"
            ))
        })?
        .pop_if_empty()
        .extend(segments);
    url.query_pairs_mut()
        .append_pair("api-version", api_version);
    Ok(url)
}

/// One authenticated GET through `pipeline`: the body of a 200, an [`ArmError`] otherwise.
async fn get(pipeline: &Pipeline, url: Url, token: &AccessToken) -> Result<Vec<u8>, ArmError> {
    let mut request = Request::new(url, Method::Get);
    request.insert_header("authorization", format!("Bearer {}", token.token.secret()));
    request.insert_header("accept", "application/json");
    let options = PipelineSendOptions {
        skip_checks: true,
        ..PipelineSendOptions::default()
    };
    let response = pipeline
        .send(&Context::new(), &mut request, Some(options))
        .await
        .map_err(|e| convert_error(&e))?;
    let status = u16::from(response.status());
    let body = response.into_body().to_vec();
    if status == 200 {
        return Ok(body);
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = |k: &str| {
        json.pointer(&format!("/error/{k}"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    Err(ArmError::Status {
        status,
        code: field("code"),
        message: field("message"),
    })
}

async fn token(connection: &AzureConnection) -> Result<AccessToken, ArmError> {
    credential(connection)?
        .get_token(&[ARM_SCOPE], None)
        .await
        .map_err(|e| ArmError::Credential(error_root_cause(&e)))
}

/// A page of `Microsoft.Compute/skus`, only the fields the checks read. Enumerations
/// (`type`, `reasonCode`) are strings: a value ARM adds later is kept, not a parse error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SkuPage {
    value: Vec<SkuEntry>,
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SkuEntry {
    resource_type: Option<String>,
    name: Option<String>,
    #[serde(default)]
    locations: Vec<String>,
    #[serde(default)]
    location_info: Vec<LocationInfo>,
    #[serde(default)]
    restrictions: Vec<RestrictionEntry>,
}

#[derive(Deserialize)]
struct LocationInfo {
    location: Option<String>,
    #[serde(default)]
    zones: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestrictionEntry {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    values: Vec<String>,
    restriction_info: Option<RestrictionInfo>,
    reason_code: Option<String>,
}

#[derive(Deserialize)]
struct RestrictionInfo {
    #[serde(default)]
    zones: Vec<String>,
}

impl From<SkuEntry> for Sku {
    fn from(sku: SkuEntry) -> Sku {
        Sku {
            resource_type: sku.resource_type.unwrap_or_default(),
            name: sku.name.unwrap_or_default(),
            locations: sku.locations,
            location_zones: sku
                .location_info
                .into_iter()
                .map(|info| (info.location.unwrap_or_default(), info.zones))
                .collect(),
            restrictions: sku
                .restrictions
                .into_iter()
                .map(|r| Restriction {
                    kind: match r.kind.as_deref() {
                        Some("Location") => RestrictionKind::Location,
                        Some("Zone") => RestrictionKind::Zone,
                        _ => RestrictionKind::Other,
                    },
                    values: r.values,
                    zones: r.restriction_info.map(|i| i.zones).unwrap_or_default(),
                    reason: r.reason_code,
                })
                .collect(),
        }
    }
}

/// Lists the resource SKUs ARM offers `subscription` in `location`, following `nextLink`.
pub async fn list_skus(
    connection: &AzureConnection,
    subscription: &str,
    location: &str,
) -> Result<Vec<Sku>, ArmError> {
    let pipeline = pipeline()?;
    let mut url = arm_url(
        connection,
        &[
            "subscriptions",
            subscription,
            "providers",
            "Microsoft.Compute",
            "skus",
        ],
        SKUS_API_VERSION,
    )?;
    url.query_pairs_mut()
        .append_pair("$filter", &format!("location eq '{location}'"));
    let token = token(connection).await?;
    let mut skus = Vec::new();
    let mut next = Some(url);
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(ArmError::Unreadable(format!(
                "more than {MAX_PAGES} pages of SKUs (a `nextLink` loop?)"
            )));
        }
        let body = get(&pipeline, url, &token).await?;
        let page: SkuPage = serde_json::from_slice(&body)
            .map_err(|e| ArmError::Unreadable(format!("the SKU list: {e}")))?;
        skus.extend(page.value.into_iter().map(Sku::from));
        if let Some(link) = page.next_link.filter(|l| !l.is_empty()) {
            next = Some(Url::parse(&link).map_err(|e| {
                ArmError::Unreadable(format!("`nextLink` `{link}` is not a URL ({e})"))
            })?);
        }
    }
    Ok(skus)
}

fn convert_error(err: &azure_core::Error) -> ArmError {
    match err.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => ArmError::Status {
            status: u16::from(*status),
            code: error_code.clone(),
            message: None,
        },
        ErrorKind::Credential => ArmError::Credential(error_root_cause(err)),
        ErrorKind::Connection | ErrorKind::Io => match find_reqwest(err) {
            Some(req) if req.is_timeout() => ArmError::Network("timed out".into()),
            _ => ArmError::Network(error_root_cause(err)),
        },
        ErrorKind::DataConversion => ArmError::Unreadable(error_root_cause(err)),
        _ => ArmError::Other(error_root_cause(err)),
    }
}

fn find_reqwest<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a reqwest::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<reqwest::Error>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The API server FQDNs ARM gives the AKS cluster (`properties.fqdn`, `properties.privateFQDN`,
/// `properties.azurePortalFQDN`), by `GET .../managedClusters/{name}`.
pub async fn managed_cluster_fqdns(
    connection: &AzureConnection,
    subscription: &str,
    resource_group: &str,
    name: &str,
) -> Result<Vec<String>, ArmError> {
    let pipeline = pipeline()?;
    let url = arm_url(
        connection,
        &[
            "subscriptions",
            subscription,
            "resourceGroups",
            resource_group,
            "providers",
            "Microsoft.ContainerService",
            "managedClusters",
            name,
        ],
        AKS_API_VERSION,
    )?;
    let token = token(connection).await?;
    let body = get(&pipeline, url, &token).await?;
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ArmError::Unreadable(format!("the managed cluster: {e}")))?;
    let properties = json
        .get("properties")
        .ok_or_else(|| ArmError::Unreadable("the managed cluster has no `properties`".into()))?;
    let mut fqdns = Vec::new();
    for key in ["fqdn", "privateFQDN", "azurePortalFQDN"] {
        if let Some(fqdn) = properties.get(key).and_then(serde_json::Value::as_str)
            && !fqdn.is_empty()
            && !fqdns.iter().any(|f: &String| f == fqdn)
        {
            fqdns.push(fqdn.to_owned());
        }
    }
    Ok(fqdns)
}
