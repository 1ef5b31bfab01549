//! Which live objects are provably this stack's. raystack updates, prunes and deletes only
//! those; an object it would create that already exists without its label is adopted only when
//! the user says so (`--adopt`, `--take-ownership` for objects another tool manages), and one
//! labelled for another stack is never touched. Pure: the engine gathers the live objects and
//! the namespace's contents, this file decides.
//!
//! The proof is the `raystack.dev/stack` label every rendered object carries
//! (`render::meta`), inside the stack's namespace (or the Namespace itself), together with the
//! state's lineage: every object raystack applies carries the `raystack.dev/lineage` annotation
//! of the state that applied it (the engine stamps it, [`stamp_lineage`]; `render` stays pure).
//! An object labelled for this stack with another lineage was applied from a second state of
//! the same stack (another checkout, a lost `[state]` section): it is never changed or deleted
//! from this one. One without the annotation (applied by an older raystack) is this state's
//! only when state recorded its UID. A name alone proves nothing: another app, another checkout
//! or an edited state document can name any object.

use serde_json::Value;

use super::model::{Action, ResourceChange};
pub use super::model::{Adoption, ImportProof};
use crate::kind::{Kind, ObjectRef};
use crate::state::ResourceState;

/// The label that says which stack an object belongs to.
pub const STACK_LABEL: &str = "raystack.dev/stack";

/// The annotation that says which state applied an object: its lineage ([`crate::state::State::lineage`]).
pub const LINEAGE_ANNOTATION: &str = "raystack.dev/lineage";

/// Marks a desired object with the lineage of the state that applies it.
pub fn stamp_lineage(desired: &mut Value, lineage: &str) {
    let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(LINEAGE_ANNOTATION.into(), Value::String(lineage.into()));
    }
}

/// What a plan shows as the lineage of a state that does not exist yet: its first apply draws
/// it, writes the state, and only then stamps it ([`settle_lineage`]), so a plan (and a plan
/// file) of a new stack says the same thing every time it is made.
pub const NEW_LINEAGE: &str = "(known after apply: the new state's lineage)";

/// Replaces [`NEW_LINEAGE`] in `manifest` with the lineage of the state just created.
pub fn settle_lineage(manifest: &mut Value, lineage: &str) {
    if annotation(manifest, LINEAGE_ANNOTATION) == Some(NEW_LINEAGE) {
        stamp_lineage(manifest, lineage);
    }
}

/// The lineage of the state that applied `live`, if it carries one.
pub fn lineage_of(live: &Value) -> Option<&str> {
    annotation(live, LINEAGE_ANNOTATION)
}

/// Who a live object belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Labelled for this stack, and applied from this state (or carrying no lineage).
    Ours,
    /// Labelled for this stack, but applied from another state of it: its lineage.
    OtherState(String),
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

/// Whom `live` belongs to, for stack `stack` and the state of lineage `lineage`.
pub fn claim(live: &Value, stack: &str, lineage: &str) -> Claim {
    match label(live, STACK_LABEL) {
        Some(s) if s == stack => match lineage_of(live) {
            Some(other) if other != lineage => Claim::OtherState(other.to_string()),
            _ => Claim::Ours,
        },
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
        // Named in the plan's `other_states` by the caller, which refuses apply and destroy.
        Claim::OtherState(lineage) => {
            leave_alone(c, &other_state_reason(&lineage));
            None
        }
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

/// Why an object of another state of the stack is left alone.
pub fn other_state_reason(lineage: &str) -> String {
    format!("it was applied from another state of this stack (lineage {lineage})")
}

/// How the plan's `other_states` names an object applied from another state.
pub fn other_state_entry(address: &str, lineage: &str) -> String {
    format!("{address} (lineage {lineage})")
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

/// What is this stack's: its name, its namespace, its state's lineage and the names of existing
/// objects its file declares (`[redis] name`, `pvc`, …).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub stack: &'a str,
    pub namespace: &'a str,
    pub lineage: &'a str,
    pub declared: &'a [String],
}

/// Whether a tracked object no longer desired, or any object of a destroy, may be deleted:
/// `None` when it is provably this stack's (its stack label, and this state's lineage or, for
/// an object without one, the UID state recorded), else why it is left alone.
pub fn deletable(
    r: &ObjectRef,
    live: &Value,
    recorded: Option<&ResourceState>,
    adopted: bool,
    scope: &Scope<'_>,
) -> Option<String> {
    let Scope {
        stack,
        namespace,
        lineage,
        declared,
    } = *scope;
    if !in_scope(r, stack, namespace, declared) {
        return Some(format!(
            "it is outside stack `{stack}`'s namespace and names: state is data, not authority"
        ));
    }
    let uid = live.pointer("/metadata/uid").and_then(Value::as_str);
    match claim(live, stack, lineage) {
        Claim::Ours => {}
        Claim::OtherState(other) => return Some(other_state_reason(&other)),
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
    // Applied by a raystack that did not stamp the lineage: this state's only if it recorded
    // this very object (its UID).
    let recorded_uid = recorded.is_some_and(|rec| !rec.uid.is_empty() && uid == Some(&rec.uid));
    if lineage_of(live).is_none() && !recorded_uid {
        return Some(format!(
            "it carries no {LINEAGE_ANNOTATION} and state does not record its UID, so no state proves it is this one's"
        ));
    }
    if let Some(rec) = recorded {
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
        assert_eq!(claim(&ours, "a", "l1"), Claim::Ours);
        assert_eq!(claim(&ours, "b", "l1"), Claim::OtherStack("a".into()));
        let stamped = json!({"metadata": {
            "labels": {STACK_LABEL: "a"},
            "annotations": {LINEAGE_ANNOTATION: "l1"}
        }});
        assert_eq!(claim(&stamped, "a", "l1"), Claim::Ours);
        assert_eq!(claim(&stamped, "a", "l2"), Claim::OtherState("l1".into()));
        let kubectl = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-client-side-apply"}, {"manager": "kubectl-client-side-apply"}
        ]}});
        assert_eq!(
            claim(&kubectl, "a", "l1"),
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
    fn only_this_states_objects_or_the_ones_it_recorded_are_deletable() {
        let r = ObjectRef::new(Kind::ConfigMap, Some("ray"), "s-redis-config");
        let live = |lineage: Option<&str>| {
            let mut v = json!({"metadata": {"uid": "u1", "labels": {STACK_LABEL: "s"}}});
            if let Some(l) = lineage {
                stamp_lineage(&mut v, l);
            }
            v
        };
        let rec = |uid: &str| ResourceState {
            address: r.address(),
            object: r.clone(),
            uid: uid.into(),
            resource_version: "1".into(),
            applied_hash: String::new(),
        };
        let ok = |live: &Value, recorded: Option<&ResourceState>| {
            deletable(
                &r,
                live,
                recorded,
                false,
                &Scope {
                    stack: "s",
                    namespace: "ray",
                    lineage: "mine",
                    declared: &[],
                },
            )
        };
        assert_eq!(ok(&live(Some("mine")), None), None);
        assert_eq!(ok(&live(Some("mine")), Some(&rec("u1"))), None);
        assert_eq!(
            ok(&live(Some("theirs")), Some(&rec("u1"))).as_deref(),
            Some("it was applied from another state of this stack (lineage theirs)")
        );
        // Applied by a raystack that did not stamp the lineage: the recorded UID proves it.
        assert_eq!(ok(&live(None), Some(&rec("u1"))), None);
        assert!(ok(&live(None), Some(&rec("u2"))).is_some());
        assert!(ok(&live(None), None).is_some());
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
