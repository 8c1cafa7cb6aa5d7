//! Lock-to-lock comparison (`fm diff`): what changed between two `fm.lock`s,
//! grouped the way a reviewer reads it, rendered as text, JSON or Markdown.
//!
//! Pure: [`diff`] takes two parsed [`Lockfile`]s; reading them (files, `git
//! show`) is the command line's job.
//!
//! The groups, in the order every renderer shows them:
//!
//! 1. **digest changed**: the same name and version with a different SHA-256
//!    (or size). Published versions are immutable, so this means the archive
//!    was republished or tampered with; it is the one change a reviewer must
//!    never miss, and it comes first and loudest.
//! 1. **log key changed**: a `[[registry]]` whose `log-key` changed or was
//!    dropped (SPEC §9); shown with the other alarms.
//! 1. **registry URL changed**: a `[[registry]]` of the same name at
//!    another URL. Every package from it would be fetched from the new
//!    URL; `fm sync` refuses such a lock until fm.toml declares that URL,
//!    and a reviewer must not wave it through either. Shown beside the
//!    digest alarm, at the top.
//! 2. added, removed packages;
//! 3. upgraded, and downgraded (flagged: a downgrade is rarely intended);
//! 4. registry changed (flagged): the package now comes from another
//!    registry name, or its registry's URL changed;
//! 5. dependency edges added and removed, for packages in both locks (the
//!    edges of added and removed packages come and go with them); an edge
//!    whose requirement changed shows as one removed and one added;
//! 6. the project's own requirements (`[root]`) added and removed.
//!
//! # JSON schema (`fm diff --format json`, version 1)
//!
//! ```json
//! {
//!   "version": 1,
//!   "old": "HEAD:fm.lock",
//!   "new": "fm.lock",
//!   "changed": true,
//!   "digest_changed": [{"name": "summarizer", "version": "1.4.2", "registry": "company",
//!                       "old_sha256": "9f86…", "new_sha256": "a3c1…", "old_size": 48213, "new_size": 48301}],
//!   "registry_url_changed": [{"name": "company", "old_url": "https://registry.company.com/",
//!                             "new_url": "https://registry.evil.example/"}],
//!   "log_key_changed": [{"name": "company", "old_key": "fm.registry/company+1b2c3d4e+…",
//!                        "new_key": null}],
//!   "added": [{"name": "text-utils", "version": "2.1.0", "registry": "company", "sha256": "…"}],
//!   "removed": [{"name": "legacy", "version": "0.3.1", "registry": "company", "sha256": "…"}],
//!   "upgraded": [{"name": "summarizer", "from": "1.4.2", "to": "1.5.0", "registry": "company"}],
//!   "downgraded": [{"name": "sentiment", "from": "1.0.5", "to": "1.0.4", "registry": "company"}],
//!   "registry_changed": [{"name": "filter-kit", "version": "0.3.2",
//!                         "from": {"name": "company", "url": "https://registry.company.com/"},
//!                         "to": {"name": "public", "url": "https://fm.example.org/"}}],
//!   "edges_added": [{"from": "summarizer", "to": "text-utils", "req": "^2.1"}],
//!   "edges_removed": [{"from": "summarizer", "to": "legacy", "req": "^0.3"}],
//!   "requirements_added": ["summarizer ^1.5"],
//!   "requirements_removed": ["summarizer ^1.2"]
//! }
//! ```
//!
//! Stability: every key is always present (empty arrays when nothing
//! changed); arrays are sorted by package name (edges by `from`, then `to`);
//! `registry` is the registry name in the new lock (the old one for
//! `removed`); a `url` is `null` only when a lock names a registry it does
//! not declare; `registry_url_changed` is sorted by registry name (added
//! in version 1 without a bump, as the stability rule allows). Within
//! `"version": 1` keys may be added but are never
//! renamed, removed or given another meaning.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::lock::{LockedPackage, Lockfile};

