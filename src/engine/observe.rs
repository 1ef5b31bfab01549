//! Gathers what the pure diff engine needs: the live objects, server-side-apply dry-runs and
//! the recorded state, then builds the plan with `crate::plan`. Reads only; never writes.

use serde_json::Value;

use crate::cluster::{Cluster, ClusterError};
use crate::kind::{Kind, ObjectRef};
use crate::plan::{
    Action, Binding, DryRun, FIELD_MANAGER, FORMAT_VERSION, ObjectInputs, PasswordFacts, Plan,
    ResourceChange, classify,
};
use crate::preflight::Finding;
use crate::state::{ResourceState, State, applied_hash};

use super::listing::Listing;
use crate::apply::secret::{self, PASSWORD_KEY};
use crate::plan::{autoscaler, ownership};

/// What a plan is made from, besides the cluster.
pub struct PlanInputs<'a> {
    pub stack: &'a str,
    pub namespace: &'a str,
    /// Rendered objects in apply order, moved into the plan's changes (their `manifest`).
    pub desired: Vec<Value>,
    /// [`crate::state::applied_hash`] of each desired object, in the same order; empty when
    /// there is no state, which is all they are compared with.
    pub desired_hashes: &'a [String],
    pub durability: Value,
    pub preflight: Vec<Finding>,
    pub state: Option<&'a State>,
    /// The lineage of the state the plan is made with (a new state's, when none is recorded
    /// yet): live objects of the stack carrying another are a second state's.
    pub lineage: &'a str,
    pub binding: Binding,
    /// The command's listing and the cluster it lists (as the command names it), when the command plans
    /// many stacks ([`super::listing`]).
    pub listing: Option<(&'a Listing, &'a super::connect::Key)>,
    /// Whether each change keeps its `manifest` ([`crate::plan::ObjectInputs::keep_manifest`]).
    pub keep_manifests: bool,
    /// `[[import.adopt]]`: the objects `raystack import` found, by UID.
    pub imported: &'a [crate::stack::ImportedObject],
    /// The object names the stack file declares (`[redis] name`, ...): in its scope like
    /// `<stack>-…` (`plan::ownership::in_scope`).
    pub declared: &'a [String],
}

fn empty_plan(i: &PlanInputs<'_>, offline: bool) -> Plan {
    Plan {
        format_version: FORMAT_VERSION.into(),
        stack: i.stack.into(),
        namespace: i.namespace.into(),
        offline,
        destroy: false,
        durability: i.durability.clone(),
        preflight: i.preflight.clone(),
        resource_changes: Vec::new(),
        summary: Default::default(),
        data_loss: false,
        drift: false,
        errors: Vec::new(),
        kept: Vec::new(),
        other_states: Vec::new(),
        binding: i.binding.clone(),
    }
}

/// `desired_hash` is [`applied_hash`] of `desired` when the caller has it.
fn inputs_for(
    r: &ObjectRef,
    desired: Option<Value>,
    desired_hash: Option<&String>,
    state: Option<&State>,
    offline: bool,
) -> ObjectInputs {
    let address = r.address();
    let prior_hash = state
        .and_then(|s| s.resource(&address))
        .map(|x| x.applied_hash.clone());
    ObjectInputs {
        // Only ever compared with the prior hash: an object state does not know is not hashed
        // (canonical JSON and SHA-256 of every object of every new stack, for nothing).
        desired_hash: desired
            .as_ref()
            .filter(|_| prior_hash.is_some())
            .map(|d| desired_hash.cloned().unwrap_or_else(|| applied_hash(d))),
        prior_hash,
        // Only an offline plan compares with it.
        prior_manifest: state
            .filter(|_| offline)
            .and_then(|s| s.manifest(&address))
            .cloned(),
        address,
        api_version: r.api_version.clone(),
        kind: r.kind,
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        desired,
        live: None,
        dry_run: DryRun::NotRun,
        offline,
        keep_manifest: true,
        password: PasswordFacts::default(),
    }
}

/// Tracked objects that are no longer desired, in state order.
fn pruned(desired: &[Value], state: Option<&State>) -> Vec<ObjectRef> {
    let wanted: Vec<String> = desired
        .iter()
        .map(|d| ObjectRef::of_rendered(d).address())
        .collect();
    state
        .map(|s| s.resources.iter())
        .into_iter()
        .flatten()
        .filter(|r| !wanted.contains(&r.address))
        .map(|r| r.object.clone())
        .collect()
}

