//! The last state this machine saw for a state file, kept next to it as `<path>.seen`
//! (`{"lineage": .., "serial": ..}`, mode 0600), so a state that was swapped underneath raystack
//! is noticed the way Terraform notices it: a different lineage (another state copied over
//! this one, or one created from scratch in its place) or a serial lower than one already seen
//! (an old copy or backup restored) is refused before anything is planned or applied. The
//! marker is advisory memory, not state: deleting it accepts whatever state is at `path`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{State, StateError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Seen {
    pub lineage: String,
    pub serial: u64,
}

impl Seen {
    /// What is remembered of `state`.
    fn of(state: &State) -> Seen {
        Seen {
            lineage: state.lineage.clone(),
            serial: state.serial,
        }
    }
}

/// `<path>.seen`
pub fn seen_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".seen");
    PathBuf::from(name)
}

/// The remembered lineage and serial; `None` when nothing was remembered (or the marker is
/// unreadable: it is only memory, so a damaged one is replaced by the next write).
pub(super) fn read(path: &Path) -> Option<Seen> {
    let bytes = fs::read(seen_path(path)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Refuses `state` (just read from `path`) when it is not the state last seen there, else
/// remembers it, unless the marker already does (a read must not cost a write and an fsync).
pub(super) fn check_and_remember(path: &Path, state: &State) -> Result<(), StateError> {
    let seen = read(path);
    if let Some(seen) = &seen {
        check_against(path, seen, state)?;
    }
    if seen.as_ref() != Some(&Seen::of(state)) {
        // Only memory: failing to write it must not fail the command.
        let _ = record(path, state);
    }
    Ok(())
}

/// Refuses `state` (just read from `path`) when it is not the state last seen there.
#[cfg(test)]
pub(super) fn check(path: &Path, state: &State) -> Result<(), StateError> {
    match read(path) {
        Some(seen) => check_against(path, &seen, state),
        None => Ok(()),
    }
}

pub(super) fn check_against(path: &Path, seen: &Seen, state: &State) -> Result<(), StateError> {
    if seen.lineage != state.lineage {
        return Err(StateError::LineageChanged {
            path: path.to_owned(),
            seen: seen.lineage.clone(),
            found: state.lineage.clone(),
            marker: seen_path(path),
        });
    }
    if state.serial < seen.serial {
        return Err(StateError::SerialWentBack {
            path: path.to_owned(),
            seen: seen.serial,
            found: state.serial,
            marker: seen_path(path),
        });
    }
    Ok(())
}

/// Remembers `state` as the last one seen at `path` (written to a temp file and renamed).
pub(super) fn record(path: &Path, state: &State) -> io::Result<()> {
    let seen = Seen::of(state);
    let marker = seen_path(path);
    let mut temp = marker.as_os_str().to_owned();
    temp.push(format!(".tmp-{}", std::process::id()));
    let temp = PathBuf::from(temp);
    let mut json = serde_json::to_vec(&seen).map_err(io::Error::other)?;
    json.push(b'\n');
    let _ = fs::remove_file(&temp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    {
        use std::io::Write;
        let mut f = options.open(&temp)?;
        f.write_all(&json)?;
        f.sync_all()?;
    }
    fs::rename(&temp, &marker).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_lineage_or_an_older_serial_is_refused_and_the_message_says_how_to_recover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.state.json");
        let mut state = State::new("s");
        state.serial = 5;
        check(&path, &state).unwrap();
        record(&path, &state).unwrap();
        check(&path, &state).unwrap();
        state.serial = 6;
        check(&path, &state).unwrap();

        let mut old = state.clone();
        old.serial = 4;
        let err = check(&path, &old).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "state `{}` went backwards: its serial is 4, but serial 5 was already seen here \
                 (an old copy or backup was restored?); objects applied since would be forgotten. \
                 If restoring it was intended, delete `{}` and run the command again",
                path.display(),
                seen_path(&path).display()
            )
        );
        let other = State::new("s");
        let err = check(&path, &other).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "state `{}` is not the state last seen here: its lineage is `{}`, not `{}`",
                path.display(),
                other.lineage,
                state.lineage
            )),
            "{err}"
        );
        assert!(
            err.ends_with(&format!(
                "If this state is the right one, delete `{}` and run the command again",
                seen_path(&path).display()
            )),
            "{err}"
        );
    }
}
