//! Checked values: a [`PackageName`], a [`Sha256`] digest and a
//! [`LockedDep`] (`name req`), each validated once where it enters — serde
//! ([`Deserialize`]), clap ([`FromStr`]) or [`TryFrom<String>`] — so code
//! that holds one never checks it again. Serialized, each is exactly the
//! string it was read from: wire formats do not change.
//!
//! A leaf module: it uses only [`crate::names`] and [`crate::req`].

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::{self, NameError};

/// Implements the string-like traits every checked value shares.
macro_rules! string_value {
    ($ty:ident) => {
        impl $ty {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<std::path::Path> for $ty {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $ty {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$ty> for str {
            fn eq(&self, other: &$ty) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$ty> for &str {
            fn eq(&self, other: &$ty) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$ty> for String {
            fn eq(&self, other: &$ty) -> bool {
                *self == other.0
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = <$ty as TryFrom<String>>::Error;
            fn try_from(s: &str) -> Result<$ty, Self::Error> {
                $ty::try_from(s.to_owned())
            }
        }

        impl FromStr for $ty {
            type Err = <$ty as TryFrom<String>>::Error;
            fn from_str(s: &str) -> Result<$ty, Self::Err> {
                $ty::try_from(s.to_owned())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let text = String::deserialize(d)?;
                $ty::try_from(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A package name that passed [`names::validate`] (SPEC §1), safe to use as
/// a folder or file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName(String);

/// A name refused, with the name: "invalid package name "X": why".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid package name {name:?}: {why}")]
pub struct InvalidName {
    /// The text refused.
    pub name: String,
    /// Why.
    pub why: NameError,
}

impl TryFrom<String> for PackageName {
    type Error = InvalidName;
    fn try_from(name: String) -> Result<PackageName, InvalidName> {
        match names::validate(&name) {
            Ok(()) => Ok(PackageName(name)),
            Err(why) => Err(InvalidName { name, why }),
        }
    }
}

string_value!(PackageName);

/// A SHA-256 digest as 64 lower-case hex digits, the form fm.lock, the
/// registry documents and the install state write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256(String);

/// Text that is no hex SHA-256; shows at most 80 printable characters of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shown:?} is not a hex SHA-256 (64 lower-case hex digits)")]
pub struct InvalidSha256 {
    /// The start of the text refused.
    pub shown: String,
}

impl Sha256 {
    /// Whether `s` is 64 lower-case hex digits.
    pub fn is_valid(s: &str) -> bool {
        s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256 {
        use sha2::Digest as _;
        Sha256::from(sha2::Sha256::digest(bytes))
    }
}

/// The digest of no bytes (`e3b0c442…`): what a record of an empty archive
/// (size 0) would say, so a default record is consistent and verifies
/// nothing else.
impl Default for Sha256 {
    fn default() -> Sha256 {
        Sha256::of(b"")
    }
}

impl From<sha2::digest::Output<sha2::Sha256>> for Sha256 {
    fn from(digest: sha2::digest::Output<sha2::Sha256>) -> Sha256 {
        Sha256(hex::encode(digest))
    }
}

impl From<sha2::Sha256> for Sha256 {
    fn from(hasher: sha2::Sha256) -> Sha256 {
        use sha2::Digest as _;
        Sha256::from(hasher.finalize())
    }
}

impl TryFrom<String> for Sha256 {
    type Error = InvalidSha256;
    fn try_from(s: String) -> Result<Sha256, InvalidSha256> {
        if Sha256::is_valid(&s) {
            Ok(Sha256(s))
        } else {
            Err(InvalidSha256 {
                shown: s.chars().filter(|c| !c.is_control()).take(80).collect(),
            })
        }
    }
}

string_value!(Sha256);

/// One locked dependency, `name req` in fm.lock: a valid [`PackageName`],
/// one space, and a requirement [`crate::req::Requirement`] parses. The
/// requirement keeps the text it was read with, so a lock renders back
/// byte for byte.
///
/// The one parser of these strings. It is the strictest of the four it
/// replaced: no space, a bad name or a bad requirement is refused (earlier
/// readers took the whole text as the name, or `*` or `""` as the
/// requirement).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockedDep(String, usize);

/// A `name req` string refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDep {
    /// No space between a name and a requirement.
    #[error("dependency {0:?} is not `name requirement`")]
    Shape(String),
    /// The name part.
    #[error("dependency {text:?}: {name}")]
    Name { text: String, name: InvalidName },
    /// The requirement part.
    #[error("dependency {text:?}: invalid requirement: {why}")]
    Requirement { text: String, why: String },
}

impl LockedDep {
    /// A dependency from its parts; `req` is written as its `Display`.
    pub fn new(name: &PackageName, req: &crate::req::Requirement) -> LockedDep {
        LockedDep(format!("{name} {req}"), name.len())
    }

    /// A dependency from its name and a requirement already written out
    /// ([`crate::req::Shown`]): the same text as [`LockedDep::new`], without
    /// formatting the requirement again.
    pub fn shown(name: &PackageName, req: &crate::req::Shown) -> LockedDep {
        let mut text = String::with_capacity(name.len() + 1 + req.as_str().len());
        text.push_str(name);
        text.push(' ');
        text.push_str(req.as_str());
        LockedDep(text, name.len())
    }

    /// The package depended on.
    pub fn name(&self) -> &str {
        &self.0[..self.1]
    }

    /// The requirement, as written.
    pub fn req(&self) -> &str {
        &self.0[self.1 + 1..]
    }
}

impl TryFrom<String> for LockedDep {
    type Error = InvalidDep;
    fn try_from(text: String) -> Result<LockedDep, InvalidDep> {
        let Some((name, req)) = text.split_once(' ') else {
            return Err(InvalidDep::Shape(text));
        };
        if let Err(name) = PackageName::try_from(name) {
            return Err(InvalidDep::Name { text, name });
        }
        if let Err(e) = crate::req::Requirement::parse(req) {
            return Err(InvalidDep::Requirement {
                text,
                why: e.to_string(),
            });
        }
        let at = name.len();
        Ok(LockedDep(text, at))
    }
}

impl Deref for LockedDep {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for LockedDep {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LockedDep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for LockedDep {
    type Err = InvalidDep;
    fn from_str(s: &str) -> Result<LockedDep, InvalidDep> {
        LockedDep::try_from(s.to_owned())
    }
}

impl Serialize for LockedDep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LockedDep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LockedDep, D::Error> {
        let text = String::deserialize(d)?;
        LockedDep::try_from(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_once_at_entry() {
        assert_eq!(PackageName::try_from("text-utils").unwrap(), "text-utils");
        let err = "../x".parse::<PackageName>().unwrap_err();
        assert_eq!(err.to_string(), "invalid package name \"../x\": it starts with '.'");
        let err = serde_json::from_str::<PackageName>("\"CON\"").unwrap_err();
        assert!(err.to_string().starts_with("invalid package name \"CON\""), "{err}");
        assert_eq!(
            serde_json::to_string(&PackageName::try_from("a").unwrap()).unwrap(),
            "\"a\""
        );
    }

    #[test]
    fn digests_are_lower_case_hex() {
        let sum = Sha256::of(b"abc");
        assert_eq!(
            sum.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256::try_from(sum.to_string()).unwrap(), sum);
        assert!(Sha256::try_from(sum.to_uppercase()).is_err());
        assert!(Sha256::try_from("ab".to_owned()).is_err());
        let err = serde_json::from_str::<Sha256>("\"xyz\"").unwrap_err();
        assert!(err.to_string().starts_with("\"xyz\" is not a hex SHA-256"), "{err}");
    }

    #[test]
    fn locked_deps_have_one_parser() {
        let d: LockedDep = "text-utils >=0.3, <0.5".parse().unwrap();
        assert_eq!(
            (d.name(), d.req(), d.as_ref()),
            ("text-utils", ">=0.3, <0.5", "text-utils >=0.3, <0.5")
        );
        for bad in ["text-utils", "Text ^1", "x ^^1", " ^1", "x "] {
            assert!(bad.parse::<LockedDep>().is_err(), "{bad}");
        }
    }
}
