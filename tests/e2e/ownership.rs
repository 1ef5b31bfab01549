//! raystack acts only on what is provably its stack's: the real binary against fake-apiserver.
//! Each way of deleting a stranger's object is tried, and the victim must still exist after the
//! command: destroy of a never-applied stack in a busy namespace, destroy from a second
//! checkout without state, two stacks sharing a namespace, an entry injected into the state
//! document. Objects the stack would create that exist already are adopted only with `--adopt`
//! (`--take-ownership` for a deployment tool's), and another stack's are never taken. Every
//! object carries its state's lineage: a second state of the same stack (another checkout with
//! its own state) is warned about by plan and refused by apply and destroy, and an object an
//! older raystack applied without the lineage is proved by its recorded UID and stamped.

use serde_json::{Value, json};

use crate::support::*;

/// Creates `body` at `collection` as `kubectl create` would (its field manager).
fn create(env: &Env, collection: &str, body: Value) {
    let (code, text) = env.fake.request(
        "POST",
        &format!("{collection}?fieldManager=kubectl-client-side-apply"),
        "application/json",
        &body.to_string(),
    );
    assert_eq!(code, 201, "{text}");
}

fn namespace(env: &Env, name: &str) {
    create(
        env,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    );
}

fn database_pvc(env: &Env, ns: &str) -> String {
    create(
        env,
        &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "database-data"},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}}}),
    );
    format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/database-data")
}

#[test]
fn destroy_of_a_never_applied_stack_leaves_a_busy_namespace_alone() {
    let env = Env::new(&[]);
    namespace(&env, NAME);
    let victim = database_pvc(&env, NAME);
    let r = env.run(&[
        "destroy",
        env.stack_arg(),
        "--auto-approve",
        "--allow-data-loss",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains(
            "Left alone\n  Namespace/e2e: it was not created by raystack (no raystack.dev/stack label; managed by unknown)\n"
        ),
        "{r}"
    );
    assert!(
        env.fake.get(&victim).is_some(),
        "the database volume was deleted"
    );
    assert!(
        env.fake
            .get(&format!("/api/v1/namespaces/{NAME}"))
            .is_some()
    );
}

#[test]
fn destroy_from_a_second_checkout_without_state_is_refused() {
    let env = Env::new(&[]);
    env.apply();
    let checkout = tempfile::tempdir().unwrap();
    std::fs::copy(&env.stack, checkout.path().join("stack.toml")).unwrap();
    let mut cmd = env.cmd(&["destroy", "stack.toml", "--auto-approve"]);
    cmd.current_dir(checkout.path());
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(
            "refusing to destroy: stack `e2e` has objects in the cluster applied from another state of it: "
        ),
        "{r}"
    );
    assert!(env.fake.get(&env.ns_path("rayclusters", NAME)).is_some());
    env.assert_no_changes();
}

