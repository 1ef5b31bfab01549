//! Which live objects are provably this stack's. raystack updates, prunes and deletes only
//! those; an object it would create that already exists without its label is adopted only when
//! the user says so (`--adopt`, `--take-ownership` for objects another tool manages), and one
//! labelled for another stack is never touched. Pure: the engine gathers the live objects and
//! the namespace's contents, this file decides.
//!
//! The proof is the `raystack.dev/stack` label every rendered object carries
//! (`render::meta`), inside the stack's namespace (or the Namespace itself), and for what state
//! records, the UID it recorded. A name alone proves nothing: another app, another checkout or an
//! edited state document can name any object.

use serde_json::Value;

use super::model::{Action, ResourceChange};
pub use super::model::{Adoption, ImportProof};
use crate::kind::{Kind, ObjectRef};
use crate::state::ResourceState;

/// The label that says which stack an object belongs to.
pub const STACK_LABEL: &str = "raystack.dev/stack";

/// Who a live object belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Labelled for this stack.
    Ours,
    /// Labelled for another stack.
    OtherStack(String),
    /// No stack label: not created by raystack.
    Unowned(Adoption),
}

fn label<'a>(live: &'a Value, key: &str) -> Option<&'a str> {
    live.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn annotation<'a>(live: &'a Value, key: &str) -> Option<&'a str> {
    live.pointer("/metadata/annotations")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// Whom `live` belongs to, for stack `stack`.
pub fn claim(live: &Value, stack: &str) -> Claim {
    match label(live, STACK_LABEL) {
        Some(s) if s == stack => Claim::Ours,
        Some(other) => Claim::OtherStack(other.to_string()),
        None => Claim::Unowned(owner(live)),
    }
}

/// Who manages an object raystack did not create: the deployment tool its labels and
/// annotations name (Helm, Argo CD, kapp), else its field managers.
pub fn owner(live: &Value) -> Adoption {
    let tool = if label(live, "app.kubernetes.io/managed-by") == Some("Helm")
        || annotation(live, "meta.helm.sh/release-name").is_some()
    {
        Some(format!(
            "Helm (release `{}`)",
            annotation(live, "meta.helm.sh/release-name").unwrap_or("unknown")
        ))
    } else if annotation(live, "argocd.argoproj.io/tracking-id").is_some()
        || label(live, "argocd.argoproj.io/instance").is_some()
    {
        Some("Argo CD".to_string())
    } else if label(live, "kapp.k14s.io/app").is_some()
        || annotation(live, "kapp.k14s.io/identity").is_some()
    {
        Some("kapp".to_string())
    } else {
        None
    };
    let mut managers: Vec<String> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("manager").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    managers.dedup();
    let owner = match (&tool, managers.is_empty()) {
        (Some(t), _) => t.clone(),
        (None, false) => managers.join(", "),
        (None, true) => "unknown".to_string(),
    };
    Adoption {
        owner,
        tool,
        import: None,
    }
}

/// Whether `r` lies where this stack's objects do: its namespace, or the Namespace itself, and
/// a name the stack renders (`<stack>` or `<stack>-…`, or one the stack file itself declares,
/// `declared`: the existing Redis objects `[redis] name/pvc/config_map/password_secret` adopt).
pub fn in_scope(r: &ObjectRef, stack: &str, namespace: &str, declared: &[String]) -> bool {
    let place = match r.kind {
        Kind::Namespace => r.name == namespace,
        _ if r.kind.namespaced() => r.namespace.as_deref() == Some(namespace),
        // Cluster-scoped kinds other than the Namespace (a StorageClass) are named by the stack.
        _ => true,
    };
    let name = r.kind == Kind::Namespace
        || r.name == stack
        || r.name.starts_with(&format!("{stack}-"))
        || declared.contains(&r.name);
    place && name
}

/// Marks the change of a desired object with who owns its live object: an adoption, a shared
/// Namespace left to the stack that created it (two stacks may share one), or — returned — the
/// blocking problem of an object labelled for another stack.
pub fn mark_desired(c: &mut ResourceChange, claim: Claim) -> Option<String> {
    match claim {
        Claim::Ours => None,
        Claim::OtherStack(other) if c.kind == Kind::Namespace => {
            leave_alone(
                c,
                &format!("shared with stack `{other}`, which created it and manages it"),
            );
            None
        }
        Claim::OtherStack(other) => Some(format!(
            "`{}` exists and belongs to stack `{other}` (label {STACK_LABEL}={other}); raystack never takes another stack's objects: give one of the stacks another name or namespace",
            c.address
        )),
        Claim::Unowned(adoption) => {
            c.adopt = Some(adoption);
            None
        }
    }
}

