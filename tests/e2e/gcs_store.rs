//! A RayCluster pointed at another Redis loses its GCS state: the real `raystack` binary against
//! `fake-apiserver`, with a RayCluster created outside raystack (as `kubectl apply` would) under
//! the stack's name. Another Redis server is DATA LOSS in text, JSON and Markdown with its
//! reason, and apply refuses it without `--allow-data-loss` (also in KubeRay's pre-1.3 form, the
//! address in the head's `RAY_REDIS_ADDRESS`); the same Service written another
//! way is no change at all.

use crate::kuberay::change_lines;
use crate::support::{Env, NAME, stack_toml, worker};
use serde_json::{Value, json};

fn rc_address() -> String {
    format!("RayCluster/{NAME}/{NAME}")
}

/// Creates the stack's namespace and a RayCluster of the stack's name whose GCS is in Redis at
/// `redis_address`, written by another field manager (`kubectl`).
fn live_raycluster(env: &Env, redis_address: &str) {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAME}});
    let (status, body) = env.fake.request(
        "POST",
        "/api/v1/namespaces?fieldManager=kubectl",
        "application/json",
        &ns.to_string(),
    );
    assert_eq!(status, 201, "{body}");
    let rc = json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": NAME, "namespace": NAME},
        "spec": {
            "rayVersion": "2.45.0",
            "gcsFaultToleranceOptions": {"redisAddress": redis_address},
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                {"name": "ray-head", "image": "rayproject/ray:2.45.0"}]}}},
        }
    });
    let (status, body) = env.fake.request(
        "POST",
        &format!("/apis/ray.io/v1/namespaces/{NAME}/rayclusters?fieldManager=kubectl"),
        "application/json",
        &rc.to_string(),
    );
    assert_eq!(status, 201, "{body}");
}

fn live_address(env: &Env) -> Value {
    env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap()["spec"]["gcsFaultToleranceOptions"]
        ["redisAddress"]
        .clone()
}

const REASON: &str = "the GCS moves to another Redis (`redis:6379` → `e2e-redis.e2e.svc:6379`), which does not hold this cluster's GCS state: the head restarts on it with an empty GCS, and this cluster's GCS state (detached actors, job records, Serve config) stays behind in the old one";

#[test]
fn a_raycluster_pointed_at_another_redis_is_data_loss_in_every_format_and_refused() {
    let env = Env::new(&[]);
    live_raycluster(&env, "redis:6379");

    let text = env.plan(&[]);
    assert_eq!(text.code, 2, "{text}");
    insta::assert_snapshot!(
        "another_redis_text",
        change_lines(&text.stdout, &rc_address())
    );

    let json = env.plan(&["--format", "json"]);
    assert_eq!(json.code, 2, "{json}");
    let plan: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(plan["data_loss"], true);
    let rc = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "RayCluster")
        .unwrap();
    assert_eq!(rc["action"], "update");
    assert_eq!(rc["data_loss"], true);
    assert_eq!(rc["data_loss_reason"], REASON);

    let md = env.plan(&["--format", "markdown"]);
    assert_eq!(md.code, 2, "{md}");
    let md_lines: Vec<&str> = md
        .stdout
        .lines()
        .filter(|l| l.contains(&rc_address()) || l.contains("moves to another Redis"))
        .collect();
    insta::assert_snapshot!("another_redis_markdown", md_lines.join("\n"));

    let refused = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(refused.code, 1, "{refused}");
    insta::assert_snapshot!("another_redis_refused_stderr", env.scrub(&refused.stderr));
    assert_eq!(
        live_address(&env),
        "redis:6379",
        "a refused apply re-pointed the RayCluster"
    );

    // Created outside raystack: taking it over needs --adopt too.
    let accepted = env.run(&[
        "apply",
        env.stack_arg(),
        "--auto-approve",
        "--allow-data-loss",
        "--adopt",
    ]);
    assert_eq!(accepted.code, 0, "{accepted}");
    assert_eq!(live_address(&env), "e2e-redis.e2e.svc:6379");
}

/// The stack renders `e2e-redis.e2e.svc:6379`; a RayCluster that reaches the same Service as
/// `e2e-redis` (the namespace's own, port 6379 by default) keeps its GCS: no data loss, and no
/// change of the address at all.
#[test]
fn the_same_service_written_another_way_is_no_change() {
    let env = Env::new(&[]);
    live_raycluster(&env, "e2e-redis.e2e.svc.cluster.local");
    let plan = env.plan(&["--format", "json"]);
    assert_eq!(plan.code, 2, "{plan}");
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["data_loss"], false, "{plan:#}");
    let rc = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "RayCluster")
        .unwrap();
    assert_eq!(
        (
            &rc["before"]["spec"]["gcsFaultToleranceOptions"]["redisAddress"],
            &rc["after"]["spec"]["gcsFaultToleranceOptions"]["redisAddress"]
        ),
        (
            &json!("e2e-redis.e2e.svc.cluster.local"),
            &json!("e2e-redis.e2e.svc.cluster.local")
        )
    );
    // Applied without --allow-data-loss.
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve", "--adopt"]);
    assert_eq!(r.code, 0, "{r}");
}

/// KubeRay before 1.3: the `ray.io/ft-enabled` annotation, the address in the head container's
/// `RAY_REDIS_ADDRESS` (KubeRay v1.2.2 passes it through to Ray as it is).
#[test]
fn the_pre_1_3_form_pointed_at_another_redis_is_data_loss_too() {
    let crd = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kuberay/ray.io_rayclusters.v1.2.2.yaml"
    );
    let env = Env::with_crd(crd, &[]);
    env.write_stack(
        &stack_toml(&worker("cpu", 1), "", "")
            .replace("kuberay = \"1.3.0\"", "kuberay = \"1.2.2\""),
    );
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAME}});
    let (status, body) = env.fake.request(
        "POST",
        "/api/v1/namespaces?fieldManager=kubectl",
        "application/json",
        &ns.to_string(),
    );
    assert_eq!(status, 201, "{body}");
    let rc = json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": NAME, "namespace": NAME, "annotations": {"ray.io/ft-enabled": "true"}},
        "spec": {
            "rayVersion": "2.45.0",
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                {"name": "ray-head", "image": "rayproject/ray:2.45.0",
                 "env": [{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}]}]}}},
        }
    });
    let (status, body) = env.fake.request(
        "POST",
        &format!("/apis/ray.io/v1/namespaces/{NAME}/rayclusters?fieldManager=kubectl"),
        "application/json",
        &rc.to_string(),
    );
    assert_eq!(status, 201, "{body}");

    let json = env.plan(&["--format", "json"]);
    assert_eq!(json.code, 2, "{json}");
    let plan: Value = serde_json::from_str(&json.stdout).unwrap();
    let rc = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "RayCluster")
        .unwrap();
    assert_eq!(rc["action"], "update");
    assert_eq!(rc["data_loss_reason"], REASON);
    let refused = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains(REASON), "{refused}");
}
