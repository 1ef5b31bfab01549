//! Stack file parsing and validation: TOML text → [`Stack`] with every default filled in, or
//! every problem in the file, each located (line, column, key) and with a fix.
//!
//! The walk goes over the span-carrying `toml::de::DeTable` rather than serde derive, because
//! serde stops at the first error and loses positions for semantic checks.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::units::KubeRayVersion;
use super::*;

mod patches;
mod pod;
mod reader;

use reader::{
    Cx, Table, check_label, did_you_mean, duplicate_key_message, is_dns_subdomain, type_name,
};

pub use pod::{DerivedName, derived_names};

/// A DNS label; the names derived from it have their own limits (`pod::derived_names`).
const MAX_STACK_NAME: usize = 63;

/// Reads and validates a stack file. Unreadable and non-UTF-8 files are reported as diagnostics.
pub fn load(path: &Path) -> Result<Stack, Diagnostics> {
    load_with_bytes(path).map(|(stack, _)| stack)
}

/// [`load`], also returning the exact bytes that were parsed (a saved plan is bound to their
/// hash).
pub fn load_with_bytes(path: &Path) -> Result<(Stack, Vec<u8>), Diagnostics> {
    let bytes = super::source::read_stack_file(path).map_err(|d| Diagnostics(vec![d]))?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse_str(path, text).map(|s| (s, bytes.clone())),
        Err(err) => {
            let valid = &bytes[..err.valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1;
            Err(Diagnostics(vec![Diagnostic {
                file: path.into(),
                line,
                column,
                key: String::new(),
                message: "the file is not UTF-8 text".into(),
                help: Some("stack files are TOML, which must be UTF-8 encoded".into()),
            }]))
        }
    }
}

/// Parses stack text as if read from `path` (which also places the default state file).
pub fn parse_str(path: &Path, text: &str) -> Result<Stack, Diagnostics> {
    let mut cx = Cx::new(path, text);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for err in syntax_errors {
            let span = err.span().unwrap_or(0..0);
            let mut message = err.message().trim().to_string();
            if message == "duplicate key" {
                message = duplicate_key_message(text, span.clone());
            }
            cx.push(
                span,
                "",
                format!("invalid TOML: {message}"),
                Some("fix the TOML syntax first; the stack was not checked further".into()),
            );
        }
        return Err(cx.finish());
    }
    let stack = build(&mut cx, &root);
    if cx.diags.is_empty() {
        let mut stack = stack.expect("a stack is built whenever no diagnostic was reported");
        cx.warnings.sort_by_key(|(offset, _)| *offset);
        stack.warnings = cx.warnings.into_iter().map(|(_, d)| d).collect();
        Ok(stack)
    } else {
        Err(cx.finish())
    }
}

const ROOT_KEYS: &[&str] = &[
    "stack",
    "cluster",
    "durability",
    "redis",
    "ray",
    "state",
    "patches",
    "monitoring",
    "import",
];
const STACK_KEYS: &[&str] = &[
    "name",
    "namespace",
    "create_namespace",
    "labels",
    "annotations",
];
const CLUSTER_KEYS: &[&str] = &[
    "provider",
    "context",
    "name",
    "region",
    "project",
    "location",
    "subscription_id",
    "resource_group",
    "aws",
    "gcp",
    "azure",
];
const PROVIDERS: &[&str] = &["local", "aws", "gcp", "azure"];
const DURABILITY_KEYS: &[&str] = &[
    "max_data_loss",
    "snapshot_every",
    "snapshot_min_writes",
    "volume",
    "protect_volume",
    "backend",
    "storage",
];
const REDIS_KEYS: &[&str] = &[
    "image",
    "storage",
    "storage_class",
    "cpu",
    "memory",
    "node_selector",
    "tolerations",
    "affinity",
    "service_account",
    "env",
    "env_from_secret",
    "labels",
    "annotations",
    "priority_class",
    "image_pull_secrets",
    "metrics",
    "name",
    "service_name",
    "selector",
    "pvc",
    "config_map",
    "password_secret",
];
const MONITORING_KEYS: &[&str] = &["prometheus_rules"];
const RAY_KEYS: &[&str] = &[
    "version",
    "image",
    "kuberay",
    "external_storage_namespace",
    "upgrade_strategy",
    "head",
    "workers",
];
const HEAD_KEYS: &[&str] = &[
    "cpu",
    "memory",
    "image",
    "node_selector",
    "tolerations",
    "affinity",
    "service_account",
    "env",
    "env_from_secret",
    "labels",
    "annotations",
    "priority_class",
    "image_pull_secrets",
];
const WORKER_KEYS: &[&str] = &[
    "group",
    "replicas",
    "min_replicas",
    "max_replicas",
    "cpu",
    "memory",
    "gpu",
    "image",
    "node_selector",
    "tolerations",
    "affinity",
    "service_account",
    "env",
    "env_from_secret",
    "labels",
    "annotations",
    "priority_class",
    "image_pull_secrets",
];
/// Where the kubernetes state backend keeps state unless `[state] namespace` says otherwise.
pub const DEFAULT_STATE_NAMESPACE: &str = "raystack-system";

/// `~/x` → `$HOME/x`; a relative path is relative to the stack file's directory.
fn expand_home(path: &str, base: &Path) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => base.join(path),
    }
}

const STATE_KEYS: &[&str] = &["backend", "path", "namespace", "context", "kubeconfig"];

