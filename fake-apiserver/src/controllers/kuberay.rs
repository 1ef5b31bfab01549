//! The simulated KubeRay Redis cleanup finalizer, as KubeRay's RayCluster controller runs it
//! (v1.0–v1.7): a RayCluster whose GCS persists in Redis (`spec.gcsFaultToleranceOptions`
//! without `backend: rocksdb`, or the pre-1.3 annotation `ray.io/ft-enabled: "true"`) gets the
//! finalizer `ray.io/gcs-ft-redis-cleanup-finalizer`. Deleting it sets `deletionTimestamp`
//! (the store keeps objects that have finalizers); this controller then removes the cluster's
//! pods, creates the cleanup Job `<name>-redis-cleanup` (labels `ray.io/cluster`,
//! `ray.io/node-type: redis-cleanup`, annotation `ray.io/external-storage-namespace`), marks it
//! Complete after the configured delay (or Failed, when configured to), and then drops the
//! finalizer — also after a failure, as KubeRay does — so the object disappears. The 1.7
//! operator also drops it once the deletion is older than `ray.io/gcs-ft-deletion-timeout`
//! seconds (default 300), e.g. when the Job cannot be created in a namespace being deleted.
//!
//! Two more parts of KubeRay's reconcile live here, run by the RayCluster reconcile in
//! `controllers` (and, for `Recreate`, by this controller as soon as a spec change is stored):
//! 1.7's storage for the embedded GCS ([`reconcile_gcs_pvc`], [`configure_embedded_head`]) and
//! 1.6's `upgradeStrategy: Recreate` ([`recreate`], [`recreate_hash`]).
//!
//! It runs with the other simulated controllers, before and after each request.