/// The version of the JSON document [`LockDiff::to_json`] produces.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Everything that changed between two locks, each list sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LockDiff {
    /// Same name and version, different archive digest or size.
    pub digest_changed: Vec<DigestChange>,
    /// A registry of the same name at another URL.
    pub registry_url_changed: Vec<RegistryUrlChange>,
    /// A registry whose transparency-log key (`log-key`) changed or was
    /// dropped (SPEC §9): a new key is a new history.
    pub log_key_changed: Vec<LogKeyChange>,
    pub added: Vec<PackageRef>,
    pub removed: Vec<PackageRef>,
    pub upgraded: Vec<VersionChange>,
    pub downgraded: Vec<VersionChange>,
    pub registry_changed: Vec<RegistryChange>,
    pub edges_added: Vec<Edge>,
    pub edges_removed: Vec<Edge>,
    /// `[root]` entries (`name req` or `name req (registry)`) only in the new lock.
    pub requirements_added: Vec<String>,
    /// `[root]` entries only in the old lock.
    pub requirements_removed: Vec<String>,
}

/// One registry, two log keys (`new_key` is `None` when the new lock
/// records no log for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogKeyChange {
    pub name: String,
    pub old_key: String,
    pub new_key: Option<String>,
}

/// A package as one lock has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRef {
    pub name: String,
    pub version: String,
    pub registry: String,
    pub sha256: String,
}

/// The alarm: one version, two archives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestChange {
    pub name: String,
    pub version: String,
    pub registry: String,
    pub old_sha256: String,
    pub new_sha256: String,
    pub old_size: u64,
    pub new_size: u64,
}

/// The other alarm: one registry name, two URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryUrlChange {
    /// The registry's name in both locks.
    pub name: String,
    pub old_url: String,
    pub new_url: String,
}

/// A version moved up or down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionChange {
    pub name: String,
    pub from: String,
    pub to: String,
    pub registry: String,
}

/// Where a package comes from: the registry name and its URL in that lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub name: String,
    pub url: Option<String>,
}

/// A package now comes from another registry (or its registry moved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryChange {
    pub name: String,
    /// The version in the new lock.
    pub version: String,
    pub from: Source,
    pub to: Source,
}

/// A dependency edge: `from` depends on `to` with requirement `req`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub req: String,
}

/// How the two sides are named in output (`HEAD:fm.lock`, `fm.lock`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pub old: String,
    pub new: String,
}

fn source(lock: &Lockfile, p: &LockedPackage) -> Source {
    Source {
        name: p.registry.clone(),
        url: lock
            .registries
            .iter()
            .find(|r| r.name == p.registry)
            .map(|r| r.url.clone()),
    }
}

fn package_ref(p: &LockedPackage) -> PackageRef {
    PackageRef {
        name: p.name.to_string(),
        version: p.version.to_string(),
        registry: p.registry.clone(),
        sha256: p.sha256.to_string(),
    }
}

fn edges(p: &LockedPackage) -> BTreeSet<Edge> {
    p.dependencies
        .iter()
        .map(|d| Edge {
            from: p.name.to_string(),
            to: d.name().to_owned(),
            req: d.req().trim().to_owned(),
        })
        .collect()
}

