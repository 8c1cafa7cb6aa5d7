//! Installing a lock (SPEC §6): `fm sync`, `fm install` and `fm verify`.
//!
//! [`install`] makes an install folder hold exactly a set of locked
//! packages, in five steps:
//!
//! 0. **Open** ([`layout`]) — the install folder's chain of folders and
//!    fm's files in it are opened without following links; a link where fm
//!    would write or remove is refused, naming it, before anything else.
//! 1. **Plan** ([`plan`]) — compare the set with the state file ([`state`])
//!    and the folder: a package recorded with the same digest whose files
//!    all still have the stat data fm recorded is left untouched; leftovers
//!    of an interrupted run are cleared; folders fm did not install are
//!    reported and never touched; anything else is to install. A no-op sync
//!    reads the state file (without copying it: [`plan::quick_noop`]) and
//!    `lstat`s every installed file relative to its folder, in parallel,
//!    nothing more; `fm sync` starts that proof before it reads the lock
//!    ([`Precheck`]), so the two overlap.
//! 2. **Fetch** ([`fetch`]) — archives missing from the cache ([`cache`])
//!    are downloaded concurrently (tokio, bounded), hashed as they stream,
//!    and moved into the cache only once *all* of them match the lock.
//! 3. **Stage** ([`stage`]) — on rayon, each archive is unpacked (safely,
//!    by [`crate::archive::extract_to`], every write relative to a folder
//!    handle) into a new folder beside its destination,
//!    `{packages}/.fm-tmp-*`, and the stat data of every file written is
//!    recorded. A cached archive is read and re-hashed against the lock
//!    first; a downloaded one is unpacked from the very bytes that matched,
//!    as soon as they did, while other downloads are still under way
//!    ([`fetch::download_and_unpack`]): steps 2 and 3 overlap.
//! 4. **Commit** — the state file is rewritten without the entries about to
//!    change, naming their folders `owned`; owned extras are removed; each
//!    staged folder is renamed into place (`RENAME_NOREPLACE`; an old one
//!    in the way is first renamed to `.fm-trash-*` and removed) while the
//!    final state is rendered on the other core; once every rename
//!    succeeded, the final state file is written.
//!
//! Steps 0–1 run first without the project lock, reading the project only
//! (an offline miss is reported there); then, under the project lock, 0–1
//! run again (another fm may have changed the folder meanwhile) and 2–4
//! follow.
//!
//! Invariants:
//! - nothing is followed through a link, on the way to anything fm writes
//!   or removes ([`nofollow`]): every folder of the chain, the state and
//!   lock files, package folders, leftovers, and the cache's own folders;
//! - fm removes only what it installed: a folder the state file does not
//!   name (installed or `owned`) is never replaced or removed, and links are
//!   removed as links;
//! - an archive is unpacked only from bytes whose digest matched the lock
//!   (a cached one is re-hashed when it is read), and every digest is
//!   checked before fm changes anything in the project but `.fm-tmp-*`
//!   folders: a digest mismatch, a corrupt cache entry, a hostile archive
//!   or an offline miss stops every download and unpack and leaves the
//!   project as it was (staged folders are deleted, and folders this run
//!   created are removed again);
//! - installed files are the project's own copies, unpacked from the
//!   verified archive: nothing is shared with the cache or another project;
//! - nothing but `.fm-tmp-*` folders changes in the install folder before
//!   step 4; the state is rewritten *before* folders change, so after a
//!   crash at any point the state never vouches for a folder it does not
//!   describe, still owns every folder fm was changing, and the next run
//!   reinstalls what is in doubt and clears the leftovers;
//! - an install folder is fm's own: `.fm/packages` always, a `--dir` folder
//!   only when it is empty or holds fm's state file.
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
pub mod contents;
mod error;
pub mod fetch;
pub mod layout;
pub mod nofollow;
mod plan;
mod precheck;
mod stage;
pub mod state;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub use cache::Cache;
pub use error::InstallError;
pub use layout::Layout;
pub use precheck::Precheck;
use state::State;

use crate::lock::{LockedPackage, LockedRegistry};

