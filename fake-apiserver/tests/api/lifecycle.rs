//! The two things a drill needs from a cluster that an in-memory API server lacks: the
//! services/proxy subresource (forwarded to a local backend, with a real API server's 404 and
//! 503 answers) and pod delete hooks (a command per deleted pod; the controller recreates the
//! pod, ready only once the command has exited 0).

use crate::common::{CRD_V130, Fake, crds};
use fake_apiserver::{Options, PodHook, ProxyRoute};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

const RC: &str = "/apis/ray.io/v1/namespaces/default/rayclusters";
const PODS: &str = "/api/v1/namespaces/default/pods";
const WAIT: Duration = Duration::from_secs(20);

/// A backend that answers every request with what it received, as JSON.
fn echo_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                let mut len = 0usize;
                let mut content_type = String::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap_or((&h, ""));
                    match k.to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap_or(0),
                        "content-type" => content_type = v.trim().to_string(),
                        _ => {}
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let mut parts = request_line.split_whitespace();
                let answer = json!({
                    "method": parts.next().unwrap_or_default(),
                    "path": parts.next().unwrap_or_default(),
                    "content_type": content_type,
                    "body": String::from_utf8_lossy(&body),
                })
                .to_string();
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    port
}

fn raycluster(name: &str) -> Value {
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name},
        "spec": {"rayVersion": "2.52.0",
            "gcsFaultToleranceOptions": {"redisAddress": "redis:6379"},
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.52.0",
                "ports": [{"containerPort": 6379, "name": "gcs-server"}, {"containerPort": 8265, "name": "dashboard"}]}]}}},
            "workerGroupSpecs": []}})
}

