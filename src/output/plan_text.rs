//! The text plan of docs/design.md §6, rendered from the plan model (never from engine internals):
//! durability summary, preflight findings, one unified YAML diff per changed object, summary line.

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::yaml::{to_yaml, with_yaml};
use super::{BOLD, GREEN, RED, YELLOW, paint};
use crate::plan::ownership::left_alone;
use crate::plan::{Action, Plan, ResourceChange};
use crate::preflight::Severity;

/// How much of a plan to show. Review documents lower a stack's detail step by step until the
/// document fits its size limit; a single plan is shown in [`Detail::Full`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detail {
    /// Everything: every changed object's diff with three lines of unchanged context.
    Full,
    /// Diffs without their unchanged context lines.
    ChangedLines,
    /// One line per changed object (action, address, reason, DATA LOSS); no diffs.
    NoDiffs,
    /// Only what a reviewer must not miss: the summary, every DATA LOSS line, plan errors and
    /// preflight errors.
    Essentials,
}

impl Detail {
    /// Unchanged lines shown around each change in a diff.
    pub fn context_lines(self) -> usize {
        if self == Detail::Full { 3 } else { 0 }
    }
}

/// Lines of a change's diff, each starting with `+`, `-`, ` ` or `@` (hunk separator), without
/// color, with three lines of unchanged context. Shared by the text and Markdown renderings.
pub fn diff_lines(c: &ResourceChange) -> Vec<String> {
    diff_lines_with(c, 3)
}

/// [`diff_lines`] with `context` unchanged lines around each change.
pub fn diff_lines_with(c: &ResourceChange, context: usize) -> Vec<String> {
    let mut out = Vec::new();
    visit_diff(c, context, |sign, text| out.push(format!("{sign} {text}")));
    out
}

/// Calls `line(sign, text)` for each line of a change's diff, in order: `sign` is `+`, `-`,
/// ` `, or `@` for a hunk separator (its text is `...`); `text` has no line ending.
fn visit_diff(c: &ResourceChange, context: usize, mut line: impl FnMut(char, &str)) {
    let yaml = |v: &Option<Value>| v.as_ref().map(to_yaml).unwrap_or_default();
    match (&c.before, &c.after) {
        (None, None) => {}
        (None, Some(after)) => with_yaml(after, |y| y.lines().for_each(|l| line('+', l))),
        (Some(before), None) => with_yaml(before, |y| y.lines().for_each(|l| line('-', l))),
        (Some(_), Some(_)) => {
            let (before, after) = (yaml(&c.before), yaml(&c.after));
            let diff = TextDiff::from_lines(&before, &after);
            for (i, group) in diff.grouped_ops(context).iter().enumerate() {
                if i > 0 {
                    line('@', "...");
                }
                for op in group {
                    for change in diff.iter_changes(op) {
                        let sign = match change.tag() {
                            ChangeTag::Delete => '-',
                            ChangeTag::Insert => '+',
                            ChangeTag::Equal => ' ',
                        };
                        line(sign, change.value().trim_end_matches('\n'));
                    }
                }
            }
        }
    }
}

/// Human wording of an action: "will be created".
pub fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "will be replaced (deleted, then created)",
        Action::Delete => "will be deleted",
        Action::NoOp => "unchanged",
    }
}

/// The `Plan: …` or `No changes. …` line.
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    if !plan.has_changes() {
        // "The cluster matches the stack" is not true of a plan that cannot be applied.
        if !plan.errors.is_empty() {
            return "No changes can be applied: the plan is blocked (see its errors).".to_string();
        }
        return if plan.destroy {
            "No changes. Nothing to destroy.".to_string()
        } else {
            "No changes. The cluster matches the stack.".to_string()
        };
    }
    format!(
        "Plan: {} to add, {} to change, {} to replace, {} to destroy.",
        s.add, s.change, s.replace, s.destroy
    )
}

/// The loud data-loss sentence, when the plan loses data.
pub fn data_loss_line(plan: &Plan) -> Option<String> {
    if !plan.data_loss {
        return None;
    }
    let which = plan.data_loss_addresses();
    Some(if plan.destroy && plan.guarded_data_loss().is_empty() {
        format!(
            "DATA LOSS: destroying this stack loses GCS state ({}); destroy proceeds without --allow-data-loss, which only the Redis volume needs.",
            which.join(", ")
        )
    } else if plan.destroy {
        format!(
            "DATA LOSS: destroying this stack loses GCS state and the volumes that hold it ({}).",
            which.join(", ")
        )
    } else {
        format!(
            "DATA LOSS: this plan loses GCS state ({}); `raystack apply` refuses it without --allow-data-loss.",
            which.join(", ")
        )
    })
}

