//! The state lock: an OS advisory lock (flock) on `<state>.lock`, with a `LockInfo` JSON inside
//! so a blocked process can say who holds it. The flock is the lock, not the file: the kernel
//! drops it when the holder exits for any reason (SIGKILL included), so a lock file left behind
//! by a dead process is simply taken by the next one. This file does no state I/O.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};

use super::StateError;

/// Who holds a state lock, as recorded in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// A UUID naming this lock, for `raystack force-unlock STACK ID` (empty in lock files written
    /// before it existed).
    #[serde(default)]
    pub id: String,
    pub pid: u32,
    /// The command holding the lock: `plan`, `apply`, `destroy`, ...
    pub operation: String,
    /// When the lock was taken, RFC 3339 UTC.
    pub created: String,
    pub host: String,
    /// The state file the lock guards (filled in by the reader; not stored in the lock file).
    #[serde(skip)]
    pub path: PathBuf,
}

impl LockInfo {
    /// Describes this process taking the lock on `path` now.
    pub fn current(path: &Path, operation: &str) -> Self {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            pid: std::process::id(),
            operation: operation.to_owned(),
            created: rfc3339_utc(SystemTime::now()),
            host: hostname(),
            path: path.to_owned(),
        }
    }

    /// The holder of a lock whose file names nobody yet (it is between taking the flock and
    /// writing its details) or was overwritten by hand.
    fn unknown(path: &Path) -> Self {
        LockInfo {
            id: String::new(),
            pid: 0,
            operation: String::new(),
            created: String::new(),
            host: String::new(),
            path: path.to_owned(),
        }
    }

    /// Whether the lock file named a holder.
    pub fn is_known(&self) -> bool {
        self.pid != 0
    }

    /// "state `p` is locked by `apply` (pid 1 on host h, since T, lock ID x)".
    pub fn describe(&self) -> String {
        if self.is_known() {
            format!(
                "state `{}` is locked by `{}` (pid {} on host {}, since {}, lock ID {})",
                self.path.display(),
                self.operation,
                self.pid,
                self.host,
                self.created,
                if self.id.is_empty() {
                    "unknown"
                } else {
                    &self.id
                }
            )
        } else {
            format!(
                "state `{}` is locked by another process (its lock file `{}` does not say which)",
                self.path.display(),
                lock_path(&self.path).display()
            )
        }
    }
}

