//! What KubeRay does after apply, told by the real `raystack` binary against `fake-apiserver`:
//! deleting or replacing the RayCluster is DATA LOSS (its own reason) in text, JSON and
//! Markdown and refused without the flag; `diff` flags it too; a Ray version change states the
//! rollout with and without `spec.upgradeStrategy`, and under `Recreate` apply waits for the
//! recreated head; an autoscaled `replicas` edit is reported; the embedded RocksDB backend
//! validates, plans, applies and destroys.

use crate::support::{CRD_1_7, Env, NAME, stack_toml, worker};
use serde_json::Value;

/// The change block of `address` in a text plan: its header line and the indented lines after
/// it up to the diff (reason, data loss, rollout, notes).
pub(crate) fn change_lines(plan: &str, address: &str) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    for line in plan.lines() {
        if line.starts_with("  ") && !line.starts_with("    ") {
            inside = line.contains(&format!(" {address} "));
            if inside {
                out.push(line.to_string());
            }
            continue;
        }
        if inside {
            let t = line.trim_start();
            if [
                "reason:",
                "data loss:",
                "rollout:",
                "note:",
                "drift:",
                "adopt:",
                "owner:",
            ]
            .iter()
            .any(|p| t.starts_with(p))
            {
                out.push(line.to_string());
            } else {
                inside = false;
            }
        }
    }
    out.join("\n")
}

fn rc_address() -> String {
    format!("RayCluster/{NAME}/{NAME}")
}

/// The default local stack with KubeRay 1.7 (and the Ray version given).
fn stack_1_7(ray_version: &str, extra_ray: &str) -> String {
    stack_toml(&worker("cpu", 1), "", "")
        .replace(
            "kuberay = \"1.3.0\"",
            &format!("kuberay = \"1.7.0\"\n{extra_ray}"),
        )
        .replace(
            "version = \"2.45.0\"",
            &format!("version = \"{ray_version}\""),
        )
}

pub(crate) fn embedded_stack(extra_durability: &str) -> String {
    format!(
        r#"[stack]
name = "{NAME}"
namespace = "{NAME}"

[cluster]
provider = "local"

[durability]
backend = "embedded"
storage = "2Gi"
{extra_durability}

[ray]
version = "2.60.0"
kuberay = "1.7.0"

[ray.head]
cpu = "1"
memory = "2Gi"

{}"#,
        worker("cpu", 1)
    )
}

/// Moving a stack to another namespace would delete the old RayCluster (and with it its GCS
/// state, through KubeRay's cleanup finalizer); the state is bound to its stack and namespace, so
/// plan and apply refuse before anything is deleted. A RayCluster is deleted only by `destroy`
/// (its plan says what is lost: the `destroy_plan_raycluster` snapshot) and replaced only by an
/// immutable change (`switching_the_backend_…`), both DATA LOSS.
#[test]
fn moving_the_raycluster_to_another_namespace_is_refused_before_anything_is_deleted() {
    let env = Env::new(&[]);
    env.apply();
    env.write_stack(&stack_toml(&worker("cpu", 1), "", "").replace(
        &format!("namespace = \"{NAME}\""),
        "namespace = \"e2e-moved\"",
    ));
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 1, "{plan}");
    insta::assert_snapshot!("moved_namespace_plan_stderr", env.scrub(&plan.stderr));
    let refused = env.run(&[
        "apply",
        env.stack_arg(),
        "--auto-approve",
        "--allow-data-loss",
    ]);
    assert_eq!(refused.code, 1, "{refused}");
    insta::assert_snapshot!("moved_namespace_apply_stderr", env.scrub(&refused.stderr));
    assert!(
        env.fake.get(&env.ns_path("rayclusters", NAME)).is_some(),
        "a refused apply deleted the RayCluster"
    );
}

