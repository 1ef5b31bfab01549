//! Turns google-cloud errors (credentials, permission, missing cluster, network, timeouts) into
//! one readable finding each, without Debug dumps of SDK types.

use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::Code;
use raystack_provider::{Finding, error_root_cause};

use crate::{GkeTarget, OVERALL_TIMEOUT, PROVIDER, checks};

const CREDENTIALS_FIX: &str = "Run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file), then plan again.";
const NETWORK_FIX: &str = "Check the network path to container.googleapis.com (proxy, VPN, firewall) and, if set, RAYSTACK_GKE_ENDPOINT.";

pub(crate) fn overall_timeout(target: &GkeTarget) -> Finding {
    Finding::error(
        PROVIDER,
        checks::API,
        format!(
            "The GKE preflight for cluster `{}` did not finish within {} seconds.",
            target.name,
            OVERALL_TIMEOUT.as_secs()
        ),
        NETWORK_FIX,
    )
}

pub(crate) fn client_build_failed(err: &(dyn std::error::Error + 'static)) -> Finding {
    Finding::error(
        PROVIDER,
        checks::API,
        format!(
            "Google Cloud credentials could not be loaded: {}.",
            error_root_cause(err)
        ),
        CREDENTIALS_FIX,
    )
}

/// Whether the request never reached GKE: a connection, I/O or transport failure, also when the
/// retry loop gave up on one (its time budget spent, or retries throttled: the error is then
/// `exhausted`, with the last failure as its source).
fn unreachable(err: &Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(g) = e.downcast_ref::<Error>()
            && (g.is_connect() || g.is_io() || g.is_transport())
        {
            return true;
        }
        cause = e.source();
    }
    false
}

pub(crate) fn get_cluster_failed(err: &Error, target: &GkeTarget) -> Finding {
    let name = &target.name;
    let project = &target.project;
    let code = err.status().map(|s| s.code);
    let http = err.http_status_code();
    let service_message = err
        .status()
        .map(|s| s.message.trim().trim_end_matches('.').to_owned())
        .filter(|m| !m.is_empty());
    if err.is_authentication() {
        return Finding::error(
            PROVIDER,
            checks::API,
            format!(
                "No usable Google Cloud credentials were found: {}.",
                error_root_cause(err)
            ),
            CREDENTIALS_FIX,
        );
    }
    if code == Some(Code::Unauthenticated) || http == Some(401) {
        return Finding::error(
            PROVIDER,
            checks::API,
            "GKE rejected the Google Cloud credentials (unauthenticated).",
            CREDENTIALS_FIX,
        );
    }
    if code == Some(Code::PermissionDenied) || http == Some(403) {
        let said = service_message
            .map(|m| format!(" GKE said: {m}."))
            .unwrap_or_default();
        return Finding::error(
            PROVIDER,
            checks::API,
            format!(
                "Permission denied: the account needs container.clusters.get (roles/container.viewer) on project {project} to read GKE cluster `{name}`."
            ),
            format!(
                "Grant it with `gcloud projects add-iam-policy-binding {project} --member=<principal> --role=roles/container.viewer`, or use an account that has it.{said}"
            ),
        );
    }
    if code == Some(Code::NotFound) || http == Some(404) {
        return Finding::error(
            PROVIDER,
            checks::CLUSTER_RUNNING,
            format!(
                "GKE cluster `{name}` was not found in project {project}, location {}.",
                target.location
            ),
            format!(
                "Check `project`, `location` and `name` under [cluster] in the stack file; `gcloud container clusters list --project {project}` lists the clusters."
            ),
        );
    }
    if err.is_timeout() || code == Some(Code::DeadlineExceeded) {
        return Finding::error(
            PROVIDER,
            checks::API,
            "The GKE API did not answer in time.",
            NETWORK_FIX,
        );
    }
    if unreachable(err) {
        return Finding::error(
            PROVIDER,
            checks::API,
            format!("Could not reach the GKE API: {}.", error_root_cause(err)),
            NETWORK_FIX,
        );
    }
    let what = match (code, service_message) {
        (Some(code), Some(message)) => format!("{}: {message}", code.name()),
        (Some(code), None) => code.name().to_owned(),
        _ => error_root_cause(err),
    };
    Finding::error(
        PROVIDER,
        checks::API,
        format!("GKE could not return cluster `{name}` ({what})."),
        format!(
            "Check the cluster with `gcloud container clusters describe {name} --location {} --project {project}`, then plan again.",
            target.location
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> GkeTarget {
        GkeTarget {
            project: "acme-ml".into(),
            location: "us-central1".into(),
            name: "prod-gke".into(),
        }
    }

    fn refused() -> Error {
        Error::connect(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ))
    }

    /// Under load the retry loop's time budget can run out between attempts at a refused
    /// connection; the error is then `exhausted`, and it is still a network problem.
    #[test]
    fn a_refused_connection_is_unreachable_also_when_retries_gave_up() {
        for err in [refused(), Error::exhausted(refused())] {
            let f = get_cluster_failed(&err, &target());
            assert_eq!(
                f.message, "Could not reach the GKE API: Connection refused (os error 111).",
                "{err:?}"
            );
        }
    }
}
