//! Every rendered RayCluster validates against the RayCluster CRD of the KubeRay version it
//! targets (tests/fixtures/kuberay, copies of the official KubeRay CRDs): KubeRay < 1.3 → v1.2.2,
//! 1.3.x–1.6.x → v1.3.0, >= 1.7 → v1.7.0.
//!
//! Two checks, because a CRD's structural schema does not reject unknown fields, it prunes
//! them: JSON Schema validation (types, required fields, enums) with the `jsonschema` crate,
//! and a walk that fails on any field the schema does not declare (unless the schema preserves
//! unknown fields or declares `additionalProperties`). The second is what catches a field that
//! an older operator would silently drop, such as `gcsFaultToleranceOptions` on KubeRay 1.2.

use crate::render_support as support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use raystack::stack::KubeRayVersion;
use serde_json::{Value, json};

/// The `v1` openAPIV3Schema of the CRD fixture for `version`.
pub(crate) fn crd_schema(fixture: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kuberay")
        .join(format!("ray.io_rayclusters.v{fixture}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    let v1 = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .expect("a v1 version");
    v1["schema"]["openAPIV3Schema"].clone()
}

/// The CRD fixture generation a KubeRay version is checked against: the product's own mapping.
pub(crate) use raystack::render::check::crd_generation as fixture_for;

/// The CRD's schema as JSON Schema, and the fields it does not declare: the product's own
/// (`render::check`), which `validate` runs on every rendered RayCluster.
pub(crate) use raystack::render::check::{to_json_schema, unknown_fields};

struct Crd {
    schema: Value,
    validator: jsonschema::Validator,
}

/// The three CRD generations, parsed and compiled once per test binary.
fn crd(fixture: &str) -> &'static Crd {
    static CRDS: OnceLock<HashMap<&'static str, Crd>> = OnceLock::new();
    let all = CRDS.get_or_init(|| {
        ["1.2.2", "1.3.0", "1.7.0"]
            .into_iter()
            .map(|f| {
                let schema = crd_schema(f);
                let validator = jsonschema::validator_for(&to_json_schema(&schema))
                    .expect("the CRD schema compiles");
                (f, Crd { schema, validator })
            })
            .collect()
    });
    &all[fixture]
}

/// All problems of `rc` against the CRD `fixture`.
pub(crate) fn problems(rc: &Value, fixture: &str) -> Vec<String> {
    let crd = crd(fixture);
    let mut out: Vec<String> = crd
        .validator
        .iter_errors(rc)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    let mut unknown = Vec::new();
    unknown_fields(rc, &crd.schema, "", &mut unknown);
    out.extend(
        unknown
            .into_iter()
            .map(|p| format!("{p}: unknown field (the API server would prune it)")),
    );
    out
}

#[test]
fn every_ray_cluster_validates_against_its_kuberay_crd() {
    let mut fixtures_used = std::collections::BTreeSet::new();
    for (name, stack) in support::examples() {
        let fixture = fixture_for(stack.ray.kuberay);
        fixtures_used.insert(fixture);
        let rendered = raystack::render::render(&stack);
        let rc = &rendered
            .objects
            .iter()
            .find(|o| o.kind() == "RayCluster")
            .unwrap()
            .manifest;
        let p = problems(rc, fixture);
        assert!(
            p.is_empty(),
            "{name} against KubeRay {fixture} CRD:\n{}",
            p.join("\n")
        );
    }
    // The examples exercise every CRD generation.
    assert_eq!(
        fixtures_used.into_iter().collect::<Vec<_>>(),
        ["1.2.2", "1.3.0", "1.7.0"]
    );
}

fn ft_options_cluster() -> Value {
    let (_, stack) = support::examples()
        .into_iter()
        .find(|(n, _)| n == "local")
        .unwrap();
    assert!(stack.ray.kuberay.has_gcs_ft_options());
    let rendered = raystack::render::render(&stack);
    rendered
        .objects
        .into_iter()
        .find(|o| o.kind() == "RayCluster")
        .unwrap()
        .manifest
}

#[test]
fn gcs_ft_options_are_rejected_by_the_kuberay_1_2_crd_and_accepted_by_1_3() {
    let rc = ft_options_cluster();
    assert!(rc["spec"].get("gcsFaultToleranceOptions").is_some());
    assert_eq!(problems(&rc, "1.3.0"), Vec::<String>::new());
    let old = problems(&rc, "1.2.2");
    assert_eq!(
        old,
        [".spec.gcsFaultToleranceOptions: unknown field (the API server would prune it)"]
    );
}

#[test]
fn schema_validation_catches_wrong_types_and_missing_fields() {
    let mut rc = ft_options_cluster();
    rc["spec"]["workerGroupSpecs"][0]["maxReplicas"] = json!("ten");
    rc["spec"]["workerGroupSpecs"][0]
        .as_object_mut()
        .unwrap()
        .remove("groupName");
    let p = problems(&rc, "1.3.0");
    assert!(
        p.iter()
            .any(|e| e.contains("/spec/workerGroupSpecs/0/maxReplicas")),
        "{p:?}"
    );
    assert!(p.iter().any(|e| e.contains("groupName")), "{p:?}");
}

#[test]
fn fixture_selection_by_operator_version() {
    assert_eq!(fixture_for(KubeRayVersion::new(1, 2, 2)), "1.2.2");
    assert_eq!(fixture_for(KubeRayVersion::new(1, 1, 0)), "1.2.2");
    assert_eq!(fixture_for(KubeRayVersion::new(1, 3, 0)), "1.3.0");
    assert_eq!(fixture_for(KubeRayVersion::new(1, 6, 9)), "1.3.0");
    assert_eq!(fixture_for(KubeRayVersion::new(1, 7, 0)), "1.7.0");
}
