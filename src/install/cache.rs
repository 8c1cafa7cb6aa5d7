//! The content-addressed cache (`FM_CACHE_DIR`):
//!
//! ```text
//! {cache}/.lock                            shared by syncs, exclusive to clear
//! {cache}/archives/{sha[..2]}/{sha}.fmpkg  verified archives, by SHA-256, read-only
//! {cache}/tmp/                             downloads in progress
//! ```
//!
//! The cache is shared by every project of the user and may be restored
//! from a CI cache that someone else filled, so nothing in it is trusted
//! for what it claims to be. Invariants:
//! - an archive appears by one `rename` from `tmp/`, complete, and only
//!   after its digest matched the lock; two processes storing the same
//!   archive both succeed (same digest, same bytes);
//! - an archive is re-hashed every time it is used ([`Cache::read_archive`]:
//!   to install or to verify); one that no longer matches is removed and
//!   reported, never unpacked;
//! - fm keeps no unpacked trees: each install unpacks the verified archive
//!   into the project's own files (no hard links into the cache), so an
//!   edit in one project reaches neither the cache nor another project.
//!   Archives are stored read-only. (Earlier versions kept `trees/`; it is
//!   ignored, and `fm registry cache --clear` empties it.)
//! - no link is followed inside the cache: `archives`, its shards, `tmp`
//!   and `.lock` are opened without following links, and a link there is
//!   refused naming it (the root, `FM_CACHE_DIR`, is the user's path);
//! - leftovers of interrupted runs in `tmp/` are swept once a day old,
//!   without following links;
//! - [`Cache::clear`] (`fm registry cache --clear`) holds the lock
//!   exclusively and removes relative to folder handles opened without
//!   following links, so a link planted in the cache, or a folder swapped
//!   for one while it runs, cannot lead it outside the cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::InstallError;
use super::nofollow::{Dir, Kind};

/// The cache folder.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// Handles on the shard folders of `archives/` found so far, opened as
    /// [`Cache::open_shard`] does, for reading (a sync looks up each of its
    /// archives two or three times). A lookup that misses through one
    /// opens the shard afresh: a cleared and refilled cache is not missed.
    shards: Arc<Mutex<HashMap<String, Arc<Dir>>>>,
}

