//! The kubernetes backend: state in Secrets of a namespace that outlives the stack, locked with a
//! coordination.k8s.io/v1 Lease that has a duration and is renewed while held. This file talks to
//! the API server for state only; it never touches the stack's objects and never prints.
//!
//! Layout. The head Secret `raystack-state-<stack>` (labels `raystack.dev/stack`,
//! `raystack.dev/state: head`) carries the lineage, serial and SHA-256 of the gzip'd state
//! document (the same JSON the local backend writes). A document that fits in one chunk is stored
//! in the head itself; a larger one is split into chunk Secrets
//! `raystack-state-<stack>-<serial>-<nonce>-<i>` (label `raystack.dev/state: chunk`) that the
//! head lists by name.
//!
//! Why a reader never sees a mix of two versions: chunk Secrets are written once and never
//! changed (each write makes new names), the head is switched to them in one write, and the old
//! chunks are deleted only after that. A reader reads the head, then the chunks it names; if a
//! chunk is gone, a writer switched the head meanwhile, and the reader starts over from the new
//! head (a head read again unchanged means the chunk is gone for good: the state is reported
//! corrupted, naming the chunk, rather than as a race to retry). What it assembles is checked against the head's digest before it is parsed.
//!
//! Concurrency. Every head write carries the resourceVersion read (create when there was none),
//! so a write racing another fails with 409 Conflict and overwrites nothing; the lease keeps
//! honest runs from getting there, the precondition catches everything else.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use sha2::{Digest, Sha256};

use super::backend::{Backend, Lock, LockHolder, StateBackend, StateFuture};
use super::lock::rfc3339_utc;
use super::{State, StateError};
use crate::cluster::{Cluster, ClusterError, Retry};

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
}

