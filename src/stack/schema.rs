//! The typed stack: what a validated stack file means, with every default filled in.
//! Plain data only; parsing and validation live in `parse.rs`, so this file never does I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::units::{KubeRayVersion, Quantity};

/// The label keys raystack sets on its objects besides `raystack.dev/stack`; a stack may not
/// set them (its `labels` are checked against these) and a patch may not change them.
pub const OWNED_LABEL_KEYS: [&str; 3] = [
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/name",
    "app.kubernetes.io/component",
];

/// One validated stack file: one RayCluster with its durable Redis, in one namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The file the stack was read from (used in messages and to place the local state file).
    pub source: PathBuf,
    pub meta: StackMeta,
    pub cluster: Cluster,
    pub durability: Durability,
    pub redis: Redis,
    pub ray: Ray,
    pub state: StateConfig,
    /// `[[patches]]`, applied in order to the rendered objects (validated at load time).
    pub patches: Vec<Patch>,
    pub monitoring: Monitoring,
    /// `[[import.adopt]]`: the objects `raystack import` found, by UID. Apply adopts exactly
    /// these without `--adopt`, and only while the live object still has the recorded UID.
    pub imported: Vec<ImportedObject>,
    /// Things that are valid but probably not what the author meant (e.g. `replicas` on an
    /// autoscaled worker group), each located like an error. `validate` and `plan` show them.
    pub warnings: Vec<super::Diagnostic>,
}

/// One `[[import.adopt]]` entry: an object that existed when `raystack import` wrote the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedObject {
    /// A kind raystack renders (`RayCluster`, `StatefulSet`, ...).
    pub kind: String,
    pub name: String,
    /// `metadata.uid` when imported: a recreated object (another UID) is not what was imported.
    pub uid: String,
}

impl Stack {
    /// The UID `raystack import` recorded for `kind`/`name`, if it recorded the object.
    pub fn imported_uid(&self, kind: &str, name: &str) -> Option<&str> {
        self.imported
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .map(|o| o.uid.as_str())
    }
}

/// `[stack]`
#[derive(Debug, Clone, PartialEq)]
pub struct StackMeta {
    /// DNS-1123 label; prefixes every object name, and the names derived from it fit their
    /// limits (`super::derived_names`; 41 characters at most in practice).
    pub name: String,
    /// Defaults to the stack name.
    pub namespace: String,
    /// Create the namespace when missing (default true).
    pub create_namespace: bool,
    /// `[stack] labels`: added to every rendered object (and every pod template).
    pub labels: BTreeMap<String, String>,
    /// `[stack] annotations`: added to every rendered object (and every pod template).
    pub annotations: BTreeMap<String, String>,
}

/// `[cluster]`
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// kubeconfig context; `None` means the current context.
    pub context: Option<String>,
    pub provider: ProviderConfig,
}

/// The provider and its fields (`[cluster]` identity plus `[cluster.<provider>]` storage options).
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderConfig {
    Local,
    Aws(AwsConfig),
    Gcp(GcpConfig),
    Azure(AzureConfig),
}

