//! EKS preflight against a local wiremock server that answers in the EKS REST/JSON shape.
//! The AWS SDK reads endpoint and credentials from process environment variables, so every test
//! holds one lock while it sets them and runs.

#![allow(
    unsafe_code,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the SDK reads its endpoint and credentials from the environment, and setting a variable is unsafe since edition 2024; every test holds one lock while it does; tests report what they saw"
)]

use raystack_aws::{EksTarget, Severity, checks, inspect, preflight, provisioner};
use serde_json::json;
use tokio::sync::{Mutex, MutexGuard};
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

static ENV_LOCK: Mutex<()> = Mutex::const_new(());

const ARN: &str = "arn:aws:eks:us-west-2:123456789012:cluster/prod-eks";

fn target() -> EksTarget {
    EksTarget {
        cluster_name: "prod-eks".into(),
        region: "us-west-2".into(),
    }
}

/// Points the SDK at `endpoint` with dummy static credentials and nothing else from this machine.
async fn env_for(endpoint: Option<&str>, credentials: bool) -> MutexGuard<'static, ()> {
    let guard = ENV_LOCK.lock().await;
    // SAFETY: every test takes ENV_LOCK before touching or reading the environment.
    unsafe {
        for var in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_EKS",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            std::env::remove_var(var);
        }
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/raystack-test/config");
        std::env::set_var(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/raystack-test/credentials",
        );
        std::env::set_var("AWS_REGION", "us-west-2");
        if credentials {
            std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDRAYSTACKTEST");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "raystack-test-secret");
        }
        if let Some(endpoint) = endpoint {
            std::env::set_var("AWS_ENDPOINT_URL_EKS", endpoint);
        }
    }
    guard
}

fn cluster(status: &str, auto_mode: bool) -> serde_json::Value {
    let mut c = json!({
        "name": "prod-eks",
        "arn": ARN,
        "version": "1.31",
        "status": status,
        "endpoint": "https://ABCDEF.gr7.us-west-2.eks.amazonaws.com",
        "platformVersion": "eks.12",
        "roleArn": "arn:aws:iam::123456789012:role/eks-cluster",
        "health": {"issues": []},
    });
    if auto_mode {
        c["storageConfig"] = json!({"blockStorage": {"enabled": true}});
        c["computeConfig"] = json!({"enabled": true, "nodePools": ["general-purpose", "system"]});
    }
    json!({ "cluster": c })
}

fn addon(status: &str, issues: serde_json::Value) -> serde_json::Value {
    json!({"addon": {
        "addonName": "aws-ebs-csi-driver",
        "clusterName": "prod-eks",
        "status": status,
        "addonVersion": "v1.35.0-eksbuild.1",
        "addonArn": "arn:aws:eks:us-west-2:123456789012:addon/prod-eks/aws-ebs-csi-driver/abc",
        "health": {"issues": issues},
    }})
}

fn aws_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-errortype", kind)
        .insert_header("content-type", "application/json")
        .set_body_json(json!({ "message": message }))
}

async fn server_with(
    cluster_body: ResponseTemplate,
    addon_body: Option<ResponseTemplate>,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/clusters/prod-eks"))
        .and(header_exists("authorization"))
        .respond_with(cluster_body)
        .mount(&server)
        .await;
    if let Some(addon_body) = addon_body {
        Mock::given(method("GET"))
            .and(path("/clusters/prod-eks/addons/aws-ebs-csi-driver"))
            .respond_with(addon_body)
            .mount(&server)
            .await;
    }
    server
}

fn find<'a>(findings: &'a [raystack_aws::Finding], check: &str) -> &'a raystack_aws::Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no finding {check} in {findings:#?}"))
}

