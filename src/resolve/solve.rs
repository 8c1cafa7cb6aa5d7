//! The solver's answer made into a [`Lockfile`] (packages sorted, digests
//! checked, dependencies as `name req`), or its failure made into a
//! [`ResolveError`]: a conflict explained in words, or the registry error
//! that stopped it.

use std::collections::HashMap;

use pubgrub::PubGrubError;

use super::provider::{self, FmProvider, Pkg};
use super::{Resolution, ResolveError, report};
use crate::lock::{LockedPackage, Lockfile};
use crate::registry::RegistryError;

pub(super) fn solve(provider: &FmProvider, root: Vec<String>) -> Result<Resolution, ResolveError> {
    let result = pubgrub::resolve(provider, Pkg::Root, provider::root_version());
    // Every document the answer (or its explanation) needs is read.
    provider.index.stop();
    let selected = match result {
        Ok(s) => s,
        Err(PubGrubError::NoSolution(tree)) => return Err(conflict(provider, tree)),
        // The registry's own error, carried through the solver.
        Err(
            PubGrubError::ErrorRetrievingDependencies { source, .. }
            | PubGrubError::ErrorChoosingVersion { source, .. },
        ) => {
            return Err(ResolveError::Fetch(source));
        }
        Err(PubGrubError::ErrorInShouldCancel(source)) => return Err(ResolveError::Fetch(source)),
    };
    let registries = provider.index.registries();
    let mut packages = Vec::new();
    // The documents' log indexes, proved (or dropped) by `crate::tlog::client`.
    let mut log = crate::lock::LockLog::default();
    let mut yanked = std::collections::BTreeSet::new();
    for (pkg, version) in selected {
        let Pkg::Named(name) = pkg else { continue };
        let entry = provider
            .index
            .get(&name)
            .ok()
            .flatten()
            .ok_or_else(|| ResolveError::Runtime(format!("{name} vanished from the index")))?;
        let candidate = entry.candidate(&version);
        if candidate.is_some_and(|c| c.yanked) {
            yanked.insert(name.to_string());
        }
        let record = match candidate {
            Some(c) => entry.record(c)?,
            None => None,
        }
        .ok_or_else(|| ResolveError::Runtime(format!("{name} {version} vanished from the index")))?;
        let registry = registries.entries[entry.registry].decl.name.clone();
        let corrupt = |reason: String| RegistryError::Corrupt {
            registry: registry.clone(),
            package: name.to_string(),
            reason,
        };
        let sha256 = record.checksum.clone();
        // The provider made every version with an invalid requirement
        // unavailable, so these parse (and were parsed once already, when
        // the solver asked for the version's dependencies).
        let mut dependencies = record
            .dependencies
            .iter()
            .map(|(d, r)| {
                let req = provider.shown(r).map_err(|e| {
                    corrupt(format!(
                        "version {version}: dependency {d} {r:?}: invalid requirement: {e}"
                    ))
                })?;
                Ok(crate::values::LockedDep::shown(d, &req))
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        dependencies.sort();
        if let Some(index) = record.log_index {
            log.indexes.insert(name.to_string(), index);
        }
        packages.push(LockedPackage {
            name: crate::values::PackageName::try_from(name.to_string()).map_err(|e| corrupt(e.to_string()))?,
            version,
            registry,
            sha256,
            size: record.size_bytes,
            dependencies,
        });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    let lock = Lockfile {
        root,
        registries: registries.locked(),
        packages,
        log,
    };
    Ok(Resolution { lock, yanked })
}

/// A conflict explained in words, with the help that fits it (a missing
/// package, or requirements that cannot all hold).
fn conflict(provider: &FmProvider, tree: report::Tree) -> ResolveError {
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
    ResolveError::Conflict {
        explanation: report::explain(tree, &formatter),
        help,
    }
}
