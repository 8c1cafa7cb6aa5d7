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
//! not declare. Within `"version": 1` keys may be added but are never
//! renamed, removed or given another meaning.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::lock::{LockedPackage, Lockfile};

/// The version of the JSON document [`LockDiff::to_json`] produces.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Everything that changed between two locks, each list sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LockDiff {
    /// Same name and version, different archive digest or size.
    pub digest_changed: Vec<DigestChange>,
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
        name: p.name.clone(),
        version: p.version.to_string(),
        registry: p.registry.clone(),
        sha256: p.sha256.clone(),
    }
}

fn edges(p: &LockedPackage) -> BTreeSet<Edge> {
    p.dependencies
        .iter()
        .map(|d| {
            let (to, req) = d.split_once(' ').unwrap_or((d.as_str(), ""));
            Edge {
                from: p.name.clone(),
                to: to.to_owned(),
                req: req.trim().to_owned(),
            }
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
                old_sha256: a.sha256.clone(),
                new_sha256: b.sha256.clone(),
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

const CAUTION: &str = "A published version's archive changed: it was republished or tampered with. \
                       Do not accept this lock until you know why.";

impl LockDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self == &LockDiff::default()
    }

    /// `(label, count)` of each non-empty group, in display order.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        [
            ("digest changed", self.digest_changed.len()),
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

    /// The human report; ANSI colors when `color`.
    pub fn render_text(&self, labels: &Labels, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_owned()
            }
        };
        let mut out = String::new();
        if self.is_empty() {
            let _ = writeln!(out, "No changes between {} and {}.", labels.old, labels.new);
            return out;
        }
        let _ = writeln!(out, "{}", paint("1", &format!("{} -> {}", labels.old, labels.new)));
        if !self.digest_changed.is_empty() {
            let n = self.digest_changed.len();
            let head = format!(
                "!!! SAME VERSION, DIFFERENT SHA-256: {n} package{} !!!",
                if n == 1 { "" } else { "s" }
            );
            let _ = writeln!(out, "\n{}", paint("1;31", &head));
            let _ = writeln!(out, "    {CAUTION}");
            for c in &self.digest_changed {
                let _ = writeln!(
                    out,
                    "  {} {} {} ({})",
                    paint("1;31", "!"),
                    c.name,
                    c.version,
                    c.registry
                );
                let _ = writeln!(out, "      was sha256 {} ({} bytes)", c.old_sha256, c.old_size);
                let _ = writeln!(out, "      now sha256 {} ({} bytes)", c.new_sha256, c.new_size);
            }
        }
        let mut section = |title: String, lines: Vec<String>| {
            if !lines.is_empty() {
                let _ = writeln!(out, "\n{}", paint("1", &title));
                for l in lines {
                    let _ = writeln!(out, "  {l}");
                }
            }
        };
        section(
            format!("Added: {}", self.added.len()),
            self.added
                .iter()
                .map(|p| format!("{} {} {} ({})", paint("32", "+"), p.name, p.version, p.registry))
                .collect(),
        );
        section(
            format!("Removed: {}", self.removed.len()),
            self.removed
                .iter()
                .map(|p| format!("{} {} {} ({})", paint("31", "-"), p.name, p.version, p.registry))
                .collect(),
        );
        section(
            format!("Upgraded: {}", self.upgraded.len()),
            self.upgraded
                .iter()
                .map(|c| format!("  {} {} -> {} ({})", c.name, c.from, c.to, c.registry))
                .collect(),
        );
        section(
            format!("Downgraded: {} (check that this is intended)", self.downgraded.len()),
            self.downgraded
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {} -> {} ({})",
                        paint("1;33", "!"),
                        c.name,
                        c.from,
                        c.to,
                        c.registry
                    )
                })
                .collect(),
        );
        let src = |s: &Source| match &s.url {
            Some(u) => format!("{} <{u}>", s.name),
            None => s.name.clone(),
        };
        section(
            format!(
                "Registry changed: {} (check the new source)",
                self.registry_changed.len()
            ),
            self.registry_changed
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}: {} -> {}",
                        paint("1;33", "!"),
                        c.name,
                        c.version,
                        src(&c.from),
                        src(&c.to)
                    )
                })
                .collect(),
        );
        let edge = |e: &Edge| format!("{} -> {} {}", e.from, e.to, e.req).trim_end().to_owned();
        section(
            format!(
                "Dependencies: +{} -{}",
                self.edges_added.len(),
                self.edges_removed.len()
            ),
            self.edges_added
                .iter()
                .map(|e| format!("{} {}", paint("32", "+"), edge(e)))
                .chain(
                    self.edges_removed
                        .iter()
                        .map(|e| format!("{} {}", paint("31", "-"), edge(e))),
                )
                .collect(),
        );
        section(
            format!(
                "Requirements: +{} -{}",
                self.requirements_added.len(),
                self.requirements_removed.len()
            ),
            self.requirements_added
                .iter()
                .map(|r| format!("{} {r}", paint("32", "+")))
                .chain(
                    self.requirements_removed
                        .iter()
                        .map(|r| format!("{} {r}", paint("31", "-"))),
                )
                .collect(),
        );
        let summary: Vec<String> = self.counts().iter().map(|(l, n)| format!("{n} {l}")).collect();
        let _ = writeln!(out, "\nSummary: {}", summary.join(", "));
        out
    }

    /// A compact Markdown table for a pull-request comment. Starts with the
    /// marker `<!-- fm-diff -->` so a CI job can find and update its comment.
    pub fn render_markdown(&self, labels: &Labels) -> String {
        let mut out = String::from("<!-- fm-diff -->\n");
        let footer = format!(
            "\n<sub>`fm diff` from `{}` to `{}`</sub>\n",
            cell(&labels.old),
            cell(&labels.new)
        );
        if self.is_empty() {
            let _ = writeln!(out, "#### fm.lock: no changes");
            out.push_str(&footer);
            return out;
        }
        let summary: Vec<String> = self.counts().iter().map(|(l, n)| format!("{n} {l}")).collect();
        let _ = writeln!(out, "#### fm.lock: {}", summary.join(", "));
        if !self.digest_changed.is_empty() {
            let n = self.digest_changed.len();
            let _ = writeln!(out);
            let _ = writeln!(out, "> [!CAUTION]");
            let _ = writeln!(
                out,
                "> **{n} package{} changed SHA-256 without changing version.** {CAUTION}",
                if n == 1 { "" } else { "s" }
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| Change | Package | Old | New |");
        let _ = writeln!(out, "|---|---|---|---|");
        let mut row = |change: &str, package: &str, old: String, new: String| {
            let package = if package.is_empty() {
                String::new()
            } else {
                format!("`{package}`")
            };
            let _ = writeln!(out, "| {change} | {package} | {} | {} |", cell(&old), cell(&new));
        };
        let short = |h: &str| h.get(..12).unwrap_or(h).to_owned();
        for c in &self.digest_changed {
            row(
                ":rotating_light: **same version, new digest**",
                &c.name,
                format!("{} `{}`", c.version, short(&c.old_sha256)),
                format!("{} `{}`", c.version, short(&c.new_sha256)),
            );
        }
        for p in &self.added {
            row(
                "added",
                &p.name,
                String::new(),
                format!("{} ({})", p.version, p.registry),
            );
        }
        for p in &self.removed {
            row(
                "removed",
                &p.name,
                format!("{} ({})", p.version, p.registry),
                String::new(),
            );
        }
        for c in &self.upgraded {
            row("upgraded", &c.name, c.from.clone(), c.to.clone());
        }
        for c in &self.downgraded {
            row(":warning: **downgraded**", &c.name, c.from.clone(), c.to.clone());
        }
        let src = |s: &Source| match &s.url {
            Some(u) => format!("{} `{u}`", s.name),
            None => s.name.clone(),
        };
        for c in &self.registry_changed {
            row(":warning: **registry changed**", &c.name, src(&c.from), src(&c.to));
        }
        let edge = |e: &Edge| format!("`{}`", format!("{} {}", e.to, e.req).trim_end());
        for e in &self.edges_added {
            row("dependency added", &e.from, String::new(), edge(e));
        }
        for e in &self.edges_removed {
            row("dependency removed", &e.from, edge(e), String::new());
        }
        for r in &self.requirements_added {
            row("requirement added", "", String::new(), format!("`{r}`"));
        }
        for r in &self.requirements_removed {
            row("requirement removed", "", format!("`{r}`"), String::new());
        }
        out.push_str(&footer);
        out
    }
}

/// Escapes what would break a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// One lock as a line-oriented summary for `git diff` (the textconv
/// driver): one line a requirement, registry and package, and one line a
/// dependency edge, so that a change shows as a few readable `-`/`+` lines
/// naming the package, and a changed digest is visible as such.
pub fn summarize(lock: &Lockfile) -> String {
    let mut out = String::new();
    // No counts in the header: they would change with every added package.
    let _ = writeln!(out, "# fm.lock as summarized by `fm diff --textconv`");
    let mut root = lock.root.clone();
    root.sort();
    for r in &root {
        let _ = writeln!(out, "requires {r}");
    }
    for r in &lock.registries {
        let _ = write!(out, "registry {} {}", r.name, r.url);
        if r.priority != crate::manifest::DEFAULT_PRIORITY {
            let _ = write!(out, " priority {}", r.priority);
        }
        if r.explicit {
            let _ = write!(out, " explicit");
        }
        let _ = writeln!(out);
    }
    let packages: BTreeMap<&str, &LockedPackage> = lock.by_name();
    for p in packages.values() {
        let _ = writeln!(
            out,
            "{} {} from {} sha256 {} ({} bytes)",
            p.name, p.version, p.registry, p.sha256, p.size
        );
        let mut deps = p.dependencies.clone();
        deps.sort();
        for d in deps {
            let _ = writeln!(out, "    {} -> {d}", p.name);
        }
    }
    out
}

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
            name: name.into(),
            version: version.parse().unwrap(),
            registry: registry.into(),
            sha256: std::iter::repeat_n(digit, 64).collect(),
            size: 100,
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn lock(packages: Vec<LockedPackage>) -> Lockfile {
        Lockfile {
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
        assert_eq!(cell("a|b"), "a\\|b");
    }
}
