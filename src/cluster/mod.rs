//! The one door to Kubernetes: the client (kubeconfig, `--context`, `--kubeconfig`, exec plugins
//! as kube supports them), the API resource of every kind raystack renders (no discovery
//! needed), server-side apply (and its dry-run), get, list, delete, the cluster's identity, and
//! [`Cluster::send`], through which every other request (the state backend's Secrets and Lease,
//! preflight's reads, the drill's proxy calls) runs under the same policy. Readiness rules are
//! pure and live in `readiness`; `live` has the pod reads, deletes and proxy calls of the drill
//! and `status`. Nothing here decides what to change.
//!
//! Every API call has a deadline ([`Cluster::deadline`], `--request-timeout`,
//! `RAYSTACK_REQUEST_TIMEOUT`, default [`DEFAULT_REQUEST_TIMEOUT`]) that covers the call and its
//! retries: a server that does not answer fails the call when it passes, never hangs it. The API
//! server's "try again" answers (429 Too Many Requests, 503, 504) are retried here, honouring
//! the server's `retryAfterSeconds` (else backing off 1 s, 2 s, 4 s … 10 s), each retry reported
//! through [`Cluster::on_retry`], until the deadline would pass; so is a connection dropped
//! before the answer, for requests that may safely run twice ([`Retry`]), at most
//! [`MAX_DROPPED_ATTEMPTS`] times. kube's own silent retry layer is turned off.

pub mod live;
pub mod readiness;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::kind::{Kind, ObjectRef, UnknownKind};

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
    /// A manifest of a kind raystack does not know (see [`Kind`]).
    #[error(transparent)]
    UnknownKind(#[from] UnknownKind),
    /// The API server answered with an error status.
    #[error("failed to {verb} `{address}`: the API server answered {} {}{}", .code, status_text(*.code), if .message.is_empty() { String::new() } else { format!(": {}", crate::text::clip(.message)) })]
    Api {
        verb: &'static str,
        address: String,
        code: u16,
        message: String,
    },
    /// The API server kept answering "try again" until the deadline.
    #[error(
        "failed to {verb} `{address}`: the API server answered {code} {} {attempts} times over {}s{}; gave up at the {}s request deadline (--request-timeout, RAYSTACK_REQUEST_TIMEOUT)",
        status_text(*.code),
        .elapsed.as_secs(),
        if .message.is_empty() { String::new() } else { format!(" (last: {})", crate::text::clip(.message)) },
        .deadline.as_secs()
    )]
    GaveUp {
        verb: &'static str,
        address: String,
        code: u16,
        message: String,
        attempts: u32,
        elapsed: Duration,
        deadline: Duration,
    },
    /// No answer within the deadline.
    #[error(
        "failed to {verb} `{address}`: no answer from the API server within {}s (the request deadline; raise it with --request-timeout or RAYSTACK_REQUEST_TIMEOUT)",
        .deadline.as_secs_f64()
    )]
    Timeout {
        verb: &'static str,
        address: String,
        deadline: Duration,
    },
    /// No answer: the connection failed or was dropped. The message names only the innermost
    /// cause (`connection closed before message completed`): the layers above it repeat each
    /// other (`client error (SendRequest)`) and would be printed as a chain otherwise.
    #[error("failed to {verb} `{address}`: {}{}", root_cause(.cause), if *.attempts > 1 { format!(" (gave up after {} attempts)", .attempts) } else { String::new() })]
    Transport {
        verb: &'static str,
        address: String,
        cause: kube::Error,
        /// Attempts made (more than one only for a request that is safe to repeat).
        attempts: u32,
    },
}

