//! Reading an entry's bytes: [`inflate`] counts what it actually
//! inflates (the caller's caps see the running output size before any byte
//! is handed on), and an entry must inflate to exactly its declared size
//! and CRC-32, consuming exactly its compressed bytes. The layout those
//! entries come from is [`super::read_layout`]'s.

use std::io::{Read, Seek, SeekFrom};

use super::{DEFLATED, RawEntry, unsafe_entry};
use crate::archive::ArchiveError;

/// Output chunk: the most handed to a sink at once.
const CHUNK: usize = 64 * 1024;

/// What [`inflate`] keeps from one entry to the next: the inflater's state
/// and both buffers, so that an archive of many small files allocates
/// (and clears) them once, not per entry. One per walk over an archive.
pub struct Inflater {
    input: Vec<u8>,
    output: Vec<u8>,
    dec: Option<flate2::Decompress>,
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// Empty buffers; the state is made at the first deflated entry.
    pub fn new() -> Inflater {
        Inflater {
            input: Vec::new(),
            output: Vec::new(),
            dec: None,
        }
    }
}

/// Inflates `e`, handing each chunk to `sink` only after `check` accepted
/// the running total of inflated bytes. Returns the entry's size. The
/// entry's compressed bytes are read whole into `inf`'s buffer first: the
/// layout check bounds them to the entry's place in the archive.
pub fn inflate<R: Read + Seek>(
    inf: &mut Inflater,
    r: &mut R,
    e: &RawEntry,
    check: &mut dyn FnMut(u64) -> Result<(), ArchiveError>,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), ArchiveError>,
) -> Result<u64, ArchiveError> {
    let damaged = |m: String| unsafe_entry(&e.shown(), m);
    r.seek(SeekFrom::Start(e.data_start))
        .map_err(|err| damaged(format!("cannot read it: {err}")))?;
    let input = &mut inf.input;
    input.clear();
    // Read whole; a reader that ends early leaves the rest counted below.
    input.reserve(e.compressed.min(PREALLOCATE_MAX) as usize);
    r.by_ref()
        .take(e.compressed)
        .read_to_end(input)
        .map_err(|err| damaged(format!("cannot read it: {err}")))?;
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0u64;
    let mut hand_on = |chunk: &[u8], size: &mut u64| -> Result<(), ArchiveError> {
        *size += chunk.len() as u64;
        check(*size)?;
        crc.update(chunk);
        sink(chunk)
    };
    let consumed = if e.method == DEFLATED {
        let dec = inf.dec.get_or_insert_with(|| flate2::Decompress::new(false));
        dec.reset(false);
        let out = &mut inf.output;
        if out.capacity() < CHUNK {
            out.reserve_exact(CHUNK);
        }
        let mut pos = 0usize;
        loop {
            let (in_before, out_before) = (dec.total_in(), dec.total_out());
            out.clear();
            let status = dec
                .decompress_vec(&input[pos..], out, flate2::FlushDecompress::None)
                .map_err(|err| damaged(format!("cannot decompress: {err}")))?;
            let took = (dec.total_in() - in_before) as usize;
            let made = (dec.total_out() - out_before) as usize;
            pos += took;
            if made > 0 {
                hand_on(&out[..made], &mut size)?;
            }
            // The stream's end, or no progress: its input ran out first
            // (a truncated stream inflates short; the size check says so).
            if status == flate2::Status::StreamEnd || (took == 0 && made == 0) {
                break;
            }
        }
        pos as u64
    } else {
        for chunk in input.chunks(CHUNK) {
            hand_on(chunk, &mut size)?;
        }
        input.len() as u64
    };
    let left = e.compressed - consumed;
    if size != e.size {
        return Err(damaged(format!("it declares {} bytes but inflates to {size}", e.size)));
    }
    if left != 0 {
        return Err(damaged(format!(
            "its compressed data ends {left} bytes before its declared compressed size"
        )));
    }
    if crc.finalize() != e.crc32 {
        return Err(damaged(
            "its CRC-32 does not match its data (the archive is damaged)".to_owned(),
        ));
    }
    Ok(size)
}

/// The most reserved up front for one entry's compressed bytes, whatever
/// it declares (a larger entry grows the buffer as it is read).
const PREALLOCATE_MAX: u64 = 1024 * 1024;

/// Reads `e` whole, at most `cap` bytes.
pub fn read_entry<R: Read + Seek>(r: &mut R, e: &RawEntry, cap: u64) -> Result<Option<Vec<u8>>, ArchiveError> {
    let mut out = Vec::new();
    let over = std::cell::Cell::new(false);
    let res = inflate(
        &mut Inflater::new(),
        r,
        e,
        &mut |n| {
            if n > cap {
                over.set(true);
                Err(ArchiveError::TooLarge(String::new()))
            } else {
                Ok(())
            }
        },
        &mut |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        },
    );
    match res {
        Err(_) if over.get() => Ok(None),
        Err(err) => Err(err),
        Ok(_) => Ok(Some(out)),
    }
}