/// Compares `old` with `new`.
pub fn diff(old: &Lockfile, new: &Lockfile) -> LockDiff {
    let before = old.by_name();
    let after = new.by_name();
    let mut d = LockDiff::default();
    let names: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for name in names {
        let (a, b) = match (before.get(name), after.get(name)) {
            (None, Some(b)) => {
                d.added.push(package_ref(b));
                continue;
            }
            (Some(a), None) => {
                d.removed.push(package_ref(a));
                continue;
            }
            (Some(a), Some(b)) => (*a, *b),
            (None, None) => continue,
        };
        if a.version == b.version && (a.sha256 != b.sha256 || a.size != b.size) {
            d.digest_changed.push(DigestChange {
                name: name.to_owned(),
                version: b.version.to_string(),
                registry: b.registry.clone(),
                old_sha256: a.sha256.to_string(),
                new_sha256: b.sha256.to_string(),
                old_size: a.size,
                new_size: b.size,
            });
        }
        let change = || VersionChange {
            name: name.to_owned(),
            from: a.version.to_string(),
            to: b.version.to_string(),
            registry: b.registry.clone(),
        };
        match a.version.cmp(&b.version) {
            std::cmp::Ordering::Less => d.upgraded.push(change()),
            std::cmp::Ordering::Greater => d.downgraded.push(change()),
            std::cmp::Ordering::Equal => {}
        }
        let (from, to) = (source(old, a), source(new, b));
        if from != to {
            d.registry_changed.push(RegistryChange {
                name: name.to_owned(),
                version: b.version.to_string(),
                from,
                to,
            });
        }
        let (ea, eb) = (edges(a), edges(b));
        d.edges_added.extend(eb.difference(&ea).cloned());
        d.edges_removed.extend(ea.difference(&eb).cloned());
    }
    for r in &new.registries {
        if let Some(o) = old.registries.iter().find(|o| o.name == r.name)
            && o.url.trim_end_matches('/') != r.url.trim_end_matches('/')
        {
            d.registry_url_changed.push(RegistryUrlChange {
                name: r.name.clone(),
                old_url: o.url.clone(),
                new_url: r.url.clone(),
            });
        }
    }
    d.registry_url_changed.sort_by(|a, b| a.name.cmp(&b.name));
    // BTreeMap order: sorted by registry name.
    for (name, old_key) in &old.log.keys {
        let new_key = new.log.keys.get(name);
        if new_key != Some(old_key) && new.registries.iter().any(|r| &r.name == name) {
            d.log_key_changed.push(LogKeyChange {
                name: name.clone(),
                old_key: old_key.clone(),
                new_key: new_key.cloned(),
            });
        }
    }
    let (ra, rb): (BTreeSet<&String>, BTreeSet<&String>) = (old.root.iter().collect(), new.root.iter().collect());
    d.requirements_added = rb.difference(&ra).map(|s| (*s).clone()).collect();
    d.requirements_removed = ra.difference(&rb).map(|s| (*s).clone()).collect();
    d
}

/// The JSON document, with its version and labels (see the module doc).
#[derive(Serialize)]
struct JsonDiff<'a> {
    version: u32,
    old: &'a str,
    new: &'a str,
    changed: bool,
    #[serde(flatten)]
    diff: &'a LockDiff,
}

impl LockDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self == &LockDiff::default()
    }

    /// `(label, count)` of each non-empty group, in display order.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        [
            ("digest changed", self.digest_changed.len()),
            ("registry URL changed", self.registry_url_changed.len()),
            ("log key changed", self.log_key_changed.len()),
            ("added", self.added.len()),
            ("removed", self.removed.len()),
            ("upgraded", self.upgraded.len()),
            ("downgraded", self.downgraded.len()),
            ("registry changed", self.registry_changed.len()),
            ("dependency changes", self.edges_added.len() + self.edges_removed.len()),
            (
                "requirement changes",
                self.requirements_added.len() + self.requirements_removed.len(),
            ),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }

    /// The stable JSON document (schema in the module doc).
    pub fn to_json(&self, labels: &Labels) -> serde_json::Value {
        serde_json::to_value(JsonDiff {
            version: JSON_SCHEMA_VERSION,
            old: &labels.old,
            new: &labels.new,
            changed: !self.is_empty(),
            diff: self,
        })
        .unwrap_or(serde_json::Value::Null)
    }
}

