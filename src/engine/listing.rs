//! One LIST per kind for a whole `plan STACK...` (docs/design.md §6.1, "Many stacks: one list
//! per kind"). A plan of one stack learns that an applied object is unchanged from its dry-run,
//! one request per object; a plan of many stacks lists each kind once, across namespaces, for
//! every stack it plans (label `raystack.dev/stack in (...)`), and an object whose listed
//! resourceVersion is the one state recorded needs no request of its own.
//!
//! The listing is only ever a positive answer: an object it does not hold (a LIST refused by
//! RBAC or failed, a label removed by hand, an object listed once already) is observed exactly
//! as a plan of its stack alone observes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::connect::Key as Named;
use crate::cluster::Cluster;
use crate::kind::{Kind, ObjectRef};
use crate::memo::OnceMap;
use crate::render::STACK_LABEL;

/// Stack names per LIST: keeps the request line short (a name is at most 63 characters, so a
/// selector of 100 stays under 7 KB) and a single stack's share of one answer small.
const NAMES_PER_LIST: usize = 100;

/// The objects one LIST answered with, by address; each is handed out once. `None` once the
/// LIST failed: its stacks observe object by object.
type Listed = Option<Arc<Mutex<HashMap<String, Value>>>>;

/// A cluster (as the command names it: kubeconfig and context), a kind and a group of stack
/// names: one LIST.
type Key = (Named, Kind, usize);

/// Whether `kind` is listed as soon as the cluster's client exists, alongside its identity
/// read: every kind a stack renders but a StorageClass and a PrometheusRule (only stacks with
/// `[monitoring] prometheus_rules` render one, and a cluster without prometheus-operator has no
/// such resource to list), which are listed when a stack first needs them.
fn prefetched(kind: Kind) -> bool {
    kind.rendered() && !matches!(kind, Kind::StorageClass | Kind::PrometheusRule)
}

/// The listings of one command, made as stacks first need them and shared by all of them.
pub(super) struct Listing {
    /// The names of the stacks the command plans, sorted and without repeats.
    names: Vec<String>,
    lists: OnceMap<Key, Listed>,
}

impl Listing {
    pub(super) fn new(names: impl IntoIterator<Item = String>) -> Listing {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names.dedup();
        Listing {
            names,
            lists: OnceMap::default(),
        }
    }

    /// The selector of the `group`th LIST: its stacks' names.
    fn selector(&self, group: usize) -> String {
        let start = group * NAMES_PER_LIST;
        let end = (start + NAMES_PER_LIST).min(self.names.len());
        format!("{STACK_LABEL} in ({})", self.names[start..end].join(","))
    }

    /// Object `r` of stack `stack` as the cluster `named` listed it, taken out of the
    /// listing; `None` when the listing cannot tell (see the module documentation).
    pub(super) async fn take(
        &self,
        cluster: &Cluster,
        named: &Named,
        stack: &str,
        r: &ObjectRef,
    ) -> Option<Value> {
        let group = self
            .names
            .binary_search_by(|n| n.as_str().cmp(stack))
            .ok()?
            / NAMES_PER_LIST;
        let listed = self.listed(cluster, named, r.kind, group).await?;
        listed.lock().expect("listing lock").remove(&r.address())
    }

    /// Sends every LIST of [`prefetched`] kinds now, each in its own task, so their answers
    /// are on the way while the command reads the cluster's identity and the stacks' files.
    pub(super) fn prefetch(self: &Arc<Self>, cluster: &Cluster, named: &Named) {
        let groups = self.names.len().div_ceil(NAMES_PER_LIST);
        for kind in Kind::ALL.into_iter().filter(|k| prefetched(*k)) {
            for group in 0..groups {
                let (listing, cluster, named) = (self.clone(), cluster.clone(), named.clone());
                tokio::spawn(async move {
                    listing.listed(&cluster, &named, kind, group).await;
                });
            }
        }
    }

    /// The `group`th LIST of `kind` in the cluster `named`, made once.
    async fn listed(&self, cluster: &Cluster, named: &Named, kind: Kind, group: usize) -> Listed {
        let key = (named.clone(), kind, group);
        self.lists
            .once(key, async {
                let items = cluster
                    .list_labeled(kind, &self.selector(group))
                    .await
                    .ok()?;
                let by_address = items
                    .into_iter()
                    .filter_map(|item| {
                        let listed = ObjectRef::of(&item).ok()?;
                        Some((listed.address(), item))
                    })
                    .collect();
                Some(Arc::new(Mutex::new(by_address)))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_listed_in_groups_of_a_hundred_sorted_once_each() {
        let names = (0..250)
            .rev()
            .map(|i| format!("s{i:03}"))
            .chain(["s007".to_string()]);
        let l = Listing::new(names);
        assert_eq!(l.names.len(), 250);
        let first = l.selector(0);
        assert!(
            first.starts_with("raystack.dev/stack in (s000,s001,"),
            "{first}"
        );
        assert!(first.ends_with(",s099)"), "{first}");
        assert_eq!(
            l.selector(2),
            format!(
                "raystack.dev/stack in ({})",
                (200..250)
                    .map(|i| format!("s{i:03}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        );
    }
}
