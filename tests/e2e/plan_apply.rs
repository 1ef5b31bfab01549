//! Binary-level tests of the plan → apply → plan loop against `fake-apiserver`: convergence,
//! updates, the data-loss guard, prune, drift, plan files, confirmation and offline plans.

use serde_json::{Value, json};

use crate::support::*;

/// Output with what differs from run to run replaced: the temp dir, the fake's address and
/// the state's lineage (a random UUID).
fn scrub(env: &Env, text: &str) -> String {
    let mut text = env.scrub(text);
    if env.state_path().exists()
        && let Some(lineage) = env.state()["lineage"].as_str()
    {
        text = text.replace(lineage, "[LINEAGE]");
    }
    text
}

/// A whole output as an insta snapshot (`tests/e2e/snapshots/e2e__plan_apply__NAME.snap`).
macro_rules! snapshot {
    ($env:expr, $name:expr, $text:expr) => {
        insta::assert_snapshot!($name, scrub($env, $text))
    };
}

#[test]
fn apply_from_empty_creates_every_object_then_plan_says_no_changes() {
    let env = Env::new(&[]);
    let first = env.plan(&[]);
    assert_eq!(first.code, 2, "{first}");
    snapshot!(&env, "plan_from_empty", &first.stdout);
    let r = env.apply();
    assert!(
        r.stdout.ends_with(
            "\nApply complete! Resources: 8 added, 0 changed, 0 replaced, 0 destroyed.\n"
        ),
        "{r}"
    );
    for (path, name) in all_objects() {
        assert!(
            env.fake.get(&format!("{path}/{name}")).is_some(),
            "{path}/{name} missing after apply"
        );
    }
    let state = env.state();
    assert_eq!(state["resources"].as_array().unwrap().len(), 8);
    env.assert_no_changes();
}

#[test]
fn changing_worker_replicas_is_one_readable_update() {
    let env = Env::new(&[]);
    env.apply();
    env.write_stack(&stack_toml(&worker("cpu", 3), "", ""));
    let r = env.plan(&[]);
    assert_eq!(r.code, 2, "{r}");
    snapshot!(&env, "plan_worker_replicas_1_to_3", &r.stdout);
    let json = env.plan(&["--format", "json"]);
    let plan: Value = serde_json::from_str(&json.stdout).unwrap();
    let updates: Vec<&Value> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "update")
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["kind"], "RayCluster");
    env.apply();
    env.assert_no_changes();
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(rc["spec"]["workerGroupSpecs"][0]["replicas"], 3);
}

#[test]
fn removing_a_worker_group_is_an_update() {
    let env = Env::new(&[]);
    env.write_stack(&stack_toml(
        &format!("{}\n{}", worker("cpu", 1), worker("big", 1)),
        "",
        "",
    ));
    env.apply();
    env.write_stack(&stack_toml(&worker("cpu", 1), "", ""));
    let r = env.plan(&[]);
    assert_eq!(r.code, 2, "{r}");
    snapshot!(&env, "plan_worker_group_removed", &r.stdout);
    env.apply();
    env.assert_no_changes();
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(rc["spec"]["workerGroupSpecs"].as_array().unwrap().len(), 1);
}

#[test]
fn changing_the_redis_storage_class_is_data_loss_and_refused_without_the_flag() {
    let env = Env::new(&[]);
    env.apply();
    let pvc_path = env.ns_path("persistentvolumeclaims", &format!("{NAME}-redis-data"));
    let before = env.fake.get(&pvc_path).unwrap();
    let class = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
                       "provisioner": "fake.example/fast", "volumeBindingMode": "WaitForFirstConsumer"});
    let (status, body) = env.fake.request(
        "POST",
        "/apis/storage.k8s.io/v1/storageclasses",
        "application/json",
        &class.to_string(),
    );
    assert_eq!(status, 201, "{body}");
    env.write_stack(&stack_toml(
        &worker("cpu", 1),
        "storage_class = \"fast\"",
        "",
    ));

    let text = env.plan(&[]);
    assert_eq!(text.code, 2, "{text}");
    snapshot!(&env, "plan_storage_class_change", &text.stdout);
    let json: Value = serde_json::from_str(&env.plan(&["--format", "json"]).stdout).unwrap();
    assert_eq!(json["data_loss"], true);
    let md = env.plan(&["--format", "markdown"]);
    assert_eq!(md.code, 2, "{md}");
    snapshot!(&env, "plan_storage_class_change_markdown", &md.stdout);

    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 1, "{r}");
    snapshot!(&env, "apply_storage_class_change_refused_stderr", &r.stderr);
    let after = env.fake.get(&pvc_path).unwrap();
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "the PVC was touched"
    );
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(after["spec"]["storageClassName"], "standard");

    let r = env.run(&[
        "apply",
        env.stack_arg(),
        "--auto-approve",
        "--allow-data-loss",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.ends_with(
            "\nApply complete! Resources: 0 added, 0 changed, 1 replaced, 0 destroyed.\n"
        ),
        "{r}"
    );
    let replaced = env.fake.get(&pvc_path).unwrap();
    assert_eq!(replaced["spec"]["storageClassName"], "fast");
    assert_ne!(replaced["metadata"]["uid"], before["metadata"]["uid"]);
    env.assert_no_changes();
}

