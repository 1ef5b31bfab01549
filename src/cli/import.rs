//! `raystack import --namespace NS --raycluster NAME [--out FILE]`: write a stack file that
//! adopts a Ray cluster a team already runs (its RayCluster and the Redis behind it) in place.
//! Exit 0 when the file was written, 1 when import refuses or fails (nothing is written).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::args::ClusterArgs;
use crate::engine::ImportRequest;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The namespace of the RayCluster (and of its Redis).
    #[arg(long, value_name = "NS")]
    pub namespace: String,
    /// The name of the RayCluster to import; it becomes the stack name.
    #[arg(long, value_name = "NAME")]
    pub raycluster: String,
    /// Write the stack file to FILE (refused when FILE exists) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Import objects another deployment tool manages (Helm, Argo CD, kapp) too: its first apply
    /// takes them over, and that tool must stop managing them.
    #[arg(long)]
    pub take_ownership: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.out
        && (out.exists() || out.is_symlink())
    {
        bail!(
            "refusing to overwrite {}: it exists; choose another --out, or move it away first",
            out.display()
        );
    }
    let mut command = format!(
        "raystack import --namespace {} --raycluster {}",
        args.namespace, args.raycluster
    );
    if args.take_ownership {
        command.push_str(" --take-ownership");
    }
    let request = ImportRequest {
        namespace: args.namespace.clone(),
        raycluster: args.raycluster.clone(),
        take_ownership: args.take_ownership,
        command,
    };
    let text = args
        .cluster
        .engine()
        .import(&request)
        .await
        .with_context(|| {
            format!(
                "failed to import RayCluster `{}` from namespace `{}`",
                args.raycluster, args.namespace
            )
        })?;
    // The file must be a valid stack: checked as `validate` would, before anything is written.
    let check_path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("imported.toml"));
    if let Err(diags) = crate::render::parse_str(&check_path, &text) {
        bail!("import wrote a stack that does not validate (nothing was written):\n{diags}");
    }
    match &args.out {
        Some(out) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(out)
                .with_context(|| format!("failed to create {}", out.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("failed to write {}", out.display()))?;
            eprintln!("wrote {}", out.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