/// Which `[cluster]` identity keys each provider needs.
fn provider_keys(provider: &str) -> &'static [&'static str] {
    match provider {
        "aws" => &["name", "region"],
        "gcp" => &["project", "location", "name"],
        "azure" => &["subscription_id", "resource_group", "name", "location"],
        _ => &[],
    }
}

/// The whole file: each section read by its own function, in file-schema order. Every
/// problem is reported through `cx`; a stack is returned only when there was none (sections
/// fill defaults for what they could not read, so reading goes on and finds every problem).
fn build(cx: &mut Cx<'_>, root: &Spanned<DeTable<'_>>) -> Option<Stack> {
    let top = Table::root(root);
    top.check_keys(cx, ROOT_KEYS);
    let meta = stack_section(cx, &top);
    let cluster = cluster_section(cx, &top);
    let (durability, backend_span) = durability_section(cx, &top);
    let redis = redis_section(cx, &top, durability.backend);
    let ray = ray_section(
        cx,
        &top,
        durability.backend,
        backend_span,
        &cluster.provider,
    );
    let state = state_section(cx, &top, &meta);
    let patches = patches::patches(cx, &top);
    let monitoring = monitoring_section(cx, &top, &redis, durability.backend);
    let imported = patches::imported(cx, &top);
    if !cx.diags.is_empty() {
        return None;
    }
    let stack = Stack {
        source: PathBuf::from(cx.file),
        meta,
        cluster,
        durability,
        redis,
        ray,
        state,
        patches,
        monitoring,
        imported,
        warnings: Vec::new(),
    };
    // Checks of the whole stack: the names derived from it. (Its patches are checked against
    // the rendered objects by `crate::render::check_patches`, a floor above.)
    let name_span = value_span(&top, &["stack", "name"]).unwrap_or(0..0);
    let group_spans = group_spans(&top);
    pod::check_derived_names(cx, &stack, name_span, &group_spans);
    cx.diags.is_empty().then_some(stack)
}

/// The span of the value at `path` (tables by key), if present.
fn value_span(top: &Table<'_, '_>, path: &[&str]) -> Option<Range<usize>> {
    let mut table = top.table?;
    let (last, parents) = path.split_last()?;
    for key in parents {
        match table.get(*key)?.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    table.get(*last).map(|v| v.span())
}

/// The span of each `[[ray.workers]]` item's `group` (or of the item, without one).
fn group_spans(top: &Table<'_, '_>) -> Vec<Range<usize>> {
    let Some(DeValue::Table(ray)) = top.get("ray").map(|v| v.get_ref()) else {
        return Vec::new();
    };
    let Some(DeValue::Array(items)) = ray.get("workers").map(|v| v.get_ref()) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::Table(t) => t.get("group").map_or(item.span(), |g| g.span()),
            _ => item.span(),
        })
        .collect()
}

/// `[monitoring]`: whether to render the persistence alerts as a `PrometheusRule`. The rules
/// read the Redis exporter's metrics, so they need a Redis backend with `metrics` on.
fn monitoring_section(
    cx: &mut Cx<'_>,
    top: &Table<'_, '_>,
    redis: &Redis,
    backend: GcsBackend,
) -> Monitoring {
    let mo = top.section(cx, "monitoring", MONITORING_KEYS);
    let prometheus_rules = mo.boolean(cx, "prometheus_rules", false);
    if prometheus_rules && let Some(v) = mo.get("prometheus_rules") {
        if backend == GcsBackend::Embedded {
            cx.error(
                v.span(),
                "monitoring.prometheus_rules",
                "the alerts watch the Redis exporter, but backend = \"embedded\" runs no Redis",
                "remove it, or set backend = \"redis\"",
            );
        } else if !redis.metrics {
            cx.error(
                v.span(),
                "monitoring.prometheus_rules",
                "the alerts read the Redis exporter's metrics, but `[redis] metrics = false` turns the exporter off",
                "remove `metrics = false` from [redis], or set prometheus_rules = false",
            );
        }
    }
    Monitoring { prometheus_rules }
}

/// Namespaces Kubernetes itself uses: a stack there would share them with everything else
/// (`default`) or with the control plane (`kube-*`), and `raystack destroy` deletes a stack's
/// namespace. Refused for stacks and for state.
pub const RESERVED_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Reports `ns` at `span` if it is one of [`RESERVED_NAMESPACES`].
fn refuse_reserved_namespace(cx: &mut Cx<'_>, key: &str, ns: &str, span: std::ops::Range<usize>) {
    if !RESERVED_NAMESPACES.contains(&ns) {
        return;
    }
    let what = match key {
        "stack.name" => format!(
            "names the stack's namespace (the namespace defaults to the name), and `{ns}` is reserved by Kubernetes"
        ),
        "state.namespace" => format!(
            "`{ns}` is reserved by Kubernetes: the state's Secrets and Lease would share it with everything else in the cluster"
        ),
        _ => format!(
            "`{ns}` is reserved by Kubernetes: objects there share it with everything else in the cluster, and `raystack destroy` deletes a stack's namespace"
        ),
    };
    let help = match key {
        "state.namespace" => format!("keep state in a namespace of its own, e.g. namespace = \"{DEFAULT_STATE_NAMESPACE}\" (the default)"),
        "stack.name" => "set `[stack] namespace` to a namespace of the stack's own, e.g. namespace = \"ray-prod\"".to_string(),
        _ => "give the stack a namespace of its own, e.g. namespace = \"ray-prod\"".to_string(),
    };
    cx.error(span, key, what, help);
}

