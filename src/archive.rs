//! `.fmpkg` archives (SPEC §5): packing, reading `manifest.json`, and safe
//! extraction, one file each: `pack.rs`, `manifest.rs`, `unpack.rs`.
//!
//! Invariants:
//! - [`pack`] is a pure function of the folder's contents and the metadata
//!   it is handed (and `SOURCE_DATE_EPOCH`): entries sorted by path, fixed
//!   timestamps, modes `0644`/`0755`, no build time. The same tree always
//!   gives the same bytes. Hidden files and folders (`.git`, `.fm`),
//!   `*.fmpkg`, and at the root `target/`, `fm.toml` and `fm.lock` are left
//!   out; `[package] exclude` leaves out more. It never reads `fm.toml` (its
//!   caller hands the metadata in, see `Manifest::pack_input`), so this
//!   module depends on nothing above it.
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

mod manifest;
mod pack;
mod portable;
mod unpack;
mod zipread;

pub(crate) use manifest::about_from;

use std::io;
use std::path::PathBuf;

pub use manifest::{
    About, MAX_DEPENDENCIES, PackageManifest, ValidManifest, parse_manifest_json, read_manifest, read_manifest_from,
    validate_manifest,
};
pub use pack::{PackInput, PackageMeta, Packed, pack};
pub use portable::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
pub use unpack::{ExtractedFile, Target, check_entries, extract, extract_to, safe_entry_path};

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

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use zip::write::SimpleFileOptions;

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
