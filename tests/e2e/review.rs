//! Reviewing many stacks: `diff --base` against a real git repository, the multi-stack review
//! document (rendered by a real CommonMark/GFM parser), and `plan` of many stacks concurrently
//! against `fake-apiserver`.

use std::path::Path;
use std::process::Command;

use crate::support::{Fake, raystack_bin, reviewed_plans};
use serde_json::Value;

const LOCAL: &str = include_str!("../../stacks/local.toml");

/// `stacks/local.toml` renamed to `name` (stack and namespace).
fn stack(name: &str) -> String {
    LOCAL.replace("ray-local", name)
}

/// The same stack on another storage class: a PVC replace, so DATA LOSS.
fn moved(name: &str) -> String {
    stack(name).replace("[redis]\n", "[redis]\nstorage_class = \"fast-ssd\"\n")
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=ci",
            "-c",
            "user.email=ci@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn raystack(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(raystack_bin())
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A repository whose `main` has stacks a and b, and whose work tree (committed as branch
/// `feature`) changes a's storage class, removes b and adds c.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::create_dir(root.join("stacks")).unwrap();
    std::fs::write(root.join("stacks/a.toml"), stack("ray-a")).unwrap();
    std::fs::write(root.join("stacks/b.toml"), stack("ray-b")).unwrap();
    std::fs::write(root.join("README.toml"), "not = \"a stack\"\n").unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "base"]);
    git(root, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(root.join("stacks/a.toml"), moved("ray-a")).unwrap();
    std::fs::remove_file(root.join("stacks/b.toml")).unwrap();
    std::fs::write(root.join("stacks/c.toml"), stack("ray-c")).unwrap();
    std::fs::write(root.join("README.toml"), "not = \"a stack, still\"\n").unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "head"]);
    dir
}