/// Plans against state alone (no cluster).
pub fn plan_offline(mut i: PlanInputs<'_>) -> Plan {
    let mut plan = empty_plan(&i, true);
    let prune_refs = pruned(&i.desired, i.state);
    for (n, d) in std::mem::take(&mut i.desired).into_iter().enumerate() {
        let mut inputs = inputs_for(
            &ObjectRef::of_rendered(&d),
            Some(d),
            i.desired_hashes.get(n),
            i.state,
            true,
        );
        inputs.keep_manifest = i.keep_manifests;
        plan.resource_changes.push(classify(inputs));
    }
    for r in prune_refs {
        plan.resource_changes
            .push(classify(inputs_for(&r, None, None, i.state, true)));
    }
    plan.finish()
}

/// Plans against the cluster: dry-runs every apply, and reads the objects a dry-run cannot
/// show (docs/design.md §6.1) and the tracked ones no longer desired. Objects are observed
/// concurrently (reads and dry-runs only), so a plan costs about one round trip of latency
/// instead of one per request; results keep apply order.
pub async fn plan_online(mut i: PlanInputs<'_>, cluster: &Cluster) -> Result<Plan, ClusterError> {
    let mut plan = empty_plan(&i, false);
    let prune_refs = pruned(&i.desired, i.state);
    let mut desired: Vec<(usize, Value)> = std::mem::take(&mut i.desired)
        .into_iter()
        .enumerate()
        .collect();
    // Planning many stacks, a stack whose namespace state does not know asks about the
    // namespace first. When the namespace does not exist, neither does anything in it: each
    // namespaced dry-run would answer 404, which plans a create without a dry-run, so none is
    // sent (a new stack costs 1 request instead of 8). One stack sends them all at once.
    let mut first = Vec::new();
    let mut namespace_absent = false;
    if i.listing.is_some()
        && let Some(at) = desired.iter().position(|(_, d)| {
            let r = ObjectRef::of_rendered(d);
            r.kind == Kind::Namespace && i.state.and_then(|s| s.resource(&r.address())).is_none()
        })
    {
        let (n, d) = desired.remove(at);
        let observed = observe_desired(d, i.desired_hashes.get(n), &i, cluster, false).await?;
        namespace_absent = observed.0.action == Action::Create;
        first.push(observed);
    }
    let desired =
        futures::future::try_join_all(desired.into_iter().map(|(n, d)| {
            observe_desired(d, i.desired_hashes.get(n), &i, cluster, namespace_absent)
        }));
    let pruned = futures::future::try_join_all(prune_refs.iter().map(|r| async {
        let mut inputs = inputs_for(r, None, None, i.state, false);
        inputs.live = cluster.get(r).await?;
        // Only what is provably this stack's is pruned (`plan::ownership`).
        let refused = inputs.live.as_ref().and_then(|live| {
            ownership::deletable(
                r,
                live,
                i.state.and_then(|s| s.resource(&r.address())),
                i.state.is_some_and(|s| s.adopted.contains(&r.address())),
                &ownership::Scope {
                    stack: i.stack,
                    namespace: i.namespace,
                    lineage: i.lineage,
                    declared: i.declared,
                },
            )
        });
        let other = other_state_of(inputs.live.as_ref(), r, &i);
        let mut change = classify(inputs);
        if let Some(other) = other {
            ownership::leave_alone(&mut change, refused.as_deref().unwrap_or_default());
            return Ok::<_, ClusterError>((change, None, Some(other)));
        }
        let problem = refused.map(|why| {
            ownership::leave_alone(&mut change, &why);
            format!(
                "state records `{}`, which is no longer in the stack, but raystack will not delete it: {why}; remove it from state (`raystack state pull`, edit, and write back) or delete it yourself",
                change.address
            )
        });
        Ok::<_, ClusterError>((change, problem, None))
    }));
    let (desired, pruned) = futures::future::try_join(desired, pruned).await?;
    // The namespace comes first in apply order.
    for (change, problem, other) in first.into_iter().chain(desired).chain(pruned) {
        plan.errors.extend(problem);
        plan.other_states.extend(other);
        plan.resource_changes.push(change);
    }
    Ok(plan.finish())
}

/// How the plan names `live` when another state of the stack applied it (`plan::ownership`).
fn other_state_of(live: Option<&Value>, r: &ObjectRef, i: &PlanInputs<'_>) -> Option<String> {
    match ownership::claim(live?, i.stack, i.lineage) {
        ownership::Claim::OtherState(lineage) => {
            Some(ownership::other_state_entry(&r.address(), &lineage))
        }
        _ => None,
    }
}

