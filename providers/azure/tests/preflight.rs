//! AKS disk-SKU preflight against a local wiremock server that answers like Azure Resource
//! Manager: `GET /subscriptions/S/providers/Microsoft.Compute/skus?api-version=2021-07-01&$filter=
//! location eq 'L'` returning `{"value": [...], "nextLink": ...}`. Tests that touch the
//! environment hold one lock.

#![allow(
    unsafe_code,
    reason = "the SDK reads its endpoint and credentials from the environment, and setting a variable is unsafe since edition 2024; every test holds one lock while it does"
)]

use raystack_azure::{
    AksTarget, AzureConnection, Severity, checks, inspect_with, preflight, preflight_with,
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

static ENV_LOCK: Mutex<()> = Mutex::const_new(());

const SUB: &str = "00000000-1111-2222-3333-444444444444";
const SKUS_PATH: &str =
    "/subscriptions/00000000-1111-2222-3333-444444444444/providers/Microsoft.Compute/skus";

async fn lock() -> MutexGuard<'static, ()> {
    ENV_LOCK.lock().await
}

fn target(disk_sku: &str) -> AksTarget {
    AksTarget {
        subscription_id: SUB.into(),
        resource_group: "ml".into(),
        name: "prod-aks".into(),
        location: "eastus".into(),
        disk_sku: disk_sku.into(),
    }
}

fn fake(server: &MockServer) -> AzureConnection {
    AzureConnection {
        endpoint: Some(server.uri()),
        token: Some("raystack-test-token".into()),
    }
}

/// A disk SKU entry as ARM lists it (one per size).
fn disk(name: &str, size: &str, zones: &[&str], restrictions: Value) -> Value {
    let tier = if name.starts_with("Premium") {
        "Premium"
    } else {
        "Standard"
    };
    json!({
        "resourceType": "disks",
        "name": name,
        "tier": tier,
        "size": size,
        "locations": ["eastus"],
        "locationInfo": [{"location": "eastus", "zones": zones, "zoneDetails": []}],
        "capabilities": [{"name": "MaxSizeGiB", "value": "32"}, {"name": "MinSizeGiB", "value": "16"}],
        "restrictions": restrictions,
    })
}

fn vm_size(name: &str) -> Value {
    json!({
        "resourceType": "virtualMachines",
        "name": name,
        "tier": "Standard",
        "size": name.trim_start_matches("Standard_"),
        "family": "standardDSv5Family",
        "locations": ["eastus"],
        "locationInfo": [{"location": "eastus", "zones": ["1", "2", "3"], "zoneDetails": []}],
        "capabilities": [{"name": "vCPUs", "value": "2"}],
        "restrictions": [],
    })
}

/// Mounts page 1 (no `$skiptoken`) and, when `page2` is given, page 2 reached through `nextLink`.
async fn server_with(page1: Vec<Value>, page2: Option<Vec<Value>>) -> MockServer {
    let server = MockServer::start().await;
    let mut body1 = json!({ "value": page1 });
    if page2.is_some() {
        body1["nextLink"] = json!(format!(
            "{}{SKUS_PATH}?api-version=2021-07-01&$filter=location%20eq%20%27eastus%27&$skiptoken=page2",
            server.uri()
        ));
    }
    Mock::given(method("GET"))
        .and(path(SKUS_PATH))
        .and(query_param("api-version", "2021-07-01"))
        .and(query_param("$filter", "location eq 'eastus'"))
        .and(query_param_is_missing("$skiptoken"))
        .and(header("authorization", "Bearer raystack-test-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body1))
        .mount(&server)
        .await;
    if let Some(page2) = page2 {
        Mock::given(method("GET"))
            .and(path(SKUS_PATH))
            .and(query_param("$skiptoken", "page2"))
            .and(header("authorization", "Bearer raystack-test-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": page2 })))
            .mount(&server)
            .await;
    }
    server
}

fn find<'a>(findings: &'a [raystack_azure::Finding], check: &str) -> &'a raystack_azure::Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no finding {check} in {findings:#?}"))
}

