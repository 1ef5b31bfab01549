//! The kubernetes backend: state in Secrets of a namespace that outlives the stack, locked with a
//! coordination.k8s.io/v1 Lease that has a duration and is renewed while held. It talks to the
//! API server for state only; it never touches the stack's objects and never prints.
//!
//! This file holds what both halves share: [`KubernetesBackend`] (names, labels, the cluster
//! door) and the [`Backend`] and [`Lock`] implementations that put them together. `storage`
//! keeps the state document in the head and chunk Secrets (never a mixed read; writes under a
//! resourceVersion precondition); `lease` is the lock (acquire, renew, fencing `check_held`,
//! release, takeover of an expired lease).
mod lease;
mod storage;

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Preconditions};

use crate::cluster::{Cluster, ClusterError, Retry};
use crate::state::backend::{Backend, Lock, LockHolder, StateBackend, StateFuture};
use crate::state::{State, StateError};

pub use lease::{KubernetesLock, LeaseClock};
use lease::{is_expired, lease_holder};

/// Bytes of gzip'd state per Secret. Kubernetes caps a Secret's data at 1 MiB (1,048,576 bytes,
/// checked by validation, 422) and etcd a stored object at 1.5 MiB; this leaves room for both.
pub const CHUNK_BYTES: usize = 1_000_000;
/// The data key of the document (head) or of one chunk.
const DATA_KEY: &str = "state.json.gz";
const LABEL_STACK: &str = "raystack.dev/stack";
const LABEL_STATE: &str = "raystack.dev/state";
const ANN_LINEAGE: &str = "raystack.dev/lineage";
const ANN_SERIAL: &str = "raystack.dev/serial";
const ANN_DIGEST: &str = "raystack.dev/sha256";
const ANN_CHUNKS: &str = "raystack.dev/chunks";
const ANN_LOCK_ID: &str = "raystack.dev/lock-id";
const ANN_OPERATION: &str = "raystack.dev/operation";
const SECRET_TYPE: &str = "raystack.dev/state";
/// A reader that keeps losing races with writers gives up after this many tries.
const READ_ATTEMPTS: usize = 50;
/// How long a lease lasts unless renewed; `RAYSTACK_LEASE_SECONDS` overrides it.
pub const DEFAULT_LEASE_SECONDS: u32 = 60;

/// Lease duration: `RAYSTACK_LEASE_SECONDS` (at least 1), else [`DEFAULT_LEASE_SECONDS`].
pub fn lease_seconds() -> u32 {
    std::env::var("RAYSTACK_LEASE_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_LEASE_SECONDS)
}

/// One stack's state in a namespace of a cluster.
#[derive(Clone)]
pub struct KubernetesBackend {
    /// Every request goes through the cluster's door: its deadline, retries and in-flight cap.
    cluster: Cluster,
    secrets: Api<Secret>,
    leases: Api<Lease>,
    /// `raystack-state-<stack>`, `raystack-lock-<stack>`.
    head: String,
    lease: String,
    namespace: String,
    stack: String,
    /// The API server URL, for messages.
    server: String,
    chunk_bytes: usize,
    lease_seconds: u32,
    clock: LeaseClock,
}

impl KubernetesBackend {
    pub fn new(cluster: Cluster, namespace: &str, stack: &str) -> Self {
        KubernetesBackend {
            server: cluster.server.clone(),
            secrets: Api::namespaced(cluster.client().clone(), namespace),
            leases: Api::namespaced(cluster.client().clone(), namespace),
            head: format!("raystack-state-{stack}"),
            lease: format!("raystack-lock-{stack}"),
            cluster,
            namespace: namespace.to_owned(),
            stack: stack.to_owned(),
            chunk_bytes: CHUNK_BYTES,
            lease_seconds: lease_seconds(),
            clock: LeaseClock::default(),
        }
    }

    /// Tells the time of the lease's fencing with `clock` (tests move it past a lease duration
    /// instead of waiting one out).
    pub fn with_lease_clock(mut self, clock: LeaseClock) -> Self {
        self.clock = clock;
        self
    }

    /// Splits documents into chunks of `bytes` (tests use small chunks to exercise chunking).
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    pub fn with_lease_seconds(mut self, seconds: u32) -> Self {
        self.lease_seconds = seconds.max(1);
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `raystack-state-<stack>`
    pub fn head_name(&self) -> &str {
        &self.head
    }

    /// `raystack-lock-<stack>`
    pub fn lease_name(&self) -> &str {
        &self.lease
    }

    fn secrets(&self) -> &Api<Secret> {
        &self.secrets
    }

    fn leases(&self) -> &Api<Lease> {
        &self.leases
    }

    /// `Secret/<ns>/<name>`: how retry notes name a Secret of this backend.
    fn secret_address(&self, name: &str) -> String {
        format!("Secret/{}/{name}", self.namespace)
    }

    fn lease_address(&self) -> String {
        format!("Lease/{}/{}", self.namespace, self.lease_name())
    }

    fn head_location(&self) -> String {
        format!(
            "Secret `{}/{}` (on {})",
            self.namespace,
            self.head_name(),
            self.server
        )
    }

    fn lease_location(&self) -> String {
        format!("Lease `{}/{}`", self.namespace, self.lease_name())
    }

    fn labels(&self, role: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "raystack".to_owned(),
            ),
            (LABEL_STACK.to_owned(), self.stack.clone()),
            (LABEL_STATE.to_owned(), role.to_owned()),
        ])
    }

    fn kube_err(&self, action: &str, location: String, err: ClusterError) -> StateError {
        StateError::Kube {
            action: action.to_owned(),
            location,
            code: err.code(),
            message: err.detail(),
        }
    }
}

