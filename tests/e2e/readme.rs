//! README.md's console transcripts, regenerated from the current binary, so that none can go
//! stale.
//!
//! The convention: every transcript in README.md is a fenced block with the line
//! `<!-- transcript: ID -->` directly above it. [`TRANSCRIPTS`] maps each ID to the command
//! lines of that transcript; the test runs them, in order, in a temporary directory laid out
//! as a checkout of raystack (copies of the repository's `stacks/`, `examples/`,
//! `tests/fixtures/kuberay/` and `tests/fixtures/bad/`, committed to a git repository), with
//! `raystack` on `PATH`, and writes what a terminal would show:
//! `$ LINE`, then what the command printed (stdout and stderr through one pipe, in the order
//! written). That whole output is an insta snapshot (`e2e__readme__<ID>.snap`, the full text
//! the README quotes from), and the README block must be that output where each line
//! `[… what was cut …]` stands for one or more consecutive lines of it.
//!
//! Lines are run by `bash -c` with these exceptions, each what a shell would do:
//! - `fake-apiserver FLAGS &` starts the fake in this process (as every e2e test does), with
//!   those flags, writes the kubeconfig it names and shows the URL the binary prints;
//! - `export NAME=VALUE` sets NAME for the lines after it (`$PWD` is the directory);
//! - `echo $?` shows the exit code of the line before;
//! - another line ending in ` &` runs in the background, in its own process group, killed when
//!   the transcript ends; what it prints is not shown (the README's such lines redirect it);
//! - an empty line is an empty line of the transcript.
//!
//! What varies from run to run is normalised in both texts, and only this ([`normalize`]):
//! loopback ports, UUIDs (UIDs, lineages, lock IDs), RFC 3339 times, elapsed times (`after
//! 0.3s`, `(0.3s)`), a lock holder's `USER@HOST pid N`, the temporary directory, and progress
//! lines `ADDRESS: waiting: …` (whether a wait is seen at all depends on how fast the fake's
//! controllers answer), which are dropped.
//!
//! A marked block whose ID is not in [`TRANSCRIPTS`] fails ([`every_marked_transcript_is_known`]),
//! and so does an ID of [`TRANSCRIPTS`] that the README no longer marks. Adding a transcript is
//! one line in [`TRANSCRIPTS`] and one test calling [`check`].

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{Fake, raystack_bin};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The session of "A session": plan, apply, an edit, plan and apply again, no changes, the
/// storage-class change refused as DATA LOSS, what state tracks, destroy.
const SESSION: &[&str] = &[
    "fake-apiserver --kubeconfig kubeconfig --crd tests/fixtures/kuberay/ray.io_rayclusters.v1.3.0.yaml &",
    "export KUBECONFIG=$PWD/kubeconfig",
    "raystack plan stacks/local.toml",
    "",
    "raystack apply stacks/local.toml --auto-approve",
    "",
    "# two workers instead of one",
    "sed -i 's/replicas = 1/replicas = 2/' stacks/local.toml",
    "raystack plan stacks/local.toml",
    "",
    "raystack apply stacks/local.toml --auto-approve",
    "",
    "raystack plan stacks/local.toml --detailed-exitcode",
    "echo $?",
    "",
    "# another storage class: create it, then point the stack at it",
    "kubectl apply -f examples/fast-ssd-storageclass.yaml",
    "sed -i '/^\\[redis\\]/a storage_class = \"fast-ssd\"' stacks/local.toml",
    "raystack apply stacks/local.toml --auto-approve",
    "echo $?",
    "",
    "raystack state list stacks/local.toml",
    "",
    "raystack destroy stacks/local.toml --auto-approve",
];

/// "Reviewing changes in CI": three stack files changed in a checkout, reviewed against the
/// last commit as the CI recipe's comment, shrunk to show what shrinking keeps.
const REVIEW: &[&str] = &[
    "sed 's/ray-local/ray-team-a/g' stacks/local.toml > stacks/team-a.toml",
    "sed -i '/^\\[redis\\]/a storage_class = \"fast-ssd\"' stacks/local.toml",
    "sed -i 's/memory = \"16Gi\"/memory = \"32Gi\"/' stacks/aws.toml",
    "raystack diff --base HEAD --format markdown --max-bytes 2500",
];

