//! `fm pack` and `fm publish`.

use std::path::Path;

use super::args::{PackArgs, PublishArgs};
use super::{Context, Failure};
use crate::archive;
use crate::manifest::{MANIFEST_FILE, Manifest, RegistryDecl};
use crate::registry::HttpRegistry;
use crate::registry::publish;
use crate::registry::storage::DirStorage;

pub fn pack(ctx: &Context, a: PackArgs) -> Result<(), Failure> {
    let dir = a.dir.unwrap_or_else(|| ctx.cwd.clone());
    let packed = pack_folder(&dir)?;
    let out = a.output.unwrap_or_else(|| ctx.cwd.join(packed.file_name()));
    crate::fsutil::write_atomic(&out, &packed.bytes)
        .map_err(|e| Failure::user(miette::miette!("cannot write {}: {e}", out.display())))?;
    ctx.shell.status(
        "Packed",
        format!(
            "{}@{} -> {} ({}, sha256 {})",
            packed.manifest.raw.name,
            packed.manifest.version,
            out.display(),
            super::fmt::size(packed.bytes.len() as u64),
            packed.sha256
        ),
    );
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "schema_version": 1,
            "name": packed.manifest.raw.name,
            "version": packed.manifest.raw.version,
            "path": out,
            "size": packed.bytes.len(),
            "sha256": packed.sha256,
        }));
    }
    Ok(())
}

/// Packs a package folder, with the metadata its `fm.toml` declares.
fn pack_folder(dir: &Path) -> Result<archive::Packed, Failure> {
    let manifest = Manifest::load(&dir.join(MANIFEST_FILE))?;
    Ok(archive::pack(dir, &manifest.pack_input()?)?)
}

/// Reads a `.fmpkg`, or packs a folder.
pub fn archive_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    if path.is_dir() {
        Ok(pack_folder(path)?.bytes)
    } else {
        std::fs::read(path).map_err(|e| Failure::user(miette::miette!("cannot read {}: {e}", path.display())))
    }
}

/// Warns about dependencies that none of the configured registries has
/// (the project's, else the user's, and the target): whoever installs the
/// package would fail to resolve it. Said after the publish; best effort.
fn warn_unknown_dependencies(
    ctx: &Context,
    package: &str,
    deps: &std::collections::BTreeMap<String, String>,
    target: &super::target::Target,
) {
    if deps.is_empty() {
        return;
    }
    let mut decls = ctx
        .manifest_path()
        .ok()
        .and_then(|p| crate::manifest::Manifest::load(&p).ok())
        .and_then(|m| crate::project::Project::new(m).registry_decls().ok())
        .filter(|d| !d.is_empty())
        .unwrap_or_default();
    if decls.is_empty()
        && let Ok(config) = crate::config::UserConfig::load()
    {
        for e in config.enabled() {
            if let Ok(url) = crate::location::parse_location(&e.url, &ctx.cwd) {
                decls.push(RegistryDecl {
                    log: Default::default(),
                    relative: None,
                    name: e.name.clone(),
                    url,
                    priority: e.priority,
                    explicit: false,
                });
            }
        }
    }
    if !decls.iter().any(|d| d.url == target.url) {
        decls.push(RegistryDecl {
            log: Default::default(),
            relative: None,
            name: target.name.clone(),
            url: target.url.clone(),
            priority: crate::location::DEFAULT_PRIORITY,
            explicit: false,
        });
    }
    let searched: Vec<String> = decls.iter().map(|d| d.name.clone()).collect();
    let opened = crate::config::UserConfig::load()
        .map_err(crate::project::ProjectError::from)
        .and_then(|config| crate::project::open_registries(&config, decls, ctx.global.offline));
    let Ok(set) = opened else {
        return;
    };
    let names: Vec<String> = deps.keys().cloned().collect();
    for name in crate::project::yanked::absent_everywhere(&set, &names) {
        ctx.shell.warn(format!(
            "{package} depends on {name} {}, which none of the configured registries ({}) has: installing {package} will fail until {name} is published",
            deps.get(&name).map(String::as_str).unwrap_or("*"),
            searched.join(", ")
        ));
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
        let key = super::log::optional_key(ctx, a.log_key.as_deref())?;
        let published = publish::publish(&storage, &bytes, None, &archive::Limits::default(), key.as_ref())?;
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
        warn_unknown_dependencies(ctx, &manifest.raw.name, &manifest.raw.dependencies, &target);
        if ctx.global.json {
            ctx.shell.json(&serde_json::json!({
                "schema_version": 1,
                "name": published.manifest.raw.name,
                "version": published.record.version,
                "registry": target.name,
                "url": crate::registry::redact_url(&target.url).as_str(),
                "sha256": published.record.checksum,
                "size": published.record.size_bytes,
            }));
        }
        if let Some(n) = published.record.log_index {
            ctx.shell.verbose(format!("Logged as record {n}"));
        }
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
    warn_unknown_dependencies(ctx, &manifest.raw.name, &manifest.raw.dependencies, &target);
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "schema_version": 1,
            "name": info.name,
            "version": info.version,
            "registry": target.name,
            "url": crate::registry::redact_url(&target.url).as_str(),
            "sha256": info.checksum,
            "size": info.size_bytes,
        }));
    }
    Ok(())
}
