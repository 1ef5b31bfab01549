//! The `raystack` binary: parse arguments, run, map the result to an exit code (0 success or no
//! changes, 1 any error including usage errors, 2 changes with `--detailed-exitcode`), print the
//! error chain once.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator. A plan is built from many small JSON values,
/// strings and futures, allocated and freed on tokio's worker threads; with glibc's malloc,
/// `perf` of `plan` over 100 stacks put malloc and free at about a fifth of the samples and the
/// kernel (heap page faults, futex wake-ups) at a third. mimalloc cut that plan's CPU by about a
/// fifth (BENCHMARKS.md, "Many stacks in release, on a quiet machine").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // kube and the cloud SDKs may bring different rustls crypto providers; pick one for the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Usage errors exit 1 like every other error (clap's default is 2, which a CI script reading
    // `--detailed-exitcode` would take for "changes present"); --help and --version exit 0.
    let cli = match raystack::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    raystack::cli::run_to_exit(cli)
}