/// "Reviewing changes in CI": two revisions of one stack file, compared without a cluster.
const DIFF: &[&str] = &[
    "git show HEAD:stacks/local.toml > old.toml",
    "sed -i 's/replicas = 1/replicas = 2/' stacks/local.toml",
    "raystack diff old.toml stacks/local.toml",
];

/// "Working as a team / in CI": a second apply while the first holds the Lease. The fake's
/// controllers take ten minutes to make anything ready, so the first apply holds the lock while
/// it waits; `kubectl wait` returns once it has taken it.
const LOCK: &[&str] = &[
    "fake-apiserver --kubeconfig kubeconfig --crd tests/fixtures/kuberay/ray.io_rayclusters.v1.3.0.yaml --readiness-delay-ms 600000 &",
    "export KUBECONFIG=$PWD/kubeconfig",
    "printf '\\n[state]\\nbackend = \"kubernetes\"\\n' >> stacks/local.toml",
    "raystack apply stacks/local.toml --auto-approve > apply.log 2>&1 &",
    "kubectl wait --for=create lease/raystack-lock-ray-local -n raystack-system",
    "raystack apply stacks/local.toml --auto-approve",
];

/// "Durability goals → Redis": the redis.conf two goals render to.
const DURABILITY: &[&str] = &[
    "raystack render stacks/zero-loss.toml | sed -n '/redis.conf: |/,/maxmemory-policy/p'",
    "raystack render stacks/rdb-only.toml | sed -n '/redis.conf: |/,/maxmemory-policy/p'",
];

/// Every transcript the README marks, by ID: the lines it runs.
const TRANSCRIPTS: &[(&str, &[&str])] = &[
    ("session", SESSION),
    ("validate", &["raystack validate stacks/local.toml"]),
    (
        "validate-errors",
        &["raystack validate tests/fixtures/bad/16-several-errors.toml"],
    ),
    (
        "validate-patch",
        &["raystack validate tests/fixtures/bad/36-patch-touches-gcs-ft.toml"],
    ),
    ("durability", DURABILITY),
    ("diff", DIFF),
    ("lock", LOCK),
    ("review", REVIEW),
];

#[test]
fn session() {
    check("session");
}

#[test]
fn validate() {
    check("validate");
}

#[test]
fn validate_errors() {
    check("validate-errors");
}

#[test]
fn validate_patch() {
    check("validate-patch");
}

#[test]
fn durability() {
    check("durability");
}

#[test]
fn diff() {
    check("diff");
}

#[test]
fn lock() {
    check("lock");
}

#[test]
fn review() {
    check("review");
}

