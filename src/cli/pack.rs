//! `fm pack` and `fm publish`.

use std::path::Path;

use super::args::{PackArgs, PublishArgs};
use super::{Context, Failure};
use crate::archive;
use crate::registry::HttpRegistry;
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
    // Validate locally first: a broken archive never leaves this machine.
    let manifest = archive::read_manifest(&bytes)?;
    archive::check_entries(&bytes, &archive::Limits::default())?;
    let target = super::target::resolve(ctx, a.registry.as_deref())?;
    target.check_writable("upload")?;
    if let Some(root) = target.directory() {
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
        return Ok(());
    }
    let file_name = format!("{}-{}.fmpkg", manifest.raw.name, manifest.version);
    let registry = HttpRegistry::new(&target.name, &target.url, &target.opts)?;
    let info = super::target::runtime()?.block_on(registry.upload(bytes, &file_name))?;
    ctx.shell.status(
        "Published",
        format!(
            "{}@{} to {} (sha256 {})",
            info.name,
            info.version,
            crate::registry::redact_url(&target.url),
            info.checksum
        ),
    );
    if ctx.global.json {
        ctx.shell.json(&info);
    }
    Ok(())
}
