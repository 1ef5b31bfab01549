//! The vocabulary of kinds: every Kubernetes object kind raystack renders, reads or deletes,
//! and what raystack knows about each one (API group, version and plural, scope, apply order,
//! the fields the server refuses to change in place, whether apply waits for it, whether it
//! holds data), plus [`ObjectRef`], the name of one object. Pure data: no I/O, no decisions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A kind raystack knows. Serialized as its Kubernetes name (`"PersistentVolumeClaim"`), so
/// plan files and state read the same as when kinds were plain strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Namespace,
    StorageClass,
    Secret,
    ConfigMap,
    PersistentVolumeClaim,
    StatefulSet,
    Service,
    NetworkPolicy,
    RayCluster,
    /// prometheus-operator's alerting rules (`[monitoring] prometheus_rules`).
    PrometheusRule,
    /// Never rendered: read and deleted only (to release a PVC a pod mounts).
    Pod,
    /// Never rendered: KubeRay's Redis cleanup Job, read while a deleted RayCluster's
    /// finalizer runs.
    Job,
}

/// What deleting or recreating an object of a kind takes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// The Redis volume itself (a PVC): its data goes with it.
    Volume,
    /// Everything inside it, the Redis volume included (a Namespace).
    Contents,
    /// Ray's GCS state, kept in the external Redis (a RayCluster); KubeRay's cleanup on delete
    /// removes the cluster's keys.
    GcsState,
}

/// A field the API server refuses to change in place: changing it means delete and recreate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImmutableField {
    /// JSON pointer into the manifest.
    pub pointer: &'static str,
    /// Why a change replaces the object, for the plan.
    pub reason: &'static str,
}

impl Kind {
    /// Every kind, in apply order (then the kinds that are never applied).
    pub const ALL: [Kind; 12] = [
        Kind::Namespace,
        Kind::StorageClass,
        Kind::Secret,
        Kind::ConfigMap,
        Kind::PersistentVolumeClaim,
        Kind::StatefulSet,
        Kind::Service,
        Kind::NetworkPolicy,
        Kind::RayCluster,
        Kind::PrometheusRule,
        Kind::Pod,
        Kind::Job,
    ];

