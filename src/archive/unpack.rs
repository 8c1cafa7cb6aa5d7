//! The entry rules and the one walk that both [`check_entries`] (publish,
//! CLI and server) and [`extract`] (install) run, so that whatever a
//! registry accepts an install can unpack, and whatever an install refuses
//! a registry refused first.
//!
//! The walk: (1) [`zipread::read_layout`] checks the zip structure; (2)
//! every entry's name and kind is checked, and the whole set for
//! collisions ([`portable`]), before a byte is written; (3) each file is
//! inflated by [`zipread::inflate`], the size and ratio caps counting the
//! bytes actually inflated, and handed to the sink (nothing, or a new file).

use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ArchiveError, Limits, past_ratio, portable, zipread};

/// A file written by [`extract`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedFile {
    /// `/`-separated path relative to the target.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub executable: bool,
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// Checks an entry name and returns the relative path it may be written to.
///
/// Refuses (each could place bytes outside the target, or somewhere else on
/// another OS): absolute paths, drive letters, backslashes, `..` and `.`
/// components, empty components, NUL and control characters.
pub fn safe_entry_path(name: &str) -> Result<PathBuf, String> {
    if name.is_empty() {
        return Err("empty name".to_owned());
    }
    if name.starts_with('/') {
        return Err("absolute path".to_owned());
    }
    if name.contains('\\') {
        return Err("backslash in path (a Windows separator)".to_owned());
    }
    if name.len() >= 2 && name.as_bytes()[1] == b':' {
        return Err("drive-letter path".to_owned());
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("control character in name".to_owned());
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    let mut out = PathBuf::new();
    for part in trimmed.split('/') {
        match part {
            "" => return Err("empty path component".to_owned()),
            "." => return Err("`.` path component".to_owned()),
            ".." => return Err("`..` path component (path traversal)".to_owned()),
            p if p.contains(':') => return Err("`:` in a path component".to_owned()),
            p => out.push(p),
        }
    }
    Ok(out)
}

/// An entry whose name and kind passed the rules.
struct Checked {
    raw: zipread::RawEntry,
    name: String,
    /// `/`-separated, without a trailing `/`.
    path: String,
    rel: PathBuf,
    is_dir: bool,
    executable: bool,
}

/// Step 2 of the walk, for every entry before anything is inflated.
fn check_names(entries: Vec<zipread::RawEntry>) -> Result<Vec<Checked>, ArchiveError> {
    let mut out = Vec::with_capacity(entries.len());
    for raw in entries {
        // read_layout refused names that are not UTF-8.
        let name = String::from_utf8_lossy(&raw.name).into_owned();
        let refuse = |reason: String| ArchiveError::UnsafeEntry {
            name: name.clone(),
            reason,
        };
        let rel = safe_entry_path(&name).map_err(refuse)?;
        let path = name.strip_suffix('/').unwrap_or(&name).to_owned();
        portable::check_path(&path).map_err(refuse)?;
        let mode = raw.unix_mode.unwrap_or(0);
        let kind = mode & S_IFMT;
        // Symlinks are refused: a link created by one entry could redirect a
        // later entry's write outside the target.
        if kind == S_IFLNK {
            return Err(refuse("symbolic link".to_owned()));
        }
        if kind != 0 && kind != S_IFREG && kind != S_IFDIR {
            return Err(refuse("device, FIFO or other special file".to_owned()));
        }
        // Readers decide "folder" by the trailing `/`, by the mode, or by the
        // DOS attribute: all must say the same.
        let is_dir = name.ends_with('/');
        if (kind != 0 && is_dir != (kind == S_IFDIR)) || (raw.dos_dir && !is_dir) {
            return Err(refuse(
                "its name and its attributes disagree on whether it is a folder".to_owned(),
            ));
        }
        if is_dir && raw.size != 0 {
            return Err(refuse("a folder entry that holds data".to_owned()));
        }
        out.push(Checked {
            executable: mode & 0o111 != 0,
            raw,
            name,
            path,
            rel,
            is_dir,
        });
    }
    portable::check_collisions(out.iter().map(|c| (c.path.as_str(), c.is_dir)))
        .map_err(|(name, reason)| ArchiveError::UnsafeEntry { name, reason })?;
    Ok(out)
}

/// Where the walk puts what it inflates.
trait Sink {
    fn dir(&mut self, e: &Checked) -> Result<(), ArchiveError>;
    fn open(&mut self, e: &Checked) -> Result<(), ArchiveError>;
    fn write(&mut self, e: &Checked, chunk: &[u8]) -> Result<(), ArchiveError>;
    fn close(&mut self, e: &Checked, size: u64) -> Result<(), ArchiveError>;
}

/// Steps 1-3: the same for checking and for extracting.
fn walk<R: Read + Seek>(mut r: R, limits: &Limits, sink: &mut dyn Sink) -> Result<(), ArchiveError> {
    let entries = check_names(zipread::read_layout(&mut r, limits)?)?;
    let mut inflater = zipread::Inflater::new();
    let mut total = 0u64;
    for e in &entries {
        if e.is_dir {
            sink.dir(e)?;
            continue;
        }
        sink.open(e)?;
        let before = total;
        let size = zipread::inflate(
            &mut inflater,
            &mut r,
            &e.raw,
            &mut |n| {
                if before + n > limits.max_total_bytes {
                    return Err(ArchiveError::TooLarge(format!(
                        "decompresses to more than {} bytes (a zip bomb?)",
                        limits.max_total_bytes
                    )));
                }
                if past_ratio(n, e.raw.compressed, limits) {
                    return Err(ArchiveError::TooLarge(format!(
                        "entry {:?} decompresses to over {} times its compressed size (a zip bomb?)",
                        e.name, limits.max_ratio
                    )));
                }
                Ok(())
            },
            &mut |chunk| sink.write(e, chunk),
        )?;
        total += size;
        sink.close(e, size)?;
    }
    Ok(())
}

/// Checks every entry of an archive exactly as [`extract`] would, writing
/// nothing: the zip structure, safe and portable names, plain files only,
/// no collisions, within the caps counted on the inflated bytes.
/// Registries run this before storing an upload.
pub fn check_entries(bytes: &[u8], limits: &Limits) -> Result<(), ArchiveError> {
    struct Discard;
    impl Sink for Discard {
        fn dir(&mut self, _: &Checked) -> Result<(), ArchiveError> {
            Ok(())
        }
        fn open(&mut self, _: &Checked) -> Result<(), ArchiveError> {
            Ok(())
        }
        fn write(&mut self, _: &Checked, _: &[u8]) -> Result<(), ArchiveError> {
            Ok(())
        }
        fn close(&mut self, _: &Checked, _: u64) -> Result<(), ArchiveError> {
            Ok(())
        }
    }
    walk(io::Cursor::new(bytes), limits, &mut Discard)
}

/// Where [`extract_to`] creates what it unpacks: folders and new files
/// by `/`-separated relative path, each already checked (no `..`, no
/// absolute part, parents created before children).
pub trait Target {
    /// Creates the folder `path` and its missing parents.
    fn create_dir_all(&mut self, path: &str) -> io::Result<()>;
    /// Creates the new file `path` (its folder exists) for writing, never
    /// through a link, asking for the permission bits `mode` (0o644, or
    /// 0o755 for an executable; the umask may narrow them); fails with
    /// [`io::ErrorKind::AlreadyExists`] if anything is there.
    fn create_new(&mut self, path: &str, mode: u32) -> io::Result<std::fs::File>;
    /// Every byte of `path` was written to `file`: give it exactly the
    /// permission bits `mode` (where the umask narrowed them) and close it.
    fn finish(&mut self, path: &str, file: std::fs::File, mode: u32) -> io::Result<()>;
}

/// A [`Target`] by path, below a folder fm just created.
struct PathTarget<'a>(&'a Path);

