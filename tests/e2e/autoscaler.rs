//! Never fight the Ray autoscaler: against fake-apiserver's simulated autoscaler
//! (`--simulate-autoscaler`, which scales autoscaled groups to `maxReplicas` with its own field
//! manager, as the Ray autoscaler patches them), a plan after scaling has no changes, and an
//! unrelated change (the head's memory) is planned and applied with the group's size kept.

use serde_json::Value;

use crate::support::*;

fn autoscaled(head_memory: &str) -> String {
    stack_toml(
        "[[ray.workers]]\ngroup = \"cpu\"\nreplicas = 1\nmin_replicas = 1\nmax_replicas = 5\ncpu = \"1\"\nmemory = \"1Gi\"\n",
        "",
        "",
    )
    .replace("memory = \"2Gi\"", &format!("memory = \"{head_memory}\""))
}

fn replicas(env: &Env) -> Value {
    env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap()["spec"]["workerGroupSpecs"][0]["replicas"].clone()
}

#[test]
fn an_unrelated_apply_keeps_the_size_the_autoscaler_chose() {
    let env = Env::new(&["--simulate-autoscaler"]);
    env.write_stack(&autoscaled("2Gi"));
    env.apply();
    assert_eq!(
        replicas(&env),
        5,
        "the simulated autoscaler scaled the group"
    );
    env.assert_no_changes();

    env.write_stack(&autoscaled("3Gi"));
    let r = env.run(&["plan", env.stack_arg(), "--out", "p.json"]);
    assert_eq!(r.code, 0, "{r}");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(env.dir.path().join("p.json")).unwrap())
            .unwrap();
    let rc = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "RayCluster")
        .unwrap();
    assert_eq!(rc["action"], "update");
    // What apply sends, and what the plan says the cluster will hold: the autoscaler's size.
    assert_eq!(rc["manifest"]["spec"]["workerGroupSpecs"][0]["replicas"], 5);
    assert_eq!(rc["after"]["spec"]["workerGroupSpecs"][0]["replicas"], 5);
    assert_eq!(rc["before"]["spec"]["workerGroupSpecs"][0]["replicas"], 5);
    let r = env.run(&["apply", "p.json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(replicas(&env), 5);
    let live = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(
        live["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "3Gi"
    );
    env.assert_no_changes();
}

#[test]
fn bounds_that_exclude_the_live_size_are_planned_with_what_kuberay_does() {
    let env = Env::new(&["--simulate-autoscaler"]);
    env.write_stack(&autoscaled("2Gi"));
    env.apply();
    assert_eq!(replicas(&env), 5);
    env.write_stack(&autoscaled("2Gi").replace("max_replicas = 5", "max_replicas = 3"));
    let r = env.plan(&[]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stdout.contains("note: worker group `cpu` runs 5 worker(s), outside its new bounds [1, 3]: KubeRay scales it down, deleting workers, to 3"),
        "{r}"
    );
}