#[tokio::test]
async fn active_cluster_with_active_addon_passes() {
    let server = server_with(
        ResponseTemplate::new(200).set_body_json(cluster("ACTIVE", false)),
        Some(ResponseTemplate::new(200).set_body_json(addon("ACTIVE", json!([])))),
    )
    .await;
    let _env = env_for(Some(&server.uri()), true).await;
    let result = inspect(&target()).await;
    assert!(result.passed(), "{:#?}", result.findings);
    assert!(!result.auto_mode);
    assert_eq!(result.kubernetes_version.as_deref(), Some("1.31"));
    // The API server a kubeconfig for the cluster names, for the identity check.
    assert_eq!(
        result.endpoints,
        ["https://ABCDEF.gr7.us-west-2.eks.amazonaws.com"]
    );
    assert_eq!(result.findings.len(), 3, "{:#?}", result.findings);
    let active = find(&result.findings, checks::CLUSTER_ACTIVE);
    assert_eq!(active.severity, Severity::Ok);
    assert!(active.message.contains("is ACTIVE"), "{}", active.message);
    let version = find(&result.findings, checks::KUBERNETES_VERSION);
    assert_eq!(version.severity, Severity::Ok);
    assert!(
        version.message.contains("Kubernetes 1.31"),
        "{}",
        version.message
    );
    let addon = find(&result.findings, checks::EBS_CSI_ADDON);
    assert_eq!(addon.severity, Severity::Ok);
    assert!(
        addon
            .message
            .contains("aws-ebs-csi-driver add-on (v1.35.0-eksbuild.1)"),
        "{}",
        addon.message
    );
    assert_eq!(provisioner(result.auto_mode), "ebs.csi.aws.com");
}

#[tokio::test]
async fn creating_cluster_is_an_error_to_wait_for() {
    let server = server_with(
        ResponseTemplate::new(200).set_body_json(cluster("CREATING", false)),
        Some(ResponseTemplate::new(200).set_body_json(addon("ACTIVE", json!([])))),
    )
    .await;
    let _env = env_for(Some(&server.uri()), true).await;
    let findings = preflight(&target()).await;
    let active = find(&findings, checks::CLUSTER_ACTIVE);
    assert_eq!(active.severity, Severity::Error);
    assert_eq!(
        active.message,
        "EKS cluster `prod-eks` is CREATING, not ready yet."
    );
    assert!(
        active
            .fix
            .as_deref()
            .unwrap()
            .starts_with("Wait until `aws eks describe-cluster --name prod-eks --region us-west-2")
    );
}

#[tokio::test]
async fn failed_cluster_is_an_error() {
    let mut body = cluster("FAILED", false);
    body["cluster"]["health"] = json!({"issues": [{"code": "SubnetNotFound", "message": "Subnet subnet-123 was not found", "resourceIds": ["subnet-123"]}]});
    let server = server_with(ResponseTemplate::new(200).set_body_json(body), None).await;
    let _env = env_for(Some(&server.uri()), true).await;
    let findings = preflight(&target()).await;
    let active = find(&findings, checks::CLUSTER_ACTIVE);
    assert_eq!(active.severity, Severity::Error);
    assert_eq!(
        active.message,
        "EKS cluster `prod-eks` is FAILED (Subnet subnet-123 was not found)."
    );
    assert!(
        findings.iter().all(|f| f.check != checks::EBS_CSI_ADDON),
        "{findings:#?}"
    );
}

#[tokio::test]
async fn missing_cluster_is_one_not_found_error() {
    let server = server_with(
        aws_error(
            404,
            "ResourceNotFoundException",
            "No cluster found for name: prod-eks.",
        ),
        None,
    )
    .await;
    let _env = env_for(Some(&server.uri()), true).await;
    let result = inspect(&target()).await;
    assert!(result.endpoints.is_empty(), "no cluster, no endpoint");
    let findings = result.findings;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Error);
    assert_eq!(findings[0].check, checks::CLUSTER_ACTIVE);
    assert_eq!(
        findings[0].message,
        "EKS cluster `prod-eks` was not found in region us-west-2."
    );
    assert!(
        findings[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("aws eks list-clusters --region us-west-2")
    );
}

