//! The server as a value: options, seeding the store (namespaces `default` and `kube-system`, the default
//! StorageClass, CRDs from files), binding 127.0.0.1, the kubeconfig that points at it, and the accept loop.

use crate::http;
use crate::ops;
use crate::store::State;
use crate::store::objects;
use crate::util;
use serde_json::{Value, json};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port on 127.0.0.1 to listen on (0 = any free port).
    pub port: u16,
    /// Sleep this long before answering every request.
    pub latency: Duration,
    /// CustomResourceDefinition YAML (or JSON) files to install at start.
    pub crds: Vec<PathBuf>,
    /// Seed the default StorageClass `standard`.
    pub default_storage_class: bool,
    /// Delay before simulated controllers mark StatefulSets and RayClusters ready.
    pub readiness_delay: Duration,
    /// Where the services/proxy subresource forwards, per Service port.
    pub service_proxy: Vec<crate::http::proxy::Route>,
    /// Commands run when a matching pod is deleted through the API.
    pub on_pod_delete: Vec<crate::store::controller_state::Hook>,
    /// How KubeRay's simulated Redis cleanup Job behaves when a RayCluster is deleted.
    pub cleanup_job: crate::store::controller_state::CleanupJob,
    /// Where to write the audit log (one JSON audit Event per request), if anywhere.
    pub audit_log: Option<PathBuf>,
    /// Simulate the Ray autoscaler: autoscaled worker groups are scaled to their maxReplicas.
    pub simulate_autoscaler: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            port: 0,
            latency: Duration::ZERO,
            crds: Vec::new(),
            default_storage_class: true,
            readiness_delay: Duration::from_millis(50),
            service_proxy: Vec::new(),
            on_pod_delete: Vec::new(),
            cleanup_job: crate::store::controller_state::CleanupJob::default(),
            audit_log: None,
            simulate_autoscaler: false,
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: no CustomResourceDefinition found")]
    NoCrd { path: PathBuf },
    #[error("{path}: {message}")]
    CrdRejected { path: PathBuf, message: String },
    #[error("opening the audit log {path}: {source}")]
    AuditLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seeding {0}")]
    Seed(&'static str),
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A seeded server bound to its loopback port, not yet serving.
pub struct Server {
    shared: Arc<http::Server>,
    listener: TcpListener,
    addr: SocketAddr,
}

impl Server {
    /// Seeds a store per `opts` and binds 127.0.0.1 (needs a Tokio runtime).
    pub async fn bind(opts: &Options) -> Result<Server, Error> {
        let mut st = State::new(opts.readiness_delay);
        st.lifecycle.hooks = opts.on_pod_delete.clone();
        st.cleanup_job = opts.cleanup_job;
        st.simulate_autoscaler = opts.simulate_autoscaler;
        seed(&mut st, opts.default_storage_class)?;
        for crd in &opts.crds {
            load_crd(&mut st, crd)?;
        }
        let listener = TcpListener::bind(("127.0.0.1", opts.port))
            .await
            .map_err(|source| Error::Bind {
                port: opts.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            port: opts.port,
            source,
        })?;
        let audit = opts
            .audit_log
            .as_ref()
            .map(|path| {
                crate::http::audit::AuditLog::create(path).map_err(|source| Error::AuditLog {
                    path: path.clone(),
                    source,
                })
            })
            .transpose()?;
        let shared = Arc::new(http::Server {
            state: Mutex::new(st),
            audit,
            latency: opts.latency,
            addr: addr.to_string(),
            proxy: opts.service_proxy.clone(),
        });
        Ok(Server {
            shared,
            listener,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig for this server (see [`kubeconfig`]) to `path`, atomically.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        write_kubeconfig(path, &self.url())
    }

    /// Serves until the process ends.
    pub async fn serve(self) {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes; connections still open then are dropped with the runtime.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                _ = &mut shutdown => return,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let server = self.shared.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let svc = hyper::service::service_fn(move |req| http::handle(server.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    }
}

/// A kubeconfig for the server at `url`: context `fake` (the current one; namespace `default`, a
/// bearer token that may do anything) and context `fake-readonly` (a token that may only read).
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n- name: fake-readonly\n  context:\n    cluster: fake\n    user: fake-readonly\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: fake-token\n- name: fake-readonly\n  user:\n    token: {}\npreferences: {{}}\n",
        crate::http::authz::READ_ONLY_TOKEN
    )
}

fn write_kubeconfig(path: &Path, url: &str) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("tmp-fake-apiserver");
    std::fs::write(&tmp, kubeconfig(url)).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn seed(st: &mut State, with_sc: bool) -> Result<(), Error> {
    let create = |st: &mut State, group: &str, plural: &'static str, obj: Value| {
        objects::create_by(st, group, "v1", plural, "", obj, "kube-apiserver")
            .map(|_| ())
            .ok_or(Error::Seed(plural))
    };
    for ns in ["default", "kube-system"] {
        create(
            st,
            "",
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )?;
    }
    if with_sc {
        create(
            st,
            "storage.k8s.io",
            "storageclasses",
            json!({
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "rancher.io/local-path",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "WaitForFirstConsumer",
            }),
        )?;
    }
    Ok(())
}

fn load_crd(st: &mut State, path: &Path) -> Result<(), Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    let docs: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(v) => vec![v],
        Err(_) => util::parse_yaml_multi(&text).map_err(|message| Error::Parse {
            path: path.into(),
            message,
        })?,
    };
    let mut found = false;
    for doc in docs
        .into_iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
    {
        let t = ops::Target {
            rt: st
                .find_type("apiextensions.k8s.io", "v1", "customresourcedefinitions")
                .expect("the CRD kind is built in"),
            version: "v1".into(),
            namespace: None,
            name: None,
            sub: None,
        };
        let p = ops::Params {
            field_manager: Some("kubectl-create".into()),
            default_manager: "kubectl-create".into(),
            field_validation: "Ignore".into(),
            ..ops::Params::default()
        };
        ops::write(st, &t, ops::Write::Create(doc), &p).map_err(|e| Error::CrdRejected {
            path: path.into(),
            message: e.message,
        })?;
        found = true;
    }
    if !found {
        return Err(Error::NoCrd { path: path.into() });
    }
    Ok(())
}
