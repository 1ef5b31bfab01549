//! Exit codes are a contract (0 success or no changes, 1 error, 2 changes with
//! `--detailed-exitcode`): a usage error — unknown flag, missing argument, bad value, unknown
//! command — exits 1 on every command, never clap's default 2 that a CI script would read as
//! "changes present". `--help` and `--version` exit 0.

use assert_cmd::Command;

fn raystack(args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("raystack")
        .unwrap()
        .args(args)
        .env("NO_COLOR", "1")
        .assert()
}

/// Every command, with the arguments it needs to get past parsing.
const COMMANDS: &[&[&str]] = &[
    &["validate", "stack.toml"],
    &["render", "stack.toml"],
    &["plan", "stack.toml"],
    &["apply", "stack.toml"],
    &["destroy", "stack.toml"],
    &["show", "plan.json"],
    &["diff", "base.toml", "head.toml"],
    &["state", "list", "stack.toml"],
    &["state", "show", "stack.toml"],
    &["state", "pull", "stack.toml"],
    &["state", "migrate", "stack.toml", "--to", "local"],
    &["force-unlock", "stack.toml", "0f0e0d0c"],
    &["verify", "stack.toml"],
];

#[test]
fn an_unknown_flag_exits_1_on_every_command() {
    for cmd in COMMANDS {
        let mut args = cmd.to_vec();
        args.push("--no-such-flag");
        let out = raystack(&args).code(1).get_output().clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("unexpected argument '--no-such-flag'"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_missing_argument_exits_1_on_every_command() {
    for cmd in COMMANDS {
        // The command words alone: every command needs at least one file.
        let words: Vec<&str> = cmd
            .iter()
            .copied()
            .take_while(|a| !a.contains('.'))
            .collect();
        let out = raystack(&words).code(1).get_output().clone();
        assert!(!out.stderr.is_empty(), "{words:?} printed no usage error");
    }
}

#[test]
fn bad_values_and_unknown_commands_exit_1() {
    raystack(&["plan", "stack.toml", "--format", "xml"]).code(1);
    raystack(&["--color", "sometimes", "validate", "stack.toml"]).code(1);
    raystack(&["no-such-command"]).code(1);
    raystack(&[]).code(1);
}

#[test]
fn help_and_version_exit_0() {
    let out = raystack(&["--help"]).code(0).get_output().clone();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: raystack"));
    raystack(&["plan", "--help"]).code(0);
    let out = raystack(&["--version"]).code(0).get_output().clone();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("raystack {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// `raystack plan … | head` closes stdout early: that is not an error, and the exit code still
/// says what the plan found (2: changes, under `--detailed-exitcode`). Stdout here is a pipe
/// whose reader is closed before raystack starts, so every write fails with EPIPE.
#[test]
fn a_closed_stdout_is_not_an_error_and_keeps_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("local.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/stacks/local.toml"),
        &stack,
    )
    .unwrap();
    for args in [
        &["plan", "--offline", "--detailed-exitcode"][..],
        &["render"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("raystack"))
            .args(args)
            .arg(&stack)
            .env("NO_COLOR", "1")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
        let want = if args[0] == "plan" { 2 } else { 0 };
        assert_eq!(out.status.code(), Some(want), "{args:?}: {stderr}");
    }
}
