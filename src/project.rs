//! The project layer: what `fm lock` and `fm sync` do with a project,
//! in one place. Everything between "here is an fm.toml" and "the lock is
//! written and installed":
//!
//! 1. **Load** — [`Project::load`] reads fm.toml; the user config
//!    (`~/.flowmason/registries.json`) is read at most once, when first
//!    needed ([`Project::config`]).
//! 2. **Registries** — [`Project::registry_decls`]: the manifest's
//!    `[[registries]]`, else the user's enabled registries; opened
//!    (no request yet) by [`Project::registries`].
//! 3. **Existing lock** — [`Project::read_lock`] gives an [`ExistingLock`]:
//!    a valid lock, both sides of one with merge-conflict markers, or what
//!    can be read of an invalid one.
//! 4. **Decide** — [`binding`] refuses a lock whose registry URLs are not
//!    the declared ones, before any request; [`Project::check_fresh`] says,
//!    offline, whether the lock still matches fm.toml; the [`LockMode`]
//!    (`relock`, `--locked`, `--frozen`) says what to do with a stale one.
//! 5. **Resolve** — [`crate::resolve::resolve`], pure: requirements,
//!    registries and the lock's preferences in, a lock out.
//! 6. **Write** — fm.lock, only if its text changed, and never with a
//!    package moved to another registry unless asked ([`binding::check_moves`]).
//! 7. **Install** — [`Project::install`] hands the lock to [`crate::install`].
//!
//! The project root is always the folder of fm.toml: nothing here looks at
//! the process's current directory. The CLI (`src/cli/lock.rs`,
//! `src/cli/sync.rs`) calls this layer and prints what it returns.
//!
//! ```no_run
//! use fm::Project;
//! use fm::install::{Cache, NoProgress, Options};
//! use fm::project::{LockMode, LockOptions};
//!
//! # fn main() -> Result<(), fm::project::ProjectError> {
//! let project = Project::load("fm.toml".as_ref())?;
//! // `fm lock`: resolve (keeping the locked versions) and write fm.lock.
//! let outcome = project.lock(&LockOptions::default())?;
//! for change in &outcome.changes {
//!     println!("{change}"); // `Added summarizer 1.4.2`
//! }
//! // `fm sync --locked`: install exactly fm.lock into .fm/packages.
//! let options = Options {
//!     offline: false,
//!     prune: true,
//!     cache: Cache::from_env(),
//!     reinstall: Default::default(),
//!     precheck: Default::default(),
//! };
//! let (_plan, report) = project.sync(LockMode::Locked, &options, &NoProgress)?;
//! println!("{} installed, {} up to date", report.installed.len(), report.unchanged);
//! # Ok(())
//! # }
//! ```
//!
//! A runnable version over the bundled sample: `examples/lock_and_sync.rs`.

pub mod binding;
mod fresh;
mod sync;
mod yank_log;
mod yank_memo;
pub mod yanked;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::{ConfigError, UserConfig};
use crate::lock::{Change, LockError, Lockfile};
use crate::manifest::{Dependency, Manifest, ManifestError, RegistryDecl};
use crate::registry::{OpenOptions, RegistryError};
use crate::req::Requirement;
use crate::resolve::{Preferences, RegistryEntry, RegistrySet, ResolveError};

pub use sync::{Digests, LockMode, SyncPlan, install_lock};

/// A project: its fm.toml, and the user config once it has been read.
#[derive(Debug)]
pub struct Project {
    manifest: Manifest,
    config: OnceLock<UserConfig>,
}

