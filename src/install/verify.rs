//! `fm verify` (and `fm sync --repair`): the installed tree against the
//! archives it was installed from.
//!
//! What a package must contain is derived from its archive — the cached
//! one, re-hashed against the digest the state file records (and, when a
//! lock is given, the lock records) — by [`super::contents`], never from the
//! state file's per-file digests or any cache metadata: whoever commits
//! `.fm/` or fills the cache controls those. Every installed file is hashed
//! (packages in parallel, on rayon) and compared with the archive's file
//! and executable bit. Drift is reported package by package: modified,
//! missing and extra files, package folders that should not be there or
//! are gone, packages that are not the locked archive, and packages whose
//! archive is not in the cache (which cannot be checked). Nothing is
//! written, and nothing is read through a link: links are reported as
//! extra entries, and a link among the package folders is refused.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::layout::Layout;
use super::nofollow::{Dir, Kind};
use super::state::State;
use super::{Cache, InstallError};
use crate::archive::{ExtractedFile, Limits};
use crate::lock::LockedPackage;

/// What differs in one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageDrift {
    pub name: String,
    /// Files whose content or executable bit differs from the archive's.
    pub modified: Vec<String>,
    /// Files of the archive that are not installed.
    pub missing: Vec<String>,
    /// Files (or links, or other entries) the archive does not have.
    pub extra: Vec<String>,
}

impl PackageDrift {
    fn is_clean(&self) -> bool {
        self.modified.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

/// Everything `fm verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Packages with drift, by name.
    pub packages: Vec<PackageDrift>,
    /// Package folders recorded in the state but gone.
    pub missing_packages: Vec<String>,
    /// Entries of the install folder no package accounts for.
    pub extra_packages: Vec<String>,
    /// Installed packages that are not the archive the lock names:
    /// `(name, installed "version (sha256)", locked "version (sha256)")`.
    pub not_locked: Vec<(String, String, String)>,
    /// Installed packages whose archive is not in the cache, so what they
    /// must contain is unknown: `name version`.
    pub uncached: Vec<String>,
    /// How many packages and files were checked.
    pub checked_packages: usize,
    pub checked_files: usize,
}

impl Drift {
    /// Whether the installed tree matches its archives exactly.
    pub fn is_clean(&self) -> bool {
        self.packages.is_empty()
            && self.missing_packages.is_empty()
            && self.extra_packages.is_empty()
            && self.not_locked.is_empty()
            && self.uncached.is_empty()
    }

