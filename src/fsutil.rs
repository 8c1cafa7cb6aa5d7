//! Small file-system primitives every writer in fm shares: atomic
//! replacement, exclusive file locks, and hashing.
//!
//! Rule kept here: a file that other processes may read is never written in
//! place. It is written to a temporary file in the same folder, flushed, and
//! renamed over the old one, so a reader sees the old bytes or the new ones,
//! never a mix, and a crash leaves the old file intact.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The name prefix of the temporary files below.
pub const TMP_PREFIX: &str = ".fm-tmp-";

/// Replaces `path` with `bytes` atomically (temp file + fsync + rename).
///
/// The file keeps its mode when it exists (a `0644` `fm.toml` stays
/// `0644`, an `0600` one `0600`); a new file gets the user's umask, as any
/// editor would give it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir)?;
    let mut tmp = user_mode_temp(dir)?;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.is_file()
    {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `bytes` to `path` only if nothing is there yet. Returns `false`
/// (and writes nothing) when `path` already exists. The bytes appear all at
/// once: they are written to a temporary file first and linked into place.
/// The file gets the user's umask.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir)?;
    let mut tmp = user_mode_temp(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error),
    }
}

/// [`write_atomic`] for a file only its owner may read (credentials): the
/// temporary file is created `0600`, so the bytes are never readable by
/// others, not even for a moment.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A temporary file in `dir` created with mode `0666` less the umask
/// (tempfile's default, `0600`, would stick to the file once renamed).
fn user_mode_temp(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(TMP_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b.tempfile_in(dir)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// An exclusive advisory lock on a file, released on drop.
///
/// fm takes these on `{registry}/.lock` (publishing), on the cache
/// (`{cache}/.lock`) and on the project (`.fm/.lock`), always in that order
/// when more than one is held, so two fm processes cannot deadlock.
#[derive(Debug)]
pub struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    /// Blocks until the lock at `path` is held. Calls `on_wait` once if it
    /// has to wait, so the CLI can say what it is waiting for.
    pub fn acquire(path: &Path, on_wait: impl FnOnce()) -> io::Result<LockFile> {
        Self::take(path, on_wait, false)
    }

    /// Blocks until a shared lock at `path` is held: any number of shared
    /// holders, but none while an exclusive one holds it. `fm sync` holds the
    /// cache this way (its writes are atomic renames of content-addressed
    /// entries); clearing the cache takes it exclusively.
    pub fn acquire_shared(path: &Path, on_wait: impl FnOnce()) -> io::Result<LockFile> {
        Self::take(path, on_wait, true)
    }

    fn take(path: &Path, on_wait: impl FnOnce(), shared: bool) -> io::Result<LockFile> {
        std::fs::create_dir_all(parent_dir(path))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        Self::lock_open(file, path.to_owned(), on_wait, shared)
    }

    /// Locks a file already opened (by a caller that opened it safely, e.g.
    /// without following links); `path` names it.
    pub fn lock_open(file: File, path: PathBuf, on_wait: impl FnOnce(), shared: bool) -> io::Result<LockFile> {
        let tried = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match tried {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                on_wait();
                if shared { file.lock_shared()? } else { file.lock()? }
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        Ok(LockFile { file, path })
    }

    /// The locked file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex SHA-256 and length of everything `r` yields.
pub fn sha256_reader(mut r: impl Read) -> io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Whether `s` looks like a hex SHA-256 digest (64 lowercase hex digits).
pub fn is_sha256_hex(s: &str) -> bool {
    // No early exit: the loop is vectorized (a no-op sync checks a digest a file).
    s.len() == 64
        && s.bytes()
            .fold(true, |ok, b| ok & (b.is_ascii_digit() | (b'a'..=b'f').contains(&b)))
}
