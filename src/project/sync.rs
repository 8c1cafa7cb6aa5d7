//! `fm sync`'s decisions: which lock to install ([`LockMode`],
//! [`Project::prepare_sync`]), and installing it ([`install_lock`]).
//!
//! Rules kept here:
//! - in every mode, before any request, the lock's registry URLs must be
//!   the ones the project declares ([`super::binding`]); a lock used as it
//!   is (`--locked`, `--frozen`) may not name a registry the project does
//!   not declare, while a re-lock may drop one;
//! - `--locked` installs nothing from a stale lock, and says why;
//! - `--frozen` reads no registry metadata (archives only);
//! - a lock with merge-conflict markers is re-resolved by the default mode;
//!   any other unreadable lock stands as an error.

use std::path::Path;

use super::{ExistingLock, LockOptions, LockState, Project, ProjectError, yanked};
use crate::install::{self, Layout, Progress};
use crate::lock::{Change, Lockfile};
use crate::resolve::RegistrySet;

/// What `fm sync` may do with fm.lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Default: a missing or stale lock is re-locked (and written) first.
    #[default]
    Relock,
    /// `--locked`: a missing or stale lock is an error; nothing is written.
    Locked,
    /// `--frozen`: the lock is installed as it is, reading no registry
    /// metadata; `require_fresh` (`--locked --frozen`) also refuses a
    /// stale one (freshness is decided offline).
    Frozen { require_fresh: bool },
}

impl LockMode {
    /// The mode of `fm sync [--locked] [--frozen]`.
    ///
    /// ```
    /// use fm::project::LockMode;
    ///
    /// assert_eq!(LockMode::from_flags(false, false), LockMode::Relock);
    /// assert_eq!(LockMode::from_flags(true, false), LockMode::Locked);
    /// assert_eq!(LockMode::from_flags(false, true), LockMode::Frozen { require_fresh: false });
    /// assert_eq!(LockMode::from_flags(true, true), LockMode::Frozen { require_fresh: true });
    /// ```
    pub fn from_flags(locked: bool, frozen: bool) -> LockMode {
        match (locked, frozen) {
            (_, true) => LockMode::Frozen { require_fresh: locked },
            (true, false) => LockMode::Locked,
            (false, false) => LockMode::Relock,
        }
    }
}

/// The lock `fm sync` is to install, and how it was decided.
#[derive(Debug)]
pub struct SyncPlan {
    /// The lock to install.
    pub lock: Lockfile,
    /// Whether this run re-locked (resolved, or found a stale lock fresh
    /// after all); `written` says whether fm.lock changed.
    pub relocked: bool,
    /// Whether this run wrote fm.lock: its digests are then the
    /// registries' own, read just now.
    pub written: bool,
    /// What the re-lock changed (empty without one).
    pub changes: Vec<Change>,
    /// Locked versions their registry has yanked since (to warn about).
    pub yanked: Vec<yanked::Yanked>,
    /// What the re-lock's transparency-log checks found (notices, cost).
    pub log: crate::tlog::client::Report,
    /// The project's registries, when metadata may be read (not
    /// `--frozen`); used to word a digest mismatch right.
    pub registries: Option<RegistrySet>,
}

impl SyncPlan {
    /// Where the lock's digests come from.
    pub fn digests(&self) -> Digests<'_> {
        if self.written {
            Digests::FromRegistry
        } else {
            Digests::FromLock(self.registries.as_ref())
        }
    }
}

/// Where a lock's digests come from, to word a SHA-256 mismatch right.
#[derive(Debug, Clone, Copy)]
pub enum Digests<'a> {
    /// Read from the registries' documents just now (`fm install`, or a
    /// lock this run wrote): the registry contradicts itself.
    FromRegistry,
    /// From an existing fm.lock; with the registries to ask whether they
    /// still publish the locked digest (`None`: do not ask, `--frozen`).
    FromLock(Option<&'a RegistrySet>),
}

impl Project {
    /// Decides which lock `fm sync` installs in `mode`: the existing one
    /// (checked against the project's registries before any request, and
    /// for freshness where the mode asks), or a new one from a re-lock.
    pub fn prepare_sync(&self, mode: LockMode, offline: bool) -> Result<SyncPlan, ProjectError> {
        let path = self.lock_path();
        if mode == LockMode::Relock {
            return self.relock_if_stale(self.read_lock()?, offline);
        }
        let Some(lock) = Lockfile::load(&path)? else {
            return Err(ProjectError::NoLock { path });
        };
        // Before any request: the lock used as it is names only the
        // registries the project declares, at their declared URLs.
        self.check_lock_urls(&lock, false)?;
        let require_fresh = match mode {
            LockMode::Frozen { require_fresh } => require_fresh,
            _ => true,
        };
        // check_fresh reads no registry, so `--locked --frozen` checks too.
        if require_fresh && let Err(reasons) = self.check_fresh(&lock) {
            return Err(ProjectError::Stale { path, reasons });
        }
        let mut plan = SyncPlan {
            lock,
            relocked: false,
            written: false,
            changes: Vec::new(),
            yanked: Vec::new(),
            log: Default::default(),
            registries: None,
        };
        // --frozen reads no metadata; --locked does.
        if mode == LockMode::Locked {
            self.read_metadata(&mut plan, offline);
        }
        Ok(plan)
    }