const TMP_PREFIX: &str = crate::fsutil::TMP_PREFIX;
const TRASH_PREFIX: &str = ".fm-trash-";

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
    /// A no-op proof of the install folder started before the lock was
    /// read ([`Precheck::start`]); `Precheck::default()` for none.
    pub precheck: Precheck,
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
    /// Installed packages whose files had changed on disk since fm wrote
    /// them (found by their stat data), installed again.
    pub changed: Vec<String>,
    /// Folders in the install folder that fm did not install: left alone.
    pub foreign: Vec<String>,
    /// Archives downloaded, and their bytes.
    pub downloaded: usize,
    pub downloaded_bytes: u64,
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
    // Names become folder names and digests file names: their types
    // (`fm::values`) hold only valid ones, so none can point outside its
    // folder, whoever built the list.
    let mut names = BTreeSet::new();
    for p in packages {
        let invalid = |reason: String| InstallError::InvalidPackage {
            package: p.name.to_string(),
            reason,
        };
        if !names.insert(p.name.as_str()) {
            return Err(invalid("listed twice".to_owned()));
        }
    }
    let mut report = Report::default();

    // 0-2 without the project lock, reading only: a link is refused, and
    // whatever must be fetched is, every digest checked, before fm creates
    // or changes anything in the project (or waits for another fm there).
    let opened = layout.open(false)?;
    // A no-op is proven without the cache, and without parsing the state
    // whole (the common case of `fm sync`).
    if opts.reinstall.is_empty()
        && let Some(o) = opened.as_ref()
        && let Some(foreign) = match opts.precheck.take(layout) {
            Some(proven) if proven.still_current(layout, o) => proven.covers(packages),
            _ => plan::quick_noop(packages, layout, o)?,
        }
    {
        report.unchanged = packages.len();
        report.foreign = foreign;
        return Ok(report);
    }
    let _cache_lock = opts.cache.lock_shared(|| progress.waiting(&opts.cache.lock_path()))?;
    let first = plan::plan(packages, layout, opened.as_ref(), opts.prune, &opts.reinstall)?;
    if first.noop {
        report.unchanged = packages.len();
        report.foreign = first.foreign;
        return Ok(report);
    }
    // Downloads wait for the project lock, to be unpacked as they arrive
    // (step 3); an offline miss is named before anything is created.
    missing(&first.to_install, opts)?;
    drop(opened);

    // Then under the project lock, plan again: another fm may have changed
    // the folder meanwhile. What is left to fetch is normally nothing.
    let Some(opened) = layout.open(true)? else {
        return Err(InstallError::Io {
            what: format!("creating {}", layout.packages.display()),
            source: std::io::ErrorKind::NotFound.into(),
        });
    };
    let result = locked_install(packages, registries, layout, &opened, opts, progress, report);
    if result.is_err() {
        opened.undo_created(layout.lock_name());
    }
    result
}

fn locked_install(
    packages: &[LockedPackage],
    registries: &[LockedRegistry],
    layout: &Layout,
    opened: &layout::Opened,
    opts: &Options,
    progress: &dyn Progress,
    mut report: Report,
) -> Result<Report, InstallError> {
    let _project_lock = opened
        .meta
        .lock(layout.lock_name(), || progress.waiting(&layout.lock), false)?;
    let plan = plan::plan(packages, layout, Some(opened), opts.prune, &opts.reinstall)?;
    report.foreign = plan.foreign.clone();
    if plan.noop {
        report.unchanged = packages.len();
        return Ok(report);
    }
    report.unchanged = packages.len() - plan.to_install.len();
    report.changed = plan.changed.clone();

    // 2-3. Fetch what the cache lacks and stage beside the destinations,
    // each download unpacked as soon as it matched its digest while others
    // still download ([`fetch::download_and_unpack`]). Verified downloads
    // enter the cache only once all matched; every staged folder is
    // deleted if anything fails before it is renamed into place.
    let staging = stage::Staging::new(&opened.packages);
    let staged: Vec<stage::Staged> = fetch_and_stage(
        &plan.to_install,
        registries,
        opts,
        progress,
        &mut report,
        &|p, bytes| stage::stage(&staging, &opts.cache, p, bytes),
    )?;

    // 4. Commit. First the state without what is about to change, owning
    // every folder that will.
    let pkgs = &opened.packages;
    for name in &plan.leftovers {
        let _ = pkgs.remove_tree(name);
    }
    let mut interim = State {
        packages: plan
            .old_state
            .packages
            .iter()
            .filter(|(n, _)| plan.keep.contains(*n))
            .map(|(n, p)| (n.clone(), p.clone()))
            .collect(),
        owned: plan.old_state.owned.clone(),
    };
    interim.owned.extend(plan.to_install.iter().map(|p| p.name.to_string()));
    interim.owned.extend(plan.extras.iter().cloned());
    let installing: BTreeSet<&str> = plan.to_install.iter().map(|p| p.name.as_str()).collect();
    interim
        .owned
        .retain(|n| plan.present.contains(n) || installing.contains(n.as_str()));
    if interim != plan.old_state || !plan.state_exists {
        opened
            .meta
            .write_atomic(layout.state_name(), interim.render().as_bytes())?;
    }
    // Then what goes away (owned extras), so that the final state is known
    // in full before a folder is renamed: it is rendered on the other core
    // while the renames run (the two are independent), and written only
    // once every rename succeeded.
    for name in &plan.extras {
        if pkgs.remove_tree(name).is_ok() {
            if let Some(old) = plan.old_state.packages.get(name) {
                report.previous.insert(name.clone(), old.version.clone());
            }
            report.removed.push(name.clone());
        }
    }
    let mut new_state = interim.clone();
    let mut moves = Vec::with_capacity(staged.len());
    for (p, s) in plan.to_install.iter().zip(staged) {
        moves.push((p.name.as_str(), s.tmp.clone()));
        new_state.packages.insert(p.name.to_string(), stage::record(p, s));
    }
    let still_there = |n: &String| pkgs.meta(n).ok().flatten().is_some();
    new_state.owned = interim
        .owned
        .iter()
        .filter(|n| !new_state.packages.contains_key(*n) && still_there(n))
        .cloned()
        .collect();
    let (moved, rendered) = rayon::join(|| rename_into_place(pkgs, &staging, &moves), || new_state.render());
    moved?;
    for p in &plan.to_install {
        if let Some(old) = plan.old_state.packages.get(p.name.as_str()) {
            report.previous.insert(p.name.to_string(), old.version.clone());
        }
        report.installed.push((p.name.to_string(), p.version.to_string()));
    }
    opened.meta.write_atomic(layout.state_name(), rendered.as_bytes())?;
    progress.finish();
    Ok(report)
}

