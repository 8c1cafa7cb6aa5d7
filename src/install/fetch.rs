//! Downloads: archives streamed from registries into the cache, verified,
//! and unpacked as they arrive.
//!
//! Each archive streams through [`HashingWriter`] into memory; the digest
//! is computed as the bytes arrive and the download is cut off
//! [`SIZE_SLACK`] past the size the lock recorded (no archive of that
//! digest can be longer, and a registry might never stop sending). Each
//! download's time is bounded by the transport's deadline plus a minimum
//! throughput (`registry::transport`).
//! Once its digest matches, a rayon job writes it to a temporary file in
//! `{cache}/tmp/` and hands those same bytes to the caller's unpack
//! ([`download_and_unpack`]) while other downloads go on; nothing is ever
//! unpacked from bytes that did not match. A failure stops every download
//! and unpack not yet started. Files are moved into the cache only once
//! **every** download of the run has matched its lock digest, so a
//! mismatch leaves the cache as it was.
//! Downloads run concurrently on the process's tokio runtime, at most
//! [`crate::registry::transport::concurrency`] at a time
//! (`FM_CONCURRENT_DOWNLOADS`, default 128).

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;

use super::cache::Cache;
use super::{InstallError, Progress};
use crate::lock::{LockedPackage, LockedRegistry};
use crate::registry::{OpenOptions, Registry};

/// Bytes past the lock's recorded size that a download may run on before it
/// is cut off: an archive that long is already refused (its digest cannot
/// match), and reading a little more lets a near miss (a rebuilt archive a
/// few bytes longer) be hashed so that the error shows both digests. Small,
/// so an endless answer costs at most this much more than the locked size.
pub const SIZE_SLACK: u64 = 64 * 1024;

/// The most memory reserved up front for one download, whatever size the
/// lock claims; a larger archive grows its buffer as its bytes arrive.
const PREALLOCATE_MAX: u64 = 8 * 1024 * 1024;

/// An `AsyncWrite` that hashes and counts what passes through it, and fails
/// once more than `limit` bytes arrive.
pub struct HashingWriter<'a, W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
    limit: u64,
    overflowed: bool,
    write_error: Option<std::io::Error>,
    progress: &'a dyn Progress,
}

impl<'a, W> HashingWriter<'a, W> {
    /// Wraps `inner`; at most `limit` bytes are accepted.
    pub fn new(inner: W, limit: u64, progress: &'a dyn Progress) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            limit,
            overflowed: false,
            write_error: None,
            progress,
        }
    }

    /// Whether more than `limit` bytes were offered.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    fn note<T>(&mut self, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Err(e)) = &r {
            self.write_error = Some(std::io::Error::new(e.kind(), e.to_string()));
        }
        r
    }

    /// Takes the error the inner writer (the cache's file) failed with, if
    /// it did: a failure to write is the cache's, not the registry's.
    pub fn take_write_error(&mut self) -> Option<std::io::Error> {
        self.write_error.take()
    }

    /// Hex digest and byte count so far, and the inner writer.
    pub fn finish(self) -> (String, u64, W) {
        (hex::encode(self.hasher.finalize()), self.bytes, self.inner)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<'_, W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.bytes + buf.len() as u64 > this.limit {
            this.overflowed = true;
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the archive is over {} bytes, more than fm.lock records",
                this.limit
            ))));
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.hasher.update(&buf[..n]);
                this.bytes += n as u64;
                this.progress.downloaded(n as u64);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => {
                this.write_error = Some(std::io::Error::new(e.kind(), e.to_string()));
                Poll::Ready(Err(e))
            }
            other => other,
        }
    }

    // A buffered file reports a failed write at a later write or flush.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.note(r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.note(r)
    }
}

