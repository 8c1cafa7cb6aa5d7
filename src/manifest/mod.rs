//! `fm.toml`: the project manifest (SPEC §1) and the package manifest that
//! `fm pack` reads (SPEC §5).
//!
//! Parsing is two steps ([`parse`](Manifest::parse), in `parse.rs`). serde +
//! toml read the text into raw types whose values keep their byte spans
//! ([`toml::Spanned`]); validation then turns them into [`Manifest`], and
//! every mistake becomes a [`ManifestError`] that carries the file and the
//! span, so miette can point at the offending line.
//!
//! Editing (`fm add`, `fm remove`) goes through `toml_edit` so comments,
//! ordering and formatting survive; see [`edit`]. `fm init`'s starters are
//! in `init.rs`.

pub mod edit;
mod error;
mod init;
mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::archive::PackInput;
pub use crate::archive::{MAX_DEPENDENCIES, PackageMeta};
use crate::req::Requirement;
pub use error::ManifestError;
pub use init::{component_starter, ignore_install_folder, init, init_package, package_starter, starter};

/// The file name `fm` looks for.
pub const MANIFEST_FILE: &str = "fm.toml";

/// A validated `fm.toml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it was read from.
    pub path: PathBuf,
    /// `[project]`; absent in a package-only manifest.
    pub project: Option<Project>,
    /// `[package]`: present in folders `fm pack` builds.
    pub package: Option<PackageMeta>,
    /// `[dependencies]`, sorted by name.
    pub dependencies: BTreeMap<String, Dependency>,
    /// `[[registries]]`, in file order (not yet sorted by priority).
    pub registries: Vec<RegistryDecl>,
}

/// `[project]`.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub version: Option<semver::Version>,
}

/// One entry of `[dependencies]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    /// The requirement, keeping the text the user wrote.
    pub req: Requirement,
    /// `registry = "x"`: the dependency comes from that registry only.
    pub registry: Option<String>,
}

impl fmt::Display for Dependency {
    /// The form recorded in `fm.lock`'s `[root]`: `name req (registry)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.req)?;
        if let Some(r) = &self.registry {
            write!(f, " ({r})")?;
        }
        Ok(())
    }
}

/// One `[[registries]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryDecl {
    pub name: String,
    /// Normalised location: an `http(s)://` URL or a `file://` URL of an
    /// absolute folder (relative paths are resolved against the manifest's
    /// folder).
    pub url: url::Url,
    pub priority: i64,
    pub explicit: bool,
    /// The path as written, when fm.toml gives a relative path. fm.lock
    /// records this rather than the absolute URL, so a lock committed with
    /// a project stays fresh in every checkout of it.
    pub relative: Option<String>,
    /// What the registry's transparency log must be (SPEC §9).
    pub log: LogPin,
}

/// `log-key` and `require-log` of a registry (fm.toml's `[[registries]]`,
/// or `log_key` / `require_log` in the user config): how its transparency
/// log is trusted (see [`crate::tlog::client`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPin {
    /// The log's verifier key (`name+id+base64`), checked to parse as one.
    /// `None`: trust on first use, recorded in fm.lock.
    pub key: Option<String>,
    /// Refuse the registry if it keeps no log.
    pub require: bool,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })?;
        Manifest::parse(path, &text)
    }

    /// The folder holding `fm.toml`.
    pub fn root(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The manifest's registries, highest priority (lowest number) first;
    /// ties keep file order.
    pub fn registries_by_priority(&self) -> Vec<RegistryDecl> {
        let mut r = self.registries.clone();
        r.sort_by_key(|r| r.priority);
        r
    }

    /// What [`archive::pack`](crate::archive::pack) builds from this
    /// manifest's folder: its `[package]`, and its dependencies, none of
    /// which may name a registry (a published package's dependencies come
    /// from the installing project's registries).
    pub fn pack_input(&self) -> Result<PackInput, ManifestError> {
        let dir = self.root().to_owned();
        let Some(meta) = self.package.clone() else {
            return Err(ManifestError::NotPackable {
                dir,
                reason: format!("{} has no [package] table", self.path.display()),
            });
        };
        let mut dependencies = BTreeMap::new();
        for d in self.dependencies.values() {
            if d.registry.is_some() {
                return Err(ManifestError::NotPackable {
                    dir,
                    reason: format!(
                        "dependency {} names a registry; a published package's dependencies come from the installing project's registries",
                        d.name
                    ),
                });
            }
            dependencies.insert(d.name.clone(), d.req.clone());
        }
        Ok(PackInput { meta, dependencies })
    }
}

/// Finds the manifest: `explicit` (from `--manifest-path` or `FM_MANIFEST`)
/// or the nearest `fm.toml` from `start` upwards.
pub fn find(explicit: Option<&Path>, start: &Path) -> Result<PathBuf, ManifestError> {
    if let Some(p) = explicit {
        let p = if p.is_dir() {
            p.join(MANIFEST_FILE)
        } else {
            p.to_owned()
        };
        if !p.is_file() {
            return Err(ManifestError::Missing { path: p });
        }
        return Ok(std::path::absolute(&p).unwrap_or(p));
    }
    let start = std::path::absolute(start).unwrap_or_else(|_| start.to_owned());
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        let candidate = d.join(MANIFEST_FILE);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(ManifestError::NotFound { start })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let text = r#"
[project]
name = "support-bot"
version = "0.1.0"

[dependencies]
summarizer = "^1.2"
sentiment = "1.0.4"
filter-kit = { version = ">=0.3, <0.5", registry = "company" }

[[registries]]
name = "company"
url = "https://registry.company.com"
priority = 10
explicit = false

[[registries]]
name = "local"
url = "file:///srv/fm-registry"
"#;
        let m = Manifest::parse(Path::new("/p/fm.toml"), text).unwrap();
        assert_eq!(m.project.unwrap().name, "support-bot");
        assert_eq!(m.dependencies["filter-kit"].registry.as_deref(), Some("company"));
        assert_eq!(m.dependencies["sentiment"].to_string(), "sentiment ^1.0.4");
        assert_eq!(m.registries[1].priority, crate::location::DEFAULT_PRIORITY);
    }

    #[test]
    fn rejects_unknown_keys_with_a_span() {
        let err = Manifest::parse(Path::new("fm.toml"), "[project]\nname = \"x\"\nnmae = 1\n").unwrap_err();
        match err {
            ManifestError::Syntax { span, .. } => assert!(span.is_some()),
            other => panic!("{other:?}"),
        }
    }
}
