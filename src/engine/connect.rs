//! Connecting to the cluster: the client, its retry notices, the identity read that tells a
//! reachable cluster from an unreachable one, and the per-command cache that gives the stacks of
//! one command a single client (and connection pool) per cluster.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::{Engine, Notice, Notify, Target};
use crate::cluster::{self, Cluster};

/// Connects with the target's kubeconfig and context (else `kubeconfig`/`context`, e.g. the
/// stack's or a plan file's) and reads the cluster's identity.
pub(super) async fn connect(
    target: &Target,
    notify: &Notify,
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<(Cluster, String)> {
    let kubeconfig = target.kubeconfig.as_deref().or(kubeconfig);
    let context = target.context.as_deref().or(context);
    let mut cluster = cluster::connect_with_deadline(kubeconfig, context, target.request_timeout)
        .await
        .context("failed to connect to the cluster")?;
    let notify = notify.clone();
    cluster.on_retry = Some(Arc::new(move |note: &cluster::RetryNote| {
        notify(Notice::Progress(note.to_string()));
    }));
    let identity = match cluster.identity().await {
        Ok(identity) => identity,
        // It answered: say what, not that it cannot be reached.
        Err(err) if err.server_answered() => {
            return Err(anyhow::Error::new(err).context(format!(
                "the cluster at {} refused the first request",
                cluster.server
            )));
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!(
                "cannot reach the cluster at {}; use `raystack plan --offline` to plan against state alone",
                cluster.server
            )));
        }
    };
    Ok((cluster, identity))
}

/// The outcome of connecting to one cluster, shared by the command's stacks.
type Connected = Result<(Cluster, String), Arc<anyhow::Error>>;
type Cell = Arc<tokio::sync::Mutex<Option<Connected>>>;
/// A cluster as a command names it: (kubeconfig, context).
type Key = (Option<PathBuf>, Option<String>);

/// One client per (kubeconfig, context) for the whole command; later stacks get a clone. A
/// cluster that could not be reached is not tried again in the same command: every stack that
/// names it reports the same error at once. Tried again per stack, an API server that never
/// answers made each stack wait out the request deadline in turn.
#[derive(Default)]
pub(super) struct Connections {
    cells: Mutex<HashMap<Key, Cell>>,
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
    /// [`connect`], once per (kubeconfig, context) that answers.
    pub(super) async fn get(
        &self,
        engine: &Engine,
        context: Option<&str>,
    ) -> anyhow::Result<(Cluster, String)> {
        let target = &engine.target;
        let context = target.context.as_deref().or(context);
        let key = (target.kubeconfig.clone(), context.map(str::to_string));
        let cell = self
            .cells
            .lock()
            .expect("connection cache lock")
            .entry(key)
            .or_default()
            .clone();
        let mut slot = cell.lock().await;
        let connected = match slot.as_ref() {
            Some(connected) => connected.clone(),
            None => {
                let connected = connect(target, &engine.notify, None, context)
                    .await
                    .map_err(Arc::new);
                *slot = Some(connected.clone());
                connected
            }
        };
        connected.map_err(|err| anyhow::Error::new(Shared(err)))
    }
}