#[test]
fn diff_base_compares_each_stack_with_its_version_at_the_revision() {
    let dir = repo();
    let root = dir.path();
    let given = raystack(
        root,
        &[
            "diff",
            "--base",
            "main",
            "stacks/a.toml",
            "stacks/b.toml",
            "stacks/c.toml",
            "--format",
            "json",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(given.code, 2, "{given}");
    let plans = reviewed_plans(&given.stdout);
    let actions = |p: &Value| -> Vec<String> {
        p["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["action"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(plans.len(), 3);
    assert_eq!(plans[0]["stack"], "ray-a");
    assert_eq!(plans[0]["data_loss"], true, "a's PVC moves class");
    assert_eq!(
        plans[0]["summary"],
        serde_json::json!({"add": 0, "change": 0, "replace": 1, "destroy": 0})
    );
    assert_eq!(plans[1]["stack"], "ray-b");
    assert!(
        actions(&plans[1]).iter().all(|a| a == "delete"),
        "b is removed"
    );
    assert_eq!(plans[1]["data_loss"], true, "removing b deletes its volume");
    assert_eq!(plans[2]["stack"], "ray-c");
    assert!(actions(&plans[2]).iter().all(|a| a == "create"), "c is new");

    // No STACK: every changed stack file (README.toml is TOML but not a stack), same result.
    let all = raystack(root, &["diff", "--base", "main", "--format", "json"]);
    assert_eq!(all.code, 0, "{all}");
    assert_eq!(all.stdout, given.stdout);

    let text = raystack(root, &["diff", "--base", "main"]);
    assert_eq!(text.code, 0, "{text}");
    insta::assert_snapshot!("diff_base_text", text.stdout);

    // From a subdirectory, with a path relative to it. One changed stack is a review too.
    let sub = raystack(
        &root.join("stacks"),
        &["diff", "--base", "main", "c.toml", "--format", "json"],
    );
    assert_eq!(sub.code, 0, "{sub}");
    let c = reviewed_plans(&sub.stdout);
    assert_eq!(c.len(), 1, "{sub}");
    assert_eq!(c[0]["stack"], "ray-c");
}

#[test]
fn diff_base_reports_an_unknown_revision_and_a_broken_base() {
    let dir = repo();
    let root = dir.path();
    let r = raystack(root, &["diff", "--base", "no-such-ref", "stacks/a.toml"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains("unknown git revision `no-such-ref`"),
        "{r}"
    );

    // A stack that is broken in the work tree is reported; the others are still diffed.
    std::fs::write(
        root.join("stacks/c.toml"),
        stack("ray-c").replace("storage = \"1Gi\"", "storage = \"1Gb\""),
    )
    .unwrap();
    let a_and_c = |more: &[&str]| {
        let mut args = vec!["diff", "--base", "main", "stacks/a.toml", "stacks/c.toml"];
        args.extend(more);
        raystack(root, &args)
    };
    let r = a_and_c(&[]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.contains("ray-a"), "{r}");
    assert!(
        r.stdout.contains("stacks/c.toml: failed to plan") && r.stdout.contains("`redis.storage`"),
        "{r}"
    );
    // a has changes and c failed: under --detailed-exitcode the error (1) beats changes (2).
    let r = a_and_c(&["--detailed-exitcode"]);
    assert_eq!(r.code, 1, "{r}");
    // In JSON, the failed stack is an entry of the review: its file and its error.
    let r = a_and_c(&["--format", "json"]);
    assert_eq!(r.code, 1, "{r}");
    let review: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(review["format_version"], "1", "{r}");
    assert_eq!(review["stacks"][0]["status"], "planned", "{r}");
    assert_eq!(review["stacks"][0]["plan"]["stack"], "ray-a", "{r}");
    let failed = review["stacks"][1].as_object().unwrap();
    assert_eq!(
        failed.keys().collect::<Vec<_>>(),
        ["status", "stack_file", "error"],
        "{r}"
    );
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["stack_file"], "stacks/c.toml");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("`redis.storage`"), "{r}");

    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("s.toml"), stack("s")).unwrap();
    let r = raystack(outside.path(), &["diff", "--base", "main", "s.toml"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.contains("is not inside a git repository"), "{r}");
}

/// No stack file changed: an empty review in every format, and exit 0.
#[test]
fn diff_base_with_no_changed_stack_is_an_empty_review() {
    let dir = repo();
    let root = dir.path();
    let formats = ["json", "text", "markdown"].map(|format| {
        let r = raystack(
            root,
            &[
                "diff",
                "--base",
                "HEAD",
                "--format",
                format,
                "--detailed-exitcode",
            ],
        );
        assert_eq!(r.code, 0, "{r}");
        r.stdout
    });
    assert_eq!(
        formats,
        [
            "{\n  \"format_version\": \"1\",\n  \"stacks\": []\n}\n",
            "raystack diff against `HEAD`: no stack file changed.\n",
            "<!-- raystack: review -->\n**raystack diff against `HEAD`**: no stack file changed.\n",
        ]
    );
}

#[test]
fn diff_base_accepts_a_merge_base_range() {
    let dir = repo();
    let root = dir.path();
    // `main` moves on after `feature` branched: `main...HEAD` is the fork point, not `main`.
    let fork = {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["rev-parse", "main"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    git(root, &["checkout", "-q", "main"]);
    std::fs::write(root.join("stacks/a.toml"), stack("ray-a-renamed")).unwrap();
    git(root, &["commit", "-q", "-am", "main moves on"]);
    git(root, &["checkout", "-q", "feature"]);
    let json = |base: &str| {
        let r = raystack(
            root,
            &["diff", "--base", base, "stacks/a.toml", "--format", "json"],
        );
        assert_eq!(r.code, 0, "{base}: {r}");
        r.stdout
    };
    let at_fork = json(&fork);
    assert_eq!(json("main...HEAD"), at_fork);
    assert_eq!(json("main..."), at_fork, "an empty side is HEAD");
    assert_ne!(json("main"), at_fork, "main itself has moved on");

    let r = raystack(root, &["diff", "--base", "nope...HEAD", "stacks/a.toml"]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("diff_base_unknown_side_of_a_range", r.stdout);
}

#[test]
fn diff_base_never_suggests_a_command_built_from_a_hostile_revision() {
    let dir = repo();
    let root = dir.path();
    let hostile = "x;touch${IFS}pwned";
    let r = raystack(root, &["diff", "--base", hostile, "stacks/a.toml"]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!(
        "diff_base_hostile_revision",
        format!("{}{}", r.stdout, r.stderr)
    );
    assert!(!r.stdout.contains("git fetch origin x"), "{r}");
}

#[test]
fn a_shortened_review_never_suggests_a_command_built_from_a_hostile_branch_name() {
    let dir = repo();
    let root = dir.path();
    // A valid git branch name that is a shell command list.
    git(root, &["branch", "evil;id", "main"]);
    let r = raystack(
        root,
        &[
            "diff",
            "--base",
            "evil;id",
            "--format",
            "markdown",
            "--max-bytes",
            "1500",
        ],
    );
    assert_eq!(r.code, 0, "{r}");
    let last = r.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("_Shortened to fit 1,500 bytes; left out: "),
        "{r}"
    );
    assert!(
        last.ends_with(
            " Run `raystack diff` with the same `--base` and `--max-bytes 0` (or `--format text`) to see everything._"
        ),
        "{last}"
    );
    // A plain revision is still named in the command.
    let r = raystack(
        root,
        &[
            "diff",
            "--base",
            "main",
            "--format",
            "markdown",
            "--max-bytes",
            "1500",
        ],
    );
    assert!(
        r.stdout.lines().last().unwrap().ends_with(
            " Run `raystack diff --base main` with `--max-bytes 0` (or `--format text`) to see everything._"
        ),
        "{r}"
    );
}

#[test]
fn two_file_diff_still_works() {
    let dir = repo();
    let root = dir.path();
    std::fs::write(root.join("old.toml"), stack("ray-a")).unwrap();
    let r = raystack(
        root,
        &["diff", "old.toml", "stacks/a.toml", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stdout.contains("DATA LOSS"), "{r}");
    let r = raystack(root, &["diff", "old.toml"]);
    assert_eq!(r.code, 1, "{r}");
}

/// The Markdown as a GFM renderer sees it: top-level block kinds in order, the HTML output.
fn gfm(md: &str) -> (Vec<String>, String) {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let opts = Options::ENABLE_TABLES | Options::ENABLE_GFM;
    let mut blocks = Vec::new();
    let mut depth = 0;
    for event in Parser::new_ext(md, opts) {
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    blocks.push(match tag {
                        Tag::Table(_) => "table".to_string(),
                        Tag::Heading { .. } => "heading".to_string(),
                        Tag::HtmlBlock => "html".to_string(),
                        Tag::Paragraph => "paragraph".to_string(),
                        Tag::BlockQuote(_) => "quote".to_string(),
                        other => format!("{other:?}"),
                    });
                }
                depth += 1;
            }
            Event::End(_) => depth -= 1,
            Event::Html(_) if depth == 0 => blocks.push("html".to_string()),
            _ => {}
        }
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, Parser::new_ext(md, opts));
    (blocks, html)
}

/// Every code fence the document opens is closed before the next one opens: an unclosed fence
/// (a cut in the middle of a diff) swallows what follows, so the parser finds fewer code blocks
/// than the source has pairs of fence lines. (The parser's own `<pre>`/`</pre>` always pair.)
fn assert_fences_closed(md: &str, html: &str) {
    let fences = md
        .lines()
        .filter(|l| l.trim_start().starts_with("```"))
        .count();
    assert_eq!(fences % 2, 0, "{fences} fence lines: one is not closed");
    assert_eq!(html.matches("<pre>").count(), fences / 2);
}

#[test]
fn two_hundred_stacks_fit_one_comment_and_keep_every_data_loss_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::create_dir(root.join("stacks")).unwrap();
    for i in 0..200 {
        // Half change storage class (DATA LOSS); the other half are new stacks.
        if i % 2 == 0 {
            std::fs::write(
                root.join(format!("stacks/s{i:03}.toml")),
                stack(&format!("s{i:03}")),
            )
            .unwrap();
        }
    }
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "base"]);
    for i in 0..200 {
        let name = format!("s{i:03}");
        let text = if i % 2 == 0 {
            moved(&name)
        } else {
            stack(&name)
        };
        std::fs::write(root.join(format!("stacks/{name}.toml")), text).unwrap();
    }
    let r = raystack(root, &["diff", "--base", "main", "--format", "markdown"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = &r.stdout;
    assert!(md.len() <= 65_536, "{} bytes", md.len());
    assert!(md.chars().count() <= 65_536);
    assert!(md.starts_with("<!-- raystack: review -->\n"));
    for i in (0..200).step_by(2) {
        let line = format!(
            "DATA LOSS: this plan loses GCS state (PersistentVolumeClaim/s{i:03}/s{i:03}-redis-data)"
        );
        assert!(md.contains(&line), "lost the DATA LOSS line of s{i:03}");
    }
    let last = md.lines().last().unwrap();
    assert!(
        last.starts_with("_Shortened to fit 65,536 bytes; left out: ")
            && last.contains("--max-bytes 0"),
        "{last}"
    );

    let (blocks, html) = gfm(md);
    // The marker comment, the heading, then the summary table: the first real content.
    assert_eq!(blocks[..3], ["html", "heading", "table"], "{blocks:?}");
    let table = &html[..html.find("</table>").unwrap()];
    assert_eq!(
        table.matches("<tr>").count(),
        201,
        "a header row and one per stack"
    );
    assert_eq!(
        html.matches("<details>").count(),
        html.matches("</details>").count()
    );
    assert_fences_closed(md, &html);

    // The full document is what --max-bytes 0 prints, and it is far over the limit.
    let full = raystack(
        root,
        &[
            "diff",
            "--base",
            "main",
            "--format",
            "markdown",
            "--max-bytes",
            "0",
        ],
    );
    assert!(full.stdout.len() > 300_000, "{}", full.stdout.len());
    let (_, html) = gfm(&full.stdout);
    assert_fences_closed(&full.stdout, &html);
    assert_eq!(
        html.matches("<details>").count(),
        html.matches("</details>").count()
    );
}

#[test]
fn a_small_review_renders_in_a_gfm_parser() {
    let dir = repo();
    let r = raystack(
        dir.path(),
        &["diff", "--base", "main", "--format", "markdown"],
    );
    assert_eq!(r.code, 0, "{r}");
    insta::assert_snapshot!("diff_base_markdown", r.stdout);
    let (blocks, html) = gfm(&r.stdout);
    assert_fences_closed(&r.stdout, &html);
    assert_eq!(blocks[..3], ["html", "heading", "table"], "{blocks:?}");
    assert!(html.contains("<th>Stack</th>"), "{html}");
    assert_eq!(
        html.matches("<details>").count(),
        html.matches("</details>").count()
    );
    assert!(
        html.contains("<code>ray-a</code>") && html.contains("<strong>DATA LOSS</strong>"),
        "{html}"
    );
}

fn write_stacks(dir: &Path, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = format!("p{i:02}");
            let path = dir.join(format!("{name}.toml"));
            std::fs::write(&path, stack(&name)).unwrap();
            path.display().to_string()
        })
        .collect()
}

#[test]
fn twenty_stacks_plan_concurrently_like_each_alone_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start(dir.path(), &["--latency-ms", "2"]);
    let kc = fake.kubeconfig.display().to_string();
    let stacks = write_stacks(dir.path(), 20);
    for format in ["text", "json"] {
        let mut args = vec!["plan", "--kubeconfig", &kc, "--format", format];
        args.extend(stacks.iter().map(String::as_str));
        let all = raystack(dir.path(), &args);
        assert_eq!(all.code, 0, "{all}");
        let alone: Vec<String> = stacks
            .iter()
            .map(|s| {
                let r = raystack(
                    dir.path(),
                    &["plan", "--kubeconfig", &kc, "--format", format, s],
                );
                assert_eq!(r.code, 0, "{r}");
                r.stdout
            })
            .collect();
        match format {
            "json" => {
                let all = reviewed_plans(&all.stdout);
                let alone: Vec<Value> = alone
                    .iter()
                    .map(|s| serde_json::from_str(s).unwrap())
                    .collect();
                assert_eq!(all, alone);
            }
            _ => {
                // The summary table, then each stack's plan exactly as planned alone.
                let body: String = alone.iter().map(|s| format!("{s}\n")).collect();
                assert!(all.stdout.ends_with(&body), "{}", all.stdout);
                let table = &all.stdout[..all.stdout.len() - body.len()];
                assert!(
                    table.starts_with("raystack plan: 20 stacks: 20 with changes\n"),
                    "{table}"
                );
                assert_eq!(table.lines().filter(|l| l.starts_with("  p")).count(), 20);
            }
        }
    }
}

