//! Whole-command timings of the real `raystack` binary: validate, render, offline plan, and the
//! online plan / apply loop against `fake-apiserver` with 0 ms and 5 ms of added API latency
//! (a nearby managed control plane answers in a few milliseconds).
//!
//! Run: `cargo bench --bench commands` (prints min / median / max wall time per command).
//! Figures are recorded in BENCHMARKS.md; nothing here asserts a speed. The fake runs in this
//! process (fake-apiserver's test helper), built with the bench profile like the rest of it.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a bench prints its figures"
)]

#[path = "../tests/e2e/support.rs"]
mod e2e_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_support::{Fake, raystack_bin, stack_toml, worker};

const RUNS: usize = 15;

/// Times `f` (a command returning its exit code) `runs` times after a warm-up; every run,
/// the warm-up included, must exit with `expect`.
fn time_runs(label: &str, expect: i32, runs: usize, mut f: impl FnMut() -> i32) {
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    assert_eq!(f(), expect, "{label}: warm-up run");
    for _ in 0..runs {
        let start = Instant::now();
        assert_eq!(f(), expect, "{label}: unexpected exit code");
        times.push(start.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<58} min {:>8.1} ms   median {:>8.1} ms   max {:>8.1} ms   ({runs} runs)",
        ms(times[0]),
        ms(times[runs / 2]),
        ms(times[runs - 1])
    );
}

/// Runs `raystack ARGS` and returns its exit code. Each row states the code it expects (2 only
/// for `plan --detailed-exitcode` with changes present), so a benchmark never times a command
/// that failed or did something else than its row says.
fn raystack(dir: &Path, args: &[&str], kubeconfig: Option<&Path>) -> i32 {
    let mut c = Command::new(raystack_bin());
    c.current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(k) = kubeconfig {
        c.arg("--kubeconfig").arg(k);
    }
    c.status().expect("run raystack").code().unwrap_or(-1)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stacks: Vec<String> = std::fs::read_dir(root.join("stacks"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    let mut validate = vec!["validate"];
    validate.extend(stacks.iter().map(String::as_str));
    time_runs(
        &format!("validate ({} example stacks)", stacks.len()),
        0,
        RUNS,
        || raystack(root, &validate, None),
    );
    time_runs("render stacks/multi-worker-gpu.toml", 0, RUNS, || {
        raystack(root, &["render", "stacks/multi-worker-gpu.toml"], None)
    });

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("stacks/local.toml"),
        dir.path().join("local.toml"),
    )
    .unwrap();
    time_runs(
        "plan --offline stacks/local.toml (no state)",
        0,
        RUNS,
        || raystack(dir.path(), &["plan", "--offline", "local.toml"], None),
    );

    for latency in ["0", "5"] {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::start(
            dir.path(),
            &["--latency-ms", latency, "--readiness-delay-ms", "0"],
        );
        let stack = dir.path().join("stack.toml");
        std::fs::write(
            &stack,
            stack_toml(
                &format!("{}\n{}", worker("cpu", 2), worker("gpu", 1)),
                "",
                "",
            ),
        )
        .unwrap();
        let s = stack.to_str().unwrap();
        time_runs(
            &format!("plan, empty cluster ({latency} ms API latency)"),
            2, // changes present
            RUNS,
            || {
                raystack(
                    dir.path(),
                    &["plan", s, "--detailed-exitcode"],
                    Some(&fake.kubeconfig),
                )
            },
        );
        assert_eq!(
            raystack(
                dir.path(),
                &["apply", s, "--auto-approve"],
                Some(&fake.kubeconfig)
            ),
            0
        );
        time_runs(
            &format!("plan, converged: no changes ({latency} ms API latency)"),
            0,
            RUNS,
            || {
                raystack(
                    dir.path(),
                    &["plan", s, "--detailed-exitcode"],
                    Some(&fake.kubeconfig),
                )
            },
        );
        time_runs(
            &format!("apply, converged: no-op ({latency} ms API latency)"),
            0,
            RUNS,
            || {
                raystack(
                    dir.path(),
                    &["apply", s, "--auto-approve"],
                    Some(&fake.kubeconfig),
                )
            },
        );
        // Apply from empty: a fresh namespace-less cluster each run via destroy in between.
        let runs = 5;
        let mut times = Vec::new();
        for _ in 0..runs {
            assert_eq!(
                raystack(
                    dir.path(),
                    &["destroy", s, "--auto-approve", "--allow-data-loss"],
                    Some(&fake.kubeconfig)
                ),
                0
            );
            let start = Instant::now();
            assert_eq!(
                raystack(
                    dir.path(),
                    &["apply", s, "--auto-approve"],
                    Some(&fake.kubeconfig)
                ),
                0
            );
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "{:<58} min {:>8.1} ms   median {:>8.1} ms   max {:>8.1} ms   ({runs} runs)",
            format!("apply from empty, 8 objects + readiness ({latency} ms API latency)"),
            times[0].as_secs_f64() * 1000.0,
            times[runs / 2].as_secs_f64() * 1000.0,
            times[runs - 1].as_secs_f64() * 1000.0
        );
    }
}
