//! `raystack verify STACK`: arguments, consent and the view. The drill itself is
//! `crate::verify`; this file refuses early (no terminal without `--yes`), plans the stack to
//! find pending changes, runs preflight, asks for `yes`, runs the drill and prints its report.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use super::plan::{Mode, prepare, print_stdout};
use super::{Format, VerifyArgs};
use crate::output::verify::{StderrVerifyProgress, render_dry_run, render_markdown, render_text};
use crate::plan::Action;
use crate::verify::preflight::{self, Preflight};
use crate::verify::probe::Probe;
use crate::verify::report::{Disrupt, Finding, Outcome, Report};
use crate::verify::{Options, dry_run_steps};

/// Parses `--timeout` ("10m", "90s").
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = crate::stack::units::parse_duration(s)?;
    if d.is_zero() {
        return Err("the timeout must be more than 0s".into());
    }
    Ok(d)
}

/// `--dry-run --format json`: the preflight and the steps the drill would take.
#[derive(Serialize)]
struct DryRun<'a> {
    format_version: &'a str,
    dry_run: bool,
    stack: &'a str,
    namespace: &'a str,
    ray_cluster: &'a str,
    disrupt: Disrupt,
    preflight: &'a [Finding],
    blocked: bool,
    steps: &'a [String],
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question}\n  Only 'yes' will be accepted: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

fn print_report(report: &Report, format: Format, color: bool) -> anyhow::Result<()> {
    let text = match format {
        Format::Text => render_text(report, color),
        Format::Json => report.to_json(),
        Format::Markdown => render_markdown(report),
    };
    print_stdout(&text)
}

pub async fn run(args: VerifyArgs, color: bool) -> anyhow::Result<ExitCode> {
    if !args.dry_run && !args.yes && !std::io::stdin().is_terminal() {
        bail!(
            "refusing to run the drill without confirmation: it deletes the Ray head and Redis pods of a \
             running cluster, and stdin is not a terminal; pass --yes, or see what it would do with --dry-run"
        );
    }
    let stack = crate::stack::load(&args.stack)?;
    let disrupt = crate::verify::disrupt_for(&stack, args.disrupt.into())?;
    let prepared = prepare(
        &args.stack,
        &args.cluster,
        Mode::Plan { offline: false },
        "verify",
    )
    .await
    .with_context(|| format!("failed to plan `{}`", args.stack.display()))?;
    let plan = prepared.plan;
    // Held until the drill ends: no apply may change the stack while its pods are disrupted.
    let _lock = prepared.lock;
    let cluster = prepared.cluster.context("verify needs a cluster")?;
    let mut pending: Vec<String> = plan
        .resource_changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| c.address.clone())
        .collect();
    pending.extend(plan.blocking_problems());

    let pre: Preflight = preflight::run(&cluster, &stack, disrupt, &pending).await;
    let opts = Options {
        disrupt,
        timeout: args.timeout,
    };
    let probe = Probe::new();
    let blocked = !pre.blocking().is_empty();

    if args.dry_run {
        let steps = dry_run_steps(&pre, &opts, &probe);
        let t = &pre.targets;
        let text = match args.format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&DryRun {
                    format_version: crate::verify::FORMAT_VERSION,
                    dry_run: true,
                    stack: &t.stack,
                    namespace: &t.namespace,
                    ray_cluster: &t.ray_cluster,
                    disrupt,
                    preflight: &pre.findings,
                    blocked,
                    steps: &steps,
                })?;
                s.push('\n');
                s
            }
            _ => {
                let shell = crate::verify::drill_report_shell(&pre, &opts);
                render_dry_run(&shell, &steps, color && args.format == Format::Text)
            }
        };
        print_stdout(&text)?;
        return Ok(ExitCode::from(u8::from(blocked)));
    }

    if !blocked && !args.yes {
        let t = &pre.targets;
        let mut pods = Vec::new();
        if disrupt.head() {
            pods.extend(t.head_pod.as_ref().map(|p| format!("`{}`", p.name)));
        }
        if disrupt.redis() {
            pods.extend(t.redis_pod.as_ref().map(|p| format!("`{}`", p.name)));
        }
        let question = format!(
            "verify deletes pod {} in namespace `{}` and waits for them to come back; Ray is unavailable \
             meanwhile. Run the drill on stack `{}`?",
            pods.join(" and "),
            t.namespace,
            t.stack
        );
        if !confirm(&question)? {
            eprintln!("Verify cancelled; nothing was changed.");
            return Ok(ExitCode::from(1));
        }
    }
    let mut progress = StderrVerifyProgress { color };
    let report = crate::verify::drill(&cluster, pre, opts, probe, &mut progress).await;
    print_report(&report, args.format, color && args.format == Format::Text)?;
    Ok(if report.result == Outcome::Pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
