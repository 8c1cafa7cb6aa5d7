//! The endpoints of SPEC §4 under `/api/v1/registry/`.
//!
//! Answers keep FlowMason Studio's shapes field for field (see
//! `shared/flowmason/`), minus its defects: `download_url`s are absolute,
//! "latest" is the newest by semver, `packages/{name}/versions` is reachable,
//! `category` filters, search returns one entry a package, downloads are
//! counted, writes need a token. Errors are `{"error":{"code","message"}}`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::ServerConfig;
use super::auth::{Access, Tokens};
use super::counts::Counts;
use super::downloads::Downloads;
use crate::archive::Limits;
use crate::registry::document::{PackageDocument, PackageInfo, archive_key};
use crate::registry::publish::{self, PublishError};
use crate::registry::storage::{Storage, Tag};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub tokens: Arc<Tokens>,
    pub require_auth: bool,
    pub limits: Limits,
    pub downloads: Arc<Downloads>,
    /// `--redirect-downloads`: how long the pre-signed URLs last.
    pub redirect_downloads: Option<Duration>,
    pub addr: SocketAddr,
    pub test: Option<Arc<TestProbe>>,
    /// The totals `health`, `stats` and `categories` answer from.
    pub counts: Arc<Counts>,
    /// `--log-key`: signs the transparency log's checkpoints.
    pub log_key: Option<Arc<crate::tlog::LogKey>>,
    docs: Arc<DocCache>,
    rendered: Arc<RenderCache>,
    archives: Arc<ArchiveCache>,
}

/// Rendered `packages/{name}` answers, reused while the document (the same
/// [`Arc`] from [`DocCache`]), the host it was addressed as, and the
/// download count are unchanged: the hot path of resolution becomes a
/// `stat` and a lookup.
#[derive(Debug, Default)]
struct RenderCache {
    map: std::sync::RwLock<std::collections::HashMap<String, Arc<Rendered>>>,
}

#[derive(Debug)]
struct Rendered {
    doc: Arc<PackageDocument>,
    base: String,
    count: u64,
    etag: String,
    body: Bytes,
}

/// Parsed package documents, so a request that finds a document unchanged
/// neither parses nor renders it again (rendered answers are keyed by the
/// same [`Arc`]). An entry is reused while the document's identity is
/// unchanged:
///
/// - for storages with local files, the file's (inode, size, modification
///   time): every write replaces the file by rename, so a publish by this
///   server, by another server on the same folder, or by `fm publish` to the
///   folder is seen on the next request;
/// - for other storages (buckets), the storage's [`Tag`] of the document,
///   which the storage revalidates with the store on every read (a
///   conditional GET). With a freshness window (`--storage-cache-ttl`), an
///   entry checked less than `ttl` ago is served without asking the store:
///   a write through another replica is seen within `ttl`; a write through
///   this server drops the entry, so it is seen at once here. A listing
///   that carries tags (an object store's `LIST`) vouches for an entry
///   with the same tag, so [`all_documents`] reads only changed documents.
#[derive(Debug, Default)]
struct DocCache {
    map: std::sync::RwLock<std::collections::HashMap<String, (Stamp, Arc<PackageDocument>)>>,
    /// Bumped by every write through this server: a read that started
    /// before a write does not store what it read.
    generation: AtomicU64,
    ttl: Duration,
}

#[derive(Debug, Clone)]
enum Stamp {
    File(FileStamp),
    /// The storage's tag, and when the store was last asked about it.
    Tag(Tag, Instant),
}

impl DocCache {
    fn get(&self, name: &str) -> Option<(Stamp, Arc<PackageDocument>)> {
        self.map.read().ok().and_then(|m| m.get(name).cloned())
    }

    /// Stores `doc` unless a write went through this server since
    /// `generation` was read.
    fn put(&self, name: &str, generation: u64, stamp: Stamp, doc: &Arc<PackageDocument>) {
        if let Ok(mut map) = self.map.write()
            && self.generation.load(Ordering::SeqCst) == generation
        {
            map.insert(name.to_owned(), (stamp, doc.clone()));
        }
    }

    /// After a write to `name` through this server.
    fn forget(&self, name: &str) {
        if let Ok(mut map) = self.map.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            map.remove(name);
        }
    }
}

/// Archives of listed versions, by SHA-256, for storages without local
/// files: published bytes never change, and the document (revalidated as
/// above) decides which versions are listed, so a hit needs no store
/// request. Bytes are checked against the digest before they are kept.
/// Bounded to [`ARCHIVE_CACHE_BYTES`], oldest entries evicted first.
#[derive(Debug, Default)]
struct ArchiveCache {
    inner: std::sync::Mutex<ArchiveEntries>,
}

