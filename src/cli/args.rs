//! Arguments several commands share, each defined and documented once: where the cluster is
//! (`--context`, `--kubeconfig`, `--request-timeout`, turned into the engine's `Target`), how a
//! result is printed (`--format`), and how a review document is sized and marked
//! (`--max-bytes`, `--marker`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::engine::{Engine, Target};

/// Where the Kubernetes cluster is.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// kubeconfig context to use (default: the stack's `cluster.context`, else the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Deadline of each Kubernetes API call, retries of 429/503/504 answers included
    /// ("30s", "2m"; a bare number is seconds).
    #[arg(
        long,
        value_name = "DURATION",
        env = "RAYSTACK_REQUEST_TIMEOUT",
        hide_env_values = true,
        default_value = "60s",
        value_parser = parse_request_timeout
    )]
    pub request_timeout: Duration,
}

impl ClusterArgs {
    /// The engine for one command on this cluster, its notices on stderr.
    pub fn engine(&self) -> Engine {
        let target = Target {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            request_timeout: self.request_timeout,
        };
        Engine::new(target, crate::output::stderr_notices())
    }
}

/// The longest `--request-timeout`: a day is far beyond any API call, and a deadline this far
/// ahead is still representable (a larger one overflowed the clock and panicked).
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

fn parse_request_timeout(s: &str) -> Result<Duration, String> {
    let d = match s.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => crate::stack::units::parse_duration(s)?,
    };
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    if d > MAX_REQUEST_TIMEOUT {
        return Err("is longer than the limit of 24h (each API call's deadline)".into());
    }
    Ok(d)
}

/// `--format`, the same on every command that prints a result (`plan`, `diff`, `show`, `verify`).
#[derive(Debug, Clone, Copy, Args)]
pub struct FormatArgs {
    /// How to print the result: `text` for a terminal or a log, `json` for programs (one
    /// document on stdout), `markdown` for a pull-request comment or a change record.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = crate::output::Format::Text)]
    pub format: crate::output::Format,
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

impl ReviewArgs {
    /// How the review of a command's stacks is printed.
    pub fn view(&self, format: crate::output::Format, color: bool) -> crate::output::review::View {
        crate::output::review::View::new(format, color, self.max_bytes)
    }
}