/// `[stack]`: the name (required, a DNS label; its derived names are checked by
/// `pod::check_derived_names`), the labels and annotations of every object, the namespace
/// (default: the name) and whether to create it.
fn stack_section(cx: &mut Cx<'_>, top: &Table<'_, '_>) -> StackMeta {
    let st = top.section(cx, "stack", STACK_KEYS);
    let name = st.required_string(
        cx,
        "name",
        "ray-prod",
        ": it names the stack and prefixes every object",
    );
    if let Some((n, span)) = &name {
        check_label(cx, "stack.name", n, span.clone(), MAX_STACK_NAME);
    }
    let name_span = name.as_ref().map(|(_, span)| span.clone());
    let name = name.map(|(n, _)| n).unwrap_or_default();
    let namespace = match st.string(cx, "namespace", "ray-prod") {
        Some((ns, span)) => {
            if check_label(cx, "stack.namespace", &ns, span.clone(), 63) {
                refuse_reserved_namespace(cx, "stack.namespace", &ns, span);
            }
            ns
        }
        None => {
            // The namespace defaults to the name: a stack named `kube-system` would live there.
            if let Some(span) = name_span {
                refuse_reserved_namespace(cx, "stack.name", &name, span);
            }
            name.clone()
        }
    };
    StackMeta {
        name,
        namespace,
        create_namespace: st.boolean(cx, "create_namespace", true),
        labels: pod::labels(cx, &st, "labels"),
        annotations: pod::annotations(cx, &st, "annotations"),
    }
}

/// `[cluster]`: the context, the provider, the provider's identity keys and its
/// `[cluster.<provider>]` options; keys of another provider are errors.
fn cluster_section(cx: &mut Cx<'_>, top: &Table<'_, '_>) -> Cluster {
    let cl = top.section(cx, "cluster", CLUSTER_KEYS);
    let context = cl.string(cx, "context", "prod-eks").map(|(s, _)| s);
    let provider_choices: Vec<(&str, &str)> = PROVIDERS.iter().map(|p| (*p, *p)).collect();
    let (provider, _) = cl.checked_choice(cx, "provider", &provider_choices);
    // An invalid provider is already reported: judging the identity keys and the
    // `[cluster.<provider>]` options against a guessed one would only add misleading errors.
    let Some(provider) = provider else {
        return Cluster {
            context,
            provider: ProviderConfig::Local,
        };
    };
    for key in [
        "name",
        "region",
        "project",
        "location",
        "subscription_id",
        "resource_group",
    ] {
        if let Some(v) = cl.get(key)
            && !provider_keys(provider).contains(&key)
        {
            let owners: Vec<&str> = PROVIDERS
                .iter()
                .copied()
                .filter(|p| provider_keys(p).contains(&key))
                .collect();
            cx.error(
                v.span(),
                &cl.key(key),
                format!(
                    "is a field of provider {}, but provider is \"{provider}\"",
                    owners.join(" and ")
                ),
                format!("remove it, or set provider = \"{}\"", owners[0]),
            );
        }
    }
    for p in ["aws", "gcp", "azure"] {
        if p != provider
            && let Some(v) = cl.get(p)
        {
            cx.error(
                v.span(),
                &cl.key(p),
                format!("[cluster.{p}] options are given, but provider is \"{provider}\""),
                format!("remove [cluster.{p}], or set provider = \"{p}\""),
            );
        }
    }
    let why = format!(" for provider \"{provider}\"");
    let provider = match provider {
        "aws" => ProviderConfig::Aws(aws_options(cx, &cl, &why)),
        "gcp" => ProviderConfig::Gcp(gcp_options(cx, &cl, &why)),
        "azure" => ProviderConfig::Azure(azure_options(cx, &cl, &why)),
        _ => ProviderConfig::Local,
    };
    Cluster { context, provider }
}

/// `provider = "aws"`: the EKS cluster and `[cluster.aws]` (volume type, IOPS and throughput
/// within what the volume type allows, KMS key, EKS Auto Mode).
fn aws_options(cx: &mut Cx<'_>, cl: &Table<'_, '_>, why: &str) -> AwsConfig {
    let name = cl.required(
        cx,
        "name",
        "prod-eks",
        &format!("{why} (the EKS cluster name)"),
    );
    let region = cl.required(cx, "region", "us-west-2", why);
    let o = cl.section(
        cx,
        "aws",
        &[
            "volume_type",
            "iops",
            "throughput",
            "kms_key_id",
            "auto_mode",
        ],
    );
    let (volume_type, _) = o.choice(
        cx,
        "volume_type",
        &[("gp3", AwsVolumeType::Gp3), ("io2", AwsVolumeType::Io2)],
    );
    let iops = o.integer(cx, "iops", 100..=256_000);
    let throughput = o.integer(cx, "throughput", 125..=2_000);
    if let Some((n, span)) = &iops {
        let (lo, hi) = if volume_type == AwsVolumeType::Gp3 {
            (3000, 80_000)
        } else {
            (100, 256_000)
        };
        if !(lo..=hi).contains(n) {
            cx.error(
                span.clone(),
                "cluster.aws.iops",
                format!(
                    "{n} IOPS is outside what {} volumes allow ({lo}–{hi})",
                    volume_type.as_str()
                ),
                format!("use a value from {lo} to {hi}"),
            );
        }
    }
    if let Some((_, span)) = &throughput
        && volume_type == AwsVolumeType::Io2
    {
        cx.error(
            span.clone(),
            "cluster.aws.throughput",
            "throughput is only configurable on gp3 volumes",
            "remove it, or set volume_type = \"gp3\"",
        );
    }
    if volume_type == AwsVolumeType::Io2 && iops.is_none() && !o.is_present("iops") {
        cx.error(
            o.span.clone(),
            "cluster.aws.iops",
            "is required for io2 volumes",
            "add `iops = 3000` (or more) to [cluster.aws]",
        );
    }
    let kms_key_id = o
        .string(cx, "kms_key_id", "arn:aws:kms:us-west-2:111122223333:key/…")
        .map(|(s, _)| s);
    let auto_mode = o.boolean(cx, "auto_mode", false);
    AwsConfig {
        name,
        region,
        volume_type,
        iops: iops.map(|(n, _)| n as u32),
        throughput: throughput.map(|(n, _)| n as u32),
        kms_key_id,
        auto_mode,
    }
}

