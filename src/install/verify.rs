//! `fm verify`: re-hashes the installed tree against the state file.
//!
//! Every file of every recorded package is hashed again (in parallel, on
//! rayon) and compared with the digest and executable bit `fm sync`
//! recorded. Drift is reported package by package: modified, missing and
//! extra files, and package folders that should not be there or are gone.

use std::path::Path;

use rayon::prelude::*;

use super::state::{InstalledPackage, State};
use super::{InstallError, Layout};

/// What differs in one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageDrift {
    pub name: String,
    /// Files whose content or executable bit changed.
    pub modified: Vec<String>,
    /// Files recorded but gone.
    pub missing: Vec<String>,
    /// Files (or links, or other entries) fm did not install.
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
    /// How many packages and files were checked.
    pub checked_packages: usize,
    pub checked_files: usize,
}

impl Drift {
    /// Whether the installed tree matches the state exactly.
    pub fn is_clean(&self) -> bool {
        self.packages.is_empty() && self.missing_packages.is_empty() && self.extra_packages.is_empty()
    }
}

/// Checks the install folder of `layout` against its state file.
pub fn verify(layout: &Layout) -> Result<Drift, InstallError> {
    let state = State::load(&layout.state)?.ok_or_else(|| InstallError::NothingInstalled {
        dir: layout.packages.display().to_string(),
    })?;
    let mut drift = Drift {
        checked_packages: state.packages.len(),
        checked_files: state.packages.values().map(|p| p.files.len()).sum(),
        ..Drift::default()
    };
    if let Ok(rd) = std::fs::read_dir(&layout.packages) {
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !Layout::is_own_entry(&name) && !state.packages.contains_key(&name) {
                drift.extra_packages.push(name);
            }
        }
    }
    drift.extra_packages.sort();
    let results: Vec<Result<Option<PackageDrift>, InstallError>> = state
        .packages
        .par_iter()
        .map(|(name, pkg)| {
            let dir = layout.packages.join(name);
            if !dir.is_dir() {
                return Ok(None);
            }
            check_package(&dir, pkg).map(Some)
        })
        .collect();
    for ((name, _), r) in state.packages.iter().zip(results) {
        match r? {
            None => drift.missing_packages.push(name.clone()),
            Some(d) if !d.is_clean() => drift.packages.push(d),
            Some(_) => {}
        }
    }
    Ok(drift)
}

fn check_package(dir: &Path, pkg: &InstalledPackage) -> Result<PackageDrift, InstallError> {
    let mut found = Vec::new();
    let mut odd = Vec::new();
    walk(dir, "", &mut found, &mut odd)?;
    let mut drift = PackageDrift {
        name: pkg.name.clone(),
        extra: odd,
        ..PackageDrift::default()
    };
    let found_set: std::collections::BTreeSet<&str> = found.iter().map(String::as_str).collect();
    for path in pkg.files.keys() {
        if !found_set.contains(path.as_str()) {
            drift.missing.push(path.clone());
        }
    }
    let checks: Vec<Result<Option<String>, InstallError>> = found
        .par_iter()
        .map(|path| {
            let Some(expected) = pkg.files.get(path) else {
                return Ok(None);
            };
            let full = dir.join(path);
            let file = std::fs::File::open(&full).map_err(InstallError::io(format!("reading {}", full.display())))?;
            let exec = is_executable(&file);
            let (actual, _) = crate::fsutil::sha256_reader(std::io::BufReader::new(file))
                .map_err(InstallError::io(format!("reading {}", full.display())))?;
            let want_exec = pkg.executable.iter().any(|e| e == path);
            Ok((actual != *expected || exec != want_exec).then(|| path.clone()))
        })
        .collect();
    for (path, c) in found.iter().zip(checks) {
        match c? {
            Some(m) => drift.modified.push(m),
            None if !pkg.files.contains_key(path) => drift.extra.push(path.clone()),
            None => {}
        }
    }
    drift.extra.sort();
    Ok(drift)
}

#[cfg(unix)]
fn is_executable(f: &std::fs::File) -> bool {
    use std::os::unix::fs::PermissionsExt;
    f.metadata().is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::File) -> bool {
    false
}

/// Collects regular files (as `/`-separated paths) and anything else
/// (links, devices) separately.
fn walk(dir: &Path, prefix: &str, files: &mut Vec<String>, odd: &mut Vec<String>) -> Result<(), InstallError> {
    let rd = std::fs::read_dir(dir).map_err(InstallError::io(format!("reading {}", dir.display())))?;
    for entry in rd {
        let entry = entry.map_err(InstallError::io(format!("reading {}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let ft = entry
            .file_type()
            .map_err(InstallError::io(format!("reading {}", entry.path().display())))?;
        if ft.is_dir() {
            walk(&entry.path(), &rel, files, odd)?;
        } else if ft.is_file() {
            files.push(rel);
        } else {
            odd.push(rel);
        }
    }
    Ok(())
}
