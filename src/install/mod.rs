//! Installing a lock (SPEC §6): `fm sync`, `fm install` and `fm verify`.
//!
//! [`install`] makes an install folder hold exactly a set of locked
//! packages, in five steps:
//!
//! 1. **Plan** — compare the set with the state file ([`state`]) and the
//!    folder: a package recorded with the same digest whose folder exists is
//!    left untouched; leftovers of an interrupted run are cleared; anything
//!    else is to install. A no-op sync reads one line of the state file and
//!    lists one folder.
//! 2. **Fetch** ([`fetch`]) — archives missing from the cache ([`cache`])
//!    are downloaded concurrently (tokio, bounded), hashed as they stream,
//!    and moved into the cache only once *all* of them match the lock.
//! 3. **Unpack** ([`cache::Cache::ensure_tree`]) — on rayon, each archive is
//!    re-hashed and extracted (safely, by [`crate::archive::extract`]) into
//!    a cached tree, unless an intact tree is there already.
//! 4. **Stage** — on rayon, each tree is hard-linked (or copied) into a
//!    temporary folder beside its destination, `{packages}/.fm-tmp-*`.
//! 5. **Commit** — the state file is rewritten without the entries about to
//!    change; each staged folder is renamed into place (an old one is first
//!    renamed to `.fm-trash-*`); extras are removed; the final state file is
//!    written.
//!
//! Steps 1–3 run first without the project lock, reading the project only;
//! then, under the project lock, steps 1–3 run again (normally finding
//! everything cached: another fm may have changed the folder meanwhile) and
//! 4–5 follow.
//!
//! Invariants:
//! - every digest is checked, and every archive unpacked, before fm creates
//!   or changes anything in the project: a digest mismatch, a hostile
//!   archive or an offline miss leaves the project exactly as it was;
//! - nothing but `.fm-tmp-*` folders changes in the install folder before
//!   step 5, and those are deleted on failure;
//! - a package folder is trusted only if the state file records it with the
//!   locked digest; the state is rewritten *before* folders change, so after
//!   a crash at any point the state never vouches for a folder it does not
//!   describe, and the next run reinstalls what is in doubt and clears the
//!   `.fm-tmp-*`/`.fm-trash-*` leftovers;
//! - an install folder is fm's own: `.fm/packages` always, a `--dir` folder
//!   only when it is empty or holds fm's state file. Anything in it that the
//!   set does not name is removed (by `fm sync`; `fm install` adds only).
//!
//! Lock ordering: `{cache}/.lock` first (shared: concurrent syncs may fill
//! the cache together, because every cache write is an atomic rename of a
//! content-addressed entry; clearing the cache takes it exclusively), then
//! the install folder's lock (`.fm/.lock`, or `.fm-lock` in a `--dir`
//! folder; exclusive, from the second plan to the end). Always in this
//! order, never the reverse, so two fm processes cannot deadlock; a second
//! sync of the same project waits for the first and then finds nothing to
//! do.

pub mod cache;
pub mod fetch;
pub mod state;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use cache::Cache;
use state::{InstalledPackage, State};

use crate::lock::{LockedPackage, LockedRegistry};

/// Where packages are installed, and fm's files beside them.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The folder holding one folder per package.
    pub packages: PathBuf,
    /// The state file.
    pub state: PathBuf,
    /// The lock file held while installing.
    pub lock: PathBuf,
    /// Whether fm owns `packages` unconditionally (`.fm/packages`).
    pub owned: bool,
}

const TMP_PREFIX: &str = crate::fsutil::TMP_PREFIX;
const TRASH_PREFIX: &str = ".fm-trash-";

impl Layout {
    /// A project's layout: `{root}/.fm/packages`, `.fm/state.toml`, `.fm/.lock`.
    pub fn project(root: &Path) -> Layout {
        let fm = root.join(".fm");
        Layout {
            packages: fm.join("packages"),
            state: fm.join("state.toml"),
            lock: fm.join(".lock"),
            owned: true,
        }
    }

    /// A `--dir D` layout: packages in `D`, with `D/.fm-state.toml` and
    /// `D/.fm-lock`.
    pub fn dir(dir: &Path) -> Layout {
        Layout {
            packages: dir.to_owned(),
            state: dir.join(".fm-state.toml"),
            lock: dir.join(".fm-lock"),
            owned: false,
        }
    }