/// `provider = "gcp"`: the GKE cluster and `[cluster.gcp] disk`.
fn gcp_options(cx: &mut Cx<'_>, cl: &Table<'_, '_>, why: &str) -> GcpConfig {
    let project = cl.required(cx, "project", "acme-ml", why);
    let location = cl.required(cx, "location", "us-central1", why);
    let name = cl.required(
        cx,
        "name",
        "prod-gke",
        &format!("{why} (the GKE cluster name)"),
    );
    let o = cl.section(cx, "gcp", &["disk"]);
    let (disk, _) = o.choice(
        cx,
        "disk",
        &[
            ("standard-rwo", GcpDisk::StandardRwo),
            ("premium-rwo", GcpDisk::PremiumRwo),
            ("regional", GcpDisk::Regional),
        ],
    );
    GcpConfig {
        project,
        location,
        name,
        disk,
    }
}

/// `provider = "azure"`: the AKS cluster and `[cluster.azure] disk_sku`.
fn azure_options(cx: &mut Cx<'_>, cl: &Table<'_, '_>, why: &str) -> AzureConfig {
    let subscription_id = cl.required(
        cx,
        "subscription_id",
        "00000000-0000-0000-0000-000000000000",
        why,
    );
    let resource_group = cl.required(cx, "resource_group", "ml", why);
    let name = cl.required(
        cx,
        "name",
        "prod-aks",
        &format!("{why} (the AKS cluster name)"),
    );
    let location = cl.required(cx, "location", "eastus", why);
    let o = cl.section(cx, "azure", &["disk_sku"]);
    let skus: Vec<(&str, AzureDiskSku)> = AzureDiskSku::ALL
        .into_iter()
        .map(|s| (s.as_str(), s))
        .collect();
    let (disk_sku, _) = o.choice(cx, "disk_sku", &skus);
    AzureConfig {
        subscription_id,
        resource_group,
        name,
        location,
        disk_sku,
    }
}