#[test]
fn destroy_without_state_of_objects_without_a_lineage_is_refused() {
    let env = Env::new(&[]);
    env.apply();
    // As a raystack that did not stamp the lineage left them, and the state lost.
    let unstamp = json!({"metadata": {"annotations": {"raystack.dev/lineage": null}}});
    for (collection, name) in all_objects() {
        let path = format!("{collection}/{name}");
        assert_eq!(env.fake.merge_patch(&path, &unstamp), 200, "{path}");
    }
    std::fs::remove_file(env.state_path()).unwrap();
    let r = env.run(&["destroy", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(
            "stack `e2e` has no state here, but the cluster holds its objects (Secret/e2e/e2e-redis-auth, ConfigMap/e2e/e2e-redis-config, PersistentVolumeClaim/e2e/e2e-redis-data, StatefulSet/e2e/e2e-redis, Service/e2e/e2e-redis, NetworkPolicy/e2e/e2e-redis, RayCluster/e2e/e2e)"
        ),
        "{r}"
    );
    assert!(env.fake.get(&env.ns_path("rayclusters", NAME)).is_some());
}

/// The first checkout's lineage, as every object it applied carries it.
fn applied_lineage(env: &Env) -> String {
    let lineage = env.state()["lineage"].as_str().unwrap().to_string();
    for (collection, name) in [
        ("rayclusters", NAME.to_string()),
        ("persistentvolumeclaims", format!("{NAME}-redis-data")),
        ("configmaps", format!("{NAME}-redis-config")),
    ] {
        let live = env.fake.get(&env.ns_path(collection, &name)).unwrap();
        assert_eq!(
            live["metadata"]["annotations"]["raystack.dev/lineage"], lineage,
            "{collection}/{name}"
        );
    }
    lineage
}

#[test]
fn a_second_state_of_the_stack_blocks_plan_and_is_refused_by_apply_and_destroy() {
    let env = Env::new(&[]);
    env.apply();
    let lineage = applied_lineage(&env);
    // Another checkout of the same stack, with its own (fresh, local) state.
    let checkout = tempfile::tempdir().unwrap();
    std::fs::copy(&env.stack, checkout.path().join("stack.toml")).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = env.cmd(args);
        cmd.current_dir(checkout.path());
        let r = Run::from(cmd.output().unwrap());
        let scrub = |t: &str| {
            env.scrub(t)
                .replace(&checkout.path().display().to_string(), "[CHECKOUT]")
                .replace(&lineage, "[LINEAGE]")
        };
        (r.code, scrub(&r.stdout), scrub(&r.stderr))
    };
    // The plan says apply would refuse: exit 1, not "No changes" (which a reviewer would
    // approve and the apply job would then refuse).
    let (code, stdout, stderr) = run(&["plan", "stack.toml"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    insta::assert_snapshot!("second_state_plan", format!("{stderr}---\n{stdout}"));
    // A review of many stacks counts it as blocked.
    let (code, stdout, _) = run(&["plan", "stack.toml", "--format", "json"]);
    assert_eq!(code, 1, "{stdout}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        plan["errors"][0].as_str().unwrap().starts_with(
            "stack `e2e` has objects in the cluster applied from another state of it: "
        ),
        "{plan:#}"
    );
    let (code, _, stderr) = run(&["apply", "stack.toml", "--auto-approve"]);
    assert_eq!(code, 1, "{stderr}");
    insta::assert_snapshot!("second_state_apply_stderr", stderr);
    let (code, _, stderr) = run(&["destroy", "stack.toml", "--auto-approve"]);
    assert_eq!(code, 1, "{stderr}");
    insta::assert_snapshot!("second_state_destroy_stderr", stderr);
    // Nothing of the first checkout's was touched, and it still owns everything.
    assert!(env.fake.get(&env.ns_path("rayclusters", NAME)).is_some());
    assert!(
        env.fake
            .get(&env.ns_path("persistentvolumeclaims", &format!("{NAME}-redis-data")))
            .is_some()
    );
    assert!(!checkout.path().join(".raystack/e2e.state.json").exists());
    assert_eq!(applied_lineage(&env), lineage);
    env.assert_no_changes();
}

#[test]
fn an_object_applied_without_the_lineage_is_planned_as_an_annotation_update() {
    let env = Env::new(&[]);
    env.apply();
    let lineage = applied_lineage(&env);
    // As a raystack that did not stamp the lineage left it: the object without the annotation,
    // and state recording that manifest (its hash) and the object's UID and version.
    let name = format!("{NAME}-redis-config");
    let path = env.ns_path("configmaps", &name);
    let unstamp = json!({"metadata": {"annotations": {"raystack.dev/lineage": null}}});
    assert_eq!(env.fake.merge_patch(&path, &unstamp), 200);
    let live = env.fake.get(&path).unwrap();
    assert!(
        live["metadata"]["annotations"]
            .get("raystack.dev/lineage")
            .is_none()
    );
    let address = format!("ConfigMap/{NAME}/{name}");
    let mut state = env.state();
    let manifest = state["manifests"][&address].as_object_mut().unwrap();
    manifest["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("raystack.dev/lineage")
        .unwrap();
    let old_hash = raystack::state::applied_hash(&state["manifests"][&address]);
    let record = state["resources"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["address"] == address.as_str())
        .unwrap();
    assert_eq!(record["uid"], live["metadata"]["uid"]);
    record["applied_hash"] = json!(old_hash);
    record["resource_version"] = live["metadata"]["resourceVersion"].clone();
    std::fs::write(
        env.state_path(),
        serde_json::to_string_pretty(&state).unwrap(),
    )
    .unwrap();

    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!(
        "unstamped_object_plan",
        env.scrub(&plan.stdout).replace(&lineage, "[LINEAGE]")
    );
    env.apply();
    assert_eq!(
        env.fake.get(&path).unwrap()["metadata"]["annotations"]["raystack.dev/lineage"],
        lineage
    );
    env.assert_no_changes();
}

/// A second stack `other` sharing namespace `e2e`, in its own file.
fn other_stack(env: &Env) -> std::path::PathBuf {
    let path = env.dir.path().join("other.toml");
    let toml = stack_toml(&worker("cpu", 1), "", "")
        .replace(&format!("name = \"{NAME}\""), "name = \"other\"");
    std::fs::write(&path, toml).unwrap();
    path
}

#[test]
fn two_stacks_in_one_namespace_never_delete_each_others_objects() {
    let env = Env::new(&[]);
    env.apply();
    let other = other_stack(&env);
    let other = other.to_str().unwrap();
    let r = env.run(&["apply", other, "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains(
            "  Namespace/e2e: shared with stack `e2e`, which created it and manages it\n"
        ),
        "{r}"
    );
    let rc = "/apis/ray.io/v1/namespaces/e2e/rayclusters/other";
    let pvc = "/api/v1/namespaces/e2e/persistentvolumeclaims/other-redis-data";
    assert!(env.fake.get(rc).is_some() && env.fake.get(pvc).is_some());
    // Destroying the first stack, volume and all, keeps the namespace the other still uses.
    let r = env.run(&[
        "destroy",
        env.stack_arg(),
        "--auto-approve",
        "--allow-data-loss",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout
            .contains("  Namespace/e2e: it holds objects raystack did not create ("),
        "{r}"
    );
    assert!(
        env.fake.get(rc).is_some(),
        "the other stack's RayCluster was deleted"
    );
    assert!(
        env.fake.get(pvc).is_some(),
        "the other stack's volume was deleted"
    );
    assert!(env.fake.get(&env.ns_path("rayclusters", NAME)).is_none());
    // And the other stack still plans as it applied.
    let r = env.run(&["plan", other, "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn an_entry_injected_into_state_is_not_pruned() {
    let env = Env::new(&[]);
    env.apply();
    create(
        &env,
        "/api/v1/namespaces/default/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "victim"}}),
    );
    let victim = "/api/v1/namespaces/default/configmaps/victim";
    let uid = env.fake.get(victim).unwrap()["metadata"]["uid"].clone();
    let mut state = env.state();
    state["resources"].as_array_mut().unwrap().push(json!({
        "address": "ConfigMap/default/victim",
        "api_version": "v1",
        "kind": "ConfigMap",
        "namespace": "default",
        "name": "victim",
        "uid": uid,
        "resource_version": "1",
        "applied_hash": "0"
    }));
    std::fs::write(
        env.state_path(),
        serde_json::to_string_pretty(&state).unwrap(),
    )
    .unwrap();
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains("state records `ConfigMap/default/victim`, which is no longer in the stack, but raystack will not delete it: it is outside stack `e2e`'s namespace and names"),
        "{r}"
    );
    assert!(env.fake.get(victim).is_some(), "the victim was pruned");
    let r = env.run(&[
        "destroy",
        env.stack_arg(),
        "--auto-approve",
        "--allow-data-loss",
    ]);
    assert!(
        env.fake.get(victim).is_some(),
        "destroy deleted the victim:\n{r}"
    );
}

#[test]
fn an_existing_object_is_adopted_only_with_adopt() {
    let env = Env::new(&[]);
    namespace(&env, NAME);
    create(
        &env,
        &format!("/api/v1/namespaces/{NAME}/configmaps"),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": format!("{NAME}-redis-config")}, "data": {"redis.conf": "# by hand\n"}}),
    );
    let r = env.plan(&["--format", "json"]);
    assert_eq!(r.code, 2, "{r}");
    let plan: Value = serde_json::from_str(&r.stdout).unwrap();
    let adopted: Vec<(&str, &Value)> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("adopt").is_some())
        .map(|c| (c["address"].as_str().unwrap(), &c["adopt"]))
        .collect();
    let addresses: Vec<&str> = adopted.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        addresses,
        ["Namespace/e2e", "ConfigMap/e2e/e2e-redis-config"]
    );
    assert_eq!(adopted[1].1, &json!({"owner": "kubectl-client-side-apply"}));
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!(
        "adopt_refused_stderr",
        r.stderr
            .lines()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(env.fake.get(&env.ns_path("rayclusters", NAME)).is_none());
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve", "--adopt"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        env.state()["adopted"],
        json!(["ConfigMap/e2e/e2e-redis-config", "Namespace/e2e"])
    );
    env.assert_no_changes();
    // A namespace raystack adopted is never deleted, even with everything else.
    let r = env.run(&[
        "destroy",
        env.stack_arg(),
        "--auto-approve",
        "--allow-data-loss",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        env.fake
            .get(&format!("/api/v1/namespaces/{NAME}"))
            .is_some()
    );
    assert!(env.fake.get(&env.ns_path("rayclusters", NAME)).is_none());
}

#[test]
fn a_helm_managed_object_needs_take_ownership_and_another_stacks_is_never_taken() {
    let env = Env::new(&[]);
    namespace(&env, NAME);
    create(
        &env,
        &format!("/api/v1/namespaces/{NAME}/services"),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": format!("{NAME}-redis"),
                            "labels": {"app.kubernetes.io/managed-by": "Helm"},
                            "annotations": {"meta.helm.sh/release-name": "redis"}},
               "spec": {"ports": [{"port": 6379}]}}),
    );
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve", "--adopt"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .contains("Service/e2e/e2e-redis (managed by Helm (release `redis`))"),
        "{r}"
    );
    let r = env.run(&[
        "apply",
        env.stack_arg(),
        "--auto-approve",
        "--adopt",
        "--take-ownership",
    ]);
    assert_eq!(r.code, 0, "{r}");

    // An object labelled for another stack blocks the plan.
    let env = Env::new(&[]);
    namespace(&env, NAME);
    create(
        &env,
        &format!("/api/v1/namespaces/{NAME}/configmaps"),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": format!("{NAME}-redis-config"),
                            "labels": {"raystack.dev/stack": "team-b"}}}),
    );
    let r = env.run(&[
        "apply",
        env.stack_arg(),
        "--auto-approve",
        "--adopt",
        "--take-ownership",
    ]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .contains("`ConfigMap/e2e/e2e-redis-config` exists and belongs to stack `team-b`"),
        "{r}"
    );
    let cm = env
        .fake
        .get(&format!(
            "/api/v1/namespaces/{NAME}/configmaps/{NAME}-redis-config"
        ))
        .unwrap();
    assert_eq!(cm["metadata"]["labels"]["raystack.dev/stack"], "team-b");
}
