//! An HTTP registry, read (and written) as a client: SPEC §4's API under
//! `{url}/api/v1/registry/`, including FlowMason Studio servers that predate
//! fm's additions — or, for a `static+http(s)://` URL, a directory
//! registry's files on any static host (a bucket, a CDN, `python3 -m
//! http.server`): `index/{name}.json` and
//! `packages/{name}/{name}-{version}.fmpkg`, read-only.
//!
//! Rules kept here:
//! - **Tokens go to their own origin only.** Redirects are followed by hand
//!   (reqwest's automatic policy is off), and the bearer token is attached
//!   only while every hop so far stayed on the registry's canonical origin
//!   (scheme, host and port). After one cross-origin hop it is never sent
//!   again on that request, even if a later hop comes back. A mirror on
//!   another origin never sees it. `Debug` prints `<redacted>`. This is
//!   what keeps the token from a bucket when a server answers downloads
//!   with a pre-signed URL (`--redirect-downloads`); errors from that host
//!   name it without the URL's query (the signature).
//! - **Documents are cached on disk** under `{cache_dir}/http/{hash}/` with
//!   their `ETag` and revalidated with `If-None-Match`; `offline` reads the
//!   cache alone. In one process each document is fetched at most once, and
//!   concurrent callers of [`Registry::document`] for the same name share
//!   one request, so a resolver can prefetch freely.
//! - **At most `FM_CONCURRENT_DOWNLOADS` (128) requests wait for answers at
//!   once** per client ([`super::transport::concurrency`]), however many
//!   documents a resolver prefetches or archives a sync downloads.
//! - **Every read has a deadline and a byte cap** ([`super::transport`]):
//!   each attempt has `FM_HTTP_TIMEOUT_SECS` in all (connect, headers,
//!   body; archives get more per byte received, at 64 KiB/s), documents at
//!   most `FM_HTTP_MAX_DOCUMENT_MIB`, error bodies 64 KiB. Text the
//!   registry wrote into a message goes through [`crate::text::printable`].
//! - **Transient failures are retried**: connection errors, attempts that
//!   miss their deadline before an answer, connections
//!   dropped before an answer (requests without a body only) and 5xx,
//!   three attempts with exponential backoff. 401/403/404 are not. A body
//!   that breaks off mid-way is an error (the archive is verified anyway).
//! - **Legacy servers** (FlowMason Studio 1.0.x: no `versions` array): the
//!   versions come from `packages/search?q=NAME` (exact-name matches, every
//!   page), and each version's dependencies from its archive's
//!   `manifest.json`, downloaded once and cached by digest.
//!
//! Where each part lives: this file holds the client and its
//! [`Registry`] impl; `send` the transport (redirects, the token's origin,
//! retries), `cache` documents and their disk cache, `legacy` the FlowMason
//! Studio path, `download` archives, `api` search, upload, yank, health and
//! log files, `errors` the reading of error answers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use super::document::PackageDocument;
use super::transport;
use super::{OpenOptions, Registry, RegistryError, redact_url};
use crate::location::strip_static;

mod api;
mod cache;
mod download;
mod errors;
mod legacy;
mod send;

/// The API path under a registry's URL.
pub const API_PATH: &str = "api/v1/registry/";

/// Largest transparency-log file [`HttpRegistry::get_log_file`] reads.
pub const LOG_FILE_MAX: usize = 2 * 1024 * 1024;

/// One document, fetched once however many callers ask at the same time.
type DocCell = OnceCell<Option<Arc<PackageDocument>>>;

/// A registry server reached over HTTP(S).
pub struct HttpRegistry {
    name: String,
    /// Canonical URL (recorded in fm.lock).
    url: url::Url,
    /// Where requests go: the mirror's or the canonical API base (for a
    /// static registry, its root).
    api: url::Url,
    /// A static registry: files at fixed paths, no API.
    is_static: bool,
    token: Option<String>,
    /// The only origin the token is sent to.
    token_origin: url::Origin,
    client: reqwest::Client,
    offline: bool,
    /// `{cache_dir}/http`.
    cache_root: PathBuf,
    /// `{cache_root}/{hash of api}`.
    cache: PathBuf,
    docs: Mutex<HashMap<String, Arc<DocCell>>>,
    in_flight: tokio::sync::Semaphore,
}

impl std::fmt::Debug for HttpRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRegistry")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url).as_str())
            .field("api", &self.api.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("offline", &self.offline)
            .finish_non_exhaustive()
    }
}