/// Why a project operation failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ProjectError {
    /// fm.toml could not be read or is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(#[from] ManifestError),
    /// The user config could not be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// A registry could not be opened.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
    /// Resolution failed (a conflict, a missing package, a registry error).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Resolve(#[from] ResolveError),
    /// A registry's transparency log refused the lock (SPEC §9).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Log(Box<crate::tlog::client::ClientError>),
    /// fm.lock cannot be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
    /// fm.lock does not match the project's registries.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Binding(#[from] binding::BindingError),
    /// `--upgrade-package` names a package the lock does not have.
    #[error("--upgrade-package {package}: fm.lock has no package of that name")]
    #[diagnostic(code(fm::resolve::unknown_upgrade), help("see the locked packages with `fm tree`"))]
    UnknownUpgrade { package: String },
    /// `--locked` or `--frozen`, and there is no fm.lock.
    #[error("{} does not exist", path.display())]
    #[diagnostic(help("run `fm lock` to create it (or `fm sync` without --locked/--frozen)"))]
    NoLock { path: PathBuf },
    /// `--locked`, and fm.lock does not match fm.toml (one reason a line).
    #[error(
        "{} is stale; nothing was installed:\n{}",
        path.display(),
        reasons.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n")
    )]
    #[diagnostic(help("run `fm lock` (or `fm sync` without --locked) to update it"))]
    Stale { path: PathBuf, reasons: Vec<String> },
    /// Installing the lock failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Install(#[from] crate::install::InstallError),
}

impl From<crate::tlog::client::ClientError> for ProjectError {
    fn from(e: crate::tlog::client::ClientError) -> ProjectError {
        ProjectError::Log(Box::new(e))
    }
}

/// Options of `fm lock` and of every command that re-locks.
#[derive(Debug, Clone, Default)]
pub struct LockOptions {
    /// Read registries from the local cache only.
    pub offline: bool,
    /// `--upgrade`: drop every preference for the locked versions.
    pub upgrade_all: bool,
    /// `--upgrade-package` (repeatable): drop the preference for these.
    pub upgrade: Vec<String>,
}

/// What [`Project::lock`] did.
#[derive(Debug, Clone)]
pub struct LockOutcome {
    /// The lock as it now is (written or kept).
    pub lock: Lockfile,
    /// One entry a package that changed, against the previous fm.lock.
    pub changes: Vec<Change>,
    /// Whether fm.lock was (re)written.
    pub written: bool,
    /// Locked versions their registry has yanked (kept, as SPEC §2 says,
    /// but to be warned about).
    pub yanked: Vec<yanked::Yanked>,
    /// What the transparency-log checks found (notices to print: first-use
    /// trust, a registry without a log; what they cost).
    pub log: crate::tlog::client::Report,
}

/// fm.lock as found on disk, before anything is decided about it.
#[derive(Debug)]
pub struct ExistingLock {
    /// The file's text.
    pub text: String,
    /// The locks whose versions a re-lock prefers: the lock itself when it
    /// is valid; both sides of a conflicted one; what [`crate::lock::salvage`]
    /// could read of an invalid one.
    pub sides: Vec<Lockfile>,
    /// Which of those it is.
    pub state: LockState,
}

/// What kind of fm.lock an [`ExistingLock`] is.
#[derive(Debug)]
pub enum LockState {
    /// A valid lock (`sides` holds it alone).
    Valid,
    /// It holds git merge-conflict markers: to be re-resolved.
    Conflicted,
    /// It is not a valid lock: to be re-resolved, keeping what was read.
    Invalid(LockError),
}

impl ExistingLock {
    /// The lock, when it is a valid one.
    pub fn valid(&self) -> Option<&Lockfile> {
        match self.state {
            LockState::Valid => self.sides.first(),
            _ => None,
        }
    }

    /// Whether it must be re-resolved whatever fm.toml says (conflicted or
    /// invalid).
    pub fn must_relock(&self) -> bool {
        !matches!(self.state, LockState::Valid)
    }
}

