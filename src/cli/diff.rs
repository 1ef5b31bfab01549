//! `raystack diff BASE_STACK HEAD_STACK`: what changing a stack file from one revision to
//! another would do, with no cluster and no state — for pull-request review in CI. The same
//! text, JSON and Markdown renderings as `plan`, with the same DATA LOSS flag.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::Format;

pub fn run(
    base: &Path,
    head: &Path,
    format: Format,
    detailed_exitcode: bool,
    color: bool,
) -> anyhow::Result<ExitCode> {
    let base_stack = crate::stack::load(base)?;
    let head_stack = crate::stack::load(head)?;
    let objects = |s: &crate::stack::Stack| -> Vec<serde_json::Value> {
        crate::render::render(s)
            .objects
            .into_iter()
            .map(|d| d.manifest)
            .collect()
    };
    let durability = serde_json::to_value(crate::render::summarize(&head_stack))
        .context("failed to summarize durability")?;
    let plan = crate::plan::compare(
        &head_stack.meta.name,
        &head_stack.meta.namespace,
        durability,
        &objects(&base_stack),
        &objects(&head_stack),
    );
    super::plan::print_stdout(&crate::output::render_plan(&plan, format, color))?;
    Ok(if detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
