//! Many stacks in one command, as the real `raystack` binary runs them: `plan` of 1 and of 100
//! stacks against `fake-apiserver` answering each request after 20 ms (a distant managed
//! control plane), new and then applied, and `plan --offline` of 1,000 stacks. Wall time, CPU time (user + system)
//! and peak memory (max RSS) per command, through `/usr/bin/time`; and the CPU the fake spent
//! answering it, read from this process's own `/proc/self/stat`.
//!
//! Run: `cargo bench --bench many_stacks`. Figures are recorded in BENCHMARKS.md; nothing here
//! asserts a speed. The fake runs in this process (fake-apiserver's test helper), built with the
//! bench profile like the rest of it.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a bench prints its figures"
)]

#[path = "../tests/e2e/support.rs"]
mod e2e_support;

use std::path::Path;
use std::process::{Command, Stdio};

use e2e_support::{Fake, raystack_bin};

/// The fake runs in this process: it allocates as the `fake-apiserver` binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNS: usize = 5;
const LOCAL: &str = include_str!("../stacks/local.toml");

fn write_stacks(dir: &Path, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = format!("s{i:04}");
            let path = dir.join(format!("{name}.toml"));
            std::fs::write(&path, LOCAL.replace("ray-local", &name)).unwrap();
            path.display().to_string()
        })
        .collect()
}

struct Sample {
    wall: f64,
    cpu: f64,
    max_rss_kib: u64,
    /// CPU this process (the fake's threads, nearly all of it) spent during the run.
    fake_cpu: f64,
}

/// CPU time (user + system) of this process so far, in seconds, from `/proc/self/stat`
/// (clock ticks: 10 ms resolution).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name and the state.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Runs `raystack args` under `/usr/bin/time` and reads its figures.
fn measure(dir: &Path, args: &[String]) -> Sample {
    let report = dir.join("time.txt");
    let fake_before = own_cpu();
    let status = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(&report)
        .args(["-f", "%e %U %S %M"])
        .arg(raystack_bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run /usr/bin/time raystack");
    assert!(
        matches!(status.code(), Some(0) | Some(2)),
        "raystack {args:?} failed"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let f: Vec<f64> = text
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    Sample {
        wall: f[0],
        cpu: f[1] + f[2],
        max_rss_kib: f[3] as u64,
        fake_cpu: own_cpu() - fake_before,
    }
}

fn report(label: &str, dir: &Path, args: &[String], per: usize) {
    measure(dir, args); // warm-up
    let mut samples: Vec<Sample> = (0..RUNS).map(|_| measure(dir, args)).collect();
    samples.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    let median = &samples[RUNS / 2];
    println!(
        "{label:<44} wall median {:>7.0} ms (min {:>6.0}, max {:>6.0})   CPU {:>7.0} ms ({:.3} ms/stack)   max RSS {:>6.1} MiB   fake CPU {:>5.0} ms   ({RUNS} runs)",
        median.wall * 1000.0,
        samples[0].wall * 1000.0,
        samples[RUNS - 1].wall * 1000.0,
        median.cpu * 1000.0,
        median.cpu * 1000.0 / per as f64,
        median.max_rss_kib as f64 / 1024.0,
        median.fake_cpu * 1000.0,
    );
}

/// Applies every stack, eight at a time (each has its own state file and lock).
fn apply_all(dir: &Path, kubeconfig: &Path, stacks: &[String]) {
    for batch in stacks.chunks(8) {
        std::thread::scope(|scope| {
            for stack in batch {
                scope.spawn(move || {
                    let out = Command::new(raystack_bin())
                        .args(["apply", stack, "--auto-approve", "--kubeconfig"])
                        .arg(kubeconfig)
                        .current_dir(dir)
                        .env("NO_COLOR", "1")
                        .stdin(Stdio::null())
                        .output()
                        .expect("run raystack apply");
                    assert!(
                        out.status.success(),
                        "apply {stack} failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                });
            }
        });
    }
}

fn main() {
    assert!(
        Path::new("/usr/bin/time").exists(),
        "this benchmark reads CPU time and peak memory through /usr/bin/time (Debian: `time`)"
    );

    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start(dir.path(), &["--latency-ms", "20"]);
    let stacks = write_stacks(dir.path(), 100);
    let online = |n: usize| -> Vec<String> {
        let mut a = vec![
            "plan".to_string(),
            "--kubeconfig".into(),
            fake.kubeconfig.display().to_string(),
        ];
        a.extend(stacks[..n].iter().cloned());
        a
    };
    report(
        "plan, 1 stack, 20 ms API latency",
        dir.path(),
        &online(1),
        1,
    );
    report(
        "plan, 100 stacks, 20 ms API latency",
        dir.path(),
        &online(100),
        100,
    );

    // The same stacks once applied, as in a review of changes to running stacks: state knows
    // every object, and each dry-run answers with the recorded resourceVersion, so nothing is
    // read (8 requests a stack); the dry-runs are updates of stored objects, not creates.
    apply_all(dir.path(), &fake.kubeconfig, &stacks);
    report(
        "plan, 1 applied stack, 20 ms API latency",
        dir.path(),
        &online(1),
        1,
    );
    report(
        "plan, 100 applied stacks, 20 ms API latency",
        dir.path(),
        &online(100),
        100,
    );

    let offline_dir = tempfile::tempdir().unwrap();
    let many = write_stacks(offline_dir.path(), 1000);
    let mut args = vec!["plan".to_string(), "--offline".into()];
    args.extend(many);
    report(
        "plan --offline, 1,000 stacks",
        offline_dir.path(),
        &args,
        1000,
    );
}
