//! The plan: the versioned JSON document of docs/design.md §6, and the plan file (the same document
//! plus what `apply PLANFILE` needs to apply exactly that plan and to refuse it when stale). Data
//! only; every human rendering is produced from this type by `crate::output`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kind::{Kind, ObjectRef};
use crate::preflight::{Finding, Severity};

/// The plan format version; bump when a key changes meaning.
pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

impl Action {
    /// The plan symbol of docs/design.md §6.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoOp => " ",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::NoOp => "no-op",
        }
    }
}

/// An object raystack would create that exists already and was not created by raystack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoption {
    /// Who manages it now, as its field managers and labels say ("kubectl-client-side-apply").
    pub owner: String,
    /// The deployment tool that manages it (Helm, Argo CD, kapp): taking it from that tool
    /// needs `--take-ownership`, since the tool would fight raystack over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// What the stack's `[[import.adopt]]` says of it: `imported` (the recorded UID is the live
    /// one: apply adopts it without `--adopt`) or `recreated` (recorded, but the live object has
    /// another UID: not what was imported, refused like any other). Absent: not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportProof>,
}

/// See [`Adoption::import`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportProof {
    Imported,
    Recreated,
}

/// One object's planned change. `before` and `after` are restricted to the fields raystack
/// manages, with secret values replaced by `(sensitive)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: String,
    pub api_version: String,
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
    pub action: Action,
    /// Why this action (absent for no-op).
    pub reason: Option<String>,
    pub data_loss: bool,
    /// Why this change loses GCS state (set exactly when `data_loss` is): which state, and
    /// what deletes it (the Redis volume going, or KubeRay's cleanup finalizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loss_reason: Option<String>,
    /// A RayCluster update: which changes reach the pods, and whether KubeRay restarts the
    /// running ones now (it depends on the operator version and `spec.upgradeStrategy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// What else the plan must tell about this change (e.g. a volume KubeRay keeps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The live object exists but raystack did not create it: applying takes it over
    /// (`--adopt`; `--take-ownership` when a deployment tool manages it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<Adoption>,
    /// Set when the live object changed outside raystack: what was seen.
    pub drift: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The manifest apply sends (desired objects only; the Secret never carries values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Value>,
}

impl ResourceChange {
    /// The object this change is about.
    pub fn object(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version.clone(),
            kind: self.kind,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.add + self.change + self.replace + self.destroy
    }
}

/// What a plan is bound to: applying it is refused when any of this changed since.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// The stack file the plan was made from: as given, relative to the working directory
    /// (`apply PLANFILE` resolves it against its own, so another checkout of the same
    /// repository applies the plan), or absolute when it was given so.
    pub stack_file: String,
    /// Where the state lives ([`crate::state::Backend::binding`]): the backend and a location
    /// that does not depend on the checkout's path.
    #[serde(alias = "state_path")]
    pub state: String,
    /// The state's lineage and serial when planned (`None`: no state yet).
    pub lineage: Option<String>,
    pub serial: Option<u64>,
    /// UID of the `kube-system` namespace (`None`: planned offline).
    pub cluster_identity: Option<String>,
    /// The kubeconfig context and file used (`None`: defaults).
    pub context: Option<String>,
    pub kubeconfig: Option<String>,
    /// SHA-256 of the stack file's bytes when planned: apply refuses the plan once the file
    /// says something else (see `binding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_sha256: Option<String>,
    /// [`crate::state::applied_hash`] of the rendered manifests (a JSON array, apply order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests_sha256: Option<String>,
}

/// The whole plan (docs/design.md §6), which is also the plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    pub stack: String,
    pub namespace: String,
    /// Planned without a cluster, against state alone.
    pub offline: bool,
    /// `destroy` plans delete everything tracked.
    #[serde(default)]
    pub destroy: bool,
    /// The durability summary (`render::summarize`), shown first.
    pub durability: Value,
    pub preflight: Vec<Finding>,
    pub resource_changes: Vec<ResourceChange>,
    pub summary: Summary,
    /// Any change deletes, replaces or shrinks the Redis volume.
    pub data_loss: bool,
    /// Any object changed outside raystack.
    pub drift: bool,
    /// Problems that make the plan impossible to apply (besides preflight errors).
    #[serde(default)]
    pub errors: Vec<String>,
    /// Objects raystack keeps although the plan would otherwise delete them (destroy without
    /// `--allow-data-loss`), with the reason.
    #[serde(default)]
    pub kept: Vec<String>,
    /// Live objects of this stack applied from another state (their `raystack.dev/lineage` is
    /// not this state's), as `Kind/namespace/name (lineage L)`: a second state of the same
    /// stack. The plan is blocked (an error), `apply` and `destroy` refuse; each is left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_states: Vec<String>,
    pub binding: Binding,
}

