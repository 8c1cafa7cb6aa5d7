//! Package documents: fetched, cached on disk under `{cache_dir}/http/{hash}/`
//! with their `ETag`, revalidated with `If-None-Match`; `offline` reads the
//! cache alone.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{StatusCode, header};
use serde::{Deserialize, Serialize};

use super::super::document::PackageDocument;
use super::super::transport;
use super::HttpRegistry;
use super::errors::server_message;
use crate::registry::{RegistryError, redact_url};

/// A document as cached on disk.
#[derive(Serialize, Deserialize)]
pub(super) struct CachedDocument {
    etag: Option<String>,
    document: PackageDocument,
}

impl HttpRegistry {
    pub(super) fn cache_path(&self, package: &str) -> PathBuf {
        self.cache.join("index").join(format!("{package}.json"))
    }

    pub(super) fn read_cache(&self, package: &str) -> Option<CachedDocument> {
        let bytes = std::fs::read(self.cache_path(package)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub(super) fn write_cache(&self, package: &str, cached: &CachedDocument) {
        // A cache that cannot be written only costs a later refetch.
        if let Ok(bytes) = serde_json::to_vec(cached) {
            let _ = crate::fsutil::write_atomic(&self.cache_path(package), &bytes);
        }
    }

    /// Fetches (or revalidates) the document of `package`.
    pub(super) async fn fetch_document(&self, package: &str) -> Result<Option<Arc<PackageDocument>>, RegistryError> {
        if crate::names::validate(package).is_err() {
            return Ok(None);
        }
        let cached = self.read_cache(package);
        if self.offline {
            return match cached {
                Some(c) => Ok(Some(Arc::new(c.document))),
                None => Err(RegistryError::Offline {
                    registry: self.name.clone(),
                    package: package.to_owned(),
                }),
            };
        }
        let mut headers = header::HeaderMap::new();
        headers.insert(header::ACCEPT, header::HeaderValue::from_static("application/json"));
        if let Some(tag) = cached.as_ref().and_then(|c| c.etag.as_deref())
            && let Ok(v) = header::HeaderValue::from_str(tag)
        {
            headers.insert(header::IF_NONE_MATCH, v);
        }
        let url = self.document_url(package)?;
        let mut f = self.get(url, headers).await?;
        match f.status {
            StatusCode::NOT_MODIFIED => match cached {
                Some(c) => Ok(Some(Arc::new(c.document))),
                None => Err(self.http_err(
                    format!(
                        "{} answered 304 to a request that had no If-None-Match",
                        redact_url(&f.url)
                    ),
                    None,
                )),
            },
            StatusCode::NOT_FOUND if self.is_static => Ok(None),
            // A registry says "not found" in JSON (fm's `error`, FlowMason's
            // `detail`); an HTML page or an empty 404 may be a wrong URL:
            // ask `health` before reading it as "no such package".
            StatusCode::NOT_FOUND => {
                let body = transport::read_error_text(&mut f.response, f.budget.deadline()).await;
                if server_message(&body).is_none() {
                    self.answers_as_registry().await?;
                }
                Ok(None)
            }
            // Never read as "absent": a private bucket answers 403 for
            // everything, and resolving around it would mislead.
            StatusCode::FORBIDDEN if self.is_static => Err(self.http_err(
                format!("{} refused to serve index/{package}.json (403 Forbidden)", self.url),
                Some(
                    "a static registry must let its readers GET index/ and packages/, and answer 404 for a \
                     package it does not hold (on S3: a bucket policy granting s3:GetObject and s3:ListBucket, \
                     or a CDN mapping 403 to 404)"
                        .into(),
                ),
            )),
            s if s.is_success() => {
                let etag = f
                    .headers
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = self.read_document(&mut f, &format!("{package}'s document")).await?;
                let mut doc: PackageDocument = serde_json::from_slice(&body).map_err(|e| RegistryError::Corrupt {
                    registry: self.name.clone(),
                    package: package.to_owned(),
                    // serde quotes what it could not read: the registry's text.
                    reason: crate::text::printable_owned(e.to_string()),
                })?;
                if doc.info.name != package {
                    // FlowMason 1.0 matches names by prefix: `packages/text`
                    // answers with `text-utils`. That is not this package.
                    return Ok(None);
                }
                if doc.versions.is_none() {
                    if self.is_static {
                        return Err(RegistryError::Corrupt {
                            registry: self.name.clone(),
                            package: package.to_owned(),
                            reason: "index document without a `versions` list".into(),
                        });
                    }
                    doc = self.legacy_document(package, doc).await?;
                }
                self.write_cache(
                    package,
                    &CachedDocument {
                        etag,
                        document: doc.clone(),
                    },
                );
                Ok(Some(Arc::new(doc)))
            }
            _ => Err(self.status_error(f, &format!("fetching {package}")).await),
        }
    }
}
