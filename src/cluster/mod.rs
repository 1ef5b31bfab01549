//! All Kubernetes I/O: the client (kubeconfig, `--context`, `--kubeconfig`, exec plugins as kube
//! supports them), the API resource of every kind raystack renders (no discovery needed),
//! server-side apply (and its dry-run), get, delete, and the cluster's identity.
//! Readiness rules are pure and live in `readiness`. Nothing here decides what to change.

pub mod live;
pub mod readiness;

use std::path::Path;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

/// Something went wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `detail` is the cause's first line only: parse errors quote the file, and a kubeconfig
    /// holds credentials that must not reach logs. The fix suggests `--offline`.
    #[error(
        "failed to load kubeconfig{}: {detail}\n  help: pass --kubeconfig PATH or --context NAME, or plan without a cluster with `raystack plan --offline`",
        .path.as_ref().map(|p| format!(" `{p}`")).unwrap_or_default()
    )]
    Kubeconfig {
        path: Option<String>,
        detail: String,
    },
    #[error("failed to create a Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("raystack does not know the API of kind `{0}`")]
    UnknownKind(String),
    #[error("failed to {verb} `{address}`: {message}")]
    Api {
        verb: &'static str,
        address: String,
        code: u16,
        message: String,
    },
    #[error("failed to {verb} `{address}`")]
    Transport {
        verb: &'static str,
        address: String,
        #[source]
        source: kube::Error,
    },
}

impl ClusterError {
    /// The HTTP status the API server answered with, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
    /// The server's own message (for 422 Invalid and friends).
    pub fn server_message(&self) -> Option<&str> {
        match self {
            ClusterError::Api { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Identifies one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn of(manifest: &Value) -> Self {
        let s = |p: &str| {
            manifest
                .pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        ObjectRef {
            api_version: s("/apiVersion").unwrap_or_default(),
            kind: s("/kind").unwrap_or_default(),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name").unwrap_or_default(),
        }
    }
    pub fn address(&self) -> String {
        crate::state::address(&self.kind, self.namespace.as_deref(), &self.name)
    }
}

/// The API resource (and whether it is namespaced) of each kind raystack renders.
pub fn api_resource(api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
    let (plural, namespaced) = match kind {
        "Namespace" => ("namespaces", false),
        "StorageClass" => ("storageclasses", false),
        "Secret" => ("secrets", true),
        "ConfigMap" => ("configmaps", true),
        "PersistentVolumeClaim" => ("persistentvolumeclaims", true),
        "StatefulSet" => ("statefulsets", true),
        "Service" => ("services", true),
        "NetworkPolicy" => ("networkpolicies", true),
        "RayCluster" => ("rayclusters", true),
        "Pod" => ("pods", true),
        // KubeRay's Redis cleanup Job, watched while a RayCluster is deleted.
        "Job" => ("jobs", true),
        _ => return None,
    };
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Some((ApiResource::from_gvk_with_plural(&gvk, plural), namespaced))
}

/// The error and its causes on one line, cut at the first newline (no quoted file content).
fn first_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = s.source();
    }
    text.lines().next().unwrap_or_default().trim().to_string()
}

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    /// The API server URL (for messages).
    pub server: String,
}

/// Connects using `kubeconfig` (else `$KUBECONFIG`, else `~/.kube/config`) and `context` (else
/// the current context). No request is made yet.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Cluster, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let err = |source: kube::config::KubeconfigError| ClusterError::Kubeconfig {
                path: Some(path.display().to_string()),
                detail: first_line(&source),
            };
            let kc = Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(err)?
        }
        None => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|source| ClusterError::Kubeconfig {
                path: None,
                detail: first_line(&source),
            })?,
    };
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(ClusterError::Client)?;
    Ok(Cluster { client, server })
}

fn map_err(verb: &'static str, address: String, err: kube::Error) -> ClusterError {
    match err {
        kube::Error::Api(status) => ClusterError::Api {
            verb,
            address,
            code: status.code,
            message: status.message.clone(),
        },
        other => ClusterError::Transport {
            verb,
            address,
            source: other,
        },
    }
}

impl Cluster {
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    fn api(&self, r: &ObjectRef) -> Result<Api<DynamicObject>, ClusterError> {
        let (ar, namespaced) = api_resource(&r.api_version, &r.kind)
            .ok_or_else(|| ClusterError::UnknownKind(r.kind.clone()))?;
        Ok(match (namespaced, &r.namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        })
    }

    /// The cluster's identity: the UID of the `kube-system` namespace, which lives as long as
    /// the cluster. Plan files bind to it so a plan is never applied to another cluster.
    pub async fn identity(&self) -> Result<String, ClusterError> {
        let r = ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: "kube-system".into(),
        };
        match self.get(&r).await? {
            Some(ns) => Ok(ns
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()),
            // A server without kube-system (a test double): fall back to its URL.
            None => Ok(format!("server:{}", self.server)),
        }
    }

    /// The live object, or `None` when it does not exist.
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let api = self.api(r)?;
        match api.get_opt(&r.name).await {
            Ok(obj) => Ok(obj.map(|o| serde_json::to_value(o).expect("objects serialize"))),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(map_err("read", r.address(), e)),
        }
    }

    /// Server-side apply of `manifest` as `manager`, forcing ownership of conflicting fields.
    /// With `dry_run`, returns what the server would hold and stores nothing.
    pub async fn apply(
        &self,
        manifest: &Value,
        manager: &str,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        let r = ObjectRef::of(manifest);
        let api = self.api(&r)?;
        let mut params = PatchParams::apply(manager).force();
        if dry_run {
            params = params.dry_run();
        }
        let verb = if dry_run { "dry-run apply" } else { "apply" };
        api.patch(&r.name, &params, &Patch::Apply(manifest))
            .await
            .map(|o| serde_json::to_value(o).expect("objects serialize"))
            .map_err(|e| map_err(verb, r.address(), e))
    }

    /// Names of the pods in `namespace` that mount PVC `claim` (best effort: empty when pods
    /// cannot be listed).
    pub async fn pods_using_claim(&self, namespace: &str, claim: &str) -> Vec<String> {
        let r = ObjectRef {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: Some(namespace.into()),
            name: String::new(),
        };
        let Ok(api) = self.api(&r) else {
            return Vec::new();
        };
        let Ok(list) = api.list(&Default::default()).await else {
            return Vec::new();
        };
        list.items
            .into_iter()
            .filter(|p| {
                p.data
                    .pointer("/spec/volumes")
                    .and_then(Value::as_array)
                    .is_some_and(|vs| {
                        vs.iter().any(|v| {
                            v.pointer("/persistentVolumeClaim/claimName")
                                .and_then(Value::as_str)
                                == Some(claim)
                        })
                    })
            })
            .filter_map(|p| p.metadata.name)
            .collect()
    }

    /// Deletes an object (background propagation). `false` when it was already gone.
    pub async fn delete(&self, r: &ObjectRef) -> Result<bool, ClusterError> {
        let api = self.api(r)?;
        match api.delete(&r.name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(map_err("delete", r.address(), e)),
        }
    }
}
