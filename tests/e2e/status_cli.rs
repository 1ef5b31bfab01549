//! `raystack status` end to end: a real `redis-server` running the rendered `redis.conf` with its
//! data directory on a small tmpfs, Debian's build of the exporter sidecar with the rendered
//! environment, and `fake-apiserver`'s service proxy standing in for the API server's route to
//! the exporter. Healthy: exit 0. The tmpfs fills up, the AOF write fails: exit 1 naming it, in
//! text and JSON. The exporter gone: exit 1 saying so, never "healthy".
//! Needs root (the tmpfs mount), /usr/bin/redis-server and prometheus-redis-exporter: missing is
//! a failure, not a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::render_support::{ExporterProcess, RedisProcess};
use crate::support::{Env, NAME, Run};
use serde_json::Value;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("data");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs failed (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            path,
            _parent: parent,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The rendered stack's redis.conf and its exporter container.
fn rendered(stack: &Path) -> (String, Value) {
    let stack = raystack::stack::load(stack).unwrap();
    let r = raystack::render::render(&stack);
    let conf = r
        .objects
        .iter()
        .find(|o| o.kind() == "ConfigMap")
        .unwrap()
        .manifest["data"]["redis.conf"]
        .as_str()
        .unwrap()
        .to_string();
    let sts = r
        .objects
        .iter()
        .find(|o| o.kind() == "StatefulSet")
        .unwrap();
    let exporter = sts.manifest["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "redis-exporter")
        .unwrap()
        .clone();
    (conf, exporter)
}

/// What varies between runs, replaced: the head pod's suffix, the temp dir, the RayCluster's
/// UID, the exporter's port, the save age and the memory in use.
fn normalized(env: &Env, text: &str, exporter: &str) -> String {
    let rc = env
        .fake
        .get(&env.ns_path("rayclusters", NAME))
        .expect("the RayCluster");
    let text = env
        .scrub(text)
        .replace(rc["metadata"]["uid"].as_str().unwrap(), "[uid]")
        .replace(exporter.trim_start_matches("http://"), "[exporter]");
    let mut out = String::new();
    for line in text.lines() {
        let mut line = line.to_string();
        if let Some(i) = line.find(&format!("{NAME}-head-")) {
            let end = line[i..]
                .find([':', '"', ' '])
                .map_or(line.len(), |e| i + e);
            line.replace_range(i..end, &format!("{NAME}-head-[pod]"));
        }
        if let Some(end) = line.find(" s ago (") {
            let start = line[..end].rfind([' ', '"']).map_or(0, |i| i + 1);
            let tail = digits_to_n(&line[end..]);
            line = format!("{}[age]{tail}", &line[..start]);
        }
        if let Some(end) = line.find(" used; no maxmemory") {
            // The figure and its unit: the two words before " used".
            let unit = line[..end].rfind(' ').unwrap();
            let start = line[..unit].rfind([' ', '"']).unwrap() + 1;
            line.replace_range(start..end, "[used]");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn digits_to_n(s: &str) -> String {
    let mut out = String::new();
    let mut in_num = false;
    for ch in s.chars() {
        if ch.is_ascii_digit() || (in_num && ch == '.') {
            if !in_num {
                out.push('N');
                in_num = true;
            }
        } else {
            in_num = false;
            out.push(ch);
        }
    }
    out
}

/// `raystack status` with the fake's credentials.
fn status(env: &Env, format: &str) -> Run {
    env.run(&[
        "status",
        env.stack_arg(),
        "--format",
        format,
        "--kubeconfig",
        env.fake.kubeconfig.to_str().unwrap(),
    ])
}

#[test]
fn status_reports_persistence_health_a_failing_aof_write_and_a_missing_exporter() {
    let tmpfs = Tmpfs::mount("2m");
    // The fake needs the exporter's URL when it starts, and the exporter needs Redis: render
    // the stack the environment will write, from the same text.
    // State in the cluster, so the read-only credentials below read it there.
    let stack_text = crate::support::stack_toml(&crate::support::worker("cpu", 1), "", "").replace(
        "[cluster]",
        "[state]\nbackend = \"kubernetes\"\n\n[cluster]",
    );
    let scratch = tempfile::tempdir().unwrap();
    let scratch_stack = scratch.path().join("stack.toml");
    std::fs::write(&scratch_stack, &stack_text).unwrap();
    let (conf, exporter_container) = rendered(&scratch_stack);
    let redis = RedisProcess::start(&conf, &tmpfs.path);
    let mut exporter = ExporterProcess::start(&exporter_container, redis.port);
    let url = exporter.url();
    let route = format!("{NAME}/{NAME}-redis:metrics={url}");
    let env = Env::new(&["--service-proxy", &route]);
    env.write_stack(&stack_text);
    env.apply();

    // Healthy.
    let r = status(&env, "text");
    assert_eq!(r.code, 0, "{r}");
    insta::assert_snapshot!("healthy_text", normalized(&env, &r.stdout, &url));
    // The same with read-only credentials (no lock is taken, nothing is written).
    let ro = env.run(&[
        "status",
        env.stack_arg(),
        "--kubeconfig",
        env.fake.kubeconfig.to_str().unwrap(),
        "--context",
        "fake-readonly",
    ]);
    assert_eq!(ro.code, 0, "{ro}");
    assert_eq!(
        normalized(&env, &ro.stdout, &url),
        normalized(&env, &r.stdout, &url)
    );
    insta::assert_snapshot!(
        "healthy_markdown",
        normalized(&env, &status(&env, "markdown").stdout, &url)
    );

    // The data directory fills up: the append-only file can no longer be written.
    let mut con = redis.connect();
    let big = "x".repeat(256 * 1024);
    let mut refused = None;
    for i in 0..64 {
        if let Err(e) = redis::cmd("SET")
            .arg(format!("fill:{i}"))
            .arg(&big)
            .query::<()>(&mut con)
        {
            refused = Some(e.to_string());
            break;
        }
    }
    let refused = refused.expect("Redis kept accepting writes on a full volume");
    assert!(refused.contains("MISCONF"), "{refused}");
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut con)
        .unwrap();
    assert!(info.contains("aof_last_write_status:err"), "{info}");

    let r = status(&env, "text");
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("aof_write_failing_text", normalized(&env, &r.stdout, &url));
    let r = status(&env, "json");
    assert_eq!(r.code, 1, "{r}");
    let json: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(json["healthy"], false);
    let failed: Vec<(&str, &str)> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .map(|c| (c["name"].as_str().unwrap(), c["value"].as_str().unwrap()))
        .collect();
    assert_eq!(failed, [("aof_last_write_status", "err")], "{}", r.stdout);
    insta::assert_snapshot!("aof_write_failing_json", normalized(&env, &r.stdout, &url));

    // The exporter is gone: the health cannot be read, and status says so.
    let _ = exporter.child.kill();
    let _ = exporter.child.wait();
    let r = status(&env, "text");
    assert_eq!(r.code, 1, "{r}");
    assert!(!r.stdout.contains("healthy: every check holds"), "{r}");
    insta::assert_snapshot!(
        "exporter_unreachable_text",
        normalized(&env, &r.stdout, &url)
    );
    drop(con);
    drop(redis);
}

/// An embedded stack has no Redis: status shows the head and the GCS volume KubeRay creates, and
/// the last recorded verify. Before KubeRay created the claim, the volume check fails.
#[test]
fn an_embedded_stack_shows_the_head_and_the_gcs_volume() {
    let env = Env::with_crd(crate::support::CRD_1_7, &[]);
    env.write_stack(&crate::kuberay::embedded_stack(""));
    env.apply();
    // KubeRay (the fake's operator) created the store's claim with the RayCluster.
    crate::verify_cli::assert_gcs_claim(&env);
    // Bound, as the cluster's provisioner would leave it.
    let claim = format!("/api/v1/namespaces/{NAME}/persistentvolumeclaims/{NAME}-gcs-pvc/status");
    let code = env.fake.merge_patch(
        &claim,
        &serde_json::json!({"status": {"phase": "Bound", "capacity": {"storage": "2Gi"}}}),
    );
    assert_eq!(code, 200);
    // A recorded drill, as `raystack verify` writes it.
    std::fs::write(
        env.dir.path().join(format!(".raystack/{NAME}.verify.json")),
        r#"{"time": "2026-12-07T22:00:00Z", "passed": true, "result": "pass", "head_ready_seconds": 12.5, "redis_ready_seconds": null, "gcs_answering_seconds": 14.0, "total_seconds": 41.2}"#,
    )
    .unwrap();
    let r = status(&env, "text");
    assert_eq!(r.code, 0, "{r}");
    insta::assert_snapshot!("embedded_text", normalized(&env, &r.stdout, "http://none"));
}

/// A cluster that cannot be reached is a failure that says so, not a healthy report.
#[test]
fn an_unreachable_cluster_fails_the_status() {
    let env = Env::new(&[]);
    env.apply();
    let dead = env.dir.path().join("dead-kubeconfig");
    let text = std::fs::read_to_string(&env.fake.kubeconfig).unwrap();
    let url = env.fake.url.trim_end_matches('/');
    std::fs::write(&dead, text.replace(url, "http://127.0.0.1:9")).unwrap();
    let r = env.run(&[
        "status",
        env.stack_arg(),
        "--kubeconfig",
        dead.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stdout
            .contains("FAIL  cluster      cluster: cannot reach the cluster at http://127.0.0.1:9"),
        "{r}"
    );
    assert!(r.stdout.ends_with("UNHEALTHY: 1 check failed\n"), "{r}");
}

/// A drill that preflight refused disrupted nothing: it is not recorded as the last verify.
#[test]
fn a_refused_verify_is_not_recorded() {
    let env = Env::new(&[]);
    env.apply();
    // No route to the dashboard: the drill's preflight refuses.
    let r = env.run(&["verify", env.stack_arg(), "--yes", "--format", "json"]);
    assert_eq!(r.code, 1, "{r}");
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["steps"], serde_json::json!([]), "nothing ran");
    assert!(
        !env.dir
            .path()
            .join(format!(".raystack/{NAME}.verify.json"))
            .exists()
    );
    let r = status(&env, "json");
    let s: Value = serde_json::from_str(&r.stdout).unwrap();
    let last = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "last_verify")
        .unwrap();
    assert_eq!(last["value"], "none recorded");
    assert_eq!(last["outcome"], "unavailable");
}
