//! The simulated KubeRay Redis cleanup finalizer, as KubeRay's RayCluster controller runs it
//! (v1.0–v1.7): a RayCluster whose GCS persists in Redis (`spec.gcsFaultToleranceOptions`
//! without `backend: rocksdb`, or the pre-1.3 annotation `ray.io/ft-enabled: "true"`) gets the
//! finalizer `ray.io/gcs-ft-redis-cleanup-finalizer`. Deleting it sets `deletionTimestamp`
//! (the store keeps objects that have finalizers); this controller then removes the cluster's
//! pods, creates the cleanup Job `<name>-redis-cleanup` (labels `ray.io/cluster`,
//! `ray.io/node-type: redis-cleanup`, annotation `ray.io/external-storage-namespace`), marks it
//! Complete after the configured delay (or Failed, when configured to), and then drops the
//! finalizer — also after a failure, as KubeRay does — so the object disappears.
//!
//! It runs with the other simulated controllers, before and after each request.

pub use crate::controllers::CleanupJob;
use crate::objects::{create_by, remove_cascading, update_by};
use crate::store::{Key, State, key};
use crate::util::{get, get_str, now_rfc3339};
use serde_json::{Value, json};
use std::time::Instant;

/// KubeRay's finalizer for RayClusters with a Redis-backed GCS.
pub const CLEANUP_FINALIZER: &str = "ray.io/gcs-ft-redis-cleanup-finalizer";
const MANAGER: &str = "kuberay-operator";

/// Whether a RayCluster's GCS persists in Redis (so KubeRay puts the cleanup finalizer on it).
pub fn redis_ft(rc: &Value) -> bool {
    match get(rc, &["spec", "gcsFaultToleranceOptions"]) {
        Some(ft) if ft.is_object() => ft.get("backend").and_then(Value::as_str) != Some("rocksdb"),
        _ => get_str(rc, &["metadata", "annotations", "ray.io/ft-enabled"])
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    get(obj, &["metadata", "finalizers"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

fn job_finished(job: &Value) -> bool {
    get(job, &["status", "conditions"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            matches!(
                c.get("type").and_then(Value::as_str),
                Some("Complete") | Some("Failed")
            ) && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

/// One pass of the controller over every RayCluster.
pub fn tick(st: &mut State) {
    // Runs around every request: only the clusters with work to do are copied (one that is
    // being deleted, or a Redis one without the finalizer yet), never every RayCluster.
    let clusters: Vec<(Key, Value)> = st
        .of_kind("ray.io", "rayclusters")
        .filter(|(_, s)| {
            let rc = &s.obj;
            get(rc, &["metadata", "deletionTimestamp"]).is_some()
                || (redis_ft(rc) && !finalizers(rc).iter().any(|f| f == CLEANUP_FINALIZER))
        })
        .map(|(k, s)| (k.clone(), s.obj.clone()))
        .collect();
    for (k, rc) in clusters {
        let deleting = get(&rc, &["metadata", "deletionTimestamp"]).is_some();
        let has = finalizers(&rc).iter().any(|f| f == CLEANUP_FINALIZER);
        if !deleting {
            if redis_ft(&rc) && !has {
                update_by(st, &k, MANAGER, false, |o| {
                    let mut f = finalizers(o);
                    f.push(CLEANUP_FINALIZER.into());
                    o["metadata"]["finalizers"] = json!(f);
                });
            }
            continue;
        }
        // Deleting: nothing of the cluster is reconciled any more.
        if let Some(s) = st.objects.get_mut(&k) {
            s.ready_due = None;
        }
        if has {
            cleanup(st, &k, &rc);
        }
        if st
            .objects
            .get(&k)
            .is_some_and(|s| finalizers(&s.obj).is_empty())
        {
            remove_cascading(st, &k);
        }
    }
}

/// The finalizer's work for one deleted RayCluster: pods first, then the Job, then the finalizer.
fn cleanup(st: &mut State, k: &Key, rc: &Value) {
    let (ns, name) = (k.2.clone(), k.3.clone());
    let pods: Vec<Key> = st
        .list("", "pods", &ns)
        .into_iter()
        .filter(|(_, p)| get_str(p, &["metadata", "labels", "ray.io/cluster"]) == Some(&name))
        .map(|(pk, _)| pk)
        .collect();
    if !pods.is_empty() {
        // KubeRay waits for the head to be gone before it starts the Job (the GCS could still
        // be writing to Redis).
        for pk in pods {
            remove_cascading(st, &pk);
        }
        return;
    }
    let job_name = format!("{name}-redis-cleanup");
    let jk = key("batch", "jobs", &ns, &job_name);
    let Some(job) = st.objects.get(&jk).map(|s| s.obj.clone()) else {
        let storage_ns = get_str(
            rc,
            &[
                "spec",
                "gcsFaultToleranceOptions",
                "externalStorageNamespace",
            ],
        )
        .or_else(|| {
            get_str(
                rc,
                &[
                    "metadata",
                    "annotations",
                    "ray.io/external-storage-namespace",
                ],
            )
        })
        .or_else(|| get_str(rc, &["metadata", "uid"]))
        .unwrap_or("")
        .to_string();
        let job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name,
                "namespace": ns,
                "labels": {"ray.io/cluster": name, "ray.io/node-type": "redis-cleanup"},
                "annotations": {"ray.io/external-storage-namespace": storage_ns},
            },
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "ray-head", "image": "rayproject/ray"}]}},
            },
        });
        if create_by(st, "batch", "v1", "jobs", &ns, job, MANAGER).is_some() {
            let due = Instant::now() + st.cleanup_job.delay;
            st.cleanup_due.insert(jk.clone(), due);
            update_by(st, &jk, MANAGER, true, |o| {
                o["status"] = json!({"active": 1, "startTime": now_rfc3339()});
            });
        }
        return;
    };
    if !job_finished(&job) {
        let due = st
            .cleanup_due
            .get(&jk)
            .copied()
            .unwrap_or_else(Instant::now);
        if Instant::now() < due {
            return;
        }
        let (condition, count) = if st.cleanup_job.fail {
            ("Failed", "failed")
        } else {
            ("Complete", "succeeded")
        };
        let now = now_rfc3339();
        update_by(st, &jk, MANAGER, true, |o| {
            o["status"] = json!({
                "startTime": o["status"]["startTime"].clone(),
                count: 1,
                "conditions": [{"type": condition, "status": "True", "lastProbeTime": now, "lastTransitionTime": now}],
            });
        });
        st.cleanup_due.remove(&jk);
        return;
    }
    // Complete or Failed: KubeRay drops the finalizer either way.
    update_by(st, k, MANAGER, false, |o| {
        let f: Vec<String> = finalizers(o)
            .into_iter()
            .filter(|f| f != CLEANUP_FINALIZER)
            .collect();
        o["metadata"]["finalizers"] = json!(f);
    });
}
