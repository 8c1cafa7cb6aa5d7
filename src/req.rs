//! Version requirements in Cargo's syntax (SPEC §1), as the `semver` crate
//! parses them.
//!
//! A [`Requirement`] keeps the parsed [`semver::VersionReq`]; its `Display`
//! is the canonical form used in `fm.lock` and in messages (`1.0.4` is shown
//! as `^1.0.4`, as Cargo reads it). Conversion to PubGrub ranges lives in
//! [`crate::resolve::ranges`].

use std::fmt;

/// A parsed version requirement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement(pub semver::VersionReq);

impl Requirement {
    /// Parses Cargo requirement syntax: `^1.2`, `~1.2.3`, `=1.0.0`, `>=0.3, <0.5`,
    /// `1.*`, `*`, or a bare version (caret).
    pub fn parse(text: &str) -> Result<Requirement, semver::Error> {
        semver::VersionReq::parse(text.trim()).map(Requirement)
    }

    /// Whether `v` satisfies the requirement, with Cargo's pre-release rule.
    pub fn matches(&self, v: &semver::Version) -> bool {
        self.0.matches(v)
    }

    /// `*`: any (non-pre-release) version.
    pub fn any() -> Requirement {
        Requirement(semver::VersionReq::STAR)
    }
}

/// A [`Requirement`]'s `Display`, written once: the resolver keeps one per
/// requirement text it met, so a lock of thousands of dependencies formats
/// each distinct requirement once (only a [`Requirement`] makes one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    /// `req`, written out.
    pub fn of(req: &Requirement) -> Shown {
        Shown(req.to_string())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for Requirement {
    type Err = semver::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Requirement::parse(s)
    }
}
