//! `fm outdated`: each locked package against the newest version its
//! requirements allow and the newest version its registry has.
//!
//! Pure: [`report`] takes the lock, the project's direct requirements and
//! the registry documents the command line fetched.
//!
//! Rules:
//! - the requirements that lead to a package are the project's (for a
//!   direct dependency) and those of every locked package that depends on
//!   it; "allowed" is the newest version that satisfies all of them at once
//!   (pre-releases only as `semver` admits them);
//! - yanked versions are never offered, except that the locked version
//!   itself always counts (a lock may pin a yanked version);
//! - "newest" is the newest version that is not yanked, ignoring
//!   pre-releases unless the locked version is one;
//! - "reachable" is the newest allowed version that the rest of the lock
//!   lets in: each of its dependencies must be satisfiable together with
//!   what the other locked packages (and the project) require of that
//!   dependency. When it is below "allowed", `held_back_by` names the
//!   locked packages (or `fm.toml`) whose requirement shuts the allowed
//!   version out. One level deep: a holder that could itself move is
//!   still named, as the package to upgrade with it.
//!
//! JSON (`fm outdated --json`, version 1; keys are only ever added):
//!
//! ```json
//! {"version": 1, "packages": [
//!   {"name": "summarizer", "locked": "1.4.2", "allowed": "1.4.5", "newest": "2.0.0",
//!    "reachable": "1.4.3", "registry": "company",
//!    "requirements": [{"by": null, "req": "^1.2"}, {"by": "bot-kit", "req": "^1.4"}],
//!    "held_back_by": [{"by": "bot-kit", "version": "1.4.0", "req": "text-utils ^2.1"}],
//!    "yanked": false}
//! ]}
//! ```
//!
//! `by` is `null` for the project's own requirement; `allowed`, `newest`
//! and `reachable` are `null` when the registry does not have the package
//! (any more); `yanked` says the locked version itself has been yanked.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::lock::Lockfile;
use crate::registry::PackageDocument;
use crate::req::Requirement;

/// The version of the JSON document.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// One requirement on a package and who states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirer {
    /// The locked package that states it; `None` for the project itself.
    pub by: Option<String>,
    pub req: String,
}

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub name: String,
    pub locked: String,
    /// Newest version all requirements admit; `None` when the registry does
    /// not have the package.
    pub allowed: Option<String>,
    /// Newest version the registry has; `None` when it does not have the package.
    pub newest: Option<String>,
    /// Newest allowed version the rest of the lock lets in (see the module
    /// doc); `None` when the registry does not have the package.
    pub reachable: Option<String>,
    pub registry: String,
    pub requirements: Vec<Requirer>,
    /// Why `reachable` is below `allowed`: the requirements that shut the
    /// allowed version's dependencies out.
    pub held_back_by: Vec<Holder>,
    /// The locked version has been yanked since.
    pub yanked: bool,
}

/// A locked package (or the project) whose requirement holds a package back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The locked package; `None` for the project (`fm.toml`).
    pub by: Option<String>,
    /// Its locked version (`None` for the project).
    pub version: Option<String>,
    /// The requirement, `name req`.
    pub req: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.by, &self.version) {
            (Some(b), Some(v)) => write!(f, "{b} {v} ({})", self.req),
            (Some(b), None) => write!(f, "{b} ({})", self.req),
            _ => write!(f, "fm.toml ({})", self.req),
        }
    }
}

impl Row {
    /// Whether `fm lock --upgrade-package` would move it (to `reachable`).
    pub fn upgradable(&self) -> bool {
        self.reachable.as_deref().is_some_and(|a| a != self.locked)
    }

    /// Whether the allowed version is out of reach for the rest of the lock.
    pub fn held_back(&self) -> bool {
        !self.held_back_by.is_empty()
    }

    /// Whether newer versions exist beyond what the requirements allow.
    pub fn beyond_requirements(&self) -> bool {
        match (&self.allowed, &self.newest) {
            (Some(a), Some(n)) => newer(n, a),
            _ => false,
        }
    }
}

