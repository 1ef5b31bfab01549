//! Plain data that provider crates return to the engine: preflight findings.
//! No cloud SDK and no I/O lives here, so every crate in the workspace can share it.

use serde::{Deserialize, Serialize};

/// How serious a preflight finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: the check passed.
    Ok,
    /// The plan can be applied, but the user should look at this.
    Warning,
    /// The plan cannot be applied until this is fixed.
    Error,
}

/// One preflight check's outcome, with the fix when it did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Which provider ran the check: `aws`, `gcp`, `azure`, `local`, `kubernetes`.
    pub provider: String,
    /// Short stable identifier of the check, e.g. `eks-cluster-active`.
    pub check: String,
    pub severity: Severity,
    /// One sentence saying what was found.
    pub message: String,
    /// How to fix it, when there is something to fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(provider: &str, check: &str, message: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            check: check.into(),
            severity: Severity::Ok,
            message: message.into(),
            fix: None,
        }
    }
    pub fn warning(
        provider: &str,
        check: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            provider: provider.into(),
            check: check.into(),
            severity: Severity::Warning,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn error(
        provider: &str,
        check: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            provider: provider.into(),
            check: check.into(),
            severity: Severity::Error,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The first line of the innermost error's own text in `err`'s source chain (e.g. "Connection
/// refused (os error 111)"), trimmed of a trailing period, for one-sentence findings instead of
/// Debug dumps.
pub fn error_root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    let text = last.to_string();
    let text = text
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.');
    if text.is_empty() {
        "unknown error".to_owned()
    } else {
        text.to_owned()
    }
}

/// True when an error of type `T` appears anywhere in `err`'s source chain.
pub fn error_chain_has<T: std::error::Error + 'static>(
    err: &(dyn std::error::Error + 'static),
) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.is::<T>() {
            return true;
        }
        current = e.source();
    }
    false
}
