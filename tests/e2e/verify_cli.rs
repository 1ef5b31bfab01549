//! `raystack verify` without Ray: `--dry-run` (against fake-apiserver, whose service proxy
//! reaches a stub dashboard that only reports its version) and the refusals — no terminal
//! without `--yes`, pending changes, GCS fault tolerance off, a RayCluster that is gone, a head or
//! Redis pod that is not ready, a dashboard the API server cannot reach — each of which must leave every
//! pod in place.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::support::{self, CRD_1_7, Env, NAME};
use serde_json::{Value, json};

/// A stand-in for the dashboard that answers every request with Ray's version: enough for the
/// preflight, never enough for the drill.
fn stub_dashboard() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = r#"{"version": "4", "ray_version": "2.60.0"}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn env_with_dashboard() -> Env {
    let proxy = format!(
        "{NAME}/{NAME}-head-svc:8265=http://127.0.0.1:{}",
        stub_dashboard()
    );
    let env = Env::new(&["--service-proxy", &proxy]);
    env.apply();
    env
}

/// The pods (name, uid) in the stack's namespace: a refusal must not change them.
fn pods(env: &Env) -> Vec<(String, String)> {
    let list = env
        .fake
        .get(&format!("/api/v1/namespaces/{NAME}/pods"))
        .expect("pods list");
    let mut pods: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["metadata"]["uid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pods.sort();
    pods
}

/// Output with the head pod's random suffix and UIDs replaced.
fn normalized(env: &Env, text: &str) -> String {
    let mut out = text.to_string();
    for (name, uid) in pods(env) {
        if let Some(suffix) = name.strip_prefix(&format!("{NAME}-head-")) {
            out = out.replace(&name, &format!("{NAME}-head-[pod]"));
            let _ = suffix;
        }
        out = out.replace(&uid, "[uid]");
    }
    // The probe's random run id.
    let mut s = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("raystack-verify-") {
        s.push_str(&rest[..i + 16]);
        let after = &rest[i + 16..];
        if after.len() >= 8 && after[..8].chars().all(|c| c.is_ascii_hexdigit()) {
            s.push_str("[run]");
            rest = &after[8..];
        } else {
            rest = after;
        }
    }
    s.push_str(rest);
    s
}

#[test]
fn dry_run_prints_the_drill_and_changes_nothing() {
    let env = env_with_dashboard();
    let before = pods(&env);
    let r = env.run(&["verify", env.stack_arg(), "--dry-run"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(pods(&env), before, "a dry run deletes nothing");
    insta::assert_snapshot!("verify_dry_run", normalized(&env, &r.stdout));

    let r = env.run(&["verify", env.stack_arg(), "--dry-run", "--format", "json"]);
    assert_eq!(r.code, 0, "{r}");
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["blocked"], false);
    assert_eq!((&v["backend"], &v["notes"]), (&json!("redis"), &json!([])));
    let password = env.password();
    for out in [&r.stdout, &r.stderr] {
        assert!(!out.contains(&password), "the Redis password leaked:\n{r}");
    }
}

#[test]
fn refuses_without_a_terminal_unless_yes() {
    let env = env_with_dashboard();
    let before = pods(&env);
    let r = env.run(&["verify", env.stack_arg()]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(r.stdout, "");
    insta::assert_snapshot!("verify_refuses_without_terminal", r.stderr);
    assert_eq!(pods(&env), before);
}

#[test]
fn refuses_when_the_stack_has_pending_changes() {
    let env = env_with_dashboard();
    let before = pods(&env);
    let toml = support::stack_toml(&support::worker("cpu", 2), "", "");
    env.write_stack(&toml);
    let r = env.run(&["verify", env.stack_arg(), "--yes", "--format", "json"]);
    assert_eq!(r.code, 1, "{r}");
    let v: Value = serde_json::from_str(&r.stdout).expect("a JSON report");
    assert_eq!(v["result"], "error");
    assert_eq!(v["steps"], json!([]), "nothing ran");
    let pending: Vec<&Value> = v["preflight"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "error")
        .collect();
    insta::assert_json_snapshot!("verify_refuses_pending_changes", pending);
    assert_eq!(pods(&env), before);
}

#[test]
fn refuses_when_gcs_fault_tolerance_is_off() {
    let env = env_with_dashboard();
    let before = pods(&env);
    // Someone turned GCS fault tolerance off behind raystack's back.
    let code = env.fake.merge_patch(
        &env.ns_path("rayclusters", NAME),
        &json!({"spec": {"gcsFaultToleranceOptions": null}}),
    );
    assert_eq!(code, 200);
    let r = env.run(&["verify", env.stack_arg(), "--yes", "--format", "json"]);
    assert_eq!(r.code, 1, "{r}");
    let v: Value = serde_json::from_str(&r.stdout).expect("a JSON report");
    let ft: Vec<&Value> = v["preflight"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "GCS fault tolerance")
        .collect();
    insta::assert_json_snapshot!("verify_refuses_gcs_ft_off", ft);
    assert_eq!(pods(&env), before);
}

/// The claim KubeRay 1.7 creates for an embedded stack's GCS store (`<cluster>-gcs-pvc`,
/// labelled `ray.io/cluster`): the fake's operator creates it too, with the RayCluster.
pub(crate) fn assert_gcs_claim(env: &Env) {
    let claim = env
        .fake
        .get(&env.ns_path("persistentvolumeclaims", &format!("{NAME}-gcs-pvc")))
        .expect("KubeRay created the GCS claim");
    assert_eq!(
        claim["metadata"]["labels"]["ray.io/cluster"], NAME,
        "{claim}"
    );
}

fn embedded_env_with_dashboard() -> Env {
    let proxy = format!(
        "{NAME}/{NAME}-head-svc:8265=http://127.0.0.1:{}",
        stub_dashboard()
    );
    let env = Env::with_crd(CRD_1_7, &["--service-proxy", &proxy]);
    env.write_stack(&crate::kuberay::embedded_stack(""));
    env.apply();
    env
}

/// An embedded stack has no Redis: the dry run disrupts the head only and says why; preflight
/// checks the embedded storage settings and the store's claim, which KubeRay created with the
/// RayCluster; `--disrupt redis` is a usage error before anything is read or touched.
#[test]
fn embedded_dry_run_disrupts_the_head_only_and_disrupt_redis_is_refused() {
    let env = embedded_env_with_dashboard();
    let before = pods(&env);

    let r = env.run(&["verify", env.stack_arg(), "--dry-run", "--format", "json"]);
    assert_eq!(r.code, 0, "{r}");
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(
        (&v["disrupt"], &v["blocked"]),
        (&json!("head"), &json!(false))
    );
    // The JSON says what the text says: the backend, and why only the head is disrupted.
    assert_eq!(v["backend"], "embedded");
    let notes = v["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .starts_with("backend = \"embedded\""),
        "{notes:?}"
    );
    let durability: Vec<&Value> = v["preflight"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "durability")
        .collect();
    insta::assert_json_snapshot!("verify_embedded_claim", durability);

    assert_gcs_claim(&env);
    let r = env.run(&["verify", env.stack_arg(), "--dry-run"]);
    assert_eq!(r.code, 0, "{r}");
    insta::assert_snapshot!("verify_dry_run_embedded", normalized(&env, &r.stdout));

    for mode in ["--yes", "--dry-run"] {
        let r = env.run(&["verify", env.stack_arg(), mode, "--disrupt", "redis"]);
        assert_eq!(r.code, 1, "{r}");
        assert_eq!(r.stdout, "", "{r}");
        insta::assert_snapshot!("verify_embedded_refuses_disrupt_redis", r.stderr);
    }
    // `--disrupt head` is what the default means here.
    let r = env.run(&["verify", env.stack_arg(), "--dry-run", "--disrupt", "head"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(pods(&env), before, "nothing was deleted");
}

/// A ready pod that only carries the head's labels (a debugging copy, no owner) is never the one
/// the drill disrupts: it targets the pod the RayCluster controls.
#[test]
fn a_decoy_with_the_heads_labels_is_never_chosen() {
    let env = env_with_dashboard();
    let decoy = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{NAME}-head-debug"),
                     "labels": {"ray.io/cluster": NAME, "ray.io/node-type": "head"}},
        "spec": {"containers": [{"name": "debug", "image": "busybox"}]}});
    let (code, body) = env.fake.request(
        "POST",
        &format!("/api/v1/namespaces/{NAME}/pods"),
        "application/json",
        &decoy.to_string(),
    );
    assert_eq!(code, 201, "{body}");
    let status = json!({"status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}]}});
    assert_eq!(
        env.fake.merge_patch(
            &format!("/api/v1/namespaces/{NAME}/pods/{NAME}-head-debug/status"),
            &status
        ),
        200
    );
    let decoy_path = format!("/api/v1/namespaces/{NAME}/pods/{NAME}-head-debug");
    assert!(raystack::cluster::live::pod_ready(
        &env.fake.get(&decoy_path).unwrap()
    ));
    let r = env.run(&["verify", env.stack_arg(), "--dry-run"]);
    assert_eq!(r.code, 0, "{r}");
    let disrupt = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("2. disrupt:"))
        .expect("the disrupt step");
    assert!(!disrupt.contains("head-debug"), "{disrupt}");
    assert!(
        disrupt.contains(&format!("delete pod `{NAME}/{NAME}-head-")),
        "{disrupt}"
    );
    assert!(env.fake.get(&decoy_path).is_some());
}

/// `verify --yes`'s JSON report of a refusal: exit 1, nothing run.
fn refused(env: &Env) -> Value {
    let r = env.run(&["verify", env.stack_arg(), "--yes", "--format", "json"]);
    assert_eq!(r.code, 1, "{r}");
    let v: Value = serde_json::from_str(&r.stdout).expect("a JSON report");
    assert_eq!(v["steps"], json!([]), "nothing ran");
    v
}

/// The preflight findings of `check`, from a JSON report.
fn findings<'a>(v: &'a Value, check: &str) -> Vec<&'a Value> {
    v["preflight"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

#[test]
fn refuses_when_the_dashboard_does_not_answer_through_the_api_server() {
    // No service proxy route for the head Service's dashboard port: the API server cannot
    // reach it, as when the head Service has no ready endpoint.
    let env = Env::new(&[]);
    env.apply();
    let before = pods(&env);
    let v = refused(&env);
    insta::assert_json_snapshot!(
        "verify_refuses_dashboard_unreachable",
        findings(&v, "dashboard through the API server")
    );
    assert_eq!(pods(&env), before);
}

/// Marks the pods matching `selector` not ready (their `Ready` condition false), as the kubelet
/// does when a readiness probe fails.
fn mark_unready(env: &Env, selector: &str) {
    let list = env
        .fake
        .get(&format!(
            "/api/v1/namespaces/{NAME}/pods?labelSelector={selector}"
        ))
        .expect("pods list");
    let items = list["items"].as_array().unwrap();
    assert!(!items.is_empty(), "no pod matches {selector}");
    for pod in items {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let code = env.fake.merge_patch(
            &format!("/api/v1/namespaces/{NAME}/pods/{name}/status"),
            &json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "ReadinessProbeFailed"}
            ]}}),
        );
        assert_eq!(code, 200, "marking {name} not ready");
    }
}

