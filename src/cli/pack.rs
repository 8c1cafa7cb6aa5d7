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

/// Where `--registry` points.
pub(super) enum Target {
    /// A directory registry folder.
    Directory(PathBuf),
    /// An HTTP registry's URL.
    Http(url::Url),
}

/// Reads `--registry`: a `file://` URL, an `http(s)://` URL, a path (it
/// contains `/`, starts with `.`, or is an existing folder), or the name of a
/// registry declared in the project's fm.toml or the user configuration.
pub(super) fn target(ctx: &Context, text: &str) -> Result<Target, Failure> {
    let looks_like_location =
        text.contains("://") || text.contains('/') || text.starts_with('.') || ctx.cwd.join(text).is_dir();
    let url = if looks_like_location {
        crate::manifest::parse_location(text, &ctx.cwd)
            .map_err(|why| Failure::usage(format!("invalid --registry {text:?}: {why}"), None))?
    } else {
        let from_manifest = ctx
            .manifest_path()
            .ok()
            .and_then(|p| crate::manifest::Manifest::load(&p).ok())
            .and_then(|m| m.registries.into_iter().find(|r| r.name == text))
            .map(|r| r.url);
        match from_manifest {
            Some(u) => u,
            None => {
                let config = crate::config::UserConfig::load()?;
                let entry = config.get(text).ok_or_else(|| {
                    Failure::usage(
                        format!("no registry named {text:?} in fm.toml or the user configuration"),
                        Some("pass a directory path, a file:// or https:// URL, or add it with `fm registry add`"),
                    )
                })?;
                crate::manifest::parse_location(&entry.url, &ctx.cwd).map_err(|why| {
                    Failure::usage(
                        format!("registry {text:?} has an invalid URL {:?}: {why}", entry.url),
                        None,
                    )
                })?
            }
        }
    };
    if url.scheme() == "file" {
        let root = url
            .to_file_path()
            .map_err(|()| Failure::usage(format!("{url} is not a local path"), None))?;
        Ok(Target::Directory(root))
    } else {
        Ok(Target::Http(url))
    }
}

pub fn publish(ctx: &Context, a: PublishArgs) -> Result<(), Failure> {
    let Some(text) = a.registry else {
        return Err(Failure::usage(
            "fm publish needs --registry",
            Some("pass --registry with a directory registry path or file:// URL"),
        ));
    };
    let root = match target(ctx, &text)? {
        Target::Directory(root) => root,
        Target::Http(url) => {
            let url = crate::registry::redact_url(&url);
            return Err(Failure::not_built(&format!("publish to {url}")));
        }
    };
    let bytes = archive_bytes(&a.path)?;
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
