//! Turns AWS SDK errors (credentials, access, missing cluster, network, timeouts) into one
//! readable finding each, without Debug dumps of SDK types.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eks::operation::describe_addon::DescribeAddonError;
use aws_sdk_eks::operation::describe_cluster::DescribeClusterError;
use raystack_provider::{Finding, error_root_cause as root_cause};

use crate::{EksTarget, OVERALL_TIMEOUT, PROVIDER, checks};

type HttpResponse = aws_sdk_eks::config::http::HttpResponse;

const CREDENTIALS_FIX: &str = "Run `aws sso login` (or `aws configure`), or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then plan again.";
const NETWORK_FIX: &str = "Check the network path to the EKS API (proxy, VPN, firewall) and, if set, AWS_ENDPOINT_URL_EKS / AWS_ENDPOINT_URL.";

/// Codes that mean the request's credentials were rejected (not merely lacking permission).
const BAD_CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "ExpiredToken",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "MissingAuthenticationTokenException",
];

pub(crate) fn overall_timeout(target: &EksTarget) -> Finding {
    Finding::error(
        PROVIDER,
        checks::API,
        format!(
            "The EKS preflight for cluster `{}` in {} did not finish within {} seconds.",
            target.cluster_name,
            target.region,
            OVERALL_TIMEOUT.as_secs()
        ),
        NETWORK_FIX,
    )
}

pub(crate) fn describe_cluster_failed(
    err: &SdkError<DescribeClusterError, HttpResponse>,
    target: &EksTarget,
) -> Finding {
    if err
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception())
    {
        return Finding::error(
            PROVIDER,
            checks::CLUSTER_ACTIVE,
            format!(
                "EKS cluster `{}` was not found in region {}.",
                target.cluster_name, target.region
            ),
            format!(
                "Check `name` and `region` under [cluster] in the stack file; `aws eks list-clusters --region {}` lists the clusters this account can see.",
                target.region
            ),
        );
    }
    sdk_failure(err, target, "eks:DescribeCluster")
}

pub(crate) fn describe_addon_failed(
    err: &SdkError<DescribeAddonError, HttpResponse>,
    target: &EksTarget,
) -> Finding {
    let mut finding = sdk_failure(err, target, "eks:DescribeAddon");
    if finding.check == checks::API {
        finding.check = checks::EBS_CSI_ADDON.into();
    }
    finding
}

/// The failure classes every EKS operation shares.
fn sdk_failure<E>(err: &SdkError<E, HttpResponse>, target: &EksTarget, action: &str) -> Finding
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let region = &target.region;
    let cluster = &target.cluster_name;
    if let Some(creds) = find_in_chain::<CredentialsError>(err as &(dyn StdError + 'static)) {
        let message = match creds {
            CredentialsError::CredentialsNotLoaded(_) => format!(
                "No AWS credentials were found to call EKS in {region} (tried the environment, the profile files, web identity, the container and the instance metadata)."
            ),
            other => format!(
                "AWS credentials could not be loaded to call EKS in {region}: {}.",
                root_cause(other as &(dyn StdError + 'static))
            ),
        };
        return Finding::error(PROVIDER, checks::API, message, CREDENTIALS_FIX);
    }
    match err {
        SdkError::TimeoutError(_) => Finding::error(
            PROVIDER,
            checks::API,
            format!("The EKS API in {region} did not answer in time."),
            NETWORK_FIX,
        ),
        SdkError::DispatchFailure(failure) => {
            let what = if failure.is_timeout() {
                "timed out".to_owned()
            } else {
                root_cause(err as &(dyn StdError + 'static))
            };
            Finding::error(
                PROVIDER,
                checks::API,
                format!("Could not reach the EKS API in {region}: {what}."),
                NETWORK_FIX,
            )
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = err.code().unwrap_or("");
            let message = err.message().unwrap_or("");
            if BAD_CREDENTIAL_CODES.contains(&code) || status == 401 {
                Finding::error(
                    PROVIDER,
                    checks::API,
                    format!(
                        "EKS rejected the AWS credentials ({}).",
                        code_and_message(code, message, status)
                    ),
                    CREDENTIALS_FIX,
                )
            } else if code == "AccessDeniedException" || code == "AccessDenied" || status == 403 {
                Finding::error(
                    PROVIDER,
                    checks::API,
                    format!(
                        "Access denied: the AWS identity may not call {action} on cluster `{cluster}` in {region}."
                    ),
                    format!(
                        "Grant the identity eks:DescribeCluster and eks:DescribeAddon on the cluster (check it with `aws sts get-caller-identity`), or use a profile that has them; EKS said: {}.",
                        code_and_message(code, message, status)
                    ),
                )
            } else {
                Finding::error(
                    PROVIDER,
                    checks::API,
                    format!(
                        "EKS refused {action} for cluster `{cluster}` in {region} ({}).",
                        code_and_message(code, message, status)
                    ),
                    "Check the cluster and the AWS identity with `aws eks describe-cluster`, then plan again.",
                )
            }
        }
        SdkError::ResponseError(response) => Finding::error(
            PROVIDER,
            checks::API,
            format!(
                "The EKS API in {region} sent a response raystack could not read (HTTP {}).",
                response.raw().status().as_u16()
            ),
            NETWORK_FIX,
        ),
        _ => Finding::error(
            PROVIDER,
            checks::API,
            format!(
                "Could not call {action} in {region}: {}.",
                root_cause(err as &(dyn StdError + 'static))
            ),
            CREDENTIALS_FIX,
        ),
    }
}

fn code_and_message(code: &str, message: &str, status: u16) -> String {
    match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {}", message.trim_end_matches('.')),
        (false, true) => code.to_owned(),
        (true, false) => format!("HTTP {status}: {}", message.trim_end_matches('.')),
        (true, true) => format!("HTTP {status}"),
    }
}

/// The first error of type `T` in the error's source chain.
fn find_in_chain<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}