impl Plan {
    /// Fills `summary`, `data_loss` and `drift` from the changes.
    pub fn finish(mut self) -> Self {
        let mut s = Summary::default();
        for c in &self.resource_changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        self.summary = s;
        self.data_loss = self.resource_changes.iter().any(|c| c.data_loss);
        self.drift = self.resource_changes.iter().any(|c| c.drift.is_some());
        self
    }

    /// Addresses of the changes that lose GCS state (the Redis volume, or a RayCluster).
    pub fn data_loss_addresses(&self) -> Vec<&str> {
        self.resource_changes
            .iter()
            .filter(|c| c.data_loss)
            .map(|c| c.address.as_str())
            .collect()
    }

    /// The data-losing changes that need `--allow-data-loss`. All of them in a plan; in a
    /// destroy plan, deleting the RayCluster is what `destroy` means (the plan says what it
    /// loses), so only volume deletes need the flag there.
    pub fn guarded_data_loss(&self) -> Vec<&ResourceChange> {
        self.resource_changes
            .iter()
            .filter(|c| c.data_loss && !(self.destroy && c.kind == Kind::RayCluster))
            .collect()
    }

    pub fn has_changes(&self) -> bool {
        self.summary.total() > 0
    }

    /// Preflight errors and plan errors: the reasons this plan cannot be applied.
    pub fn blocking_problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .preflight
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("preflight {}/{}: {}", f.provider, f.check, f.message))
            .collect();
        out.extend(self.errors.iter().cloned());
        out
    }

    /// The plan without the manifests apply needs: what JSON output shows.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A plan file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("failed to read plan file `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a raystack plan file: {message}")]
    Parse { path: String, message: String },
    #[error(
        "plan file `{path}` has format_version {found}; this raystack reads format_version {FORMAT_VERSION}"
    )]
    Version { path: String, found: String },
    #[error("failed to write plan file `{path}`")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads a plan file written by [`write_plan_file`].
pub fn read_plan_file(path: &std::path::Path) -> Result<Plan, PlanFileError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| PlanFileError::Read {
        path: p.clone(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| PlanFileError::Parse {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let found = value
        .get("format_version")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if found != FORMAT_VERSION {
        return Err(PlanFileError::Version { path: p, found });
    }
    serde_json::from_value(value).map_err(|e| PlanFileError::Parse {
        path: p,
        message: e.to_string(),
    })
}

/// Writes a plan file, mode 0600 whatever was at `path` before (it describes the cluster even
/// though it holds no secret): the plan goes to a new temporary file created 0600 in the same
/// directory, is synced, and is renamed over `path`, so an existing file's mode, owner or hard
/// links are never reused and a reader never sees half a plan.
pub fn write_plan_file(path: &std::path::Path, plan: &Plan) -> Result<(), PlanFileError> {
    let p = path.display().to_string();
    let mut text = serde_json::to_string_pretty(plan).expect("plans serialize");
    text.push('\n');
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        // tempfile creates the file with O_EXCL and mode 0600.
        let mut tmp = tempfile::Builder::new()
            .prefix(".raystack-plan-")
            .tempfile_in(dir)?;
        tmp.write_all(text.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|source| PlanFileError::Write { path: p, source })
}

/// Looks like a plan file rather than a stack file (apply accepts either).
pub fn looks_like_plan_file(path: &std::path::Path) -> bool {
    if path.extension().is_some_and(|e| e == "toml") {
        return false;
    }
    std::fs::read(path)
        .map(|b| b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{'))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            stack: "s".into(),
            namespace: "s".into(),
            offline: false,
            destroy: false,
            durability: Value::Null,
            preflight: vec![],
            resource_changes: vec![],
            summary: Summary::default(),
            data_loss: false,
            drift: false,
            errors: vec![],
            kept: vec![],
            other_states: Vec::new(),
            binding: Binding {
                lineage: Some("l".into()),
                serial: Some(3),
                ..Default::default()
            },
        }
    }

    #[test]
    fn plan_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.plan");
        write_plan_file(&path, &plan()).unwrap();
        assert!(looks_like_plan_file(&path));
        assert_eq!(read_plan_file(&path).unwrap(), plan());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn plan_files_of_another_format_version_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.plan");
        std::fs::write(&path, r#"{"format_version": "9"}"#).unwrap();
        let err = read_plan_file(&path).unwrap_err().to_string();
        assert!(err.contains("format_version 9"), "{err}");
    }
}