/// A desired object's change, the problem that blocks it, and how the plan names it when
/// another state of the stack applied it.
type Observed = (ResourceChange, Option<String>, Option<String>);

/// The live object and the server-side-apply dry-run of one desired object, classified.
async fn observe_desired(
    desired: Value,
    hash: Option<&String>,
    i: &PlanInputs<'_>,
    cluster: &Cluster,
    namespace_absent: bool,
) -> Result<Observed, ClusterError> {
    let state = i.state;
    let r = ObjectRef::of_rendered(&desired);
    let mut inputs = inputs_for(&r, Some(desired), hash, state, false);
    inputs.keep_manifest = i.keep_manifests;
    let d = inputs
        .desired
        .as_ref()
        .expect("inputs_for keeps the desired object");
    let recorded = state.and_then(|s| s.resource(&inputs.address));
    // A RayCluster with autoscaled groups: the live sizes go into what is dry-run and applied
    // (`plan::autoscaler`), so the live object is read first.
    let mut autoscaler_notes = Vec::new();
    let (live, dry_run) = match recorded {
        // Its namespace does not exist (asked first, above): as a 404 from its dry-run says.
        _ if namespace_absent && r.kind.namespaced() => (None, DryRun::NotRun),
        _ if r.kind == Kind::RayCluster && autoscaler::has_autoscaled_groups(d) => {
            let live = cluster.get(&r).await?;
            let desired = inputs
                .desired
                .as_mut()
                .expect("inputs_for keeps the desired object");
            if let Some(l) = &live {
                autoscaler_notes = autoscaler::keep_live_replicas(desired, l);
            }
            let dry_run = dry_run_of(
                cluster.apply(desired, FIELD_MANAGER, true).await,
                live.is_none(),
            )?;
            (live, dry_run)
        }
        // Applied before, and changed in the stack since: the plan shows the live object next
        // to what the apply makes of it, so read it while the server dry-runs the apply.
        Some(_) if inputs.desired_hash != inputs.prior_hash => {
            let (live, dry_run) =
                futures::future::join(cluster.get(&r), cluster.apply(d, FIELD_MANAGER, true)).await;
            let live = live?;
            let dry_run = dry_run_of(dry_run, live.is_none())?;
            (live, dry_run)
        }
        // Unchanged in the stack since the last apply, or unknown to state: the dry-run comes
        // first, and its answer often makes the read needless. Planning many stacks, a listed
        // object can make the dry-run needless too.
        _ => {
            let listed = match (i.listing, recorded) {
                (Some((listing, named)), Some(_)) => {
                    listing.take(cluster, named, i.stack, &r).await
                }
                _ => None,
            };
            match listed {
                // Listed at the version state recorded: the same proof as a dry-run's answer
                // at that version below, without the dry-run.
                Some(v)
                    if recorded.is_some_and(|x| {
                        Some(x.resource_version.as_str()) == stored_version(&v)
                    }) =>
                {
                    (Some(v), DryRun::Live)
                }
                listed => observe_by_dry_run(d, &r, recorded, listed, cluster).await?,
            }
        }
    };
    // Who the live object belongs to (`plan::ownership` decides): read before it moves.
    let claim = live
        .as_ref()
        .map(|l| ownership::claim(l, i.stack, i.lineage));
    let other = other_state_of(live.as_ref(), &r, i);
    let csa_note = live.as_ref().and_then(ownership::csa_note);
    let live_uid = live
        .as_ref()
        .and_then(|l| l.pointer("/metadata/uid"))
        .and_then(Value::as_str)
        .map(str::to_string);
    inputs.live = live;
    inputs.dry_run = dry_run;
    // The facts `plan::classify` decides the password Secret's change on.
    if r.kind == Kind::Secret
        && let Some(live) = &inputs.live
    {
        inputs.password = PasswordFacts {
            missing: live.pointer(&format!("/data/{PASSWORD_KEY}")).is_none(),
            changed: secret::password_changed(state, &r.name, live),
        };
    }
    let mut change = classify(inputs);
    change.notes.extend(autoscaler_notes);
    let problem = claim.and_then(|claim| ownership::mark_desired(&mut change, claim));
    if let Some(adoption) = change.adopt.as_mut() {
        ownership::prove_import(adoption, &r, live_uid.as_deref(), i.imported);
        change.notes.extend(csa_note);
    }
    Ok((change, problem, other))
}