impl Project {
    /// Reads the fm.toml at `manifest_path`; its folder is the project root.
    ///
    /// ```
    /// use fm::Project;
    /// use fm::project::LockOptions;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// std::fs::create_dir(dir.path().join("registry"))?;
    /// std::fs::write(
    ///     dir.path().join("fm.toml"),
    ///     "[project]\nname = \"demo\"\n\n[[registries]]\nname = \"local\"\nurl = \"registry\"\n",
    /// )?;
    /// let project = Project::load(&dir.path().join("fm.toml"))?;
    /// assert_eq!(project.root(), dir.path());
    ///
    /// let outcome = project.lock(&LockOptions::default())?;
    /// assert!(outcome.written && outcome.lock.packages.is_empty());
    /// assert!(project.lock_path().exists());
    /// // A fresh lock is kept as it is, without resolving.
    /// assert!(!project.lock(&LockOptions::default())?.written);
    /// # Ok(())
    /// # }
    /// ```
    pub fn load(manifest_path: &Path) -> Result<Project, ProjectError> {
        Ok(Project::new(Manifest::load(manifest_path)?))
    }

    /// A project over an fm.toml already read.
    pub fn new(manifest: Manifest) -> Project {
        Project {
            manifest,
            config: OnceLock::new(),
        }
    }

    /// Its fm.toml.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The project root: the folder of fm.toml (and fm.lock, and `.fm/`).
    pub fn root(&self) -> &Path {
        self.manifest.root()
    }

    /// Where its fm.lock is.
    pub fn lock_path(&self) -> PathBuf {
        self.root().join(crate::lock::LOCK_FILE)
    }

