//! The kubernetes backend's lock: the Lease `raystack-lock-<stack>` in the state namespace.
//! `acquire` creates it (creating the namespace when missing), fails naming a live holder, or
//! takes over an expired one with a note; a background task renews it every third of its
//! duration with a resourceVersion precondition and marks it lost when someone else replaced
//! or deleted it; `check_held` (fencing) fails once it is lost or went unrenewed for longer
//! than its duration; release deletes it if it is still ours, and so does `Drop` on an error
//! path (bounded), else it expires.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::storage::Head;
use super::{ANN_LOCK_ID, ANN_OPERATION, KubernetesBackend, READ_ATTEMPTS};
use crate::cluster::{ClusterError, Retry};
use crate::state::StateError;
use crate::state::backend::LockHolder;
use crate::state::lock::rfc3339_utc;

impl KubernetesBackend {
    /// Creates the state namespace (labelled as raystack's) when the lease cannot be created
    /// because it is missing.
    pub(super) async fn create_namespace(&self) -> Result<(), StateError> {
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

    pub(super) fn lease_body(
        &self,
        id: &str,
        operation: &str,
        transitions: i32,
        rv: Option<String>,
    ) -> Lease {
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

    pub(super) async fn get_lease(&self) -> Result<Option<Lease>, StateError> {
        let location = self.lease_location();
        self.cluster
            .send("read", &self.lease_address(), Retry::BusyOrDropped, || {
                self.leases().get_opt(self.lease_name())
            })
            .await
            .map_err(|e| self.kube_err("read the lock", location, e))
    }

    pub(super) async fn acquire(&self, operation: &str) -> Result<KubernetesLock, StateError> {
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

    pub(super) fn held(&self, lease: Lease, notes: Vec<String>) -> KubernetesLock {
        let holder = lease_holder(&lease);
        let shared = Arc::new(LeaseShared {
            lease: Mutex::new(lease),
            lost: AtomicBool::new(false),
            renewed: Mutex::new(self.clock.now()),
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
    pub(super) async fn delete_lease(&self, rv: Option<String>) -> Result<(), StateError> {
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

/// The monotonic time fencing reads ([`KubernetesLock::check_held`]): the process's clock,
/// moved forward by what [`advance`](Self::advance) added (only tests add anything, to make a
/// lease lapse without waiting a lease duration). Clones share the offset.
#[derive(Clone, Debug, Default)]
pub struct LeaseClock {
    ahead_ms: Arc<AtomicU64>,
}

impl LeaseClock {
    pub fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.ahead_ms.load(Ordering::SeqCst))
    }

    /// Moves this clock (and its clones) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ahead_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

/// The lease and whether it was lost, shared with the renewing task.
pub(super) struct LeaseShared {
    lease: Mutex<Lease>,
    lost: AtomicBool,
    /// When the lease was last known to be ours on the server (taken, or renewed): once more
    /// than its duration ago, another run may hold it, whatever this process has seen since.
    renewed: Mutex<Instant>,
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
                *shared.renewed.lock().expect("renewal mutex") = backend.clock.now();
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
                        *shared.renewed.lock().expect("renewal mutex") = backend.clock.now();
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
    pub(super) backend: KubernetesBackend,
    pub(super) holder: LockHolder,
    pub(super) notes: Vec<String>,
    pub(super) head: Option<Head>,
    pub(super) read_done: bool,
    pub(super) shared: Arc<LeaseShared>,
    pub(super) renewer: Option<tokio::task::JoinHandle<()>>,
    pub(super) released: bool,
}

impl KubernetesLock {
    pub(super) fn check_held(&self) -> Result<(), StateError> {
        let renewed = *self.shared.renewed.lock().expect("renewal mutex");
        let lapsed = self.backend.clock.now().saturating_duration_since(renewed)
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

    pub(super) async fn release_locked(mut self) -> Result<(), StateError> {
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

/// `user@host pid N (operation)`
pub(super) fn holder_identity(operation: &str) -> String {
    let user = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(passwd_user)
        .unwrap_or_else(|| "unknown".to_owned());
    format!(
        "{user}@{} pid {} ({operation})",
        crate::state::lock::hostname(),
        std::process::id()
    )
}

/// The login name of this process's user from /etc/passwd (CI runners often set no `$USER`).
pub(super) fn passwd_user() -> Option<String> {
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

pub(super) fn lease_holder(lease: &Lease) -> LockHolder {
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
pub(super) fn is_expired(lease: &Lease, now: SystemTime) -> bool {
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

pub(super) fn format_secs(secs: i64) -> String {
    rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
    use k8s_openapi::jiff::Timestamp;

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
}
