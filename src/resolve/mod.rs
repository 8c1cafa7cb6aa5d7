//! Resolution (SPEC §2): one version per package, with PubGrub, across
//! prioritized registries; and `fm lock`'s whole job, [`lock_project`].
//!
//! - [`ranges`]: Cargo requirements as exact pubgrub version sets.
//! - [`index`]: package documents, fetched concurrently ahead of the solver,
//!   and the registry choice (first match by priority, pins, explicit).
//! - [`provider`]: the [`pubgrub::DependencyProvider`] (version choice,
//!   yanked versions, lock preferences, decision priority).
//! - [`report`]: conflict explanations in words.
//! - [`yanked`]: locked versions their registry has yanked since.
//! - [`binding`]: fm.lock bound to the project: its registry URLs must be
//!   the declared ones, and a re-lock moves no package to another registry
//!   unless asked.
//! - [`synthetic`]: an in-memory registry and a generated universe for
//!   tests and benchmarks.
//!
//! The solver is synchronous and runs on a thread of its own; registry
//! reads are async and run on a runtime owned by the resolution, so
//! [`resolve`] may be called from sync code or from inside a tokio runtime.

pub mod binding;
pub mod index;
pub mod provider;
pub mod ranges;
pub mod report;
pub mod synthetic;
pub mod yanked;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use pubgrub::PubGrubError;

use crate::config::UserConfig;
use crate::lock::{Change, LockError, LockedPackage, LockedRegistry, Lockfile};
use crate::manifest::{Dependency, Manifest, RegistryDecl};
use crate::registry::{OpenOptions, Registry, RegistryError};
use crate::req::Requirement;
use index::Index;
use provider::{FmProvider, Pkg};
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

    fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.decl.name.clone()).collect()
    }
}

fn locked_registry(d: &RegistryDecl) -> LockedRegistry {
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
    /// Kept for callers written against the stub; never returned.
    #[error("resolution is not implemented in this build of fm yet")]
    #[diagnostic(code(fm::resolve::not_built))]
    NotBuilt,
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
    /// `--upgrade-package` names a package the lock does not have.
    #[error("--upgrade-package {package}: fm.lock has no package of that name")]
    #[diagnostic(code(fm::resolve::unknown_upgrade), help("see the locked packages with `fm tree`"))]
    UnknownUpgrade { package: String },
    /// A registry could not be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// fm.lock does not match the project's registries.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Binding(#[from] binding::BindingError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
    /// The runtime or thread resolution runs on could not be started.
    #[error("cannot start the resolver: {0}")]
    #[diagnostic(code(fm::resolve::runtime))]
    Runtime(String),
}

/// Resolves `dependencies` (a project's `[dependencies]`) against
/// `registries` and returns the new lock.
pub fn resolve(
    dependencies: &[Dependency],
    registries: &RegistrySet,
    prefs: &Preferences,
) -> Result<Lockfile, ResolveError> {
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
                if prefs.upgrade.contains(&p.name) {
                    continue;
                }
                let v = preferred.entry(p.name.clone()).or_default();
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
            solve(&provider, root_strings)
        })
        .join()
        .unwrap_or_else(|_| Err(ResolveError::Runtime("the resolver thread panicked".to_owned())))
    })
}