    /// The user config, read on first use and kept.
    pub fn config(&self) -> Result<&UserConfig, ConfigError> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let loaded = UserConfig::load()?;
        Ok(self.config.get_or_init(|| loaded))
    }

    /// The registries the project declares: the manifest's
    /// `[[registries]]`, else the user's enabled registries; highest
    /// priority first. Opens nothing (freshness checks use this offline).
    pub fn registry_decls(&self) -> Result<Vec<RegistryDecl>, ProjectError> {
        if !self.manifest.registries.is_empty() {
            return Ok(self.manifest.registries_by_priority());
        }
        user_registry_decls(self.config()?, self.root(), None, true)
    }

    /// The project's registries, opened (no request is made yet).
    pub fn registries(&self, offline: bool) -> Result<RegistrySet, ProjectError> {
        open_registries(self.config()?, self.registry_decls()?, offline)
    }

    /// Reads fm.lock; `Ok(None)` when there is none. A lock written by a
    /// newer fm, or one that cannot be read, is an error.
    pub fn read_lock(&self) -> Result<Option<ExistingLock>, ProjectError> {
        Ok(read_lock(&self.lock_path())?)
    }

    /// Refuses `lock` when its `[[registry]]` URLs are not the ones the
    /// project declares ([`binding::check_lock_urls`]); reads no registry,
    /// so it runs before any request in every mode. `undeclared_ok`: a
    /// registry the project no longer declares is left to a re-lock
    /// (default `fm sync`), not refused.
    pub fn check_lock_urls(&self, lock: &Lockfile, undeclared_ok: bool) -> Result<(), ProjectError> {
        let decls = self.registry_decls()?;
        Ok(binding::check_lock_urls(&self.manifest, &decls, lock, undeclared_ok)?)
    }

    /// Whether `lock` still matches fm.toml, decided offline from `[root]`
    /// and `[[registry]]`: `Ok(())` fresh, `Err(reasons)` stale, one line
    /// each (at most a dozen lines, whatever the lock holds).
    pub fn check_fresh(&self, lock: &Lockfile) -> Result<(), Vec<String>> {
        fresh::check_fresh(self, lock)
    }

    /// `fm lock`'s whole job: take preferences from the existing fm.lock
    /// (both sides of a conflicted one), resolve against the project's
    /// registries, and write fm.lock if its text changed. A fresh lock with
    /// no upgrade asked for is kept as it is, without resolving; the
    /// registries are read then only to warn about locked versions yanked
    /// since (best effort, bounded: see [`yanked`]).
    pub fn lock(&self, opts: &LockOptions) -> Result<LockOutcome, ProjectError> {
        self.lock_keeping(opts).map(|(outcome, _)| outcome)
    }

    /// [`Project::lock`], also giving the registries it opened, with every
    /// document they read (`fm lock` keeps them until the process exits
    /// rather than free them one by one).
    pub fn lock_keeping(&self, opts: &LockOptions) -> Result<(LockOutcome, Option<RegistrySet>), ProjectError> {
        let existing = self.read_lock()?;
        self.lock_with(existing, opts)
    }

    /// [`Project::lock`] with fm.lock already read; also gives the
    /// registries it opened (to install from without opening them again).
    fn lock_with(
        &self,
        existing: Option<ExistingLock>,
        opts: &LockOptions,
    ) -> Result<(LockOutcome, Option<RegistrySet>), ProjectError> {
        let (old_text, sides, must_relock) = match existing {
            Some(e) => {
                let must = e.must_relock();
                (Some(e.text), e.sides, must)
            }
            None => (None, Vec::new(), false),
        };
        let old = sides.first().cloned();
        for p in &opts.upgrade {
            if !sides.iter().any(|l| l.package(p).is_some()) {
                return Err(ProjectError::UnknownUpgrade { package: p.clone() });
            }
        }
        if let Some(old) = &old
            && !must_relock
            && !opts.upgrade_all
            && opts.upgrade.is_empty()
            && self.check_fresh(old).is_ok()
        {
            // Nothing to resolve; the documents are read only to warn about
            // yanked versions (best effort: a registry that cannot be read
            // leaves a fresh lock fresh).
            let registries = self.registries(opts.offline).ok();
            let yanked = registries
                .as_ref()
                .map(|set| yanked::check(old, set))
                .unwrap_or_default();
            let outcome = LockOutcome {
                lock: old.clone(),
                changes: Vec::new(),
                written: false,
                yanked,
                log: Default::default(),
            };
            return Ok((outcome, registries));
        }
        let registries = self.registries(opts.offline)?;
        let deps: Vec<Dependency> = self.manifest.dependencies.values().cloned().collect();
        let prefs = Preferences {
            locks: sides,
            upgrade_all: opts.upgrade_all,
            upgrade: opts.upgrade.clone(),
        };
        let resolution = crate::resolve::resolve_full(&deps, &registries, &prefs)?;
        let mut lock = resolution.lock;
        // Before anything is written: no package changes registry unless
        // `--upgrade-package` names it (`--upgrade` alone does not).
        binding::check_moves(&prefs.locks, &lock, &opts.upgrade, self.root())?;
        // And every version is in its registry's transparency log (SPEC §9).
        let targets = log_targets(&registries, old.as_ref());
        let log = crate::tlog::client::prove_lock(&mut lock, &targets, opts.offline)?;
        let changes = crate::lock::changes(old.as_ref(), &lock);
        let text = lock.render();
        let written = old_text.as_deref() != Some(text.as_str());
        if written {
            // The text just rendered, not a second rendering by `save`.
            let path = self.lock_path();
            crate::fsutil::write_atomic(&path, text.as_bytes())
                .map_err(|source| crate::lock::LockError::Io { path, source })?;
        }
        // As the documents the solver read say (not read a second time).
        let yanked = lock
            .packages
            .iter()
            .filter(|p| resolution.yanked.contains(p.name.as_str()))
            .map(|p| yanked::Yanked {
                name: p.name.to_string(),
                version: p.version.to_string(),
                registry: p.registry.clone(),
            })
            .collect();
        let outcome = LockOutcome {
            lock,
            changes,
            written,
            yanked,
            log,
        };
        Ok((outcome, Some(registries)))
    }
}

/// Reads the fm.lock at `path` into an [`ExistingLock`]; `Ok(None)` when
/// there is none.
pub fn read_lock(path: &Path) -> Result<Option<ExistingLock>, LockError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LockError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if crate::lock::has_conflict_markers(&text) {
        let sides = crate::lock::read_conflicted(path, &text);
        return Ok(Some(ExistingLock {
            text,
            sides,
            state: LockState::Conflicted,
        }));
    }
    match Lockfile::parse(path, &text) {
        Ok(lock) => Ok(Some(ExistingLock {
            text,
            sides: vec![lock],
            state: LockState::Valid,
        })),
        // Re-resolved like a conflicted lock, keeping what can be read.
        Err(e @ LockError::Invalid { .. }) => {
            let kept = crate::lock::salvage(path, &text);
            Ok(Some(ExistingLock {
                text,
                sides: vec![kept],
                state: LockState::Invalid(e),
            }))
        }
        Err(e) => Err(e),
    }
}