/// What the head said when it was read.
#[derive(Debug, Clone)]
struct Head {
    resource_version: String,
    lineage: String,
    serial: u64,
    chunks: Vec<String>,
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
        }
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

    /// The head Secret as it is, if any.
    async fn get_head(&self) -> Result<Option<Secret>, ClusterError> {
        self.cluster
            .send(
                "read",
                &self.secret_address(self.head_name()),
                Retry::BusyOrDropped,
                || self.secrets().get_opt(self.head_name()),
            )
            .await
    }

    /// The head and the document it names, read consistently (see the module doc).
    async fn read_consistent(&self) -> Result<Option<(Head, State)>, StateError> {
        let location = self.head_location();
        // A chunk the head names that was missing, and the head's resourceVersion then: a
        // writer deletes a version's chunks only after switching the head, so the same head
        // read again means the chunk is gone for good, not that a writer raced this read.
        let mut missing: Option<(String, String)> = None;
        for _ in 0..READ_ATTEMPTS {
            let head = self
                .get_head()
                .await
                .map_err(|e| self.kube_err("read state", location.clone(), e))?;
            let Some(head) = head else {
                return Ok(None);
            };
            let parsed = self.parse_head(&head)?;
            if let Some((version, chunk)) = &missing
                && *version == parsed.resource_version
            {
                return Err(self.corrupt(format!(
                    "its chunk Secret `{chunk}` is missing though the head Secret still names it"
                )));
            }
            let digest = annotation(&head, ANN_DIGEST).unwrap_or_default();
            let bytes = if parsed.chunks.is_empty() {
                secret_data(&head)
                    .ok_or_else(|| self.corrupt("the head Secret has no data".into()))?
            } else {
                let mut bytes = Vec::new();
                let mut complete = true;
                for name in &parsed.chunks {
                    let chunk = self
                        .cluster
                        .send(
                            "read",
                            &self.secret_address(name),
                            Retry::BusyOrDropped,
                            || self.secrets().get_opt(name),
                        )
                        .await
                        .map_err(|e| self.kube_err("read state", location.clone(), e))?;
                    match chunk.as_ref().and_then(secret_data) {
                        Some(data) => bytes.extend_from_slice(&data),
                        None => {
                            missing = Some((parsed.resource_version.clone(), name.clone()));
                            complete = false;
                            break;
                        }
                    }
                }
                if !complete {
                    // A writer switched the head and removed these chunks: read the new head.
                    continue;
                }
                bytes
            };
            if hex::encode(Sha256::digest(&bytes)) != digest {
                if parsed.chunks.is_empty() {
                    return Err(self.corrupt("its content does not match its digest".into()));
                }
                continue;
            }
            let json = gunzip(&bytes).map_err(|e| self.corrupt(format!("it is not gzip ({e})")))?;
            let state = super::local::parse_document(Path::new(&location), &json).map_err(
                |err| match err {
                    StateError::Corrupt { detail, .. } => self.corrupt(detail),
                    other => other,
                },
            )?;
            return Ok(Some((parsed, state)));
        }
        Err(StateError::Unstable(location))
    }

    fn corrupt(&self, detail: String) -> StateError {
        StateError::StoredCorrupt {
            location: self.head_location(),
            detail,
        }
    }

    fn parse_head(&self, head: &Secret) -> Result<Head, StateError> {
        let serial = annotation(head, ANN_SERIAL)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.corrupt(format!("the head has no `{ANN_SERIAL}` annotation")))?;
        let chunks = annotation(head, ANN_CHUNKS)
            .map(|list| {
                list.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Head {
            resource_version: head.metadata.resource_version.clone().unwrap_or_default(),
            lineage: annotation(head, ANN_LINEAGE).unwrap_or_default(),
            serial,
            chunks,
        })
    }

    /// Writes `state` (its serial already incremented) as the version after `previous`.
    /// Returns the new head.
    async fn store(&self, previous: Option<&Head>, state: &State) -> Result<Head, StateError> {
        let location = self.head_location();
        let mut json = serde_json::to_vec_pretty(state).map_err(|e| StateError::Kube {
            action: "encode state".into(),
            location: location.clone(),
            code: None,
            message: e.to_string(),
        })?;
        json.push(b'\n');
        let gz = gzip(&json);
        let digest = hex::encode(Sha256::digest(&gz));
        let mut chunk_names = Vec::new();
        if gz.len() > self.chunk_bytes {
            let nonce = &uuid::Uuid::new_v4().simple().to_string()[..8];
            for (i, part) in gz.chunks(self.chunk_bytes).enumerate() {
                let name = format!("{}-{}-{nonce}-{i}", self.head_name(), state.serial);
                let mut labels = self.labels("chunk");
                labels.insert(ANN_SERIAL.to_owned(), state.serial.to_string());
                let chunk = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(self.namespace.clone()),
                        labels: Some(labels),
                        ..Default::default()
                    },
                    type_: Some(SECRET_TYPE.to_owned()),
                    immutable: Some(true),
                    data: Some(BTreeMap::from([(
                        DATA_KEY.to_owned(),
                        ByteString(part.to_vec()),
                    )])),
                    ..Default::default()
                };
                // A create is not repeated after a dropped connection (it may have gone
                // through); a chunk that did is swept later.
                let pp = PostParams::default();
                let created = self
                    .cluster
                    .send("create", &self.secret_address(&name), Retry::Busy, || {
                        self.secrets().create(&pp, &chunk)
                    })
                    .await
                    .map_err(|e| self.kube_err("write a state chunk of", location.clone(), e));
                if let Err(err) = created {
                    self.delete_chunks(&chunk_names).await;
                    return Err(err);
                }
                chunk_names.push(name);
            }
        }
        let head = Secret {
            metadata: ObjectMeta {
                name: Some(self.head.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels("head")),
                annotations: Some(BTreeMap::from([
                    (ANN_LINEAGE.to_owned(), state.lineage.clone()),
                    (ANN_SERIAL.to_owned(), state.serial.to_string()),
                    (ANN_DIGEST.to_owned(), digest.clone()),
                    (ANN_CHUNKS.to_owned(), chunk_names.join(",")),
                ])),
                resource_version: previous.map(|h| h.resource_version.clone()),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.to_owned()),
            data: chunk_names
                .is_empty()
                .then(|| BTreeMap::from([(DATA_KEY.to_owned(), ByteString(gz.clone()))])),
            ..Default::default()
        };
        let pp = PostParams::default();
        let address = self.secret_address(self.head_name());
        // A replace carries the resourceVersion read, so repeating it after a dropped
        // connection overwrites nothing: it answers 409 if the first attempt went through,
        // which `written_by_us` then tells from another writer's.
        let written = match previous {
            None => {
                self.cluster
                    .send("create", &address, Retry::BusyOrDropped, || {
                        self.secrets().create(&pp, &head)
                    })
                    .await
            }
            Some(_) => {
                self.cluster
                    .send("write", &address, Retry::BusyOrDropped, || {
                        self.secrets().replace(self.head_name(), &pp, &head)
                    })
                    .await
            }
        };
        let written = match written {
            Ok(secret) => secret,
            Err(ClusterError::Api { code: 409, .. }) => {
                match self.written_by_us(state, &digest).await {
                    Some(secret) => secret,
                    None => {
                        self.delete_chunks(&chunk_names).await;
                        return Err(StateError::Conflict(location));
                    }
                }
            }
            Err(e) => {
                self.delete_chunks(&chunk_names).await;
                return Err(self.kube_err("write state", location, e));
            }
        };
        // The new version is in place; the previous chunks belong to nobody now.
        if let Some(previous) = previous {
            self.delete_chunks(&previous.chunks).await;
        }
        Ok(Head {
            resource_version: written.metadata.resource_version.unwrap_or_default(),
            lineage: state.lineage.clone(),
            serial: state.serial,
            chunks: chunk_names,
        })
    }

    /// The head as it is, when it holds exactly the version `state` with `digest`: a write
    /// answered 409 went through on an attempt whose answer was lost.
    async fn written_by_us(&self, state: &State, digest: &str) -> Option<Secret> {
        let head = self.get_head().await.ok()??;
        let ours = annotation(&head, ANN_LINEAGE).as_deref() == Some(state.lineage.as_str())
            && annotation(&head, ANN_SERIAL) == Some(state.serial.to_string())
            && annotation(&head, ANN_DIGEST).as_deref() == Some(digest);
        ours.then_some(head)
    }

    /// Best effort: a chunk left behind only wastes space, and `sweep` removes it later.
    async fn delete_chunks(&self, names: &[String]) {
        let dp = DeleteParams::default();
        for name in names {
            let _ = self
                .cluster
                .send(
                    "delete",
                    &self.secret_address(name),
                    Retry::BusyOrDropped,
                    || self.secrets().delete(name, &dp),
                )
                .await;
        }
    }

    /// Removes chunk Secrets the head does not name (left by a writer that died between writing
    /// chunks and switching the head, or by a failed cleanup). Only runs under the lock.
    async fn sweep(&self, head: Option<&Head>) {
        let selector = format!("{LABEL_STACK}={},{LABEL_STATE}=chunk", self.stack);
        let params = ListParams::default().labels(&selector);
        let address = format!("secrets -l {selector} in {}", self.namespace);
        let Ok(list) = self
            .cluster
            .send("list", &address, Retry::BusyOrDropped, || {
                self.secrets().list(&params)
            })
            .await
        else {
            return;
        };
        let orphans: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .filter(|n| head.is_none_or(|h| !h.chunks.contains(n)))
            .collect();
        self.delete_chunks(&orphans).await;
    }

    /// Creates the state namespace (labelled as raystack's) when the lease cannot be created
    /// because it is missing.
    async fn create_namespace(&self) -> Result<(), StateError> {
        let location = format!("namespace `{}`", self.namespace);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "raystack".to_owned(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<Namespace> = Api::all(self.cluster.client().clone());
        let pp = PostParams::default();
        // Repeating the create is harmless: 409 means the namespace is there.
        match self
            .cluster
            .send(
                "create",
                &format!("Namespace/{}", self.namespace),
                Retry::BusyOrDropped,
                || api.create(&pp, &ns),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(ClusterError::Api { code: 409, .. }) => Ok(()),
            Err(e) => Err(self.kube_err("create the state", location, e)),
        }
    }

    fn lease_body(&self, id: &str, operation: &str, transitions: i32, rv: Option<String>) -> Lease {
        let now = MicroTime(Timestamp::now());
        Lease {
            metadata: ObjectMeta {
                name: Some(self.lease.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels("lock")),
                annotations: Some(BTreeMap::from([
                    (ANN_LOCK_ID.to_owned(), id.to_owned()),
                    (ANN_OPERATION.to_owned(), operation.to_owned()),
                ])),
                resource_version: rv,
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder_identity(operation)),
                lease_duration_seconds: Some(self.lease_seconds as i32),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(transitions),
                ..Default::default()
            }),
        }
    }

    async fn get_lease(&self) -> Result<Option<Lease>, StateError> {
        let location = self.lease_location();
        self.cluster
            .send("read", &self.lease_address(), Retry::BusyOrDropped, || {
                self.leases().get_opt(self.lease_name())
            })
            .await
            .map_err(|e| self.kube_err("read the lock", location, e))
    }

    async fn acquire(&self, operation: &str) -> Result<KubernetesLock, StateError> {
        let location = self.lease_location();
        let id = uuid::Uuid::new_v4().to_string();
        let pp = PostParams::default();
        let mut notes = Vec::new();
        let mut created_namespace = false;
        // Each pass creates the lease, or finds it held (fail), expired (take over) or gone
        // again (retry); the loop only repeats while others release leases under our feet.
        for _ in 0..READ_ATTEMPTS {
            let body = self.lease_body(&id, operation, 0, None);
            // A create repeated after a dropped connection answers 409 if the first went
            // through: the lease read next then carries our own lock ID.
            let created = self
                .cluster
                .send(
                    "create",
                    &self.lease_address(),
                    Retry::BusyOrDropped,
                    || self.leases().create(&pp, &body),
                )
                .await;
            match created {
                Ok(lease) => return Ok(self.held(lease, notes)),
                Err(ClusterError::Api { code: 404, .. }) if !created_namespace => {
                    self.create_namespace().await?;
                    created_namespace = true;
                    continue;
                }
                Err(ClusterError::Api { code: 409, .. }) => {}
                Err(e) => return Err(self.kube_err("take the lock", location, e)),
            }
            let Some(existing) = self.get_lease().await? else {
                continue;
            };
            if lease_holder(&existing).id == id {
                return Ok(self.held(existing, notes));
            }
            let holder = lease_holder(&existing);
            if !is_expired(&existing, SystemTime::now()) {
                return Err(StateError::LeaseHeld {
                    stack: self.stack.clone(),
                    lease: format!("{}/{}", self.namespace, self.lease_name()),
                    holder,
                });
            }
            let transitions = existing
                .spec
                .as_ref()
                .and_then(|s| s.lease_transitions)
                .unwrap_or(0)
                + 1;
            let body = self.lease_body(
                &id,
                operation,
                transitions,
                existing.metadata.resource_version.clone(),
            );
            let replaced = self
                .cluster
                .send("write", &self.lease_address(), Retry::BusyOrDropped, || {
                    self.leases().replace(self.lease_name(), &pp, &body)
                })
                .await;
            match replaced {
                Ok(lease) => {
                    notes.push(format!(
                        "took over the expired lock of stack `{}`: {} stopped renewing it \
                         (expired at {}); check that its run really ended",
                        self.stack,
                        holder.describe(),
                        holder.expires.as_deref().unwrap_or("unknown")
                    ));
                    return Ok(self.held(lease, notes));
                }
                // Someone else took it over first, or released it, or our own attempt went
                // through unanswered: look again.
                Err(ClusterError::Api {
                    code: 409 | 404, ..
                }) => continue,
                Err(e) => return Err(self.kube_err("take over the lock", location, e)),
            }
        }
        Err(StateError::Unstable(location))
    }

    fn held(&self, lease: Lease, notes: Vec<String>) -> KubernetesLock {
        let holder = lease_holder(&lease);
        let shared = Arc::new(LeaseShared {
            lease: Mutex::new(lease),
            lost: AtomicBool::new(false),
            renewed: Mutex::new(std::time::Instant::now()),
        });
        let renewer = tokio::spawn(renew_loop(self.clone(), shared.clone()));
        KubernetesLock {
            backend: self.clone(),
            holder,
            notes,
            head: None,
            read_done: false,
            shared,
            renewer: Some(renewer),
            released: false,
        }
    }

    /// Deletes the lease if it is still `rv` (a newer one belongs to someone else).
    async fn delete_lease(&self, rv: Option<String>) -> Result<(), StateError> {
        let location = self.lease_location();
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: rv,
                uid: None,
            }),
            ..Default::default()
        };
        match self
            .cluster
            .send(
                "delete",
                &self.lease_address(),
                Retry::BusyOrDropped,
                || self.leases().delete(self.lease_name(), &dp),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(ClusterError::Api {
                code: 404 | 409, ..
            }) => Ok(()),
            Err(e) => Err(self.kube_err("release the lock", location, e)),
        }
    }
}

