//! Packing: a folder and its package metadata ([`PackInput`]) into a
//! reproducible `.fmpkg` ([`Packed`]).
//!
//! [`pack`] does not read `fm.toml`: its caller hands the metadata in
//! (`Manifest::pack_input` reads it), so `archive` stays below `manifest`.
//! The output is a pure function of the folder's contents, the metadata and
//! `SOURCE_DATE_EPOCH`: entries sorted by path, fixed timestamps, modes
//! `0644`/`0755`, no build time.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::Path;

use serde::Deserialize;
use zip::write::SimpleFileOptions;

use super::manifest::{About, PackageManifest, ValidManifest, validate_manifest};
use super::{ArchiveError, MANIFEST_ENTRY};
use crate::req::Requirement;

/// `fm.toml`'s `[package]`: a package's metadata as its author writes it,
/// and what `fm pack` writes into `manifest.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageMeta {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub author: Option<String>,
    pub author_email: Option<String>,
    pub license: Option<String>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    pub entry: Option<String>,
    #[serde(default)]
    pub exports: Vec<String>,
    /// Archive paths of components; derived from `components/**/*.py` when
    /// absent.
    pub components: Option<Vec<String>>,
    /// Archive paths of pipelines; derived from `pipelines/**/*.pipeline.json`
    /// when absent.
    pub pipelines: Option<Vec<String>>,
    /// Extra files or folders to leave out of the archive.
    #[serde(default)]
    pub exclude: Vec<String>,
}

super::manifest::about_from!(PackageMeta);

/// What [`pack`] builds an archive from besides the folder's files: the
/// package's `[package]` table and its dependencies (name → requirement).
#[derive(Debug, Clone)]
pub struct PackInput {
    pub meta: PackageMeta,
    pub dependencies: BTreeMap<String, Requirement>,
}

/// A freshly built archive.
#[derive(Debug, Clone)]
pub struct Packed {
    pub bytes: Vec<u8>,
    pub manifest: ValidManifest,
    pub sha256: String,
}

impl Packed {
    /// The conventional file name: `{name}-{version}.fmpkg`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.fmpkg", self.manifest.raw.name, self.manifest.raw.version)
    }
}

/// Names never packed: hidden files and folders anywhere (`.git`, `.fm`,
/// `.env`), archives, and at the package root the build output (`target`)
/// and the project files (`fm.toml`, `fm.lock`).
fn excluded(name: &str, at_root: bool) -> bool {
    name.starts_with('.') || name.ends_with(".fmpkg") || (at_root && matches!(name, "target" | "fm.toml" | "fm.lock"))
}

/// Builds a reproducible `.fmpkg` from the files in `dir` and the metadata
/// in `input`.
pub fn pack(dir: &Path, input: &PackInput) -> Result<Packed, ArchiveError> {
    let meta = &input.meta;
    let mut files = Vec::new();
    collect_files(dir, dir, &meta.exclude, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(ArchiveError::Pack {
            dir: dir.to_owned(),
            reason: "no files to pack".to_owned(),
        });
    }
    let deps = input
        .dependencies
        .iter()
        .map(|(name, req)| (name.clone(), req.to_string()))
        .collect();
    let raw = manifest_json_for(meta, deps, &files);
    let manifest = validate_manifest(raw).map_err(|e| ArchiveError::Pack {
        dir: dir.to_owned(),
        reason: e.to_string(),
    })?;
    let json = serde_json::to_vec_pretty(&manifest.raw).map_err(|e| ArchiveError::Pack {
        dir: dir.to_owned(),
        reason: e.to_string(),
    })?;

    let time = fixed_time();
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = |mode: u32| {
        SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(time)
            .unix_permissions(mode)
    };
    let zerr = |e: zip::result::ZipError| ArchiveError::Pack {
        dir: dir.to_owned(),
        reason: e.to_string(),
    };
    zip.start_file(MANIFEST_ENTRY, opts(0o644)).map_err(zerr)?;
    zip.write_all(&json)
        .map_err(ArchiveError::io("writing manifest.json"))?;
    for rel in &files {
        let path = dir.join(rel);
        let meta = std::fs::metadata(&path).map_err(ArchiveError::io(format!("reading {}", path.display())))?;
        let mode = if is_executable(&meta) { 0o755 } else { 0o644 };
        let bytes = std::fs::read(&path).map_err(ArchiveError::io(format!("reading {}", path.display())))?;
        zip.start_file(rel.as_str(), opts(mode)).map_err(zerr)?;
        zip.write_all(&bytes).map_err(ArchiveError::io("writing the archive"))?;
    }
    let bytes = zip.finish().map_err(zerr)?.into_inner();
    let sha256 = crate::fsutil::sha256_hex(&bytes);
    Ok(Packed {
        bytes,
        manifest,
        sha256,
    })
}