/// Plans that cannot be applied (no default StorageClass: a preflight error) make the review
/// exit 1 even with changes under `--detailed-exitcode`, and each blocking problem is named on
/// stderr with its stack, in stack order.
#[test]
fn blocked_stacks_exit_1_and_each_problem_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start(dir.path(), &["--no-default-storageclass"]);
    let kc = fake.kubeconfig.display().to_string();
    let stacks = write_stacks(dir.path(), 2);
    let mut args = vec![
        "plan",
        "--kubeconfig",
        &kc,
        "--format",
        "json",
        "--detailed-exitcode",
    ];
    args.extend(stacks.iter().map(String::as_str));
    let r = raystack(dir.path(), &args);
    assert_eq!(r.code, 1, "{r}");
    let plans = reviewed_plans(&r.stdout);
    assert!(plans.iter().all(|p| p["summary"]["add"] == 8), "{r}");
    let why = "preflight kubernetes/storage-class: the cluster has no default StorageClass, and the stack names none, so the Redis volume would never be provisioned";
    assert_eq!(
        r.stderr,
        format!("error: p00: {why}\nerror: p01: {why}\n"),
        "{r}"
    );
}

#[test]
fn one_broken_stack_is_reported_and_the_others_still_plan() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start(dir.path(), &[]);
    let kc = fake.kubeconfig.display().to_string();
    let mut stacks = write_stacks(dir.path(), 5);
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, stack("broken").replace("1Gi", "1Gb")).unwrap();
    stacks.insert(2, broken.display().to_string());
    let mut args = vec!["plan", "--kubeconfig", &kc, "--format", "markdown"];
    args.extend(stacks.iter().map(String::as_str));
    let r = raystack(dir.path(), &args);
    assert_eq!(r.code, 1, "{r}");
    for i in [0, 1, 2, 3, 4] {
        assert!(
            r.stdout
                .contains(&format!("#### `p{i:02}`: Plan: 8 to add")),
            "p{i:02} is planned:\n{r}"
        );
    }
    assert!(r.stdout.contains("1 failed"), "{r}");
    assert!(
        r.stdout.contains("broken.toml`: failed to plan") && r.stdout.contains("`redis.storage`"),
        "{r}"
    );
    assert!(r.stderr.contains("broken.toml"), "{r}");
    let order: Vec<usize> = [
        "#### `p00`",
        "#### `p01`",
        "broken.toml`: failed to plan",
        "#### `p02`",
        "#### `p03`",
        "#### `p04`",
    ]
    .iter()
    .map(|s| r.stdout.find(s).unwrap())
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "in the given order:\n{r}"
    );
}

