//! Download counts: counted in memory, flushed in batches, one object per
//! replica.
//!
//! A download only bumps an in-memory counter. A background task adds the
//! pending counts to this server's own totals at
//! `stats/downloads/{replica}.json` every few seconds (and once more at
//! shutdown), then re-reads the other replicas' objects. No object is
//! written by two replicas, so many replicas over one bucket never contend
//! for a hot object and a download never waits for a write; totals are the
//! sum of every replica's object (plus the single-file
//! `stats/downloads.json` of older servers, read but no longer written).
//! The write is a compare-and-swap all the same, so two servers started
//! with the same replica id still add up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::registry::storage::Storage;

/// Where older servers kept the totals of every server (read only).
pub const LEGACY_KEY: &str = "stats/downloads.json";
/// The folder of per-replica totals.
pub const DIR: &str = "stats/downloads/";

/// The object holding `replica`'s totals.
pub fn replica_key(replica: &str) -> String {
    format!("{DIR}{replica}.json")
}

/// A fresh replica id: 16 hex digits, random enough that replicas started
/// at the same moment on different hosts differ.
pub fn new_replica_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    format!("{:016x}", h.finish())
}

/// Persisted totals plus pending increments.
#[derive(Debug)]
pub struct Downloads {
    key: String,
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// This replica's totals, as last read from or written to storage.
    mine: BTreeMap<String, u64>,
    /// The sum of every other replica's totals, as last read.
    others: BTreeMap<String, u64>,
    /// Not flushed yet.
    pending: BTreeMap<String, u64>,
    /// The sums of `mine` and `others`, kept so that [`Downloads::total`]
    /// (in `stats`) is O(1).
    stored_total: u64,
    /// The sum of `pending`.
    pending_total: u64,
}

impl Counts {
    fn resum(&mut self) {
        self.stored_total = [&self.mine, &self.others].iter().flat_map(|m| m.values()).sum();
        self.pending_total = self.pending.values().sum();
    }
}

fn parse(bytes: &[u8]) -> BTreeMap<String, u64> {
    serde_json::from_slice(bytes).unwrap_or_default()
}

impl Downloads {
    /// Loads the stored totals of every replica (missing or unreadable:
    /// zero) for the server with replica id `replica`.
    pub fn load(storage: &dyn Storage, replica: &str) -> Downloads {
        let d = Downloads {
            key: replica_key(replica),
            inner: Mutex::default(),
        };
        if let Ok(Some((bytes, _))) = storage.read(&d.key)
            && let Ok(mut c) = d.inner.lock()
        {
            c.mine = parse(&bytes);
            c.resum();
        }
        let _ = d.refresh_others(storage);
        d
    }

    /// Counts one download of `package`.
    pub fn record(&self, package: &str) {
        if let Ok(mut c) = self.inner.lock() {
            *c.pending.entry(package.to_owned()).or_default() += 1;
            c.pending_total += 1;
        }
    }

    /// Total downloads of `package`.
    pub fn get(&self, package: &str) -> u64 {
        self.inner.lock().map_or(0, |c| {
            [&c.mine, &c.others, &c.pending]
                .iter()
                .map(|m| m.get(package).copied().unwrap_or(0))
                .sum()
        })
    }

    /// Total downloads of every package, in O(1).
    pub fn total(&self) -> u64 {
        self.inner.lock().map_or(0, |c| c.stored_total + c.pending_total)
    }

    /// Re-reads the other replicas' totals.
    fn refresh_others(&self, storage: &dyn Storage) -> std::io::Result<()> {
        let mut others = BTreeMap::new();
        let keys = storage.list(DIR)?.into_iter().chain([LEGACY_KEY.to_owned()]);
        for key in keys.filter(|k| *k != self.key) {
            if let Some((bytes, _)) = storage.read(&key)? {
                for (name, n) in parse(&bytes) {
                    *others.entry(name).or_default() += n;
                }
            }
        }
        if let Ok(mut c) = self.inner.lock() {
            c.others = others;
            c.resum();
        }
        Ok(())
    }

    /// Adds pending counts to this replica's object and picks up the
    /// others'. On failure the counts stay pending for the next flush.
    pub fn flush(&self, storage: &dyn Storage) -> std::io::Result<()> {
        // The pending counts stay visible until the flushed totals replace
        // them, in one step under the lock: a reader never sees a count
        // drop while a flush is in flight.
        let pending = match self.inner.lock() {
            Ok(c) => c.pending.clone(),
            Err(_) => return Ok(()),
        };
        if !pending.is_empty() {
            let totals = loop {
                let (mut totals, tag) = match storage.read(&self.key)? {
                    Some((bytes, tag)) => (parse(&bytes), Some(tag)),
                    None => (BTreeMap::new(), None),
                };
                for (name, n) in &pending {
                    *totals.entry(name.clone()).or_default() += n;
                }
                let mut bytes = serde_json::to_vec_pretty(&totals).unwrap_or_default();
                bytes.push(b'\n');
                if storage.swap(&self.key, tag.as_ref(), &bytes)? {
                    break totals;
                }
            };
            let Ok(mut c) = self.inner.lock() else {
                return Ok(());
            };
            // Counts recorded during the flush stay pending.
            for (name, n) in &pending {
                if let Some(left) = c.pending.get_mut(name) {
                    *left = left.saturating_sub(*n);
                    if *left == 0 {
                        c.pending.remove(name);
                    }
                }
            }
            c.mine = totals;
            c.resum();
        }
        self.refresh_others(storage)
    }
}