/// Every `<!-- transcript: ID -->` block in README.md is one that a test regenerates, and every
/// transcript the tests know is still in the README, once.
#[test]
fn every_marked_transcript_is_known() {
    let blocks = readme_blocks(&readme()).unwrap_or_else(|e| panic!("README.md: {e}"));
    let known: Vec<&str> = TRANSCRIPTS.iter().map(|(id, _)| *id).collect();
    let unknown: Vec<&String> = blocks
        .keys()
        .filter(|id| !known.contains(&id.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "README.md marks transcripts no test regenerates: {unknown:?}; add them to TRANSCRIPTS in tests/e2e/readme.rs"
    );
    let unmarked: Vec<&&str> = known
        .iter()
        .filter(|id| !blocks.contains_key(**id))
        .collect();
    assert!(
        unmarked.is_empty(),
        "README.md no longer marks {unmarked:?}; remove them from TRANSCRIPTS or mark their blocks"
    );
}

/// The elision rule itself: `[…]` lines stand for one or more lines, nothing else is loose.
#[test]
fn elisions_stand_for_one_or_more_lines_and_nothing_else() {
    let out = "a\nb\nc\nd\n";
    assert_eq!(mismatch("a\n[… two …]\nd\n", out), None);
    assert_eq!(mismatch("[…]\nd\n", out), None);
    assert_eq!(mismatch("a\nb\nc\nd\n", out), None);
    // An elision stands for at least one line.
    assert_eq!(mismatch("a\n[…]\nb\nc\nd\n", out), Some(2));
    // Every other line must be there, in order, and nothing may follow the last one.
    assert_eq!(mismatch("a\nc\nd\n", out), Some(1));
    assert_eq!(mismatch("a\n[…]\nc\n", out), Some(3));
    assert_eq!(mismatch("a\nb\nc\nd\ne\n", out), Some(4));
}

/// What varies is the same on both sides after [`normalize`]; every other difference stays.
#[test]
fn normalisation_is_narrow() {
    let same = [
        (
            "ready after 1.3s at 127.0.0.1:40123",
            "ready after 0.0s at 127.0.0.1:5",
        ),
        ("created (12.5s)", "created (0.0s)"),
        (
            "held by alice@laptop pid 4242 (apply) since 2026-11-29T21:40:03Z",
            "held by root@vm pid 17 (apply) since 2027-01-01T00:00:00.5Z",
        ),
        (
            "lock ID 5f0c6e2a-1b7d-4c38-9a51-0d2e8f4b7c19",
            "lock ID 2747ea30-8184-432c-afc5-788dd5ed5e4a",
        ),
        ("x: waiting: head not ready\ny", "y"),
    ];
    for (a, b) in same {
        assert_eq!(normalize(a, None), normalize(b, None), "{a:?} vs {b:?}");
    }
    let different = [
        ("Plan: 8 to add", "Plan: 9 to add"),
        ("storage: 1Gi", "storage: 2Gi"),
        ("after 2s", "after 3s"),
        ("replicas: (1)", "replicas: (2)"),
        ("http://127.0.0.2:80", "http://127.0.0.2:81"),
        ("alice@laptop pid x", "bob@laptop pid x"),
        ("2026-11-29", "2026-11-30"),
    ];
    for (a, b) in different {
        assert_ne!(normalize(a, None), normalize(b, None), "{a:?} vs {b:?}");
    }
}

/// A marker must sit directly above a closed fenced block, once per ID.
#[test]
fn markers_are_strict() {
    let ok = "<!-- transcript: a -->\n```console\n$ x\n```\n";
    assert_eq!(
        readme_blocks(ok).unwrap().get("a"),
        Some(&(3, "$ x\n".to_string()))
    );
    for bad in [
        "<!-- transcript: a -->\n\n```console\n$ x\n```\n",
        "<!-- transcript: a -->\n```console\n$ x\n",
        "<!-- transcript: a -->\n```\nx\n```\n<!-- transcript: a -->\n```\ny\n```\n",
    ] {
        assert!(readme_blocks(bad).is_err(), "{bad:?}");
    }
}

/// Regenerates transcript `id`, snapshots it whole and compares it with the README's block.
pub fn check(id: &str) {
    let (_, lines) = TRANSCRIPTS
        .iter()
        .find(|(known, _)| *known == id)
        .unwrap_or_else(|| panic!("no transcript `{id}` in TRANSCRIPTS"));
    let blocks = readme_blocks(&readme()).unwrap_or_else(|e| panic!("README.md: {e}"));
    let (first_line, block) = blocks
        .get(id)
        .unwrap_or_else(|| panic!("README.md has no block marked `<!-- transcript: {id} -->`"));
    for tool in ["git", "kubectl"] {
        let needed = lines.iter().any(|l| l.starts_with(&format!("{tool} ")));
        let found = Command::new(tool)
            .arg("version")
            .args((tool == "kubectl").then_some("--client"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            !needed || found,
            "transcript `{id}` runs {tool}, which is not installed (./scripts/test installs it)"
        );
    }
    let mut lab = Lab::new();
    let mut out = String::new();
    for line in *lines {
        out.push_str(&lab.run(line));
    }
    let out = normalize(&out, Some(lab.dir.path()));
    insta::assert_snapshot!(id, out);
    let lines = normalized_lines(block, None);
    let raw_len = block.lines().count();
    let block = normalize(block, None);
    if let Some(i) = mismatch(&block, &out) {
        let line = block.lines().nth(i).unwrap_or("(the end of the block)");
        // The README line: the block's line that normalising kept as line i.
        let at = first_line + lines.get(i).map_or(raw_len, |(n, _)| *n);
        panic!(
            "README.md's transcript `{id}` no longer matches the binary: README.md:{} does not follow:\n  {line}\n\
             The whole output is tests/e2e/snapshots/e2e__readme__{id}.snap; copy what the README \
             quotes from there (a line `[… … …]` stands for lines left out).\n\
             README block (normalised):\n{block}",
            at
        );
    }
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("read README.md")
}

/// The marked blocks of `readme`, by ID: the README line number of the block's first line, and
/// the text between the fence lines.
fn readme_blocks(readme: &str) -> Result<BTreeMap<String, (usize, String)>, String> {
    let mut blocks = BTreeMap::new();
    let lines: Vec<&str> = readme.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        let Some(id) = line
            .trim()
            .strip_prefix("<!-- transcript:")
            .and_then(|rest| rest.strip_suffix("-->"))
            .map(str::trim)
        else {
            continue;
        };
        let fence_line = lines.get(n + 1).copied().unwrap_or_default();
        let fence: String = fence_line.chars().take_while(|c| *c == '`').collect();
        if fence.len() < 3 {
            return Err(format!(
                "line {}: the transcript marker `{id}` is not directly above a fenced block",
                n + 1
            ));
        }
        let body: Vec<&str> = lines[n + 2..]
            .iter()
            .take_while(|l| l.trim_end() != fence)
            .copied()
            .collect();
        if n + 2 + body.len() >= lines.len() {
            return Err(format!("line {}: the block of `{id}` is not closed", n + 2));
        }
        let mut text = body.join("\n");
        text.push('\n');
        if blocks.insert(id.to_string(), (n + 3, text)).is_some() {
            return Err(format!("line {}: transcript `{id}` is marked twice", n + 1));
        }
    }
    Ok(blocks)
}

/// Whether `line` is an elision: `[…]` or `[… what was cut …]`, indented or not.
fn is_elision(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("[…") && t.ends_with(']')
}

/// `None` when `block` is `out` with elisions, else the index of the first line of `block` that
/// no match reaches.
fn mismatch(block: &str, out: &str) -> Option<usize> {
    let b: Vec<&str> = block.lines().collect();
    let o: Vec<&str> = out.lines().collect();
    // reach[j]: the first i lines of `b` match the first j lines of `o`.
    let mut reach = vec![false; o.len() + 1];
    reach[0] = true;
    for (i, line) in b.iter().enumerate() {
        let mut next = vec![false; o.len() + 1];
        if is_elision(line) {
            // One or more lines: next[j] if reach[k] for some k < j.
            let mut any = false;
            for j in 0..=o.len() {
                next[j] = any;
                any |= reach[j];
            }
        } else {
            for j in 1..=o.len() {
                next[j] = reach[j - 1] && o[j - 1] == *line;
            }
        }
        if !next.contains(&true) {
            return Some(i);
        }
        reach = next;
    }
    (!reach[o.len()]).then_some(b.len())
}

/// What varies between runs, made the same on both sides (see the module doc).
pub fn normalize(text: &str, dir: Option<&Path>) -> String {
    normalized_lines(text, dir)
        .into_iter()
        .map(|(_, line)| line + "\n")
        .collect()
}

/// The lines of `text` that [`normalize`] keeps, normalised, each with its index in `text`.
fn normalized_lines(text: &str, dir: Option<&Path>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.contains(": waiting: ") {
            continue;
        }
        let mut line = line.to_string();
        if let Some(dir) = dir {
            line = line.replace(&dir.display().to_string(), "$PWD");
        }
        let line = replace_after(&line, "127.0.0.1:", |rest| {
            let n = rest.chars().take_while(char::is_ascii_digit).count();
            (n > 0).then(|| ("PORT".to_string(), n))
        });
        let line = seconds(&line);
        let line = uuids(&line);
        let line = times(&line);
        out.push((n, holder(&line)));
    }
    out
}