fn solve(provider: &FmProvider, root: Vec<String>) -> Result<Lockfile, ResolveError> {
    let selected = match pubgrub::resolve(provider, Pkg::Root, provider::root_version()) {
        Ok(s) => s,
        Err(PubGrubError::NoSolution(tree)) => {
            let missing = provider.missing();
            let registries = provider.index.registries().clone();
            let searched: HashMap<String, Vec<String>> = missing
                .iter()
                .map(|n| {
                    let names = provider
                        .index
                        .searched(n)
                        .into_iter()
                        .map(|i| registries.entries[i].decl.name.clone())
                        .collect();
                    (n.clone(), names)
                })
                .collect();
            let help = if missing.is_empty() {
                "change one of these requirements in fm.toml (or ask for a release of the package that \
                 holds the other back), then run `fm lock` again"
                    .to_owned()
            } else {
                let mut names: Vec<&String> = missing.iter().collect();
                names.sort();
                // A short list whatever the input: the first few, then a count.
                let shown: Vec<&str> = names.iter().take(10).map(|s| s.as_str()).collect();
                let more = match names.len().saturating_sub(shown.len()) {
                    0 => String::new(),
                    n => format!(" (and {n} more)"),
                };
                format!(
                    "check the spelling of {}{more}, or add the registry that has it to [[registries]] in fm.toml",
                    shown.join(", ")
                )
            };
            let mut available = HashMap::new();
            for p in tree.packages() {
                let Pkg::Named(n) = p else { continue };
                if let Ok(Some(e)) = provider.index.get(n) {
                    let shown: Vec<String> = e
                        .candidates
                        .iter()
                        .take(5)
                        .map(|c| {
                            if c.yanked {
                                format!("{} (yanked)", c.version)
                            } else {
                                c.version.to_string()
                            }
                        })
                        .collect();
                    let more = if e.candidates.len() > 5 { ", …" } else { "" };
                    let registry = &registries.entries[e.registry].decl.name;
                    let text = if shown.is_empty() {
                        format!("{registry} has no versions of it")
                    } else {
                        format!("{registry} has {}{more}", shown.join(", "))
                    };
                    available.insert(n.to_string(), text);
                }
            }
            let formatter = report::Formatter {
                missing,
                searched,
                known: provider.known(),
                available,
            };
            return Err(ResolveError::Conflict {
                explanation: report::explain(tree, &formatter),
                help,
            });
        }
        Err(_) => {
            return Err(match provider.index.take_error() {
                Some(e) => ResolveError::Registry(e),
                None => ResolveError::Runtime("a registry could not be read".to_owned()),
            });
        }
    };
    let registries = provider.index.registries();
    let mut packages = Vec::new();
    for (pkg, version) in selected {
        let Pkg::Named(name) = pkg else { continue };
        let entry = provider
            .index
            .get(&name)
            .ok()
            .flatten()
            .ok_or_else(|| ResolveError::Runtime(format!("{name} vanished from the index")))?;
        let record = entry
            .candidate(&version)
            .and_then(|c| entry.record(c))
            .ok_or_else(|| ResolveError::Runtime(format!("{name} {version} vanished from the index")))?;
        let registry = registries.entries[entry.registry].decl.name.clone();
        if !crate::fsutil::is_sha256_hex(&record.checksum) {
            return Err(RegistryError::Corrupt {
                registry,
                package: name.to_string(),
                reason: format!("version {version} has no valid sha256 checksum"),
            }
            .into());
        }
        let mut dependencies: Vec<String> = record
            .dependencies
            .iter()
            .map(|(d, r)| match Requirement::parse(r) {
                Ok(r) => format!("{d} {r}"),
                Err(_) => format!("{d} {r}"),
            })
            .collect();
        dependencies.sort();
        packages.push(LockedPackage {
            name: name.to_string(),
            version,
            registry,
            sha256: record.checksum.to_ascii_lowercase(),
            size: record.size_bytes,
            dependencies,
        });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Lockfile {
        root,
        registries: registries.locked(),
        packages,
    })
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
    /// Locked versions their registry has yanked (kept, as SPEC §2 says,
    /// but to be warned about).
    pub yanked: Vec<yanked::Yanked>,
}

/// The registries a project declares: the manifest's `[[registries]]`,
/// else the user's enabled registries; highest priority first. Opens
/// nothing (freshness checks use this offline).
pub fn registry_decls(manifest: &Manifest) -> Result<Vec<RegistryDecl>, ResolveError> {
    if !manifest.registries.is_empty() {
        return Ok(manifest.registries_by_priority());
    }
    let config = UserConfig::load()?;
    let mut out = Vec::new();
    for e in config.enabled() {
        let url =
            crate::manifest::parse_location(&e.url, manifest.root()).map_err(|reason| RegistryError::Unsupported {
                registry: e.name.clone(),
                reason: format!(
                    "its URL {:?} in {} is not usable: {reason}",
                    e.url,
                    UserConfig::path().display()
                ),
            })?;
        out.push(RegistryDecl {
            relative: None,
            name: e.name.clone(),
            url,
            priority: e.priority,
            explicit: false,
        });
    }
    Ok(out)
}

/// Opens these registries (no request is made yet).
pub fn open_all(decls: Vec<RegistryDecl>, offline: bool) -> Result<RegistrySet, ResolveError> {
    let config = UserConfig::load()?;
    let mut entries = Vec::with_capacity(decls.len());
    for decl in decls {
        let opts = OpenOptions::for_registry(&decl.name, &decl.url, &config, offline);
        let client = crate::registry::open(&decl.name, &decl.url, &opts)?;
        entries.push(RegistryEntry { decl, client });
    }
    Ok(RegistrySet { entries })
}

