//! One state per stack: a stack whose `[state]` names one backend while the other holds a state
//! of the same stack (a copy of the stack file that lost its `[state]` section, a state file
//! pulled next to a Secret) is a fork. `plan` warns, `apply` and `destroy` refuse (exit 1) before
//! anything is written, naming the other state and the fix. The real binary against
//! fake-apiserver.

use serde_json::Value;

use crate::support::{Env, NAME, stack_toml, worker};

fn kubernetes_stack() -> String {
    format!(
        "{}\n[state]\nbackend = \"kubernetes\"\n",
        stack_toml(&worker("cpu", 1), "", "")
    )
}

fn local_stack() -> String {
    stack_toml(&worker("cpu", 1), "", "")
}

fn raycluster_version(env: &Env) -> Value {
    env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap()["metadata"]["resourceVersion"].clone()
}

/// `text` with the temp directory, the fake's URL and the state's lineage scrubbed.
fn scrubbed(env: &Env, text: &str, lineage: &str) -> String {
    env.scrub(text).replace(lineage, "[LINEAGE]")
}

fn secret_lineage(env: &Env) -> String {
    let pulled = env.run(&[
        "state",
        "pull",
        env.stack_arg(),
        "--kubeconfig",
        env.fake.kubeconfig.to_str().unwrap(),
    ]);
    assert_eq!(pulled.code, 0, "{pulled}");
    let state: Value = serde_json::from_str(&pulled.stdout).unwrap();
    state["lineage"].as_str().unwrap().to_string()
}

#[test]
fn a_local_state_next_to_the_stacks_secret_blocks_plan_and_is_refused_by_apply() {
    let env = Env::new(&[]);
    env.write_stack(&kubernetes_stack());
    env.apply();
    let lineage = secret_lineage(&env);
    let version = raycluster_version(&env);

    // A copy of the stack that lost its `[state]` section: the local backend.
    env.write_stack(&local_stack());
    // The objects match the stack, but apply would refuse: the plan is blocked, exit 1.
    let plan = env.plan(&[]);
    assert_eq!(plan.code, 1, "{plan}");
    insta::assert_snapshot!(
        "local_fork_plan_stderr",
        scrubbed(&env, &plan.stderr, &lineage)
    );
    let refused = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(refused.code, 1, "{refused}");
    insta::assert_snapshot!(
        "local_fork_apply_stderr",
        scrubbed(&env, &refused.stderr, &lineage)
    );
    assert!(
        !env.state_path().exists(),
        "a refused apply started a second state"
    );
    assert_eq!(raycluster_version(&env), version, "a refused apply wrote");
    let destroy = env.run(&["destroy", env.stack_arg(), "--auto-approve"]);
    assert_eq!(destroy.code, 1, "{destroy}");
    assert_eq!(raycluster_version(&env), version, "a refused destroy wrote");

    // With its `[state]` back, the stack plans and applies as it is (no lock left behind).
    env.write_stack(&kubernetes_stack());
    env.assert_no_changes();
    env.apply();
}

#[test]
fn a_state_file_next_to_a_kubernetes_state_blocks_plan_and_is_refused_by_apply() {
    let env = Env::new(&[]);
    env.write_stack(&kubernetes_stack());
    env.apply();
    let pulled = env.run(&[
        "state",
        "pull",
        env.stack_arg(),
        "--kubeconfig",
        env.fake.kubeconfig.to_str().unwrap(),
    ]);
    assert_eq!(pulled.code, 0, "{pulled}");
    let lineage = secret_lineage(&env);
    let version = raycluster_version(&env);
    // The state pulled into the local file (a fork waiting for a stack without `[state]`).
    std::fs::create_dir_all(env.state_path().parent().unwrap()).unwrap();
    std::fs::write(env.state_path(), &pulled.stdout).unwrap();

    let plan = env.plan(&[]);
    assert_eq!(plan.code, 1, "{plan}");
    insta::assert_snapshot!(
        "kubernetes_fork_plan_stderr",
        scrubbed(&env, &plan.stderr, &lineage)
    );
    let refused = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(refused.code, 1, "{refused}");
    insta::assert_snapshot!(
        "kubernetes_fork_apply_stderr",
        scrubbed(&env, &refused.stderr, &lineage)
    );
    assert_eq!(raycluster_version(&env), version, "a refused apply wrote");

    std::fs::remove_file(env.state_path()).unwrap();
    env.assert_no_changes();
    env.apply();
}
