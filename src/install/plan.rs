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

use std::collections::{BTreeMap, BTreeSet};

use super::layout::{Layout, Opened};
use super::nofollow::{Dir, Kind};
use super::state::{InstalledPackage, State};
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

pub(super) fn plan<'a>(
    packages: &'a [LockedPackage],
    layout: &Layout,
    opened: Option<&Opened>,
    prune: bool,
    reinstall: &BTreeSet<String>,
) -> Result<Plan<'a>, InstallError> {
    let mut present: BTreeMap<String, Kind> = BTreeMap::new();
    let mut leftovers = Vec::new();
    let (old_state, state_exists, state_mtime) = match opened {
        Some(o) => {
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
                    present.insert(name, kind);
                }
            }
            read_state(layout, o)?
        }
        None => (State::default(), false, 0),
    };
    if !layout.owned && !state_exists && !present.is_empty() {
        return Err(InstallError::NotOwned {
            dir: layout.packages.display().to_string(),
        });
    }
    let wanted: BTreeMap<&str, &LockedPackage> = packages.iter().map(|p| (p.name.as_str(), p)).collect();

    let blocked: Vec<String> = packages
        .iter()
        .filter(|p| present.contains_key(&p.name) && !old_state.owns(&p.name))
        .map(|p| layout.packages.join(&p.name).display().to_string())
        .collect();
    if !blocked.is_empty() {
        return Err(InstallError::NotInstalledByFm {
            paths: blocked,
            state: layout.state.display().to_string(),
        });
    }

    // Candidates to leave in place, then their files' stat data checked:
    // one `lstat` each, on this thread (a rayon pool costs more than it
    // saves here when the machine is busy: the check is a few ms of system
    // calls).
    let candidates: Vec<(&LockedPackage, &InstalledPackage)> = packages
        .iter()
        .filter_map(|p| {
            let s = old_state.packages.get(&p.name)?;
            (s.sha256 == p.sha256
                && s.version == p.version.to_string()
                && present.get(&p.name) == Some(&Kind::Dir)
                && !reinstall.contains(&p.name))
            .then_some((p, s))
        })
        .collect();
    let unchanged: Vec<bool> = match opened {
        Some(o) => candidates
            .iter()
            .map(|(_, s)| files_unchanged(&o.packages, s, state_mtime))
            .collect(),
        None => Vec::new(),
    };
    let mut keep = BTreeSet::new();
    let mut changed = Vec::new();
    for ((p, _), ok) in candidates.iter().zip(unchanged) {
        if ok {
            keep.insert(p.name.clone());
        } else {
            changed.push(p.name.clone());
        }
    }
    let to_install: Vec<&LockedPackage> = packages.iter().filter(|p| !keep.contains(&p.name)).collect();

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

/// Whether every recorded file of `pkg` still has the stat data fm
/// recorded; racy ones (recorded times not older than the state file,
/// `racy_from`) must also hash to their recorded digest.
fn files_unchanged(packages: &Dir, pkg: &InstalledPackage, racy_from: i64) -> bool {
    let mut rel = String::with_capacity(128);
    for (path, file) in &pkg.files {
        let Some(want) = file.stat else {
            return false;
        };
        rel.clear();
        rel.push_str(&pkg.name);
        rel.push('/');
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
        if (want.mtime >= racy_from || want.ctime >= racy_from) && !hashes_to(packages, &rel, &file.sha256) {
            return false;
        }
    }
    true
}

fn hashes_to(dir: &Dir, rel: &str, sha256: &str) -> bool {
    match dir.open_file(rel) {
        Ok(Some(f)) => crate::fsutil::sha256_reader(std::io::BufReader::new(f)).is_ok_and(|(h, _)| h == sha256),
        _ => false,
    }
}
