//! The review document: its layout (snapshots), and that shrinking keeps what it promises and
//! never cuts a block.

use super::*;
use crate::output::plan_markdown;
use crate::plan::Action;

fn named(name: &str) -> Plan {
    let mut p = crate::output::tests::sample();
    p.stack = name.into();
    p.namespace = name.into();
    p
}

fn unchanged(name: &str) -> Plan {
    let mut p = named(name);
    p.resource_changes.retain(|c| c.action == Action::NoOp);
    p.preflight.truncate(1);
    p.finish()
}

fn blocked(name: &str) -> Plan {
    let mut p = unchanged(name);
    p.preflight.push(crate::preflight::Finding::error(
        "aws",
        "eks-ebs-csi-addon",
        "the add-on `aws-ebs-csi-driver` is not installed",
        "aws eks create-addon --cluster-name prod --addon-name aws-ebs-csi-driver",
    ));
    p
}

fn opts(max_bytes: Option<usize>) -> Options {
    Options {
        title: "plan".into(),
        max_bytes,
        full_hint: "Run it with `--max-bytes 0` to see everything.".into(),
        marker: DEFAULT_MARKER.into(),
    }
}

fn broken() -> StackResult<Kept> {
    StackResult::Failed(Failed {
        stack_file: "stacks/broken.toml".into(),
        error: "error: stacks/broken.toml:3:1: `redis.storage`: invalid quantity \"1Gb\"\n  help: use 1Gi".into(),
    })
}

fn three() -> Review<Kept> {
    Review::new(vec![
        planned(named("ray-a")),
        planned(blocked("ray-b")),
        broken(),
    ])
}

#[test]
fn markdown_review_of_several_stacks() {
    let r = markdown(&three(), &opts(None));
    assert!(!r.shortened && !r.over_limit);
    insta::assert_snapshot!(r.text);
}

#[test]
fn text_review_of_several_stacks() {
    let r = text(&three(), false, &opts(None));
    insta::assert_snapshot!(r.text);
}

#[test]
fn one_stack_is_the_plain_plan_with_a_marker() {
    let plan = named("demo");
    let outcomes = Review::new(vec![planned(plan.clone())]);
    let r = markdown(&outcomes, &opts(Some(GITHUB_COMMENT_LIMIT)));
    assert_eq!(
        r.text,
        format!(
            "<!-- raystack: review -->\n{}",
            plan_markdown::render(&plan)
        )
    );
    let t = text(&outcomes, false, &opts(None));
    assert_eq!(t.text, crate::output::plan_text::render(&plan, false));
}

/// Every `<details>` is closed, every code fence is closed, and nothing follows an open block.
fn assert_blocks_balance(md: &str) {
    let opened = md.matches("<details>").count();
    let closed = md.matches("</details>").count();
    assert_eq!(opened, closed, "unbalanced <details>:\n{md}");
    let mut depth: i64 = 0;
    let mut fence: Option<String> = None;
    for line in md.lines() {
        let ticks: String = line.chars().take_while(|c| *c == '`').collect();
        match &fence {
            Some(open) if line == open.as_str() => fence = None,
            Some(_) => {}
            None if ticks.len() >= 3 => fence = Some(ticks),
            None => {
                depth += line.matches("<details>").count() as i64;
                depth -= line.matches("</details>").count() as i64;
                assert!(depth >= 0, "</details> before <details>:\n{md}");
            }
        }
    }
    assert!(fence.is_none(), "a code fence is left open:\n{md}");
    assert_eq!(depth, 0, "a <details> is left open:\n{md}");
}

#[test]
fn shrinking_keeps_the_table_data_loss_and_errors_and_never_cuts_a_block() {
    let mut stacks: Vec<StackResult<Kept>> = (0..60)
        .map(|i| {
            planned(if i % 7 == 3 {
                blocked(&format!("ray-{i:03}"))
            } else {
                named(&format!("ray-{i:03}"))
            })
        })
        .collect();
    stacks.push(broken());
    let outcomes = Review::new(stacks);
    let full = markdown(&outcomes, &opts(None)).text;
    let table_end = full.find("\n\n####").unwrap();
    let table = &full[..table_end];
    let mut previous = usize::MAX;
    for max in [full.len(), 60_000, 30_000, 20_000, 12_000, 1_000] {
        let r = markdown(&outcomes, &opts(Some(max)));
        assert_blocks_balance(&r.text);
        assert!(r.text.starts_with(table), "the summary table comes first");
        for line in data_loss_lines(&outcomes) {
            assert!(
                r.text.contains(&escape(&line)),
                "lost a DATA LOSS line at {max}"
            );
        }
        assert_eq!(
            r.text
                .matches("add-on `aws-ebs-csi-driver` is not installed")
                .count(),
            9,
            "every preflight error is kept at {max}"
        );
        assert!(
            r.text.contains("invalid quantity"),
            "the failed stack's error is kept"
        );
        if r.over_limit {
            assert!(r.text.len() > max);
        } else {
            assert!(r.text.len() <= max, "{} > {max}", r.text.len());
        }
        assert_eq!(r.shortened, max < full.len());
        if r.shortened {
            let last = r.text.lines().last().unwrap();
            assert!(
                last.starts_with(&format!("_Shortened to fit {}", group_thousands(max)))
                    && last.contains("`--max-bytes 0`"),
                "{last}"
            );
        }
        assert!(r.text.len() <= previous);
        previous = r.text.len();
    }
}

