//! Live reads and actions the fault-tolerance drill and `status` need beyond apply: pods by label, deleting
//! one pod (bound to its UID), and HTTP through the API server's service proxy
//! (`/api/v1/namespaces/{ns}/services/{svc}:{port}/proxy/...`), which reaches a Service's pods
//! without a port-forward. Nothing here decides what to disrupt or when.

use kube::api::{Api, DeleteParams, ListParams, Preconditions};
use kube::core::ApiResource;
use serde_json::Value;

use super::{Cluster, ClusterError, Retry, map_err};

/// One pod, as the drill tracks it: a replacement has the same labels and a new UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    pub uid: String,
}

impl PodRef {
    pub fn of(pod: &Value) -> PodRef {
        let s = |p: &str| {
            pod.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        PodRef {
            name: s("/metadata/name"),
            uid: s("/metadata/uid"),
        }
    }
}

/// Whether a pod is Running with its `Ready` condition true, and not being deleted.
pub fn pod_ready(pod: &Value) -> bool {
    let running = pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
    let deleting = pod.pointer("/metadata/deletionTimestamp").is_some();
    let ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Ready")
                && c.get("status").and_then(Value::as_str) == Some("True")
        });
    running && ready && !deleting
}

/// Whether `pod` is controlled by the object of `kind` named `name` (its controller
/// ownerReference): the pods a RayCluster or a StatefulSet made, not a copy that merely carries
/// their labels.
pub fn owned_by(pod: &Value, kind: &str, name: &str) -> bool {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|o| {
            o.get("controller").and_then(Value::as_bool) == Some(true)
                && o.get("kind").and_then(Value::as_str) == Some(kind)
                && o.get("name").and_then(Value::as_str) == Some(name)
        })
}

/// A Service port to reach through the API server's proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub service: String,
    /// A port number or a port name of the Service.
    pub port: String,
}

impl ServicePort {
    /// The proxy path of `path` (which starts with `/`) on this port.
    pub fn proxy_path(&self, path: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/services/{}:{}/proxy{path}",
            self.namespace, self.service, self.port
        )
    }
}

/// What came back through the proxy: the status and body of the backend, or of the API server
/// when it could not reach one (503 when the Service has no ready endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyResponse {
    pub status: u16,
    pub body: String,
}

impl ProxyResponse {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn pods_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&())
}

impl Cluster {
    /// The pods in `namespace` matching the label `selector`, as JSON.
    pub async fn list_pods(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &pods_resource());
        let params = ListParams::default().labels(selector);
        let list = self
            .send(
                "list",
                &format!("pods -l {selector} in {namespace}"),
                Retry::BusyOrDropped,
                || api.list(&params),
            )
            .await?;
        Ok(list
            .items
            .into_iter()
            .map(|p| serde_json::to_value(p).expect("objects serialize"))
            .collect())
    }

    /// Deletes one pod, only if it is still the one with `pod.uid` (a replacement is never
    /// deleted by mistake). `false` when it was already gone or replaced.
    pub async fn delete_pod(&self, namespace: &str, pod: &PodRef) -> Result<bool, ClusterError> {
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &pods_resource());
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(pod.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        // The UID precondition makes a repeat harmless: the pod is gone (404) or replaced (409).
        let address = format!("Pod/{namespace}/{}", pod.name);
        match self
            .send("delete", &address, Retry::BusyOrDropped, || {
                api.delete(&pod.name, &params)
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(ClusterError::Api {
                code: 404 | 409, ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One HTTP request through the service proxy. `body` is sent as JSON when given. Error
    /// statuses are answers, not errors: only a failure to reach the API server is an error.
    pub async fn proxy(
        &self,
        target: &ServicePort,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ProxyResponse, ClusterError> {
        let uri = target.proxy_path(path);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("Accept", "application/json");
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = req
            .body(bytes)
            .map_err(|e| map_err("proxy", uri.clone(), kube::Error::HttpError(e)))?;
        // Not retried here: a proxied request may not be safe to repeat (a job submission), and
        // the backend's own 503s are answers the drill waits out itself.
        match self
            .send("proxy", &uri, Retry::Never, || {
                self.client.request_text(req.clone())
            })
            .await
        {
            Ok(body) => Ok(ProxyResponse { status: 200, body }),
            Err(ClusterError::Api { code, message, .. }) => Ok(ProxyResponse {
                status: code,
                body: message,
            }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_is_ready_when_running_with_ready_true_and_not_deleting() {
        let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(pod_ready(&ready));
        let mut deleting = ready.clone();
        deleting["metadata"] = json!({"deletionTimestamp": "2026-01-01T00:00:00Z"});
        assert!(!pod_ready(&deleting));
        let pending = json!({"status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}});
        assert!(!pod_ready(&pending));
    }

    #[test]
    fn proxy_path_names_the_service_and_port() {
        let t = ServicePort {
            namespace: "ns".into(),
            service: "ray-head-svc".into(),
            port: "8265".into(),
        };
        assert_eq!(
            t.proxy_path("/api/jobs/"),
            "/api/v1/namespaces/ns/services/ray-head-svc:8265/proxy/api/jobs/"
        );
    }
}