#[derive(Debug, Default)]
struct ArchiveEntries {
    bytes: usize,
    map: std::collections::HashMap<String, Bytes>,
    order: std::collections::VecDeque<String>,
}

/// Memory kept for archives a server ([`ArchiveCache`]).
const ARCHIVE_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Larger archives are always read from the store.
const ARCHIVE_CACHE_MAX_ONE: usize = 8 * 1024 * 1024;

impl ArchiveCache {
    fn get(&self, checksum: &str) -> Option<Bytes> {
        self.inner.lock().ok().and_then(|c| c.map.get(checksum).cloned())
    }

    fn put(&self, checksum: &str, bytes: &Bytes) {
        if bytes.len() > ARCHIVE_CACHE_MAX_ONE {
            return;
        }
        let Ok(mut c) = self.inner.lock() else { return };
        if c.map.contains_key(checksum) {
            return;
        }
        while c.bytes + bytes.len() > ARCHIVE_CACHE_BYTES {
            let Some(old) = c.order.pop_front() else { break };
            if let Some(b) = c.map.remove(&old) {
                c.bytes -= b.len();
            }
        }
        c.bytes += bytes.len();
        c.order.push_back(checksum.to_owned());
        c.map.insert(checksum.to_owned(), bytes.clone());
    }
}

type FileStamp = (u64, u64, Option<std::time::SystemTime>);

fn file_stamp(meta: &std::fs::Metadata) -> FileStamp {
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let ino = 0;
    (ino, meta.len(), meta.modified().ok())
}

/// Test-only request accounting (see [`super::TEST_DELAY_ENV`]).
#[derive(Debug, Default)]
pub struct TestProbe {
    pub delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: AtomicU64,
}

impl AppState {
    pub fn new(config: &ServerConfig, addr: SocketAddr) -> AppState {
        AppState {
            storage: config.storage.clone(),
            tokens: Arc::new(config.tokens.clone()),
            require_auth: config.require_auth,
            limits: config.limits,
            downloads: Arc::new(Downloads::load(config.storage.as_ref(), &config.replica_id)),
            redirect_downloads: config.redirect_downloads,
            log_key: config.log_key.clone(),
            addr,
            test: config.test_delay.map(|delay| {
                Arc::new(TestProbe {
                    delay,
                    ..TestProbe::default()
                })
            }),
            docs: Arc::new(DocCache {
                ttl: config.storage_cache_ttl,
                ..DocCache::default()
            }),
            rendered: Arc::default(),
            archives: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// Recomputes [`counts`](Self::counts) from every stored document
    /// (at start, then periodically: see [`super::counts`]).
    pub fn refresh_counts(&self) -> Result<(), ApiError> {
        self.counts.begin_refresh();
        match all_documents(self) {
            Ok(docs) => {
                self.counts.finish_refresh(docs.iter().map(|d| d.as_ref()));
                Ok(())
            }
            Err(e) => {
                self.counts.abandon_refresh();
                Err(e)
            }
        }
    }
}

/// One route of the API under `/api/v1/registry`: the table both the
/// router and the auth check are built from, so no route can be public by
/// accident of its spelling.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// The axum path template, relative to `/api/v1/registry`.
    pub path: &'static str,
    /// The methods it answers (besides `HEAD` for `GET`).
    pub methods: &'static [&'static str],
    /// Answered without a token under `--require-auth`.
    pub public: bool,
}

/// The API's prefix.
pub const API_PREFIX: &str = "/api/v1/registry";

/// Every route. Public under `--require-auth`: `health` only (for load
/// balancers and FlowMason's `registry add` probe). Writes check their
/// token in the handler whatever this says.
pub const ROUTES: &[RouteSpec] = &[
    route("/health", &["GET"], true),
    route("/packages/search", &["GET"], false),
    route("/packages/upload", &["POST"], false),
    route("/packages/{name}", &["GET"], false),
    route("/packages/{name}/versions", &["GET"], false),
    route("/packages/{name}/{version}", &["GET", "DELETE"], false),
    route("/packages/{name}/{version}/download", &["GET"], false),
    route("/packages/{name}/{version}/yank", &["PUT", "DELETE"], false),
    route("/categories", &["GET"], false),
    route("/stats", &["GET"], false),
    route("/log/{*path}", &["GET"], false),
    route(TEST_STATS_ROUTE, &["GET"], false),
];

const TEST_STATS_ROUTE: &str = "/_test/stats";