pub use crate::store::controller_state::CleanupJob;
use crate::store::objects::{create_by, remove_cascading, update_by};
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
                || (recreates(rc)
                    && get(rc, &["status", "observedGeneration"])
                        != get(rc, &["metadata", "generation"]))
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
            recreate(st, &k, &rc);
            continue;
        }
        // Deleting: nothing of the cluster is reconciled any more.
        if let Some(s) = st.objects.get_mut(&k) {
            s.ready_due = None;
        }
        if has && stuck_past_timeout(st, &rc) {
            update_by(st, &k, MANAGER, false, |o| {
                let f: Vec<String> = finalizers(o)
                    .into_iter()
                    .filter(|f| f != CLEANUP_FINALIZER)
                    .collect();
                o["metadata"]["finalizers"] = json!(f);
            });
        } else if has {
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

/// KubeRay 1.7's `forceRemoveGCSFTFinalizer`: a RayCluster deleted longer ago than
/// `ray.io/gcs-ft-deletion-timeout` seconds (default 300) loses the cleanup finalizer whatever
/// its Job did (one that could not even be created, in a namespace being deleted, included).
/// Only the 1.7 operator does this: the simulated operator is the version of the installed
/// CRD, and 1.7's is the one with `gcsFaultToleranceOptions.storage`.
fn stuck_past_timeout(st: &State, rc: &Value) -> bool {
    let is_1_7 = st.find_kind("ray.io", "RayCluster").is_some_and(|rt| {
        rt.schema(rt.storage_version()).is_some_and(|s| {
            s.pointer("/properties/spec/properties/gcsFaultToleranceOptions/properties/storage")
                .is_some()
        })
    });
    if !is_1_7 {
        return false;
    }
    let timeout = get_str(
        rc,
        &["metadata", "annotations", "ray.io/gcs-ft-deletion-timeout"],
    )
    .and_then(|t| t.parse::<u64>().ok())
    .filter(|t| *t > 0)
    .unwrap_or(300);
    let Some(since) =
        get_str(rc, &["metadata", "deletionTimestamp"]).and_then(crate::util::parse_rfc3339)
    else {
        return false;
    };
    let now = crate::util::parse_rfc3339(&now_rfc3339()).unwrap_or(0);
    now.saturating_sub(since) >= timeout
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

/// The head pod's annotation with the hash of the spec it was created from.
pub const RECREATE_HASH: &str = "ray.io/upgrade-strategy-recreate-hash";

/// `spec.upgradeStrategy.type: Recreate` (KubeRay 1.6+).
fn recreates(rc: &Value) -> bool {
    get_str(rc, &["spec", "upgradeStrategy", "type"]) == Some("Recreate")
}

/// KubeRay's `GenerateHashWithoutReplicasAndWorkersToDelete`: a hash of the spec without the
/// worker groups' replica counts and `workersToDelete`, every template's tolerations and
/// scheduling gates, and the upgrade strategy (what the autoscaler and Kueue change does not
/// recreate pods).
pub fn recreate_hash(rc: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut spec = rc.get("spec").cloned().unwrap_or(json!({}));
    let mute = |t: &mut Value| {
        if let Some(s) = t
            .pointer_mut("/template/spec")
            .and_then(Value::as_object_mut)
        {
            s.remove("tolerations");
            s.remove("schedulingGates");
        }
    };
    if let Some(h) = spec.get_mut("headGroupSpec") {
        mute(h);
    }
    for g in spec
        .get_mut("workerGroupSpecs")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        mute(g);
        if let Some(m) = g.as_object_mut() {
            for f in ["replicas", "minReplicas", "maxReplicas"] {
                m.remove(f);
            }
        }
        if let Some(s) = g.get_mut("scaleStrategy").and_then(Value::as_object_mut) {
            s.remove("workersToDelete");
        }
    }
    if let Some(m) = spec.as_object_mut() {
        m.remove("upgradeStrategy");
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    spec.to_string().hash(&mut h);
    format!("{:x}", h.finish())
}

/// KubeRay's `shouldRecreatePodsForUpgrade` and what follows: when the head pod's hash is not
/// the spec's, every pod of the cluster is deleted (pod delete hooks run) and the status
/// stops claiming ready; the RayCluster reconcile starts new pods after the readiness delay.
/// Returns whether it did (the reconcile goes no further then).
pub fn recreate(st: &mut State, k: &Key, rc: &Value) -> bool {
    if !recreates(rc) {
        return false;
    }
    let expected = recreate_hash(rc);
    let pods: Vec<(Key, Value)> = st
        .list("", "pods", &k.2)
        .into_iter()
        .filter(|(_, p)| get_str(p, &["metadata", "labels", "ray.io/cluster"]) == Some(&k.3))
        .map(|(pk, p)| (pk, p.clone()))
        .collect();
    let stale = pods.iter().any(|(_, p)| {
        get_str(p, &["metadata", "labels", "ray.io/node-type"]) == Some("head")
            && get_str(p, &["metadata", "annotations", RECREATE_HASH])
                .is_some_and(|h| !h.is_empty() && h != expected)
    });
    if !stale {
        return false;
    }
    for (pk, p) in pods {
        remove_cascading(st, &pk);
        crate::controllers::lifecycle::pod_deleted(st, &p);
    }
    let generation = get(rc, &["metadata", "generation"]).cloned();
    let now = now_rfc3339();
    update_by(st, k, MANAGER, true, |o| {
        let head = json!({"serviceIP": o["status"]["head"]["serviceIP"], "serviceName": o["status"]["head"]["serviceName"]});
        let status = crate::util::obj_at(o, &["status"]);
        status.remove("state");
        status.insert("observedGeneration".into(), json!(generation));
        status.insert("readyWorkerReplicas".into(), json!(0));
        status.insert("availableWorkerReplicas".into(), json!(0));
        status.insert("head".into(), head);
        let conds = json!([
            {"type": "HeadPodReady", "status": "False", "lastTransitionTime": now, "reason": "HeadPodNotFound", "message": "Head Pod not found"},
            {"type": "RayClusterProvisioned", "status": "False", "lastTransitionTime": now, "reason": "RayClusterPodsProvisioning", "message": ""},
        ]);
        o["status"]["conditions"] = conds;
    });
    true
}

/// KubeRay 1.7's storage for the embedded RocksDB GCS (`gcsFaultToleranceOptions.backend:
/// rocksdb`): the claim the head pod mounts, `storage.claimName` when the user brings one,
/// else `<cluster>-gcs-pvc`.
pub fn gcs_claim(rc: &Value) -> Option<String> {
    let ft = get(rc, &["spec", "gcsFaultToleranceOptions"])?;
    if ft.get("backend").and_then(Value::as_str) != Some("rocksdb") {
        return None;
    }
    let name = get_str(rc, &["metadata", "name"]).unwrap_or("");
    Some(
        get_str(ft, &["storage", "claimName"])
            .filter(|c| !c.is_empty())
            .map_or_else(|| format!("{name}-gcs-pvc"), str::to_string),
    )
}

/// KubeRay 1.7's `reconcileGCSStoragePVC`: for the embedded backend without a user's
/// `claimName`, creates `<cluster>-gcs-pvc` (label `ray.io/cluster`; `storage.size`, default
/// 1Gi; `storage.accessModes`, default ReadWriteOnce; `storage.storageClassName`) with the
/// RayCluster as its controller owner, so the garbage collector deletes it with the cluster
/// (`deletionPolicy: DeleteWithCluster`, the default) — or without that owner reference for
/// `deletionPolicy: Retain`, so it outlives the cluster and a RayCluster of the same name
/// adopts it as it is. An existing claim of that name is adopted, its owner reference set or
/// removed to follow the policy.
pub fn reconcile_gcs_pvc(st: &mut State, k: &Key, rc: &Value) {
    let Some(claim) = gcs_claim(rc) else {
        return;
    };
    let storage = get(rc, &["spec", "gcsFaultToleranceOptions", "storage"]);
    if storage
        .and_then(|s| s.get("claimName"))
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty())
    {
        return; // the user's claim: KubeRay never creates, deletes or owns it
    }
    let retain = storage
        .and_then(|s| s.get("deletionPolicy"))
        .and_then(Value::as_str)
        == Some("Retain");
    let uid = get_str(rc, &["metadata", "uid"]).unwrap_or("").to_string();
    let owner = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": k.3,
        "uid": uid, "controller": true, "blockOwnerDeletion": true});
    let pk = key("", "persistentvolumeclaims", &k.2, &claim);
    if let Some(pvc) = st.objects.get(&pk).map(|s| s.obj.clone()) {
        if get(&pvc, &["metadata", "deletionTimestamp"]).is_some() {
            return;
        }
        let refs = get(&pvc, &["metadata", "ownerReferences"])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let owned = refs
            .iter()
            .any(|r| r.get("uid").and_then(Value::as_str) == Some(&uid));
        if retain == owned {
            update_by(st, &pk, MANAGER, false, |o| {
                let mut refs: Vec<Value> = refs
                    .into_iter()
                    .filter(|r| r.get("uid").and_then(Value::as_str) != Some(&uid))
                    .collect();
                if !retain {
                    refs.push(owner);
                }
                if refs.is_empty() {
                    o["metadata"]
                        .as_object_mut()
                        .map(|m| m.remove("ownerReferences"));
                } else {
                    o["metadata"]["ownerReferences"] = json!(refs);
                }
            });
        }
        return;
    }
    let mut meta = json!({"name": claim, "labels": {"ray.io/cluster": k.3}});
    if !retain {
        meta["ownerReferences"] = json!([owner]);
    }
    let access = storage
        .and_then(|s| s.get("accessModes"))
        .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        .cloned()
        .unwrap_or(json!(["ReadWriteOnce"]));
    let size = storage
        .and_then(|s| s.get("size"))
        .map(|s| match s {
            Value::Number(n) => json!(n.to_string()),
            other => other.clone(),
        })
        .unwrap_or(json!("1Gi"));
    let mut spec = json!({"accessModes": access, "resources": {"requests": {"storage": size}}});
    if let Some(class) = storage.and_then(|s| s.get("storageClassName")) {
        spec["storageClassName"] = class.clone();
    }
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec});
    create_by(st, "", "v1", "persistentvolumeclaims", &k.2, pvc, MANAGER);
}

