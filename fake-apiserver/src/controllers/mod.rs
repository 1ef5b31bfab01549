//! The controllers wing: the simulated controllers, run lazily before each request, and again within it until a pass writes
//! nothing: PVC binding (Immediate, or WaitForFirstConsumer once a scheduled pod mounts the claim)
//! and expansion, the scheduler (a controller's pod whose claim is missing or being deleted waits
//! Pending and unscheduled, and runs once the claim is there), the StatefulSet controller (pods,
//! claims from templates, status counting running pods) and the KubeRay operator's RayCluster
//! reconcile (the embedded GCS claim, `Recreate`, head pod, head Service, RayCluster status), each
//! after the configured readiness delay and after any pod delete hook of theirs has finished (see
//! `lifecycle`). The pass also runs the other controllers: `pvc_protection`, `kuberay`,
//! `namespaces`.

pub(crate) mod autoscaler;
pub mod kuberay;
pub(crate) mod lifecycle;
pub(crate) mod namespaces;
pub(crate) mod pvc_protection;

use crate::store::objects::{
    create_by as controller_create, remove_cascading, update_by as controller_write,
};
use crate::store::{Key, State, key};
use crate::util::{get, get_str, now_rfc3339, quantity_of, rand_suffix};
use serde_json::{Map, Value, json};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Instant;

pub fn tick(st: &mut State) {
    st.lifecycle.poll();
    let now = Instant::now();
    // A tick runs before and after every request and each controller below looks at every
    // object of its kind: with a hundred stacks stored that was most of the server's CPU. When
    // nothing was written since the last tick found nothing to do, and no readiness is due yet,
    // there is nothing to do now either.
    if let Some(q) = st.quiet
        && q.rv == st.rv
        && q.next_due.is_none_or(|due| now < due)
    {
        return;
    }
    // One controller's write can give another work (a pod gone releases a claim, a claim gone
    // empties a namespace): they run again until a pass writes nothing.
    for _ in 0..8 {
        let rv = st.rv;
        pass(st, now);
        if st.rv == rv {
            break;
        }
    }
    st.quiet = quiet(st);
}

/// One pass of every controller: the owners whose readiness is due, then the rest.
fn pass(st: &mut State, now: Instant) {
    let due: Vec<Key> = st
        .objects
        .iter()
        .filter(|(_, s)| s.ready_due.is_some_and(|d| d <= now))
        .map(|(k, _)| k.clone())
        .collect();
    for k in due {
        let Some(s) = st.objects.get_mut(&k) else {
            continue;
        };
        s.ready_due = None;
        if s.status_pinned {
            continue;
        }
        // A pod delete hook still plays the replacement pod starting: not ready yet.
        if st.lifecycle.blocks(&k) {
            if let Some(s) = st.objects.get_mut(&k) {
                s.ready_due = Some(now + std::time::Duration::from_millis(50));
            }
            continue;
        }
        match (k.0.as_str(), k.1.as_str()) {
            ("apps", "statefulsets") => statefulset(st, &k),
            ("ray.io", "rayclusters") => raycluster(st, &k),
            _ => {}
        }
    }
    bind_pvcs(st);
    resize_pvcs(st);
    crate::controllers::pvc_protection::tick(st);
    schedule_pending(st, now);
    crate::controllers::kuberay::tick(st);
    crate::controllers::namespaces::tick(st);
}

/// Whether the controllers may rest until the next write or the next readiness due: not while
/// a pod delete hook runs or a RayCluster is being deleted (its cleanup Job runs on the clock).
fn quiet(st: &State) -> Option<crate::store::Quiet> {
    let deleting = st
        .of_kind("ray.io", "rayclusters")
        .any(|(_, s)| get(&s.obj, &["metadata", "deletionTimestamp"]).is_some());
    if deleting || !st.cleanup_due.is_empty() || !st.lifecycle.idle() {
        return None;
    }
    Some(crate::store::Quiet {
        rv: st.rv,
        next_due: st.objects.values().filter_map(|s| s.ready_due).min(),
    })
}

fn hash_hex(v: &Value) -> String {
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:x}", h.finish())[..10.min(format!("{:x}", h.finish()).len())].to_string()
}

