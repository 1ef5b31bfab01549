//! The review document rendered: a [`Review`] (`crate::plan::review`, which decides what each
//! stack's result is and the exit status) as JSON (docs/design.md §6.4), or as one text or
//! Markdown document for a terminal or a pull-request comment. It opens with one
//! summary table (stack, add/change/replace/destroy, DATA LOSS, errors), then each stack's
//! section, and it fits a size limit by showing less detail, never by cutting text.
//!
//! Shrinking is done with whole blocks, so the result always renders: each stack's section is
//! rendered at a [`Detail`] level, and levels are lowered one stack at a time, last stack first
//! (diff context first, then object diffs, then everything but the essentials), until the
//! document fits. The summary table, every DATA LOSS line, every plan and preflight error and
//! every failed stack's error are never left out; when they alone exceed the limit the document
//! says so and the caller warns. A closing line names what was left out and how to see it.
//!
//! The limit counts UTF-8 bytes. GitHub's comment limit (65,536) counts characters; a character
//! is at least one byte, so a document within N bytes is within N characters, whatever its
//! text. Markdown starts with a marker comment (`<!-- raystack: review -->`) that a CI step
//! searches for to update its previous comment instead of adding another.

use super::plan_markdown::{self as md, escape};
use super::plan_text::{self, Detail, data_loss_line, summary_line};
use super::{BOLD, RED, paint};
use serde::Serialize;

use crate::plan::Plan;
use crate::plan::review::{Digest, Failed, Planned, Review, StackResult};

/// GitHub's pull-request comment limit (characters); the default `--max-bytes` for Markdown.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// The default marker id: the first line of every Markdown review is
/// `<!-- raystack: review -->`.
pub const DEFAULT_MARKER: &str = "review";

/// The marker comment for `id`.
pub fn marker(id: &str) -> String {
    format!("<!-- raystack: {id} -->")
}

/// What the review keeps of a planned stack besides its digest: its plan, or the sections of it
/// the review may print (see [`View::keep`]); and its DATA LOSS sentence, which no shortened
/// review leaves out. Serialized, it is the stack's JSON plan (kept whole for JSON).
#[derive(Debug, Clone)]
pub struct Kept {
    /// `None` once the sections the review may print have been rendered from it.
    pub plan: Option<Plan>,
    sections: Option<Rendered>,
    data_loss_line: Option<String>,
}

impl Serialize for Kept {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.plan {
            Some(plan) => super::plan_json::value(plan).serialize(s),
            None => Err(serde::ser::Error::custom(
                "View::keep keeps the plan for JSON",
            )),
        }
    }
}

/// A planned stack with its plan kept whole: every view can be rendered from it.
pub fn planned(plan: Plan) -> StackResult<Kept> {
    StackResult::Planned(Box::new(Planned {
        digest: Digest::of(&plan),
        kept: Kept {
            data_loss_line: data_loss_line(&plan),
            plan: Some(plan),
            sections: None,
        },
    }))
}

/// A stack's section at the levels of detail the review may print, rendered for one style.
#[derive(Debug, Clone)]
struct Rendered {
    style: Style,
    single: bool,
    levels: [Option<String>; 4],
}

/// How the review will be printed: its format, color and size limit. It is known before the
/// stacks are planned, so each stack can be reduced to what the review needs of it as soon as
/// it is planned ([`View::keep`]).
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub format: super::Format,
    pub color: bool,
    /// The size limit in bytes, per [`limit`].
    pub max_bytes: Option<usize>,
}

impl View {
    /// `max_bytes` as given by `--max-bytes` (see [`limit`]).
    pub fn new(format: super::Format, color: bool, max_bytes: Option<usize>) -> Self {
        View {
            format,
            color,
            max_bytes: limit(max_bytes, format),
        }
    }

    /// What the review of `stacks` stacks keeps of `plan`: the sections it may print, rendered
    /// now on the stack's own task, and not the plan. Held until the review was printed, the
    /// plans of 1,000 stacks were three quarters of that command's peak memory (143 MB, now 38),
    /// and the kernel zeroing it much of its system time (BENCHMARKS.md).
    /// - No size limit: the section at full detail is all the review prints of a stack.
    /// - A size limit and many stacks: every level is rendered, as shrinking many stacks toward
    ///   a comment's size renders most levels of most stacks anyway.
    /// - A size limit and few stacks, or JSON: the plan is kept (their sections are rendered
    ///   when needed, and few plans weigh little).
    pub fn keep(&self, plan: Plan, stacks: usize) -> StackResult<Kept> {
        let style = match self.format {
            super::Format::Json => return planned(plan),
            super::Format::Markdown => Style::Markdown,
            super::Format::Text => Style::Text { color: self.color },
        };
        let wanted: &[Detail] = match self.max_bytes {
            None => &LEVELS[..1],
            Some(_) if stacks >= MANY_STACKS => &LEVELS,
            Some(_) => return planned(plan),
        };
        let single = stacks == 1;
        let mut levels: [Option<String>; 4] = Default::default();
        for level in wanted {
            levels[*level as usize] = Some(render_plan_section(&plan, *level, style, single));
        }
        StackResult::planned(
            &plan,
            Kept {
                data_loss_line: data_loss_line(&plan),
                plan: None,
                sections: Some(Rendered {
                    style,
                    single,
                    levels,
                }),
            },
        )
    }
}

