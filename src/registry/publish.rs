//! Publishing and yanking against a [`Storage`]: the one code path that both
//! `fm publish` to a directory registry and the server's upload route use.
//!
//! Order of writes: the archive first (create-if-absent), then the package
//! document (compare-and-swap, retried). A reader therefore never sees a
//! version whose archive is missing. A crash between the two leaves an
//! archive that no document lists. On a folder, publishers hold
//! [`Storage::lock_publishing`], so such an orphan was left by a dead one:
//! it is replaced, and temporary files older than the run are swept, so a
//! killed publish never blocks its version. On an object store (no lock),
//! publishing the same bytes again heals it.
//!
//! Validation is [`archive::read_manifest_from`] and
//! [`archive::check_entries`]: the very checks an install runs. A version
//! that differs from a published one only in build metadata (`1.0.0+x`
//! beside `1.0.0`) is refused, as crates.io does: both would sort as one
//! version, and a requirement could not tell them apart.
//!
//! A registry with a transparency log (`log/`, see [`tlog`](super::tlog)) gets a
//! log record between the two: archive → record appended (index `n`) →
//! document with `log_index = n`. Without the log's key, a logged registry
//! refuses to publish or yank at all.

use std::io;

use super::document::{PackageDocument, VersionRecord, archive_key, index_key};
use super::storage::Storage;
use super::tlog::{self, LogKey, TlogError};
use crate::archive::{self, ArchiveError, Limits, ValidManifest};

/// Why a publish or yank was refused.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PublishError {
    /// The archive is not acceptable.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Archive(#[from] ArchiveError),
    /// That name and version exist already.
    #[error("{name}@{version} is already published in {registry}")]
    #[diagnostic(
        code(fm::publish::exists),
        help("published versions are immutable: bump `version` in [package] and publish again")
    )]
    Exists {
        name: String,
        version: String,
        registry: String,
    },
    /// The version equals a published one but for its build metadata.
    #[error("{name}@{version} differs from the published {name}@{existing} in {registry} only in build metadata")]
    #[diagnostic(
        code(fm::publish::build_metadata),
        help("build metadata (`+…`) does not make a new version: bump `version` and publish again")
    )]
    BuildMetadataTwin {
        name: String,
        version: String,
        existing: String,
        registry: String,
    },
    /// The given checksum does not match the bytes.
    #[error("checksum mismatch for {name}@{version}: expected {expected}, the archive's SHA-256 is {actual}")]
    #[diagnostic(code(fm::publish::checksum))]
    Checksum {
        name: String,
        version: String,
        expected: String,
        actual: String,
    },
    /// Yank of something that does not exist.
    #[error("{name}@{version} is not published in {registry}")]
    #[diagnostic(code(fm::publish::not_found))]
    NotFound {
        name: String,
        version: String,
        registry: String,
    },
    /// A stored document could not be parsed.
    #[error("the stored document for {name} in {registry} is corrupt: {reason}")]
    #[diagnostic(code(fm::publish::corrupt))]
    Corrupt {
        name: String,
        registry: String,
        reason: String,
    },
    /// The transparency log refused or failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Log(#[from] TlogError),
    /// The storage failed.
    #[error("storage error in {registry}: {source}")]
    #[diagnostic(code(fm::publish::io))]
    Io {
        registry: String,
        #[source]
        source: io::Error,
    },
}

/// What a successful publish stored.
#[derive(Debug, Clone)]
pub struct Published {
    pub manifest: ValidManifest,
    pub record: VersionRecord,
    pub document: PackageDocument,
}

fn io_err(storage: &dyn Storage) -> impl Fn(io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        registry: storage.describe(),
        source,
    }
}

/// Reads a package document from storage.
pub fn read_document(storage: &dyn Storage, name: &str) -> Result<Option<(PackageDocument, String)>, PublishError> {
    match storage.read(&index_key(name)).map_err(io_err(storage))? {
        None => Ok(None),
        Some((bytes, tag)) => Ok(Some((parse_document(storage, name, &bytes)?, tag))),
    }
}

/// Parses the stored document of `name` read from `storage`.
pub fn parse_document(storage: &dyn Storage, name: &str, bytes: &[u8]) -> Result<PackageDocument, PublishError> {
    serde_json::from_slice(bytes).map_err(|e| PublishError::Corrupt {
        name: name.to_owned(),
        registry: storage.describe(),
        reason: e.to_string(),
    })
}