impl HttpRegistry {
    /// A client for registry `name` at `url` (canonical), with `opts`'s
    /// token, mirror, cache and offline mode.
    pub fn new(name: &str, url: &url::Url, opts: &OpenOptions) -> Result<HttpRegistry, RegistryError> {
        let unsupported = |reason: String| RegistryError::Unsupported {
            registry: name.to_owned(),
            reason,
        };
        let (source, is_static) = strip_static(opts.mirror.as_ref().unwrap_or(url))
            .map_err(|e| unsupported(format!("{}: {e}", redact_url(url))))?;
        let (canonical, _) = strip_static(url).map_err(|e| unsupported(format!("{}: {e}", redact_url(url))))?;
        if !matches!(source.scheme(), "http" | "https") {
            return Err(unsupported(format!("{} is not an http(s) URL", redact_url(&source))));
        }
        let mut base = redact_url(&source);
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let api = if is_static {
            base
        } else {
            base.join(API_PATH)
                .map_err(|e| unsupported(format!("{base} cannot hold an API path: {e}")))?
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(transport::deadline())
            .user_agent(concat!("fm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistryError::Unsupported {
                registry: name.to_owned(),
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        let cache_root = opts.cache_dir.join("http");
        let key = &crate::fsutil::sha256_hex(api.as_str().as_bytes())[..16];
        Ok(HttpRegistry {
            name: name.to_owned(),
            url: url.clone(),
            cache: cache_root.join(key),
            cache_root,
            api,
            is_static,
            token: opts.token.clone().filter(|t| !t.is_empty()),
            // Bound by OpenOptions::for_registry to the origin it was
            // configured for; by default the canonical one.
            token_origin: opts.token_origin.clone().unwrap_or_else(|| canonical.origin()),
            client,
            offline: opts.offline,
            docs: Mutex::new(HashMap::new()),
            in_flight: tokio::sync::Semaphore::new(transport::concurrency()),
        })
    }

    /// The API base requests go to (`…/api/v1/registry/`).
    pub fn api(&self) -> &url::Url {
        &self.api
    }

    fn endpoint(&self, path: &str) -> Result<url::Url, RegistryError> {
        self.api
            .join(path)
            .map_err(|e| self.http_err(format!("bad request path {path:?}: {e}"), None))
    }

    /// Where `package`'s document is.
    fn document_url(&self, package: &str) -> Result<url::Url, RegistryError> {
        if self.is_static {
            self.endpoint(&super::document::index_key(package))
        } else {
            self.endpoint(&format!("packages/{package}"))
        }
    }

    /// Where an archive is.
    fn archive_url(&self, package: &str, version: &str) -> Result<url::Url, RegistryError> {
        if self.is_static {
            self.endpoint(&super::document::archive_key(package, version))
        } else {
            self.endpoint(&format!("packages/{package}/{version}/download"))
        }
    }

    /// Refuses an API call (`what`) on a static registry.
    fn needs_api(&self, what: &str) -> Result<(), RegistryError> {
        if !self.is_static {
            return Ok(());
        }
        Err(self.http_err(
            format!("{} is a static registry (files only): it cannot do {what}", self.url),
            Some(
                "a static registry serves resolution and downloads only; search, publish and yank go through \
                 a registry server (`fm registry serve` over the same folder or bucket), or publish to the \
                 folder itself"
                    .into(),
            ),
        ))
    }

    fn http_err(&self, message: String, help: Option<String>) -> RegistryError {
        RegistryError::Http {
            registry: self.name.clone(),
            message,
            help,
            source: None,
        }
    }

    /// [`http_err`](Self::http_err) caused by `cause`, kept as the source
    /// without its URL (which may carry a signature in its query).
    fn http_err_from(&self, message: String, help: Option<String>, cause: reqwest::Error) -> RegistryError {
        RegistryError::Http {
            registry: self.name.clone(),
            message,
            help,
            source: Some(cause.without_url()),
        }
    }
}

impl Registry for HttpRegistry {
    fn name(&self) -> &str {
        &self.name
    }

    fn url(&self) -> &url::Url {
        &self.url
    }

    fn document<'a>(&'a self, package: &'a str) -> BoxFuture<'a, Result<Option<Arc<PackageDocument>>, RegistryError>> {
        async move {
            let cell = {
                let mut docs = self
                    .docs
                    .lock()
                    .map_err(|_| self.http_err("internal lock poisoned".into(), None))?;
                docs.entry(package.to_owned()).or_default().clone()
            };
            cell.get_or_try_init(|| self.fetch_document(package)).await.cloned()
        }
        .boxed()
    }

    fn download<'a>(
        &'a self,
        package: &'a str,
        version: &'a str,
        sink: &'a mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> BoxFuture<'a, Result<u64, RegistryError>> {
        self.download_archive(package, version, sink).boxed()
    }

    fn log_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, RegistryError>> {
        Box::pin(self.get_log_file(path))
    }
}
