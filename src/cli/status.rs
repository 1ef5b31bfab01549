//! `raystack status STACK`: the health of a deployed stack's GCS storage right now, read-only
//! and without the state lock (the engine's `status`), printed as text, JSON or Markdown. Exit 0
//! when every check holds, 1 when one fails or a required one cannot be made.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::args::ClusterArgs;
use crate::output::{Format, print_stdout, status};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The stack file whose cluster, Redis and state to check.
    #[arg(value_name = "STACK")]
    pub stack: PathBuf,
    #[command(flatten)]
    pub format: super::args::FormatArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub async fn run(args: StatusArgs, color: bool) -> anyhow::Result<ExitCode> {
    let engine = args.cluster.engine();
    let s = engine.status(&args.stack).await?;
    let text = match args.format.format {
        Format::Text => status::text(&s, color),
        Format::Json => status::json(&s),
        Format::Markdown => status::markdown(&s),
    };
    print_stdout(&text)?;
    Ok(ExitCode::from(u8::from(!s.healthy)))
}
