//! Resolution (SPEC §2): one version per package, with PubGrub, across
//! prioritized registries.
//!
//! STUB: the API below is the contract other modules build on; the
//! implementation lands with the resolver issue.

use std::sync::Arc;

use crate::lock::Lockfile;
use crate::manifest::{Dependency, RegistryDecl};
use crate::registry::Registry;

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
