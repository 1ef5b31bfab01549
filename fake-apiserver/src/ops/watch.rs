//! WATCH of one resource (`GET ...?watch=true`), in a namespace or across all, filtered by label
//! and field selectors: a stream of `{"type": "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK",
//! "object": ...}` lines, as kube-apiserver writes a JSON watch.
//!
//! The store keeps no history of events, so a watch compares snapshots: what it selected before
//! against what it selects now, whenever the store's resourceVersion has moved (the HTTP layer
//! polls, and ticks the simulated controllers meanwhile). A client sees every change to an
//! object it watches; two changes between polls are one MODIFIED, as after a slow watcher's
//! compaction. Starting from a resourceVersion, objects written after it are sent as MODIFIED;
//! deletions before the watch began are not known (kube-apiserver would send them, or answer
//! 410 Gone once its history no longer reaches back that far).

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Frame;
use serde_json::{Value, json};

use super::Target;
use crate::error::ApiError;
use crate::store::{Key, State};

/// How long a watch lasts without `timeoutSeconds` (kube-apiserver's `--min-request-timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// One watch: what it selects, what it last sent of each object, and when it ends.
pub struct Watch {
    target: Target,
    labels: Option<String>,
    fields: Option<String>,
    /// Each selected object as last sent, with its resourceVersion.
    known: BTreeMap<Key, (String, Value)>,
    /// Events not yet sent (the first ones, taken with the request).
    pending: Vec<u8>,
    deadline: Instant,
}

impl Watch {
    /// Parses the watch request and takes its first snapshot, under the store's lock: the
    /// initial events (every selected object ADDED, unless watching from a resourceVersion).
    pub fn new(st: &State, t: &Target, query: &HashMap<String, String>) -> Result<Watch, ApiError> {
        let timeout = match query.get("timeoutSeconds") {
            None => DEFAULT_TIMEOUT,
            Some(s) => Duration::from_secs(s.parse().map_err(|_| {
                ApiError::bad_request(format!("timeoutSeconds: Invalid value: {s:?}"))
            })?),
        };
        let since = match query.get("resourceVersion").map(String::as_str) {
            None | Some("" | "0") => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("resourceVersion: Invalid value: {rv:?}"))
            })?),
        };
        let initial_events = query.get("sendInitialEvents").is_some_and(|v| v == "true");
        let mut w = Watch {
            target: t.clone(),
            labels: query.get("labelSelector").cloned(),
            fields: query.get("fieldSelector").cloned(),
            known: BTreeMap::new(),
            pending: Vec::new(),
            deadline: Instant::now() + timeout,
        };
        let now = w.snapshot(st)?;
        for (rv, obj) in now.values() {
            let newer = rv.parse::<u64>().unwrap_or(u64::MAX);
            match since {
                _ if initial_events => event(&mut w.pending, "ADDED", obj),
                None => event(&mut w.pending, "ADDED", obj),
                Some(since) if newer > since => event(&mut w.pending, "MODIFIED", obj),
                Some(_) => {}
            }
        }
        if initial_events {
            // The end of the initial events (KEP-3157, `sendInitialEvents`).
            let bookmark = json!({
                "apiVersion": t.rt.api_version(&t.version),
                "kind": t.rt.kind,
                "metadata": {
                    "resourceVersion": st.rv.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            });
            event(&mut w.pending, "BOOKMARK", &bookmark);
        }
        w.known = now;
        Ok(w)
    }

    /// When the server ends this watch (`timeoutSeconds`).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The events not yet sent, as JSON lines.
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// The events that take the last snapshot to the store as it is now, as JSON lines.
    pub fn next(&mut self, st: &State) -> Vec<u8> {
        // The selectors parsed when the watch began, so they cannot fail now.
        let Ok(now) = self.snapshot(st) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, (rv, obj)) in &now {
            match self.known.get(key) {
                None => event(&mut out, "ADDED", obj),
                Some((was, _)) if was != rv => event(&mut out, "MODIFIED", obj),
                Some(_) => {}
            }
        }
        for (key, (_, obj)) in &self.known {
            if !now.contains_key(key) {
                // A deleted object carries the resourceVersion of its deletion.
                let mut gone = obj.clone();
                gone["metadata"]["resourceVersion"] = json!(st.rv.to_string());
                event(&mut out, "DELETED", &gone);
            }
        }
        self.known = now;
        out
    }

    /// Every selected object now, at the served version with its type meta.
    fn snapshot(&self, st: &State) -> Result<BTreeMap<Key, (String, Value)>, ApiError> {
        let t = &self.target;
        let api_version = t.rt.api_version(&t.version);
        let selected =
            super::list::selected(st, t, self.labels.as_deref(), self.fields.as_deref())?;
        Ok(selected
            .into_iter()
            .map(|(key, obj)| {
                let mut obj = obj.clone();
                if let Some(m) = obj.as_object_mut() {
                    m.insert("apiVersion".into(), json!(api_version));
                    m.insert("kind".into(), json!(t.rt.kind));
                }
                let rv = obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                (key, (rv, obj))
            })
            .collect())
    }
}

fn event(out: &mut Vec<u8>, kind: &str, obj: &Value) {
    let line = json!({"type": kind, "object": obj});
    if serde_json::to_writer(&mut *out, &line).is_ok() {
        out.push(b'\n');
    }
}

/// The body of a watch response: the events as they come, until the watch ends.
pub struct Events(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}