/// Opens clients for the lock's `[[registry]]` entries that `packages`
/// need, with the user's tokens and mirrors.
pub fn open_registries(
    packages: &[&LockedPackage],
    registries: &[LockedRegistry],
    offline: bool,
) -> Result<HashMap<String, Arc<dyn Registry>>, InstallError> {
    let mut out: HashMap<String, Arc<dyn Registry>> = HashMap::new();
    let mut config = None;
    for p in packages {
        if out.contains_key(&p.registry) {
            continue;
        }
        let Some(decl) = registries.iter().find(|r| r.name == p.registry) else {
            return Err(InstallError::UnknownRegistry {
                package: p.name.to_string(),
                registry: p.registry.clone(),
            });
        };
        let url = url::Url::parse(&decl.url).map_err(|e| InstallError::BadRegistryUrl {
            registry: decl.name.clone(),
            reason: e.to_string(),
        })?;
        let config = match &mut config {
            Some(c) => &*c,
            slot @ None => &*slot.insert(crate::config::UserConfig::load()?),
        };
        let opts = OpenOptions::for_registry(&decl.name, &url, config, offline);
        let client = crate::registry::open(&decl.name, &url, &opts)?;
        out.insert(decl.name.clone(), client);
    }
    Ok(out)
}

/// An archive downloaded and verified, not yet in the cache.
pub struct Staged {
    sha256: String,
    file: tempfile::NamedTempFile,
}

/// What to do with each archive once its bytes are verified: typically
/// unpack it into a staging folder. `bytes` is `Some` for an archive that
/// was just downloaded (the very bytes whose digest matched the lock, held
/// in memory, never read back from disk), `None` for one already in the
/// cache (the callee reads and re-hashes it). Runs on rayon, while other
/// downloads are still arriving.
pub type Unpack<'a, T> = dyn Fn(&LockedPackage, Option<&[u8]>) -> Result<T, InstallError> + Sync + 'a;

/// Downloads `packages` concurrently into temporary files and checks each
/// against its lock digest. Returns them staged; [`commit`] moves them into
/// the cache. The first failure (in lock order) is returned, and every
/// temporary file is deleted.
pub fn download_all(
    cache: &Cache,
    packages: &[&LockedPackage],
    clients: &HashMap<String, Arc<dyn Registry>>,
    progress: &dyn Progress,
) -> Result<Vec<Staged>, InstallError> {
    let (_, staged) = download_and_unpack(cache, packages, packages, clients, progress, &|_, _| Ok(()))?;
    Ok(staged)
}

