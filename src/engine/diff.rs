//! `diff`: what changing stack files from one revision to another would do, with no cluster and
//! no state, for pull-request review in CI. Two files (`diff BASE HEAD`), or each stack file
//! against its version at a git revision (`diff --base REF [STACK...]`), planned with the same
//! pure engine as `plan --offline` (`crate::plan::compare`), so the DATA LOSS flag agrees.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::plan::Plan;
use crate::revision::{self, RepoFile, Revisions};
use crate::stack::Stack;

/// The stacks compared with a git revision, in order: each stack file and its plan, or why it
/// could not be compared.
pub struct Diffed {
    pub stacks: Vec<(PathBuf, anyhow::Result<Plan>)>,
}

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

/// `diff BASE_STACK HEAD_STACK`: the plan taking one stack file to the other.
pub fn diff_files(base: &Path, head: &Path) -> anyhow::Result<Plan> {
    let base_stack = crate::render::load(base)?;
    let head_stack = crate::render::load(head)?;
    compare(Some(&base_stack), Some(&head_stack))
}

/// `diff --base REF [STACK...]`: each stack file against its version at `reference` (with no
/// stack given, every stack file changed since `reference`, found from the current directory).
/// Each stack's error is its own.
pub fn diff_at_revision(reference: &str, stacks: &[PathBuf]) -> anyhow::Result<Diffed> {
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let mut git = Revisions::default();
    let stacks: Vec<PathBuf> = if stacks.is_empty() {
        changed_stacks(&cwd, reference, &mut git)?
    } else {
        stacks.to_vec()
    };
    let located: Vec<_> = stacks.iter().map(|path| git.locate(path)).collect();
    let found: Vec<&RepoFile> = located.iter().filter_map(|l| l.as_ref().ok()).collect();
    let mut bases = git.read_all(&found, reference).into_iter();
    let stacks = stacks
        .into_iter()
        .zip(located)
        .map(|(path, file)| {
            let plan = file.map_err(anyhow::Error::from).and_then(|file| {
                let base = bases.next().expect("one text per located file");
                diff_at(&path, &file, base?, reference)
            });
            (path, plan)
        })
        .collect();
    Ok(Diffed { stacks })
}

/// One stack file in the work tree against its text at `reference` (`base`).
fn diff_at(
    path: &Path,
    file: &RepoFile,
    base: Option<String>,
    reference: &str,
) -> anyhow::Result<Plan> {
    let base = match base {
        // Diagnostics name the revision, e.g. `main:stacks/prod.toml:12:3`.
        Some(text) => Some(crate::render::parse_str(
            &base_name(file, reference),
            &text,
        )?),
        None => None,
    };
    let head = if path.exists() {
        Some(crate::render::load(path)?)
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
fn changed_stacks(
    cwd: &Path,
    reference: &str,
    git: &mut Revisions,
) -> anyhow::Result<Vec<PathBuf>> {
    let root = revision::toplevel(cwd)?;
    let commit = git.resolve(&root, reference)?;
    let here = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    let is_stack =
        |text: &str| toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("stack"));
    let changed = revision::changed_toml_files(&root, &commit)?;
    let head_is: Vec<bool> = changed
        .iter()
        .map(|path| std::fs::read_to_string(path).is_ok_and(|t| is_stack(&t)))
        .collect();
    // A file that is no stack in the work tree may have been one at the base (a removed stack).
    let others: Vec<RepoFile> = changed
        .iter()
        .zip(&head_is)
        .filter(|(_, head)| !**head)
        .map(|(path, _)| git.locate(path))
        .collect::<Result<_, _>>()?;
    let others: Vec<&RepoFile> = others.iter().collect();
    let mut base_is = git
        .read_all(&others, reference)
        .into_iter()
        .map(|text| text.ok().flatten().is_some_and(|t| is_stack(&t)));
    let mut out = Vec::new();
    for (path, head) in changed.into_iter().zip(head_is) {
        if head || base_is.next().unwrap_or(false) {
            let shown = path
                .strip_prefix(&here)
                .map(Path::to_path_buf)
                .unwrap_or(path);
            out.push(shown);
        }
    }
    Ok(out)
}
