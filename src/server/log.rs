//! `GET /api/v1/registry/log/{path}`: the transparency log's public files
//! (`checkpoint`, `key`, `tile/...`, see [`crate::tlog::layout`]) straight
//! from storage. Only paths of the layout are answered (anything else, the
//! writers' `seq/` objects included, is 404), so no path can leave `log/`.
//! Tiles are immutable once written: cached for a year; the checkpoint
//! moves: `no-cache`. Reads follow the same auth rule as every other read.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ServerConfig;
use super::error::ApiError;
use super::state::AppState;
use crate::tlog::layout;

pub async fn log_file(State(state): State<AppState>, Path(path): Path<String>) -> Result<Response, ApiError> {
    if !layout::is_public_path(&path) {
        return Err(ApiError::log_not_found(&path));
    }
    let storage = state.storage.clone();
    let key = format!("{}{path}", layout::PREFIX);
    let read = tokio::task::spawn_blocking(move || storage.read(&key))
        .await
        .map_err(|e| ApiError::log_internal(&e))?;
    let bytes = match read {
        Ok(Some((bytes, _))) => bytes,
        Ok(None) => return Err(ApiError::log_not_found(&path)),
        Err(e) => {
            eprintln!("error: reading log/{path}: {e}");
            return Err(ApiError::log_internal(
                &"the registry's storage failed; see the server's log",
            ));
        }
    };
    let cache = if path == layout::CHECKPOINT {
        "no-cache"
    } else {
        "public, max-age=31536000, immutable"
    };
    let kind = if path.starts_with("tile/") {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    Ok(r)
}

/// At start, with a key: complete whatever a killed writer left (seq
/// objects past the checkpoint). Errors are reported, not fatal: reads
/// still work, and a publish reports the same error to its client.
pub async fn start(config: &ServerConfig) {
    let Some(key) = config.log_key.clone() else {
        return;
    };
    let storage = config.storage.clone();
    let done = tokio::task::spawn_blocking(move || {
        crate::tlog::Appender::for_storage(storage.as_ref(), Some(&key))?
            .map(|a| a.catch_up())
            .transpose()
    })
    .await;
    match done {
        Ok(Ok(Some(size))) => eprintln!("   Transparency log: {size} records"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => eprintln!("warning: transparency log: {e}"),
        Err(e) => eprintln!("warning: transparency log: {e}"),
    }
}