/// What an adopted object's plan says when kubectl's client-side managers own fields of it
/// (`crate::apply::csa` moves them): `None` when none does.
pub fn csa_note(live: &Value) -> Option<String> {
    let mut managers: Vec<&str> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("operation").and_then(Value::as_str) == Some("Update"))
        .filter_map(|e| e.get("manager").and_then(Value::as_str))
        .filter(|m| *m == "kubectl" || m.starts_with("kubectl-"))
        .collect();
    managers.dedup();
    let annotation = live
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
        .is_some();
    (!managers.is_empty()).then(|| {
        format!(
            "apply first moves field ownership from {} to raystack (as client-go's csaupgrade does), so fields only kubectl set and the stack does not are removed{}",
            managers.join(", "),
            if annotation {
                ", the kubectl.kubernetes.io/last-applied-configuration annotation among them"
            } else {
                ""
            }
        )
    })
}

/// Marks an adoption with what the stack's `[[import.adopt]]` proves: the object `raystack
/// import` found is adopted without `--adopt` only while its live UID is the recorded one (a
/// name alone proves nothing: the object may have been deleted and recreated since).
pub fn prove_import(
    adoption: &mut Adoption,
    r: &ObjectRef,
    live_uid: Option<&str>,
    imported: &[crate::stack::ImportedObject],
) {
    let Some(recorded) = imported
        .iter()
        .find(|o| o.kind == r.kind.as_str() && o.name == r.name)
    else {
        return;
    };
    adoption.import = Some(if live_uid == Some(recorded.uid.as_str()) {
        ImportProof::Imported
    } else {
        ImportProof::Recreated
    });
}

/// Whether a tracked object no longer desired, or any object of a destroy, may be deleted:
/// `None` when it is provably this stack's, else why it is left alone.
pub fn deletable(
    r: &ObjectRef,
    live: &Value,
    recorded: Option<&ResourceState>,
    adopted: bool,
    stack: &str,
    namespace: &str,
    declared: &[String],
) -> Option<String> {
    if !in_scope(r, stack, namespace, declared) {
        return Some(format!(
            "it is outside stack `{stack}`'s namespace and names: state is data, not authority"
        ));
    }
    match claim(live, stack) {
        Claim::Ours => {}
        Claim::OtherStack(other) => {
            return Some(format!(
                "it belongs to stack `{other}` ({STACK_LABEL}={other})"
            ));
        }
        Claim::Unowned(a) => {
            return Some(format!(
                "it was not created by raystack (no {STACK_LABEL} label; managed by {})",
                a.owner
            ));
        }
    }
    if r.kind == Kind::Namespace && recorded.is_none() {
        return Some("state does not record it, so raystack did not create it".into());
    }
    if let Some(rec) = recorded {
        let uid = live.pointer("/metadata/uid").and_then(Value::as_str);
        if adopted && r.kind == Kind::Namespace {
            return Some("raystack adopted this namespace; it did not create it".into());
        }
        if !rec.uid.is_empty() && uid.is_some_and(|u| u != rec.uid) && r.kind == Kind::Namespace {
            return Some("it is not the namespace raystack created (another UID)".into());
        }
    }
    None
}

/// The kinds whose objects in a namespace keep raystack from deleting it when it did not
/// create them (what a team puts next to a Ray cluster; controller-made objects such as pods
/// carry an owner and are not counted).
pub const CONTENT_KINDS: [Kind; 8] = [
    Kind::PersistentVolumeClaim,
    Kind::StatefulSet,
    Kind::RayCluster,
    Kind::Service,
    Kind::ConfigMap,
    Kind::Secret,
    Kind::Job,
    Kind::Pod,
];

