//! GKE preflight against a local wiremock server that answers like the GKE REST API
//! (`GET /v1/projects/P/locations/L/clusters/N`, camelCase JSON, integer enums as requested by
//! the client's `$alt=json;enum-encoding=int`). Tests that touch the environment hold one lock.

#![allow(
    unsafe_code,
    reason = "the SDK reads its endpoint and credentials from the environment, and setting a variable is unsafe since edition 2024; every test holds one lock while it does"
)]

use raystack_gcp::{GkeConnection, GkeTarget, Severity, checks, inspect, preflight};
use serde_json::json;
use tokio::sync::{Mutex, MutexGuard};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

static ENV_LOCK: Mutex<()> = Mutex::const_new(());

const CLUSTER_PATH: &str = "/v1/projects/acme-ml/locations/us-central1/clusters/prod-gke";

fn target() -> GkeTarget {
    GkeTarget {
        project: "acme-ml".into(),
        location: "us-central1".into(),
        name: "prod-gke".into(),
    }
}

async fn lock() -> MutexGuard<'static, ()> {
    ENV_LOCK.lock().await
}

fn fake(server: &MockServer) -> GkeConnection {
    GkeConnection {
        endpoint: Some(server.uri()),
        anonymous: true,
    }
}

/// A cluster as GKE returns it; `status` 2 is RUNNING.
fn cluster(status: i32, addons: serde_json::Value) -> serde_json::Value {
    json!({
        "name": "prod-gke",
        "location": "us-central1",
        "status": status,
        "currentMasterVersion": "1.30.5-gke.1014001",
        "currentNodeVersion": "1.30.5-gke.1014001",
        "endpoint": "34.1.2.3",
        "selfLink": "https://container.googleapis.com/v1/projects/acme-ml/locations/us-central1/clusters/prod-gke",
        "addonsConfig": addons,
    })
}

fn csi(enabled: bool) -> serde_json::Value {
    json!({
        "httpLoadBalancing": {},
        "gcePersistentDiskCsiDriverConfig": {"enabled": enabled},
        "gcsFuseCsiDriverConfig": {"enabled": true},
    })
}

fn google_error(code: u16, status: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"error": {"code": code, "message": message, "status": status}}))
}

async fn server_with(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CLUSTER_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

fn find<'a>(findings: &'a [raystack_gcp::Finding], check: &str) -> &'a raystack_gcp::Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no finding {check} in {findings:#?}"))
}

#[tokio::test]
async fn running_cluster_with_pd_csi_enabled_passes() {
    let _g = lock().await;
    let server = server_with(ResponseTemplate::new(200).set_body_json(cluster(2, csi(true)))).await;
    let result = inspect(&target(), &fake(&server)).await;
    assert!(result.passed(), "{:#?}", result.findings);
    assert!(!result.autopilot);
    assert_eq!(
        result.kubernetes_version.as_deref(),
        Some("1.30.5-gke.1014001")
    );
    assert_eq!(result.endpoints, ["34.1.2.3"]);
    let running = find(&result.findings, checks::CLUSTER_RUNNING);
    assert_eq!(running.severity, Severity::Ok);
    assert_eq!(
        running.message,
        "GKE cluster `prod-gke` in us-central1 is RUNNING."
    );
    let pd = find(&result.findings, checks::PD_CSI_DRIVER);
    assert_eq!(pd.severity, Severity::Ok);
    assert!(
        pd.message.contains("PD CSI driver add-on is enabled"),
        "{}",
        pd.message
    );
}

#[tokio::test]
async fn status_as_enum_name_is_understood_too() {
    let _g = lock().await;
    let mut body = cluster(2, csi(true));
    body["status"] = json!("RUNNING");
    let server = server_with(ResponseTemplate::new(200).set_body_json(body)).await;
    let result = inspect(&target(), &fake(&server)).await;
    assert_eq!(
        find(&result.findings, checks::CLUSTER_RUNNING).severity,
        Severity::Ok
    );
}