/// The `manifest.json` `fm pack` writes for `meta`: its [`About`] fields,
/// the pipelines and components it lists (else those found among `files`),
/// and fm's build fields.
fn manifest_json_for(meta: &PackageMeta, dependencies: BTreeMap<String, String>, files: &[String]) -> PackageManifest {
    let pipelines = meta.pipelines.clone().unwrap_or_else(|| {
        files
            .iter()
            .filter(|f| f.starts_with("pipelines/") && f.ends_with(".pipeline.json"))
            .cloned()
            .collect()
    });
    let components = meta.components.clone().unwrap_or_else(|| {
        files
            .iter()
            .filter(|f| {
                f.starts_with("components/")
                    && f.ends_with(".py")
                    && !f.rsplit('/').next().is_some_and(|n| n.starts_with('_'))
            })
            .cloned()
            .collect()
    });
    let About {
        description,
        author,
        author_email,
        license,
        repository,
        homepage,
        category,
    } = About::from(meta);
    PackageManifest {
        name: meta.name.clone(),
        version: meta.version.clone(),
        description,
        author,
        author_email,
        license,
        repository,
        homepage,
        keywords: meta.keywords.clone(),
        flowmason: Some(">=0.1.0".to_owned()),
        entry: meta.entry.clone(),
        exports: meta.exports.clone(),
        dependencies,
        built_at: source_date_epoch().map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%S").to_string()),
        built_by: Some(concat!("fm ", env!("CARGO_PKG_VERSION")).to_owned()),
        pipelines,
        components,
        category,
        tags: meta.tags.clone(),
        component_type: None,
    }
}
fn source_date_epoch() -> Option<jiff::Timestamp> {
    let s = std::env::var("SOURCE_DATE_EPOCH").ok()?;
    jiff::Timestamp::from_second(s.trim().parse().ok()?).ok()
}

/// Entry timestamps: `SOURCE_DATE_EPOCH` when set (clamped to zip's 1980
/// floor), else 1980-01-01 00:00:00.
fn fixed_time() -> zip::DateTime {
    let fallback = zip::DateTime::default();
    let Some(ts) = source_date_epoch() else {
        return fallback;
    };
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    zip::DateTime::from_date_and_time(
        dt.year().clamp(1980, 2107) as u16,
        dt.month() as u8,
        dt.day() as u8,
        dt.hour() as u8,
        dt.minute() as u8,
        dt.second() as u8,
    )
    .unwrap_or(fallback)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

fn collect_files(root: &Path, dir: &Path, exclude: &[String], out: &mut Vec<String>) -> Result<(), ArchiveError> {
    let rd = std::fs::read_dir(dir).map_err(ArchiveError::io(format!("reading {}", dir.display())))?;
    for entry in rd {
        let entry = entry.map_err(ArchiveError::io(format!("reading {}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(ArchiveError::Pack {
                dir: root.to_owned(),
                reason: format!("{} is not valid UTF-8", entry.path().display()),
            });
        };
        if excluded(name, dir == root) {
            continue;
        }
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .map_err(|_| ArchiveError::Pack {
                dir: root.to_owned(),
                reason: format!("{} is outside the package", path.display()),
            })?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if exclude.iter().any(|x| x.trim_end_matches('/') == rel) {
            continue;
        }
        let ft = entry
            .file_type()
            .map_err(ArchiveError::io(format!("reading {}", path.display())))?;
        if ft.is_symlink() {
            return Err(ArchiveError::Pack {
                dir: root.to_owned(),
                reason: format!(
                    "{} is a symbolic link; archives hold plain files only (copy the target in, or list it in `exclude`)",
                    path.display()
                ),
            });
        } else if ft.is_dir() {
            collect_files(root, &path, exclude, out)?;
        } else if ft.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}
