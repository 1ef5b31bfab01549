//! Reading a stack file's bytes, bounded: only a regular file is read (a FIFO would block
//! forever, `/dev/zero` would be read until memory runs out), and only up to
//! [`MAX_STACK_FILE_BYTES`].

use std::io::Read;
use std::path::Path;

use super::Diagnostic;

/// The largest stack file raystack reads. Real stack files are a few kilobytes.
pub const MAX_STACK_FILE_BYTES: u64 = 1024 * 1024;

fn problem(path: &Path, message: String, help: &str) -> Diagnostic {
    Diagnostic {
        file: path.into(),
        line: 0,
        column: 0,
        key: String::new(),
        message,
        help: Some(help.into()),
    }
}

/// What kind of file `meta` describes, for a message ("a directory", "a FIFO (named pipe)",
/// …): the stack reader and the local state backend refuse the same files in the same words.
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// The bytes of the stack file at `path` (symlinks followed), or why it cannot be read.
pub fn read_stack_file(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let help = "check the path; stack files are TOML, e.g. `stacks/local.toml`";
    let unreadable =
        |err: std::io::Error| problem(path, format!("cannot read the stack file: {err}"), help);
    // Look before opening: opening a FIFO for reading blocks until a writer appears.
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    let not_regular = |meta: &std::fs::Metadata| {
        problem(
            path,
            format!("the stack file is {}, not a regular file", file_kind(meta)),
            "give the path of a TOML stack file",
        )
    };
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let too_big = |size: u64| {
        problem(
            path,
            format!(
                "the stack file is {size} bytes; raystack reads stack files of at most {MAX_STACK_FILE_BYTES} bytes (1 MiB)"
            ),
            "a stack file is a few kilobytes of TOML; check that this is the right file",
        )
    };
    if meta.len() > MAX_STACK_FILE_BYTES {
        return Err(too_big(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // The path may have been swapped between the look and the open.
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let mut bytes = Vec::new();
    file.take(MAX_STACK_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_STACK_FILE_BYTES {
        return Err(too_big(meta.len().max(bytes.len() as u64)));
    }
    Ok(bytes)
}
