//! Appending to a log with no coordinator: several `fm registry serve`
//! replicas over one bucket and `fm publish` processes on one folder may
//! append at once, using only [`Storage::create`] (create-if-absent) and
//! [`Storage::swap`] (compare-and-swap).
//!
//! 1. **Sequencing.** Record `n` is the object `log/seq/{n}`. A writer
//!    reads the checkpoint's size `s` and creates `log/seq/{s}`; if that is
//!    taken, `s+1`, and so on. Create-if-absent gives each index exactly one
//!    record: one order, no gap (index `n` is tried only after `n-1` was
//!    seen taken), no fork.
//! 2. **Catching up.** Tiles, entry bundles and the checkpoint are pure
//!    functions of `log/seq/0..N` and the key (Ed25519 signs
//!    deterministically). After its own create a writer derives them for
//!    every contiguous seq object past the checkpoint and writes each with
//!    create-if-absent: "exists with the same bytes" is success, "exists
//!    with other bytes" is corruption. The old part of the tree is read
//!    from published tiles authenticated against the checkpoint's root.
//! 3. **Checkpoint.** Moved forward by compare-and-swap, only to a larger
//!    size (monotone): on conflict re-read; if the stored one is already as
//!    large, done.
//!
//! A writer killed anywhere leaves a log that the next writer (or
//! [`Appender::catch_up`], run by `fm registry log verify` on a storage and
//! at server start) completes. Records past the checkpoint are not yet
//! "in" the log for a client; they are once a checkpoint covers them.

use tlog_tiles::{EMPTY_HASH, Tile, TileHashReader, tree_hash};

use super::key::{LogKey, LogVerifier};
use super::layout::{self, HEIGHT, Hashes, WIDTH, seq_key};
use super::record::Record;
use super::{LogSource, SourceTiles, StorageSource, TlogError};
use crate::registry::storage::{Storage, Tag};

/// Appends to one storage's log with its key.
#[derive(Debug)]
pub struct Appender<'a> {
    storage: &'a dyn Storage,
    key: &'a LogKey,
}

fn key_path() -> String {
    format!("{}{}", layout::PREFIX, layout::KEY)
}
fn checkpoint_path() -> String {
    format!("{}{}", layout::PREFIX, layout::CHECKPOINT)
}

fn io(storage: &dyn Storage) -> impl Fn(std::io::Error) -> TlogError + '_ {
    move |source| TlogError::Io {
        registry: storage.describe(),
        source,
    }
}

/// Creates a log in `storage` signed by `key`: `log/key` and an empty
/// checkpoint. Running it again with the same key is harmless (it only
/// completes what is missing); with another key it is refused.
pub fn init(storage: &dyn Storage, key: &LogKey) -> Result<(), TlogError> {
    let vkey = format!("{}\n", key.verifier().vkey());
    if !storage.create(&key_path(), vkey.as_bytes()).map_err(io(storage))? {
        let stored = stored_verifier(storage)?;
        if stored.vkey() != key.verifier().vkey() {
            return Err(TlogError::Exists {
                registry: storage.describe(),
                vkey: stored.vkey().to_owned(),
            });
        }
    }
    let empty = key.sign_checkpoint(0, EMPTY_HASH)?;
    // Absent → the empty tree; present → leave it alone.
    storage.swap(&checkpoint_path(), None, &empty).map_err(io(storage))?;
    Ok(())
}