const fn route(path: &'static str, methods: &'static [&'static str], public: bool) -> RouteSpec {
    RouteSpec { path, methods, public }
}

/// The handlers of `path` (one of [`ROUTES`]).
fn handlers(path: &str, config: &ServerConfig) -> MethodRouter<AppState> {
    match path {
        "/health" => get(health),
        "/packages/search" => get(search),
        "/packages/upload" => {
            let max = config.max_upload_bytes;
            post(upload)
                .layer(DefaultBodyLimit::max(max))
                .layer(axum::middleware::from_fn(
                    move |req: Request, next: axum::middleware::Next| refuse_declared_oversize(req, next, max),
                ))
        }
        "/packages/{name}" => get(package),
        "/packages/{name}/versions" => get(versions),
        "/packages/{name}/{version}" => get(package_version).delete(yank),
        "/packages/{name}/{version}/download" => get(download),
        "/packages/{name}/{version}/yank" => put(yank).delete(unyank),
        "/categories" => get(categories),
        "/stats" => get(stats),
        "/log/{*path}" => get(super::log::log_file),
        TEST_STATS_ROUTE => get(test_stats),
        // Unreachable for the table above; answers 405 rather than panic.
        _ => delete(method_not_allowed).get(method_not_allowed),
    }
}

/// Whether the request matched a public route (see [`ROUTES`]). A request
/// that matched none is not public.
fn is_public(req: &Request) -> bool {
    matched_route(req).is_some_and(|r| r.public)
}

fn matched_route(req: &Request) -> Option<&'static RouteSpec> {
    let matched = req.extensions().get::<MatchedPath>()?.as_str();
    let rel = matched.strip_prefix(API_PREFIX)?;
    ROUTES.iter().find(|r| r.path == rel)
}

/// All routes, with auth, logging and the test probe.
pub fn router(state: AppState, config: &ServerConfig) -> Router {
    let mut api = Router::new();
    for r in ROUTES {
        api = api.route(r.path, handlers(r.path, config));
    }
    // `layer`, not `route_layer`: the auth check also guards the nested
    // fallback, so an unknown path says nothing without a token.
    let api = api
        .fallback(not_found_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), read_auth))
        .layer(middleware::from_fn_with_state(state.clone(), test_probe));
    let mut app = Router::new()
        .nest(API_PREFIX, api)
        .fallback(not_found_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    if config.log_requests {
        app = app.layer(middleware::from_fn(log_request));
    }
    app
}

// ---------------------------------------------------------------------------
// Errors

/// An error answer: `{"error":{"code","message"}}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message.to_string())
    }

    pub(super) fn log_not_found(path: &str) -> ApiError {
        ApiError::not_found(format!("no log file {path:?}"))
    }

    pub(super) fn log_internal(message: &dyn std::fmt::Display) -> ApiError {
        ApiError::internal(message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<PublishError> for ApiError {
    /// Messages name the package, never the server's storage path.
    fn from(e: PublishError) -> ApiError {
        match e {
            PublishError::Archive(e) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_package", e.to_string()),
            PublishError::Exists { name, version, .. } => ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("Package {name}@{version} already exists; published versions are immutable"),
            ),
            PublishError::BuildMetadataTwin {
                name,
                version,
                existing,
                ..
            } => ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!(
                    "Package {name}@{version} differs from the published {existing} only in build metadata; bump the version"
                ),
            ),
            PublishError::Checksum { expected, actual, .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "checksum_mismatch",
                format!("checksum verification failed: expected {expected}, the upload's SHA-256 is {actual}"),
            ),
            PublishError::NotFound { name, version, .. } => {
                ApiError::not_found(format!("Package '{name}@{version}' not found"))
            }
            e @ PublishError::Log(
                crate::tlog::TlogError::KeyRequired { .. }
                | crate::tlog::TlogError::WrongKey { .. }
                | crate::tlog::TlogError::Unlogged { .. },
            ) => {
                eprintln!("error: {e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "log_unavailable",
                    "this registry keeps a transparency log and this server cannot sign it: nothing was published",
                )
            }
            e @ (PublishError::Corrupt { .. } | PublishError::Io { .. } | PublishError::Log(_)) => {
                eprintln!("error: {e}");
                ApiError::internal("the registry's storage failed; see the server's log")
            }
        }
    }
}

type ApiResult<T = Response> = Result<T, ApiError>;

async fn not_found_route() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

// ---------------------------------------------------------------------------
// Middleware

async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // The path and query only: tokens travel in headers, never logged.
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    eprintln!(
        "{peer} {method} {target} {} {:.1}ms",
        resp.status().as_u16(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    resp
}

/// `--require-auth`: every read needs a token too, but for the routes
/// [`ROUTES`] marks public. Decided by the route axum matched, never by
/// the path's text (`packages/health` is a package, not the health check).
async fn read_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.require_auth
        && !is_public(&req)
        && let Err(e) = authorize(&state, req.headers(), "read from this registry")
    {
        return e.into_response();
    }
    next.run(req).await
}

