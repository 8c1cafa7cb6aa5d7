//! Step 1 of [`super::install`]: what a run has to do, read from the
//! install folder and the state file, changing nothing.
//!
//! Rules kept here:
//! - a symbolic link among the package folders or fm's leftovers is refused
//!   (naming it), before anything is fetched or written;
//! - a package folder is *owned* by fm only if the state file names it
//!   (installed, or `owned` while an install was under way); only owned
//!   folders are replaced or removed. One that is in the way of a package
//!   to install is an error; any other is reported and left alone;
//! - a package is left in place only if the state records it with the
//!   locked digest and every recorded file still has the stat data fm saw
//!   after writing it (size, mtime, ctime, inode); racy files (times not
//!   older than the state file) are hashed instead.
//!
//! A no-op is proven first by [`quick_noop`] (or, started before the lock
//! was read, by a [`super::Precheck`]): [`prove`] reads the state file
//! without copying it and checks the packages' files in parallel; only
//! when it is not a no-op (or in doubt) does [`plan`] parse the state whole.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use super::layout::{Layout, Opened};
use super::nofollow::{Chain, Dir, Kind};
use super::state::{self, FileView, State};
use super::{InstallError, TMP_PREFIX, TRASH_PREFIX};
use crate::lock::LockedPackage;

/// What a run has to do.
pub(super) struct Plan<'a> {
    /// Everything is in place: nothing to do.
    pub noop: bool,
    pub to_install: Vec<&'a LockedPackage>,
    /// Names whose state records stay as they are.
    pub keep: BTreeSet<String>,
    /// Owned package folders to remove.
    pub extras: Vec<String>,
    /// Package folders fm did not install: reported, left alone.
    pub foreign: Vec<String>,
    /// Packages to install again because their files changed on disk.
    pub changed: Vec<String>,
    /// `.fm-tmp-*`/`.fm-trash-*` left by an interrupted run.
    pub leftovers: Vec<String>,
    /// Package folders present (names).
    pub present: BTreeSet<String>,
    pub old_state: State,
    pub state_exists: bool,
}

/// Reads the state file of an opened layout: the state (an unreadable one
/// vouches for and owns nothing), whether the file exists, and its mtime.
pub(super) fn read_state(layout: &Layout, opened: &Opened) -> Result<(State, bool, i64), InstallError> {
    let Some((bytes, meta)) = opened.meta.read_file(layout.state_name())? else {
        return Ok((State::default(), false, 0));
    };
    let state = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| State::parse(&layout.state, text).ok())
        .unwrap_or_default();
    Ok((state, true, meta.mtime_ns))
}

/// The package folders and fm's leftovers in an opened packages folder; a
/// link among them is refused.
struct Scan {
    present: BTreeMap<String, Kind>,
    leftovers: Vec<String>,
}

fn scan(o: &Opened) -> Result<Scan, InstallError> {
    // Collected, then built at once (sorted, not inserted one by one).
    let mut present = Vec::new();
    let mut leftovers = Vec::new();
    for (name, kind) in o.packages.entries()? {
        let ours = name.starts_with(TMP_PREFIX) || name.starts_with(TRASH_PREFIX);
        if kind == Kind::Link && (ours || !Layout::is_own_entry(&name)) {
            return Err(InstallError::Link {
                path: o.packages.join(&name).display().to_string(),
            });
        }
        if ours {
            leftovers.push(name);
        } else if !Layout::is_own_entry(&name) {
            present.push((name, kind));
        }
    }
    Ok(Scan {
        present: present.into_iter().collect(),
        leftovers,
    })
}

/// Whether a run has nothing to do, proven cheaply: `Some(foreign)` (the
/// folders fm did not install, to report) when the state file is fm's own
/// format, owns nothing beyond its packages, records exactly `packages`
/// (names, versions, digests), every one of them is a folder whose files
/// all have their recorded stat data, and no leftover is there. `None`
/// when anything differs or is in doubt: [`plan`] then decides (and
/// reports what is wrong). Never more permissive than [`plan`]: whenever
/// this says no-op, so would it.
pub(super) fn quick_noop(
    packages: &[LockedPackage],
    layout: &Layout,
    opened: &Opened,
) -> Result<Option<Vec<String>>, InstallError> {
    Ok(prove(layout, opened, Some(packages))?.and_then(|p| p.covers(packages)))
}

/// What [`prove`] found in place: the packages the state file records
/// (name, version, digest; in name order), every one a folder whose files
/// all have their recorded stat data, no leftover beside them.
#[derive(Debug)]
pub(super) struct Proven {
    packages: Vec<(String, String, String)>,
    present: BTreeMap<String, Kind>,
    /// The state file's identity when it was read (size, times, inode).
    state: (u64, i64, i64, u64),
}

impl Proven {
    /// Whether the state file of `opened` is still the one this proof
    /// read: every fm run that changes the folder rewrites it.
    pub(super) fn still_current(&self, layout: &Layout, opened: &Opened) -> bool {
        matches!(opened.meta.meta(layout.state_name()), Ok(Some(m)) if identity(&m) == self.state)
    }

