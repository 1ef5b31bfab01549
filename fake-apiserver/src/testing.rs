//! Test support, the one way every test and benchmark runs a fake API server: [`FakeApiServer`] starts a
//! server in-process (its own thread and Tokio runtime, a free port on 127.0.0.1), writes a kubeconfig
//! for it into a temporary directory, answers plain HTTP requests for tests that look behind a client's
//! back, and stops when dropped.

use crate::http::server::{Options, Server};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// How long a test request may take before the helper gives up (far above any latency a test sets).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A running in-process server; dropping it stops the server and removes its kubeconfig.
pub struct FakeApiServer {
    url: String,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl FakeApiServer {
    /// A server with the default options (default StorageClass, 50 ms readiness delay, no CRDs).
    pub fn start() -> FakeApiServer {
        FakeApiServer::start_with(Options::default())
    }

    /// A server with the KubeRay CRDs (or other CRD files) at `crds` installed.
    pub fn with_crds<P: AsRef<Path>>(crds: &[P]) -> FakeApiServer {
        FakeApiServer::start_with(Options {
            crds: crds.iter().map(|p| p.as_ref().to_path_buf()).collect(),
            ..Options::default()
        })
    }

    /// Starts a server; panics (this is test support) when it cannot.
    pub fn start_with(opts: Options) -> FakeApiServer {
        let dir = tempfile::tempdir().expect("a temporary directory for the kubeconfig");
        let kubeconfig = dir.path().join("kubeconfig");
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a Tokio runtime for fake-apiserver");
                rt.block_on(async move {
                    match Server::bind(&opts).await {
                        Ok(server) => {
                            let _ = ready_tx
                                .send(Ok((server.addr(), tokio::runtime::Handle::current())));
                            server
                                .serve_until(async {
                                    let _ = stop_rx.await;
                                })
                                .await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .expect("spawn the fake-apiserver thread");
        let (addr, runtime) = match ready_rx.recv() {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => panic!("fake-apiserver did not start: {e}"),
            Err(_) => panic!("fake-apiserver's thread ended before it started"),
        };
        let url = format!("http://{addr}");
        std::fs::write(&kubeconfig, crate::http::server::kubeconfig(&url))
            .expect("write the kubeconfig");
        FakeApiServer {
            url,
            addr,
            kubeconfig,
            runtime,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig file for this server (context `fake`, namespace `default`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client for this server that other threads can own (it must not outlive the server).
    pub fn client(&self) -> Client {
        Client {
            addr: self.addr,
            runtime: self.runtime.clone(),
        }
    }

    /// One request (`path` with its query); `headers` are sent as given, after `Host`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.client().request(method, path, headers, body)
    }

    /// GET `path`; the body as JSON when the status is 200.
    pub fn get_json(&self, path: &str) -> Option<Value> {
        self.client().get_json(path)
    }
}

/// Plain HTTP requests to one [`FakeApiServer`], from any thread.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
}

impl Client {
    /// One request (`path` with its query); `headers` are sent as given, after `Host`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap_or_else(|e| panic!("bad test request {method} {path}: {e}"));
        let (tx, rx) = mpsc::channel();
        let addr = self.addr;
        self.runtime.spawn(async move {
            let _ = tx.send(send(addr, req).await);
        });
        match rx.recv_timeout(REQUEST_TIMEOUT) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("{method} {path}: {e}"),
            Err(_) => panic!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"),
        }
    }

    /// GET `path`; the body as JSON when the status is 200.
    pub fn get_json(&self, path: &str) -> Option<Value> {
        let r = self.request("GET", path, &[("Accept", "application/json")], b"");
        (r.status == 200).then(|| r.json())
    }
}

async fn send(addr: SocketAddr, req: hyper::Request<Full<Bytes>>) -> Result<Response, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("read body: {e}"))?
        .to_bytes();
    Ok(Response {
        status,
        headers,
        text: String::from_utf8_lossy(&body).into_owned(),
    })
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
