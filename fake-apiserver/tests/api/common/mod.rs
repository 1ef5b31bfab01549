//! Test harness: an in-process fake-apiserver from the library's `testing` helper, with request
//! shorthands for the verbs the tests exercise.

#![allow(dead_code)]

use fake_apiserver::Options;
use fake_apiserver::testing::FakeApiServer;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const CRD_V130: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/kuberay/ray.io_rayclusters.v1.3.0.yaml"
);
pub const CRD_V170: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/kuberay/ray.io_rayclusters.v1.7.0.yaml"
);
pub const CRD_V122: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/kuberay/ray.io_rayclusters.v1.2.2.yaml"
);

/// Options with these CRD files installed.
pub fn crds(paths: &[&str]) -> Options {
    Options {
        crds: paths.iter().map(PathBuf::from).collect(),
        ..Options::default()
    }
}

pub struct Fake {
    pub server: FakeApiServer,
    pub url: String,
    pub kubeconfig: PathBuf,
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub text: String,
}

impl Fake {
    /// A server with the default options.
    pub fn start() -> Fake {
        Fake::with(Options::default())
    }

    pub fn with(opts: Options) -> Fake {
        let server = FakeApiServer::start_with(opts);
        Fake {
            url: server.url().to_string(),
            kubeconfig: server.kubeconfig().to_path_buf(),
            server,
        }
    }

    pub fn req(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> Resp {
        let mut headers = vec![
            ("User-Agent", "harness/1.0"),
            ("Accept", "application/json"),
        ];
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct));
        }
        let r = self
            .server
            .request(method, path, &headers, body.unwrap_or("").as_bytes());
        Resp {
            status: r.status,
            body: r.json(),
            headers: r.headers,
            text: r.text,
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

/// Paths of the managed fields of one manager's entry, as raw fieldsV1 JSON text.
pub fn managed<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}
