//! The last `raystack verify` result of a stack, recorded for `raystack status`: when it ran,
//! whether it passed, and its timings. Kept as `<stack>.verify.json` next to the stack's local
//! state path (`.raystack/` by default), whatever the state backend; written after every drill
//! that ran (not for `--dry-run` or a refusal). Holds no secret.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::report::{Outcome, Report};
use crate::stack::Stack;

/// One recorded drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// RFC 3339, UTC.
    pub time: String,
    pub passed: bool,
    /// `pass`, `fail` or `error`.
    pub result: String,
    pub head_ready_seconds: Option<f64>,
    pub redis_ready_seconds: Option<f64>,
    pub gcs_answering_seconds: Option<f64>,
    pub total_seconds: f64,
}

impl Recorded {
    pub fn of(report: &Report, at: SystemTime) -> Recorded {
        Recorded {
            time: crate::state::rfc3339_utc(at),
            passed: report.passed(),
            result: match report.result {
                Outcome::Pass => "pass",
                Outcome::Fail => "fail",
                Outcome::Error => "error",
            }
            .to_string(),
            head_ready_seconds: report.timings.head_ready_seconds,
            redis_ready_seconds: report.timings.redis_ready_seconds,
            gcs_answering_seconds: report.timings.gcs_answering_seconds,
            total_seconds: report.timings.total_seconds,
        }
    }

    /// `pass at 2026-…Z (head ready after 12.0 s, Redis after 3.1 s, GCS answering after 14.2 s; 40.0 s in all)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut t = |what: &str, v: Option<f64>| {
            if let Some(v) = v {
                parts.push(format!("{what} after {v:.1} s"));
            }
        };
        t("head ready", self.head_ready_seconds);
        t("Redis ready", self.redis_ready_seconds);
        t("GCS answering", self.gcs_answering_seconds);
        parts.push(format!("{:.1} s in all", self.total_seconds));
        format!("{} at {} ({})", self.result, self.time, parts.join(", "))
    }
}

/// Where the record of `stack` lives.
pub fn path(stack: &Stack) -> PathBuf {
    let dir = stack
        .state
        .path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    dir.join(format!("{}.verify.json", stack.meta.name))
}

/// Writes the record (atomically: a temp file renamed over the old one).
pub fn write(stack: &Stack, r: &Recorded) -> std::io::Result<()> {
    let path = path(stack);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut text = serde_json::to_string_pretty(r).expect("a record serializes");
    text.push('\n');
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

/// The last record, if one was written and reads back.
pub fn read(stack: &Stack) -> Option<Recorded> {
    let text = std::fs::read_to_string(path(stack)).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_next_to_the_state_file_and_describes_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut stack = crate::render::testing::stack();
        stack.state.path = dir.path().join(".raystack/ray-prod.state.json");
        assert_eq!(read(&stack), None);
        let r = Recorded {
            time: "2026-12-07T22:00:00Z".into(),
            passed: true,
            result: "pass".into(),
            head_ready_seconds: Some(12.0),
            redis_ready_seconds: Some(3.06),
            gcs_answering_seconds: None,
            total_seconds: 40.0,
        };
        write(&stack, &r).unwrap();
        assert_eq!(
            path(&stack),
            dir.path().join(".raystack/ray-prod.verify.json")
        );
        assert_eq!(read(&stack), Some(r.clone()));
        assert_eq!(
            r.describe(),
            "pass at 2026-12-07T22:00:00Z (head ready after 12.0 s, Redis ready after 3.1 s, 40.0 s in all)"
        );
    }
}