#[test]
fn switching_the_backend_replaces_the_raycluster_and_is_data_loss() {
    let env = Env::with_crd(CRD_1_7, &[]);
    env.write_stack(&stack_1_7("2.52.0", ""));
    env.apply();
    env.write_stack(&embedded_stack(""));
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!(
        "backend_switch_text",
        change_lines(&plan.stdout, &rc_address())
    );
    let refused = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(refused.code, 1, "{refused}");
    insta::assert_snapshot!("backend_switch_refused_stderr", env.scrub(&refused.stderr));

    // Accepted: the RayCluster is replaced before Redis is pruned (its cleanup Job needs Redis).
    let r = env.run(&[
        "apply",
        env.stack_arg(),
        "--auto-approve",
        "--allow-data-loss",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let replaced = r
        .stderr
        .find(&format!("{}: replaced", rc_address()))
        .expect("RayCluster replaced");
    let sts_deleted = r
        .stderr
        .find(&format!("StatefulSet/{NAME}/{NAME}-redis: deleted"))
        .expect("Redis pruned");
    assert!(replaced < sts_deleted, "{r}");
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(rc["spec"]["gcsFaultToleranceOptions"]["backend"], "rocksdb");
    env.assert_no_changes();
}

#[test]
fn diff_flags_a_backend_switch_as_data_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (base, head) = (dir.path().join("base.toml"), dir.path().join("head.toml"));
    std::fs::write(&base, stack_1_7("2.52.0", "")).unwrap();
    std::fs::write(&head, embedded_stack("")).unwrap();
    let out = std::process::Command::new(crate::support::raystack_bin())
        .args([
            "diff",
            base.to_str().unwrap(),
            head.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["data_loss"], true);
    let rc = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "RayCluster")
        .unwrap();
    assert_eq!(rc["action"], "replace");
    assert_eq!(
        rc["reason"],
        "gcsFaultToleranceOptions.backend is immutable on a RayCluster (redis → rocksdb)"
    );
    assert!(
        rc["data_loss_reason"]
            .as_str()
            .unwrap()
            .starts_with("the GCS moves to another store (redis → rocksdb)")
    );
}

#[test]
fn a_ray_version_change_states_the_rollout_without_upgrade_strategy() {
    // KubeRay 1.3: no spec.upgradeStrategy; running pods keep the old spec.
    let env = Env::new(&[]);
    env.apply();
    env.write_stack(
        &stack_toml(&worker("cpu", 1), "", "")
            .replace("version = \"2.45.0\"", "version = \"2.46.0\""),
    );
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!(
        "rollout_kuberay_1_3",
        change_lines(&plan.stdout, &rc_address())
    );
    let json: Value = serde_json::from_str(&env.plan(&["--format", "json"]).stdout).unwrap();
    let rc = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "RayCluster")
        .unwrap();
    assert_eq!(rc["data_loss"], false);
    insta::assert_snapshot!("ray_version_rollout_1_3", rc["rollout"].as_str().unwrap());
}

#[test]
fn a_ray_version_change_states_the_rollout_with_upgrade_strategy() {
    let env = Env::with_crd(CRD_1_7, &[]);
    env.write_stack(&stack_1_7("2.52.0", ""));
    env.apply();
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(
        rc["spec"]["upgradeStrategy"]["type"], "Recreate",
        "the default"
    );
    env.write_stack(&stack_1_7("2.53.0", ""));
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!(
        "rollout_kuberay_1_7_recreate",
        change_lines(&plan.stdout, &rc_address())
    );
    env.write_stack(&stack_1_7("2.53.0", "upgrade_strategy = \"none\""));
    let plan = env.plan(&[]);
    insta::assert_snapshot!(
        "rollout_kuberay_1_7_none",
        change_lines(&plan.stdout, &rc_address())
    );
}

/// Under `Recreate` a new Ray version deletes the head (fake-apiserver does as KubeRay 1.6+) and
/// the RayCluster stops claiming ready: apply waits until the new head runs. The replacement
/// head starts only once the test, having read apply's waiting line, releases it (a pod delete
/// hook that waits for a file), so apply can only have finished after it.
#[test]
fn a_recreate_rollout_waits_for_the_new_head() {
    use std::io::{BufRead, BufReader};
    let gate = tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    let hook = format!(
        // Bounded, so a failing test leaves no process behind.
        "ray.io/node-type=head:for i in $(seq 6000); do [ -e {} ] && exit 0; sleep 0.01; done; exit 1",
        go.display()
    );
    let env = Env::with_crd(CRD_1_7, &["--on-pod-delete", &hook]);
    env.write_stack(&stack_1_7("2.52.0", ""));
    env.apply();
    let heads = || {
        env.fake.list_names(&format!(
            "/api/v1/namespaces/{NAME}/pods?labelSelector=ray.io%2Fnode-type%3Dhead"
        ))
    };
    let before = heads();
    assert_eq!(before.len(), 1, "{before:?}");

    env.write_stack(&stack_1_7("2.53.0", ""));
    let mut child = env
        .cmd(&["apply", env.stack_arg(), "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let mut released = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        if !released && line.starts_with(&format!("{}: waiting: head not ready", rc_address())) {
            std::fs::write(&go, "").unwrap();
            released = true;
        }
        seen.push(line);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", seen.join("\n"));
    assert!(
        released,
        "apply never waited for the head:\n{}",
        seen.join("\n")
    );
    let after = heads();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "a new head pod");
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(
        rc["status"]["observedGeneration"],
        rc["metadata"]["generation"]
    );
}