/// `line` with what `f` makes of the text after each `marker` (the replacement and the number
/// of bytes it replaces).
fn replace_after(line: &str, marker: &str, f: impl Fn(&str) -> Option<(String, usize)>) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(marker) {
        let (head, tail) = rest.split_at(at + marker.len());
        out.push_str(head);
        rest = tail;
        if let Some((with, n)) = f(rest) {
            out.push_str(&with);
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    out
}

/// `after 0.3s` and `(0.3s)`, the elapsed times of apply's progress, as `N.Ns`.
fn seconds(line: &str) -> String {
    let elapsed = |rest: &str| {
        let int = rest.chars().take_while(char::is_ascii_digit).count();
        let tail = &rest[int..];
        let frac = tail
            .strip_prefix('.')
            .map(|t| t.chars().take_while(char::is_ascii_digit).count())?;
        (int > 0 && frac > 0 && tail[1 + frac..].starts_with('s'))
            .then(|| ("N.Ns".to_string(), int + 1 + frac + 1))
    };
    let line = replace_after(line, "after ", elapsed);
    replace_after(&line, "(", elapsed)
}

/// Each UUID (8-4-4-4-12 hex digits) as `UUID`.
fn uuids(line: &str) -> String {
    let shape = [8, 4, 4, 4, 12];
    let bytes = line.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    'scan: while i < bytes.len() {
        let mut j = i;
        for (k, len) in shape.iter().enumerate() {
            if k > 0 {
                if bytes.get(j) != Some(&b'-') {
                    out.push(bytes[i] as char);
                    i += 1;
                    continue 'scan;
                }
                j += 1;
            }
            let hex = bytes[j..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if hex != *len {
                // Not a UUID here: copy one character (whole, for UTF-8) and go on.
                let ch = line[i..].chars().next().unwrap_or_default();
                out.push(ch);
                i += ch.len_utf8();
                continue 'scan;
            }
            j += len;
        }
        out.push_str("UUID");
        i = j;
    }
    out
}

/// A lock holder, `alice@laptop pid 4242`, as `USER@HOST pid N`.
fn holder(line: &str) -> String {
    let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
    for i in 0..words.len().saturating_sub(2) {
        if words[i].contains('@')
            && words[i + 1] == "pid"
            && !words[i + 2].is_empty()
            && words[i + 2].bytes().all(|b| b.is_ascii_digit())
        {
            words[i] = "USER@HOST".into();
            words[i + 2] = "N".into();
        }
    }
    words.join(" ")
}

/// Each RFC 3339 UTC time (`2026-11-29T21:40:03Z`) as `TIME`.
fn times(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find('T') {
        let (head, tail) = rest.split_at(at);
        let is_date = |s: &str| {
            s.len() == 10
                && s.bytes().enumerate().all(|(k, b)| {
                    if k == 4 || k == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
        };
        let is_time = |s: &str| {
            s.len() >= 9
                && s[..8].bytes().enumerate().all(|(k, b)| {
                    if k == 2 || k == 5 {
                        b == b':'
                    } else {
                        b.is_ascii_digit()
                    }
                })
        };
        if head.len() >= 10 && is_date(&head[head.len() - 10..]) && is_time(&tail[1..]) {
            let clock = &tail[1..];
            let frac = clock[8..]
                .strip_prefix('.')
                .map(|t| 1 + t.chars().take_while(char::is_ascii_digit).count())
                .unwrap_or(0);
            if clock[8 + frac..].starts_with('Z') {
                out.push_str(&head[..head.len() - 10]);
                out.push_str("TIME");
                rest = &clock[8 + frac + 1..];
                continue;
            }
        }
        out.push_str(head);
        out.push('T');
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

/// A checkout of raystack in a temporary directory, and the shell state of a transcript.
struct Lab {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    fake: Option<Fake>,
    last: Option<i32>,
    /// Lines run with `&`, each in its own process group, SIGKILLed when the transcript ends.
    background: Vec<std::process::Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.background {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in [
            "stacks",
            "examples",
            "tests/fixtures/kuberay",
            "tests/fixtures/bad",
        ] {
            copy_dir(&Path::new(ROOT).join(sub), &dir.path().join(sub));
        }
        // A checkout: its files committed, so `diff --base HEAD` compares with them.
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["add", "-A"],
            &["commit", "-q", "-m", "checkout"],
        ] {
            let status = Command::new("git")
                .args([
                    "-c",
                    "user.name=raystack",
                    "-c",
                    "user.email=raystack@localhost",
                ])
                .args(["-c", "commit.gpgsign=false"])
                .args(args)
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .status()
                .expect("run git");
            assert!(status.success(), "git {args:?} failed");
        }
        let bin = raystack_bin();
        let bin_dir = bin.parent().expect("the binary's directory");
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Lab {
            dir,
            env: vec![("PATH".into(), path)],
            fake: None,
            last: None,
            background: Vec::new(),
        }
    }

    /// `$ line` and what it printed.
    fn run(&mut self, line: &str) -> String {
        if line.is_empty() {
            return "\n".into();
        }
        let shown = format!("$ {line}\n");
        if let Some(flags) = line
            .strip_prefix("fake-apiserver ")
            .and_then(|l| l.strip_suffix(" &"))
        {
            return shown + &self.start_fake(flags);
        }
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            let value = value.replace("$PWD", &self.dir.path().display().to_string());
            self.env.push((name.to_string(), value));
            return shown;
        }
        if line == "echo $?" {
            let code = self.last.expect("`echo $?` follows a command");
            return format!("{shown}{code}\n");
        }
        let (line, background) = match line.strip_suffix(" &") {
            Some(line) => (line, true),
            None => (line, false),
        };
        let out = tempfile::tempfile().expect("output file");
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(line)
            .current_dir(self.dir.path())
            .env_remove("KUBECONFIG")
            .env_remove("RAYSTACK_REQUEST_TIMEOUT")
            .env_remove("RAYSTACK_WAIT_TIMEOUT")
            .env("COLUMNS", "100")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("output file"))
            .stderr(out.try_clone().expect("output file"));
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        if background {
            // What it prints is not shown (a terminal would interleave it): the README's
            // background lines redirect their output.
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0);
            let child = cmd.spawn().unwrap_or_else(|e| panic!("run `{line}`: {e}"));
            self.background.push(child);
            return shown;
        }
        let status = cmd.status().unwrap_or_else(|e| panic!("run `{line}`: {e}"));
        self.last = status.code();
        let mut out = out;
        let mut text = String::new();
        use std::io::{Read as _, Seek as _};
        out.rewind().expect("rewind");
        out.read_to_string(&mut text).expect("output is UTF-8");
        shown + &text
    }

    /// `fake-apiserver --kubeconfig PATH FLAGS… &`: the fake in this process, the kubeconfig at
    /// PATH, and the URL the binary prints.
    fn start_fake(&mut self, flags: &str) -> String {
        assert!(self.fake.is_none(), "one fake-apiserver per transcript");
        let words: Vec<&str> = flags.split_whitespace().collect();
        let mut kubeconfig = None;
        let mut rest: Vec<String> = Vec::new();
        let mut it = words.iter();
        while let Some(w) = it.next() {
            match *w {
                "--kubeconfig" => kubeconfig = it.next().map(|p| self.dir.path().join(p)),
                "--crd" | "--audit-log-path" => {
                    rest.push(w.to_string());
                    let p = it.next().expect("a path");
                    rest.push(self.dir.path().join(p).display().to_string());
                }
                other => rest.push(other.to_string()),
            }
        }
        let kubeconfig: PathBuf = kubeconfig.expect("fake-apiserver needs --kubeconfig");
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        // The support harness writes `kubeconfig` in the directory it is given; a transcript
        // names its own path, written here the way the binary writes it.
        let fake = Fake::start_flags(self.dir.path(), &rest);
        std::fs::write(&kubeconfig, fake_apiserver::kubeconfig(&fake.url)).expect("kubeconfig");
        let url = fake.url.clone();
        self.fake = Some(fake);
        format!("{url}\n")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
