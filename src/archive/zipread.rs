//! The one zip reader behind every `.fmpkg` read in fm: publish (CLI and
//! server) and install use it, so they see the same entries with the same
//! bytes.
//!
//! Rules it keeps:
//! - Every field a zip reader could use agrees, or the archive is refused:
//!   the end record's two entry counts and its disk numbers; the zip64 end
//!   record and locator with the 32-bit end record (each 32-bit field is
//!   either the zip64 sentinel or the same value); the central directory's
//!   size, offset and entry count with what is walked; each central entry
//!   with its local header (name, flags, method, CRC-32 and sizes, zip64
//!   extras included) and with its data descriptor. An archive comment may
//!   not hold another end record (readers search backwards and would stop at
//!   it).
//! - Every byte before the central directory belongs to exactly one entry:
//!   the first entry starts at offset 0, each ends where the next starts,
//!   the last ends at the central directory. Nothing is hidden between
//!   entries, no two entries share data (the overlapping-entry zip bomb),
//!   and a declared compressed size cannot reach past its own entry.
//! - [`inflate`] counts what it actually inflates: the caller's caps see the
//!   running output size before any byte is handed on, and an entry must
//!   inflate to exactly its declared size and CRC-32, consuming exactly its
//!   compressed bytes.
//! - Stored and deflated entries only; encrypted entries and entries with a
//!   second (Info-ZIP Unicode path) name are refused; a non-ASCII name must
//!   carry the UTF-8 flag (without it readers decode it as CP437).

use std::io::{Read, Seek, SeekFrom};

use super::{ArchiveError, Limits};

const LOCAL_SIG: [u8; 4] = *b"PK\x03\x04";
const CENTRAL_SIG: [u8; 4] = *b"PK\x01\x02";
const EOCD_SIG: [u8; 4] = *b"PK\x05\x06";
const ZIP64_EOCD_SIG: [u8; 4] = *b"PK\x06\x06";
const ZIP64_LOCATOR_SIG: [u8; 4] = *b"PK\x06\x07";
const DESCRIPTOR_SIG: [u8; 4] = *b"PK\x07\x08";

const ZIP64_EXTRA: u16 = 0x0001;
const UNICODE_PATH_EXTRA: u16 = 0x7075;

const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
const FLAG_UTF8: u16 = 1 << 11;
const FLAG_MASKED_HEADERS: u16 = 1 << 13;

/// Compression methods fm reads.
pub const STORED: u16 = 0;
pub const DEFLATED: u16 = 8;

/// One entry as the central directory lists it, checked against its local
/// header and its place in the archive.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub method: u16,
    pub crc32: u32,
    pub compressed: u64,
    pub size: u64,
    local_offset: u64,
    data_start: u64,
    end: u64,
    /// The Unix mode, when the entry was made on Unix and records one.
    pub unix_mode: Option<u32>,
    /// The MS-DOS directory attribute.
    pub dos_dir: bool,
}

