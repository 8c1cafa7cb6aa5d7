//! Reading a log as a client would, from its public files only
//! (`checkpoint`, `key`, `tile/...`): [`verify_log`] re-derives the whole
//! tree from the entry bundles and checks every tile and the signed root;
//! [`Verified::check_consistent`] proves an older checkpoint is a prefix;
//! [`prove_inclusion`] checks one record against a checkpoint with
//! `log₂ n` hashes (phase 2's `fm lock`/`fm sync` call these).

use tlog_tiles::{Checkpoint, RecordProof, Tile, TileHashReader, check_record, check_tree, prove_tree, tree_hash};

use super::key::LogVerifier;
use super::layout::{self, HEIGHT, Hashes, WIDTH};
use super::record::{Action, Record};
use super::{LogSource, SourceTiles, TlogError};
use crate::registry::document::VersionRecord;

/// A log that verified end to end.
pub struct Verified {
    pub registry: String,
    pub verifier: LogVerifier,
    pub checkpoint: Checkpoint,
    /// The signed checkpoint as served.
    pub note: Vec<u8>,
    /// Every record, by index.
    pub records: Vec<Record>,
    hashes: Hashes<'static>,
}

fn fetch(src: &dyn LogSource, path: &str) -> Result<Vec<u8>, TlogError> {
    src.get(path)
        .map_err(|source| TlogError::Io {
            registry: src.describe(),
            source,
        })?
        .ok_or_else(|| TlogError::Missing {
            registry: src.describe(),
            path: path.to_owned(),
        })
}

/// The log's verifier key as `src` publishes it (`log/key`).
pub fn published_verifier(src: &dyn LogSource) -> Result<LogVerifier, TlogError> {
    let bytes = match fetch(src, layout::KEY) {
        Err(TlogError::Missing { registry, .. }) => return Err(TlogError::NoLog { registry }),
        other => other?,
    };
    LogVerifier::parse(&String::from_utf8_lossy(&bytes))
}

/// The current checkpoint of `src`, verified with `verifier`; returns the
/// parsed checkpoint and the note's bytes.
pub fn checkpoint(src: &dyn LogSource, verifier: &LogVerifier) -> Result<(Checkpoint, Vec<u8>), TlogError> {
    let note = fetch(src, layout::CHECKPOINT)?;
    Ok((verifier.open_checkpoint(&note)?, note))
}

/// Re-derives the log of `src` from its entry bundles: every record
/// parses, every hash tile of the tree equals what the records imply, the
/// root equals the signed checkpoint's. `pinned`: the key to trust
/// (default: the one `src` publishes, trust on first use).
pub fn verify_log(src: &dyn LogSource, pinned: Option<&LogVerifier>) -> Result<Verified, TlogError> {
    let verifier = match pinned {
        Some(v) => v.clone(),
        None => published_verifier(src)?,
    };
    let (cp, note) = checkpoint(src, &verifier)?;
    let corrupt = |path: &str, reason: String| TlogError::Corrupt {
        registry: src.describe(),
        path: path.to_owned(),
        reason,
    };
    let size = cp.size();
    let mut hashes = Hashes::new(None);
    let mut records = Vec::new();
    for k in 0..size.div_ceil(WIDTH) {
        let tile = layout::bundle_tile(k, size);
        let path = layout::tile_path(&tile);
        let entries = layout::decode_bundle(&fetch(src, &path)?)
            .ok_or_else(|| corrupt(&path, "not a sequence of length-prefixed entries".into()))?;
        if entries.len() != tile.width() as usize {
            return Err(corrupt(
                &path,
                format!(
                    "holds {} entries, the checkpoint implies {}",
                    entries.len(),
                    tile.width()
                ),
            ));
        }
        for (i, e) in entries.iter().enumerate() {
            let n = k * WIDTH + i as u64;
            let record = Record::parse(e).map_err(|why| corrupt(&path, format!("entry {n}: {why}")))?;
            hashes.append(n, e).map_err(|why| corrupt(&path, why.to_string()))?;
            records.push(record);
        }
    }
    for t in Tile::new_tiles(HEIGHT, 0, size) {
        let path = layout::tile_path(&t);
        let expected = t.read_data(&hashes).map_err(|why| corrupt(&path, why.to_string()))?;
        if fetch(src, &path)? != expected {
            return Err(corrupt(
                &path,
                "its hashes differ from the ones the entries imply".into(),
            ));
        }
    }
    let root = tree_hash(size, &hashes).map_err(|why| corrupt("tile/", why.to_string()))?;
    if root != *cp.hash() {
        return Err(corrupt(
            layout::CHECKPOINT,
            format!("signs root {} but the entries hash to {root}", cp.hash()),
        ));
    }
    Ok(Verified {
        registry: src.describe(),
        verifier,
        checkpoint: cp,
        note,
        records,
        hashes,
    })
}