impl Backend for KubernetesBackend {
    fn kind(&self) -> StateBackend {
        StateBackend::Kubernetes
    }

    fn location(&self) -> String {
        self.head_location()
    }

    fn remote(&self) -> bool {
        true
    }

    /// The Secret's namespace and name, not the server's URL: two kubeconfigs may reach one
    /// cluster by different URLs, and the lineage tells one state from another anyway.
    fn binding(&self, _base: &std::path::Path) -> String {
        format!(
            "kubernetes: Secret `{}/{}`",
            self.namespace,
            self.head_name()
        )
    }

    fn read(&self) -> StateFuture<'_, Option<State>> {
        Box::pin(async move { Ok(self.read_consistent().await?.map(|(_, s)| s)) })
    }

    fn lock<'a>(&'a self, operation: &'a str) -> StateFuture<'a, Box<dyn Lock>> {
        Box::pin(async move { Ok(Box::new(self.acquire(operation).await?) as Box<dyn Lock>) })
    }

    fn holder(&self) -> StateFuture<'_, Option<LockHolder>> {
        Box::pin(async move {
            Ok(self
                .get_lease()
                .await?
                .filter(|l| !is_expired(l, SystemTime::now()))
                .map(|l| lease_holder(&l)))
        })
    }

    fn force_unlock<'a>(&'a self, id: &'a str) -> StateFuture<'a, LockHolder> {
        Box::pin(async move {
            let Some(lease) = self.get_lease().await? else {
                return Err(StateError::NotLocked(self.lease_location()));
            };
            let holder = lease_holder(&lease);
            if holder.id != id {
                return Err(StateError::WrongLockId {
                    given: id.to_owned(),
                    holder: holder.describe(),
                });
            }
            let location = self.lease_location();
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: lease.metadata.resource_version.clone(),
                    uid: None,
                }),
                ..Default::default()
            };
            let deleted = self
                .cluster
                .send(
                    "delete",
                    &self.lease_address(),
                    Retry::BusyOrDropped,
                    || self.leases().delete(self.lease_name(), &dp),
                )
                .await;
            match deleted {
                Ok(_) => Ok(holder),
                // Renewed (or replaced) between our read and the delete: the ID check stands
                // only for what was read, so look again.
                Err(ClusterError::Api { code: 409, .. }) => Err(StateError::Unstable(location)),
                Err(ClusterError::Api { code: 404, .. }) => Err(StateError::NotLocked(location)),
                Err(e) => Err(self.kube_err("release the lock", location, e)),
            }
        })
    }
}

impl Lock for KubernetesLock {
    fn holder(&self) -> &LockHolder {
        &self.holder
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn read(&mut self) -> StateFuture<'_, Option<State>> {
        Box::pin(self.read_locked())
    }

    fn check_held(&self) -> Result<(), StateError> {
        KubernetesLock::check_held(self)
    }

    fn write<'a>(&'a mut self, state: &'a mut State) -> StateFuture<'a, ()> {
        Box::pin(self.write_locked(state))
    }

    fn retire(&mut self) -> StateFuture<'_, Option<std::path::PathBuf>> {
        Box::pin(self.retire_locked())
    }

    fn release(self: Box<Self>) -> StateFuture<'static, ()> {
        Box::pin((*self).release_locked())
    }
}