#[test]
fn an_autoscaled_replicas_edit_is_reported_not_silent() {
    let autoscaled = |replicas: u32| {
        stack_toml(
            &format!(
                "[[ray.workers]]\ngroup = \"cpu\"\nreplicas = {replicas}\nmin_replicas = 1\nmax_replicas = 4\ncpu = \"1\"\nmemory = \"1Gi\"\n"
            ),
            "",
            "",
        )
    };
    let env = Env::new(&[]);
    env.write_stack(&autoscaled(1));
    env.apply();
    env.write_stack(&autoscaled(3));
    let validate = env.run(&["validate", env.stack_arg()]);
    assert_eq!(validate.code, 0, "{validate}");
    let warning = validate
        .stderr
        .lines()
        .next()
        .unwrap()
        .replace(env.stack_arg(), "stack.toml");
    insta::assert_snapshot!("autoscaled_replicas_validate", warning);
    let plan = env.plan(&[]);
    // Nothing in the cluster changes, and the plan says why the edit does nothing.
    assert_eq!(plan.code, 0, "{plan}");
    insta::assert_snapshot!("autoscaled_replicas_plan", env.scrub(&plan.stdout));
}

#[test]
fn an_embedded_stack_validates_plans_applies_and_destroys() {
    let env = Env::with_crd(CRD_1_7, &[]);
    env.write_stack(&embedded_stack(""));
    let v = env.run(&["validate", env.stack_arg()]);
    assert_eq!(v.code, 0, "{v}");
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!("embedded_plan", env.scrub(&plan.stdout));
    env.apply();
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(
        rc["spec"]["gcsFaultToleranceOptions"]["storage"]["size"],
        "2Gi"
    );
    assert!(
        env.fake
            .list_names(&format!("/apis/apps/v1/namespaces/{NAME}/statefulsets"))
            .is_empty(),
        "no Redis"
    );
    env.assert_no_changes();
    // Retain: the RayCluster's delete keeps the GCS volume, so destroy says so and needs no flag.
    let d = env.run(&["destroy", env.stack_arg(), "--auto-approve"]);
    assert_eq!(d.code, 0, "{d}");
    insta::assert_snapshot!("embedded_destroy_retain", env.scrub(&d.stdout));
    assert!(env.fake.get(&env.ns_path("rayclusters", NAME)).is_none());
}

#[test]
fn an_unprotected_embedded_volume_goes_with_the_raycluster_and_destroy_says_so() {
    let env = Env::with_crd(CRD_1_7, &[]);
    env.write_stack(&embedded_stack("protect_volume = false"));
    env.apply();
    let d = env.run(&["destroy", env.stack_arg(), "--auto-approve"]);
    assert_eq!(d.code, 0, "{d}");
    insta::assert_snapshot!("embedded_destroy_unprotected", env.scrub(&d.stdout));
}

/// Whether `path` exists on the fake at `url` (a second client, for a watcher thread).
fn exists(url: &str, path: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    if raw.starts_with("HTTP/1.1 404") {
        return None;
    }
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // The body may be chunked; find the JSON object in it.
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    serde_json::from_str(&body[start..=end])
        .ok()
        .or(Some(Value::Null))
}