/// `[durability]`: the RPO, the snapshot cadence, the volume kind and its protection; an RPO
/// that needs the append-only file is refused on a volume that cannot append.
/// Returns the section and the span of `backend` (for errors that other sections find).
fn durability_section(cx: &mut Cx<'_>, top: &Table<'_, '_>) -> (Durability, Range<usize>) {
    let du = top.section(cx, "durability", DURABILITY_KEYS);
    let (max_data_loss, rpo_span) = du.duration(cx, "max_data_loss", "2s");
    let (snapshot_every, snap_span) = du.duration(cx, "snapshot_every", "60s");
    if snapshot_every.is_zero() {
        cx.error(
            snap_span,
            "durability.snapshot_every",
            "must be at least \"1s\"",
            "e.g. snapshot_every = \"60s\"",
        );
    }
    let snapshot_min_writes = du
        .integer(cx, "snapshot_min_writes", 1..=1_000_000_000)
        .map_or(1000, |(n, _)| n);
    let (volume, _) = du.choice(
        cx,
        "volume",
        &[
            ("disk", VolumeKind::Disk),
            ("object-fuse", VolumeKind::ObjectFuse),
        ],
    );
    let protect_volume = du.boolean(cx, "protect_volume", true);
    let (backend, backend_span) = du.choice(
        cx,
        "backend",
        &[
            ("redis", GcsBackend::Redis),
            ("embedded", GcsBackend::Embedded),
        ],
    );
    let embedded_storage = match backend {
        GcsBackend::Embedded => {
            let (q, span) = du.quantity(cx, "storage", "1Gi", "1Gi");
            if let Some(span) = span
                && (q.has_fraction() || q.units() < (1 << 20))
            {
                cx.error(
                    span,
                    "durability.storage",
                    format!("\"{q}\" is too small for the GCS volume"),
                    "use a byte size of at least \"1Gi\" (KubeRay's default)",
                );
            }
            Some(q)
        }
        GcsBackend::Redis => {
            if let Some(v) = du.get("storage") {
                cx.error(
                    v.span(),
                    "durability.storage",
                    "sizes the embedded backend's GCS volume, but backend = \"redis\"",
                    "size the Redis volume with `[redis] storage`, or set backend = \"embedded\"",
                );
            }
            None
        }
    };
    if backend == GcsBackend::Embedded {
        // These settings derive redis.conf; the embedded store has none of them.
        for key in ["max_data_loss", "snapshot_every", "snapshot_min_writes"] {
            if let Some(v) = du.get(key) {
                cx.error(
                    v.span(),
                    &du.key(key),
                    "configures Redis persistence, but backend = \"embedded\" runs no Redis",
                    "remove it (the embedded RocksDB store has no such setting; see the durability summary in `raystack plan` for what it promises), or set backend = \"redis\"",
                );
            }
        }
        if volume == VolumeKind::ObjectFuse {
            cx.error(
                du.get("volume").map_or(backend_span.clone(), |v| v.span()),
                "durability.volume",
                "backend = \"embedded\" keeps RocksDB files on a block volume; object storage (FUSE) cannot hold them",
                "remove `volume`, or set backend = \"redis\"",
            );
        }
    }
    if volume == VolumeKind::Disk
        && backend == GcsBackend::Redis
        && !max_data_loss.is_zero()
        && max_data_loss < EVERYSEC_WORST_CASE
    {
        cx.error(
            rpo_span.clone(),
            "durability.max_data_loss",
            format!(
                "max_data_loss = \"{}\" cannot be promised: appendfsync everysec can lose about 2 s of acknowledged writes (Redis postpones writing the append-only file for up to 2 s while a background fsync is still running, aof.c), and the only stricter policy fsyncs every write",
                units::format_duration(max_data_loss)
            ),
            "set max_data_loss = \"2s\" (appendfsync everysec, loses at most ~2 s) or \"0s\" (appendfsync always, loses no acknowledged write, one fsync per write)",
        );
    }
    if volume == VolumeKind::ObjectFuse
        && backend == GcsBackend::Redis
        && max_data_loss < Duration::from_secs(60)
    {
        cx.error(
            rpo_span,
            "durability.max_data_loss",
            format!(
                "max_data_loss = \"{}\" needs Redis's append-only file, but volume = \"object-fuse\" cannot hold one (object storage cannot append)",
                units::format_duration(max_data_loss)
            ),
            "set max_data_loss to \"1m\" or more (RDB snapshots only), or use volume = \"disk\" for a block-storage volume",
        );
    }
    (
        Durability {
            max_data_loss,
            snapshot_every,
            snapshot_min_writes,
            volume,
            protect_volume,
            backend,
            embedded_storage,
        },
        backend_span,
    )
}

/// `[redis]`: image, volume size (whole bytes, at least 1 MiB) and class, resources, and the
/// pod settings (`pod::pod_settings`).
/// With `backend = "embedded"` there is no Redis: every key of the section is an error.
fn redis_section(cx: &mut Cx<'_>, top: &Table<'_, '_>, backend: GcsBackend) -> Redis {
    let re = top.section(cx, "redis", REDIS_KEYS);
    if backend == GcsBackend::Embedded
        && let Some(table) = re.table
    {
        for (k, _) in table.iter() {
            let name: &str = k.get_ref();
            if !REDIS_KEYS.contains(&name) {
                continue;
            }
            cx.error(
                k.span(),
                &re.key(name),
                "configures the Redis that raystack deploys, but backend = \"embedded\" deploys no Redis",
                match name {
                    "storage" => "remove it; size the GCS volume with `[durability] storage`, or set backend = \"redis\"",
                    _ => "remove it (or the whole [redis] section), or set backend = \"redis\"",
                },
            );
        }
    }
    let image = re
        .string(cx, "image", "redis:7.4.0")
        .map_or_else(|| "redis:7.4.0".to_string(), |(s, _)| s);
    let (storage, storage_span) = re.quantity(cx, "storage", "8Gi", "8Gi");
    if let Some(span) = storage_span {
        if storage.has_fraction() {
            cx.error(
                span,
                "redis.storage",
                format!("\"{storage}\" is a fraction of a byte"),
                "use a byte size such as \"8Gi\"",
            );
        } else if storage.units() < (1 << 20) {
            cx.error(
                span,
                "redis.storage",
                format!("\"{storage}\" is too small for a Redis volume"),
                "use at least \"1Gi\"; the volume holds the RDB snapshot and the append-only file",
            );
        }
    }
    let storage_class = re
        .string(cx, "storage_class", "fast-ssd")
        .map(|(sc, span)| {
            if !is_dns_subdomain(&sc) {
                cx.error(
                    span,
                    "redis.storage_class",
                    format!("\"{sc}\" is not a valid StorageClass name"),
                    "StorageClass names are DNS-1123 subdomains, e.g. \"fast-ssd\"",
                );
            }
            sc
        });
    Redis {
        image,
        storage,
        storage_class,
        cpu: re.quantity(cx, "cpu", "500m", "500m").0,
        memory: re.quantity(cx, "memory", "1Gi", "1Gi").0,
        pod: pod::pod_settings(cx, &re, pod::Role::Redis),
        metrics: re.boolean(cx, "metrics", true),
        objects: redis_objects(cx, &re),
    }
}

