//! A fault-injecting HTTP proxy for tests: it sits on loopback between a client (the `raystack`
//! binary) and an upstream API server (fake-apiserver) and, for requests matching a pattern
//! (method and a path substring), delays them, drops the connection, blackholes them (reads the
//! request and never answers), or answers an error status (409, 429, 500, 503 …, optionally
//! with `Retry-After`) instead of forwarding. Everything else is forwarded unchanged. Each
//! rule can be limited to its first N matches; every request is logged with what was done.
//!
//! HTTP/1.1 only, one request at a time per connection; a forwarded request is sent upstream
//! with `Connection: close` and the client connection is closed after its response (clients
//! reconnect), which keeps the proxy free of response framing.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Wait this long, then forward.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Read the request and never answer (the connection stays open until the client leaves).
    Blackhole,
    /// Answer this status with a Kubernetes `Status` body instead of forwarding;
    /// `retry_after` sets both the `Retry-After` header and `details.retryAfterSeconds`.
    Status { code: u16, retry_after: Option<u32> },
}

impl Fault {
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            retry_after: None,
        }
    }
}

/// A request pattern and its fault.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `None` matches every method.
    pub method: Option<String>,
    /// Matches when the request path (with query) contains this.
    pub path_contains: String,
    /// …and does not contain this (e.g. `dryRun` to spare a plan's dry-runs).
    pub unless_contains: Option<String>,
    pub fault: Fault,
    /// Applies to this many matching requests, then no longer (`None`: always).
    pub times: Option<usize>,
}

impl Rule {
    pub fn new(method: Option<&str>, path_contains: &str, fault: Fault) -> Rule {
        Rule {
            method: method.map(str::to_string),
            path_contains: path_contains.to_string(),
            unless_contains: None,
            fault,
            times: None,
        }
    }

    /// Does not match paths containing `text`.
    pub fn unless(mut self, text: &str) -> Rule {
        self.unless_contains = Some(text.to_string());
        self
    }

    /// Limits the rule to its first `n` matches.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = Some(n);
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.times != Some(0)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.contains(&self.path_contains)
            && self
                .unless_contains
                .as_deref()
                .is_none_or(|u| !path.contains(u))
    }
}

/// One request the proxy saw, and the fault applied (`None`: forwarded as is).
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

impl Shared {
    /// The first matching rule's fault (counting the match), logged.
    fn fault_for(&self, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let fault = rules.iter_mut().find(|r| r.matches(method, path)).map(|r| {
            if let Some(n) = &mut r.times {
                *n -= 1;
            }
            r.fault.clone()
        });
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Seen {
                method: method.to_string(),
                path: path.to_string(),
                fault: fault.clone(),
            });
        fault
    }
}

/// A running proxy; stopped when dropped.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> io::Result<FaultProxy> {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{upstream}: {e}")))?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let url = format!("http://{}", std_listener.local_addr()?);
        let shared = Arc::new(Shared::default());
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let for_thread = shared.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            tokio::spawn(serve(client, upstream, for_thread.clone()));
                        }
                    }
                }
            });
        });
        Ok(FaultProxy {
            url,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds a rule; rules are tried in the order added, the first match wins.
    pub fn push(&self, rule: Rule) {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rule);
    }

    /// Removes every rule: from now on everything is forwarded.
    pub fn clear(&self) {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Every request seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes a kubeconfig (context `faults`) that points at the proxy.
    pub fn write_kubeconfig(&self, path: &Path) -> io::Result<()> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: faults\n  cluster:\n    server: {}\ncontexts:\n- name: faults\n  context:\n    cluster: faults\n    user: faults\ncurrent-context: faults\nusers:\n- name: faults\n  user:\n    token: faults\n",
            self.url
        );
        std::fs::write(path, text)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One parsed request: its head (request line and headers) and body.
struct Request {
    method: String,
    path: String,
    head: String,
    body: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;

/// Reads one request; `None` at a clean end of the connection.
async fn read_request(client: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut first = head.lines().next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Ok(Some(Request {
        method,
        path,
        head,
        body,
    }))
}

fn reason_phrase(code: u16) -> (&'static str, &'static str) {
    match code {
        409 => ("Conflict", "Conflict"),
        429 => ("Too Many Requests", "TooManyRequests"),
        500 => ("Internal Server Error", "InternalError"),
        502 => ("Bad Gateway", "InternalError"),
        503 => ("Service Unavailable", "ServiceUnavailable"),
        504 => ("Gateway Timeout", "Timeout"),
        _ => ("Error", "Unknown"),
    }
}

fn status_response(code: u16, retry_after: Option<u32>, req: &Request) -> Vec<u8> {
    let (phrase, reason) = reason_phrase(code);
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("injected fault: {code} {phrase} for {} {}", req.method, req.path),
        "reason": reason,
        "code": code,
    });
    if let Some(secs) = retry_after {
        status["details"] = json!({ "retryAfterSeconds": secs });
    }
    let body = status.to_string();
    let mut head = format!(
        "HTTP/1.1 {code} {phrase}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(secs) = retry_after {
        head.push_str(&format!("Retry-After: {secs}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// The request as sent upstream: same head, `Connection: close`.
fn upstream_bytes(req: &Request) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in req.head.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        if i > 0
            && line
                .split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&req.body);
    bytes
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    loop {
        let req = match read_request(&mut client, &mut buf).await {
            Ok(Some(req)) => req,
            _ => return,
        };
        match shared.fault_for(&req.method, &req.path) {
            Some(Fault::Drop) => return,
            Some(Fault::Blackhole) => {
                // Hold the connection until the client gives up.
                let mut sink = [0u8; 8192];
                while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Some(Fault::Status { code, retry_after }) => {
                if client
                    .write_all(&status_response(code, retry_after, &req))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                let _ = forward(&mut client, upstream, &req).await;
                return;
            }
            None => {
                let _ = forward(&mut client, upstream, &req).await;
                return;
            }
        }
    }
}

/// Sends `req` upstream and copies the whole response back.
async fn forward(client: &mut TcpStream, upstream: SocketAddr, req: &Request) -> io::Result<()> {
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&upstream_bytes(req)).await?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).await?;
    client.write_all(&response).await?;
    client.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_method_and_path_and_run_out() {
        let shared = Shared::default();
        shared.rules.lock().unwrap().push(
            Rule::new(Some("PATCH"), "/statefulsets/", Fault::Drop)
                .unless("dryRun")
                .times(1),
        );
        assert_eq!(
            shared.fault_for("GET", "/apis/apps/v1/statefulsets/x"),
            None
        );
        assert_eq!(
            shared.fault_for("PATCH", "/apis/apps/v1/statefulsets/x?dryRun=All"),
            None
        );
        assert_eq!(
            shared.fault_for("patch", "/apis/apps/v1/statefulsets/x?fieldManager=m"),
            Some(Fault::Drop)
        );
        assert_eq!(
            shared.fault_for("PATCH", "/apis/apps/v1/statefulsets/x?fieldManager=m"),
            None,
            "used up"
        );
        assert_eq!(shared.seen.lock().unwrap().len(), 4);
    }
}