impl ProviderConfig {
    /// The provider's name as written in stack files: `local`, `aws`, `gcp`, `azure`.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderConfig::Local => "local",
            ProviderConfig::Aws(_) => "aws",
            ProviderConfig::Gcp(_) => "gcp",
            ProviderConfig::Azure(_) => "azure",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AwsConfig {
    /// EKS cluster name.
    pub name: String,
    pub region: String,
    pub volume_type: AwsVolumeType,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
    pub kms_key_id: Option<String>,
    /// EKS Auto Mode block storage: the StorageClass uses Auto Mode's provisioner
    /// (`ebs.csi.eks.amazonaws.com`) instead of the EBS CSI add-on's (`ebs.csi.aws.com`).
    pub auto_mode: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsVolumeType {
    Gp3,
    Io2,
}

impl AwsVolumeType {
    pub fn as_str(self) -> &'static str {
        match self {
            AwsVolumeType::Gp3 => "gp3",
            AwsVolumeType::Io2 => "io2",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GcpConfig {
    pub project: String,
    /// Region or zone of the GKE cluster.
    pub location: String,
    /// GKE cluster name.
    pub name: String,
    pub disk: GcpDisk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcpDisk {
    /// `standard-rwo` (pd-balanced), built into GKE.
    StandardRwo,
    /// `premium-rwo` (pd-ssd), built into GKE.
    PremiumRwo,
    /// A regional pd-balanced class that raystack creates (`<stack>-regional-pd`).
    Regional,
}

impl GcpDisk {
    pub fn as_str(self) -> &'static str {
        match self {
            GcpDisk::StandardRwo => "standard-rwo",
            GcpDisk::PremiumRwo => "premium-rwo",
            GcpDisk::Regional => "regional",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AzureConfig {
    pub subscription_id: String,
    pub resource_group: String,
    /// AKS cluster name.
    pub name: String,
    pub location: String,
    pub disk_sku: AzureDiskSku,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureDiskSku {
    StandardSsdLrs,
    PremiumLrs,
    StandardSsdZrs,
    PremiumZrs,
}

impl AzureDiskSku {
    /// The SKU name as Azure spells it, e.g. `StandardSSD_LRS`.
    pub fn as_str(self) -> &'static str {
        match self {
            AzureDiskSku::StandardSsdLrs => "StandardSSD_LRS",
            AzureDiskSku::PremiumLrs => "Premium_LRS",
            AzureDiskSku::StandardSsdZrs => "StandardSSD_ZRS",
            AzureDiskSku::PremiumZrs => "Premium_ZRS",
        }
    }
    pub fn is_zrs(self) -> bool {
        matches!(
            self,
            AzureDiskSku::StandardSsdZrs | AzureDiskSku::PremiumZrs
        )
    }
    pub fn is_premium(self) -> bool {
        matches!(self, AzureDiskSku::PremiumLrs | AzureDiskSku::PremiumZrs)
    }
    pub const ALL: [AzureDiskSku; 4] = [
        AzureDiskSku::StandardSsdLrs,
        AzureDiskSku::PremiumLrs,
        AzureDiskSku::StandardSsdZrs,
        AzureDiskSku::PremiumZrs,
    ];
}

/// The most `appendfsync everysec` can lose, and so the smallest non-zero RPO raystack accepts.
/// Redis fsyncs the append-only file in a background thread once a second; while one fsync is
/// still running, `flushAppendOnlyFile` (Redis 7 `aof.c`) postpones writing the buffer, for as
/// long as `server.unixtime - aof_flush_postponed_start < 2`, then writes anyway and counts
/// `aof_delayed_fsync`. Acknowledged writes can therefore sit in memory for about 2 s: an RPO
/// under that cannot be promised with `everysec`, and validation refuses it (docs/design.md §2).
pub const EVERYSEC_WORST_CASE: Duration = Duration::from_secs(2);

/// `[durability]`: goals, not Redis knobs (see `crate::durability` for the mapping).
#[derive(Debug, Clone, PartialEq)]
pub struct Durability {
    /// Recovery point objective: how much acknowledged data may be lost.
    pub max_data_loss: Duration,
    /// RDB snapshot cadence when writes are frequent.
    pub snapshot_every: Duration,
    pub snapshot_min_writes: u64,
    pub volume: VolumeKind,
    /// Plans that delete or replace the Redis volume need `--allow-data-loss`. With the
    /// embedded backend it also keeps KubeRay's GCS volume when the RayCluster is deleted
    /// (`deletionPolicy: Retain`).
    pub protect_volume: bool,
    /// Where the GCS keeps its state: a Redis raystack deploys, or KubeRay 1.7's embedded
    /// RocksDB store on a volume of the head pod.
    pub backend: GcsBackend,
    /// Size of the embedded backend's volume (`gcsFaultToleranceOptions.storage.size`);
    /// `None` with the Redis backend.
    pub embedded_storage: Option<Quantity>,
}

/// `[durability] backend`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcsBackend {
    /// The GCS persists to a Redis that raystack deploys with durable settings (the default).
    Redis,
    /// KubeRay >= 1.7: `gcsFaultToleranceOptions.backend: rocksdb`, the GCS's own RocksDB
    /// store on a PersistentVolume that KubeRay creates; no Redis objects at all.
    Embedded,
}

impl GcsBackend {
    /// As stack files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            GcsBackend::Redis => "redis",
            GcsBackend::Embedded => "embedded",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeKind {
    /// Block storage: append-only file allowed.
    Disk,
    /// Object-storage FUSE mount (GCS FUSE, S3 mountpoint): appends impossible, so no AOF.
    ObjectFuse,
}

impl VolumeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeKind::Disk => "disk",
            VolumeKind::ObjectFuse => "object-fuse",
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, PartialEq)]
pub struct Redis {
    pub image: String,
    pub storage: Quantity,
    /// Overrides the provider's storage class.
    pub storage_class: Option<String>,
    pub cpu: Quantity,
    pub memory: Quantity,
    /// Where the Redis pod runs and what it carries (`node_selector`, `tolerations`, ...).
    pub pod: PodSettings,
    /// Run the `redis_exporter` sidecar next to Redis (default true).
    pub metrics: bool,
    /// The names of the Redis objects: raystack's own (`<stack>-redis*`) unless the stack names
    /// existing ones to adopt (`raystack import` writes them).
    pub objects: RedisObjects,
}

/// `[redis] name/service_name/selector/pvc/config_map/password_secret`: existing Redis objects
/// a stack adopts in place. `None` everywhere is raystack's own naming. What Kubernetes makes
/// immutable on an existing object (a StatefulSet's `selector` and `serviceName`) is here too,
/// so the rendered object can match it instead of replacing it (docs/design.md §1).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RedisObjects {
    /// The StatefulSet, its Service and the NetworkPolicy; default `<stack>-redis`.
    pub name: Option<String>,
    /// The StatefulSet's `spec.serviceName`; default the name above, `Some("")` none.
    pub service_name: Option<String>,
    /// The labels selecting the Redis pod (StatefulSet, Service, NetworkPolicy); default
    /// `raystack.dev/stack` and `app.kubernetes.io/name: redis`.
    pub selector: Option<BTreeMap<String, String>>,
    /// The PersistentVolumeClaim; default `<stack>-redis-data`.
    pub pvc: Option<String>,
    /// The ConfigMap holding `redis.conf`; default `<stack>-redis-config`.
    pub config_map: Option<String>,
    /// The Secret holding the password under `password`; default `<stack>-redis-auth`.
    pub password_secret: Option<String>,
}

impl RedisObjects {
    /// The StatefulSet and Service name for the stack `stack`.
    pub fn name(&self, stack: &str) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{stack}-redis"))
    }
}

/// `[monitoring]`
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Monitoring {
    /// Render a prometheus-operator `PrometheusRule` with the persistence alerts (default false).
    pub prometheus_rules: bool,
}

/// `[ray]`
#[derive(Debug, Clone, PartialEq)]
pub struct Ray {
    /// Ray version, e.g. `2.45.0`.
    pub version: String,
    /// `[ray] image` as written: the image of every group that names none itself. `None`:
    /// `rayproject/ray:<version>`, or `rayproject/ray:<version>-gpu` for a group with GPUs.
    pub image: Option<String>,
    /// KubeRay operator version in the cluster; selects the GCS fault-tolerance API shape.
    pub kuberay: KubeRayVersion,
    /// `externalStorageNamespace`; `None` leaves it to KubeRay (the RayCluster UID).
    pub external_storage_namespace: Option<String>,
    /// `spec.upgradeStrategy.type`; `None` when the stack's KubeRay has no such field (< 1.6).
    pub upgrade_strategy: Option<UpgradeStrategy>,
    pub head: RayHead,
    pub workers: Vec<WorkerGroup>,
}

/// `[ray] upgrade_strategy`: what KubeRay (>= 1.6) does with running pods when the
/// RayCluster's spec changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeStrategy {
    /// Delete every pod so the new spec runs now (the head restarts; the GCS restores state).
    Recreate,
    /// Keep running pods; the new spec reaches only pods created later.
    None,
}

impl UpgradeStrategy {
    /// As stack files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            UpgradeStrategy::Recreate => "recreate",
            UpgradeStrategy::None => "none",
        }
    }
    /// As the RayCluster CRD spells it.
    pub fn crd_value(self) -> &'static str {
        match self {
            UpgradeStrategy::Recreate => "Recreate",
            UpgradeStrategy::None => "None",
        }
    }
}

