//! Folder handles that never follow a symbolic link (SPEC §7: no operation
//! follows a symlink on the path to what it writes or removes).
//!
//! A [`Dir`] is an open folder (a file descriptor on Unix). Everything fm
//! writes or removes in an install folder or the cache goes through one:
//! children are opened, created, renamed and removed *relative to the
//! handle* with `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`, so a link below it is
//! never followed, and a parent swapped for a link after it was opened
//! cannot redirect anything. A link met where fm expected a folder or a file
//! is a [`DirError::Link`], which callers turn into a refusal naming it.
//! [`Dir::remove_tree`] removes a link itself, never what it points to.
//!
//! Built on `rustix` (`openat`, `mkdirat`, `renameat`, `unlinkat`,
//! `fstatat`): it is already in fm's dependency tree (through `tempfile`),
//! maintained by the Bytecode Alliance, and a thin safe layer over exactly
//! these system calls. `cap-std` was the alternative; its `Dir` *follows*
//! links that stay inside the directory, where fm wants every link refused
//! and named, and it would add half a dozen crates. Other platforms get a
//! path-based fallback with the same checks (made just before each
//! operation, so not race-free).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// What an entry is (links are never followed to find out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Link,
    /// A device, FIFO, socket.
    Other,
}

/// An entry's metadata, read without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    /// Modification and status-change times, nanoseconds since the epoch.
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    /// Permission bits.
    pub mode: u32,
}

/// Why an operation on a [`Dir`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// A symbolic link where fm expected a folder or a file.
    #[error("{} is a symbolic link", .0.display())]
    Link(PathBuf),
    /// Something other than a folder where fm expected one.
    #[error("{} is not a folder", .0.display())]
    NotDir(PathBuf),
    /// Any other failure.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl DirError {
    fn io(path: PathBuf) -> impl FnOnce(io::Error) -> DirError {
        move |source| DirError::Io { path, source }
    }
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A unique name for a temporary entry: `{prefix}{pid}-{n}{suffix}`.
pub fn unique_name(prefix: &str, suffix: &str) -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}{}-{n}-{nanos:x}{suffix}", std::process::id())
}

/// An open folder; see the module doc.
#[derive(Debug)]
pub struct Dir {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// The folder's path (for messages, and for tools that need a path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of a child (for messages).
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens and reads a whole file child, with its metadata; `None` if
    /// there is none.
    /// The metadata is the `fstat` that proved it a regular file: one per
    /// file read, and no `statx` or `lseek` to size the buffer.
    pub fn read_file(&self, name: &str) -> Result<Option<(Vec<u8>, Meta)>, DirError> {
        let Some((file, meta)) = self.open_file_meta(name)? else {
            return Ok(None);
        };
        let bytes = imp::read_whole(&file, meta.size).map_err(DirError::io(self.join(name)))?;
        Ok(Some((bytes, meta)))
    }

    /// Removes a child and, if it is a folder, everything in it, never
    /// following a link (a link is removed itself). Read-only folders are
    /// made writable first. Absent is fine.
    pub fn remove_tree(&self, name: &str) -> Result<(), DirError> {
        match self.meta(name)? {
            None => Ok(()),
            Some(m) if m.kind == Kind::Dir => {
                if let Some(sub) = self.open_dir(name)? {
                    sub.make_writable(m.mode)?;
                    for (child, _) in sub.entries()? {
                        sub.remove_tree(&child)?;
                    }
                }
                self.remove_dir(name)
            }
            Some(_) => self.remove_file(name),
        }
    }

    /// Locks the child file `name` (creating it, never through a link).
    pub fn lock(&self, name: &str, on_wait: impl FnOnce(), shared: bool) -> Result<crate::fsutil::LockFile, DirError> {
        let file = self.create_file(name, false)?;
        crate::fsutil::LockFile::lock_open(file, self.join(name), on_wait, shared)
            .map_err(DirError::io(self.join(name)))
    }

    /// Replaces the child file `name` with `bytes` atomically: a new file
    /// `.fm-tmp-*` beside it, flushed, renamed over it. Keeps the mode of
    /// the file it replaces.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), DirError> {
        use std::io::Write as _;
        let mode = match self.meta(name)? {
            Some(m) if m.kind == Kind::Link => return Err(DirError::Link(self.join(name))),
            Some(m) => m.mode & 0o777,
            None => 0o644,
        };
        let tmp = unique_name(crate::fsutil::TMP_PREFIX, "");
        let result = (|| {
            let mut file = self.create_file(&tmp, true)?;
            set_mode(&file, mode).map_err(DirError::io(self.join(&tmp)))?;
            file.write_all(bytes).map_err(DirError::io(self.join(&tmp)))?;
            file.sync_all().map_err(DirError::io(self.join(&tmp)))?;
            self.rename(&tmp, name)
        })();
        if result.is_err() {
            let _ = self.remove_file(&tmp);
        }
        result
    }
}

/// Handles on the folders leading to one place below a root [`Dir`],
/// each opened (or created) relative to its parent's handle without
/// following a link, and kept for the next lookup: paths that come sorted
/// share most of them, and at most one descriptor per level is held.
#[derive(Debug)]
pub struct Chain<'a> {
    root: &'a Dir,
    open: Vec<(String, Dir)>,
}

