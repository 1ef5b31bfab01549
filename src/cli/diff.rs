//! `raystack diff`: what changing stack files from one revision to another would do, with no
//! cluster and no state — for pull-request review in CI. Two files (`diff BASE HEAD`), or each
//! stack file against its version at a git revision (`diff --base REF [STACK...]`). The same
//! text, JSON and Markdown renderings as `plan`, with the same DATA LOSS flag, in one review
//! document when there are several stacks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

use super::DiffArgs;
use super::review::{Describe, exit_code, print};
use crate::output::review::Outcome;
use crate::plan::Plan;
use crate::stack::Stack;
use crate::stack::revision::{self, RepoFile};

fn objects(s: &Stack) -> Vec<Value> {
    crate::render::render(s)
        .objects
        .into_iter()
        .map(|d| d.manifest)
        .collect()
}

/// The plan taking `base` to `head` (either may be absent: an added or a removed stack).
fn compare(base: Option<&Stack>, head: Option<&Stack>) -> anyhow::Result<Plan> {
    let Some(named) = head.or(base) else {
        bail!("the stack exists in neither revision");
    };
    let durability = serde_json::to_value(crate::render::summarize(named))
        .context("failed to summarize durability")?;
    Ok(crate::plan::compare(
        &named.meta.name,
        &named.meta.namespace,
        durability,
        &base.map(objects).unwrap_or_default(),
        &head.map(objects).unwrap_or_default(),
    ))
}

pub fn run(args: DiffArgs, color: bool) -> anyhow::Result<ExitCode> {
    let Some(reference) = args.base.clone() else {
        let [base, head] = args.stacks.as_slice() else {
            bail!(
                "diff takes BASE_STACK HEAD_STACK, or --base GITREF [STACK...]; got {} file(s)",
                args.stacks.len()
            );
        };
        let base_stack = crate::stack::load(base)?;
        let head_stack = crate::stack::load(head)?;
        let plan = compare(Some(&base_stack), Some(&head_stack))?;
        let outcomes = [Outcome::Planned(Box::new(plan))];
        print(
            &outcomes,
            args.format,
            color,
            &args.review,
            Describe {
                title: "diff".into(),
                full_hint: "Run `raystack diff` with `--max-bytes 0` to see everything.".into(),
            },
        )?;
        return Ok(exit_code(&outcomes, args.detailed_exitcode));
    };
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let stacks: Vec<PathBuf> = if args.stacks.is_empty() {
        changed_stacks(&cwd, &reference)?
    } else {
        args.stacks.clone()
    };
    // One commit per repository (stacks may live in different repositories).
    let mut commits: Vec<(PathBuf, String)> = Vec::new();
    let mut outcomes = Vec::new();
    for path in &stacks {
        let outcome = match diff_at(path, &reference, &mut commits) {
            Ok(plan) => Outcome::Planned(Box::new(plan)),
            Err(err) => Outcome::Failed {
                stack_file: path.display().to_string(),
                error: crate::output::error_text(&err),
            },
        };
        outcomes.push(outcome);
    }
    let title = format!("diff against `{reference}`");
    if outcomes.is_empty() {
        let text = match args.format {
            super::Format::Json => "[]\n".to_string(),
            super::Format::Markdown => format!(
                "{}\n**raystack {title}**: no stack file changed.\n",
                crate::output::review::marker(&args.review.marker)
            ),
            super::Format::Text => format!("No stack file changed since `{reference}`.\n"),
        };
        super::plan::print_stdout(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    print(
        &outcomes,
        args.format,
        color,
        &args.review,
        Describe {
            title,
            full_hint: format!(
                "Run `raystack diff --base {reference}` with `--max-bytes 0` (or `--format text`) to see everything."
            ),
        },
    )?;
    Ok(exit_code(&outcomes, args.detailed_exitcode))
}

/// One stack file in the work tree against its version at `reference`.
fn diff_at(
    path: &Path,
    reference: &str,
    commits: &mut Vec<(PathBuf, String)>,
) -> anyhow::Result<Plan> {
    let file = revision::locate(path)?;
    let commit = match commits.iter().find(|(root, _)| *root == file.root) {
        Some((_, c)) => c.clone(),
        None => {
            let c = revision::resolve(&file.root, reference)?;
            commits.push((file.root.clone(), c.clone()));
            c
        }
    };
    let base = match revision::read_at(&file, &commit)? {
        // Diagnostics name the revision, e.g. `main:stacks/prod.toml:12:3`.
        Some(text) => Some(crate::stack::parse_str(
            &base_name(&file, reference),
            &text,
        )?),
        None => None,
    };
    let head = if path.exists() {
        Some(crate::stack::load(path)?)
    } else {
        None
    };
    if base.is_none() && head.is_none() {
        bail!(
            "`{}` exists neither in the work tree nor at `{reference}`",
            path.display()
        );
    }
    compare(base.as_ref(), head.as_ref())
}

fn base_name(file: &RepoFile, reference: &str) -> PathBuf {
    PathBuf::from(format!("{reference}:{}", file.path))
}

/// Every stack file (a `*.toml` with a `[stack]` table in either revision) that differs between
/// `reference` and the work tree, relative to `cwd` when under it.
fn changed_stacks(cwd: &Path, reference: &str) -> anyhow::Result<Vec<PathBuf>> {
    let root = revision::toplevel(cwd)?;
    let commit = revision::resolve(&root, reference)?;
    let here = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    let mut out = Vec::new();
    for path in revision::changed_toml_files(cwd, &commit)? {
        let file = revision::locate(&path)?;
        let is_stack =
            |text: &str| toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("stack"));
        let head_is = std::fs::read_to_string(&path).is_ok_and(|t| is_stack(&t));
        let base_is = || {
            revision::read_at(&file, &commit)
                .ok()
                .flatten()
                .is_some_and(|t| is_stack(&t))
        };
        if head_is || base_is() {
            let shown = path
                .strip_prefix(&here)
                .map(Path::to_path_buf)
                .unwrap_or(path);
            out.push(shown);
        }
    }
    Ok(out)
}
