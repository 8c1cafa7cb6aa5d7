//! The C2SP tlog-tiles layout under `log/`, and the pure functions that
//! derive every tile from the records.
//!
//! - `log/checkpoint`: the signed checkpoint (C2SP tlog-checkpoint as a
//!   C2SP signed note).
//! - `log/key`: the verifier key, `name+hash+base64` (C2SP signed-note).
//! - `log/tile/{L}/{N}[.p/{W}]`: hash tiles of height 8.
//! - `log/tile/entries/{N}[.p/{W}]`: entry bundles (each record prefixed
//!   by its length as a big-endian `u16`).
//! - `log/seq/{N}`: record `N`, the writers' sequencing object (see
//!   [`super::writer`]). `N` uses the same `x123/456` groups as tiles, so
//!   no folder holds more than ~2000 names.
//!
//! Tiles are computed with `tlog_tiles` (a port of Go's sumdb/tlog); this
//! module only maps its tiles to C2SP paths and back.

use std::collections::HashMap;

use tlog_tiles::{Hash, HashReader, Tile, stored_hash_index, stored_hashes};

/// Tile height (C2SP tlog-tiles fixes it at 8: 256 hashes a tile).
pub const HEIGHT: u8 = 8;
/// Entries (or hashes) in a full tile.
pub const WIDTH: u64 = 1 << HEIGHT;

pub const CHECKPOINT: &str = "checkpoint";
pub const KEY: &str = "key";
/// The prefix of every log object in a registry's storage.
pub const PREFIX: &str = "log/";

/// `123456789` as `x123/x456/789` (C2SP tlog-tiles).
pub fn encode_index(n: u64) -> String {
    let mut n = n;
    let mut s = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        s = format!("x{:03}/{s}", n % 1000);
    }
    s
}

/// The path (relative to `log/`) of a tile: `tile/{L}/{N}[.p/{W}]`, or
/// `tile/entries/{N}[.p/{W}]` for an entry bundle.
pub fn tile_path(t: &Tile) -> String {
    let level = if t.is_data() {
        "entries".to_owned()
    } else {
        t.level().to_string()
    };
    let partial = if u64::from(t.width()) == WIDTH {
        String::new()
    } else {
        format!(".p/{}", t.width())
    };
    format!("tile/{level}/{}{partial}", encode_index(t.level_index()))
}

/// The tile a path (relative to `log/`) names, if it is a path of the
/// layout in its one canonical spelling (so `..`, `x000` padding tricks
/// and the like are refused).
pub fn parse_tile_path(path: &str) -> Option<Tile> {
    let rest = path.strip_prefix("tile/")?;
    let (level, rest) = rest.split_once('/')?;
    // `Tile::new` panics on a zero width or a level past 63: refuse those
    // here, before `tlog_tiles` sees them (this parses request paths).
    if rest.ends_with(".p/0") || rest.contains(".p/0") {
        return None;
    }
    let go = if level == "entries" {
        format!("tile/{HEIGHT}/data/{rest}")
    } else {
        let l: u8 = level.parse().ok()?;
        if l.to_string() != level || l >= 64 {
            return None;
        }
        format!("tile/{HEIGHT}/{l}/{rest}")
    };
    let tile = Tile::from_path(&go).ok()?;
    (tile_path(&tile) == path).then_some(tile)
}

/// Whether `path` (relative to `log/`) is a file of the public layout:
/// `checkpoint`, `key` or a tile. Servers answer only these.
pub fn is_public_path(path: &str) -> bool {
    path == CHECKPOINT || path == KEY || parse_tile_path(path).is_some()
}

/// The storage key of record `n`'s sequencing object.
pub fn seq_key(n: u64) -> String {
    format!("{PREFIX}seq/{}", encode_index(n))
}

/// An entry bundle: each record as a big-endian `u16` length, then bytes.
pub fn encode_bundle<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        let len = u16::try_from(r.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&r[..usize::from(len)]);
    }
    out
}

