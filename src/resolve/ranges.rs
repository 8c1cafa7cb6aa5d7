//! Cargo requirements (`semver::VersionReq`) as PubGrub version sets,
//! exactly as `VersionReq::matches` reads them.
//!
//! Cargo's pre-release rule (SPEC §2) cannot be written as one interval
//! set: `>=1.0.0, <2.0.0` admits `1.5.0` but not `1.5.0-beta`, whose
//! neighbours on both sides are admitted. So a [`SemverSet`] holds two
//! interval sets: one consulted for release versions, one for
//! pre-releases. Both are ordinary interval sets, so complement,
//! intersection and union are done part by part and stay exact.
//!
//! The release part is over [`Rel`], a version's `major.minor.patch` (a
//! `Copy` key: the solver clones, compares and drops these sets millions
//! of times in a large lock). That loses nothing: among release versions a
//! bound with a pre-release tag is a release bound (`< 1.5.0-beta` admits
//! the same releases as `< 1.5.0`, `>= 1.5.0-beta` the same as `>= 1.5.0`).
//! The pre-release part is over [`Version`], and is most often empty or
//! full ([`Pre`] keeps those two without an allocation).
//!
//! Each comparator becomes the set of versions `matches` accepts for it
//! (partial versions and per-operator pre-release quirks included); the
//! pre-release part is then limited to the "windows" `[x.y.z-0, x.y.z)` of
//! the comparators that name a pre-release of `x.y.z`.
//!
//! Build metadata is ignored, as `VersionReq::matches` ignores it: `1.0.0`
//! and `1.0.0+b` are the same release to a set. Registries publish plain
//! versions; a document listing both is solved deterministically (the
//! candidates' order picks one, see `index.rs`), never by a panic.
//!
//! A set made from a requirement remembers the text (`^1.2`), so
//! explanations show requirements the way the user wrote them; sets the
//! solver derives are printed from their intervals, without `-0` artefacts.

mod show;

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use pubgrub::{Ranges, VersionSet};
use semver::{Comparator, Op, Prerelease, Version, VersionReq};

/// A release version's `major.minor.patch`: the key of a set's release part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rel {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Rel {
    /// The triple of `v` (its pre-release tag and build metadata dropped).
    pub fn of(v: &Version) -> Rel {
        Rel {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
        }
    }
}

impl fmt::Display for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The pre-release part of a set: nothing, everything, or intervals
/// (never empty nor full: [`Pre::from_ranges`] keeps that form unique, so
/// the derived equality is the sets' equality).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Pre {
    Empty,
    Full,
    Some(Arc<Ranges<Version>>),
}

impl Pre {
    fn from_ranges(r: Ranges<Version>) -> Pre {
        if r.is_empty() {
            Pre::Empty
        } else if r == Ranges::full() {
            Pre::Full
        } else {
            Pre::Some(Arc::new(r))
        }
    }

    /// The part as intervals over semver's order.
    pub fn ranges(&self) -> std::borrow::Cow<'_, Ranges<Version>> {
        use std::borrow::Cow;
        match self {
            Pre::Empty => Cow::Owned(Ranges::empty()),
            Pre::Full => Cow::Owned(Ranges::full()),
            Pre::Some(r) => Cow::Borrowed(r),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Pre::Empty)
    }

    /// The one version in the part, if it holds exactly one.
    pub fn as_singleton(&self) -> Option<&Version> {
        match self {
            Pre::Some(r) => r.as_singleton(),
            _ => None,
        }
    }

    fn contains(&self, v: &Version) -> bool {
        match self {
            Pre::Empty => false,
            Pre::Full => true,
            Pre::Some(r) => r.contains(v),
        }
    }

    fn complement(&self) -> Pre {
        match self {
            Pre::Empty => Pre::Full,
            Pre::Full => Pre::Empty,
            Pre::Some(r) => Pre::from_ranges(r.complement()),
        }
    }

    fn intersection(&self, other: &Pre) -> Pre {
        match (self, other) {
            (Pre::Empty, _) | (_, Pre::Empty) => Pre::Empty,
            (Pre::Full, x) | (x, Pre::Full) => x.clone(),
            (Pre::Some(a), Pre::Some(b)) => Pre::from_ranges(a.intersection(b)),
        }
    }

    fn union(&self, other: &Pre) -> Pre {
        match (self, other) {
            (Pre::Full, _) | (_, Pre::Full) => Pre::Full,
            (Pre::Empty, x) | (x, Pre::Empty) => x.clone(),
            (Pre::Some(a), Pre::Some(b)) => Pre::from_ranges(a.union(b)),
        }
    }

    fn is_disjoint(&self, other: &Pre) -> bool {
        match (self, other) {
            (Pre::Empty, _) | (_, Pre::Empty) => true,
            (Pre::Full, _) | (_, Pre::Full) => false,
            (Pre::Some(a), Pre::Some(b)) => a.is_disjoint(b),
        }
    }

    fn subset_of(&self, other: &Pre) -> bool {
        match (self, other) {
            (Pre::Empty, _) | (_, Pre::Full) => true,
            (Pre::Full, _) | (_, Pre::Empty) => false,
            (Pre::Some(a), Pre::Some(b)) => a.subset_of(b),
        }
    }
}

