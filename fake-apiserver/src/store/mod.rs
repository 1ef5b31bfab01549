//! The store wing: everything a write goes through before it is kept, and what is kept. This
//! file holds the state itself; `key` names objects, `registry` the served kinds, `objects` the
//! object API every writer shares, `admission` (with `defaults`, `schema`, `cel`, `validate`,
//! `limits`) what a candidate passes before it is stored, `ssa` field ownership, and
//! `controller_state` the simulated controllers' settings and running hooks as the store holds
//! them. Nothing here serves HTTP or runs a controller.
//!
//! The in-memory store: objects keyed by group/resource/namespace/name, the global resourceVersion counter,
//! IP allocators, and the registry of served kinds (built-ins plus stored CRDs).

pub(crate) mod admission;
pub(crate) mod cel;
pub(crate) mod controller_state;
pub(crate) mod defaults;
pub(crate) mod key;
pub(crate) mod limits;
pub(crate) mod objects;
pub(crate) mod registry;
pub(crate) mod schema;
pub(crate) mod ssa;
pub(crate) mod validate;

use crate::store::controller_state::{CleanupJob, Lifecycle};
use crate::store::registry::ResourceType;
use crate::util::get_str;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use crate::store::key::{Key, key};

#[derive(Debug, Clone)]
pub struct Stored {
    pub obj: Value,
    /// When the simulated controller should next make this object ready.
    pub ready_due: Option<Instant>,
    /// A client wrote the status subresource; the simulated controller leaves it alone until the next spec change.
    pub status_pinned: bool,
}

pub struct State {
    pub objects: BTreeMap<Key, Stored>,
    pub rv: u64,
    pub next_ip: u32,
    next_pod_ip: u32,
    pub next_node_port: i64,
    pub types: Vec<ResourceType>,
    pub readiness_delay: Duration,
    /// Pod delete hooks, configured and running.
    pub lifecycle: Lifecycle,
    /// How the simulated KubeRay cleanup Job behaves, and when each running one finishes.
    pub cleanup_job: CleanupJob,
    pub cleanup_due: BTreeMap<Key, std::time::Instant>,
    /// What the simulated controllers last found: nothing to do until the store changes or the
    /// next readiness is due (`controllers::tick`).
    pub quiet: Option<Quiet>,
    /// The simulated Ray autoscaler runs (`crate::controllers::autoscaler`).
    pub simulate_autoscaler: bool,
}

/// The simulated controllers have nothing to do until the store changes (`rv` moves on) or
/// `next_due` passes.
#[derive(Debug, Clone, Copy)]
pub struct Quiet {
    pub rv: u64,
    pub next_due: Option<Instant>,
}

impl State {
    pub fn new(readiness_delay: Duration) -> State {
        State {
            objects: BTreeMap::new(),
            rv: 1000,
            next_ip: 10,
            next_pod_ip: 10,
            next_node_port: 30000,
            types: registry::builtins(),
            readiness_delay,
            lifecycle: Default::default(),
            cleanup_job: CleanupJob::default(),
            cleanup_due: BTreeMap::new(),
            quiet: None,
            simulate_autoscaler: false,
        }
    }

    pub fn rebuild_types(&mut self) {
        let mut types = registry::builtins();
        for ((g, p, _, _), s) in &self.objects {
            if g == "apiextensions.k8s.io"
                && p == "customresourcedefinitions"
                && let Some(rt) = registry::from_crd(&s.obj)
                && !types
                    .iter()
                    .any(|t| t.group == rt.group && t.plural == rt.plural)
            {
                types.push(rt);
            }
        }
        self.types = types;
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural && t.serves(version))
            .cloned()
    }

    pub fn find_kind(&self, group: &str, kind: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
            .cloned()
    }

    pub fn group_served(&self, group: &str, version: &str) -> bool {
        self.types
            .iter()
            .any(|t| t.group == group && t.serves(version))
    }

    pub fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    pub fn alloc_pod_ip(&mut self) -> String {
        let n = self.next_pod_ip;
        self.next_pod_ip += 1;
        format!("10.244.{}.{}", n / 250, n % 250 + 1)
    }

    /// The stored objects of one resource (every namespace), in key order. Keys sort by group and
    /// plural first, so this is a range of the map, not a scan of every object: the simulated
    /// controllers list their kinds around every request.
    pub fn of_kind<'a, 'k>(
        &'a self,
        group: &'k str,
        plural: &'k str,
    ) -> impl Iterator<Item = (&'a Key, &'a Stored)> + use<'a, 'k> {
        let from = (
            group.to_string(),
            plural.to_string(),
            String::new(),
            String::new(),
        );
        self.objects
            .range(from..)
            .take_while(move |((g, p, _, _), _)| g == group && p == plural)
    }

    /// The default StorageClass (annotation `storageclass.kubernetes.io/is-default-class: "true"`), newest first.
    pub fn default_storage_class(&self) -> Option<String> {
        self.of_kind("storage.k8s.io", "storageclasses")
            .filter(|(_, s)| {
                get_str(
                    &s.obj,
                    &[
                        "metadata",
                        "annotations",
                        "storageclass.kubernetes.io/is-default-class",
                    ],
                ) == Some("true")
            })
            .max_by_key(|(_, s)| {
                get_str(&s.obj, &["metadata", "resourceVersion"])
                    .and_then(|r| r.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .map(|((_, _, _, n), _)| n.clone())
    }

    pub fn get(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&key(group, plural, ns, name))
            .map(|s| &s.obj)
    }

    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.get("", "namespaces", "", ns).is_some()
    }

    /// The namespace is being deleted (phase `Terminating`): no new content may be created in it.
    pub fn namespace_terminating(&self, ns: &str) -> bool {
        self.get("", "namespaces", "", ns)
            .is_some_and(|n| crate::util::get(n, &["metadata", "deletionTimestamp"]).is_some())
    }

    /// Objects of one resource in a namespace ("" = all / cluster scope).
    pub fn list(&self, group: &str, plural: &str, ns: &str) -> Vec<(Key, &Value)> {
        self.of_kind(group, plural)
            .filter(|((_, _, n, _), _)| ns.is_empty() || n == ns)
            .map(|(k, s)| (k.clone(), &s.obj))
            .collect()
    }
}

/// The n-th address of the Service range 10.96.0.0/12.
pub fn service_ip(n: u32) -> String {
    format!("10.96.{}.{}", n / 250, n % 250 + 1)
}
