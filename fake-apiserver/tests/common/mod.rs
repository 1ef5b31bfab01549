//! Test harness: starts the real fake-apiserver binary, reads its URL from stdout, and talks plain HTTP/1.1
//! over a std TcpStream (no client library needed).

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CRD_V130: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/kuberay/ray.io_rayclusters.v1.3.0.yaml"
);
pub const CRD_V122: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/kuberay/ray.io_rayclusters.v1.2.2.yaml"
);

pub struct Fake {
    child: Child,
    pub url: String,
    pub addr: String,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub text: String,
}

impl Fake {
    pub fn start(args: &[&str]) -> Fake {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn fake-apiserver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read URL");
        let url = line.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected first line {url:?}"
        );
        let addr = url.trim_start_matches("http://").to_string();
        Fake {
            child,
            url,
            addr,
            kubeconfig,
            dir,
        }
    }

    pub fn req(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> Resp {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let body = body.unwrap_or("");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: harness/1.0\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read response");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").expect("response head");
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body_text = if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        let body = serde_json::from_str(&body_text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text: body_text,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.req(
            "POST",
            path,
            Some("application/json"),
            Some(&body.to_string()),
        )
    }
    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.req(
            "PUT",
            path,
            Some("application/json"),
            Some(&body.to_string()),
        )
    }
    pub fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, None, None)
    }
    pub fn merge_patch(&self, path: &str, body: &Value) -> Resp {
        self.req(
            "PATCH",
            path,
            Some("application/merge-patch+json"),
            Some(&body.to_string()),
        )
    }
    /// Server-side apply with `fieldManager=manager`; `extra` is appended to the query (e.g. "&force=true").
    pub fn apply(&self, path: &str, manager: &str, body: &Value, extra: &str) -> Resp {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.req(
            "PATCH",
            &format!("{path}{sep}fieldManager={manager}{extra}"),
            Some("application/apply-patch+yaml"),
            Some(&body.to_string()),
        )
    }

    /// Polls GET `path` until `pred` holds or `timeout` passes; returns the last body.
    pub fn wait_for(&self, path: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let r = self.get(path);
            if r.status == 200 && pred(&r.body) {
                return r.body;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting on {path}: {}", r.text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Paths of the managed fields of one manager's entry, as raw fieldsV1 JSON text.
pub fn managed<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}