impl fmt::Display for Pre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.ranges(), f)
    }
}

/// A set of versions: `release` applies to versions without a pre-release
/// tag, `pre` to versions with one.
#[derive(Clone)]
pub struct SemverSet {
    pub release: Ranges<Rel>,
    pub pre: Pre,
    /// The requirement text this set was made from, for messages.
    written: Option<Arc<str>>,
}

impl PartialEq for SemverSet {
    fn eq(&self, other: &Self) -> bool {
        self.release == other.release && self.pre == other.pre
    }
}

impl Eq for SemverSet {}

impl fmt::Debug for SemverSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SemverSet(release: {}, pre: {})", self.release, self.pre)
    }
}

impl SemverSet {
    fn new(release: Ranges<Rel>, pre: Pre) -> SemverSet {
        SemverSet {
            release,
            pre,
            written: None,
        }
    }

    /// The set `req` matches, remembering `req`'s canonical text.
    pub fn from_req(req: &VersionReq) -> SemverSet {
        let mut set = convert(req);
        set.written = Some(Arc::from(req.to_string()));
        set
    }

    /// The requirement text this set was made from, if any.
    pub fn written(&self) -> Option<&str> {
        self.written.as_deref()
    }

    /// Whether no version at all is in the set.
    pub fn is_empty(&self) -> bool {
        self.release.is_empty() && self.pre.is_empty()
    }
}

impl VersionSet for SemverSet {
    type V = Version;

    fn empty() -> Self {
        SemverSet::new(Ranges::empty(), Pre::Empty)
    }

    fn singleton(v: Version) -> Self {
        if v.pre.is_empty() {
            SemverSet::new(Ranges::singleton(Rel::of(&v)), Pre::Empty)
        } else {
            SemverSet::new(Ranges::empty(), Pre::Some(Arc::new(Ranges::singleton(v))))
        }
    }

    fn complement(&self) -> Self {
        SemverSet::new(self.release.complement(), self.pre.complement())
    }

    fn intersection(&self, other: &Self) -> Self {
        SemverSet::new(
            self.release.intersection(&other.release),
            self.pre.intersection(&other.pre),
        )
    }

    fn contains(&self, v: &Version) -> bool {
        if v.pre.is_empty() {
            self.release.contains(&Rel::of(v))
        } else {
            self.pre.contains(v)
        }
    }

    fn full() -> Self {
        SemverSet::new(Ranges::full(), Pre::Full)
    }

    fn union(&self, other: &Self) -> Self {
        SemverSet::new(self.release.union(&other.release), self.pre.union(&other.pre))
    }

    fn is_disjoint(&self, other: &Self) -> bool {
        self.release.is_disjoint(&other.release) && self.pre.is_disjoint(&other.pre)
    }

    fn subset_of(&self, other: &Self) -> bool {
        self.release.subset_of(&other.release) && self.pre.subset_of(&other.pre)
    }
}

/// The releases of `r` (an interval set over all of semver's order) as an
/// interval set over [`Rel`]: a bound with a pre-release tag `x.y.z-p` is
/// the release bound `x.y.z` (included from below, excluded from above),
/// since no release lies between `x.y.z-p` and `x.y.z`.
fn releases(r: &Ranges<Version>) -> Ranges<Rel> {
    let lower = |b: &Bound<Version>| match b {
        Bound::Included(v) => Bound::Included(Rel::of(v)),
        Bound::Excluded(v) if v.pre.is_empty() => Bound::Excluded(Rel::of(v)),
        Bound::Excluded(v) => Bound::Included(Rel::of(v)),
        Bound::Unbounded => Bound::Unbounded,
    };
    let upper = |b: &Bound<Version>| match b {
        Bound::Included(v) if v.pre.is_empty() => Bound::Included(Rel::of(v)),
        Bound::Included(v) | Bound::Excluded(v) => Bound::Excluded(Rel::of(v)),
        Bound::Unbounded => Bound::Unbounded,
    };
    r.iter().fold(Ranges::empty(), |acc, (lo, hi)| {
        acc.union(&Ranges::from_range_bounds((lower(lo), upper(hi))))
    })
}