    /// The default mode: a fresh lock as it is, anything else re-locked.
    fn relock_if_stale(&self, existing: Option<ExistingLock>, offline: bool) -> Result<SyncPlan, ProjectError> {
        // A lock with merge-conflict markers is re-resolved below
        // (preferring both sides); any other error stands.
        if let Some(ExistingLock {
            state: LockState::Invalid(e),
            ..
        }) = existing
        {
            return Err(e.into());
        }
        let valid = existing.as_ref().and_then(ExistingLock::valid);
        // A declared registry at another URL is refused, not re-locked
        // over: the user decides (`fm lock --upgrade-package`). A registry
        // no longer declared is re-locked, and the re-lock refuses any
        // package that would move to another registry.
        let fresh = match valid {
            Some(lock) => {
                self.check_lock_urls(lock, true)?;
                self.check_fresh(lock).is_ok()
            }
            None => false,
        };
        let existing = match existing {
            // Moved out, not cloned: a no-op sync of a big lock does not
            // copy it (`valid` is `sides[0]`).
            Some(mut e) if fresh && !e.sides.is_empty() => {
                let mut plan = SyncPlan {
                    lock: e.sides.swap_remove(0),
                    relocked: false,
                    written: false,
                    changes: Vec::new(),
                    yanked: Vec::new(),
                    log: Default::default(),
                    registries: None,
                };
                self.read_metadata(&mut plan, offline);
                return Ok(plan);
            }
            other => other,
        };
        let (outcome, registries) = self.lock_with(
            existing,
            &LockOptions {
                offline,
                ..Default::default()
            },
        )?;
        Ok(SyncPlan {
            lock: outcome.lock,
            relocked: true,
            written: outcome.written,
            changes: outcome.changes,
            yanked: outcome.yanked,
            log: outcome.log,
            registries,
        })
    }

    /// Opens the registries (best effort) and notes the locked versions
    /// they have yanked since.
    fn read_metadata(&self, plan: &mut SyncPlan, offline: bool) {
        if let Ok(set) = self.registries(offline) {
            plan.yanked = yanked::check(&plan.lock, &set);
            plan.registries = Some(set);
        }
    }

    /// Installs `plan`'s lock into `layout` (relative registry paths of the
    /// lock are relative to the project root).
    pub fn install(
        &self,
        plan: &SyncPlan,
        layout: &Layout,
        opts: &install::Options,
        progress: &dyn Progress,
    ) -> Result<install::Report, ProjectError> {
        install_lock(&plan.lock, self.root(), layout, opts, progress, plan.digests())
    }

    /// `fm sync` as a library call: [`Project::prepare_sync`] in `mode`, then
    /// [`Project::install`] into the project's `.fm/packages`.
    pub fn sync(
        &self,
        mode: LockMode,
        opts: &install::Options,
        progress: &dyn Progress,
    ) -> Result<(SyncPlan, install::Report), ProjectError> {
        let layout = Layout::project(self.root());
        // The install folder's no-op proof runs while fm.lock is read.
        let opts = install::Options {
            precheck: install::Precheck::start(&layout),
            ..opts.clone()
        };
        let plan = self.prepare_sync(mode, opts.offline)?;
        let report = self.install(&plan, &layout, &opts, progress)?;
        Ok((plan, report))
    }
}

/// Installs `lock`'s packages into `layout`. Relative registry paths in the
/// lock are relative to `base` (the folder of fm.toml and fm.lock). A
/// digest mismatch is worded by `digests`: when the registry still
/// publishes the digest the lock records, it is the registry that
/// contradicts itself, not a stale lock.
pub fn install_lock(
    lock: &Lockfile,
    base: &Path,
    layout: &Layout,
    opts: &install::Options,
    progress: &dyn Progress,
    digests: Digests<'_>,
) -> Result<install::Report, ProjectError> {
    let registries = lock.registries_at(base)?;
    install::install(&lock.packages, &registries, layout, opts, progress).map_err(|e| {
        let e = match (e, digests) {
            (e @ install::InstallError::DigestMismatch { .. }, Digests::FromRegistry) => {
                e.registry_contradicts_itself()
            }
            (e @ install::InstallError::DigestMismatch { .. }, Digests::FromLock(Some(set))) => {
                // The lock's digest may be old news; ask the registry what it
                // says now before suggesting a re-lock.
                let agrees = match &e {
                    install::InstallError::DigestMismatch {
                        package,
                        version,
                        registry,
                        expected,
                        ..
                    } => {
                        yanked::registry_checksum(set, registry, package, version).as_deref() == Some(expected.as_str())
                    }
                    _ => false,
                };
                if agrees { e.registry_contradicts_itself() } else { e }
            }
            (e, _) => e,
        };
        ProjectError::Install(e)
    })
}