/// Flushes `downloads` every `every` until the returned handle is aborted.
pub fn spawn_flusher(
    downloads: Arc<Downloads>,
    storage: Arc<dyn Storage>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let (d, s) = (downloads.clone(), storage.clone());
            match tokio::task::spawn_blocking(move || d.flush(s.as_ref())).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("warning: cannot save download counts: {e}"),
                Err(e) => eprintln!("warning: download count flush failed: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::storage::{DirStorage, Tag};

    #[test]
    fn two_servers_on_one_storage_add_up() {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = DirStorage::new(dir.path());
        let (a, b) = (Downloads::load(&storage, "a"), Downloads::load(&storage, "b"));
        a.record("x");
        a.record("x");
        b.record("x");
        b.record("y");
        a.flush(&storage).expect("flush a");
        b.flush(&storage).expect("flush b");
        assert_eq!((b.get("x"), b.get("y"), b.total()), (3, 1, 4));
        a.flush(&storage).expect("refresh a");
        assert_eq!(a.get("x"), 3);
        let c = Downloads::load(&storage, "c");
        assert_eq!((c.get("x"), c.get("y"), c.get("z")), (3, 1, 0));
        // Each replica wrote only its own object.
        assert_eq!(
            storage.list(DIR).expect("list"),
            ["stats/downloads/a.json", "stats/downloads/b.json"]
        );
        // A restart with the same id continues its own totals.
        let a2 = Downloads::load(&storage, "a");
        a2.record("y");
        a2.flush(&storage).expect("flush a2");
        assert_eq!((a2.get("x"), a2.get("y")), (3, 2));
        let a_obj: BTreeMap<String, u64> = parse(&storage.read(&replica_key("a")).expect("read").expect("a").0);
        assert_eq!(a_obj.get("y"), Some(&1));
    }

    /// A storage whose document write first reads the counts back through
    /// the server, as a request served during a flush would.
    #[derive(Debug)]
    struct ReadDuringSwap<'a> {
        inner: DirStorage,
        downloads: &'a std::sync::OnceLock<&'a Downloads>,
        seen: std::sync::Mutex<Vec<u64>>,
    }

    impl Storage for ReadDuringSwap<'_> {
        fn read(&self, key: &str) -> std::io::Result<Option<(Vec<u8>, Tag)>> {
            self.inner.read(key)
        }
        fn create(&self, key: &str, bytes: &[u8]) -> std::io::Result<bool> {
            self.inner.create(key, bytes)
        }
        fn swap(&self, key: &str, expected: Option<&Tag>, bytes: &[u8]) -> std::io::Result<bool> {
            if let Some(d) = self.downloads.get() {
                self.seen.lock().expect("lock").push(d.get("x"));
                // A download recorded while the flush is in flight.
                d.record("x");
            }
            self.inner.swap(key, expected, bytes)
        }
        fn list(&self, prefix: &str) -> std::io::Result<Vec<String>> {
            self.inner.list(prefix)
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
    }

    // Regression: a flush took the pending counts out before writing and
    // put the written totals in only afterwards, so a request served in
    // between saw the package's downloads drop to 0.
    #[test]
    fn counts_never_drop_while_a_flush_is_in_flight() {
        let dir = tempfile::tempdir().expect("tmp");
        let cell = std::sync::OnceLock::new();
        let storage = ReadDuringSwap {
            inner: DirStorage::new(dir.path()),
            downloads: &cell,
            seen: std::sync::Mutex::new(Vec::new()),
        };
        let d = Downloads::load(&storage, "a");
        d.record("x");
        d.record("x");
        let _ = cell.set(&d);
        d.flush(&storage).expect("flush");
        assert_eq!(*storage.seen.lock().expect("lock"), [2], "count seen during the flush");
        // The download recorded during the flush is neither lost nor counted twice.
        assert_eq!(d.get("x"), 3);
        d.flush(&storage).expect("flush again");
        assert_eq!(d.get("x"), 4, "3 flushed + 1 recorded during the second flush");
        assert_eq!(
            Downloads::load(&storage.inner, "b").get("x"),
            3,
            "storage holds what was flushed; the rest is pending"
        );
    }
}
