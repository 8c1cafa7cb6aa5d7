//! Step 3 of [`super::install`]: each archive (a cached one re-hashed
//! against the lock, a downloaded one from the bytes that matched) unpacked into a new folder `{packages}/.fm-tmp-*` beside its
//! destination, and the stat data of every file written recorded.
//!
//! Every write goes through handles: the staged folder is created
//! relative to the packages folder's handle, and inside it each folder is
//! created and each file created new (`O_EXCL`, `O_NOFOLLOW`) relative to
//! its parent's handle ([`Chain`]), so a process that swaps a folder of the
//! staged tree for a link cannot redirect a write. Each file is created
//! with its mode (`chmod` only where the umask narrowed it), and its stat
//! data is read from the handle it was written through (`fstat`), so it
//! describes exactly the file fm wrote, with no second walk by name.
//!
//! The packages folder is marked as the top of folder trees (`chattr +T`,
//! ext2/3/4's `FS_TOPDIR_FL`; best effort, Linux only): ext4 then places
//! each staged folder, and so its files' inodes, in a block group of its
//! own choosing with room to spare, instead of the packages folder's own.
//! Without it every file of a reinstall is allocated in the group that the
//! last install's files were just freed from, and on a filesystem without
//! a journal ext4 skips each recently freed inode one by one for every new
//! file (`find_inode_bit` -> `recently_deleted`): a cost that grows with
//! the square of the files deleted and dominated `fm sync` after `rm -rf`
//! of `.fm`. The mark changes where inodes go, never what is written.

use std::sync::Mutex;

use super::nofollow::{self, Chain, Dir, DirError};
use super::state::{FileStat, InstalledFile, InstalledPackage};
use super::{Cache, InstallError, TMP_PREFIX};
use crate::archive::{ExtractedFile, Limits, Target};
use crate::lock::LockedPackage;

/// Staged folders not yet renamed into place; removed on drop.
pub(super) struct Staging<'a> {
    dir: &'a Dir,
    names: Mutex<std::collections::HashSet<String>>,
}

impl<'a> Staging<'a> {
    /// Staging in the packages folder `dir`. Asks the filesystem to spread
    /// the folders staged there over the disk (see the module doc).
    pub fn new(dir: &'a Dir) -> Staging<'a> {
        dir.spread_new_folders();
        Staging {
            dir,
            names: Mutex::new(Default::default()),
        }
    }

    fn add(&self, name: &str) {
        if let Ok(mut v) = self.names.lock() {
            v.insert(name.to_owned());
        }
    }

    /// `name` was renamed into place: no longer to remove.
    pub fn forget(&self, name: &str) {
        if let Ok(mut v) = self.names.lock() {
            v.remove(name);
        }
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        if let Ok(v) = self.names.lock() {
            for n in v.iter() {
                let _ = self.dir.remove_tree(n);
            }
        }
    }
}

/// A package unpacked into `{packages}/{tmp}`.
pub(super) struct Staged {
    pub tmp: String,
    files: Vec<(ExtractedFile, FileStat)>,
}

/// The archive's writes, through handles (see the module doc), and the
/// stat data of each file written, read from its open handle once its
/// last byte is written.
struct Handles<'a> {
    chain: Chain<'a>,
    stats: Vec<(String, FileStat)>,
}

fn io_error(e: DirError) -> std::io::Error {
    match e {
        DirError::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    }
}

impl Target for Handles<'_> {
    fn create_dir_all(&mut self, path: &str) -> std::io::Result<()> {
        self.chain.folder(path, true).map_err(io_error)?;
        Ok(())
    }

    fn create_new(&mut self, path: &str, mode: u32) -> std::io::Result<std::fs::File> {
        match self.chain.parent_of(path, true).map_err(io_error)? {
            Some((dir, name)) => dir.create_file_mode(name, true, mode).map_err(io_error),
            None => Err(std::io::ErrorKind::NotFound.into()),
        }
    }

    fn finish(&mut self, path: &str, file: std::fs::File, mode: u32) -> std::io::Result<()> {
        // The mode was asked for at `open`; only a umask that narrowed it
        // costs a `chmod` (and a second `fstat`: it changes the ctime).
        let mut m = nofollow::meta_of_file(&file)?;
        if m.mode & 0o7777 != mode {
            nofollow::set_file_mode(&file, mode)?;
            m = nofollow::meta_of_file(&file)?;
        }
        self.stats.push((
            path.to_owned(),
            FileStat {
                size: m.size,
                mtime: m.mtime_ns,
                ctime: m.ctime_ns,
                ino: m.ino,
            },
        ));
        Ok(())
    }
}

/// Step 3 for one package: the archive unpacked into a new folder; the
/// stat data of every file written. `downloaded`: the archive's verified
/// bytes, when it was just downloaded; otherwise the cached archive is
/// read and re-hashed against the lock.
pub(super) fn stage(
    staging: &Staging<'_>,
    cache: &Cache,
    p: &LockedPackage,
    downloaded: Option<&[u8]>,
) -> Result<Staged, InstallError> {
    let version = p.version.to_string();
    let cached;
    let bytes = match downloaded {
        Some(b) => b,
        None => {
            cached = cache
                .read_archive(&p.name, &version, &p.sha256)?
                .ok_or_else(|| InstallError::Io {
                    what: format!("reading {}", cache.archive_path(&p.sha256).display()),
                    source: std::io::Error::other(
                        "the archive left the cache while fm was installing it; run the command again",
                    ),
                })?;
            &cached[..]
        }
    };
    let tmp = nofollow::unique_name(&format!("{TMP_PREFIX}{}-", p.name), "");
    let dir = staging.dir.create_new_dir(&tmp)?;
    staging.add(&tmp);
    let mut handles = Handles {
        chain: Chain::new(&dir),
        stats: Vec::new(),
    };
    let files = crate::archive::extract_to(
        std::io::Cursor::new(bytes),
        &mut handles,
        dir.path(),
        &Limits::default(),
    )
    .map_err(|source| InstallError::Unpack {
        package: p.name.to_string(),
        version: version.clone(),
        source,
    })?;
    // `files` come sorted by path; the stat data in the order written.
    let mut stats = handles.stats;
    stats.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if stats.len() != files.len() || stats.iter().zip(&files).any(|(s, f)| s.0 != f.path) {
        return Err(InstallError::Io {
            what: dir.path().display().to_string(),
            source: std::io::Error::other("the files written and their stat data disagree"),
        });
    }
    let out: Vec<(ExtractedFile, FileStat)> = files.into_iter().zip(stats.into_iter().map(|(_, s)| s)).collect();
    Ok(Staged { tmp, files: out })
}

/// What the state file records of a staged package.
pub(super) fn record(p: &LockedPackage, s: Staged) -> InstalledPackage {
    InstalledPackage {
        name: p.name.to_string(),
        version: p.version.to_string(),
        sha256: p.sha256.to_string(),
        executable: s
            .files
            .iter()
            .filter(|(f, _)| f.executable)
            .map(|(f, _)| f.path.clone())
            .collect(),
        files: s
            .files
            .into_iter()
            .map(|(f, stat)| {
                (
                    f.path,
                    InstalledFile {
                        sha256: f.sha256,
                        stat: Some(stat),
                    },
                )
            })
            .collect(),
    }
}
