//! Every example in `stacks/` is planned by the test suite, so the examples cannot rot: all of
//! them offline, and the `local` ones applied to `fake-apiserver` until `plan` says no changes.

mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e_support::*;
use serde_json::Value;

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    assert!(!out.is_empty());
    out
}

/// Copies an example into a fresh temp dir (its state lands next to it, not in the repo).
fn copy(example: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join(example.file_name().unwrap());
    std::fs::copy(example, &to).unwrap();
    (dir, to)
}

fn raystack(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(raystack_bin())
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RAYSTACK_WAIT_TIMEOUT", "60")
        .output()
        .unwrap();
    Run::from(out)
}

#[test]
fn every_example_plans_offline() {
    for example in examples() {
        let (dir, stack) = copy(&example);
        let r = raystack(
            dir.path(),
            &[
                "plan",
                stack.to_str().unwrap(),
                "--offline",
                "--format",
                "json",
            ],
        );
        assert_eq!(r.code, 0, "{}:\n{r}", example.display());
        let plan: Value = serde_json::from_str(&r.stdout).unwrap();
        let n = plan["resource_changes"].as_array().unwrap().len();
        assert_eq!(plan["summary"]["add"], n, "{}", example.display());
        assert_eq!(plan["data_loss"], false);
        assert_eq!(plan["format_version"], "1");
    }
}

#[test]
fn every_local_example_applies_to_the_fake_and_converges() {
    for example in examples() {
        let text = std::fs::read_to_string(&example).unwrap();
        if !text
            .lines()
            .any(|l| l.trim_start().starts_with("provider = \"local\""))
        {
            continue;
        }
        let (dir, stack) = copy(&example);
        let fake = Fake::start(dir.path(), &[]);
        let s = stack.to_str().unwrap();
        let k = fake.kubeconfig.to_str().unwrap();
        let r = raystack(
            dir.path(),
            &["apply", s, "--auto-approve", "--kubeconfig", k],
        );
        assert_eq!(r.code, 0, "{}:\n{r}", example.display());
        let r = raystack(
            dir.path(),
            &["plan", s, "--detailed-exitcode", "--kubeconfig", k],
        );
        assert_eq!(r.code, 0, "{}:\n{r}", example.display());
        assert!(
            r.stdout.contains("No changes"),
            "{}:\n{r}",
            example.display()
        );
    }
}
