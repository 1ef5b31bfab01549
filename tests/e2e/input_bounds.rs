//! Hostile and careless input through the real binary, no cluster: a FIFO or a device as the
//! stack path or the `[state] path` is refused at once (not read until memory runs out, not
//! blocked on), an oversized stack file is refused with its size, a huge value is not echoed
//! whole, a duplicate key or table is named, a `--request-timeout` too large for a deadline is a
//! usage error (not a panic), and two stacks sharing one state file do not pass `validate`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn raystack(dir: &Path, args: &[&str]) -> (i32, String, String) {
    raystack_env(dir, args, &[])
}

fn raystack_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_raystack"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RAYSTACK_REQUEST_TIMEOUT")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a command that blocks on its input must fail this test, not hang it.
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "raystack {args:?} did not finish within 30 s; stderr so far:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const STACK: &str = "[stack]\nname = \"NAME\"\n\n[cluster]\nprovider = \"local\"\n\n[ray]\nversion = \"2.45.0\"\nkuberay = \"1.3.0\"\n";

fn stack(name: &str) -> String {
    STACK.replace("NAME", name)
}

#[test]
fn a_fifo_as_the_stack_path_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stack.toml");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    for cmd in ["validate", "render", "plan"] {
        let (code, stdout, stderr) = raystack(dir.path(), &[cmd, "stack.toml"]);
        assert_eq!(code, 1, "{cmd}: {stderr}");
        assert_eq!(stdout, "", "{cmd}");
        assert!(
            stderr.contains(
                "stack.toml: the stack file is a FIFO (named pipe), not a regular file\n  help: give the path of a TOML stack file"
            ),
            "{cmd}: {stderr}"
        );
    }
}

#[test]
fn a_device_as_the_stack_path_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = raystack(dir.path(), &["validate", "/dev/zero"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr,
        "error: /dev/zero: the stack file is a character device, not a regular file\n  help: give the path of a TOML stack file\ninvalid /dev/zero: 1 problem\n"
    );
    let (code, _, stderr) = raystack(dir.path(), &["validate", "."]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the stack file is a directory, not a regular file"),
        "{stderr}"
    );
}

#[test]
fn an_oversized_stack_file_is_refused_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!("{}# {}\n", stack("big"), "x".repeat(2 * 1024 * 1024));
    std::fs::write(dir.path().join("big.toml"), &big).unwrap();
    let (code, _, stderr) = raystack(dir.path(), &["validate", "big.toml"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        format!(
            "error: big.toml: the stack file is {} bytes; raystack reads stack files of at most 1048576 bytes (1 MiB)\n  help: a stack file is a few kilobytes of TOML; check that this is the right file\ninvalid big.toml: 1 problem\n",
            big.len()
        )
    );
}

#[test]
fn a_huge_value_is_not_echoed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let name = "a".repeat(900_000);
    std::fs::write(dir.path().join("s.toml"), stack(&name)).unwrap();
    for cmd in ["validate", "render", "plan"] {
        let (code, _, stderr) = raystack(dir.path(), &[cmd, "s.toml"]);
        assert_eq!(code, 1, "{cmd}");
        assert!(
            stderr.len() < 2_000,
            "{cmd}: {} bytes of stderr:\n{}",
            stderr.len(),
            &stderr[..2_000.min(stderr.len())]
        );
        assert!(
            stderr.contains(&format!(
                "`stack.name`: \"{}… (900002 characters) is 900000 characters long; the limit is 63",
                "a".repeat(39)
            )),
            "{cmd}: {stderr}"
        );
    }
}

#[test]
fn validate_names_the_duplicate_key_and_its_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[stack]\nname = \"dup\"\nnamespace = \"a\"\nnamespace = \"b\"\n",
    )
    .unwrap();
    let (code, _, stderr) = raystack(dir.path(), &["validate", "s.toml"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("s.toml:4:1: invalid TOML: duplicate key `namespace` in `[stack]`"),
        "{stderr}"
    );
}

#[test]
fn validate_rejects_two_stacks_that_share_a_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let shared = "\n[state]\npath = \"shared.state.json\"\n";
    std::fs::write(dir.path().join("a.toml"), stack("a") + shared).unwrap();
    std::fs::write(dir.path().join("b.toml"), stack("b") + shared).unwrap();
    std::fs::write(dir.path().join("c.toml"), stack("c")).unwrap();
    let (code, stdout, stderr) = raystack(dir.path(), &["validate", "a.toml", "b.toml", "c.toml"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let state = dir.path().canonicalize().unwrap().join("shared.state.json");
    assert_eq!(
        stderr,
        format!(
            "error: a.toml and b.toml share the state file `{}`: each would plan to delete the other's objects\n  help: give each stack its own `[state] path`\n",
            state.display()
        )
    );
    // Each file alone is valid; their own default state files do not collide.
    let (code, _, _) = raystack(dir.path(), &["validate", "a.toml", "c.toml"]);
    assert_eq!(code, 0);
}

#[test]
fn a_fifo_or_a_device_as_the_state_path_is_refused_without_blocking_or_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.state.json");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    for (path, kind) in [
        (fifo.to_str().unwrap(), "a FIFO (named pipe)"),
        ("/dev/zero", "a character device"),
    ] {
        let file = format!("{}\n[state]\npath = \"{path}\"\n", stack("st"));
        std::fs::write(dir.path().join("s.toml"), file).unwrap();
        for cmd in [
            &["state", "show", "s.toml"][..],
            &["state", "list", "s.toml"],
        ] {
            let (code, stdout, stderr) = raystack(dir.path(), cmd);
            assert_eq!(code, 1, "{cmd:?} {path}: {stderr}");
            assert_eq!(stdout, "", "{cmd:?} {path}");
            assert_eq!(
                stderr,
                format!(
                    "error: failed to read state `{path}`\n  caused by: it is {kind}, not a regular \
                     file; `[state] path` names the JSON file raystack keeps its state in\n"
                ),
                "{cmd:?}"
            );
        }
    }
}

#[test]
fn a_request_timeout_too_large_for_a_deadline_is_a_usage_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), stack("rt")).unwrap();
    // A cluster that refuses connections: the deadline is computed before the first request.
    std::fs::write(
        dir.path().join("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user: {}\ncurrent-context: c\n",
    )
    .unwrap();
    let huge = "18446744073709551615";
    let (code, stdout, stderr) = raystack(
        dir.path(),
        &[
            "plan",
            "s.toml",
            "--kubeconfig",
            "kubeconfig",
            "--request-timeout",
            huge,
        ],
    );
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    insta::assert_snapshot!("request_timeout_too_large_flag", stderr);
    let (code, stdout, stderr) = raystack_env(
        dir.path(),
        &["plan", "s.toml", "--kubeconfig", "kubeconfig"],
        &[("RAYSTACK_REQUEST_TIMEOUT", "5124095576030431h")],
    );
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    insta::assert_snapshot!("request_timeout_too_large_env", stderr);
}

#[test]
fn validate_names_a_table_defined_twice() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        format!("{}\n[stack]\nnamespace = \"b\"\n", stack("dup")),
    )
    .unwrap();
    let (code, stdout, stderr) = raystack(dir.path(), &["validate", "s.toml"]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    insta::assert_snapshot!("duplicate_table", stderr);
}