fn owner_ref(obj: &Value) -> Value {
    json!({
        "apiVersion": obj.get("apiVersion").cloned().unwrap_or(json!("v1")),
        "kind": obj.get("kind").cloned().unwrap_or(json!("")),
        "name": get_str(obj, &["metadata", "name"]).unwrap_or(""),
        "uid": get_str(obj, &["metadata", "uid"]).unwrap_or(""),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

fn running_status(st: &mut State, pod: &Value) -> Value {
    let now = now_rfc3339();
    let ip = st.alloc_pod_ip();
    let statuses: Vec<Value> = get(pod, &["spec", "containers"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "name": c.get("name").cloned().unwrap_or(json!("")),
                "image": c.get("image").cloned().unwrap_or(json!("")),
                "imageID": "",
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    json!({
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
        "hostIP": "172.18.0.2",
        "hostIPs": [{"ip": "172.18.0.2"}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    })
}

/// Creates a pod (spec from a template) and marks it Running and Ready; returns (name, podIP).
fn start_pod(
    st: &mut State,
    ns: &str,
    name: &str,
    meta: Map<String, Value>,
    spec: Value,
) -> Option<(String, String)> {
    let mut m = meta;
    m.insert("name".into(), json!(name));
    let mut spec = spec;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": spec.clone()});
    let unschedulable = unschedulable(st, ns, &pod);
    if unschedulable.is_none()
        && let Some(s) = spec.as_object_mut()
    {
        s.entry("nodeName").or_insert(json!("fake-node"));
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": pod["metadata"], "spec": spec});
    let created = controller_create(st, "", "v1", "pods", ns, pod, "kube-controller-manager")?;
    if let Some(why) = unschedulable {
        let now = now_rfc3339();
        controller_write(
            st,
            &key("", "pods", ns, name),
            "kube-scheduler",
            true,
            |o| {
                o["status"] = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
                "status": "False", "lastProbeTime": null, "lastTransitionTime": now,
                "reason": "Unschedulable", "message": format!("0/1 nodes are available: {why}.")}],
                "qosClass": "BestEffort"});
            },
        );
        return Some((name.to_string(), String::new()));
    }
    let status = running_status(st, &created);
    let ip = status["podIP"].as_str().unwrap_or("").to_string();
    controller_write(st, &key("", "pods", ns, name), "kubelet", true, |o| {
        o["status"] = status;
    });
    Some((name.to_string(), ip))
}

fn statefulset(st: &mut State, k: &Key) {
    let Some(sts) = st.objects.get(k).map(|s| s.obj.clone()) else {
        return;
    };
    let ns = k.2.clone();
    let name = k.3.clone();
    let uid = get_str(&sts, &["metadata", "uid"])
        .unwrap_or("")
        .to_string();
    let replicas = get(&sts, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let generation = get(&sts, &["metadata", "generation"])
        .cloned()
        .unwrap_or(json!(1));
    let template = get(&sts, &["spec", "template"])
        .cloned()
        .unwrap_or(json!({}));
    let revision = format!("{name}-{}", hash_hex(&template));
    let service_name = get_str(&sts, &["spec", "serviceName"]).map(String::from);
    let vcts = get(&sts, &["spec", "volumeClaimTemplates"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    // Remove pods beyond the replica count or from an older revision.
    let pods: Vec<(Key, Value)> = st
        .list("", "pods", &ns)
        .into_iter()
        .filter(|(_, p)| {
            get(p, &["metadata", "ownerReferences"])
                .and_then(Value::as_array)
                .is_some_and(|r| {
                    r.iter()
                        .any(|o| o.get("uid").and_then(Value::as_str) == Some(&uid))
                })
        })
        .map(|(k2, v)| (k2, v.clone()))
        .collect();
    for (pk, p) in pods {
        let idx =
            pk.3.rsplit('-')
                .next()
                .and_then(|i| i.parse::<i64>().ok())
                .unwrap_or(i64::MAX);
        let rev = get_str(&p, &["metadata", "labels", "controller-revision-hash"]);
        if idx >= replicas || rev != Some(revision.as_str()) {
            remove_cascading(st, &pk);
        }
    }
    for i in 0..replicas {
        let pod_name = format!("{name}-{i}");
        if st.get("", "pods", &ns, &pod_name).is_some() {
            continue;
        }
        // Claims from volumeClaimTemplates, kept after the pod (retention policy Retain).
        let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
        for t in &vcts {
            let Some(tname) = get_str(t, &["metadata", "name"]) else {
                continue;
            };
            let claim = format!("{tname}-{name}-{i}");
            if st.get("", "persistentvolumeclaims", &ns, &claim).is_none() {
                let mut meta = t
                    .get("metadata")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                meta.insert("name".into(), json!(claim));
                let mut labels = get(&template, &["metadata", "labels"])
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(extra) = meta.get("labels").and_then(Value::as_object) {
                    for (lk, lv) in extra {
                        labels.insert(lk.clone(), lv.clone());
                    }
                }
                meta.insert("labels".into(), Value::Object(labels));
                let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": t.get("spec").cloned().unwrap_or(json!({}))});
                controller_create(
                    st,
                    "",
                    "v1",
                    "persistentvolumeclaims",
                    &ns,
                    pvc,
                    "kube-controller-manager",
                );
            }
            if let Some(vols) = crate::util::obj_at(&mut spec, &[])
                .entry("volumes")
                .or_insert(json!([]))
                .as_array_mut()
            {
                vols.push(json!({"name": tname, "persistentVolumeClaim": {"claimName": claim}}));
            }
        }
        if let Some(s) = spec.as_object_mut() {
            s.insert("hostname".into(), json!(pod_name));
            if let Some(svc) = &service_name {
                s.insert("subdomain".into(), json!(svc));
            }
        }
        let mut meta = Map::new();
        meta.insert("generateName".into(), json!(format!("{name}-")));
        let mut labels = get(&template, &["metadata", "labels"])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        labels.insert("apps.kubernetes.io/pod-index".into(), json!(i.to_string()));
        labels.insert("controller-revision-hash".into(), json!(revision));
        labels.insert("statefulset.kubernetes.io/pod-name".into(), json!(pod_name));
        meta.insert("labels".into(), Value::Object(labels));
        if let Some(a) = get(&template, &["metadata", "annotations"]) {
            meta.insert("annotations".into(), a.clone());
        }
        meta.insert("ownerReferences".into(), json!([owner_ref(&sts)]));
        start_pod(st, &ns, &pod_name, meta, spec);
    }
    // Ready: the pods that run (one whose claim is missing or being deleted waits unscheduled).
    let ready = st
        .list("", "pods", &ns)
        .into_iter()
        .filter(|(_, p)| {
            get_str(p, &["status", "phase"]) == Some("Running")
                && get(p, &["metadata", "ownerReferences"])
                    .and_then(Value::as_array)
                    .is_some_and(|r| {
                        r.iter()
                            .any(|o| o.get("uid").and_then(Value::as_str) == Some(&uid))
                    })
        })
        .count() as i64;
    let mut status = Map::new();
    status.insert("observedGeneration".into(), generation);
    status.insert("replicas".into(), json!(replicas));
    if ready > 0 {
        status.insert("readyReplicas".into(), json!(ready));
    }
    if replicas > 0 {
        status.insert("currentReplicas".into(), json!(replicas));
        status.insert("updatedReplicas".into(), json!(replicas));
    }
    status.insert("availableReplicas".into(), json!(ready));
    status.insert("currentRevision".into(), json!(revision));
    status.insert("updateRevision".into(), json!(revision));
    status.insert("collisionCount".into(), json!(0));
    controller_write(st, k, "kube-controller-manager", true, |o| {
        o["status"] = Value::Object(status);
    });
}

fn raycluster(st: &mut State, k: &Key) {
    let Some(rc) = st.objects.get(k).map(|s| s.obj.clone()) else {
        return;
    };
    let ns = k.2.clone();
    let name = k.3.clone();
    let uid = get_str(&rc, &["metadata", "uid"]).unwrap_or("").to_string();
    let generation = get(&rc, &["metadata", "generation"])
        .cloned()
        .unwrap_or(json!(1));
    let now = now_rfc3339();
    let head_template = get(&rc, &["spec", "headGroupSpec", "template"])
        .cloned()
        .unwrap_or(json!({}));
    crate::controllers::kuberay::reconcile_gcs_pvc(st, k, &rc);
    if crate::controllers::kuberay::recreate(st, k, &rc) {
        return;
    }

    // Head pod: reuse the existing one for this cluster, else start one.
    let existing = st
        .list("", "pods", &ns)
        .into_iter()
        .find(|(_, p)| {
            get_str(p, &["metadata", "labels", "ray.io/cluster"]) == Some(name.as_str())
                && get_str(p, &["metadata", "labels", "ray.io/node-type"]) == Some("head")
        })
        .map(|(pk, p)| {
            (
                pk.3.clone(),
                get_str(p, &["status", "podIP"]).unwrap_or("").to_string(),
            )
        });
    let (pod_name, pod_ip) = match existing {
        Some(x) => x,
        None => {
            let pod_name = format!("{name}-head-{}", rand_suffix(5));
            let mut labels = get(&head_template, &["metadata", "labels"])
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            labels.insert("ray.io/cluster".into(), json!(name));
            labels.insert("ray.io/node-type".into(), json!("head"));
            labels.insert("ray.io/group".into(), json!("headgroup"));
            labels.insert("ray.io/is-ray-node".into(), json!("yes"));
            labels.insert(
                "app.kubernetes.io/created-by".into(),
                json!("kuberay-operator"),
            );
            labels.insert("app.kubernetes.io/name".into(), json!("kuberay"));
            let mut meta = Map::new();
            meta.insert("labels".into(), Value::Object(labels));
            let mut annotations = get(&head_template, &["metadata", "annotations"])
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            annotations.insert(
                crate::controllers::kuberay::RECREATE_HASH.into(),
                json!(crate::controllers::kuberay::recreate_hash(&rc)),
            );
            meta.insert("annotations".into(), Value::Object(annotations));
            meta.insert("ownerReferences".into(), json!([owner_ref(&rc)]));
            let mut spec = head_template.get("spec").cloned().unwrap_or(json!({}));
            crate::controllers::kuberay::configure_embedded_head(&rc, &mut spec);
            match start_pod(st, &ns, &pod_name, meta, spec) {
                Some(x) => x,
                None => (pod_name, String::new()),
            }
        }
    };

    // Head Service.
    let svc_name = format!("{name}-head-svc");
    let ports: Vec<Value> = get(&head_template, &["spec", "containers"])
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| c.get("ports"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = p.get("containerPort")?.clone();
            let mut m = Map::new();
            if let Some(n) = p.get("name") {
                m.insert("name".into(), n.clone());
            }
            m.insert("port".into(), port.clone());
            m.insert("targetPort".into(), port);
            m.insert(
                "protocol".into(),
                p.get("protocol").cloned().unwrap_or(json!("TCP")),
            );
            Some(Value::Object(m))
        })
        .collect();
    if st.get("", "services", &ns, &svc_name).is_none() {
        let ports = if ports.is_empty() {
            vec![json!({"name": "gcs-server", "port": 6379})]
        } else {
            ports.clone()
        };
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": svc_name, "labels": {"ray.io/cluster": name, "ray.io/node-type": "head", "app.kubernetes.io/created-by": "kuberay-operator"}, "ownerReferences": [owner_ref(&rc)]},
            "spec": {"selector": {"ray.io/cluster": name, "ray.io/node-type": "head"}, "ports": ports},
        });
        controller_create(st, "", "v1", "services", &ns, svc, "kuberay-operator");
    }
    let service_ip = st
        .get("", "services", &ns, &svc_name)
        .and_then(|s| get_str(s, &["spec", "clusterIP"]))
        .unwrap_or("")
        .to_string();

    let mut desired = 0i64;
    let mut min = 0i64;
    let mut max = 0i64;
    for g in get(&rc, &["spec", "workerGroupSpecs"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let hosts = g
            .get("numOfHosts")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(1);
        let gmin = g.get("minReplicas").and_then(Value::as_i64).unwrap_or(0);
        let gmax = g
            .get("maxReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(i32::MAX as i64);
        let suspended = g.get("suspend").and_then(Value::as_bool) == Some(true);
        let r = g
            .get("replicas")
            .and_then(Value::as_i64)
            .unwrap_or(gmin)
            .clamp(gmin, gmax.max(gmin));
        if !suspended {
            desired += r * hosts;
        }
        min += gmin * hosts;
        max = max.saturating_add(gmax.saturating_mul(hosts));
    }
    let mut endpoints = Map::new();
    for p in &ports {
        if let (Some(n), Some(port)) = (p.get("name").and_then(Value::as_str), p.get("port")) {
            endpoints.insert(n.into(), json!(port.to_string()));
        }
    }
    let cond = |t: &str, reason: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": ""});
    let head_running = st
        .get("", "pods", &ns, &pod_name)
        .is_some_and(|p| get_str(p, &["status", "phase"]) == Some("Running"));
    if !head_running {
        // The head pod waits (unscheduled: its GCS claim is missing or being deleted): KubeRay
        // reports its Ready condition as Unknown and the cluster as not provisioned.
        let not = |t: &str, reason: &str| json!({"type": t, "status": "False", "lastTransitionTime": now, "reason": reason, "message": ""});
        let status = json!({
            "desiredWorkerReplicas": desired,
            "readyWorkerReplicas": 0,
            "availableWorkerReplicas": 0,
            "minWorkerReplicas": min,
            "maxWorkerReplicas": max,
            "endpoints": endpoints,
            "head": {"podName": pod_name, "serviceIP": service_ip, "serviceName": svc_name},
            "conditions": [not("HeadPodReady", "Unknown"), not("RayClusterProvisioned", "RayClusterPodsProvisioning")],
            "lastUpdateTime": now,
            "observedGeneration": generation,
        });
        controller_write(st, k, "kuberay-operator", true, |o| {
            o["status"] = status;
        });
        return;
    }
    let status = json!({
        "state": "ready",
        "desiredCPU": "0",
        "desiredMemory": "0",
        "desiredGPU": "0",
        "desiredTPU": "0",
        "desiredWorkerReplicas": desired,
        "readyWorkerReplicas": desired,
        "availableWorkerReplicas": desired,
        "minWorkerReplicas": min,
        "maxWorkerReplicas": max,
        "endpoints": endpoints,
        "head": {"podIP": pod_ip, "podName": pod_name, "serviceIP": service_ip, "serviceName": svc_name},
        "conditions": [cond("HeadPodReady", "HeadPodRunningAndReady"), cond("RayClusterProvisioned", "AllPodRunningAndReadyFirstTime")],
        "lastUpdateTime": now,
        "observedGeneration": generation,
        "stateTransitionTimes": {"ready": now},
    });
    let _ = uid;
    controller_write(st, k, "kuberay-operator", true, |o| {
        o["status"] = status;
    });
    // The autoscaler scales a running cluster; KubeRay reconciles the new replicas at once.
    if crate::controllers::autoscaler::scale(st, k)
        && let Some(s) = st.objects.get_mut(k)
    {
        s.ready_due = Some(Instant::now());
    }
}

/// Completes volume expansion: a Bound claim's capacity follows a grown request.
fn resize_pvcs(st: &mut State) {
    let grown: Vec<(Key, Value)> = st
        .list("", "persistentvolumeclaims", "")
        .into_iter()
        .filter(|(_, p)| get_str(p, &["status", "phase"]) == Some("Bound"))
        .filter_map(|(k, p)| {
            let want = get(p, &["spec", "resources", "requests", "storage"])?;
            let have = get(p, &["status", "capacity", "storage"])?;
            (quantity_of(want)? > quantity_of(have)?).then(|| (k, want.clone()))
        })
        .collect();
    for (k, size) in grown {
        controller_write(st, &k, "kube-controller-manager", true, |o| {
            o["status"]["capacity"]["storage"] = size;
        });
    }
}

/// Binds Pending claims: at once for Immediate classes, once a pod mounts them for WaitForFirstConsumer.
fn bind_pvcs(st: &mut State) {
    let pending: Vec<(Key, Value)> = st
        .list("", "persistentvolumeclaims", "")
        .into_iter()
        .filter(|(_, p)| get_str(p, &["status", "phase"]) == Some("Pending"))
        .map(|(k, v)| (k, v.clone()))
        .collect();
    for (k, pvc) in pending {
        let Some(class) = get_str(&pvc, &["spec", "storageClassName"]).filter(|c| !c.is_empty())
        else {
            continue;
        };
        let Some(sc) = st
            .get("storage.k8s.io", "storageclasses", "", class)
            .cloned()
        else {
            continue;
        };
        let wffc = get_str(&sc, &["volumeBindingMode"]) == Some("WaitForFirstConsumer");
        if wffc && !mounted_by_pod(st, &k.2, &k.3) {
            continue;
        }
        let uid = get_str(&pvc, &["metadata", "uid"])
            .unwrap_or("")
            .to_string();
        let provisioner = get_str(&sc, &["provisioner"]).unwrap_or("").to_string();
        controller_write(st, &k, "kube-controller-manager", false, |o| {
            o["spec"]["volumeName"] = json!(format!("pvc-{uid}"));
            let ann = crate::util::obj_at(o, &["metadata", "annotations"]);
            ann.insert("pv.kubernetes.io/bind-completed".into(), json!("yes"));
            ann.insert("pv.kubernetes.io/bound-by-controller".into(), json!("yes"));
            ann.insert(
                "volume.beta.kubernetes.io/storage-provisioner".into(),
                json!(provisioner),
            );
            ann.insert(
                "volume.kubernetes.io/storage-provisioner".into(),
                json!(provisioner),
            );
            if wffc {
                ann.insert(
                    "volume.kubernetes.io/selected-node".into(),
                    json!("fake-node"),
                );
            }
        });
        let pvc_now = st
            .get("", "persistentvolumeclaims", &k.2, &k.3)
            .cloned()
            .unwrap_or(pvc);
        let modes = get(&pvc_now, &["spec", "accessModes"])
            .cloned()
            .unwrap_or(json!(["ReadWriteOnce"]));
        let storage = get(&pvc_now, &["spec", "resources", "requests", "storage"])
            .cloned()
            .unwrap_or(json!("1Gi"));
        controller_write(st, &k, "kube-controller-manager", true, |o| {
            o["status"] =
                json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": storage}});
        });
    }
}

/// Whether a scheduled pod mounts the claim (a WaitForFirstConsumer claim binds then).
fn mounted_by_pod(st: &State, ns: &str, claim: &str) -> bool {
    st.list("", "pods", ns).into_iter().any(|(_, p)| {
        get_str(p, &["spec", "nodeName"]).is_some_and(|n| !n.is_empty())
            && crate::controllers::pvc_protection::claims(p).any(|c| c == claim)
    })
}

/// Why the scheduler would not place `pod` (kube-scheduler's words): a claim it mounts is
/// missing or being deleted.
fn unschedulable(st: &State, ns: &str, pod: &Value) -> Option<String> {
    crate::controllers::pvc_protection::claims(pod).find_map(|c| {
        match st.get("", "persistentvolumeclaims", ns, c) {
            None => Some(format!("persistentvolumeclaim {c:?} not found")),
            Some(pvc) if get(pvc, &["metadata", "deletionTimestamp"]).is_some() => {
                Some(format!("persistentvolumeclaim {c:?} is being deleted"))
            }
            Some(_) => None,
        }
    })
}

/// The scheduler and kubelet: a pod left unscheduled runs once its claims are there, and its
/// owner's controller looks again.
fn schedule_pending(st: &mut State, now: Instant) {
    let pending: Vec<(Key, Value)> = st
        .of_kind("", "pods")
        .filter(|(_, s)| {
            get_str(&s.obj, &["spec", "nodeName"]).is_none_or(str::is_empty)
                && get_str(&s.obj, &["status", "phase"]) == Some("Pending")
                && get(&s.obj, &["metadata", "deletionTimestamp"]).is_none()
        })
        .map(|(k, s)| (k.clone(), s.obj.clone()))
        .collect();
    for (k, pod) in pending {
        if let Some(why) = unschedulable(st, &k.2, &pod) {
            // The scheduler tries again and says why it still cannot.
            let message = format!("0/1 nodes are available: {why}.");
            let now = now_rfc3339();
            controller_write(st, &k, "kube-scheduler", true, |o| {
                let conds = crate::util::obj_at(o, &["status"])
                    .entry("conditions")
                    .or_insert(json!([]));
                let Some(conds) = conds.as_array_mut() else {
                    return;
                };
                if conds
                    .iter()
                    .any(|c| c["type"] == "PodScheduled" && c["message"] == json!(message))
                {
                    return;
                }
                conds.retain(|c| c["type"] != "PodScheduled");
                conds.push(json!({"type": "PodScheduled", "status": "False",
                    "lastProbeTime": null, "lastTransitionTime": now,
                    "reason": "Unschedulable", "message": message}));
            });
            continue;
        }
        controller_write(st, &k, "kube-scheduler", false, |o| {
            o["spec"]["nodeName"] = json!("fake-node");
        });
        let Some(scheduled) = st.objects.get(&k).map(|s| s.obj.clone()) else {
            continue;
        };
        let status = running_status(st, &scheduled);
        controller_write(st, &k, "kubelet", true, |o| {
            o["status"] = status;
        });
        if let Some(owner) = crate::controllers::lifecycle::owner_of(st, &pod)
            && let Some(s) = st.objects.get_mut(&owner)
        {
            s.ready_due = Some(now);
        }
    }
}