impl Cache {
    /// The cache at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache {
            root: root.into(),
            shards: Arc::default(),
        }
    }

    /// The cache at `FM_CACHE_DIR` (or the platform default).
    pub fn from_env() -> Cache {
        Cache::new(crate::config::cache_dir())
    }

    /// The cache folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The lock file syncs hold shared.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// Where in-progress downloads go.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn shard(sha256: &str) -> &str {
        sha256.get(..2).unwrap_or("xx")
    }

    fn file_name(sha256: &str) -> String {
        format!("{sha256}.fmpkg")
    }

    /// Where the archive with this digest is stored.
    pub fn archive_path(&self, sha256: &str) -> PathBuf {
        self.root
            .join("archives")
            .join(Self::shard(sha256))
            .join(Self::file_name(sha256))
    }

    fn open_root(&self, create: bool) -> Result<Option<Dir>, InstallError> {
        Ok(if create {
            Some(Dir::create_path(&self.root)?.0)
        } else {
            Dir::open_path(&self.root)?
        })
    }

    /// Takes the cache lock, shared (see [`crate::fsutil::LockFile`]).
    pub fn lock_shared(&self, on_wait: impl FnOnce()) -> Result<crate::fsutil::LockFile, InstallError> {
        let root = self.open_root(true)?.ok_or_else(|| missing(&self.root))?;
        Ok(root.lock(".lock", on_wait, true)?)
    }

    /// `tmp/`, created if needed, checked not to be a link; returns its path.
    /// The root is marked so that ext4 places `tmp/` and `archives/` in
    /// block groups of their own (`chattr +T`, as `install/stage.rs` does
    /// for the packages folder): a refilled cache's downloads are then not
    /// allocated beside the inodes of the cache just deleted.
    pub fn checked_tmp_dir(&self) -> Result<PathBuf, InstallError> {
        let root = self.open_root(true)?.ok_or_else(|| missing(&self.root))?;
        root.spread_new_folders();
        Ok(root.create_dir("tmp")?.0.path().to_owned())
    }

    /// The shard folder of `sha256` under `archives/`, created if needed,
    /// neither it nor `archives` a link; returns its path.
    pub fn checked_shard_dir(&self, sha256: &str) -> Result<PathBuf, InstallError> {
        let root = self.open_root(true)?.ok_or_else(|| missing(&self.root))?;
        let (archives, _) = root.create_dir("archives")?;
        Ok(archives.create_dir(Self::shard(sha256))?.0.path().to_owned())
    }

    /// The shard folder of `sha256`, opened from the root without
    /// following a link; `None` if it does not exist.
    fn open_shard(&self, sha256: &str) -> Result<Option<Arc<Dir>>, InstallError> {
        let Some(root) = self.open_root(false)? else {
            return Ok(None);
        };
        let Some(archives) = root.open_dir("archives")? else {
            return Ok(None);
        };
        let Some(dir) = archives.open_dir(Self::shard(sha256))? else {
            return Ok(None);
        };
        let dir = Arc::new(dir);
        if let Ok(mut m) = self.shards.lock() {
            m.insert(Self::shard(sha256).to_owned(), Arc::clone(&dir));
        }
        Ok(Some(dir))
    }

    /// The handle [`Cache::open_shard`] kept for `sha256`'s shard, if any.
    fn kept_shard(&self, sha256: &str) -> Option<Arc<Dir>> {
        self.shards.lock().ok()?.get(Self::shard(sha256)).cloned()
    }

    /// `look` in the shard of `sha256`: through the kept handle, and if
    /// that finds nothing, through a freshly opened one.
    fn in_shard<T>(
        &self,
        sha256: &str,
        look: impl Fn(&Arc<Dir>) -> Result<Option<T>, InstallError>,
    ) -> Result<Option<T>, InstallError> {
        if let Some(kept) = self.kept_shard(sha256)
            && let Some(found) = look(&kept)?
        {
            return Ok(Some(found));
        }
        match self.open_shard(sha256)? {
            Some(dir) => look(&dir),
            None => Ok(None),
        }
    }

    /// Removes what interrupted runs left in `tmp/` more than `age` ago
    /// (a run in progress touches its files continuously). Best effort;
    /// never follows a link (a `tmp` that is a link is left alone).
    pub fn sweep_tmp(&self, age: std::time::Duration) {
        let Ok(Some(root)) = Dir::open_path(&self.root) else {
            return;
        };
        let Ok(Some(tmp)) = root.open_dir("tmp") else {
            return;
        };
        let Ok(entries) = tmp.entries() else {
            return;
        };
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let age_ns = age.as_nanos() as i64;
        for (name, _) in entries {
            let old = tmp
                .meta(&name)
                .ok()
                .flatten()
                .is_some_and(|m| now_ns.saturating_sub(m.mtime_ns) > age_ns);
            if old {
                let _ = tmp.remove_tree(&name);
            }
        }
    }

    /// Whether the archive is cached (as a plain file).
    pub fn has_archive(&self, sha256: &str) -> bool {
        let name = Self::file_name(sha256);
        let file = |d: &Arc<Dir>| Ok(d.meta(&name).ok().flatten().filter(|m| m.kind == Kind::File));
        matches!(self.in_shard(sha256, file), Ok(Some(_)))
    }

    /// The bytes of the cached archive `sha256`, re-hashed: `Ok(None)` if
    /// it is not cached, [`InstallError::CorruptCache`] (and the file
    /// removed) if it no longer has its digest. `package` names errors.
    pub fn read_archive(&self, package: &str, version: &str, sha256: &str) -> Result<Option<Vec<u8>>, InstallError> {
        let name = Self::file_name(sha256);
        let read = |d: &Arc<Dir>| Ok(d.read_file(&name)?.map(|(bytes, _)| (bytes, Arc::clone(d))));
        let Some((bytes, shard)) = self.in_shard(sha256, read)? else {
            return Ok(None);
        };
        let actual = crate::fsutil::sha256_hex(&bytes);
        if actual != sha256 {
            let _ = shard.remove_file(&name);
            return Err(InstallError::CorruptCache {
                package: format!("{package} {version}"),
                path: shard.join(&name).display().to_string(),
                expected: sha256.to_owned(),
                actual,
            });
        }
        Ok(Some(bytes))
    }
}