/// `major.minor.patch-0`: the lowest version with that triple.
fn lowest(major: u64, minor: u64, patch: u64) -> Version {
    Version {
        major,
        minor,
        patch,
        pre: Prerelease::new("0").unwrap_or(Prerelease::EMPTY),
        build: semver::BuildMetadata::EMPTY,
    }
}

/// Below every version of the next major (`None`: no upper bound).
fn next_major(major: u64) -> Option<Version> {
    major.checked_add(1).map(|m| lowest(m, 0, 0))
}

fn next_minor(major: u64, minor: u64) -> Option<Version> {
    match minor.checked_add(1) {
        Some(m) => Some(lowest(major, m, 0)),
        None => next_major(major),
    }
}

fn next_patch(major: u64, minor: u64, patch: u64) -> Option<Version> {
    match patch.checked_add(1) {
        Some(p) => Some(lowest(major, minor, p)),
        None => next_minor(major, minor),
    }
}

/// `[lo, hi)`; `hi = None` is unbounded.
fn half_open(lo: Version, hi: Option<Version>) -> Ranges<Version> {
    match hi {
        Some(hi) => Ranges::from_range_bounds((Bound::Included(lo), Bound::Excluded(hi))),
        None => Ranges::higher_than(lo),
    }
}

fn full_version(c: &Comparator) -> Version {
    Version {
        major: c.major,
        minor: c.minor.unwrap_or(0),
        patch: c.patch.unwrap_or(0),
        pre: c.pre.clone(),
        build: semver::BuildMetadata::EMPTY,
    }
}

/// The versions one comparator admits, before the pre-release rule:
/// `(releases, pre-releases)`, each over semver's order.
fn comparator(c: &Comparator) -> (Ranges<Version>, Ranges<Version>) {
    let both = |r: Ranges<Version>| (r.clone(), r);
    let (major, minor, patch) = (c.major, c.minor, c.patch);
    // The versions whose fields equal the comparator's given fields (any
    // pre-release): `[lo, hi)`.
    let same_prefix = || match (minor, patch) {
        (None, _) => half_open(lowest(major, 0, 0), next_major(major)),
        (Some(mi), None) => half_open(lowest(major, mi, 0), next_minor(major, mi)),
        (Some(mi), Some(p)) => half_open(lowest(major, mi, p), next_patch(major, mi, p)),
    };
    // Above every version with the given prefix (for partial `>`), or
    // strictly above the full version.
    let greater = || match (minor, patch) {
        (None, _) => next_major(major).map_or_else(Ranges::empty, Ranges::higher_than),
        (Some(mi), None) => next_minor(major, mi).map_or_else(Ranges::empty, Ranges::higher_than),
        (Some(_), Some(_)) => Ranges::strictly_higher_than(full_version(c)),
    };
    let less = || match (minor, patch) {
        (None, _) => Ranges::strictly_lower_than(lowest(major, 0, 0)),
        (Some(mi), None) => Ranges::strictly_lower_than(lowest(major, mi, 0)),
        (Some(_), Some(_)) => Ranges::strictly_lower_than(full_version(c)),
    };
    // `matches_exact`: the given fields equal and `pre` equal. With a
    // partial version `pre` is empty, so only releases match.
    let exact = || match (minor, patch) {
        (Some(_), Some(_)) => {
            let v = full_version(c);
            if v.pre.is_empty() {
                (Ranges::singleton(v), Ranges::empty())
            } else {
                (Ranges::empty(), Ranges::singleton(v))
            }
        }
        _ => (same_prefix(), Ranges::empty()),
    };
    match c.op {
        Op::Exact | Op::Wildcard => exact(),
        Op::Greater => both(greater()),
        Op::GreaterEq => {
            let (r, p) = exact();
            let g = greater();
            (r.union(&g), p.union(&g))
        }
        Op::Less => both(less()),
        Op::LessEq => {
            let (r, p) = exact();
            let l = less();
            (r.union(&l), p.union(&l))
        }
        Op::Tilde => match (minor, patch) {
            (Some(mi), Some(_)) => both(half_open(full_version(c), next_minor(major, mi))),
            // `~1.2` / `~1`: the prefix, and `pre >= ""`, i.e. releases only.
            _ => (same_prefix(), Ranges::empty()),
        },
        Op::Caret => match (minor, patch) {
            (None, _) => both(same_prefix()),
            (Some(mi), None) if major > 0 => both(half_open(lowest(major, mi, 0), next_major(major))),
            (Some(mi), None) => both(half_open(lowest(0, mi, 0), next_minor(0, mi))),
            (Some(mi), Some(p)) => {
                let hi = if major > 0 {
                    next_major(major)
                } else if mi > 0 {
                    next_minor(0, mi)
                } else {
                    next_patch(0, 0, p)
                };
                both(half_open(full_version(c), hi))
            }
        },
        // `Op` is non-exhaustive; an operator this code does not know
        // matches nothing rather than everything.
        _ => (Ranges::empty(), Ranges::empty()),
    }
}

