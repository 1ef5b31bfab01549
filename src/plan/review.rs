//! The review of several stacks (docs/design.md §6.4): each stack's result (planned, or failed to
//! plan), what the review keeps of a plan ([`Digest`]), and the exit status the results add up
//! to. Serialized, a [`Review`] is the JSON review (`plan A B --format json`, `diff --base`);
//! `crate::output::review` renders its text and Markdown from the same model, and prints the
//! blocking problems this module returns. Nothing here prints.
//!
//! The model is generic over what a planned stack keeps besides its digest: the plan itself, or
//! what output rendered of it while the other stacks were still planning (a review of 1,000
//! stacks does not hold 1,000 plans).

use serde::Serialize;

use super::model::Plan;
use crate::preflight::Severity;

/// The JSON review's `format_version`: a string, as the plan's is. Bumped when a field changes
/// meaning or goes; adding a field is not a new version.
pub const REVIEW_FORMAT_VERSION: &str = "1";

/// The results of several stacks, in the order given.
#[derive(Debug, Clone, Serialize)]
pub struct Review<P> {
    pub format_version: &'static str,
    pub stacks: Vec<StackResult<P>>,
}

/// One stack's result. In JSON, `status` says which: `planned` carries the stack's plan JSON
/// under `plan`, `failed` the stack file and the error.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StackResult<P> {
    Planned(Box<Planned<P>>),
    Failed(Failed),
}

/// A planned stack: its digest and what is kept of its plan.
#[derive(Debug, Clone, Serialize)]
pub struct Planned<P> {
    /// Derived from the plan, which the JSON carries whole.
    #[serde(skip)]
    pub digest: Digest,
    /// The plan, or what is kept of it; in JSON, the stack's plan JSON.
    #[serde(rename = "plan")]
    pub kept: P,
}

/// A stack that could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    /// The stack file as given on the command line.
    pub stack_file: String,
    /// The error and its causes, one per line.
    pub error: String,
}

/// What the summary table, the overview line and the exit status need of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub stack: String,
    /// Add, change, replace, destroy.
    pub counts: [usize; 4],
    pub has_changes: bool,
    pub data_loss: bool,
    /// The table's Errors cell: `provider/check` per preflight error, `plan` per plan error.
    pub errors: Vec<String>,
    /// Why the plan cannot be applied (`Plan::blocking_problems`).
    pub blocking: Vec<String>,
}

impl Digest {
    pub fn of(p: &Plan) -> Self {
        Digest {
            stack: p.stack.clone(),
            counts: [
                p.summary.add,
                p.summary.change,
                p.summary.replace,
                p.summary.destroy,
            ],
            has_changes: p.has_changes(),
            data_loss: p.data_loss,
            errors: p
                .preflight
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| format!("{}/{}", f.provider, f.check))
                .chain(p.errors.iter().map(|_| "plan".to_string()))
                .collect(),
            blocking: p.blocking_problems(),
        }
    }
}

/// What the results add up to, as the process exit status: 0, 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Every stack planned and can be applied; no changes, or `--detailed-exitcode` not given.
    Success,
    /// A stack failed to plan, or its plan cannot be applied.
    Error,
    /// Changes, under `--detailed-exitcode`.
    Changes,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Error => 1,
            ExitStatus::Changes => 2,
        }
    }
}

impl<P> StackResult<P> {
    /// A planned stack keeping `kept` of `plan`.
    pub fn planned(plan: &Plan, kept: P) -> Self {
        StackResult::Planned(Box::new(Planned {
            digest: Digest::of(plan),
            kept,
        }))
    }

    pub fn digest(&self) -> Option<&Digest> {
        match self {
            StackResult::Planned(p) => Some(&p.digest),
            StackResult::Failed(_) => None,
        }
    }
}

impl<P> Review<P> {
    pub fn new(stacks: Vec<StackResult<P>>) -> Self {
        Review {
            format_version: REVIEW_FORMAT_VERSION,
            stacks,
        }
    }

    /// 1 when any stack failed or is blocked, else 2 for changes under `--detailed-exitcode`,
    /// else 0: an error beats changes.
    pub fn exit_status(&self, detailed_exitcode: bool) -> ExitStatus {
        let mut changes = false;
        for s in &self.stacks {
            match s.digest() {
                None => return ExitStatus::Error,
                Some(d) if !d.blocking.is_empty() => return ExitStatus::Error,
                Some(d) => changes |= d.has_changes,
            }
        }
        if detailed_exitcode && changes {
            ExitStatus::Changes
        } else {
            ExitStatus::Success
        }
    }

