//! `raystack apply` and `raystack destroy`: (to be written)
use std::process::ExitCode;

use super::{ApplyArgs, DestroyArgs};

pub async fn run_apply(_args: ApplyArgs, _color: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("apply is not implemented yet")
}

pub async fn run_destroy(_args: DestroyArgs, _color: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("destroy is not implemented yet")
}
