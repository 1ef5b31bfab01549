//! Connecting to the cluster: the client, its retry notices, the identity read that tells a
//! reachable cluster from an unreachable one, and the per-command cache that gives the stacks of
//! one command a single client (and connection pool) per cluster.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::{Engine, Notice, Notify, Target};
use crate::cluster::{self, Cluster};
use crate::memo::OnceMap;

/// A client for the target's kubeconfig and context (else `context`, the stack's), telling
/// `notify` about its retries. No request is made yet.
async fn open(target: &Target, notify: &Notify, context: Option<&str>) -> anyhow::Result<Cluster> {
    let kubeconfig = target.kubeconfig.as_deref();
    let context = target.context.as_deref().or(context);
    let mut cluster = cluster::connect_with_deadline(kubeconfig, context, target.request_timeout)
        .await
        .context("failed to connect to the cluster")?;
    let notify = notify.clone();
    cluster.on_retry = Some(Arc::new(move |note: &cluster::RetryNote| {
        notify(Notice::Progress(note.to_string()));
    }));
    Ok(cluster)
}

/// The cluster's identity: its first request, which tells a reachable cluster from one that
/// cannot be reached.
async fn identify(cluster: &Cluster) -> anyhow::Result<String> {
    match cluster.identity().await {
        Ok(identity) => Ok(identity),
        // It answered: say what, not that it cannot be reached.
        Err(err) if err.server_answered() => Err(anyhow::Error::new(err).context(format!(
            "the cluster at {} refused the first request",
            cluster.server
        ))),
        Err(err) => Err(anyhow::Error::new(err).context(format!(
            "cannot reach the cluster at {}; use `raystack plan --offline` to plan against state alone",
            cluster.server
        ))),
    }
}

/// The outcome of connecting to one cluster, shared by the command's stacks.
type Connected = Result<(Cluster, String), Arc<anyhow::Error>>;
/// A client made for one (kubeconfig, context), or why none could be.
type Opened = Result<Cluster, Arc<anyhow::Error>>;
/// A cluster as a command names it: (kubeconfig, context).
pub(super) type Key = (Option<PathBuf>, Option<String>);

/// One client per (kubeconfig, context) for the whole command; later stacks get a clone. A
/// cluster that could not be reached is not tried again in the same command: every stack that
/// names it reports the same error at once. Tried again per stack, an API server that never
/// answers made each stack wait out the request deadline in turn.
#[derive(Default)]
pub(super) struct Connections {
    connected: OnceMap<Key, Connected>,
    clients: OnceMap<Key, Opened>,
}

/// A connection error, as each stack that shares it reports it (the same causes, in order).
#[derive(Debug)]
struct Shared(Arc<anyhow::Error>);

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&**self.0, f)
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl Connections {
    /// How the command names the cluster of `context` (else the target's).
    pub(super) fn key(engine: &Engine, context: Option<&str>) -> Key {
        let target = &engine.target;
        let context = target.context.as_deref().or(context);
        (target.kubeconfig.clone(), context.map(str::to_string))
    }

    /// The client for `context` (else the target's), made once per command; no request is
    /// made for it. Also how a command names the cluster before it has read its identity.
    pub(super) async fn client(
        &self,
        engine: &Engine,
        context: Option<&str>,
    ) -> anyhow::Result<(Cluster, Key)> {
        let key = Self::key(engine, context);
        match self.opened(engine, &key).await {
            Ok(cluster) => Ok((cluster, key)),
            Err(err) => Err(anyhow::Error::new(Shared(err))),
        }
    }

    async fn opened(&self, engine: &Engine, key: &Key) -> Opened {
        self.clients
            .once(key.clone(), async {
                open(&engine.target, &engine.notify, key.1.as_deref())
                    .await
                    .map_err(Arc::new)
            })
            .await
    }

    /// [`connect`], once per (kubeconfig, context) that answers.
    pub(super) async fn get(
        &self,
        engine: &Engine,
        context: Option<&str>,
    ) -> anyhow::Result<(Cluster, String)> {
        let key = Self::key(engine, context);
        let connected = self
            .connected
            .once(key.clone(), async {
                let cluster = self.opened(engine, &key).await?;
                identify(&cluster)
                    .await
                    .map(|id| (cluster, id))
                    .map_err(Arc::new)
            })
            .await;
        connected.map_err(|err| anyhow::Error::new(Shared(err)))
    }
}
