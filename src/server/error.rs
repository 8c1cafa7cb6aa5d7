//! [`ApiError`]: every error answer, `{"error":{"code","message"}}` with
//! its status; storage failures are logged and answered without the
//! server's paths.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::registry::publish::PublishError;

/// An error answer: `{"error":{"code","message"}}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(super) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(super) fn internal(message: impl std::fmt::Display) -> ApiError {
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

pub(super) type ApiResult<T = Response> = Result<T, ApiError>;

pub(super) async fn not_found_route() -> ApiError {
    ApiError::not_found("no such endpoint")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}
