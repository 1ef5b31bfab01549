//! Pure choice of the GKE StorageClass for `[cluster.gcp] disk`: GKE's built-in classes, or the
//! one class raystack creates for regional persistent disks. The main crate renders the object.

/// The Compute Engine PD CSI driver's provisioner.
pub const PD_CSI_PROVISIONER: &str = "pd.csi.storage.gke.io";

/// The StorageClass a stack's Redis volume uses on GKE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GkeStorage {
    /// The StorageClass name the PVC refers to.
    pub class_name: String,
    /// True when raystack must create the class (GKE has none for regional PDs).
    pub created_by_raystack: bool,
    pub provisioner: &'static str,
    /// StorageClass `parameters` (for a class raystack creates; informative otherwise).
    pub parameters: Vec<(&'static str, &'static str)>,
}

/// Maps `[cluster.gcp] disk` to a StorageClass: `standard-rwo` (pd-balanced) and `premium-rwo`
/// (pd-ssd) exist on every GKE cluster; `regional` needs a class `<stack>-regional-pd` with
/// `replication-type: regional-pd`. Returns an error sentence for other values.
pub fn storage_class_for(disk: &str, stack_name: &str) -> Result<GkeStorage, String> {
    match disk {
        "standard-rwo" => Ok(GkeStorage {
            class_name: "standard-rwo".into(),
            created_by_raystack: false,
            provisioner: PD_CSI_PROVISIONER,
            parameters: vec![("type", "pd-balanced")],
        }),
        "premium-rwo" => Ok(GkeStorage {
            class_name: "premium-rwo".into(),
            created_by_raystack: false,
            provisioner: PD_CSI_PROVISIONER,
            parameters: vec![("type", "pd-ssd")],
        }),
        "regional" => Ok(GkeStorage {
            class_name: format!("{stack_name}-regional-pd"),
            created_by_raystack: true,
            provisioner: PD_CSI_PROVISIONER,
            parameters: vec![("type", "pd-balanced"), ("replication-type", "regional-pd")],
        }),
        other => Err(format!(
            "unknown GKE disk `{other}`: use standard-rwo, premium-rwo or regional"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_classes_are_not_created() {
        let s = storage_class_for("standard-rwo", "ray-prod").unwrap();
        assert_eq!(s.class_name, "standard-rwo");
        assert!(!s.created_by_raystack);
        let p = storage_class_for("premium-rwo", "ray-prod").unwrap();
        assert_eq!(p.parameters, vec![("type", "pd-ssd")]);
    }

    #[test]
    fn regional_gets_its_own_class() {
        let s = storage_class_for("regional", "ray-prod").unwrap();
        assert_eq!(s.class_name, "ray-prod-regional-pd");
        assert!(s.created_by_raystack);
        assert!(s.parameters.contains(&("replication-type", "regional-pd")));
    }

    #[test]
    fn unknown_disk_is_an_error() {
        assert!(
            storage_class_for("pd-extreme", "x")
                .unwrap_err()
                .contains("standard-rwo, premium-rwo or regional")
        );
    }
}