/// The dry-run of a desired object that is unchanged in the stack since the last apply or
/// unknown to state, and the live object, read only when the dry-run's answer cannot be it.
/// `listed` is the object as the command's listing holds it, if it does: live when the dry-run
/// answers with its version.
async fn observe_by_dry_run(
    d: &Value,
    r: &ObjectRef,
    recorded: Option<&ResourceState>,
    listed: Option<Value>,
    cluster: &Cluster,
) -> Result<(Option<Value>, DryRun), ClusterError> {
    Ok(match cluster.apply(d, FIELD_MANAGER, true).await {
        // A server-side apply dry-run answers with the stored object's resourceVersion when
        // the object exists and with none when the apply would create it (kube-apiserver's
        // DryRunnableStorage: a dry-run update starts from the stored object, a dry-run
        // create is never stored).
        Ok(v) => {
            match stored_version(&v).map(|rv| recorded.is_some_and(|x| x.resource_version == rv)) {
                None => (None, DryRun::Ok(v)),
                // The version state recorded: nobody has written the object since raystack did
                // (every write moves it), and the stack has not changed since either, so the
                // apply is a no-op and its dry-run is the live object itself.
                Some(true) => (Some(v), DryRun::Live),
                // Written since (a controller's status, an edit), or unknown to state (state
                // lost, an apply interrupted before its state write): read it.
                Some(false) => {
                    let live = match listed {
                        Some(l) if stored_version(&l) == stored_version(&v) => Some(l),
                        _ => cluster.get(r).await?,
                    };
                    (live, DryRun::Ok(v))
                }
            }
        }
        Err(e) => {
            // A 404: its namespace or kind does not exist yet, so neither does it. Anything
            // else cannot tell (403 for read-only credentials, 409, 422): read it.
            let live = if e.code() == Some(404) {
                None
            } else {
                cluster.get(r).await?
            };
            let dry_run = dry_run_of(Err(e), live.is_none())?;
            (live, dry_run)
        }
    })
}

/// The resourceVersion a server answer carries, if any.
fn stored_version(v: &Value) -> Option<&str> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty())
}

/// What a dry-run's answer means for the plan; `absent` when the object is not in the cluster.
fn dry_run_of(answer: Result<Value, ClusterError>, absent: bool) -> Result<DryRun, ClusterError> {
    match answer {
        Ok(v) => Ok(DryRun::Ok(v)),
        Err(e) if e.code() == Some(422) => Ok(DryRun::Invalid(
            e.server_message().unwrap_or_default().to_string(),
        )),
        // Creating into a namespace that does not exist yet, or a kind not served yet: the
        // plan can still say "create"; apply reports a real problem.
        Err(e) if absent && matches!(e.code(), Some(404) | Some(409)) => Ok(DryRun::NotRun),
        // Read-only credentials (a pull-request job) may not dry-run a patch: compare the
        // desired object with the live one directly.
        Err(e) if e.code() == Some(403) => Ok(DryRun::NotRun),
        Err(e) => Err(e),
    }
}

