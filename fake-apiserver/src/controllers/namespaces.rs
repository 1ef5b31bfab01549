//! The namespace lifecycle, as kube-apiserver and kube-controller-manager's namespace
//! controller run it. Deleting a namespace sets its `deletionTimestamp` and phase
//! `Terminating` (the `kubernetes` finalizer in `spec.finalizers` holds it); from then on a
//! create of anything in it is refused with 403 (`ops::write`, and controllers' creates in
//! [`crate::store::objects::create_by`]). The controller, run with the other simulated controllers,
//! deletes every object in the namespace as an API delete does (an object with finalizers gets
//! a `deletionTimestamp` and stays until they are gone: KubeRay's Redis cleanup finalizer,
//! `kubernetes.io/pvc-protection`), reports what remains in the namespace's conditions, and
//! once nothing is left drops `kubernetes` from `spec.finalizers` and removes the namespace:
//! the namespace goes last.

use crate::store::objects::{delete_by, remove_cascading, update_by};
use crate::store::{Key, State, key};
use crate::util::{get, now_rfc3339};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const MANAGER: &str = "kube-controller-manager";

/// The API's delete of a namespace: `deletionTimestamp`, phase `Terminating`.
pub fn terminate(st: &mut State, k: &Key) {
    if st
        .objects
        .get(k)
        .is_none_or(|s| get(&s.obj, &["metadata", "deletionTimestamp"]).is_some())
    {
        return;
    }
    let now = now_rfc3339();
    update_by(st, k, "kube-apiserver", false, |o| {
        o["metadata"]["deletionTimestamp"] = json!(now);
        o["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        o["status"]["phase"] = json!("Terminating");
    });
}

/// Namespaces being deleted.
pub fn terminating(st: &State) -> Vec<String> {
    st.of_kind("", "namespaces")
        .filter(|(_, s)| get(&s.obj, &["metadata", "deletionTimestamp"]).is_some())
        .map(|(k, _)| k.3.clone())
        .collect()
}

/// One pass of the namespace controller over every namespace being deleted.
pub fn tick(st: &mut State) {
    for ns in terminating(st) {
        let contents = |st: &State| -> Vec<Key> {
            st.objects
                .keys()
                .filter(|(_, _, n, _)| *n == ns)
                .cloned()
                .collect()
        };
        for k in contents(st) {
            delete_by(st, &k);
        }
        let left = contents(st);
        let nk = key("", "namespaces", "", &ns);
        if left.is_empty() {
            update_by(st, &nk, MANAGER, false, |o| {
                o["spec"]["finalizers"] = json!([]);
            });
            if st
                .objects
                .get(&nk)
                .is_some_and(|s| !crate::store::objects::has_finalizers(&s.obj))
            {
                remove_cascading(st, &nk);
            }
            continue;
        }
        let conditions = conditions(st, &left);
        update_by(st, &nk, MANAGER, false, |o| {
            // Unchanged conditions keep their transition times (and the namespace its
            // resourceVersion).
            let same = |a: &Value, b: &Value| {
                let strip = |v: &Value| {
                    let mut v = v.clone();
                    for c in v.as_array_mut().into_iter().flatten() {
                        if let Some(m) = c.as_object_mut() {
                            m.remove("lastTransitionTime");
                        }
                    }
                    v
                };
                strip(a) == strip(b)
            };
            if !same(&o["status"]["conditions"], &conditions) {
                o["status"]["conditions"] = conditions;
            }
        });
    }
}

/// The namespace controller's conditions while `left` remain: what kinds, and which finalizers
/// hold them (kube-controller-manager's wording).
fn conditions(st: &State, left: &[Key]) -> Value {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
    for k in left {
        let resource = if k.0.is_empty() {
            k.1.clone()
        } else {
            format!("{}.{}", k.1, k.0)
        };
        *kinds.entry(resource).or_default() += 1;
        let obj = st.objects.get(k).map(|s| &s.obj);
        for f in obj
            .and_then(|o| get(o, &["metadata", "finalizers"]))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            *finalizers.entry(f.to_string()).or_default() += 1;
        }
    }
    let list = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, n)| format!("{k} has {n} resource instances"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let now = now_rfc3339();
    let cond = |t: &str, status: &str, reason: &str, message: String| json!({"type": t, "status": status, "lastTransitionTime": now, "reason": reason, "message": message});
    let mut out = vec![
        cond(
            "NamespaceDeletionDiscoveryFailure",
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
        cond(
            "NamespaceDeletionGroupVersionParsingFailure",
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
        cond(
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        ),
        cond(
            "NamespaceContentRemaining",
            "True",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", list(&kinds)),
        ),
    ];
    if !finalizers.is_empty() {
        let held = finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(cond(
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizersRemain",
            format!("Some content in the namespace has finalizers remaining: {held}"),
        ));
    }
    Value::Array(out)
}