#[tokio::test]
async fn disabled_pd_csi_driver_is_an_error_with_the_update_command() {
    let _g = lock().await;
    let server =
        server_with(ResponseTemplate::new(200).set_body_json(cluster(2, csi(false)))).await;
    let findings = inspect(&target(), &fake(&server)).await.findings;
    let pd = find(&findings, checks::PD_CSI_DRIVER);
    assert_eq!(pd.severity, Severity::Error);
    assert!(
        pd.message.contains("is disabled on GKE cluster `prod-gke`"),
        "{}",
        pd.message
    );
    assert_eq!(
        pd.fix.as_deref(),
        Some(
            "Run `gcloud container clusters update prod-gke --location us-central1 --project acme-ml --update-addons=GcePersistentDiskCsiDriver=ENABLED`."
        )
    );
}

#[tokio::test]
async fn missing_pd_csi_field_is_an_error() {
    let _g = lock().await;
    let server = server_with(
        ResponseTemplate::new(200).set_body_json(cluster(2, json!({"httpLoadBalancing": {}}))),
    )
    .await;
    let findings = inspect(&target(), &fake(&server)).await.findings;
    let pd = find(&findings, checks::PD_CSI_DRIVER);
    assert_eq!(pd.severity, Severity::Error);
    assert!(
        pd.message
            .contains("does not report the Compute Engine PD CSI driver add-on"),
        "{}",
        pd.message
    );
    assert!(
        pd.fix
            .as_deref()
            .unwrap()
            .contains("--update-addons=GcePersistentDiskCsiDriver=ENABLED")
    );
}

#[tokio::test]
async fn autopilot_always_has_the_driver() {
    let _g = lock().await;
    let mut body = cluster(2, json!({}));
    body["autopilot"] = json!({"enabled": true});
    let server = server_with(ResponseTemplate::new(200).set_body_json(body)).await;
    let result = inspect(&target(), &fake(&server)).await;
    assert!(result.autopilot);
    assert!(result.passed(), "{:#?}", result.findings);
    let pd = find(&result.findings, checks::PD_CSI_DRIVER);
    assert_eq!(pd.severity, Severity::Ok);
    assert!(pd.message.contains("Autopilot"), "{}", pd.message);
}

#[tokio::test]
async fn provisioning_cluster_is_not_ready() {
    let _g = lock().await;
    let server = server_with(ResponseTemplate::new(200).set_body_json(cluster(1, csi(true)))).await;
    let findings = inspect(&target(), &fake(&server)).await.findings;
    let running = find(&findings, checks::CLUSTER_RUNNING);
    assert_eq!(running.severity, Severity::Error);
    assert_eq!(
        running.message,
        "GKE cluster `prod-gke` is PROVISIONING, not ready yet."
    );
}

#[tokio::test]
async fn reconciling_cluster_is_a_warning() {
    let _g = lock().await;
    let server = server_with(ResponseTemplate::new(200).set_body_json(cluster(3, csi(true)))).await;
    let findings = inspect(&target(), &fake(&server)).await.findings;
    assert_eq!(
        find(&findings, checks::CLUSTER_RUNNING).severity,
        Severity::Warning
    );
}

#[tokio::test]
async fn degraded_cluster_reports_its_conditions() {
    let _g = lock().await;
    let mut body = cluster(6, csi(true));
    body["conditions"] = json!([{"code": 0, "message": "Node pool default-pool has unhealthy nodes.", "canonicalCode": 13}]);
    let server = server_with(ResponseTemplate::new(200).set_body_json(body)).await;
    let findings = inspect(&target(), &fake(&server)).await.findings;
    let running = find(&findings, checks::CLUSTER_RUNNING);
    assert_eq!(running.severity, Severity::Error);
    assert_eq!(
        running.message,
        "GKE cluster `prod-gke` is DEGRADED (Node pool default-pool has unhealthy nodes)."
    );
}

