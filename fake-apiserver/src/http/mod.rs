//! The HTTP wing: what a client talks to. This file is the front end; `server` the server as a
//! value (options, seeding, kubeconfig, accept loop); `discovery` and `openapi` the documents
//! clients read; `protobuf` the request bodies kubectl's typed clients send; `proxy` the service
//! proxy subresource; `authz` the read-only token; `audit` the audit log.
//!
//! The HTTP front end: accepts connections, applies the configured latency, parses Kubernetes REST paths and
//! query parameters, dispatches to the verbs and renders JSON responses (Status bodies for errors).

pub(crate) mod audit;
pub(crate) mod authz;
pub(crate) mod discovery;
pub(crate) mod openapi;
pub(crate) mod protobuf;
pub(crate) mod proxy;
pub(crate) mod server;

use crate::controllers;
use crate::error::ApiError;
use crate::ops::{self, Params, Target, Write};
use crate::store::State;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Server {
    pub state: Mutex<State>,
    /// `--audit-log-path`: every answered request is recorded here.
    pub audit: Option<crate::http::audit::AuditLog>,
    pub latency: Duration,
    pub addr: String,
    /// `--service-proxy` routes for the services/proxy subresource.
    pub proxy: Vec<crate::http::proxy::Route>,
}

type Resp = Response<Full<Bytes>>;

/// What the server answers: a whole body, or a watch's events as they come.
pub type Reply = Response<http_body_util::Either<Full<Bytes>, ops::Events>>;

fn whole(r: Resp) -> Reply {
    r.map(http_body_util::Either::Left)
}

/// A response body: a value, a list already written out (`ops::list`), or a watch to stream.
enum Body {
    Value(Value),
    Json(Vec<u8>),
    Watch(Box<ops::Watch>),
}

/// How often a watch looks at the store for changes (and ticks the simulated controllers, so a
/// watcher waiting for readiness sees it with no other requests coming in).
const WATCH_POLL: Duration = Duration::from_millis(20);

/// Streams `w`'s events until its deadline or until the client goes away.
fn watch_response(server: Arc<Server>, mut w: ops::Watch) -> Reply {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let first = w.take_pending();
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        while std::time::Instant::now() < w.deadline() {
            let wait = w
                .deadline()
                .saturating_duration_since(std::time::Instant::now())
                .min(WATCH_POLL);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = tx.closed() => return,
            }
            let events = {
                let mut st = match server.state.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                controllers::tick(&mut st);
                w.next(&st)
            };
            if !events.is_empty() && tx.send(Bytes::from(events)).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-cache, private")
        .body(http_body_util::Either::Right(ops::Events(rx)))
        .unwrap_or_else(|_| whole(Response::new(Full::new(Bytes::new()))))
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Resp {
    // `to_vec` writes straight into the buffer (`to_string` goes through `fmt::Write`).
    json_bytes_response(code, serde_json::to_vec(body).unwrap_or_default(), warnings)
}

fn json_bytes_response(code: u16, bytes: Vec<u8>, warnings: &[String]) -> Resp {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-cache, private");
    for w in warnings {
        b = b.header(
            "Warning",
            format!("299 - {}", serde_json::to_string(w).unwrap_or_default()),
        );
    }
    b.body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn error_response(e: &ApiError) -> Resp {
    json_response(e.code, &e.to_status(), &[])
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether an Accept header allows a JSON answer (no header at all does).
fn accepts_json(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|range| {
            matches!(
                range.split(';').next().unwrap_or("").trim(),
                "application/json" | "application/*" | "*/*"
            )
        })
}

/// Parses a create or replace body: JSON, or Kubernetes protobuf for the kinds `protobuf` knows.
fn parse_object(ct: &str, body: &[u8]) -> Result<Value, ApiError> {
    match ct.split(';').next().unwrap_or("").trim() {
        "application/vnd.kubernetes.protobuf" => protobuf::decode(body).map_err(|e| match e {
            protobuf::Error::UnknownKind(k) => ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: format!(
                    "this server reads protobuf bodies only for v1 Namespace, ConfigMap, Secret and Service, not {k}: send application/json"
                ),
                details: serde_json::json!({}),
            },
            protobuf::Error::Malformed(m) => {
                ApiError::bad_request(format!("error decoding request body: {m}"))
            }
        }),
        _ => parse_body(body, false),
    }
}

/// Parses a request body as JSON, or as YAML for apply patches.
fn parse_body(body: &[u8], yaml_ok: bool) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is not valid UTF-8"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(e) if !yaml_ok => Err(ApiError::bad_request(format!(
            "error decoding request body: {e}"
        ))),
        Err(_) => crate::util::parse_yaml(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}"))),
    }
}

