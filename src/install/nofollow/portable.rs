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

pub(super) fn read_whole(mut file: &File, size: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
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

    pub(super) fn open_file_meta(&self, name: &str) -> Result<Option<(File, Meta)>, DirError> {
        let Some(file) = self.open_file(name)? else {
            return Ok(None);
        };
        let meta = file_meta(&file).map_err(DirError::io(self.join(name)))?;
        Ok(Some((file, meta)))
    }

    pub(crate) fn create_file(&self, name: &str, new: bool) -> Result<File, DirError> {
        self.create_file_mode(name, new, 0o644)
    }

    pub(crate) fn create_file_mode(&self, name: &str, new: bool, _mode: u32) -> Result<File, DirError> {
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

    pub(crate) fn spread_new_folders(&self) {}

    pub fn rename(&self, from: &str, to: &str) -> Result<(), DirError> {
        std::fs::rename(self.join(from), self.join(to)).map_err(DirError::io(self.join(to)))
    }

    pub fn rename_new(&self, from: &str, to: &str) -> Result<bool, DirError> {
        if lmeta(&self.join(to))?.is_some() {
            return Ok(false);
        }
        self.rename(from, to).map(|()| true)
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

    /// Gives the owner full rights on this folder if it lacks any (to
    /// empty a read-only folder); `mode` is its current mode.
    pub(crate) fn make_writable(&self, _mode: u32) -> Result<(), DirError> {
        Ok(())
    }
}