    /// Whether an entry of the packages folder is fm's own bookkeeping (a
    /// package name never starts with a dot).
    pub fn is_own_entry(name: &str) -> bool {
        name.starts_with('.')
    }
}

/// Progress callbacks; the CLI draws bars with them. All default to nothing.
pub trait Progress: Sync {
    /// Downloads start: how many archives, how many bytes in all.
    fn downloading(&self, _packages: usize, _bytes: u64) {}
    /// Some bytes arrived.
    fn downloaded(&self, _bytes: u64) {}
    /// Unpacking and linking start.
    fn unpacking(&self, _packages: usize) {}
    /// One package was unpacked and staged.
    fn unpacked(&self, _name: &str) {}
    /// Done (bars should be cleared).
    fn finish(&self) {}
    /// Another fm process holds `lock`; this one waits for it.
    fn waiting(&self, _lock: &Path) {}
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What can go wrong installing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InstallError {
    /// A file operation failed.
    #[error("{what}: {source}")]
    #[diagnostic(code(fm::install::io))]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A downloaded archive is not the one the lock names.
    #[error(
        "sha256 mismatch for {package} {version} from registry {registry}\n  expected (fm.lock): {expected}\n  actual (download):  {actual}"
    )]
    #[diagnostic(
        code(fm::install::digest_mismatch),
        help(
            "the registry serves different bytes than when fm.lock was written; nothing was installed and the cache was not changed. If the change is legitimate, re-lock with `fm lock --upgrade-package {package}`"
        )
    )]
    DigestMismatch {
        package: String,
        version: String,
        registry: String,
        expected: String,
        actual: String,
    },
    /// A downloaded archive does not match the checksum its own registry
    /// publishes for it (`fm install`, or a lock the registry still agrees
    /// with): re-locking cannot help.
    #[error(
        "sha256 mismatch for {package} {version} from registry {registry}\n  expected (the registry's checksum): {expected}\n  actual (download):                  {actual}"
    )]
    #[diagnostic(
        code(fm::install::registry_digest_mismatch),
        help(
            "registry {registry} serves bytes for {package} {version} that disagree with its own checksum: the registry is broken or its archives were tampered with. Nothing was installed and the cache was not changed; re-locking cannot help. Tell the registry's operator, or install from another registry"
        )
    )]
    RegistryDigestMismatch {
        package: String,
        version: String,
        registry: String,
        expected: String,
        actual: String,
    },
    /// A cached archive no longer has its digest (disk corruption or
    /// tampering); it was removed.
    #[error("the cached archive of {package} is corrupt: {path}\n  expected: {expected}\n  actual:   {actual}")]
    #[diagnostic(
        code(fm::install::corrupt_cache),
        help("the corrupt file was removed; run the command again to download it")
    )]
    CorruptCache {
        package: String,
        path: String,
        expected: String,
        actual: String,
    },
    /// An archive was refused while unpacking.
    #[error("cannot unpack {package} {version}: {source}")]
    #[diagnostic(
        code(fm::install::unpack),
        help("the archive was refused and nothing was installed; ask its publisher to rebuild it with `fm pack`")
    )]
    Unpack {
        package: String,
        version: String,
        #[source]
        source: crate::archive::ArchiveError,
    },
    /// `--offline` and archives are not cached.
    #[error("--offline: {} not in the cache: {}", if missing.len() == 1 { "this package is" } else { "these packages are" }, missing.join(", "))]
    #[diagnostic(
        code(fm::install::offline),
        help("run `fm sync` once without --offline (with network access) to download them into the cache")
    )]
    Offline { missing: Vec<String> },
    /// The lock names a registry it does not declare.
    #[error("{package} comes from registry {registry}, which fm.lock does not list under [[registry]]")]
    #[diagnostic(code(fm::install::unknown_registry), help("re-create the lock with `fm lock`"))]
    UnknownRegistry { package: String, registry: String },
    /// A registry URL in the lock cannot be parsed.
    #[error("registry {registry} has an invalid URL in fm.lock: {reason}")]
    #[diagnostic(code(fm::install::bad_url), help("re-create the lock with `fm lock`"))]
    BadRegistryUrl { registry: String, reason: String },
    /// `--dir` points at a folder fm did not create.
    #[error("refusing to install into {dir}: it is not empty and fm did not install into it before")]
    #[diagnostic(
        code(fm::install::not_owned),
        help("fm removes everything in its install folder that the lock does not name; choose an empty or new folder")
    )]
    NotOwned { dir: String },
    /// A package entry fm cannot install safely.
    #[error("cannot install {package:?}: {reason}")]
    #[diagnostic(code(fm::install::invalid_package), help("re-create the lock with `fm lock`"))]
    InvalidPackage { package: String, reason: String },
    /// `fm verify` with nothing installed.
    #[error("nothing is installed in {dir} (no state file)")]
    #[diagnostic(code(fm::install::nothing_installed), help("run `fm sync` first"))]
    NothingInstalled { dir: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] state::StateError),
}