fn newer(a: &str, b: &str) -> bool {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a > b,
        _ => false,
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    packages: &'a [Row],
}

/// The JSON document (schema in the module doc).
pub fn to_json(rows: &[Row]) -> serde_json::Value {
    serde_json::to_value(JsonReport {
        version: JSON_SCHEMA_VERSION,
        packages: rows,
    })
    .unwrap_or(serde_json::Value::Null)
}

/// Builds the report. `direct` holds the project's requirements by name;
/// `docs` the registry document of each locked package (`None`: the
/// registry does not have it; absent: not fetched).
pub fn report(
    lock: &Lockfile,
    direct: &BTreeMap<String, Requirement>,
    docs: &BTreeMap<String, Option<Arc<PackageDocument>>>,
) -> Vec<Row> {
    let mut reqs: BTreeMap<&str, Vec<Requirer>> = BTreeMap::new();
    for (name, req) in direct {
        reqs.entry(name).or_default().push(Requirer {
            by: None,
            req: req.to_string(),
        });
    }
    for p in &lock.packages {
        for d in &p.dependencies {
            reqs.entry(d.name()).or_default().push(Requirer {
                by: Some(p.name.to_string()),
                req: d.req().trim().to_owned(),
            });
        }
    }
    let all_reqs = reqs.clone();
    let mut rows: Vec<Row> = lock
        .packages
        .iter()
        .map(|p| {
            let requirements = reqs.remove(p.name.as_str()).unwrap_or_default();
            let parsed: Vec<Requirement> = requirements
                .iter()
                .filter_map(|r| Requirement::parse(&r.req).ok())
                .collect();
            let mut held_back_by = Vec::new();
            let mut reachable = None;
            let (allowed, newest) = match docs.get(p.name.as_str()) {
                Some(Some(doc)) => {
                    let candidates: Vec<semver::Version> = doc
                        .versions
                        .iter()
                        .flatten()
                        .filter_map(|r| r.semver().filter(|v| !r.yanked || *v == p.version))
                        .chain(std::iter::once(p.version.clone()))
                        .collect();
                    let allowed = candidates
                        .iter()
                        .filter(|v| parsed.iter().all(|r| r.matches(v)))
                        .chain(std::iter::once(&p.version))
                        .max()
                        .map(ToString::to_string);
                    // Newest first, down to the locked version: the first
                    // whose dependencies the rest of the lock lets in.
                    let mut allowed_set: Vec<&semver::Version> = candidates
                        .iter()
                        .filter(|v| **v > p.version && parsed.iter().all(|r| r.matches(v)))
                        .collect();
                    allowed_set.sort();
                    allowed_set.dedup();
                    reachable = Some(p.version.to_string());
                    for (i, v) in allowed_set.iter().rev().enumerate() {
                        let holders = doc
                            .versions
                            .iter()
                            .flatten()
                            .find(|r| r.semver().as_ref() == Some(*v))
                            .map(|r| holders(lock, &p.name, &r.dependencies, &all_reqs, docs))
                            .unwrap_or_default();
                        if holders.is_empty() {
                            reachable = Some(v.to_string());
                            break;
                        }
                        if i == 0 {
                            held_back_by = holders;
                        }
                    }
                    let pre_ok = !p.version.pre.is_empty();
                    let newest = candidates
                        .iter()
                        .filter(|v| pre_ok || v.pre.is_empty())
                        .max()
                        .map(ToString::to_string);
                    (allowed, newest)
                }
                _ => (None, None),
            };
            let yanked = match docs.get(p.name.as_str()) {
                Some(Some(doc)) => doc
                    .versions
                    .iter()
                    .flatten()
                    .any(|r| r.yanked && r.semver().as_ref() == Some(&p.version)),
                _ => false,
            };
            Row {
                name: p.name.to_string(),
                locked: p.version.to_string(),
                allowed,
                newest,
                reachable,
                registry: p.registry.clone(),
                requirements,
                held_back_by,
                yanked,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// For a candidate version of `package` with these `dependencies`: the
/// requirements of the rest of the lock (and the project) that leave one of
/// those dependencies no version. Empty: the candidate is reachable.
fn holders(
    lock: &Lockfile,
    package: &str,
    dependencies: &BTreeMap<crate::values::PackageName, String>,
    reqs: &BTreeMap<&str, Vec<Requirer>>,
    docs: &BTreeMap<String, Option<Arc<PackageDocument>>>,
) -> Vec<Holder> {
    let mut out = Vec::new();
    for (dep, req) in dependencies {
        let Ok(want) = Requirement::parse(req) else { continue };
        // A dependency the lock does not have yet is added freely.
        let Some(locked) = lock.package(dep) else { continue };
        if want.matches(&locked.version) {
            continue;
        }
        let Some(Some(doc)) = docs.get(dep.as_str()) else {
            continue;
        };
        let versions: Vec<semver::Version> = doc
            .versions
            .iter()
            .flatten()
            .filter(|r| !r.yanked)
            .filter_map(|r| r.semver())
            .filter(|v| want.matches(v))
            .collect();
        // The others' requirements on `dep` (not the one `package`'s
        // locked version states: that one moves with it).
        let others: Vec<(&Requirer, Requirement)> = reqs
            .get(dep.as_str())
            .into_iter()
            .flatten()
            .filter(|r| r.by.as_deref() != Some(package))
            .filter_map(|r| Requirement::parse(&r.req).ok().map(|p| (r, p)))
            .collect();
        if versions.iter().any(|v| others.iter().all(|(_, r)| r.matches(v))) {
            continue;
        }
        let mut named: Vec<&Requirer> = others
            .iter()
            .filter(|(_, r)| !versions.iter().any(|v| r.matches(v)))
            .map(|(w, _)| *w)
            .collect();
        if named.is_empty() {
            // Only together do they shut it out: name them all.
            named = others.iter().map(|(w, _)| *w).collect();
        }
        for w in named {
            out.push(Holder {
                by: w.by.clone(),
                version: w
                    .by
                    .as_deref()
                    .and_then(|b| lock.package(b))
                    .map(|p| p.version.to_string()),
                req: format!("{dep} {}", w.req),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{LockedPackage, LockedRegistry};
    use crate::registry::VersionRecord;

    fn doc(name: &str, versions: &[(&str, bool)]) -> Option<Arc<PackageDocument>> {
        let mut d = PackageDocument::default();
        d.info.name = name.into();
        d.versions = Some(
            versions
                .iter()
                .map(|(v, yanked)| VersionRecord {
                    version: (*v).into(),
                    yanked: *yanked,
                    ..Default::default()
                })
                .collect(),
        );
        Some(Arc::new(d))
    }

    fn pkg(name: &str, version: &str, deps: &[&str]) -> LockedPackage {
        LockedPackage {
            name: name.parse().unwrap(),
            version: version.parse().unwrap(),
            registry: "main".into(),
            sha256: "0".repeat(64).parse().unwrap(),
            size: 1,
            dependencies: deps.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    fn lock(packages: Vec<LockedPackage>) -> Lockfile {
        Lockfile {
            log: Default::default(),
            root: vec![],
            registries: vec![LockedRegistry {
                name: "main".into(),
                url: "file:///r/".into(),
                priority: 100,
                explicit: false,
            }],
            packages,
        }
    }

    #[test]
    fn allowed_respects_every_dependent_and_skips_yanked() {
        let l = lock(vec![
            pkg("a", "1.0.0", &["c ^1.1"]),
            pkg("b", "1.0.0", &["c <1.3"]),
            pkg("c", "1.1.0", &[]),
        ]);
        let direct = BTreeMap::from([
            ("a".to_owned(), Requirement::parse("^1").unwrap()),
            ("b".to_owned(), Requirement::parse("^1").unwrap()),
        ]);
        let docs = BTreeMap::from([
            (
                "a".to_owned(),
                doc("a", &[("1.0.0", false), ("1.2.0", false), ("2.0.0", false)]),
            ),
            ("b".to_owned(), doc("b", &[("1.0.0", false)])),
            (
                "c".to_owned(),
                doc(
                    "c",
                    &[
                        ("1.1.0", false),
                        ("1.2.0", false),
                        ("1.2.5", true),
                        ("1.3.0", false),
                        ("2.0.0-rc.1", false),
                    ],
                ),
            ),
        ]);
        let rows = report(&l, &direct, &docs);
        let show: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {} {:?} {:?}", r.name, r.locked, r.allowed, r.newest))
            .collect();
        assert_eq!(
            show,
            [
                "a 1.0.0 Some(\"1.2.0\") Some(\"2.0.0\")",
                "b 1.0.0 Some(\"1.0.0\") Some(\"1.0.0\")",
                "c 1.1.0 Some(\"1.2.0\") Some(\"1.3.0\")",
            ]
        );
        assert!(rows[0].upgradable() && rows[0].beyond_requirements());
        assert!(!rows[1].upgradable() && !rows[1].beyond_requirements());
        assert_eq!(rows[2].requirements.len(), 2);
    }

    #[test]
    fn a_locked_yanked_version_still_counts_and_missing_documents_are_none() {
        let l = lock(vec![pkg("a", "1.0.1", &[]), pkg("gone", "0.1.0", &[])]);
        let direct = BTreeMap::from([("a".to_owned(), Requirement::parse("=1.0.1").unwrap())]);
        let docs = BTreeMap::from([
            ("a".to_owned(), doc("a", &[("1.0.0", false), ("1.0.1", true)])),
            ("gone".to_owned(), None),
        ]);
        let rows = report(&l, &direct, &docs);
        assert_eq!(rows[0].allowed.as_deref(), Some("1.0.1"));
        assert_eq!(rows[0].newest.as_deref(), Some("1.0.1"));
        assert_eq!(rows[1].allowed, None);
        assert!(!rows[1].upgradable());
    }

    fn doc_with_deps(name: &str, versions: &[(&str, &[(&str, &str)])]) -> Option<Arc<PackageDocument>> {
        let mut d = PackageDocument::default();
        d.info.name = name.into();
        d.versions = Some(
            versions
                .iter()
                .map(|(v, deps)| VersionRecord {
                    version: (*v).into(),
                    dependencies: deps.iter().map(|(n, r)| (n.parse().unwrap(), (*r).into())).collect(),
                    ..Default::default()
                })
                .collect(),
        );
        Some(Arc::new(d))
    }

    #[test]
    fn an_allowed_version_whose_dependency_another_package_shuts_out_is_held_back() {
        let l = lock(vec![
            pkg("app", "1.0.0", &["shared ^1"]),
            pkg("other", "1.0.0", &["shared ^1"]),
            pkg("shared", "1.0.0", &[]),
        ]);
        let direct = BTreeMap::from([
            ("app".to_owned(), Requirement::parse("^1").unwrap()),
            ("other".to_owned(), Requirement::parse("^1").unwrap()),
        ]);
        let docs = BTreeMap::from([
            (
                "app".to_owned(),
                doc_with_deps(
                    "app",
                    &[
                        ("1.0.0", &[("shared", "^1")]),
                        ("1.1.0", &[("shared", "^1")]),
                        ("1.2.0", &[("shared", "^2")]),
                    ],
                ),
            ),
            (
                "other".to_owned(),
                doc_with_deps("other", &[("1.0.0", &[("shared", "^1")])]),
            ),
            (
                "shared".to_owned(),
                doc_with_deps("shared", &[("1.0.0", &[]), ("2.0.0", &[])]),
            ),
        ]);
        let rows = report(&l, &direct, &docs);
        assert_eq!(rows[0].allowed.as_deref(), Some("1.2.0"));
        assert_eq!(rows[0].reachable.as_deref(), Some("1.1.0"));
        assert_eq!(
            rows[0].held_back_by.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["other 1.0.0 (shared ^1)"]
        );
        assert!(rows[0].upgradable() && rows[0].held_back());
        // shared's own dependents hold it at ^1: allowed, not held back.
        assert_eq!(rows[2].reachable.as_deref(), Some("1.0.0"));
        assert!(!rows[2].upgradable() && !rows[2].held_back());
    }
}
