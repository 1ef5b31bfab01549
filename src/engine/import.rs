//! `raystack import`, the reading half: through the one door (`Cluster`), the RayCluster, the
//! Redis its spec names (Service → the StatefulSet its selector selects → the PVC and the
//! ConfigMap its pod mounts → the password Secret) and the installed KubeRay (from the CRD).
//! `crate::import` turns what was read into the stack file, or refuses.

use anyhow::{Context, bail};
use serde_json::Value;

use super::Engine;
use crate::cluster::Cluster;
use crate::import::{Found, redis_of, selects};
use crate::kind::{Kind, ObjectRef};

/// What `raystack import` was asked for.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub namespace: String,
    pub raycluster: String,
    pub take_ownership: bool,
    /// The command line, for the file's header.
    pub command: String,
}

async fn must_get(
    cluster: &Cluster,
    kind: Kind,
    ns: &str,
    name: &str,
    why: &str,
) -> anyhow::Result<Value> {
    let r = ObjectRef::new(kind, Some(ns), name);
    match cluster.get(&r).await? {
        Some(v) => Ok(v),
        None => bail!("{kind}/{name} not found in namespace `{ns}` ({why})"),
    }
}

impl Engine {
    /// Reads the cluster `req` names and returns the stack file's text (or why not).
    pub async fn import(&self, req: &ImportRequest) -> anyhow::Result<String> {
        let (cluster, _) = self.cluster(None).await?;
        let ns = req.namespace.as_str();
        let rc = must_get(
            &cluster,
            Kind::RayCluster,
            ns,
            &req.raycluster,
            "the --raycluster to import",
        )
        .await?;
        let redis = redis_of(&rc, ns).map_err(anyhow::Error::msg)?;
        let service = must_get(
            &cluster,
            Kind::Service,
            ns,
            &redis.service,
            "the Service the RayCluster's Redis address names",
        )
        .await?;
        let selector = service
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let selected: Vec<Value> = cluster
            .list_in(Kind::StatefulSet, ns)
            .await?
            .into_iter()
            .filter(|s| selects(&selector, s.pointer("/spec/template/metadata/labels")))
            .collect();
        let stateful_set = match selected.as_slice() {
            [one] => one.clone(),
            [] => bail!(
                "Service `{}` selects no StatefulSet's pods in `{ns}`: raystack adopts a Redis run by a StatefulSet (a Deployment's would be replaced, and its data volume with it is not guarded)",
                redis.service
            ),
            many => bail!(
                "Service `{}` selects the pods of {} StatefulSets; import needs exactly one",
                redis.service,
                many.len()
            ),
        };
        // Read again: a listed item lacks apiVersion/kind, and the proof is the object's own UID.
        let sts_name = stateful_set
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let stateful_set = must_get(
            &cluster,
            Kind::StatefulSet,
            ns,
            &sts_name,
            "the Redis StatefulSet",
        )
        .await?;
        let volumes: Vec<Value> = stateful_set
            .pointer("/spec/template/spec/volumes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let claims: Vec<&str> = volumes
            .iter()
            .filter_map(|v| {
                v.pointer("/persistentVolumeClaim/claimName")
                    .and_then(Value::as_str)
            })
            .collect();
        let [claim] = claims.as_slice() else {
            bail!(
                "StatefulSet `{sts_name}` mounts {} PersistentVolumeClaims; import adopts a Redis with exactly one data volume",
                claims.len()
            );
        };
        let pvc = must_get(
            &cluster,
            Kind::PersistentVolumeClaim,
            ns,
            claim,
            "the Redis data volume",
        )
        .await?;
        let mut config_map = None;
        for v in &volumes {
            if let Some(cm) = v.pointer("/configMap/name").and_then(Value::as_str)
                && let Some(obj) = cluster
                    .get(&ObjectRef::new(Kind::ConfigMap, Some(ns), cm))
                    .await?
                && obj.pointer("/data/redis.conf").is_some()
            {
                config_map = Some(obj);
                break;
            }
        }
        let Some(config_map) = config_map else {
            bail!(
                "StatefulSet `{sts_name}` mounts no ConfigMap holding `redis.conf`; import reads the durability goal from it"
            );
        };
        let Some((secret_name, _)) = redis.password.clone() else {
            bail!(
                "RayCluster `{}` names no password Secret for its Redis: raystack's Redis always requires one; add a Secret and reference it first",
                req.raycluster
            );
        };
        let secret = must_get(
            &cluster,
            Kind::Secret,
            ns,
            &secret_name,
            "the Redis password Secret",
        )
        .await?;
        let kuberay = crate::preflight::installed_kuberay(&cluster)
            .await
            .map_err(anyhow::Error::msg)
            .context("failed to read the RayCluster CRD")?
            .context("the RayCluster CRD (`rayclusters.ray.io`) is not installed: is this the cluster KubeRay runs in?")?;
        let found = Found {
            namespace: ns.to_string(),
            ray_cluster: rc,
            service,
            stateful_set,
            pvc,
            config_map,
            secret,
            kuberay,
        };
        crate::import::stack_file(&found, req.take_ownership, &req.command)
            .map_err(anyhow::Error::msg)
    }
}
