//! Storage per provider (docs/design.md §3): which StorageClass the Redis PVC uses, and the class
//! raystack creates when the provider has no suitable built-in one.

use serde_json::{Map, Value, json};

use super::meta::labels;
use crate::stack::{AwsConfig, AzureDiskSku, GcpDisk, ProviderConfig, Stack};

/// The `storageClassName` of the Redis PVC: `[redis].storage_class` when set, else the
/// provider's choice. `None` (provider `local`, no override) omits the field, so the cluster's
/// default class is used.
pub fn storage_class_name(stack: &Stack) -> Option<String> {
    if let Some(class) = &stack.redis.storage_class {
        return Some(class.clone());
    }
    let n = &stack.meta.name;
    match &stack.cluster.provider {
        ProviderConfig::Local => None,
        ProviderConfig::Aws(aws) => Some(format!("{n}-{}", aws.volume_type.as_str())),
        ProviderConfig::Gcp(gcp) => Some(match gcp.disk {
            GcpDisk::StandardRwo => "standard-rwo".into(),
            GcpDisk::PremiumRwo => "premium-rwo".into(),
            GcpDisk::Regional => format!("{n}-regional-pd"),
        }),
        ProviderConfig::Azure(az) => Some(match az.disk_sku {
            AzureDiskSku::StandardSsdLrs => "managed-csi".into(),
            AzureDiskSku::PremiumLrs => "managed-csi-premium".into(),
            // AKS's built-in classes are LRS unless the cluster itself decides otherwise, so a
            // zone-redundant SKU gets its own class that names the SKU explicitly.
            sku => format!(
                "{n}-{}",
                sku.as_str().to_ascii_lowercase().replace('_', "-")
            ),
        }),
    }
}

/// The StorageClass raystack owns for this stack, if any. Not rendered when the stack
/// overrides `storage_class` (the PVC would not use it).
pub fn storage_class(stack: &Stack) -> Option<Value> {
    if stack.redis.storage_class.is_some() {
        return None;
    }
    let name = storage_class_name(stack)?;
    let (provisioner, parameters) = match &stack.cluster.provider {
        ProviderConfig::Aws(aws) => (aws_provisioner(aws), aws_parameters(aws)),
        ProviderConfig::Gcp(gcp) if gcp.disk == GcpDisk::Regional => {
            let mut p = Map::new();
            p.insert("type".into(), json!("pd-balanced"));
            p.insert("replication-type".into(), json!("regional-pd"));
            ("pd.csi.storage.gke.io", p)
        }
        ProviderConfig::Azure(az) if az.disk_sku.is_zrs() => {
            let mut p = Map::new();
            p.insert("skuName".into(), json!(az.disk_sku.as_str()));
            ("disk.csi.azure.com", p)
        }
        _ => return None,
    };
    let mut class = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": name,
            "labels": labels(stack, "redis", "storage"),
        },
        "provisioner": provisioner,
        "parameters": Value::Object(parameters),
        // Retain: deleting the PVC (or the stack) must never delete the disk with the GCS.
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": true,
        // Provision the disk in the zone where the Redis pod is scheduled.
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    if let Some(a) = super::meta::stack_annotations(stack) {
        class["metadata"]["annotations"] = a;
    }
    Some(class)
}

/// The EBS CSI add-on's provisioner, or EKS Auto Mode's built-in one when the stack says the
/// cluster uses Auto Mode block storage (preflight checks that it does).
pub fn aws_provisioner(aws: &AwsConfig) -> &'static str {
    if aws.auto_mode {
        "ebs.csi.eks.amazonaws.com"
    } else {
        "ebs.csi.aws.com"
    }
}

fn aws_parameters(aws: &AwsConfig) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("type".into(), json!(aws.volume_type.as_str()));
    p.insert("encrypted".into(), json!("true"));
    if let Some(iops) = aws.iops {
        p.insert("iops".into(), json!(iops.to_string()));
    }
    if let Some(throughput) = aws.throughput {
        p.insert("throughput".into(), json!(throughput.to_string()));
    }
    if let Some(kms) = &aws.kms_key_id {
        p.insert("kmsKeyId".into(), json!(kms));
    }
    p
}