/// A fake of the pull-request comment API (GitHub's REST shape): list, create and update
/// issue comments. Loopback only; one request per connection.
mod comment_api {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    pub struct Comments {
        pub items: Vec<(u64, String)>,
        /// `METHOD path` of every request, in order.
        pub requests: Vec<String>,
    }

    pub fn start() -> (String, Arc<Mutex<Comments>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Comments::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let target = parts.next().unwrap_or_default().to_string();
                let (mut length, mut authorized, mut expect) = (0usize, false, false);
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let lower = h.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    authorized |= h == "Authorization: Bearer test-token";
                    expect |= lower == "expect: 100-continue";
                }
                if expect {
                    conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let (status, reply) = if authorized {
                    handle(&shared, &method, &target, &body)
                } else {
                    (401, "{\"message\": \"Bad credentials\"}".to_string())
                };
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    )
                    .as_bytes(),
                );
            }
        });
        (url, state)
    }

    fn handle(state: &Mutex<Comments>, method: &str, target: &str, body: &[u8]) -> (u16, String) {
        let mut s = state.lock().unwrap();
        let path = target.split('?').next().unwrap_or_default();
        s.requests.push(format!("{method} {path}"));
        let text = || -> String {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            v["body"].as_str().unwrap().to_string()
        };
        let json = |id: u64, body: &str| serde_json::json!({"id": id, "body": body});
        match (method, path) {
            ("GET", "/repos/acme/ml/issues/7/comments") => {
                let page: usize = target
                    .split("page=")
                    .last()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1);
                let items: Vec<_> = s
                    .items
                    .iter()
                    .skip((page - 1) * 100)
                    .take(100)
                    .map(|(id, b)| json(*id, b))
                    .collect();
                (200, serde_json::Value::Array(items).to_string())
            }
            ("POST", "/repos/acme/ml/issues/7/comments") => {
                let id = 1000 + s.items.len() as u64;
                let b = text();
                s.items.push((id, b.clone()));
                (201, json(id, &b).to_string())
            }
            ("PATCH", p) if p.starts_with("/repos/acme/ml/issues/comments/") => {
                let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                let b = text();
                match s.items.iter_mut().find(|(i, _)| *i == id) {
                    Some(item) => {
                        item.1 = b.clone();
                        (200, json(id, &b).to_string())
                    }
                    None => (404, "{}".into()),
                }
            }
            _ => (404, "{}".into()),
        }
    }
}

fn ci_script(dir: &Path, mode: &str, env: &[(&str, &str)]) -> Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ci-review.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(mode)
        .current_dir(dir)
        .env("RAYSTACK", raystack_bin())
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn ci_review_posts_one_comment_and_updates_it_on_the_next_push() {
    let dir = repo();
    let root = dir.path();
    let (url, comments) = comment_api::start();
    comments
        .lock()
        .unwrap()
        .items
        .push((1, "Looks good to me".into()));
    let full = root.join("full-review.md");
    let env = [
        ("BASE_REF", "main"),
        ("GITHUB_REPOSITORY", "acme/ml"),
        ("PR_NUMBER", "7"),
        ("GITHUB_TOKEN", "test-token"),
        ("GITHUB_API_URL", url.as_str()),
        ("RAYSTACK_MAX_BYTES", "5000"),
        ("REVIEW_FULL", full.to_str().unwrap()),
    ];
    let r = ci_script(root, "comment", &env);
    assert_eq!(r.code, 0, "{r}");
    let first = {
        let c = comments.lock().unwrap();
        assert_eq!(c.items.len(), 2, "one new comment");
        assert_eq!(
            c.items[0].1, "Looks good to me",
            "others' comments untouched"
        );
        c.items[1].clone()
    };
    let body = &first.1;
    assert!(body.len() <= 5000, "{} bytes", body.len());
    assert!(body.starts_with("<!-- raystack: review -->\n"), "{body}");
    let (blocks, html) = gfm(body);
    assert_eq!(blocks[..3], ["html", "heading", "table"], "{blocks:?}");
    assert!(html.contains("<code>ray-a</code>"), "{html}");
    assert!(body.contains("Shortened to fit 5,000 bytes"), "{body}");
    let full_text = std::fs::read_to_string(&full).unwrap();
    assert!(full_text.len() > 5000, "the full review is kept as a file");

    // Next push: b is back. The same comment is updated, not duplicated.
    git(root, &["checkout", "-q", "main", "--", "stacks/b.toml"]);
    git(root, &["commit", "-q", "-m", "keep b"]);
    let r = ci_script(root, "comment", &env);
    assert_eq!(r.code, 0, "{r}");
    let c = comments.lock().unwrap();
    assert_eq!(c.items.len(), 2, "no duplicate:\n{:?}", c.requests);
    assert_eq!(c.items[1].0, first.0);
    assert_ne!(c.items[1].1, first.1, "the body was updated");
    assert!(
        c.items[1].1.contains("2 stacks") && !c.items[1].1.contains("`ray-b`"),
        "{}",
        c.items[1].1
    );
    assert!(c.items[1].1.len() <= 5000);
    assert_eq!(
        c.requests,
        [
            "GET /repos/acme/ml/issues/7/comments",
            "POST /repos/acme/ml/issues/7/comments",
            "GET /repos/acme/ml/issues/7/comments",
            format!("PATCH /repos/acme/ml/issues/comments/{}", first.0).as_str(),
        ]
    );
}

/// A comment API that refuses (a wrong or read-only token) is one clear line naming the
/// permission, not a bare HTTP error; nothing is posted.
#[test]
fn ci_review_says_what_a_refused_comment_needs() {
    let dir = repo();
    let (url, comments) = comment_api::start();
    let env = [
        ("BASE_REF", "main"),
        ("GITHUB_REPOSITORY", "acme/ml"),
        ("PR_NUMBER", "7"),
        ("GITHUB_TOKEN", "not-the-token"),
        ("GITHUB_API_URL", url.as_str()),
    ];
    let r = ci_script(dir.path(), "comment", &env);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(
        r.stderr,
        "ci-review: the comment API refused (HTTP 401: Bad credentials); the token needs \
         `pull-requests: write` (a pull request from a fork only ever gets a read-only token: \
         set PR_FROM_FORK=true)\n",
        "{r}"
    );
    assert!(comments.lock().unwrap().items.is_empty());
}