#[tokio::test]
async fn offered_sku_passes() {
    let _g = lock().await;
    let server = server_with(
        vec![
            vm_size("Standard_D2s_v5"),
            disk("StandardSSD_LRS", "E4", &[], json!([])),
            disk("StandardSSD_LRS", "E10", &[], json!([])),
        ],
        None,
    )
    .await;
    let findings = preflight_with(&target("StandardSSD_LRS"), &fake(&server)).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Ok);
    assert_eq!(findings[0].check, checks::DISK_SKU);
    assert_eq!(
        findings[0].message,
        format!("Disk SKU StandardSSD_LRS is offered in eastus for subscription {SUB}.")
    );
}

#[tokio::test]
async fn sku_missing_from_location_is_an_error() {
    let _g = lock().await;
    let server = server_with(
        vec![
            vm_size("Standard_D2s_v5"),
            disk("StandardSSD_LRS", "E4", &[], json!([])),
        ],
        None,
    )
    .await;
    let findings = preflight_with(&target("Premium_LRS"), &fake(&server)).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Error);
    assert_eq!(
        findings[0].message,
        "Disk SKU Premium_LRS is not offered in eastus."
    );
    assert!(
        findings[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("az vm list-skus --location eastus --resource-type disks")
    );
}

#[tokio::test]
async fn sku_on_the_second_page_is_found_through_next_link() {
    let _g = lock().await;
    let server = server_with(
        vec![
            vm_size("Standard_D2s_v5"),
            disk("StandardSSD_LRS", "E4", &[], json!([])),
        ],
        Some(vec![disk("Premium_LRS", "P4", &[], json!([]))]),
    )
    .await;
    let findings = preflight_with(&target("Premium_LRS"), &fake(&server)).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Ok, "{findings:#?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn sku_restricted_for_the_subscription_is_an_error() {
    let _g = lock().await;
    let restriction = json!([{
        "type": "Location",
        "values": ["eastus"],
        "restrictionInfo": {"locations": ["eastus"]},
        "reasonCode": "NotAvailableForSubscription",
    }]);
    let server = server_with(vec![disk("Premium_LRS", "P4", &[], restriction)], None).await;
    let findings = preflight_with(&target("Premium_LRS"), &fake(&server)).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Error);
    assert_eq!(
        findings[0].message,
        "Disk SKU Premium_LRS is offered in eastus, but it is restricted for this subscription (NotAvailableForSubscription)."
    );
}

#[tokio::test]
async fn zrs_with_zones_passes() {
    let _g = lock().await;
    let server = server_with(
        vec![disk("Premium_ZRS", "P4", &["3", "1", "2"], json!([]))],
        None,
    )
    .await;
    let findings = preflight_with(&target("Premium_ZRS"), &fake(&server)).await;
    assert!(
        findings.iter().all(|f| f.severity == Severity::Ok),
        "{findings:#?}"
    );
    assert_eq!(
        find(&findings, checks::DISK_ZONES).message,
        "Disk SKU Premium_ZRS spans availability zones 1, 2, 3 in eastus."
    );
}

#[tokio::test]
async fn zrs_without_zones_is_an_error() {
    let _g = lock().await;
    let server = server_with(vec![disk("StandardSSD_ZRS", "E4", &[], json!([]))], None).await;
    let findings = preflight_with(&target("StandardSSD_ZRS"), &fake(&server)).await;
    assert_eq!(find(&findings, checks::DISK_SKU).severity, Severity::Ok);
    let zones = find(&findings, checks::DISK_ZONES);
    assert_eq!(zones.severity, Severity::Error);
    assert!(
        zones.message.contains("offers it in no availability zones"),
        "{}",
        zones.message
    );
    assert!(
        zones
            .fix
            .as_deref()
            .unwrap()
            .starts_with("Use StandardSSD_LRS"),
        "{:?}",
        zones.fix
    );
}

#[tokio::test]
async fn zrs_whose_zones_are_all_restricted_is_an_error() {
    let _g = lock().await;
    let restriction = json!([{
        "type": "Zone",
        "values": ["eastus"],
        "restrictionInfo": {"locations": ["eastus"], "zones": ["1", "2", "3"]},
        "reasonCode": "NotAvailableForSubscription",
    }]);
    let server = server_with(
        vec![disk("Premium_ZRS", "P4", &["1", "2", "3"], restriction)],
        None,
    )
    .await;
    let findings = preflight_with(&target("Premium_ZRS"), &fake(&server)).await;
    assert_eq!(
        find(&findings, checks::DISK_ZONES).severity,
        Severity::Error,
        "{findings:#?}"
    );
}