async fn test_probe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(probe) = state.test.clone() else {
        return next.run(req).await;
    };
    if matched_route(&req).is_some_and(|r| r.path == TEST_STATS_ROUTE) {
        return next.run(req).await;
    }
    let now = probe.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    probe.max_in_flight.fetch_max(now, Ordering::SeqCst);
    probe.requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(probe.delay).await;
    let resp = next.run(req).await;
    probe.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp
}

async fn test_stats(State(state): State<AppState>) -> ApiResult {
    let probe = state.test.ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    Ok(Json(json!({
        "requests": probe.requests.load(Ordering::SeqCst),
        "max_in_flight": probe.max_in_flight.load(Ordering::SeqCst),
        "in_flight": probe.in_flight.load(Ordering::SeqCst),
    }))
    .into_response())
}

fn authorize(state: &AppState, headers: &HeaderMap, what: &str) -> Result<(), ApiError> {
    match state.tokens.check(headers) {
        Access::Granted => Ok(()),
        Access::Missing => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("a token is required to {what}: send `Authorization: Bearer <token>`"),
        )),
        Access::Refused if state.tokens.is_empty() => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this server has no publish tokens configured, so nobody may {what}"),
        )),
        Access::Refused => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the token presented may not {what}"),
        )),
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// `http://host` as the client addressed us (Host header), for absolute
/// download URLs.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c)))
        .map_or_else(|| state.addr.to_string(), str::to_owned);
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

fn download_url(base: &str, name: &str, version: &str) -> String {
    format!("{base}/api/v1/registry/packages/{name}/{version}/download")
}

/// The stored document of `name`, or `None` (also for invalid names); from
/// [`DocCache`] when it is unchanged, or within the freshness window.
fn load(state: &AppState, name: &str) -> ApiResult<Option<Arc<PackageDocument>>> {
    load_doc(state, name, true, None)
}

/// [`load`]; `may_be_stale: false` asks the store even within the
/// freshness window (before a write). `listed`: the tag a listing reported
/// for the document just now; when it is the cached copy's, the store need
/// not be asked.
fn load_doc(
    state: &AppState,
    name: &str,
    may_be_stale: bool,
    listed: Option<&Tag>,
) -> ApiResult<Option<Arc<PackageDocument>>> {
    if crate::names::validate(name).is_err() {
        return Ok(None);
    }
    let key = crate::registry::document::index_key(name);
    let generation = state.docs.generation.load(Ordering::SeqCst);
    let cached = state.docs.get(name);
    let stamp = match state.storage.local_path(&key).map(std::fs::metadata) {
        Some(Ok(meta)) => {
            let stamp = file_stamp(&meta);
            if let Some((Stamp::File(s), doc)) = &cached
                && *s == stamp
            {
                return Ok(Some(doc.clone()));
            }
            Some(stamp)
        }
        Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Some(Err(e)) => return Err(ApiError::internal(e)),
        None => {
            if let Some((Stamp::Tag(tag, checked), doc)) = &cached
                && ((may_be_stale && checked.elapsed() < state.docs.ttl) || listed == Some(tag))
            {
                return Ok(Some(doc.clone()));
            }
            None
        }
    };
    // Taken before the store is asked: the window counts from here.
    let asked = Instant::now();
    let storage = state.storage.as_ref();
    let Some((bytes, tag)) = storage.read(&key).map_err(|source| PublishError::Io {
        registry: storage.describe(),
        source,
    })?
    else {
        if let Ok(mut map) = state.docs.map.write() {
            map.remove(name);
        }
        return Ok(None);
    };
    let doc = match cached {
        // Same tag: the same bytes, already parsed.
        Some((Stamp::Tag(t, _), doc)) if stamp.is_none() && t == tag => doc,
        _ => Arc::new(publish::parse_document(storage, name, &bytes)?),
    };
    if doc.info.name != name {
        return Ok(None);
    }
    // A file stamp was taken before the read: if the file changed in
    // between, the next request sees a different stamp and re-reads.
    let stamp = stamp.map_or(Stamp::Tag(tag, asked), Stamp::File);
    state.docs.put(name, generation, stamp, &doc);
    Ok(Some(doc))
}

fn load_or_404(state: &AppState, name: &str) -> ApiResult<Arc<PackageDocument>> {
    load(state, name)?.ok_or_else(|| ApiError::not_found(format!("Package '{name}' not found")))
}

