//! Cargo requirements (`semver::VersionReq`) as PubGrub version sets,
//! exactly as `VersionReq::matches` reads them.
//!
//! Cargo's pre-release rule (SPEC §2) cannot be written as one interval
//! set: `>=1.0.0, <2.0.0` admits `1.5.0` but not `1.5.0-beta`, whose
//! neighbours on both sides are admitted. So a [`SemverSet`] holds two
//! [`Ranges<Version>`]: one consulted for release versions, one for
//! pre-releases. Both are ordinary interval sets over semver's order, so
//! complement, intersection and union are done part by part and stay exact.
//!
//! Each comparator becomes the set of versions `matches` accepts for it
//! (partial versions and per-operator pre-release quirks included); the
//! pre-release part is then limited to the "windows" `[x.y.z-0, x.y.z)` of
//! the comparators that name a pre-release of `x.y.z`.
//!
//! Build metadata is not modelled (`1.0.0+b` is ordered after `1.0.0`):
//! registries publish plain versions.
//!
//! A set made from a requirement remembers the text (`^1.2`), so
//! explanations show requirements the way the user wrote them; sets the
//! solver derives are printed from their intervals, without `-0` artefacts.

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use pubgrub::{Ranges, VersionSet};
use semver::{Comparator, Op, Prerelease, Version, VersionReq};

/// A set of versions: `release` applies to versions without a pre-release
/// tag, `pre` to versions with one.
#[derive(Clone)]
pub struct SemverSet {
    pub release: Ranges<Version>,
    pub pre: Ranges<Version>,
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
    fn new(release: Ranges<Version>, pre: Ranges<Version>) -> SemverSet {
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
        SemverSet::new(Ranges::empty(), Ranges::empty())
    }

    fn singleton(v: Version) -> Self {
        if v.pre.is_empty() {
            SemverSet::new(Ranges::singleton(v), Ranges::empty())
        } else {
            SemverSet::new(Ranges::empty(), Ranges::singleton(v))
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
            self.release.contains(v)
        } else {
            self.pre.contains(v)
        }
    }

    fn full() -> Self {
        SemverSet::new(Ranges::full(), Ranges::full())
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
    SemverSet::new(release, pre.intersection(&windows))
}

/// A version as shown in a bound: `2.0.0-0` is `2.0.0` (the `-0` only
/// keeps pre-releases of `2.0.0` out, which the release part never holds).
fn shown(v: &Version) -> String {
    if v.pre.as_str() == "0" {
        Version::new(v.major, v.minor, v.patch).to_string()
    } else {
        v.to_string()
    }
}

/// The caret upper bound of `v`, as [`convert`] builds it.
fn caret_upper(v: &Version) -> Option<Version> {
    if v.major > 0 {
        next_major(v.major)
    } else if v.minor > 0 {
        next_minor(0, v.minor)
    } else {
        next_patch(0, 0, v.patch)
    }
}

fn segment(lo: &Bound<Version>, hi: &Bound<Version>) -> String {
    match (lo, hi) {
        (Bound::Unbounded, Bound::Unbounded) => "*".to_owned(),
        (Bound::Included(a), Bound::Included(b)) if a == b => format!("={}", a),
        (Bound::Included(a), Bound::Excluded(b)) if Some(b) == caret_upper(a).as_ref() => {
            format!("^{}", shown(a))
        }
        (Bound::Included(a), Bound::Excluded(b))
            if a.pre.is_empty() && Some(b) == next_minor(a.major, a.minor).as_ref() && a.major > 0 =>
        {
            format!("~{}", shown(a))
        }
        _ => {
            let mut parts = Vec::new();
            match lo {
                Bound::Included(a) => parts.push(format!(">={}", shown(a))),
                Bound::Excluded(a) => parts.push(format!(">{}", shown(a))),
                Bound::Unbounded => {}
            }
            match hi {
                Bound::Included(b) => parts.push(format!("<={}", shown(b))),
                Bound::Excluded(b) => parts.push(format!("<{}", shown(b))),
                Bound::Unbounded => {}
            }
            parts.join(", ")
        }
    }
}

/// Interval text: `^1.2.0`, `>=1.0.0, <1.5.0`, or segments joined by ` or `.
fn intervals(r: &Ranges<Version>) -> String {
    let parts: Vec<String> = r.iter().map(|(lo, hi)| segment(lo, hi)).collect();
    if parts.is_empty() {
        "no version".to_owned()
    } else {
        parts.join(" or ")
    }
}

impl fmt::Display for SemverSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(w) = &self.written {
            return f.write_str(w);
        }
        if self.pre.is_empty() || self.pre == self.release {
            return f.write_str(&intervals(&self.release));
        }
        if self.release.is_empty() {
            return write!(f, "pre-release {}", intervals(&self.pre));
        }
        write!(
            f,
            "{} (pre-releases: {})",
            intervals(&self.release),
            intervals(&self.pre)
        )
    }
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

    #[test]
    fn derived_sets_print_without_artefacts() {
        let s = set("^1.2");
        let shown = SemverSet::new(s.release.clone(), Ranges::empty()).to_string();
        assert_eq!(shown, "^1.2.0");
        let c = SemverSet::new(s.release.complement(), Ranges::empty()).to_string();
        assert_eq!(c, "<1.2.0 or >=2.0.0");
        let w = SemverSet::from_req(&VersionReq::parse(">=1.0, <2.0").unwrap());
        assert_eq!(w.to_string(), ">=1.0, <2.0");
    }
}
