//! Stack validation: a corpus of bad stack files with the exact error text each must produce,
//! the example stacks that must stay valid, and inputs that must never panic the parser.
//!
//! To regenerate the expected texts after an intended wording change:
//! `RAYSTACK_BLESS=1 cargo test --test e2e stack_validation`, then review the diff.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use proptest::prelude::*;
use raystack::stack;

fn bad_corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/bad")
        .expect("the bad-stack corpus exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_stack_gives_its_expected_errors() {
    let files = bad_corpus();
    assert!(
        files.len() >= 15,
        "the corpus has {} files; keep at least 15",
        files.len()
    );
    let bless = std::env::var_os("RAYSTACK_BLESS").is_some();
    let mut mismatches = Vec::new();
    for file in &files {
        let diags = match raystack::render::load(file) {
            Ok(_) => panic!("{} must be rejected", file.display()),
            Err(d) => d,
        };
        assert!(!diags.0.is_empty(), "{}: no diagnostic", file.display());
        for d in &diags.0 {
            assert_eq!(d.file, *file, "every diagnostic names the file");
        }
        let actual = format!("{diags}\n");
        let expected_path = file.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "missing {}; run with RAYSTACK_BLESS=1",
                expected_path.display()
            )
        });
        if actual != expected {
            mismatches.push(format!(
                "--- {}\nexpected:\n{expected}\nactual:\n{actual}",
                file.display()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn errors_carry_line_column_and_key() {
    let diags = stack::load(Path::new("tests/fixtures/bad/16-several-errors.toml")).unwrap_err();
    // Every error in the file is reported, in file order, each located.
    assert!(diags.0.len() >= 6, "{diags}");
    let lines: Vec<usize> = diags.0.iter().map(|d| d.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "diagnostics come in file order");
    let storage = diags
        .0
        .iter()
        .find(|d| d.key == "redis.storage")
        .expect("storage error");
    assert_eq!((storage.line, storage.column), (14, 11));
    assert!(storage.help.as_deref().unwrap().contains("8Gi"));
    let typo = diags
        .0
        .iter()
        .find(|d| d.key == "stack.namspace")
        .expect("typo error");
    assert!(
        typo.help
            .as_deref()
            .unwrap()
            .contains("did you mean `namespace`")
    );
}

#[test]
fn example_stacks_are_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir("stacks").expect("stacks/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            n += 1;
            if let Err(d) = raystack::render::load(&path) {
                panic!("{} is invalid:\n{d}", path.display());
            }
        }
    }
    assert!(n >= 1, "no example stacks found");
}

#[test]
fn defaults_fill_a_minimal_stack() {
    let s = stack::parse_str(Path::new("dir/min.toml"), "[stack]\nname = \"ray-dev\"\n").unwrap();
    assert_eq!(s.meta.namespace, "ray-dev");
    assert!(s.meta.create_namespace);
    assert_eq!(s.cluster.provider, stack::ProviderConfig::Local);
    assert_eq!(s.durability.max_data_loss.as_secs(), 2);
    assert_eq!(s.durability.snapshot_every.as_secs(), 60);
    assert_eq!(s.durability.snapshot_min_writes, 1000);
    assert!(s.durability.protect_volume);
    assert_eq!(s.redis.storage.as_str(), "8Gi");
    assert_eq!(s.ray.image, None);
    assert_eq!(
        s.ray.head.image,
        format!("rayproject/ray:{}", s.ray.version)
    );
    assert_eq!(s.patches, []);
    assert_eq!(s.ray.head.pod, stack::PodSettings::default());
    assert!(s.ray.kuberay.has_gcs_ft_options());
    assert_eq!(s.state.path, Path::new("dir/.raystack/ray-dev.state.json"));
}

#[test]
fn validate_command_exit_codes() {
    let out = Command::cargo_bin("raystack")
        .unwrap()
        .args(["validate", "tests/fixtures/bad/05-bad-quantity-gb.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("tests/fixtures/bad/05-bad-quantity-gb.toml:5:11: `redis.storage`"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("ok.toml");
    std::fs::write(&good, "[stack]\nname = \"ok\"\n").unwrap();
    let out = Command::cargo_bin("raystack")
        .unwrap()
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "valid {}: stack `ok` (local provider, namespace `ok`, 0 worker groups)\n  durability: max_data_loss = \"2s\": appendfsync everysec: a crash loses at most about 2 s of acknowledged writes (typically under 1 s); a disk whose fsync stalls longer than 2 s widens this, and Redis counts each such write in aof_delayed_fsync\n",
            good.display()
        )
    );
}

#[test]
fn binary_garbage_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.toml");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let d = stack::load(&path).unwrap_err();
    assert!(
        d.to_string().contains("not UTF-8") || d.to_string().contains("invalid TOML"),
        "{d}"
    );
}