/// Every stored document (one per package), sorted by name. One listing,
/// then only the documents that changed since this replica last parsed
/// them are read; from an object store, where each read is a round trip,
/// by [`REMOTE_READS`] threads at once.
fn all_documents(state: &AppState) -> ApiResult<Vec<Arc<PackageDocument>>> {
    let keys = state.storage.list_tagged("index/").map_err(ApiError::internal)?;
    let load_all = |part: &[(String, Option<String>)]| -> ApiResult<Vec<Arc<PackageDocument>>> {
        let mut docs = Vec::with_capacity(part.len());
        for (key, tag) in part {
            if let Some(name) = key.strip_prefix("index/").and_then(|k| k.strip_suffix(".json"))
                && let Some(doc) = load_doc(state, name, true, tag.as_ref())?
            {
                docs.push(doc);
            }
        }
        Ok(docs)
    };
    let remote = keys.first().is_some_and(|(k, _)| state.storage.local_path(k).is_none());
    if !remote || keys.len() < 2 {
        return load_all(&keys);
    }
    let chunk = keys.len().div_ceil(REMOTE_READS);
    std::thread::scope(|scope| {
        let parts: Vec<_> = keys
            .chunks(chunk)
            .map(|part| scope.spawn(move || load_all(part)))
            .collect();
        let mut docs = Vec::with_capacity(keys.len());
        for part in parts {
            let part = part
                .join()
                .unwrap_or_else(|_| Err(ApiError::internal("a document reader panicked")))?;
            docs.extend(part);
        }
        Ok(docs)
    })
}

/// Documents read from an object store at once by [`all_documents`].
const REMOTE_READS: usize = 16;

/// A document's [`PackageInfo`] as served: absolute URL, live counts.
fn served_info(state: &AppState, base: &str, mut info: PackageInfo) -> PackageInfo {
    info.download_url = download_url(base, &info.name, &info.version);
    info.downloads = state.downloads.get(&info.name);
    info
}

/// Renders a document and its weak ETag. The tag covers everything but
/// the live `downloads` count (it hashes the body rendered with the count
/// zeroed), so a client's cached copy stays valid while only the count
/// moves: weak validators mean "semantically equivalent", which that is.
fn render<T: serde::Serialize>(
    value: &mut T,
    downloads: impl Fn(&mut T) -> &mut u64,
    count: u64,
) -> ApiResult<(String, Bytes)> {
    *downloads(value) = 0;
    let stable = serde_json::to_vec(&*value).map_err(ApiError::internal)?;
    let etag = format!("W/\"{}\"", &crate::fsutil::sha256_hex(&stable)[..32]);
    let body = if count == 0 {
        stable
    } else {
        *downloads(value) = count;
        serde_json::to_vec(&*value).map_err(ApiError::internal)?
    };
    Ok((etag, Bytes::from(body)))
}