/// `[ray.head]`
#[derive(Debug, Clone, PartialEq)]
pub struct RayHead {
    pub cpu: Quantity,
    pub memory: Quantity,
    /// The resolved image (`[ray.head] image`, else `[ray] image`, else Ray's CPU image).
    pub image: String,
    pub pod: PodSettings,
}

/// One `[[ray.workers]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerGroup {
    /// DNS-1123 label, unique within the stack.
    pub group: String,
    pub replicas: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub cpu: Quantity,
    pub memory: Quantity,
    /// `nvidia.com/gpu` per worker.
    pub gpu: Option<u32>,
    /// The resolved image (the group's `image`, else `[ray] image`, else Ray's image for the
    /// version: `rayproject/ray:<version>-gpu` when `gpu` is set).
    pub image: String,
    pub pod: PodSettings,
}

/// Pod placement and identity, the same keys on `[ray.head]`, each `[[ray.workers]]` and
/// `[redis]`. Empty by default: nothing is rendered for an empty setting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSettings {
    /// `node_selector = { "karpenter.sh/nodepool" = "gpu" }`
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Affinity,
    /// `service_account`: the pod's ServiceAccount (which raystack does not create).
    pub service_account: Option<String>,
    /// `env = { NAME = "value" }`, in name order.
    pub env: BTreeMap<String, String>,
    /// `env_from_secret = { NAME = "secret/key" }`, in name order: (secret, key).
    pub env_from_secret: BTreeMap<String, (String, String)>,
    /// Pod labels and annotations (on the pod template, not on the owning object).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `priority_class`: the pod's PriorityClass name.
    pub priority_class: Option<String>,
    /// `image_pull_secrets = ["regcred"]`: Secrets holding registry credentials (for an
    /// `image` in a private registry).
    pub image_pull_secrets: Vec<String>,
}

