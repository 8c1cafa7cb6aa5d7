//! The API calls beside resolution and downloads: search, upload, yank,
//! health, and transparency-log files.

use std::sync::Arc;

use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

use super::super::document::PackageInfo;
use super::super::transport;
use super::errors::{error_chain, server_message};
use super::{HttpRegistry, LOG_FILE_MAX};
use crate::registry::{RegistryError, redact_url};

impl HttpRegistry {
    /// One page of `packages/search`: the entries and `total_count`.
    pub(super) async fn search_page(
        &self,
        query: &str,
        category: Option<&str>,
        page: usize,
        page_size: usize,
    ) -> Result<(Vec<PackageInfo>, usize), RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            packages: Vec<PackageInfo>,
            #[serde(default)]
            total_count: usize,
        }
        self.needs_api("a search")?;
        let mut url = self.endpoint("packages/search")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("q", query);
            if let Some(c) = category {
                q.append_pair("category", c);
            }
            q.append_pair("page", &page.to_string());
            q.append_pair("page_size", &page_size.to_string());
        }
        let mut f = self.get(url, header::HeaderMap::new()).await?;
        if !f.status.is_success() {
            return Err(self.status_error(f, &format!("searching for {query:?}")).await);
        }
        let body = self.read_document(&mut f, "the search results").await?;
        let page: Page = serde_json::from_slice(&body).map_err(|e| {
            self.http_err(
                format!(
                    "the search answer is not valid: {}",
                    crate::text::printable(&e.to_string())
                ),
                None,
            )
        })?;
        Ok((page.packages, page.total_count))
    }

    /// Searches the registry: one entry a package (the newest version),
    /// legacy servers' per-version entries merged. At most `limit` results.
    pub async fn search(
        &self,
        query: &str,
        category: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PackageInfo>, RegistryError> {
        if self.offline {
            return Err(self.http_err(
                "searching needs the network".to_owned(),
                Some("run the search without --offline".into()),
            ));
        }
        let mut all = Vec::new();
        let mut page = 1;
        loop {
            let (found, total) = self.search_page(query, category, page, 100).await?;
            let n = found.len();
            all.extend(found);
            if n == 0 || page * 100 >= total || all.len() >= limit.saturating_mul(4) {
                break;
            }
            page += 1;
        }
        Ok(crate::registry::search::merge_newest(all, category, limit))
    }

    /// Uploads an archive (multipart: `checksum` first, then `file`, as
    /// FlowMason's client does). Returns the server's PackageInfo.
    pub async fn upload(&self, bytes: Vec<u8>, file_name: &str) -> Result<PackageInfo, RegistryError> {
        self.needs_api("a publish")?;
        if self.offline {
            return Err(self.http_err("publishing needs the network".to_owned(), None));
        }
        let checksum = crate::fsutil::sha256_hex(&bytes);
        let len = bytes.len() as u64;
        let bytes = Arc::new(bytes);
        let file_name = file_name.to_owned();
        let make = move || {
            let part = reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(file_name.clone());
            let part = match part.mime_str("application/octet-stream") {
                Ok(p) => p,
                Err(_) => reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(file_name.clone()),
            };
            reqwest::multipart::Form::new()
                .text("checksum", checksum.clone())
                .part("file", part)
        };
        let mut f = self
            .send(
                Method::POST,
                self.endpoint("packages/upload")?,
                header::HeaderMap::new(),
                Some((&make, len)),
            )
            .await?;
        if f.status == StatusCode::CONFLICT {
            let text = transport::read_error_text(&mut f.response, f.budget.deadline()).await;
            let msg = server_message(&text).unwrap_or_default();
            return Err(self.http_err(
                format!("{} refused the upload (409 Conflict): {msg}", self.url),
                Some("published versions are immutable: bump `version` in [package] and publish again".into()),
            ));
        }
        if !f.status.is_success() {
            return Err(self.status_error(f, "publishing").await);
        }
        let body = self.read_document(&mut f, "the upload answer").await?;
        serde_json::from_slice(&body).map_err(|e| {
            self.http_err(
                format!(
                    "the upload answer is not valid: {}",
                    crate::text::printable(&e.to_string())
                ),
                None,
            )
        })
    }

    /// `GET health`: whether the server answers as a registry (what
    /// FlowMason's `registry add` checks).
    pub async fn health(&self) -> Result<(), RegistryError> {
        if self.is_static {
            // No health route; any answer from the host will do.
            let f = self.get(self.api.clone(), header::HeaderMap::new()).await?;
            return if f.status.is_server_error() {
                Err(self.status_error(f, "checking the host").await)
            } else {
                Ok(())
            };
        }
        let f = self.get(self.endpoint("health")?, header::HeaderMap::new()).await?;
        if f.status.is_success() {
            Ok(())
        } else {
            Err(self.status_error(f, "checking health").await)
        }
    }

    /// `Ok` when `GET health` answers a registry's health document
    /// (a JSON object with `status`); else an error saying that this URL
    /// is not an fm or FlowMason registry, with what `health` returned.
    pub(super) async fn answers_as_registry(&self) -> Result<(), RegistryError> {
        let url = self.endpoint("health")?;
        let mut f = self.get(url.clone(), header::HeaderMap::new()).await?;
        let status = f.status;
        let html = f
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.to_ascii_lowercase().contains("html"));
        let body = transport::read_error_text(&mut f.response, f.budget.deadline()).await;
        let healthy = status.is_success()
            && serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .is_some_and(|v| v.get("status").is_some());
        if healthy {
            return Ok(());
        }
        let what = if status.is_success() {
            format!(
                "returned {status} with {}",
                if html { "an HTML page" } else { "no health document" }
            )
        } else if html {
            format!("returned {status} (an HTML page)")
        } else {
            format!("returned {status}")
        };
        Err(self.http_err(
            format!(
                "{} does not answer as an fm or FlowMason registry: GET {} {what}",
                redact_url(&self.url),
                redact_url(&url)
            ),
            Some(format!(
                "check the registry's URL (the server's base, without /api/v1/registry): `fm registry list`, or [[registries]] {} in fm.toml",
                self.name
            )),
        ))
    }

    /// A transparency-log file (`checkpoint`, `key`, `tile/...`; SPEC §9):
    /// a server's `log/{path}` under its API, a static host's `log/{path}`.
    /// `None` on 404. Capped at [`LOG_FILE_MAX`] bytes (the largest file
    /// of the layout, a full entry bundle, is about 1 MiB).
    pub async fn get_log_file(&self, path: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        let f = self
            .get(self.endpoint(&format!("log/{path}"))?, header::HeaderMap::new())
            .await?;
        if f.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !f.status.is_success() {
            return Err(self.status_error(f, "reading the transparency log").await);
        }
        let mut response = f.response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.http_err_from(format!("reading log/{path} failed: {}", error_chain(&e)), None, e))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > LOG_FILE_MAX {
                return Err(self.http_err(format!("log/{path} is larger than {LOG_FILE_MAX} bytes"), None));
            }
        }
        Ok(Some(body))
    }

    /// Yanks (or un-yanks) a version.
    pub async fn set_yanked(&self, package: &str, version: &str, yanked: bool) -> Result<(), RegistryError> {
        self.needs_api("a yank")?;
        let url = self.endpoint(&format!("packages/{package}/{version}/yank"))?;
        let method = if yanked { Method::PUT } else { Method::DELETE };
        let f = self.send(method, url, header::HeaderMap::new(), None).await?;
        match f.status {
            s if s.is_success() => Ok(()),
            StatusCode::METHOD_NOT_ALLOWED => Err(self.http_err(
                format!("{} does not support yanking (405)", self.url),
                Some("FlowMason Studio servers cannot yank; run `fm registry serve` instead".into()),
            )),
            _ => Err(self.status_error(f, &format!("yanking {package}@{version}")).await),
        }
    }
}