/// A JSON answer with its ETag, or `304` when the client has it.
fn respond(headers: &HeaderMap, etag: &str, body: Bytes) -> Response {
    let mut r = if if_none_match(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Whether `If-None-Match` lists `etag` or `*` (weak comparison, as
/// RFC 9110 prescribes for `If-None-Match`).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let etag = etag.trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

// ---------------------------------------------------------------------------
// Reads

/// O(1): from the kept [`Counts`], never from the documents.
async fn health(State(state): State<AppState>) -> ApiResult {
    let (packages, components) = state.counts.summary();
    Ok(Json(json!({
        "status": "healthy",
        "registry_name": "fm registry",
        "version": env!("CARGO_PKG_VERSION"),
        "packages_count": packages,
        "components_count": components,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct SearchParams {
    #[serde(default)]
    q: String,
    category: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
}

fn bounded(value: Option<&str>, name: &str, default: usize, max: usize) -> ApiResult<usize> {
    let Some(v) = value else { return Ok(default) };
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ if max == usize::MAX => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            format!("{name} must be a positive integer, got {v:?}"),
        )),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            format!("{name} must be an integer from 1 to {max}, got {v:?}"),
        )),
    }
}

async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(p) =
        query.map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", e.body_text()))?;
    let page = bounded(p.page.as_deref(), "page", 1, usize::MAX)?;
    let page_size = bounded(p.page_size.as_deref(), "page_size", 20, 100)?;
    let needle = p.q.to_lowercase();
    let category = p.category.filter(|c| !c.is_empty());
    let base = base_url(&state, &headers);
    let matching: Vec<PackageInfo> = all_documents(&state)?
        .into_iter()
        .map(|d| d.info.clone())
        .filter(|i| category.is_none() || i.category == category)
        .filter(|i| {
            needle.is_empty()
                || format!("{} {} {}", i.name, i.description, i.tags.join(" "))
                    .to_lowercase()
                    .contains(&needle)
        })
        .collect();
    let total = matching.len();
    let packages: Vec<PackageInfo> = matching
        .into_iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|i| served_info(&state, &base, i))
        .collect();
    Ok(Json(json!({
        "packages": packages,
        "total_count": total,
        "page": page,
        "page_size": page_size,
        "query": p.q,
    }))
    .into_response())
}

async fn package(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> ApiResult {
    /// The stored document with its served PackageInfo, without copying
    /// the version list.
    #[derive(serde::Serialize)]
    struct Served<'a> {
        #[serde(flatten)]
        info: PackageInfo,
        #[serde(skip_serializing_if = "Option::is_none")]
        versions: Option<&'a Vec<crate::registry::VersionRecord>>,
    }
    let doc = load_or_404(&state, &name)?;
    let base = base_url(&state, &headers);
    let count = state.downloads.get(&name);
    if let Ok(map) = state.rendered.map.read()
        && let Some(r) = map.get(&name)
        && Arc::ptr_eq(&r.doc, &doc)
        && r.base == base
        && r.count == count
    {
        return Ok(respond(&headers, &r.etag, r.body.clone()));
    }
    let mut served = Served {
        info: served_info(&state, &base, doc.info.clone()),
        versions: doc.versions.as_ref(),
    };
    let (etag, body) = render(&mut served, |s| &mut s.info.downloads, count)?;
    let resp = respond(&headers, &etag, body.clone());
    if let Ok(mut map) = state.rendered.map.write() {
        map.insert(
            name,
            Arc::new(Rendered {
                doc,
                base,
                count,
                etag,
                body,
            }),
        );
    }
    Ok(resp)
}

async fn versions(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult {
    let doc = load_or_404(&state, &name)?;
    let versions: Vec<&str> = doc.versions_newest_first().iter().map(|r| r.version.as_str()).collect();
    Ok(Json(json!({
        "name": doc.info.name,
        "versions": versions,
        "latest": doc.latest().map(|r| r.version.clone()),
    }))
    .into_response())
}

fn version_info(state: &AppState, name: &str, version: &str, base: &str) -> ApiResult<PackageInfo> {
    let doc = load_or_404(state, name)?;
    let record = doc
        .version(version)
        .ok_or_else(|| ApiError::not_found(format!("Package '{name}@{version}' not found")))?;
    Ok(served_info(state, base, doc.info_for(record)))
}

async fn package_version(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    let base = base_url(&state, &headers);
    let mut info = version_info(&state, &name, &version, &base)?;
    let count = info.downloads;
    let (etag, body) = render(&mut info, |i| &mut i.downloads, count)?;
    Ok(respond(&headers, &etag, body))
}

/// `GET packages/{n}/{v}/download`: the archive, streamed from disk when
/// the storage has local files. Only versions the document lists are
/// served (an archive left by an interrupted publish is not published), and
/// the document's digest is the ETag, so nothing is hashed per download.
///
/// With `--redirect-downloads` the answer is instead `307` to a pre-signed
/// URL of the archive in the bucket: the download is counted here, the
/// bytes go from the store to the client, and the client checks them
/// against the digest as always. The redirect expires, so it is never
/// cached (`no-store`); the bytes behind it still are, by the client.
async fn download(
    State(state): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    // A `HEAD` (axum answers it with this handler, body dropped) asks
    // about the archive; it is not a download.
    let counted = method != axum::http::Method::HEAD;
    let not_found = || ApiError::not_found(format!("Package '{name}@{version}' not found"));
    let doc = load(&state, &name)?.ok_or_else(not_found)?;
    let record = doc.version(&version).ok_or_else(not_found)?;
    let etag = format!("\"{}\"", record.checksum);
    let key = archive_key(&name, &version);
    let redirect = match state.redirect_downloads {
        Some(expires) if !if_none_match(&headers, &etag) => state
            .storage
            .presign_get(&key, expires)
            .map_err(|e| ApiError::internal(format!("cannot sign a download URL for {name}@{version}: {e}")))?,
        _ => None,
    };
    // Published bytes never change (yanking keeps them): cache forever.
    let mut cache_control = "public, max-age=31536000, immutable";
    let mut resp = if let Some(location) = redirect {
        if counted {
            state.downloads.record(&name);
        }
        cache_control = "no-store";
        let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
        let location = HeaderValue::from_str(location.as_str()).map_err(ApiError::internal)?;
        r.headers_mut().insert(header::LOCATION, location);
        r
    } else if if_none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (body, len) = archive_body(&state, &key, &record.checksum)
            .await?
            .ok_or_else(not_found)?;
        if counted {
            state.downloads.record(&name);
        }
        let mut r = body.into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}-{version}.fmpkg\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    Ok(resp)
}

/// The archive at `key` (whose SHA-256 is `checksum`) as a body and its
/// length, or `None`: streamed from a local file, else from
/// [`ArchiveCache`] or the store.
async fn archive_body(state: &AppState, key: &str, checksum: &str) -> ApiResult<Option<(Body, u64)>> {
    use tokio::io::AsyncReadExt;
    if let Some(path) = state.storage.local_path(key) {
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ApiError::internal(e)),
        };
        let len = file.metadata().await.map_err(ApiError::internal)?.len();
        let chunks = futures_util::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(file)))
                }
                // Ends the stream after the error: the client sees a
                // truncated body, which its digest check catches.
                Err(e) => Some((Err::<Bytes, _>(e), None)),
            }
        });
        return Ok(Some((Body::from_stream(chunks), len)));
    }
    if let Some(bytes) = state.archives.get(checksum) {
        let len = bytes.len() as u64;
        return Ok(Some((Body::from(bytes), len)));
    }
    let storage = state.storage.clone();
    let key = key.to_owned();
    match tokio::task::spawn_blocking(move || storage.read(&key)).await {
        Ok(Ok(Some((bytes, _)))) => {
            let bytes = Bytes::from(bytes);
            // Kept only when they are what the document lists (an archive
            // replaced in the bucket behind the registry's back is served,
            // as before, but never cached).
            if crate::fsutil::sha256_hex(&bytes) == checksum {
                state.archives.put(checksum, &bytes);
            }
            let len = bytes.len() as u64;
            Ok(Some((Body::from(bytes), len)))
        }
        Ok(Ok(None)) => Ok(None),
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// From the kept [`Counts`]: O(categories).
async fn categories(State(state): State<AppState>) -> ApiResult {
    let cats: Vec<String> = state.counts.totals().categories.into_keys().collect();
    Ok(Json(cats).into_response())
}

/// From the kept [`Counts`]: O(categories).
async fn stats(State(state): State<AppState>) -> ApiResult {
    let t = state.counts.totals();
    Ok(Json(json!({
        "packages_count": t.packages,
        "versions_count": t.versions,
        "components_count": t.components,
        "total_size_bytes": t.size_bytes,
        "downloads": state.downloads.total(),
        "categories": t.categories,
    }))
    .into_response())
}

// ---------------------------------------------------------------------------
// Writes

/// Package names that collide with routes under `packages/`.
const RESERVED_NAMES: &[&str] = &["search", "upload"];

/// `POST packages/upload`: multipart `file` (+ optional `checksum`, which
/// FlowMason's client sends first), or a raw `application/octet-stream`
/// body (checksum in `X-Checksum-Sha256`).
async fn upload(State(state): State<AppState>, req: Request) -> ApiResult {
    authorize(&state, req.headers(), "publish")?;
    let base = base_url(&state, req.headers());
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let (bytes, checksum) = if is_multipart {
        read_multipart(
            Multipart::from_request(req, &())
                .await
                .map_err(|e| body_error(e.status(), e.body_text()))?,
        )
        .await?
    } else {
        let checksum = req
            .headers()
            .get("x-checksum-sha256")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = Bytes::from_request(req, &())
            .await
            .map_err(|e| body_error(e.status(), e.body_text()))?;
        (bytes, checksum)
    };
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_package",
            "the upload is empty: send the archive as multipart field `file` or as the request body",
        ));
    }
    // `packages/search` and `packages/upload` are routes: a package of that
    // name could never be fetched.
    if let Ok(m) = crate::archive::read_manifest(&bytes)
        && RESERVED_NAMES.contains(&m.raw.name.as_str())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "reserved_name",
            format!("the package name {:?} is reserved by the registry API", m.raw.name),
        ));
    }
    let storage = state.storage.clone();
    let limits = state.limits;
    let log_key = state.log_key.clone();
    let published = tokio::task::spawn_blocking(move || {
        publish::publish(
            storage.as_ref(),
            &bytes,
            checksum.as_deref().filter(|c| !c.is_empty()),
            &limits,
            log_key.as_deref(),
        )
    })
    .await
    .map_err(ApiError::internal)??;
    // Seen at once through this server, whatever the freshness window.
    state.docs.forget(&published.document.info.name);
    state
        .counts
        .set(&published.document.info.name, Some(&published.document));
    let info = served_info(&state, &base, published.document.info_for(&published.record));
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// Answers 413 to an upload whose `Content-Length` already exceeds `max`,
/// before reading any of its body, and closes the connection. Reading a
/// body only to refuse it costs the bandwidth, and a client still writing
/// when the answer comes may see a reset instead of the reason.
async fn refuse_declared_oversize(req: Request, next: axum::middleware::Next, max: usize) -> axum::response::Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > max as u64 => {
            let mut answer = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the upload is too large: {n} bytes, this server accepts at most {max} (--max-upload-mb)"),
            )
            .into_response();
            answer
                .headers_mut()
                .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            answer
        }
        _ => next.run(req).await,
    }
}