/// The innermost error of `err`'s source chain, first line only.
fn root_cause(err: &kube::Error) -> String {
    let mut current: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The reason phrase of an HTTP status, for messages.
fn status_text(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The deadline of one API call (with its retries) when none is configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The most requests one client keeps in flight to its API server; more wait their turn (the
/// wait counts against the call's deadline). kube-apiserver's default cap on concurrent
/// mutating requests (`--max-mutating-requests-inflight`) is 200, and dry-run applies count
/// against it; with priority and fairness the server queues what it cannot run, but one
/// command still has no business asking for more at once.
pub const MAX_IN_FLIGHT: usize = 200;

/// The longest wait between two retries, whatever the server asks.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// One retry of an API call, for progress output.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNote {
    pub verb: &'static str,
    pub address: String,
    /// What the server answered to the failed attempt; `None`: the connection was dropped
    /// before an answer.
    pub code: Option<u16>,
    /// The attempt that failed (1 = the first).
    pub attempt: u32,
    /// How long until the next attempt.
    pub wait: Duration,
    /// Time spent on this call so far.
    pub elapsed: Duration,
    pub deadline: Duration,
}

impl std::fmt::Display for RetryNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let answer = match self.code {
            Some(code) => format!("the API server answered {code} {}", status_text(code)),
            None => "the connection was dropped before an answer".to_string(),
        };
        write!(
            f,
            "{answer} to {} `{}` (attempt {}); retrying in {}s ({}s spent, giving up at {}s)",
            self.verb,
            self.address,
            self.attempt,
            self.wait.as_secs_f64().ceil(),
            self.elapsed.as_secs(),
            self.deadline.as_secs()
        )
    }
}

/// Reports retries (e.g. a line on stderr).
pub type RetryObserver = Arc<dyn Fn(&RetryNote) + Send + Sync>;

impl ClusterError {
    /// The HTTP status the API server answered with, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Api { code, .. } | ClusterError::GaveUp { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the API server answered at all (an error status), as opposed to no connection,
    /// a dropped one, or no answer before the deadline.
    pub fn server_answered(&self) -> bool {
        self.code().is_some()
    }
    /// What went wrong, without the "failed to VERB `ADDRESS`: " its message starts with: for a
    /// caller that names the request in its own words.
    pub fn detail(&self) -> String {
        let text = self.to_string();
        let (verb, address) = match self {
            ClusterError::Api { verb, address, .. }
            | ClusterError::GaveUp { verb, address, .. }
            | ClusterError::Timeout { verb, address, .. }
            | ClusterError::Transport { verb, address, .. } => (*verb, address.as_str()),
            _ => return text,
        };
        match self {
            // The server's own message is the detail.
            ClusterError::Api { message, .. } => message.clone(),
            _ => text
                .strip_prefix(&format!("failed to {verb} `{address}`: "))
                .map(str::to_string)
                .unwrap_or(text),
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

/// The API resource of `r` (its kind's plural, at the reference's `apiVersion`).
pub fn api_resource(r: &ObjectRef) -> ApiResource {
    let (group, version) = match r.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", r.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, r.kind.as_str());
    ApiResource::from_gvk_with_plural(&gvk, r.kind.plural())
}

/// The namespace `r`'s requests are made in: `None` for a cluster-scoped kind (or a namespaced
/// kind addressed across namespaces).
fn scope(r: &ObjectRef) -> Option<&str> {
    r.namespace.as_deref().filter(|_| r.kind.namespaced())
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
    /// The deadline of each API call, retries included.
    pub deadline: Duration,
    /// Told about each retry.
    pub on_retry: Option<RetryObserver>,
    /// Requests in flight, at most [`MAX_IN_FLIGHT`], shared by every clone of this cluster.
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// Connects using `kubeconfig` (else `$KUBECONFIG`, else `~/.kube/config`) and `context` (else
/// the current context). No request is made yet.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Cluster, ClusterError> {
    connect_with_deadline(kubeconfig, context, DEFAULT_REQUEST_TIMEOUT).await
}

/// Like [`connect`], with each API call bounded by `deadline` (retries included). Requests
/// made with [`Cluster::client`] directly get it as their read timeout.
pub async fn connect_with_deadline(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    deadline: Duration,
) -> Result<Cluster, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let mut config = match kubeconfig {
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
    // Retries are ours (bounded by the deadline, reported); kube's are silent and unbounded
    // in time (15 attempts honouring Retry-After).
    config.default_retry = false;
    // A backstop for requests made with the client directly; `call` enforces the deadline
    // itself (and says so) a little earlier.
    config.read_timeout = Some(deadline + Duration::from_secs(5));
    config.connect_timeout = Some(deadline.min(Duration::from_secs(30)));
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(ClusterError::Client)?;
    Ok(Cluster {
        client,
        server,
        deadline,
        on_retry: None,
        in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
    })
}

/// How long the server asked to wait (`details.retryAfterSeconds`), else an exponential backoff.
fn retry_wait(status: &kube::core::Status, attempt: u32) -> Duration {
    let asked = status
        .details
        .as_ref()
        .map(|d| d.retry_after_seconds)
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(u64::from(s)));
    asked
        .unwrap_or_else(|| Duration::from_secs(1u64 << attempt.saturating_sub(1).min(4)))
        .min(MAX_RETRY_WAIT)
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
            cause: other,
            attempts: 1,
        },
    }
}