    /// The packages `fm sync --repair` installs again.
    pub fn to_repair(&self) -> std::collections::BTreeSet<String> {
        self.packages
            .iter()
            .map(|p| p.name.clone())
            .chain(self.missing_packages.iter().cloned())
            .chain(self.not_locked.iter().map(|n| n.0.clone()))
            .chain(
                self.uncached
                    .iter()
                    .filter_map(|n| n.split(' ').next().map(str::to_owned)),
            )
            .collect()
    }
}

/// Checks the install folder of `layout` against the cached archives its
/// state names; with `locked`, also that they are the locked ones.
pub fn verify(layout: &Layout, cache: &Cache, locked: Option<&[LockedPackage]>) -> Result<Drift, InstallError> {
    let nothing = || InstallError::NothingInstalled {
        dir: layout.packages.display().to_string(),
    };
    let opened = layout.open(false)?.ok_or_else(nothing)?;
    let Some((bytes, _)) = opened.meta.read_file(layout.state_name())? else {
        return Err(nothing());
    };
    let state = State::parse(&layout.state, &String::from_utf8_lossy(&bytes))?;
    let mut drift = Drift {
        checked_packages: state.packages.len(),
        ..Drift::default()
    };
    for (name, kind) in opened.packages.entries()? {
        if Layout::is_own_entry(&name) {
            continue;
        }
        if kind == Kind::Link {
            return Err(InstallError::Link {
                path: opened.packages.join(&name).display().to_string(),
            });
        }
        if !state.packages.contains_key(&name) {
            drift.extra_packages.push(name);
        }
    }
    drift.extra_packages.sort();
    let locked: BTreeMap<&str, &LockedPackage> = locked
        .unwrap_or_default()
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();

    enum Outcome {
        Checked(PackageDrift, usize),
        Missing,
        Uncached,
    }
    let results: Vec<Result<Outcome, InstallError>> = state
        .packages
        .par_iter()
        .map(|(name, pkg)| {
            let Some(bytes) = cache.read_archive(name, &pkg.version, &pkg.sha256)? else {
                return Ok(Outcome::Uncached);
            };
            let expected =
                super::contents::archive_files(&bytes, &Limits::default()).map_err(|source| InstallError::Unpack {
                    package: name.clone(),
                    version: pkg.version.clone(),
                    source,
                })?;
            let Some(dir) = opened.packages.open_dir(name)? else {
                return Ok(Outcome::Missing);
            };
            let n = expected.len();
            check_package(&dir, name, &expected).map(|d| Outcome::Checked(d, n))
        })
        .collect();
    for ((name, pkg), r) in state.packages.iter().zip(results) {
        if let Some(l) = locked.get(name.as_str())
            && (l.sha256 != pkg.sha256 || l.version.to_string() != pkg.version)
        {
            drift.not_locked.push((
                name.clone(),
                format!("{} ({})", pkg.version, pkg.sha256),
                format!("{} ({})", l.version, l.sha256),
            ));
        }
        match r? {
            Outcome::Uncached => drift.uncached.push(format!("{name} {}", pkg.version)),
            Outcome::Missing => drift.missing_packages.push(name.clone()),
            Outcome::Checked(d, n) => {
                drift.checked_files += n;
                if !d.is_clean() {
                    drift.packages.push(d);
                }
            }
        }
    }
    Ok(drift)
}

fn check_package(dir: &Dir, name: &str, expected: &[ExtractedFile]) -> Result<PackageDrift, InstallError> {
    let mut drift = PackageDrift {
        name: name.to_owned(),
        ..PackageDrift::default()
    };
    let want: BTreeMap<&str, &ExtractedFile> = expected.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut found = std::collections::BTreeSet::new();
    walk(dir, "", &want, &mut found, &mut drift)?;
    for path in want.keys() {
        if !found.contains(*path) {
            drift.missing.push((*path).to_owned());
        }
    }
    drift.modified.sort();
    drift.extra.sort();
    Ok(drift)
}

/// Walks `dir` without following links, hashing every regular file the
/// archive has and comparing it; anything else is extra.
fn walk(
    dir: &Dir,
    prefix: &str,
    want: &BTreeMap<&str, &ExtractedFile>,
    found: &mut std::collections::BTreeSet<String>,
    drift: &mut PackageDrift,
) -> Result<(), InstallError> {
    for (name, kind) in dir.entries()? {
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        match kind {
            Kind::Dir => {
                let sub = dir.open_dir(&name)?.ok_or_else(|| InstallError::Io {
                    what: dir.join(&name).display().to_string(),
                    source: std::io::ErrorKind::NotFound.into(),
                })?;
                walk(&sub, &rel, want, found, drift)?;
            }
            Kind::File => {
                let Some(expected) = want.get(rel.as_str()) else {
                    drift.extra.push(rel);
                    continue;
                };
                let Some(file) = dir.open_file(&name)? else {
                    continue; // gone meanwhile: reported missing
                };
                let exec = super::nofollow::meta_of_file(&file).is_ok_and(|m| m.mode & 0o111 != 0);
                let (actual, _) = crate::fsutil::sha256_reader(std::io::BufReader::new(file))
                    .map_err(InstallError::io(format!("reading {}", dir.join(&name).display())))?;
                // Windows has no executable bit to compare.
                let exec_differs = cfg!(unix) && exec != expected.executable;
                if actual != expected.sha256 || exec_differs {
                    drift.modified.push(rel.clone());
                }
                found.insert(rel);
            }
            Kind::Link | Kind::Other => drift.extra.push(rel),
        }
    }
    Ok(())
}
