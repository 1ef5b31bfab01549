//! Every byte a user sees: colors, error chains, diagnostics, and (in submodules) the text,
//! JSON and Markdown renderings of plans. Nothing here decides anything.

use std::io::IsTerminal;

use crate::cli::ColorChoice;

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

/// The longest line of an error raystack prints; longer lines (a 50 MB value echoed by a
/// library) are cut, saying how much was left out.
const MAX_ERROR_LINE: usize = 1000;

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

/// `text` cut to [`MAX_ERROR_LINE`] bytes (at a character boundary), saying how much was cut.
pub fn clip(text: &str) -> String {
    if text.len() <= MAX_ERROR_LINE {
        return text.to_string();
    }
    let mut end = MAX_ERROR_LINE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

pub mod plan_json;
pub mod plan_markdown;
pub mod plan_text;
pub mod progress;
pub mod review;
pub mod verify;
pub mod yaml;

/// Renders a plan in the requested format (text, JSON or Markdown), all from the same model.
pub fn render_plan(plan: &crate::plan::Plan, format: crate::cli::Format, color: bool) -> String {
    match format {
        crate::cli::Format::Text => plan_text::render(plan, color),
        crate::cli::Format::Json => plan_json::render(plan),
        crate::cli::Format::Markdown => plan_markdown::render(plan),
    }
}

#[cfg(test)]
mod tests;