/// KubeRay 1.7's `configureEmbeddedFT` on the head pod's spec: `RAY_gcs_storage=rocksdb`,
/// `RAY_gcs_storage_path=/data/gcs` (unless set), the claim mounted there as `gcs-storage`.
pub fn configure_embedded_head(rc: &Value, spec: &mut Value) {
    let Some(claim) = gcs_claim(rc) else {
        return;
    };
    let sub_path = get_str(
        rc,
        &["spec", "gcsFaultToleranceOptions", "storage", "subPath"],
    )
    .unwrap_or("");
    if let Some(c) = spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .and_then(|c| c.first_mut())
        .and_then(Value::as_object_mut)
    {
        let env = c.entry("env").or_insert(json!([]));
        if let Some(env) = env.as_array_mut() {
            for (n, v) in [
                ("RAY_gcs_storage", "rocksdb"),
                ("RAY_gcs_storage_path", "/data/gcs"),
            ] {
                if !env.iter().any(|e| e["name"] == n) {
                    env.push(json!({"name": n, "value": v}));
                }
            }
        }
        let mut mount = json!({"name": "gcs-storage", "mountPath": "/data/gcs"});
        if !sub_path.is_empty() {
            mount["subPath"] = json!(sub_path);
        }
        if let Some(m) = c.entry("volumeMounts").or_insert(json!([])).as_array_mut() {
            m.push(mount);
        }
    }
    if let Some(v) = crate::util::obj_at(spec, &[])
        .entry("volumes")
        .or_insert(json!([]))
        .as_array_mut()
    {
        v.push(json!({"name": "gcs-storage", "persistentVolumeClaim": {"claimName": claim}}));
    }
}
