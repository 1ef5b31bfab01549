//! `raystack validate STACK...`: parse and validate each file, report every problem.
//! Exit 0 when all files are valid, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::output::{BOLD, GREEN, RED, YELLOW, paint};
use crate::stack;

pub fn run(stacks: &[PathBuf], color: bool) -> anyhow::Result<ExitCode> {
    let mut invalid = 0usize;
    for path in stacks {
        match stack::load(path) {
            Ok(s) => {
                for w in &s.warnings {
                    eprintln!("{} {w}", paint(color, YELLOW, "warning:"));
                }
                println!(
                    "{} {}: stack `{}` ({} provider, namespace `{}`, {} worker group{})",
                    paint(color, GREEN, "valid"),
                    path.display(),
                    s.meta.name,
                    s.cluster.provider.name(),
                    s.meta.namespace,
                    s.ray.workers.len(),
                    if s.ray.workers.len() == 1 { "" } else { "s" },
                )
            }
            Err(diags) => {
                invalid += 1;
                for d in &diags.0 {
                    eprintln!("{} {d}", paint(color, RED, "error:"));
                }
                let n = diags.0.len();
                eprintln!(
                    "{} {}: {n} problem{}",
                    paint(color, BOLD, "invalid"),
                    path.display(),
                    if n == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
