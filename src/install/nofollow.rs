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
    pub fn read_file(&self, name: &str) -> Result<Option<(Vec<u8>, Meta)>, DirError> {
        use std::io::Read as _;
        let Some(mut file) = self.open_file(name)? else {
            return Ok(None);
        };
        let meta = file_meta(&file).map_err(DirError::io(self.join(name)))?;
        let mut bytes = Vec::with_capacity(meta.size as usize);
        file.read_to_end(&mut bytes).map_err(DirError::io(self.join(name)))?;
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

/// Nanoseconds since the epoch of a (seconds, nanoseconds) pair.
#[cfg(unix)]
fn ns(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

#[cfg(unix)]
mod imp {
    use std::ffi::{CStr, CString};
    use std::fs::File;
    use std::io;
    use std::path::{Path, PathBuf};

    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use rustix::io::Errno;

    use super::{Dir, DirError, Kind, Meta};

    const DIR_FLAGS: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);

    fn kind_of(mode: u32) -> Kind {
        match rustix::fs::FileType::from_raw_mode(mode as _) {
            rustix::fs::FileType::RegularFile => Kind::File,
            rustix::fs::FileType::Directory => Kind::Dir,
            rustix::fs::FileType::Symlink => Kind::Link,
            _ => Kind::Other,
        }
    }

    #[allow(clippy::unnecessary_cast)] // the field's type differs between platforms
    fn mode_of(st: &rustix::fs::Stat) -> u32 {
        st.st_mode as u32
    }

    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    pub(super) fn meta_of(st: &rustix::fs::Stat) -> Meta {
        Meta {
            kind: kind_of(mode_of(st)),
            size: st.st_size as u64,
            mtime_ns: super::ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime_ns: super::ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
            ino: st.st_ino as u64,
            mode: mode_of(st) & 0o7777,
        }
    }

    pub(super) fn file_meta(file: &File) -> io::Result<Meta> {
        Ok(meta_of(&rustix::fs::fstat(file)?))
    }

    pub(super) fn set_mode(file: &File, mode: u32) -> io::Result<()> {
        Ok(rustix::fs::fchmod(file, Mode::from_raw_mode(mode as _))?)
    }

    /// Turns an open failure into Link / NotDir / Io by looking at what is
    /// there (without following it).
    fn classify(at: impl rustix::fd::AsFd, name: &Path, shown: PathBuf, e: Errno) -> DirError {
        if e == Errno::LOOP || e == Errno::NOTDIR || e == Errno::MLINK {
            match rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if kind_of(mode_of(&st)) == Kind::Link => return DirError::Link(shown),
                Ok(st) if kind_of(mode_of(&st)) != Kind::Dir => return DirError::NotDir(shown),
                _ => {}
            }
        }
        DirError::Io {
            path: shown,
            source: e.into(),
        }
    }

    impl Dir {
        /// Opens the folder at `path`. Its last component must not be a
        /// link; links above it are followed (the path is the user's).
        /// `None` if it does not exist.
        pub fn open_path(path: &Path) -> Result<Option<Dir>, DirError> {
            match rustix::fs::openat(CWD, path, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => Ok(Some(Dir {
                    fd,
                    path: path.to_owned(),
                })),
                Err(Errno::NOENT) => Ok(None),
                Err(e) => Err(classify(CWD, path, path.to_owned(), e)),
            }
        }

        /// Opens the folder at `path`, creating it (and, following links,
        /// its parents) if needed. Returns whether it was created.
        pub fn create_path(path: &Path) -> Result<(Dir, bool), DirError> {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(DirError::io(parent.to_owned()))?;
            }
            let created = match rustix::fs::mkdirat(CWD, path, Mode::from_raw_mode(0o755)) {
                Ok(()) => true,
                Err(Errno::EXIST) => false,
                Err(e) => return Err(DirError::io(path.to_owned())(e.into())),
            };
            match Dir::open_path(path)? {
                Some(d) => Ok((d, created)),
                None => Err(DirError::io(path.to_owned())(io::ErrorKind::NotFound.into())),
            }
        }

        /// A second handle on the same folder.
        pub fn try_clone(&self) -> Result<Dir, DirError> {
            let fd =
                rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(|e| DirError::io(self.path.clone())(e.into()))?;
            Ok(Dir {
                fd,
                path: self.path.clone(),
            })
        }

        /// Opens the child folder `name`; `None` if there is none.
        pub fn open_dir(&self, name: &str) -> Result<Option<Dir>, DirError> {
            match rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => Ok(Some(Dir {
                    fd,
                    path: self.join(name),
                })),
                Err(Errno::NOENT) => Ok(None),
                Err(e) => Err(classify(&self.fd, Path::new(name), self.join(name), e)),
            }
        }

        /// Opens the child folder `name`, creating it if needed; returns
        /// whether it was created.
        pub fn create_dir(&self, name: &str) -> Result<(Dir, bool), DirError> {
            let created = match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => true,
                Err(Errno::EXIST) => false,
                Err(e) => return Err(DirError::io(self.join(name))(e.into())),
            };
            match self.open_dir(name)? {
                Some(d) => Ok((d, created)),
                None => Err(DirError::io(self.join(name))(io::ErrorKind::NotFound.into())),
            }
        }

        /// Creates a new child folder `name`; fails if anything is there.
        pub fn create_new_dir(&self, name: &str) -> Result<Dir, DirError> {
            rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755))
                .map_err(|e| DirError::io(self.join(name))(e.into()))?;
            self.open_dir(name)?
                .ok_or_else(|| DirError::io(self.join(name))(io::ErrorKind::NotFound.into()))
        }

        /// Metadata of the child (or the `/`-separated relative path)
        /// `name`, not following a link at its last component; `None` if
        /// absent.
        pub fn meta(&self, name: &str) -> Result<Option<Meta>, DirError> {
            match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Ok(Some(meta_of(&st))),
                Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
                Err(e) => Err(DirError::io(self.join(name))(e.into())),
            }
        }

        /// This folder's own metadata.
        pub fn own_meta(&self) -> Result<Meta, DirError> {
            rustix::fs::fstat(&self.fd)
                .map(|st| meta_of(&st))
                .map_err(|e| DirError::io(self.path.clone())(e.into()))
        }

        /// The children, with what each is. Names that are not UTF-8 are
        /// listed lossily (fm never created such a name).
        pub fn entries(&self) -> Result<Vec<(String, Kind)>, DirError> {
            let mut out = Vec::new();
            for (raw, kind) in self.raw_entries()? {
                out.push((raw.to_string_lossy().into_owned(), kind));
            }
            Ok(out)
        }

        fn raw_entries(&self) -> Result<Vec<(CString, Kind)>, DirError> {
            let err = |e: Errno| DirError::io(self.path.clone())(e.into());
            let mut dir = rustix::fs::Dir::read_from(&self.fd).map_err(err)?;
            let mut out = Vec::new();
            while let Some(entry) = dir.read() {
                let entry = entry.map_err(err)?;
                let name: &CStr = entry.file_name();
                if name.to_bytes() == b"." || name.to_bytes() == b".." {
                    continue;
                }
                let kind = match entry.file_type() {
                    rustix::fs::FileType::RegularFile => Kind::File,
                    rustix::fs::FileType::Directory => Kind::Dir,
                    rustix::fs::FileType::Symlink => Kind::Link,
                    rustix::fs::FileType::Unknown => {
                        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                            Ok(st) => kind_of(mode_of(&st)),
                            Err(Errno::NOENT) => continue,
                            Err(e) => return Err(err(e)),
                        }
                    }
                    _ => Kind::Other,
                };
                out.push((name.to_owned(), kind));
            }
            Ok(out)
        }

        /// Opens the child file `name` for reading, never through a link
        /// (a link is [`DirError::Link`]); `None` if absent.
        pub fn open_file(&self, name: &str) -> Result<Option<File>, DirError> {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
            match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
                Ok(fd) => {
                    let file = File::from(fd);
                    match super::file_meta(&file) {
                        Ok(m) if m.kind == Kind::File => Ok(Some(file)),
                        Ok(_) => Err(DirError::io(self.join(name))(io::Error::other("not a regular file"))),
                        Err(e) => Err(DirError::io(self.join(name))(e)),
                    }
                }
                Err(Errno::NOENT) => Ok(None),
                Err(Errno::LOOP) | Err(Errno::MLINK) => Err(DirError::Link(self.join(name))),
                Err(e) => Err(DirError::io(self.join(name))(e.into())),
            }
        }

        /// Creates (or, unless `new`, opens) the child file `name` for
        /// writing, never through a link.
        pub(super) fn create_file(&self, name: &str, new: bool) -> Result<File, DirError> {
            let mut flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            if new {
                flags |= OFlags::EXCL;
            }
            match rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o644)) {
                Ok(fd) => Ok(File::from(fd)),
                Err(Errno::LOOP) | Err(Errno::MLINK) => Err(DirError::Link(self.join(name))),
                Err(e) => Err(DirError::io(self.join(name))(e.into())),
            }
        }

        /// Renames the child `from` to `to` (replacing what `to` names; a
        /// link there is replaced, not followed).
        pub fn rename(&self, from: &str, to: &str) -> Result<(), DirError> {
            rustix::fs::renameat(&self.fd, from, &self.fd, to).map_err(|e| DirError::io(self.join(to))(e.into()))
        }

        /// Removes the empty child folder `name`.
        pub fn remove_dir(&self, name: &str) -> Result<(), DirError> {
            rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)
                .map_err(|e| DirError::io(self.join(name))(e.into()))
        }

        /// Removes the child file (or link) `name`.
        pub fn remove_file(&self, name: &str) -> Result<(), DirError> {
            match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(DirError::io(self.join(name))(e.into())),
            }
        }

        pub(super) fn make_writable(&self, mode: u32) -> Result<(), DirError> {
            if mode & 0o700 != 0o700 {
                rustix::fs::fchmod(&self.fd, Mode::from_raw_mode((mode | 0o700) as _))
                    .map_err(|e| DirError::io(self.path.clone())(e.into()))?;
            }
            Ok(())
        }
    }
}

