//! A stack file's text at a git revision (`raystack diff --base REF`): which repository encloses
//! the file, where the file sits in it, and its content at REF, or that it did not exist there.
//! Reads only; never changes the repository, its index or its work tree. Its own room, apart from
//! `crate::stack` (which parses what it is given and does no I/O beyond reading the stack file):
//! the engine's diff asks this room for the text and hands it to the parser.
//!
//! This runs the `git` command rather than linking a git library. Every CI runner and developer
//! machine that has a checkout has `git`, and the CLI is what created that checkout: it
//! understands every revision syntax users type (`origin/main`, `HEAD~1`, `main...HEAD` merge
//! bases, tags), shallow and partial clones (it fetches a missing blob from the promisor remote),
//! worktrees, `safe.directory` and the user's configuration, exactly as the rest of their
//! workflow does. A library (libgit2 through `git2`, or `gix`) would add a large build, and
//! repository layouts it reads differently from git are where CI surprises come from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// Reading a revision failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RevisionError {
    #[error("failed to run `git` (needed by --base): {0}")]
    GitMissing(#[source] Arc<std::io::Error>),
    #[error("`{path}` is not inside a git repository; --base compares with a git revision")]
    NotARepository { path: String },
    /// `reference` is the revision git did not find; `range` the `A...B` it is a side of.
    #[error(
        "unknown git revision `{}`{}: {message}\n  help: {}",
        printable(reference),
        range.as_deref().map(|r| format!(" (in `{}`)", printable(r))).unwrap_or_default(),
        fetch_hint(reference)
    )]
    UnknownRevision {
        reference: String,
        range: Option<String>,
        message: String,
    },
    #[error("`git {args}` failed: {message}")]
    Git { args: String, message: String },
    #[error("`{path}` at `{reference}` is not UTF-8 text")]
    NotText { path: String, reference: String },
}

/// `text` with control characters escaped: a revision is echoed as given, and one that came
/// from an untrusted branch name must not drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// How to get a revision that is not there. A `git fetch` command is suggested only for a
/// plain ref name (letters, digits, `.`, `_`, `-`, `/`; no leading `-`): anything else would
/// put text from the command line (or a hostile branch name) into a suggested shell command.
fn fetch_hint(reference: &str) -> String {
    let plain = !reference.is_empty()
        && !reference.starts_with('-')
        && !reference.contains("..")
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if plain {
        let name = reference.strip_prefix("origin/").unwrap_or(reference);
        format!(
            "fetch it first (in CI: `git fetch origin {name}`, or check out with `fetch-depth: 0`)"
        )
    } else {
        "fetch it first (in CI: check out with `fetch-depth: 0`)".to_string()
    }
}

/// A stack file located in its repository.
#[derive(Debug, Clone)]
pub struct RepoFile {
    /// The repository's top-level directory.
    pub root: PathBuf,
    /// The file's path relative to `root`, with `/` separators (as git names it).
    pub path: String,
}

fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output, RevisionError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // Never prompt (a partial clone's fetch of a missing blob must fail, not hang CI).
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RevisionError::GitMissing(Arc::new(e)))
}

fn stderr_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_string()
}