    /// Each blocking problem with its stack's name, in stack order.
    pub fn blocking(&self) -> impl Iterator<Item = (&str, &str)> {
        self.stacks
            .iter()
            .filter_map(StackResult::digest)
            .flat_map(|d| {
                d.blocking
                    .iter()
                    .map(move |problem| (d.stack.as_str(), problem.as_str()))
            })
    }

    /// The stacks that failed to plan.
    pub fn failed(&self) -> impl Iterator<Item = &Failed> {
        self.stacks.iter().filter_map(|s| match s {
            StackResult::Failed(f) => Some(f),
            StackResult::Planned(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Summary;
    use serde_json::json;

    fn digest(stack: &str, has_changes: bool, blocking: &[&str]) -> Digest {
        Digest {
            stack: stack.into(),
            counts: [usize::from(has_changes), 0, 0, 0],
            has_changes,
            data_loss: false,
            errors: Vec::new(),
            blocking: blocking.iter().map(|b| b.to_string()).collect(),
        }
    }

    fn planned(d: Digest) -> StackResult<()> {
        StackResult::Planned(Box::new(Planned {
            digest: d,
            kept: (),
        }))
    }

    fn failed(file: &str) -> StackResult<()> {
        StackResult::Failed(Failed {
            stack_file: file.into(),
            error: "error: boom".into(),
        })
    }

    #[test]
    fn exit_status_is_0_without_changes_or_without_detailed_exitcode() {
        let quiet = Review::new(vec![planned(digest("a", false, &[]))]);
        assert_eq!(quiet.exit_status(true), ExitStatus::Success);
        let changed = Review::new(vec![
            planned(digest("a", false, &[])),
            planned(digest("b", true, &[])),
        ]);
        assert_eq!(changed.exit_status(false), ExitStatus::Success);
        assert_eq!(changed.exit_status(true), ExitStatus::Changes);
        assert_eq!(
            Review::<()>::new(Vec::new()).exit_status(true),
            ExitStatus::Success
        );
    }

    #[test]
    fn a_failed_or_blocked_stack_is_1_and_beats_changes() {
        for stacks in [
            vec![planned(digest("a", true, &[])), failed("b.toml")],
            vec![
                planned(digest("a", true, &[])),
                planned(digest("b", false, &["preflight aws/x: no"])),
            ],
            vec![failed("a.toml")],
        ] {
            let review = Review::new(stacks);
            assert_eq!(review.exit_status(true), ExitStatus::Error);
            assert_eq!(review.exit_status(false), ExitStatus::Error);
        }
        assert_eq!(
            [ExitStatus::Success, ExitStatus::Error, ExitStatus::Changes].map(ExitStatus::code),
            [0, 1, 2]
        );
    }

    #[test]
    fn blocking_problems_and_failures_are_returned_in_stack_order() {
        let review = Review::new(vec![
            planned(digest("a", false, &["one", "two"])),
            failed("b.toml"),
            planned(digest("c", true, &["three"])),
        ]);
        assert_eq!(
            review.blocking().collect::<Vec<_>>(),
            [("a", "one"), ("a", "two"), ("c", "three")]
        );
        assert_eq!(
            review
                .failed()
                .map(|f| f.stack_file.as_str())
                .collect::<Vec<_>>(),
            ["b.toml"]
        );
    }

    #[test]
    fn a_digest_counts_changes_and_names_errors() {
        let mut plan = Plan {
            format_version: crate::plan::FORMAT_VERSION.into(),
            stack: "s".into(),
            namespace: "s".into(),
            offline: true,
            destroy: false,
            durability: json!({}),
            preflight: vec![crate::preflight::Finding::error(
                "aws",
                "csi",
                "no driver",
                "install it",
            )],
            resource_changes: Vec::new(),
            summary: Summary::default(),
            data_loss: false,
            drift: false,
            errors: vec!["state records `x`".into()],
            kept: Vec::new(),
            other_states: Vec::new(),
            binding: Default::default(),
        };
        plan.summary.replace = 2;
        let d = Digest::of(&plan);
        assert_eq!(d.counts, [0, 0, 2, 0]);
        assert_eq!(d.errors, ["aws/csi", "plan"]);
        assert_eq!(
            d.blocking,
            ["preflight aws/csi: no driver", "state records `x`"]
        );
    }

    #[test]
    fn the_json_review_tags_each_stack_and_carries_no_digest() {
        let review = Review::new(vec![planned(digest("a", true, &[])), failed("b.toml")]);
        assert_eq!(
            serde_json::to_value(&review).unwrap(),
            json!({
                "format_version": "1",
                "stacks": [
                    {"status": "planned", "plan": null},
                    {"status": "failed", "stack_file": "b.toml", "error": "error: boom"},
                ]
            })
        );
    }
}