/// What [`Cache::clear`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleared {
    /// Regular files removed (links found in the cache are removed too,
    /// as links, and not counted).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Folders deeper than this below the cache root are left alone by
/// [`Cache::clear`] (fm nests three deep; each level holds a descriptor).
const CLEAR_MAX_DEPTH: usize = 16;

impl Cache {
    /// Empties the cache (`fm registry cache --clear`): every file but the
    /// lock files, and the folders that leaves empty; with `older_than`,
    /// only files last modified longer ago than that (folders stay). Holds
    /// the cache lock exclusively, so no sync fills the cache meanwhile
    /// (`on_wait` is called if one holds it). Never follows a link: every
    /// folder is opened relative to its parent's handle without following
    /// one, and a link is removed as itself, so neither a link planted in
    /// the cache nor a folder swapped for a link while this runs leads it
    /// outside. Read-only folders (older fm versions' `trees/`) are made
    /// writable to be emptied. Best effort past the lock: what cannot be
    /// removed is left. A missing cache is an empty one.
    pub fn clear(&self, older_than: Option<Duration>, on_wait: impl FnOnce()) -> Result<Cleared, InstallError> {
        let Some(root) = self.open_root(false)? else {
            return Ok(Cleared::default());
        };
        let _lock = root.lock(".lock", on_wait, false)?;
        let cutoff = older_than.map(|age| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            now.saturating_sub(age.as_nanos().min(i64::MAX as u128) as i64)
        });
        let mut out = Cleared::default();
        clear_dir(&root, cutoff, &mut out, 0);
        Ok(out)
    }
}

/// Empties `dir` as [`Cache::clear`] says; whether it is left empty.
fn clear_dir(dir: &Dir, cutoff: Option<i64>, out: &mut Cleared, depth: usize) -> bool {
    let Ok(entries) = dir.entries() else {
        return false;
    };
    let mut empty = true;
    for (name, kind) in entries {
        if kind == Kind::Dir {
            let emptied = depth < CLEAR_MAX_DEPTH
                && match dir.open_dir(&name) {
                    Ok(Some(sub)) => {
                        if let Ok(m) = sub.own_meta() {
                            let _ = sub.make_writable(m.mode);
                        }
                        clear_dir(&sub, cutoff, out, depth + 1)
                    }
                    _ => false,
                };
            // `remove_dir` never follows a link: one swapped in meanwhile stays.
            if !(emptied && cutoff.is_none() && dir.remove_dir(&name).is_ok()) {
                empty = false;
            }
            continue;
        }
        // Lock files coordinate other fm processes: leave them.
        if name == ".lock" {
            empty = false;
            continue;
        }
        let meta = dir.meta(&name).ok().flatten();
        if let (Some(c), Some(m)) = (cutoff, meta)
            && m.mtime_ns > c
        {
            empty = false;
            continue;
        }
        if dir.remove_file(&name).is_ok() {
            if let Some(m) = meta.filter(|m| m.kind == Kind::File) {
                out.files += 1;
                out.bytes += m.size;
            }
        } else {
            empty = false;
        }
    }
    empty
}

fn missing(path: &Path) -> InstallError {
    InstallError::Io {
        what: path.display().to_string(),
        source: std::io::ErrorKind::NotFound.into(),
    }
}
