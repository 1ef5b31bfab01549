//! The key of a stored object: (group, plural, namespace, name). The bottom of the store: the
//! store, the simulated controllers and the operations all name objects by it.

/// (group, plural, namespace or "", name)
pub type Key = (String, String, String, String);

pub fn key(group: &str, plural: &str, ns: &str, name: &str) -> Key {
    (group.into(), plural.into(), ns.into(), name.into())
}
