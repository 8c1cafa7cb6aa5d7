//! How a [`SemverSet`] without requirement text is printed: intervals
//! in requirement syntax (`^1.2.0`, `>=1.0.0, <1.5.0`, `a or b`).

use std::fmt;
use std::ops::Bound;

use pubgrub::Ranges;
use semver::Version;

use super::{Rel, SemverSet, lowest, next_major, next_minor, next_patch};

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

/// The release part over semver's order, as it is shown: an upper bound
/// `x.y.z` excluded is `x.y.z-0` (below every pre-release of it), so that
/// `^1.2.0` prints as a caret.
fn as_versions(r: &Ranges<Rel>) -> Ranges<Version> {
    let release = |t: &Rel| Version::new(t.major, t.minor, t.patch);
    let lower = |b: &Bound<Rel>| match b {
        Bound::Included(t) => Bound::Included(release(t)),
        Bound::Excluded(t) => Bound::Excluded(release(t)),
        Bound::Unbounded => Bound::Unbounded,
    };
    let upper = |b: &Bound<Rel>| match b {
        Bound::Included(t) => Bound::Included(release(t)),
        Bound::Excluded(t) => Bound::Excluded(lowest(t.major, t.minor, t.patch)),
        Bound::Unbounded => Bound::Unbounded,
    };
    r.iter().fold(Ranges::empty(), |acc, (lo, hi)| {
        acc.union(&Ranges::from_range_bounds((lower(lo), upper(hi))))
    })
}

impl fmt::Display for SemverSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(w) = self.written() {
            return f.write_str(w);
        }
        let release = as_versions(&self.release);
        let pre = self.pre.ranges();
        if pre.is_empty() || *pre == release {
            return f.write_str(&intervals(&release));
        }
        if release.is_empty() {
            return write!(f, "pre-release {}", intervals(&pre));
        }
        write!(f, "{} (pre-releases: {})", intervals(&release), intervals(&pre))
    }
}