/// The labelled lines a change carries besides its diff: why it loses data, the rollout,
/// other notes. Shared by the text and Markdown renderings.
pub fn change_notes(c: &ResourceChange) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    if let Some(why) = &c.data_loss_reason {
        out.push(("data loss", why.as_str()));
    }
    if let Some(r) = &c.rollout {
        out.push(("rollout", r.as_str()));
    }
    for n in &c.notes {
        out.push(("note", n.as_str()));
    }
    if let Some(a) = &c.adopt {
        out.push((
            "adopt",
            if a.import == Some(crate::plan::ownership::ImportProof::Imported) {
                "found by `raystack import` (the UID it recorded): apply adopts it in place, adds raystack's labels and takes over its fields"
            } else if a.import == Some(crate::plan::ownership::ImportProof::Recreated) {
                "exists with another UID than `raystack import` recorded (recreated since): not the imported object; apply takes it over only with --adopt"
            } else if a.tool.is_some() {
                "exists, not created by raystack, and managed by another deployment tool: apply takes it over only with --adopt --take-ownership"
            } else {
                "exists but was not created by raystack: apply takes it over only with --adopt"
            },
        ));
        out.push(("owner", a.owner.as_str()));
    }
    out
}

fn humanize(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(humanize).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// `(label, value)` rows of the durability summary, then its explanation sentences.
pub fn durability_rows(d: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if let Some(m) = d.as_object() {
        for (k, v) in m {
            if k == "explanation" {
                notes = v.as_array().into_iter().flatten().map(humanize).collect();
            } else {
                rows.push((k.clone(), humanize(v)));
            }
        }
    }
    (rows, notes)
}

/// Renders the whole text plan.
pub fn render(plan: &Plan, color: bool) -> String {
    render_with(plan, color, Detail::Full)
}

/// Renders the text plan at the given level of detail.
pub fn render_with(plan: &Plan, color: bool, detail: Detail) -> String {
    let mut out = String::new();
    let title = if plan.destroy { "destroy plan" } else { "plan" };
    out.push_str(&paint(
        color,
        BOLD,
        &format!(
            "raystack {title} for stack `{}` (namespace `{}`)",
            plan.stack, plan.namespace
        ),
    ));
    out.push_str("\n\n");

    let (rows, notes) = durability_rows(&plan.durability);
    if detail < Detail::Essentials && (!rows.is_empty() || !notes.is_empty()) {
        out.push_str(&paint(color, BOLD, "Durability"));
        out.push('\n');
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &rows {
            out.push_str(&format!("  {k:<width$}  {v}\n"));
        }
        for n in &notes {
            out.push_str(&format!("  * {n}\n"));
        }
        out.push('\n');
    }

    let shown_preflight =
        detail < Detail::Essentials || plan.preflight.iter().any(|f| f.severity == Severity::Error);
    if !plan.preflight.is_empty() && shown_preflight {
        out.push_str(&paint(color, BOLD, "Preflight"));
        out.push('\n');
        for f in &plan.preflight {
            if detail == Detail::Essentials && f.severity != Severity::Error {
                continue;
            }
            let (label, code) = match f.severity {
                Severity::Ok => ("ok", GREEN),
                Severity::Warning => ("warning", YELLOW),
                Severity::Error => ("error", RED),
            };
            out.push_str(&format!(
                "  {} {}/{}: {}\n",
                paint(color, code, &format!("{label:<7}")),
                f.provider,
                f.check,
                f.message
            ));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("          fix: {fix}\n"));
            }
        }
        out.push('\n');
    }

    if plan.offline {
        out.push_str("Planned offline: compared with the recorded state only; the cluster was not consulted.\n\n");
    }

    let changed: Vec<&ResourceChange> = plan
        .resource_changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .filter(|c| detail < Detail::Essentials || c.data_loss)
        .collect();
    if !changed.is_empty() {
        out.push_str(&paint(color, BOLD, "Changes"));
        out.push('\n');
    }
    for c in &changed {
        let code = match c.action {
            Action::Create => GREEN,
            Action::Delete => RED,
            Action::Replace => RED,
            _ => YELLOW,
        };
        let loss = if c.data_loss {
            format!(" {}", paint(color, RED, "(DATA LOSS)"))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {} {} {}{loss}\n",
            paint(color, code, c.action.symbol()),
            paint(color, BOLD, &c.address),
            verb(c.action)
        ));
        if let Some(reason) = &c.reason {
            out.push_str(&format!("      reason: {reason}\n"));
        }
        for (label, text) in change_notes(c) {
            let line = format!("{label}: {text}");
            let painted = match label {
                "data loss" => paint(color, RED, &line),
                "rollout" => paint(color, YELLOW, &line),
                _ => line,
            };
            out.push_str(&format!("      {painted}\n"));
        }
        if let Some(drift) = &c.drift {
            out.push_str(&format!(
                "      {}\n",
                paint(color, YELLOW, &format!("drift: {drift}"))
            ));
        }
        if detail >= Detail::NoDiffs {
            // The review document says what was left out, once, at its end.
        } else if plan.offline && c.action == Action::Update && c.before.is_none() {
            out.push_str(
                "      (offline: the previous manifest is not recorded, so no diff is shown)\n",
            );
        } else {
            // Written straight into `out`: a plan has hundreds of diff lines.
            visit_diff(c, detail.context_lines(), |sign, text| {
                let code = match sign {
                    '+' => Some(GREEN),
                    '-' => Some(RED),
                    _ => None,
                };
                out.push_str("      ");
                match code {
                    Some(code) if color => {
                        out.push_str(&paint(color, code, &format!("{sign} {text}")));
                    }
                    _ => {
                        out.push(sign);
                        out.push(' ');
                        out.push_str(text);
                    }
                }
                out.push('\n');
            });
        }
        out.push('\n');
    }
    let unchanged: Vec<&str> = plan
        .resource_changes
        .iter()
        .filter(|c| c.action == Action::NoOp && left_alone(c).is_none())
        .map(|c| c.address.as_str())
        .collect();
    if detail < Detail::Essentials
        && !unchanged.is_empty()
        && !changed.is_empty()
        && plan.kept.is_empty()
    {
        out.push_str(&format!("Unchanged: {}\n\n", unchanged.join(", ")));
    }
    // What raystack will not touch because it is not provably this stack's: always said.
    let alone: Vec<(&str, &str)> = plan
        .resource_changes
        .iter()
        .filter_map(|c| Some((c.address.as_str(), left_alone(c)?)))
        .collect();
    if !alone.is_empty() {
        out.push_str(&paint(color, BOLD, "Left alone"));
        out.push('\n');
        for (address, why) in alone {
            out.push_str(&format!("  {address}: {why}\n"));
        }
        out.push('\n');
    }
    if !plan.kept.is_empty() && detail < Detail::Essentials {
        out.push_str(&paint(color, BOLD, "Kept"));
        out.push('\n');
        for kept in plan
            .resource_changes
            .iter()
            .filter(|c| plan.kept.contains(&c.address))
        {
            let reason = kept.reason.as_deref().unwrap_or("");
            out.push_str(&format!(
                "  {}: {}\n",
                kept.address,
                reason.trim_start_matches("kept: ")
            ));
            for n in &kept.notes {
                out.push_str(&format!("      note: {n}\n"));
            }
        }
        out.push('\n');
    }
    for e in &plan.errors {
        out.push_str(&format!("{} {e}\n", paint(color, RED, "error:")));
    }
    if let Some(line) = data_loss_line(plan) {
        out.push_str(&paint(color, RED, &line));
        out.push('\n');
    }
    if plan.drift {
        out.push_str(&paint(
            color,
            YELLOW,
            "Drift: objects changed outside raystack; apply restores what the stack declares.",
        ));
        out.push('\n');
    }
    out.push_str(&paint(color, BOLD, &summary_line(plan)));
    out.push('\n');
    out
}

/// The line `apply` and `destroy` end with: what was done, and how many deletes only dropped a
/// state entry because the object was already gone.
pub fn outcome_line(plan: &Plan, verb: &str) -> String {
    let s = &plan.summary;
    let gone = plan
        .resource_changes
        .iter()
        .filter(|c| c.action == crate::plan::Action::Delete && c.before.is_none())
        .count();
    let gone_note = if gone > 0 {
        format!(" ({gone} already gone from the cluster, dropped from state)")
    } else {
        String::new()
    };
    format!(
        "{verb} complete! Resources: {} added, {} changed, {} replaced, {} destroyed{gone_note}.\n",
        s.add,
        s.change,
        s.replace,
        s.destroy - gone
    )
}