/// The records of an entry bundle; `None` if it is malformed.
pub fn decode_bundle(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let [a, b, rest @ ..] = bytes else { return None };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        if rest.len() < len {
            return None;
        }
        out.push(rest[..len].to_vec());
        bytes = &rest[len..];
    }
    Some(out)
}

/// The entry-bundle tile `k` of a tree of `size` records.
pub fn bundle_tile(k: u64, size: u64) -> Tile {
    let w = (size - k * WIDTH).min(WIDTH);
    Tile::new(HEIGHT, 0, k, u32::try_from(w).unwrap_or(1), true)
}

/// Stored hashes kept in memory (index → hash), falling back to another
/// reader for the ones it does not hold (the tiles already published).
pub struct Hashes<'a> {
    map: HashMap<u64, Hash>,
    fallback: Option<&'a dyn HashReader>,
}

impl<'a> Hashes<'a> {
    pub fn new(fallback: Option<&'a dyn HashReader>) -> Hashes<'a> {
        Hashes {
            map: HashMap::new(),
            fallback,
        }
    }

    /// Appends record `n` (all earlier records must be known).
    pub fn append(&mut self, n: u64, record: &[u8]) -> Result<(), tlog_tiles::Error> {
        let hashes = stored_hashes(n, record, self)?;
        let start = stored_hash_index(0, n);
        for (i, h) in hashes.into_iter().enumerate() {
            self.map.insert(start + i as u64, h);
        }
        Ok(())
    }
}

impl HashReader for Hashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let missing: Vec<u64> = indexes.iter().copied().filter(|i| !self.map.contains_key(i)).collect();
        let mut found = HashMap::new();
        if !missing.is_empty() {
            let fallback = self.fallback.ok_or(tlog_tiles::Error::IndexesNotInTree)?;
            let hashes = fallback.read_hashes(&missing)?;
            if hashes.len() != missing.len() {
                return Err(tlog_tiles::Error::IndexesNotInTree);
            }
            found.extend(missing.into_iter().zip(hashes));
        }
        indexes
            .iter()
            .map(|i| {
                self.map
                    .get(i)
                    .or_else(|| found.get(i))
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_c2sp() {
        assert_eq!(tile_path(&Tile::new(8, 0, 0, 256, false)), "tile/0/000");
        assert_eq!(
            tile_path(&Tile::new(8, 1, 1234067, 3, false)),
            "tile/1/x001/x234/067.p/3"
        );
        assert_eq!(tile_path(&Tile::new(8, 0, 5, 256, true)), "tile/entries/005");
        assert_eq!(tile_path(&Tile::new(8, 0, 5, 1, true)), "tile/entries/005.p/1");
        for p in [
            "tile/0/000",
            "tile/1/x001/x234/067.p/3",
            "tile/entries/005.p/1",
            "tile/entries/x001/000",
        ] {
            assert_eq!(parse_tile_path(p).map(|t| tile_path(&t)).as_deref(), Some(p));
        }
        for p in [
            "tile/00/000",
            "tile/0/0",
            "tile/0/x000/000",
            "tile/0/000.p/256",
            "tile/0/000.p/0",
            "tile/0/000.p/00",
            "tile/64/000",
            "tile/255/000",
            "tile/entries/000.p/0",
            "tile/../key",
            "tile/entries/../../x",
            "seq/000",
            "tile/8/0/000",
            "",
        ] {
            assert!(!is_public_path(p), "{p}");
        }
        assert_eq!(seq_key(1_234_567), "log/seq/x001/x234/567");
    }

    #[test]
    fn bundles_round_trip() {
        let recs: Vec<&[u8]> = vec![b"a", b"", b"hello"];
        let b = encode_bundle(recs.iter().copied());
        assert_eq!(decode_bundle(&b), Some(recs.iter().map(|r| r.to_vec()).collect()));
        assert_eq!(decode_bundle(&b[..b.len() - 1]), None);
        assert_eq!(decode_bundle(&[0]), None);
    }
}
