//! `raystack verify STACK`: arguments, consent and the view. The engine plans the stack and runs
//! the drill's preflight (`Engine::prepare_verify`), the drill is `crate::verify`; this file
//! refuses early (no terminal without `--auto-approve`), asks for `yes`, prints the report and
//! records its result for `raystack status` (`crate::verify::record`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, ValueEnum};

use super::args::{ClusterArgs, FormatArgs};
use super::confirm::confirm;
use crate::output::verify::{StderrVerifyProgress, dry_run, report};
use crate::output::{Format, print_stdout};
use crate::verify::report::{Disrupt, Outcome};

/// Which pods `verify` deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisruptArg {
    /// The Ray head pod.
    Head,
    /// The Redis pod (the GCS server exits with it, so the head container restarts too).
    Redis,
    /// The Ray head pod and the Redis pod.
    Both,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The stack file of the live cluster to drill.
    pub stack: PathBuf,
    /// Which pods to delete: the Ray head, the Redis pod, or both.
    #[arg(long, value_enum, value_name = "PODS", default_value_t = DisruptArg::Both)]
    pub disrupt: DisruptArg,
    /// Run preflight and print exactly what the drill would do; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the drill without asking for `yes` (required without a terminal).
    // `--yes`: the flag's name before every command spelled it `--auto-approve`.
    #[arg(long, alias = "yes")]
    pub auto_approve: bool,
    /// Bound on every wait of the drill (recovery, each probe job), e.g. "10m" or "90s".
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_timeout)]
    pub timeout: Duration,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Parses `--timeout` ("10m", "90s").
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = crate::stack::units::parse_duration(s)?;
    if d.is_zero() {
        return Err("the timeout must be more than 0s".into());
    }
    Ok(d)
}

pub async fn run(args: VerifyArgs, color: bool) -> anyhow::Result<ExitCode> {
    if !args.dry_run && !args.auto_approve && !std::io::stdin().is_terminal() {
        bail!(
            "refusing to run the drill without confirmation: it deletes the Ray head and Redis pods of a \
             running cluster, and stdin is not a terminal; pass --auto-approve, or see what it would do with --dry-run"
        );
    }
    let disrupt = match args.disrupt {
        DisruptArg::Head => Disrupt::Head,
        DisruptArg::Redis => Disrupt::Redis,
        DisruptArg::Both => Disrupt::Both,
    };
    let engine = args.cluster.engine();
    let v = engine
        .prepare_verify(&args.stack, disrupt, args.timeout)
        .await?;
    if args.dry_run {
        print_stdout(&dry_run(&v, args.format.format, color))?;
        return Ok(ExitCode::from(u8::from(v.blocked())));
    }
    if !v.blocked() && !args.auto_approve {
        let t = &v.preflight.targets;
        let disrupt = v.options.disrupt;
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
        if !confirm(&question, false, "pass --auto-approve")? {
            eprintln!("Verify cancelled; nothing was changed.");
            return Ok(ExitCode::from(1));
        }
    }
    let mut progress = StderrVerifyProgress { color };
    let ran = !v.blocked();
    let r = v.drill(&mut progress).await;
    // Recorded for `raystack status` when the drill ran (a refusal disrupted nothing and says
    // nothing about the GCS); a record that cannot be written does not change the outcome.
    if ran && let Ok(stack) = crate::stack::load(&args.stack) {
        let record = crate::verify::record::Recorded::of(&r, std::time::SystemTime::now());
        if let Err(e) = crate::verify::record::write(&stack, &record) {
            eprintln!(
                "warning: could not record the result for `raystack status` in {}: {e}",
                crate::verify::record::path(&stack).display()
            );
        }
    }
    print_stdout(&report(
        &r,
        args.format.format,
        color && args.format.format == Format::Text,
    ))?;
    Ok(ExitCode::from(u8::from(r.result != Outcome::Pass)))
}
