//! Entry point: parses the command line, seeds the store (namespaces, default StorageClass, CRDs from files),
//! writes a kubeconfig, prints the URL and serves the in-memory Kubernetes API until killed.

mod defaults;
mod discovery;
mod error;
mod http;
mod ops;
mod readiness;
mod registry;
mod schema;
mod ssa;
mod store;
mod util;
mod validate;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An in-memory Kubernetes API server for tests: server-side apply, dry run, defaults, immutable fields,
/// discovery, and simulated readiness of PVCs, StatefulSets and RayClusters.
#[derive(Parser, Debug)]
#[command(name = "fake-apiserver", version)]
struct Cli {
    /// Where to write a kubeconfig pointing at this server (context `fake`).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Sleep this long before answering every request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Port on 127.0.0.1 to listen on (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// CustomResourceDefinition YAML (or JSON) files to install at start.
    #[arg(long = "crd")]
    crds: Vec<PathBuf>,
    /// Start without the default StorageClass `standard`.
    #[arg(long)]
    no_default_storageclass: bool,
    /// Delay before simulated controllers mark StatefulSets and RayClusters ready.
    #[arg(long, default_value_t = 50)]
    readiness_delay_ms: u64,
}

fn seed(st: &mut store::State, with_sc: bool) -> Result<()> {
    let create = |st: &mut store::State, group: &str, plural: &str, obj: Value| -> Result<()> {
        ops::controller_create(st, group, "v1", plural, "", obj, "kube-apiserver")
            .map(|_| ())
            .with_context(|| format!("seeding {plural}"))
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

fn load_crd(st: &mut store::State, path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let docs: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(v) => vec![v],
        Err(_) => util::parse_yaml_multi(&text)
            .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?,
    };
    let mut found = false;
    for doc in docs
        .into_iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
    {
        let t = ops::Target {
            rt: st
                .find_type("apiextensions.k8s.io", "v1", "customresourcedefinitions")
                .context("CRD type missing")?,
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
        ops::write(st, &t, ops::Write::Create(doc), &p)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
        found = true;
    }
    if !found {
        bail!("{}: no CustomResourceDefinition found", path.display());
    }
    Ok(())
}

fn write_kubeconfig(path: &Path, url: &str) -> Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: fake-token\npreferences: {{}}\n"
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp-fake-apiserver");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut st = store::State::new(Duration::from_millis(cli.readiness_delay_ms));
    seed(&mut st, !cli.no_default_storageclass)?;
    for crd in &cli.crds {
        load_crd(&mut st, crd)?;
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cli.port))
        .await
        .context("binding 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    write_kubeconfig(&cli.kubeconfig, &url)?;
    let server = Arc::new(http::Server {
        state: Mutex::new(st),
        latency: Duration::from_millis(cli.latency_ms),
        addr: addr.to_string(),
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}")?;
        out.flush()?;
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => continue,
        };
        let server = server.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper::service::service_fn(move |req| http::handle(server.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}