#[test]
fn refuses_when_the_head_pod_is_not_ready() {
    let env = env_with_dashboard();
    mark_unready(&env, "ray.io/node-type%3Dhead");
    let before = pods(&env);
    let v = refused(&env);
    insta::assert_json_snapshot!("verify_refuses_head_not_ready", findings(&v, "head pod"));
    assert_eq!(pods(&env), before);
}

#[test]
fn refuses_when_the_redis_pod_is_not_ready() {
    let env = env_with_dashboard();
    mark_unready(&env, "app.kubernetes.io/name%3Dredis");
    let before = pods(&env);
    let v = refused(&env);
    insta::assert_json_snapshot!(
        "verify_refuses_redis_not_ready",
        findings(&v, "Redis ready")
    );
    assert_eq!(pods(&env), before);
}

#[test]
fn refuses_when_the_raycluster_is_being_deleted_or_gone() {
    let env = env_with_dashboard();
    let rc = env.ns_path("rayclusters", NAME);
    // A finalizer of the test's own holds the RayCluster in deletion (as KubeRay's Redis
    // cleanup does for a while), its head still reporting ready.
    let code = env
        .fake
        .merge_patch(&rc, &json!({"metadata": {"finalizers": ["e2e.test/hold"]}}));
    assert_eq!(code, 200);
    let (code, _) = env.fake.request("DELETE", &rc, "application/json", "");
    assert_eq!(code, 200);
    let v = refused(&env);
    insta::assert_json_snapshot!(
        "verify_refuses_raycluster_being_deleted",
        findings(&v, "RayCluster ready")
    );

    // Let it go, and wait until the server (and KubeRay's cleanup) has removed it.
    let code = env
        .fake
        .merge_patch(&rc, &json!({"metadata": {"finalizers": null}}));
    assert_eq!(code, 200);
    let mut polls = 0;
    while env.fake.get(&rc).is_some() {
        polls += 1;
        assert!(polls < 6000, "the RayCluster was never removed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let v = refused(&env);
    insta::assert_json_snapshot!(
        "verify_refuses_raycluster_gone",
        findings(&v, "RayCluster ready")
    );
}
