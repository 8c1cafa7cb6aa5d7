//! Proofs from a registry's public log files, fetched in parallel: only
//! the tiles on the proofs' paths are read, each once.
//!
//! `tlog_tiles` computes a proof synchronously from a [`TileReader`]. A
//! [`Tiles`] store answers from what it holds and notes what it lacks; the
//! caller runs every proof it needs, fetches all the missing tiles at once
//! ([`Tiles::fetch_missing`]), and runs them again, until none is missing
//! (a few rounds: the tiles of a proof are known from its indexes). Every
//! hash tile is authenticated by `TileHashReader` against the signed root,
//! so a store holding a forged tile makes the proof fail, never pass.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use futures_util::StreamExt;
use tlog_tiles::{Checkpoint, Tile, TileHashReader, TileReader};

use super::layout::{self, HEIGHT, WIDTH};
use crate::registry::{Registry, RegistryError};

/// Rounds of fetching before a proof that still lacks tiles gives up.
const ROUNDS: usize = 8;

/// A file's path and bytes (`None`: the registry does not have it).
type Fetched = (String, Option<Vec<u8>>);

/// Log files by path (relative to `log/`), and the ones asked for but absent.
#[derive(Default)]
pub struct Tiles {
    files: Mutex<HashMap<String, Option<Vec<u8>>>>,
    missing: Mutex<BTreeSet<String>>,
    /// Requests made, and rounds of them.
    pub requests: std::sync::atomic::AtomicUsize,
    pub rounds: std::sync::atomic::AtomicUsize,
}

/// A proof could not be computed from the files at hand.
pub enum Needs<T> {
    Done(T),
    /// Files still to fetch (the store noted them).
    More,
}

impl Tiles {
    /// The file at `path` if fetched; notes it as missing otherwise.
    /// `Some(None)`: fetched, and the registry does not have it.
    pub fn get(&self, path: &str) -> Option<Option<Vec<u8>>> {
        let files = self.files.lock().ok()?;
        match files.get(path) {
            Some(f) => Some(f.clone()),
            None => {
                drop(files);
                if let Ok(mut m) = self.missing.lock() {
                    m.insert(path.to_owned());
                }
                None
            }
        }
    }

    /// Whether a computation left files to fetch.
    pub fn has_missing(&self) -> bool {
        self.missing.lock().is_ok_and(|m| !m.is_empty())
    }

    /// Fetches every file noted as missing, as many at a time as the HTTP
    /// client lets wait for answers (`FM_CONCURRENT_DOWNLOADS`, default 128):
    /// a cold lock of hundreds of packages pays a few round trips.
    pub async fn fetch_missing(&self, registry: &dyn Registry) -> Result<usize, RegistryError> {
        let paths: Vec<String> = match self.missing.lock() {
            Ok(mut m) => std::mem::take(&mut *m).into_iter().collect(),
            Err(_) => Vec::new(),
        };
        let n = paths.len();
        self.requests.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.rounds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fetched: Vec<Result<Fetched, RegistryError>> = futures_util::stream::iter(paths)
            .map(|p| async move { registry.log_file(&p).await.map(|b| (p, b)) })
            .buffer_unordered(crate::registry::transport::concurrency())
            .collect()
            .await;
        let mut files = self.files.lock().map_err(|_| RegistryError::Unsupported {
            registry: registry.name().to_owned(),
            reason: "the tile store was poisoned".into(),
        })?;
        for f in fetched {
            let (p, b) = f?;
            files.insert(p, b);
        }
        Ok(n)
    }

    /// Runs `compute` until it no longer lacks files (fetching them
    /// between rounds) and returns its answer.
    pub async fn run<T, E>(
        &self,
        registry: &dyn Registry,
        compute: impl Fn(&Tiles) -> Result<Needs<T>, E>,
        fetch_err: impl Fn(RegistryError) -> E,
        exhausted: impl Fn() -> E,
    ) -> Result<T, E> {
        for _ in 0..ROUNDS {
            match compute(self)? {
                Needs::Done(t) => return Ok(t),
                Needs::More => {
                    if !self.has_missing() {
                        return Err(exhausted());
                    }
                    self.fetch_missing(registry).await.map_err(&fetch_err)?;
                }
            }
        }
        Err(exhausted())
    }
}

/// [`Tiles`] as `tlog_tiles`' tile reader (hash tiles of height 8, each
/// of the width its path says).
pub struct Reader<'a>(pub &'a Tiles);

