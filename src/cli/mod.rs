//! The command line: clap definitions (their doc comments are the `--help` text) and dispatch.
//! Each command lives in its own file and returns an exit code; errors bubble up as anyhow.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod apply;
mod backend;
mod diff;
mod plan;
mod render;
mod review;
mod state;
mod validate;
mod verify;

/// Provision a fault-tolerant Ray cluster with a durable Redis on Kubernetes: plan, review, apply.
#[derive(Debug, Parser)]
#[command(name = "raystack", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to color output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    Markdown,
}

/// Where the Kubernetes cluster is.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// kubeconfig context to use (default: the stack's `cluster.context`, else the current context).
    #[arg(long)]
    pub context: Option<String>,
    /// kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Deadline of each Kubernetes API call, retries of 429/503/504 answers included
    /// ("30s", "2m"; a bare number is seconds).
    #[arg(
        long,
        value_name = "DURATION",
        env = "RAYSTACK_REQUEST_TIMEOUT",
        default_value = "60s",
        value_parser = parse_request_timeout
    )]
    pub request_timeout: std::time::Duration,
}

impl Default for ClusterArgs {
    fn default() -> Self {
        ClusterArgs {
            context: None,
            kubeconfig: None,
            request_timeout: crate::cluster::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

fn parse_request_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.trim().parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => crate::stack::units::parse_duration(s)?,
    };
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check stack files; no cluster needed. Exit 0 when all are valid, 1 otherwise.
    Validate {
        /// Stack files.
        #[arg(required = true)]
        stacks: Vec<PathBuf>,
    },
    /// Print the desired Kubernetes objects as YAML (Secret values are never rendered).
    Render {
        stack: PathBuf,
        /// Write one YAML file per object into DIR instead of printing.
        #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Compare the stack with the cluster and state; show what apply would do.
    Plan(PlanArgs),
    /// Apply a stack (after showing its plan) or a saved plan file.
    Apply(ApplyArgs),
    /// Delete everything the stack created, RayCluster first.
    Destroy(DestroyArgs),
    /// Show a saved plan file.
    Show {
        planfile: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compare two revisions of stack files (e.g. a pull request's base and head): no cluster,
    /// no state. Flags DATA LOSS like `plan`.
    ///
    /// `raystack diff BASE_STACK HEAD_STACK` compares two files; `raystack diff --base GITREF
    /// [STACK...]` compares each stack file with its version at GITREF in the enclosing git
    /// repository (a stack added since GITREF is all-create, a removed one all-destroy; with no
    /// STACK, every changed stack file).
    Diff(DiffArgs),
    /// Inspect, download or move recorded state.
    #[command(subcommand)]
    State(StateCommand),
    /// Release a stack's state lock left by a run that died or hangs (both backends). Asks for
    /// confirmation; refuses any ID but the current lock's.
    ForceUnlock {
        stack: PathBuf,
        /// The lock ID, as printed by the command that found the stack locked.
        lock_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Run the GCS fault-tolerance drill on the live cluster: record a finished job and a
    /// detached actor, delete the Ray head and Redis pods, wait for them to come back, check
    /// that both survived, report. Exit 0 pass, 1 fail or error.
    Verify(VerifyArgs),
}

/// Which pods `verify` deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisruptArg {
    Head,
    Redis,
    Both,
}

impl From<DisruptArg> for crate::verify::report::Disrupt {
    fn from(d: DisruptArg) -> Self {
        match d {
            DisruptArg::Head => Self::Head,
            DisruptArg::Redis => Self::Redis,
            DisruptArg::Both => Self::Both,
        }
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub stack: PathBuf,
    /// Which pods to delete: the Ray head, the Redis pod, or both.
    #[arg(long, value_enum, default_value_t = DisruptArg::Both)]
    pub disrupt: DisruptArg,
    /// Run preflight and print exactly what the drill would do; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Bound on every wait of the drill (recovery, each probe job), e.g. "10m" or "90s".
    #[arg(long, default_value = "10m", value_parser = verify::parse_timeout)]
    pub timeout: std::time::Duration,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(required = true)]
    pub stacks: Vec<PathBuf>,
    /// Plan against the recorded state alone: no cluster, no cloud calls.
    #[arg(long)]
    pub offline: bool,
    /// Save the plan for `raystack apply PLANFILE`.
    #[arg(long = "out", value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 0 when there are no changes, 1 on error, 2 when there are changes.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// How many stacks to plan at once (each keeps its own requests concurrent too).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    #[command(flatten)]
    pub review: ReviewArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// How a review document (several stacks, or a pull-request comment) is sized and marked.
#[derive(Debug, Clone, Args)]
pub struct ReviewArgs {
    /// Keep the output within N bytes by showing less detail (unchanged diff context first,
    /// then object diffs), never the summary table, DATA LOSS lines or errors. Default for
    /// markdown: 65536 (GitHub's comment limit in characters; bytes are never fewer). 0: no limit.
    #[arg(long, value_name = "N")]
    pub max_bytes: Option<usize>,
    /// The id in the Markdown marker comment `<!-- raystack: ID -->` that a CI step looks for
    /// to update its previous comment.
    #[arg(long, value_name = "ID", default_value = crate::output::review::DEFAULT_MARKER)]
    pub marker: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// BASE_STACK HEAD_STACK; with --base, the stack files to compare (default: every stack
    /// file changed since GITREF).
    #[arg(value_name = "STACK")]
    pub stacks: Vec<PathBuf>,
    /// Compare with the stack files' versions at this git revision (branch, tag, commit).
    #[arg(long, value_name = "GITREF")]
    pub base: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 0 when there are no changes, 1 on error, 2 when there are changes.
    #[arg(long)]
    pub detailed_exitcode: bool,
    #[command(flatten)]
    pub review: ReviewArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A stack file, or a plan file saved with `plan --out`.
    pub target: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Allow changes that delete, replace or shrink the Redis volume.
    #[arg(long)]
    pub allow_data_loss: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    pub stack: PathBuf,
    #[arg(long)]
    pub auto_approve: bool,
    /// Also delete the protected Redis volume (PVC).
    #[arg(long)]
    pub allow_data_loss: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the objects recorded in a stack's state.
    List {
        stack: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Show a stack's state (no secret values: only fingerprints are ever stored).
    Show {
        stack: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Print the state document (the JSON the local backend stores) on stdout.
    Pull {
        stack: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Move the state to the other backend: same lineage, serial + 1, read back before the
    /// source is removed (a local file is kept as `<path>.migrated`).
    Migrate {
        stack: PathBuf,
        /// The backend to move the state to; it comes from the other one.
        #[arg(long, value_enum)]
        to: MigrateTo,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MigrateTo {
    Local,
    Kubernetes,
}

/// Runs one parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let color = crate::output::color_enabled(cli.color);
    match cli.command {
        Command::Validate { stacks } => validate::run(&stacks, color),
        Command::Render { stack, out_dir } => render::run(&stack, out_dir.as_deref()),
        Command::Plan(args) => plan::run(args, color).await,
        Command::Apply(args) => apply::run_apply(args, color).await,
        Command::Destroy(args) => apply::run_destroy(args, color).await,
        Command::Show { planfile, format } => plan::show(&planfile, format, color),
        Command::Diff(args) => diff::run(args, color),
        Command::State(StateCommand::Pull { stack, cluster }) => {
            backend::pull(&stack, &cluster).await
        }
        Command::State(StateCommand::Migrate { stack, to, cluster }) => {
            let to = match to {
                MigrateTo::Local => crate::state::BackendKind::Local,
                MigrateTo::Kubernetes => crate::state::BackendKind::Kubernetes,
            };
            backend::migrate(&stack, to, &cluster).await
        }
        Command::State(cmd) => state::run(cmd).await,
        Command::ForceUnlock {
            stack,
            lock_id,
            force,
            cluster,
        } => backend::force_unlock(&stack, &lock_id, force, &cluster).await,
        Command::Verify(args) => verify::run(args, color).await,
    }
}