impl Verified {
    /// Proves that `older` (a signed checkpoint seen earlier, by anyone) is
    /// a prefix of this log: same key, not larger, and a consistency proof
    /// from it to the current root checks (RFC 6962 §2.1.2).
    pub fn check_consistent(&self, older: &[u8], against: &str) -> Result<u64, TlogError> {
        let inconsistent = |reason: String| TlogError::Inconsistent {
            registry: self.registry.clone(),
            against: against.to_owned(),
            reason,
        };
        let old = self.verifier.open_checkpoint(older)?;
        let (n, t) = (old.size(), self.checkpoint.size());
        if n > t {
            return Err(inconsistent(format!(
                "it has {n} records, the log now has only {t} (a rollback)"
            )));
        }
        let proof = prove_tree(t, n, &self.hashes).map_err(|e| inconsistent(e.to_string()))?;
        check_tree(&proof, t, *self.checkpoint.hash(), n, *old.hash()).map_err(|_| {
            inconsistent(format!(
                "its root for {n} records is {}, this log's first {n} records hash to another root (a fork)",
                old.hash()
            ))
        })?;
        Ok(n)
    }

    /// Every version listed in the package documents must appear at its
    /// `log_index` as a publish record of that name, version and sha256.
    /// Returns one line per problem (empty: all good).
    pub fn check_versions<'v>(&self, versions: impl IntoIterator<Item = (&'v str, &'v VersionRecord)>) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, v) in versions {
            let Some(index) = v.log_index else {
                problems.push(format!(
                    "{name}@{} has no log_index: it was published unlogged",
                    v.version
                ));
                continue;
            };
            match self.records.get(index as usize) {
                None => problems.push(format!(
                    "{name}@{} claims log index {index}, past the log's {} records",
                    v.version,
                    self.records.len()
                )),
                Some(r)
                    if r.action == Action::Publish
                        && r.name == name
                        && r.version == v.version
                        && r.sha256.eq_ignore_ascii_case(&v.checksum) => {}
                Some(r) => problems.push(format!(
                    "{name}@{} (sha256 {}) claims log index {index}, which records {r}",
                    v.version, v.checksum
                )),
            }
        }
        problems
    }
}

/// Checks that record `index` is in the tree of `cp` (already verified
/// with the log's key) using only the tiles on its path: returns the
/// record and its inclusion proof.
pub fn prove_inclusion(src: &dyn LogSource, cp: &Checkpoint, index: u64) -> Result<(Record, RecordProof), TlogError> {
    let corrupt = |path: &str, reason: String| TlogError::Corrupt {
        registry: src.describe(),
        path: path.to_owned(),
        reason,
    };
    if index >= cp.size() {
        return Err(corrupt(
            layout::CHECKPOINT,
            format!("index {index} is past the checkpoint's {} records", cp.size()),
        ));
    }
    let bundle = layout::bundle_tile(index / WIDTH, cp.size());
    let path = layout::tile_path(&bundle);
    let entries =
        layout::decode_bundle(&fetch(src, &path)?).ok_or_else(|| corrupt(&path, "not an entry bundle".into()))?;
    let entry = entries
        .get((index % WIDTH) as usize)
        .ok_or_else(|| corrupt(&path, format!("has no entry {index}")))?;
    let record = Record::parse(entry).map_err(|why| corrupt(&path, format!("entry {index}: {why}")))?;
    let tiles = SourceTiles(src);
    let reader = TileHashReader::new(cp.size(), *cp.hash(), &tiles);
    let proof = tlog_tiles::prove_record(cp.size(), index, &reader).map_err(|e| corrupt("tile/", e.to_string()))?;
    check_record(&proof, cp.size(), *cp.hash(), index, tlog_tiles::record_hash(entry))
        .map_err(|e| corrupt(&path, format!("entry {index} is not in the signed tree: {e}")))?;
    Ok((record, proof))
}
