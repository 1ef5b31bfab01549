//! Binary-level tests that state belongs to its stack, saved plans are the plans reviewed, and
//! flags mean what they say — against fake-apiserver with the real `raystack` binary.

use crate::support::*;
use serde_json::{Value, json};

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &std::path::Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// A second stack `other` (namespace `other`) in the same directory.
fn other_stack(env: &Env) -> std::path::PathBuf {
    let path = env.dir.path().join("other.toml");
    let toml = stack_toml(&worker("cpu", 1), "", "")
        .replace(&format!("name = \"{NAME}\""), "name = \"other\"")
        .replace(&format!("namespace = \"{NAME}\""), "namespace = \"other\"");
    std::fs::write(&path, toml).unwrap();
    path
}

#[test]
fn another_stacks_state_is_refused_and_its_objects_are_untouched() {
    let env = Env::new(&[]);
    env.apply();
    let other = other_stack(&env);
    let other_state = env.dir.path().join(".raystack/other.state.json");
    std::fs::copy(env.state_path(), &other_state).unwrap();
    let o = other.to_str().unwrap();
    for (name, args) in [
        ("plan", vec!["plan", o]),
        ("plan_offline", vec!["plan", o, "--offline"]),
        ("apply", vec!["apply", o, "--auto-approve"]),
        (
            "destroy",
            vec!["destroy", o, "--auto-approve", "--allow-data-loss"],
        ),
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {r}");
        assert!(r.stdout.is_empty(), "{args:?} planned anyway: {r}");
        insta::assert_snapshot!(
            format!("another_stacks_state_{name}_stderr"),
            env.scrub(&r.stderr)
        );
    }
    for (path, name) in all_objects() {
        assert!(
            env.fake.get(&format!("{path}/{name}")).is_some(),
            "{path}/{name} was deleted"
        );
    }
    assert_converged(&env);
}

