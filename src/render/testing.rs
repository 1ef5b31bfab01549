//! Hand-built stacks for the renderer's unit tests (independent of the stack parser).

use std::path::PathBuf;
use std::time::Duration;

use crate::stack::*;

fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}

/// The docs/design.md §1 example stack on provider `local`.
pub(crate) fn stack() -> Stack {
    Stack {
        source: PathBuf::from("stacks/test.toml"),
        meta: StackMeta {
            name: "ray-prod".into(),
            namespace: "ray-prod".into(),
            create_namespace: true,
            labels: Default::default(),
            annotations: Default::default(),
        },
        cluster: Cluster {
            context: None,
            provider: ProviderConfig::Local,
        },
        durability: Durability {
            max_data_loss: Duration::from_secs(2),
            snapshot_every: Duration::from_secs(60),
            snapshot_min_writes: 1000,
            volume: VolumeKind::Disk,
            protect_volume: true,
            backend: GcsBackend::Redis,
            embedded_storage: None,
        },
        redis: Redis {
            image: "redis:7.4.0".into(),
            storage: q("8Gi"),
            storage_class: None,
            cpu: q("500m"),
            memory: q("1Gi"),
            pod: PodSettings::default(),
            metrics: true,
            objects: Default::default(),
        },
        ray: Ray {
            version: "2.45.0".into(),
            image: None,
            kuberay: KubeRayVersion::new(1, 3, 0),
            external_storage_namespace: None,
            upgrade_strategy: None,
            head: RayHead {
                cpu: q("1"),
                memory: q("4Gi"),
                image: "rayproject/ray:2.45.0".into(),
                pod: PodSettings::default(),
            },
            workers: vec![WorkerGroup {
                group: "cpu".into(),
                replicas: 1,
                min_replicas: 1,
                max_replicas: 10,
                cpu: q("1"),
                memory: q("2Gi"),
                gpu: None,
                image: "rayproject/ray:2.45.0".into(),
                pod: PodSettings::default(),
            }],
        },
        state: StateConfig {
            backend: StateBackend::Local,
            backend_declared: true,
            path: PathBuf::from(".raystack/ray-prod.state.json"),
            namespace: crate::stack::DEFAULT_STATE_NAMESPACE.to_owned(),
            context: None,
            kubeconfig: None,
        },
        patches: Vec::new(),
        imported: Vec::new(),
        monitoring: Monitoring::default(),
        warnings: Vec::new(),
    }
}

pub(crate) fn aws() -> AwsConfig {
    AwsConfig {
        name: "prod-eks".into(),
        region: "us-west-2".into(),
        volume_type: AwsVolumeType::Gp3,
        iops: None,
        throughput: None,
        kms_key_id: None,
        auto_mode: false,
    }
}

pub(crate) fn gcp(disk: GcpDisk) -> GcpConfig {
    GcpConfig {
        project: "acme-ml".into(),
        location: "us-central1".into(),
        name: "prod-gke".into(),
        disk,
    }
}

pub(crate) fn azure(disk_sku: AzureDiskSku) -> AzureConfig {
    AzureConfig {
        subscription_id: "00000000-0000-0000-0000-000000000000".into(),
        resource_group: "ml".into(),
        name: "prod-aks".into(),
        location: "eastus".into(),
        disk_sku,
    }
}