impl InstallError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> InstallError {
        let what = what.into();
        move |source| InstallError::Io { what, source }
    }
}

/// How to install.
#[derive(Debug, Clone)]
pub struct Options {
    /// Use the cache only.
    pub offline: bool,
    /// Remove what the set does not name (`fm sync`); `false` adds to what
    /// is installed (`fm install`).
    pub prune: bool,
    /// The cache.
    pub cache: Cache,
    /// Packages to install again even if the state says they are in place
    /// (`fm sync --repair`: `fm verify` found them changed).
    pub reinstall: BTreeSet<String>,
}

impl InstallError {
    /// A [`InstallError::DigestMismatch`] whose expected digest is the
    /// registry's own current checksum (not only fm.lock's), said as such.
    pub fn registry_contradicts_itself(self) -> InstallError {
        match self {
            InstallError::DigestMismatch {
                package,
                version,
                registry,
                expected,
                actual,
            } => InstallError::RegistryDigestMismatch {
                package,
                version,
                registry,
                expected,
                actual: actual.replace("fm.lock records", "the registry's record says"),
            },
            other => other,
        }
    }
}

/// What [`install`] did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Packages installed or replaced, `(name, version)`.
    pub installed: Vec<(String, String)>,
    /// Packages removed.
    pub removed: Vec<String>,
    /// Packages already installed and left alone.
    pub unchanged: usize,
    /// The version each replaced or removed package had before this run
    /// (name → version, from the old state file), so the CLI can print
    /// `~ parser 1.4.0 -> 1.5.0` and `- old-lib 0.3.1`.
    pub previous: BTreeMap<String, String>,
    /// Archives downloaded, and their bytes.
    pub downloaded: usize,
    pub downloaded_bytes: u64,
}

/// What a run has to do, as read from the install folder and state file.
struct Plan<'a> {
    /// Everything is in place: nothing to do.
    noop: bool,
    to_install: Vec<&'a LockedPackage>,
    /// State entries that stay as they are.
    keep: BTreeMap<String, InstalledPackage>,
    /// Package folders to remove.
    extras: Vec<String>,
    /// `.fm-tmp-*`/`.fm-trash-*` left by an interrupted run.
    leftovers: Vec<String>,
    old_state: State,
    state_exists: bool,
}

fn plan<'a>(
    packages: &'a [LockedPackage],
    layout: &Layout,
    prune: bool,
    reinstall: &BTreeSet<String>,
) -> Result<Plan<'a>, InstallError> {
    let entries = list_entries(&layout.packages)?;
    let state_exists = layout.state.exists();
    if !layout.owned && !state_exists && entries.iter().any(|e| !Layout::is_own_entry(e)) {
        return Err(InstallError::NotOwned {
            dir: layout.packages.display().to_string(),
        });
    }
    let wanted: BTreeMap<&str, &LockedPackage> = packages.iter().map(|p| (p.name.as_str(), p)).collect();
    let leftovers: Vec<String> = entries
        .iter()
        .filter(|e| e.starts_with(TMP_PREFIX) || e.starts_with(TRASH_PREFIX))
        .cloned()
        .collect();
    let present: BTreeSet<&str> = entries
        .iter()
        .filter(|e| !Layout::is_own_entry(e))
        .map(String::as_str)
        .collect();

    // Fast path: the state's set digest equals the wanted set's and the
    // folder holds exactly those packages.
    if prune
        && reinstall.is_empty()
        && leftovers.is_empty()
        && present.len() == wanted.len()
        && present.iter().all(|n| wanted.contains_key(n))
    {
        let wanted_digest = state::set_digest(
            packages
                .iter()
                .map(|p| (p.name.as_str(), &p.version, p.sha256.as_str())),
        );
        if state::read_set_digest(&layout.state).as_deref() == Some(wanted_digest.as_str()) {
            return Ok(Plan {
                noop: true,
                to_install: Vec::new(),
                keep: BTreeMap::new(),
                extras: Vec::new(),
                leftovers,
                old_state: State::default(),
                state_exists,
            });
        }
    }

    // A state file we cannot read vouches for nothing: reinstall.
    let old_state = State::load(&layout.state).ok().flatten().unwrap_or_default();
    let mut to_install = Vec::new();
    let mut keep = BTreeMap::new();
    for p in packages {
        match old_state.packages.get(&p.name) {
            Some(s)
                if s.sha256 == p.sha256
                    && s.version == p.version.to_string()
                    && present.contains(p.name.as_str())
                    && !reinstall.contains(&p.name) =>
            {
                keep.insert(p.name.clone(), s.clone());
            }
            _ => to_install.push(p),
        }
    }
    let mut extras = Vec::new();
    if prune {
        extras = present
            .iter()
            .filter(|n| !wanted.contains_key(*n))
            .map(|n| n.to_string())
            .collect();
    } else {
        for (name, s) in &old_state.packages {
            if !wanted.contains_key(name.as_str()) && present.contains(name.as_str()) {
                keep.insert(name.clone(), s.clone());
            }
        }
    }
    let noop = to_install.is_empty() && extras.is_empty() && leftovers.is_empty() && keep == old_state.packages;
    Ok(Plan {
        noop,
        to_install,
        keep,
        extras,
        leftovers,
        old_state,
        state_exists,
    })
}

