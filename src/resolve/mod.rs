//! Resolution (SPEC §2), and nothing else: the project's requirements, the
//! registries and the preferences taken from an existing lock go in; one
//! version per package, as a [`Lockfile`] value, comes out. It reads no file
//! and no configuration: loading fm.toml, the user config and fm.lock, and
//! deciding whether to resolve at all, is [`crate::project`]'s job.
//!
//! - [`ranges`]: Cargo requirements as exact pubgrub version sets.
//! - [`index`]: package documents, fetched concurrently ahead of the solver,
//!   and the registry choice (first match by priority, pins, explicit).
//! - [`provider`]: the [`pubgrub::DependencyProvider`] (version choice,
//!   yanked versions, lock preferences, decision priority); a registry error
//!   travels through the solver as its `Err` ([`provider::ProviderError`]).
//! - `solve`: the solver's answer made into a lock, or a conflict explained.
//! - [`report`]: conflict explanations in words.
//!
//! The solver is synchronous and runs on a thread of its own; registry
//! reads are async and run on a runtime owned by the resolution, so
//! [`resolve`] may be called from sync code or from inside a tokio runtime.

pub mod index;
pub mod provider;
pub mod ranges;
pub mod report;
mod solve;

use std::collections::HashMap;
use std::sync::Arc;

use crate::lock::{LockedRegistry, Lockfile};
use crate::manifest::{Dependency, RegistryDecl};
use crate::registry::{Registry, RegistryError};
use index::Index;
use provider::{FmProvider, Pkg, ProviderError};
use ranges::SemverSet;

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

impl RegistrySet {
    /// The registries as `fm.lock` records them (URLs without credentials).
    pub fn locked(&self) -> Vec<LockedRegistry> {
        self.entries.iter().map(|e| locked_registry(&e.decl)).collect()
    }

    /// The registries' names, in priority order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.decl.name.clone()).collect()
    }
}

/// A declared registry as fm.lock records it: its URL without credentials
/// (or the relative path fm.toml gave).
pub fn locked_registry(d: &RegistryDecl) -> LockedRegistry {
    LockedRegistry {
        name: d.name.clone(),
        url: d
            .relative
            .clone()
            .unwrap_or_else(|| crate::registry::redact_url(&d.url).to_string()),
        priority: d.priority,
        explicit: d.explicit,
    }
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
    /// No set of versions satisfies the requirements.
    #[error("cannot resolve the dependencies\n\n{explanation}")]
    #[diagnostic(code(fm::resolve::conflict))]
    Conflict {
        explanation: String,
        #[help]
        help: String,
    },
    /// A dependency names a registry the project does not declare.
    #[error("{package} asks for registry {registry:?}, which is not one of the project's registries ({})", known.join(", "))]
    #[diagnostic(
        code(fm::resolve::unknown_registry),
        help("add it under [[registries]] in fm.toml, or `fm registry add {registry} URL`")
    )]
    UnknownRegistry {
        package: String,
        registry: String,
        known: Vec<String>,
    },
    /// Dependencies but nowhere to get them from.
    #[error("there are dependencies to resolve but no registries to resolve them from")]
    #[diagnostic(
        code(fm::resolve::no_registries),
        help("add a [[registries]] entry to fm.toml, or `fm registry add NAME URL`")
    )]
    NoRegistries,
    /// A registry could not be read (before the solver started, or a
    /// document that cannot be locked).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
    /// A registry could not be read while the solver ran: the error it met,
    /// carried through pubgrub as the provider's `Err`.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fetch(#[from] ProviderError),
    /// The runtime or thread resolution runs on could not be started.
    #[error("cannot start the resolver: {0}")]
    #[diagnostic(code(fm::resolve::runtime))]
    Runtime(String),
}

/// What a resolution found: the lock, and which of its versions the
/// registry marks as yanked (chosen only because a lock preferred them).
#[derive(Debug, Clone)]
pub struct Resolution {
    pub lock: Lockfile,
    /// Names of the locked packages whose locked version is yanked, as the
    /// documents the solver read say.
    pub yanked: std::collections::BTreeSet<String>,
}

/// Resolves `dependencies` (a project's `[dependencies]`) against
/// `registries` and returns the new lock.
pub fn resolve(
    dependencies: &[Dependency],
    registries: &RegistrySet,
    prefs: &Preferences,
) -> Result<Lockfile, ResolveError> {
    resolve_full(dependencies, registries, prefs).map(|r| r.lock)
}

/// [`resolve`], also saying which locked versions are yanked (so that a
/// caller warning about them need not read the documents again).
pub fn resolve_full(
    dependencies: &[Dependency],
    registries: &RegistrySet,
    prefs: &Preferences,
) -> Result<Resolution, ResolveError> {
    if !dependencies.is_empty() && registries.entries.is_empty() {
        return Err(ResolveError::NoRegistries);
    }
    let mut pins = HashMap::new();
    let mut root = Vec::with_capacity(dependencies.len());
    for d in dependencies {
        if let Some(r) = &d.registry {
            let Some(i) = registries.entries.iter().position(|e| &e.decl.name == r) else {
                return Err(ResolveError::UnknownRegistry {
                    package: d.name.clone(),
                    registry: r.clone(),
                    known: registries.names(),
                });
            };
            pins.insert(d.name.clone(), i);
        }
        root.push((Pkg::named(&d.name), SemverSet::from_req(&d.req.0)));
    }
    // The order of the project's requirements must not change the answer
    // (nor the explanation of a conflict).
    root.sort_by(|a: &(Pkg, SemverSet), b| a.0.cmp(&b.0));
    let mut preferred: HashMap<String, Vec<semver::Version>> = HashMap::new();
    if !prefs.upgrade_all {
        for lock in &prefs.locks {
            for p in &lock.packages {
                if prefs.upgrade.iter().any(|u| *u == p.name) {
                    continue;
                }
                let v = preferred.entry(p.name.to_string()).or_default();
                if !v.contains(&p.version) {
                    v.push(p.version.clone());
                }
            }
        }
    }
    let hints = preferred
        .iter()
        .filter_map(|(n, v)| v.iter().max().map(|m| (n.clone(), m.clone())))
        .collect();
    let registries = registries.clone();
    let mut root_strings: Vec<String> = dependencies.iter().map(ToString::to_string).collect();
    root_strings.sort();
    // The solver blocks on the index; give it a thread with no runtime of
    // its own so this works from async callers too.
    std::thread::scope(|s| {
        s.spawn(move || {
            let index = Index::new(registries, pins, hints).map_err(|e| ResolveError::Runtime(e.to_string()))?;
            let provider = FmProvider::new(index, root, preferred);
            solve::solve(&provider, root_strings)
        })
        .join()
        .unwrap_or_else(|_| Err(ResolveError::Runtime("the resolver thread panicked".to_owned())))
    })
}
