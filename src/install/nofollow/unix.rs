//! The Unix side of [`super::Dir`]: every operation is a system call
//! relative to an open folder descriptor (`openat`, `mkdirat`, `renameat`,
//! `unlinkat`, `fstatat`) with `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`.

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

/// The whole of `file`, whose size `fstat` said was `size`: one `read`
/// of that many bytes and one that finds the end (a file that grew
/// meanwhile is read on), without the `statx` and `lseek` that
/// `File::read_to_end` spends on sizing its buffer.
pub(super) fn read_whole(file: &File, size: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(usize::MAX - 1).saturating_add(1));
    loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve(bytes.capacity().max(8192));
        }
        match rustix::io::read(file, rustix::buffer::spare_capacity(&mut bytes)) {
            Ok(0) => return Ok(bytes),
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
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
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(|e| DirError::io(self.path.clone())(e.into()))?;
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
                rustix::fs::FileType::Unknown => match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => kind_of(mode_of(&st)),
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(err(e)),
                },
                _ => Kind::Other,
            };
            out.push((name.to_owned(), kind));
        }
        Ok(out)
    }

    /// Opens the child file `name` for reading, never through a link
    /// (a link is [`DirError::Link`]); `None` if absent.
    pub fn open_file(&self, name: &str) -> Result<Option<File>, DirError> {
        Ok(self.open_file_meta(name)?.map(|(file, _)| file))
    }

    /// [`Dir::open_file`], with the metadata of the file opened (the one
    /// `fstat` that proved it a regular file).
    pub(super) fn open_file_meta(&self, name: &str) -> Result<Option<(File, Meta)>, DirError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => {
                let file = File::from(fd);
                match super::file_meta(&file) {
                    Ok(m) if m.kind == Kind::File => Ok(Some((file, m))),
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
    pub(crate) fn create_file(&self, name: &str, new: bool) -> Result<File, DirError> {
        self.create_file_mode(name, new, 0o644)
    }

    /// [`Dir::create_file`] asking for the permission bits `mode` (which
    /// the umask may narrow) when it creates the file.
    pub(crate) fn create_file_mode(&self, name: &str, new: bool, mode: u32) -> Result<File, DirError> {
        let mut flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if new {
            flags |= OFlags::EXCL;
        }
        match rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode as _)) {
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

    /// Renames the child `from` to `to` only if nothing is at `to`
    /// (`renameat2(RENAME_NOREPLACE)`, one system call, where a check and
    /// a rename would be two); `Ok(false)` if something is, and nothing
    /// changed.
    pub fn rename_new(&self, from: &str, to: &str) -> Result<bool, DirError> {
        #[cfg(target_os = "linux")]
        match rustix::fs::renameat_with(&self.fd, from, &self.fd, to, rustix::fs::RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(true),
            Err(Errno::EXIST) => return Ok(false),
            // A filesystem without the flag: check, then rename.
            Err(Errno::INVAL) | Err(Errno::NOSYS) => {}
            Err(e) => return Err(DirError::io(self.join(to))(e.into())),
        }
        if self.meta(to)?.is_some() {
            return Ok(false);
        }
        self.rename(from, to).map(|()| true)
    }

    /// Removes the empty child folder `name`.
    pub fn remove_dir(&self, name: &str) -> Result<(), DirError> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).map_err(|e| DirError::io(self.join(name))(e.into()))
    }

    /// Removes the child file (or link) `name`.
    pub fn remove_file(&self, name: &str) -> Result<(), DirError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(DirError::io(self.join(name))(e.into())),
        }
    }

    /// Asks the filesystem to spread the folders created in this one over
    /// the disk, as it does for top-level folders (ext2/3/4's
    /// `FS_TOPDIR_FL`, what `chattr +T` sets). Best effort: elsewhere, or
    /// without the right, nothing changes. See `install/stage.rs`.
    pub(crate) fn spread_new_folders(&self) {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::IFlags;
            if let Ok(flags) = rustix::fs::ioctl_getflags(&self.fd)
                && !flags.contains(IFlags::TOPDIR)
            {
                let _ = rustix::fs::ioctl_setflags(&self.fd, flags | IFlags::TOPDIR);
            }
        }
    }

    /// Gives the owner full rights on this folder if it lacks any (to
    /// empty a read-only folder); `mode` is its current mode.
    pub(crate) fn make_writable(&self, mode: u32) -> Result<(), DirError> {
        if mode & 0o700 != 0o700 {
            rustix::fs::fchmod(&self.fd, Mode::from_raw_mode((mode | 0o700) as _))
                .map_err(|e| DirError::io(self.path.clone())(e.into()))?;
        }
        Ok(())
    }
}
