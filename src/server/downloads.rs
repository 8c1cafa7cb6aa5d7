//! Download counts: counted in memory, flushed in batches.
//!
//! A download only bumps an in-memory counter; a background task merges the
//! pending counts into `stats/downloads.json` every few seconds (and once
//! more at shutdown) with the storage's compare-and-swap, so counts survive
//! a restart, several servers on one storage add up (each picks up the
//! others' totals at its next flush), and a download never waits for a
//! contended write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::registry::storage::Storage;

/// Where the totals live in storage.
pub const KEY: &str = "stats/downloads.json";

/// Persisted totals plus pending increments.
#[derive(Debug, Default)]
pub struct Downloads {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// As last read from or written to storage.
    stored: BTreeMap<String, u64>,
    /// Not flushed yet.
    pending: BTreeMap<String, u64>,
}

impl Downloads {
    /// Loads the stored totals (missing or unreadable: start from zero).
    pub fn load(storage: &dyn Storage) -> Downloads {
        let stored = storage
            .read(KEY)
            .ok()
            .flatten()
            .and_then(|(bytes, _)| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Downloads {
            inner: Mutex::new(Counts {
                stored,
                pending: BTreeMap::new(),
            }),
        }
    }

    /// Counts one download of `package`.
    pub fn record(&self, package: &str) {
        if let Ok(mut c) = self.inner.lock() {
            *c.pending.entry(package.to_owned()).or_default() += 1;
        }
    }

    /// Total downloads of `package`.
    pub fn get(&self, package: &str) -> u64 {
        self.inner.lock().map_or(0, |c| {
            c.stored.get(package).copied().unwrap_or(0) + c.pending.get(package).copied().unwrap_or(0)
        })
    }

    /// Total downloads of every package.
    pub fn total(&self) -> u64 {
        self.inner
            .lock()
            .map_or(0, |c| c.stored.values().sum::<u64>() + c.pending.values().sum::<u64>())
    }

    /// Merges pending counts into storage. On failure the counts stay
    /// pending for the next flush.
    pub fn flush(&self, storage: &dyn Storage) -> std::io::Result<()> {
        let pending = match self.inner.lock() {
            Ok(mut c) => std::mem::take(&mut c.pending),
            Err(_) => return Ok(()),
        };
        if pending.is_empty() {
            // Nothing to add; pick up what other servers on this storage
            // counted.
            if let Some((bytes, _)) = storage.read(KEY)?
                && let Ok(totals) = serde_json::from_slice(&bytes)
                && let Ok(mut c) = self.inner.lock()
            {
                c.stored = totals;
            }
            return Ok(());
        }
        let result = (|| loop {
            let current = storage.read(KEY)?;
            let (mut totals, tag): (BTreeMap<String, u64>, _) = match current {
                Some((bytes, tag)) => (serde_json::from_slice(&bytes).unwrap_or_default(), Some(tag)),
                None => (BTreeMap::new(), None),
            };
            for (name, n) in &pending {
                *totals.entry(name.clone()).or_default() += n;
            }
            let mut bytes = serde_json::to_vec_pretty(&totals).unwrap_or_default();
            bytes.push(b'\n');
            if storage.swap(KEY, tag.as_ref(), &bytes)? {
                return Ok(totals);
            }
        })();
        let Ok(mut c) = self.inner.lock() else {
            return Ok(());
        };
        match result {
            Ok(totals) => {
                c.stored = totals;
                Ok(())
            }
            Err(e) => {
                for (name, n) in pending {
                    *c.pending.entry(name).or_default() += n;
                }
                Err(e)
            }
        }
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
    use crate::registry::storage::DirStorage;

    #[test]
    fn two_servers_on_one_storage_add_up() {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = DirStorage::new(dir.path());
        let (a, b) = (Downloads::load(&storage), Downloads::load(&storage));
        a.record("x");
        a.record("x");
        b.record("x");
        b.record("y");
        a.flush(&storage).expect("flush a");
        b.flush(&storage).expect("flush b");
        assert_eq!((b.get("x"), b.get("y"), b.total()), (3, 1, 4));
        a.flush(&storage).expect("refresh a");
        assert_eq!(a.get("x"), 3);
        let c = Downloads::load(&storage);
        assert_eq!((c.get("x"), c.get("y"), c.get("z")), (3, 1, 0));
    }
}
