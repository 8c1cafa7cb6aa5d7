//! The JSON documents every registry serves (SPEC §4): [`PackageInfo`]
//! (FlowMason's fields, in FlowMason's order) and [`PackageDocument`], the
//! `packages/{name}` answer and the directory registry's `index/{name}.json`,
//! which adds every version with its dependencies ([`VersionRecord`]).
//!
//! Their descriptive fields are [`About`]'s, declared once in
//! `archive::manifest` with the rest of a package's metadata: a record is
//! built from an archive's `manifest.json` ([`VersionRecord::from_manifest`])
//! or from a legacy server's [`PackageInfo`] ([`VersionRecord::from_info`]),
//! and a [`PackageInfo`] from a record ([`PackageDocument::info_for`]), each
//! through [`About`]. The key orders stay FlowMason's, field for field.
//!
//! Stored documents carry a layout-relative `download_url`
//! (`packages/{name}/{name}-{version}.fmpkg`); the server rewrites it to an
//! absolute URL when it answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::archive::{About, ValidManifest};
use crate::values::{PackageName, Sha256};

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
/// `packages/{name}/{version}` reports. Its checksum and dependency names
/// are checked when the document is read: a document with a bad one is
/// refused whole, naming the value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VersionRecord {
    pub version: String,
    pub checksum: Sha256,
    pub size_bytes: u64,
    /// name → requirement, as written in the archive's manifest.
    #[serde(default)]
    pub dependencies: BTreeMap<PackageName, String>,
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

crate::archive::about_from!(VersionRecord, PackageInfo);

impl VersionRecord {
    /// The record for a freshly published archive.
    pub fn from_manifest(m: &ValidManifest, checksum: Sha256, size_bytes: u64, published_at: String) -> VersionRecord {
        let About {
            description,
            author,
            author_email,
            license,
            repository,
            homepage,
            category,
        } = About::from(&m.raw);
        VersionRecord {
            version: m.version.to_string(),
            checksum,
            size_bytes,
            // The names `m.dependencies` checked, with their requirements as written.
            dependencies: m
                .dependencies
                .keys()
                .map(|n| {
                    (
                        n.clone(),
                        m.raw.dependencies.get(n.as_str()).cloned().unwrap_or_default(),
                    )
                })
                .collect(),
            yanked: false,
            published_at,
            description,
            author,
            author_email,
            license,
            homepage,
            repository,
            tags: m.tags(),
            category,
            components: m.components(),
            log_index: None,
        }
    }

    /// The record of one version a legacy FlowMason Studio server describes
    /// only by its [`PackageInfo`] (whose `checksum` the caller checked);
    /// `dependencies` come from its archive.
    pub fn from_info(
        info: &PackageInfo,
        checksum: Sha256,
        dependencies: BTreeMap<PackageName, String>,
    ) -> VersionRecord {
        let About {
            description,
            author,
            author_email,
            license,
            repository,
            homepage,
            category,
        } = About::from(info);
        VersionRecord {
            version: info.version.clone(),
            checksum,
            size_bytes: info.size_bytes,
            dependencies,
            yanked: false,
            published_at: info.published_at.clone(),
            description,
            author,
            author_email,
            license,
            homepage,
            repository,
            tags: info.tags.clone(),
            category,
            components: info.components.clone(),
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
        let About {
            description,
            author,
            author_email,
            license,
            repository,
            homepage,
            category,
        } = About::from(record);
        PackageInfo {
            name: self.info.name.clone(),
            version: record.version.clone(),
            description,
            author,
            author_email,
            download_url: archive_key(&self.info.name, &record.version),
            checksum: record.checksum.to_string(),
            size_bytes: record.size_bytes,
            component_count: record.components.len(),
            components: record.components.clone(),
            tags: record.tags.clone(),
            category,
            license,
            homepage,
            repository,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every descriptive field a distinct value, so a conversion that
    /// copied one field into another would show.
    fn about() -> About {
        About {
            description: "d".to_owned(),
            author: Some("a".to_owned()),
            author_email: Some("e".to_owned()),
            license: Some("l".to_owned()),
            repository: Some("r".to_owned()),
            homepage: Some("h".to_owned()),
            category: Some("c".to_owned()),
        }
    }

    #[test]
    fn metadata_survives_package_to_manifest_to_record_to_info_and_back() {
        let About {
            description,
            author,
            author_email,
            license,
            repository,
            homepage,
            category,
        } = about();
        let meta = crate::archive::PackageMeta {
            name: "p".to_owned(),
            version: "1.2.3".to_owned(),
            description,
            author,
            author_email,
            license,
            repository,
            homepage,
            category,
            keywords: vec!["k".to_owned()],
            ..Default::default()
        };
        assert_eq!(About::from(&meta), about());
        // fm.toml's [package] -> manifest.json, through the real packer and
        // reader.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("components")).unwrap();
        std::fs::write(dir.path().join("components/x.py"), "x = 1\n").unwrap();
        let input = crate::archive::PackInput {
            meta,
            dependencies: [("q".to_owned(), crate::req::Requirement::parse("^1").unwrap())].into(),
        };
        let packed = crate::archive::pack(dir.path(), &input).unwrap();
        let manifest = crate::archive::read_manifest(&packed.bytes).unwrap();
        assert_eq!(About::from(&manifest.raw), about());

        let record = VersionRecord::from_manifest(
            &manifest,
            packed.sha256.parse().unwrap(),
            7,
            "2026-01-01T00:00:00Z".to_owned(),
        );
        assert_eq!(About::from(&record), about());
        assert_eq!(
            (record.tags.as_slice(), record.components.as_slice()),
            (&["k".to_owned()][..], &["components/x.py".to_owned()][..])
        );
        assert_eq!(record.dependencies["q"], "^1");

        let doc = PackageDocument::new("p", record.clone());
        let info = doc.info_for(&record);
        assert_eq!(About::from(&info), about());
        assert_eq!(
            VersionRecord::from_info(&info, record.checksum.clone(), record.dependencies.clone()),
            record
        );
        eprintln!(
            "FIGURES metadata: 7 descriptive fields through 5 forms ([package], manifest.json, version record, package info, legacy record); 0 lost or swapped"
        );
    }
}
