//! Where a registry keeps its bytes: the directory-registry layout (SPEC §4)
//! behind a small trait with the two writes that matter.
//!
//! - [`Storage::create`]: create-if-absent, for archives. Published versions
//!   are immutable, so a second writer of the same key loses cleanly.
//! - [`Storage::swap`]: compare-and-swap, for package documents. A writer
//!   reads a document with its [`Tag`], edits it, and swaps it in only if
//!   nobody changed it meanwhile; on conflict it re-reads and retries. No
//!   publish is ever lost, whichever process or replica made it.
//!
//! [`DirStorage`] implements both on a local folder with atomic renames; an
//! object store implements them with conditional puts.
//!
//! A storage may also hand out pre-signed URLs ([`Storage::presign_get`]),
//! so a server can redirect downloads to the store instead of relaying the
//! bytes; a folder cannot (there is nothing to sign).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fsutil::{self, LockFile};

/// An opaque version of a stored value (a content hash for [`DirStorage`],
/// an ETag or object version for an object store).
pub type Tag = String;

/// Whether `location` names an object store (`s3://`, `gs://`, `az://`,
/// `abfs[s]://`) rather than a folder. Known to every build, so a build
/// without the `cloud` feature can say what it lacks instead of taking a
/// bucket URL for a folder name.
pub fn is_object_url(location: &str) -> bool {
    ["s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://"]
        .iter()
        .any(|s| location.len() >= s.len() && location[..s.len()].eq_ignore_ascii_case(s))
}

/// A storage backend.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The value at `key` and its tag, or `None`.
    fn read(&self, key: &str) -> io::Result<Option<(Vec<u8>, Tag)>>;
    /// Writes `bytes` at `key` unless something is there. `Ok(false)`: it was.
    fn create(&self, key: &str, bytes: &[u8]) -> io::Result<bool>;
    /// Replaces the value at `key` if its tag is still `expected` (`None`:
    /// if it is still absent). `Ok(false)`: somebody else changed it.
    fn swap(&self, key: &str, expected: Option<&Tag>, bytes: &[u8]) -> io::Result<bool>;
    /// Keys under `prefix` (e.g. `index/`), sorted.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// [`Storage::list`], each key with the tag [`Storage::read`] would
    /// return for it when the listing tells it (an object store's listing
    /// carries ETags), so a caller holding a value with that tag need not
    /// read it again. `None`: not known without reading.
    fn list_tagged(&self, prefix: &str) -> io::Result<Vec<(String, Option<Tag>)>> {
        Ok(self.list(prefix)?.into_iter().map(|k| (k, None)).collect())
    }
    /// A human description (a folder path or a bucket URL), for messages.
    fn describe(&self) -> String;
    /// The local file behind `key`, when there is one (lets the server
    /// stream archives straight from disk).
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }
    /// Removes temporary files a killed writer left behind, older than
    /// `older_than` (younger ones may belong to a writer still running).
    /// Returns how many it removed. Stores whose writes are single
    /// requests leave none.
    fn remove_leftovers(&self, _older_than: Duration) -> io::Result<usize> {
        Ok(0)
    }
    /// Serialises publishers (and yanks) of this storage across processes,
    /// for storages that can: a folder. While the guard is held no other
    /// publisher runs, so an archive that no document lists was left by a
    /// killed one and may be replaced ([`Storage::replace`]), and a
    /// temporary file older than the run is garbage. `None`: this storage
    /// cannot lock (an object store), and relies on create-if-absent alone.
    fn lock_publishing(&self) -> io::Result<Option<Box<dyn Send>>> {
        Ok(None)
    }
    /// Overwrites the value at `key`; only called under
    /// [`Storage::lock_publishing`], on an orphaned archive.
    fn replace(&self, key: &str, _bytes: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{key}: this storage cannot replace an archive"),
        ))
    }
    /// A URL anybody may `GET` the value at `key` from for the next
    /// `expires` (a pre-signed URL), or `None` when this storage cannot
    /// make one. The key's existence is not checked.
    fn presign_get(&self, _key: &str, _expires: Duration) -> io::Result<Option<url::Url>> {
        Ok(None)
    }
}

/// A registry folder: `index/{name}.json`, `packages/{name}/…`, and a
/// `.lock` file that serialises document swaps across processes.
#[derive(Debug, Clone)]
pub struct DirStorage {
    root: PathBuf,
}

impl DirStorage {
    /// A storage rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> DirStorage {
        DirStorage { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        // Keys are built from validated names, but refuse anything that
        // could leave the root all the same.
        crate::archive::safe_entry_path(key)
            .map(|rel| self.root.join(rel))
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, format!("bad storage key {key:?}: {why}")))
    }
}

/// Registry files are public by nature (a registry folder may be served by
/// any static file host running as another user), but temporary files are
/// created 0600: open them up to 0644 once in place.
fn world_readable(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl Storage for DirStorage {
    fn read(&self, key: &str) -> io::Result<Option<(Vec<u8>, Tag)>> {
        match std::fs::read(self.path(key)?) {
            Ok(bytes) => {
                let tag = fsutil::sha256_hex(&bytes);
                Ok(Some((bytes, tag)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create(&self, key: &str, bytes: &[u8]) -> io::Result<bool> {
        let path = self.path(key)?;
        let created = fsutil::write_new(&path, bytes)?;
        if created {
            world_readable(&path)?;
        }
        Ok(created)
    }

    fn swap(&self, key: &str, expected: Option<&Tag>, bytes: &[u8]) -> io::Result<bool> {
        let path = self.path(key)?;
        // The lock makes read-compare-rename one step across processes.
        let _lock = LockFile::acquire(&self.root.join(".lock"), || {})?;
        let current = self.read(key)?.map(|(_, tag)| tag);
        if current.as_ref() != expected {
            return Ok(false);
        }
        fsutil::write_atomic(&path, bytes)?;
        world_readable(&path)?;
        Ok(true)
    }

    /// `{root}/.publish.lock`, taken before `.lock` (which each swap takes
    /// briefly), never after it.
    fn lock_publishing(&self) -> io::Result<Option<Box<dyn Send>>> {
        let lock = LockFile::acquire(&self.root.join(".publish.lock"), || {})?;
        Ok(Some(Box::new(lock)))
    }

    fn replace(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key)?;
        fsutil::write_atomic(&path, bytes)?;
        world_readable(&path)
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let dir = self.path(prefix.trim_end_matches('/'))?;
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str()
                && !name.starts_with('.')
                && entry.file_type()?.is_file()
            {
                out.push(format!("{}/{name}", prefix.trim_end_matches('/')));
            }
        }
        out.sort();
        Ok(out)
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    /// `.fm-tmp-*` files (see [`fsutil::write_atomic`]) under `index/`,
    /// `packages/*/` and `stats/`: never listed nor served, but they would
    /// pile up after every killed publish.
    fn remove_leftovers(&self, older_than: Duration) -> io::Result<usize> {
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        let mut dirs = vec![(self.root.clone(), 0)];
        while let Some((dir, depth)) = dirs.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let kind = entry.file_type()?;
                let name = entry.file_name();
                if kind.is_dir() && depth < 3 {
                    dirs.push((entry.path(), depth + 1));
                } else if kind.is_file()
                    && name.to_string_lossy().starts_with(fsutil::TMP_PREFIX)
                    && entry
                        .metadata()?
                        .modified()
                        .is_ok_and(|m| now.duration_since(m).is_ok_and(|age| age >= older_than))
                {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(removed)
    }
}
