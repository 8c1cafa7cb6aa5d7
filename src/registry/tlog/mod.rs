//! The transparency log every registry keeps (SPEC §9): an append-only
//! Merkle log of publish, yank and un-yank records under `log/` in the
//! registry's own storage, laid out as C2SP tlog-tiles with a C2SP
//! checkpoint signed as a C2SP signed note (Ed25519).
//!
//! The log is part of the registry's layout, beside `index/` and
//! `packages/`, so it lives here, below [`publish`](super::publish) (which
//! appends to it) and above [`storage`](super::storage) (which holds it).
//! What a *client* proves with it (key pinning, inclusion of every locked
//! version, the remembered checkpoint) is [`crate::tlog`], one level up.
//!
//! - [`record`]: the record format (the leaves).
//! - [`layout`]: paths, entry bundles, tiles — pure functions of the records.
//! - [`key`]: log keys, signing and opening checkpoints.
//! - [`writer`]: appending without a coordinator, over the two writes a
//!   [`Storage`] offers (create-if-absent sequences a record; everything
//!   else is derived, so any writer completes what a killed one left).
//! - [`verify`]: re-deriving a whole log from its public files, consistency
//!   with an older checkpoint, inclusion proofs.
//! - [`proof`]: inclusion and consistency proofs over a [`Registry`](super::Registry)'s
//!   log files, tiles fetched in parallel.
//! - Backfilling a registry published before its log is
//!   [`backfill`](super::backfill), beside the publish path it replays.
//!
//! The Merkle maths is `tlog_tiles` (a port of Go's sumdb/tlog) and the
//! notes are `signed_note`; this module only decides what goes where.

pub mod key;
pub mod layout;
pub mod proof;
pub mod record;
pub mod verify;
pub mod writer;

use std::io;

pub use key::{LogKey, LogVerifier};
pub use record::{Action, Record};
pub use verify::{Verified, verify_log};
pub use writer::{Appender, init};

use crate::registry::storage::Storage;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TlogError {
    /// The registry has no log (`log/key` is absent).
    #[error("{registry} has no transparency log (no log/key)")]
    #[diagnostic(
        code(fm::tlog::none),
        help("create one with `fm registry log init --storage {registry} --key FILE`")
    )]
    NoLog { registry: String },
    /// A log key was given for a registry without a log.
    #[error("a log key was given, but {registry} has no transparency log")]
    #[diagnostic(
        code(fm::tlog::unlogged),
        help(
            "create the log first: `fm registry log init --storage {registry} --key FILE`, or publish without a log key"
        )
    )]
    Unlogged { registry: String },
    /// The registry has a log, but no key was given: publishing would
    /// leave a version out of it.
    #[error("{registry} keeps a transparency log, and no log key was given: refusing to publish unlogged")]
    #[diagnostic(
        code(fm::tlog::key_required),
        help("pass the log's private key: `--log-key FILE` (or FM_LOG_KEY=FILE); its public half is {vkey}")
    )]
    KeyRequired { registry: String, vkey: String },
    /// The given key is not the log's.
    #[error("the log key given is {given}, but {registry}'s log is signed by {expected}")]
    #[diagnostic(
        code(fm::tlog::wrong_key),
        help("pass the private key whose public half is in {registry}/log/key")
    )]
    WrongKey {
        registry: String,
        expected: String,
        given: String,
    },
    /// `init` on a registry that has a log with another key.
    #[error("{registry} already has a transparency log, signed by {vkey}")]
    #[diagnostic(code(fm::tlog::exists), help("a log's key is fixed for its lifetime; use that key"))]
    Exists { registry: String, vkey: String },
    /// A key file or verifier key does not parse.
    #[error("bad log key: {0}")]
    #[diagnostic(code(fm::tlog::bad_key))]
    BadKey(String),
    /// A log name (key name, checkpoint origin) is not acceptable.
    #[error("bad log name {0:?}: use printable ASCII without spaces or '+'")]
    #[diagnostic(code(fm::tlog::bad_origin))]
    BadOrigin(String),
    /// A checkpoint is malformed, unsigned, or signed by another key.
    #[error("bad checkpoint: {0}")]
    #[diagnostic(code(fm::tlog::bad_checkpoint))]
    BadCheckpoint(String),
    /// Signing failed.
    #[error("cannot sign the checkpoint: {0}")]
    #[diagnostic(code(fm::tlog::sign))]
    Sign(String),
    /// A log file is absent.
    #[error("{registry}: log/{path} is missing")]
    #[diagnostic(
        code(fm::tlog::missing),
        help(
            "a writer may have been killed mid-way: `fm registry log verify` on the storage, or the next publish, completes the log"
        )
    )]
    Missing { registry: String, path: String },
    /// A log file does not match what the records imply.
    #[error("{registry}: log/{path} is corrupt: {reason}")]
    #[diagnostic(code(fm::tlog::corrupt))]
    Corrupt {
        registry: String,
        path: String,
        reason: String,
    },
    /// The log does not extend an older checkpoint (a fork or a rollback).
    #[error("{registry}'s log is not consistent with the checkpoint {against}: {reason}")]
    #[diagnostic(
        code(fm::tlog::inconsistent),
        help("the registry served two different histories: keep both checkpoints as evidence")
    )]
    Inconsistent {
        registry: String,
        against: String,
        reason: String,
    },
    /// Reading or writing the storage failed.
    #[error("log storage error in {registry}: {source}")]
    #[diagnostic(code(fm::tlog::io))]
    Io {
        registry: String,
        #[source]
        source: io::Error,
    },
}

/// Where a log's public files are read from: a storage, a registry server
/// (`GET /api/v1/registry/log/{path}`) or a static host. Paths are
/// relative to `log/` (`checkpoint`, `key`, `tile/...`).
pub trait LogSource {
    /// The file's bytes, or `None` when it does not exist.
    fn get(&self, path: &str) -> io::Result<Option<Vec<u8>>>;
    /// For messages: the registry.
    fn describe(&self) -> String;
}

/// A [`Storage`] as a [`LogSource`].
pub struct StorageSource<'a>(pub &'a dyn Storage);

impl LogSource for StorageSource<'_> {
    fn get(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.0.read(&format!("{}{path}", layout::PREFIX))?.map(|(b, _)| b))
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// Whether a storage keeps a log (has `log/key`).
pub fn has_log(storage: &dyn Storage) -> Result<bool, TlogError> {
    Ok(StorageSource(storage)
        .get(layout::KEY)
        .map_err(|source| TlogError::Io {
            registry: storage.describe(),
            source,
        })?
        .is_some())
}

/// Adapts a [`LogSource`] to `tlog_tiles`' tile reader: fetched tiles must
/// have the width their path says (`TileHashReader` then authenticates
/// them against a tree hash).
pub(crate) struct SourceTiles<'a>(pub &'a dyn LogSource);

impl tlog_tiles::TileReader for SourceTiles<'_> {
    fn height(&self) -> u8 {
        layout::HEIGHT
    }
    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let path = layout::tile_path(t);
                let data = self
                    .0
                    .get(&path)
                    .map_err(|e| tlog_tiles::Error::InvalidInput(format!("log/{path}: {e}")))?
                    .ok_or_else(|| tlog_tiles::Error::InvalidInput(format!("log/{path} is missing")))?;
                if data.len() != t.width() as usize * tlog_tiles::HASH_SIZE {
                    return Err(tlog_tiles::Error::InvalidTile);
                }
                Ok(data)
            })
            .collect()
    }
    fn save_tiles(&self, _tiles: &[tlog_tiles::Tile], _data: &[Vec<u8>]) {}
}

#[cfg(test)]
mod tests;
