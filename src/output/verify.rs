//! The `raystack verify` views: the report as text (a pass/fail table for a terminal) and as
//! Markdown (to paste into a change record), both rendered from `crate::verify::report::Report`
//! (JSON is the report itself); the dry-run listing; and the drill's progress lines on stderr.

use std::fmt::Write as _;
use std::io::Write as _;

use super::{GREEN, RED, YELLOW, paint};
use crate::verify::report::{Disrupt, Level, Outcome, Report, StepStatus};
use crate::verify::{Event, Progress};

fn disrupted(d: Disrupt) -> &'static str {
    match d {
        Disrupt::Head => "the Ray head pod",
        Disrupt::Redis => "the Redis pod",
        Disrupt::Both => "the Ray head pod and the Redis pod",
    }
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Ok => "ok",
        Level::Warning => "warning",
        Level::Error => "error",
    }
}

fn step_status(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Ok => "ok",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    }
}

fn seconds(s: Option<f64>) -> String {
    s.map(|s| format!("{s:.1}s"))
        .unwrap_or_else(|| "-".to_string())
}

/// The timing rows: (what, seconds), only those the drill measured or meant to.
fn timing_rows(r: &Report) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if r.disrupt.head() {
        rows.push(("head ready", seconds(r.timings.head_ready_seconds)));
    }
    if r.disrupt.redis() {
        rows.push(("Redis ready", seconds(r.timings.redis_ready_seconds)));
    }
    rows.push((
        "GCS answering again",
        seconds(r.timings.gcs_answering_seconds),
    ));
    rows
}

fn verdict(r: &Report) -> String {
    match r.result {
        Outcome::Pass => format!(
            "PASS: the GCS state (a finished job's record and a detached actor) survived the loss of {}",
            disrupted(r.disrupt)
        ),
        Outcome::Fail => format!(
            "FAIL: the GCS lost {} when {} went away",
            r.lost.join(" and "),
            disrupted(r.disrupt)
        ),
        Outcome::Error => format!(
            "ERROR: the drill did not complete: {}",
            r.error.as_deref().unwrap_or("unknown error")
        ),
    }
}

/// The report's notes, one `Note:` line each, before the preflight.
fn notes_text(s: &mut String, r: &Report) {
    for n in &r.notes {
        let _ = writeln!(s, "Note: {n}");
    }
    if !r.notes.is_empty() {
        s.push('\n');
    }
}

