//! `raystack plan` and `raystack show`: (to be written)
use std::path::Path;
use std::process::ExitCode;

use super::{Format, PlanArgs};

pub async fn run(_args: PlanArgs, _color: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("plan is not implemented yet")
}

pub fn show(_planfile: &Path, _format: Format, _color: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("show is not implemented yet")
}
