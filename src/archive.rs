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

use std::collections::BTreeMap;
use std::io::{self, Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::ZipArchive;
use zip::write::SimpleFileOptions;

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

fn open_zip<R: Read + Seek>(mut r: R) -> Result<ZipArchive<R>, ArchiveError> {
    check_structure(&mut r)?;
    r.seek(io::SeekFrom::Start(0))
        .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    ZipArchive::new(r).map_err(|e| ArchiveError::NotZip(e.to_string()))
}

/// Entries a central directory may list before the walk stops (far above
/// [`Limits::max_entries`], which is checked after).
const MAX_WALKED_ENTRIES: usize = 65_535;

/// Checks what the zip reader glosses over, by walking the raw central
/// directory: every entry's name appears once (the reader keeps only the
/// last of duplicates, other tools the first) and equals the name in its
/// local header (streaming extractors read those). Zip64 and data around
/// the archive are refused: a package never needs them.
fn check_structure<R: Read + Seek>(r: &mut R) -> Result<(), ArchiveError> {
    let not_zip = |m: &str| ArchiveError::NotZip(m.to_owned());
    let io_err = |e: io::Error| ArchiveError::NotZip(e.to_string());
    let len = r.seek(io::SeekFrom::End(0)).map_err(io_err)?;
    if len < 22 {
        return Err(not_zip("too short to hold a zip end record"));
    }
    let tail_len = len.min(22 + 65_535);
    r.seek(io::SeekFrom::Start(len - tail_len)).map_err(io_err)?;
    let mut tail = vec![0u8; tail_len as usize];
    r.read_exact(&mut tail).map_err(io_err)?;
    let Some(at) = (0..=tail.len() - 22)
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
    else {
        return Err(not_zip("no end of central directory record"));
    };
    let eocd = &tail[at..];
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let entries = u16_at(eocd, 10);
    let (cd_size, cd_offset) = (u32_at(eocd, 12), u32_at(eocd, 16));
    if entries == 0xFFFF || cd_size == u32::MAX || cd_offset == u32::MAX {
        return Err(not_zip("zip64 archives are not accepted (a package is far smaller)"));
    }
    let eocd_pos = len - tail_len + at as u64;
    if u64::from(cd_offset) + u64::from(cd_size) != eocd_pos {
        return Err(not_zip(
            "the central directory is not where the end record says (data before or inside the archive)",
        ));
    }
    r.seek(io::SeekFrom::Start(u64::from(cd_offset))).map_err(io_err)?;
    let mut cd = vec![0u8; cd_size as usize];
    r.read_exact(&mut cd).map_err(io_err)?;
    let mut seen = std::collections::HashSet::new();
    let mut p = 0usize;
    for _ in 0..usize::from(entries).min(MAX_WALKED_ENTRIES) {
        if p + 46 > cd.len() || cd[p..p + 4] != [0x50, 0x4b, 0x01, 0x02] {
            return Err(not_zip(
                "the central directory is truncated or has fewer entries than it says",
            ));
        }
        let (n, e, c) = (
            usize::from(u16_at(&cd, p + 28)),
            usize::from(u16_at(&cd, p + 30)),
            usize::from(u16_at(&cd, p + 32)),
        );
        let local_offset = u32_at(&cd, p + 42);
        let Some(name) = cd.get(p + 46..p + 46 + n) else {
            return Err(not_zip("the central directory is truncated"));
        };
        let shown = String::from_utf8_lossy(name).into_owned();
        if !seen.insert(name.to_vec()) {
            return Err(ArchiveError::UnsafeEntry {
                name: shown,
                reason: "duplicate entry".to_owned(),
            });
        }
        if local_offset == u32::MAX {
            return Err(not_zip("zip64 archives are not accepted (a package is far smaller)"));
        }
        r.seek(io::SeekFrom::Start(u64::from(local_offset))).map_err(io_err)?;
        let mut head = [0u8; 30];
        r.read_exact(&mut head)
            .map_err(|_| not_zip("a local header is missing"))?;
        if head[..4] != [0x50, 0x4b, 0x03, 0x04] {
            return Err(ArchiveError::UnsafeEntry {
                name: shown,
                reason: "its local header is missing or damaged".to_owned(),
            });
        }
        let mut local = vec![0u8; usize::from(u16_at(&head, 26))];
        r.read_exact(&mut local)
            .map_err(|_| not_zip("a local header is truncated"))?;
        if local != name {
            return Err(ArchiveError::UnsafeEntry {
                name: shown,
                reason: format!(
                    "its local header names it {:?} (the local header and the central directory disagree)",
                    String::from_utf8_lossy(&local)
                ),
            });
        }
        p += 46 + n + e + c;
    }
    Ok(())
}

/// Reads and validates `manifest.json` from archive bytes.
pub fn read_manifest(bytes: &[u8]) -> Result<ValidManifest, ArchiveError> {
    read_manifest_from(Cursor::new(bytes), &Limits::default())
}

/// Reads and validates `manifest.json` from a seekable archive.
pub fn read_manifest_from<R: Read + Seek>(r: R, limits: &Limits) -> Result<ValidManifest, ArchiveError> {
    let mut zip = open_zip(r)?;
    if zip.len() > limits.max_entries {
        return Err(ArchiveError::TooLarge(format!(
            "{} entries (at most {})",
            zip.len(),
            limits.max_entries
        )));
    }
    let mut entry = match zip.by_name(MANIFEST_ENTRY) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Err(ArchiveError::MissingManifest),
        Err(e) => return Err(ArchiveError::NotZip(e.to_string())),
    };
    let mut text = Vec::new();
    (&mut entry)
        .take(limits.max_manifest_bytes + 1)
        .read_to_end(&mut text)
        .map_err(|e| ArchiveError::InvalidManifest(format!("cannot decompress it: {e}")))?;
    if text.len() as u64 > limits.max_manifest_bytes {
        return Err(ArchiveError::TooLarge(format!(
            "manifest.json is over {} bytes",
            limits.max_manifest_bytes
        )));
    }
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

// ---------------------------------------------------------------------------
// Extraction

/// A file written by [`extract`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedFile {
    /// `/`-separated path relative to the target.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub executable: bool,
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// Checks an entry name and returns the relative path it may be written to.
///
/// Refuses (each could place bytes outside the target, or somewhere else on
/// another OS): absolute paths, drive letters, backslashes, `..` and `.`
/// components, empty components, NUL and control characters.
pub fn safe_entry_path(name: &str) -> Result<PathBuf, String> {
    if name.is_empty() {
        return Err("empty name".to_owned());
    }
    if name.starts_with('/') {
        return Err("absolute path".to_owned());
    }
    if name.contains('\\') {
        return Err("backslash in path (a Windows separator)".to_owned());
    }
    if name.len() >= 2 && name.as_bytes()[1] == b':' {
        return Err("drive-letter path".to_owned());
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("control character in name".to_owned());
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    let mut out = PathBuf::new();
    for part in trimmed.split('/') {
        match part {
            "" => return Err("empty path component".to_owned()),
            "." => return Err("`.` path component".to_owned()),
            ".." => return Err("`..` path component (path traversal)".to_owned()),
            p if p.contains(':') => return Err("`:` in a path component".to_owned()),
            p => out.push(p),
        }
    }
    Ok(out)
}

/// Extracts an archive into `dest`, which must be an empty folder that fm
/// just created (so no entry can meet an existing link). Returns every file
/// written, sorted by path, with its SHA-256.
pub fn extract<R: Read + Seek>(r: R, dest: &Path, limits: &Limits) -> Result<Vec<ExtractedFile>, ArchiveError> {
    let mut zip = open_zip(r)?;
    if zip.len() > limits.max_entries {
        return Err(ArchiveError::TooLarge(format!(
            "{} entries (at most {})",
            zip.len(),
            limits.max_entries
        )));
    }
    let mut budget = limits.max_total_bytes;
    let mut out = Vec::with_capacity(zip.len());
    let mut seen = std::collections::HashSet::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| ArchiveError::UnsafeEntry {
                name: String::from_utf8_lossy(entry.name_raw()).into_owned(),
                reason: "name is not valid UTF-8".to_owned(),
            })?
            .to_owned();
        let unsafe_entry = |reason: &str| ArchiveError::UnsafeEntry {
            name: name.clone(),
            reason: reason.to_owned(),
        };
        let rel = safe_entry_path(&name).map_err(|r| unsafe_entry(&r))?;
        let mode = entry.unix_mode().unwrap_or(0);
        let kind = mode & S_IFMT;
        // Symlinks are refused: a link created by one entry could redirect a
        // later entry's write outside the target.
        if kind == S_IFLNK {
            return Err(unsafe_entry("symbolic link"));
        }
        let is_dir = entry.is_dir() || kind == S_IFDIR;
        if kind != 0 && kind != S_IFREG && kind != S_IFDIR {
            return Err(unsafe_entry("device, FIFO or other special file"));
        }
        let key = rel.to_string_lossy().to_lowercase();
        if !is_dir && !seen.insert(key) {
            return Err(unsafe_entry("duplicate entry"));
        }
        let target = dest.join(&rel);
        if is_dir {
            std::fs::create_dir_all(&target).map_err(ArchiveError::io(format!("creating {}", target.display())))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(ArchiveError::io(format!("creating {}", parent.display())))?;
        }
        // create_new: never follow or overwrite anything already there.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    unsafe_entry("duplicate entry")
                } else {
                    ArchiveError::Io {
                        what: format!("creating {}", target.display()),
                        source: e,
                    }
                }
            })?;
        let mut hasher = Sha256::new();
        let mut buf = [0u8; 64 * 1024];
        let mut size = 0u64;
        // The compressed size bounds how many bytes the reader takes from
        // the archive, so the ratio below is measured, not declared.
        let compressed = entry.compressed_size();
        loop {
            let k = entry
                .read(&mut buf)
                .map_err(|e| unsafe_entry(&format!("cannot decompress: {e}")))?;
            if k == 0 {
                break;
            }
            size += k as u64;
            if size > budget {
                return Err(ArchiveError::TooLarge(format!(
                    "decompresses to more than {} bytes (a zip bomb?)",
                    limits.max_total_bytes
                )));
            }
            if past_ratio(size, compressed, limits) {
                return Err(ArchiveError::TooLarge(format!(
                    "entry {name:?} decompresses to over {} times its compressed size (a zip bomb?)",
                    limits.max_ratio
                )));
            }
            hasher.update(&buf[..k]);
            file.write_all(&buf[..k])
                .map_err(ArchiveError::io(format!("writing {}", target.display())))?;
        }
        budget -= size;
        let executable = mode & 0o111 != 0;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let perm = if executable { 0o755 } else { 0o644 };
            file.set_permissions(std::fs::Permissions::from_mode(perm))
                .map_err(ArchiveError::io(format!("setting mode of {}", target.display())))?;
        }
        out.push(ExtractedFile {
            path: rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            sha256: hex::encode(hasher.finalize()),
            size,
            executable,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Checks every entry of an archive as [`extract`] would, writing nothing:
/// safe names, plain files only, no duplicates, within the caps. Registries
/// run this before storing an upload.
pub fn check_entries(bytes: &[u8], limits: &Limits) -> Result<(), ArchiveError> {
    let mut zip = open_zip(Cursor::new(bytes))?;
    if zip.len() > limits.max_entries {
        return Err(ArchiveError::TooLarge(format!(
            "{} entries (at most {})",
            zip.len(),
            limits.max_entries
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let unsafe_entry = |reason: String| ArchiveError::UnsafeEntry {
            name: name.clone(),
            reason,
        };
        if std::str::from_utf8(entry.name_raw()).is_err() {
            return Err(unsafe_entry("name is not valid UTF-8".to_owned()));
        }
        let rel = safe_entry_path(&name).map_err(unsafe_entry)?;
        let kind = entry.unix_mode().unwrap_or(0) & S_IFMT;
        if kind == S_IFLNK {
            return Err(unsafe_entry("symbolic link".to_owned()));
        }
        if kind != 0 && kind != S_IFREG && kind != S_IFDIR {
            return Err(unsafe_entry("device, FIFO or other special file".to_owned()));
        }
        if entry.is_dir() || kind == S_IFDIR {
            continue;
        }
        if !seen.insert(rel.to_string_lossy().to_lowercase()) {
            return Err(unsafe_entry("duplicate entry".to_owned()));
        }
        let budget = limits.max_total_bytes.saturating_sub(total);
        let n = io::copy(&mut (&mut entry).take(budget + 1), &mut io::sink())
            .map_err(|e| unsafe_entry(format!("cannot decompress: {e}")))?;
        total += n;
        if past_ratio(n, entry.compressed_size(), limits) {
            return Err(ArchiveError::TooLarge(format!(
                "entry {name:?} decompresses to over {} times its compressed size (a zip bomb?)",
                limits.max_ratio
            )));
        }
        if total > limits.max_total_bytes {
            return Err(ArchiveError::TooLarge(format!(
                "decompresses to more than {} bytes (a zip bomb?)",
                limits.max_total_bytes
            )));
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