    /// The Kubernetes name (`"StatefulSet"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::StorageClass => "StorageClass",
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
            Kind::StatefulSet => "StatefulSet",
            Kind::Service => "Service",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::RayCluster => "RayCluster",
            Kind::PrometheusRule => "PrometheusRule",
            Kind::Pod => "Pod",
            Kind::Job => "Job",
        }
    }

    /// The kind named `name`, if raystack knows it.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The API group (`""` for the core group).
    pub const fn group(self) -> &'static str {
        match self {
            Kind::StorageClass => "storage.k8s.io",
            Kind::StatefulSet => "apps",
            Kind::NetworkPolicy => "networking.k8s.io",
            Kind::RayCluster => "ray.io",
            Kind::PrometheusRule => "monitoring.coreos.com",
            Kind::Job => "batch",
            Kind::Namespace
            | Kind::Secret
            | Kind::ConfigMap
            | Kind::PersistentVolumeClaim
            | Kind::Service
            | Kind::Pod => "",
        }
    }

    /// The API version raystack renders and reads.
    pub const fn version(self) -> &'static str {
        "v1"
    }

    /// `apiVersion` as written in a manifest (`"apps/v1"`, `"v1"`).
    pub fn api_version(self) -> String {
        match self.group() {
            "" => self.version().to_string(),
            group => format!("{group}/{}", self.version()),
        }
    }

    /// The resource name in API paths (`"statefulsets"`).
    pub const fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::StorageClass => "storageclasses",
            Kind::Secret => "secrets",
            Kind::ConfigMap => "configmaps",
            Kind::PersistentVolumeClaim => "persistentvolumeclaims",
            Kind::StatefulSet => "statefulsets",
            Kind::Service => "services",
            Kind::NetworkPolicy => "networkpolicies",
            Kind::RayCluster => "rayclusters",
            Kind::PrometheusRule => "prometheusrules",
            Kind::Pod => "pods",
            Kind::Job => "jobs",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub const fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::StorageClass)
    }

    /// Position in the apply order (deletes run in reverse: RayCluster first, because KubeRay's
    /// Redis cleanup needs Redis). Kinds raystack never applies come last.
    pub const fn apply_rank(self) -> usize {
        match self {
            Kind::Namespace => 0,
            Kind::StorageClass => 1,
            Kind::Secret => 2,
            Kind::ConfigMap => 3,
            Kind::PersistentVolumeClaim => 4,
            Kind::StatefulSet => 5,
            Kind::Service => 6,
            Kind::NetworkPolicy => 7,
            Kind::RayCluster => 8,
            Kind::PrometheusRule => 9,
            Kind::Pod => 10,
            Kind::Job => 11,
        }
    }

    /// The fields the server refuses to change in place, in the order a plan checks them.
    pub const fn immutable_fields(self) -> &'static [ImmutableField] {
        match self {
            Kind::PersistentVolumeClaim => &[
                ImmutableField {
                    pointer: "/spec/storageClassName",
                    reason: "storageClassName is immutable on a PVC",
                },
                ImmutableField {
                    pointer: "/spec/accessModes",
                    reason: "accessModes are immutable on a PVC",
                },
                ImmutableField {
                    pointer: "/spec/volumeMode",
                    reason: "volumeMode is immutable on a PVC",
                },
            ],
            Kind::StorageClass => &[
                ImmutableField {
                    pointer: "/provisioner",
                    reason: "provisioner is immutable on a StorageClass",
                },
                ImmutableField {
                    pointer: "/parameters",
                    reason: "parameters are immutable on a StorageClass",
                },
                ImmutableField {
                    pointer: "/reclaimPolicy",
                    reason: "reclaimPolicy is immutable on a StorageClass",
                },
                ImmutableField {
                    pointer: "/volumeBindingMode",
                    reason: "volumeBindingMode is immutable on a StorageClass",
                },
            ],
            Kind::StatefulSet => &[
                ImmutableField {
                    pointer: "/spec/selector",
                    reason: "selector is immutable on a StatefulSet",
                },
                ImmutableField {
                    pointer: "/spec/serviceName",
                    reason: "serviceName is immutable on a StatefulSet",
                },
                ImmutableField {
                    pointer: "/spec/volumeClaimTemplates",
                    reason: "volumeClaimTemplates are immutable on a StatefulSet",
                },
            ],
            Kind::Service => &[ImmutableField {
                pointer: "/spec/clusterIP",
                reason: "clusterIP is immutable on a Service",
            }],
            Kind::Secret => &[ImmutableField {
                pointer: "/type",
                reason: "type is immutable on a Secret",
            }],
            Kind::Namespace
            | Kind::ConfigMap
            | Kind::NetworkPolicy
            | Kind::RayCluster
            | Kind::PrometheusRule
            | Kind::Pod
            | Kind::Job => &[],
        }
    }

    /// Whether raystack renders and applies objects of this kind (Pods and Jobs it only reads).
    pub const fn rendered(self) -> bool {
        !matches!(self, Kind::Pod | Kind::Job)
    }

    /// Whether apply waits for objects of this kind to become ready before the next.
    pub const fn waited_on(self) -> bool {
        matches!(
            self,
            Kind::PersistentVolumeClaim | Kind::StatefulSet | Kind::RayCluster
        )
    }

    /// What deleting or recreating an object of this kind takes with it, if anything.
    pub const fn holds(self) -> Option<Holds> {
        match self {
            Kind::PersistentVolumeClaim => Some(Holds::Volume),
            Kind::Namespace => Some(Holds::Contents),
            Kind::RayCluster => Some(Holds::GcsState),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name read from a manifest compares equal to the kind it names (`c.kind == Kind::Secret`
/// wherever a kind is still held as text, e.g. in a manifest's `kind` field).
impl PartialEq<Kind> for str {
    fn eq(&self, other: &Kind) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Kind> for &str {
    fn eq(&self, other: &Kind) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Kind> for String {
    fn eq(&self, other: &Kind) -> bool {
        self == other.as_str()
    }
}

/// A kind name raystack does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("raystack does not know the kind `{0}`")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::parse(s).ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// The address of an object in state and plans: `Kind/namespace/name`, or `Kind/name` when
/// cluster-scoped.
pub fn address(kind: Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// Identifies one object: what the cluster module reads, applies and deletes, and what a
/// state record names (its fields serialize under these names, `kind` as the plain string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// A reference to an object of `kind` at the version raystack uses.
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            api_version: kind.api_version(),
            kind,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The object a manifest describes; an error for a kind raystack does not know.
    pub fn of(manifest: &Value) -> Result<Self, UnknownKind> {
        // Plain lookups: `Value::pointer` allocates for every path segment it reads, and
        // offline plans of many stacks call this for every object.
        fn s(v: Option<&Value>) -> Option<&str> {
            v.and_then(Value::as_str)
        }
        let metadata = manifest.get("metadata");
        Ok(ObjectRef {
            api_version: s(manifest.get("apiVersion"))
                .unwrap_or_default()
                .to_string(),
            kind: s(manifest.get("kind")).unwrap_or_default().parse()?,
            namespace: s(metadata.and_then(|m| m.get("namespace"))).map(str::to_string),
            name: s(metadata.and_then(|m| m.get("name")))
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// The object a manifest raystack rendered describes. Every kind `crate::render` produces is
    /// in the vocabulary (the render tests pin it), so this cannot fail on a rendered object.
    pub fn of_rendered(manifest: &Value) -> Self {
        Self::of(manifest).expect("a rendered object is of a known kind")
    }

    /// `Kind/namespace/name`, or `Kind/name` when cluster-scoped.
    pub fn address(&self) -> String {
        address(self.kind, self.namespace.as_deref(), &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialize_as_plain_strings() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                Value::String(k.as_str().into())
            );
        }
        assert_eq!(
            "Deployment".parse::<Kind>().unwrap_err().to_string(),
            "raystack does not know the kind `Deployment`"
        );
    }

    #[test]
    fn all_is_in_apply_order() {
        let ranks: Vec<usize> = Kind::ALL.iter().map(|k| k.apply_rank()).collect();
        assert_eq!(ranks, (0..Kind::ALL.len()).collect::<Vec<_>>());
    }

    #[test]
    fn api_versions_and_scopes() {
        assert_eq!(Kind::StatefulSet.api_version(), "apps/v1");
        assert_eq!(Kind::Secret.api_version(), "v1");
        assert_eq!(Kind::RayCluster.api_version(), "ray.io/v1");
        assert!(!Kind::Namespace.namespaced() && !Kind::StorageClass.namespaced());
        assert!(Kind::RayCluster.namespaced());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            ObjectRef::new(Kind::Secret, Some("ray"), "redis").address(),
            "Secret/ray/redis"
        );
        assert_eq!(address(Kind::Namespace, None, "ray"), "Namespace/ray");
    }

    #[test]
    fn data_holders() {
        assert_eq!(Kind::PersistentVolumeClaim.holds(), Some(Holds::Volume));
        assert_eq!(Kind::RayCluster.holds(), Some(Holds::GcsState));
        assert_eq!(Kind::ConfigMap.holds(), None);
    }
}
