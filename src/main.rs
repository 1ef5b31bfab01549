//! The `raystack` binary: parse arguments, run, map the result to an exit code (0 success or no
//! changes, 1 any error including usage errors, 2 changes with `--detailed-exitcode`), print the
//! error chain once.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the binary's edge: it prints the error chain"
)]

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
    // Stacks are planned on worker threads (`Engine::plan_many`), and a cloud SDK's preflight
    // futures are deep: a worker gets the main thread's 8 MiB of stack, not tokio's 2 MiB
    // (a GCP preflight overflowed that in a debug build).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 << 20)
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(raystack::cli::run(cli));
    // The command is done: every write it makes was awaited. Its idle connections and tasks
    // end with the process; waiting for the worker threads to wind them down first only delays
    // the exit.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(err) => {
            raystack::output::print_error(&err);
            ExitCode::from(1)
        }
    }
}
