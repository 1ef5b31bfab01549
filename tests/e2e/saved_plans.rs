//! Saved plans as data, not authority: the real `raystack` against fake-apiserver. A plan saved
//! with `plan --out` on the kubernetes state backend applies from another working directory (the
//! CI apply job), stale and foreign plans are refused there too, and every way an edited plan
//! file could become a different change is refused with its victim untouched: a `destroy` flag,
//! a no-op entry naming another stack's object, a delete or replace of an object the stack still
//! renders, and a kubeconfig or context of the file's choosing.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::*;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn kubernetes_stack(replicas: u32) -> String {
    stack_toml(&worker("cpu", replicas), "", "").replace(
        "[cluster]",
        "[state]\nbackend = \"kubernetes\"\n\n[cluster]",
    )
}

/// `raystack ARGS --kubeconfig <fake>` in `dir`.
fn run_in(env: &Env, dir: &Path, args: &[&str]) -> Run {
    let mut cmd = env.cmd(args);
    cmd.current_dir(dir);
    Run::from(cmd.output().unwrap())
}

fn replicas(env: &Env) -> Value {
    env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap()["spec"]["workerGroupSpecs"][0]["replicas"].clone()
}

/// `scrub` plus the second working directory as `[DIR2]`.
fn scrub2(env: &Env, dir2: &Path, text: &str) -> String {
    env.scrub(&text.replace(&dir2.display().to_string(), "[DIR2]"))
}