fn body_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "too_large", format!("the upload is too large: {text}"))
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", text)
    }
}

async fn read_multipart(mut mp: Multipart) -> ApiResult<(Bytes, Option<String>)> {
    let (mut file, mut checksum) = (None, None);
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(body_error(e.status(), e.body_text())),
        };
        match field.name() {
            Some("file") => file = Some(field.bytes().await.map_err(|e| body_error(e.status(), e.body_text()))?),
            Some("checksum") => checksum = Some(field.text().await.map_err(|e| body_error(e.status(), e.body_text()))?),
            _ => {}
        }
    }
    let file = file.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_file",
            "the multipart upload has no `file` field",
        )
    })?;
    Ok((file, checksum))
}

async fn set_yanked(state: AppState, headers: HeaderMap, name: String, version: String, yanked: bool) -> ApiResult {
    authorize(&state, &headers, if yanked { "yank" } else { "un-yank" })?;
    if load_doc(&state, &name, false, None)?.is_none() {
        return Err(ApiError::not_found(format!("Package '{name}@{version}' not found")));
    }
    let storage = state.storage.clone();
    let (n, v, key) = (name.clone(), version.clone(), state.log_key.clone());
    let done =
        tokio::task::spawn_blocking(move || publish::set_yanked(storage.as_ref(), &n, &v, yanked, key.as_deref()))
            .await;
    // Seen at once through this server, whatever the freshness window.
    state.docs.forget(&name);
    let doc = done.map_err(ApiError::internal)??;
    state.counts.set(&name, Some(&doc));
    let verb = if yanked { "yanked" } else { "un-yanked" };
    Ok(Json(json!({
        "message": format!("Package {name}@{version} {verb}"),
        "success": true,
        "name": name,
        "version": version,
        "yanked": yanked,
    }))
    .into_response())
}

