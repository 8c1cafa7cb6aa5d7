//! What an archive says a package contains: every file's path, SHA-256,
//! size and executable bit, read from the archive's bytes without writing
//! anything. `fm verify` and `fm sync --repair` compare installed files with
//! this, never with metadata in the cache or the state file, which anyone
//! who can write the cache or commit `.fm/` controls.
//!
//! The archive is checked first with [`crate::archive::check_entries`], the
//! rules `fm publish` and the unpacker apply; paths and executable bits are
//! derived as [`crate::archive::extract`] derives them (a unit test holds
//! the two to the same answer).

use std::io::{Cursor, Read as _};

use sha2::{Digest, Sha256};

use crate::archive::{self, ArchiveError, ExtractedFile, Limits};

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;

/// The files of the archive `bytes`, sorted by path.
pub fn archive_files(bytes: &[u8], limits: &Limits) -> Result<Vec<ExtractedFile>, ArchiveError> {
    archive::check_entries(bytes, limits)?;
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    let mut out = Vec::with_capacity(zip.len());
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let unsafe_entry = |reason: String| ArchiveError::UnsafeEntry {
            name: name.clone(),
            reason,
        };
        let rel = archive::safe_entry_path(&name).map_err(unsafe_entry)?;
        let mode = entry.unix_mode().unwrap_or(0);
        if entry.is_dir() || mode & S_IFMT == S_IFDIR {
            continue;
        }
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let k = entry
                .read(&mut buf)
                .map_err(|e| unsafe_entry(format!("cannot decompress: {e}")))?;
            if k == 0 {
                break;
            }
            hasher.update(&buf[..k]);
            size += k as u64;
        }
        out.push(ExtractedFile {
            path: rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            sha256: hex::encode(hasher.finalize()),
            size,
            executable: mode & 0o111 != 0,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn archive_files_agrees_with_what_extract_writes() {
        use zip::write::SimpleFileOptions;
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("manifest.json", opts).unwrap();
        zip.write_all(br#"{"name": "x", "version": "1.0.0"}"#).unwrap();
        zip.add_directory("bin/", opts).unwrap();
        zip.start_file("bin/run", opts.unix_permissions(0o755)).unwrap();
        zip.write_all(b"#!/bin/sh\necho hi\n").unwrap();
        zip.start_file("components/deep/a b.py", opts).unwrap();
        zip.write_all(&vec![b'x'; 200_000]).unwrap();
        zip.start_file("empty", opts).unwrap();
        let bytes = zip.finish().unwrap().into_inner();

        let dir = tempfile::tempdir().unwrap();
        let extracted = archive::extract(Cursor::new(&bytes), dir.path(), &Limits::default()).unwrap();
        let listed = archive_files(&bytes, &Limits::default()).unwrap();
        assert_eq!(listed, extracted);
        assert_eq!(listed.len(), 4);
        assert!(listed.iter().any(|f| f.path == "bin/run" && f.executable));
    }
}
