//! The `fake-apiserver` binary: parses the command line, starts the library's server, writes a kubeconfig,
//! prints the URL on the first line of stdout and serves until killed.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the binary prints its URL and its errors"
)]

use anyhow::Result;
use clap::Parser;
use fake_apiserver::{Options, Server};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// mimalloc instead of the system allocator, as in raystack: a write request copies and
/// rebuilds JSON objects and field sets, and with glibc's malloc `perf` put malloc and free at
/// about a third of the fake's CPU (BENCHMARKS.md, "The fake's allocator"). Tests and benches
/// that run the fake in their own process set the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An in-memory Kubernetes API server for tests: server-side apply, dry run, defaults, immutable fields,
/// CRD validation rules, discovery, and simulated controllers (PVC binding and protection, namespace
/// deletion, StatefulSets, KubeRay, optionally the Ray autoscaler).
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
    /// Forward the services/proxy subresource of a Service port to a local URL:
    /// NAMESPACE/SERVICE:PORT=http://127.0.0.1:PORT (PORT: the Service's port number or name).
    #[arg(long = "service-proxy", value_name = "NS/SVC:PORT=URL")]
    service_proxy: Vec<fake_apiserver::ProxyRoute>,
    /// Run COMMAND (with `sh -c`; POD_NAMESPACE, POD_NAME, POD_UID set) when a pod matching the
    /// label selector is deleted; its controller recreates the pod, ready once COMMAND exits 0.
    #[arg(long = "on-pod-delete", value_name = "LABEL=VALUE[,...]:COMMAND")]
    on_pod_delete: Vec<fake_apiserver::PodHook>,
    /// How long KubeRay's simulated Redis cleanup Job runs when a RayCluster with a Redis GCS is
    /// deleted (its finalizer holds the RayCluster until then).
    #[arg(long, default_value_t = 200)]
    cleanup_job_delay_ms: u64,
    /// The simulated cleanup Job fails (KubeRay drops its finalizer anyway).
    #[arg(long)]
    cleanup_job_fail: bool,
    /// Write an audit log here: one JSON audit.k8s.io/v1 Event per request (verb, URI, user,
    /// response code), as kube-apiserver's flag of the same name does.
    #[arg(long, value_name = "PATH")]
    audit_log_path: Option<PathBuf>,
    /// Simulate the Ray autoscaler: once a RayCluster with enableInTreeAutoscaling runs, scale
    /// each worker group whose min and max differ to its maxReplicas (field manager
    /// python-requests).
    #[arg(long)]
    simulate_autoscaler: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let opts = Options {
        port: cli.port,
        latency: Duration::from_millis(cli.latency_ms),
        crds: cli.crds,
        default_storage_class: !cli.no_default_storageclass,
        readiness_delay: Duration::from_millis(cli.readiness_delay_ms),
        service_proxy: cli.service_proxy,
        on_pod_delete: cli.on_pod_delete,
        cleanup_job: fake_apiserver::kuberay::CleanupJob {
            delay: Duration::from_millis(cli.cleanup_job_delay_ms),
            fail: cli.cleanup_job_fail,
        },
        audit_log: cli.audit_log_path,
        simulate_autoscaler: cli.simulate_autoscaler,
    };
    let server = Server::bind(&opts).await?;
    server.write_kubeconfig(&cli.kubeconfig)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", server.url())?;
        out.flush()?;
    }
    server.serve().await;
    Ok(())
}