#[tokio::test]
async fn absent_addon_is_an_error_with_the_create_addon_fix() {
    let server = server_with(
        ResponseTemplate::new(200).set_body_json(cluster("ACTIVE", false)),
        Some(aws_error(
            404,
            "ResourceNotFoundException",
            "No addon: aws-ebs-csi-driver found in cluster: prod-eks",
        )),
    )
    .await;
    let _env = env_for(Some(&server.uri()), true).await;
    let findings = preflight(&target()).await;
    let addon = find(&findings, checks::EBS_CSI_ADDON);
    assert_eq!(addon.severity, Severity::Error);
    assert!(
        addon.message.contains("has no aws-ebs-csi-driver add-on"),
        "{}",
        addon.message
    );
    let fix = addon.fix.as_deref().unwrap();
    assert!(
        fix.contains("arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"),
        "{fix}"
    );
    assert!(
        fix.contains("aws eks create-addon --cluster-name prod-eks --region us-west-2 --addon-name aws-ebs-csi-driver --service-account-role-arn arn:aws:iam::123456789012:role/AmazonEKS_EBS_CSI_DriverRole"),
        "{fix}"
    );
}

#[tokio::test]
async fn degraded_addon_reports_its_health_issues() {
    let issues = json!([{"code": "InsufficientNumberOfReplicas", "message": "The add-on is unhealthy because it doesn't have the desired number of replicas", "resourceIds": ["kube-system/ebs-csi-controller"]}]);
    let server = server_with(
        ResponseTemplate::new(200).set_body_json(cluster("ACTIVE", false)),
        Some(ResponseTemplate::new(200).set_body_json(addon("DEGRADED", issues))),
    )
    .await;
    let _env = env_for(Some(&server.uri()), true).await;
    let findings = preflight(&target()).await;
    let addon = find(&findings, checks::EBS_CSI_ADDON);
    assert_eq!(addon.severity, Severity::Error);
    assert_eq!(
        addon.message,
        "The aws-ebs-csi-driver add-on on EKS cluster `prod-eks` is DEGRADED (InsufficientNumberOfReplicas: The add-on is unhealthy because it doesn't have the desired number of replicas)."
    );
}

#[tokio::test]
async fn updating_addon_is_a_warning() {
    let server = server_with(
        ResponseTemplate::new(200).set_body_json(cluster("ACTIVE", false)),
        Some(ResponseTemplate::new(200).set_body_json(addon("UPDATING", json!([])))),
    )
    .await;
    let _env = env_for(Some(&server.uri()), true).await;
    let findings = preflight(&target()).await;
    let addon = find(&findings, checks::EBS_CSI_ADDON);
    assert_eq!(addon.severity, Severity::Warning);
    assert!(addon.message.contains("is UPDATING"), "{}", addon.message);
}

#[tokio::test]
async fn auto_mode_needs_no_addon() {
    // No add-on mock: asking for it would get wiremock's 404 without an error type.
    let server = server_with(
        ResponseTemplate::new(200).set_body_json(cluster("ACTIVE", true)),
        None,
    )
    .await;
    let _env = env_for(Some(&server.uri()), true).await;
    let result = inspect(&target()).await;
    assert!(result.auto_mode);
    assert!(result.passed(), "{:#?}", result.findings);
    assert_eq!(provisioner(result.auto_mode), "ebs.csi.eks.amazonaws.com");
    let auto = find(&result.findings, checks::AUTO_MODE);
    assert_eq!(auto.severity, Severity::Ok);
    assert!(
        auto.message.contains("ebs.csi.eks.amazonaws.com"),
        "{}",
        auto.message
    );
    assert!(
        result
            .findings
            .iter()
            .all(|f| f.check != checks::EBS_CSI_ADDON)
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "only DescribeCluster is called");
}

#[tokio::test]
async fn access_denied_is_one_sentence() {
    let server = server_with(
        aws_error(
            403,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: eks:DescribeCluster on resource: arn:aws:eks:us-west-2:123456789012:cluster/prod-eks",
        ),
        None,
    )
    .await;
    let _env = env_for(Some(&server.uri()), true).await;
    let findings = preflight(&target()).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.check, checks::API);
    assert_eq!(
        f.message,
        "Access denied: the AWS identity may not call eks:DescribeCluster on cluster `prod-eks` in us-west-2."
    );
    let fix = f.fix.as_deref().unwrap();
    assert!(
        fix.contains("is not authorized to perform: eks:DescribeCluster"),
        "{fix}"
    );
    assert!(
        !fix.contains("SdkError") && !fix.contains("ServiceError {"),
        "{fix}"
    );
}

