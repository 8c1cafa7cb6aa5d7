//! `fm pack` and `fm publish`.

use std::path::{Path, PathBuf};

use super::args::{PackArgs, PublishArgs};
use super::{Context, Failure};
use crate::archive;
use crate::registry::publish;
use crate::registry::storage::DirStorage;

pub fn pack(ctx: &Context, a: PackArgs) -> Result<(), Failure> {
    let dir = a.dir.unwrap_or_else(|| ctx.cwd.clone());
    let packed = archive::pack(&dir)?;
    let out = a.output.unwrap_or_else(|| ctx.cwd.join(packed.file_name()));
    crate::fsutil::write_atomic(&out, &packed.bytes)
        .map_err(|e| Failure::user(miette::miette!("cannot write {}: {e}", out.display())))?;
    ctx.shell.status(
        "Packed",
        format!(
            "{}@{} -> {} ({} bytes, sha256 {})",
            packed.manifest.raw.name,
            packed.manifest.version,
            out.display(),
            packed.bytes.len(),
            packed.sha256
        ),
    );
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "name": packed.manifest.raw.name,
            "version": packed.manifest.raw.version,
            "path": out,
            "size": packed.bytes.len(),
            "sha256": packed.sha256,
        }));
    }
    Ok(())
}

/// Reads a `.fmpkg`, or packs a folder.
pub fn archive_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    if path.is_dir() {
        Ok(archive::pack(path)?.bytes)
    } else {
        std::fs::read(path).map_err(|e| Failure::user(miette::miette!("cannot read {}: {e}", path.display())))
    }
}

pub fn publish(ctx: &Context, a: PublishArgs) -> Result<(), Failure> {
    let bytes = archive_bytes(&a.path)?;
    let Some(target) = a.registry else {
        return Err(Failure::usage(
            "fm publish needs --registry",
            Some("pass --registry with a directory registry path or file:// URL"),
        ));
    };
    let url = crate::manifest::parse_location(&target, &ctx.cwd)
        .map_err(|why| Failure::usage(format!("invalid --registry {target:?}: {why}"), None))?;
    if url.scheme() != "file" {
        return Err(Failure::not_built("publish to an HTTP registry"));
    }
    let root: PathBuf = url
        .to_file_path()
        .map_err(|()| Failure::usage(format!("{url} is not a local path"), None))?;
    let storage = DirStorage::new(root);
    let published = publish::publish(&storage, &bytes, None, &archive::Limits::default())?;
    ctx.shell.status(
        "Published",
        format!(
            "{}@{} to {} (sha256 {})",
            published.manifest.raw.name,
            published.record.version,
            storage.root().display(),
            published.record.checksum
        ),
    );
    Ok(())
}