/// Which failures of a request are worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Nothing: only the deadline and the in-flight cap apply (a request whose error statuses
    /// are answers for the caller to judge).
    Never,
    /// The server's "try again" answers (429, 503, 504), which say the request was not
    /// executed: safe for every request.
    Busy,
    /// Those, and a connection dropped before the answer. Only for a request that may run twice
    /// with the same outcome: reads, lists, server-side apply, deletes, and writes that carry a
    /// resourceVersion precondition (a repeat of one that went through answers 409).
    BusyOrDropped,
}

/// A connection that was established and then closed before the answer came (the server
/// restarted, a load balancer cut it): as opposed to one that could not be made at all, which
/// says the server is not there and is not retried.
fn dropped(err: &kube::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message() || h.is_canceled();
        }
        current = e.source();
    }
    false
}

/// The most attempts of a request whose connection keeps being dropped.
const MAX_DROPPED_ATTEMPTS: u32 = 5;

impl Cluster {
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Runs one API call (`attempt` makes one request) under the deadline, retrying the
    /// server's "try again" answers while the deadline allows. Every Kubernetes request of
    /// raystack goes through here or [`Cluster::send`].
    async fn call<T, F, Fut>(
        &self,
        verb: &'static str,
        address: &str,
        attempt: F,
    ) -> Result<T, ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        self.send(verb, address, Retry::BusyOrDropped, attempt)
            .await
    }

    /// The door every Kubernetes request goes through (objects, state Secrets, the Lease,
    /// preflight reads, the drill): `attempt` makes one request; it runs under the call's
    /// deadline and the in-flight cap, and the failures `retry` allows are retried with
    /// backoff while the deadline allows, each reported through [`Cluster::on_retry`].
    /// Errors come back as one [`ClusterError`] naming `verb` and `address`.
    pub async fn send<T, F, Fut>(
        &self,
        verb: &'static str,
        address: &str,
        retry: Retry,
        mut attempt: F,
    ) -> Result<T, ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        let start = Instant::now();
        let deadline = start + self.deadline;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let one = async {
                let _permit = self.in_flight.acquire().await;
                attempt().await
            };
            let result = match tokio::time::timeout(remaining, one).await {
                Ok(result) => result,
                Err(_) => {
                    return Err(ClusterError::Timeout {
                        verb,
                        address: address.to_string(),
                        deadline: self.deadline,
                    });
                }
            };
            let (code, wait, give_up) = match result {
                Err(kube::Error::Api(status))
                    if retry != Retry::Never && matches!(status.code, 429 | 503 | 504) =>
                {
                    let wait = retry_wait(&status, attempts);
                    let code = status.code;
                    let give_up = if attempts == 1 {
                        map_err(verb, address.to_string(), kube::Error::Api(status))
                    } else {
                        ClusterError::GaveUp {
                            verb,
                            address: address.to_string(),
                            code: status.code,
                            message: status.message.clone(),
                            attempts,
                            elapsed: start.elapsed(),
                            deadline: self.deadline,
                        }
                    };
                    (Some(code), wait, give_up)
                }
                Err(err) if retry == Retry::BusyOrDropped && dropped(&err) => {
                    let give_up = ClusterError::Transport {
                        verb,
                        address: address.to_string(),
                        cause: err,
                        attempts,
                    };
                    if attempts >= MAX_DROPPED_ATTEMPTS {
                        return Err(give_up);
                    }
                    let wait = Duration::from_millis(250u64 << attempts.min(5)).min(MAX_RETRY_WAIT);
                    (None, wait, give_up)
                }
                other => return other.map_err(|e| map_err(verb, address.to_string(), e)),
            };
            let elapsed = start.elapsed();
            if Instant::now() + wait >= deadline {
                return Err(give_up);
            }
            if let Some(observer) = &self.on_retry {
                observer(&RetryNote {
                    verb,
                    address: address.to_string(),
                    code,
                    attempt: attempts,
                    wait,
                    elapsed,
                    deadline: self.deadline,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Requests for `r`'s collection. Objects are read and applied as plain JSON values: a
    /// typed `DynamicObject` (its metadata parsed field by field, the rest through serde's
    /// flatten) would be parsed only to be turned back into a value.
    fn request(&self, r: &ObjectRef) -> kube::core::Request {
        let ar = api_resource(r);
        kube::core::Request::new(<DynamicObject as kube::Resource>::url_path(&ar, scope(r)))
    }

    fn api(&self, r: &ObjectRef) -> Api<DynamicObject> {
        let ar = api_resource(r);
        match scope(r) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// The cluster's identity: the UID of the `kube-system` namespace, which lives as long as
    /// the cluster. Plan files bind to it so a plan is never applied to another cluster.
    pub async fn identity(&self) -> Result<String, ClusterError> {
        let r = ObjectRef::new(Kind::Namespace, None, "kube-system");
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
        let request = self.request(r);
        let read = || async {
            let req = request
                .get(&r.name, &Default::default())
                .map_err(kube::Error::BuildRequest)?;
            self.client.request::<Value>(req).await
        };
        match self.call("read", &r.address(), read).await {
            Ok(obj) => Ok(Some(obj)),
            Err(ClusterError::Api { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every object of `kind` whose labels match `selector`, across all namespaces (one LIST),
    /// each as a read of it answers: `apiVersion` and `kind` first. A list of a built-in kind
    /// carries neither on its items; a list of a custom resource carries both.
    pub async fn list_labeled(
        &self,
        kind: Kind,
        selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let request = self.request(&ObjectRef::new(kind, None, ""));
        let params = ListParams::default().labels(selector);
        let address = format!("{} -l {selector}", kind.plural());
        let list = || async {
            let req = request.list(&params).map_err(kube::Error::BuildRequest)?;
            self.client.request::<Value>(req).await
        };
        let mut list = self.call("list", &address, list).await?;
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let api_version = Value::String(kind.api_version());
        Ok(items
            .into_iter()
            .map(|item| match item {
                Value::Object(fields) => {
                    let mut typed = serde_json::Map::with_capacity(fields.len() + 2);
                    typed.insert("apiVersion".into(), api_version.clone());
                    typed.insert("kind".into(), Value::String(kind.as_str().into()));
                    for (k, v) in fields {
                        if k != "apiVersion" && k != "kind" {
                            typed.insert(k, v);
                        }
                    }
                    Value::Object(typed)
                }
                other => other,
            })
            .collect())
    }

    /// Every object of `kind` in `namespace` (one LIST; an empty list when the kind is not
    /// served, e.g. RayCluster without KubeRay).
    pub async fn list_in(&self, kind: Kind, namespace: &str) -> Result<Vec<Value>, ClusterError> {
        let request = self.request(&ObjectRef::new(kind, Some(namespace), ""));
        let params = ListParams::default();
        let address = format!("{} in {namespace}", kind.plural());
        let list = || async {
            let req = request.list(&params).map_err(kube::Error::BuildRequest)?;
            self.client.request::<Value>(req).await
        };
        match self.call("list", &address, list).await {
            Ok(mut list) => Ok(match list.get_mut("items").map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            }),
            Err(ClusterError::Api { code: 404, .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
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
        let r = ObjectRef::of(manifest)?;
        let request = self.request(&r);
        let mut params = PatchParams::apply(manager).force();
        if dry_run {
            params = params.dry_run();
        }
        let verb = if dry_run { "dry-run apply" } else { "apply" };
        let patch = Patch::Apply(manifest);
        let send = || async {
            let req = request
                .patch(&r.name, &params, &patch)
                .map_err(kube::Error::BuildRequest)?;
            self.client.request::<Value>(req).await
        };
        self.call(verb, &r.address(), send).await
    }

    /// An RFC 6902 JSON patch of `r` as `manager` (`raystack`'s move of field ownership from
    /// client-side apply, `crate::apply::csa`). Not retried on a conflict: a 409 means the object
    /// moved, and the caller reads it again.
    pub async fn patch_json(
        &self,
        r: &ObjectRef,
        ops: &Value,
        manager: &str,
    ) -> Result<Value, ClusterError> {
        let request = self.request(r);
        let probe = request
            .get(&r.name, &Default::default())
            .map_err(|e| map_err("patch", r.address(), kube::Error::BuildRequest(e)))?;
        let path = probe.uri().path().to_string();
        let uri = format!("{path}?fieldManager={manager}");
        let body = ops.to_string().into_bytes();
        let send = || async {
            let req = http::Request::builder()
                .method("PATCH")
                .uri(&uri)
                .header("Accept", "application/json")
                .header("Content-Type", "application/json-patch+json")
                .body(body.clone())
                .map_err(kube::Error::HttpError)?;
            self.client.request::<Value>(req).await
        };
        self.send("patch", &r.address(), Retry::Busy, send).await
    }

    /// Names of the pods in `namespace` whose spec (the pod object's `data`) satisfies
    /// `keep` (best effort: empty when pods cannot be listed).
    async fn pods_where(&self, namespace: &str, keep: impl Fn(&Value) -> bool) -> Vec<String> {
        let r = ObjectRef::new(Kind::Pod, Some(namespace), "");
        let api = self.api(&r);
        let params = Default::default();
        let Ok(list) = self
            .call("list", &format!("{}/{namespace}", Kind::Pod), || {
                api.list(&params)
            })
            .await
        else {
            return Vec::new();
        };
        list.items
            .into_iter()
            .filter(|p| keep(&p.data))
            .filter_map(|p| p.metadata.name)
            .collect()
    }

    /// Names of the pods in `namespace` that mount PVC `claim` (best effort: empty when pods
    /// cannot be listed).
    pub async fn pods_using_claim(&self, namespace: &str, claim: &str) -> Vec<String> {
        self.pods_where(namespace, |pod| {
            pod.pointer("/spec/volumes")
                .and_then(Value::as_array)
                .is_some_and(|vs| {
                    vs.iter().any(|v| {
                        v.pointer("/persistentVolumeClaim/claimName")
                            .and_then(Value::as_str)
                            == Some(claim)
                    })
                })
        })
        .await
    }

    /// Names of the pods in `namespace` whose containers read Secret `secret` through an
    /// environment variable (best effort: empty when pods cannot be listed).
    pub async fn pods_using_secret(&self, namespace: &str, secret: &str) -> Vec<String> {
        let reads = |c: &Value| {
            c.get("env").and_then(Value::as_array).is_some_and(|env| {
                env.iter().any(|e| {
                    e.pointer("/valueFrom/secretKeyRef/name")
                        .and_then(Value::as_str)
                        == Some(secret)
                })
            })
        };
        self.pods_where(namespace, |pod| {
            ["/spec/containers", "/spec/initContainers"]
                .iter()
                .any(|ptr| {
                    pod.pointer(ptr)
                        .and_then(Value::as_array)
                        .is_some_and(|cs| cs.iter().any(reads))
                })
        })
        .await
    }

    /// Deletes an object (background propagation). `false` when it was already gone.
    pub async fn delete(&self, r: &ObjectRef) -> Result<bool, ClusterError> {
        let api = self.api(r);
        let params = DeleteParams::background();
        match self
            .call("delete", &r.address(), || api.delete(&r.name, &params))
            .await
        {
            Ok(_) => Ok(true),
            Err(ClusterError::Api { code: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
