//! Downloads: archives streamed from registries into the cache, verified.
//!
//! Each archive streams through [`HashingWriter`] into a temporary file in
//! `{cache}/tmp/`; the digest is computed as the bytes arrive and the
//! download is cut off [`SIZE_SLACK`] past the size the lock recorded (no
//! archive of that digest can be longer, and a registry might never stop
//! sending). Each download's time is bounded by the transport's deadline
//! plus a minimum throughput (`registry::transport`).
//! Files are moved into the cache only once **every** download of the run
//! has matched its lock digest, so a mismatch leaves the cache as it was.
//! Downloads run concurrently on a small tokio runtime, at most
//! [`crate::registry::transport::concurrency`] at a time
//! (`FM_CONCURRENT_DOWNLOADS`, default 50).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
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
                package: p.name.clone(),
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
    let tmp_dir = cache.checked_tmp_dir()?;
    let runtime = crate::runtime::get().map_err(InstallError::io("starting the download runtime"))?;
    let results: Vec<Result<Staged, InstallError>> = runtime.block_on(async {
        futures_util::stream::iter(packages.iter().copied())
            .map(|p| download_one(p, clients, &tmp_dir, progress))
            .buffered(crate::registry::transport::concurrency())
            .collect()
            .await
    });
    results.into_iter().collect()
}

async fn download_one(
    p: &LockedPackage,
    clients: &HashMap<String, Arc<dyn Registry>>,
    tmp_dir: &std::path::Path,
    progress: &dyn Progress,
) -> Result<Staged, InstallError> {
    let client = clients.get(&p.registry).ok_or_else(|| InstallError::UnknownRegistry {
        package: p.name.clone(),
        registry: p.registry.clone(),
    })?;
    let file = tempfile::Builder::new()
        .prefix("download-")
        .tempfile_in(tmp_dir)
        .map_err(InstallError::io(format!("creating a file in {}", tmp_dir.display())))?;
    let handle = file
        .as_file()
        .try_clone()
        .map_err(InstallError::io(format!("opening {}", file.path().display())))?;
    let version = p.version.to_string();
    let limit = p.size.saturating_add(SIZE_SLACK);
    let mut writer = HashingWriter::new(tokio::fs::File::from_std(handle), limit, progress);
    let result = client.download(&p.name, &version, &mut writer).await;
    let overflowed = writer.overflowed();
    let write_error = writer.take_write_error();
    let (actual, _, mut out) = writer.finish();
    // The disk under the cache failed (full, a quota): name the cache, not
    // the registry whose bytes could not be stored.
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
                package: p.name.clone(),
                version,
                registry: p.registry.clone(),
                expected: p.sha256.clone(),
                actual: format!(
                    "unknown: it sent over {limit} bytes, fm.lock records {}; cut off there",
                    p.size
                ),
            });
        }
        Err(e) => return Err(e.into()),
    }
    tokio::io::AsyncWriteExt::flush(&mut out)
        .await
        .map_err(|source| InstallError::CacheWrite {
            cache: tmp_dir.display().to_string(),
            package: format!("{} {version}", p.name),
            source,
        })?;
    drop(out);
    if actual != p.sha256 {
        return Err(InstallError::DigestMismatch {
            package: p.name.clone(),
            version,
            registry: p.registry.clone(),
            expected: p.sha256.clone(),
            actual,
        });
    }
    Ok(Staged { sha256: actual, file })
}

/// Moves verified downloads into the cache, read-only.
pub fn commit(cache: &Cache, staged: Vec<Staged>) -> Result<(), InstallError> {
    for s in staged {
        // Neither `archives` nor the shard may be a link (see cache.rs).
        let dest = cache.checked_shard_dir(&s.sha256)?.join(format!("{}.fmpkg", s.sha256));
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