/// `ci-review.sh plan` then `apply`: each changed stack is planned and saved, a stack that fails
/// to plan is reported and the others go on, a removed stack is never destroyed, and apply
/// applies exactly the saved plans and checks that nothing is left to do.
#[test]
fn ci_plan_then_apply_applies_each_changed_stack_and_never_destroys() {
    let dir = repo();
    let root = dir.path();
    let fake = Fake::start(root, &["--readiness-delay-ms", "0"]);
    let plans = root.join("plans");
    let env = [
        ("BASE_REF", "main"),
        ("PLAN_DIR", plans.to_str().unwrap()),
        ("KUBECONFIG", fake.kubeconfig.to_str().unwrap()),
    ];
    let r = ci_script(root, "plan", &env);
    // a's class `fast-ssd` does not exist in the cluster: preflight stops it; c is planned.
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("stacks/a.toml failed to plan"), "{r}");
    assert!(
        r.stdout.contains(
            "::warning title=raystack::stacks/b.toml was removed; run `raystack destroy` on it by hand"
        ),
        "{r}"
    );
    assert_eq!(
        std::fs::read_to_string(plans.join("stacks")).unwrap(),
        "stacks/c.toml\n"
    );
    assert!(plans.join("stacks__c.toml.plan.json").exists());
    assert!(
        fake.get("/api/v1/namespaces/ray-c").is_none(),
        "plan applies nothing"
    );

    let r = ci_script(root, "apply", &env);
    assert_eq!(r.code, 0, "{r}");
    assert!(fake.get("/api/v1/namespaces/ray-c").is_some(), "{r}");
    assert!(fake.get("/api/v1/namespaces/ray-a").is_none(), "{r}");
}

/// `plan --out-dir DIR STACK...` saves one plan file per stack, named after the stack, and each
/// applies as it was reviewed; `--out` (one file) with several stacks says to use `--out-dir`.
#[test]
fn out_dir_saves_one_plan_per_stack_and_each_applies() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start(dir.path(), &[]);
    let kc = fake.kubeconfig.display().to_string();
    let stacks = write_stacks(dir.path(), 3);
    let mut args = vec!["plan", "--kubeconfig", &kc, "--out", "one.json"];
    args.extend(stacks.iter().map(String::as_str));
    let r = raystack(dir.path(), &args);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(
        r.stderr,
        "error: --out saves one plan; got 3 stacks: use --out-dir DIR to save one plan file per stack\n"
    );

    let mut args = vec!["plan", "--kubeconfig", &kc, "--out-dir", "plans"];
    args.extend(stacks.iter().map(String::as_str));
    let r = raystack(dir.path(), &args);
    assert_eq!(r.code, 0, "{r}");
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("plans"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["p00.plan.json", "p01.plan.json", "p02.plan.json"]);
    for f in &files {
        let plan = format!("plans/{f}");
        let r = raystack(
            dir.path(),
            &["apply", &plan, "--kubeconfig", &kc, "--auto-approve"],
        );
        assert_eq!(r.code, 0, "{r}");
        assert!(r.stdout.starts_with("Apply complete! Resources: "), "{r}");
    }
    let mut args = vec!["plan", "--kubeconfig", &kc, "--detailed-exitcode"];
    args.extend(stacks.iter().map(String::as_str));
    let r = raystack(dir.path(), &args);
    assert_eq!(r.code, 0, "every saved plan was applied: {r}");
}

/// A runner for `examples/ci/github-actions.yml` as GitHub Actions runs it, close enough to
/// run the recipe's steps as written: each job on a fresh "runner" (its own workspace, HOME
/// and RUNNER_TEMP, deleted when the job ends), `run:` steps in `bash -eo pipefail` with the
/// workflow's, job's and step's `env:` and GitHub's default variables (`CI=true`,
/// `GITHUB_PATH`, `GITHUB_ENV`, `GITHUB_STEP_SUMMARY`, …), `${{ }}` expressions from the
/// event's context (an expression the test did not provide fails the test), and the four
/// actions the recipe uses: checkout (a clone of the local origin repository at the event's
/// commit), cache (a key → directory store kept across jobs), upload- and download-artifact.
mod actions {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use serde_json::Value;

    /// What the event provides: `${{ }}` values by expression, secrets, and the commit.
    pub struct Event {
        pub name: &'static str,
        pub sha: String,
        pub context: HashMap<String, String>,
        pub secrets: HashMap<String, String>,
        /// GitHub's default variables that vary by event and repository (GITHUB_REPOSITORY,
        /// GITHUB_API_URL).
        pub defaults: Vec<(String, String)>,
    }

    pub struct JobRun {
        pub ran: bool,
        pub ok: bool,
        /// Every step's name, and whether it ran: `name` or `name (skipped)`.
        pub steps: Vec<String>,
        pub stdout: String,
        pub stderr: String,
        pub summary: String,
    }

    pub struct Runner {
        workflow: Value,
        pub origin: PathBuf,
        scratch: tempfile::TempDir,
        cache: HashMap<String, PathBuf>,
        artifacts: HashMap<String, PathBuf>,
        /// Prepended to every job's PATH (the runner's tools).
        pub tools: PathBuf,
        /// Replaces values of the workflow's top-level `env:`.
        pub env_overrides: HashMap<String, String>,
        jobs_run: usize,
    }

