//! `raystack render STACK [--out-dir DIR]`: the desired objects as YAML on stdout, or one file per
//! object (`NN-kind-name.yaml`, in apply order) in DIR, each written to a new file renamed into
//! place (a symlink already in DIR is replaced, never written through). Secret values are never
//! rendered.
//! An invalid stack prints its diagnostics on stderr and exits 1.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::render::{document, file_name, manifests, render};

pub fn run(stack_path: &Path, out_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let stack = match crate::render::load(stack_path) {
        Ok(stack) => stack,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return Ok(ExitCode::from(1));
        }
    };
    let rendered = render(&stack);
    match out_dir {
        None => {
            let yaml = manifests(&rendered.objects);
            let mut out = std::io::stdout().lock();
            match out.write_all(yaml.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => {}
                // `raystack render x | head` is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(e).context("failed to write to stdout"),
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("failed to create output directory `{}`", dir.display())
            })?;
            for (i, o) in rendered.objects.iter().enumerate() {
                let path = dir.join(file_name(i, o));
                write_replacing(dir, &path, document(o).as_bytes())
                    .with_context(|| format!("failed to write `{}`", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a new file in `dir` and renames it to `path`: the rename replaces whatever
/// entry `path` is, a symlink included, so nothing is written through a link planted in DIR.
/// The file's mode is what `std::fs::write` gives (0666 less the umask): manifests hold no
/// secret values.
fn write_replacing(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