impl RawEntry {
    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

fn inconsistent(m: impl Into<String>) -> ArchiveError {
    ArchiveError::Inconsistent(m.into())
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, len: usize, what: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut buf = vec![0u8; len];
    r.seek(SeekFrom::Start(at))
        .and_then(|_| r.read_exact(&mut buf))
        .map_err(|_| ArchiveError::NotZip(format!("{what} is truncated")))?;
    Ok(buf)
}

/// The 32-bit field `small` of an end record agrees with the zip64 value
/// `big` when it is the sentinel or the same number.
fn agrees(small: u64, sentinel: u64, big: u64) -> bool {
    small == sentinel || small == big
}

/// Where the central directory is and how many entries it holds.
struct Directory {
    offset: u64,
    size: u64,
    entries: u64,
}

fn find_directory<R: Read + Seek>(r: &mut R, len: u64) -> Result<Directory, ArchiveError> {
    if len < 22 {
        return Err(ArchiveError::NotZip("too short to hold a zip end record".to_owned()));
    }
    let tail_len = len.min(22 + 65_535);
    let tail = read_at(r, len - tail_len, tail_len as usize, "the end record")?;
    // The end record whose comment reaches exactly the end of the file.
    let Some(at) = (0..=tail.len() - 22)
        .rev()
        .find(|&i| tail[i..i + 4] == EOCD_SIG && i + 22 + usize::from(u16_at(&tail, i + 20)) == tail.len())
    else {
        return Err(ArchiveError::NotZip("no end of central directory record".to_owned()));
    };
    if tail[at + 1..]
        .windows(4)
        .any(|w| w == EOCD_SIG || w == ZIP64_LOCATOR_SIG)
    {
        return Err(inconsistent(
            "the archive comment holds another end record (readers would disagree on which one is real)",
        ));
    }
    let e = &tail[at..];
    let eocd_pos = len - tail_len + at as u64;
    let (disk, cd_disk) = (u16_at(e, 4), u16_at(e, 6));
    let (on_disk, total) = (u64::from(u16_at(e, 8)), u64::from(u16_at(e, 10)));
    let (size, offset) = (u64::from(u32_at(e, 12)), u64::from(u32_at(e, 16)));
    let locator = if eocd_pos >= 20 {
        Some(read_at(r, eocd_pos - 20, 20, "the zip64 locator")?).filter(|l| l[..4] == ZIP64_LOCATOR_SIG)
    } else {
        None
    };
    let (dir, cd_end) = match locator {
        None => {
            if on_disk == 0xFFFF || total == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
                return Err(inconsistent(
                    "the end record points to a zip64 end record that is not there",
                ));
            }
            if disk != 0 || cd_disk != 0 {
                return Err(inconsistent(
                    "the end record names another disk (split archives are not accepted)",
                ));
            }
            if on_disk != total {
                return Err(inconsistent(format!(
                    "the end record's two entry counts differ ({on_disk} on this disk, {total} in all)"
                )));
            }
            (
                Directory {
                    offset,
                    size,
                    entries: total,
                },
                eocd_pos,
            )
        }
        Some(l) => {
            let (l_disk, z_at, disks) = (u32_at(&l, 4), u64_at(&l, 8), u32_at(&l, 16));
            if l_disk != 0 || disks > 1 {
                return Err(inconsistent(
                    "the zip64 locator names another disk (split archives are not accepted)",
                ));
            }
            let locator_pos = eocd_pos - 20;
            if z_at.checked_add(56).is_none_or(|end| end > locator_pos) {
                return Err(inconsistent("the zip64 locator points outside the archive"));
            }
            let z = read_at(r, z_at, 56, "the zip64 end record")?;
            if z[..4] != ZIP64_EOCD_SIG {
                return Err(inconsistent("the zip64 locator does not point to a zip64 end record"));
            }
            if u64_at(&z, 4).checked_add(12 + z_at) != Some(locator_pos) {
                return Err(inconsistent(
                    "the zip64 end record's size does not reach the locator (data hidden between them)",
                ));
            }
            let (z_disk, z_cd_disk) = (u32_at(&z, 16), u32_at(&z, 20));
            let (z_on_disk, z_total, z_size, z_offset) =
                (u64_at(&z, 24), u64_at(&z, 32), u64_at(&z, 40), u64_at(&z, 48));
            if z_disk != 0 || z_cd_disk != 0 || !agrees(disk.into(), 0xFFFF, 0) || !agrees(cd_disk.into(), 0xFFFF, 0) {
                return Err(inconsistent(
                    "the zip64 end record names another disk (split archives are not accepted)",
                ));
            }
            if z_on_disk != z_total {
                return Err(inconsistent(format!(
                    "the zip64 end record's two entry counts differ ({z_on_disk} on this disk, {z_total} in all)"
                )));
            }
            if !agrees(on_disk, 0xFFFF, z_total)
                || !agrees(total, 0xFFFF, z_total)
                || !agrees(size, 0xFFFF_FFFF, z_size)
                || !agrees(offset, 0xFFFF_FFFF, z_offset)
            {
                return Err(inconsistent(
                    "the end record and the zip64 end record disagree on the central directory",
                ));
            }
            (
                Directory {
                    offset: z_offset,
                    size: z_size,
                    entries: z_total,
                },
                z_at,
            )
        }
    };
    if dir.offset.checked_add(dir.size) != Some(cd_end) {
        return Err(inconsistent(
            "the central directory is not where the end record says (data before or inside the archive)",
        ));
    }
    Ok(dir)
}