#[cfg(not(unix))]
mod imp {
    //! Path-based fallback: the same checks, made just before each
    //! operation with `symlink_metadata`.
    use std::fs::File;
    use std::io;
    use std::path::Path;

    use super::{Dir, DirError, Kind, Meta};

    pub(super) fn meta_of(m: &std::fs::Metadata) -> Meta {
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            Kind::Link
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        let t = |t: io::Result<std::time::SystemTime>| {
            t.ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i64)
        };
        Meta {
            kind,
            size: m.len(),
            mtime_ns: t(m.modified()),
            ctime_ns: t(m.created()),
            ino: 0,
            mode: if m.permissions().readonly() { 0o444 } else { 0o644 },
        }
    }

    pub(super) fn file_meta(file: &File) -> io::Result<Meta> {
        Ok(meta_of(&file.metadata()?))
    }

    pub(super) fn set_mode(_: &File, _: u32) -> io::Result<()> {
        Ok(())
    }

    fn lmeta(p: &Path) -> Result<Option<Meta>, DirError> {
        match std::fs::symlink_metadata(p) {
            Ok(m) => Ok(Some(meta_of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DirError::io(p.to_owned())(e)),
        }
    }

    fn check_dir(p: &Path) -> Result<Option<Dir>, DirError> {
        match lmeta(p)? {
            None => Ok(None),
            Some(m) if m.kind == Kind::Link => Err(DirError::Link(p.to_owned())),
            Some(m) if m.kind != Kind::Dir => Err(DirError::NotDir(p.to_owned())),
            Some(_) => Ok(Some(Dir { path: p.to_owned() })),
        }
    }

    impl Dir {
        pub fn open_path(path: &Path) -> Result<Option<Dir>, DirError> {
            check_dir(path)
        }

        pub fn create_path(path: &Path) -> Result<(Dir, bool), DirError> {
            let created = lmeta(path)?.is_none();
            if created {
                std::fs::create_dir_all(path).map_err(DirError::io(path.to_owned()))?;
            }
            let d = check_dir(path)?.ok_or_else(|| DirError::io(path.to_owned())(io::ErrorKind::NotFound.into()))?;
            Ok((d, created))
        }

        pub fn try_clone(&self) -> Result<Dir, DirError> {
            Ok(Dir {
                path: self.path.clone(),
            })
        }

        pub fn open_dir(&self, name: &str) -> Result<Option<Dir>, DirError> {
            check_dir(&self.join(name))
        }

        pub fn create_dir(&self, name: &str) -> Result<(Dir, bool), DirError> {
            let p = self.join(name);
            let created = match std::fs::create_dir(&p) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(DirError::io(p)(e)),
            };
            let d = check_dir(&p)?.ok_or_else(|| DirError::io(p.clone())(io::ErrorKind::NotFound.into()))?;
            Ok((d, created))
        }

        pub fn create_new_dir(&self, name: &str) -> Result<Dir, DirError> {
            let p = self.join(name);
            std::fs::create_dir(&p).map_err(DirError::io(p.clone()))?;
            Ok(Dir { path: p })
        }

        pub fn meta(&self, name: &str) -> Result<Option<Meta>, DirError> {
            lmeta(&self.join(name))
        }

        pub fn own_meta(&self) -> Result<Meta, DirError> {
            lmeta(&self.path)?.ok_or_else(|| DirError::io(self.path.clone())(io::ErrorKind::NotFound.into()))
        }

        pub fn entries(&self) -> Result<Vec<(String, Kind)>, DirError> {
            let rd = std::fs::read_dir(&self.path).map_err(DirError::io(self.path.clone()))?;
            let mut out = Vec::new();
            for e in rd {
                let e = e.map_err(DirError::io(self.path.clone()))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(m) = lmeta(&e.path())? {
                    out.push((name, m.kind));
                }
            }
            Ok(out)
        }

        pub fn open_file(&self, name: &str) -> Result<Option<File>, DirError> {
            let p = self.join(name);
            match lmeta(&p)? {
                None => Ok(None),
                Some(m) if m.kind == Kind::Link => Err(DirError::Link(p)),
                Some(m) if m.kind != Kind::File => Err(DirError::io(p)(io::Error::other("not a regular file"))),
                Some(_) => File::open(&p).map(Some).map_err(DirError::io(p)),
            }
        }

        pub(super) fn create_file(&self, name: &str, new: bool) -> Result<File, DirError> {
            let p = self.join(name);
            if lmeta(&p)?.is_some_and(|m| m.kind == Kind::Link) {
                return Err(DirError::Link(p));
            }
            let mut o = std::fs::OpenOptions::new();
            o.read(true).write(true);
            if new {
                o.create_new(true);
            } else {
                o.create(true).truncate(false);
            }
            o.open(&p).map_err(DirError::io(p))
        }

        pub fn rename(&self, from: &str, to: &str) -> Result<(), DirError> {
            std::fs::rename(self.join(from), self.join(to)).map_err(DirError::io(self.join(to)))
        }

        pub fn remove_dir(&self, name: &str) -> Result<(), DirError> {
            std::fs::remove_dir(self.join(name)).map_err(DirError::io(self.join(name)))
        }

        pub fn remove_file(&self, name: &str) -> Result<(), DirError> {
            match std::fs::remove_file(self.join(name)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(DirError::io(self.join(name))(e)),
            }
        }

        pub(super) fn make_writable(&self, _mode: u32) -> Result<(), DirError> {
            Ok(())
        }
    }
}

use imp::{file_meta, set_mode};

/// Metadata of an open file.
pub fn meta_of_file(file: &File) -> io::Result<Meta> {
    file_meta(file)
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
}