fn stored_verifier(storage: &dyn Storage) -> Result<LogVerifier, TlogError> {
    let bytes = StorageSource(storage)
        .get(layout::KEY)
        .map_err(io(storage))?
        .ok_or_else(|| TlogError::NoLog {
            registry: storage.describe(),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| TlogError::BadKey("log/key is not UTF-8".into()))?;
    LogVerifier::parse(&text)
}

impl<'a> Appender<'a> {
    /// What a publish or yank on `storage` must do about the log, given the
    /// key it was handed (if any):
    /// - no `log/key`, no key: `Ok(None)`, publish as before;
    /// - `log/key` and the matching key: `Ok(Some(appender))`;
    /// - `log/key` without a key, or with another key: refused — a logged
    ///   registry never gets an unlogged version;
    /// - a key but no log: refused (the key was meant for a log).
    pub fn for_storage(storage: &'a dyn Storage, key: Option<&'a LogKey>) -> Result<Option<Appender<'a>>, TlogError> {
        let logged = super::has_log(storage)?;
        match (logged, key) {
            (false, None) => Ok(None),
            (false, Some(_)) => Err(TlogError::Unlogged {
                registry: storage.describe(),
            }),
            (true, None) => Err(TlogError::KeyRequired {
                registry: storage.describe(),
                vkey: stored_verifier(storage)?.vkey().to_owned(),
            }),
            (true, Some(key)) => {
                let stored = stored_verifier(storage)?;
                if stored.vkey() != key.verifier().vkey() {
                    return Err(TlogError::WrongKey {
                        registry: storage.describe(),
                        expected: stored.vkey().to_owned(),
                        given: key.verifier().vkey().to_owned(),
                    });
                }
                Ok(Some(Appender { storage, key }))
            }
        }
    }

    /// The storage this appender writes to.
    pub fn storage(&self) -> &'a dyn Storage {
        self.storage
    }

    fn checkpoint(&self) -> Result<(tlog_tiles::Checkpoint, Tag), TlogError> {
        let (bytes, tag) = self
            .storage
            .read(&checkpoint_path())
            .map_err(io(self.storage))?
            .ok_or_else(|| TlogError::Missing {
                registry: self.storage.describe(),
                path: layout::CHECKPOINT.into(),
            })?;
        Ok((self.key.verifier().open_checkpoint(&bytes)?, tag))
    }

    /// Appends `record`; returns its index. The checkpoint covers it when
    /// this returns.
    pub fn append(&self, record: &Record) -> Result<u64, TlogError> {
        let bytes = record.to_bytes();
        let (cp, _) = self.checkpoint()?;
        let mut n = cp.size();
        while !self.storage.create(&seq_key(n), &bytes).map_err(io(self.storage))? {
            n += 1;
        }
        let size = self.catch_up()?;
        debug_assert!(size > n);
        Ok(n)
    }

    /// Derives tiles, bundles and a checkpoint for every record sequenced
    /// past the checkpoint. Returns the checkpoint's size afterwards.
    pub fn catch_up(&self) -> Result<u64, TlogError> {
        let (cp, _) = self.checkpoint()?;
        let old = cp.size();
        let mut new: Vec<Vec<u8>> = Vec::new();
        while let Some((bytes, _)) = self
            .storage
            .read(&seq_key(old + new.len() as u64))
            .map_err(io(self.storage))?
        {
            let n = old + new.len() as u64;
            // Never sign what is not a record.
            Record::parse(&bytes).map_err(|e| self.corrupt(&seq_key(n), e.to_string()))?;
            new.push(bytes);
        }
        if new.is_empty() {
            return Ok(old);
        }
        let size = old + new.len() as u64;

        let source = StorageSource(self.storage);
        let tiles = SourceTiles(&source);
        let published = TileHashReader::new(old, *cp.hash(), &tiles);
        let mut hashes = Hashes::new((old > 0).then_some(&published as &dyn tlog_tiles::HashReader));
        for (i, r) in new.iter().enumerate() {
            hashes
                .append(old + i as u64, r)
                .map_err(|e| self.corrupt("tile/", format!("the published tiles do not match the checkpoint: {e}")))?;
        }
        for t in Tile::new_tiles(HEIGHT, old, size) {
            let data = t
                .read_data(&hashes)
                .map_err(|e| self.corrupt(&layout::tile_path(&t), e.to_string()))?;
            self.put_immutable(&layout::tile_path(&t), &data)?;
        }
        for k in old / WIDTH..=(size - 1) / WIDTH {
            let tile = layout::bundle_tile(k, size);
            let mut entries = Vec::new();
            for n in k * WIDTH..k * WIDTH + u64::from(tile.width()) {
                if n >= old {
                    entries.push(new[(n - old) as usize].clone());
                } else {
                    let (b, _) = self
                        .storage
                        .read(&seq_key(n))
                        .map_err(io(self.storage))?
                        .ok_or_else(|| TlogError::Missing {
                            registry: self.storage.describe(),
                            path: seq_key(n).trim_start_matches(layout::PREFIX).to_owned(),
                        })?;
                    entries.push(b);
                }
            }
            let bundle = layout::encode_bundle(entries.iter().map(Vec::as_slice));
            self.put_immutable(&layout::tile_path(&tile), &bundle)?;
        }
        let root = tree_hash(size, &hashes).map_err(|e| self.corrupt("tile/", e.to_string()))?;
        let note = self.key.sign_checkpoint(size, root)?;
        loop {
            let (current, tag) = self.checkpoint()?;
            if current.size() >= size {
                return Ok(current.size());
            }
            if self
                .storage
                .swap(&checkpoint_path(), Some(&tag), &note)
                .map_err(io(self.storage))?
            {
                return Ok(size);
            }
        }
    }

    /// Writes a derived file: create-if-absent; the same bytes already
    /// there are success, other bytes are corruption.
    fn put_immutable(&self, path: &str, bytes: &[u8]) -> Result<(), TlogError> {
        let key = format!("{}{path}", layout::PREFIX);
        if self.storage.create(&key, bytes).map_err(io(self.storage))? {
            return Ok(());
        }
        match self.storage.read(&key).map_err(io(self.storage))? {
            Some((existing, _)) if existing == bytes => Ok(()),
            _ => Err(self.corrupt(path, "holds other bytes than the records imply".into())),
        }
    }

    fn corrupt(&self, path: &str, reason: String) -> TlogError {
        TlogError::Corrupt {
            registry: self.storage.describe(),
            path: path.trim_start_matches(layout::PREFIX).to_owned(),
            reason,
        }
    }
}
