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
    /// The store's resourceVersion when `known` was taken: nothing to look at until it moves.
    rv: u64,
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
        // Initial events are every selected object, whatever version the watch starts from.
        let since = since.filter(|_| !initial_events);
        let mut w = Watch {
            target: t.clone(),
            labels: query.get("labelSelector").cloned(),
            fields: query.get("fieldSelector").cloned(),
            known: BTreeMap::new(),
            rv: st.rv,
            pending: Vec::new(),
            deadline: Instant::now() + timeout,
        };
        for (key, obj) in w.selected(st)? {
            let rv = version(obj);
            let obj = w.typed(obj);
            match since {
                None => event(&mut w.pending, "ADDED", &obj),
                Some(since) if rv.parse::<u64>().map_or(true, |v| v > since) => {
                    event(&mut w.pending, "MODIFIED", &obj);
                }
                Some(_) => {}
            }
            w.known.insert(key, (rv.to_string(), obj));
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

    /// The events that take the last snapshot to the store as it is now, as JSON lines
    /// (nothing when the store has not moved). An unchanged object is kept, not copied again.
    pub fn next(&mut self, st: &State) -> Vec<u8> {
        if st.rv == self.rv {
            return Vec::new();
        }
        // The selectors parsed when the watch began, so they cannot fail now.
        let Ok(selected) = self.selected(st) else {
            return Vec::new();
        };
        self.rv = st.rv;
        let mut was = std::mem::take(&mut self.known);
        let mut out = Vec::new();
        for (key, obj) in selected {
            let rv = version(obj);
            let kind = match was.remove(&key) {
                Some(kept) if kept.0 == rv => {
                    self.known.insert(key, kept);
                    continue;
                }
                Some(_) => "MODIFIED",
                None => "ADDED",
            };
            let obj = self.typed(obj);
            event(&mut out, kind, &obj);
            self.known.insert(key, (rv.to_string(), obj));
        }
        for (_, (_, mut gone)) in was {
            // A deleted object carries the resourceVersion of its deletion.
            gone["metadata"]["resourceVersion"] = json!(st.rv.to_string());
            event(&mut out, "DELETED", &gone);
        }
        out
    }

    fn selected<'a>(&self, st: &'a State) -> Result<Vec<(Key, &'a Value)>, ApiError> {
        let (labels, fields) = (self.labels.as_deref(), self.fields.as_deref());
        super::list::selected(st, &self.target, labels, fields)
    }

    /// A stored object as a watch event carries it: at the served version, with its kind.
    fn typed(&self, obj: &Value) -> Value {
        let t = &self.target;
        let mut obj = obj.clone();
        if let Some(m) = obj.as_object_mut() {
            m.insert("apiVersion".into(), json!(t.rt.api_version(&t.version)));
            m.insert("kind".into(), json!(t.rt.kind));
        }
        obj
    }
}

fn version(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
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
