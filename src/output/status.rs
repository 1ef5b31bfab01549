//! `raystack status` views: text (one line per check, the fix under each failure), JSON (the
//! `StackStatus` as is) and Markdown (a table, for a CI job summary).

use std::fmt::Write as _;

use crate::engine::{Outcome, StackStatus};
use crate::output::{BOLD, GREEN, RED, YELLOW, paint};

fn word(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "FAIL",
        Outcome::Unavailable => "n/a",
    }
}

fn verdict(s: &StackStatus) -> String {
    let failed = s.failed().len();
    if failed == 0 {
        "healthy: every check holds".to_string()
    } else {
        format!(
            "UNHEALTHY: {failed} check{} failed",
            if failed == 1 { "" } else { "s" }
        )
    }
}

pub fn text(s: &StackStatus, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "raystack status for stack `{}` (namespace `{}`, backend {})",
        s.stack, s.namespace, s.backend
    );
    let _ = writeln!(out, "durability: {}", s.durability);
    out.push('\n');
    for c in &s.checks {
        let w = format!("{:<5}", word(c.outcome));
        let w = match c.outcome {
            Outcome::Ok => paint(color, GREEN, &w),
            Outcome::Fail => paint(color, RED, &w),
            Outcome::Unavailable => paint(color, YELLOW, &w),
        };
        let _ = writeln!(out, "  {w} {:<12} {}: {}", c.area, c.name, c.value);
        if c.outcome == Outcome::Fail
            && let Some(fix) = &c.fix
        {
            let _ = writeln!(out, "        fix: {fix}");
        }
    }
    out.push('\n');
    let _ = writeln!(out, "{}", paint(color, BOLD, &verdict(s)));
    out
}

pub fn json(s: &StackStatus) -> String {
    let mut t = serde_json::to_string_pretty(s).expect("a status serializes");
    t.push('\n');
    t
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(s: &StackStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### raystack status: `{}` — {}\n", s.stack, verdict(s));
    let _ = writeln!(out, "Durability: {}\n", cell(&s.durability));
    out.push_str("| | area | check | value | what to do |\n|---|---|---|---|---|\n");
    for c in &s.checks {
        let mark = match c.outcome {
            Outcome::Ok => "✅",
            Outcome::Fail => "❌",
            Outcome::Unavailable => "➖",
        };
        let fix = match c.outcome {
            Outcome::Ok => String::new(),
            _ => c.fix.as_deref().map(cell).unwrap_or_default(),
        };
        let _ = writeln!(
            out,
            "| {mark} | {} | {} | {} | {fix} |",
            c.area,
            cell(&c.name),
            cell(&c.value)
        );
    }
    out
}
