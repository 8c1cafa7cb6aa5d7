//! The JSON documents every registry serves (SPEC §4): [`PackageInfo`]
//! (FlowMason's fields, in FlowMason's order) and [`PackageDocument`], the
//! `packages/{name}` answer and the directory registry's `index/{name}.json`,
//! which adds every version with its dependencies ([`VersionRecord`]).
//!
//! Stored documents carry a layout-relative `download_url`
//! (`packages/{name}/{name}-{version}.fmpkg`); the server rewrites it to an
//! absolute URL when it answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::archive::ValidManifest;

/// FlowMason's package document, field for field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PackageInfo {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub author_email: Option<String>,
    #[serde(default)]
    pub download_url: String,
    #[serde(default)]
    pub checksum: String,
    #[serde(default)]
    pub size_bytes: u64,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub component_count: usize,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub homepage: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub published_at: String,
    #[serde(default)]
    pub downloads: u64,
    #[serde(default)]
    pub available_versions: Vec<String>,
    #[serde(default)]
    pub latest_version: String,
}

/// One published version, with what resolution needs and what
/// `packages/{name}/{version}` reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VersionRecord {
    pub version: String,
    pub checksum: String,
    pub size_bytes: u64,
    /// name → requirement, as written in the archive's manifest.
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    #[serde(default)]
    pub yanked: bool,
    #[serde(default)]
    pub published_at: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    /// The index of this version's publish record in the registry's
    /// transparency log (SPEC §9); absent for a registry without one, so
    /// FlowMason clients see the document they know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
}

/// `packages/{name}`: the newest version's [`PackageInfo`] plus every
/// version. `versions` is `None` for a legacy FlowMason Studio server that
/// does not send it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PackageDocument {
    #[serde(flatten)]
    pub info: PackageInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionRecord>>,
}

impl VersionRecord {
    /// The record for a freshly published archive.
    pub fn from_manifest(m: &ValidManifest, checksum: String, size_bytes: u64, published_at: String) -> VersionRecord {
        VersionRecord {
            version: m.version.to_string(),
            checksum,
            size_bytes,
            dependencies: m.raw.dependencies.clone(),
            yanked: false,
            published_at,
            description: m.raw.description.clone(),
            author: m.raw.author.clone(),
            author_email: m.raw.author_email.clone(),
            license: m.raw.license.clone(),
            homepage: m.raw.homepage.clone(),
            repository: m.raw.repository.clone(),
            tags: m.tags(),
            category: m.raw.category.clone(),
            components: m.components(),
            log_index: None,
        }
    }

    /// The parsed version; `None` for a version string that is not semver
    /// (possible only in documents fm did not write).
    pub fn semver(&self) -> Option<semver::Version> {
        semver::Version::parse(&self.version).ok()
    }
}

/// Layout-relative path of an archive: `packages/{name}/{name}-{version}.fmpkg`.
pub fn archive_key(name: &str, version: &str) -> String {
    format!("packages/{name}/{name}-{version}.fmpkg")
}

/// Layout-relative path of a package document: `index/{name}.json`.
pub fn index_key(name: &str) -> String {
    format!("index/{name}.json")
}

impl PackageDocument {
    /// Versions sorted newest first by semver (unparseable ones last).
    pub fn versions_newest_first(&self) -> Vec<&VersionRecord> {
        let mut v: Vec<&VersionRecord> = self.versions.iter().flatten().collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.semver()));
        v
    }

    /// The record of one version.
    pub fn version(&self, version: &str) -> Option<&VersionRecord> {
        self.versions.iter().flatten().find(|r| r.version == version)
    }

    /// The [`PackageInfo`] of one version of this package.
    pub fn info_for(&self, record: &VersionRecord) -> PackageInfo {
        let latest = self.latest().map(|r| r.version.clone()).unwrap_or_default();
        PackageInfo {
            name: self.info.name.clone(),
            version: record.version.clone(),
            description: record.description.clone(),
            author: record.author.clone(),
            author_email: record.author_email.clone(),
            download_url: archive_key(&self.info.name, &record.version),
            checksum: record.checksum.clone(),
            size_bytes: record.size_bytes,
            component_count: record.components.len(),
            components: record.components.clone(),
            tags: record.tags.clone(),
            category: record.category.clone(),
            license: record.license.clone(),
            homepage: record.homepage.clone(),
            repository: record.repository.clone(),
            published_at: record.published_at.clone(),
            downloads: self.info.downloads,
            available_versions: self.versions_newest_first().iter().map(|r| r.version.clone()).collect(),
            latest_version: latest,
        }
    }

    /// The version a registry advertises as latest: the newest release that
    /// is not yanked, else the newest pre-release that is not yanked, else
    /// the newest version. (A `2.0.0-beta.1` is not "latest" while `1.2.0`
    /// exists, as on crates.io.)
    pub fn latest(&self) -> Option<&VersionRecord> {
        let all = self.versions_newest_first();
        let stable = |r: &&&VersionRecord| r.semver().is_some_and(|v| v.pre.is_empty());
        all.iter()
            .filter(|r| !r.yanked)
            .find(stable)
            .or_else(|| all.iter().find(|r| !r.yanked))
            .or(all.first())
            .copied()
    }

    /// Recomputes the top-level [`PackageInfo`] from the version list.
    pub fn refresh_info(&mut self) {
        if let Some(latest) = self.latest().cloned() {
            self.info = self.info_for(&latest);
        }
        if let Some(v) = &mut self.versions {
            v.sort_by_key(|r| std::cmp::Reverse(r.semver()));
        }
    }

    /// A new document holding one version.
    pub fn new(name: &str, record: VersionRecord) -> PackageDocument {
        let mut doc = PackageDocument {
            info: PackageInfo {
                name: name.to_owned(),
                ..PackageInfo::default()
            },
            versions: Some(vec![record]),
        };
        doc.refresh_info();
        doc
    }
}
