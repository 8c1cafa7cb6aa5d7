//! `.fmpkg` archives (SPEC §5): packing, reading `manifest.json`, and safe
//! extraction.
//!
//! Invariants:
//! - [`pack`] is a pure function of the folder's contents (and
//!   `SOURCE_DATE_EPOCH`): entries sorted by path, fixed timestamps, modes
//!   `0644`/`0755`, no build time. The same tree always gives the same bytes.
//!   Hidden files and folders (`.git`, `.fm`), `*.fmpkg`, and at the root
//!   `target/`, `fm.toml` and `fm.lock` are left out; `[package] exclude`
//!   leaves out more.
//! - [`read_manifest`] accepts what FlowMason 1.0.24 packs (a `manifest.json`
//!   without file-type bits, unknown keys, `{}` dependencies) and validates
//!   what fm relies on: a valid name, a semantic version, parseable
//!   requirements.
//! - [`extract`] never writes outside its target: it refuses absolute and
//!   drive-letter paths, `..`, backslashes, symlinks, hardlinks, device and
//!   other special entries, duplicate entries, and stops at measured (not
//!   declared) size and entry-count caps.
//! - Publish and install apply one set of rules with one reader:
//!   [`check_entries`] and [`extract`] share a walk (`unpack.rs`) over fm's
//!   own zip reader (`zipread.rs`, which refuses archives whose structure
//!   disagrees with itself), and names must be creatable on every OS
//!   (`portable.rs`). Whatever a registry accepts, an install can unpack.

mod portable;
mod unpack;
mod zipread;

use std::collections::BTreeMap;
use std::io::{self, Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;

pub use portable::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
pub use unpack::{ExtractedFile, check_entries, extract, safe_entry_path};

use crate::manifest::{Manifest, PackageMeta};
use crate::names;
use crate::req::Requirement;

/// The archive entry holding the package manifest.
pub const MANIFEST_ENTRY: &str = "manifest.json";

/// Caps applied when reading or extracting an archive.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries an archive may have.
    pub max_entries: usize,
    /// Most bytes all entries may decompress to, measured while writing.
    pub max_total_bytes: u64,
    /// Most bytes `manifest.json` may have.
    pub max_manifest_bytes: u64,
    /// Highest ratio of decompressed to compressed bytes an entry may reach
    /// once it is past [`RATIO_GRACE_BYTES`] (a zip-bomb guard, as Apache
    /// POI's minimum inflate ratio).
    pub max_ratio: u64,
}

/// Bytes an entry may decompress to before [`Limits::max_ratio`] applies:
/// small, highly repetitive files are normal.
pub const RATIO_GRACE_BYTES: u64 = 1024 * 1024;

/// Whether an entry that has decompressed `size` bytes out of `compressed`
/// bytes is past the ratio cap.
fn past_ratio(size: u64, compressed: u64, limits: &Limits) -> bool {
    size > RATIO_GRACE_BYTES && size / compressed.max(1) > limits.max_ratio
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_total_bytes: 512 * 1024 * 1024,
            max_manifest_bytes: 1024 * 1024,
            max_ratio: 200,
        }
    }
}

/// `manifest.json`, FlowMason's package manifest, in the key order
/// `flowmason pack` writes. Unknown keys are ignored, as FlowMason does.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PackageManifest {
    pub name: String,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flowmason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    #[serde(default)]
    pub exports: Vec<String>,
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_by: Option<String>,
    #[serde(default)]
    pub pipelines: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
}

/// FlowMason's server treats a missing version as `1.0.0`.
fn default_version() -> String {
    "1.0.0".to_owned()
}

/// A `manifest.json` that passed validation, with its parsed parts.
#[derive(Debug, Clone)]
pub struct ValidManifest {
    pub raw: PackageManifest,
    pub version: semver::Version,
    pub dependencies: BTreeMap<String, Requirement>,
}

impl ValidManifest {
    /// Tags as the registry reports them: `tags`, else `keywords`.
    pub fn tags(&self) -> Vec<String> {
        self.raw.tags.clone().unwrap_or_else(|| self.raw.keywords.clone())
    }

