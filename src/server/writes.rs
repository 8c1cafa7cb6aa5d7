//! The write endpoints: `packages/upload` and yanking. Each checks its
//! token in the handler, publishes through [`crate::registry::publish`]
//! (the path `fm publish` takes), and drops the cached document so the
//! change is seen at once through this server.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::cache::load_doc;
use super::error::{ApiError, ApiResult};
use super::reads::{base_url, served_info};
use super::routes::authorize;
use super::state::AppState;
use crate::registry::publish;

/// Package names that collide with routes under `packages/`.
pub(super) const RESERVED_NAMES: &[&str] = &["search", "upload"];

/// `POST packages/upload`: multipart `file` (+ optional `checksum`, which
/// FlowMason's client sends first), or a raw `application/octet-stream`
/// body (checksum in `X-Checksum-Sha256`).
pub(super) async fn upload(State(state): State<AppState>, req: Request) -> ApiResult {
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
pub(super) async fn refuse_declared_oversize(
    req: Request,
    next: axum::middleware::Next,
    max: usize,
) -> axum::response::Response {
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

pub(super) fn body_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "too_large", format!("the upload is too large: {text}"))
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", text)
    }
}

pub(super) async fn read_multipart(mut mp: Multipart) -> ApiResult<(Bytes, Option<String>)> {
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

pub(super) async fn set_yanked(
    state: AppState,
    headers: HeaderMap,
    name: String,
    version: String,
    yanked: bool,
) -> ApiResult {
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
pub(super) async fn yank(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    set_yanked(state, headers, name, version, true).await
}

/// `DELETE packages/{n}/{v}/yank`.
pub(super) async fn unyank(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    set_yanked(state, headers, name, version, false).await
}