/// Steps 2 and 3: every package of `to_install` as an intact cached tree.
/// Touches nothing but the cache.
fn prepare(
    to_install: &[&LockedPackage],
    registries: &[LockedRegistry],
    opts: &Options,
    progress: &dyn Progress,
    report: &mut Report,
) -> Result<Vec<cache::Tree>, InstallError> {
    if !to_install.is_empty() {
        opts.cache.sweep_tmp(std::time::Duration::from_secs(24 * 3600));
    }
    let mut seen = BTreeSet::new();
    let need_download: Vec<&LockedPackage> = to_install
        .iter()
        .copied()
        .filter(|p| opts.cache.intact_tree(&p.sha256).is_none() && !opts.cache.has_archive(&p.sha256))
        .filter(|p| seen.insert(p.sha256.clone()))
        .collect();
    if !need_download.is_empty() {
        if opts.offline {
            return Err(InstallError::Offline {
                missing: need_download
                    .iter()
                    .map(|p| format!("{} {}", p.name, p.version))
                    .collect(),
            });
        }
        let clients = fetch::open_registries(&need_download, registries, opts.offline)?;
        let bytes = need_download.iter().map(|p| p.size).sum();
        progress.downloading(need_download.len(), bytes);
        let staged = fetch::download_all(&opts.cache, &need_download, &clients, progress)?;
        fetch::commit(&opts.cache, staged)?;
        report.downloaded += need_download.len();
        report.downloaded_bytes += bytes;
    }
    to_install
        .par_iter()
        .map(|p| opts.cache.ensure_tree(&p.name, &p.version.to_string(), &p.sha256))
        .collect()
}