    fn cp(from: &Path, to: &Path) {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let out = Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cp: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn git(dir: &Path, args: &[&str]) {
        super::git(dir, args)
    }

    impl Runner {
        pub fn new(workflow_file: &Path, origin: &Path, tools: &Path) -> Runner {
            let text = std::fs::read_to_string(workflow_file).unwrap();
            let workflow: Value = serde_norway::from_str(&text).expect("the workflow is YAML");
            Runner {
                workflow,
                origin: origin.to_path_buf(),
                scratch: tempfile::tempdir().unwrap(),
                cache: HashMap::new(),
                artifacts: HashMap::new(),
                tools: tools.to_path_buf(),
                env_overrides: HashMap::new(),
                jobs_run: 0,
            }
        }

        /// Runs job `name` for `event` on a fresh runner.
        pub fn run_job(&mut self, name: &str, event: &Event) -> JobRun {
            let job = self.workflow["jobs"][name].clone();
            assert!(job.is_object(), "no job `{name}`");
            let mut run = JobRun {
                ran: false,
                ok: true,
                steps: Vec::new(),
                stdout: String::new(),
                stderr: String::new(),
                summary: String::new(),
            };
            let mut outputs: HashMap<String, String> = HashMap::new();
            let mut env: HashMap<String, String> = HashMap::new();
            if let Some(cond) = job["if"].as_str()
                && eval(cond, event, &env, &outputs) != "true"
            {
                return run;
            }
            run.ran = true;
            self.jobs_run += 1;
            let runner = self
                .scratch
                .path()
                .join(format!("runner-{}", self.jobs_run));
            let workspace = runner.join("work").join("ml");
            let home = runner.join("home");
            let temp = runner.join("temp");
            for d in [&home, &temp] {
                std::fs::create_dir_all(d).unwrap();
            }
            let files: Vec<(&str, PathBuf)> = [
                "GITHUB_PATH",
                "GITHUB_ENV",
                "GITHUB_STEP_SUMMARY",
                "GITHUB_OUTPUT",
            ]
            .into_iter()
            .map(|k| (k, temp.join(k.to_lowercase())))
            .collect();
            for (_, f) in &files {
                std::fs::write(f, "").unwrap();
            }
            for (k, v) in self.workflow["env"].as_object().into_iter().flatten() {
                let v = self
                    .env_overrides
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| scalar(v));
                env.insert(k.clone(), v);
            }
            for (k, v) in job["env"].as_object().into_iter().flatten() {
                env.insert(k.clone(), scalar(v));
            }
            let mut saves: Vec<(String, PathBuf)> = Vec::new();
            for step in job["steps"].as_array().unwrap() {
                let title = step["name"]
                    .as_str()
                    .or(step["uses"].as_str())
                    .unwrap_or("run")
                    .to_string();
                let cond = step["if"].as_str().unwrap_or("success()");
                let go = match cond {
                    "success()" => run.ok,
                    "always()" => true,
                    c => run.ok && eval(c, event, &env, &outputs) == "true",
                };
                if !go {
                    run.steps.push(format!("{title} (skipped)"));
                    continue;
                }
                run.steps.push(title.clone());
                let sub =
                    |s: &str, env: &HashMap<String, String>, outputs: &HashMap<String, String>| {
                        substitute(s, event, env, outputs)
                    };
                let with = |key: &str, env: &HashMap<String, String>| -> Option<String> {
                    step["with"][key]
                        .as_str()
                        .map(|v| sub(v, env, &outputs))
                        .map(|v| match v.strip_prefix("~/") {
                            Some(rest) => home.join(rest).display().to_string(),
                            None => v,
                        })
                };
                if let Some(uses) = step["uses"].as_str() {
                    let action = uses.split('@').next().unwrap();
                    match action {
                        "actions/checkout" => {
                            let out = Command::new("git")
                                .args(["clone", "-q"])
                                .arg(&self.origin)
                                .arg(&workspace)
                                .output()
                                .unwrap();
                            assert!(
                                out.status.success(),
                                "{}",
                                String::from_utf8_lossy(&out.stderr)
                            );
                            git(&workspace, &["checkout", "-q", &event.sha]);
                        }
                        "actions/cache" => {
                            let key = with("key", &env).unwrap();
                            let path = PathBuf::from(with("path", &env).unwrap());
                            let hit = match self.cache.get(&key) {
                                Some(saved) => {
                                    cp(saved, &path);
                                    true
                                }
                                None => {
                                    saves.push((key, path));
                                    false
                                }
                            };
                            if let Some(id) = step["id"].as_str() {
                                outputs.insert(
                                    format!("steps.{id}.outputs.cache-hit"),
                                    hit.to_string(),
                                );
                            }
                        }
                        "actions/upload-artifact" => {
                            let name = with("name", &env).unwrap();
                            let path = workspace.join(with("path", &env).unwrap());
                            if path.exists() {
                                let to = self.scratch.path().join("artifacts").join(&name);
                                let _ = std::fs::remove_dir_all(&to);
                                if path.is_dir() {
                                    cp(&path, &to);
                                } else {
                                    std::fs::create_dir_all(&to).unwrap();
                                    cp(&path, &to.join(path.file_name().unwrap()));
                                }
                                self.artifacts.insert(name, to);
                            } else if with("if-no-files-found", &env).as_deref() == Some("error") {
                                run.ok = false;
                                run.stderr.push_str(&format!(
                                    "upload-artifact: no files at {}\n",
                                    path.display()
                                ));
                            }
                        }
                        "actions/download-artifact" => {
                            let name = with("name", &env).unwrap();
                            let path = workspace.join(with("path", &env).unwrap());
                            let from = self
                                .artifacts
                                .get(&name)
                                .unwrap_or_else(|| panic!("no artifact `{name}`"));
                            cp(from, &path);
                        }
                        other => {
                            panic!("the recipe uses `{other}`, which this runner does not know")
                        }
                    }
                    continue;
                }
                let script = step["run"].as_str().expect("a step runs or uses");
                let script = sub(script, &env, &outputs);
                let mut step_env = env.clone();
                for (k, v) in step["env"].as_object().into_iter().flatten() {
                    step_env.insert(k.clone(), sub(&scalar(v), &env, &outputs));
                }
                let added_path: Vec<String> = std::fs::read_to_string(&files[0].1)
                    .unwrap()
                    .lines()
                    .rev()
                    .map(str::to_string)
                    .collect();
                let mut path = added_path;
                path.push(self.tools.display().to_string());
                path.push(std::env::var("PATH").unwrap());
                let mut cmd = Command::new("bash");
                cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
                    .current_dir(&workspace)
                    .env_clear()
                    .env("PATH", path.join(":"))
                    .env("HOME", &home)
                    .env("RUNNER_TEMP", &temp)
                    .env("GITHUB_WORKSPACE", &workspace)
                    .env("CI", "true")
                    .env("GITHUB_ACTIONS", "true")
                    .env("NO_COLOR", "1")
                    .envs(event.defaults.iter().map(|(k, v)| (k, v)))
                    .envs(files.iter().map(|(k, f)| (*k, f)))
                    .envs(&step_env);
                let out = cmd.output().unwrap();
                run.stdout.push_str(&String::from_utf8_lossy(&out.stdout));
                run.stderr.push_str(&String::from_utf8_lossy(&out.stderr));
                if !out.status.success() {
                    run.ok = false;
                }
                // `echo NAME=value >> "$GITHUB_ENV"` sets NAME for the steps after.
                for line in std::fs::read_to_string(&files[1].1).unwrap().lines() {
                    if let Some((k, v)) = line.split_once('=') {
                        env.insert(k.to_string(), v.to_string());
                    }
                }
            }
            if run.ok {
                for (key, path) in saves {
                    if path.exists() {
                        let to = self.scratch.path().join("cache").join(&key);
                        cp(&path, &to);
                        self.cache.insert(key, to);
                    }
                }
            }
            run.summary = std::fs::read_to_string(&files[2].1).unwrap();
            // The runner is gone: nothing of this job's directories survives it.
            std::fs::remove_dir_all(&runner).unwrap();
            run
        }
    }