#[test]
fn shrinking_the_redis_volume_is_data_loss() {
    let env = Env::new(&[]);
    env.apply();
    let toml =
        stack_toml(&worker("cpu", 1), "", "").replace("storage = \"1Gi\"", "storage = \"512Mi\"");
    env.write_stack(&toml);
    let r = env.plan(&[]);
    assert_eq!(r.code, 2, "{r}");
    snapshot!(&env, "plan_volume_shrink", &r.stdout);
}

#[test]
fn an_object_removed_from_the_stack_is_pruned() {
    let env = Env::new(&[]);
    env.apply();
    // The namespace leaves the stack: it is pruned, and since deleting it deletes the Redis
    // volume inside it, the prune is data loss.
    env.write_stack(&stack_toml(
        &worker("cpu", 1),
        "",
        "create_namespace = false",
    ));
    let r = env.plan(&[]);
    assert_eq!(r.code, 2, "{r}");
    snapshot!(&env, "plan_namespace_pruned", &r.stdout);
    let refused = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(refused.code, 1, "{refused}");
    snapshot!(
        &env,
        "apply_namespace_prune_refused_stderr",
        &refused.stderr
    );
    assert!(
        env.fake
            .get(&format!("/api/v1/namespaces/{NAME}"))
            .is_some()
    );
}

#[test]
fn a_pruned_object_already_gone_only_leaves_state() {
    let env = Env::new(&[]);
    env.apply();
    env.write_stack(&stack_toml(
        &worker("cpu", 1),
        "",
        "create_namespace = false",
    ));
    // Someone else took over the namespace: raystack's state entry goes, nothing is deleted.
    let mut state = env.state();
    state["resources"].as_array_mut().unwrap().push(json!({
        "address": "ConfigMap/e2e/old", "api_version": "v1", "kind": "ConfigMap", "namespace": "e2e",
        "name": "old", "uid": "x", "resource_version": "1", "applied_hash": "h"}));
    std::fs::write(
        env.state_path(),
        serde_json::to_string_pretty(&state).unwrap(),
    )
    .unwrap();
    let r = env.plan(&[]);
    assert_eq!(r.code, 2, "{r}");
    snapshot!(&env, "plan_pruned_object_already_gone", &r.stdout);
}

#[test]
fn drift_is_reported_and_apply_restores_it() {
    let env = Env::new(&[]);
    env.apply();
    let cm = env.ns_path("configmaps", &format!("{NAME}-redis-config"));
    let original = env.fake.get(&cm).unwrap()["data"]["redis.conf"].clone();
    assert_eq!(
        env.fake
            .merge_patch(&cm, &json!({"data": {"redis.conf": "appendonly no\n"}})),
        200
    );
    let r = env.plan(&[]);
    assert_eq!(r.code, 2, "{r}");
    snapshot!(&env, "plan_drift", &r.stdout);
    let json: Value = serde_json::from_str(&env.plan(&["--format", "json"]).stdout).unwrap();
    assert_eq!(json["drift"], true);
    env.apply();
    assert_eq!(env.fake.get(&cm).unwrap()["data"]["redis.conf"], original);
    env.assert_no_changes();
}

