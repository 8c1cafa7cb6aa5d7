//! fm's pubgrub [`DependencyProvider`]: packages from the [`Index`],
//! versions as [`SemverSet`]s.
//!
//! Choices it makes:
//! - newest allowed version first, except that a preferred version (from
//!   the existing lock) is taken when the range allows it;
//! - yanked versions are never chosen unless preferred (the lock pins them);
//! - decision priority ([`priority`]): PubGrub's own rule, fewest candidate
//!   versions first (a package with one candidate is decided before it can
//!   cause backtracking elsewhere); among equals, the package discovered
//!   last (depth first: a version's new dependencies are decided next to
//!   it, so a conflict among them backjumps over fewer unrelated
//!   decisions); and before all of those, a package that has been in
//!   [`MANY_CONFLICTS`] conflicts (so that a pathological graph cannot make
//!   the solver re-decide it behind the same packages over and over).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use pubgrub::{Dependencies, DependencyProvider, PackageResolutionStatistics, VersionSet};
use semver::Version;

use crate::registry::RegistryError;
use crate::req::Shown;

use super::index::{Index, PackageEntry};
use super::ranges::{Pre, Rel, SemverSet};

/// A package in the solver: the project itself, or a named package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pkg {
    Root,
    Named(Arc<str>),
}

impl Pkg {
    pub fn named(name: &str) -> Pkg {
        Pkg::Named(Arc::from(name))
    }
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the project"),
            Pkg::Named(n) => f.write_str(n),
        }
    }
}

/// The version the project itself is given in the solver.
pub fn root_version() -> Version {
    Version::new(0, 0, 0)
}

/// A registry could not be read: its error, as pubgrub's
/// [`DependencyProvider::Err`], so that it comes out of the solver whole
/// (message, diagnostic code, help and cause). Shared: every look-up of the
/// failed name returns the same error.
#[derive(Debug, Clone)]
pub struct ProviderError(pub Arc<RegistryError>);

impl ProviderError {
    /// The registry's error.
    pub fn registry_error(&self) -> &RegistryError {
        &self.0
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for ProviderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl miette::Diagnostic for ProviderError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.code()
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.0.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.url()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.0.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        self.0.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn miette::Diagnostic> {
        self.0.diagnostic_source()
    }
}

/// The provider.
pub struct FmProvider {
    pub index: Index,
    /// The project's dependencies.
    root: Vec<(Pkg, SemverSet)>,
    /// name → preferred versions (several after a merge conflict).
    prefs: HashMap<String, Vec<Version>>,
    /// Requirement text → set and canonical text, so each text is parsed
    /// (and written out for fm.lock) once.
    sets: RefCell<pubgrub::Map<String, (SemverSet, Shown)>>,
    /// Names no registry had.
    missing: RefCell<HashSet<String>>,
    /// Packages the solver has seen, without the index's lock (the solver
    /// asks for the same package many times while it backtracks): one
    /// look-up gives the entry and its versions sorted for counting.
    seen: RefCell<pubgrub::Map<Pkg, Option<Arc<Seen>>>>,
}

/// A package's entry and its [`Usable`] versions.
struct Seen {
    entry: Arc<PackageEntry>,
    usable: Usable,
    /// How many packages the solver had seen before this one.
    order: usize,
}

/// Conflicts after which a package is decided before every package that
/// has had fewer (see [`priority`]).
pub const MANY_CONFLICTS: u32 = 32;

/// The solver's decision priority, highest first: a package with no
/// candidate left (choosing it reports the failure at once), then one in
/// [`MANY_CONFLICTS`] conflicts or more, then the fewest candidates in its
/// range, then the one discovered last (`order`).
///
/// Measured on eight universes of `gen_universe.py` (BENCHMARKS.md,
/// "decision order"), this makes 13 % fewer decisions in all than pubgrub's
/// default (conflicts first, then fewest candidates, then discovered
/// first), 41 % fewer on the 10,000-package benchmark graph, and at most
/// 4 % more on any one; the locks of both benchmark graphs are the same.
pub fn priority(candidates: usize, conflicts: u32, order: usize) -> Priority {
    if candidates == 0 {
        return (2, Reverse(0), 0);
    }
    (u8::from(conflicts >= MANY_CONFLICTS), Reverse(candidates), order)
}

/// See [`priority`].
pub type Priority = (u8, Reverse<usize>, usize);

/// The versions of a package the solver may choose (not yanked, or yanked
/// but preferred), releases and pre-releases apart, oldest first, so that
/// [`FmProvider::prioritize`] counts those in a range by binary search
/// over each interval instead of testing every version (it is called
/// every time a package's range changes).
struct Usable {
    release: Vec<Rel>,
    pre: Vec<Version>,
}

impl Usable {
    fn new(entry: &PackageEntry, preferred: impl Fn(&Version) -> bool) -> Usable {
        let (mut release, mut pre) = (Vec::new(), Vec::new());
        // Candidates are newest first and without duplicates.
        for c in entry.candidates.iter().rev() {
            if !c.yanked || preferred(&c.version) {
                if c.version.pre.is_empty() {
                    release.push(Rel::of(&c.version));
                } else {
                    pre.push(c.version.clone());
                }
            }
        }
        Usable { release, pre }
    }