/// Validates `bytes` and publishes them. `checksum`, when given, must equal
/// the archive's SHA-256. `log_key`: the key of the registry's log (see
/// [`tlog::Appender::for_storage`] for when it is required).
pub fn publish(
    storage: &dyn Storage,
    bytes: &[u8],
    checksum: Option<&str>,
    limits: &Limits,
    log_key: Option<&LogKey>,
) -> Result<Published, PublishError> {
    let started = std::time::Instant::now();
    let log = tlog::Appender::for_storage(storage, log_key)?;
    let manifest = archive::read_manifest_from(io::Cursor::new(bytes), limits)?;
    archive::check_entries(bytes, limits)?;
    let name = manifest.raw.name.clone();
    let version = manifest.version.to_string();
    let sha = crate::values::Sha256::of(bytes);
    if let Some(expected) = checksum
        && !expected.trim().eq_ignore_ascii_case(&sha)
    {
        return Err(PublishError::Checksum {
            name,
            version,
            expected: expected.trim().to_owned(),
            actual: sha.into_string(),
        });
    }
    let exists = || PublishError::Exists {
        name: name.clone(),
        version: version.clone(),
        registry: storage.describe(),
    };
    let twin = |doc: &PackageDocument| {
        build_twin(doc, &manifest.version).map(|existing| PublishError::BuildMetadataTwin {
            name: name.clone(),
            version: version.clone(),
            existing,
            registry: storage.describe(),
        })
    };
    let key = archive_key(&name, &version);
    // Held to the end of the publish: no other publisher of this folder runs.
    let guard = storage.lock_publishing().map_err(io_err(storage))?;
    if guard.is_some() {
        // Anything temporary from before this run was left by a dead writer.
        storage.remove_leftovers(started.elapsed()).map_err(io_err(storage))?;
    }
    let doc = read_document(storage, &name)?;
    if let Some(e) = doc.as_ref().and_then(|(d, _)| twin(d)) {
        return Err(e);
    }
    let listed = doc.is_some_and(|(d, _)| d.version(&version).is_some());
    if listed {
        return Err(exists());
    }
    if !storage.create(&key, bytes).map_err(io_err(storage))? {
        // Not listed: an earlier publish stopped before its document update.
        if guard.is_some() {
            // Under the lock its publisher is gone: replace the orphan.
            storage.replace(&key, bytes).map_err(io_err(storage))?;
        } else {
            // Without a lock it may be alive: heal only the same bytes.
            let same = storage
                .read(&key)
                .map_err(io_err(storage))?
                .is_some_and(|(b, _)| b == bytes);
            if !same {
                return Err(exists());
            }
        }
    }
    let mut record = VersionRecord::from_manifest(&manifest, sha, bytes.len() as u64, now());
    if let Some(log) = &log {
        let entry = tlog::Record::publish(
            &name,
            &version,
            &record.checksum,
            record.size_bytes,
            &record.published_at,
        );
        record.log_index = Some(log.append(&entry)?);
    }
    loop {
        let current = read_document(storage, &name)?;
        let (doc, tag) = match current {
            None => (PackageDocument::new(&name, record.clone()), None),
            Some((mut doc, tag)) => {
                if doc.version(&version).is_some() {
                    return Err(exists());
                }
                if let Some(e) = twin(&doc) {
                    return Err(e);
                }
                doc.versions.get_or_insert_with(Vec::new).push(record.clone());
                doc.refresh_info();
                (doc, Some(tag))
            }
        };
        let json = to_json(&doc);
        if storage
            .swap(&index_key(&name), tag.as_ref(), &json)
            .map_err(io_err(storage))?
        {
            return Ok(Published {
                manifest,
                record,
                document: doc,
            });
        }
    }
}

/// Sets or clears the `yanked` flag of a version. Returns the new document.
pub fn set_yanked(
    storage: &dyn Storage,
    name: &str,
    version: &str,
    yanked: bool,
    log_key: Option<&LogKey>,
) -> Result<PackageDocument, PublishError> {
    let _guard = storage.lock_publishing().map_err(io_err(storage))?;
    let log = tlog::Appender::for_storage(storage, log_key)?;
    let mut logged = false;
    loop {
        let not_found = || PublishError::NotFound {
            name: name.to_owned(),
            version: version.to_owned(),
            registry: storage.describe(),
        };
        let (mut doc, tag) = read_document(storage, name)?.ok_or_else(not_found)?;
        let record = doc
            .versions
            .iter_mut()
            .flatten()
            .find(|r| r.version == version)
            .ok_or_else(not_found)?;
        if record.yanked == yanked {
            return Ok(doc);
        }
        if let Some(log) = &log
            && !logged
        {
            log.append(&tlog::Record::yank(name, version, &record.checksum, yanked, &now()))?;
            logged = true;
        }
        record.yanked = yanked;
        doc.refresh_info();
        if storage
            .swap(&index_key(name), Some(&tag), &to_json(&doc))
            .map_err(io_err(storage))?
        {
            return Ok(doc);
        }
    }
}

/// A published version of `doc` equal to `version` but for its build
/// metadata (semver precedence ignores it, so the two would be one).
fn build_twin(doc: &PackageDocument, version: &semver::Version) -> Option<String> {
    doc.versions.iter().flatten().find_map(|r| {
        let v = semver::Version::parse(&r.version).ok()?;
        (v.cmp_precedence(version).is_eq() && v.build != version.build).then(|| r.version.clone())
    })
}

/// Documents are stored pretty-printed with a trailing newline, so a
/// registry folder diffs well under version control.
pub fn to_json(doc: &PackageDocument) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(doc).unwrap_or_default();
    v.push(b'\n');
    v
}

/// The current time as `published_at`: RFC 3339, UTC, `Z`. When
/// `SOURCE_DATE_EPOCH` is set, that time instead, so a registry generated
/// by a script (fm's own `fixtures/`) is byte-for-byte reproducible.
pub fn now() -> String {
    if let Some(ts) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
    {
        return ts.to_string();
    }
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string()
}