/// What the review is of, and how big it may be.
#[derive(Debug, Clone)]
pub struct Options {
    /// What was compared, for the heading: `plan`, "diff against `main`".
    pub title: String,
    /// The size limit in bytes; `None` for no limit.
    pub max_bytes: Option<usize>,
    /// How to see everything when the document was shortened (a sentence).
    pub full_hint: String,
    /// The marker id (Markdown only).
    pub marker: String,
}

/// A rendered review.
#[derive(Debug, Clone)]
pub struct Rendering {
    pub text: String,
    /// Some detail was left out to fit `max_bytes`.
    pub shortened: bool,
    /// Even the essentials alone exceed `max_bytes` (the text is longer than asked).
    pub over_limit: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Text { color: bool },
    Markdown,
}

/// The Markdown review of `review`.
pub fn markdown(review: &Review<Kept>, opts: &Options) -> Rendering {
    collect(&review.stacks, opts, Style::Markdown)
}

/// The text review of `review`.
pub fn text(review: &Review<Kept>, color: bool, opts: &Options) -> Rendering {
    collect(&review.stacks, opts, Style::Text { color })
}

/// The JSON review of `review` (docs/design.md §6.4).
pub fn json(review: &Review<Kept>) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(review)?))
}

fn collect(results: &[StackResult<Kept>], opts: &Options, style: Style) -> Rendering {
    let mut text = String::new();
    let shape = build(results, opts, style, &mut |part| {
        text.push_str(part);
        Ok(())
    })
    .expect("writing to a String does not fail");
    Rendering {
        text,
        shortened: shape.shortened,
        over_limit: shape.over_limit,
    }
}

/// What [`build`] wrote: how long, and whether it was shortened or is still over its limit.
#[derive(Clone, Copy)]
struct Shape {
    bytes: usize,
    shortened: bool,
    over_limit: bool,
}

const LEVELS: [Detail; 4] = [
    Detail::Full,
    Detail::ChangedLines,
    Detail::NoDiffs,
    Detail::Essentials,
];

/// Writes the review of `results` through `out`, part by part: the sections of 1,000 stacks are
/// megabytes, written where they are kept rather than copied into one document first.
fn build(
    results: &[StackResult<Kept>],
    opts: &Options,
    style: Style,
    out: &mut dyn FnMut(&str) -> std::io::Result<()>,
) -> std::io::Result<Shape> {
    let single = matches!(results, [StackResult::Planned(_)]);
    let mut head = String::new();
    if style == Style::Markdown {
        head.push_str(&marker(&opts.marker));
        head.push('\n');
    }
    if !single {
        head.push_str(&match style {
            Style::Markdown => md_table(results, &opts.title),
            Style::Text { color } => text_table(results, &opts.title, color),
        });
    }
    let mut sections = Sections::new(results, style, single);
    let mut levels = vec![Detail::Full; results.len()];
    let size = |levels: &[Detail], sections: &mut Sections| {
        let body: usize = levels
            .iter()
            .enumerate()
            .map(|(i, l)| sections.get(i, *l).len())
            .sum();
        head.len() + body + footer(levels, opts, style).len()
    };
    let mut over_limit = false;
    if let Some(max) = opts.max_bytes {
        let mut fits = size(&levels, &mut sections) <= max;
        'shrink: for level in &LEVELS[1..] {
            for i in (0..results.len()).rev() {
                if fits {
                    break 'shrink;
                }
                if levels[i] < *level {
                    levels[i] = *level;
                    fits = size(&levels, &mut sections) <= max;
                }
            }
        }
        over_limit = !fits;
    }
    let mut bytes = head.len();
    out(&head)?;
    for (i, level) in levels.iter().enumerate() {
        let section = sections.get(i, *level);
        bytes += section.len();
        out(section)?;
    }
    let footer = footer(&levels, opts, style);
    bytes += footer.len();
    out(&footer)?;
    Ok(Shape {
        bytes,
        shortened: levels.iter().any(|l| *l != Detail::Full),
        over_limit,
    })
}

