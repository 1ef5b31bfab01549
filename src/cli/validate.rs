//! `raystack validate`: (being written)
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(_stacks: &[PathBuf], _color: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("validate is not implemented yet")
}