/// Plans the deletion of everything tracked (and of desired objects that exist although state
/// missed them, e.g. after an interrupted apply). Unless `delete_volume` (`--allow-data-loss`,
/// or `protect_volume = false`) the Redis volume and the namespace holding it are kept, and
/// listed in `kept`.
pub async fn plan_destroy(
    i: PlanInputs<'_>,
    cluster: &Cluster,
    delete_volume: bool,
) -> Result<Plan, ClusterError> {
    let mut plan = empty_plan(&i, false);
    plan.destroy = true;
    let mut refs: Vec<ObjectRef> = pruned(&[], i.state);
    for d in &i.desired {
        let r = ObjectRef::of_rendered(d);
        if !refs.iter().any(|x| x.address() == r.address()) {
            refs.push(r);
        }
    }
    // This stack's objects found without any state: another state of the stack exists.
    let mut without_state = Vec::new();
    for r in refs {
        let recorded = i.state.and_then(|s| s.resource(&r.address()));
        let tracked = recorded.is_some();
        let mut inputs = inputs_for(&r, None, None, i.state, false);
        inputs.live = cluster.get(&r).await?;
        if !tracked && inputs.live.is_none() {
            continue;
        }
        let gone = inputs.live.is_none();
        // Only what is provably this stack's is deleted (`plan::ownership`).
        let refused = match &inputs.live {
            None => None,
            Some(live) => {
                let adopted = i.state.is_some_and(|s| s.adopted.contains(&r.address()));
                let mut why = ownership::deletable(
                    &r,
                    live,
                    recorded,
                    adopted,
                    &ownership::Scope {
                        stack: i.stack,
                        namespace: i.namespace,
                        lineage: i.lineage,
                        declared: i.declared,
                    },
                );
                plan.other_states.extend(other_state_of(Some(live), &r, &i));
                if why.is_none() && r.kind == Kind::Namespace {
                    why = namespace_contents_refusal(&r.name, i.stack, i.state, cluster).await?;
                }
                // Labelled for this stack, without another state's lineage (an older
                // raystack's object carries none), yet no state here: whose is it?
                let ours = ownership::claim(live, i.stack, i.lineage) == ownership::Claim::Ours;
                if i.state.is_none()
                    && ours
                    && r.kind != Kind::Namespace
                    && ownership::in_scope(&r, i.stack, i.namespace, i.declared)
                {
                    without_state.push(r.address());
                }
                why
            }
        };
        let mut c: ResourceChange = classify(inputs);
        c.manifest = None;
        if let Some(why) = refused {
            ownership::leave_alone(&mut c, &why);
            plan.resource_changes.push(c);
            continue;
        }
        if gone {
            // Deleted outside raystack (e.g. with its namespace): nothing is left to delete,
            // keep or lose; destroy only drops the state entry and says so.
            c.data_loss = false;
            c.data_loss_reason = None;
            c.reason = Some(
                "already gone from the cluster (deleted outside raystack); only the state entry is removed"
                    .into(),
            );
        } else {
            c.reason = Some("destroy".into());
        }
        if c.kind == Kind::RayCluster && c.before.is_some() {
            c.notes.push(
                "destroy waits until the RayCluster is gone (KubeRay's finalizer done) before it touches any Redis object: the cleanup Job needs Redis running".into(),
            );
        }
        // Deleting the RayCluster is what destroy means; the flag guards the volumes.
        if c.data_loss && !delete_volume && c.kind != Kind::RayCluster {
            let why = if c.kind == Kind::Namespace {
                "it holds the Redis volume"
            } else {
                "the Redis volume is protected (protect_volume = true)"
            };
            c.action = Action::NoOp;
            c.data_loss = false;
            c.data_loss_reason = None;
            c.reason = Some(format!("kept: {why}; pass --allow-data-loss to delete it"));
            if c.kind == Kind::PersistentVolumeClaim {
                c.notes.push("the kept volume will not hold the deleted RayCluster's GCS state: KubeRay's cleanup Job deletes it from Redis first, and a new RayCluster gets a new storage namespace (its UID)".into());
            }
            plan.kept.push(c.address.clone());
        }
        plan.resource_changes.push(c);
    }
    if !without_state.is_empty() {
        plan.errors.push(format!(
            "stack `{}` has no state here, but the cluster holds its objects ({}): another state of this stack exists (another checkout, or a copy of the stack file that lost its `[state]` section); destroy with that state (the right `[state]`, or `raystack state pull` from it), or delete them yourself",
            i.stack,
            without_state.join(", ")
        ));
    }
    plan.resource_changes
        .sort_by_key(|c| std::cmp::Reverse(c.kind.apply_rank()));
    Ok(plan.finish())
}

/// Why the stack's namespace must be kept: what is in it that raystack did not create (none:
/// `None`). Lists the kinds a team would put there ([`ownership::CONTENT_KINDS`]).
async fn namespace_contents_refusal(
    namespace: &str,
    stack: &str,
    state: Option<&State>,
    cluster: &Cluster,
) -> Result<Option<String>, ClusterError> {
    let uids: Vec<&str> = state
        .map(|s| s.resources.iter().map(|r| r.uid.as_str()).collect())
        .unwrap_or_default();
    let lists = futures::future::try_join_all(
        ownership::CONTENT_KINDS
            .iter()
            .map(|kind| cluster.list_in(*kind, namespace)),
    )
    .await?;
    let mut foreign = Vec::new();
    for (kind, items) in ownership::CONTENT_KINDS.iter().zip(&lists) {
        foreign.extend(ownership::foreign_contents(*kind, items, &uids, stack));
    }
    Ok((!foreign.is_empty()).then(|| {
        let shown = foreign.len().min(5);
        format!(
            "it holds objects raystack did not create ({}{}); they and the namespace are kept",
            foreign[..shown].join(", "),
            if foreign.len() > shown {
                format!(" and {} more", foreign.len() - shown)
            } else {
                String::new()
            }
        )
    }))
}