/// Each stack's section per level, rendered on first use.
struct Sections<'a> {
    results: &'a [StackResult<Kept>],
    style: Style,
    single: bool,
    cache: Vec<[Option<String>; 4]>,
}

/// From this many stacks on, sections are rendered on many threads: kept sections on the
/// stacks' tasks (every level, with a size limit), the others' full sections up front.
const MANY_STACKS: usize = 16;

impl<'a> Sections<'a> {
    /// Every stack's full section is needed (printed, or measured before shrinking), so with many
    /// stacks they are rendered up front on every core, in order: rendered one after another at
    /// the end of a 100-stack plan they were a tenth of its CPU on one thread (BENCHMARKS.md).
    fn new(results: &'a [StackResult<Kept>], style: Style, single: bool) -> Self {
        let mut cache: Vec<[Option<String>; 4]> = vec![Default::default(); results.len()];
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let missing: Vec<usize> = (0..results.len())
            .filter(|i| prerendered(&results[*i], Detail::Full, style, single).is_none())
            .collect();
        if missing.len() >= MANY_STACKS && threads > 1 {
            let chunk = missing.len().div_ceil(threads);
            let full: Vec<String> = std::thread::scope(|scope| {
                let parts: Vec<_> = missing
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            part.iter()
                                .map(|i| render_section(&results[*i], Detail::Full, style, single))
                                .collect::<Vec<String>>()
                        })
                    })
                    .collect();
                parts
                    .into_iter()
                    .flat_map(|part| {
                        part.join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            });
            for (i, text) in missing.into_iter().zip(full) {
                cache[i][Detail::Full as usize] = Some(text);
            }
        }
        Sections {
            results,
            style,
            single,
            cache,
        }
    }

    fn get(&mut self, i: usize, level: Detail) -> &str {
        let (outcome, style, single) = (&self.results[i], self.style, self.single);
        if let Some(text) = prerendered(outcome, level, style, single) {
            return text;
        }
        self.cache[i][level as usize]
            .get_or_insert_with(|| render_section(outcome, level, style, single))
    }
}

/// The section at `level` that [`View::keep`] rendered for this style, if it did.
fn prerendered(o: &StackResult<Kept>, level: Detail, style: Style, single: bool) -> Option<&str> {
    match o {
        StackResult::Planned(p) => p
            .kept
            .sections
            .as_ref()
            .filter(|s| s.style == style && s.single == single)
            .and_then(|s| s.levels[level as usize].as_deref()),
        StackResult::Failed(_) => None,
    }
}

/// The closing line that says what was left out, and how to see it (empty when nothing was).
fn footer(levels: &[Detail], opts: &Options, style: Style) -> String {
    let count = |l: Detail| levels.iter().filter(|x| **x == l).count();
    let (context, diffs, details) = (
        count(Detail::ChangedLines),
        count(Detail::NoDiffs),
        count(Detail::Essentials),
    );
    if context + diffs + details == 0 {
        return String::new();
    }
    let stacks = |n: usize| {
        if n == 1 {
            "1 stack".to_string()
        } else {
            format!("{n} stacks")
        }
    };
    let mut left = Vec::new();
    if context > 0 {
        left.push(format!("unchanged diff context ({})", stacks(context)));
    }
    if diffs > 0 {
        left.push(format!("object diffs ({})", stacks(diffs)));
    }
    if details > 0 {
        left.push(format!(
            "everything but the summary, DATA LOSS and errors ({})",
            stacks(details)
        ));
    }
    let limit = opts.max_bytes.unwrap_or_default();
    let sentence = format!(
        "Shortened to fit {} bytes; left out: {}. {}",
        group_thousands(limit),
        left.join("; "),
        opts.full_hint
    );
    match style {
        Style::Markdown => format!("---\n_{}_\n", escape(&sentence).replace('_', "\\_")),
        Style::Text { .. } => format!("{sentence}\n"),
    }
}

fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn render_section(o: &StackResult<Kept>, level: Detail, style: Style, single: bool) -> String {
    match (o, style) {
        (StackResult::Planned(p), _) => {
            let plan = p.kept.plan.as_ref().expect(
                "View::keep drops a plan only with every section the review may print rendered",
            );
            render_plan_section(plan, level, style, single)
        }
        (StackResult::Failed(Failed { stack_file, error }), Style::Markdown) => {
            let mut s = format!("#### `{}`: failed to plan\n\n", escape(stack_file));
            s.push_str("> [!CAUTION]\n");
            for line in error.lines() {
                s.push_str(&format!("> {}<br>\n", escape(line)));
            }
            s.push('\n');
            s
        }
        (StackResult::Failed(Failed { stack_file, error }), Style::Text { color }) => {
            let mut s = paint(color, BOLD, &format!("{stack_file}: failed to plan"));
            s.push('\n');
            for line in error.lines() {
                s.push_str(&format!("  {}\n", paint(color, RED, line)));
            }
            s.push('\n');
            s
        }
    }
}