/// One `tolerations` entry, as Kubernetes' `Toleration`.
#[derive(Debug, Clone, PartialEq)]
pub struct Toleration {
    pub key: Option<String>,
    /// `Equal` (the default) or `Exists`.
    pub operator: String,
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; `None` tolerates every effect.
    pub effect: Option<String>,
    /// Only with `NoExecute`.
    pub toleration_seconds: Option<i64>,
}

/// `affinity = { … }`: a typed subset of Kubernetes' node and pod affinity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Affinity {
    /// `required = [{ key, operator, values }]`: every expression must hold (one node selector
    /// term).
    pub required: Vec<NodeExpression>,
    /// `preferred = [{ weight, key, operator, values }]`: one weighted term each.
    pub preferred: Vec<(i32, NodeExpression)>,
    /// `zone = "us-west-2a"`: required `topology.kubernetes.io/zone In [zone]`. On `[redis]` it
    /// also fixes the zone of the Redis volume (the StorageClass binds where the pod lands).
    pub zone: Option<String>,
    /// `same_zone_as_redis = true` (head and workers): required pod affinity to the Redis pod
    /// with topology key `topology.kubernetes.io/zone`, so the pod runs in the zone of the
    /// Redis volume.
    pub same_zone_as_redis: bool,
}

impl Affinity {
    pub fn is_empty(&self) -> bool {
        self.required.is_empty()
            && self.preferred.is_empty()
            && self.zone.is_none()
            && !self.same_zone_as_redis
    }
}

/// One node selector requirement (`matchExpressions` entry).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeExpression {
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt` or `Lt`.
    pub operator: String,
    pub values: Vec<String>,
}

/// One `[[patches]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// `Kind` (every rendered object of that kind) or `Kind/name`.
    pub kind: String,
    pub name: Option<String>,
    pub patch_type: PatchType,
    /// The patch document, parsed from its YAML or JSON text.
    pub patch: serde_json::Value,
    /// Where the `patch` text starts in the stack file (1-based), for the errors found when
    /// the patch is applied to the rendered objects (`crate::render::check_patches`).
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386 JSON merge patch.
    Merge,
    /// RFC 6902 JSON patch.
    Json,
}

impl PatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchType::Merge => "merge",
            PatchType::Json => "json",
        }
    }
}

/// `[state]`
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    pub backend: StateBackend,
    /// Whether the stack file names its backend (`[state] backend = …`). A stack that does not
    /// gets the local file by default, which a CI runner throws away: `apply` and `destroy`
    /// refuse it under `CI=true` (`cli::ci`).
    pub backend_declared: bool,
    /// Local backend: the state file (default `.raystack/<stack>.state.json` next to the stack file).
    /// Also where `raystack state migrate --to local` puts it.
    pub path: PathBuf,
    /// Kubernetes backend: the namespace holding the state Secrets and the lock Lease (default
    /// `raystack-system`; never the stack's namespace, which `destroy` deletes). Created if missing.
    pub namespace: String,
    /// Kubernetes backend: kubeconfig context of the cluster holding state (default: the one
    /// raystack manages the stack with).
    pub context: Option<String>,
    /// Kubernetes backend: kubeconfig file of that cluster (default: the managed cluster's).
    pub kubeconfig: Option<PathBuf>,
}

/// Where a stack's state lives: the one enum that names a backend, in the stack file, the state
/// room (`crate::state::Backend::kind`), the engine and the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateBackend {
    /// A file next to the stack file (`[state] path`).
    Local,
    /// Secrets and a Lease in a namespace of a cluster (`[state] namespace`).
    Kubernetes,
}

impl StateBackend {
    /// Every backend, in the order `--to` lists them.
    pub const ALL: [StateBackend; 2] = [StateBackend::Local, StateBackend::Kubernetes];

    /// How the stack file and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            StateBackend::Local => "local",
            StateBackend::Kubernetes => "kubernetes",
        }
    }
}
