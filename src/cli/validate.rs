//! `raystack validate STACK...`: parse and validate each file, report every problem, and
//! refuse stacks given together that share a state file (each would plan to delete the
//! other's objects). Each valid stack is followed by what its durability settings really
//! promise, in numbers. Exit 0 when all files are valid, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::durability_promise;
use crate::output::{BOLD, GREEN, RED, YELLOW, paint};
use crate::stack;

pub fn run(stacks: &[PathBuf], color: bool) -> anyhow::Result<ExitCode> {
    let mut invalid = 0usize;
    // (stack file, state file) of every valid stack with a local state file.
    let mut state_files: Vec<(&PathBuf, PathBuf)> = Vec::new();
    for path in stacks {
        match crate::render::load(path) {
            Ok(s) => {
                if s.state.backend == stack::StateBackend::Local {
                    let state = std::path::absolute(&s.state.path).unwrap_or(s.state.path.clone());
                    state_files.push((path, state));
                }
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
                );
                println!("  durability: {}", durability_promise(&s));
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
    for (i, (path, state)) in state_files.iter().enumerate() {
        let Some((first, _)) = state_files[..i].iter().find(|(_, s)| s == state) else {
            continue;
        };
        invalid += 1;
        eprintln!(
            "{} {} and {} share the state file `{}`: each would plan to delete the other's objects",
            paint(color, RED, "error:"),
            first.display(),
            path.display(),
            state.display()
        );
        eprintln!("  help: give each stack its own `[state] path`");
    }
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