/// The lease and whether it was lost, shared with the renewing task.
struct LeaseShared {
    lease: Mutex<Lease>,
    lost: AtomicBool,
    /// When the lease was last known to be ours on the server (taken, or renewed): once more
    /// than its duration ago, another run may hold it, whatever this process has seen since.
    renewed: Mutex<std::time::Instant>,
}

/// Renews the lease every third of its duration until aborted; marks it lost when someone else
/// replaced or deleted it (force-unlock, or a takeover after a stall longer than the lease).
async fn renew_loop(backend: KubernetesBackend, shared: Arc<LeaseShared>) {
    let period = Duration::from_millis(u64::from(backend.lease_seconds) * 1000 / 3)
        .max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(period).await;
        if shared.lost.load(Ordering::SeqCst) {
            // Given up for lost (fencing): renewing now could keep a lease another run took.
            return;
        }
        let mut lease = shared.lease.lock().expect("lease mutex").clone();
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        let pp = PostParams::default();
        let result = backend
            .cluster
            .send(
                "renew",
                &backend.lease_address(),
                Retry::BusyOrDropped,
                || backend.leases().replace(backend.lease_name(), &pp, &lease),
            )
            .await;
        match result {
            Ok(renewed) => {
                *shared.lease.lock().expect("lease mutex") = renewed;
                *shared.renewed.lock().expect("renewal mutex") = std::time::Instant::now();
            }
            Err(ClusterError::Api {
                code: 409 | 404, ..
            }) => {
                // Our own renewal may have gone through with its answer lost: the lease is
                // still ours if it carries our lock ID.
                let ours = lease_holder(&lease).id;
                match backend.get_lease().await {
                    Ok(Some(now)) if lease_holder(&now).id == ours => {
                        *shared.lease.lock().expect("lease mutex") = now;
                        *shared.renewed.lock().expect("renewal mutex") = std::time::Instant::now();
                    }
                    _ => {
                        shared.lost.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
            // A transient failure: try again next period; the lease lasts three periods.
            _ => {}
        }
    }
}

/// A held lease. Writes check it was not lost; dropping it releases it (best effort).
pub struct KubernetesLock {
    backend: KubernetesBackend,
    holder: LockHolder,
    notes: Vec<String>,
    head: Option<Head>,
    read_done: bool,
    shared: Arc<LeaseShared>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    released: bool,
}

impl KubernetesLock {
    fn check_held(&self) -> Result<(), StateError> {
        let lapsed = self.shared.renewed.lock().expect("renewal mutex").elapsed()
            > Duration::from_secs(u64::from(self.backend.lease_seconds));
        if lapsed {
            // The renewer must not bring it back: another run may have taken it meanwhile.
            self.shared.lost.store(true, Ordering::SeqCst);
        }
        if self.shared.lost.load(Ordering::SeqCst) {
            return Err(StateError::LockLost(self.backend.lease_location()));
        }
        Ok(())
    }

    async fn read_locked(&mut self) -> Result<Option<State>, StateError> {
        let read = self.backend.read_consistent().await?;
        self.read_done = true;
        match read {
            Some((head, state)) => {
                self.backend.sweep(Some(&head)).await;
                self.head = Some(head);
                Ok(Some(state))
            }
            None => {
                self.head = None;
                Ok(None)
            }
        }
    }

    async fn write_locked(&mut self, state: &mut State) -> Result<(), StateError> {
        self.check_held()?;
        if !self.read_done {
            self.read_locked().await?;
        }
        let location = self.backend.head_location();
        if let Some(head) = &self.head {
            if head.lineage != state.lineage {
                return Err(StateError::LineageMismatch {
                    path: location.into(),
                    ours: state.lineage.clone(),
                    on_disk: head.lineage.clone(),
                });
            }
            if head.serial > state.serial {
                return Err(StateError::StaleSerial {
                    path: location.into(),
                    ours: state.serial,
                    on_disk: head.serial,
                });
            }
        }
        state.serial += 1;
        match self.backend.store(self.head.as_ref(), state).await {
            Ok(head) => {
                self.head = Some(head);
                Ok(())
            }
            Err(err) => {
                state.serial -= 1;
                Err(err)
            }
        }
    }

    async fn retire_locked(&mut self) -> Result<Option<std::path::PathBuf>, StateError> {
        self.check_held()?;
        if !self.read_done {
            self.read_locked().await?;
        }
        let Some(head) = self.head.take() else {
            return Ok(None);
        };
        let location = self.backend.head_location();
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: Some(head.resource_version.clone()),
                uid: None,
            }),
            ..Default::default()
        };
        let api = self.backend.secrets();
        let address = self.backend.secret_address(self.backend.head_name());
        let deleted = self
            .backend
            .cluster
            .send("delete", &address, Retry::BusyOrDropped, || {
                api.delete(self.backend.head_name(), &dp)
            })
            .await;
        match deleted {
            Ok(_) => {}
            Err(ClusterError::Api { code: 409, .. }) => {
                self.head = Some(head);
                return Err(StateError::Conflict(location));
            }
            Err(ClusterError::Api { code: 404, .. }) => {}
            Err(e) => {
                self.head = Some(head);
                return Err(self.backend.kube_err("remove state", location, e));
            }
        }
        self.backend.delete_chunks(&head.chunks).await;
        Ok(None)
    }

    async fn release_locked(mut self) -> Result<(), StateError> {
        self.released = true;
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
            let _ = renewer.await;
        }
        if self.shared.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        let rv = self
            .shared
            .lease
            .lock()
            .expect("lease mutex")
            .metadata
            .resource_version
            .clone();
        self.backend.delete_lease(rv).await
    }
}

