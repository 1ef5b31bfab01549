//! The command line: clap definitions (their doc comments are the `--help` text), dispatch, and
//! the views. Each command lives in its own file: it parses its arguments, asks the engine
//! (`crate::engine`) to do the work, picks a view from `crate::output` and returns an exit code;
//! errors bubble up as anyhow.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod apply;
mod args;
mod ci;
mod confirm;
mod destroy;
mod diff;
mod import;
mod interrupt;
mod plan;
mod render;
mod review;
mod state;
mod status;
mod unlock;
mod validate;
mod verify;

pub use crate::output::{ColorChoice, Format};
pub use args::{ClusterArgs, FormatArgs, ReviewArgs};

/// Provision a fault-tolerant Ray cluster with a durable Redis on Kubernetes: plan, review, apply.
#[derive(Debug, Parser)]
#[command(name = "raystack", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to color output: `auto` colors a terminal (and honours NO_COLOR), `always`,
    /// `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check stack files; no cluster needed. Exit 0 when all are valid, 1 otherwise.
    Validate {
        /// Stack files.
        #[arg(required = true, value_name = "STACK")]
        stacks: Vec<PathBuf>,
    },
    /// Print the desired Kubernetes objects as YAML (Secret values are never rendered).
    Render {
        /// The stack file to render.
        stack: PathBuf,
        /// Write one YAML file per object into DIR instead of printing.
        #[arg(long = "out-dir", value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Compare the stack with the cluster and state; show what apply would do.
    Plan(plan::PlanArgs),
    /// Apply a stack (after showing its plan) or a saved plan file.
    Apply(apply::ApplyArgs),
    /// Delete everything the stack created, RayCluster first.
    Destroy(destroy::DestroyArgs),
    /// Show a saved plan file.
    Show {
        /// A plan file saved with `plan --out` or `plan --out-dir`.
        planfile: PathBuf,
        #[command(flatten)]
        format: args::FormatArgs,
    },
    /// Compare two revisions of stack files (e.g. a pull request's base and head): no cluster,
    /// no state. Flags DATA LOSS like `plan`.
    ///
    /// `raystack diff BASE_STACK HEAD_STACK` compares two files; `raystack diff --base GITREF
    /// [STACK...]` compares each stack file with its version at GITREF in the enclosing git
    /// repository (a stack added since GITREF is all-create, a removed one all-destroy; with no
    /// STACK, every changed stack file).
    Diff(diff::DiffArgs),
    /// Write a stack file that adopts a Ray cluster already running (its RayCluster and the
    /// Redis behind it) in place, under the existing names, without losing its GCS state. Reads
    /// only; exit 0 when the file was written, 1 when import refuses (naming why).
    Import(import::ImportArgs),
    /// Inspect, download or move recorded state.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Release a stack's state lock left by a run that died or hangs (both backends). Asks for
    /// confirmation; refuses any ID but the current lock's.
    ForceUnlock(unlock::ForceUnlockArgs),
    /// Run the GCS fault-tolerance drill on the live cluster: record a finished job and a
    /// detached actor, delete the Ray head and Redis pods, wait for them to come back, check
    /// that both survived, report. Exit 0 pass, 1 fail or error.
    Verify(verify::VerifyArgs),
    /// Is the GCS safe right now? Read-only, no lock: the durability promise, the RayCluster and
    /// head pod, the Redis pod, Redis's persistence health (through its exporter), the volume,
    /// the state and the last verify. Exit 0 when every check holds, 1 otherwise.
    Status(status::StatusArgs),
}

/// Runs one parsed command line on a new tokio runtime and returns the process exit code,
/// printing the error chain once. The runtime and its `block_on` live here, not in `main.rs`:
/// `block_on` is where every command's future is polled, so the crate that calls it compiles
/// the whole async call graph. Called from the library, it is compiled once, in the library;
/// called from the binary, the release build compiled that graph a second time, in the binary,
/// on the build's critical path (docs/design.md §11, "Build cost").
pub fn run_to_exit(cli: Cli) -> ExitCode {
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
    let result = runtime.block_on(crate::cli::run(cli));
    // The command is done: every write it makes was awaited. Its idle connections and tasks
    // end with the process; waiting for the worker threads to wind them down first only delays
    // the exit.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(err) => {
            crate::output::print_error(&err);
            ExitCode::from(1)
        }
    }
}

/// Runs one parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let color = crate::output::color_enabled(cli.color);
    match cli.command {
        Command::Validate { stacks } => validate::run(&stacks, color),
        Command::Render { stack, out_dir } => render::run(&stack, out_dir.as_deref()),
        Command::Plan(args) => plan::run(args, color).await,
        Command::Apply(args) => interrupted_is_130(apply::run(args, color).await),
        Command::Destroy(args) => interrupted_is_130(destroy::run(args, color).await),
        Command::Show { planfile, format } => plan::show(&planfile, format.format, color),
        Command::Diff(args) => diff::run(args, color),
        Command::Import(args) => import::run(args).await,
        Command::State(cmd) => state::run(cmd).await,
        Command::ForceUnlock(args) => unlock::force_unlock(args).await,
        Command::Verify(args) => verify::run(args, color).await,
        Command::Status(args) => status::run(args, color).await,
    }
}

/// An apply or destroy stopped by an interrupt says what was applied and exits
/// [`interrupt::EXIT_INTERRUPTED`], not 1.
fn interrupted_is_130(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match result {
        Err(err)
            if matches!(
                err.downcast_ref::<crate::apply::ApplyError>(),
                Some(crate::apply::ApplyError::Interrupted { .. })
            ) =>
        {
            crate::output::print_error(&err);
            Ok(ExitCode::from(interrupt::EXIT_INTERRUPTED))
        }
        other => other,
    }
}
