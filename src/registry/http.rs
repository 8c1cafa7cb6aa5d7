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
//! - **At most `FM_CONCURRENT_DOWNLOADS` (50) requests wait for answers at
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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::{Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use super::document::{PackageDocument, PackageInfo, VersionRecord};
use super::transport::{self, BodyError, Budget};
use super::{OpenOptions, Registry, RegistryError, redact_url};
use crate::location::strip_static;

/// The API path under a registry's URL.
pub const API_PATH: &str = "api/v1/registry/";

/// Largest transparency-log file [`HttpRegistry::get_log_file`] reads.
pub const LOG_FILE_MAX: usize = 2 * 1024 * 1024;

const ATTEMPTS: u32 = 3;
const MAX_REDIRECTS: usize = 10;
/// Versions a legacy server may list for one package.
const MAX_LEGACY_VERSIONS: usize = 10_000;
/// Archives of a legacy server read at once for their manifests (each held
/// in memory, up to the document cap).
const LEGACY_DOWNLOADS: usize = 4;

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

/// A document as cached on disk.
#[derive(Serialize, Deserialize)]
struct CachedDocument {
    etag: Option<String>,
    document: PackageDocument,
}

/// What one response was.
struct Fetched {
    status: StatusCode,
    headers: header::HeaderMap,
    response: reqwest::Response,
    url: url::Url,
    /// The clock of the attempt that got this answer: its body must
    /// arrive by the same deadline.
    budget: Budget,
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
        }
    }

    /// The body of a JSON answer (`what`, for messages), within the
    /// attempt's deadline and the document cap.
    async fn read_document(&self, f: &mut Fetched, what: &str) -> Result<Vec<u8>, RegistryError> {
        let at = redact_url(&f.url);
        transport::read_capped(&mut f.response, transport::max_document_bytes(), f.budget.deadline())
            .await
            .map_err(|e| match e {
                BodyError::Deadline => self.http_err(
                    format!("reading {what} from {at}: not complete within {} s", f.budget.secs()),
                    Some(transport::deadline_help(&f.budget)),
                ),
                BodyError::TooLarge => self.http_err(
                    format!(
                        "reading {what} from {at}: the answer is over {} MiB",
                        transport::max_document_bytes() / (1024 * 1024)
                    ),
                    Some(transport::document_cap_help()),
                ),
                BodyError::Read(e) => self.http_err(
                    format!("reading {what} from {at} failed: {}", error_chain(&e)),
                    e.is_timeout().then(|| transport::deadline_help(&f.budget)),
                ),
            })
    }

    /// Sends a request, following redirects by hand (token only to the
    /// canonical origin, never after leaving it) and retrying transient
    /// failures. `body` is rebuilt for each attempt; its length in bytes
    /// (the second field) earns its upload time at the minimum throughput.
    async fn send(
        &self,
        method: Method,
        url: url::Url,
        headers: header::HeaderMap,
        body: Option<(&(dyn Fn() -> reqwest::multipart::Form + Sync), u64)>,
    ) -> Result<Fetched, RegistryError> {
        let mut url = url;
        let mut left_origin = false;
        for _ in 0..=MAX_REDIRECTS {
            if url.origin() != self.token_origin {
                left_origin = true;
            }
            let mut attempt = 0;
            let (response, budget) = loop {
                attempt += 1;
                let mut req = self
                    .client
                    .request(method.clone(), url.clone())
                    .headers(headers.clone());
                if let (Some(token), false) = (&self.token, left_origin) {
                    req = req.bearer_auth(token);
                }
                if let Some((make, _)) = body {
                    req = req.multipart(make());
                }
                let (sent, budget) = {
                    // Held until the answer's headers arrive (bodies are
                    // read after), so nested requests cannot deadlock. The
                    // deadline starts once the request may go.
                    let _permit = self.in_flight.acquire().await;
                    let budget = Budget::start_sending(body.map_or(0, |(_, len)| len));
                    let sent_at = std::time::Instant::now();
                    super::observe::started(&method, &url);
                    let sent = tokio::time::timeout_at(budget.deadline(), req.send()).await;
                    super::observe::finished(&method, &url, &sent, sent_at.elapsed());
                    (sent, budget)
                };
                // No answer within the deadline (ours, or the client's
                // stall timer): transient, and reported as one error.
                let sent = match sent {
                    Ok(Ok(r)) => Ok(r),
                    Ok(Err(e)) if !e.is_timeout() => Err(e),
                    Ok(Err(_)) | Err(_) if attempt < ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
                        continue;
                    }
                    Ok(Err(_)) | Err(_) => {
                        return Err(self.http_err(
                            format!(
                                "no answer from {} within {} s ({ATTEMPTS} attempts)",
                                redact_url(&url),
                                budget.secs()
                            ),
                            Some(transport::deadline_help(&budget)),
                        ));
                    }
                };
                match sent {
                    Ok(r) if r.status().is_server_error() && attempt < ATTEMPTS => {}
                    Ok(r) => break (r, budget),
                    // A connection dropped before any answer (reset, closed)
                    // is transient too, but only a request without a body is
                    // safe to send again.
                    Err(e) if (e.is_connect() || (body.is_none() && e.is_request())) && attempt < ATTEMPTS => {}
                    Err(e) => {
                        return Err(self.http_err(
                            format!("cannot reach {}: {}", redact_url(&url), error_chain(&e)),
                            Some(
                                "check the registry URL and your network, or use --offline with a filled cache".into(),
                            ),
                        ));
                    }
                }
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
            };
            let status = response.status();
            if status.is_redirection()
                && let Some(loc) = response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok())
            {
                if body.is_some() && !matches!(status, StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT)
                {
                    return Err(self.http_err(format!("{} redirected an upload ({status})", redact_url(&url)), None));
                }
                url = url.join(loc).map_err(|e| {
                    self.http_err(format!("{} sent a bad redirect {loc:?}: {e}", redact_url(&url)), None)
                })?;
                continue;
            }
            return Ok(Fetched {
                status,
                headers: response.headers().clone(),
                response,
                url,
                budget,
            });
        }
        Err(self.http_err(format!("too many redirects from {}", redact_url(&url)), None))
    }

    async fn get(&self, url: url::Url, headers: header::HeaderMap) -> Result<Fetched, RegistryError> {
        self.send(Method::GET, url, headers, None).await
    }

    /// Turns an unexpected status into an error naming the registry and
    /// what to do.
    async fn status_error(&self, mut f: Fetched, what: &str) -> RegistryError {
        let status = f.status;
        let text = transport::read_error_text(&mut f.response, f.budget.deadline()).await;
        let server_says = server_message(&text).map(|m| format!(": {m}")).unwrap_or_default();
        let at = redact_url(&f.url);
        let named = crate::names::validate(&self.name).is_ok();
        let env = if named {
            format!("FM_TOKEN_{}", self.name.to_ascii_uppercase().replace('-', "_"))
        } else {
            "FLOWMASON_REGISTRY_TOKEN".to_owned()
        };
        let (message, help) = match status {
            StatusCode::UNAUTHORIZED if self.token.is_none() => (
                format!("{what}: {at} requires a token (401){server_says}"),
                format!(
                    "add one with `fm registry add {} {} --token TOKEN`, or set {env}",
                    if named { self.name.as_str() } else { "NAME" },
                    redact_url(&self.url)
                ),
            ),
            StatusCode::UNAUTHORIZED => (
                format!("{what}: {at} did not accept the token (401){server_says}"),
                format!("check the token given by {env}, FLOWMASON_REGISTRY_TOKEN or `fm registry add --token`"),
            ),
            StatusCode::FORBIDDEN => (
                format!("{what}: {at} refused the token (403){server_says}"),
                format!(
                    "check the token ({env} or `fm registry add --token`); the registry's operator can issue one with the right to do this"
                ),
            ),
            StatusCode::NOT_FOUND => (
                format!("{what}: {at} answered 404{server_says}"),
                format!("check that {} is an fm or FlowMason registry", self.url),
            ),
            _ => (
                format!("{what}: {at} answered {status}{server_says}"),
                "try again later; the registry may be overloaded or misconfigured".to_owned(),
            ),
        };
        self.http_err(message, Some(help))
    }

    /// An error answer from the host a download was redirected to (the
    /// registry's storage, e.g. a pre-signed bucket URL): names the
    /// registry, the package and the host, never the URL's signature.
    async fn storage_error(&self, mut f: Fetched, package: &str, version: &str) -> RegistryError {
        let status = f.status;
        let text = transport::read_error_text(&mut f.response, f.budget.deadline()).await;
        let says = server_message(&text)
            .or_else(|| s3_message(&text))
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let help = match status {
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => format!(
                "the storage refused the link {} signed (it may have expired, or the registry's clock or storage credentials are wrong): try again, and tell the registry's operator if it persists",
                self.name
            ),
            StatusCode::NOT_FOUND => format!(
                "{} lists {package}@{version} but its storage has no such archive: tell the registry's operator",
                self.name
            ),
            _ => "try again later; the storage host may be unreachable or overloaded".to_owned(),
        };
        self.http_err(
            format!(
                "downloading {package}@{version}: the registry redirected to {}, which answered {status}{says}",
                redact_url(&f.url)
            ),
            Some(help),
        )
    }

    fn cache_path(&self, package: &str) -> PathBuf {
        self.cache.join("index").join(format!("{package}.json"))
    }

    fn read_cache(&self, package: &str) -> Option<CachedDocument> {
        let bytes = std::fs::read(self.cache_path(package)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write_cache(&self, package: &str, cached: &CachedDocument) {
        // A cache that cannot be written only costs a later refetch.
        if let Ok(bytes) = serde_json::to_vec(cached) {
            let _ = crate::fsutil::write_atomic(&self.cache_path(package), &bytes);
        }
    }

    /// Fetches (or revalidates) the document of `package`.
    async fn fetch_document(&self, package: &str) -> Result<Option<Arc<PackageDocument>>, RegistryError> {
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

    /// Builds a full document for a FlowMason Studio server that sends only
    /// the latest version's PackageInfo.
    async fn legacy_document(&self, package: &str, latest: PackageDocument) -> Result<PackageDocument, RegistryError> {
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
        infos.retain(|i| semver::Version::parse(&i.version).is_ok());
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
    async fn legacy_record(&self, package: &str, info: &PackageInfo) -> Result<VersionRecord, RegistryError> {
        let deps_path = crate::fsutil::is_sha256_hex(&info.checksum).then(|| {
            self.cache_root
                .join("manifests")
                .join(format!("{}.json", info.checksum))
        });
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
                if !info.checksum.is_empty() && !info.checksum.eq_ignore_ascii_case(&actual) {
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
                let deps = manifest.raw.dependencies.clone();
                if let (Some(p), Ok(json)) = (&deps_path, serde_json::to_vec(&deps)) {
                    let _ = crate::fsutil::write_atomic(p, &json);
                }
                deps
            }
        };
        Ok(VersionRecord::from_info(info, dependencies))
    }

    /// One page of `packages/search`: the entries and `total_count`.
    async fn search_page(
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
        Ok(super::search::merge_newest(all, category, limit))
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
    async fn answers_as_registry(&self) -> Result<(), RegistryError> {
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
            .map_err(|e| self.http_err(format!("reading log/{path} failed: {}", error_chain(&e)), None))?
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

/// The message of an `{"error":{"message"}}` (fm) or `{"detail"}`
/// (FlowMason) answer. The registry wrote it: returned without controls
/// or escapes, at most 500 characters.
fn server_message(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let m = v.pointer("/error/message").or_else(|| v.get("detail"))?;
    let m = m.as_str().map_or_else(|| m.to_string(), str::to_owned);
    Some(crate::text::printable(&m).chars().take(500).collect())
}

/// `Code: Message` of an S3-style XML error (`<Error><Code>…`), as bucket
/// hosts answer a refused pre-signed URL.
fn s3_message(text: &str) -> Option<String> {
    let field = |tag: &str| {
        let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
        let len = text[start..].find(&format!("</{tag}>"))?;
        let value: String = crate::text::printable(&text[start..start + len])
            .chars()
            .take(200)
            .collect();
        Some(value.trim().to_owned()).filter(|v| !v.is_empty())
    };
    match (field("Code"), field("Message")) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (c, m) => c.or(m),
    }
}

/// A reqwest error in a few words: what failed and the root cause
/// (reqwest's own message repeats the URL, which the caller already names).
fn error_chain(e: &reqwest::Error) -> String {
    let mut root: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(next) = root.and_then(std::error::Error::source) {
        root = Some(next);
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    };
    match root {
        Some(r) => format!("{kind}: {r}"),
        None => kind.to_owned(),
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
        async move {
            if self.offline {
                return Err(RegistryError::Offline {
                    registry: self.name.clone(),
                    package: format!("{package}@{version}"),
                });
            }
            let url = self.archive_url(package, version)?;
            let mut f = match self.get(url, header::HeaderMap::new()).await {
                Ok(f) => f,
                Err(RegistryError::Http {
                    registry,
                    message,
                    help,
                }) => {
                    return Err(RegistryError::Http {
                        registry,
                        message: format!("downloading {package}@{version}: {message}"),
                        help,
                    });
                }
                Err(e) => return Err(e),
            };
            if !f.status.is_success() && f.url.origin() != self.api.origin() && f.url.origin() != self.token_origin {
                return Err(self.storage_error(f, package, version).await);
            }
            if f.status == StatusCode::NOT_FOUND {
                return Err(RegistryError::MissingArchive {
                    registry: self.name.clone(),
                    package: package.to_owned(),
                    version: version.to_owned(),
                });
            }
            if !f.status.is_success() {
                return Err(self.status_error(f, &format!("downloading {package}@{version}")).await);
            }
            let mut written = 0u64;
            loop {
                // The deadline moves on with the bytes received (a minimum
                // throughput); the caller caps the bytes at the lock's size.
                let by = f.budget.archive_deadline(written);
                let chunk = match tokio::time::timeout_at(by, f.response.chunk()).await {
                    Ok(chunk) => chunk.map_err(|e| {
                        self.http_err(
                            format!("downloading {package}@{version} failed: {}", error_chain(&e)),
                            Some(if e.is_timeout() {
                                transport::deadline_help(&f.budget)
                            } else {
                                "try again; the archive is verified against its digest either way".into()
                            }),
                        )
                    })?,
                    Err(_) => {
                        return Err(self.http_err(
                            format!(
                                "downloading {package}@{version} from {}: too slow, {written} bytes in {} s                                  (the deadline is {} s plus 1 s per 64 KiB received)",
                                redact_url(&f.url),
                                f.budget.elapsed_secs(),
                                f.budget.secs()
                            ),
                            Some(transport::deadline_help(&f.budget)),
                        ));
                    }
                };
                let Some(chunk) = chunk else { break };
                sink.write_all(&chunk).await.map_err(|source| RegistryError::Io {
                    registry: self.name.clone(),
                    what: format!("writing {package}@{version}"),
                    source,
                })?;
                written += chunk.len() as u64;
            }
            sink.flush().await.map_err(|source| RegistryError::Io {
                registry: self.name.clone(),
                what: format!("writing {package}@{version}"),
                source,
            })?;
            Ok(written)
        }
        .boxed()
    }
}
