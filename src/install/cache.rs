//! The content-addressed cache (`FM_CACHE_DIR`):
//!
//! ```text
//! {cache}/.lock                         shared by syncs, exclusive to clear
//! {cache}/archives/{sha[..2]}/{sha}.fmpkg  verified archives, by SHA-256
//! {cache}/trees/{sha}/files/…            an archive unpacked
//! {cache}/trees/{sha}/tree.json          its files: path, sha256, size, mode, mtime
//! {cache}/tmp/                           downloads and unpacks in progress
//! ```
//!
//! Invariants:
//! - an entry appears by one `rename` from `tmp/`, complete, or not at all:
//!   readers never see a partial archive or tree, and two processes filling
//!   the same entry both succeed (the second finds it there and drops its
//!   own copy);
//! - an archive is stored only after its digest was checked against the
//!   lock, and re-hashed whenever it is unpacked again, so a corrupted
//!   entry is removed instead of installed;
//! - leftovers of interrupted runs in `tmp/` are swept once a day old;
//! - installed files are hard links to a tree's files. A tree whose files'
//!   sizes or mtimes no longer match `tree.json` (someone edited an
//!   installed file in place) is rebuilt from its archive before it is
//!   linked again.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::InstallError;
use crate::archive::{self, Limits};

/// The cache folder.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// One file of an unpacked tree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TreeFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub executable: bool,
    /// Modification time (ns since the epoch) right after unpacking.
    pub mtime: u128,
}

/// `tree.json`: the files of an unpacked archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tree {
    pub sha256: String,
    pub files: Vec<TreeFile>,
}

fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

impl Cache {
    /// The cache at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
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

    /// Where in-progress downloads and unpacks go.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the archive with this digest is stored.
    pub fn archive_path(&self, sha256: &str) -> PathBuf {
        let shard = sha256.get(..2).unwrap_or("xx");
        self.root.join("archives").join(shard).join(format!("{sha256}.fmpkg"))
    }

    /// Where the unpacked tree of this digest is stored.
    pub fn tree_dir(&self, sha256: &str) -> PathBuf {
        self.root.join("trees").join(sha256)
    }

    /// Removes what interrupted runs left in `tmp/` more than `age` ago
    /// (a run in progress touches its files continuously). Best effort.
    pub fn sweep_tmp(&self, age: std::time::Duration) {
        let Ok(rd) = std::fs::read_dir(self.tmp_dir()) else {
            return;
        };
        let now = std::time::SystemTime::now();
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|d| d > age);
            if old {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }

    /// Whether the archive is cached.
    pub fn has_archive(&self, sha256: &str) -> bool {
        self.archive_path(sha256).is_file()
    }

    /// Reads a tree's `tree.json`, if the tree exists.
    pub fn read_tree(&self, sha256: &str) -> Option<Tree> {
        let bytes = std::fs::read(self.tree_dir(sha256).join("tree.json")).ok()?;
        let tree: Tree = serde_json::from_slice(&bytes).ok()?;
        (tree.sha256 == sha256).then_some(tree)
    }

    /// The tree for `sha256`, intact (every file with its recorded size and
    /// mtime), or `None`.
    pub fn intact_tree(&self, sha256: &str) -> Option<Tree> {
        let tree = self.read_tree(sha256)?;
        let files = self.tree_dir(sha256).join("files");
        for f in &tree.files {
            let meta = std::fs::symlink_metadata(files.join(&f.path)).ok()?;
            if !meta.is_file() || meta.len() != f.size || mtime_ns(&meta) != f.mtime {
                return None;
            }
        }
        Some(tree)
    }

