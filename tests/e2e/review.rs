//! Reviewing many stacks: `diff --base` against a real git repository, the multi-stack review
//! document (rendered by a real CommonMark/GFM parser), and `plan` of many stacks concurrently
//! against `fake-apiserver`.

use std::path::Path;
use std::process::Command;

use crate::support::{Fake, raystack_bin};
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
    let plans: Vec<Value> = serde_json::from_str(&given.stdout).unwrap();
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

    // From a subdirectory, with a path relative to it.
    let sub = raystack(
        &root.join("stacks"),
        &["diff", "--base", "main", "c.toml", "--format", "json"],
    );
    assert_eq!(sub.code, 0, "{sub}");
    let c: Value = serde_json::from_str(&sub.stdout).unwrap();
    assert_eq!(c["stack"], "ray-c");
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
    let r = raystack(
        root,
        &["diff", "--base", "main", "stacks/a.toml", "stacks/c.toml"],
    );
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.contains("ray-a"), "{r}");
    assert!(
        r.stdout.contains("stacks/c.toml: failed to plan") && r.stdout.contains("`redis.storage`"),
        "{r}"
    );

    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("s.toml"), stack("s")).unwrap();
    let r = raystack(outside.path(), &["diff", "--base", "main", "s.toml"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.contains("is not inside a git repository"), "{r}");
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
    assert_eq!(
        html.matches("<pre>").count(),
        html.matches("</pre>").count()
    );

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
                let all: Vec<Value> = serde_json::from_str(&all.stdout).unwrap();
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

#[test]
fn ci_apply_plans_and_applies_each_changed_stack_and_never_destroys() {
    let dir = repo();
    let root = dir.path();
    let fake = Fake::start(root, &["--readiness-delay-ms", "0"]);
    let plans = root.join("plans");
    let env = [
        ("BASE_REF", "main"),
        ("PLAN_DIR", plans.to_str().unwrap()),
        ("KUBECONFIG", fake.kubeconfig.to_str().unwrap()),
    ];
    let r = ci_script(root, "apply", &env);
    // a's class `fast-ssd` does not exist in the cluster: preflight stops it; c is applied.
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("stacks/a.toml failed"), "{r}");
    assert!(
        r.stderr
            .contains("stacks/b.toml was removed; run `raystack destroy` on it by hand"),
        "{r}"
    );
    assert!(fake.get("/api/v1/namespaces/ray-c").is_some(), "{r}");
    assert!(fake.get("/api/v1/namespaces/ray-a").is_none(), "{r}");
    assert!(plans.join("stacks_c.toml.plan").exists());
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