#[test]
fn a_ten_megabyte_file_is_handled() {
    let dir = tempfile::tempdir().unwrap();
    // Valid TOML just under the size cap, but every line is an unknown key: the report is
    // capped, not a megabyte long.
    let path = dir.path().join("big.toml");
    let mut text = String::from("[stack]\nname = \"big\"\n[redis]\n");
    let mut i = 0;
    while text.len() < stack::MAX_STACK_FILE_BYTES as usize - 200 {
        text.push_str(&format!("junk_key_{i} = \"{}\"\n", "x".repeat(64)));
        i += 1;
    }
    std::fs::write(&path, &text).unwrap();
    let d = stack::load(&path).unwrap_err();
    assert!(d.0.len() <= 51, "report is capped");
    assert!(d.to_string().contains("more problems not shown"));

    // Ten megabytes is refused by its size, unread.
    let path = dir.path().join("ten.toml");
    std::fs::write(&path, "#".repeat(10 * 1024 * 1024)).unwrap();
    let d = stack::load(&path).unwrap_err();
    assert!(
        d.to_string().contains(
            "the stack file is 10485760 bytes; raystack reads stack files of at most 1048576 bytes"
        ),
        "{d}"
    );

    // Ten megabytes of one unterminated string and of deep nesting, given to the parser itself
    // (a file this size is refused before parsing, above): a located error, no panic, no stack
    // overflow.
    let string = format!("a = \"{}", "y".repeat(10 * 1024 * 1024));
    let d = stack::parse_str(Path::new("string.toml"), &string).unwrap_err();
    assert_eq!(
        d.to_string(),
        "error: string.toml:1:10485766: invalid TOML: invalid basic string, expected `\"`\n  help: fix the TOML syntax first; the stack was not checked further"
    );
    let nested = format!("a = {}", "[".repeat(10 * 1024 * 1024));
    let d = stack::parse_str(Path::new("nested.toml"), &nested).unwrap_err();
    let report = d.to_string();
    assert_eq!(
        report.lines().next().unwrap(),
        "error: nested.toml:1:85: invalid TOML: cannot recurse further; max recursion depth met",
        "{}",
        &report[..report.len().min(2_000)]
    );
    assert!(d.0.len() <= 51, "report is capped: {} problems", d.0.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = stack::parse_str(Path::new("fuzz.toml"), &text);
    }

    #[test]
    fn random_toml_never_panics(doc in toml_document()) {
        if let Err(d) = stack::parse_str(Path::new("fuzz.toml"), &doc) {
            // Every reported problem is located inside the text.
            let lines = doc.lines().count().max(1);
            for diag in &d.0 {
                prop_assert!(diag.line <= lines + 1 || diag.line == 0, "{diag} beyond {lines} lines");
            }
        }
    }
}

/// Documents built from the stack schema's own sections and keys with random values, so the
/// validator's deeper paths (not only the TOML syntax errors) are exercised.
fn toml_document() -> impl Strategy<Value = String> {
    let sections = prop::sample::select(vec![
        "[stack]",
        "[cluster]",
        "[cluster.aws]",
        "[cluster.gcp]",
        "[cluster.azure]",
        "[durability]",
        "[redis]",
        "[ray]",
        "[ray.head]",
        "[[ray.workers]]",
        "[state]",
        "[bogus]",
    ]);
    let keys = prop::sample::select(vec![
        "name",
        "namespace",
        "create_namespace",
        "provider",
        "context",
        "region",
        "project",
        "location",
        "subscription_id",
        "resource_group",
        "volume_type",
        "iops",
        "throughput",
        "kms_key_id",
        "disk",
        "disk_sku",
        "max_data_loss",
        "snapshot_every",
        "snapshot_min_writes",
        "volume",
        "protect_volume",
        "image",
        "storage",
        "storage_class",
        "cpu",
        "memory",
        "version",
        "kuberay",
        "group",
        "replicas",
        "min_replicas",
        "max_replicas",
        "gpu",
        "backend",
        "path",
        "nme",
    ]);
    let values = prop_oneof![
        prop::sample::select(vec![
            "\"ray-prod\"",
            "\"aws\"",
            "\"gcp\"",
            "\"azure\"",
            "\"local\"",
            "\"object-fuse\"",
            "\"disk\"",
            "\"0s\"",
            "\"1s\"",
            "\"5m\"",
            "\"8Gi\"",
            "\"8Gb\"",
            "\"500m\"",
            "\"1.3.0\"",
            "\"1.2.2\"",
            "\"io2\"",
            "\"regional\"",
            "\"Premium_ZRS\"",
            "true",
            "false",
            "0",
            "-1",
            "99999999999999999999",
            "3.5",
            "[]",
            "{}",
            "[1, \"a\"]",
            "1979-05-27T07:32:00Z",
            "\"\"",
            "\"Bad_Name\"",
        ])
        .prop_map(str::to_string),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-zA-Z0-9 ._-]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ];
    let line = (keys, values).prop_map(|(k, v)| format!("{k} = {v}"));
    let block = (sections, prop::collection::vec(line, 0..6))
        .prop_map(|(s, ls)| format!("{s}\n{}\n", ls.join("\n")));
    prop::collection::vec(block, 0..8).prop_map(|bs| bs.concat())
}

/// Every namespace Kubernetes reserves is refused for the stack and for its state, each at its
/// own line (the fixtures 35 and 36 hold the whole wording).
#[test]
fn every_reserved_namespace_is_refused_for_stack_and_state() {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let toml = format!(
            "[stack]\nname = \"s\"\nnamespace = \"{ns}\"\n\n[state]\nbackend = \"kubernetes\"\nnamespace = \"{ns}\"\n"
        );
        let diags = stack::parse_str(Path::new("s.toml"), &toml).unwrap_err();
        let located: Vec<(usize, String)> =
            diags.0.iter().map(|d| (d.line, d.key.clone())).collect();
        assert_eq!(
            located,
            [
                (3, "stack.namespace".to_string()),
                (7, "state.namespace".to_string())
            ],
            "{ns}: {diags}"
        );
    }
    // A namespace merely starting like one is the stack's own.
    let ok = "[stack]\nname = \"s\"\nnamespace = \"kube-systems\"\n";
    assert!(stack::parse_str(Path::new("s.toml"), ok).is_ok());
}