/// The exact set of versions `req.matches` accepts (build metadata aside).
pub fn convert(req: &VersionReq) -> SemverSet {
    let mut release = Ranges::full();
    let mut pre = Ranges::full();
    let mut windows = Ranges::empty();
    for c in &req.comparators {
        let (r, p) = comparator(c);
        release = release.intersection(&r);
        pre = pre.intersection(&p);
        if !c.pre.is_empty()
            && let (Some(mi), Some(pa)) = (c.minor, c.patch)
        {
            let triple = Version::new(c.major, mi, pa);
            windows = windows.union(&Ranges::from_range_bounds((
                Bound::Included(lowest(c.major, mi, pa)),
                Bound::Excluded(triple),
            )));
        }
    }
    SemverSet::new(releases(&release), Pre::from_ranges(pre.intersection(&windows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(req: &str) -> SemverSet {
        convert(&VersionReq::parse(req).unwrap())
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn zero_carets_follow_cargo() {
        let s = set("^0.2.3");
        assert!(s.contains(&v("0.2.3")) && s.contains(&v("0.2.9")) && !s.contains(&v("0.3.0")));
        let s = set("^0.0.3");
        assert!(s.contains(&v("0.0.3")) && !s.contains(&v("0.0.4")));
    }

    #[test]
    fn pre_releases_need_a_comparator_naming_them() {
        let s = set(">=1.0.0, <2.0.0");
        assert!(s.contains(&v("1.5.0")) && !s.contains(&v("1.5.0-beta")));
        let s = set("^1.5.0-beta");
        assert!(s.contains(&v("1.5.0-beta.2")) && !s.contains(&v("1.6.0-beta")) && s.contains(&v("1.6.0")));
    }

    // The release part is keyed on `major.minor.patch`: a bound with a
    // pre-release tag admits the same releases as the plain bound.
    #[test]
    fn pre_release_bounds_are_release_bounds_among_releases() {
        for (tagged, plain) in [
            ("<1.5.0-beta", "<1.5.0"),
            ("<=1.5.0-beta", "<1.5.0"),
            (">=1.5.0-beta", ">=1.5.0"),
            (">1.5.0-beta", ">=1.5.0"),
            ("^1.5.0-beta", "^1.5.0"),
            ("~1.5.0-beta", "~1.5.0"),
        ] {
            assert_eq!(set(tagged).release, set(plain).release, "{tagged} vs {plain}");
        }
        // An interval with no release in it is empty, not a sliver.
        let s = set(">=2.0.0-alpha, <2.0.0");
        assert!(s.release.is_empty() && !s.pre.is_empty());
        // Sets are equal when they hold the same versions, whichever bounds
        // made them (`<2.0.0` against `^1`'s `<2.0.0-0`).
        assert_eq!(set("<2.0.0"), set("^1").union(&set("<1")));
    }

    // `VersionReq::matches` ignores build metadata; so does a set.
    #[test]
    fn build_metadata_is_ignored_as_matches_ignores_it() {
        for req in ["=1.0.0", ">1.0.0", "<1.0.0", "<=1.0.0", "^1.0.0", ">=1.0.1", "~0.9"] {
            let r = VersionReq::parse(req).unwrap();
            for ver in ["1.0.0", "1.0.0+x", "1.0.0+0", "1.0.0-rc.1+x", "0.9.5+build.7"] {
                assert_eq!(set(req).contains(&v(ver)), r.matches(&v(ver)), "{req} {ver}");
            }
        }
        assert!(SemverSet::singleton(v("1.0.0+x")).contains(&v("1.0.0")));
    }

    #[test]
    fn derived_sets_print_without_artefacts() {
        let s = set("^1.2");
        let shown = SemverSet::new(s.release.clone(), Pre::Empty).to_string();
        assert_eq!(shown, "^1.2.0");
        let c = SemverSet::new(s.release.complement(), Pre::Empty).to_string();
        assert_eq!(c, "<1.2.0 or >=2.0.0");
        let w = SemverSet::from_req(&VersionReq::parse(">=1.0, <2.0").unwrap());
        assert_eq!(w.to_string(), ">=1.0, <2.0");
    }
}
