//! What the server keeps in memory between requests, and the document
//! reads that go through it: parsed documents ([`DocCache`]), rendered
//! `packages/{name}` answers ([`RenderCache`]) and archives from buckets
//! ([`ArchiveCache`]). Every cache is keyed so that a write through this
//! server, another replica or `fm publish` is seen (see each type's doc).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::registry::document::PackageDocument;
use crate::registry::publish::{self, PublishError};
use crate::registry::storage::Tag;

/// Rendered `packages/{name}` answers, reused while the document (the same
/// [`Arc`] from [`DocCache`]), the host it was addressed as, and the
/// download count are unchanged: the hot path of resolution becomes a
/// `stat` and a lookup.
#[derive(Debug, Default)]
pub(super) struct RenderCache {
    pub(super) map: std::sync::RwLock<std::collections::HashMap<String, Arc<Rendered>>>,
}

#[derive(Debug)]
pub(super) struct Rendered {
    pub(super) doc: Arc<PackageDocument>,
    pub(super) base: String,
    pub(super) count: u64,
    pub(super) etag: String,
    pub(super) etag_header: axum::http::HeaderValue,
    pub(super) body: Bytes,
}

/// Parsed package documents, so a request that finds a document unchanged
/// neither parses nor renders it again (rendered answers are keyed by the
/// same [`Arc`]). An entry is reused while the document's identity is
/// unchanged:
///
/// - for storages with local files, the file's (inode, size, modification
///   time): every write replaces the file by rename, so a publish by this
///   server is seen on the next request (the write drops the entry), and
///   a publish by another server on the same folder or by `fm publish` to
///   the folder within [`STAT_EVERY`]: a document is `stat`ed at most once
///   per [`STAT_EVERY`] (the `stat` was a tenth of a cached answer's CPU
///   under load), and never skipped before a write;
/// - for other storages (buckets), the storage's [`Tag`] of the document,
///   which the storage revalidates with the store on every read (a
///   conditional GET). With a freshness window (`--storage-cache-ttl`), an
///   entry checked less than `ttl` ago is served without asking the store:
///   a write through another replica is seen within `ttl`; a write through
///   this server drops the entry, so it is seen at once here. A listing
///   that carries tags (an object store's `LIST`) vouches for an entry
///   with the same tag, so [`all_documents`] reads only changed documents.
#[derive(Debug, Default)]
pub(super) struct DocCache {
    map: std::sync::RwLock<std::collections::HashMap<String, (Stamp, Arc<PackageDocument>)>>,
    /// Bumped by every write through this server: a read that started
    /// before a write does not store what it read.
    generation: AtomicU64,
    ttl: Duration,
    /// [`STAT_EVERY`] (tests stretch it).
    stat_every: Duration,
}

#[derive(Debug, Clone)]
pub(super) enum Stamp {
    /// The file's identity, and when it was last `stat`ed.
    File(FileStamp, Instant),
    /// The storage's tag, and when the store was last asked about it.
    Tag(Tag, Instant),
}

impl DocCache {
    /// An empty cache with the freshness window `ttl`.
    pub(super) fn with_ttl(ttl: Duration) -> DocCache {
        DocCache {
            ttl,
            stat_every: STAT_EVERY,
            ..DocCache::default()
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<(Stamp, Arc<PackageDocument>)> {
        self.map.read().ok().and_then(|m| m.get(name).cloned())
    }

    /// Stores `doc` unless a write went through this server since
    /// `generation` was read.
    fn put(&self, name: &str, generation: u64, stamp: Stamp, doc: &Arc<PackageDocument>) {
        if let Ok(mut map) = self.map.write()
            && self.generation.load(Ordering::SeqCst) == generation
        {
            map.insert(name.to_owned(), (stamp, doc.clone()));
        }
    }

    /// After a write to `name` through this server.
    pub(super) fn forget(&self, name: &str) {
        if let Ok(mut map) = self.map.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            map.remove(name);
        }
    }
}

/// Archives of listed versions, by SHA-256, for storages without local
/// files: published bytes never change, and the document (revalidated as
/// above) decides which versions are listed, so a hit needs no store
/// request. Bytes are checked against the digest before they are kept.
/// Bounded to [`ARCHIVE_CACHE_BYTES`], oldest entries evicted first.
#[derive(Debug, Default)]
pub(super) struct ArchiveCache {
    inner: std::sync::Mutex<ArchiveEntries>,
}

#[derive(Debug, Default)]
pub(super) struct ArchiveEntries {
    bytes: usize,
    map: std::collections::HashMap<String, Bytes>,
    order: std::collections::VecDeque<String>,
}

/// Memory kept for archives a server ([`ArchiveCache`]).
pub(super) const ARCHIVE_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Larger archives are always read from the store.
pub(super) const ARCHIVE_CACHE_MAX_ONE: usize = 8 * 1024 * 1024;

impl ArchiveCache {
    pub(super) fn get(&self, checksum: &str) -> Option<Bytes> {
        self.inner.lock().ok().and_then(|c| c.map.get(checksum).cloned())
    }