/// The extra-field blocks of a header, checked to be well formed. Refuses
/// a second name (Info-ZIP Unicode path) and repeated zip64 blocks.
fn extras<'a>(extra: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, ArchiveError> {
    let mut zip64 = None;
    let mut p = 0;
    while p < extra.len() {
        if p + 4 > extra.len() {
            return Err(unsafe_entry(name, "its extra field is truncated"));
        }
        let (id, n) = (u16_at(extra, p), usize::from(u16_at(extra, p + 2)));
        let Some(body) = extra.get(p + 4..p + 4 + n) else {
            return Err(unsafe_entry(name, "its extra field is truncated"));
        };
        match id {
            UNICODE_PATH_EXTRA => {
                return Err(unsafe_entry(
                    name,
                    "it carries a second name (an Info-ZIP Unicode path field); readers would disagree on its name",
                ));
            }
            ZIP64_EXTRA if zip64.is_some() => return Err(unsafe_entry(name, "it has two zip64 extra fields")),
            ZIP64_EXTRA => zip64 = Some(body),
            _ => {}
        }
        p += 4 + n;
    }
    Ok(zip64)
}

fn unsafe_entry(name: &str, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::UnsafeEntry {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// Takes the next zip64 value for each field that holds its sentinel, in
/// the order the format fixes.
struct Zip64Values<'a> {
    body: &'a [u8],
    at: usize,
}

impl Zip64Values<'_> {
    fn take(&mut self, field: u64, sentinel: u64, name: &str) -> Result<u64, ArchiveError> {
        if field != sentinel {
            return Ok(field);
        }
        let Some(v) = self.body.get(self.at..self.at + 8) else {
            return Err(unsafe_entry(
                name,
                "a zip64 size or offset is missing from its extra field",
            ));
        };
        self.at += 8;
        Ok(u64_at(v, 0))
    }
}

/// Reads and checks the archive's structure; returns its entries in
/// central-directory order.
pub fn read_layout<R: Read + Seek>(r: &mut R, limits: &Limits) -> Result<Vec<RawEntry>, ArchiveError> {
    let len = r
        .seek(SeekFrom::End(0))
        .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    let dir = find_directory(r, len)?;
    if dir.entries > limits.max_entries as u64 {
        return Err(ArchiveError::TooLarge(format!(
            "{} entries (at most {})",
            dir.entries, limits.max_entries
        )));
    }
    let cd = read_at(r, dir.offset, dir.size as usize, "the central directory")?;
    let mut entries = Vec::with_capacity(dir.entries as usize);
    let mut seen = std::collections::HashSet::new();
    let mut p = 0usize;
    for _ in 0..dir.entries {
        if p + 46 > cd.len() || cd[p..p + 4] != CENTRAL_SIG {
            return Err(inconsistent(format!(
                "the central directory holds fewer entries than the end record's {}",
                dir.entries
            )));
        }
        let h = &cd[p..p + 46];
        let (n, e, c) = (
            usize::from(u16_at(h, 28)),
            usize::from(u16_at(h, 30)),
            usize::from(u16_at(h, 32)),
        );
        let Some(name) = cd.get(p + 46..p + 46 + n) else {
            return Err(inconsistent("the central directory is truncated"));
        };
        let Some(extra) = cd.get(p + 46 + n..p + 46 + n + e) else {
            return Err(inconsistent("the central directory is truncated"));
        };
        if cd.get(p + 46 + n + e..p + 46 + n + e + c).is_none() {
            return Err(inconsistent("the central directory is truncated"));
        }
        let shown = String::from_utf8_lossy(name).into_owned();
        if !seen.insert(name.to_vec()) {
            return Err(unsafe_entry(&shown, "duplicate entry"));
        }
        let entry = central_entry(r, h, name, extra, &shown, dir.offset)?;
        entries.push(entry);
        p += 46 + n + e + c;
    }
    if p != cd.len() {
        return Err(inconsistent(format!(
            "the central directory holds {} bytes past its {} entries",
            cd.len() - p,
            dir.entries
        )));
    }
    check_tiling(&entries, dir.offset)?;
    Ok(entries)
}