fn ok_stdout(dir: &Path, args: &[&str]) -> Result<String, RevisionError> {
    let out = git(dir, args)?;
    if !out.status.success() {
        return Err(RevisionError::Git {
            args: args.join(" "),
            message: stderr_line(&out),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// Finds the repository enclosing `file` and the file's path in it. The file itself need not
/// exist (a stack removed in the work tree); its nearest existing ancestor directory is used.
pub fn locate(file: &Path) -> Result<RepoFile, RevisionError> {
    Revisions::default().locate(file)
}

/// Many files at one revision with few `git` processes: one `rev-parse` per directory, one per
/// repository to resolve the revision, and one `cat-file --batch` per repository for every
/// file's content. Three processes a file made `diff --base` of 200 changed stacks take 2–4 s
/// (BENCHMARKS.md).
#[derive(Default)]
pub struct Revisions {
    /// An existing directory: its repository's top level and its prefix there (`None`: in no
    /// repository).
    dirs: HashMap<PathBuf, Result<Option<(PathBuf, String)>, RevisionError>>,
    /// A repository's top level and a revision: the commit it names there.
    commits: HashMap<(PathBuf, String), Result<String, RevisionError>>,
}

impl Revisions {
    /// [`locate`], asking git once per directory.
    pub fn locate(&mut self, file: &Path) -> Result<RepoFile, RevisionError> {
        let display = file.display().to_string();
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let name = absolute
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        // Climb to a directory that exists, remembering the missing components.
        let mut dir = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut missing: Vec<String> = Vec::new();
        while !dir.is_dir() {
            match (dir.file_name(), dir.parent()) {
                (Some(n), Some(parent)) => {
                    missing.push(n.to_string_lossy().to_string());
                    dir = parent.to_path_buf();
                }
                _ => return Err(RevisionError::NotARepository { path: display }),
            }
        }
        let located = self
            .dirs
            .entry(dir)
            .or_insert_with_key(|dir| {
                let out = git(dir, &["rev-parse", "--show-toplevel", "--show-prefix"])?;
                if !out.status.success() {
                    return Ok(None);
                }
                let stdout = String::from_utf8_lossy(&out.stdout).to_string();
                let mut lines = stdout.lines();
                let root = PathBuf::from(lines.next().unwrap_or_default());
                Ok(Some((root, lines.next().unwrap_or_default().to_string())))
            })
            .clone()?;
        let Some((root, prefix)) = located else {
            return Err(RevisionError::NotARepository { path: display });
        };
        let mut path = prefix;
        for m in missing.iter().rev() {
            path.push_str(m);
            path.push('/');
        }
        path.push_str(&name);
        Ok(RepoFile { root, path })
    }

    /// [`resolve`], once per repository.
    pub fn resolve(&mut self, root: &Path, reference: &str) -> Result<String, RevisionError> {
        self.commits
            .entry((root.to_path_buf(), reference.to_string()))
            .or_insert_with(|| resolve(root, reference))
            .clone()
    }

    /// Each file's text at `reference` (`None`: it did not exist there), in order: one
    /// `git cat-file --batch` per repository reads them all.
    pub fn read_all(
        &mut self,
        files: &[&RepoFile],
        reference: &str,
    ) -> Vec<Result<Option<String>, RevisionError>> {
        let mut out: Vec<Option<Result<Option<String>, RevisionError>>> = vec![None; files.len()];
        let mut roots: Vec<&Path> = files.iter().map(|f| f.root.as_path()).collect();
        roots.sort();
        roots.dedup();
        for root in roots {
            let at: Vec<usize> = (0..files.len())
                .filter(|i| files[*i].root == root)
                .collect();
            let read = self.resolve(root, reference).and_then(|commit| {
                // A path with a newline cannot be named on a batch line: read on its own.
                let (one, batch): (Vec<usize>, Vec<usize>) =
                    at.iter().partition(|i| files[**i].path.contains('\n'));
                let paths: Vec<&str> = batch.iter().map(|i| files[*i].path.as_str()).collect();
                let mut read: Vec<(usize, _)> = batch
                    .into_iter()
                    .zip(cat_file_batch(root, &commit, &paths)?)
                    .collect();
                read.extend(one.into_iter().map(|i| (i, read_at(files[i], &commit))));
                Ok(read)
            });
            match read {
                Ok(read) => {
                    for (i, text) in read {
                        out[i] = Some(text);
                    }
                }
                Err(err) => {
                    for i in at {
                        out[i] = Some(Err(err.clone()));
                    }
                }
            }
        }
        out.into_iter()
            .map(|o| o.expect("every file's repository was read"))
            .collect()
    }
}

/// The text of each of `paths` at `commit`, through one `git cat-file --batch`.
fn cat_file_batch(
    root: &Path,
    commit: &str,
    paths: &[&str],
) -> Result<Vec<Result<Option<String>, RevisionError>>, RevisionError> {
    use std::io::Write;
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "--batch"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RevisionError::GitMissing(Arc::new(e)))?;
    let input: String = paths.iter().map(|p| format!("{commit}:{p}\n")).collect();
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Written from a thread: git answers while it reads, and two full pipes would block both.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| RevisionError::GitMissing(Arc::new(e)))?;
    let _ = writer.join();
    let failed = |message: String| RevisionError::Git {
        args: "cat-file --batch".into(),
        message,
    };
    if !output.status.success() {
        return Err(failed(stderr_line(&output)));
    }
    let mut rest = output.stdout.as_slice();
    let mut texts = Vec::with_capacity(paths.len());
    for path in paths {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| failed("its answer ended early".into()))?;
        let header = String::from_utf8_lossy(&rest[..end]).to_string();
        rest = &rest[end + 1..];
        // `<commit>:<path> missing`, or `<object id> <type> <size>` and the content.
        if header.ends_with(" missing") {
            texts.push(Ok(None));
            continue;
        }
        let mut fields = header.rsplitn(3, ' ');
        let size = fields.next().and_then(|n| n.parse::<usize>().ok());
        let (Some(size), Some(kind)) = (size, fields.next()) else {
            return Err(failed(format!("unexpected answer `{header}`")));
        };
        if rest.len() < size + 1 {
            return Err(failed("its answer ended early".into()));
        }
        let content = &rest[..size];
        rest = &rest[size + 1..];
        texts.push(match kind {
            "blob" => {
                String::from_utf8(content.to_vec())
                    .map(Some)
                    .map_err(|_| RevisionError::NotText {
                        path: path.to_string(),
                        reference: commit.to_string(),
                    })
            }
            other => Err(failed(format!(
                "`{commit}:{path}` is a {other}, not a file"
            ))),
        });
    }
    Ok(texts)
}

/// The top-level directory of the repository enclosing the directory `dir`.
pub fn toplevel(dir: &Path) -> Result<PathBuf, RevisionError> {
    let out = git(dir, &["rev-parse", "--show-toplevel"])?;
    if !out.status.success() {
        return Err(RevisionError::NotARepository {
            path: dir.display().to_string(),
        });
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim_end(),
    ))
}