#[test]
fn a_state_from_another_lineage_or_an_older_serial_is_refused() {
    let env = Env::new(&[]);
    env.apply();
    let old = std::fs::read(env.state_path()).unwrap();
    let old_serial = env.state()["serial"].as_u64().unwrap();
    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    env.apply();
    let serial = env.state()["serial"].as_u64().unwrap();
    assert!(serial > old_serial);
    let seen = env.state_path().with_extension("json.seen");
    let lineage = env.state()["lineage"].as_str().unwrap().to_owned();

    // An old copy restored: refused, saying how to accept it.
    std::fs::write(env.state_path(), &old).unwrap();
    let r = env.plan(&[]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("state_went_backwards_stderr", env.scrub(&r.stderr));
    // Another lineage (a state recreated in place).
    let mut other = env.state();
    other["lineage"] = json!("00000000-0000-4000-8000-000000000000");
    other["serial"] = json!(serial + 5);
    write_json(&env.state_path(), &other);
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!(
        "state_of_another_lineage_stderr",
        env.scrub(&r.stderr).replace(&lineage, "[LINEAGE]")
    );
    // Accepting it on purpose: delete the marker.
    std::fs::write(env.state_path(), &old).unwrap();
    std::fs::remove_file(&seen).unwrap();
    // The cluster already matches the stack, so the restored state converges with no changes.
    let r = env.plan(&[]);
    assert_eq!(r.code, 0, "the restored state plans again: {r}");
}

#[test]
fn destroy_reports_objects_deleted_out_of_band_and_drops_them() {
    let env = Env::new(&[]);
    env.apply();
    // The whole namespace deleted behind raystack's back (its contents go with it). KubeRay
    // cannot create its Redis cleanup Job in a namespace being deleted, so, as on a real
    // cluster, the RayCluster's finalizer holds it (and the namespace) until someone removes
    // the finalizer by hand, as KubeRay's documentation says to.
    let (code, body) = env.fake.request(
        "DELETE",
        &format!("/api/v1/namespaces/{NAME}"),
        "application/json",
        "",
    );
    assert!(code == 200 || code == 202, "{code} {body}");
    let rc = env.ns_path("rayclusters", NAME);
    let held = env.fake.get(&rc).expect("held by KubeRay's finalizer");
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    let (code, body) = env.fake.request(
        "PATCH",
        &rc,
        "application/merge-patch+json",
        r#"{"metadata": {"finalizers": null}}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        env.fake
            .get(&format!("/api/v1/namespaces/{NAME}"))
            .is_none()
    );
    let r = env.run(&["destroy", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    insta::assert_snapshot!("destroy_out_of_band_stdout", env.scrub(&r.stdout));
    assert!(env.state()["resources"].as_array().unwrap().is_empty());
}

#[test]
fn protect_volume_decides_whether_destroy_deletes_the_volume() {
    for protect in [true, false] {
        let env = Env::new(&[]);
        let toml = stack_toml(&worker("cpu", 1), "", "").replace(
            "max_data_loss = \"2s\"",
            &format!("max_data_loss = \"2s\"\nprotect_volume = {protect}"),
        );
        env.write_stack(&toml);
        env.apply();
        let pvc = env.ns_path("persistentvolumeclaims", &format!("{NAME}-redis-data"));
        let r = env.run(&["destroy", env.stack_arg(), "--auto-approve"]);
        assert_eq!(r.code, 0, "protect_volume = {protect}: {r}");
        let left: Vec<String> = env.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["kind"].as_str().unwrap().to_string())
            .collect();
        if protect {
            assert!(
                env.fake.get(&pvc).is_some(),
                "the protected PVC was deleted"
            );
            assert_eq!(left, ["Namespace", "PersistentVolumeClaim"]);
        } else {
            assert!(
                env.fake.get(&pvc).is_none(),
                "protect_volume = false kept the PVC"
            );
            assert!(left.is_empty(), "{left:?}");
        }
        insta::assert_snapshot!(
            format!("destroy_protect_volume_{protect}_stdout"),
            env.scrub(&r.stdout)
        );
    }
    // Apply's replacements need --allow-data-loss whatever protect_volume says.
    let env = Env::new(&[]);
    let unprotected = |storage: &str| {
        stack_toml(&worker("cpu", 1), "", "")
            .replace(
                "max_data_loss = \"2s\"",
                "max_data_loss = \"2s\"\nprotect_volume = false",
            )
            .replace("storage = \"1Gi\"", &format!("storage = \"{storage}\""))
    };
    env.write_stack(&unprotected("1Gi"));
    env.apply();
    env.write_stack(&unprotected("512Mi"));
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!(
        "apply_unprotected_shrink_refused_stderr",
        env.scrub(&r.stderr)
    );
}

/// Plans a change to 2 workers into `p.plan` and returns its path.
fn saved_plan(env: &Env) -> std::path::PathBuf {
    env.apply();
    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    let planfile = env.dir.path().join("p.plan");
    let r = env.run(&["plan", env.stack_arg(), "--out", planfile.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    planfile
}

fn raycluster_replicas(env: &Env) -> Value {
    env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap()["spec"]["workerGroupSpecs"][0]["replicas"].clone()
}

#[test]
fn a_hand_edited_manifest_in_a_plan_file_is_refused() {
    let env = Env::new(&[]);
    let planfile = saved_plan(&env);
    let mut plan = read_json(&planfile);
    for c in plan["resource_changes"].as_array_mut().unwrap() {
        if c["kind"] == "RayCluster" {
            c["manifest"]["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] =
                json!("evil.example/ray:latest");
        }
    }
    write_json(&planfile, &plan);
    let serial = env.state()["serial"].clone();
    let r = env.run(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("hand_edited_plan_refused_stderr", env.scrub(&r.stderr));
    assert_eq!(env.state()["serial"], serial);
    assert_eq!(raycluster_replicas(&env), 1);
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    // The live object, not output: no part of the edited image may have reached it.
    assert!(!rc.to_string().contains("evil.example"));
}

#[test]
fn a_plan_file_cannot_switch_off_the_data_loss_guard() {
    let env = Env::new(&[]);
    env.apply();
    let pvc = env.ns_path("persistentvolumeclaims", &format!("{NAME}-redis-data"));
    let uid = env.fake.get(&pvc).unwrap()["metadata"]["uid"].clone();
    env.write_stack(
        &stack_toml(&worker("cpu", 1), "", "").replace("storage = \"1Gi\"", "storage = \"512Mi\""),
    );
    let planfile = env.dir.path().join("p.plan");
    let r = env.run(&["plan", env.stack_arg(), "--out", planfile.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    let mut plan = read_json(&planfile);
    assert_eq!(plan["data_loss"], true);
    plan["data_loss"] = json!(false);
    for c in plan["resource_changes"].as_array_mut().unwrap() {
        c["data_loss"] = json!(false);
    }
    write_json(&planfile, &plan);
    let r = env.run(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("plan_file_data_loss_guard_stderr", env.scrub(&r.stderr));
    assert_eq!(
        env.fake.get(&pvc).unwrap()["metadata"]["uid"],
        uid,
        "the PVC was replaced"
    );
}

#[test]
fn a_plan_file_cannot_choose_where_state_is_written() {
    let env = Env::new(&[]);
    let planfile = saved_plan(&env);
    let elsewhere = env.dir.path().join("elsewhere.state.json");
    let mut plan = read_json(&planfile);
    plan["binding"]["state"] = json!(format!("local: {}", elsewhere.to_str().unwrap()));
    write_json(&planfile, &plan);
    let r = env.run(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("plan_file_state_elsewhere_stderr", env.scrub(&r.stderr));
    assert!(!elsewhere.exists());
    assert_eq!(raycluster_replicas(&env), 1);
}

#[test]
fn a_plan_file_is_refused_once_its_stack_file_changed() {
    let env = Env::new(&[]);
    let planfile = saved_plan(&env);
    env.write_stack(&stack_toml(&worker("cpu", 3), "", ""));
    let r = env.run(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("plan_file_stack_changed_stderr", env.scrub(&r.stderr));
    // Unchanged again: the reviewed plan applies exactly.
    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    let r = env.run(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(raycluster_replicas(&env), 2);
}

#[cfg(unix)]
#[test]
fn plan_out_writes_a_private_file_even_over_a_readable_one() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(&[]);
    let planfile = env.dir.path().join("p.plan");
    std::fs::write(&planfile, "old").unwrap();
    std::fs::set_permissions(&planfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = env.run(&["plan", env.stack_arg(), "--out", planfile.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    let mode = std::fs::metadata(&planfile).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "plan file mode {mode:o}");
    assert!(read_json(&planfile)["resource_changes"].is_array());
    let leftovers: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".raystack-plan-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_password_changed_out_of_band_is_drift_and_apply_makes_redis_and_ray_agree() {
    use base64::Engine;
    let env = Env::new(&[]);
    env.apply();
    let old = env.password();
    let fingerprint = env.state()["secrets"][0]["fingerprint"].clone();
    let new = "changed-by-hand-0123456789abcdef";
    let secret = env.ns_path("secrets", &format!("{NAME}-redis-auth"));
    let b64 = base64::engine::general_purpose::STANDARD.encode(new);
    assert_eq!(
        env.fake
            .merge_patch(&secret, &json!({"data": {"password": b64}})),
        200
    );

    let r = env.plan(&[]);
    assert_eq!(r.code, 2, "{r}");
    insta::assert_snapshot!("plan_password_drift_stdout", env.scrub(&r.stdout));
    // Absence checks (no form of either password anywhere) stay `contains`: a snapshot would
    // pin the text, not prove the secret is missing from every part of it.
    for text in [&r.stdout, &r.stderr] {
        assert!(
            !text.contains(new) && !text.contains(&old) && !text.contains(&b64),
            "{r}"
        );
    }
    let json: Value = serde_json::from_str(&env.plan(&["--format", "json"]).stdout).unwrap();
    assert_eq!(json["drift"], true);

    let r = env.apply();
    for text in [&r.stdout, &r.stderr] {
        assert!(!text.contains(new) && !text.contains(&old), "{r}");
    }
    assert_eq!(
        env.password(),
        new,
        "apply keeps the Secret's current password"
    );
    assert_ne!(env.state()["secrets"][0]["fingerprint"], fingerprint);
    env.assert_no_changes();
}