impl Target for PathTarget<'_> {
    fn create_dir_all(&mut self, path: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.0.join(path))
    }

    fn create_new(&mut self, path: &str, mode: u32) -> io::Result<std::fs::File> {
        let mut opts = std::fs::OpenOptions::new();
        // create_new: never follow or overwrite anything already there.
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        #[cfg(not(unix))]
        let _ = mode;
        opts.open(self.0.join(path))
    }

    fn finish(&mut self, _: &str, file: std::fs::File, mode: u32) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = (file, mode);
        Ok(())
    }
}

/// The permission bits an installed file gets.
fn mode_of(e: &Checked) -> u32 {
    if e.executable { 0o755 } else { 0o644 }
}

/// Writes into a fresh folder.
struct ToDisk<'a> {
    /// For messages.
    dest: &'a Path,
    target: &'a mut dyn Target,
    file: Option<(std::fs::File, Sha256)>,
    out: Vec<ExtractedFile>,
}

impl ToDisk<'_> {
    /// `e`'s path below `dest`, for messages.
    fn shown(&self, e: &Checked) -> PathBuf {
        self.dest.join(&e.rel)
    }
}

impl Sink for ToDisk<'_> {
    fn dir(&mut self, e: &Checked) -> Result<(), ArchiveError> {
        self.target
            .create_dir_all(&e.path)
            .map_err(|err| ArchiveError::io(format!("creating {}", self.shown(e).display()))(err))
    }

    fn open(&mut self, e: &Checked) -> Result<(), ArchiveError> {
        if let Some((parent, _)) = e.path.rsplit_once('/') {
            self.target.create_dir_all(parent).map_err(|err| {
                let target = self.shown(e);
                ArchiveError::io(format!("creating {}", target.parent().unwrap_or(self.dest).display()))(err)
            })?;
        }
        let file = self.target.create_new(&e.path, mode_of(e)).map_err(|err| {
            if err.kind() == io::ErrorKind::AlreadyExists {
                ArchiveError::UnsafeEntry {
                    name: e.name.clone(),
                    reason: "duplicate entry".to_owned(),
                }
            } else {
                ArchiveError::Io {
                    what: format!("creating {}", self.shown(e).display()),
                    source: err,
                }
            }
        })?;
        self.file = Some((file, Sha256::new()));
        Ok(())
    }

    fn write(&mut self, e: &Checked, chunk: &[u8]) -> Result<(), ArchiveError> {
        if let Some((file, hasher)) = &mut self.file {
            hasher.update(chunk);
            if let Err(err) = file.write_all(chunk) {
                return Err(ArchiveError::io(format!("writing {}", self.shown(e).display()))(err));
            }
        }
        Ok(())
    }

    fn close(&mut self, e: &Checked, size: u64) -> Result<(), ArchiveError> {
        let Some((file, hasher)) = self.file.take() else {
            return Ok(());
        };
        self.target
            .finish(&e.path, file, mode_of(e))
            .map_err(|err| ArchiveError::io(format!("setting mode of {}", self.shown(e).display()))(err))?;
        self.out.push(ExtractedFile {
            path: e.path.clone(),
            sha256: hex::encode(hasher.finalize()),
            size,
            executable: e.executable,
        });
        Ok(())
    }
}

/// Extracts an archive into `dest`, which must be an empty folder that fm
/// just created (so no entry can meet an existing link). Returns every file
/// written, sorted by path, with its SHA-256. Runs the same checks as
/// [`check_entries`]; names and collisions are checked before anything is
/// written, and the caps stop the write at the cap.
pub fn extract<R: Read + Seek>(r: R, dest: &Path, limits: &Limits) -> Result<Vec<ExtractedFile>, ArchiveError> {
    extract_to(r, &mut PathTarget(dest), dest, limits)
}

/// [`extract`] through a [`Target`] (the installer's writes no link can
/// redirect); `dest` names the target in messages.
pub fn extract_to<R: Read + Seek>(
    r: R,
    target: &mut dyn Target,
    dest: &Path,
    limits: &Limits,
) -> Result<Vec<ExtractedFile>, ArchiveError> {
    let mut sink = ToDisk {
        dest,
        target,
        file: None,
        out: Vec::new(),
    };
    walk(r, limits, &mut sink)?;
    let mut out = sink.out;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