/// `DELETE packages/{n}/{v}` and `PUT packages/{n}/{v}/yank`.
async fn yank(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    set_yanked(state, headers, name, version, true).await
}

/// `DELETE packages/{n}/{v}/yank`.
async fn unyank(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    set_yanked(state, headers, name, version, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::document::{PackageInfo, index_key};
    use crate::registry::object::ObjectStorage;
    use crate::registry::storage::Tag;

    /// An object store that counts reads.
    #[derive(Debug)]
    struct Counting {
        inner: ObjectStorage,
        reads: AtomicUsize,
    }

    impl Storage for Counting {
        fn read(&self, key: &str) -> std::io::Result<Option<(Vec<u8>, Tag)>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.read(key)
        }
        fn create(&self, key: &str, bytes: &[u8]) -> std::io::Result<bool> {
            self.inner.create(key, bytes)
        }
        fn swap(&self, key: &str, expected: Option<&Tag>, bytes: &[u8]) -> std::io::Result<bool> {
            self.inner.swap(key, expected, bytes)
        }
        fn list(&self, prefix: &str) -> std::io::Result<Vec<String>> {
            self.inner.list(prefix)
        }
        fn list_tagged(&self, prefix: &str) -> std::io::Result<Vec<(String, Option<Tag>)>> {
            self.inner.list_tagged(prefix)
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
    }

    fn document(name: &str, description: &str) -> Vec<u8> {
        let doc = PackageDocument {
            info: PackageInfo {
                name: name.to_owned(),
                version: "1.0.0".to_owned(),
                description: description.to_owned(),
                ..PackageInfo::default()
            },
            versions: Some(Vec::new()),
        };
        serde_json::to_vec(&doc).expect("json")
    }

    #[test]
    fn listing_tags_spare_the_reads_of_unchanged_documents() {
        let store = Arc::new(object_store::memory::InMemory::new());
        let storage = Arc::new(Counting {
            inner: ObjectStorage::with_store(store, "reg", "memory://reg".into()),
            reads: AtomicUsize::new(0),
        });
        for i in 0..40 {
            let name = format!("pkg{i:02}");
            assert!(
                storage
                    .create(&index_key(&name), &document(&name, "first"))
                    .expect("create")
            );
        }
        let config = ServerConfig::new(storage.clone(), "127.0.0.1:0");
        let state = AppState::new(&config, "127.0.0.1:0".parse().expect("addr"));
        let reads = || storage.reads.swap(0, Ordering::SeqCst);
        reads();

        let docs = all_documents(&state).expect("first listing");
        assert_eq!(docs.len(), 40);
        assert_eq!(docs[7].info.name, "pkg07", "sorted by name");
        assert_eq!(reads(), 40, "every document read once");
        assert_eq!(all_documents(&state).expect("again").len(), 40);
        assert_eq!(reads(), 0, "nothing changed: the listing is enough");

        // Another replica changes one document: only that one is read.
        let (_, tag) = storage.read(&index_key("pkg13")).expect("read").expect("present");
        assert!(
            storage
                .swap(&index_key("pkg13"), Some(&tag), &document("pkg13", "second"))
                .expect("swap")
        );
        reads();
        let docs = all_documents(&state).expect("after a change");
        assert_eq!(reads(), 1);
        assert_eq!(docs[13].info.description, "second");
    }
}