    /// How many are in `range`: exactly those `range.contains` admits.
    fn count_in(&self, range: &SemverSet) -> usize {
        let pre = match &range.pre {
            Pre::Empty => 0,
            Pre::Full => self.pre.len(),
            Pre::Some(r) => count(&self.pre, r),
        };
        count(&self.release, &range.release) + pre
    }
}

/// How many of `sorted` (ascending) lie in `ranges`.
fn count<V: Ord + Clone>(sorted: &[V], ranges: &pubgrub::Ranges<V>) -> usize {
    use std::ops::Bound;
    if sorted.is_empty() {
        return 0;
    }
    ranges
        .iter()
        .map(|(lo, hi)| {
            let from = match lo {
                Bound::Included(x) => sorted.partition_point(|v| v < x),
                Bound::Excluded(x) => sorted.partition_point(|v| v <= x),
                Bound::Unbounded => 0,
            };
            let to = match hi {
                Bound::Included(x) => sorted.partition_point(|v| v <= x),
                Bound::Excluded(x) => sorted.partition_point(|v| v < x),
                Bound::Unbounded => sorted.len(),
            };
            to.saturating_sub(from)
        })
        .sum()
}

impl FmProvider {
    pub fn new(index: Index, root: Vec<(Pkg, SemverSet)>, prefs: HashMap<String, Vec<Version>>) -> Self {
        FmProvider {
            index,
            root,
            prefs,
            sets: RefCell::new(pubgrub::Map::default()),
            missing: RefCell::new(HashSet::new()),
            seen: RefCell::new(pubgrub::Map::default()),
        }
    }

    /// Every requirement text met so far with its set, sorted by text.
    pub fn known(&self) -> Vec<(SemverSet, String)> {
        let mut out: Vec<(SemverSet, String)> = self
            .sets
            .borrow()
            .values()
            .map(|(s, _)| s)
            .chain(self.root.iter().map(|(_, s)| s))
            .filter_map(|s| s.written().map(|w| (s.clone(), w.to_owned())))
            .collect();
        out.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| a.1.cmp(&b.1)));
        out.dedup_by(|a, b| a.1 == b.1);
        out
    }

    /// Names no registry had.
    pub fn missing(&self) -> HashSet<String> {
        self.missing.borrow().clone()
    }

    /// The package's entry (`None`: no registry has it), with its
    /// [`Usable`] versions sorted the first time.
    fn seen(&self, pkg: &Pkg, name: &str) -> Result<Option<Arc<Seen>>, ProviderError> {
        if let Some(s) = self.seen.borrow().get(pkg) {
            return Ok(s.clone());
        }
        let s = match self.index.get(name).map_err(ProviderError)? {
            Some(entry) => Some(Arc::new(Seen {
                usable: Usable::new(&entry, |v| self.preferred(name, v)),
                entry,
                order: self.seen.borrow().len(),
            })),
            None => {
                self.missing.borrow_mut().insert(name.to_owned());
                None
            }
        };
        self.seen.borrow_mut().insert(pkg.clone(), s.clone());
        Ok(s)
    }

    fn preferred(&self, name: &str, v: &Version) -> bool {
        self.prefs.get(name).is_some_and(|p| p.contains(v))
    }

    fn set_for(&self, text: &str) -> Result<SemverSet, semver::Error> {
        self.parsed(text, |(set, _)| set.clone())
    }

    /// A dependency's requirement text as fm.lock writes it (canonical:
    /// `1.0.4` is `^1.0.4`); parsed once per text, with [`Self::set_for`].
    pub fn shown(&self, text: &str) -> Result<Shown, semver::Error> {
        self.parsed(text, |(_, shown)| shown.clone())
    }

    fn parsed<T>(&self, text: &str, f: impl Fn(&(SemverSet, Shown)) -> T) -> Result<T, semver::Error> {
        if let Some(p) = self.sets.borrow().get(text) {
            return Ok(f(p));
        }
        let req = crate::req::Requirement::parse(text)?;
        let p = (SemverSet::from_req(&req.0), Shown::of(&req));
        let out = f(&p);
        self.sets.borrow_mut().insert(text.to_owned(), p);
        Ok(out)
    }
}

impl DependencyProvider for FmProvider {
    type P = Pkg;
    type V = Version;
    type VS = SemverSet;
    type M = String;
    type Err = ProviderError;
    type Priority = Priority;

    fn prioritize(&self, package: &Pkg, range: &SemverSet, stats: &PackageResolutionStatistics) -> Priority {
        let Pkg::Named(name) = package else {
            return priority(0, 0, 0);
        };
        match self.seen(package, name) {
            Ok(Some(s)) => priority(s.usable.count_in(range), stats.conflict_count(), s.order),
            // Decide it at once: choosing its version reports the failure.
            _ => priority(0, 0, 0),
        }
    }

