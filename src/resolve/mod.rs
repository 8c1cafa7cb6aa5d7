//! Resolution (SPEC §2): one version per package, with PubGrub, across
//! prioritized registries.
//!
//! STUB: the API below is the contract other modules build on; the
//! implementation lands with the resolver issue.

use std::sync::Arc;

use crate::lock::Lockfile;
use crate::manifest::{Dependency, Manifest, RegistryDecl};
use crate::registry::Registry;
use crate::req::Requirement;

/// One registry a resolution may use, with its declaration.
#[derive(Debug, Clone)]
pub struct RegistryEntry {
    pub decl: RegistryDecl,
    pub client: Arc<dyn Registry>,
}

/// The registries of a project, highest priority first.
#[derive(Debug, Clone, Default)]
pub struct RegistrySet {
    pub entries: Vec<RegistryEntry>,
}

/// What to keep from an existing lock.
#[derive(Debug, Clone, Default)]
pub struct Preferences {
    /// Locks whose versions are preferred (several after a merge conflict).
    pub locks: Vec<Lockfile>,
    /// Drop every preference (`--upgrade`).
    pub upgrade_all: bool,
    /// Drop the preference for these packages (`--upgrade-package`).
    pub upgrade: Vec<String>,
}

/// Why resolution failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ResolveError {
    #[error("resolution is not implemented in this build of fm yet")]
    #[diagnostic(code(fm::resolve::not_built))]
    NotBuilt,
}

/// Resolves `dependencies` (a project's `[dependencies]`) against
/// `registries` and returns the new lock.
pub fn resolve(
    _dependencies: &[Dependency],
    _registries: &RegistrySet,
    _prefs: &Preferences,
) -> Result<Lockfile, ResolveError> {
    Err(ResolveError::NotBuilt)
}

/// Options of `fm lock` and of every command that re-locks.
#[derive(Debug, Clone, Default)]
pub struct LockOptions {
    pub offline: bool,
    /// `--upgrade`.
    pub upgrade_all: bool,
    /// `--upgrade-package` (repeatable).
    pub upgrade: Vec<String>,
}

/// What [`lock_project`] did.
#[derive(Debug, Clone)]
pub struct LockOutcome {
    pub lock: Lockfile,
    /// One entry a package that changed, against the previous fm.lock.
    pub changes: Vec<crate::lock::Change>,
    /// Whether fm.lock was (re)written.
    pub written: bool,
}

/// The registries a project resolves against: the manifest's
/// `[[registries]]`, else the user's enabled registries; highest priority
/// first.
pub fn registries_for(_manifest: &Manifest, _offline: bool) -> Result<RegistrySet, ResolveError> {
    Err(ResolveError::NotBuilt)
}

/// `fm lock`'s whole job: open the registries, take preferences from the
/// existing fm.lock (both sides of a conflicted one), resolve, and write
/// fm.lock next to the manifest if it changed.
pub fn lock_project(_manifest: &Manifest, _opts: &LockOptions) -> Result<LockOutcome, ResolveError> {
    Err(ResolveError::NotBuilt)
}

/// Whether `lock` still matches `manifest`, decided offline from `[root]`
/// and `[[registry]]`: `Ok(())` fresh, `Err(reasons)` stale, one line each.
pub fn check_fresh(_manifest: &Manifest, _lock: &Lockfile) -> Result<(), Vec<String>> {
    Err(vec![
        "freshness checks are not implemented in this build of fm yet".to_owned(),
    ])
}

/// Resolves one package and its dependencies against the user's registries
/// (or only `registry`), for `fm install`.
pub fn resolve_one(
    _name: &str,
    _req: &Requirement,
    _registry: Option<&str>,
    _opts: &LockOptions,
) -> Result<Lockfile, ResolveError> {
    Err(ResolveError::NotBuilt)
}
