//! fm.lock bound to the project (SPEC §7): what a lock may make fm contact,
//! and what a re-lock may silently change.
//!
//! Rules kept here:
//! - the registry URLs fm.lock records must be the ones fm.toml (or the
//!   user config, where fm.toml names no registries) declares for those
//!   names, in every mode, `--frozen` included; [`check_lock_urls`] is
//!   called before any request, so a differing lock reaches no registry;
//! - a lock used as it is (`--frozen`, `--locked`) names no registry the
//!   project does not declare: no URL comes from fm.lock alone;
//! - a re-lock never moves a locked package to another registry (another
//!   URL) unless `--upgrade-package NAME` accepts it ([`check_moves`]).
//!
//! Why: fm.lock comes from whoever wrote the last commit. A lock whose
//! `[[registry]] url` points elsewhere would otherwise receive the
//! project's downloads (and, before tokens were bound to origins, its
//! token); a package that quietly changes registry is what dependency
//! confusion looks like, and must never pass as "Updated".

use std::path::Path;

use crate::lock::Lockfile;
use crate::manifest::{Manifest, RegistryDecl};
use crate::registry::same_url;

/// A package a re-lock would take from another registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub package: String,
    /// Registry name and URL in the existing fm.lock.
    pub from: (String, String),
    /// Registry name and URL the new resolution chose.
    pub to: (String, String),
}

impl std::fmt::Display for Move {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: fm.lock has it from {} ({}), re-locking would take it from {} ({})",
            self.package, self.from.0, self.from.1, self.to.0, self.to.1
        )
    }
}

/// Why a lock is refused.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BindingError {
    /// fm.lock gives a declared registry another URL.
    #[error(
        "fm.lock's registry {registry} is at {lock_url}, but {declared_in} declares {registry} at {declared_url}: \
         refusing fm.lock before any request (nothing was sent to either URL)"
    )]
    #[diagnostic(code(fm::lock::registry_url_changed), help("{help}"))]
    UrlChanged {
        registry: String,
        lock_url: String,
        declared_url: String,
        declared_in: String,
        help: String,
    },
    /// fm.lock names a registry the project does not declare, and is to be
    /// used as it is.
    #[error(
        "fm.lock names registry {registry} at {lock_url}, which {declared_in} does not declare: refusing to \
         fetch from a URL that only fm.lock gives (nothing was sent)"
    )]
    #[diagnostic(
        code(fm::lock::registry_undeclared),
        help(
            "run `fm lock` to re-lock against the project's registries, or declare {registry} under \
             [[registries]] in fm.toml if it is meant; review the change with `fm diff`"
        )
    )]
    Undeclared {
        registry: String,
        lock_url: String,
        declared_in: String,
    },
    /// A re-lock would take locked packages from other registries.
    #[error(
        "re-locking would move {} locked package{} to another registry; fm.lock was not changed:\n{}",
        moves.len(),
        if moves.len() == 1 { "" } else { "s" },
        moves.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n")
    )]
    #[diagnostic(
        code(fm::lock::registry_moved),
        help(
            "a package that changes registry is how dependency confusion starts. If the move is intended, \
             accept it: `{accept}`. If not, restore the registry it came from (its [[registries]] entry in \
             fm.toml, or `fm registry add NAME URL`)"
        )
    )]
    Moved { moves: Vec<Move>, accept: String },
}

/// Where the project's registries are declared, for messages.
fn declared_in(manifest: &Manifest) -> String {
    if manifest.registries.is_empty() {
        format!("the user config ({})", crate::config::UserConfig::path().display())
    } else {
        manifest.path.display().to_string()
    }
}

/// `fm lock --upgrade-package a --upgrade-package b`.
fn accept_command(packages: &[&str]) -> String {
    let mut cmd = "fm lock".to_owned();
    for p in packages {
        cmd.push_str(" --upgrade-package ");
        cmd.push_str(p);
    }
    cmd
}

