//! The local backend: one pretty-printed JSON file per stack, mode 0600, replaced atomically on
//! every write with the previous version kept as `<path>.backup`, guarded by `<path>.lock`.
//! A crash at any instant leaves a complete state at `path` (old or new) and a complete backup.
//! Only a regular file is read as state: a FIFO would block the reader forever and a device
//! such as `/dev/zero` would be read until memory runs out.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::lock::{self, HeldLock, LockInfo};
use super::{FORMAT_VERSION, State, StateError};

/// How often `lock_wait` retries a held lock.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// A state file on the local filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBackend {
    path: PathBuf,
}

impl LocalBackend {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalBackend { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<path>.backup`: the version before the last write.
    pub fn backup_path(&self) -> PathBuf {
        suffixed(&self.path, ".backup")
    }

    /// `<path>.lock`
    pub fn lock_path(&self) -> PathBuf {
        lock::lock_path(&self.path)
    }

    /// Reads the state without locking (a write is atomic, so this never sees half a file).
    /// `None` when there is no state file yet.
    pub fn read(&self) -> Result<Option<State>, StateError> {
        read_state(&self.path)
    }

    /// Reads the state without locking, refusing one that is not the state last seen at this
    /// path, as [`StateLock::read`] does; it remembers nothing (only a lock holder writes the
    /// marker). The marker is read before the state: a write records its state after writing
    /// it, so the state read is never older than the marker read, whatever runs meanwhile.
    pub fn read_checked(&self) -> Result<Option<State>, StateError> {
        let seen = super::seen::read(&self.path);
        let state = read_state(&self.path)?;
        if let (Some(seen), Some(state)) = (&seen, &state) {
            super::seen::check_against(&self.path, seen, state)?;
        }
        Ok(state)
    }

    /// Takes the exclusive state lock for `operation` (`plan`, `apply`, ...) or fails at once
    /// with [`StateError::Locked`] naming the holder. Creates the state's directory (0700) if
    /// needed.
    pub fn lock(&self, operation: &str) -> Result<StateLock, StateError> {
        let lock_err = |source| StateError::Lock {
            path: self.path.clone(),
            lock_path: self.lock_path(),
            source,
        };
        create_parent_dirs(&self.path).map_err(lock_err)?;
        let held = lock::try_acquire(&self.path, operation)?;
        Ok(StateLock {
            path: self.path.clone(),
            held,
            temps_removed: false,
        })
    }

    /// Who holds the lock now (without taking it).
    pub fn current_holder(&self) -> Result<Option<LockInfo>, StateError> {
        lock::current_holder(&self.path)
    }

    /// Removes the lock of holder `id` (see `raystack force-unlock`); returns who held it.
    pub fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        lock::force_unlock(&self.path, id)
    }

    /// Like [`lock`](Self::lock), but while the lock is held elsewhere, polls until `timeout`,
    /// calling `on_wait` once for each holder seen (to print "waiting for `apply` (pid ..)").
    /// Gives up with [`StateError::LockTimeout`].
    pub fn lock_wait(
        &self,
        operation: &str,
        timeout: Duration,
        on_wait: impl FnMut(&LockInfo),
    ) -> Result<StateLock, StateError> {
        self.lock_wait_with(operation, timeout, &mut WallClock(Instant::now()), on_wait)
    }

    /// [`lock_wait`](Self::lock_wait) telling time and pausing between polls with `clock`.
    pub fn lock_wait_with(
        &self,
        operation: &str,
        timeout: Duration,
        clock: &mut dyn WaitClock,
        mut on_wait: impl FnMut(&LockInfo),
    ) -> Result<StateLock, StateError> {
        let mut last_holder: Option<(u32, String, String)> = None;
        loop {
            let info = match self.lock(operation) {
                Err(StateError::Locked(info)) => info,
                other => return other,
            };
            let elapsed = clock.elapsed();
            if elapsed >= timeout {
                return Err(StateError::LockTimeout(info, timeout));
            }
            let holder = (info.pid, info.host.clone(), info.created.clone());
            if last_holder.as_ref() != Some(&holder) {
                on_wait(&info);
                last_holder = Some(holder);
            }
            clock.pause(LOCK_POLL.min(timeout - elapsed));
        }
    }
}

/// How [`LocalBackend::lock_wait_with`] tells the time since it started and waits between
/// polls: the wall clock and a sleep ([`LocalBackend::lock_wait`]), or a clock of the caller's
/// (a test's, which moves time itself and can release the lock from `pause`).
pub trait WaitClock {
    /// Time since the wait started.
    fn elapsed(&self) -> Duration;
    /// Waits `d` before the next poll.
    fn pause(&mut self, d: Duration);
}

/// The wall clock, started when the wait did.
struct WallClock(Instant);

impl WaitClock for WallClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    fn pause(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// The held state lock; the only way to write state. Released on drop (and by the kernel if
/// the process dies).
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
    held: HeldLock,
    /// Whether this lock's first write already removed a crashed writer's temp files.
    temps_removed: bool,
}

impl StateLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What this lock recorded about its holder.
    pub fn info(&self) -> &LockInfo {
        &self.held.info
    }

    /// Reads the state, refusing one that is not the state last seen at this path (another
    /// lineage, or an older serial; see `seen`), and remembers it.
    pub fn read(&self) -> Result<Option<State>, StateError> {
        let state = read_state(&self.path)?;
        if let Some(s) = &state {
            super::seen::check_and_remember(&self.path, s)?;
        }
        Ok(state)
    }

    /// Increments `state.serial` and replaces the state file atomically, keeping the previous
    /// version as `.backup`. Refuses to overwrite a different state (other lineage), a newer
    /// one (higher serial: written by someone who ignored the lock), or a file it cannot parse
    /// (that would push the last good version out of `.backup`). On error `state` is unchanged.
    pub fn write(&mut self, state: &mut State) -> Result<(), StateError> {
        if !self.held.still_held().unwrap_or(false) {
            return Err(StateError::LockLost(format!("`{}`", self.path.display())));
        }
        let previous = match read_regular(&self.path) {
            Ok(bytes) => bytes,
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if let Some(bytes) = &previous {
            let on_disk = parse_state(&self.path, bytes)?;
            if on_disk.lineage != state.lineage {
                return Err(StateError::LineageMismatch {
                    path: self.path.clone(),
                    ours: state.lineage.clone(),
                    on_disk: on_disk.lineage,
                });
            }
            if on_disk.serial > state.serial {
                return Err(StateError::StaleSerial {
                    path: self.path.clone(),
                    ours: state.serial,
                    on_disk: on_disk.serial,
                });
            }
        }
        // Holding the lock, no other raystack is writing: temp files are leftovers of a crash.
        // Done before the first write rather than when locking: listing the directory costs
        // time in proportion to the stacks that keep state there, and a plan (of each of many
        // stacks) only reads.
        if !self.temps_removed {
            remove_stale_temps(&self.path);
            self.temps_removed = true;
        }
        state.serial += 1;
        let result = replace_file(&self.path, state, previous.is_some());
        if result.is_err() {
            state.serial -= 1;
        } else {
            let _ = super::seen::record(&self.path, state);
        }
        result.map_err(|source| StateError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

impl StateLock {
    /// Moves the state file aside as `<path>.migrated` (after `state migrate` copied it to
    /// another backend) and returns that path. The `.backup` stays where it is.
    pub fn retire(&mut self) -> Result<PathBuf, StateError> {
        let to = migrated_path(&self.path);
        fs::rename(&self.path, &to)
            .and_then(|()| sync_dir(parent_dir(&self.path)))
            .map_err(|source| StateError::Write {
                path: self.path.clone(),
                source,
            })?;
        Ok(to)
    }
}

/// `<state path>.migrated`: where `state migrate` leaves the local file it moved away.
pub fn migrated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".migrated");
    PathBuf::from(name)
}

/// Parses a state document (the JSON the local backend stores, which the kubernetes backend
/// stores gzip'd); `source` names where it came from in errors.
pub(super) fn parse_document(source: &Path, bytes: &[u8]) -> Result<State, StateError> {
    parse_state(source, bytes)
}

fn read_state(path: &Path) -> Result<Option<State>, StateError> {
    match read_regular(path) {
        Ok(Some(bytes)) => parse_state(path, &bytes).map(Some),
        Ok(None) => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The bytes of the state file at `path` (symlinks followed), `None` when there is none. Looks
/// before opening, since opening a FIFO for reading blocks until a writer appears, and again
/// after, since the path may have been swapped in between.
fn read_regular(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let not_regular = |meta: &fs::Metadata| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is {}, not a regular file; `[state] path` names the JSON file raystack keeps \
                 its state in",
                crate::stack::file_kind(meta)
            ),
        )
    };
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() => return Err(not_regular(&meta)),
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    }
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let mut bytes = Vec::new();
    // Like `fs::read`: the size is a hint, and an absurd one is not an allocation failure.
    let _ = bytes.try_reserve_exact(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Checks the format version before the shape, so a newer format is reported as such rather
/// than as corruption.
fn parse_state(path: &Path, bytes: &[u8]) -> Result<State, StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        path: path.to_owned(),
        detail,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(format!("it is not valid JSON ({e})")))?;
    let Some(object) = value.as_object() else {
        return Err(corrupt("it is not a JSON object".into()));
    };
    match object.get("format_version") {
        None => return Err(corrupt("it has no `format_version`".into())),
        Some(serde_json::Value::String(v)) if v == FORMAT_VERSION => {}
        Some(serde_json::Value::String(v)) => {
            return Err(StateError::UnsupportedVersion {
                path: path.to_owned(),
                found: v.clone(),
            });
        }
        Some(other) => {
            return Err(StateError::UnsupportedVersion {
                path: path.to_owned(),
                found: other.to_string(),
            });
        }
    }
    serde_json::from_value(value)
        .map_err(|e| corrupt(format!("it does not match the state format ({e})")))
}

/// The atomic replace. Order matters: the new content is durable in a temp file before
/// anything is renamed; the backup is staged by hard link (the old file's inode, untouched)
/// and renamed over the old backup; only then is the temp file renamed over `path`. Every
/// rename replaces one complete file with another, so neither `path` nor `.backup` is ever
/// missing or partial once it exists.
fn replace_file(path: &Path, state: &State, has_previous: bool) -> io::Result<()> {
    let mut json = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    json.push(b'\n');
    create_parent_dirs(path)?;
    let dir = parent_dir(path);
    let name = file_name(path);
    let pid = std::process::id();
    let temp = dir.join(format!(".{name}.tmp-{pid}"));
    let backup_temp = dir.join(format!(".{name}.backup.tmp-{pid}"));

    let result = (|| {
        write_synced(&temp, &json)?;
        if has_previous {
            stage_backup(path, &backup_temp)?;
            fs::rename(&backup_temp, suffixed(path, ".backup"))?;
            // When `.backup` already is a link to the state file (a writer killed between its
            // two renames), both names are links to one file and the rename does nothing
            // (POSIX): the temp name is still there.
            remove_if_exists(&backup_temp)?;
        }
        fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        let _ = fs::remove_file(&backup_temp);
    }
    result
}

/// Puts a copy of the current state at `backup_temp`: a hard link when the filesystem allows
/// (no data to write or sync), else a synced byte copy.
fn stage_backup(path: &Path, backup_temp: &Path) -> io::Result<()> {
    remove_if_exists(backup_temp)?;
    match fs::hard_link(path, backup_temp) {
        Ok(()) => {
            // Also tightens a state file someone made readable by others; it is being replaced.
            set_private(backup_temp)
        }
        Err(_) => copy_synced(path, backup_temp),
    }
}

fn copy_synced(from: &Path, to: &Path) -> io::Result<()> {
    let bytes = fs::read(from)?;
    write_synced(to, &bytes)
}

/// Writes a new file with mode 0600 and flushes it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    remove_if_exists(path)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn set_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Makes the renames durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates the state's directory and any missing parents with mode 0700.
fn create_parent_dirs(path: &Path) -> io::Result<()> {
    let dir = parent_dir(path);
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Removes `.<name>.tmp-*` and `.<name>.backup.tmp-*` left by a process that died mid-write.
/// Best effort: a leftover only wastes space.
fn remove_stale_temps(path: &Path) {
    let name = file_name(path);
    let prefixes = [
        format!(".{name}.tmp-"),
        format!(".{name}.backup.tmp-"),
        format!("{name}.seen.tmp-"),
    ];
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if prefixes.iter().any(|p| file_name.starts_with(p.as_str())) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned())
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::super::tests::resource;
    use super::*;
    use crate::kind::Kind;

    fn backend(dir: &tempfile::TempDir) -> LocalBackend {
        LocalBackend::new(dir.path().join(".raystack/prod.state.json"))
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A state file as this format has always been written (kinds as their Kubernetes names,
    /// cluster-scoped objects with a null namespace) loads, and writes back byte for byte.
    #[test]
    fn an_existing_state_file_loads_and_writes_back_unchanged() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/state/prod.state.json"
        ));
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        fs::create_dir_all(backend.path().parent().unwrap()).unwrap();
        fs::write(backend.path(), text).unwrap();
        let state = backend.read().unwrap().unwrap();
        assert_eq!((state.stack.as_str(), state.serial), ("prod", 7));
        let kinds: Vec<Kind> = state.resources.iter().map(|r| r.object.kind).collect();
        assert_eq!(kinds, &Kind::ALL[..9]);
        for r in &state.resources {
            assert_eq!(r.address, r.object.address());
            assert_eq!(r.object.api_version, r.object.kind.api_version());
        }
        let mut written = serde_json::to_string_pretty(&state).unwrap();
        written.push('\n');
        assert_eq!(written, text);
    }

    /// Reading a state the marker already remembers leaves the marker alone: rewriting it
    /// (a temp file, fsync, rename) on every read was a tenth of planning many applied stacks.
    #[cfg(unix)]
    #[test]
    fn reading_a_state_already_seen_does_not_rewrite_the_seen_marker() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new("prod");
        state.upsert_resource(resource(Kind::Namespace, None, "ray"));
        lock.write(&mut state).unwrap();
        drop(lock);
        let marker = super::super::seen_path(backend.path());
        let inode = || fs::metadata(&marker).unwrap().ino();
        let written = inode();
        assert_eq!(
            backend.lock("plan").unwrap().read().unwrap(),
            Some(state.clone())
        );
        assert_eq!(backend.read().unwrap(), Some(state.clone()));
        assert_eq!(inode(), written, "the marker was rewritten by a read");

        // A newer serial written elsewhere (another machine's apply) is remembered on read.
        let mut newer = state.clone();
        newer.serial += 1;
        let mut text = serde_json::to_string_pretty(&newer).unwrap();
        text.push('\n');
        fs::write(backend.path(), text).unwrap();
        assert_eq!(
            backend.lock("plan").unwrap().read().unwrap(),
            Some(newer.clone())
        );
        assert_ne!(inode(), written, "a newer serial was not remembered");
        let seen: serde_json::Value = serde_json::from_slice(&fs::read(&marker).unwrap()).unwrap();
        assert_eq!(seen["serial"], newer.serial);
    }

    /// A plan's read (no lock) refuses a swapped state as a locked read does, and writes
    /// nothing: not the marker, not a lock file, not even the state's directory.
    #[test]
    fn a_checked_read_refuses_a_swapped_state_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        assert_eq!(backend.read_checked().unwrap(), None);
        assert!(!backend.path().parent().unwrap().exists());
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new("prod");
        lock.write(&mut state).unwrap();
        let old = fs::read(backend.path()).unwrap();
        lock.write(&mut state).unwrap();
        drop(lock);
        let marker = super::super::seen_path(backend.path());
        assert_eq!(backend.read_checked().unwrap(), Some(state.clone()));
        fs::write(backend.path(), &old).unwrap();
        let err = backend.read_checked().unwrap_err();
        assert!(matches!(err, StateError::SerialWentBack { .. }), "{err}");
        fs::remove_file(&marker).unwrap();
        assert_eq!(backend.read_checked().unwrap().map(|s| s.serial), Some(1));
        assert!(!marker.exists(), "a read without the lock wrote the marker");
        assert!(!backend.lock_path().exists());
    }

    #[test]
    fn missing_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(backend(&dir).read().unwrap(), None);
    }

    #[test]
    fn round_trip_increments_serial_and_keeps_lineage() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let mut lock = backend.lock("apply").unwrap();
        assert_eq!(lock.read().unwrap(), None);

        let mut state = State::new("prod");
        let lineage = state.lineage.clone();
        state.upsert_resource(resource(Kind::Namespace, None, "ray"));
        state.set_secret_fingerprint("redis-password", b"s3cret-value");
        lock.write(&mut state).unwrap();
        assert_eq!(state.serial, 1);
        assert_eq!(backend.read().unwrap().as_ref(), Some(&state));

        state.upsert_resource(resource(Kind::Secret, Some("ray"), "redis"));
        lock.write(&mut state).unwrap();
        lock.write(&mut state).unwrap();
        assert_eq!(state.serial, 3);
        let read = lock.read().unwrap().unwrap();
        assert_eq!(read, state);
        assert_eq!(read.lineage, lineage);

        let text = fs::read_to_string(backend.path()).unwrap();
        assert!(text.ends_with("}\n"), "pretty JSON with a trailing newline");
        assert!(text.contains("\n  \"lineage\""));
        assert!(!text.contains("s3cret-value"));
    }

    #[test]
    fn backup_holds_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new("prod");
        lock.write(&mut state).unwrap();
        assert!(
            !backend.backup_path().exists(),
            "no backup before a second version exists"
        );

        let first = state.clone();
        state.upsert_resource(resource(Kind::Namespace, None, "ray"));
        lock.write(&mut state).unwrap();
        let backup: State =
            serde_json::from_slice(&fs::read(backend.backup_path()).unwrap()).unwrap();
        assert_eq!(backup, first);

        let second = state.clone();
        lock.write(&mut state).unwrap();
        let backup: State =
            serde_json::from_slice(&fs::read(backend.backup_path()).unwrap()).unwrap();
        assert_eq!(backup, second);
        assert_eq!(backend.read().unwrap().unwrap().serial, 3);
    }

    #[cfg(unix)]
    #[test]
    fn state_backup_and_directory_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let mut lock = backend.lock("apply").unwrap();
        assert_eq!(mode(backend.path().parent().unwrap()), 0o700);
        let mut state = State::new("prod");
        lock.write(&mut state).unwrap();
        assert_eq!(mode(backend.path()), 0o600);

        // Even a state file someone made world-readable ends up private, backup included.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(backend.path(), fs::Permissions::from_mode(0o644)).unwrap();
        lock.write(&mut state).unwrap();
        assert_eq!(mode(backend.path()), 0o600);
        assert_eq!(mode(&backend.backup_path()), 0o600);
    }

    #[test]
    fn write_leaves_no_temp_files_and_removes_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let state_dir = backend.path().parent().unwrap().to_owned();
        fs::create_dir_all(&state_dir).unwrap();
        fs::write(state_dir.join(".prod.state.json.tmp-999999"), "{").unwrap();
        fs::write(state_dir.join(".prod.state.json.backup.tmp-999999"), "{").unwrap();
        fs::write(state_dir.join(".other.state.json.tmp-1"), "{").unwrap();

        let mut lock = backend.lock("apply").unwrap();
        // Locking alone (a plan) leaves the directory as it is: only a write cleans up.
        assert!(state_dir.join(".prod.state.json.tmp-999999").exists());
        let mut state = State::new("prod");
        lock.write(&mut state).unwrap();
        lock.write(&mut state).unwrap();
        let mut names: Vec<_> = fs::read_dir(&state_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".other.state.json.tmp-1",
                "prod.state.json",
                "prod.state.json.backup",
                "prod.state.json.lock",
                "prod.state.json.seen"
            ]
        );
        drop(lock);
        assert!(
            !backend.lock_path().exists(),
            "lock file removed on release"
        );
    }

    #[cfg(unix)]
    #[test]
    fn byte_copy_backup_is_private_and_identical() {
        // The fallback for filesystems without hard links; the link path is covered above.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        fs::write(&path, "{\"a\":1}\n").unwrap();
        let staged = dir.path().join(".s.json.backup.tmp-1");
        fs::write(&staged, "stale").unwrap();
        copy_synced(&path, &staged).unwrap();
        assert_eq!(fs::read_to_string(&staged).unwrap(), "{\"a\":1}\n");
        assert_eq!(mode(&staged), 0o600);
    }

    #[test]
    fn corrupted_state_names_the_file_and_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        fs::create_dir_all(backend.path().parent().unwrap()).unwrap();
        for (content, detail) in [
            (
                "{\"format_version\": \"1\", \"lineage\": ",
                "not valid JSON",
            ),
            ("", "not valid JSON"),
            ("[1, 2]", "not a JSON object"),
            ("{\"serial\": 3}", "no `format_version`"),
            (
                "{\"format_version\": \"1\", \"lineage\": \"l\"}",
                "does not match the state format",
            ),
        ] {
            fs::write(backend.path(), content).unwrap();
            let err = backend.read().unwrap_err();
            assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
            let msg = err.to_string();
            let p = backend.path().display();
            assert!(
                msg.starts_with(&format!("state `{p}` is corrupted: it ")),
                "{msg}"
            );
            assert!(msg.contains(detail), "{msg}");
            assert!(
                msg.contains(&format!("restore the previous version from `{p}.backup`")),
                "{msg}"
            );
        }
    }

    #[test]
    fn unknown_format_version_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        fs::create_dir_all(backend.path().parent().unwrap()).unwrap();
        // A future format may look entirely different; the version is what matters.
        fs::write(
            backend.path(),
            "{\"format_version\": \"2\", \"objects\": {}}",
        )
        .unwrap();
        let err = backend.read().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "state `{}` has format_version `2`, but this raystack only understands \
                 format_version `1`; use the raystack release that wrote it",
                backend.path().display()
            )
        );
        fs::write(backend.path(), "{\"format_version\": 1}").unwrap();
        assert!(matches!(
            backend.read().unwrap_err(),
            StateError::UnsupportedVersion { found, .. } if found == "1"
        ));
    }

    #[test]
    fn write_refuses_to_clobber_a_corrupted_file_so_the_backup_survives() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new("prod");
        lock.write(&mut state).unwrap();
        lock.write(&mut state).unwrap();
        let good_backup = fs::read(backend.backup_path()).unwrap();
        fs::write(backend.path(), "garbage").unwrap();
        let err = lock.write(&mut state).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
        assert_eq!(state.serial, 2, "serial unchanged on error");
        assert_eq!(fs::read(backend.backup_path()).unwrap(), good_backup);
    }

    #[test]
    fn write_refuses_another_lineage_or_a_newer_serial() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new("prod");
        lock.write(&mut state).unwrap();

        let mut stranger = State::new("prod");
        let err = lock.write(&mut stranger).unwrap_err();
        assert!(matches!(err, StateError::LineageMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains("is a different state"), "{err}");
        assert_eq!(stranger.serial, 0);

        let mut stale = state.clone();
        lock.write(&mut state).unwrap();
        stale.serial = 0;
        let err = lock.write(&mut stale).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::StaleSerial {
                    ours: 0,
                    on_disk: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(backend.read().unwrap().unwrap(), state);
    }

    #[test]
    fn second_lock_fails_fast_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let held = backend.lock("apply").unwrap();
        assert_eq!(held.info().operation, "apply");

        // `held` is dropped only below: a lock that waited for it would never return here, so
        // getting `Locked` back at all is what shows the lock does not block.
        let err = backend.lock("plan").unwrap_err();
        let StateError::Locked(info) = &err else {
            panic!("expected Locked, got {err:?}");
        };
        assert_eq!(info.pid, std::process::id());
        assert_eq!(info.operation, "apply");
        assert_eq!(info.path, backend.path());
        assert!(!info.host.is_empty());
        assert_eq!(info.created.len(), "2026-01-01T00:00:00Z".len());
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "state `{}` is locked by `apply` (pid {} on host ",
                backend.path().display(),
                std::process::id()
            )),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "wait for it to finish (the lock is released as soon as that process exits)"
            ),
            "{msg}"
        );

        drop(held);
        let again = backend.lock("plan").unwrap();
        assert_eq!(again.info().operation, "plan");
    }

    #[test]
    fn a_lock_file_without_a_holder_is_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        fs::create_dir_all(backend.path().parent().unwrap()).unwrap();
        fs::write(
            backend.lock_path(),
            r#"{"pid": 1, "operation": "apply", "created": "2020-01-01T00:00:00Z", "host": "gone"}"#,
        )
        .unwrap();
        let lock = backend.lock("apply").unwrap();
        assert_eq!(lock.info().pid, std::process::id());
        let recorded: LockInfo =
            serde_json::from_slice(&fs::read(backend.lock_path()).unwrap()).unwrap();
        assert_eq!(recorded.pid, std::process::id());
        assert_eq!(recorded.operation, "apply");
    }

    /// A clock that moves only when `lock_wait` pauses, by what it asked, and runs `on_pause`
    /// (with the number of pauses so far) at each pause.
    struct TestClock<F: FnMut(u32)> {
        now: Duration,
        pauses: u32,
        on_pause: F,
    }

    impl<F: FnMut(u32)> WaitClock for TestClock<F> {
        fn elapsed(&self) -> Duration {
            self.now
        }

        fn pause(&mut self, d: Duration) {
            self.now += d;
            self.pauses += 1;
            (self.on_pause)(self.pauses);
        }
    }

    #[test]
    fn lock_wait_waits_for_release_and_reports_the_holder_once() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let mut held = Some(backend.lock("apply").unwrap());
        // The holder lets go during the third pause: two polls find it held.
        let mut clock = TestClock {
            now: Duration::ZERO,
            pauses: 0,
            on_pause: |n| {
                if n == 3 {
                    held.take();
                }
            },
        };
        let mut seen = Vec::new();
        let lock = backend
            .lock_wait_with("destroy", Duration::from_secs(10), &mut clock, |info| {
                seen.push(info.operation.clone())
            })
            .unwrap();
        assert_eq!(clock.pauses, 3);
        assert_eq!(seen, ["apply"]);
        assert_eq!(lock.info().operation, "destroy");
    }

    #[test]
    fn lock_wait_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let _held = backend.lock("apply").unwrap();
        let mut clock = TestClock {
            now: Duration::ZERO,
            pauses: 0,
            on_pause: |_| {},
        };
        let mut calls = 0;
        let err = backend
            .lock_wait_with("plan", Duration::from_millis(250), &mut clock, |_| {
                calls += 1
            })
            .unwrap_err();
        // Polled every 100 ms, the last pause cut to what was left of the timeout.
        assert_eq!(clock.now, Duration::from_millis(250));
        assert_eq!(clock.pauses, 3);
        assert_eq!(calls, 1);
        assert!(matches!(err, StateError::LockTimeout(ref info, _) if info.operation == "apply"));
        assert!(
            err.to_string().contains("still held after waiting 250ms"),
            "{err}"
        );
    }

    #[test]
    fn force_unlock_checks_the_id_and_the_unlocked_holder_can_no_longer_write() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        assert_eq!(backend.current_holder().unwrap(), None);
        assert!(matches!(
            backend.force_unlock("x"),
            Err(StateError::NotLocked(_))
        ));
        let mut stuck = backend.lock("apply").unwrap();
        let mut state = State::new("prod");
        stuck.write(&mut state).unwrap();
        let id = stuck.info().id.clone();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        let holder = backend.current_holder().unwrap().expect("held");
        assert_eq!(holder.id, id);
        assert!(holder.describe().ends_with(&format!(", lock ID {id})")));

        let err = backend.force_unlock("wrong").unwrap_err();
        assert!(matches!(err, StateError::WrongLockId { .. }), "{err:?}");
        assert!(
            backend.lock("plan").is_err(),
            "still locked after a refused unlock"
        );

        assert_eq!(backend.force_unlock(&id).unwrap().id, id);
        let next = backend.lock("apply").unwrap();
        let err = stuck.write(&mut state).unwrap_err();
        assert!(matches!(err, StateError::LockLost(_)), "{err:?}");
        assert_eq!(backend.read().unwrap().unwrap().serial, 1);
        drop(stuck);
        assert!(
            backend.lock_path().exists(),
            "the unlocked holder leaves the new holder's lock file alone"
        );
        assert_eq!(
            backend.current_holder().unwrap().unwrap().id,
            next.info().id
        );
    }

    #[test]
    fn retire_moves_the_file_aside() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let mut lock = backend.lock("state migrate").unwrap();
        let mut state = State::new("prod");
        lock.write(&mut state).unwrap();
        let to = lock.retire().unwrap();
        assert_eq!(to, super::super::migrated_path(backend.path()));
        assert_eq!(backend.read().unwrap(), None);
        let moved: State = serde_json::from_slice(&fs::read(&to).unwrap()).unwrap();
        assert_eq!(moved, state);
    }

    #[test]
    fn lock_wait_takes_a_free_lock_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let lock = backend
            .lock_wait("apply", Duration::ZERO, |_| panic!("nobody holds it"))
            .unwrap();
        assert_eq!(lock.info().operation, "apply");
    }
}