/// The user's enabled registries (or only `only`) as declarations; relative
/// paths in the user config are relative to `base`. `name_config`: whether
/// an unusable URL's message names the config file.
fn user_registry_decls(
    config: &UserConfig,
    base: &Path,
    only: Option<&str>,
    name_config: bool,
) -> Result<Vec<RegistryDecl>, ProjectError> {
    let mut out = Vec::new();
    for e in config.enabled() {
        if only.is_some_and(|r| r != e.name) {
            continue;
        }
        let url = crate::location::parse_location(&e.url, base).map_err(|reason| RegistryError::Unsupported {
            registry: e.name.clone(),
            reason: if name_config {
                format!(
                    "its URL {:?} in {} is not usable: {reason}",
                    e.url,
                    UserConfig::path().display()
                )
            } else {
                format!("its URL {:?} is not usable: {reason}", e.url)
            },
        })?;
        out.push(RegistryDecl {
            log: crate::tlog::client::config_pin(e),
            relative: None,
            name: e.name.clone(),
            url,
            priority: e.priority,
            explicit: false,
        });
    }
    Ok(out)
}

/// Opens these registries with the tokens and mirrors of `config` (no
/// request is made yet).
pub fn open_registries(
    config: &UserConfig,
    decls: Vec<RegistryDecl>,
    offline: bool,
) -> Result<RegistrySet, ProjectError> {
    let mut entries = Vec::with_capacity(decls.len());
    for decl in decls {
        let opts = OpenOptions::for_registry(&decl.name, &decl.url, config, offline);
        let client = crate::registry::open(&decl.name, &decl.url, &opts)?;
        entries.push(RegistryEntry { decl, client });
    }
    Ok(RegistrySet { entries })
}

/// Resolves one package and its dependencies against the user's enabled
/// registries (or only `registry`), for `fm install`: no manifest, no lock.
/// Relative registry paths in the user config are relative to `base`.
pub fn resolve_one(
    base: &Path,
    name: &str,
    req: &Requirement,
    registry: Option<&str>,
    offline: bool,
) -> Result<Lockfile, ProjectError> {
    let config = UserConfig::load()?;
    let decls = user_registry_decls(&config, base, registry, false)?;
    if let Some(r) = registry
        && decls.is_empty()
    {
        return Err(ResolveError::UnknownRegistry {
            package: name.to_owned(),
            registry: r.to_owned(),
            known: config.enabled().iter().map(|e| e.name.clone()).collect(),
        }
        .into());
    }
    let registries = open_registries(&config, decls, offline)?;
    let dep = Dependency {
        name: name.to_owned(),
        req: req.clone(),
        registry: registry.map(str::to_owned),
    };
    let mut lock = crate::resolve::resolve(&[dep], &registries, &Preferences::default())?;
    // Every version is in its registry's transparency log (SPEC §9), as
    // `fm lock` proves it: keys pinned by the user config or trusted on
    // first use (there is no fm.lock to record them in).
    let targets = log_targets(&registries, None);
    crate::tlog::client::prove_lock(&mut lock, &targets, offline)?;
    Ok(lock)
}

/// What the transparency-log proofs check for each of `registries`: its
/// client, the key the project pins, and the key `locked` (the existing
/// fm.lock, if any) recorded for it.
fn log_targets(registries: &RegistrySet, locked: Option<&Lockfile>) -> Vec<crate::tlog::client::Target> {
    registries
        .entries
        .iter()
        .map(|e| crate::tlog::client::Target {
            name: e.decl.name.clone(),
            client: e.client.clone(),
            pin: e.decl.log.clone(),
            locked_key: locked.and_then(|l| l.log.keys.get(&e.decl.name).cloned()),
        })
        .collect()
}
