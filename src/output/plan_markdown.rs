//! The Markdown plan for pull-request comments, rendered from the plan model: a one-line
//! summary, a loud warning for destroy or data loss, the durability table, one collapsed
//! `<details>` block per changed object. The pieces are public so the multi-stack review
//! document (`review`) arranges the same blocks under its summary table.

use super::plan_text::{
    Detail, change_notes, data_loss_line, diff_lines_with, durability_rows, summary_line, verb,
};
use crate::plan::ownership::left_alone;
use crate::plan::{Action, Plan};
use crate::preflight::Severity;

/// Escapes text for a Markdown table cell or inline HTML: pipes, and angle brackets that
/// would otherwise open HTML.
pub fn escape(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A code fence longer than any run of backticks in `body`, so content never closes it.
pub fn fence(body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// `**raystack plan `demo`**: Plan: …`
pub fn headline(plan: &Plan) -> String {
    let title = if plan.destroy { "destroy plan" } else { "plan" };
    format!(
        "**raystack {title} `{}`**: {}\n\n",
        plan.stack,
        summary_line(plan)
    )
}

/// The alerts a reviewer must see: DATA LOSS, deletions, drift, plan errors.
pub fn alerts(plan: &Plan) -> String {
    let mut out = String::new();
    if let Some(line) = data_loss_line(plan) {
        out.push_str(&format!("> [!CAUTION]\n> **{}**\n\n", escape(&line)));
    }
    if plan.summary.destroy > 0 && !plan.data_loss {
        out.push_str(&format!(
            "> [!WARNING]\n> **This plan deletes {} object(s).**\n\n",
            plan.summary.destroy
        ));
    }
    if plan.drift {
        out.push_str("> [!NOTE]\n> Objects changed outside raystack (drift); apply restores what the stack declares.\n\n");
    }
    for e in &plan.errors {
        out.push_str(&format!("> [!CAUTION]\n> error: {}\n\n", escape(e)));
    }
    out
}

/// The durability table and its explanation.
pub fn durability(plan: &Plan) -> String {
    let mut out = String::new();
    let (rows, notes) = durability_rows(&plan.durability);
    if !rows.is_empty() {
        out.push_str("| Durability | |\n|---|---|\n");
        for (k, v) in rows {
            out.push_str(&format!("| {} | {} |\n", escape(&k), escape(&v)));
        }
        out.push('\n');
        for n in notes {
            out.push_str(&format!("- {}\n", escape(&n)));
        }
        out.push('\n');
    }
    out
}

fn finding_line(f: &crate::preflight::Finding) -> String {
    let label = match f.severity {
        Severity::Ok => "ok",
        Severity::Warning => "warning",
        Severity::Error => "error",
    };
    let fix = f
        .fix
        .as_deref()
        .map(|x| format!(" Fix: {}", escape(x)))
        .unwrap_or_default();
    format!(
        "- **{label}** `{}/{}`: {}{fix}\n",
        f.provider,
        f.check,
        escape(&f.message)
    )
}

/// The preflight findings: one line when all passed, else one bullet each.
pub fn preflight(plan: &Plan) -> String {
    preflight_with(plan, true)
}

/// The preflight findings, without the errors when `errors` is false (a review shows those
/// in the open, outside the collapsed details).
pub fn preflight_with(plan: &Plan, errors: bool) -> String {
    let mut out = String::new();
    if !plan.preflight.is_empty() && plan.preflight.iter().all(|f| f.severity == Severity::Ok) {
        // All passed: one line naming the checks, so reviewers see they ran.
        let names: Vec<String> = plan
            .preflight
            .iter()
            .map(|f| format!("`{}/{}`", f.provider, f.check))
            .collect();
        out.push_str(&format!(
            "**Preflight**: all {} checks passed ({}).\n\n",
            names.len(),
            names.join(", ")
        ));
    } else if !plan.preflight.is_empty() {
        out.push_str("**Preflight**\n\n");
        for f in &plan.preflight {
            if errors || f.severity != Severity::Error {
                out.push_str(&finding_line(f));
            }
        }
        out.push('\n');
    }
    out
}

/// Only the preflight errors (empty when there are none).
pub fn preflight_errors(plan: &Plan) -> String {
    let errors: Vec<String> = plan
        .preflight
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(finding_line)
        .collect();
    if errors.is_empty() {
        return String::new();
    }
    format!("**Preflight errors**\n\n{}\n", errors.concat())
}

/// One collapsed block per changed object (diff shown per `detail`; none from
/// [`Detail::NoDiffs`] on, where each object is one line), then the unchanged count.
pub fn changes(plan: &Plan, detail: Detail) -> String {
    let mut out = String::new();
    for c in plan
        .resource_changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .filter(|c| detail < Detail::Essentials || c.data_loss)
    {
        let loss = if c.data_loss { " <b>DATA LOSS</b>" } else { "" };
        let reason = c
            .reason
            .as_deref()
            .map(|r| format!(": {}", escape(r)))
            .unwrap_or_default();
        let head = format!(
            "<code>{}</code> <code>{}</code> {}{loss}{reason}",
            c.action.symbol(),
            c.address,
            verb(c.action)
        );
        if detail >= Detail::NoDiffs {
            out.push_str(&format!("- {head}\n"));
            continue;
        }
        out.push_str(&format!("<details><summary>{head}</summary>\n\n"));
        if let Some(d) = &c.drift {
            out.push_str(&format!("Drift: {}\n\n", escape(d)));
        }
        for (label, text) in change_notes(c) {
            let label = match label {
                "data loss" => "**DATA LOSS**",
                "rollout" => "**Rollout**",
                _ => "Note",
            };
            out.push_str(&format!("{label}: {}\n\n", escape(text)));
        }
        let lines = diff_lines_with(c, detail.context_lines());
        if !lines.is_empty() {
            let body = lines.join("\n");
            let fence = fence(&body);
            out.push_str(&format!("{fence}diff\n{body}\n{fence}\n\n"));
        }
        out.push_str("</details>\n\n");
    }
    if detail >= Detail::NoDiffs && !out.is_empty() {
        out.push('\n');
    }
    let unchanged = plan
        .resource_changes
        .iter()
        .filter(|c| c.action == Action::NoOp && left_alone(c).is_none())
        .count();
    if unchanged > 0 && detail < Detail::Essentials {
        out.push_str(&format!("{unchanged} object(s) unchanged.\n"));
    }
    for c in &plan.resource_changes {
        if let Some(why) = left_alone(c) {
            out.push_str(&format!(
                "\nLeft alone: <code>{}</code>: {}\n",
                c.address,
                escape(why)
            ));
        }
    }
    out
}

pub fn render(plan: &Plan) -> String {
    render_with(plan, Detail::Full)
}

/// The single-stack Markdown plan at the given level of detail.
pub fn render_with(plan: &Plan, detail: Detail) -> String {
    let mut out = headline(plan);
    out.push_str(&alerts(plan));
    if detail < Detail::Essentials {
        out.push_str(&durability(plan));
        out.push_str(&preflight(plan));
    } else {
        out.push_str(&preflight_errors(plan));
    }
    out.push_str(&changes(plan, detail));
    out
}