#[tokio::test]
async fn permission_denied_names_the_permission_and_role() {
    let _g = lock().await;
    let server = server_with(google_error(
        403,
        "PERMISSION_DENIED",
        "Required \"container.clusters.get\" permission(s) for \"projects/acme-ml/locations/us-central1/clusters/prod-gke\".",
    ))
    .await;
    let findings = inspect(&target(), &fake(&server)).await.findings;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(
        f.message,
        "Permission denied: the account needs container.clusters.get (roles/container.viewer) on project acme-ml to read GKE cluster `prod-gke`."
    );
    assert!(f.fix.as_deref().unwrap().contains("roles/container.viewer"));
    // A 403 is not retried: the server saw exactly one request.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn missing_cluster_is_not_found() {
    let _g = lock().await;
    let server = server_with(google_error(
        404,
        "NOT_FOUND",
        "Not found: projects/acme-ml/locations/us-central1/clusters/prod-gke.",
    ))
    .await;
    let result = inspect(&target(), &fake(&server)).await;
    assert!(result.endpoints.is_empty(), "no cluster, no endpoint");
    let findings = result.findings;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Error);
    assert_eq!(findings[0].check, checks::CLUSTER_RUNNING);
    assert_eq!(
        findings[0].message,
        "GKE cluster `prod-gke` was not found in project acme-ml, location us-central1."
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn connection_refused_is_one_sentence() {
    let _g = lock().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let connection = GkeConnection {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        anonymous: true,
    };
    let findings = inspect(&target(), &connection).await.findings;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Error);
    assert!(
        findings[0]
            .message
            .starts_with("Could not reach the GKE API: "),
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
async fn unreadable_credentials_point_at_gcloud_login() {
    let _g = lock().await;
    let server = server_with(ResponseTemplate::new(200).set_body_json(cluster(2, csi(true)))).await;
    // SAFETY: ENV_LOCK is held by every test in this binary.
    unsafe {
        std::env::set_var(
            "GOOGLE_APPLICATION_CREDENTIALS",
            "/nonexistent/raystack-test/adc.json",
        )
    };
    let connection = GkeConnection {
        endpoint: Some(server.uri()),
        anonymous: false,
    };
    let findings = inspect(&target(), &connection).await.findings;
    unsafe { std::env::remove_var("GOOGLE_APPLICATION_CREDENTIALS") };
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(
        findings[0].message.starts_with(
            "Google Cloud credentials could not be loaded: /nonexistent/raystack-test/adc.json"
        ),
        "{}",
        findings[0].message
    );
    assert_eq!(findings[0].severity, Severity::Error);
    assert!(
        findings[0]
            .fix
            .as_deref()
            .unwrap()
            .starts_with("Run `gcloud auth application-default login`")
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn endpoint_variable_sends_anonymous_requests_there() {
    let _g = lock().await;
    let server = server_with(ResponseTemplate::new(200).set_body_json(cluster(2, csi(true)))).await;
    // SAFETY: ENV_LOCK is held by every test in this binary.
    unsafe { std::env::set_var("RAYSTACK_GKE_ENDPOINT", server.uri()) };
    let findings = preflight(&target()).await;
    unsafe { std::env::remove_var("RAYSTACK_GKE_ENDPOINT") };
    assert!(
        findings.iter().all(|f| f.severity == Severity::Ok),
        "{findings:#?}"
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].headers.get("authorization").is_none(),
        "anonymous requests carry no token"
    );
}

/// A private cluster has a private endpoint, and a DNS endpoint when it is enabled: a kubeconfig
/// may name any of them.
#[tokio::test]
async fn every_api_server_endpoint_is_returned() {
    let _g = lock().await;
    let mut body = cluster(2, csi(true));
    body["privateClusterConfig"] = json!({"enablePrivateNodes": true, "privateEndpoint": "10.0.0.2", "publicEndpoint": "34.1.2.3"});
    body["controlPlaneEndpointsConfig"] = json!({"dnsEndpointConfig": {
        "endpoint": "gke-0123456789abcdef-acme-ml.us-central1.gke.goog", "allowExternalTraffic": true}});
    let server = server_with(ResponseTemplate::new(200).set_body_json(body)).await;
    let result = inspect(&target(), &fake(&server)).await;
    assert_eq!(
        result.endpoints,
        [
            "34.1.2.3",
            "10.0.0.2",
            "gke-0123456789abcdef-acme-ml.us-central1.gke.goog"
        ]
    );
}