    pub(super) fn put(&self, checksum: &str, bytes: &Bytes) {
        if bytes.len() > ARCHIVE_CACHE_MAX_ONE {
            return;
        }
        let Ok(mut c) = self.inner.lock() else { return };
        if c.map.contains_key(checksum) {
            return;
        }
        while c.bytes + bytes.len() > ARCHIVE_CACHE_BYTES {
            let Some(old) = c.order.pop_front() else { break };
            if let Some(b) = c.map.remove(&old) {
                c.bytes -= b.len();
            }
        }
        c.bytes += bytes.len();
        c.order.push_back(checksum.to_owned());
        c.map.insert(checksum.to_owned(), bytes.clone());
    }
}

/// How long a `stat` of a local document vouches for it (see [`DocCache`]):
/// a change made behind the server's back is seen by every request that
/// starts this long after it.
pub const STAT_EVERY: Duration = Duration::from_millis(1);

pub(super) type FileStamp = (u64, u64, Option<std::time::SystemTime>);

pub(super) fn file_stamp(meta: &std::fs::Metadata) -> FileStamp {
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let ino = 0;
    (ino, meta.len(), meta.modified().ok())
}

/// The stored document of `name`, or `None` (also for invalid names); from
/// [`DocCache`] when it is unchanged, or within the freshness window.
pub(super) fn load(state: &AppState, name: &str) -> ApiResult<Option<Arc<PackageDocument>>> {
    load_doc(state, name, true, None)
}

/// [`load`]; `may_be_stale: false` asks the store even within the
/// freshness window (before a write). `listed`: the tag a listing reported
/// for the document just now; when it is the cached copy's, the store need
/// not be asked.
pub(super) fn load_doc(
    state: &AppState,
    name: &str,
    may_be_stale: bool,
    listed: Option<&Tag>,
) -> ApiResult<Option<Arc<PackageDocument>>> {
    if crate::names::validate(name).is_err() {
        return Ok(None);
    }
    let generation = state.docs.generation.load(Ordering::SeqCst);
    let cached = state.docs.get(name);
    if may_be_stale
        && let Some((Stamp::File(_, checked), doc)) = &cached
        && checked.elapsed() < state.docs.stat_every
    {
        return Ok(Some(doc.clone()));
    }
    let key = crate::registry::document::index_key(name);
    // Taken before the `stat`: the window counts from here.
    let statted = Instant::now();
    let stamp = match state.storage.local_path(&key).map(std::fs::metadata) {
        Some(Ok(meta)) => {
            let stamp = file_stamp(&meta);
            if let Some((Stamp::File(s, _), doc)) = &cached
                && *s == stamp
            {
                state.docs.put(name, generation, Stamp::File(stamp, statted), doc);
                return Ok(Some(doc.clone()));
            }
            Some(stamp)
        }
        Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Some(Err(e)) => return Err(ApiError::internal(e)),
        None => {
            if let Some((Stamp::Tag(tag, checked), doc)) = &cached
                && ((may_be_stale && checked.elapsed() < state.docs.ttl) || listed == Some(tag))
            {
                return Ok(Some(doc.clone()));
            }
            None
        }
    };
    // Taken before the store is asked: the window counts from here.
    let asked = Instant::now();
    let storage = state.storage.as_ref();
    let Some((bytes, tag)) = storage.read(&key).map_err(|source| PublishError::Io {
        registry: storage.describe(),
        source,
    })?
    else {
        if let Ok(mut map) = state.docs.map.write() {
            map.remove(name);
        }
        return Ok(None);
    };
    let doc = match cached {
        // Same tag: the same bytes, already parsed.
        Some((Stamp::Tag(t, _), doc)) if stamp.is_none() && t == tag => doc,
        _ => Arc::new(publish::parse_document(storage, name, &bytes)?),
    };
    if doc.info.name != name {
        return Ok(None);
    }
    // A file stamp was taken before the read: if the file changed in
    // between, the next request sees a different stamp and re-reads.
    let stamp = stamp.map_or(Stamp::Tag(tag, asked), |s| Stamp::File(s, statted));
    state.docs.put(name, generation, stamp, &doc);
    Ok(Some(doc))
}

pub(super) fn load_or_404(state: &AppState, name: &str) -> ApiResult<Arc<PackageDocument>> {
    load(state, name)?.ok_or_else(|| ApiError::not_found(format!("Package '{name}' not found")))
}

/// Every stored document (one per package), sorted by name. One listing,
/// then only the documents that changed since this replica last parsed
/// them are read; from an object store, where each read is a round trip,
/// by [`REMOTE_READS`] threads at once.
pub(super) fn all_documents(state: &AppState) -> ApiResult<Vec<Arc<PackageDocument>>> {
    let keys = state.storage.list_tagged("index/").map_err(ApiError::internal)?;
    let load_all = |part: &[(String, Option<String>)]| -> ApiResult<Vec<Arc<PackageDocument>>> {
        let mut docs = Vec::with_capacity(part.len());
        for (key, tag) in part {
            if let Some(name) = key.strip_prefix("index/").and_then(|k| k.strip_suffix(".json"))
                && let Some(doc) = load_doc(state, name, true, tag.as_ref())?
            {
                docs.push(doc);
            }
        }
        Ok(docs)
    };
    let remote = keys.first().is_some_and(|(k, _)| state.storage.local_path(k).is_none());
    if !remote || keys.len() < 2 {
        return load_all(&keys);
    }
    let chunk = keys.len().div_ceil(REMOTE_READS);
    std::thread::scope(|scope| {
        let parts: Vec<_> = keys
            .chunks(chunk)
            .map(|part| scope.spawn(move || load_all(part)))
            .collect();
        let mut docs = Vec::with_capacity(keys.len());
        for part in parts {
            let part = part
                .join()
                .unwrap_or_else(|_| Err(ApiError::internal("a document reader panicked")))?;
            docs.extend(part);
        }
        Ok(docs)
    })
}

/// Documents read from an object store at once by [`all_documents`].
pub(super) const REMOTE_READS: usize = 16;

#[cfg(test)]
mod window_tests {
    use super::*;
    use crate::registry::document::{PackageInfo, index_key};
    use crate::registry::storage::{DirStorage, Storage};
    use crate::server::ServerConfig;

