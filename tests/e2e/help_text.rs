//! The command line speaks one language: every subcommand's `--help` (found by walking the
//! `Commands:` lists from `raystack --help` down) describes the command and every argument and
//! option it takes; the whole help is one snapshot, so a flag that is renamed, added, loses its
//! text or gains a short form shows up in review. `--auto-approve` is the one way to skip a
//! question, on every command that asks, with the older names still accepted.

use std::process::Command;

use raystack::state::LocalBackend;

use crate::support::{Env, raystack_bin};

/// `raystack ARGS --help`, at a fixed width and without environment that changes the text.
fn help(words: &[String]) -> String {
    let out = Command::new(raystack_bin())
        .args(words)
        .arg("--help")
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .env_remove("RAYSTACK_REQUEST_TIMEOUT")
        .output()
        .expect("run raystack --help");
    assert_eq!(out.status.code(), Some(0), "{words:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The lines of the section headed `title` (up to the next blank line followed by a heading,
/// or the end).
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| *l != title);
    if lines.next().is_none() {
        return Vec::new();
    }
    lines
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// An entry of `Arguments:`/`Options:`: `<STACK>`, `[STACK]...`, `-h, --help`, `--format <F>`,
/// indented at most six columns (clap's layout; descriptions and value lists sit deeper).
fn is_entry(line: &str) -> bool {
    let t = line.trim_start();
    indent(line) <= 6 && (t.starts_with('-') || t.starts_with('<') || t.starts_with('['))
}

/// Text that only repeats the defaults clap appends, not a description.
fn is_annotation(text: &str) -> bool {
    text.starts_with("[default:")
        || text.starts_with("[possible values:")
        || text.starts_with("[env:")
        || text.starts_with("[aliases:")
}

/// The entries of `lines` that carry no description: none on their line (after two spaces)
/// and none on the deeper-indented lines below them.
fn undescribed(lines: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !is_entry(line) {
            continue;
        }
        let t = line.trim_start();
        let inline = t
            .split_once("  ")
            .map(|(_, rest)| rest.trim())
            .filter(|rest| !rest.is_empty() && !is_annotation(rest));
        let below = lines[i + 1..]
            .iter()
            .take_while(|l| !is_entry(l) && !l.is_empty())
            .map(|l| l.trim())
            .find(|l| !is_annotation(l));
        if inline.is_none() && below.is_none() {
            missing.push(t.split("  ").next().unwrap_or(t).to_string());
        }
    }
    missing
}

/// The subcommand names of a `Commands:` section, `help` left out.
fn subcommands(text: &str) -> Vec<String> {
    section(text, "Commands:")
        .iter()
        .filter(|l| indent(l) == 2)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path with its help, depth first: `[]`, `["validate"]`, …, `["state", "list"]`.
fn walk() -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(words) = todo.pop() {
        let text = help(&words);
        for sub in subcommands(&text).into_iter().rev() {
            let mut next = words.clone();
            next.push(sub);
            todo.push(next);
        }
        out.push((words, text));
    }
    out
}

#[test]
fn every_argument_and_option_of_every_command_has_help_text() {
    let all = walk();
    let names: Vec<String> = all.iter().map(|(w, _)| w.join(" ")).collect();
    // The walk found every command (a command missing from `Commands:` would not be checked).
    assert_eq!(
        names,
        [
            "",
            "validate",
            "render",
            "plan",
            "apply",
            "destroy",
            "show",
            "diff",
            "import",
            "state",
            "state list",
            "state show",
            "state pull",
            "state migrate",
            "force-unlock",
            "verify",
            "status"
        ]
    );
    let mut problems = Vec::new();
    for (words, text) in &all {
        let name = format!("raystack {}", words.join(" "));
        let about = text.lines().next().unwrap_or_default();
        if about.is_empty() || about.starts_with("Usage:") {
            problems.push(format!("{name}: the command has no description"));
        }
        for title in ["Arguments:", "Options:"] {
            for entry in undescribed(&section(text, title)) {
                problems.push(format!("{name}: `{entry}` has no help text"));
            }
        }
        for line in section(text, "Options:").iter().filter(|l| is_entry(l)) {
            let t = line.trim_start();
            // Short flags: only clap's own -h and -V.
            let short = t.starts_with('-') && !t.starts_with("--");
            if short && !t.starts_with("-h,") && !t.starts_with("-V,") {
                problems.push(format!("{name}: unexpected short flag in `{t}`"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let mut all_help = String::new();
    for (words, text) in &all {
        let command: Vec<&str> = ["raystack"]
            .into_iter()
            .chain(words.iter().map(String::as_str))
            .chain(["--help"])
            .collect();
        all_help.push_str(&format!("$ {}\n", command.join(" ")));
        all_help.push_str(text);
        all_help.push('\n');
    }
    insta::assert_snapshot!("help", all_help);
}

/// The checker itself finds an entry without text, inline or in clap's long layout.
#[test]
fn the_help_checker_finds_an_undescribed_entry() {
    let short = "  <STACK>  The stack\n      --out <F>  Where\n      --bare\n      --fmt <F>  [default: text]\n  -h, --help  Print help";
    assert_eq!(
        undescribed(&short.lines().collect::<Vec<_>>()),
        ["--bare", "--fmt <F>"]
    );
    let long = "  <STACK>\n          The stack\n\n      --bare\n\n      --fmt <F>\n          [default: text]\n\n  -h, --help\n          Print help";
    assert_eq!(
        undescribed(&long.lines().collect::<Vec<_>>()),
        ["--bare", "--fmt <F>"]
    );
}

/// Every command that asks before it changes something skips the question with
/// `--auto-approve`; without a terminal and without it, each refuses naming `--auto-approve`.
/// The older names (`verify --yes`, `force-unlock --force`) are still accepted, and hidden.
#[test]
fn auto_approve_is_the_one_way_to_skip_a_question() {
    let env = Env::new(&[]);
    let stack = env.stack_arg();
    for args in [["apply", stack], ["destroy", stack], ["verify", stack]] {
        if args[0] == "destroy" {
            // Something to destroy, so that destroy has a question to ask.
            env.apply();
        }
        let r = env.run(&args);
        assert_eq!(r.code, 1, "{args:?}:\n{r}");
        assert!(
            r.stderr.contains("pass --auto-approve"),
            "{args:?} does not name --auto-approve:\n{r}"
        );
    }
    // A lock held by a run that hangs: force-unlock asks, and refuses without a terminal.
    let held = LocalBackend::new(env.state_path()).lock("apply").unwrap();
    let id = held.info().id.clone();
    let r = env.run(&["force-unlock", stack, &id]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .ends_with("stdin is not a terminal; pass --auto-approve\n"),
        "{r}"
    );
    let r = env.run(&["force-unlock", stack, &id, "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    drop(held);
    // The older names still work.
    let held = LocalBackend::new(env.state_path()).lock("apply").unwrap();
    let id = held.info().id.clone();
    let r = env.run(&["force-unlock", stack, &id, "--force"]);
    assert_eq!(r.code, 0, "{r}");
    drop(held);
    let r = env.run(&["verify", stack, "--yes", "--dry-run"]);
    assert!(r.stdout.contains("verify would"), "{r}");
    for (old, words) in [("--yes", "verify"), ("--force", "force-unlock")] {
        let text = help(&[words.to_string()]);
        assert!(!text.contains(old), "{words} --help shows {old}:\n{text}");
    }
}
