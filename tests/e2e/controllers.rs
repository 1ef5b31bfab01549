//! What the plan knows about the cluster's controllers, told by the real `raystack` binary
//! against `fake-apiserver` (whose dry-run is a real server-side apply): a field another manager
//! set inside an atomic list raystack applies is a change the plan names, with who set it, and
//! apply removes it; a field raystack does not apply is left alone and is no change; a Redis
//! rollout (a new image, a new `redis.conf`) says the Ray head restarts, in text, JSON and
//! Markdown; an embedded stack's `[durability] storage` change says KubeRay will not resize
//! the GCS volume and what to do, and a `protect_volume` change whether the volume now goes.

use crate::kuberay::{change_lines, embedded_stack};
use crate::support::{CRD_1_7, Env, NAME, stack_toml, worker};
use serde_json::{Value, json};

fn rc_address() -> String {
    format!("RayCluster/{NAME}/{NAME}")
}

/// A JSON patch of the RayCluster by `manager`, as `kubectl patch --type=json` sends it.
fn json_patch(env: &Env, manager: &str, ops: Value) {
    let path = format!(
        "{}?fieldManager={manager}",
        env.ns_path("rayclusters", NAME)
    );
    let (status, body) = env.fake.request(
        "PATCH",
        &path,
        "application/json-patch+json",
        &ops.to_string(),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_field_set_inside_an_atomic_list_is_a_change_naming_who_set_it() {
    let env = Env::new(&[]);
    env.apply();
    // workerGroupSpecs is an atomic list: raystack's apply replaces it whole, so a toleration
    // and a start parameter added to a group by someone else go with the next apply.
    json_patch(
        &env,
        "kubectl-patch",
        json!([
            {"op": "add", "path": "/spec/workerGroupSpecs/0/template/spec/tolerations",
             "value": [{"key": "dedicated", "operator": "Equal", "value": "ray", "effect": "NoSchedule"}]},
            {"op": "add", "path": "/spec/workerGroupSpecs/0/rayStartParams/num-gpus", "value": "0"}
        ]),
    );
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!(
        "hidden_atomic_list_change",
        change_lines(&plan.stdout, &rc_address())
    );
    let json: Value = serde_json::from_str(&env.plan(&["--format", "json"]).stdout).unwrap();
    let rc = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == rc_address())
        .unwrap();
    assert_eq!(rc["action"], "update");
    assert_eq!(
        rc["before"]["spec"]["workerGroupSpecs"][0]["template"]["spec"]["tolerations"][0]["key"],
        "dedicated"
    );
    assert_eq!(
        rc["after"]["spec"]["workerGroupSpecs"][0]["template"]["spec"].get("tolerations"),
        None
    );
    env.apply();
    let live = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    let group = &live["spec"]["workerGroupSpecs"][0];
    assert_eq!(group["template"]["spec"].get("tolerations"), None);
    assert_eq!(group["rayStartParams"].get("num-gpus"), None);
    env.assert_no_changes();
}

#[test]
fn a_field_raystack_does_not_apply_is_kept_and_no_change() {
    let env = Env::new(&[]);
    env.apply();
    // The head group is not an atomic list: a field raystack never sends stays with its
    // manager, and the dry-run keeps it.
    json_patch(
        &env,
        "kubectl-patch",
        json!([{"op": "add", "path": "/spec/headGroupSpec/template/spec/priorityClassName",
                "value": "high"}]),
    );
    env.assert_no_changes();
}

#[test]
fn a_redis_image_change_says_the_head_restarts_in_text_json_and_markdown() {
    let env = Env::new(&[]);
    env.apply();
    env.write_stack(&stack_toml(&worker("cpu", 1), "", "").replace("redis:7.4.0", "redis:7.4.1"));
    let address = format!("StatefulSet/{NAME}/{NAME}-redis");
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!("redis_image_rollout", change_lines(&plan.stdout, &address));
    let json: Value = serde_json::from_str(&env.plan(&["--format", "json"]).stdout).unwrap();
    let sts = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == address)
        .unwrap();
    insta::assert_snapshot!("redis_image_rollout_json", sts["rollout"].as_str().unwrap());
    let md = env.plan(&["--format", "markdown"]).stdout;
    let line = md
        .lines()
        .find(|l| l.contains("**Rollout**"))
        .expect("the Markdown plan has a rollout line");
    insta::assert_snapshot!("redis_image_rollout_markdown", line);
    // A new redis.conf reaches the pod through its hash annotation: the same restart.
    env.write_stack(
        &stack_toml(&worker("cpu", 1), "", "")
            .replace("max_data_loss = \"2s\"", "max_data_loss = \"0s\""),
    );
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!("redis_conf_rollout", change_lines(&plan.stdout, &address));
}

#[test]
fn an_embedded_storage_change_says_kuberay_will_not_resize_the_volume() {
    let env = Env::with_crd(CRD_1_7, &[]);
    env.write_stack(&embedded_stack(""));
    env.apply();
    env.write_stack(&embedded_stack("").replace("storage = \"2Gi\"", "storage = \"4Gi\""));
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!(
        "embedded_storage_change",
        change_lines(&plan.stdout, &rc_address())
    );
    // protect_volume off: the policy change says the volume now goes with the RayCluster.
    env.write_stack(&embedded_stack("protect_volume = false"));
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 2, "{plan}");
    insta::assert_snapshot!(
        "embedded_deletion_policy_change",
        change_lines(&plan.stdout, &rc_address())
    );
}