#[tokio::test]
async fn unauthorized_says_az_login() {
    let _g = lock().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SKUS_PATH))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\"")
                .set_body_json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}})),
        )
        .mount(&server)
        .await;
    let findings = preflight_with(&target("Premium_LRS"), &fake(&server)).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Error);
    assert_eq!(
        findings[0].message,
        "Authentication failed: Azure Resource Manager rejected the token (InvalidAuthenticationToken)."
    );
    assert!(
        findings[0]
            .fix
            .as_deref()
            .unwrap()
            .starts_with("Run `az login`")
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "401 is not retried"
    );
}

#[tokio::test]
async fn forbidden_names_the_permission() {
    let _g = lock().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SKUS_PATH))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {
            "code": "AuthorizationFailed",
            "message": format!("The client 'dev@example.com' with object id 'abc' does not have authorization to perform action 'Microsoft.Compute/skus/read' over scope '/subscriptions/{SUB}' or the scope is invalid."),
        }})))
        .mount(&server)
        .await;
    let findings = preflight_with(&target("Premium_LRS"), &fake(&server)).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        findings[0].message,
        format!(
            "Access denied: the Azure identity may not list resource SKUs (Microsoft.Compute/skus/read) in subscription {SUB}."
        )
    );
    assert!(
        findings[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("AuthorizationFailed")
            || findings[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("does not have authorization")
    );
}

#[tokio::test]
async fn connection_refused_is_one_sentence() {
    let _g = lock().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let connection = AzureConnection {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        token: Some("t".into()),
    };
    let findings = preflight_with(&target("Premium_LRS"), &connection).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Error);
    assert!(
        findings[0]
            .message
            .starts_with("Could not reach Azure Resource Manager: "),
        "{}",
        findings[0].message
    );
    assert!(
        !findings[0].message.contains('\n'),
        "{}",
        findings[0].message
    );
}

#[tokio::test]
async fn endpoint_variable_uses_the_default_test_token() {
    let _g = lock().await;
    let server = server_with(vec![disk("StandardSSD_LRS", "E4", &[], json!([]))], None).await;
    // SAFETY: ENV_LOCK is held by every test in this binary.
    unsafe {
        std::env::remove_var("RAYSTACK_AZURE_TOKEN");
        std::env::set_var("RAYSTACK_AZURE_ENDPOINT", server.uri());
    }
    let findings = preflight(&target("StandardSSD_LRS")).await;
    unsafe { std::env::remove_var("RAYSTACK_AZURE_ENDPOINT") };
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Ok, "{findings:#?}");
}

#[tokio::test]
async fn a_restriction_reason_arm_adds_later_is_still_a_restriction() {
    let _g = lock().await;
    // `reasonCode` is an open set on the wire: a value raystack does not know is kept as said,
    // and the restriction still counts.
    let restriction =
        json!([{"type": "Location", "values": ["eastus"], "reasonCode": "SomethingNew"}]);
    let server = server_with(vec![disk("Premium_LRS", "P4", &[], restriction)], None).await;
    let findings = preflight_with(&target("Premium_LRS"), &fake(&server)).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Error, "{findings:#?}");
    assert!(
        findings[0].message.contains("SomethingNew"),
        "{}",
        findings[0].message
    );
}

#[tokio::test]
async fn unreadable_sku_list_is_a_warning_not_a_crash() {
    let _g = lock().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SKUS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": "not a list"})))
        .mount(&server)
        .await;
    let findings = preflight_with(&target("Premium_LRS"), &fake(&server)).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Warning);
    assert!(
        findings[0]
            .message
            .starts_with("The resource SKU list from Azure Resource Manager could not be read"),
        "{}",
        findings[0].message
    );
    assert!(
        !findings[0].message.contains('\n'),
        "{}",
        findings[0].message
    );
}

const CLUSTER_PATH: &str = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/ml/providers/Microsoft.ContainerService/managedClusters/prod-aks";