impl Drop for KubernetesLock {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if self.released || self.shared.lost.load(Ordering::SeqCst) {
            return;
        }
        // An error path dropped the lock without releasing it. Release it now when the
        // runtime has other threads to drive the client meanwhile; otherwise (and if this takes
        // too long) the lease simply expires.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        let backend = self.backend.clone();
        let rv = self
            .shared
            .lease
            .lock()
            .map(|l| l.metadata.resource_version.clone())
            .unwrap_or_default();
        let (done, wait) = std::sync::mpsc::channel();
        handle.spawn(async move {
            let _ = backend.delete_lease(rv).await;
            let _ = done.send(());
        });
        let _ = wait.recv_timeout(Duration::from_secs(5));
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

/// `user@host pid N (operation)`
fn holder_identity(operation: &str) -> String {
    let user = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(passwd_user)
        .unwrap_or_else(|| "unknown".to_owned());
    format!(
        "{user}@{} pid {} ({operation})",
        super::lock::hostname(),
        std::process::id()
    )
}

/// The login name of this process's user from /etc/passwd (CI runners often set no `$USER`).
fn passwd_user() -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid).then(|| name.to_owned())
        })
    }
    #[cfg(not(unix))]
    None
}

fn lease_holder(lease: &Lease) -> LockHolder {
    let spec = lease.spec.clone().unwrap_or_default();
    let secs = |t: &Option<MicroTime>| t.as_ref().map(|t| t.0.as_second());
    let since = secs(&spec.acquire_time)
        .map(format_secs)
        .unwrap_or_else(|| "an unknown time".to_owned());
    let expires = match (
        secs(&spec.renew_time).or(secs(&spec.acquire_time)),
        spec.lease_duration_seconds,
    ) {
        (Some(renewed), Some(duration)) => Some(format_secs(renewed + i64::from(duration))),
        _ => None,
    };
    let ann = |key: &str| {
        lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
            .unwrap_or_default()
    };
    LockHolder {
        id: ann(ANN_LOCK_ID),
        who: spec
            .holder_identity
            .unwrap_or_else(|| "an unknown holder".to_owned()),
        operation: ann(ANN_OPERATION),
        since,
        expires,
    }
}