/// The registries a project resolves against: the manifest's
/// `[[registries]]`, else the user's enabled registries; highest priority
/// first.
pub fn registries_for(manifest: &Manifest, offline: bool) -> Result<RegistrySet, ResolveError> {
    open_all(registry_decls(manifest)?, offline)
}

/// The lock next to a manifest.
pub fn lock_path(manifest: &Manifest) -> std::path::PathBuf {
    manifest.root().join(crate::lock::LOCK_FILE)
}

/// Reads fm.lock: `(text, sides, must_relock)`; one side normally, both
/// sides of a lock with merge-conflict markers, or what can be read of an
/// invalid lock ([`crate::lock::salvage`]), the last two with
/// `must_relock`; `None` when there is no lock.
pub fn read_lock(path: &Path) -> Result<Option<(String, Vec<Lockfile>, bool)>, ResolveError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LockError::Io {
                path: path.to_owned(),
                source,
            }
            .into());
        }
    };
    if crate::lock::has_conflict_markers(&text) {
        let sides = crate::lock::read_conflicted(path, &text);
        return Ok(Some((text, sides, true)));
    }
    let lock = match Lockfile::parse(path, &text) {
        Ok(lock) => lock,
        // Re-resolved like a conflicted lock, keeping what can be read.
        Err(LockError::Invalid { .. }) => {
            let kept = crate::lock::salvage(path, &text);
            return Ok(Some((text, vec![kept], true)));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Some((text, vec![lock], false)))
}

/// `fm lock`'s whole job: open the registries, take preferences from the
/// existing fm.lock (both sides of a conflicted one), resolve, and write
/// fm.lock next to the manifest if it changed. A fresh lock with no
/// upgrade asked for is kept as it is, without resolving; the registries
/// are read then only to warn about locked versions yanked since (best
/// effort, bounded: see [`yanked`]).
pub fn lock_project(manifest: &Manifest, opts: &LockOptions) -> Result<LockOutcome, ResolveError> {
    let path = lock_path(manifest);
    let existing = read_lock(&path)?;
    let (old_text, sides, conflicted) = match existing {
        Some((t, s, c)) => (Some(t), s, c),
        None => (None, Vec::new(), false),
    };
    let old = sides.first().cloned();
    for p in &opts.upgrade {
        if !sides.iter().any(|l| l.package(p).is_some()) {
            return Err(ResolveError::UnknownUpgrade { package: p.clone() });
        }
    }
    if let Some(old) = &old
        && !conflicted
        && !opts.upgrade_all
        && opts.upgrade.is_empty()
        && check_fresh(manifest, old).is_ok()
    {
        // Nothing to resolve; the documents are read only to warn about
        // yanked versions (best effort: a registry that cannot be read
        // leaves a fresh lock fresh).
        let yanked = registries_for(manifest, opts.offline)
            .map(|set| yanked::check(old, &set))
            .unwrap_or_default();
        return Ok(LockOutcome {
            lock: old.clone(),
            changes: Vec::new(),
            written: false,
            yanked,
        });
    }
    let registries = registries_for(manifest, opts.offline)?;
    let deps: Vec<Dependency> = manifest.dependencies.values().cloned().collect();
    let prefs = Preferences {
        locks: sides,
        upgrade_all: opts.upgrade_all,
        upgrade: opts.upgrade.clone(),
    };
    let lock = resolve(&deps, &registries, &prefs)?;
    // Before anything is written: no package changes registry unless
    // `--upgrade-package` names it (`--upgrade` alone does not).
    binding::check_moves(&prefs.locks, &lock, &opts.upgrade, manifest.root())?;
    let changes = crate::lock::changes(old.as_ref(), &lock);
    let text = lock.render();
    let written = old_text.as_deref() != Some(text.as_str());
    if written {
        lock.save(&path)?;
    }
    let yanked = yanked::check(&lock, &registries);
    Ok(LockOutcome {
        lock,
        changes,
        written,
        yanked,
    })
}

/// Refuses `lock` when its `[[registry]]` URLs are not the ones the
/// project declares ([`binding::check_lock_urls`]); reads no registry, so
/// it runs before any request in every mode. `undeclared_ok`: a registry
/// the project no longer declares is left to a re-lock (default `fm
/// sync`), not refused.
pub fn check_lock_urls(manifest: &Manifest, lock: &Lockfile, undeclared_ok: bool) -> Result<(), ResolveError> {
    let decls = registry_decls(manifest)?;
    Ok(binding::check_lock_urls(manifest, &decls, lock, undeclared_ok)?)
}