    /// Returns the intact tree of `sha256`, unpacking the cached archive
    /// (re-hashed first) if there is none. `package` names errors.
    pub fn ensure_tree(&self, package: &str, version: &str, sha256: &str) -> Result<Tree, InstallError> {
        if let Some(tree) = self.intact_tree(sha256) {
            return Ok(tree);
        }
        let path = self.archive_path(sha256);
        let bytes = std::fs::read(&path).map_err(InstallError::io(format!("reading {}", path.display())))?;
        let actual = crate::fsutil::sha256_hex(&bytes);
        if actual != sha256 {
            let _ = std::fs::remove_file(&path);
            return Err(InstallError::CorruptCache {
                package: format!("{package} {version}"),
                path: path.display().to_string(),
                expected: sha256.to_owned(),
                actual,
            });
        }
        let tmp_root = self.tmp_dir();
        std::fs::create_dir_all(&tmp_root).map_err(InstallError::io(format!("creating {}", tmp_root.display())))?;
        let tmp = tempfile::Builder::new()
            .prefix("tree-")
            .tempdir_in(&tmp_root)
            .map_err(InstallError::io(format!("creating a folder in {}", tmp_root.display())))?;
        let files_dir = tmp.path().join("files");
        std::fs::create_dir(&files_dir).map_err(InstallError::io(format!("creating {}", files_dir.display())))?;
        let extracted = archive::extract(Cursor::new(&bytes), &files_dir, &Limits::default()).map_err(|source| {
            InstallError::Unpack {
                package: package.to_owned(),
                version: version.to_owned(),
                source,
            }
        })?;
        let mut files = Vec::with_capacity(extracted.len());
        for f in extracted {
            let p = files_dir.join(&f.path);
            let meta = std::fs::symlink_metadata(&p).map_err(InstallError::io(format!("reading {}", p.display())))?;
            files.push(TreeFile {
                path: f.path,
                sha256: f.sha256,
                size: f.size,
                executable: f.executable,
                mtime: mtime_ns(&meta),
            });
        }
        let tree = Tree {
            sha256: sha256.to_owned(),
            files,
        };
        let json = serde_json::to_vec(&tree).map_err(|e| InstallError::Io {
            what: "rendering tree.json".to_owned(),
            source: std::io::Error::other(e),
        })?;
        let meta_path = tmp.path().join("tree.json");
        std::fs::write(&meta_path, json).map_err(InstallError::io(format!("writing {}", meta_path.display())))?;

        let dest = self.tree_dir(sha256);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(InstallError::io(format!("creating {}", parent.display())))?;
        }
        // Another process may have completed this tree while we unpacked:
        // theirs is as good, and it may be in use (linked from) right now,
        // so only a stale (edited) tree is ever moved aside. Renames race
        // with other processes doing the same; a few rounds settle it.
        let kept = tmp.keep();
        for _ in 0..3 {
            if let Some(theirs) = self.intact_tree(sha256) {
                let _ = std::fs::remove_dir_all(&kept);
                return Ok(theirs);
            }
            if dest.exists() {
                let trash = tempfile::Builder::new()
                    .prefix("trash-")
                    .tempdir_in(&tmp_root)
                    .map_err(InstallError::io(format!("creating a folder in {}", tmp_root.display())))?;
                let _ = std::fs::rename(&dest, trash.path().join("t"));
            }
            if std::fs::rename(&kept, &dest).is_ok() {
                return Ok(tree);
            }
        }
        let _ = std::fs::remove_dir_all(&kept);
        self.intact_tree(sha256).ok_or_else(|| InstallError::Io {
            what: format!("moving an unpacked tree to {}", dest.display()),
            source: std::io::Error::other("other processes kept replacing it; try again"),
        })
    }

    /// Links (hard link, else copy) the files of `tree` into the new folder
    /// `dest`.
    pub fn link_tree(&self, tree: &Tree, dest: &Path) -> Result<(), InstallError> {
        let src_root = self.tree_dir(&tree.sha256).join("files");
        let mut made = std::collections::HashSet::new();
        for f in &tree.files {
            let rel = archive::safe_entry_path(&f.path).map_err(|reason| InstallError::Io {
                what: format!("linking {}", f.path),
                source: std::io::Error::other(reason),
            })?;
            let to = dest.join(&rel);
            if let Some(parent) = to.parent()
                && made.insert(parent.to_owned())
            {
                std::fs::create_dir_all(parent).map_err(InstallError::io(format!("creating {}", parent.display())))?;
            }
            let from = src_root.join(&rel);
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).map_err(InstallError::io(format!(
                    "copying {} to {}",
                    from.display(),
                    to.display()
                )))?;
            }
        }
        Ok(())
    }
}