    /// Components as FlowMason's registry reports them: `components`, else
    /// `[component_type]`, else `[""]`.
    pub fn components(&self) -> Vec<String> {
        if !self.raw.components.is_empty() {
            self.raw.components.clone()
        } else if let Some(t) = &self.raw.component_type {
            vec![t.clone()]
        } else {
            vec![String::new()]
        }
    }
}

/// What went wrong reading, packing or extracting an archive.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ArchiveError {
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    #[diagnostic(code(fm::archive::io))]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The bytes are not a zip archive.
    #[error("not a .fmpkg archive (not a zip file): {0}")]
    #[diagnostic(code(fm::archive::not_zip))]
    NotZip(String),
    /// The zip structure disagrees with itself: two readers could see two
    /// different archives.
    #[error("the archive's zip structure disagrees with itself: {0}")]
    #[diagnostic(
        code(fm::archive::inconsistent),
        help("zip readers could see different files in it, so it was refused; rebuild it with `fm pack`")
    )]
    Inconsistent(String),
    /// No `manifest.json` at the archive's root.
    #[error("the archive has no manifest.json at its root")]
    #[diagnostic(
        code(fm::archive::no_manifest),
        help("build archives with `fm pack` (or `flowmason pack`)")
    )]
    MissingManifest,
    /// `manifest.json` is not valid.
    #[error("invalid manifest.json: {0}")]
    #[diagnostic(code(fm::archive::invalid_manifest))]
    InvalidManifest(String),
    /// An entry that could escape the target or is not a plain file.
    #[error("unsafe archive entry {name:?}: {reason}")]
    #[diagnostic(
        code(fm::archive::unsafe_entry),
        help("the archive was refused and nothing was installed; ask its publisher to rebuild it with `fm pack`")
    )]
    UnsafeEntry { name: String, reason: String },
    /// Past a size or count cap.
    #[error("archive too large: {0}")]
    #[diagnostic(code(fm::archive::too_large))]
    TooLarge(String),
    /// The package folder's `fm.toml` is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// `fm pack` could not build an archive from the folder.
    #[error("cannot pack {}: {reason}", dir.display())]
    #[diagnostic(code(fm::archive::pack))]
    Pack { dir: PathBuf, reason: String },
}

impl ArchiveError {
    fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
        let what = what.into();
        move |source| ArchiveError::Io { what, source }
    }
}

/// Reads and validates `manifest.json` from archive bytes.
pub fn read_manifest(bytes: &[u8]) -> Result<ValidManifest, ArchiveError> {
    read_manifest_from(Cursor::new(bytes), &Limits::default())
}

/// Reads and validates `manifest.json` from a seekable archive: the same
/// structure checks as [`extract`], and a cap on the bytes actually
/// inflated (never the declared size).
pub fn read_manifest_from<R: Read + Seek>(mut r: R, limits: &Limits) -> Result<ValidManifest, ArchiveError> {
    let entries = zipread::read_layout(&mut r, limits)?;
    let Some(entry) = entries.iter().find(|e| e.name == MANIFEST_ENTRY.as_bytes()) else {
        return Err(ArchiveError::MissingManifest);
    };
    let Some(text) = zipread::read_entry(&mut r, entry, limits.max_manifest_bytes)? else {
        return Err(ArchiveError::TooLarge(format!(
            "manifest.json is over {} bytes",
            limits.max_manifest_bytes
        )));
    };
    parse_manifest_json(&text)
}

/// Validates the text of a `manifest.json`.
pub fn parse_manifest_json(text: &[u8]) -> Result<ValidManifest, ArchiveError> {
    let raw: PackageManifest =
        serde_json::from_slice(text).map_err(|e| ArchiveError::InvalidManifest(e.to_string()))?;
    validate_manifest(raw)
}