pub async fn handle(
    server: Arc<Server>,
    req: Request<Incoming>,
) -> Result<Reply, std::convert::Infallible> {
    let Some(audit) = server.audit.as_ref() else {
        return respond(server, req).await;
    };
    let method = req.method().clone();
    let uri = req.uri().clone();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let user = crate::http::authz::username(header("authorization").as_deref());
    let user_agent = header("user-agent").unwrap_or_default();
    let resp = respond(server.clone(), req).await?;
    audit.record(&method, &uri, user, &user_agent, resp.status().as_u16());
    Ok(resp)
}

async fn respond(
    server: Arc<Server>,
    req: Request<Incoming>,
) -> Result<Reply, std::convert::Infallible> {
    if !server.latency.is_zero() {
        tokio::time::sleep(server.latency).await;
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(whole(error_response(&ApiError::bad_request(format!(
                "reading body: {e}"
            )))));
        }
    };
    if let Err(e) = crate::store::limits::request_body(body.len()) {
        return Ok(whole(error_response(&e)));
    }
    let read_only = crate::http::authz::read_only_user(
        parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
    );
    let ua = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_string();
    let ct = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query());
    let accept = parts
        .headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if path.starts_with("/openapi/") && !accepts_json(accept) {
        // kubectl asks for /openapi/v2 in its protobuf form only; this server has only JSON.
        return Ok(whole(error_response(&ApiError {
            code: 406,
            reason: "NotAcceptable",
            message: format!("only application/json is available, not {accept}"),
            details: serde_json::json!({}),
        })));
    }
    if let Some(t) = crate::http::proxy::parse(&path) {
        if read_only.is_some() && parts.method != Method::GET {
            return Ok(whole(error_response(&ApiError::forbidden(
                "services/proxy",
                "",
                &t.service,
                "this user may only read",
            ))));
        }
        // Checked under the lock, forwarded without it: the backend may take its time.
        let url = {
            let mut st = match server.state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            controllers::tick(&mut st);
            crate::http::proxy::resolve(&st, &server.proxy, &t)
        };
        let ct = (!ct.is_empty()).then_some(ct.as_str());
        return Ok(whole(
            match async {
                crate::http::proxy::forward(
                    &url?,
                    &parts.method,
                    &t.rest,
                    parts.uri.query(),
                    ct,
                    body,
                )
                .await
            }
            .await
            {
                Ok(r) => r,
                Err(e) => error_response(&e),
            },
        ));
    }
    let mut st = match server.state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    controllers::tick(&mut st);
    let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        route(
            &mut st,
            &server.addr,
            &parts.method,
            &path,
            &query,
            &ct,
            &ua,
            &body,
            read_only,
        )
    }))
    .unwrap_or_else(|_| {
        Err(ApiError {
            code: 500,
            reason: "InternalError",
            message: format!("internal error handling {} {path}", parts.method),
            details: serde_json::json!({}),
        })
    });
    controllers::tick(&mut st);
    drop(st);
    Ok(match resp {
        Ok((code, Body::Value(v), warnings)) => whole(json_response(code, &v, &warnings)),
        Ok((code, Body::Json(bytes), warnings)) => {
            whole(json_bytes_response(code, bytes, &warnings))
        }
        Ok((_, Body::Watch(w), _)) => watch_response(server, *w),
        Err(e) => whole(error_response(&e)),
    })
}

type Routed = Result<(u16, Body, Vec<String>), ApiError>;