/// `<state>.lock`
pub fn lock_path(state_path: &Path) -> PathBuf {
    let mut name = state_path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A held flock on the lock file. Dropping it removes the lock file, then releases the flock.
#[derive(Debug)]
pub(super) struct HeldLock {
    /// Never read: owning the open file is what keeps the flock.
    _file: File,
    lock_path: PathBuf,
    pub(super) info: LockInfo,
}

impl HeldLock {
    /// Whether the lock file is still ours: `force-unlock` removes it, after which another
    /// process may lock the state while this one still holds the flock on the unlinked file.
    pub(super) fn still_held(&self) -> io::Result<bool> {
        still_linked(&self._file, &self.lock_path)
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        // Unlink while still holding the flock: a process that opened this inode meanwhile will
        // find, once it gets the flock, that the path no longer names it, and start over. After
        // a force-unlock the path may name another holder's file: leave that alone.
        if self.still_held().unwrap_or(false) {
            let _ = std::fs::remove_file(&self.lock_path);
        }
        // Closing `self._file` (after this body) releases the flock.
    }
}

/// Takes the lock without blocking, or reports who holds it.
pub(super) fn try_acquire(state_path: &Path, operation: &str) -> Result<HeldLock, StateError> {
    let lock_path = lock_path(state_path);
    let lock_err = |source: io::Error| StateError::Lock {
        path: state_path.to_owned(),
        lock_path: lock_path.clone(),
        source,
    };
    // Each pass either takes the lock, reports a live holder, or loses a race with a releasing
    // holder that unlinked the file we opened; the last can only repeat while others keep
    // taking and releasing the lock, so the loop is bounded in practice.
    loop {
        let file = open_lock_file(&lock_path).map_err(lock_err)?;
        if !file.try_lock_exclusive().map_err(lock_err)? {
            return Err(StateError::Locked(read_holder(file, state_path)));
        }
        if !still_linked(&file, &lock_path).map_err(lock_err)? {
            continue;
        }
        let info = LockInfo::current(state_path, operation);
        write_info(&file, &info).map_err(lock_err)?;
        return Ok(HeldLock {
            _file: file,
            lock_path,
            info,
        });
    }
}

/// Who holds the lock now, without taking it: `None` when nobody does.
pub(super) fn current_holder(state_path: &Path) -> Result<Option<LockInfo>, StateError> {
    let lock_path = lock_path(state_path);
    let lock_err = |source: io::Error| StateError::Lock {
        path: state_path.to_owned(),
        lock_path: lock_path.clone(),
        source,
    };
    let file = match OpenOptions::new().read(true).write(true).open(&lock_path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(lock_err(err)),
    };
    if file.try_lock_exclusive().map_err(lock_err)? {
        // Free: a file left by a holder that died. Closing it drops the flock again.
        return Ok(None);
    }
    Ok(Some(read_holder(file, state_path)))
}

/// Removes the lock file of holder `id`, so the next command can lock the state even though
/// that holder still runs. Refuses another ID.
pub(super) fn force_unlock(state_path: &Path, id: &str) -> Result<LockInfo, StateError> {
    let Some(info) = current_holder(state_path)? else {
        return Err(StateError::NotLocked(format!("`{}`", state_path.display())));
    };
    if info.id != id {
        return Err(StateError::WrongLockId {
            given: id.to_owned(),
            holder: info.describe(),
        });
    }
    let lock_path = lock_path(state_path);
    std::fs::remove_file(&lock_path).map_err(|source| StateError::Lock {
        path: state_path.to_owned(),
        lock_path,
        source,
    })?;
    Ok(info)
}

fn open_lock_file(lock_path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(lock_path)
}

/// Whether `lock_path` still names the file we hold (a releasing holder unlinks it).
fn still_linked(file: &File, lock_path: &Path) -> io::Result<bool> {
    let path_meta = match std::fs::metadata(lock_path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let ours = file.metadata()?;
        Ok(ours.dev() == path_meta.dev() && ours.ino() == path_meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path_meta);
        Ok(true)
    }
}

fn write_info(mut file: &File, info: &LockInfo) -> io::Result<()> {
    let mut json = serde_json::to_vec_pretty(info).map_err(io::Error::other)?;
    json.push(b'\n');
    // Truncate only a file a dead holder left behind. A lock file is usually new (empty), and
    // truncating a file to zero makes ext4 write its data out when it is closed: a disk write
    // for every lock taken (per stack, when planning many).
    if file.metadata()?.len() > 0 {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
    }
    file.write_all(&json)
}

/// Reads the holder's details. A holder that has just taken the flock may not have written
/// them yet, so an empty or torn file is re-read briefly before giving up on naming it.
fn read_holder(mut file: File, state_path: &Path) -> LockInfo {
    for attempt in 0..10 {
        let mut text = String::new();
        let parsed = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .ok()
            .and_then(|_| serde_json::from_str::<LockInfo>(&text).ok());
        if let Some(mut info) = parsed {
            info.path = state_path.to_owned();
            return info;
        }
        if attempt < 9 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    LockInfo::unknown(state_path)
}

/// Seconds-precision RFC 3339 in UTC, without a date-time dependency.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// This machine's name, for telling users where a lock holder runs.
pub(super) fn hostname() -> String {
    // Read once per process: a many-stack plan takes one lock per stack.
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(read_hostname).clone()
}

fn read_hostname() -> String {
    let from_file = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| {
            std::process::Command::new("uname")
                .arg("-n")
                .output()
                .ok()
                .filter(|out| out.status.success())
                .and_then(|out| String::from_utf8(out.stdout).ok())
                .map(|s| s.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_827_696); // leap day
        assert_eq!(rfc3339_utc(t), "2000-02-29T12:34:56Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(rfc3339_utc(t), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn lock_path_appends_suffix() {
        assert_eq!(
            lock_path(Path::new(".raystack/prod.state.json")),
            PathBuf::from(".raystack/prod.state.json.lock")
        );
    }

    #[test]
    fn a_lock_file_left_behind_is_overwritten_whole() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.state.json");
        // A dead holder's file, longer than the details written now.
        std::fs::write(lock_path(&state), format!("{{{}", "x".repeat(4096))).unwrap();
        let held = try_acquire(&state, "plan").unwrap();
        let text = std::fs::read_to_string(lock_path(&state)).unwrap();
        let written: LockInfo = serde_json::from_str(&text).unwrap();
        assert_eq!(written.id, held.info.id);
        assert_eq!(written.operation, "plan");
        drop(held);
        // A fresh lock file (the usual case) holds exactly the details too.
        let held = try_acquire(&state, "apply").unwrap();
        let text = std::fs::read_to_string(lock_path(&state)).unwrap();
        let written: LockInfo = serde_json::from_str(&text).unwrap();
        assert_eq!(written.id, held.info.id);
        assert_eq!(written.operation, "apply");
    }

    #[test]
    fn unknown_holder_is_described_without_pid() {
        let info = LockInfo::unknown(Path::new("s.json"));
        assert_eq!(
            info.describe(),
            "state `s.json` is locked by another process (its lock file `s.json.lock` does not say which)"
        );
    }
}