/// Checks the fields fm relies on.
pub fn validate_manifest(raw: PackageManifest) -> Result<ValidManifest, ArchiveError> {
    names::validate(&raw.name)
        .map_err(|why| ArchiveError::InvalidManifest(format!("package name {:?} is invalid: {why}", raw.name)))?;
    let version = semver::Version::parse(&raw.version).map_err(|e| {
        ArchiveError::InvalidManifest(format!(
            "version {:?} of {} is not a semantic version: {e}",
            raw.version, raw.name
        ))
    })?;
    if raw.dependencies.len() > crate::manifest::MAX_DEPENDENCIES {
        return Err(ArchiveError::InvalidManifest(format!(
            "{} declares {} dependencies (at most {})",
            raw.name,
            raw.dependencies.len(),
            crate::manifest::MAX_DEPENDENCIES
        )));
    }
    let mut dependencies = BTreeMap::new();
    for (dep, req) in &raw.dependencies {
        names::validate(dep).map_err(|why| {
            ArchiveError::InvalidManifest(format!("dependency name {dep:?} of {} is invalid: {why}", raw.name))
        })?;
        if dep == &raw.name {
            return Err(ArchiveError::InvalidManifest(format!("{} depends on itself", raw.name)));
        }
        let req = Requirement::parse(req).map_err(|e| {
            ArchiveError::InvalidManifest(format!(
                "requirement {req:?} on {dep} in {}@{} is invalid: {e}",
                raw.name, raw.version
            ))
        })?;
        dependencies.insert(dep.clone(), req);
    }
    Ok(ValidManifest {
        raw,
        version,
        dependencies,
    })
}

// ---------------------------------------------------------------------------
// Packing

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

/// Builds a reproducible `.fmpkg` from `dir`, whose `fm.toml` has a
/// `[package]` table.
pub fn pack(dir: &Path) -> Result<Packed, ArchiveError> {
    let manifest_path = dir.join(crate::manifest::MANIFEST_FILE);
    let manifest = Manifest::load(&manifest_path)?;
    let Some(meta) = manifest.package.clone() else {
        return Err(ArchiveError::Pack {
            dir: dir.to_owned(),
            reason: format!("{} has no [package] table", manifest_path.display()),
        });
    };
    let mut files = Vec::new();
    collect_files(dir, dir, &meta.exclude, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(ArchiveError::Pack {
            dir: dir.to_owned(),
            reason: "no files to pack".to_owned(),
        });
    }
    let deps = manifest
        .dependencies
        .values()
        .map(|d| {
            if d.registry.is_some() {
                Err(ArchiveError::Pack {
                    dir: dir.to_owned(),
                    reason: format!(
                        "dependency {} names a registry; a published package's dependencies come from the installing project's registries",
                        d.name
                    ),
                })
            } else {
                Ok((d.name.clone(), d.req.to_string()))
            }
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let raw = manifest_json_for(&meta, deps, &files);
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
    PackageManifest {
        name: meta.name.clone(),
        version: meta.version.clone(),
        description: meta.description.clone(),
        author: meta.author.clone(),
        author_email: meta.author_email.clone(),
        license: meta.license.clone(),
        repository: meta.repository.clone(),
        homepage: meta.homepage.clone(),
        keywords: meta.keywords.clone(),
        flowmason: Some(">=0.1.0".to_owned()),
        entry: meta.entry.clone(),
        exports: meta.exports.clone(),
        dependencies,
        built_at: source_date_epoch().map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%S").to_string()),
        built_by: Some(concat!("fm ", env!("CARGO_PKG_VERSION")).to_owned()),
        pipelines,
        components,
        category: meta.category.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of_zeros(len: usize) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("zeros.bin", opts).unwrap();
        zip.write_all(&vec![0u8; len]).unwrap();
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn compression_ratio_cap_stops_small_zip_bombs_but_not_small_repetitive_files() {
        let limits = Limits::default();
        assert!(check_entries(&zip_of_zeros(512 * 1024), &limits).is_ok());
        let bomb = zip_of_zeros(4 * 1024 * 1024);
        assert!(matches!(check_entries(&bomb, &limits), Err(ArchiveError::TooLarge(m)) if m.contains("zip bomb")));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            extract(Cursor::new(&bomb), dir.path(), &limits),
            Err(ArchiveError::TooLarge(m)) if m.contains("zip bomb")
        ));
    }

    #[test]
    fn entry_paths() {
        assert!(safe_entry_path("a/b.txt").is_ok());
        assert!(safe_entry_path("dir/").is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../x", "a\\b", "C:/x", "a//b", "./a", ""] {
            assert!(safe_entry_path(bad).is_err(), "{bad}");
        }
    }
}