    fn scalar(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// `text` with every `${{ expr }}` replaced by its value.
    fn substitute(
        text: &str,
        event: &Event,
        env: &HashMap<String, String>,
        outputs: &HashMap<String, String>,
    ) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("an unclosed ${{") + start;
            out.push_str(&eval(rest[start + 3..end].trim(), event, env, outputs));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// An expression: `a == b`, `a != b`, `'literal'`, `env.NAME`, `steps.ID.outputs.NAME`, `secrets.NAME`, `runner.os`,
    /// `runner.arch`, or a context value the event provides.
    fn eval(
        expr: &str,
        event: &Event,
        env: &HashMap<String, String>,
        outputs: &HashMap<String, String>,
    ) -> String {
        let expr = expr.trim();
        for op in [" != ", " == "] {
            if let Some((a, b)) = expr.split_once(op) {
                let equal = eval(a, event, env, outputs) == eval(b, event, env, outputs);
                return (equal == (op == " == ")).to_string();
            }
        }
        if let Some(lit) = expr.strip_prefix('\'').and_then(|e| e.strip_suffix('\'')) {
            return lit.to_string();
        }
        if let Some(name) = expr.strip_prefix("env.") {
            return env.get(name).cloned().unwrap_or_default();
        }
        if let Some(name) = expr.strip_prefix("secrets.") {
            return event.secrets.get(name).cloned().unwrap_or_default();
        }
        if expr.starts_with("steps.") {
            return outputs.get(expr).cloned().unwrap_or_default();
        }
        match expr {
            "runner.os" => "Linux".into(),
            "runner.arch" => "X64".into(),
            _ => event.context.get(expr).cloned().unwrap_or_else(|| {
                panic!(
                    "the test provides no value for `{expr}` ({} event)",
                    event.name
                )
            }),
        }
    }
}

/// `stack(name)` with the kubernetes state backend, as the recipe requires.
fn k8s_stack(name: &str, replicas: u32) -> String {
    let text = stack(name).replace(
        "[cluster]",
        "[state]\nbackend = \"kubernetes\"\n\n[cluster]",
    );
    let workers = "replicas = 1\nmin_replicas = 1\nmax_replicas = 1";
    assert!(text.contains(workers));
    text.replace(
        workers,
        &format!("replicas = {replicas}\nmin_replicas = {replicas}\nmax_replicas = {replicas}"),
    )
}

fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The recipe, run as written: `examples/ci/github-actions.yml`'s jobs, steps and expressions
/// on a local runner (`actions`), against a local git repository, a fake comment API and
/// fake-apiserver. raystack itself is installed by the recipe's own steps from a local
/// "raystack repository" at a pinned tag (its `cargo install` stands in by a `cargo` that
/// records the commit it was asked to build and installs the raystack under test), once, and
/// restored from the cache by every later job.
///
/// Pull request → one comment; another push → the same comment updated, not a second one; a
/// pull request from a fork → no comment, the review in the job summary with a notice; merge →
/// the plan job plans the changed stacks and keeps the plan files as an artifact, its runner is
/// then deleted → the apply job, in a fresh checkout in another directory, applies exactly
/// those plans (a removed stack is never destroyed) → a plan reports no changes.
#[test]
fn the_ci_recipe_runs_as_written_from_pull_request_to_apply() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/github-actions.yml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    // The placeholder is marked, and fails rather than installing something else.
    assert!(
        text.contains(">>> REPLACE") && text.contains("REPLACE-WITH-RAYSTACK-OWNER"),
        "{text}"
    );