/// Watches the fake while `f` runs: how often Redis's StatefulSet was gone while the RayCluster
/// still existed, and whether the RayCluster was seen held by KubeRay's finalizer.
fn watch_destroy<T>(env: &Env, f: impl FnOnce() -> T) -> (T, usize, bool) {
    let rc = env.ns_path("rayclusters", NAME);
    let sts = env.ns_path("statefulsets", &format!("{NAME}-redis"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (url, stop) = (env.fake.url.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut violations, mut held) = (0, false);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let rc_now = exists(&url, &rc);
                let sts_gone = exists(&url, &sts).is_none();
                if let Some(rc) = &rc_now {
                    held |= rc["metadata"]["deletionTimestamp"].is_string()
                        && rc["metadata"]["finalizers"]
                            .as_array()
                            .is_some_and(|f| !f.is_empty());
                    if sts_gone {
                        violations += 1;
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            (violations, held)
        })
    };
    let out = f();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (violations, held) = watcher.join().unwrap();
    (out, violations, held)
}

#[test]
fn destroy_waits_for_the_cleanup_finalizer_before_touching_redis() {
    let env = Env::new(&["--cleanup-job-delay-ms", "1500", "--latency-ms", "5"]);
    env.apply();
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(
        rc["metadata"]["finalizers"],
        serde_json::json!(["ray.io/gcs-ft-redis-cleanup-finalizer"]),
        "KubeRay's finalizer is on the RayCluster"
    );
    let (r, violations, held) = watch_destroy(&env, || {
        env.run(&["destroy", env.stack_arg(), "--auto-approve"])
    });
    assert_eq!(r.code, 0, "{r}");
    assert!(
        held,
        "the finalizer never held the RayCluster: the test proves nothing"
    );
    assert_eq!(
        violations, 0,
        "Redis went away while the RayCluster existed:\n{r}"
    );
    insta::assert_snapshot!(
        "destroy_plan_raycluster",
        change_lines(&r.stdout, &rc_address())
    );
    assert!(
        r.stdout.contains("DATA LOSS: destroying this stack loses GCS state (RayCluster/e2e/e2e); destroy proceeds without --allow-data-loss, which only the Redis volume needs."),
        "{r}"
    );
    assert!(
        r.stderr.contains("RayCluster/e2e/e2e: waiting: waiting for KubeRay's finalizer ray.io/gcs-ft-redis-cleanup-finalizer: the cleanup Job `e2e-redis-cleanup` is deleting the GCS state from Redis; no Redis object is touched until the RayCluster is gone"),
        "{r}"
    );
    let gone = r
        .stderr
        .find("RayCluster/e2e/e2e: deleted")
        .expect("deleted");
    let sts = r
        .stderr
        .find("StatefulSet/e2e/e2e-redis: deleting")
        .expect("Redis deleted");
    assert!(gone < sts, "{r}");
    let job = env
        .fake
        .get(&format!(
            "/apis/batch/v1/namespaces/{NAME}/jobs/{NAME}-redis-cleanup"
        ))
        .expect("the cleanup Job ran");
    assert_eq!(job["status"]["succeeded"], 1);
}

#[test]
fn destroy_reports_a_failed_cleanup_job_and_goes_on() {
    let env = Env::new(&["--cleanup-job-delay-ms", "300", "--cleanup-job-fail"]);
    env.apply();
    let uid = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let r = env.run(&["destroy", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains(&format!("RayCluster/e2e/e2e: warning: KubeRay's cleanup Job `e2e-redis-cleanup` failed; KubeRay removes its finalizer anyway, so this cluster's GCS keys (storage namespace `{uid}`) stay in Redis: delete them by hand, or delete the Redis volume")),
        "{r}"
    );
    assert!(env.fake.get(&env.ns_path("rayclusters", NAME)).is_none());
    assert!(
        env.fake
            .get(&env.ns_path("statefulsets", &format!("{NAME}-redis")))
            .is_none(),
        "destroy went on once the RayCluster was gone"
    );
}

#[test]
fn destroy_stops_before_redis_when_the_finalizer_outlasts_the_timeout() {
    let env = Env::new(&["--cleanup-job-delay-ms", "600000"]);
    env.apply();
    let out = env
        .cmd(&["destroy", env.stack_arg(), "--auto-approve"])
        .env("RAYSTACK_WAIT_TIMEOUT", "2")
        .output()
        .unwrap();
    let r = crate::support::Run::from(out);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .contains("timed out after 2s waiting for `RayCluster/e2e/e2e`"),
        "{r}"
    );
    assert!(r.stderr.contains("nothing of Redis was deleted"), "{r}");
    assert!(
        env.fake
            .get(&env.ns_path("statefulsets", &format!("{NAME}-redis")))
            .is_some(),
        "Redis was touched"
    );
}
