//! The renderer's output type: one desired Kubernetes object as JSON, with accessors.

use serde_json::Value;

/// Every object raystack wants in the cluster for one stack, in apply order
/// (Namespace, StorageClass, Secret, ConfigMap, PVC, StatefulSet, Service, NetworkPolicy, RayCluster).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub objects: Vec<Desired>,
}

/// One desired object. The manifest is complete (`apiVersion`, `kind`, `metadata`, ...), except
/// that the Redis Secret carries no values: they are generated once at first apply and never rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub manifest: Value,
}

impl Desired {
    pub fn new(manifest: Value) -> Self {
        Self { manifest }
    }
    pub fn api_version(&self) -> &str {
        self.manifest["apiVersion"].as_str().unwrap_or_default()
    }
    pub fn kind(&self) -> &str {
        self.manifest["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.manifest["metadata"]["namespace"].as_str()
    }
    /// Stable address used in plans and state: `Kind/name` or `Kind/namespace/name`
    /// ([`crate::kind::ObjectRef::address`]).
    pub fn address(&self) -> String {
        crate::kind::ObjectRef::of_rendered(&self.manifest).address()
    }
}