/// The error a [`Reader`] returns for a tile it does not hold yet.
const NOT_YET: &str = "fm: tile not fetched yet";

impl TileReader for Reader<'_> {
    fn height(&self) -> u8 {
        HEIGHT
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        // Note every absent tile in one pass, so one round fetches them all.
        let got: Vec<_> = tiles.iter().map(|t| (t, self.0.get(&layout::tile_path(t)))).collect();
        let mut out = Vec::with_capacity(tiles.len());
        for (t, g) in got {
            match g {
                None => return Err(tlog_tiles::Error::InvalidInput(NOT_YET.into())),
                Some(None) => {
                    return Err(tlog_tiles::Error::InvalidInput(format!(
                        "log/{} is missing",
                        layout::tile_path(t)
                    )));
                }
                Some(Some(data)) if data.len() != t.width() as usize * tlog_tiles::HASH_SIZE => {
                    return Err(tlog_tiles::Error::InvalidTile);
                }
                Some(Some(data)) => out.push(data),
            }
        }
        Ok(out)
    }
    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// Whether `e` only says a tile is still to be fetched.
pub fn not_yet(e: &tlog_tiles::Error) -> bool {
    matches!(e, tlog_tiles::Error::InvalidInput(m) if m == NOT_YET)
}

/// The path of the entry bundle holding record `index` in a tree of `size`.
pub fn bundle_path(index: u64, size: u64) -> String {
    layout::tile_path(&layout::bundle_tile(index / WIDTH, size))
}

/// Why a record could not be proved.
pub enum ProofFailure {
    /// The bundle is absent or does not hold the entry.
    NoEntry(String),
    /// The entry is there, but not under the signed root.
    NotIncluded(String),
}

/// Record `index`'s bytes from its bundle, and whether they are in the
/// tree `cp` signs.
pub fn prove(tiles: &Tiles, cp: &Checkpoint, index: u64) -> Result<Needs<Vec<u8>>, ProofFailure> {
    // The proof's tiles and the bundle are noted in one pass, so one round
    // of requests fetches both.
    let path = bundle_path(index, cp.size());
    let bundle = tiles.get(&path);
    let reader = Reader(tiles);
    let hashes = TileHashReader::new(cp.size(), *cp.hash(), &reader);
    let proof = match tlog_tiles::prove_record(cp.size(), index, &hashes) {
        Ok(p) => p,
        Err(e) if not_yet(&e) => return Ok(Needs::More),
        Err(e) => return Err(ProofFailure::NotIncluded(e.to_string())),
    };
    let Some(bundle) = bundle else {
        return Ok(Needs::More);
    };
    let bundle = bundle.ok_or_else(|| ProofFailure::NoEntry(format!("log/{path} is missing")))?;
    let entries = layout::decode_bundle(&bundle)
        .ok_or_else(|| ProofFailure::NoEntry(format!("log/{path} is not an entry bundle")))?;
    let entry = entries
        .get((index % WIDTH) as usize)
        .ok_or_else(|| ProofFailure::NoEntry(format!("log/{path} has no entry {index}")))?
        .clone();
    tlog_tiles::check_record(&proof, cp.size(), *cp.hash(), index, tlog_tiles::record_hash(&entry))
        .map_err(|e| ProofFailure::NotIncluded(format!("the entry does not hash into the signed root: {e}")))?;
    Ok(Needs::Done(entry))
}

/// Whether `old` (size, root) is a prefix of the tree `new` signs: a
/// consistency proof from the tiles. `Err(reason)`: it is not.
pub fn consistent(tiles: &Tiles, old: &Checkpoint, new: &Checkpoint) -> Result<Needs<()>, String> {
    let (n, t) = (old.size(), new.size());
    if n == 0 {
        return Ok(Needs::Done(()));
    }
    let reader = Reader(tiles);
    let hashes = TileHashReader::new(t, *new.hash(), &reader);
    let proof = match tlog_tiles::prove_tree(t, n, &hashes) {
        Ok(p) => p,
        Err(e) if not_yet(&e) => return Ok(Needs::More),
        Err(e) => return Err(e.to_string()),
    };
    tlog_tiles::check_tree(&proof, t, *new.hash(), n, *old.hash()).map_err(|_| {
        format!(
            "its first {n} records hash to another root than the remembered {}",
            old.hash()
        )
    })?;
    Ok(Needs::Done(()))
}