    // raystack's repository: the CI script at a tagged commit.
    let raystack_repo = root.join("raystack");
    std::fs::create_dir_all(raystack_repo.join("scripts")).unwrap();
    git(&raystack_repo, &["init", "-q", "-b", "main"]);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ci-review.sh"),
        raystack_repo.join("scripts/ci-review.sh"),
    )
    .unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
        raystack_repo.join("Cargo.toml"),
    )
    .unwrap();
    git(&raystack_repo, &["add", "."]);
    git(&raystack_repo, &["commit", "-q", "-m", "raystack"]);
    git(&raystack_repo, &["tag", "v9.9.9-test"]);
    let pinned = head(&raystack_repo);
    git(
        &raystack_repo,
        &["commit", "-q", "--allow-empty", "-m", "after the tag"],
    );

    // The runner's tools: a `cargo` that installs the raystack under test.
    let tools = root.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    let builds = root.join("builds.log");
    let cargo = tools.join("cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/usr/bin/env bash\nset -euo pipefail\n\
             [ \"$*\" = \"install --locked --root $HOME/.raystack --path $6\" ] || {{ echo \"cargo: unexpected: $*\" >&2; exit 1; }}\n\
             test -f \"$6/Cargo.toml\"\n\
             git -C \"$6\" rev-parse HEAD >> '{}'\n\
             mkdir -p \"$HOME/.raystack/bin\"\n\
             cp '{}' \"$HOME/.raystack/bin/raystack\"\n",
            builds.display(),
            raystack_bin().display()
        ),
    )
    .unwrap();
    let chmod = Command::new("chmod")
        .arg("+x")
        .arg(&cargo)
        .status()
        .unwrap();
    assert!(chmod.success());

    // The stacks repository: a and b on main, applied; a pull request scales a and adds c.
    let origin = root.join("origin");
    std::fs::create_dir_all(origin.join("stacks")).unwrap();
    git(&origin, &["init", "-q", "-b", "main"]);
    std::fs::write(origin.join("stacks/a.toml"), k8s_stack("ray-a", 1)).unwrap();
    std::fs::write(origin.join("stacks/b.toml"), k8s_stack("ray-b", 1)).unwrap();
    git(&origin, &["add", "."]);
    git(&origin, &["commit", "-q", "-m", "base"]);
    let fake = Fake::start(root, &["--readiness-delay-ms", "0"]);
    let kc = fake.kubeconfig.display().to_string();
    for s in ["stacks/a.toml", "stacks/b.toml"] {
        let r = raystack(
            &origin,
            &["apply", s, "--auto-approve", "--kubeconfig", &kc],
        );
        assert_eq!(r.code, 0, "{r}");
    }
    let before = head(&origin);
    git(&origin, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(origin.join("stacks/a.toml"), k8s_stack("ray-a", 2)).unwrap();
    std::fs::write(origin.join("stacks/c.toml"), k8s_stack("ray-c", 1)).unwrap();
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "-q", "-m", "scale a, add c"]);

    let (api, comments) = comment_api::start();
    let mut runner = actions::Runner::new(&recipe, &origin, &tools);
    runner.env_overrides.insert(
        "RAYSTACK_GIT".into(),
        format!("file://{}", raystack_repo.display()),
    );
    runner
        .env_overrides
        .insert("RAYSTACK_REV".into(), "v9.9.9-test".into());
    let pull_request = |sha: String, from: &str| actions::Event {
        name: "pull_request",
        sha,
        context: [
            ("github.event_name", "pull_request"),
            ("github.repository", "acme/ml"),
            ("github.event.pull_request.base.ref", "main"),
            ("github.event.pull_request.number", "7"),
            ("github.event.pull_request.head.repo.full_name", from),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        secrets: [("GITHUB_TOKEN".to_string(), "test-token".to_string())].into(),
        defaults: vec![
            ("GITHUB_REPOSITORY".into(), "acme/ml".into()),
            ("GITHUB_API_URL".into(), api.clone()),
        ],
    };

    // The pull request: one comment, raystack built once.
    let review = runner.run_job("review", &pull_request(head(&origin), "acme/ml"));
    assert!(review.ok, "review failed:\n{}", review.stderr);
    assert_eq!(
        review.steps,
        [
            "actions/checkout@v4",
            "Cache raystack",
            "Build raystack",
            "Put raystack on the PATH",
            "Review the changed stacks",
            "Keep the full review"
        ]
    );
    let first = {
        let c = comments.lock().unwrap();
        assert_eq!(c.items.len(), 1, "{:?}", c.requests);
        c.items[0].clone()
    };
    assert!(
        first.1.starts_with("<!-- raystack: review -->\n"),
        "{}",
        first.1
    );
    assert!(
        first.1.contains("`ray-a`") && first.1.contains("`ray-c`"),
        "{}",
        first.1
    );
    assert_eq!(
        std::fs::read_to_string(&builds).unwrap(),
        format!("{pinned}\n"),
        "built once, from the pinned tag"
    );
    // The plan job and push events never ran here.
    let push_only = runner.run_job("plan", &pull_request(head(&origin), "acme/ml"));
    assert!(!push_only.ran);

    // Another push to the pull request: the same comment, updated; raystack from the cache.
    std::fs::write(origin.join("stacks/a.toml"), k8s_stack("ray-a", 3)).unwrap();
    git(&origin, &["commit", "-q", "-am", "scale a further"]);
    let review = runner.run_job("review", &pull_request(head(&origin), "acme/ml"));
    assert!(review.ok, "review failed:\n{}", review.stderr);
    assert!(
        review
            .steps
            .contains(&"Build raystack (skipped)".to_string()),
        "{:?}",
        review.steps
    );
    {
        let c = comments.lock().unwrap();
        assert_eq!(c.items.len(), 1, "no second comment: {:?}", c.requests);
        assert_eq!(c.items[0].0, first.0);
        assert_ne!(c.items[0].1, first.1, "updated");
        assert_eq!(
            c.requests,
            [
                "GET /repos/acme/ml/issues/7/comments",
                "POST /repos/acme/ml/issues/7/comments",
                "GET /repos/acme/ml/issues/7/comments",
                format!("PATCH /repos/acme/ml/issues/comments/{}", first.0).as_str(),
            ]
        );
    }

    // The same pull request from a fork: no request to the comment API, a notice, and the
    // review in the job summary.
    let review = runner.run_job("review", &pull_request(head(&origin), "someone/ml"));
    assert!(review.ok, "review failed:\n{}", review.stderr);
    assert_eq!(comments.lock().unwrap().requests.len(), 4);
    assert!(
        review.stdout.contains(
            "::notice title=raystack::pull request from a fork: the review is in the job summary"
        ),
        "{}",
        review.stdout
    );
    assert!(
        review.summary.starts_with("<!-- raystack: review -->\n"),
        "{}",
        review.summary
    );

    // Merge, and the push to main.
    git(&origin, &["checkout", "-q", "main"]);
    git(
        &origin,
        &["merge", "-q", "--no-ff", "-m", "merge #7", "feature"],
    );
    let push = actions::Event {
        name: "push",
        sha: head(&origin),
        context: [
            ("github.event_name", "push"),
            ("github.repository", "acme/ml"),
            ("github.ref", "refs/heads/main"),
            ("github.event.before", before.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        secrets: [(
            "RAYSTACK_KUBECONFIG".to_string(),
            std::fs::read_to_string(&fake.kubeconfig).unwrap(),
        )]
        .into(),
        defaults: vec![("GITHUB_REPOSITORY".into(), "acme/ml".into())],
    };
    assert!(!runner.run_job("review", &push).ran);
    let plan = runner.run_job("plan", &push);
    assert!(plan.ok, "plan failed:\n{}", plan.stderr);
    assert!(
        plan.summary.contains("`ray-a`") && plan.summary.contains("`ray-c`"),
        "{}",
        plan.summary
    );
    // Nothing applied yet.
    assert!(fake.get("/api/v1/namespaces/ray-c").is_none());

    let apply = runner.run_job("apply", &push);
    assert!(
        apply.ok,
        "apply failed:\n{}\n{}",
        apply.stdout, apply.stderr
    );
    assert_eq!(
        apply.steps,
        [
            "actions/checkout@v4",
            "Cache raystack",
            "Build raystack (skipped)",
            "Put raystack on the PATH",
            "Cluster credentials",
            "Download the reviewed plans",
            "Apply exactly those plans"
        ]
    );
    assert_eq!(
        apply.stdout.matches("Apply complete! Resources: ").count(),
        2,
        "{}",
        apply.stdout
    );
    assert!(fake.get("/api/v1/namespaces/ray-c").is_some());
    let a = fake
        .get("/apis/ray.io/v1/namespaces/ray-a/rayclusters/ray-a")
        .unwrap();
    assert_eq!(a["spec"]["workerGroupSpecs"][0]["replicas"], 3);
    assert!(fake.get("/api/v1/namespaces/ray-b").is_some());
    // Built once in all.
    assert_eq!(std::fs::read_to_string(&builds).unwrap().lines().count(), 1);

    // And from yet another checkout, nothing is left to do.
    let r = raystack(
        &origin,
        &[
            "plan",
            "stacks/a.toml",
            "stacks/b.toml",
            "stacks/c.toml",
            "--detailed-exitcode",
            "--kubeconfig",
            &kc,
        ],
    );
    assert_eq!(r.code, 0, "{r}");
}
