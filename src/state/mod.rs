//! State: what raystack has applied, per stack (docs/design.md §8). This file owns the format
//! (`State` and its records, the manifest hash, secret fingerprints); `backend` the interface the
//! commands use; `open` picks the backend a stack's `[state]` section names and finds a state
//! left in another (unmigrated, or a fork); `local` the file backend and its atomic writes,
//! `lock` its lock; `kubernetes` the backend in Secrets with a Lease lock (its only cluster I/O
//! is its own Secrets and Lease). State never holds a secret value, only fingerprints, and
//! nothing here prints.

mod backend;
mod error;
mod kubernetes;
mod local;
mod lock;
mod open;
mod seen;

#[cfg(test)]
mod process_tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::kind::ObjectRef;

pub use backend::{Backend, Lock, LockHolder, StateBackend, StateFuture};
pub use error::StateError;
pub use kubernetes::{
    CHUNK_BYTES, DEFAULT_LEASE_SECONDS, KubernetesBackend, LeaseClock, lease_seconds,
};
pub use local::{LocalBackend, StateLock, WaitClock, migrated_path};
pub use lock::{LockInfo, lock_path, rfc3339_utc};
pub use open::{Owner, Reach, migration_source, open, open_kind, other_state, refuse_unmigrated};
pub use seen::seen_path;

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: &str = "1";

/// One stack's recorded state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub format_version: String,
    /// A UUID v4 chosen when the state is created and never changed: it tells this state apart
    /// from any other, so a plan or a write can refuse a state that was swapped underneath it.
    pub lineage: String,
    /// Incremented by every write.
    pub serial: u64,
    pub stack: String,
    /// The stack's namespace, recorded by every write (absent in states written before it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// In apply order of first appearance.
    pub resources: Vec<ResourceState>,
    pub secrets: Vec<SecretState>,
    /// The manifest raystack last applied, by address: rendered objects, which never carry a
    /// secret value (the Secret is rendered without data). An offline plan compares the stack
    /// with these, so it can tell an in-place update from a replacement as an online plan does.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub manifests: BTreeMap<String, serde_json::Value>,
    /// Addresses of the objects raystack adopted (they existed before its first apply) rather
    /// than created: a Namespace among them is never deleted.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub adopted: std::collections::BTreeSet<String>,
}

/// One Kubernetes object raystack applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    /// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects; see
    /// [`ObjectRef::address`].
    pub address: String,
    /// Which object: serialized as the record's own `api_version`, `kind`, `namespace` and
    /// `name` fields, as state files have always held them.
    #[serde(flatten)]
    pub object: ObjectRef,
    pub uid: String,
    pub resource_version: String,
    /// [`applied_hash`] of the manifest raystack applied.
    pub applied_hash: String,
}

/// A secret raystack manages, recorded only by fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretState {
    pub name: String,
    /// See [`State::secret_fingerprint`]; never the value.
    pub fingerprint: String,
}

impl State {
    /// An empty state for `stack` with a fresh lineage and serial 0.
    pub fn new(stack: &str) -> Self {
        State {
            format_version: FORMAT_VERSION.to_owned(),
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            stack: stack.to_owned(),
            namespace: None,
            resources: Vec::new(),
            secrets: Vec::new(),
            manifests: BTreeMap::new(),
            adopted: Default::default(),
        }
    }

    /// Refuses a state (read from `backend`) that records another stack, or another namespace,
    /// than `stack` in `namespace`: another stack's state copied into place, two stacks sharing
    /// one `[state] path`, or two stacks of one name sharing a kubernetes state namespace,
    /// would otherwise plan to change or delete its objects.
    pub fn check_belongs(
        &self,
        backend: &dyn Backend,
        stack: &str,
        namespace: &str,
    ) -> Result<(), StateError> {
        let ns_differs = self.namespace.as_deref().is_some_and(|n| n != namespace);
        if self.stack != stack || ns_differs {
            return Err(StateError::WrongStack {
                location: backend.location(),
                found_stack: self.stack.clone(),
                found_namespace: self.namespace.clone(),
                stack: stack.to_owned(),
                namespace: namespace.to_owned(),
                shared_by_name: backend.kind() == StateBackend::Kubernetes,
            });
        }
        Ok(())
    }

    /// The manifest last applied at `address`, if recorded.
    pub fn manifest(&self, address: &str) -> Option<&serde_json::Value> {
        self.manifests.get(address)
    }

    pub fn resource(&self, address: &str) -> Option<&ResourceState> {
        self.resources.iter().find(|r| r.address == address)
    }

