//! Asking for `yes` before a command changes or disrupts something. Only a terminal is asked;
//! without one the command refuses unless `--auto-approve` (every command's one name for it)
//! answered already.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;

/// `Ok(true)` when `approved` or the user types `yes`. Without a terminal, refuses with `hint`
/// ("pass --auto-approve").
pub fn confirm(question: &str, approved: bool, hint: &str) -> anyhow::Result<bool> {
    if approved {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to continue without confirmation: stdin is not a terminal; {hint}");
    }
    eprint!("{question}\n  Only 'yes' will be accepted: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