    /// `Some(foreign)` when `packages` is exactly the set proven in place
    /// (names, versions, digests); the folders fm did not install, to
    /// report.
    pub(super) fn covers(&self, packages: &[LockedPackage]) -> Option<Vec<String>> {
        if self.packages.len() != packages.len() {
            return None;
        }
        // Pairwise, both in name order (the proven ones are, strictly; a
        // lock fm wrote is too, any other is sorted here): equal lengths
        // and equal names pair by pair are equal sets.
        let mut wanted: Vec<&LockedPackage> = packages.iter().collect();
        if !wanted.is_sorted_by(|a, b| a.name.as_str() < b.name.as_str()) {
            wanted.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        }
        let mut version = String::new();
        for ((name, v, sha256), p) in self.packages.iter().zip(&wanted) {
            version.clear();
            std::fmt::Write::write_fmt(&mut version, format_args!("{}", p.version)).ok();
            if *name != p.name.as_str() || *v != version || *sha256 != p.sha256 {
                return None;
            }
        }
        // The present folders the proof does not hold (both in name order).
        let mut proven = self.packages.iter().map(|(name, _, _)| name.as_str()).peekable();
        let mut foreign = Vec::new();
        for name in self.present.keys() {
            while proven.next_if(|p| *p < name.as_str()).is_some() {}
            if proven.next_if(|p| *p == name.as_str()).is_none() {
                foreign.push(name.clone());
            }
        }
        Some(foreign)
    }
}

fn identity(m: &super::nofollow::Meta) -> (u64, i64, i64, u64) {
    (m.size, m.mtime_ns, m.ctime_ns, m.ino)
}

/// Reads the state file without copying it and checks, in parallel, that
/// every package it records is a folder whose files all have their
/// recorded stat data ([`files_unchanged`]). With `wanted`, gives up
/// before any file is looked at when the state does not record exactly
/// those packages; without, proves whatever the state records (a
/// [`super::Precheck`] started before the lock is read). `None` when
/// anything differs or is in doubt.
pub(super) fn prove(
    layout: &Layout,
    opened: &Opened,
    wanted: Option<&[LockedPackage]>,
) -> Result<Option<Proven>, InstallError> {
    let scan = scan(opened)?;
    if !scan.leftovers.is_empty() {
        return Ok(None);
    }
    let Some((bytes, meta)) = opened.meta.read_file(layout.state_name())? else {
        return Ok(None);
    };
    let Some(views) = std::str::from_utf8(&bytes).ok().and_then(state::view) else {
        return Ok(None);
    };
    let mut last: Option<&str> = None;
    for v in &views {
        // Strictly increasing names: each recorded once.
        if last.is_some_and(|l| l >= v.name) || scan.present.get(v.name) != Some(&Kind::Dir) {
            return Ok(None);
        }
        last = Some(v.name);
    }
    let proven = Proven {
        packages: views
            .iter()
            .map(|v| (v.name.to_owned(), v.version.to_owned(), v.sha256.to_owned()))
            .collect(),
        present: scan.present,
        state: identity(&meta),
    };
    if let Some(packages) = wanted
        && proven.covers(packages).is_none()
    {
        return Ok(None);
    }
    let racy_from = meta.mtime_ns;
    let unchanged = views
        .par_iter()
        .all(|v| files_unchanged(&opened.packages, v.name, v.files(), racy_from));
    Ok(unchanged.then_some(proven))
}

pub(super) fn plan<'a>(
    packages: &'a [LockedPackage],
    layout: &Layout,
    opened: Option<&Opened>,
    prune: bool,
    reinstall: &BTreeSet<String>,
) -> Result<Plan<'a>, InstallError> {
    let (Scan { present, leftovers }, (old_state, state_exists, state_mtime)) = match opened {
        Some(o) => (scan(o)?, read_state(layout, o)?),
        None => (
            Scan {
                present: BTreeMap::new(),
                leftovers: Vec::new(),
            },
            (State::default(), false, 0),
        ),
    };
    if !layout.owned && !state_exists && !present.is_empty() {
        return Err(InstallError::NotOwned {
            dir: layout.packages.display().to_string(),
        });
    }
    let wanted: BTreeMap<&str, &LockedPackage> = packages.iter().map(|p| (p.name.as_str(), p)).collect();

    let blocked: Vec<String> = packages
        .iter()
        .filter(|p| present.contains_key(p.name.as_str()) && !old_state.owns(p.name.as_str()))
        .map(|p| layout.packages.join(&p.name).display().to_string())
        .collect();
    if !blocked.is_empty() {
        return Err(InstallError::NotInstalledByFm {
            paths: blocked,
            state: layout.state.display().to_string(),
        });
    }

    // Candidates to leave in place, then their files' stat data checked.
    let candidates: Vec<(&LockedPackage, &state::InstalledPackage)> = packages
        .iter()
        .filter_map(|p| {
            let s = old_state.packages.get(p.name.as_str())?;
            (s.sha256 == p.sha256
                && s.version == p.version.to_string()
                && present.get(p.name.as_str()) == Some(&Kind::Dir)
                && !reinstall.contains(p.name.as_str()))
            .then_some((p, s))
        })
        .collect();
    let unchanged: Vec<bool> = match opened {
        Some(o) => candidates
            .par_iter()
            .map(|(_, s)| {
                let files = s.files.iter().map(|(path, f)| {
                    Some(FileView {
                        path: Cow::Borrowed(path.as_str()),
                        sha256: Cow::Borrowed(f.sha256.as_str()),
                        stat: f.stat,
                    })
                });
                files_unchanged(&o.packages, &s.name, files, state_mtime)
            })
            .collect(),
        None => Vec::new(),
    };
    let mut keep = BTreeSet::new();
    let mut changed = Vec::new();
    for ((p, _), ok) in candidates.iter().zip(unchanged) {
        if ok {
            keep.insert(p.name.to_string());
        } else {
            changed.push(p.name.to_string());
        }
    }
    let to_install: Vec<&LockedPackage> = packages.iter().filter(|p| !keep.contains(p.name.as_str())).collect();

    let mut extras = Vec::new();
    let mut foreign = Vec::new();
    for name in present.keys() {
        if wanted.contains_key(name.as_str()) {
            continue;
        }
        if !old_state.owns(name) {
            foreign.push(name.clone());
        } else if prune {
            extras.push(name.clone());
        } else if old_state.packages.contains_key(name) {
            // `fm install` adds: what was installed before stays.
            keep.insert(name.clone());
        }
    }
    let noop = to_install.is_empty()
        && extras.is_empty()
        && leftovers.is_empty()
        && old_state.owned.is_empty()
        && keep.len() == old_state.packages.len();
    Ok(Plan {
        noop,
        to_install,
        keep,
        extras,
        foreign,
        changed,
        leftovers,
        present: present.into_keys().collect(),
        old_state,
        state_exists,
    })
}