#[test]
fn an_object_deleted_behind_raystacks_back_is_recreated() {
    let env = Env::new(&[]);
    env.apply();
    let svc = env.ns_path("services", &format!("{NAME}-redis"));
    assert_eq!(
        env.fake.request("DELETE", &svc, "application/json", "").0,
        200
    );
    let r = env.plan(&[]);
    assert_eq!(r.code, 2, "{r}");
    snapshot!(&env, "plan_object_deleted_behind_our_back", &r.stdout);
    env.apply();
    env.assert_no_changes();
}

#[test]
fn a_saved_plan_applies_exactly_and_a_stale_one_is_refused() {
    let env = Env::new(&[]);
    let planfile = env.dir.path().join("first.plan");
    let r = env.run(&["plan", env.stack_arg(), "--out", planfile.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    let shown = env.run(&["show", planfile.to_str().unwrap()]);
    assert_eq!(shown.code, 0, "{shown}");
    let planned = env.plan(&[]);
    assert_eq!(
        shown.stdout, planned.stdout,
        "`show PLANFILE` prints the plan as `plan` did"
    );
    let applied = env.run(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(applied.code, 0, "{applied}");
    env.assert_no_changes();

    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    let stale = env.dir.path().join("stale.plan");
    assert_eq!(
        env.run(&["plan", env.stack_arg(), "--out", stale.to_str().unwrap()])
            .code,
        0
    );
    env.write_stack(&stack_toml(&worker("cpu", 3), "", ""));
    env.apply();
    // The stack file says again what was planned: only the state moved on.
    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    let serial = env.state()["serial"].clone();
    let r = env.run(&["apply", stale.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r}");
    snapshot!(&env, "apply_stale_plan_refused_stderr", &r.stderr);
    assert_eq!(env.state()["serial"], serial, "a stale plan wrote state");
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(rc["spec"]["workerGroupSpecs"][0]["replicas"], 3);
}

#[test]
fn a_plan_file_for_another_cluster_is_refused() {
    let env = Env::new(&[]);
    let planfile = env.dir.path().join("p.plan");
    assert_eq!(
        env.run(&["plan", env.stack_arg(), "--out", planfile.to_str().unwrap()])
            .code,
        0
    );
    let other_dir = tempfile::tempdir().unwrap();
    let other = Fake::start(other_dir.path(), &[]);
    let mut cmd = std::process::Command::new(raystack_bin());
    cmd.current_dir(env.dir.path()).env("NO_COLOR", "1");
    cmd.args([
        "apply",
        planfile.to_str().unwrap(),
        "--kubeconfig",
        other.kubeconfig.to_str().unwrap(),
    ]);
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("it was made for another cluster"), "{r}");
}

#[test]
fn apply_without_a_terminal_refuses_without_auto_approve() {
    let env = Env::new(&[]);
    let r = env.run(&["apply", env.stack_arg()]);
    assert_eq!(r.code, 1, "{r}");
    snapshot!(&env, "apply_without_terminal_refused_stderr", &r.stderr);
    assert!(
        env.fake
            .get(&format!("/api/v1/namespaces/{NAME}"))
            .is_none()
    );
}

#[test]
fn offline_plans_compare_with_state_only() {
    let env = Env::new(&[]);
    let r = env.plan(&["--offline"]);
    assert_eq!(r.code, 2, "{r}");
    snapshot!(&env, "plan_offline_no_state", &r.stdout);
    env.apply();
    let r = env.plan(&["--offline"]);
    assert_eq!(r.code, 0, "{r}");
    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    let r = env.plan(&["--offline"]);
    assert_eq!(r.code, 2, "{r}");
    snapshot!(&env, "plan_offline_worker_replicas_1_to_2", &r.stdout);
    let planfile = env.dir.path().join("off.plan");
    assert_eq!(
        env.run(&[
            "plan",
            env.stack_arg(),
            "--offline",
            "--out",
            planfile.to_str().unwrap()
        ])
        .code,
        0
    );
    let refused = env.run(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{refused}");
    snapshot!(&env, "apply_offline_plan_refused_stderr", &refused.stderr);
}

#[test]
fn destroy_deletes_the_raycluster_before_redis_and_keeps_the_volume() {
    let env = Env::new(&["--latency-ms", "20"]);
    env.apply();
    let rc = env.ns_path("rayclusters", NAME);
    let sts = env.ns_path("statefulsets", &format!("{NAME}-redis"));
    // Watch the fake while destroy runs: Redis must never be gone while the RayCluster exists.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (client, rc, sts, stop) = (env.fake.client(), rc.clone(), sts.clone(), stop.clone());
        std::thread::spawn(move || {
            let exists = |path: &str| client.request("GET", path, &[], b"").status != 404;
            let mut violations = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let sts_gone = !exists(&sts);
                let rc_exists = exists(&rc);
                if sts_gone && rc_exists {
                    violations += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            violations
        })
    };
    let r = env.run(&["destroy", env.stack_arg(), "--auto-approve"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        watcher.join().unwrap(),
        0,
        "Redis went away while the RayCluster still existed"
    );
    assert_eq!(r.code, 0, "{r}");
    let rc_line = r
        .stderr
        .find(&format!("RayCluster/{NAME}/{NAME}: deleted"))
        .expect("RayCluster deleted");
    let sts_line = r
        .stderr
        .find(&format!("StatefulSet/{NAME}/{NAME}-redis: deleting"))
        .expect("StatefulSet deleted");
    assert!(rc_line < sts_line, "{r}");
    assert!(env.fake.get(&rc).is_none() && env.fake.get(&sts).is_none());
    let pvc = env.ns_path("persistentvolumeclaims", &format!("{NAME}-redis-data"));
    assert!(
        env.fake.get(&pvc).is_some(),
        "the protected PVC was deleted"
    );
    snapshot!(&env, "destroy_keeps_the_protected_volume", &r.stdout);
    let state = env.state();
    let left: Vec<&str> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec!["Namespace", "PersistentVolumeClaim"]);

    let r = env.run(&[
        "destroy",
        env.stack_arg(),
        "--auto-approve",
        "--allow-data-loss",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        env.fake.get(&pvc).is_none(),
        "--allow-data-loss kept the PVC"
    );
    assert!(env.state()["resources"].as_array().unwrap().is_empty());
}

/// Runs `raystack ARGS` on a pseudo-terminal (util-linux `script`), typing `answer`.
fn on_a_terminal(env: &Env, args: &[&str], answer: &str) -> Run {
    let mut line = format!("{}", raystack_bin().display());
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    line.push_str(&format!(
        " --kubeconfig '{}'",
        env.fake.kubeconfig.display()
    ));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(env.dir.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs commands on a pseudo-terminal");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn apply_on_a_terminal_asks_and_only_yes_applies() {
    let env = Env::new(&[]);
    let r = on_a_terminal(&env, &["apply", env.stack_arg()], "y");
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stdout.contains("Only 'yes' will be accepted") && r.stdout.contains("Apply cancelled"),
        "{r}"
    );
    assert!(
        env.fake
            .get(&format!("/api/v1/namespaces/{NAME}"))
            .is_none()
    );
    let r = on_a_terminal(&env, &["apply", env.stack_arg()], "yes");
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("Apply complete!"), "{r}");
    env.assert_no_changes();
}

#[test]
fn the_json_plan_has_the_documented_keys_and_lists_every_object() {
    let env = Env::new(&[]);
    env.apply();
    let r = env.plan(&["--format", "json"]);
    assert_eq!(r.code, 0, "{r}");
    let plan: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(plan["format_version"], "1");
    assert_eq!(plan["stack"], NAME);
    for key in [
        "durability",
        "preflight",
        "resource_changes",
        "summary",
        "data_loss",
    ] {
        assert!(plan.get(key).is_some(), "missing `{key}`");
    }
    assert!(plan["durability"]["max_data_loss"].is_string());
    assert_eq!(
        plan["summary"],
        json!({"add": 0, "change": 0, "replace": 0, "destroy": 0})
    );
    let changes = plan["resource_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 8, "no-op objects are listed too");
    for c in changes {
        for key in [
            "address",
            "kind",
            "namespace",
            "name",
            "action",
            "reason",
            "data_loss",
            "before",
            "after",
        ] {
            assert!(c.get(key).is_some(), "missing `{key}` in {c}");
        }
        assert_eq!(c["action"], "no-op");
        assert!(
            c.get("manifest").is_none(),
            "JSON output carries apply-only manifests"
        );
    }
}

/// The requests the fake answered (its audit log) from line `from` on, each as
/// `verb path (code)`, sorted: a plan sends its requests concurrently, so their order varies.
fn audited(log: &std::path::Path, from: usize) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .skip(from)
        .map(|line| {
            let e: Value = serde_json::from_str(line).unwrap();
            let uri = e["requestURI"].as_str().unwrap();
            let path = uri.split('?').next().unwrap();
            let dry_run = if uri.contains("dryRun=All") {
                " dry-run"
            } else {
                ""
            };
            format!(
                "{}{dry_run} {path} ({})",
                e["verb"].as_str().unwrap(),
                e["responseStatus"]["code"]
            )
        })
        .collect();
    lines.sort();
    lines
}

fn audit_len(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log).unwrap().lines().count()
}

#[test]
fn a_plan_reads_only_the_objects_whose_dry_run_cannot_show_them() {
    let audit_dir = tempfile::tempdir().unwrap();
    let log = audit_dir.path().join("audit.jsonl");
    let env = Env::new(&["--audit-log-path", log.to_str().unwrap()]);
    let n = NAME;
    let discovery = [
        "get /api/v1/namespaces/kube-system (200)".to_string(),
        // A local-backend stack looks for a second state of itself (`state::other_state`).
        format!("get /api/v1/namespaces/raystack-system/secrets/raystack-state-{n} (404)"),
        "get /apis/apiextensions.k8s.io/v1/customresourcedefinitions/rayclusters.ray.io (200)"
            .to_string(),
        "list /apis/storage.k8s.io/v1/storageclasses (200)".to_string(),
    ];
    let objects = [
        format!("/api/v1/namespaces/{n}"),
        format!("/api/v1/namespaces/{n}/configmaps/{n}-redis-config"),
        format!("/api/v1/namespaces/{n}/persistentvolumeclaims/{n}-redis-data"),
        format!("/api/v1/namespaces/{n}/secrets/{n}-redis-auth"),
        format!("/api/v1/namespaces/{n}/services/{n}-redis"),
        format!("/apis/apps/v1/namespaces/{n}/statefulsets/{n}-redis"),
        format!("/apis/networking.k8s.io/v1/namespaces/{n}/networkpolicies/{n}-redis"),
        format!("/apis/ray.io/v1/namespaces/{n}/rayclusters/{n}"),
    ];
    let expect = |lines: Vec<String>| {
        let mut all: Vec<String> = discovery.to_vec();
        all.extend(lines);
        all.sort();
        all
    };

    // A new stack: each object's dry-run says it does not exist (its namespace does not
    // either, so the namespaced ones answer 404); nothing is read.
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    let new_stack = expect(
        objects
            .iter()
            .map(|p| {
                let code = if p == &objects[0] { 201 } else { 404 };
                format!("patch dry-run {p} ({code})")
            })
            .collect(),
    );
    assert_eq!(audited(&log, 0), new_stack);

    let dry_runs = |except: &str| -> Vec<String> {
        objects
            .iter()
            .filter(|p| p.as_str() != except)
            .map(|p| format!("patch dry-run {p} (200)"))
            .collect()
    };
    let read_too = |p: &str| [format!("get {p} (200)"), format!("patch dry-run {p} (200)")];

    // Applied and unchanged: every dry-run answers with the resourceVersion state recorded
    // (the ready object's, after its controller wrote status), so nothing is read.
    env.apply();
    let from = audit_len(&log);
    env.assert_no_changes();
    assert_eq!(audited(&log, from), expect(dry_runs("")));

    // Written since the apply (an edit by another field manager): that one is read.
    let config_map = &objects[1];
    let edit = json!({"metadata": {"labels": {"team": "ml"}}});
    assert_eq!(env.fake.merge_patch(config_map, &edit), 200);
    let from = audit_len(&log);
    env.assert_no_changes();
    let mut edited = dry_runs(config_map);
    edited.extend(read_too(config_map));
    assert_eq!(audited(&log, from), expect(edited));

    // Changed in the stack: the plan shows the live object next to its dry-run, so it is read
    // (alongside the dry-run).
    let ray_cluster = &objects[7];
    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    let from = audit_len(&log);
    assert_eq!(env.plan(&[]).code, 2);
    let mut changed = dry_runs(ray_cluster);
    changed.extend(read_too(ray_cluster));
    changed.push(format!("get {config_map} (200)"));
    assert_eq!(audited(&log, from), expect(changed));
    env.write_stack(&stack_toml(&worker("cpu", 1), "", ""));

    // State lost: the objects are unknown again, but each dry-run answers with the stored
    // object's resourceVersion, so each is read after all, and the plan still sees them.
    let known = expect(objects.iter().flat_map(|p| read_too(p)).collect());
    std::fs::remove_file(env.state_path()).unwrap();
    let from = audit_len(&log);
    let json = env.plan(&["--format", "json"]);
    assert_eq!(audited(&log, from), known);
    let plan: Value = serde_json::from_str(&json.stdout).unwrap();
    let actions: Vec<(&str, &str)> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        actions.iter().all(|(_, a)| *a != "create"),
        "objects that exist are never planned as created: {actions:?}"
    );
}

#[test]
fn applied_stacks_planned_together_list_each_kind_once_and_plan_as_each_alone() {
    let audit_dir = tempfile::tempdir().unwrap();
    let log = audit_dir.path().join("audit.jsonl");
    let env = Env::new(&["--audit-log-path", log.to_str().unwrap()]);
    // Three applied stacks: `e2e` unchanged, `e2e-b` changed in its file (a second worker),
    // `e2e-c` with its ConfigMap edited by another field manager; and `e2e-d`, new.
    let named = |name: &str, replicas: u32| {
        stack_toml(&worker("cpu", replicas), "", "").replace("\"e2e\"", &format!("\"{name}\""))
    };
    std::fs::write(env.dir.path().join("b.toml"), named("e2e-b", 1)).unwrap();
    std::fs::write(env.dir.path().join("c.toml"), named("e2e-c", 1)).unwrap();
    let stacks = [env.stack_arg(), "b.toml", "c.toml", "d.toml"];
    for stack in &stacks[..3] {
        let r = env.run(&["apply", stack, "--auto-approve"]);
        assert_eq!(r.code, 0, "{r}");
    }
    std::fs::write(env.dir.path().join("b.toml"), named("e2e-b", 2)).unwrap();
    std::fs::write(env.dir.path().join("d.toml"), named("e2e-d", 1)).unwrap();
    let edited = "/api/v1/namespaces/e2e-c/configmaps/e2e-c-redis-config";
    let edit = json!({"metadata": {"labels": {"team": "ml"}}});
    assert_eq!(env.fake.merge_patch(edited, &edit), 200);

    let plan_all = |kubeconfig: &std::path::Path| {
        let r = Run::from(
            std::process::Command::new(raystack_bin())
                .current_dir(env.dir.path())
                .args(["plan", "--format", "json", "--kubeconfig"])
                .arg(kubeconfig)
                .args(stacks)
                .env("NO_COLOR", "1")
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{r}");
        reviewed_plans(&r.stdout)
    };
    let from = audit_len(&log);
    let together = plan_all(&env.fake.kubeconfig);

    // One request per kind for the three stacks (label `raystack.dev/stack in (...)`, across
    // namespaces); a dry-run only where the listing cannot prove a no-op: the edited ConfigMap
    // (its live object is the listed one: no read) and the object changed in its stack (read
    // alongside its dry-run, as alone). The new stack's namespace is asked about first: it
    // does not exist, so nothing in it is dry-run.
    let mut expected: Vec<String> = [
        "get /api/v1/namespaces/kube-system (200)",
        "get /apis/apiextensions.k8s.io/v1/customresourcedefinitions/rayclusters.ray.io (200)",
        "list /apis/storage.k8s.io/v1/storageclasses (200)",
        "list /api/v1/namespaces (200)",
        "list /api/v1/secrets (200)",
        "list /api/v1/configmaps (200)",
        "list /api/v1/persistentvolumeclaims (200)",
        "list /apis/apps/v1/statefulsets (200)",
        "list /api/v1/services (200)",
        "list /apis/networking.k8s.io/v1/networkpolicies (200)",
        "list /apis/ray.io/v1/rayclusters (200)",
        // Each local-backend stack looks for a second state of itself.
        "get /api/v1/namespaces/raystack-system/secrets/raystack-state-e2e (404)",
        "get /api/v1/namespaces/raystack-system/secrets/raystack-state-e2e-b (404)",
        "get /api/v1/namespaces/raystack-system/secrets/raystack-state-e2e-c (404)",
        "get /api/v1/namespaces/raystack-system/secrets/raystack-state-e2e-d (404)",
        "patch dry-run /api/v1/namespaces/e2e-c/configmaps/e2e-c-redis-config (200)",
        "get /apis/ray.io/v1/namespaces/e2e-b/rayclusters/e2e-b (200)",
        "patch dry-run /apis/ray.io/v1/namespaces/e2e-b/rayclusters/e2e-b (200)",
        "patch dry-run /api/v1/namespaces/e2e-d (201)",
    ]
    .map(String::from)
    .to_vec();
    expected.sort();
    assert_eq!(audited(&log, from), expected);
    let selectors: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .skip(from)
        .filter_map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            let uri = e["requestURI"].as_str().unwrap().to_string();
            uri.contains("labelSelector").then_some(uri)
        })
        .filter(|uri| !uri.contains("storageclasses"))
        .map(|uri| uri.split_once("labelSelector=").unwrap().1.to_string())
        .collect();
    assert_eq!(selectors.len(), 8, "{selectors:?}");
    for s in &selectors {
        assert_eq!(
            s,
            "raystack.dev%2Fstack+in+%28e2e%2Ce2e-b%2Ce2e-c%2Ce2e-d%29"
        );
    }

    // The same plans as each stack planned alone (dry-run by dry-run).
    let alone: Vec<Value> = stacks
        .iter()
        .map(|s| {
            let r = env.run(&["plan", "--format", "json", s]);
            assert_eq!(r.code, 0, "{r}");
            serde_json::from_str(&r.stdout).unwrap()
        })
        .collect();
    assert!(
        together == alone,
        "the plans differ from each stack's alone"
    );
    let actions: Vec<Vec<&str>> = together
        .iter()
        .map(|p| {
            p["resource_changes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["action"] != "no-op")
                .map(|c| c["address"].as_str().unwrap())
                .collect()
        })
        .collect();
    // A label another manager added changes nothing raystack owns.
    assert_eq!(
        actions[..3],
        [vec![], vec!["RayCluster/e2e-b/e2e-b"], vec![]]
    );
    assert_eq!(actions[3].len(), 8, "{:?}", actions[3]);
    assert_eq!(together[3]["summary"]["add"], 8);

    // An account that may not list across namespaces: each object is observed as alone.
    let proxy = fake_apiserver::faults::FaultProxy::start(&env.fake.url).unwrap();
    proxy.push(fake_apiserver::faults::Rule::new(
        Some("GET"),
        "labelSelector=raystack.dev",
        fake_apiserver::faults::Fault::status(403),
    ));
    let kubeconfig = env.dir.path().join("kubeconfig-proxy");
    proxy.write_kubeconfig(&kubeconfig).unwrap();
    let mut refused_lists = plan_all(&kubeconfig);
    for plan in &mut refused_lists {
        // The plans are bound to the kubeconfig they were made with.
        assert_eq!(
            plan["binding"]["kubeconfig"],
            kubeconfig.display().to_string()
        );
        plan["binding"]["kubeconfig"] = json!(env.fake.kubeconfig.display().to_string());
    }
    assert!(
        refused_lists == alone,
        "the plans differ from each stack's alone"
    );
    let refused = proxy.seen().iter().filter(|s| s.fault.is_some()).count();
    assert_eq!(refused, 8);
}

/// "1 beats 2": with `--detailed-exitcode`, a run where one stack has changes and another
/// fails exits 1 (error), never 2 (changes), whichever order the stacks are given in.
#[test]
fn an_error_beside_changes_exits_1_under_detailed_exitcode() {
    let env = Env::new(&[]);
    let bad = env.dir.path().join("bad.toml");
    std::fs::write(&bad, "[stack]\nname = \"Bad_Name\"\n").unwrap();
    let bad = bad.to_str().unwrap();
    for args in [
        ["plan", env.stack_arg(), bad, "--detailed-exitcode"],
        ["plan", bad, env.stack_arg(), "--detailed-exitcode"],
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 1, "{r}");
        assert_eq!(
            r.stdout.lines().next(),
            Some("raystack plan: 2 stacks: 1 with changes, 1 failed"),
            "{r}"
        );
    }
    // The good stack alone has changes: 2.
    assert_eq!(env.plan(&[]).code, 2);
}
