//! The service proxy subresource, `/api/v1/namespaces/{ns}/services/{name}[:{port}]/proxy/{path}`:
//! a real API server forwards it to one of the Service's ready endpoints; this one forwards it
//! to a local URL configured per Service port (`--service-proxy NS/NAME:PORT=URL`), after the
//! same checks a real one makes: the Service exists (404), has the port, and selects a ready pod
//! (503 "no endpoints available for service"). So a test can reach a real process "inside" the
//! fake cluster, and loses it while its pod is gone.

use crate::error::ApiError;
use crate::store::State;
use crate::util::{get, get_str};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// How long one forwarded request may take.
const FORWARD_DEADLINE: Duration = Duration::from_secs(120);

/// One `--service-proxy NS/NAME:PORT=URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub namespace: String,
    pub service: String,
    /// A port number or name, as given.
    pub port: String,
    /// `http://host:port` (a path prefix is allowed).
    pub url: String,
}

impl std::str::FromStr for Route {
    type Err = String;
    fn from_str(s: &str) -> Result<Route, String> {
        let usage = || format!("expected NAMESPACE/SERVICE:PORT=http://HOST:PORT, got {s:?}");
        let (target, url) = s.split_once('=').ok_or_else(usage)?;
        let (ns, svc_port) = target.split_once('/').ok_or_else(usage)?;
        let (svc, port) = svc_port.split_once(':').ok_or_else(usage)?;
        if ns.is_empty() || svc.is_empty() || port.is_empty() || !url.starts_with("http://") {
            return Err(usage());
        }
        Ok(Route {
            namespace: ns.into(),
            service: svc.into(),
            port: port.into(),
            url: url.trim_end_matches('/').into(),
        })
    }
}

/// A parsed proxy request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub service: String,
    /// Empty when the request names no port (the Service's first port).
    pub port: String,
    /// The path after `/proxy`, starting with `/`.
    pub rest: String,
}

/// Whether `path` is a service proxy request, and its parts.
pub fn parse(path: &str) -> Option<Target> {
    let trimmed = path.strip_prefix("/api/v1/namespaces/")?;
    let mut parts = trimmed.splitn(4, '/');
    let ns = parts.next()?;
    if parts.next()? != "services" {
        return None;
    }
    let name = parts.next()?;
    let tail = parts.next()?;
    let rest = tail.strip_prefix("proxy")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    // `name`, `name:port` or `scheme:name:port`.
    let fields: Vec<&str> = name.split(':').collect();
    let (service, port) = match fields.as_slice() {
        [n] => (*n, ""),
        [n, p] => (*n, *p),
        [_, n, p] => (*n, *p),
        _ => return None,
    };
    Some(Target {
        namespace: ns.into(),
        service: service.into(),
        port: port.into(),
        rest: if rest.is_empty() {
            "/".into()
        } else {
            rest.into()
        },
    })
}

fn unavailable(message: String) -> ApiError {
    ApiError {
        code: 503,
        reason: "ServiceUnavailable",
        message,
        details: json!({}),
    }
}

/// The Service's port matching `want` (number or name; empty = the first), as (number, name).
fn service_port(svc: &Value, want: &str) -> Option<(String, String)> {
    let ports = get(svc, &["spec", "ports"]).and_then(Value::as_array)?;
    let found = if want.is_empty() {
        ports.first()
    } else {
        ports.iter().find(|p| {
            p.get("name").and_then(Value::as_str) == Some(want)
                || p.get("port").map(|n| n.to_string()).as_deref() == Some(want)
        })
    }?;
    Some((
        found.get("port").map(|n| n.to_string()).unwrap_or_default(),
        found
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    ))
}

fn pod_ready(pod: &Value) -> bool {
    get_str(pod, &["status", "phase"]) == Some("Running")
        && get(pod, &["status", "conditions"])
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
}

