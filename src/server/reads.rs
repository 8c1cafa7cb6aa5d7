//! The read endpoints (`health`, `search`, `packages/...`, `download`,
//! `categories`, `stats`) and what they share: absolute URLs, rendering
//! with weak ETags, `If-None-Match`.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::cache::{Rendered, all_documents, load, load_or_404};
use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::registry::document::{PackageInfo, archive_key};

/// `http://host` as the client addressed us (Host header), for absolute
/// download URLs.
pub(super) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let scheme = scheme_of(headers);
    match host_of(headers) {
        Some(host) => format!("{scheme}://{host}"),
        None => format!("{scheme}://{}", state.addr),
    }
}

/// The Host header, when it is a plain host name or address (else the
/// server's own address is used).
pub(super) fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c)))
}

/// `https` when a proxy in front says so, else `http`.
pub(super) fn scheme_of(headers: &HeaderMap) -> &'static str {
    match headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
        Some("https") => "https",
        _ => "http",
    }
}

pub(super) fn download_url(base: &str, name: &str, version: &str) -> String {
    format!("{base}/api/v1/registry/packages/{name}/{version}/download")
}

/// A document's [`PackageInfo`] as served: absolute URL, live counts.
pub(super) fn served_info(state: &AppState, base: &str, mut info: PackageInfo) -> PackageInfo {
    info.download_url = download_url(base, &info.name, &info.version);
    info.downloads = state.downloads.get(&info.name);
    info
}

/// Renders a document and its weak ETag. The tag covers everything but
/// the live `downloads` count (it hashes the body rendered with the count
/// zeroed), so a client's cached copy stays valid while only the count
/// moves: weak validators mean "semantically equivalent", which that is.
pub(super) fn render<T: serde::Serialize>(
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
pub(super) fn respond(headers: &HeaderMap, etag: &str, body: Bytes) -> Response {
    respond_with(headers, etag, HeaderValue::from_str(etag).ok(), body)
}

/// [`respond`] for a kept answer: its ETag header is built already.
pub(super) fn respond_rendered(headers: &HeaderMap, r: &Rendered) -> Response {
    respond_with(headers, &r.etag, Some(r.etag_header.clone()), r.body.clone())
}

fn respond_with(headers: &HeaderMap, etag: &str, etag_header: Option<HeaderValue>, body: Bytes) -> Response {
    let mut r = if if_none_match(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Body::from(body).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    let h = r.headers_mut();
    if let Some(v) = etag_header {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Whether `If-None-Match` lists `etag` or `*` (weak comparison, as
/// RFC 9110 prescribes for `If-None-Match`).
pub(super) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let etag = etag.trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}
/// O(1): from the kept [`Counts`](super::counts::Counts), never from the documents.
pub(super) async fn health(State(state): State<AppState>) -> ApiResult {
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
pub(super) struct SearchParams {
    #[serde(default)]
    q: String,
    category: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
}

pub(super) fn bounded(value: Option<&str>, name: &str, default: usize, max: usize) -> ApiResult<usize> {
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

pub(super) async fn search(
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

pub(super) async fn package(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> ApiResult {
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
        return Ok(respond_rendered(&headers, r));
    }
    let mut served = Served {
        info: served_info(&state, &base, doc.info.clone()),
        versions: doc.versions.as_ref(),
    };
    let (etag, body) = render(&mut served, |s| &mut s.info.downloads, count)?;
    let etag_header = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    let rendered = Rendered {
        doc,
        base,
        count,
        etag,
        etag_header,
        body,
    };
    let resp = respond_rendered(&headers, &rendered);
    if let Ok(mut map) = state.rendered.map.write() {
        map.insert(name, Arc::new(rendered));
    }
    Ok(resp)
}

pub(super) async fn versions(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult {
    let doc = load_or_404(&state, &name)?;
    let versions: Vec<&str> = doc.versions_newest_first().iter().map(|r| r.version.as_str()).collect();
    Ok(Json(json!({
        "name": doc.info.name,
        "versions": versions,
        "latest": doc.latest().map(|r| r.version.clone()),
    }))
    .into_response())
}

pub(super) fn version_info(state: &AppState, name: &str, version: &str, base: &str) -> ApiResult<PackageInfo> {
    let doc = load_or_404(state, name)?;
    let record = doc
        .version(version)
        .ok_or_else(|| ApiError::not_found(format!("Package '{name}@{version}' not found")))?;
    Ok(served_info(state, base, doc.info_for(record)))
}

pub(super) async fn package_version(
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
pub(super) async fn download(
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
/// [`ArchiveCache`](super::cache::ArchiveCache) or the store.
pub(super) async fn archive_body(state: &AppState, key: &str, checksum: &str) -> ApiResult<Option<(Body, u64)>> {
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

/// From the kept [`Counts`](super::counts::Counts): O(categories).
pub(super) async fn categories(State(state): State<AppState>) -> ApiResult {
    let cats: Vec<String> = state.counts.totals().categories.into_keys().collect();
    Ok(Json(cats).into_response())
}

/// From the kept [`Counts`](super::counts::Counts): O(categories).
pub(super) async fn stats(State(state): State<AppState>) -> ApiResult {
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