#[allow(clippy::too_many_arguments)]
fn route(
    st: &mut State,
    addr: &str,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    ct: &str,
    ua: &str,
    body: &[u8],
    read_only: Option<&str>,
) -> Routed {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let ok = |v: Value| Ok((200, Body::Value(v), Vec::new()));
    match segs.as_slice() {
        ["version"] => return ok(discovery::version()),
        ["healthz"] | ["readyz"] | ["livez"] => {
            return ok(Value::String("ok".into()));
        }
        ["api"] => return ok(discovery::core_versions(addr)),
        ["openapi", "v2"] => return ok(openapi::v2(st)),
        ["openapi", "v3"] => return ok(openapi::v3_index(st)),
        ["openapi", "v3", gv @ ..] => {
            return openapi::v3_group_version(st, &gv.join("/"))
                .map(ok)
                .unwrap_or(Err(ApiError::no_resource()));
        }
        ["apis"] => return ok(discovery::group_list(st)),
        ["api", "v1"] => {
            return discovery::resource_list(st, "", "v1")
                .map(ok)
                .unwrap_or(Err(ApiError::no_resource()));
        }
        ["apis", g] => {
            return discovery::group(st, g)
                .map(ok)
                .unwrap_or(Err(ApiError::no_resource()));
        }
        ["apis", g, v] => {
            return discovery::resource_list(st, g, v)
                .map(ok)
                .unwrap_or(Err(ApiError::no_resource()));
        }
        _ => {}
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", v, rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return Err(ApiError::no_resource()),
    };
    if !st.group_served(group, version) {
        return Err(ApiError::no_resource());
    }
    // Work out namespace / resource / name / subresource.
    let (ns, plural, name, sub): (Option<&str>, &str, Option<&str>, Option<&str>) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if *plural != "status"
                && *plural != "finalize"
                && st
                    .find_type(group, version, plural)
                    .is_some_and(|t| t.namespaced) =>
        {
            match tail {
                [] => (Some(ns), plural, None, None),
                [n] => (Some(ns), plural, Some(n), None),
                [n, s] => (Some(ns), plural, Some(n), Some(s)),
                _ => return Err(ApiError::no_resource()),
            }
        }
        [plural] => (None, plural, None, None),
        [plural, n] => (None, plural, Some(n), None),
        [plural, n, s] => (None, plural, Some(n), Some(s)),
        _ => return Err(ApiError::no_resource()),
    };
    let rt = st
        .find_type(group, version, plural)
        .ok_or_else(ApiError::no_resource)?;
    if !rt.namespaced && ns.is_some() {
        return Err(ApiError::no_resource());
    }
    if rt.namespaced && ns.is_none() && name.is_some() {
        return Err(ApiError::no_resource());
    }
    let t = Target {
        rt,
        version: version.to_string(),
        namespace: ns.map(String::from),
        name: name.map(String::from),
        sub: sub.map(String::from),
    };
    crate::http::authz::check(read_only, method, &t)?;
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            )));
        }
    };
    let force = match query.get("force").map(String::as_str) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid force value {other:?}"
            )));
        }
    };
    let default_manager = ua.split('/').next().unwrap_or("unknown").to_string();
    let params = Params {
        dry_run,
        field_manager: query.get("fieldManager").cloned(),
        default_manager: if default_manager.is_empty() {
            "unknown".into()
        } else {
            default_manager
        },
        force,
        field_validation: query
            .get("fieldValidation")
            .cloned()
            .unwrap_or_else(|| "Warn".into()),
    };
    if let Some(m) = &params.field_manager
        && m.len() > 128
    {
        return Err(ApiError::bad_request(
            "fieldManager: Too long: may not be more than 128 bytes",
        ));
    }
    let ls = query.get("labelSelector").map(String::as_str);
    let fs = query.get("fieldSelector").map(String::as_str);
    let out = |o: ops::Outcome| Ok((o.code, Body::Value(o.body), o.warnings));
    match *method {
        Method::GET => {
            if t.name.is_some() {
                ok(ops::get_one(st, &t)?)
            } else if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                let w = ops::Watch::new(st, &t, query)?;
                Ok((200, Body::Watch(Box::new(w)), Vec::new()))
            } else {
                Ok((200, Body::Json(ops::list_json(st, &t, ls, fs)?), Vec::new()))
            }
        }
        Method::POST => {
            let b = parse_object(ct, body)?;
            out(ops::write(st, &t, Write::Create(b), &params)?)
        }
        Method::PUT => {
            let b = parse_object(ct, body)?;
            out(ops::write(st, &t, Write::Replace(b), &params)?)
        }
        Method::PATCH => {
            let media = ct.split(';').next().unwrap_or("").trim();
            let w = match media {
                "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                    Write::Apply(parse_body(body, true)?)
                }
                "application/merge-patch+json" => Write::Merge(parse_body(body, false)?),
                "application/strategic-merge-patch+json" => {
                    Write::StrategicMerge(parse_body(body, false)?)
                }
                "application/json-patch+json" => Write::JsonPatch(parse_body(body, false)?),
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            out(ops::write(st, &t, w, &params)?)
        }
        Method::DELETE => {
            let opts = if body.is_empty() {
                None
            } else {
                Some(parse_body(body, false)?)
            };
            if let Some(o) = &opts
                && o.get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x == "All"))
            {
                let p2 = Params {
                    dry_run: true,
                    ..params.clone()
                };
                return if t.name.is_some() {
                    out(ops::delete(st, &t, &p2, opts.as_ref())?)
                } else {
                    ok(ops::delete_collection(st, &t, &p2, ls, fs)?)
                };
            }
            let is_pod = t.rt.is("", "Pod");
            if t.name.is_some() {
                let o = ops::delete(st, &t, &params, opts.as_ref())?;
                if is_pod {
                    crate::controllers::lifecycle::pod_deleted(st, &o.body);
                }
                out(o)
            } else {
                let deleted = ops::delete_collection(st, &t, &params, ls, fs)?;
                if is_pod {
                    for pod in deleted["items"].as_array().into_iter().flatten() {
                        crate::controllers::lifecycle::pod_deleted(st, pod);
                    }
                }
                ok(deleted)
            }
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
