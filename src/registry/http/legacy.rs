//! Legacy servers (FlowMason Studio 1.0.x: no `versions` array): the
//! versions come from `packages/search?q=NAME` (exact-name matches, every
//! page), and each version's dependencies from its archive's
//! `manifest.json`, downloaded once and cached by digest.

use super::super::document::{PackageDocument, PackageInfo, VersionRecord};
use super::super::transport;
use super::HttpRegistry;
use crate::registry::{Registry, RegistryError};

/// Versions a legacy server may list for one package.
const MAX_LEGACY_VERSIONS: usize = 10_000;
/// Archives of a legacy server read at once for their manifests (each held
/// in memory, up to the document cap).
const LEGACY_DOWNLOADS: usize = 4;

impl HttpRegistry {
    /// Builds a full document for a FlowMason Studio server that sends only
    /// the latest version's PackageInfo.
    pub(super) async fn legacy_document(
        &self,
        package: &str,
        latest: PackageDocument,
    ) -> Result<PackageDocument, RegistryError> {
        let mut infos: Vec<PackageInfo> = vec![latest.info.clone()];
        let mut page = 1;
        loop {
            let (found, total) = self.search_page(package, None, page, 100).await?;
            let n = found.len();
            infos.extend(found.into_iter().filter(|i| i.name == package));
            if infos.len() > MAX_LEGACY_VERSIONS {
                // Each version costs an archive download: a registry listing
                // endless versions must not cost endless memory.
                return Err(self.http_err(
                    format!("{} lists more than {MAX_LEGACY_VERSIONS} versions of {package}", self.url),
                    Some("a FlowMason Studio server this large is not supported; serve its folder with `fm registry serve`".into()),
                ));
            }
            if n == 0 || page * 100 >= total || page >= 100 {
                break;
            }
            page += 1;
        }
        infos.sort_by(|a, b| a.version.cmp(&b.version));
        infos.dedup_by(|a, b| a.version == b.version);
        // A version fm cannot lock: not semver, or no valid checksum (Studio
        // skips the check when `checksum` is empty; fm never installs what
        // it cannot verify). Left out, so the package's other versions stay
        // usable, as a version that does not exist.
        infos.retain(|i| {
            semver::Version::parse(&i.version).is_ok() && crate::values::Sha256::try_from(i.checksum.as_str()).is_ok()
        });
        // Each archive is held in memory while its manifest is read: a few
        // at a time.
        let mut records = Vec::with_capacity(infos.len());
        for chunk in infos.chunks(LEGACY_DOWNLOADS) {
            records.extend(
                futures_util::future::try_join_all(chunk.iter().map(|i| self.legacy_record(package, i))).await?,
            );
        }
        let mut doc = PackageDocument {
            info: latest.info,
            versions: Some(records),
        };
        doc.refresh_info();
        Ok(doc)
    }

    /// One version of a legacy server: dependencies from the archive.
    pub(super) async fn legacy_record(
        &self,
        package: &str,
        info: &PackageInfo,
    ) -> Result<VersionRecord, RegistryError> {
        // A version without a valid checksum could not be verified when
        // installed: refused here, naming it.
        let checksum = crate::values::Sha256::try_from(info.checksum.as_str()).map_err(|e| RegistryError::Corrupt {
            registry: self.name.clone(),
            package: package.to_owned(),
            reason: format!("version {} has no valid sha256 checksum: {e}", info.version),
        })?;
        let deps_path = Some(self.cache_root.join("manifests").join(format!("{checksum}.json")));
        let cached = deps_path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok());
        let dependencies = match cached {
            Some(d) => d,
            None => {
                // Held in memory: capped like a document.
                let mut sink = transport::CappedVec::new(transport::max_document_bytes());
                Registry::download(self, package, &info.version, &mut sink)
                    .await
                    .map_err(|e| match e {
                        RegistryError::Io { .. } => self.http_err(
                            format!(
                                "the archive of {package}@{} (read for its dependencies) is over {} bytes",
                                info.version,
                                transport::max_document_bytes()
                            ),
                            Some(transport::document_cap_help()),
                        ),
                        e => e,
                    })?;
                let bytes = sink.bytes;
                let actual = crate::fsutil::sha256_hex(&bytes);
                if checksum != actual {
                    return Err(RegistryError::Corrupt {
                        registry: self.name.clone(),
                        package: package.to_owned(),
                        reason: format!(
                            "the archive of {}@{} has SHA-256 {actual}, its document says {}",
                            package, info.version, info.checksum
                        ),
                    });
                }
                let manifest = crate::archive::read_manifest(&bytes).map_err(|e| RegistryError::Corrupt {
                    registry: self.name.clone(),
                    package: package.to_owned(),
                    reason: format!("the archive of {}@{}: {e}", package, info.version),
                })?;
                let deps: std::collections::BTreeMap<crate::values::PackageName, String> = manifest
                    .dependencies
                    .keys()
                    .map(|n| {
                        (
                            n.clone(),
                            manifest.raw.dependencies.get(n.as_str()).cloned().unwrap_or_default(),
                        )
                    })
                    .collect();
                if let (Some(p), Ok(json)) = (&deps_path, serde_json::to_vec(&deps)) {
                    let _ = crate::fsutil::write_atomic(p, &json);
                }
                deps
            }
        };
        Ok(VersionRecord::from_info(info, checksum, dependencies))
    }
}