    fn document(description: &str) -> Vec<u8> {
        let doc = PackageDocument {
            info: PackageInfo {
                name: "a".to_owned(),
                version: "1.0.0".to_owned(),
                description: description.to_owned(),
                ..PackageInfo::default()
            },
            versions: Some(Vec::new()),
        };
        serde_json::to_vec(&doc).expect("json")
    }

    fn state(storage: &Arc<DirStorage>, stat_every: Duration) -> AppState {
        let config = ServerConfig::new(storage.clone(), "127.0.0.1:0");
        let mut state = AppState::new(&config, "127.0.0.1:0".parse().expect("addr"));
        state.docs = Arc::new(DocCache {
            stat_every,
            ..DocCache::default()
        });
        state
    }

    /// Replaces `index/a.json` as every writer does (by rename).
    fn replace(storage: &DirStorage, description: &str) {
        let (_, tag) = storage.read(&index_key("a")).expect("read").expect("present");
        assert!(
            storage
                .swap(&index_key("a"), Some(&tag), &document(description))
                .expect("swap")
        );
    }

    #[test]
    fn a_local_document_is_statted_at_most_once_a_window_and_always_before_a_write() {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = Arc::new(DirStorage::new(dir.path()));
        assert!(storage.create(&index_key("a"), &document("first")).expect("create"));

        // A window far longer than the test: the document is not statted
        // again within it, so a change behind the server's back waits.
        let state = state(&storage, Duration::from_secs(3600));
        let first = load(&state, "a").expect("load").expect("present");
        replace(&storage, "second");
        let again = load(&state, "a").expect("load").expect("present");
        assert!(Arc::ptr_eq(&first, &again), "served within the window without a stat");
        // A write asks the storage whatever the window says.
        let fresh = load_doc(&state, "a", false, None).expect("load").expect("present");
        assert_eq!(fresh.info.description, "second");

        // Past the window (here: none), the change shows on the next request.
        let state = self::state(&storage, Duration::ZERO);
        assert_eq!(
            load(&state, "a").expect("load").expect("present").info.description,
            "second"
        );
        replace(&storage, "third");
        assert_eq!(
            load(&state, "a").expect("load").expect("present").info.description,
            "third"
        );
        assert!(STAT_EVERY <= Duration::from_millis(1), "the documented window");
    }
}

#[cfg(all(test, feature = "cloud"))]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::registry::document::{PackageInfo, index_key};
    use crate::registry::object::ObjectStorage;
    use crate::registry::storage::Storage;
    use crate::server::ServerConfig;

