//! Every byte a user sees: colors, error chains, diagnostics, and (in submodules) the text,
//! JSON and Markdown renderings of plans. Nothing here decides anything.

use std::io::{IsTerminal, Write};

/// `--color`: when to color output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `--format`: the three renderings of every result, all made from the same model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    Markdown,
}

/// Whether to color output written to stderr/stdout, honouring `--color` and `NO_COLOR`.
pub fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        // Results go to stdout: color only when it is a terminal, so a redirected or piped
        // plan (a file, a pull-request comment) never carries escape codes.
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
        }
    }
}

/// Wraps `text` in an ANSI color when enabled.
pub fn paint(enabled: bool, code: &str, text: &str) -> String {
    if enabled {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub const RED: &str = "31";
pub const GREEN: &str = "32";
pub const YELLOW: &str = "33";
pub const BOLD: &str = "1";

/// Prints an error and its causes once, on stderr. Stack diagnostics are printed as they are
/// (one located `error:` line each, with its help), not folded into a "caused by" chain.
pub fn print_error(err: &anyhow::Error) {
    eprintln!("{}", error_text(err));
}

/// [`print_error`]'s text: the error, then each cause that adds something. HTTP stacks wrap one
/// failure in several layers that repeat each other (`client error (SendRequest)` six times);
/// a cause whose text is already part of what was printed is skipped, so each fact appears once.
pub fn error_text(err: &anyhow::Error) -> String {
    if let Some(diags) = err.downcast_ref::<crate::stack::Diagnostics>() {
        return diags.to_string();
    }
    let mut msg = format!("error: {}", clip(&err.to_string()));
    let mut seen = vec![err.to_string()];
    for cause in err.chain().skip(1) {
        if let Some(diags) = cause.downcast_ref::<crate::stack::Diagnostics>() {
            msg.push_str(&format!("\n{diags}"));
            break;
        }
        let text = cause.to_string();
        if text.trim().is_empty() || seen.iter().any(|s| s.contains(text.as_str())) {
            continue;
        }
        msg.push_str(&format!("\n  caused by: {}", clip(&text)));
        seen.push(text);
    }
    msg
}

pub use crate::text::clip;

pub mod plan_json;
pub mod plan_markdown;
pub mod plan_text;
pub mod progress;
pub mod review;
pub mod state;
pub mod status;
pub mod verify;
pub mod yaml;

/// Renders a plan in the requested format (text, JSON or Markdown), all from the same model.
pub fn render_plan(plan: &crate::plan::Plan, format: Format, color: bool) -> String {
    match format {
        Format::Text => plan_text::render(plan, color),
        Format::Json => plan_json::render(plan),
        Format::Markdown => plan_markdown::render(plan),
    }
}

/// Writes a result to stdout. A closed pipe (`raystack plan | head`) is not an error: the
/// reader has what it wanted, and the command's exit code still says what happened.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    write_stdout(|out| out.write_all(text.as_bytes())).map(|_| ())
}

/// Writes to stdout through `write`, buffered; a closed pipe (`| head`) is not an error, and
/// gives `None`.
pub fn write_stdout<T>(
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
) -> anyhow::Result<Option<T>> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match write(&mut out).and_then(|t| out.flush().map(|()| t)) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context("failed to write to stdout")),
    }
}

/// The engine's notices on stderr: `note: …`, `warning: …`, and retry lines as they are.
pub fn stderr_notices() -> crate::engine::Notify {
    std::sync::Arc::new(|notice: crate::engine::Notice| {
        use crate::engine::Notice;
        let line = match notice {
            Notice::Note(text) => format!("note: {text}"),
            Notice::Warning(text) => format!("warning: {text}"),
            Notice::Progress(text) => text,
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    })
}

#[cfg(test)]
mod tests;
