//! The engine room: runs plan, apply, destroy, diff, verify, status and the state commands from start
//! to end, so the CLI only parses arguments and picks a view. It loads and renders the stack,
//! opens its state backend (`crate::state::open` picks it) and takes the lock, connects to the cluster, runs preflight and
//! observes the cluster, then hands the plan to `crate::apply` (execute) or `crate::verify`
//! (the drill).
//!
//! Its API takes plain values ([`Target`]: where the cluster is), never clap types, and it never
//! prints: what a user should read while a command works leaves through [`Notify`], apply's
//! steps through `crate::apply::Progress`, the drill's through `crate::verify::Progress`; the
//! results (plans, reports, state documents) are returned for `crate::output` to render.
//!
//! Errors: the engine composes the typed errors of the layers below with the context a user
//! needs ("failed to plan `prod.toml`"), as `anyhow` errors: they are only ever shown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod apply;
mod connect;
mod diff;
mod import;
mod listing;
mod observe;
mod prepare;
mod state;
mod status;
mod verify;

pub use apply::{guard, guard_adoption};
pub use diff::{Diffed, diff_at_revision, diff_files};
pub use import::ImportRequest;
pub use prepare::{Mode, Prepared};
pub use state::{Migrated, StateRead, Unlocking};
pub use status::{
    Check, Outcome, StackStatus, durability_promise, parse_metrics, persistence_checks,
    usage_from_summary,
};
pub use verify::VerifyPrepared;

use crate::cluster::Cluster;

/// Where the Kubernetes cluster is: the kubeconfig and context to use (each `None` falls back to
/// the stack's `[cluster] context`, then `$KUBECONFIG`/`~/.kube/config` and its current
/// context), and the deadline of every API call, retries included.
#[derive(Debug, Clone)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub request_timeout: Duration,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            kubeconfig: None,
            context: None,
            request_timeout: crate::cluster::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Something the user should read while a command works (the CLI prints it on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// How the command is going about it ("reading state without locking it").
    Note(String),
    /// Something that does not stop the command but may surprise its user.
    Warning(String),
    /// A progress line shown as it is (a retried request).
    Progress(String),
}

/// Receives the engine's [`Notice`]s.
pub type Notify = Arc<dyn Fn(Notice) + Send + Sync>;

/// One command's engine: the target, where notices go, and what the stacks of the command share
/// (one client and connection pool per cluster, preflight calls made once per cloud cluster).
/// A clone shares all of that: it plans one of the command's stacks on its own task.
#[derive(Clone)]
pub struct Engine {
    target: Target,
    notify: Notify,
    connections: Arc<connect::Connections>,
    preflight: Arc<crate::preflight::Memo>,
}

impl Engine {
    pub fn new(target: Target, notify: Notify) -> Self {
        Engine {
            target,
            notify,
            connections: Arc::default(),
            preflight: Arc::new(crate::preflight::Memo::new()),
        }
    }

    fn warn(&self, text: impl Into<String>) {
        (self.notify)(Notice::Warning(text.into()));
    }

    fn note(&self, text: impl Into<String>) {
        (self.notify)(Notice::Note(text.into()));
    }

    /// How a state backend reaches the cluster the stack is managed in: the target's
    /// kubeconfig and context (else `[cluster] context`), its deadline, retries told as
    /// progress.
    fn reach<'a>(&'a self, stack: &'a crate::stack::Stack) -> crate::state::Reach<'a> {
        let notify = self.notify.clone();
        crate::state::Reach {
            kubeconfig: self.target.kubeconfig.as_deref(),
            context: self
                .target
                .context
                .as_deref()
                .or(stack.cluster.context.as_deref()),
            request_timeout: self.target.request_timeout,
            on_retry: Some(Arc::new(move |note| {
                notify(Notice::Progress(note.to_string()));
            })),
        }
    }

    /// The state backend the stack's `[state]` section names.
    async fn open_state(
        &self,
        stack: &crate::stack::Stack,
    ) -> anyhow::Result<Box<dyn crate::state::Backend>> {
        Ok(crate::state::open(&stack.state, &stack.meta.name, &self.reach(stack)).await?)
    }

    /// A client for `context` (else the target's), made once per command.
    async fn cluster(&self, context: Option<&str>) -> anyhow::Result<(Cluster, String)> {
        self.connections.get(self, context).await
    }
}
