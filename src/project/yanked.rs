//! Locked versions that their registry has yanked since (SPEC §2: a lock
//! keeps a yanked version it already pins, but it must not keep it
//! quietly). `fm lock`, `fm sync` and `fm outdated` warn with
//! [`Yanked::warning`].
//!
//! Also [`registry_checksum`]: what a registry says of a version now.
//!
//! Best effort by design: a registry that cannot be read here (or not
//! within [`BUDGET`]) is left out
//! (the command's own reads report it); nothing is ever changed but the
//! check's own memo in the cache ([`super::yank_memo`], which spares a
//! no-op `fm sync` the documents of an unchanged registry).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;

use super::yank_memo::Memo;
use crate::lock::Lockfile;
use crate::registry::PackageDocument;
use crate::resolve::RegistrySet;

/// One locked version its registry marks as yanked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Yanked {
    pub name: String,
    pub version: String,
    pub registry: String,
}

impl Yanked {
    /// The line a command warns with.
    pub fn warning(&self) -> String {
        format!(
            "{} {} is locked, but registry {} has yanked it; move off it with `fm lock --upgrade-package {}` (or pin another version in fm.toml)",
            self.name, self.version, self.registry, self.name
        )
    }
}

/// The locked packages whose locked version `docs` (by package name)
/// marks as yanked.
pub fn in_documents<'a>(lock: &Lockfile, docs: impl Fn(&str) -> Option<&'a PackageDocument>) -> Vec<Yanked> {
    lock.packages
        .iter()
        .filter(|p| {
            docs(&p.name).is_some_and(|d| {
                d.versions
                    .iter()
                    .flatten()
                    .any(|r| r.yanked && r.semver().as_ref() == Some(&p.version))
            })
        })
        .map(|p| Yanked {
            name: p.name.to_string(),
            version: p.version.to_string(),
            registry: p.registry.clone(),
        })
        .collect()
}

/// Reads each locked package's document from the registry the lock names
/// (those of `registries` only) and returns the yanked locked versions.
///
/// For a directory registry, what an earlier check found is memoized in
/// the cache ([`super::yank_memo`]): a document whose file's stat data has
/// not changed since is not read again; for an HTTP registry with a
/// transparency log, one checkpoint request says which documents may have
/// changed ([`super::yank_log`]).
pub fn check(lock: &Lockfile, registries: &RegistrySet) -> Vec<Yanked> {
    let cache = crate::config::cache_dir();
    let used: std::collections::HashSet<&str> = lock.packages.iter().map(|p| p.registry.as_str()).collect();
    // Only registries whose log fm.lock pins a key for are asked for a
    // checkpoint: one without a log would cost a request for nothing.
    let logged: std::collections::HashSet<&str> = used
        .iter()
        .copied()
        .filter(|r| lock.log.keys.contains_key(*r))
        .collect();
    let mut memos: HashMap<&str, Memo> = super::yank_log::memos(registries, &cache, &logged);
    for e in &registries.entries {
        if let Some(root) = e.client.local_root()
            && used.contains(e.decl.name.as_str())
            && let Some(memo) = Memo::load(&cache, root)
        {
            memos.insert(e.decl.name.as_str(), memo);
        }
    }
    // What the memo answers; the rest is read, with the stat data taken
    // before the read (a change in between is seen next time).
    let mut known: HashMap<&str, bool> = HashMap::new();
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    let mut stats = Vec::new();
    for p in &lock.packages {
        let memo = memos.get(p.registry.as_str());
        let stat = memo.and_then(|m| m.stat(&p.name));
        let memoized = match (memo, &stat) {
            (Some(m), Some(s)) => m.yanked(&p.name, s),
            (Some(m), None) => m.logged_yanked(&p.name),
            _ => None,
        };
        if let Some(yanked) = memoized {
            known.insert(p.name.as_str(), yanked.contains(&p.version));
            continue;
        }
        wanted.push((p.name.as_str(), p.registry.as_str()));
        stats.push(stat);
    }
    let docs = documents(registries, &wanted);
    for ((name, registry), stat) in wanted.iter().zip(stats) {
        match (memos.get_mut(registry), stat, docs.get(*name)) {
            (Some(memo), Some(stat), Some(doc)) => memo.record(name, stat, doc),
            (Some(memo), None, Some(doc)) if memo.is_logged() => memo.record_logged(name, doc),
            _ => {}
        }
    }
    for memo in memos.values() {
        memo.save(&cache);
    }
    let mut from_docs = in_documents(lock, |n| docs.get(n).map(|d| d.as_ref()))
        .into_iter()
        .peekable();
    // In the lock's order, whichever answered.
    let mut out = Vec::new();
    for p in &lock.packages {
        if known.get(p.name.as_str()) == Some(&true) {
            out.push(Yanked {
                name: p.name.to_string(),
                version: p.version.to_string(),
                registry: p.registry.clone(),
            });
        } else if let Some(y) = from_docs.next_if(|y| y.name == p.name.as_str()) {
            out.push(y);
        }
    }
    out
}

/// The checksum `registry` publishes now for `package` `version`, if it
/// can be read (to tell a registry that contradicts itself from one that
/// changed since the lock).
pub fn registry_checksum(registries: &RegistrySet, registry: &str, package: &str, version: &str) -> Option<String> {
    let docs = documents(registries, &[(package, registry)]);
    docs.get(package)?
        .versions
        .iter()
        .flatten()
        .find(|r| r.version == version)
        .map(|r| r.checksum.to_ascii_lowercase())
}

/// Of `names`, those that none of `registries` has (for `fm publish`'s
/// warning about dependencies nobody can install). A registry that cannot
/// be read counts as not having them.
pub fn absent_everywhere(registries: &RegistrySet, names: &[String]) -> Vec<String> {
    let mut found = std::collections::HashSet::new();
    for e in &registries.entries {
        let wanted: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), e.decl.name.as_str())).collect();
        found.extend(documents(registries, &wanted).into_keys());
    }
    names.iter().filter(|n| !found.contains(*n)).cloned().collect()
}

/// How long the documents of one check may take in all.
pub(super) const BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// Documents by package name, `(package, registry)` each, fetched
/// concurrently; what cannot be read is left out.
pub(crate) fn documents(registries: &RegistrySet, wanted: &[(&str, &str)]) -> HashMap<String, Arc<PackageDocument>> {
    let jobs: Vec<_> = wanted
        .iter()
        .filter_map(|(name, registry)| {
            let e = registries.entries.iter().find(|e| e.decl.name == *registry)?;
            Some(((*name).to_owned(), e.client.clone()))
        })
        .collect();
    if jobs.is_empty() {
        return HashMap::new();
    }
    let Ok(runtime) = crate::runtime::get() else {
        return HashMap::new();
    };
    // A thread of its own: callers may be inside a runtime already.
    let fetched: Vec<(String, Arc<PackageDocument>)> = std::thread::scope(|s| {
        s.spawn(|| {
            runtime.block_on(async {
                let all = futures_util::stream::iter(jobs)
                    .map(|(name, client)| async move {
                        let doc = client.document(&name).await.ok().flatten();
                        doc.map(|d| (name, d))
                    })
                    .buffer_unordered(16)
                    .filter_map(|x| async move { x })
                    .collect::<Vec<_>>();
                // A warning is not worth a stalled command: a registry that
                // does not answer in time is left out.
                tokio::time::timeout(BUDGET, all).await.unwrap_or_default()
            })
        })
        .join()
        .unwrap_or_default()
    });
    fetched.into_iter().collect()
}