/// The objects among `contents` (of `kind`) that raystack did not create: not recorded in
/// state (by UID), not made by a controller (no ownerReferences; KubeRay's cleanup Job for the
/// stack's RayCluster, labelled `ray.io/cluster=<stack>`, has none), and not what Kubernetes
/// puts in every namespace. Named `Kind/name`.
pub fn foreign_contents(
    kind: Kind,
    contents: &[Value],
    recorded_uids: &[&str],
    stack: &str,
) -> Vec<String> {
    contents
        .iter()
        .filter(|o| {
            let uid = o
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("");
            let owned = o
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|r| !r.is_empty());
            let name = o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let kuberay_made = label(o, "ray.io/cluster") == Some(stack);
            let automatic = kuberay_made
                || (kind == Kind::ConfigMap && name == "kube-root-ca.crt")
                || (kind == Kind::Secret
                    && o.get("type").and_then(Value::as_str)
                        == Some("kubernetes.io/service-account-token"));
            !recorded_uids.contains(&uid) && !owned && !automatic
        })
        .map(|o| {
            format!(
                "{kind}/{}",
                o.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            )
        })
        .collect()
}

const LEFT_ALONE: &str = "left alone: ";

/// Why `c` is left alone, when it is ([`leave_alone`]).
pub fn left_alone(c: &ResourceChange) -> Option<&str> {
    c.reason.as_deref()?.strip_prefix(LEFT_ALONE)
}

/// Turns a change into "left alone" with `why` (destroy and pruning never delete it).
pub fn leave_alone(c: &mut ResourceChange, why: &str) {
    c.action = Action::NoOp;
    c.data_loss = false;
    c.data_loss_reason = None;
    c.before = None;
    c.reason = Some(format!("{LEFT_ALONE}{why}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_label_tells_ours_from_another_stacks_and_from_nobodys() {
        let ours = json!({"metadata": {"labels": {STACK_LABEL: "a"}}});
        assert_eq!(claim(&ours, "a"), Claim::Ours);
        assert_eq!(claim(&ours, "b"), Claim::OtherStack("a".into()));
        let kubectl = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-client-side-apply"}, {"manager": "kubectl-client-side-apply"}
        ]}});
        assert_eq!(
            claim(&kubectl, "a"),
            Claim::Unowned(Adoption {
                owner: "kubectl-client-side-apply".into(),
                tool: None,
                import: None,
            })
        );
        let helm = json!({"metadata": {
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "ray"}
        }});
        assert_eq!(owner(&helm).tool.as_deref(), Some("Helm (release `ray`)"));
    }

    #[test]
    fn only_the_stacks_namespace_and_names_are_in_scope() {
        let ns = |n: &str, name: &str| ObjectRef::new(Kind::ConfigMap, Some(n), name);
        assert!(in_scope(&ns("ray", "s-redis-config"), "s", "ray", &[]));
        assert!(in_scope(&ns("ray", "s"), "s", "ray", &[]));
        assert!(!in_scope(&ns("other", "s-redis-config"), "s", "ray", &[]));
        assert!(!in_scope(&ns("ray", "database"), "s", "ray", &[]));
        // A name the stack file declares (an adopted Redis object) is the stack's, in its namespace.
        let declared = ["redis-config".to_string()];
        assert!(in_scope(&ns("ray", "redis-config"), "s", "ray", &declared));
        assert!(!in_scope(
            &ns("other", "redis-config"),
            "s",
            "ray",
            &declared
        ));
        assert!(in_scope(
            &ObjectRef::new(Kind::Namespace, None, "ray"),
            "s",
            "ray",
            &[]
        ));
        assert!(!in_scope(
            &ObjectRef::new(Kind::Namespace, None, "default"),
            "s",
            "ray",
            &[]
        ));
    }
}

#[cfg(test)]
mod import_tests {
    use super::*;
    use crate::stack::ImportedObject;

    #[test]
    fn only_the_recorded_uid_proves_an_import() {
        let r = ObjectRef::new(Kind::StatefulSet, Some("ray"), "redis");
        let imported = [ImportedObject {
            kind: "StatefulSet".into(),
            name: "redis".into(),
            uid: "u-1".into(),
        }];
        let fresh = || Adoption {
            owner: "kubectl-client-side-apply".into(),
            tool: None,
            import: None,
        };
        let mut a = fresh();
        prove_import(&mut a, &r, Some("u-1"), &imported);
        assert_eq!(a.import, Some(ImportProof::Imported));
        let mut a = fresh();
        prove_import(&mut a, &r, Some("u-2"), &imported);
        assert_eq!(a.import, Some(ImportProof::Recreated));
        let mut a = fresh();
        let other = ObjectRef::new(Kind::Service, Some("ray"), "redis");
        prove_import(&mut a, &other, Some("u-1"), &imported);
        assert_eq!(
            a.import, None,
            "another kind of the same name is not recorded"
        );
    }
}