fn render_plan_section(plan: &Plan, level: Detail, style: Style, single: bool) -> String {
    match style {
        Style::Markdown if single => md::render_with(plan, level),
        Style::Markdown => md_section(plan, level),
        Style::Text { color } => {
            let mut s = plan_text::render_with(plan, color, level);
            if !single {
                s.push('\n');
            }
            s
        }
    }
}

/// One stack's Markdown section in a multi-stack review: a heading with the summary line, the
/// alerts and preflight errors in the open, everything else collapsed.
fn md_section(plan: &Plan, level: Detail) -> String {
    let title = if plan.destroy { " (destroy)" } else { "" };
    let mut s = format!(
        "#### `{}`{title}: {}\n\n",
        escape(&plan.stack),
        summary_line(plan)
    );
    s.push_str(&md::alerts(plan));
    s.push_str(&md::preflight_errors(plan));
    if level < Detail::Essentials {
        let changed = plan.summary.total();
        s.push_str(&format!(
            "<details><summary>Durability, preflight and {} change(s)</summary>\n\n",
            changed
        ));
        s.push_str(&md::durability(plan));
        s.push_str(&md::preflight_with(plan, false));
        s.push_str(&md::changes(plan, level));
        s.push_str("\n</details>\n\n");
    } else if plan.data_loss {
        // The objects that lose data, one line each (the alert above names them too).
        s.push_str(&md::changes(plan, level));
    }
    s
}

struct Row {
    stack: String,
    counts: Option<[usize; 4]>,
    data_loss: bool,
    errors: Vec<String>,
    failed: bool,
}

fn rows(results: &[StackResult<Kept>]) -> Vec<Row> {
    results
        .iter()
        .map(|o| match o {
            StackResult::Planned(p) => Row {
                stack: p.digest.stack.clone(),
                counts: Some(p.digest.counts),
                data_loss: p.digest.data_loss,
                errors: p.digest.errors.clone(),
                failed: false,
            },
            StackResult::Failed(Failed { stack_file, .. }) => Row {
                stack: stack_file.clone(),
                counts: None,
                data_loss: false,
                errors: Vec::new(),
                failed: true,
            },
        })
        .collect()
}

/// `3 stacks: 2 with changes, 1 with DATA LOSS, 1 failed`
fn overview(results: &[StackResult<Kept>]) -> String {
    let planned: Vec<&Digest> = results.iter().filter_map(StackResult::digest).collect();
    let failed = results.len() - planned.len();
    let mut parts = vec![format!(
        "{} with changes",
        planned.iter().filter(|p| p.has_changes).count()
    )];
    let loss = planned.iter().filter(|p| p.data_loss).count();
    if loss > 0 {
        parts.push(format!("{loss} with DATA LOSS"));
    }
    let blocked = planned.iter().filter(|p| !p.blocking.is_empty()).count();
    if blocked > 0 {
        parts.push(format!("{blocked} with errors"));
    }
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    format!("{} stacks: {}", results.len(), parts.join(", "))
}

