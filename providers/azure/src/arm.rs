//! Every Azure call of this crate: listing Microsoft.Compute resource SKUs through
//! azure_mgmt_compute 0.21 / azure_core 0.21, reading the AKS managed cluster's API server
//! FQDNs (one ARM GET with the same credential), and the credential plumbing they need. Everything
//! leaves this module as plain data ([`Sku`], [`ArmError`]), so the module can be swapped for the
//! same ARM call (`GET /subscriptions/{sub}/providers/Microsoft.Compute/skus?api-version=2021-07-01
//! &$filter=location eq '{loc}'`) through azure_core 1.x without touching the checks.

use std::sync::Arc;
use std::time::Duration;

use azure_core::auth::{AccessToken, TokenCredential};
use azure_core::error::ErrorKind;
use azure_mgmt_compute::models::resource_sku_restrictions::{ReasonCode, Type as RestrictionType};
use futures::StreamExt;
use raystack_provider::error_root_cause;

use crate::{AzureConnection, Restriction, RestrictionKind, Sku};

/// Time allowed to open a TCP/TLS connection to ARM.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one HTTP request to ARM.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the SKU list could not be read.
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
    /// ARM answered 200 with a body that is not a SKU list raystack understands.
    Unreadable(String),
    Other(String),
}

/// A bearer token handed out as is (for fakes, mirrors and tokens obtained elsewhere).
#[derive(Debug)]
struct StaticToken(String);

#[async_trait::async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(&self, _scopes: &[&str]) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
    async fn clear_cache(&self) -> azure_core::Result<()> {
        Ok(())
    }
}

fn credential(connection: &AzureConnection) -> Result<Arc<dyn TokenCredential>, ArmError> {
    match &connection.token {
        Some(token) => Ok(Arc::new(StaticToken(token.clone()))),
        None => azure_identity::create_credential()
            .map_err(|e| ArmError::Credential(error_root_cause(&e))),
    }
}

fn client(connection: &AzureConnection) -> Result<azure_mgmt_compute::Client, ArmError> {
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| ArmError::Other(error_root_cause(&e)))?;
    let retry = azure_core::ExponentialRetryOptions::default()
        .max_retries(1u32)
        .initial_delay(Duration::from_millis(200))
        .max_total_elapsed(Duration::from_secs(15));
    let mut builder = azure_mgmt_compute::Client::builder(credential(connection)?)
        .retry(azure_core::RetryOptions::exponential(retry))
        .transport(azure_core::TransportOptions::new(Arc::new(http)));
    if let Some(endpoint) = &connection.endpoint {
        let url = azure_core::Url::parse(endpoint).map_err(|e| {
            ArmError::Other(format!(
                "RAYSTACK_AZURE_ENDPOINT `{endpoint}` is not a URL ({e})"
            ))
        })?;
        builder = builder.endpoint(url);
    }
    builder
        .build()
        .map_err(|e| ArmError::Other(error_root_cause(&e)))
}

/// Lists the resource SKUs ARM offers `subscription` in `location`, following `nextLink`.
pub async fn list_skus(
    connection: &AzureConnection,
    subscription: &str,
    location: &str,
) -> Result<Vec<Sku>, ArmError> {
    let client = client(connection)?;
    let mut pages = client
        .resource_skus_client()
        .list(subscription)
        .filter(format!("location eq '{location}'"))
        .into_stream();
    let mut skus = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| convert_error(&e))?;
        skus.extend(page.value.into_iter().map(|sku| {
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
                        kind: match r.type_ {
                            Some(RestrictionType::Location) => RestrictionKind::Location,
                            Some(RestrictionType::Zone) => RestrictionKind::Zone,
                            None => RestrictionKind::Other,
                        },
                        values: r.values,
                        zones: r.restriction_info.map(|i| i.zones).unwrap_or_default(),
                        reason: r.reason_code.map(|c| match c {
                            ReasonCode::QuotaId => "QuotaId".to_owned(),
                            ReasonCode::NotAvailableForSubscription => {
                                "NotAvailableForSubscription".to_owned()
                            }
                        }),
                    })
                    .collect(),
            }
        }));
    }
    Ok(skus)
}

fn convert_error(err: &azure_core::Error) -> ArmError {
    if let Some(http) = err.as_http_error() {
        return ArmError::Status {
            status: u16::from(http.status()),
            code: http.error_code().map(str::to_owned),
            message: http.error_message().map(str::to_owned),
        };
    }
    match err.kind() {
        ErrorKind::HttpResponse { status, error_code } => ArmError::Status {
            status: u16::from(*status),
            code: error_code.clone(),
            message: None,
        },
        ErrorKind::Credential => ArmError::Credential(error_root_cause(err)),
        ErrorKind::Io => ArmError::Network(error_root_cause(err)),
        ErrorKind::DataConversion => ArmError::Unreadable(error_root_cause(err)),
        _ => {
            // reqwest failures (refused, DNS, timeout) arrive as Io or Other, depending on the path.
            if let Some(req) = find_reqwest(err) {
                if req.is_timeout() {
                    return ArmError::Network("timed out".into());
                }
                if req.is_connect() || req.is_request() {
                    return ArmError::Network(error_root_cause(err));
                }
            }
            ArmError::Other(error_root_cause(err))
        }
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

/// ARM's public endpoint.
const ARM: &str = "https://management.azure.com";
/// The token scope of ARM.
const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The Microsoft.ContainerService API version read (GA, has `fqdn` and `privateFQDN`).
const AKS_API_VERSION: &str = "2024-05-01";

/// The API server FQDNs ARM gives the AKS cluster (`properties.fqdn`, `properties.privateFQDN`,
/// `properties.azurePortalFQDN`), by `GET .../managedClusters/{name}`. There is no
/// Microsoft.ContainerService crate for azure_core 0.21's generation small enough to be worth
/// it for one GET: the request goes through reqwest with a token from the same credential.
pub async fn managed_cluster_fqdns(
    connection: &AzureConnection,
    subscription: &str,
    resource_group: &str,
    name: &str,
) -> Result<Vec<String>, ArmError> {
    let token = credential(connection)?
        .get_token(&[ARM_SCOPE])
        .await
        .map_err(|e| ArmError::Credential(error_root_cause(&e)))?;
    let base = connection
        .endpoint
        .as_deref()
        .unwrap_or(ARM)
        .trim_end_matches('/');
    let url = format!(
        "{base}/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{name}?api-version={AKS_API_VERSION}"
    );
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| ArmError::Other(error_root_cause(&e)))?;
    let response = http
        .get(&url)
        .bearer_auth(token.token.secret())
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                ArmError::Network("timed out".into())
            } else {
                ArmError::Network(error_root_cause(&e))
            }
        })?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| ArmError::Network(error_root_cause(&e)))?;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status != 200 {
        let field = |k: &str| {
            json.pointer(&format!("/error/{k}"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        return Err(ArmError::Status {
            status,
            code: field("code"),
            message: field("message"),
        });
    }
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