#[test]
fn a_plan_saved_on_the_kubernetes_backend_applies_from_another_working_directory() {
    let env = Env::new(&[]);
    env.write_stack(&kubernetes_stack(1));
    env.apply();
    env.write_stack(&kubernetes_stack(2));
    // The review job: a relative stack path, as CI runs it from the repository's top.
    let r = env.run(&["plan", "stack.toml", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{r}");
    let plan = read_json(&env.dir.path().join("plan.json"));
    assert_eq!(plan["binding"]["stack_file"], "stack.toml");
    assert_eq!(
        plan["binding"]["state"],
        "kubernetes: Secret `raystack-system/raystack-state-e2e`"
    );
    // The apply job: another checkout of the same commit, with the plan artifact.
    let checkout = tempfile::tempdir().unwrap();
    std::fs::copy(&env.stack, checkout.path().join("stack.toml")).unwrap();
    std::fs::copy(
        env.dir.path().join("plan.json"),
        checkout.path().join("plan.json"),
    )
    .unwrap();
    let r = run_in(&env, checkout.path(), &["apply", "plan.json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.stdout,
        "Apply complete! Resources: 0 added, 1 changed, 0 replaced, 0 destroyed.\n"
    );
    assert_eq!(replicas(&env), 2);
    let r = run_in(
        &env,
        checkout.path(),
        &["plan", "stack.toml", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout
            .ends_with("No changes. The cluster matches the stack.\n"),
        "{r}"
    );
    // Applied once, the plan is stale: the state moved on.
    let r = run_in(&env, checkout.path(), &["apply", "plan.json"]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!(
        "kubernetes_backend_plan_applied_twice_stderr",
        scrub2(&env, checkout.path(), &r.stderr).replace(
            &read_json(&checkout.path().join("plan.json"))["binding"]["lineage"]
                .as_str()
                .unwrap()
                .to_string(),
            "[LINEAGE]"
        )
    );
}

#[test]
fn a_foreign_or_stale_plan_is_refused_on_the_kubernetes_backend() {
    let env = Env::new(&[]);
    env.write_stack(&kubernetes_stack(1));
    env.apply();
    env.write_stack(&kubernetes_stack(2));
    assert_eq!(
        env.run(&["plan", "stack.toml", "--out", "stale.json"]).code,
        0
    );
    // Someone else applies 3 workers; the stack file then says 2 again.
    env.write_stack(&kubernetes_stack(3));
    env.apply();
    env.write_stack(&kubernetes_stack(2));
    let r = env.run(&["apply", "stale.json"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.starts_with("error: plan file `stale.json` is stale: the state changed since it was made (then: lineage "),
        "{r}"
    );
    assert_eq!(replicas(&env), 3);
    // A plan of this stack taken to a checkout where `stack.toml` is another stack.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("stack.toml"),
        kubernetes_stack(2).replace("name = \"e2e\"", "name = \"other\""),
    )
    .unwrap();
    std::fs::copy(
        env.dir.path().join("stale.json"),
        other.path().join("p.json"),
    )
    .unwrap();
    let r = run_in(&env, other.path(), &["apply", "p.json"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(
        r.stderr,
        "error: plan file `p.json` is stale: the stack file `stack.toml` changed since the plan was made; run `raystack plan --out` again\n"
    );
    assert_eq!(replicas(&env), 3);
    assert!(env.fake.get("/api/v1/namespaces/other").is_none());
}

/// Applies the stack, then saves a plan to 2 workers as `p.json` and returns it as JSON.
fn saved(env: &Env) -> Value {
    env.apply();
    env.write_stack(&stack_toml(&worker("cpu", 2), "", ""));
    let r = env.run(&["plan", "stack.toml", "--out", "p.json"]);
    assert_eq!(r.code, 0, "{r}");
    read_json(&env.dir.path().join("p.json"))
}

fn entry<'a>(plan: &'a mut Value, kind: &str) -> &'a mut Value {
    plan["resource_changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["kind"] == kind)
        .unwrap()
}

/// Writes the edited plan, applies it, and returns the run; state must not have moved.
fn apply_edited(env: &Env, plan: &Value) -> Run {
    write_json(&env.dir.path().join("p.json"), plan);
    let serial = env.state()["serial"].clone();
    let r = env.run(&["apply", "p.json"]);
    assert_eq!(
        env.state()["serial"],
        serial,
        "an edited plan wrote state:\n{r}"
    );
    r
}

#[test]
fn a_plan_file_marked_destroy_cannot_delete_the_raycluster() {
    let env = Env::new(&[]);
    let mut plan = saved(&env);
    plan["destroy"] = json!(true);
    let rc = entry(&mut plan, "RayCluster");
    rc["action"] = json!("delete");
    rc["manifest"] = Value::Null;
    let r = apply_edited(&env, &plan);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("plan_file_marked_destroy_stderr", env.scrub(&r.stderr));
    assert_eq!(replicas(&env), 1, "the RayCluster was touched");
}

#[test]
fn a_no_op_entry_cannot_make_state_record_another_stacks_object() {
    let env = Env::new(&[]);
    let mut plan = saved(&env);
    let victim = "/api/v1/namespaces/default/configmaps/team-b-config";
    assert_eq!(
        env.fake
            .request(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "team-b-config"}})
                    .to_string(),
            )
            .0,
        201
    );
    plan["resource_changes"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "address": "ConfigMap/default/team-b-config",
            "api_version": "v1",
            "kind": "ConfigMap",
            "namespace": "default",
            "name": "team-b-config",
            "action": "no-op",
            "reason": null,
            "data_loss": false,
            "drift": null,
            "before": null,
            "after": null
        }));
    let r = apply_edited(&env, &plan);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("plan_file_foreign_no_op_stderr", env.scrub(&r.stderr));
    assert!(!env.state().to_string().contains("team-b-config"));
    assert!(env.fake.get(victim).is_some());
}

#[test]
fn a_plan_file_cannot_delete_or_replace_what_the_stack_still_renders() {
    let env = Env::new(&[]);
    let mut plan = saved(&env);
    let netpol = env.ns_path("networkpolicies", &format!("{NAME}-redis"));
    let uid = env.fake.get(&netpol).unwrap()["metadata"]["uid"].clone();
    let np = entry(&mut plan, "NetworkPolicy");
    np["action"] = json!("delete");
    np["manifest"] = Value::Null;
    let r = apply_edited(&env, &plan);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("plan_file_delete_rendered_stderr", env.scrub(&r.stderr));
    assert_eq!(env.fake.get(&netpol).unwrap()["metadata"]["uid"], uid);

    // The password Secret "replaced": the password would rotate behind the running pods.
    let mut plan = read_json(&env.dir.path().join("p.json"));
    entry(&mut plan, "NetworkPolicy")["action"] = json!("no-op");
    let password = env.password();
    entry(&mut plan, "Secret")["action"] = json!("replace");
    let r = apply_edited(&env, &plan);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("plan_file_replace_secret_stderr", env.scrub(&r.stderr));
    assert_eq!(env.password(), password);
    assert_eq!(replicas(&env), 1);
}

#[test]
fn a_plan_file_cannot_choose_the_cluster() {
    let env = Env::new(&[]);
    let mut plan = saved(&env);
    let elsewhere_dir = tempfile::tempdir().unwrap();
    let elsewhere = Fake::start(elsewhere_dir.path(), &[]);
    plan["binding"]["kubeconfig"] = json!(elsewhere.kubeconfig.to_str().unwrap());
    plan["binding"]["context"] = Value::Null;
    write_json(&env.dir.path().join("p.json"), &plan);
    // No flag: the cluster comes from the environment (and the stack), as for `apply STACK`.
    let mut cmd = Command::new(raystack_bin());
    cmd.current_dir(env.dir.path())
        .args(["apply", "p.json"])
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", &env.fake.kubeconfig)
        .stdin(Stdio::null());
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(replicas(&env), 2);
    assert!(
        elsewhere
            .get(&format!("/api/v1/namespaces/{NAME}"))
            .is_none()
    );
}
