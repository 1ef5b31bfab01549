//! `raystack state`: (to be written)
use std::process::ExitCode;

use super::StateCommand;

pub fn run(_cmd: StateCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("state is not implemented yet")
}
