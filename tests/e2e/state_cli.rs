//! `raystack state list|show` run as the real binary on a stack and state in a temp dir:
//! whole outputs and exit codes, including the no-state, locked and corrupted cases.

use std::path::Path;

use assert_cmd::Command;
use raystack::kind::{Kind, ObjectRef};
use raystack::state::{LocalBackend, ResourceState, State};

const STACK: &str = r#"
[stack]
name = "ray-local"

[cluster]
provider = "local"

[ray]
version = "2.45.0"
kuberay = "1.3.0"
"#;

const STATE_PATH: &str = ".raystack/ray-local.state.json";

fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stack.toml"), STACK).unwrap();
    dir
}

fn raystack(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("raystack")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .assert()
}

fn record(state: &mut State, kind: Kind, ns: Option<&str>, name: &str, uid: &str, rv: &str) {
    let object = ObjectRef::new(kind, ns, name);
    state.upsert_resource(ResourceState {
        address: object.address(),
        object,
        uid: uid.into(),
        resource_version: rv.into(),
        applied_hash: "ab".repeat(32),
    });
}

/// Writes a two-object state the way apply does and returns its fingerprint line.
fn write_state(dir: &Path) -> String {
    let backend = LocalBackend::new(dir.join(STATE_PATH));
    let mut lock = backend.lock("apply").unwrap();
    let mut state = State::new("ray-local");
    state.lineage = "0b8e7f62-3c55-4c2a-9d0e-4c8f4f1e2a17".into();
    record(&mut state, Kind::Namespace, None, "ray-local", "u-1", "10");
    record(
        &mut state,
        Kind::Secret,
        Some("ray-local"),
        "ray-local-redis-auth",
        "u-22",
        "311",
    );
    state.set_secret_fingerprint("redis-password", b"never-shown-password");
    lock.write(&mut state).unwrap();
    state.secret("redis-password").unwrap().fingerprint.clone()
}

#[test]
fn list_and_show_without_state_say_so_and_succeed() {
    let dir = workdir();
    for command in ["list", "show"] {
        raystack(dir.path(), &["state", command, "stack.toml"])
            .success()
            .stdout("")
            .stderr(format!(
                "No state recorded for stack `ray-local` (`{STATE_PATH}`).\n"
            ));
    }
}

#[test]
fn list_prints_one_address_per_line() {
    let dir = workdir();
    write_state(dir.path());
    raystack(dir.path(), &["state", "list", "stack.toml"])
        .success()
        .stdout("Namespace/ray-local\nSecret/ray-local/ray-local-redis-auth\n")
        .stderr("");
}

#[test]
fn show_prints_a_summary_without_secret_values() {
    let dir = workdir();
    let fingerprint = write_state(dir.path());
    let out = raystack(dir.path(), &["state", "show", "stack.toml"])
        .success()
        .stderr("");
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        stdout,
        format!(
            "\
Stack:   ray-local
File:    {STATE_PATH}
Format:  1
Lineage: 0b8e7f62-3c55-4c2a-9d0e-4c8f4f1e2a17
Serial:  1

Resources (2):
  KIND       NAMESPACE  NAME                  UID   RESOURCE VERSION
  Namespace  -          ray-local             u-1   10
  Secret     ray-local  ray-local-redis-auth  u-22  311

Secrets (1; fingerprints only, values are never stored):
  redis-password  {fingerprint}
"
        )
    );
    assert!(!stdout.contains("never-shown-password"));
    let on_disk = std::fs::read_to_string(dir.path().join(STATE_PATH)).unwrap();
    assert!(!on_disk.contains("never-shown-password"));
}

#[test]
fn reading_state_does_not_need_the_lock() {
    let dir = workdir();
    write_state(dir.path());
    let _held = LocalBackend::new(dir.path().join(STATE_PATH))
        .lock("apply")
        .unwrap();
    raystack(dir.path(), &["state", "list", "stack.toml"])
        .success()
        .stdout("Namespace/ray-local\nSecret/ray-local/ray-local-redis-auth\n");
}

#[test]
fn corrupted_state_fails_pointing_at_the_backup() {
    let dir = workdir();
    write_state(dir.path());
    std::fs::write(dir.path().join(STATE_PATH), "{\"format_version\": \"1\",").unwrap();
    raystack(dir.path(), &["state", "show", "stack.toml"])
        .code(1)
        .stdout("")
        .stderr(predicates::str::starts_with(format!(
            "error: state `{STATE_PATH}` is corrupted: it is not valid JSON ("
        )))
        .stderr(predicates::str::contains(format!(
            "restore the previous version from `{STATE_PATH}.backup`"
        )));
}

#[test]
fn invalid_stack_reports_its_diagnostics() {
    let dir = workdir();
    std::fs::write(dir.path().join("stack.toml"), "[stack]\n").unwrap();
    raystack(dir.path(), &["state", "list", "stack.toml"])
        .code(1)
        .stdout("")
        .stderr(predicates::str::starts_with("error: stack.toml"));
}