impl<'a> Chain<'a> {
    /// An empty chain below `root`.
    pub fn new(root: &'a Dir) -> Chain<'a> {
        Chain { root, open: Vec::new() }
    }

    /// The folder `folder` (`/`-separated, relative to the root; empty for
    /// the root itself), opened, or with `create` created where missing;
    /// `None` if it (or a folder above it) does not exist. A link on the
    /// way is [`DirError::Link`].
    pub fn folder(&mut self, folder: &str, create: bool) -> Result<Option<&Dir>, DirError> {
        let mut depth = 0;
        for part in folder.split('/').filter(|p| !p.is_empty()) {
            if self.open.get(depth).is_some_and(|(c, _)| c == part) {
                depth += 1;
                continue;
            }
            self.open.truncate(depth);
            let parent = self.open.last().map_or(self.root, |(_, d)| d);
            let next = if create {
                Some(parent.create_dir(part)?.0)
            } else {
                parent.open_dir(part)?
            };
            let Some(next) = next else {
                return Ok(None);
            };
            self.open.push((part.to_owned(), next));
            depth += 1;
        }
        self.open.truncate(depth);
        Ok(Some(self.open.last().map_or(self.root, |(_, d)| d)))
    }

    /// The folder of the file `path` (as [`Chain::folder`]) and the file's
    /// name in it.
    pub fn parent_of<'p>(&mut self, path: &'p str, create: bool) -> Result<Option<(&Dir, &'p str)>, DirError> {
        let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
        Ok(self.folder(folder, create)?.map(|d| (d, name)))
    }
}

/// Nanoseconds since the epoch of a (seconds, nanoseconds) pair.
#[cfg(unix)]
fn ns(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(not(unix))]
mod portable;
#[cfg(not(unix))]
use portable as imp;

use imp::{file_meta, set_mode};

/// Metadata of an open file.
pub fn meta_of_file(file: &File) -> io::Result<Meta> {
    file_meta(file)
}

/// Sets the permission bits of an open file.
pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    set_mode(file, mode)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_are_refused_and_removed_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep.txt"), "keep").unwrap();
        let inside = tmp.path().join("inside");
        std::fs::create_dir(&inside).unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("keep.txt"), inside.join("file-link")).unwrap();
        std::fs::create_dir_all(inside.join("sub/deeper")).unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("sub/deeper/link")).unwrap();

        let d = Dir::open_path(&inside).unwrap().unwrap();
        assert!(matches!(d.open_dir("link"), Err(DirError::Link(_))));
        assert!(matches!(d.open_file("file-link"), Err(DirError::Link(_))));
        assert!(matches!(d.create_dir("link"), Err(DirError::Link(_))));
        assert!(matches!(d.lock("file-link", || {}, false), Err(DirError::Link(_))));
        assert!(matches!(d.write_atomic("file-link", b"x"), Err(DirError::Link(_))));
        assert!(matches!(Dir::open_path(&inside.join("link")), Err(DirError::Link(_))));
        let mut kinds = d.entries().unwrap();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                ("file-link".to_owned(), Kind::Link),
                ("link".to_owned(), Kind::Link),
                ("sub".to_owned(), Kind::Dir)
            ]
        );

        // Read-only folders are removed too; links inside are unlinked.
        std::fs::write(inside.join("sub/deeper/f"), "x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(inside.join("sub/deeper"), std::fs::Permissions::from_mode(0o555)).unwrap();
        d.remove_tree("sub").unwrap();
        d.remove_tree("link").unwrap();
        d.remove_tree("file-link").unwrap();
        assert!(d.entries().unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(outside.join("keep.txt")).unwrap(), "keep");

        d.write_atomic("state", b"one").unwrap();
        d.write_atomic("state", b"two").unwrap();
        assert_eq!(d.read_file("state").unwrap().unwrap().0, b"two");
        assert_eq!(d.entries().unwrap().len(), 1);
    }

    #[test]
    fn rename_new_never_replaces_and_read_file_reads_all() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Dir::open_path(tmp.path()).unwrap().unwrap();
        d.create_new_dir("staged").unwrap();
        d.create_new_dir("taken").unwrap();
        std::fs::write(tmp.path().join("taken/keep"), "keep").unwrap();
        std::os::unix::fs::symlink("taken", tmp.path().join("link")).unwrap();
        // Something in the way (a folder, a link): nothing changes.
        assert!(!d.rename_new("staged", "taken").unwrap());
        assert!(!d.rename_new("staged", "link").unwrap());
        assert_eq!(std::fs::read_to_string(tmp.path().join("taken/keep")).unwrap(), "keep");
        assert!(tmp.path().join("staged").is_dir());
        assert!(d.rename_new("staged", "free").unwrap());
        assert!(!tmp.path().join("staged").exists() && tmp.path().join("free").is_dir());

        // A file larger than one read buffer, and an empty one, whole.
        let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        std::fs::write(tmp.path().join("big"), &big).unwrap();
        std::fs::write(tmp.path().join("empty"), b"").unwrap();
        let (bytes, meta) = d.read_file("big").unwrap().unwrap();
        assert_eq!((bytes, meta.size, meta.kind), (big, 100_000, Kind::File));
        assert!(d.read_file("empty").unwrap().unwrap().0.is_empty());
        assert!(d.read_file("absent").unwrap().is_none());
        assert!(matches!(d.read_file("link"), Err(DirError::Link(_))));
    }
}