/// ARM's managed cluster, with its API server FQDNs, or `status` with an ARM error body.
async fn mount_cluster(server: &MockServer, status: u16, properties: Value) {
    let body = if status == 200 {
        json!({"name": "prod-aks", "location": "eastus", "properties": properties})
    } else {
        json!({"error": {"code": "ResourceNotFound", "message": "The Resource 'Microsoft.ContainerService/managedClusters/prod-aks' under resource group 'ml' was not found."}})
    };
    Mock::given(method("GET"))
        .and(path(CLUSTER_PATH))
        .and(query_param("api-version", "2024-05-01"))
        .and(header("authorization", "Bearer raystack-test-token"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_managed_clusters_api_server_fqdns_are_returned() {
    let _g = lock().await;
    let server = server_with(vec![disk("StandardSSD_LRS", "E4", &[], json!([]))], None).await;
    mount_cluster(
        &server,
        200,
        json!({"fqdn": "prod-aks-dns-1a2b.hcp.eastus.azmk8s.io",
               "privateFQDN": "prod-aks-dns-1a2b.privatelink.eastus.azmk8s.io",
               "azurePortalFQDN": "prod-aks-dns-1a2b.portal.hcp.eastus.azmk8s.io"}),
    )
    .await;
    let result = inspect_with(&target("StandardSSD_LRS"), &fake(&server)).await;
    assert_eq!(
        result.endpoints,
        [
            "prod-aks-dns-1a2b.hcp.eastus.azmk8s.io",
            "prod-aks-dns-1a2b.privatelink.eastus.azmk8s.io",
            "prod-aks-dns-1a2b.portal.hcp.eastus.azmk8s.io"
        ]
    );
    assert_eq!(result.findings.len(), 1, "{:#?}", result.findings);
    assert_eq!(result.findings[0].check, checks::DISK_SKU);
}

#[tokio::test]
async fn a_managed_cluster_arm_does_not_know_is_an_error() {
    let _g = lock().await;
    let server = server_with(vec![disk("StandardSSD_LRS", "E4", &[], json!([]))], None).await;
    mount_cluster(&server, 404, json!(null)).await;
    let result = inspect_with(&target("StandardSSD_LRS"), &fake(&server)).await;
    assert!(result.endpoints.is_empty());
    let cluster = find(&result.findings, checks::CLUSTER);
    assert_eq!(cluster.severity, Severity::Error);
    assert_eq!(
        cluster.message,
        format!(
            "AKS cluster `prod-aks` does not exist in resource group `ml` of subscription {SUB}."
        )
    );
}

#[tokio::test]
async fn a_throttled_request_is_retried_once() {
    let _g = lock().await;
    let server = server_with(vec![disk("StandardSSD_LRS", "E4", &[], json!([]))], None).await;
    // Mounted last, so wiremock answers with it first; then it is used up.
    Mock::given(method("GET"))
        .and(path(SKUS_PATH))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let findings = preflight_with(&target("StandardSSD_LRS"), &fake(&server)).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Ok, "{findings:#?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_client_secret_without_its_tenant_is_a_credential_error_before_any_request() {
    let _g = lock().await;
    // SAFETY: ENV_LOCK is held by every test in this binary.
    unsafe {
        std::env::remove_var("RAYSTACK_AZURE_ENDPOINT");
        std::env::remove_var("AZURE_FEDERATED_TOKEN_FILE");
        std::env::remove_var("AZURE_TENANT_ID");
        std::env::set_var("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001");
        std::env::set_var("AZURE_CLIENT_SECRET", "not-a-real-secret");
    }
    let findings = preflight(&target("StandardSSD_LRS")).await;
    unsafe {
        std::env::remove_var("AZURE_CLIENT_ID");
        std::env::remove_var("AZURE_CLIENT_SECRET");
    }
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].check, checks::API);
    assert_eq!(findings[0].severity, Severity::Error);
    assert!(
        findings[0]
            .message
            .contains("AZURE_CLIENT_SECRET is set, but AZURE_TENANT_ID or AZURE_CLIENT_ID is not"),
        "{}",
        findings[0].message
    );
    assert!(!findings[0].message.contains("not-a-real-secret"));
}