mod render;
pub use render::summarize;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::LockedRegistry;

    fn reg(name: &str, url: &str) -> LockedRegistry {
        LockedRegistry {
            name: name.into(),
            url: url.into(),
            priority: 100,
            explicit: false,
        }
    }

    fn pkg(name: &str, version: &str, registry: &str, digit: char, deps: &[&str]) -> LockedPackage {
        LockedPackage {
            name: name.parse().unwrap(),
            version: version.parse().unwrap(),
            registry: registry.into(),
            sha256: std::iter::repeat_n(digit, 64).collect::<String>().parse().unwrap(),
            size: 100,
            dependencies: deps.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    fn lock(packages: Vec<LockedPackage>) -> Lockfile {
        Lockfile {
            log: Default::default(),
            root: vec!["a ^1".into()],
            registries: vec![
                reg("main", "https://main.example/"),
                reg("other", "https://other.example/"),
            ],
            packages,
        }
    }

    #[test]
    fn identical_locks_have_no_changes() {
        let l = lock(vec![
            pkg("a", "1.0.0", "main", 'a', &["b ^1"]),
            pkg("b", "1.0.0", "main", 'b', &[]),
        ]);
        let d = diff(&l, &l);
        assert!(d.is_empty());
        assert!(d.counts().is_empty());
    }

    #[test]
    fn same_version_new_digest_is_flagged_and_only_that() {
        let old = lock(vec![pkg("a", "1.0.0", "main", 'a', &[])]);
        let new = lock(vec![pkg("a", "1.0.0", "main", 'f', &[])]);
        let d = diff(&old, &new);
        assert_eq!(d.digest_changed.len(), 1);
        assert_eq!(d.digest_changed[0].old_sha256, "a".repeat(64));
        assert_eq!(d.digest_changed[0].new_sha256, "f".repeat(64));
        assert!(d.upgraded.is_empty() && d.added.is_empty() && d.registry_changed.is_empty());
    }

    #[test]
    fn a_new_version_with_a_new_digest_is_an_upgrade_not_an_alarm() {
        let old = lock(vec![pkg("a", "1.0.0", "main", 'a', &[])]);
        let new = lock(vec![pkg("a", "1.1.0", "main", 'f', &[])]);
        let d = diff(&old, &new);
        assert!(d.digest_changed.is_empty());
        assert_eq!(d.upgraded[0].to, "1.1.0");
        let back = diff(&new, &old);
        assert_eq!(back.downgraded[0].to, "1.0.0");
    }

    #[test]
    fn registry_url_change_counts_as_registry_change() {
        let old = lock(vec![pkg("a", "1.0.0", "main", 'a', &[])]);
        let mut new = old.clone();
        new.registries[0].url = "https://evil.example/".into();
        let d = diff(&old, &new);
        assert_eq!(d.registry_changed.len(), 1);
        assert_eq!(d.registry_changed[0].to.url.as_deref(), Some("https://evil.example/"));
        // And the registry itself raises the alarm, with both URLs.
        assert_eq!(
            d.registry_url_changed,
            [RegistryUrlChange {
                name: "main".into(),
                old_url: "https://main.example/".into(),
                new_url: "https://evil.example/".into(),
            }]
        );
        assert_eq!(d.counts()[0], ("registry URL changed", 1));
    }

    #[test]
    fn a_registry_url_change_with_no_package_is_still_an_alarm() {
        let old = lock(vec![]);
        let mut new = old.clone();
        new.registries[1].url = "https://other.example".into();
        assert!(diff(&old, &new).is_empty(), "a trailing slash is no change");
        new.registries[1].url = "http://other.example/".into();
        let d = diff(&old, &new);
        assert_eq!(d.registry_url_changed.len(), 1);
        assert!(
            d.render_text(
                &Labels {
                    old: "a".into(),
                    new: "b".into()
                },
                false
            )
            .contains("REGISTRY URL CHANGED")
        );
    }

    #[test]
    fn edges_only_for_packages_on_both_sides() {
        let old = lock(vec![
            pkg("a", "1.0.0", "main", 'a', &["b ^1"]),
            pkg("b", "1.0.0", "main", 'b', &[]),
        ]);
        let new = lock(vec![
            pkg("a", "1.0.0", "main", 'a', &["b ^1.1", "c ^2"]),
            pkg("b", "1.1.0", "main", 'b', &[]),
            pkg("c", "2.0.0", "main", 'c', &["d ^1"]),
        ]);
        let d = diff(&old, &new);
        let added: Vec<String> = d
            .edges_added
            .iter()
            .map(|e| format!("{}>{} {}", e.from, e.to, e.req))
            .collect();
        assert_eq!(added, ["a>b ^1.1", "a>c ^2"]);
        assert_eq!(d.edges_removed.len(), 1);
        assert_eq!(d.added.len(), 1);
    }

    #[test]
    fn json_has_every_key_even_when_empty() {
        let l = lock(vec![]);
        let labels = Labels {
            old: "a".into(),
            new: "b".into(),
        };
        let v = diff(&l, &l).to_json(&labels);
        for key in [
            "version",
            "old",
            "new",
            "changed",
            "digest_changed",
            "registry_url_changed",
            "log_key_changed",
            "added",
            "removed",
            "upgraded",
            "downgraded",
            "registry_changed",
            "edges_added",
            "edges_removed",
            "requirements_added",
            "requirements_removed",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["changed"], false);
    }

    #[test]
    fn markdown_cells_escape_pipes() {
        assert_eq!(render::cell("a|b"), "a\\|b");
    }
}