/// A lease is expired once `renewTime + leaseDurationSeconds` has passed. A lease without a
/// duration (made by another tool, or by hand) never expires: it takes a force-unlock.
fn is_expired(lease: &Lease, now: SystemTime) -> bool {
    let Some(spec) = &lease.spec else {
        return true;
    };
    let Some(duration) = spec.lease_duration_seconds else {
        return false;
    };
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let renewed = renewed.0.as_millisecond() as f64 / 1000.0;
    renewed + f64::from(duration) < now
}

fn format_secs(secs: i64) -> String {
    rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
}

fn annotation(secret: &Secret, key: &str) -> Option<String> {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
}

fn secret_data(secret: &Secret) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(DATA_KEY))
        .map(|b| b.0.clone())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(renewed: i64, duration: Option<i32>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([
                    (ANN_LOCK_ID.to_owned(), "id-1".to_owned()),
                    (ANN_OPERATION.to_owned(), "apply".to_owned()),
                ])),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("alice@laptop pid 42 (apply)".into()),
                lease_duration_seconds: duration,
                acquire_time: Some(MicroTime(Timestamp::from_second(renewed - 5).unwrap())),
                renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn leases_expire_after_their_duration_unless_they_have_none() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let l = lease(1_000, Some(30));
        assert!(!is_expired(&l, at(1_029)));
        assert!(is_expired(&l, at(1_031)));
        assert!(!is_expired(&lease(1_000, None), at(1_000_000)));
    }

    #[test]
    fn holder_names_who_what_and_when() {
        let h = lease_holder(&lease(1_798_761_000, Some(60)));
        assert_eq!(
            h,
            LockHolder {
                id: "id-1".into(),
                who: "alice@laptop pid 42 (apply)".into(),
                operation: "apply".into(),
                since: "2026-12-31T23:49:55Z".into(),
                expires: Some("2026-12-31T23:51:00Z".into()),
            }
        );
        assert_eq!(
            h.describe(),
            "alice@laptop pid 42 (apply) since 2026-12-31T23:49:55Z (lock ID id-1)"
        );
    }

    #[test]
    fn gzip_round_trips() {
        let data = b"{\"format_version\": \"1\"}\n".repeat(1000);
        let gz = gzip(&data);
        assert!(gz.len() < data.len() / 10);
        assert_eq!(gunzip(&gz).unwrap(), data);
        assert!(gunzip(b"not gzip").is_err());
    }
}
