//! The Markdown plan for pull-request comments, rendered from the plan model: a one-line
//! summary, a loud warning for destroy or data loss, the durability table, one collapsed
//! `<details>` block per changed object.

use super::plan_text::{data_loss_line, diff_lines, durability_rows, summary_line, verb};
use crate::plan::{Action, Plan};
use crate::preflight::Severity;

fn escape(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let title = if plan.destroy { "destroy plan" } else { "plan" };
    out.push_str(&format!(
        "**raystack {title} `{}`**: {}\n\n",
        plan.stack,
        summary_line(plan)
    ));
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
            out.push_str(&format!(
                "- **{label}** `{}/{}`: {}{fix}\n",
                f.provider,
                f.check,
                escape(&f.message)
            ));
        }
        out.push('\n');
    }
    for c in plan
        .resource_changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
    {
        let loss = if c.data_loss { " <b>DATA LOSS</b>" } else { "" };
        let reason = c
            .reason
            .as_deref()
            .map(|r| format!(": {}", escape(r)))
            .unwrap_or_default();
        out.push_str(&format!(
            "<details><summary><code>{}</code> <code>{}</code> {}{loss}{reason}</summary>\n\n",
            c.action.symbol(),
            c.address,
            verb(c.action)
        ));
        if let Some(d) = &c.drift {
            out.push_str(&format!("Drift: {}\n\n", escape(d)));
        }
        let lines = diff_lines(c);
        if !lines.is_empty() {
            out.push_str("```diff\n");
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
            out.push_str("```\n\n");
        }
        out.push_str("</details>\n\n");
    }
    let unchanged = plan
        .resource_changes
        .iter()
        .filter(|c| c.action == Action::NoOp)
        .count();
    if unchanged > 0 {
        out.push_str(&format!("{unchanged} object(s) unchanged.\n"));
    }
    out
}
