//! `raystack render`: (to be written)
use std::path::Path;
use std::process::ExitCode;

pub fn run(_stack: &Path, _out_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("render is not implemented yet")
}
