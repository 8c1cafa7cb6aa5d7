//! What a client remembers of each log it has talked to (SPEC §9): the
//! newest checkpoint it accepted, and the records it has proved included.
//!
//! Kept in the cache dir, one folder per log key:
//! `{cache}/tlog/{sha256(vkey)[..32]}/` holding `checkpoint` (the signed
//! note as served) and `verified` (one line a proved record:
//! `INDEX SHA256 NAME VERSION`). Keyed by the key, not the registry's URL:
//! a mirror and its origin share one memory, and a registry that swaps its
//! key starts a new one (after the client refused the swap).
//!
//! Rules kept here:
//! - no write follows a symbolic link: `tlog/`, the log's folder and each
//!   file are checked not to be links (with `symlink_metadata`) before fm
//!   writes, and files are replaced atomically (temp + rename, which
//!   replaces a link rather than writing through it); writers of one log
//!   take `lock` in its folder first. (Path checks, not the race-free
//!   handles of `crate::install::nofollow`: using those from here would
//!   make an import cycle install → registry → tlog → install.)
//! - the checkpoint only moves forward: [`Memory::save`] re-reads under the
//!   lock and never replaces a larger one;
//! - a remembered checkpoint that does not verify with the pinned key is
//!   ignored (as if absent), never trusted; the `verified` lines only skip
//!   work, `fm verify --log` re-proves without them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why the memory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("{} is a symbolic link", .0.display())]
    Link(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> DirError + '_ {
    move |source| DirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A folder of the memory, checked not to be (or hold at `name`) a link.
struct Dir {
    path: PathBuf,
}

impl Dir {
    fn create_path(path: &Path) -> Result<(Dir, bool), DirError> {
        std::fs::create_dir_all(path).map_err(io_at(path))?;
        Ok((Dir { path: path.to_owned() }, false))
    }

    fn not_link(&self, name: &str) -> Result<Option<std::fs::Metadata>, DirError> {
        let p = self.path.join(name);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => Err(DirError::Link(p)),
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&p)(e)),
        }
    }

    fn create_dir(&self, name: &str) -> Result<(Dir, bool), DirError> {
        let p = self.path.join(name);
        let created = match self.not_link(name)? {
            Some(_) => false,
            None => match std::fs::create_dir(&p) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(io_at(&p)(e)),
            },
        };
        self.not_link(name)?;
        Ok((Dir { path: p }, created))
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn read_file(&self, name: &str) -> Result<Option<(Vec<u8>, ())>, DirError> {
        if self.not_link(name)?.is_none() {
            return Ok(None);
        }
        let p = self.path.join(name);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some((b, ()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&p)(e)),
        }
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), DirError> {
        self.not_link(name)?;
        let p = self.path.join(name);
        crate::fsutil::write_atomic(&p, bytes).map_err(io_at(&p))
    }

    /// Creates the file `name` holding `bytes` unless something (a file, a
    /// link, dangling or not) is there already: `false` then. Exclusive
    /// creation never writes through a link. Not flushed: for memos only.
    fn create_memo(&self, name: &str, bytes: &[u8]) -> Result<bool, DirError> {
        use std::io::Write as _;
        let p = self.path.join(name);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(mut file) => {
                file.write_all(bytes).map_err(io_at(&p))?;
                Ok(true)
            }
            // Said before, unless a link stands there (as before: refused).
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.not_link(name).map(|_| false),
            Err(e) => Err(io_at(&p)(e)),
        }
    }

    fn lock(&self, name: &str) -> Result<crate::fsutil::LockFile, DirError> {
        self.not_link(name)?;
        let p = self.path.join(name);
        crate::fsutil::LockFile::acquire(&p, || {}).map_err(io_at(&p))
    }
}

use super::key::LogVerifier;

/// One log's memory.
pub struct Memory {
    dir: PathBuf,
    /// The remembered checkpoint (verified with the pinned key).
    pub checkpoint: Option<(tlog_tiles::Checkpoint, Vec<u8>)>,
    /// `INDEX SHA256 NAME VERSION` lines.
    pub verified: BTreeSet<String>,
}

/// One proved record, as the `verified` file lists it.
pub fn verified_line(index: u64, sha256: &str, name: &str, version: &str) -> String {
    format!("{index} {} {name} {version}", sha256.to_ascii_lowercase())
}

/// The folder of `vkey`'s memory under `cache`.
pub fn folder(cache: &Path, vkey: &str) -> PathBuf {
    let id = crate::fsutil::sha256_hex(vkey.as_bytes());
    cache.join("tlog").join(&id[..32])
}

