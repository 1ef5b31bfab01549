//! `raystack state list|show|pull|migrate`: read a stack's recorded state (without the lock:
//! every backend's writes are atomic) and print it, or move it to the other backend. Secret
//! values are never printed; state holds only fingerprints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use super::args::ClusterArgs;
use crate::output::print_stdout;
use crate::output::state::{list_text, show_text};
use crate::state::StateBackend;

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the objects recorded in a stack's state.
    List {
        /// The stack file whose state to read.
        stack: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Show a stack's state (no secret values: only fingerprints are ever stored).
    Show {
        /// The stack file whose state to read.
        stack: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Print the state document (the JSON the local backend stores) on stdout.
    Pull {
        /// The stack file whose state to read.
        stack: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Move the state to the other backend: same lineage, serial + 1, read back before the
    /// source is removed (a local file is kept as `<path>.migrated`).
    Migrate {
        /// The stack file whose state to move.
        stack: PathBuf,
        /// The backend to move the state to; it comes from the other one. `local`: the stack's
        /// `[state] path` (default `.raystack/<stack>.state.json` next to the stack file);
        /// `kubernetes`: Secrets in the `[state] namespace` of the cluster (default
        /// `raystack-system`).
        #[arg(long, value_name = "BACKEND", value_parser = backends())]
        to: StateBackend,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

/// `--to`'s values: the backends by the names the stack file gives them (`[state] backend`).
fn backends() -> impl TypedValueParser<Value = StateBackend> {
    PossibleValuesParser::new(StateBackend::ALL.map(StateBackend::name))
        .map(|name| backend_named(&name).expect("one of the possible values"))
}

/// A backend by its name.
fn backend_named(name: &str) -> Result<StateBackend, String> {
    StateBackend::ALL
        .into_iter()
        .find(|b| b.name() == name)
        .ok_or_else(|| format!("`{name}` is not a state backend (local or kubernetes)"))
}

pub async fn run(cmd: StateCommand) -> anyhow::Result<ExitCode> {
    let (stack, cluster, view) = match cmd {
        StateCommand::List { stack, cluster } => (stack, cluster, View::List),
        StateCommand::Show { stack, cluster } => (stack, cluster, View::Show),
        StateCommand::Pull { stack, cluster } => (stack, cluster, View::Pull),
        StateCommand::Migrate { stack, to, cluster } => {
            return super::unlock::migrate(&stack, to, &cluster).await;
        }
    };
    let read = cluster.engine().read_state(&stack).await?;
    let local = read.kind == StateBackend::Local;
    let Some(state) = read.state else {
        let location = match (view, local) {
            (View::Pull, _) | (_, false) => read.location,
            _ => format!("`{}`", read.stack.state.path.display()),
        };
        eprintln!(
            "No state recorded for stack `{}` ({location}).",
            read.stack.meta.name
        );
        return Ok(ExitCode::SUCCESS);
    };
    if view != View::Pull && state.stack != read.stack.meta.name {
        eprintln!(
            "warning: state {} was recorded for stack `{}`, not `{}`",
            read.location, state.stack, read.stack.meta.name
        );
    }
    let text = match view {
        View::List => list_text(&state),
        View::Show if local => show_text(
            &state,
            ("File:   ", read.stack.state.path.display().to_string()),
        ),
        View::Show => show_text(&state, ("Stored: ", read.location)),
        View::Pull => {
            let mut text =
                serde_json::to_string_pretty(&state).context("failed to encode state")?;
            text.push('\n');
            text
        }
    };
    print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    List,
    Show,
    Pull,
}
