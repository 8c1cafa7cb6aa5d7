//! The log end to end on a folder: tiles of every interesting size match
//! `tlog_tiles`' own tree hash, and tampering of each kind is refused.

use tlog_tiles::{HashReader, record_hash, stored_hash_index, tree_hash};

use super::layout::{self, HEIGHT};
use super::*;
use crate::registry::storage::DirStorage;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn record(i: u64) -> Record {
    Record::publish(
        &format!("p{}", i % 7),
        &format!("1.0.{i}"),
        SHA,
        i,
        "2026-12-01T20:00:00Z",
    )
}

/// A reference tree: every stored hash, computed by `tlog_tiles` alone.
struct Reference(Vec<tlog_tiles::Hash>);

impl HashReader for Reference {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

fn reference(records: &[Vec<u8>]) -> Reference {
    let mut r = Reference(Vec::new());
    for (n, rec) in records.iter().enumerate() {
        let hashes = tlog_tiles::stored_hashes(n as u64, rec, &r).unwrap();
        assert_eq!(r.0.len() as u64, stored_hash_index(0, n as u64));
        r.0.extend(hashes);
    }
    r
}

fn new_log() -> (tempfile::TempDir, DirStorage, LogKey) {
    let dir = tempfile::tempdir().unwrap();
    let storage = DirStorage::new(dir.path().join("reg"));
    let (key, _) = LogKey::generate("fm.registry/test").unwrap();
    init(&storage, &key).unwrap();
    (dir, storage, key)
}

/// Appends `n` records one writer at a time; checks the root after each
/// size in `check_at` against the reference computation.
fn grow(storage: &DirStorage, key: &LogKey, n: u64, check_at: &[u64]) {
    let log = Appender::for_storage(storage, Some(key)).unwrap().unwrap();
    let mut bytes = Vec::new();
    for i in 0..n {
        assert_eq!(log.append(&record(i)).unwrap(), i);
        bytes.push(record(i).to_bytes());
        if check_at.contains(&(i + 1)) {
            let v = verify_log(&StorageSource(storage), Some(key.verifier())).unwrap();
            let expected = tree_hash(i + 1, &reference(&bytes)).unwrap();
            assert_eq!(*v.checkpoint.hash(), expected, "size {}", i + 1);
            assert_eq!(v.records.len() as u64, i + 1);
        }
    }
}

#[test]
fn tiles_match_tlog_tiles_tree_hash_at_edge_sizes() {
    let (_d, storage, key) = new_log();
    let v = verify_log(&StorageSource(&storage), None).unwrap();
    assert_eq!((v.checkpoint.size(), *v.checkpoint.hash()), (0, tlog_tiles::EMPTY_HASH));
    grow(&storage, &key, 257, &[1, 255, 256, 257]);
    // Full tiles have no `.p/` suffix; the right edge is partial.
    let root = storage.root().join("log/tile");
    assert!(root.join("0/000").is_file());
    assert!(root.join("0/001.p/1").is_file());
    assert!(root.join("1/000.p/1").is_file());
    assert!(root.join("entries/000").is_file());
    assert!(root.join("entries/001.p/1").is_file());
}

/// A storage in memory (a folder fsyncs every file: 70 000 of them would
/// measure the disk, not the log).
#[derive(Debug, Default)]
struct MemStorage(std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>);

impl crate::registry::storage::Storage for MemStorage {
    fn read(&self, key: &str) -> std::io::Result<Option<(Vec<u8>, String)>> {
        let map = self.0.lock().unwrap();
        Ok(map.get(key).map(|b| (b.clone(), crate::fsutil::sha256_hex(b))))
    }
    fn create(&self, key: &str, bytes: &[u8]) -> std::io::Result<bool> {
        let mut map = self.0.lock().unwrap();
        if map.contains_key(key) {
            return Ok(false);
        }
        map.insert(key.to_owned(), bytes.to_vec());
        Ok(true)
    }
    fn swap(&self, key: &str, expected: Option<&String>, bytes: &[u8]) -> std::io::Result<bool> {
        let mut map = self.0.lock().unwrap();
        if map.get(key).map(|b| crate::fsutil::sha256_hex(b)).as_ref() != expected {
            return Ok(false);
        }
        map.insert(key.to_owned(), bytes.to_vec());
        Ok(true)
    }
    fn list(&self, prefix: &str) -> std::io::Result<Vec<String>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

#[test]
fn seventy_thousand_entries() {
    // Appended in catch-up batches (as a storage with many sequenced
    // records would be), then verified against the reference.
    let storage = MemStorage::default();
    let (key, _) = LogKey::generate("fm.registry/test").unwrap();
    init(&storage, &key).unwrap();
    let log = Appender::for_storage(&storage, Some(&key)).unwrap().unwrap();
    let mut bytes = Vec::new();
    let n = 70_000u64;
    for i in 0..n {
        let b = record(i).to_bytes();
        assert!(storage.create(&layout::seq_key(i), &b).unwrap());
        bytes.push(b);
        if (i + 1) % 9_999 == 0 {
            log.catch_up().unwrap();
        }
    }
    assert_eq!(log.catch_up().unwrap(), n);
    let v = verify_log(&StorageSource(&storage), Some(key.verifier())).unwrap();
    assert_eq!(*v.checkpoint.hash(), tree_hash(n, &reference(&bytes)).unwrap());
    // Level 2 exists once a tree passes 65 536 records.
    assert!(storage.read("log/tile/2/000.p/1").unwrap().is_some());
    // Every record has an inclusion proof against the checkpoint.
    for i in [0, 255, 256, 65_535, 65_536, n - 1] {
        let (r, _) = verify::prove_inclusion(&StorageSource(&storage), &v.checkpoint, i).unwrap();
        assert_eq!(r, record(i));
    }
    eprintln!(
        "FIGURES tlog unit: {n} records verified, {} tiles at height {HEIGHT}",
        tlog_tiles::Tile::new_tiles(HEIGHT, 0, n).len()
    );
}

#[test]
fn tampering_is_refused() {
    let (_d, storage, key) = new_log();
    grow(&storage, &key, 300, &[]);
    let src = StorageSource(&storage);
    let v = verify_log(&src, None).unwrap();
    let old_note = v.note.clone();
    let file = |p: &str| storage.root().join("log").join(p);

    // A flipped byte in a hash tile.
    let tile = file("tile/0/000");
    let good = std::fs::read(&tile).unwrap();
    let mut bad = good.clone();
    bad[5] ^= 1;
    std::fs::write(&tile, &bad).unwrap();
    let e = verify_log(&src, None).err().unwrap().to_string();
    assert!(e.contains("tile/0/000"), "{e}");
    std::fs::write(&tile, &good).unwrap();

    // An edited record in an entry bundle (tiles left alone).
    let bundle = file("tile/entries/000");
    let good_bundle = std::fs::read(&bundle).unwrap();
    let text = String::from_utf8_lossy(&good_bundle).replace("1.0.3\n", "1.0.9\n");
    std::fs::write(&bundle, text.as_bytes()).unwrap();
    assert!(verify_log(&src, None).is_err());
    std::fs::write(&bundle, &good_bundle).unwrap();

    // A checkpoint re-signed by another key with the same name.
    let (other, _) = LogKey::generate("fm.registry/test").unwrap();
    let cp = file("checkpoint");
    let good_cp = std::fs::read(&cp).unwrap();
    std::fs::write(&cp, other.sign_checkpoint(300, *v.checkpoint.hash()).unwrap()).unwrap();
    let e = verify_log(&src, Some(key.verifier())).err().unwrap().to_string();
    assert!(e.contains("bad checkpoint"), "{e}");
    std::fs::write(&cp, &good_cp).unwrap();

    // A truncated log: a checkpoint for 256 records signed by the real key
    // over the 300-record root, or bundles removed.
    std::fs::write(&cp, key.sign_checkpoint(256, *v.checkpoint.hash()).unwrap()).unwrap();
    assert!(verify_log(&src, None).is_err());
    std::fs::write(&cp, &good_cp).unwrap();
    std::fs::remove_file(file("tile/entries/001.p/44")).unwrap();
    let e = verify_log(&src, None).err().unwrap().to_string();
    assert!(e.contains("missing"), "{e}");
    // Writers complete what is missing... only what they would write next;
    // restore by hand here.
    let entries: Vec<Vec<u8>> = (256..300).map(|i| record(i).to_bytes()).collect();
    std::fs::write(
        file("tile/entries/001.p/44"),
        layout::encode_bundle(entries.iter().map(Vec::as_slice)),
    )
    .unwrap();
    let v = verify_log(&src, None).unwrap();

    // Consistency: the old checkpoint is a prefix; a forked one is not.
    assert_eq!(v.check_consistent(&old_note, "old").unwrap(), 300);
    let (_d2, fork, _) = new_log();
    let _ = fork;
    let forked_root = record_hash(b"another history");
    let forked = key.sign_checkpoint(10, forked_root).unwrap();
    let e = v.check_consistent(&forked, "forked").err().unwrap().to_string();
    assert!(e.contains("fork"), "{e}");
    let bigger = key.sign_checkpoint(301, forked_root).unwrap();
    assert!(
        v.check_consistent(&bigger, "bigger")
            .err()
            .unwrap()
            .to_string()
            .contains("rollback")
    );
}

#[test]
fn a_tile_with_other_bytes_stops_the_writer() {
    let (_d, storage, key) = new_log();
    grow(&storage, &key, 3, &[]);
    // Somebody planted the next partial tile with wrong bytes.
    let planted = storage.root().join("log/tile/0/000.p/4");
    std::fs::write(&planted, [0u8; 128]).unwrap();
    let log = Appender::for_storage(&storage, Some(&key)).unwrap().unwrap();
    let e = log.append(&record(3)).err().unwrap().to_string();
    assert!(e.contains("tile/0/000.p/4") && e.contains("other bytes"), "{e}");
    // The checkpoint did not move past what verifies.
    assert_eq!(verify_log(&StorageSource(&storage), None).unwrap().checkpoint.size(), 3);
}

#[test]
fn publishing_needs_the_logs_key() {
    let (_d, storage, key) = new_log();
    let (other, _) = LogKey::generate("fm.registry/test").unwrap();
    assert!(matches!(
        Appender::for_storage(&storage, None),
        Err(TlogError::KeyRequired { .. })
    ));
    assert!(matches!(
        Appender::for_storage(&storage, Some(&other)),
        Err(TlogError::WrongKey { .. })
    ));
    assert!(matches!(init(&storage, &other), Err(TlogError::Exists { .. })));
    init(&storage, &key).unwrap();
    let plain = DirStorage::new(_d.path().join("plain"));
    assert!(Appender::for_storage(&plain, None).unwrap().is_none());
    assert!(matches!(
        Appender::for_storage(&plain, Some(&key)),
        Err(TlogError::Unlogged { .. })
    ));
}
