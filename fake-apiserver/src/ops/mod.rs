//! The verbs, each run against the store the way a real apiserver's registry would: `get` (one object),
//! `list` (label and field selectors), `write` (create and replace, with system metadata, status reset,
//! defaulting, schema pruning, validation, managedFields, no-op detection and dry run), `patch` (merge,
//! strategic merge and JSON patch), `apply` (server-side apply) and `delete` (one object or a collection,
//! cascading).

mod apply;
mod ctx;
mod delete;
mod get;
mod list;
mod patch;
mod watch;
mod write;

pub use delete::{delete, delete_collection};
pub use get::get_one;
pub use list::{list, list_json};
pub use watch::{Events, Watch};
pub use write::write;

use crate::store::registry::ResourceType;
use crate::store::{Key, key};
use serde_json::Value;

/// What a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub rt: ResourceType,
    pub version: String,
    /// Namespace from the URL (None for cluster-scoped kinds or all-namespace lists).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Target {
    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
    fn key(&self, name: &str) -> Key {
        key(&self.rt.group, &self.rt.plural, self.ns(), name)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Params {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    /// Manager name for non-apply writes without `fieldManager` (derived from the User-Agent).
    pub default_manager: String,
    pub force: bool,
    /// `fieldValidation`: Strict, Warn (default) or Ignore.
    pub field_validation: String,
}

#[derive(Debug)]
pub enum Write {
    Create(Value),
    Replace(Value),
    Apply(Value),
    Merge(Value),
    StrategicMerge(Value),
    JsonPatch(Value),
}

#[derive(Debug)]
pub struct Outcome {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}