/// Checks fm.lock's `[[registry]]` URLs against the project's declared
/// registries `decls` (see [`super::Project::registry_decls`]), reading no
/// registry. A declared name at another URL is always refused; a name
/// the project does not declare is refused unless `undeclared_ok` (a
/// default `fm sync` re-locks such a lock, and [`check_moves`] judges it).
pub fn check_lock_urls(
    manifest: &Manifest,
    decls: &[RegistryDecl],
    lock: &Lockfile,
    undeclared_ok: bool,
) -> Result<(), BindingError> {
    for r in &lock.registries {
        let parsed = crate::location::parse_location(&r.url, manifest.root()).ok();
        let shown = parsed
            .as_ref()
            .map_or_else(|| r.url.clone(), |u| crate::registry::redact_url(u).to_string());
        match decls.iter().find(|d| d.name == r.name) {
            Some(d) if parsed.as_ref().is_some_and(|u| same_url(u, &d.url)) => {}
            Some(d) => {
                let declared_url = crate::registry::redact_url(&d.url).to_string();
                let packages: Vec<&str> = lock
                    .packages
                    .iter()
                    .filter(|p| p.registry == r.name)
                    .map(|p| p.name.as_str())
                    .collect();
                let help = format!(
                    "if {declared_url} is the right place, re-lock against it: `{}`, and review the change \
                     with `fm diff`; if fm.lock was changed by someone else, restore it (`git checkout HEAD -- \
                     fm.lock`)",
                    accept_command(&packages)
                );
                return Err(BindingError::UrlChanged {
                    registry: r.name.clone(),
                    lock_url: shown,
                    declared_url,
                    declared_in: declared_in(manifest),
                    help,
                });
            }
            None if undeclared_ok => {}
            None => {
                return Err(BindingError::Undeclared {
                    registry: r.name.clone(),
                    lock_url: shown,
                    declared_in: declared_in(manifest),
                });
            }
        }
    }
    Ok(())
}

/// The URL a lock records for `registry`, parsed (relative paths against
/// `base`).
fn registry_url(lock: &Lockfile, registry: &str, base: &Path) -> Option<url::Url> {
    let r = lock.registries.iter().find(|r| r.name == registry)?;
    crate::location::parse_location(&r.url, base).ok()
}

fn shown(lock: &Lockfile, registry: &str, base: &Path) -> String {
    registry_url(lock, registry, base).map_or_else(
        || "no URL in the lock".to_owned(),
        |u| crate::registry::redact_url(&u).to_string(),
    )
}

/// Refuses a new lock that takes a package of the existing lock (any
/// side of a conflicted one) from another registry, unless `accepted`
/// (`--upgrade-package`) names it. A registry is its URL: a renamed
/// registry at the same URL is no move, the same name at another URL is.
pub fn check_moves(old: &[Lockfile], new: &Lockfile, accepted: &[String], base: &Path) -> Result<(), BindingError> {
    if old.is_empty() {
        return Ok(());
    }
    // Each lock's registry URLs, parsed once (not once per package).
    let urls = |lock: &Lockfile| -> std::collections::HashMap<String, Option<url::Url>> {
        lock.registries
            .iter()
            .map(|r| (r.name.clone(), registry_url(lock, &r.name, base)))
            .collect()
    };
    let new_urls = urls(new);
    let old_urls: Vec<_> = old.iter().map(urls).collect();
    let mut moves = Vec::new();
    for p in &new.packages {
        if accepted.iter().any(|a| *a == p.name) {
            continue;
        }
        let to = new_urls.get(&p.registry).cloned().flatten();
        let mut from = None;
        let mut kept = false;
        for (side, side_urls) in old.iter().zip(&old_urls) {
            let Some(q) = side.package(&p.name) else { continue };
            let was = side_urls.get(&q.registry).cloned().flatten();
            let same = match (&was, &to) {
                (Some(a), Some(b)) => same_url(a, b),
                _ => q.registry == p.registry,
            };
            if same {
                kept = true;
                break;
            }
            from.get_or_insert((q.registry.clone(), shown(side, &q.registry, base)));
        }
        if let (false, Some(from)) = (kept, from) {
            moves.push(Move {
                package: p.name.to_string(),
                from,
                to: (p.registry.clone(), shown(new, &p.registry, base)),
            });
        }
    }
    if moves.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = moves.iter().map(|m| m.package.as_str()).collect();
    let accept = accept_command(&names);
    Err(BindingError::Moved { moves, accept })
}
