//! `raystack diff BASE HEAD`: two revisions of a stack file compared with no cluster.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn revision(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string("stacks/local.toml").unwrap();
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).unwrap();
    path.display().to_string()
}

fn diff(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("raystack")
        .unwrap()
        .arg("diff")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn same_revision_has_no_changes() {
    let dir = tempfile::tempdir().unwrap();
    let base = revision(dir.path(), "base.toml", |t| t);
    let (code, stdout, stderr) = diff(&[&base, &base, "--detailed-exitcode"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("No changes"), "{stdout}");
}

#[test]
fn worker_change_is_one_update_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let base = revision(dir.path(), "base.toml", |t| t);
    let head = revision(dir.path(), "head.toml", |t| {
        t.replace(
            "replicas = 1\nmin_replicas = 1\nmax_replicas = 1",
            "replicas = 3\nmin_replicas = 3\nmax_replicas = 3",
        )
    });
    assert_ne!(
        std::fs::read_to_string(&base).unwrap(),
        std::fs::read_to_string(&head).unwrap(),
        "the edit applied"
    );
    let (code, stdout, _) = diff(&[&base, &head, "--detailed-exitcode"]);
    assert_eq!(code, 2);
    assert!(
        stdout.contains("~ RayCluster/ray-local/ray-local will be updated in place"),
        "{stdout}"
    );
    assert!(stdout.contains("+     replicas: 3"), "{stdout}");
    assert!(
        stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{stdout}"
    );
}

#[test]
fn storage_class_change_is_flagged_as_data_loss_in_json_and_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let base = revision(dir.path(), "base.toml", |t| t);
    let head = revision(dir.path(), "head.toml", |t| {
        t.replace("[redis]\n", "[redis]\nstorage_class = \"fast-ssd\"\n")
    });
    let (code, stdout, _) = diff(&[&base, &head, "--format", "json"]);
    assert_eq!(code, 0);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["data_loss"], true);
    let pvc = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "PersistentVolumeClaim")
        .unwrap();
    assert_eq!(pvc["action"], "replace");
    assert!(
        pvc["reason"].as_str().unwrap().contains("storageClassName"),
        "{pvc}"
    );

    let (_, md, _) = diff(&[&base, &head, "--format", "markdown"]);
    assert!(md.contains("DATA LOSS"), "{md}");
}

#[test]
fn an_invalid_revision_reports_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = revision(dir.path(), "base.toml", |t| t);
    let head = revision(dir.path(), "head.toml", |t| {
        t.replace("storage = \"1Gi\"", "storage = \"1Gb\"")
    });
    let (code, _, stderr) = diff(&[&base, &head]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("head.toml:") && stderr.contains("`redis.storage`"),
        "{stderr}"
    );
}