/// The install pipeline: unpacks every package of `packages` with `unpack`,
/// downloading first those whose archive is in `need` (one entry per
/// digest, the archives the cache lacks). Cached archives are unpacked at
/// once; each download is unpacked as soon as it has arrived and matched
/// its lock digest, while the others are still downloading, so unpacking
/// hides behind network waits.
///
/// A failure stops everything: no new download or unpack starts after it,
/// the ones under way finish, and the first failure in lock order is
/// returned; every temporary file is deleted (the caller removes what
/// `unpack` created). On success, returns `unpack`'s results in the order
/// of `packages` and the verified downloads, for [`commit`].
pub fn download_and_unpack<T: Send>(
    cache: &Cache,
    packages: &[&LockedPackage],
    need: &[&LockedPackage],
    clients: &HashMap<String, Arc<dyn Registry>>,
    progress: &dyn Progress,
    unpack: &Unpack<'_, T>,
) -> Result<(Vec<T>, Vec<Staged>), InstallError> {
    let tmp_dir = if need.is_empty() {
        None
    } else {
        Some(cache.checked_tmp_dir()?)
    };
    let downloading: HashSet<&str> = need.iter().map(|p| p.sha256.as_str()).collect();
    let failed = AtomicBool::new(false);
    let downloads_done = AtomicBool::new(need.is_empty());
    let unpacked = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<T, InstallError>>>> = packages.iter().map(|_| Mutex::new(None)).collect();
    let staged: Vec<Mutex<Option<Result<Staged, InstallError>>>> = need.iter().map(|_| Mutex::new(None)).collect();
    fn put<R>(slot: &Mutex<Option<R>>, r: R) {
        if let Ok(mut s) = slot.lock() {
            *s = Some(r);
        }
    }

    let unpack_one = |i: usize, bytes: Option<&[u8]>| {
        if failed.load(Ordering::Acquire) {
            return;
        }
        let r = unpack(packages[i], bytes);
        if r.is_err() {
            failed.store(true, Ordering::Release);
        }
        put(&results[i], r);
        unpacked.fetch_add(1, Ordering::AcqRel);
        if downloads_done.load(Ordering::Acquire) {
            progress.unpacked(&packages[i].name);
        }
    };
    // A verified download: into its temporary file (for the cache), then
    // unpacked for every package that has this digest.
    let store_and_unpack = |j: usize, bytes: Vec<u8>, dir: &Path| {
        if failed.load(Ordering::Acquire) {
            return;
        }
        let p = need[j];
        let r = write_temp(p, &bytes, dir);
        let ok = r.is_ok();
        if !ok {
            failed.store(true, Ordering::Release);
        }
        put(&staged[j], r);
        if ok {
            for (i, q) in packages.iter().enumerate() {
                if q.sha256 == p.sha256 {
                    unpack_one(i, Some(&bytes));
                }
            }
        }
    };

    if need.is_empty() {
        progress.unpacking(packages.len());
    } else {
        progress.downloading(need.len(), need.iter().map(|p| p.size).sum());
    }
    let outcome = rayon::in_place_scope(|s| -> Result<(), InstallError> {
        for (i, p) in packages.iter().enumerate() {
            if !downloading.contains(p.sha256.as_str()) {
                let unpack_one = &unpack_one;
                s.spawn(move |_| unpack_one(i, None));
            }
        }
        let Some(dir) = &tmp_dir else {
            return Ok(());
        };
        let runtime = crate::runtime::get().map_err(InstallError::io("starting the download runtime"))?;
        runtime.block_on(async {
            futures_util::stream::iter(need.iter().copied().enumerate())
                .map(|(j, p)| {
                    let (failed, staged, store_and_unpack) = (&failed, &staged, &store_and_unpack);
                    async move {
                        if failed.load(Ordering::Acquire) {
                            return;
                        }
                        match download_one(p, clients, dir, progress).await {
                            Ok(bytes) => s.spawn(move |_| store_and_unpack(j, bytes, dir)),
                            Err(e) => {
                                failed.store(true, Ordering::Release);
                                put(&staged[j], Err(e));
                            }
                        }
                    }
                })
                .buffer_unordered(crate::registry::transport::concurrency())
                .collect::<()>()
                .await
        });
        downloads_done.store(true, Ordering::Release);
        progress.unpacking(packages.len().saturating_sub(unpacked.load(Ordering::Acquire)));
        Ok(())
    });
    outcome?;

    // Every job has finished (the scope waited for them). The first
    // failure in lock order: a download's counts at its first package.
    let first_of = |sha: &str| packages.iter().position(|q| q.sha256 == sha).unwrap_or(usize::MAX);
    let mut first: Option<(usize, InstallError)> = None;
    let mut keep = |at: usize, e: InstallError| {
        if first.as_ref().is_none_or(|(i, _)| at < *i) {
            first = Some((at, e));
        }
    };
    let mut files = Vec::with_capacity(need.len());
    for (j, slot) in staged.into_iter().enumerate() {
        match slot.into_inner().ok().flatten() {
            Some(Ok(s)) => files.push(s),
            Some(Err(e)) => keep(first_of(&need[j].sha256), e),
            None => {}
        }
    }
    let mut out = Vec::with_capacity(packages.len());
    for (i, slot) in results.into_iter().enumerate() {
        match slot.into_inner().ok().flatten() {
            Some(Ok(t)) => out.push(t),
            Some(Err(e)) => keep(i, e),
            None => {}
        }
    }
    if let Some((_, e)) = first {
        return Err(e);
    }
    if out.len() != packages.len() || files.len() != need.len() {
        return Err(InstallError::Io {
            what: "installing".to_owned(),
            source: std::io::Error::other("an unpack did not run; run the command again"),
        });
    }
    Ok((out, files))
}