/// Whether `lock` still matches `manifest`, decided offline from `[root]`
/// and `[[registry]]`: `Ok(())` fresh, `Err(reasons)` stale, one line each.
pub fn check_fresh(manifest: &Manifest, lock: &Lockfile) -> Result<(), Vec<String>> {
    let mut reasons = Vec::new();
    // Sets: a lock may record 100 000 roots; comparing lists would be
    // quadratic.
    let want: std::collections::BTreeSet<String> = manifest.dependencies.values().map(ToString::to_string).collect();
    let have: std::collections::BTreeSet<String> = lock.root.iter().cloned().collect();
    for w in &want {
        if !have.contains(w) {
            reasons.push(format!("fm.toml requires {w}, which fm.lock does not record"));
        }
    }
    for h in &have {
        if !want.contains(h) {
            reasons.push(format!("fm.lock records {h}, which fm.toml does not require"));
        }
    }
    match registry_decls(manifest) {
        Ok(decls) => {
            let want: Vec<LockedRegistry> = decls.iter().map(locked_registry).collect();
            if want != lock.registries {
                let show = |r: &[LockedRegistry]| {
                    if r.is_empty() {
                        "none".to_owned()
                    } else {
                        let more = match r.len().saturating_sub(MAX_REASONS) {
                            0 => String::new(),
                            n => format!(" and {n} more"),
                        };
                        r.iter()
                            .take(MAX_REASONS)
                            .map(|r| {
                                let mut s = format!("{} {} (priority {}", r.name, r.url, r.priority);
                                if r.explicit {
                                    s.push_str(", explicit");
                                }
                                s.push(')');
                                s
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                            + &more
                    }
                };
                reasons.push(format!(
                    "the registries changed: fm.lock has {}; the project now uses {}",
                    show(&lock.registries),
                    show(&want)
                ));
            }
        }
        Err(e) => reasons.push(format!("the project's registries cannot be read: {e}")),
    }
    // A hand-edited lock may no longer satisfy what it records.
    let locked = lock.by_name();
    for d in manifest.dependencies.values() {
        match locked.get(d.name.as_str()).copied() {
            None => {
                if have.contains(&d.to_string()) {
                    reasons.push(format!("fm.lock has no package {}", d.name));
                }
            }
            Some(p) if !d.req.matches(&p.version) => {
                reasons.push(format!("fm.lock's {} {} does not satisfy {}", p.name, p.version, d.req));
            }
            Some(_) => {}
        }
    }
    if reasons.len() > MAX_REASONS {
        // Short whatever the input: the first few, then a count.
        let more = reasons.len() - MAX_REASONS;
        reasons.truncate(MAX_REASONS);
        reasons.push(format!("… and {more} more differences"));
    }
    if reasons.is_empty() { Ok(()) } else { Err(reasons) }
}

/// Most reasons [`check_fresh`] lists (and registries it shows), so an
/// error stays a few lines long whatever the lock holds.
const MAX_REASONS: usize = 10;

/// Resolves one package and its dependencies against the user's registries
/// (or only `registry`), for `fm install`.
pub fn resolve_one(
    name: &str,
    req: &Requirement,
    registry: Option<&str>,
    opts: &LockOptions,
) -> Result<Lockfile, ResolveError> {
    let config = UserConfig::load()?;
    let base = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    let mut decls = Vec::new();
    for e in config.enabled() {
        if registry.is_some_and(|r| r != e.name) {
            continue;
        }
        let url = crate::manifest::parse_location(&e.url, &base).map_err(|reason| RegistryError::Unsupported {
            registry: e.name.clone(),
            reason: format!("its URL {:?} is not usable: {reason}", e.url),
        })?;
        decls.push(RegistryDecl {
            relative: None,
            name: e.name.clone(),
            url,
            priority: e.priority,
            explicit: false,
        });
    }
    if let Some(r) = registry
        && decls.is_empty()
    {
        return Err(ResolveError::UnknownRegistry {
            package: name.to_owned(),
            registry: r.to_owned(),
            known: config.enabled().iter().map(|e| e.name.clone()).collect(),
        });
    }
    let registries = open_all(decls, opts.offline)?;
    let dep = Dependency {
        name: name.to_owned(),
        req: req.clone(),
        registry: registry.map(str::to_owned),
    };
    resolve(&[dep], &registries, &Preferences::default())
}

/// The changes as `fm lock` prints them.
pub fn describe(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}