/// The commit `reference` names in the repository at `root` (full hex id).
pub fn resolve(root: &Path, reference: &str) -> Result<String, RevisionError> {
    // `A...B` is the merge base of A and B (a side left empty is HEAD), as in `git diff A...B`;
    // `rev-parse` itself does not resolve it to one commit.
    if let Some((left, right)) = reference.split_once("...") {
        let side = |s: &'static str, given: &str| -> String {
            if given.is_empty() {
                s.to_string()
            } else {
                given.to_string()
            }
        };
        let range = Some(reference.to_string());
        let a = resolve_one(root, &side("HEAD", left), range.clone())?;
        let b = resolve_one(root, &side("HEAD", right), range)?;
        let out = git(root, &["merge-base", &a, &b])?;
        if !out.status.success() {
            return Err(RevisionError::Git {
                args: format!("merge-base {a} {b}"),
                message: format!(
                    "the two sides of `{}` have no common ancestor",
                    printable(reference)
                ),
            });
        }
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    resolve_one(root, reference, None)
}

/// The commit one revision (not a range) names; `range` is the `A...B` it is a side of.
fn resolve_one(
    root: &Path,
    reference: &str,
    range: Option<String>,
) -> Result<String, RevisionError> {
    let spec = format!("{reference}^{{commit}}");
    let out = git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )?;
    if !out.status.success() {
        return Err(RevisionError::UnknownRevision {
            reference: reference.to_string(),
            range,
            message: "not found in this repository".into(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The text of `file` at `commit`, or `None` when the file did not exist there.
pub fn read_at(file: &RepoFile, commit: &str) -> Result<Option<String>, RevisionError> {
    let spec = format!("{commit}:{}", file.path);
    let out = git(
        &file.root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )?;
    if !out.status.success() {
        return Ok(None);
    }
    let blob = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = git(&file.root, &["cat-file", "blob", &blob])?;
    if !out.status.success() {
        return Err(RevisionError::Git {
            args: format!("cat-file blob {blob}"),
            message: stderr_line(&out),
        });
    }
    String::from_utf8(out.stdout)
        .map(Some)
        .map_err(|_| RevisionError::NotText {
            path: file.path.clone(),
            reference: commit.to_string(),
        })
}

/// The `*.toml` files of the repository at `root` (its top level, [`toplevel`]) that differ
/// between `commit` and the work tree (added, changed or removed; untracked files that are not
/// ignored count as added), as absolute paths, sorted.
pub fn changed_toml_files(root: &Path, commit: &str) -> Result<Vec<PathBuf>, RevisionError> {
    let names = ok_stdout(
        root,
        &[
            "diff",
            "--name-only",
            "--no-renames",
            "--end-of-options",
            commit,
            "--",
            "*.toml",
        ],
    )?;
    // New stack files not yet committed (nor ignored) are added since `commit` too.
    let untracked = ok_stdout(
        root,
        &["ls-files", "--others", "--exclude-standard", "--", "*.toml"],
    )?;
    let mut files: Vec<PathBuf> = names
        .lines()
        .chain(untracked.lines())
        .filter(|l| !l.is_empty())
        .map(|l| root.join(l))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }

    #[test]
    fn reads_a_file_at_a_revision_and_reports_absence() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        sh(root, &["init", "-q", "-b", "main"]);
        std::fs::create_dir(root.join("stacks")).unwrap();
        std::fs::write(root.join("stacks/a.toml"), "old\n").unwrap();
        sh(root, &["add", "."]);
        sh(root, &["commit", "-q", "-m", "base"]);
        std::fs::write(root.join("stacks/a.toml"), "new\n").unwrap();

        let file = locate(&root.join("stacks/a.toml")).unwrap();
        assert_eq!(file.path, "stacks/a.toml");
        let commit = resolve(&file.root, "main").unwrap();
        assert_eq!(read_at(&file, &commit).unwrap().as_deref(), Some("old\n"));

        let gone = locate(&root.join("stacks/new/b.toml")).unwrap();
        assert_eq!(gone.path, "stacks/new/b.toml");
        assert_eq!(read_at(&gone, &commit).unwrap(), None);

        let err = resolve(&file.root, "no-such-branch").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown git revision `no-such-branch`"),
            "{err}"
        );
        assert_eq!(
            changed_toml_files(&file.root, &commit).unwrap(),
            vec![file.root.join("stacks/a.toml")]
        );
    }

    /// Reading many files at once answers each as reading it alone would, in order, across
    /// repositories: present, absent, a directory, not UTF-8, odd names.
    #[test]
    fn reading_many_files_at_once_answers_each_as_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        let names = [
            "a.toml",
            "with space.toml",
            "sub/b.toml",
            "sub",
            "bin.toml",
            "ü.toml",
            "line\nbreak.toml",
        ];
        for root in [&one, &two] {
            std::fs::create_dir_all(root.join("sub")).unwrap();
            sh(root, &["init", "-q", "-b", "main"]);
            for name in [
                "a.toml",
                "with space.toml",
                "sub/b.toml",
                "ü.toml",
                "line\nbreak.toml",
            ] {
                std::fs::write(root.join(name), format!("{name} in {}\n", root.display())).unwrap();
            }
            std::fs::write(root.join("bin.toml"), [0xff, 0xfe, 0]).unwrap();
            sh(root, &["add", "."]);
            sh(root, &["commit", "-q", "-m", "base"]);
        }
        let mut files = Vec::new();
        for root in [&one, &two] {
            for name in names.iter().chain(&["gone.toml", "new/dir/c.toml"]) {
                files.push(locate(&root.join(name)).unwrap());
            }
        }
        let mut git = Revisions::default();
        let refs: Vec<&RepoFile> = files.iter().rev().collect();
        let together = git.read_all(&refs, "main");
        assert_eq!(together.len(), refs.len());
        let show = |r: &Result<Option<String>, RevisionError>| match r {
            Ok(text) => format!("{text:?}"),
            Err(e) => format!("error: {e}"),
        };
        for (file, read) in refs.iter().zip(&together) {
            let commit = resolve(&file.root, "main").unwrap();
            let alone = read_at(file, &commit);
            let (alone, read) = (show(&alone), show(read));
            match file.path.as_str() {
                // Alone, the directory's `cat-file blob` fails; at once, it is named.
                "sub" => assert_eq!(
                    read,
                    format!(
                        "error: `git cat-file --batch` failed: `{commit}:sub` is a tree, not a file"
                    )
                ),
                _ => assert_eq!(read, alone, "{}", file.path),
            }
        }
        let unknown = git.read_all(&refs[..2], "no-such-branch");
        for r in unknown {
            assert!(show(&r).contains("unknown git revision `no-such-branch`"));
        }
    }
}