    fn choose_version(&self, package: &Pkg, range: &SemverSet) -> Result<Option<Version>, ProviderError> {
        let Pkg::Named(name) = package else {
            return Ok(Some(root_version()));
        };
        let Some(seen) = self.seen(package, name)? else {
            return Ok(None);
        };
        let entry = &seen.entry;
        if !self.prefs.is_empty()
            && let Some(prefs) = self.prefs.get(&**name)
        {
            // The newest preferred version the range allows (the lock's;
            // after a merge conflict, the newer of both sides').
            let mut ok: Vec<&Version> = prefs.iter().filter(|v| range.contains(v)).collect();
            ok.sort();
            if let Some(v) = ok.last()
                && entry.candidate(v).is_some()
            {
                return Ok(Some((*v).clone()));
            }
        }
        Ok(entry
            .candidates
            .iter()
            .find(|c| !c.yanked && range.contains(&c.version))
            .map(|c| c.version.clone()))
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, SemverSet, String>, ProviderError> {
        let Pkg::Named(name) = package else {
            for (p, _) in self.root.iter() {
                if let Pkg::Named(n) = p {
                    self.index.request(n);
                }
            }
            return Ok(Dependencies::Available(self.root.iter().cloned().collect()));
        };
        let Some(seen) = self.seen(package, name)? else {
            return Ok(Dependencies::Unavailable("is in no registry".to_owned()));
        };
        let entry = &seen.entry;
        let record = match entry.candidate(version) {
            // Its full record is read and checked only now.
            Some(c) => entry.record(c).map_err(|e| ProviderError(Arc::new(e)))?,
            None => None,
        };
        let Some(record) = record else {
            return Ok(Dependencies::Unavailable("is not in the registry".to_owned()));
        };
        // Fetch every dependency's document at once, before the solver asks
        // for the first of them.
        let mut deps = Vec::with_capacity(record.dependencies.len());
        for (dep, text) in &record.dependencies {
            if **dep == **name {
                return Ok(Dependencies::Unavailable("depends on itself".to_owned()));
            }
            let pkg = Pkg::named(dep);
            if !self.seen.borrow().contains_key(&pkg) {
                self.index.request(dep);
            }
            match self.set_for(text) {
                Ok(set) => deps.push((pkg, set)),
                Err(e) => {
                    return Ok(Dependencies::Unavailable(format!(
                        "has an invalid requirement {dep} {text:?}: {e}"
                    )));
                }
            }
        }
        Ok(Dependencies::Available(deps.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_priority_orders_failures_conflicts_candidates_then_depth() {
        let mut ps = [
            ("many candidates", priority(9, 0, 5)),
            ("one candidate, seen first", priority(1, 0, 1)),
            ("one candidate, seen last", priority(1, 0, 7)),
            ("conflicted often", priority(9, MANY_CONFLICTS, 2)),
            ("conflicted a little", priority(3, MANY_CONFLICTS - 1, 3)),
            ("no candidate", priority(0, 0, 0)),
        ];
        ps.sort_by_key(|p| Reverse(p.1));
        let order: Vec<&str> = ps.iter().map(|p| p.0).collect();
        assert_eq!(
            order,
            [
                "no candidate",
                "conflicted often",
                "one candidate, seen last",
                "one candidate, seen first",
                "conflicted a little",
                "many candidates",
            ]
        );
    }

    // prioritize tested every version against the range on every call
    // (8 % of a 10,000-package lock); the binary-search count must be the
    // same number for every set the solver can build.
    #[test]
    fn counting_by_interval_is_counting_one_by_one() {
        let versions: Vec<Version> = [
            "0.0.1",
            "0.1.0",
            "0.1.5",
            "1.0.0-alpha",
            "1.0.0-beta.2",
            "1.0.0",
            "1.0.1",
            "1.2.0-rc.1",
            "1.2.0",
            "1.9.9",
            "2.0.0-rc.1",
            "2.0.0",
            "2.1.0",
            "3.0.0",
            "10.0.0",
        ]
        .iter()
        .map(|v| Version::parse(v).unwrap())
        .collect();
        let (release, pre): (Vec<Version>, Vec<Version>) = versions.iter().cloned().partition(|v| v.pre.is_empty());
        let release = release.iter().map(Rel::of).collect();
        let usable = Usable { release, pre };
        let reqs = [
            "*",
            "^1",
            "~1.2",
            ">=1.0.0, <2.0.0",
            ">=1.0.0-beta.1, <2",
            "=1.0.0",
            ">1.0.0",
            "<=1.2.0",
            "^2.0.0-rc.1",
            "^0.1",
            ">=3",
            "<0.0.1",
            ">=10.0.0, <10.0.0",
        ];
        let sets: Vec<SemverSet> = reqs
            .iter()
            .map(|r| SemverSet::from_req(&semver::VersionReq::parse(r).unwrap()))
            .collect();
        let mut checked = 0;
        for a in &sets {
            for b in &sets {
                for set in [
                    a.clone(),
                    a.complement(),
                    a.intersection(b),
                    a.union(b),
                    a.intersection(&b.complement()),
                ] {
                    let one_by_one = versions.iter().filter(|v| set.contains(v)).count();
                    assert_eq!(usable.count_in(&set), one_by_one, "{set:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 800);
    }
}