#[test]
fn context_goes_before_diffs_and_the_last_stacks_shrink_first() {
    let outcomes = Review::new((0..3).map(|i| planned(named(&format!("s{i}")))).collect());
    let full = markdown(&outcomes, &opts(None)).text;
    let r = markdown(&outcomes, &opts(Some(full.len() - 1)));
    // One stack lost its unchanged context lines; the first keeps its full diffs.
    assert!(r.shortened && !r.over_limit);
    assert!(
        r.text.contains("left out: unchanged diff context ("),
        "{}",
        r.text
    );
    let first = &r.text[r.text.find("#### `s0`").unwrap()..r.text.find("#### `s1`").unwrap()];
    assert!(first.contains("      save 60 1000"), "{first}");
}

/// `View::keep` renders a stack's sections as soon as it is planned and drops the plan, when
/// they are all the review may print of it: the review is the same as from the whole plans.
#[test]
fn kept_sections_review_as_their_plans_and_few_stacks_with_a_limit_or_json_keep_the_plan() {
    use crate::output::Format;
    let plans = |count: usize| -> Vec<Plan> {
        (0..count)
            .map(|i| match i % 3 {
                0 => named(&format!("ray-{i:02}")),
                1 => blocked(&format!("ray-{i:02}")),
                _ => unchanged(&format!("ray-{i:02}")),
            })
            .collect()
    };
    for (format, color, max_bytes) in [
        (Format::Text, false, None),
        (Format::Text, true, None),
        (Format::Markdown, false, Some(0)),
        (Format::Markdown, false, None),
        (Format::Markdown, false, Some(20_000)),
        (Format::Text, false, Some(4_000)),
        (Format::Json, false, None),
    ] {
        let view = View::new(format, color, max_bytes);
        for count in [1, 3, MANY_STACKS] {
            let kept = Review::new(
                plans(count)
                    .into_iter()
                    .map(|p| view.keep(p, count))
                    .collect(),
            );
            let whole = Review::new(plans(count).into_iter().map(planned).collect());
            let dropped = kept
                .stacks
                .iter()
                .filter(|o| matches!(o, StackResult::Planned(p) if p.kept.plan.is_none()))
                .count();
            let rendered = match (format, view.max_bytes) {
                (Format::Json, _) => false,
                (_, None) => true,
                (_, Some(_)) => count >= MANY_STACKS,
            };
            assert_eq!(dropped, if rendered { count } else { 0 }, "{view:?}");
            if format == Format::Json {
                continue;
            }
            let opts = opts(view.max_bytes);
            let review = |o: &Review<Kept>| match format {
                Format::Markdown => markdown(o, &opts),
                _ => text(o, color, &opts),
            };
            let (kept, whole) = (review(&kept), review(&whole));
            assert_eq!(kept.text, whole.text, "{view:?}, {count} stacks");
            assert_eq!(
                (kept.shortened, kept.over_limit),
                (whole.shortened, whole.over_limit)
            );
            if count == MANY_STACKS && view.max_bytes == Some(20_000) {
                assert!(whole.shortened, "the limit shrinks {count} stacks");
            }
        }
    }
}

/// The JSON review (docs/design.md §6.4): `format_version`, then each stack tagged `planned`
/// with its plan JSON (as `plan STACK --format json` prints it) or `failed` with its error.
#[test]
fn json_review_of_two_planned_stacks() {
    let review = Review::new(vec![planned(named("ray-a")), planned(unchanged("ray-b"))]);
    let text = json(&review).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        serde_json::to_string_pretty(&v["stacks"][0]["plan"]).unwrap() + "\n",
        crate::output::plan_json::render(&named("ray-a")),
        "a planned stack's entry is its plan JSON"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn json_review_of_a_planned_and_a_failed_stack() {
    let review = Review::new(vec![planned(unchanged("ray-a")), broken()]);
    insta::assert_snapshot!(json(&review).unwrap());
}

/// Sections rendered by `View::keep` without their plan cannot be serialized: JSON keeps the
/// plan, and a review that dropped it says so rather than printing something else.
#[test]
fn json_needs_the_kept_plan() {
    let view = View::new(crate::output::Format::Text, false, None);
    let review = Review::new(vec![view.keep(named("ray-a"), 1)]);
    let err = json(&review).unwrap_err();
    assert!(
        err.to_string()
            .contains("View::keep keeps the plan for JSON"),
        "{err}"
    );
}

#[test]
fn group_thousands_reads_like_the_limit() {
    assert_eq!(group_thousands(65_536), "65,536");
    assert_eq!(group_thousands(999), "999");
    assert_eq!(group_thousands(1_000_000), "1,000,000");
}