#[tokio::test]
async fn rejected_credentials_point_at_sso_login() {
    let server = server_with(
        aws_error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        None,
    )
    .await;
    let _env = env_for(Some(&server.uri()), true).await;
    let findings = preflight(&target()).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        findings[0].message,
        "EKS rejected the AWS credentials (UnrecognizedClientException: The security token included in the request is invalid)."
    );
    assert!(
        findings[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("aws sso login")
    );
}

#[tokio::test]
async fn missing_credentials_point_at_sso_login() {
    let server = server_with(
        ResponseTemplate::new(200).set_body_json(cluster("ACTIVE", false)),
        None,
    )
    .await;
    let _env = env_for(Some(&server.uri()), false).await;
    let findings = preflight(&target()).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message
            .starts_with("No AWS credentials were found to call EKS in us-west-2"),
        "{}",
        f.message
    );
    assert!(!f.message.contains('\n'), "{}", f.message);
    assert!(!f.message.contains('{'), "{}", f.message);
    assert!(f.fix.as_deref().unwrap().starts_with("Run `aws sso login`"));
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing is sent unsigned"
    );
}

#[tokio::test]
async fn connection_refused_is_one_sentence() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let _env = env_for(Some(&format!("http://127.0.0.1:{port}")), true).await;
    let findings = preflight(&target()).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message
            .starts_with("Could not reach the EKS API in us-west-2: "),
        "{}",
        f.message
    );
    assert!(
        f.message.to_lowercase().contains("connection refused"),
        "{}",
        f.message
    );
    assert!(!f.message.contains("DispatchFailure"), "{}", f.message);
}

#[tokio::test]
async fn generic_endpoint_variable_is_honoured() {
    let server = server_with(
        ResponseTemplate::new(200).set_body_json(cluster("ACTIVE", false)),
        Some(ResponseTemplate::new(200).set_body_json(addon("ACTIVE", json!([])))),
    )
    .await;
    let _env = env_for(None, true).await;
    // SAFETY: ENV_LOCK is held.
    unsafe { std::env::set_var("AWS_ENDPOINT_URL", server.uri()) };
    let findings = preflight(&target()).await;
    unsafe { std::env::remove_var("AWS_ENDPOINT_URL") };
    assert!(
        findings.iter().all(|f| f.severity == Severity::Ok),
        "{findings:#?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn empty_target_is_rejected_without_calls() {
    let findings = preflight(&EksTarget {
        cluster_name: String::new(),
        region: "us-west-2".into(),
    })
    .await;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].severity, Severity::Error);
}

/// Against a moto server (`pip install 'moto[server]'`, `moto_server -p PORT`), when
/// `RAYSTACK_MOTO_EKS_URL` names it: the real SDK round trip for a cluster moto creates. moto does
/// not implement EKS add-on calls (it answers an HTML 404), so only the cluster checks are asserted.
/// Ignored (and listed as such) unless run with `--ignored` and the variable set.
#[tokio::test]
#[ignore = "needs a moto server named by RAYSTACK_MOTO_EKS_URL"]
async fn moto_cluster_round_trip_when_available() {
    let url = std::env::var("RAYSTACK_MOTO_EKS_URL")
        .expect("RAYSTACK_MOTO_EKS_URL names a running moto server (moto_server -p PORT)");
    let _env = env_for(Some(&url), true).await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .load()
        .await;
    let client = aws_sdk_eks::Client::new(&sdk);
    let created = client
        .create_cluster()
        .name("moto-eks")
        .version("1.31")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await;
    if let Err(err) = created {
        let in_use = err
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        assert!(
            in_use,
            "create-cluster on moto failed: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        );
    }
    let target = EksTarget {
        cluster_name: "moto-eks".into(),
        region: "us-west-2".into(),
    };
    let result = inspect(&target).await;
    assert_eq!(
        find(&result.findings, checks::CLUSTER_ACTIVE).severity,
        Severity::Ok,
        "{:#?}",
        result.findings
    );
    assert_eq!(result.kubernetes_version.as_deref(), Some("1.31"));
    assert!(!result.auto_mode);
    let addon = find(&result.findings, checks::EBS_CSI_ADDON);
    assert_eq!(addon.severity, Severity::Error);
    assert!(addon.message.contains("HTTP 404"), "{}", addon.message);
}
