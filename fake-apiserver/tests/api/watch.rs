//! WATCH (`?watch=true`): the events a client sees as objects are created, changed and deleted,
//! read off the wire as kube-apiserver streams them (chunked JSON lines), and the real kubectl's
//! `get --watch`.

use crate::common::Fake;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const CM: &str = "/api/v1/namespaces/default/configmaps";

/// A watch request on its own connection: its status line and headers are read, so the watch
/// has begun; `events` reads the rest once the server ends it.
struct Stream(BufReader<TcpStream>);

impl Stream {
    fn open(f: &Fake, path: &str) -> (u16, String, Stream) {
        let mut tcp = TcpStream::connect(f.server.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: fake\r\nAuthorization: Bearer fake-token\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut r = BufReader::new(tcp);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let status = head[9..12].parse().unwrap();
        (status, head, Stream(r))
    }

    /// The events, one per line, after the watch ends (de-chunked).
    fn events(mut self) -> Vec<(String, Value)> {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            self.0.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            self.0.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        String::from_utf8(body)
            .unwrap()
            .lines()
            .map(|l| {
                let e: Value = serde_json::from_str(l).unwrap();
                (e["type"].as_str().unwrap().to_string(), e["object"].clone())
            })
            .collect()
    }
}

fn names(events: &[(String, Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(t, o)| format!("{t} {}", o["metadata"]["name"].as_str().unwrap_or("-")))
        .collect()
}

fn cm(name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "labels": {"app": app}}, "data": {"k": "1"}})
}

#[test]
fn a_watch_streams_each_change_to_what_it_selects_until_its_timeout() {
    let f = Fake::start();
    assert_eq!(f.post(CM, &cm("before", "a")).status, 201);
    let list = f.get(CM).body;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // From the list's resourceVersion: only what happens after it, as kubectl get --watch asks.
    let (status, head, from_list) = Stream::open(
        &f,
        &format!("{CM}?watch=true&resourceVersion={rv}&labelSelector=app%3Da&timeoutSeconds=4"),
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_lowercase().contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert!(head.contains("application/json"), "{head}");
    // No resourceVersion: every selected object first, as ADDED.
    let (_, _, fresh) = Stream::open(
        &f,
        &format!("{CM}?watch=1&labelSelector=app%3Da&timeoutSeconds=4"),
    );

    assert_eq!(f.post(CM, &cm("made", "a")).status, 201);
    assert_eq!(f.post(CM, &cm("other", "b")).status, 201);
    assert_eq!(
        f.merge_patch(&format!("{CM}/made"), &json!({"data": {"k": "2"}}))
            .status,
        200
    );
    // Two changes between two looks at the store can be one MODIFIED; wait out a look.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(f.delete(&format!("{CM}/before")).status, 200);

    let events = from_list.events();
    let seen = names(&events);
    assert_eq!(seen[0], "ADDED made", "{seen:?}");
    assert_eq!(seen.last().unwrap(), "DELETED before", "{seen:?}");
    assert!(
        seen[1..seen.len() - 1].iter().all(|e| e == "MODIFIED made"),
        "{seen:?}"
    );
    let modified = &events[seen.len() - 2].1;
    assert_eq!(
        modified["data"]["k"], "2",
        "the last MODIFIED is the object as changed"
    );
    assert_eq!(
        (modified["apiVersion"].as_str(), modified["kind"].as_str()),
        (Some("v1"), Some("ConfigMap"))
    );
    let deleted_rv: u64 = events.last().unwrap().1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(deleted_rv > rv.parse().unwrap());
    let fresh = names(&fresh.events());
    assert_eq!(fresh[0], "ADDED before", "{fresh:?}");
    assert!(
        !fresh.iter().any(|e| e.ends_with(" other")),
        "the selector is kept: {fresh:?}"
    );

    // A bad selector is refused before anything streams.
    let bad = f.get(&format!("{CM}?watch=true&labelSelector=a%20b"));
    assert_eq!(bad.status, 400, "{}", bad.text);
}

#[test]
fn a_watch_with_initial_events_ends_them_with_a_bookmark() {
    let f = Fake::start();
    assert_eq!(f.post(CM, &cm("one", "a")).status, 201);
    let (_, _, s) = Stream::open(
        &f,
        &format!(
            "{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"
        ),
    );
    let events = s.events();
    assert_eq!(names(&events), ["ADDED one", "BOOKMARK -"]);
    assert_eq!(
        events[1].1["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

/// The real kubectl's `get --watch` prints the rows that exist, then each change as it comes.
#[test]
fn kubectl_get_watch_prints_changes_as_they_come() {
    let f = Fake::start();
    assert_eq!(f.post(CM, &cm("first", "a")).status, 201);
    let mut child = std::process::Command::new("/usr/bin/kubectl")
        .args(["--kubeconfig", f.kubeconfig.to_str().unwrap()])
        .args(["get", "configmaps", "--watch", "-o", "name"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/kubectl (scripts/test installs it)");
    // Never wait forever on a kubectl that prints nothing.
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "configmap/first\n");
    assert_eq!(f.post(CM, &cm("second", "a")).status, 201);
    line.clear();
    out.read_line(&mut line).unwrap();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(line, "configmap/second\n", "{status}: {err}");
}
