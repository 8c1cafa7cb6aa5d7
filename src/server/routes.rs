//! The endpoints of SPEC §4 under `/api/v1/registry/`.
//!
//! Answers keep FlowMason Studio's shapes field for field (see
//! `shared/flowmason/`), minus its defects: `download_url`s are absolute,
//! "latest" is the newest by semver, `packages/{name}/versions` is reachable,
//! `category` filters, search returns one entry a package, downloads are
//! counted, writes need a token. Errors are `{"error":{"code","message"}}`.

//! [`ROUTES`] is the one table the router and the `--require-auth` check
//! are built from; the handlers live in [`super::reads`] and
//! [`super::writes`], the state they share in [`super::state`].

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};

use super::ServerConfig;
use super::auth::Access;
use super::error::{ApiError, method_not_allowed, not_found_route};
use super::reads::{categories, download, health, package, package_version, search, stats, versions};
use super::state::AppState;
use super::writes::{refuse_declared_oversize, unyank, upload, yank};

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
];

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

/// All routes, with auth and logging.
pub fn router(state: AppState, config: &ServerConfig) -> Router {
    let mut api = Router::new();
    for r in ROUTES {
        api = api.route(r.path, handlers(r.path, config));
    }
    let mut api = api
        .fallback(not_found_route)
        .method_not_allowed_fallback(method_not_allowed);
    // `layer`, not `route_layer`: the auth check also guards the nested
    // fallback, so an unknown path says nothing without a token. Without
    // `--require-auth` it would let everything through: not installed.
    if state.require_auth {
        api = api.layer(middleware::from_fn_with_state(state.clone(), read_auth));
    }
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
// Middleware

async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let resp = next.run(req).await;
    log_line(peer, &method, &uri, resp.status().as_u16(), start.elapsed());
    resp
}

/// One request's log line: peer, method, path and query (tokens travel in
/// headers, never logged), status, time.
pub(super) fn log_line(
    peer: impl Into<Option<SocketAddr>>,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    status: u16,
    took: std::time::Duration,
) {
    let peer = peer.into().map(|p| p.ip().to_string()).unwrap_or_default();
    let target = uri.path_and_query().map_or_else(|| uri.path(), |p| p.as_str());
    eprintln!("{peer} {method} {target} {status} {:.1}ms", took.as_secs_f64() * 1000.0);
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

pub(super) fn authorize(state: &AppState, headers: &HeaderMap, what: &str) -> Result<(), ApiError> {
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