    /// Replaces the record with the same address in place, or appends it, so the order stays
    /// the apply order of first insertion (deletes then walk it backwards).
    pub fn upsert_resource(&mut self, r: ResourceState) {
        match self.resources.iter_mut().find(|e| e.address == r.address) {
            Some(existing) => *existing = r,
            None => self.resources.push(r),
        }
    }

    /// Moves the recorded resourceVersion of `address` to `live`'s, when `live` is the object
    /// recorded (same uid) and its version differs; says whether it did.
    pub fn update_resource_version(&mut self, address: &str, live: &serde_json::Value) -> bool {
        let field = |p: &str| live.pointer(p).and_then(serde_json::Value::as_str);
        let (Some(uid), Some(rv)) = (field("/metadata/uid"), field("/metadata/resourceVersion"))
        else {
            return false;
        };
        match self.resources.iter_mut().find(|e| e.address == address) {
            Some(r) if r.uid == uid && r.resource_version != rv => {
                r.resource_version = rv.to_owned();
                true
            }
            _ => false,
        }
    }

    pub fn remove_resource(&mut self, address: &str) -> Option<ResourceState> {
        self.manifests.remove(address);
        let index = self.resources.iter().position(|r| r.address == address)?;
        Some(self.resources.remove(index))
    }

    /// Records (or updates) the fingerprint of secret `name` holding `value`. The value itself
    /// is not kept.
    pub fn set_secret_fingerprint(&mut self, name: &str, value: &[u8]) {
        let fingerprint = self.secret_fingerprint(name, value);
        match self.secrets.iter_mut().find(|s| s.name == name) {
            Some(existing) => existing.fingerprint = fingerprint,
            None => self.secrets.push(SecretState {
                name: name.to_owned(),
                fingerprint,
            }),
        }
    }

    pub fn secret(&self, name: &str) -> Option<&SecretState> {
        self.secrets.iter().find(|s| s.name == name)
    }

    pub fn remove_secret(&mut self, name: &str) -> Option<SecretState> {
        let index = self.secrets.iter().position(|s| s.name == name)?;
        Some(self.secrets.remove(index))
    }

    /// Whether the recorded fingerprint of `name` matches `value` (false when none is recorded).
    pub fn secret_matches(&self, name: &str, value: &[u8]) -> bool {
        self.secret(name)
            .is_some_and(|s| s.fingerprint == self.secret_fingerprint(name, value))
    }

    /// `"sha256:"` + the first 128 bits (32 hex digits) of
    /// SHA-256(`raystack-secret-fingerprint-v1` NUL lineage NUL name NUL value).
    ///
    /// It tells whether a secret changed without storing it. It cannot reveal the value: a hash
    /// is not invertible, and a truncated one has countless preimages for a generated password
    /// (raystack generates them with far more than 128 bits of entropy). Mixing in the lineage
    /// and name means equal values in different states or secrets get unrelated fingerprints,
    /// and no precomputed table applies. What a fingerprint *can* do, like any hash, is confirm
    /// a guess: a weak, human-chosen password could be brute-forced by whoever reads the state,
    /// which is one reason the state file is mode 0600.
    pub fn secret_fingerprint(&self, name: &str, value: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"raystack-secret-fingerprint-v1\0");
        hasher.update(self.lineage.as_bytes());
        hasher.update(b"\0");
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update(value);
        let digest = hasher.finalize();
        format!("sha256:{}", hex::encode(&digest[..16]))
    }
}

/// Lowercase hex SHA-256 of `manifest` as canonical JSON (object keys sorted, no whitespace),
/// so the same manifest hashes the same whatever order its keys were built in.
pub fn applied_hash(manifest: &serde_json::Value) -> String {
    let mut text = Vec::new();
    write_canonical(manifest, &mut text);
    hex::encode(Sha256::digest(&text))
}

/// [`applied_hash`] of `Value::Array(items.to_vec())`, without copying the items.
pub fn applied_hash_of_all(items: &[serde_json::Value]) -> String {
    applied_hashes(items, false).0
}

/// [`applied_hash_of_all`] of `items`, and with `each` also [`applied_hash`] of every item,
/// from one canonical writing of each item: a plan needs both (the plan file's binding, and
/// whether each object changed since its last apply), and writing the canonical text is most
/// of their cost.
pub fn applied_hashes(items: &[serde_json::Value], each: bool) -> (String, Vec<String>) {
    let mut all = Sha256::new();
    let mut hashes = Vec::with_capacity(if each { items.len() } else { 0 });
    let mut text = Vec::new();
    all.update(b"[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            all.update(b",");
        }
        text.clear();
        write_canonical(item, &mut text);
        all.update(&text);
        if each {
            hashes.push(hex::encode(Sha256::digest(&text)));
        }
    }
    all.update(b"]");
    (hex::encode(all.finalize()), hashes)
}