fn open(cache: &Path, vkey: &str) -> Result<Dir, DirError> {
    let (root, _) = Dir::create_path(cache)?;
    let (tlog, _) = root.create_dir("tlog")?;
    let id = crate::fsutil::sha256_hex(vkey.as_bytes());
    let (dir, _) = tlog.create_dir(&id[..32])?;
    Ok(dir)
}

impl Memory {
    /// Reads the memory of the log signed by `verifier` (empty when there
    /// is none yet).
    pub fn load(cache: &Path, verifier: &LogVerifier) -> Result<Memory, DirError> {
        let dir = open(cache, verifier.vkey())?;
        let checkpoint = dir
            .read_file("checkpoint")?
            .and_then(|(b, _)| verifier.open_checkpoint(&b).ok().map(|c| (c, b)));
        let verified = dir
            .read_file("verified")?
            .map(|(b, _)| String::from_utf8_lossy(&b).lines().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Memory {
            dir: dir.path().to_owned(),
            checkpoint,
            verified,
        })
    }

    /// Where the remembered checkpoint is kept (for messages: it is the
    /// evidence of what the registry showed before).
    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    /// Records `note` (already checked to extend what was remembered) and
    /// the newly proved `lines`, under the folder's lock.
    pub fn save(
        cache: &Path,
        verifier: &LogVerifier,
        note: &[u8],
        size: u64,
        lines: &[String],
    ) -> Result<(), DirError> {
        let dir = open(cache, verifier.vkey())?;
        let _lock = dir.lock("lock")?;
        let stored = dir
            .read_file("checkpoint")?
            .and_then(|(b, _)| verifier.open_checkpoint(&b).ok())
            .map_or(0, |c| c.size());
        if size > stored || (size == 0 && stored == 0) {
            dir.write_atomic("checkpoint", note)?;
        }
        if !lines.is_empty() {
            let mut all: BTreeSet<String> = dir
                .read_file("verified")?
                .map(|(b, _)| String::from_utf8_lossy(&b).lines().map(str::to_owned).collect())
                .unwrap_or_default();
            all.extend(lines.iter().cloned());
            let mut text = all.into_iter().collect::<Vec<_>>().join("\n");
            text.push('\n');
            dir.write_atomic("verified", text.as_bytes())?;
        }
        Ok(())
    }
}

/// Whether this machine is told about `subject` for the first time:
/// notes it under `{cache}/tlog/noticed/` and returns `true` once. (A
/// registry without a log is announced once per machine, not on every
/// lock.) Errors count as "first": a notice too many is harmless.
pub fn first_notice(cache: &Path, subject: &str) -> bool {
    let id = crate::fsutil::sha256_hex(subject.as_bytes());
    let noted = (|| -> Result<bool, DirError> {
        let (root, _) = Dir::create_path(cache)?;
        let (tlog, _) = root.create_dir("tlog")?;
        let (dir, _) = tlog.create_dir("noticed")?;
        // A memo, not a record: created exclusively (never through a
        // link) and not flushed. Lost in a crash, the notice is said once
        // more; an fsync here cost every such lock half a millisecond.
        dir.create_memo(&id[..32], subject.as_bytes())
    })();
    noted.unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::LogKey;

    #[test]
    fn the_checkpoint_only_moves_forward_and_links_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let (key, _) = LogKey::generate("fm.registry/mem").unwrap();
        let v = key.verifier();
        let root = tlog_tiles::record_hash(b"x");
        let big = key.sign_checkpoint(5, root).unwrap();
        let small = key.sign_checkpoint(3, root).unwrap();
        Memory::save(&cache, v, &big, 5, &[verified_line(1, &"a".repeat(64), "a", "1.0.0")]).unwrap();
        Memory::save(&cache, v, &small, 3, &[]).unwrap();
        let m = Memory::load(&cache, v).unwrap();
        assert_eq!(m.checkpoint.as_ref().map(|(c, _)| c.size()), Some(5));
        assert_eq!(m.verified.len(), 1);
        // A checkpoint signed by another key is ignored, never trusted.
        let (other, _) = LogKey::generate("fm.registry/mem").unwrap();
        std::fs::write(m.checkpoint_path(), other.sign_checkpoint(9, root).unwrap()).unwrap();
        assert!(Memory::load(&cache, v).unwrap().checkpoint.is_none());
        // A link in place of the log's folder is refused, not followed.
        #[cfg(unix)]
        {
            let dir = folder(&cache, v.vkey());
            std::fs::remove_dir_all(&dir).unwrap();
            let elsewhere = tmp.path().join("elsewhere");
            std::fs::create_dir_all(&elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
            assert!(Memory::save(&cache, v, &big, 5, &[]).is_err());
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        }
    }
}
