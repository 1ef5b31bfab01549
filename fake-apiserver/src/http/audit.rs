//! The audit log (`--audit-log-path`, as kube-apiserver names it): one `audit.k8s.io/v1` Event per
//! request, a JSON object per line, at the `Metadata` level and the `ResponseComplete` stage. A test
//! reads it to see which requests a client made, in the order they were answered.

use hyper::{Method, Uri};
use serde_json::json;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// An open audit log.
pub struct AuditLog {
    file: Mutex<std::fs::File>,
    next_id: AtomicU64,
}

impl AuditLog {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: &Path) -> std::io::Result<AuditLog> {
        Ok(AuditLog {
            file: Mutex::new(std::fs::File::create(path)?),
            next_id: AtomicU64::new(1),
        })
    }

    /// Records one answered request.
    pub fn record(&self, method: &Method, uri: &Uri, user: &str, user_agent: &str, code: u16) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = crate::util::now_rfc3339();
        let event = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": format!("{id:08x}-0000-4000-8000-000000000000"),
            "stage": "ResponseComplete",
            "requestURI": uri.to_string(),
            "verb": verb(method, uri),
            "user": {"username": user},
            "userAgent": user_agent,
            "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": now,
            "stageTimestamp": now,
        });
        let mut file = match self.file.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        // Best effort, like a real server's log backend: a full disk must not fail the request.
        let _ = writeln!(file, "{event}");
    }
}

/// The Kubernetes verb of a request: `get` or `list` (or `watch`) for a GET, by whether the path
/// names one object; `create`, `update`, `patch`; `delete` or `deletecollection`. Non-resource
/// paths (`/version`, `/openapi/v2`) get the HTTP method in lower case, as kube-apiserver logs them.
pub fn verb(method: &Method, uri: &Uri) -> &'static str {
    let names_object = names_object(uri.path());
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    match (method, names_object) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, Some(true)) => "get",
        (&Method::GET, Some(false)) => "list",
        (&Method::POST, Some(_)) => "create",
        (&Method::PUT, Some(_)) => "update",
        (&Method::PATCH, Some(_)) => "patch",
        (&Method::DELETE, Some(true)) => "delete",
        (&Method::DELETE, Some(false)) => "deletecollection",
        (&Method::GET, None) => "get",
        (&Method::POST, None) => "post",
        (&Method::PUT, None) => "put",
        (&Method::PATCH, None) => "patch",
        (&Method::DELETE, None) => "delete",
        _ => "unknown",
    }
}

/// For a resource path, whether it names one object (`Some(true)`) or a collection
/// (`Some(false)`); `None` for discovery and other non-resource paths.
fn names_object(path: &str) -> Option<bool> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segs.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return None,
    };
    match rest {
        [] => None,
        ["namespaces", _ns, _plural, tail @ ..] => Some(!tail.is_empty()),
        [_plural, tail @ ..] => Some(!tail.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verb_of_each_kind_of_request_is_the_one_kube_apiserver_logs() {
        let cases = [
            ("GET", "/api/v1/namespaces/kube-system", "get"),
            ("GET", "/api/v1/namespaces", "list"),
            ("GET", "/api/v1/namespaces/ns/secrets/s", "get"),
            ("GET", "/api/v1/namespaces/ns/secrets", "list"),
            ("GET", "/api/v1/secrets?labelSelector=a%3Db", "list"),
            ("GET", "/api/v1/namespaces/ns/pods?watch=true", "watch"),
            ("GET", "/apis/ray.io/v1/namespaces/ns/rayclusters/r", "get"),
            ("GET", "/apis/storage.k8s.io/v1/storageclasses", "list"),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/ns/statefulsets/s?dryRun=All",
                "patch",
            ),
            ("PATCH", "/api/v1/namespaces/ns", "patch"),
            ("POST", "/api/v1/namespaces/ns/configmaps", "create"),
            ("POST", "/api/v1/namespaces", "create"),
            ("PUT", "/api/v1/namespaces/ns/configmaps/c", "update"),
            (
                "PUT",
                "/apis/ray.io/v1/namespaces/ns/rayclusters/r/status",
                "update",
            ),
            ("DELETE", "/api/v1/namespaces/ns/pods/p", "delete"),
            ("DELETE", "/api/v1/namespaces/ns/pods", "deletecollection"),
            ("GET", "/version", "get"),
            ("GET", "/apis", "get"),
            ("GET", "/apis/ray.io/v1", "get"),
            ("GET", "/openapi/v2", "get"),
        ];
        let got: Vec<(&str, &str, &str)> = cases
            .iter()
            .map(|(m, p, _)| {
                let method: Method = m.parse().unwrap();
                let uri: Uri = p.parse().unwrap();
                (*m, *p, verb(&method, &uri))
            })
            .collect();
        assert_eq!(got, cases);
    }
}