/// `[redis] name/service_name/selector/pvc/config_map/password_secret`: existing objects to adopt
/// (docs/design.md §1, "Adopting an existing Redis").
fn redis_objects(cx: &mut Cx<'_>, re: &Table<'_, '_>) -> RedisObjects {
    let name = re.string(cx, "name", "redis").and_then(|(v, span)| {
        // A Service name is a DNS-1035 label; the StatefulSet's pods add `-0` and the
        // controller-revision-hash label adds 11 characters to it (63 at most).
        let ok = check_label(cx, "redis.name", &v, span.clone(), 52);
        (ok && v.starts_with(|c: char| c.is_ascii_lowercase()))
            .then_some(v.clone())
            .or_else(|| {
                if ok {
                    cx.error(
                        span,
                        "redis.name",
                        format!("\"{v}\" starts with a digit"),
                        "a Service name starts with a letter, e.g. \"redis\"",
                    );
                }
                None
            })
    });
    let service_name = re
        .string(cx, "service_name", "redis")
        .and_then(|(v, span)| {
            (v.is_empty() || check_label(cx, "redis.service_name", &v, span, 63)).then_some(v)
        });
    let selector = re.is_present("selector").then(|| {
        let span = re.span_of("selector");
        let m = pod::selector(cx, re, "selector");
        if m.is_empty() {
            cx.error(
                span,
                "redis.selector",
                "selects nothing",
                "name the labels of the existing Redis pod, e.g. selector = { app = \"redis\" }",
            );
        }
        m
    });
    let object = |cx: &mut Cx<'_>, key: &str, example: &str| {
        re.string(cx, key, example).and_then(|(v, span)| {
            if is_dns_subdomain(&v) && !v.is_empty() {
                return Some(v);
            }
            cx.error(
                span,
                &format!("redis.{key}"),
                format!("\"{v}\" is not a valid object name"),
                format!("names are DNS-1123 subdomains (lowercase letters, digits, '-' and '.'), e.g. \"{example}\""),
            );
            None
        })
    };
    RedisObjects {
        name,
        service_name,
        selector,
        pvc: object(cx, "pvc", "redis-data"),
        config_map: object(cx, "config_map", "redis-config"),
        password_secret: object(cx, "password_secret", "redis-password-secret"),
    }
}

/// `[ray]`: the Ray version and image, the KubeRay version (1.0 or later), the storage
/// namespace, `[ray.head]` (its image and pod settings) and the worker groups; images whose
/// tag names another Ray version are warned about.
/// The first Ray release (major, minor) whose GCS server has the RocksDB store client that
/// KubeRay's `gcsFaultToleranceOptions.backend: rocksdb` turns on: `gcs_server` of the 2.56.0
/// wheel has no RocksDB code, 2.57.0's has `RocksDbStoreClient` (docs/design.md, "The embedded
/// backend needs Ray 2.57").
pub const EMBEDDED_MIN_RAY: (u64, u64) = (2, 57);

