//! Module docs name files that exist: every repository path a `//!` doc names
//! (`src/plan/diff.rs`, a crate-relative `plan/diff.rs`, `tests/e2e/main.rs`, `docs/design.md`
//! with its section) must resolve, so a move
//! that leaves a doc pointing at the old place fails here rather than misleading a reader.
//!
//! A path is a token of path characters that contains a `/` and ends in `.rs`, `.md`, `.toml`,
//! `.sh` or `.py`. It resolves against the repository root, raystack's `src/`, the naming
//! file's crate (the nearest enclosing directory named `src`, and the directory above it), or
//! the directory of the file that names it.

use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 5] = [".rs", ".md", ".toml", ".sh", ".py"];

/// The leading `//!` lines of `text`, without the marker.
fn module_doc(text: &str) -> String {
    text.lines()
        .map_while(|l| l.trim_start().strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The repository paths a doc names.
fn named_paths(doc: &str) -> Vec<String> {
    doc.split(|c: char| !(c.is_ascii_alphanumeric() || "_./-".contains(c)))
        .map(|t| t.trim_end_matches('.'))
        .filter(|t| t.contains('/') && !t.starts_with('/'))
        .filter(|t| EXTENSIONS.iter().any(|e| t.ends_with(e)))
        .map(str::to_owned)
        .collect()
}

/// Whether `named` (found in `file`) resolves in the repository at `root`.
fn resolves(root: &Path, file: &Path, named: &str) -> bool {
    let dir = file.parent().unwrap_or(root);
    let crate_src = file
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "src"));
    let crate_root = crate_src.and_then(Path::parent);
    let main_src = root.join("src");
    [
        Some(root),
        Some(main_src.as_path()),
        crate_src,
        crate_root,
        Some(dir),
    ]
    .into_iter()
    .flatten()
    .any(|base| base.join(named).exists())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(file, path)` for every path a module doc under `dirs` names that does not exist.
fn missing(root: &Path, dirs: &[&str]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for named in named_paths(&module_doc(&text)) {
            if !resolves(root, &file, &named) {
                let shown = file
                    .strip_prefix(root)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                found.push((shown, named));
            }
        }
    }
    found
}

const ROOMS: [&str; 4] = ["src", "fake-apiserver/src", "providers", "tests"];

#[test]
fn every_path_a_module_doc_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(missing(root, &ROOMS), Vec::<(String, String)>::new());
}

#[test]
fn a_module_doc_naming_a_missing_path_is_found() {
    let root = tempfile::tempdir().unwrap();
    let plan = root.path().join("src/plan");
    std::fs::create_dir_all(&plan).unwrap();
    std::fs::create_dir_all(root.path().join("docs")).unwrap();
    std::fs::write(root.path().join("docs/design.md"), "").unwrap();
    std::fs::write(plan.join("diff.rs"), "//! The diff.\n").unwrap();
    std::fs::write(
        plan.join("mod.rs"),
        "//! Plans (docs/design.md §6): `plan/diff.rs` decides, `src/plan/diff.rs` again,\n\
         //! `diff.rs` beside it; `crate::apply::observe` and `src/apply/observe.rs` gather.\n\
         //! And `tests/e2e/gone.rs`.\n\
         \n\
         //! Past the doc: `src/also/gone.rs`.\n",
    )
    .unwrap();
    assert_eq!(
        missing(root.path(), &["src"]),
        vec![
            (
                "src/plan/mod.rs".to_owned(),
                "src/apply/observe.rs".to_owned()
            ),
            ("src/plan/mod.rs".to_owned(), "tests/e2e/gone.rs".to_owned()),
        ]
    );
}