fn head_ready(rc: &Value) -> bool {
    rc["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "HeadPodReady" && c["status"] == "True")
}

/// The pods matching `selector`, as (name, uid).
fn pods(f: &Fake, selector: &str) -> Vec<(String, String)> {
    f.get(&format!("{PODS}?labelSelector={selector}")).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["metadata"]["uid"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn service_proxy_forwards_to_the_configured_backend_while_the_service_has_a_ready_pod() {
    let port = echo_backend();
    let route: ProxyRoute = format!("default/rc-head-svc:8265=http://127.0.0.1:{port}")
        .parse()
        .unwrap();
    let f = Fake::with(Options {
        service_proxy: vec![route],
        readiness_delay: Duration::from_millis(200),
        ..crds(&[CRD_V130])
    });
    let proxy = "/api/v1/namespaces/default/services/rc-head-svc:8265/proxy";

    // No Service yet: 404 like a real API server.
    let r = f.get(&format!("{proxy}/api/version"));
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["reason"], "NotFound");

    assert_eq!(
        f.apply(&format!("{RC}/rc"), "raystack", &raycluster("rc"), "")
            .status,
        201
    );
    f.wait_for(&format!("{RC}/rc"), WAIT, head_ready);

    let r = f.get(&format!("{proxy}/api/jobs/?limit=1"));
    assert_eq!(r.status, 201, "the backend's own status: {}", r.text);
    assert_eq!(
        r.body,
        json!({"method": "GET", "path": "/api/jobs/?limit=1", "content_type": "", "body": ""})
    );
    let r = f.post(
        "/api/v1/namespaces/default/services/rc-head-svc:dashboard/proxy/api/jobs/",
        &json!({"entrypoint": "echo hi"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["method"], "POST");
    assert_eq!(r.body["content_type"], "application/json");
    assert_eq!(r.body["body"], r#"{"entrypoint":"echo hi"}"#);

    // A port with no route configured.
    let r = f.get("/api/v1/namespaces/default/services/rc-head-svc:6379/proxy/");
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("--service-proxy"),
        "{}",
        r.text
    );

    // Without a ready pod behind the Service, no endpoint: 503 until the controller replaces it.
    let (head, _) = pods(&f, "ray.io/node-type=head").remove(0);
    assert_eq!(f.delete(&format!("{PODS}/{head}")).status, 200);
    let r = f.get(&format!("{proxy}/api/version"));
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "no endpoints available for service \"rc-head-svc\""
    );
    f.wait_for(&format!("{RC}/rc"), WAIT, head_ready);
    assert_eq!(f.get(&format!("{proxy}/api/version")).status, 201);
}

#[test]
fn a_deleted_pod_runs_its_hook_and_comes_back_ready_only_after_the_hook_exits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // The hook records what was deleted, then plays a slow container start: it waits (bounded)
    // until the test lets it finish.
    let hook: PodHook = format!(
        "app=redis:echo \"$POD_NAMESPACE/$POD_NAME $POD_UID\" >> {d}/deleted; \
         for i in $(seq 400); do [ -e {d}/go ] && exit 0; sleep 0.05; done; exit 1"
    )
    .parse()
    .unwrap();
    let head_hook: PodHook = format!("ray.io/node-type=head:echo \"$POD_NAME\" >> {d}/heads")
        .parse()
        .unwrap();
    let f = Fake::with(Options {
        on_pod_delete: vec![hook, head_hook],
        readiness_delay: Duration::from_millis(50),
        ..crds(&[CRD_V130])
    });
    let sts_path = "/apis/apps/v1/namespaces/default/statefulsets/redis";
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "redis"},
        "spec": {"replicas": 1, "serviceName": "redis", "selector": {"matchLabels": {"app": "redis"}},
            "template": {"metadata": {"labels": {"app": "redis"}},
                "spec": {"containers": [{"name": "redis", "image": "redis:7.4.0"}]}}}});
    assert_eq!(f.apply(sts_path, "raystack", &sts, "").status, 201);
    let ready = |s: &Value| s["status"]["readyReplicas"] == 1;
    f.wait_for(sts_path, WAIT, ready);
    let before = pods(&f, "app=redis");
    assert_eq!(before.len(), 1);
    let (name, uid) = before[0].clone();

    assert_eq!(f.delete(&format!("{PODS}/{name}")).status, 200);
    // The controller noticed at once; the hook ran with the pod's identity.
    assert_eq!(f.get(sts_path).body["status"]["readyReplicas"], 0);
    assert_eq!(
        hook_output(&dir.path().join("deleted")),
        Some(format!("default/{name} {uid}\n"))
    );
    // Still starting while the hook runs: no ready replacement.
    assert!(pods(&f, "app=redis").is_empty());
    assert_eq!(f.get(sts_path).body["status"]["readyReplicas"], 0);

    std::fs::write(dir.path().join("go"), "").unwrap();
    f.wait_for(sts_path, WAIT, ready);
    let after = pods(&f, "app=redis");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, name, "a StatefulSet pod keeps its name");
    assert_ne!(after[0].1, uid, "and is a new pod");

    // The KubeRay operator does the same for the head pod.
    assert_eq!(
        f.apply(&format!("{RC}/rc"), "raystack", &raycluster("rc"), "")
            .status,
        201
    );
    f.wait_for(&format!("{RC}/rc"), WAIT, head_ready);
    let (head, head_uid) = pods(&f, "ray.io/node-type=head").remove(0);
    assert_eq!(f.delete(&format!("{PODS}/{head}")).status, 200);
    assert!(!head_ready(&f.get(&format!("{RC}/rc")).body));
    let rc = f.wait_for(&format!("{RC}/rc"), WAIT, head_ready);
    let (new_head, new_uid) = pods(&f, "ray.io/node-type=head").remove(0);
    assert_ne!(new_uid, head_uid);
    assert_eq!(rc["status"]["head"]["podName"], new_head.as_str());
    assert_eq!(
        hook_output(&dir.path().join("heads")),
        Some(format!("{head}\n"))
    );
}

/// What a delete hook wrote to `path`, once it ends in a newline (up to 5 s): the hook's shell
/// creates the file before it writes the line, so a read as soon as the file exists can see
/// it empty.
fn hook_output(path: &std::path::Path) -> Option<String> {
    let written = || {
        std::fs::read_to_string(path)
            .ok()
            .filter(|s| s.ends_with('\n'))
    };
    for _ in 0..200 {
        if let Some(text) = written() {
            return Some(text);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    written()
}