/// Writes a verified download into a new temporary file in `dir` (the
/// cache's `tmp/`), for [`commit`].
fn write_temp(p: &LockedPackage, bytes: &[u8], dir: &Path) -> Result<Staged, InstallError> {
    let cache_write = |source| InstallError::CacheWrite {
        cache: dir.display().to_string(),
        package: format!("{} {}", p.name, p.version),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix("download-")
        .tempfile_in(dir)
        .map_err(InstallError::io(format!("creating a file in {}", dir.display())))?;
    file.write_all(bytes).map_err(cache_write)?;
    Ok(Staged {
        sha256: p.sha256.to_string(),
        file,
    })
}

/// Downloads one archive into memory (at most its locked size plus
/// [`SIZE_SLACK`]), hashing it as it streams; returns the bytes once their
/// digest matches the lock.
async fn download_one(
    p: &LockedPackage,
    clients: &HashMap<String, Arc<dyn Registry>>,
    tmp_dir: &Path,
    progress: &dyn Progress,
) -> Result<Vec<u8>, InstallError> {
    let client = clients.get(&p.registry).ok_or_else(|| InstallError::UnknownRegistry {
        package: p.name.to_string(),
        registry: p.registry.clone(),
    })?;
    let version = p.version.to_string();
    let limit = p.size.saturating_add(SIZE_SLACK);
    // The lock's size is the repository's word: never reserve much on it.
    let capacity = p.size.min(PREALLOCATE_MAX) as usize;
    let mut writer = HashingWriter::new(Vec::with_capacity(capacity), limit, progress);
    let result = client.download(&p.name, &version, &mut writer).await;
    let overflowed = writer.overflowed();
    let write_error = writer.take_write_error();
    let (actual, _, bytes) = writer.finish();
    if result.is_err()
        && let Some(source) = write_error
    {
        return Err(InstallError::CacheWrite {
            cache: tmp_dir.display().to_string(),
            package: format!("{} {version}", p.name),
            source,
        });
    }
    match result {
        Ok(_) => {}
        // A registry that sends more than the lock's size is cut off soon
        // after: the bytes cannot match, and it might never stop.
        Err(_) if overflowed => {
            return Err(InstallError::DigestMismatch {
                package: p.name.to_string(),
                version,
                registry: p.registry.clone(),
                expected: p.sha256.to_string(),
                actual: format!(
                    "unknown: it sent over {limit} bytes, fm.lock records {}; cut off there",
                    p.size
                ),
            });
        }
        Err(e) => return Err(e.into()),
    }
    if actual != p.sha256 {
        return Err(InstallError::DigestMismatch {
            package: p.name.to_string(),
            version,
            registry: p.registry.clone(),
            expected: p.sha256.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

/// Moves verified downloads into the cache, read-only.
pub fn commit(cache: &Cache, staged: Vec<Staged>) -> Result<(), InstallError> {
    // Shard folders checked once each per commit, not once per archive.
    let mut shards: HashMap<String, std::path::PathBuf> = HashMap::new();
    for s in staged {
        let shard = s.sha256.get(..2).unwrap_or_default().to_owned();
        let dir = match shards.entry(shard) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            // Neither `archives` nor the shard may be a link (see cache.rs).
            std::collections::hash_map::Entry::Vacant(e) => e.insert(cache.checked_shard_dir(&s.sha256)?),
        };
        let dest = dir.join(format!("{}.fmpkg", s.sha256));
        let mut perms = s
            .file
            .as_file()
            .metadata()
            .map_err(InstallError::io(format!("reading {}", s.file.path().display())))?
            .permissions();
        perms.set_readonly(true);
        s.file
            .as_file()
            .set_permissions(perms)
            .map_err(InstallError::io(format!(
                "setting the mode of {}",
                s.file.path().display()
            )))?;
        // Same digest, same bytes: replacing an entry another process just
        // stored is harmless (a link there is replaced, not followed).
        s.file
            .persist(&dest)
            .map_err(|e| InstallError::io(format!("storing {}", dest.display()))(e.error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn hashing_writer_hashes_and_cuts_off_past_its_limit() {
        crate::runtime::block_on(async {
            let mut w = HashingWriter::new(Vec::new(), 8, &super::super::NoProgress);
            w.write_all(b"12345678").await.unwrap();
            assert!(!w.overflowed());
            assert!(w.write_all(b"9").await.is_err());
            assert!(w.overflowed());
            let (sha, n, inner) = w.finish();
            assert_eq!(
                (sha, n, inner),
                (crate::fsutil::sha256_hex(b"12345678"), 8, b"12345678".to_vec())
            );
        })
        .unwrap();
    }
}