/// Step 4's renames: each staged folder `(name, tmp)` into place, an old
/// folder there first renamed to `.fm-trash-*` and removed. One
/// `renameat2(RENAME_NOREPLACE)` per package where nothing is in the way
/// (the common case), instead of a check and a rename.
fn rename_into_place(
    pkgs: &nofollow::Dir,
    staging: &stage::Staging<'_>,
    moves: &[(&str, String)],
) -> Result<(), InstallError> {
    for (name, tmp) in moves {
        if !pkgs.rename_new(tmp, name)? {
            let trash = nofollow::unique_name(&format!("{TRASH_PREFIX}{name}-"), "");
            pkgs.rename(name, &trash)?;
            let _ = pkgs.remove_tree(&trash);
            pkgs.rename(tmp, name)?;
        }
        staging.forget(tmp);
    }
    Ok(())
}

/// The archives of `to_install` that are not cached, one per digest; an
/// offline run that lacks any is an error naming them.
fn missing<'a>(to_install: &[&'a LockedPackage], opts: &Options) -> Result<Vec<&'a LockedPackage>, InstallError> {
    let mut seen = BTreeSet::new();
    let need: Vec<&LockedPackage> = to_install
        .iter()
        .copied()
        .filter(|p| !opts.cache.has_archive(&p.sha256))
        .filter(|p| seen.insert(p.sha256.clone()))
        .collect();
    if opts.offline && !need.is_empty() {
        return Err(InstallError::Offline {
            missing: need.iter().map(|p| format!("{} {}", p.name, p.version)).collect(),
        });
    }
    Ok(need)
}

/// Steps 2-3: downloads what the cache lacks and unpacks everything with
/// `stage`, downloads as they arrive; then the downloads enter the cache.
fn fetch_and_stage<T: Send>(
    to_install: &[&LockedPackage],
    registries: &[LockedRegistry],
    opts: &Options,
    progress: &dyn Progress,
    report: &mut Report,
    stage: &fetch::Unpack<'_, T>,
) -> Result<Vec<T>, InstallError> {
    let need = missing(to_install, opts)?;
    let clients = if need.is_empty() {
        Default::default()
    } else {
        opts.cache.sweep_tmp(std::time::Duration::from_secs(24 * 3600));
        fetch::open_registries(&need, registries, opts.offline)?
    };
    let (out, staged) = fetch::download_and_unpack(&opts.cache, to_install, &need, &clients, progress, stage)?;
    fetch::commit(&opts.cache, staged)?;
    report.downloaded += need.len();
    report.downloaded_bytes += need.iter().map(|p| p.size).sum::<u64>();
    Ok(out)
}

/// Step 2 alone: downloads the archives of `to_install` that are not
/// cached. Touches nothing but the cache.
fn fetch_missing(
    to_install: &[&LockedPackage],
    registries: &[LockedRegistry],
    opts: &Options,
    progress: &dyn Progress,
    report: &mut Report,
) -> Result<(), InstallError> {
    if to_install.is_empty() {
        return Ok(());
    }
    opts.cache.sweep_tmp(std::time::Duration::from_secs(24 * 3600));
    let need = missing(to_install, opts)?;
    if need.is_empty() {
        return Ok(());
    }
    let clients = fetch::open_registries(&need, registries, opts.offline)?;
    let bytes = need.iter().map(|p| p.size).sum();
    progress.downloading(need.len(), bytes);
    let staged = fetch::download_all(&opts.cache, &need, &clients, progress)?;
    fetch::commit(&opts.cache, staged)?;
    report.downloaded += need.len();
    report.downloaded_bytes += bytes;
    Ok(())
}

/// Downloads into the cache the archives of `packages` it lacks (verified
/// against their digests), under the cache lock; for `fm verify`, which
/// derives what a package must contain from its archive.
pub fn fetch_archives(
    packages: &[&LockedPackage],
    registries: &[LockedRegistry],
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Report, InstallError> {
    let _cache_lock = opts.cache.lock_shared(|| progress.waiting(&opts.cache.lock_path()))?;
    let mut report = Report::default();
    fetch_missing(packages, registries, opts, progress, &mut report)?;
    progress.finish();
    Ok(report)
}
