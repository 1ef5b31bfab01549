//! State that lasts in CI. A stack whose `[state]` names no backend keeps its state in a local
//! file next to the stack file; on a CI runner that file goes with the runner, and the next run
//! starts from nothing (it cannot prune what the lost state recorded). With `CI` set (GitHub
//! Actions, GitLab CI, Buildkite, CircleCI … set `CI=true`), `apply` and `destroy` of such a
//! stack refuse, and `plan` warns; writing `backend = "local"` keeps a local file on purpose.

use std::path::Path;

use anyhow::bail;

use crate::output::{YELLOW, paint};
use crate::stack::Stack;

/// Whether this runs in CI: `CI` is set to anything but empty, `0` or `false`.
pub fn running_in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// The stack at `path`, when it names no state backend. A stack that does not load is left to
/// the command, which reports its errors.
fn undeclared(path: &Path) -> Option<Stack> {
    crate::stack::load(path)
        .ok()
        .filter(|s| !s.state.backend_declared)
}

/// What to write instead, for the stack file `path`.
fn fix(path: &Path) -> String {
    format!(
        "set `[state] backend = \"kubernetes\"` in `{}` to keep state in the cluster, or write \
         `backend = \"local\"` under `[state]` to keep a local file on purpose",
        path.display()
    )
}

/// `apply` and `destroy` in CI: refuses a stack without a declared state backend.
pub fn refuse_default_state(path: &Path, command: &str) -> anyhow::Result<()> {
    if !running_in_ci() {
        return Ok(());
    }
    let Some(stack) = undeclared(path) else {
        return Ok(());
    };
    bail!(
        "refusing to {command} stack `{}` in CI (CI is set) with the default local state: \
         `[state]` names no backend, so the state would be written to `{}` on this runner and \
         lost with it, and the next run could neither update nor prune what this one did; {}",
        stack.meta.name,
        stack.state.path.display(),
        fix(path)
    )
}

/// `plan` in CI: warns about each stack without a declared state backend.
pub fn warn_default_state(paths: &[impl AsRef<Path>], color: bool) {
    if !running_in_ci() {
        return;
    }
    for path in paths {
        let path = path.as_ref();
        if let Some(stack) = undeclared(path) {
            eprintln!(
                "{} stack `{}` keeps its state in a local file by default (`[state]` names no \
                 backend), and this runs in CI (CI is set): `raystack apply` refuses it here; {}",
                paint(color, YELLOW, "warning:"),
                stack.meta.name,
                fix(path)
            );
        }
    }
}