/// The report for a terminal.
pub fn render_text(r: &Report, color: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "raystack verify: stack `{}` (RayCluster `{}/{}`), disrupting {}\n",
        r.stack,
        r.namespace,
        r.ray_cluster,
        disrupted(r.disrupt)
    );
    notes_text(&mut s, r);
    s.push_str("Preflight:\n");
    let w = r.preflight.iter().map(|f| f.check.len()).max().unwrap_or(0);
    for f in &r.preflight {
        let tag = format!("{:<7}", level(f.level));
        let tag = match f.level {
            Level::Ok => paint(color, GREEN, &tag),
            Level::Warning => paint(color, YELLOW, &tag),
            Level::Error => paint(color, RED, &tag),
        };
        let _ = writeln!(s, "  {tag}  {:<w$}  {}", f.check, f.detail);
    }
    if !r.steps.is_empty() {
        s.push_str("\nSteps:\n");
        for st in &r.steps {
            let _ = writeln!(
                s,
                "  {:<7}  {:<7}  {:>6}  {}",
                step_status(st.status),
                st.step,
                format!("{:.1}s", st.seconds),
                st.detail
            );
        }
    }
    if !r.checks.is_empty() {
        s.push_str("\nChecks:\n");
        let w = r.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for c in &r.checks {
            let tag = if c.passed {
                paint(color, GREEN, "PASS")
            } else {
                paint(color, RED, "FAIL")
            };
            let _ = writeln!(
                s,
                "  {tag}  {:<w$}  expected: {}; observed: {}",
                c.check, c.expected, c.observed
            );
        }
    }
    if r.steps.iter().any(|st| st.step == "recover") {
        s.push_str("\nTimings (from the pod deletion):\n");
        for (what, t) in timing_rows(r) {
            let _ = writeln!(s, "  {what:<20}  {t:>7}");
        }
    }
    if !r.lost.is_empty() {
        s.push_str("\nLost:\n");
        for l in &r.lost {
            let _ = writeln!(s, "  - {l}");
        }
    }
    if !r.likely_causes.is_empty() {
        s.push_str("\nLikely causes:\n");
        for c in &r.likely_causes {
            let _ = writeln!(s, "  - {c}");
        }
    }
    if !r.steps.is_empty() {
        let _ = writeln!(
            s,
            "\nCleanup: {}",
            if r.cleanup.ok {
                "ok".to_string()
            } else {
                paint(color, RED, "FAILED")
            }
        );
        for d in &r.cleanup.detail {
            let _ = writeln!(s, "  - {d}");
        }
    }
    let v = verdict(r);
    let v = match r.result {
        Outcome::Pass => paint(color, GREEN, &v),
        _ => paint(color, RED, &v),
    };
    let _ = writeln!(s, "\n{v}");
    s
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as Markdown, to paste into a change record or a pull request.
pub fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    let badge = match r.result {
        Outcome::Pass => "✅ PASS",
        Outcome::Fail => "❌ FAIL",
        Outcome::Error => "⚠️ ERROR",
    };
    let _ = writeln!(
        s,
        "### raystack verify: {badge} — stack `{}` (RayCluster `{}/{}`)\n",
        r.stack, r.namespace, r.ray_cluster
    );
    let _ = writeln!(s, "{}\n", md_cell(&verdict(r)));
    for n in &r.notes {
        let _ = writeln!(s, "> **Note:** {}\n", md_cell(n));
    }
    if !r.checks.is_empty() {
        s.push_str("| check | result | expected | observed |\n|---|---|---|---|\n");
        for c in &r.checks {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                md_cell(&c.check),
                if c.passed { "pass" } else { "**FAIL**" },
                md_cell(&c.expected),
                md_cell(&c.observed)
            );
        }
        s.push('\n');
    }
    if r.steps.iter().any(|st| st.step == "recover") {
        s.push_str("| after the pod deletion | seconds |\n|---|---|\n");
        for (what, t) in timing_rows(r) {
            let _ = writeln!(s, "| {what} | {t} |");
        }
        s.push('\n');
    }
    if !r.lost.is_empty() {
        s.push_str("**Lost:**\n\n");
        for l in &r.lost {
            let _ = writeln!(s, "- {}", md_cell(l));
        }
        s.push('\n');
    }
    if !r.likely_causes.is_empty() {
        s.push_str("**Likely causes:**\n\n");
        for c in &r.likely_causes {
            let _ = writeln!(s, "- {}", md_cell(c));
        }
        s.push('\n');
    }
    if !r.cleanup.ok {
        let _ = writeln!(
            s,
            "**Cleanup failed:** {}\n",
            md_cell(&r.cleanup.detail.join("; "))
        );
    }
    s.push_str("<details><summary>Preflight and steps</summary>\n\n");
    s.push_str("| preflight | status | detail |\n|---|---|---|\n");
    for f in &r.preflight {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            md_cell(&f.check),
            level(f.level),
            md_cell(&f.detail)
        );
    }
    if !r.steps.is_empty() {
        s.push_str("\n| step | status | seconds | detail |\n|---|---|---|---|\n");
        for st in &r.steps {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {} |",
                st.step,
                step_status(st.status),
                st.seconds,
                md_cell(&st.detail)
            );
        }
    }
    s.push_str("\n</details>\n");
    s
}

/// What `--dry-run` prints: preflight as found, then the steps the drill would take.
pub fn render_dry_run(r: &Report, steps: &[String], color: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "raystack verify --dry-run: stack `{}` (RayCluster `{}/{}`); nothing will be changed\n",
        r.stack, r.namespace, r.ray_cluster
    );
    notes_text(&mut s, r);
    s.push_str("Preflight:\n");
    let w = r.preflight.iter().map(|f| f.check.len()).max().unwrap_or(0);
    for f in &r.preflight {
        let tag = format!("{:<7}", level(f.level));
        let tag = match f.level {
            Level::Ok => paint(color, GREEN, &tag),
            Level::Warning => paint(color, YELLOW, &tag),
            Level::Error => paint(color, RED, &tag),
        };
        let _ = writeln!(s, "  {tag}  {:<w$}  {}", f.check, f.detail);
    }
    let blocked = r.preflight.iter().any(|f| f.level == Level::Error);
    if blocked {
        s.push_str(
            "\nverify would stop here: a precondition failed, and nothing would be disrupted.\n",
        );
    }
    s.push_str(if blocked {
        "\nOtherwise, verify would:\n"
    } else {
        "\nverify would:\n"
    });
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(s, "  {}. {step}", i + 1);
    }
    s
}

/// `verify --dry-run` in the chosen format: the preflight and the steps the drill would take.
pub fn dry_run(v: &crate::engine::VerifyPrepared, format: super::Format, color: bool) -> String {
    let steps = v.steps();
    // The report as it would open: the stack, the backend, the notes and the preflight.
    let shell = crate::verify::drill_report_shell(&v.preflight, &v.options);
    match format {
        super::Format::Json => {
            let mut s = serde_json::to_string_pretty(&DryRun {
                format_version: crate::verify::FORMAT_VERSION,
                dry_run: true,
                stack: &shell.stack,
                namespace: &shell.namespace,
                ray_cluster: &shell.ray_cluster,
                backend: &shell.backend,
                disrupt: shell.disrupt,
                notes: &shell.notes,
                preflight: &shell.preflight,
                blocked: v.blocked(),
                steps: &steps,
            })
            .expect("a dry run serializes");
            s.push('\n');
            s
        }
        _ => render_dry_run(&shell, &steps, color && format == super::Format::Text),
    }
}