    /// An object store that counts reads.
    #[derive(Debug)]
    struct Counting {
        inner: ObjectStorage,
        reads: AtomicUsize,
    }

    impl Storage for Counting {
        fn read(&self, key: &str) -> std::io::Result<Option<(Vec<u8>, Tag)>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.read(key)
        }
        fn create(&self, key: &str, bytes: &[u8]) -> std::io::Result<bool> {
            self.inner.create(key, bytes)
        }
        fn swap(&self, key: &str, expected: Option<&Tag>, bytes: &[u8]) -> std::io::Result<bool> {
            self.inner.swap(key, expected, bytes)
        }
        fn list(&self, prefix: &str) -> std::io::Result<Vec<String>> {
            self.inner.list(prefix)
        }
        fn list_tagged(&self, prefix: &str) -> std::io::Result<Vec<(String, Option<Tag>)>> {
            self.inner.list_tagged(prefix)
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
    }

    fn document(name: &str, description: &str) -> Vec<u8> {
        let doc = PackageDocument {
            info: PackageInfo {
                name: name.to_owned(),
                version: "1.0.0".to_owned(),
                description: description.to_owned(),
                ..PackageInfo::default()
            },
            versions: Some(Vec::new()),
        };
        serde_json::to_vec(&doc).expect("json")
    }

    #[test]
    fn listing_tags_spare_the_reads_of_unchanged_documents() {
        let store = Arc::new(object_store::memory::InMemory::new());
        let storage = Arc::new(Counting {
            inner: ObjectStorage::with_store(store, "reg", "memory://reg".into()),
            reads: AtomicUsize::new(0),
        });
        for i in 0..40 {
            let name = format!("pkg{i:02}");
            assert!(
                storage
                    .create(&index_key(&name), &document(&name, "first"))
                    .expect("create")
            );
        }
        let config = ServerConfig::new(storage.clone(), "127.0.0.1:0");
        let state = AppState::new(&config, "127.0.0.1:0".parse().expect("addr"));
        let reads = || storage.reads.swap(0, Ordering::SeqCst);
        reads();

        let docs = all_documents(&state).expect("first listing");
        assert_eq!(docs.len(), 40);
        assert_eq!(docs[7].info.name, "pkg07", "sorted by name");
        assert_eq!(reads(), 40, "every document read once");
        assert_eq!(all_documents(&state).expect("again").len(), 40);
        assert_eq!(reads(), 0, "nothing changed: the listing is enough");

        // Another replica changes one document: only that one is read.
        let (_, tag) = storage.read(&index_key("pkg13")).expect("read").expect("present");
        assert!(
            storage
                .swap(&index_key("pkg13"), Some(&tag), &document("pkg13", "second"))
                .expect("swap")
        );
        reads();
        let docs = all_documents(&state).expect("after a change");
        assert_eq!(reads(), 1);
        assert_eq!(docs[13].info.description, "second");
    }
}