/// Makes `layout` hold `packages` (see the module doc). `registries` are
/// the lock's `[[registry]]` entries; they are opened only if an archive
/// must be downloaded.
pub fn install(
    packages: &[LockedPackage],
    registries: &[LockedRegistry],
    layout: &Layout,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Report, InstallError> {
    // Names become folder names and digests file names: check them here
    // too, whoever built the list, so none can point outside its folder.
    let mut names = BTreeSet::new();
    for p in packages {
        let invalid = |reason: String| InstallError::InvalidPackage {
            package: p.name.clone(),
            reason,
        };
        crate::names::validate(&p.name).map_err(|why| invalid(format!("invalid name: {why}")))?;
        if !crate::fsutil::is_sha256_hex(&p.sha256) {
            return Err(invalid("its sha256 is not a hex SHA-256 digest".to_owned()));
        }
        if !names.insert(p.name.as_str()) {
            return Err(invalid("listed twice".to_owned()));
        }
    }
    let cache_lock_path = opts.cache.lock_path();
    let _cache_lock =
        crate::fsutil::LockFile::acquire_shared(&cache_lock_path, || progress.waiting(&cache_lock_path)).map_err(
            InstallError::io(format!("locking {}", opts.cache.lock_path().display())),
        )?;
    let mut report = Report::default();

    // 1-3 without the project lock, reading only: whatever must be fetched
    // and unpacked is, and every digest is checked, before fm creates or
    // changes anything in the project (or waits for another fm there).
    let first = plan(packages, layout, opts.prune, &opts.reinstall)?;
    if first.noop {
        report.unchanged = packages.len();
        return Ok(report);
    }
    prepare(&first.to_install, registries, opts, progress, &mut report)?;

    // Then under the project lock, plan again: another fm may have changed
    // the folder meanwhile. What is left to fetch is normally nothing.
    std::fs::create_dir_all(&layout.packages)
        .map_err(InstallError::io(format!("creating {}", layout.packages.display())))?;
    let _project_lock = crate::fsutil::LockFile::acquire(&layout.lock, || progress.waiting(&layout.lock))
        .map_err(InstallError::io(format!("locking {}", layout.lock.display())))?;
    let plan = plan(packages, layout, opts.prune, &opts.reinstall)?;
    if plan.noop {
        report.unchanged = packages.len();
        return Ok(report);
    }
    let trees = prepare(&plan.to_install, registries, opts, progress, &mut report)?;
    report.unchanged = packages.len() - plan.to_install.len();

    // 4. Stage beside the destinations.
    progress.unpacking(plan.to_install.len());
    let staged: Vec<Result<tempfile::TempDir, InstallError>> = plan
        .to_install
        .par_iter()
        .zip(trees.par_iter())
        .map(|(p, tree)| {
            let tmp = tempfile::Builder::new()
                .prefix(&format!("{TMP_PREFIX}{}-", p.name))
                .tempdir_in(&layout.packages)
                .map_err(InstallError::io(format!(
                    "creating a folder in {}",
                    layout.packages.display()
                )))?;
            opts.cache.link_tree(tree, tmp.path())?;
            progress.unpacked(&p.name);
            Ok(tmp)
        })
        .collect();
    // Every staged folder is deleted on drop if anything failed.
    let staged: Vec<tempfile::TempDir> = staged.into_iter().collect::<Result<_, _>>()?;

    // 5. Commit. First the state without what is about to change.
    for name in &plan.leftovers {
        remove_any(&layout.packages.join(name));
    }
    let interim = State {
        packages: plan.keep.clone(),
    };
    if interim != plan.old_state || !plan.state_exists {
        interim
            .save(&layout.state)
            .map_err(InstallError::io(format!("writing {}", layout.state.display())))?;
    }
    let mut new_state = interim;
    for ((p, tmp), tree) in plan.to_install.iter().zip(staged).zip(&trees) {
        let dest = layout.packages.join(&p.name);
        if std::fs::symlink_metadata(&dest).is_ok() {
            let trash = layout
                .packages
                .join(format!("{TRASH_PREFIX}{}-{}", p.name, std::process::id()));
            remove_any(&trash);
            std::fs::rename(&dest, &trash).map_err(InstallError::io(format!("moving {} aside", dest.display())))?;
            remove_any(&trash);
        }
        let kept = tmp.keep();
        std::fs::rename(&kept, &dest).map_err(InstallError::io(format!("moving {} into place", dest.display())))?;
        new_state.packages.insert(
            p.name.clone(),
            InstalledPackage {
                name: p.name.clone(),
                version: p.version.to_string(),
                sha256: p.sha256.clone(),
                executable: tree
                    .files
                    .iter()
                    .filter(|f| f.executable)
                    .map(|f| f.path.clone())
                    .collect(),
                files: tree.files.iter().map(|f| (f.path.clone(), f.sha256.clone())).collect(),
            },
        );
        report.installed.push((p.name.clone(), p.version.to_string()));
        if let Some(old) = plan.old_state.packages.get(&p.name) {
            report.previous.insert(p.name.clone(), old.version.clone());
        }
    }
    for name in &plan.extras {
        remove_any(&layout.packages.join(name));
        report.removed.push(name.clone());
        if let Some(old) = plan.old_state.packages.get(name) {
            report.previous.insert(name.clone(), old.version.clone());
        }
    }
    new_state
        .save(&layout.state)
        .map_err(InstallError::io(format!("writing {}", layout.state.display())))?;
    progress.finish();
    Ok(report)
}

/// Names in a folder (empty if it does not exist).
fn list_entries(dir: &Path) -> Result<Vec<String>, InstallError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(InstallError::io(format!("reading {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(InstallError::io(format!("reading {}", dir.display())))?;
        out.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(out)
}

/// Removes a file or folder, whatever it is; best effort (a leftover is
/// cleared by the next run).
fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}