/// Checks the request against the store and picks the URL to forward to (under the lock).
pub fn resolve(st: &State, routes: &[Route], t: &Target) -> Result<String, ApiError> {
    let svc = st
        .get("", "services", &t.namespace, &t.service)
        .ok_or_else(|| ApiError::not_found("services", "", &t.service))?;
    let (number, name) = service_port(svc, &t.port).ok_or_else(|| {
        unavailable(format!(
            "no service port {:?} found for service {:?}",
            t.port, t.service
        ))
    })?;
    let selector = get(svc, &["spec", "selector"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let has_endpoint = !selector.is_empty()
        && st.list("", "pods", &t.namespace).into_iter().any(|(_, p)| {
            let labels = get(p, &["metadata", "labels"]).and_then(Value::as_object);
            selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                && pod_ready(p)
        });
    if !has_endpoint {
        return Err(unavailable(format!(
            "no endpoints available for service {:?}",
            t.service
        )));
    }
    routes
        .iter()
        .find(|r| {
            r.namespace == t.namespace
                && r.service == t.service
                && (r.port == number || (!name.is_empty() && r.port == name))
        })
        .map(|r| r.url.clone())
        .ok_or_else(|| {
            unavailable(format!(
                "error trying to reach service: fake-apiserver has no --service-proxy for {}/{}:{number}",
                t.namespace, t.service
            ))
        })
}

/// Forwards one request to `url` + `rest` (+ `query`) and returns the backend's answer as is.
pub async fn forward(
    url: &str,
    method: &Method,
    rest: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let base = url.trim_start_matches("http://");
    let (host, prefix) = match base.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (base, String::new()),
    };
    let path = match query {
        Some(q) if !q.is_empty() => format!("{prefix}{rest}?{q}"),
        _ => format!("{prefix}{rest}"),
    };
    let reach = |e: String| unavailable(format!("error trying to reach service: {e}"));
    let work = async {
        let stream = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| reach(format!("dial tcp {host}: {e}")))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| reach(e.to_string()))?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method.clone())
            .uri(&path)
            .header("Host", host);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| reach(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| reach(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| reach(e.to_string()))?
            .to_bytes();
        let mut out = Response::builder().status(parts.status);
        if let Some(ct) = parts.headers.get("content-type") {
            out = out.header("Content-Type", ct);
        }
        out.body(Full::new(bytes)).map_err(|e| reach(e.to_string()))
    };
    match tokio::time::timeout(FORWARD_DEADLINE, work).await {
        Ok(r) => r,
        Err(_) => Err(ApiError {
            code: StatusCode::GATEWAY_TIMEOUT.as_u16(),
            reason: "Timeout",
            message: format!("the backend at {url} did not answer within {FORWARD_DEADLINE:?}"),
            details: json!({}),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse() {
        let r: Route = "ns/ray-head-svc:8265=http://127.0.0.1:9000/"
            .parse()
            .unwrap();
        assert_eq!(
            (
                r.namespace.as_str(),
                r.service.as_str(),
                r.port.as_str(),
                r.url.as_str()
            ),
            ("ns", "ray-head-svc", "8265", "http://127.0.0.1:9000")
        );
        assert!("ns/svc=http://x".parse::<Route>().is_err());
        assert!("ns/svc:80=https://x".parse::<Route>().is_err());
    }

    #[test]
    fn proxy_paths_parse() {
        let t = parse("/api/v1/namespaces/ns/services/svc:8265/proxy/api/jobs/").unwrap();
        assert_eq!(
            (
                t.namespace.as_str(),
                t.service.as_str(),
                t.port.as_str(),
                t.rest.as_str()
            ),
            ("ns", "svc", "8265", "/api/jobs/")
        );
        let t = parse("/api/v1/namespaces/ns/services/http:svc:dashboard/proxy").unwrap();
        assert_eq!((t.port.as_str(), t.rest.as_str()), ("dashboard", "/"));
        assert_eq!(parse("/api/v1/namespaces/ns/services/svc"), None);
        assert_eq!(parse("/api/v1/namespaces/ns/pods/p/proxy/x"), None);
    }
}