/// Whether every recorded file of the package `name` still has the stat
/// data fm recorded; racy ones (recorded times not older than the state
/// file, `racy_from`) must also hash to their recorded digest. `None` among
/// `files` (a line that could not be read), a path that is not plain, or a
/// digest that is not one, counts as changed.
///
/// Each file is looked up relative to the packages folder's handle as
/// `{name}/{path}`, its last component not followed; each folder on the
/// way is looked up the same way once and must be a folder, so a folder
/// swapped for a link is a change, not a detour. (One `fstatat` a file and
/// one a folder: opening a handle per folder costs two more system calls
/// each, and a no-op sync is made of these calls.)
fn files_unchanged<'f>(
    packages: &Dir,
    name: &str,
    files: impl Iterator<Item = Option<FileView<'f>>>,
    racy_from: i64,
) -> bool {
    let mut rel = String::with_capacity(128);
    rel.push_str(name);
    rel.push('/');
    let base_len = rel.len();
    // Folders of this package already seen to be folders (not links); the
    // last file's folder first (files are sorted by path: most files share
    // the folder of the one before).
    let mut folders: Vec<String> = Vec::new();
    let mut last_folder = String::new();
    for file in files {
        let Some(file) = file else {
            return false;
        };
        let Some(want) = file.stat else {
            return false;
        };
        let path: &str = &file.path;
        if !state::is_plain_relative(path) || !crate::fsutil::is_sha256_hex(&file.sha256) {
            return false;
        }
        rel.truncate(base_len);
        if let Some(folder) = memchr::memrchr(b'/', path.as_bytes()).map(|i| &path[..i])
            && folder != last_folder
        {
            if !folders.iter().any(|f| f == folder) {
                for (i, _) in folder.match_indices('/').chain(std::iter::once((folder.len(), ""))) {
                    let prefix = &folder[..i];
                    if folders.iter().any(|f| f == prefix) {
                        continue;
                    }
                    rel.push_str(prefix);
                    let is_dir = matches!(packages.meta(&rel), Ok(Some(m)) if m.kind == Kind::Dir);
                    rel.truncate(base_len);
                    if !is_dir {
                        return false;
                    }
                    folders.push(prefix.to_owned());
                }
            }
            last_folder.clear();
            last_folder.push_str(folder);
        }
        rel.push_str(path);
        let Ok(Some(m)) = packages.meta(&rel) else {
            return false;
        };
        if m.kind != Kind::File
            || m.size != want.size
            || m.mtime_ns != want.mtime
            || m.ctime_ns != want.ctime
            || m.ino != want.ino
        {
            return false;
        }
        if (want.mtime >= racy_from || want.ctime >= racy_from) && !hashes_to(packages, name, path, &file.sha256) {
            return false;
        }
    }
    true
}

/// Whether the file `path` of the package `name` hashes to `sha256`; read
/// through handles opened without following links.
fn hashes_to(packages: &Dir, name: &str, path: &str, sha256: &str) -> bool {
    let Ok(Some(root)) = packages.open_dir(name) else {
        return false;
    };
    let mut chain = Chain::new(&root);
    let Ok(Some((dir, file))) = chain.parent_of(path, false) else {
        return false;
    };
    match dir.open_file(file) {
        Ok(Some(f)) => crate::fsutil::sha256_reader(std::io::BufReader::new(f)).is_ok_and(|(h, _)| h == sha256),
        _ => false,
    }
}
