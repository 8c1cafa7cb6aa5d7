//! What a client proves with a registry's transparency log (SPEC §9): the
//! log's key pinned (fm.toml, the user config, or first use recorded in
//! fm.lock), every locked version's inclusion under a checkpoint signed by
//! that key, and every new checkpoint a consistent extension of the one
//! remembered for the log.
//!
//! - [`client`]: what `fm lock`, `fm sync` and `fm verify --log` prove.
//! - [`memory`]: the newest checkpoint seen per log, in the cache dir.
//!
//! The log itself — records, tiles, keys, the appender, proofs — is part of
//! the registry's layout and lives in [`crate::registry::tlog`]; it is
//! re-exported here so that `fm::tlog::LogKey` and friends name one thing.

pub mod client;
pub mod memory;

pub use crate::registry::backfill;
pub use crate::registry::tlog::*;
pub use crate::registry::tlog::{key, layout, proof, record, verify, writer};