/// MAJOR.MINOR of a Ray version string, or `None` when it is not one (reported elsewhere).
fn ray_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn ray_section(
    cx: &mut Cx<'_>,
    top: &Table<'_, '_>,
    backend: GcsBackend,
    backend_span: Range<usize>,
    provider: &ProviderConfig,
) -> Ray {
    let ra = top.section(cx, "ray", RAY_KEYS);
    let (version, version_span) = match ra.string(cx, "version", "2.45.0") {
        Some((v, span)) => {
            let ok = v.split('.').count() == 3
                && v.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                cx.error(
                    span.clone(),
                    "ray.version",
                    format!("\"{v}\" is not a Ray version"),
                    "write MAJOR.MINOR.PATCH, e.g. version = \"2.45.0\"",
                );
            }
            (v, Some(span))
        }
        None => ("2.45.0".to_string(), None),
    };
    if backend == GcsBackend::Embedded
        && let Some(have) = ray_minor(&version)
        && have < EMBEDDED_MIN_RAY
    {
        let (need_major, need_minor) = EMBEDDED_MIN_RAY;
        let given = if version_span.is_some() {
            format!("the stack says version = \"{version}\"")
        } else {
            format!("the stack sets no `[ray] version` (default \"{version}\")")
        };
        cx.error(
            version_span.unwrap_or_else(|| backend_span.clone()),
            "ray.version",
            format!(
                "backend = \"embedded\" needs Ray {need_major}.{need_minor}.0 or later, the first release whose GCS has the RocksDB store (`RAY_gcs_storage=rocksdb`), but {given}"
            ),
            format!(
                "set `[ray] version = \"{need_major}.{need_minor}.0\"` or later (and an image of it), or use backend = \"redis\""
            ),
        );
    }
    let image = pod::image(cx, &ra);
    if let Some((i, span)) = &image {
        pod::warn_version(cx, "ray.image", i, span.clone(), &version);
    }
    let kuberay = match ra.string(cx, "kuberay", "1.3.0") {
        Some((v, span)) => match KubeRayVersion::parse(&v) {
            Ok(k) if k < KubeRayVersion::new(1, 0, 0) => {
                cx.error(span, "ray.kuberay", format!("KubeRay {k} is not supported"), "raystack supports KubeRay 1.0 and later; upgrade the operator and set kuberay = \"1.3.0\"");
                k
            }
            Ok(k) => k,
            Err(msg) => {
                cx.error(span, "ray.kuberay", msg, "set the KubeRay operator version installed in the cluster, e.g. kuberay = \"1.3.0\"");
                KubeRayVersion::new(1, 3, 0)
            }
        },
        None => KubeRayVersion::new(1, 3, 0),
    };
    let external_storage_namespace = ra
        .string(cx, "external_storage_namespace", "ray-prod")
        .map(|(s, span)| {
            if backend == GcsBackend::Embedded {
                cx.error(
                    span,
                    "ray.external_storage_namespace",
                    "names the GCS's namespace in Redis, but backend = \"embedded\" keeps the GCS in its own RocksDB store (KubeRay rejects the field there)",
                    "remove it, or set backend = \"redis\"",
                );
            }
            s
        });
    if backend == GcsBackend::Embedded && !kuberay.has_embedded_gcs() {
        cx.error(
            backend_span,
            "durability.backend",
            format!(
                "backend = \"embedded\" needs KubeRay 1.7.0 or later (gcsFaultToleranceOptions.backend: rocksdb), but the stack says kuberay = \"{kuberay}\""
            ),
            "upgrade the operator and set `[ray] kuberay = \"1.7.0\"`, or use backend = \"redis\"",
        );
    }
    let upgrade_strategy = if ra.is_present("upgrade_strategy") {
        let (strategy, span) = ra.choice(
            cx,
            "upgrade_strategy",
            &[
                ("recreate", UpgradeStrategy::Recreate),
                ("none", UpgradeStrategy::None),
            ],
        );
        if !kuberay.has_upgrade_strategy() {
            cx.error(
                span,
                "ray.upgrade_strategy",
                format!("spec.upgradeStrategy needs KubeRay 1.6.0 or later, but the stack says kuberay = \"{kuberay}\"; older operators never restart running pods"),
                "remove it (and roll changes out by deleting the pods), or upgrade the operator and set `[ray] kuberay`",
            );
        }
        kuberay.has_upgrade_strategy().then_some(strategy)
    } else {
        // The default where the operator supports it: the running cluster follows the stack.
        kuberay
            .has_upgrade_strategy()
            .then_some(UpgradeStrategy::Recreate)
    };
    let hd = ra.section(cx, "head", HEAD_KEYS);
    let head_image = match pod::image(cx, &hd) {
        Some((i, span)) => {
            pod::warn_version(cx, "ray.head.image", &i, span, &version);
            i
        }
        None => image.as_ref().map_or_else(
            || pod::default_ray_image(&version, false),
            |(i, _)| i.clone(),
        ),
    };
    let head = RayHead {
        cpu: hd.quantity(cx, "cpu", "1", "1").0,
        memory: hd.quantity(cx, "memory", "4Gi", "4Gi").0,
        image: head_image,
        pod: pod::pod_settings(cx, &hd, pod::Role::Head),
    };
    if backend == GcsBackend::Embedded && head.pod.affinity.same_zone_as_redis {
        cx.error(
            value_span(&hd, &["affinity"]).unwrap_or(hd.span.clone()),
            "ray.head.affinity.same_zone_as_redis",
            "follows the Redis volume, but backend = \"embedded\" deploys no Redis",
            "remove it; KubeRay's GCS volume follows the head pod by itself",
        );
    }
    let workers = workers(cx, &ra, &version, image.as_ref(), provider, backend);
    Ray {
        version,
        image: image.map(|(i, _)| i),
        kuberay,
        external_storage_namespace,
        upgrade_strategy,
        head,
        workers,
    }
}

/// `[state]`: the backend; for `local` the state file's path, by default
/// `.raystack/<stack name>.state.json` next to the stack file; for `kubernetes` the namespace
/// (never the stack's own), context and kubeconfig of the cluster holding it.
fn state_section(cx: &mut Cx<'_>, top: &Table<'_, '_>, meta: &StackMeta) -> StateConfig {
    let sa = top.section(cx, "state", STATE_KEYS);
    let backend_declared = sa.is_present("backend");
    let (backend, _) = sa.choice(
        cx,
        "backend",
        &[
            ("local", StateBackend::Local),
            ("kubernetes", StateBackend::Kubernetes),
        ],
    );
    let base = cx.file.parent().map(Path::to_path_buf).unwrap_or_default();
    let path = match sa.string(cx, "path", ".raystack/ray-prod.state.json") {
        Some((p, _)) => base.join(p),
        None => base
            .join(".raystack")
            .join(format!("{}.state.json", meta.name)),
    };
    // The state namespace must outlive the stack: `destroy` deletes the stack's namespace, and
    // the state (and its lock) must survive that to record the destruction.
    let namespace = match sa.string(cx, "namespace", DEFAULT_STATE_NAMESPACE) {
        Some((ns, span)) => {
            let valid = check_label(cx, "state.namespace", &ns, span.clone(), 63);
            let reserved = RESERVED_NAMESPACES.contains(&ns.as_str());
            if valid && reserved {
                refuse_reserved_namespace(cx, "state.namespace", &ns, span.clone());
            } else if valid && ns == meta.namespace {
                cx.error(
                    span,
                    "state.namespace",
                    format!(
                        "is the stack's own namespace `{ns}`, which `raystack destroy` deletes \
                         (and the state with it)"
                    ),
                    format!(
                        "keep state in a namespace of its own, e.g. namespace = \"{DEFAULT_STATE_NAMESPACE}\" (the default)"
                    ),
                );
            }
            ns
        }
        None => DEFAULT_STATE_NAMESPACE.to_owned(),
    };
    let context = sa.string(cx, "context", "prod-admin").map(|(c, _)| c);
    let kubeconfig = sa
        .string(cx, "kubeconfig", "~/.kube/state-cluster")
        .map(|(k, _)| expand_home(&k, &base));
    StateConfig {
        backend,
        backend_declared,
        path,
        namespace,
        context,
        kubeconfig,
    }
}

