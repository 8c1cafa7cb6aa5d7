//! The package manifest: `manifest.json` ([`PackageManifest`]), its
//! validation ([`ValidManifest`]), and [`About`], the descriptive fields a
//! package's metadata carries in every form fm reads or writes.
//!
//! A package's metadata has four forms: `fm.toml`'s `[package]`
//! ([`PackageMeta`](super::PackageMeta)), `manifest.json`
//! ([`PackageManifest`]), and a registry's version record and package
//! document (`registry::document`). FlowMason fixes the key order of each
//! wire form, and the orders differ, so one flattened serde struct cannot
//! write them all byte for byte. Instead the fields they share are declared
//! once, in [`About`]; every form converts to it with a struct literal and
//! from it by destructuring it whole, so a field added to [`About`] does not
//! compile until every form carries it.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};

use serde::{Deserialize, Serialize};

use super::{ArchiveError, Limits, MANIFEST_ENTRY, zipread};
use crate::names;
use crate::req::Requirement;

/// Most direct dependencies a manifest (`fm.toml`, and a published
/// package's `manifest.json`) may declare: resolving asks each registry
/// about each one, so an absurd fan-out is refused before the first request.
pub const MAX_DEPENDENCIES: usize = 1000;

/// What a package says about itself beside its name, version, contents and
/// dependencies: the fields every form of its metadata carries (see the
/// module doc). Each form converts to it with `From` and is built from it
/// by destructuring. Tags and components are not here: a registry derives
/// them from `manifest.json` ([`ValidManifest::tags`],
/// [`ValidManifest::components`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct About {
    pub description: String,
    pub author: Option<String>,
    pub author_email: Option<String>,
    pub license: Option<String>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    pub category: Option<String>,
}

/// `manifest.json`, FlowMason's package manifest, in the key order
/// `flowmason pack` writes. Unknown keys are ignored, as FlowMason does.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PackageManifest {
    pub name: String,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flowmason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    #[serde(default)]
    pub exports: Vec<String>,
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_by: Option<String>,
    #[serde(default)]
    pub pipelines: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
}

/// FlowMason's server treats a missing version as `1.0.0`.
fn default_version() -> String {
    "1.0.0".to_owned()
}

/// `From<&Form> for About` for each form that carries the seven
/// descriptive fields under their own names: one list of fields, so a field
/// added to [`About`] is added to every form's conversion or none compiles.
macro_rules! about_from {
    ($($form:ty),+ $(,)?) => {$(
        impl From<&$form> for $crate::archive::About {
            fn from(m: &$form) -> $crate::archive::About {
                $crate::archive::About {
                    description: m.description.clone(),
                    author: m.author.clone(),
                    author_email: m.author_email.clone(),
                    license: m.license.clone(),
                    repository: m.repository.clone(),
                    homepage: m.homepage.clone(),
                    category: m.category.clone(),
                }
            }
        }
    )+};
}
pub(crate) use about_from;

about_from!(PackageManifest);

/// A `manifest.json` that passed validation, with its parsed parts.
#[derive(Debug, Clone)]
pub struct ValidManifest {
    pub raw: PackageManifest,
    pub version: semver::Version,
    pub dependencies: BTreeMap<crate::values::PackageName, Requirement>,
}

impl ValidManifest {
    /// Tags as the registry reports them: `tags`, else `keywords`.
    pub fn tags(&self) -> Vec<String> {
        self.raw.tags.clone().unwrap_or_else(|| self.raw.keywords.clone())
    }

    /// Components as FlowMason's registry reports them: `components`, else
    /// `[component_type]`, else `[""]`.
    pub fn components(&self) -> Vec<String> {
        if !self.raw.components.is_empty() {
            self.raw.components.clone()
        } else if let Some(t) = &self.raw.component_type {
            vec![t.clone()]
        } else {
            vec![String::new()]
        }
    }
}

/// Reads and validates `manifest.json` from archive bytes.
pub fn read_manifest(bytes: &[u8]) -> Result<ValidManifest, ArchiveError> {
    read_manifest_from(Cursor::new(bytes), &Limits::default())
}

/// Reads and validates `manifest.json` from a seekable archive: the same
/// structure checks as [`extract`](super::extract), and a cap on the bytes
/// actually inflated (never the declared size).
pub fn read_manifest_from<R: Read + Seek>(mut r: R, limits: &Limits) -> Result<ValidManifest, ArchiveError> {
    let entries = zipread::read_layout(&mut r, limits)?;
    let Some(entry) = entries.iter().find(|e| e.name == MANIFEST_ENTRY.as_bytes()) else {
        return Err(ArchiveError::MissingManifest);
    };
    let Some(text) = zipread::read_entry(&mut r, entry, limits.max_manifest_bytes)? else {
        return Err(ArchiveError::TooLarge(format!(
            "manifest.json is over {} bytes",
            limits.max_manifest_bytes
        )));
    };
    parse_manifest_json(&text)
}

/// Validates the text of a `manifest.json`.
pub fn parse_manifest_json(text: &[u8]) -> Result<ValidManifest, ArchiveError> {
    let raw: PackageManifest =
        serde_json::from_slice(text).map_err(|e| ArchiveError::InvalidManifest(e.to_string()))?;
    validate_manifest(raw)
}

/// Checks the fields fm relies on.
pub fn validate_manifest(raw: PackageManifest) -> Result<ValidManifest, ArchiveError> {
    names::validate(&raw.name)
        .map_err(|why| ArchiveError::InvalidManifest(format!("package name {:?} is invalid: {why}", raw.name)))?;
    let version = semver::Version::parse(&raw.version).map_err(|e| {
        ArchiveError::InvalidManifest(format!(
            "version {:?} of {} is not a semantic version: {e}",
            raw.version, raw.name
        ))
    })?;
    if raw.dependencies.len() > MAX_DEPENDENCIES {
        return Err(ArchiveError::InvalidManifest(format!(
            "{} declares {} dependencies (at most {})",
            raw.name,
            raw.dependencies.len(),
            MAX_DEPENDENCIES
        )));
    }
    let mut dependencies = BTreeMap::new();
    for (dep, req) in &raw.dependencies {
        let name = crate::values::PackageName::try_from(dep.as_str()).map_err(|e| {
            ArchiveError::InvalidManifest(format!("dependency name {dep:?} of {} is invalid: {}", raw.name, e.why))
        })?;
        if dep == &raw.name {
            return Err(ArchiveError::InvalidManifest(format!("{} depends on itself", raw.name)));
        }
        let req = Requirement::parse(req).map_err(|e| {
            ArchiveError::InvalidManifest(format!(
                "requirement {req:?} on {dep} in {}@{} is invalid: {e}",
                raw.name, raw.version
            ))
        })?;
        dependencies.insert(name, req);
    }
    Ok(ValidManifest {
        raw,
        version,
        dependencies,
    })
}