fn write_canonical_array(items: &[serde_json::Value], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_canonical(item, out);
    }
    out.push(b']');
}

/// Writes `value` as canonical JSON. Scalars (and keys) are written by serde_json exactly as
/// `Value::to_string` writes them, straight into `out`.
fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            // Writing a scalar `Value` into a Vec cannot fail.
            serde_json::to_writer(&mut *out, value).expect("a JSON scalar serializes");
        }
        Value::Array(items) => write_canonical_array(items, out),
        Value::Object(map) => {
            out.push(b'{');
            // Keys are unique, so sorted they have one order; many maps are built sorted.
            if map.keys().is_sorted() {
                write_entries(map.iter(), out);
            } else {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                write_entries(entries.into_iter(), out);
            }
            out.push(b'}');
        }
    }
}

fn write_entries<'a>(
    entries: impl Iterator<Item = (&'a String, &'a serde_json::Value)>,
    out: &mut Vec<u8>,
) {
    for (i, (key, item)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key).expect("a string serializes");
        out.push(b':');
        write_canonical(item, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;
    use serde_json::json;

    pub(super) fn resource(kind: Kind, ns: Option<&str>, name: &str) -> ResourceState {
        let object = ObjectRef::new(kind, ns, name);
        ResourceState {
            address: object.address(),
            object,
            uid: format!("uid-{name}"),
            resource_version: "1".into(),
            applied_hash: applied_hash(&json!({ "kind": kind.as_str(), "name": name })),
        }
    }

    #[test]
    fn new_state_is_empty_with_fresh_lineage() {
        let a = State::new("prod");
        let b = State::new("prod");
        assert_eq!(a.format_version, FORMAT_VERSION);
        assert_eq!(a.serial, 0);
        assert_eq!(a.stack, "prod");
        assert!(a.resources.is_empty() && a.secrets.is_empty());
        assert_ne!(a.lineage, b.lineage);
        let parsed = uuid::Uuid::parse_str(&a.lineage).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn applied_hashes_are_the_hashes_of_each_and_of_all() {
        let items = vec![
            json!({"b": 1, "a": [true, null, "x"]}),
            json!({"kind": "ConfigMap", "data": {"z": "1", "y": "2"}}),
        ];
        let (all, each) = applied_hashes(&items, true);
        assert_eq!(all, applied_hash(&serde_json::Value::Array(items.clone())));
        assert_eq!(each, vec![applied_hash(&items[0]), applied_hash(&items[1])]);
        assert_eq!(applied_hashes(&items, false), (all.clone(), Vec::new()));
        assert_eq!(applied_hash_of_all(&items), all);
        assert_eq!(applied_hashes(&[], true).0, applied_hash(&json!([])));
    }

    #[test]
    fn a_settled_resource_version_is_recorded_only_for_the_same_object() {
        let mut s = State::new("x");
        s.upsert_resource(resource(Kind::RayCluster, Some("ray"), "ray"));
        let addr = "RayCluster/ray/ray";
        let live = |uid: &str, rv: &str| json!({"metadata": {"uid": uid, "resourceVersion": rv}});
        let rv = |s: &State| s.resource(addr).unwrap().resource_version.clone();
        // Another object of that name (deleted and recreated since): not this record's.
        assert!(!s.update_resource_version(addr, &live("uid-other", "7")));
        assert!(!s.update_resource_version("RayCluster/ray/other", &live("uid-ray", "7")));
        assert!(!s.update_resource_version(addr, &json!({"metadata": {"uid": "uid-ray"}})));
        assert_eq!(rv(&s), "1");
        assert!(s.update_resource_version(addr, &live("uid-ray", "7")));
        assert_eq!(rv(&s), "7");
        // Already recorded: nothing to write.
        assert!(!s.update_resource_version(addr, &live("uid-ray", "7")));
    }

    #[test]
    fn upsert_keeps_first_insertion_order_and_replaces_in_place() {
        let mut s = State::new("x");
        s.upsert_resource(resource(Kind::Namespace, None, "ray"));
        s.upsert_resource(resource(Kind::Secret, Some("ray"), "redis"));
        s.upsert_resource(resource(Kind::StatefulSet, Some("ray"), "redis"));
        let mut updated = resource(Kind::Secret, Some("ray"), "redis");
        updated.resource_version = "42".into();
        s.upsert_resource(updated);
        let order: Vec<_> = s.resources.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(
            order,
            ["Namespace/ray", "Secret/ray/redis", "StatefulSet/ray/redis"]
        );
        assert_eq!(
            s.resource("Secret/ray/redis").unwrap().resource_version,
            "42"
        );
        let removed = s.remove_resource("Secret/ray/redis").unwrap();
        assert_eq!(removed.object.name, "redis");
        assert!(s.resource("Secret/ray/redis").is_none());
        assert!(s.remove_resource("Secret/ray/redis").is_none());
        assert_eq!(s.resources.len(), 2);
    }

    #[test]
    fn applied_hash_of_all_is_the_hash_of_the_array() {
        let items = vec![
            json!({"kind": "Secret", "data": {}, "metadata": {"name": "s\"q\u{e9}"}}),
            json!({"b": [1.5, -2, null, true], "a": "x\ny"}),
        ];
        assert_eq!(
            applied_hash_of_all(&items),
            applied_hash(&serde_json::Value::Array(items.clone()))
        );
        assert_eq!(applied_hash_of_all(&[]), hex::encode(Sha256::digest(b"[]")));
    }

    #[test]
    fn applied_hash_is_independent_of_key_order() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}},
                       "data": {"x": [1, {"q": true, "p": null}]}});
        // Same content, keys inserted in the opposite order (preserve_order keeps insertion order).
        let b: serde_json::Value = serde_json::from_str(
            r#"{"data": {"x": [1, {"p": null, "q": true}]},
                "metadata": {"labels": {"b": "2", "a": "1"}, "name": "c"},
                "kind": "ConfigMap", "apiVersion": "v1"}"#,
        )
        .unwrap();
        assert_eq!(applied_hash(&a), applied_hash(&b));
        assert_eq!(applied_hash(&a).len(), 64);
        assert!(applied_hash(&a).chars().all(|c| c.is_ascii_hexdigit()));
        // Known value: pins the canonical form so hashes stay comparable across releases.
        assert_eq!(
            applied_hash(&json!({"b": 1, "a": "x"})),
            hex::encode(Sha256::digest(br#"{"a":"x","b":1}"#))
        );
        // Content changes (including array order) change the hash.
        let c = json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}},
                       "data": {"x": [{"q": true, "p": null}, 1]}});
        assert_ne!(applied_hash(&a), applied_hash(&c));
    }

    #[test]
    fn secret_fingerprints_never_contain_the_value() {
        let mut s = State::new("x");
        let password = b"hunter2-correct-horse-battery-staple";
        s.set_secret_fingerprint("redis-password", password);
        let fp = &s.secret("redis-password").unwrap().fingerprint;
        assert!(fp.starts_with("sha256:"));
        assert_eq!(fp.len(), "sha256:".len() + 32);
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("hunter2"));
        assert!(!json.contains(&hex::encode(password)));
        assert!(s.secret_matches("redis-password", password));
        assert!(!s.secret_matches("redis-password", b"other"));
        assert!(!s.secret_matches("missing", password));

        // Updating replaces, not duplicates.
        s.set_secret_fingerprint("redis-password", b"rotated");
        assert_eq!(s.secrets.len(), 1);
        assert!(s.secret_matches("redis-password", b"rotated"));

        // Same value, different lineage or name: unrelated fingerprints.
        let other = State::new("x");
        assert_ne!(
            s.secret_fingerprint("a", b"v"),
            other.secret_fingerprint("a", b"v")
        );
        assert_ne!(
            s.secret_fingerprint("a", b"v"),
            s.secret_fingerprint("b", b"v")
        );
        assert!(s.remove_secret("redis-password").is_some());
        assert!(s.secret("redis-password").is_none());
    }

    #[test]
    fn serialized_field_names_match_the_design() {
        let mut s = State::new("prod");
        s.upsert_resource(resource(Kind::Secret, Some("ray"), "redis"));
        s.set_secret_fingerprint("redis-password", b"v");
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "format_version",
            "lineage",
            "serial",
            "stack",
            "resources",
            "secrets",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let r = &v["resources"][0];
        for key in ["address", "uid", "resource_version", "applied_hash"] {
            assert!(r.get(key).is_some(), "missing resources[0].{key}");
        }
        assert!(v["secrets"][0].get("fingerprint").is_some());
    }
}