/// `[[ray.workers]]`: each group's name (unique), replica bounds, resources, GPUs, image (Ray's
/// GPU image by default for a GPU group) and pod settings; a GPU group on a CPU-looking image,
/// or without the toleration its cloud's GPU pools usually need, is warned about.
fn workers(
    cx: &mut Cx<'_>,
    ray: &Table<'_, '_>,
    version: &str,
    ray_image: Option<&(String, Range<usize>)>,
    provider: &ProviderConfig,
    backend: GcsBackend,
) -> Vec<WorkerGroup> {
    let mut groups: Vec<WorkerGroup> = Vec::new();
    for w in ray.tables(
        cx,
        "workers",
        "declare each worker group as a [[ray.workers]] section",
    ) {
        let path = w.path.clone();
        w.check_keys(cx, WORKER_KEYS);
        let group = match w.required_string(cx, "group", "cpu", ": it names the worker group") {
            Some((g, span)) => {
                if check_label(cx, &format!("{path}.group"), &g, span.clone(), 63)
                    && groups.iter().any(|o| o.group == g)
                {
                    cx.error(
                        span,
                        &format!("{path}.group"),
                        format!("worker group \"{g}\" is declared twice"),
                        "give each [[ray.workers]] group a unique name",
                    );
                }
                g
            }
            None => String::new(),
        };
        let min = w.integer(cx, "min_replicas", 0..=10_000);
        let replicas = w.integer(cx, "replicas", 0..=10_000);
        let max = w.integer(cx, "max_replicas", 0..=10_000);
        let min_n = min
            .as_ref()
            .map_or(replicas.as_ref().map_or(1, |r| r.0.min(1)), |m| m.0);
        let replicas_n = replicas.as_ref().map_or(min_n.max(1), |r| r.0);
        let max_n = max.as_ref().map_or(replicas_n.max(min_n), |m| m.0);
        if let (Some((lo, lo_span)), Some((hi, _))) = (&min, &max)
            && lo > hi
        {
            cx.error(
                lo_span.clone(),
                &format!("{path}.min_replicas"),
                format!("min_replicas ({lo}) is greater than max_replicas ({hi})"),
                "make min_replicas <= replicas <= max_replicas",
            );
        }
        if let Some((r, span)) = &replicas
            && (*r < min_n || *r > max_n)
            && min_n <= max_n
        {
            cx.error(
                span.clone(),
                &format!("{path}.replicas"),
                format!("replicas ({r}) is outside min_replicas..max_replicas ({min_n}..{max_n})"),
                "make min_replicas <= replicas <= max_replicas",
            );
        }
        if let Some((r, span)) = &replicas
            && min_n != max_n
            && min_n <= max_n
        {
            cx.warn(
                span.clone(),
                &format!("{path}.replicas"),
                format!(
                    "replicas = {r} has no effect: the group autoscales (min_replicas {min_n} != max_replicas {max_n}), so KubeRay's autoscaler owns its size and raystack does not render `replicas`; editing it changes nothing in the cluster"
                ),
                "remove `replicas`; to change the size, change min_replicas (the floor the autoscaler keeps, and the size the group starts at) or max_replicas, or make them equal for a fixed size",
            );
        }
        let cpu = w.quantity(cx, "cpu", "1", "1").0;
        let memory = w.quantity(cx, "memory", "2Gi", "2Gi").0;
        let gpu_value = w.integer(cx, "gpu", 0..=64);
        let gpu_span = gpu_value.as_ref().map(|(_, s)| s.clone());
        let gpu = gpu_value.map(|(n, _)| n as u32).filter(|n| *n > 0);
        // The group's image, else [ray] image, else Ray's image for the version (the GPU
        // build for a group with GPUs). A GPU group on a CPU-looking image is warned about
        // where that image is named.
        let image = match pod::image(cx, &w) {
            Some((i, span)) => {
                pod::warn_version(cx, &format!("{path}.image"), &i, span.clone(), version);
                if gpu.is_some() {
                    pod::warn_gpu_image(cx, &format!("{path}.image"), &i, span, version);
                }
                i
            }
            None => match ray_image {
                Some((i, _)) => {
                    if gpu.is_some() {
                        pod::warn_gpu_image(
                            cx,
                            &format!("{path}.gpu"),
                            i,
                            gpu_span.clone().unwrap_or(w.span.clone()),
                            version,
                        );
                    }
                    i.clone()
                }
                None => pod::default_ray_image(version, gpu.is_some()),
            },
        };
        let pod_settings = pod::pod_settings(cx, &w, pod::Role::Worker);
        if backend == GcsBackend::Embedded && pod_settings.affinity.same_zone_as_redis {
            cx.error(
                w.span_of("affinity"),
                &format!("{path}.affinity.same_zone_as_redis"),
                "follows the Redis volume, but backend = \"embedded\" deploys no Redis",
                "remove it",
            );
        }
        let g = WorkerGroup {
            group,
            replicas: replicas_n as u32,
            min_replicas: min_n as u32,
            max_replicas: max_n as u32,
            cpu,
            memory,
            gpu,
            image,
            pod: pod_settings,
        };
        if g.gpu.is_some() {
            pod::warn_gpu_placement(
                cx,
                gpu_span.unwrap_or(w.span.clone()),
                &format!("{path}.gpu"),
                provider,
                &g,
            );
        }
        groups.push(g);
    }
    groups
}