/// `--dry-run --format json`.
#[derive(serde::Serialize)]
struct DryRun<'a> {
    format_version: &'a str,
    dry_run: bool,
    stack: &'a str,
    namespace: &'a str,
    ray_cluster: &'a str,
    backend: &'a str,
    disrupt: Disrupt,
    notes: &'a [String],
    preflight: &'a [crate::verify::report::Finding],
    blocked: bool,
    steps: &'a [String],
}

/// A drill's report in the chosen format.
pub fn report(r: &Report, format: super::Format, color: bool) -> String {
    match format {
        super::Format::Text => render_text(r, color),
        super::Format::Json => r.to_json(),
        super::Format::Markdown => render_markdown(r),
    }
}

/// The drill's progress on stderr, one line per event.
pub struct StderrVerifyProgress {
    pub color: bool,
}

impl Progress for StderrVerifyProgress {
    fn event(&mut self, e: Event) {
        let line = match e {
            Event::Step { step, message } => format!("verify: {step}: {message}"),
            Event::Waiting {
                step,
                message,
                elapsed,
            } => paint(
                self.color,
                YELLOW,
                &format!(
                    "verify: {step}: still waiting after {:.0}s: {message}",
                    elapsed.as_secs_f64()
                ),
            ),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::report::{
        Check, Cleanup, DeletedPod, Evidence, Finding, Step, Timings, likely_causes,
    };

    /// An embedded stack's failed drill: the head only was disrupted and the store came back
    /// empty.
    fn embedded_failure() -> Report {
        let step = |step: &str, seconds: f64, detail: &str| Step {
            step: step.into(),
            status: StepStatus::Ok,
            seconds,
            detail: detail.into(),
        };
        Report {
            format_version: "1".into(),
            stack: "ray-embedded".into(),
            namespace: "ray-embedded".into(),
            ray_cluster: "ray-embedded".into(),
            backend: "embedded".into(),
            disrupt: Disrupt::Head,
            result: Outcome::Fail,
            notes: vec![crate::verify::EMBEDDED_NOTE.into()],
            preflight: vec![Finding::ok(
                "head pod",
                "`ray-embedded-head-x1y2z` is ready",
            )],
            steps: vec![
                step(
                    "record",
                    9.5,
                    "job `raystack-verify-0a1b2c3d-record` SUCCEEDED",
                ),
                step("disrupt", 0.1, "deleted `ray-embedded-head-x1y2z`"),
                step("recover", 31.0, "back after 31.0s"),
                step("check", 12.2, "0 of 2 checks passed"),
                step(
                    "cleanup",
                    6.0,
                    "actor `raystack-verify-0a1b2c3d` was already gone",
                ),
            ],
            pods_deleted: vec![DeletedPod {
                role: "head".into(),
                name: "ray-embedded-head-x1y2z".into(),
                uid: "0b0e1d2c-0000-4000-8000-000000000001".into(),
            }],
            checks: vec![
                Check {
                    check: "probe job record survived".into(),
                    passed: false,
                    expected: "SUCCEEDED".into(),
                    observed: "missing".into(),
                },
                Check {
                    check: "detached actor survived with its token".into(),
                    passed: false,
                    expected: "alive, same token".into(),
                    observed: "missing".into(),
                },
            ],
            timings: Timings {
                head_ready_seconds: Some(29.0),
                redis_ready_seconds: None,
                gcs_answering_seconds: Some(29.0),
                total_seconds: 58.8,
            },
            lost: vec![
                "job record `raystack-verify-0a1b2c3d-record`".into(),
                "detached actor `raystack-verify-0a1b2c3d` (Ray namespace `raystack-verify`)"
                    .into(),
            ],
            likely_causes: likely_causes(&Evidence {
                disrupt: Some(Disrupt::Head),
                embedded: true,
                pvc: "ray-embedded-gcs-pvc".into(),
                job_lost: true,
                actor_lost: true,
                pvc_uid_before: Some("u".into()),
                pvc_uid_after: Some("u".into()),
                ..Evidence::default()
            }),
            cleanup: Cleanup {
                ok: true,
                detail: vec!["actor `raystack-verify-0a1b2c3d` was already gone".into()],
            },
            error: None,
        }
    }

    /// The note comes first, the timings have no Redis line, and the causes are the embedded
    /// store's, in both views.
    #[test]
    fn an_embedded_report_notes_the_head_only_drill_and_has_no_redis_timing() {
        let r = embedded_failure();
        insta::assert_snapshot!("verify_embedded_failure_text", render_text(&r, false));
        insta::assert_snapshot!("verify_embedded_failure_markdown", render_markdown(&r));
    }
}
