//! Pure choice of the AKS StorageClass for `[cluster.azure] disk_sku`: AKS's built-in
//! `managed-csi` / `managed-csi-premium`, or a class raystack must create for zone-redundant SKUs.
//! The main crate renders the object.

/// The Azure Disk CSI driver's provisioner.
pub const AKS_DISK_PROVISIONER: &str = "disk.csi.azure.com";

/// The StorageClass a stack's Redis volume uses on AKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AksStorage {
    pub class_name: String,
    /// True when AKS has no built-in class for the SKU and raystack must create one.
    pub created_by_raystack: bool,
    pub provisioner: &'static str,
    /// The `skuName` StorageClass parameter.
    pub sku_name: String,
}

/// Maps a disk SKU to a StorageClass: StandardSSD_LRS → `managed-csi`, Premium_LRS →
/// `managed-csi-premium` (both built into AKS); other SKUs (e.g. `*_ZRS`) → a class
/// `<stack>-<sku>` such as `ray-prod-premium-zrs` with `skuName` set. Errors name the valid SKUs.
pub fn storage_class_for(disk_sku: &str, stack_name: &str) -> Result<AksStorage, String> {
    let builtin = |name: &str| AksStorage {
        class_name: name.into(),
        created_by_raystack: false,
        provisioner: AKS_DISK_PROVISIONER,
        sku_name: disk_sku.into(),
    };
    match disk_sku {
        "StandardSSD_LRS" => Ok(builtin("managed-csi")),
        "Premium_LRS" => Ok(builtin("managed-csi-premium")),
        "StandardSSD_ZRS" | "Premium_ZRS" | "Standard_LRS" | "PremiumV2_LRS" | "UltraSSD_LRS" => {
            Ok(AksStorage {
                class_name: format!(
                    "{stack_name}-{}",
                    disk_sku.to_ascii_lowercase().replace('_', "-")
                ),
                created_by_raystack: true,
                provisioner: AKS_DISK_PROVISIONER,
                sku_name: disk_sku.into(),
            })
        }
        other => Err(format!(
            "unknown Azure disk SKU `{other}`: use StandardSSD_LRS, Premium_LRS, StandardSSD_ZRS or Premium_ZRS"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrs_skus_use_builtin_classes() {
        assert_eq!(
            storage_class_for("StandardSSD_LRS", "s")
                .unwrap()
                .class_name,
            "managed-csi"
        );
        let p = storage_class_for("Premium_LRS", "s").unwrap();
        assert_eq!(p.class_name, "managed-csi-premium");
        assert!(!p.created_by_raystack);
    }

    #[test]
    fn zrs_gets_its_own_class() {
        let z = storage_class_for("Premium_ZRS", "ray-prod").unwrap();
        assert_eq!(z.class_name, "ray-prod-premium-zrs");
        assert!(z.created_by_raystack);
        assert_eq!(z.sku_name, "Premium_ZRS");
    }

    #[test]
    fn unknown_sku_is_an_error() {
        assert!(
            storage_class_for("Gold_LRS", "s")
                .unwrap_err()
                .contains("StandardSSD_LRS, Premium_LRS")
        );
    }
}
