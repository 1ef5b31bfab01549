//! Golden YAML for every example stack (insta snapshots in tests/snapshots), determinism, and
//! the `raystack render` command end to end.

use crate::render_support as support;

use assert_cmd::Command;
use raystack::render::{file_name, manifests, render};

#[test]
fn every_example_stack_matches_its_golden_yaml() {
    for (name, stack) in support::examples() {
        let yaml = manifests(&render(&stack).objects);
        insta::assert_snapshot!(name, yaml);
    }
}

#[test]
fn rendering_is_byte_identical_across_runs() {
    for (name, stack) in support::examples() {
        let first = manifests(&render(&stack).objects);
        // Parse the file again too: nothing may depend on map iteration order or addresses.
        let again = raystack::stack::load(&stack.source).unwrap();
        assert_eq!(first, manifests(&render(&again).objects), "{name}");
    }
}

#[test]
fn yaml_parses_back_to_the_rendered_objects() {
    for (name, stack) in support::examples() {
        let rendered = render(&stack);
        let yaml = manifests(&rendered.objects);
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&yaml).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want: Vec<serde_json::Value> = rendered
            .objects
            .iter()
            .map(|o| o.manifest.clone())
            .collect();
        assert_eq!(docs, want, "{name}");
    }
}

#[test]
fn secret_values_are_never_rendered() {
    for (name, stack) in support::examples() {
        for o in render(&stack).objects {
            if o.kind() == "Secret" {
                assert!(
                    o.manifest.get("data").is_none() && o.manifest.get("stringData").is_none(),
                    "{name}"
                );
            }
        }
    }
}

fn stack_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("stacks")
        .join(name)
}

#[test]
fn render_command_prints_the_yaml() {
    let path = stack_path("aws.toml");
    let stack = raystack::stack::load(&path).unwrap();
    let out = Command::cargo_bin("raystack")
        .unwrap()
        .arg("render")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        manifests(&render(&stack).objects)
    );
}

#[test]
fn render_command_writes_one_file_per_object_in_apply_order() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let path = stack_path("aws.toml");
    Command::cargo_bin("raystack")
        .unwrap()
        .arg("render")
        .arg(&path)
        .arg("--out-dir")
        .arg(&out_dir)
        .assert()
        .success();
    let rendered = render(&raystack::stack::load(&path).unwrap());
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let want: Vec<String> = rendered
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| file_name(i, o))
        .collect();
    assert_eq!(files, want);
    assert_eq!(files[0], "01-namespace-ray-prod.yaml");
    assert_eq!(files[1], "02-storageclass-ray-prod-gp3.yaml");
    let pvc: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(out_dir.join("05-persistentvolumeclaim-ray-prod-redis-data.yaml"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(pvc, rendered.objects[4].manifest);
}

#[test]
fn render_out_dir_replaces_a_symlink_in_dir_instead_of_writing_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let planted = out_dir.join("01-namespace-ray-prod.yaml");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let path = stack_path("aws.toml");
    Command::cargo_bin("raystack")
        .unwrap()
        .arg("render")
        .arg(&path)
        .arg("--out-dir")
        .arg(&out_dir)
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(&planted).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
    // The same mode as a file written the ordinary way under this umask.
    use std::os::unix::fs::PermissionsExt;
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, "x").unwrap();
    assert_eq!(
        meta.permissions().mode(),
        std::fs::metadata(&plain).unwrap().permissions().mode()
    );
    let rendered = render(&raystack::stack::load(&path).unwrap());
    assert_eq!(
        std::fs::read_to_string(&planted).unwrap(),
        raystack::render::document(&rendered.objects[0])
    );
}

#[test]
fn render_command_reports_an_invalid_stack_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[stack]\nname = \"Bad_Name\"\n\n[cluster]\nprovider = \"local\"\n\n[redis]\nstorage = \"8Gb\"\n").unwrap();
    let out = Command::cargo_bin("raystack")
        .unwrap()
        .arg("render")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for an invalid stack"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    let expected = raystack::stack::parse_str(&path, &std::fs::read_to_string(&path).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(stderr.trim_end(), expected.trim_end());
    assert!(stderr.contains("redis.storage"), "{stderr}");
}
