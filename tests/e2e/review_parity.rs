//! Review without a cluster flags what the cluster will do: the same pairs of stack revisions go
//! through `raystack diff BASE HEAD`, `raystack plan --offline` (against the state the base's
//! apply recorded) and the online plan against fake-apiserver, and every object gets the same
//! action and DATA LOSS flag from all three.

use std::collections::BTreeMap;

use crate::support::*;
use serde_json::{Value, json};

/// address → (action, data_loss) of every change that is not a no-op.
fn changes(plan_json: &str) -> BTreeMap<String, (String, bool)> {
    let plan: Value = serde_json::from_str(plan_json)
        .unwrap_or_else(|e| panic!("not a JSON plan ({e}):\n{plan_json}"));
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                (
                    c["action"].as_str().unwrap().to_string(),
                    c["data_loss"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

fn with_redis(extra: &str) -> String {
    stack_toml(&worker("cpu", 1), extra, "")
}

const PVC: &str = "PersistentVolumeClaim/e2e/e2e-redis-data";

/// A case: what changes, the base and head stack files, and each expected (address, action,
/// data loss).
type Case<'a> = (&'a str, String, String, Vec<(&'a str, &'a str, bool)>);

#[test]
fn diff_offline_and_online_plans_agree_on_action_and_data_loss() {
    let fast = "storage_class = \"fast\"";
    let cases: Vec<Case> = vec![
        (
            "a named class back to the cluster default",
            with_redis(fast),
            with_redis(""),
            vec![(PVC, "replace", true)],
        ),
        (
            "the cluster default to a named class",
            with_redis(""),
            with_redis(fast),
            vec![(PVC, "replace", true)],
        ),
        (
            "shrinking the volume",
            with_redis(""),
            with_redis("").replace("storage = \"1Gi\"", "storage = \"512Mi\""),
            vec![(PVC, "replace", true)],
        ),
        (
            "growing the volume (a class that allows expansion)",
            with_redis(fast),
            with_redis(fast).replace("storage = \"1Gi\"", "storage = \"2Gi\""),
            vec![(PVC, "update", false)],
        ),
        (
            "a new Redis image",
            with_redis(""),
            with_redis("").replace("redis:7.4.0", "redis:7.4.1"),
            vec![("StatefulSet/e2e/e2e-redis", "update", false)],
        ),
        (
            "more workers",
            with_redis(""),
            stack_toml(&worker("cpu", 3), "", ""),
            vec![("RayCluster/e2e/e2e", "update", false)],
        ),
    ];
    let mut failures = Vec::new();
    for (name, base, head, want) in cases {
        let env = Env::new(&[]);
        let sc = json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "fast"}, "provisioner": "rancher.io/local-path",
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": true,
        });
        let (code, body) = env.fake.request(
            "POST",
            "/apis/storage.k8s.io/v1/storageclasses",
            "application/json",
            &sc.to_string(),
        );
        assert_eq!(code, 201, "{body}");
        let dir = env.dir.path();
        std::fs::write(dir.join("base.toml"), &base).unwrap();
        std::fs::write(dir.join("head.toml"), &head).unwrap();
        env.write_stack(&base);
        env.apply();
        env.write_stack(&head);

        let want: BTreeMap<String, (String, bool)> = want
            .iter()
            .map(|(a, action, loss)| (a.to_string(), (action.to_string(), *loss)))
            .collect();
        let diff = env.run(&["diff", "base.toml", "head.toml", "--format", "json"]);
        let offline = env.run(&["plan", env.stack_arg(), "--offline", "--format", "json"]);
        let online = env.run(&["plan", env.stack_arg(), "--format", "json"]);
        for (how, run) in [
            ("diff", &diff),
            ("plan --offline", &offline),
            ("plan", &online),
        ] {
            assert_eq!(run.code, 0, "{name}: {how}:\n{run}");
            let got = changes(&run.stdout);
            if got != want {
                failures.push(format!("{name}: {how}: got {got:?}, want {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
