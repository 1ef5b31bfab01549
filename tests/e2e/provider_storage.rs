//! The StorageClass each provider option set renders (docs/design.md §3), as golden YAML, and which
//! class the Redis PVC then names. One snapshot per option set, so any change to a provisioner, a
//! parameter or the reclaim policy shows up in review.

use std::path::Path;

use raystack::render;
use raystack::stack;

const BASE: &str = "[stack]\nname = \"ray-prod\"\n";

fn storage(cluster: &str) -> (Option<String>, String) {
    let text = format!("{BASE}{cluster}");
    let s =
        stack::parse_str(Path::new("stacks/test.toml"), &text).unwrap_or_else(|d| panic!("{d}"));
    let rendered = render::render(&s);
    let classes: Vec<_> = rendered
        .objects
        .iter()
        .filter(|o| o.kind() == "StorageClass")
        .cloned()
        .collect();
    let pvc = rendered
        .objects
        .iter()
        .find(|o| o.kind() == "PersistentVolumeClaim")
        .expect("a PVC");
    let pvc_class = pvc.manifest["spec"]["storageClassName"]
        .as_str()
        .map(str::to_string);
    assert_eq!(
        pvc_class,
        render::storage_class_name(&s),
        "the PVC names the chosen class"
    );
    if let Some(class) = classes.first() {
        assert_eq!(
            Some(class.name().to_string()),
            pvc_class,
            "the PVC uses the class the stack creates"
        );
    }
    (pvc_class, render::manifests(&classes))
}

const AWS: &str = "[cluster]\nprovider = \"aws\"\nname = \"prod-eks\"\nregion = \"us-west-2\"\n";
const GCP: &str = "[cluster]\nprovider = \"gcp\"\nproject = \"acme-ml\"\nlocation = \"us-central1\"\nname = \"prod-gke\"\n";
const AZURE: &str = "[cluster]\nprovider = \"azure\"\nsubscription_id = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"ml\"\nname = \"prod-aks\"\nlocation = \"eastus\"\n";

#[test]
fn aws_gp3_default() {
    let (class, yaml) = storage(AWS);
    assert_eq!(class.as_deref(), Some("ray-prod-gp3"));
    insta::assert_snapshot!(yaml);
}

#[test]
fn aws_gp3_with_iops_throughput_and_kms() {
    let (class, yaml) = storage(&format!(
        "{AWS}[cluster.aws]\nvolume_type = \"gp3\"\niops = 6000\nthroughput = 250\nkms_key_id = \"arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\"\n"
    ));
    assert_eq!(class.as_deref(), Some("ray-prod-gp3"));
    assert!(
        yaml.contains("iops: \"6000\"") && yaml.contains("throughput: \"250\""),
        "{yaml}"
    );
    insta::assert_snapshot!(yaml);
}

#[test]
fn aws_io2() {
    let (_, yaml) = storage(&format!(
        "{AWS}[cluster.aws]\nvolume_type = \"io2\"\niops = 16000\n"
    ));
    assert!(yaml.contains("type: io2"), "{yaml}");
    insta::assert_snapshot!(yaml);
}

#[test]
fn aws_auto_mode() {
    let (class, yaml) = storage(&format!("{AWS}[cluster.aws]\nauto_mode = true\n"));
    assert_eq!(class.as_deref(), Some("ray-prod-gp3"));
    assert!(
        yaml.contains("provisioner: ebs.csi.eks.amazonaws.com"),
        "{yaml}"
    );
    insta::assert_snapshot!(yaml);
}

#[test]
fn aws_storage_class_override_creates_nothing() {
    let (class, yaml) = storage(&format!("{AWS}[redis]\nstorage_class = \"fast-ssd\"\n"));
    assert_eq!(class.as_deref(), Some("fast-ssd"));
    assert_eq!(yaml, "");
}

#[test]
fn gcp_builtin_classes_create_nothing() {
    assert_eq!(storage(GCP), (Some("standard-rwo".into()), String::new()));
    let premium = storage(&format!("{GCP}[cluster.gcp]\ndisk = \"premium-rwo\"\n"));
    assert_eq!(premium, (Some("premium-rwo".into()), String::new()));
}

#[test]
fn gcp_regional() {
    let (class, yaml) = storage(&format!("{GCP}[cluster.gcp]\ndisk = \"regional\"\n"));
    assert_eq!(class.as_deref(), Some("ray-prod-regional-pd"));
    insta::assert_snapshot!(yaml);
}

#[test]
fn azure_builtin_classes_create_nothing() {
    assert_eq!(storage(AZURE), (Some("managed-csi".into()), String::new()));
    let premium = storage(&format!(
        "{AZURE}[cluster.azure]\ndisk_sku = \"Premium_LRS\"\n"
    ));
    assert_eq!(premium, (Some("managed-csi-premium".into()), String::new()));
}

#[test]
fn azure_zone_redundant() {
    let (class, yaml) = storage(&format!(
        "{AZURE}[cluster.azure]\ndisk_sku = \"Premium_ZRS\"\n"
    ));
    assert_eq!(class.as_deref(), Some("ray-prod-premium-zrs"));
    insta::assert_snapshot!(yaml);
}

#[test]
fn local_uses_the_cluster_default() {
    assert_eq!(storage(""), (None, String::new()));
    let named = storage("[redis]\nstorage_class = \"local-path\"\n");
    assert_eq!(named, (Some("local-path".into()), String::new()));
}