fn md_table(results: &[StackResult<Kept>], title: &str) -> String {
    let mut s = format!("### raystack {title}: {}\n\n", overview(results));
    s.push_str("| Stack | Add | Change | Replace | Destroy | DATA LOSS | Errors |\n");
    s.push_str("|---|--:|--:|--:|--:|---|---|\n");
    for r in rows(results) {
        let counts = match r.counts {
            Some(c) => c.map(|n| n.to_string()).join(" | "),
            None => "– | – | – | –".to_string(),
        };
        let loss = if r.data_loss { "**DATA LOSS**" } else { "" };
        let errors = if r.failed {
            "**failed to plan**".to_string()
        } else {
            r.errors
                .iter()
                .map(|e| format!("`{}`", escape(e)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "| `{}` | {counts} | {loss} | {errors} |\n",
            escape(&r.stack)
        ));
    }
    s.push('\n');
    s
}

fn text_table(results: &[StackResult<Kept>], title: &str, color: bool) -> String {
    let rows = rows(results);
    let mut s = paint(
        color,
        BOLD,
        &format!("raystack {title}: {}", overview(results)),
    );
    s.push_str("\n\n");
    let width = rows
        .iter()
        .map(|r| r.stack.chars().count())
        .max()
        .unwrap_or(0)
        .max("STACK".len());
    s.push_str(&format!(
        "  {:<width$}  {:>4}  {:>6}  {:>7}  {:>7}  {:<9}  ERRORS\n",
        "STACK", "ADD", "CHANGE", "REPLACE", "DESTROY", "DATA LOSS"
    ));
    for r in rows {
        let [a, c, rp, d] = match r.counts {
            Some(c) => c.map(|n| n.to_string()),
            None => std::array::from_fn(|_| "-".to_string()),
        };
        let loss = if r.data_loss { "yes" } else { "" };
        let errors = if r.failed {
            "failed to plan".to_string()
        } else {
            r.errors.join(", ")
        };
        let line = format!(
            "  {:<width$}  {a:>4}  {c:>6}  {rp:>7}  {d:>7}  {loss:<9}  {errors}",
            r.stack
        );
        let line = line.trim_end();
        if r.data_loss || r.failed || !errors.is_empty() {
            s.push_str(&paint(color, RED, line));
        } else {
            s.push_str(line);
        }
        s.push('\n');
    }
    s.push('\n');
    s
}

/// Every DATA LOSS sentence of `review` (what a shortened review must still contain).
pub fn data_loss_lines(review: &Review<Kept>) -> Vec<String> {
    review
        .stacks
        .iter()
        .filter_map(|s| match s {
            StackResult::Planned(p) => p.kept.data_loss_line.clone(),
            StackResult::Failed(_) => None,
        })
        .collect()
}

/// What the results of several stacks are of: the heading, the sentence saying how to see
/// everything when the document was shrunk, and what the command names.
pub struct Describe {
    pub title: String,
    pub full_hint: String,
    /// What an empty review says (`no stack file changed`).
    pub nothing: String,
    /// The command names one stack (`plan STACK`, `diff BASE HEAD`): its JSON is that stack's
    /// plan JSON, the plan contract, rather than a review of one.
    pub one_stack: bool,
}

/// The size limit asked for: `max_bytes` (0: none), else GitHub's comment limit for Markdown.
pub fn limit(max_bytes: Option<usize>, format: super::Format) -> Option<usize> {
    match (max_bytes, format) {
        (Some(0), _) => None,
        (Some(n), _) => Some(n),
        (None, super::Format::Markdown) => Some(GITHUB_COMMENT_LIMIT),
        (None, _) => None,
    }
}

/// Prints `review` on stdout as `view` says; warnings (a review over its limit), each failed
/// stack's error and each blocking problem go to stderr.
pub fn print(
    review: &Review<Kept>,
    view: View,
    marker: &str,
    describe: Describe,
) -> anyhow::Result<()> {
    let opts = Options {
        title: describe.title,
        max_bytes: view.max_bytes,
        full_hint: describe.full_hint,
        marker: marker.to_string(),
    };
    let style = match view.format {
        super::Format::Json => {
            let text = match review.stacks.as_slice() {
                [StackResult::Planned(p)] if describe.one_stack => super::plan_json::render(
                    p.kept
                        .plan
                        .as_ref()
                        .expect("View::keep keeps the plan for JSON"),
                ),
                _ => json(review)?,
            };
            super::print_stdout(&text)?;
            None
        }
        super::Format::Markdown => Some(Style::Markdown),
        super::Format::Text => Some(Style::Text { color: view.color }),
    };
    match style {
        Some(style) if review.stacks.is_empty() => {
            super::print_stdout(&match style {
                Style::Markdown => format!(
                    "{}\n**raystack {}**: {}.\n",
                    self::marker(&opts.marker),
                    opts.title,
                    describe.nothing
                ),
                Style::Text { .. } => format!("raystack {}: {}.\n", opts.title, describe.nothing),
            })?;
        }
        Some(style) => {
            let shape = super::write_stdout(|w| {
                build(&review.stacks, &opts, style, &mut |part| {
                    w.write_all(part.as_bytes())
                })
            })?;
            if let Some(shape) = shape.filter(|s| s.over_limit) {
                eprintln!(
                    "warning: the review is {} bytes, over --max-bytes {}, even with only the summary table, DATA LOSS lines and errors",
                    shape.bytes,
                    opts.max_bytes.unwrap_or_default()
                );
            }
        }
        None => {}
    }
    for Failed { stack_file, error } in review.failed() {
        eprintln!("error: `{stack_file}` failed:\n{error}");
    }
    for (stack, problem) in review.blocking() {
        eprintln!("error: {stack}: {problem}");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