/// One central-directory entry, checked against its local header.
fn central_entry<R: Read + Seek>(
    r: &mut R,
    h: &[u8],
    name: &[u8],
    extra: &[u8],
    shown: &str,
    cd_offset: u64,
) -> Result<RawEntry, ArchiveError> {
    let (made_by, flags, method) = (u16_at(h, 4), u16_at(h, 8), u16_at(h, 10));
    let crc32 = u32_at(h, 16);
    let external = u32_at(h, 38);
    if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADERS) != 0 {
        return Err(unsafe_entry(shown, "it is encrypted"));
    }
    if method != STORED && method != DEFLATED {
        return Err(unsafe_entry(
            shown,
            format!("compression method {method} is not accepted (stored or deflate only)"),
        ));
    }
    if std::str::from_utf8(name).is_err() {
        return Err(unsafe_entry(shown, "name is not valid UTF-8"));
    }
    if !name.is_ascii() && flags & FLAG_UTF8 == 0 {
        return Err(unsafe_entry(
            shown,
            "a non-ASCII name without the UTF-8 flag (readers would decode it as CP437)",
        ));
    }
    let mut z = Zip64Values {
        body: extras(extra, shown)?.unwrap_or(&[]),
        at: 0,
    };
    let size = z.take(u32_at(h, 24).into(), 0xFFFF_FFFF, shown)?;
    let compressed = z.take(u32_at(h, 20).into(), 0xFFFF_FFFF, shown)?;
    let local_offset = z.take(u32_at(h, 42).into(), 0xFFFF_FFFF, shown)?;
    let disk = z.take(u16_at(h, 34).into(), 0xFFFF, shown)?;
    let zip64 = z.at > 0;
    if disk != 0 {
        return Err(inconsistent(format!("entry {shown:?} is on another disk")));
    }
    if local_offset.checked_add(30).is_none_or(|e| e > cd_offset) {
        return Err(unsafe_entry(shown, "its local header is outside the archive's entries"));
    }
    let head = read_at(r, local_offset, 30, "a local header")?;
    if head[..4] != LOCAL_SIG {
        return Err(unsafe_entry(shown, "its local header is missing or damaged"));
    }
    let (ln, le) = (usize::from(u16_at(&head, 26)), usize::from(u16_at(&head, 28)));
    let rest = read_at(r, local_offset + 30, ln + le, "a local header")?;
    let (local_name, local_extra) = rest.split_at(ln);
    if local_name != name {
        return Err(unsafe_entry(
            shown,
            format!(
                "its local header names it {:?} (the local header and the central directory disagree)",
                String::from_utf8_lossy(local_name)
            ),
        ));
    }
    let disagree = |what: &str| {
        unsafe_entry(
            shown,
            format!(
                "its local header's {what} differs from the central directory's (the local header and the central directory disagree)"
            ),
        )
    };
    if u16_at(&head, 6) != flags {
        return Err(disagree("flags"));
    }
    if u16_at(&head, 8) != method {
        return Err(disagree("compression method"));
    }
    let local_z = extras(local_extra, shown)?;
    let (mut l_size, mut l_comp) = (u64::from(u32_at(&head, 22)), u64::from(u32_at(&head, 18)));
    let mut local_zip64 = false;
    if l_size == 0xFFFF_FFFF || l_comp == 0xFFFF_FFFF {
        // A local zip64 field holds both sizes, whichever is the sentinel.
        let Some(body) = local_z.filter(|b| b.len() >= 16) else {
            return Err(unsafe_entry(shown, "its local header's zip64 sizes are missing"));
        };
        (l_size, l_comp) = (u64_at(body, 0), u64_at(body, 8));
        local_zip64 = true;
    }
    let l_crc = u32_at(&head, 14);
    let described = flags & FLAG_DESCRIPTOR != 0;
    // With a data descriptor the local header may leave these zero.
    let matches = |local: u64, central: u64| local == central || (described && local == 0);
    if !matches(l_crc.into(), crc32.into()) {
        return Err(disagree("CRC-32"));
    }
    if !matches(l_comp, compressed) {
        return Err(disagree("compressed size"));
    }
    if !matches(l_size, size) {
        return Err(disagree("size"));
    }
    let data_start = local_offset + 30 + (ln + le) as u64;
    let Some(data_end) = data_start.checked_add(compressed).filter(|&e| e <= cd_offset) else {
        return Err(unsafe_entry(
            shown,
            format!("its declared compressed size ({compressed} bytes) reaches past its own data"),
        ));
    };
    let mut end = data_end;
    if described {
        let wide = zip64 || local_zip64;
        let body_len = if wide { 20 } else { 12 };
        let room = (cd_offset - data_end) as usize;
        let probe = read_at(r, data_end, room.min(body_len + 4), "a data descriptor")?;
        let skip = if probe.len() >= 4 && probe[..4] == DESCRIPTOR_SIG {
            4
        } else {
            0
        };
        let Some(d) = probe.get(skip..skip + body_len) else {
            return Err(unsafe_entry(shown, "its data descriptor is missing"));
        };
        let (d_comp, d_size) = if wide {
            (u64_at(d, 4), u64_at(d, 12))
        } else {
            (u64::from(u32_at(d, 4)), u64::from(u32_at(d, 8)))
        };
        if u32_at(d, 0) != crc32 || d_comp != compressed || d_size != size {
            return Err(unsafe_entry(
                shown,
                "its data descriptor differs from the central directory",
            ));
        }
        end = data_end + (skip + body_len) as u64;
    }
    let unix = made_by >> 8 == 3 || made_by >> 8 == 19;
    Ok(RawEntry {
        name: name.to_vec(),
        method,
        crc32,
        compressed,
        size,
        local_offset,
        data_start,
        end,
        unix_mode: Some(external >> 16).filter(|&m| unix && m != 0),
        dos_dir: external & 0x10 != 0,
    })
}

/// Every byte before the central directory belongs to exactly one entry.
fn check_tiling(entries: &[RawEntry], cd_offset: u64) -> Result<(), ArchiveError> {
    let mut order: Vec<&RawEntry> = entries.iter().collect();
    order.sort_by_key(|e| e.local_offset);
    let mut at = 0u64;
    let mut prev: Option<&RawEntry> = None;
    for e in order {
        if e.local_offset < at {
            let other = prev.map(RawEntry::shown).unwrap_or_default();
            return Err(inconsistent(format!(
                "entries {other:?} and {:?} overlap (an archive whose entries share data is a zip bomb)",
                e.shown()
            )));
        }
        if e.local_offset > at {
            return Err(inconsistent(format!(
                "{} bytes at offset {at} belong to no entry (data hidden in the archive)",
                e.local_offset - at
            )));
        }
        at = e.end;
        prev = Some(e);
    }
    if at != cd_offset {
        return Err(inconsistent(format!(
            "{} bytes before the central directory belong to no entry (data hidden in the archive)",
            cd_offset.saturating_sub(at)
        )));
    }
    Ok(())
}

mod entry;
pub use entry::{Inflater, inflate, read_entry};
