//! The shortcut for the hottest read, `GET packages/{name}` (every
//! resolution asks it once a package): answered from the kept
//! [`Rendered`](super::cache::Rendered) answer before the request reaches
//! the axum router, its middlewares and extractors, which cost more CPU
//! than the answer itself.
//!
//! It answers only what the router would answer the same way, and hands
//! everything else to the router untouched (`None`):
//!
//! - `GET` with no body, on a path that is exactly
//!   `/api/v1/registry/packages/NAME` where `NAME` is a valid package name
//!   (so nothing percent-encoded, no further segment) and not a literal
//!   route of [`ROUTES`] (`packages/search`, `packages/upload`);
//! - auth as the matched route decides: [`ROUTES`]' entry for
//!   `/packages/{name}` says whether it is public; when it is not and
//!   `--require-auth` is on, only a request whose token is granted is
//!   answered here (a missing or refused token goes to the router, which
//!   refuses it);
//! - only a kept answer for the same document (the same [`Arc`]), the
//!   same download count and the same `scheme://host`; a miss goes to the
//!   router, which renders and keeps it;
//! - with request logging on, the same log line as the router's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request, Response};

use super::auth::Access;
use super::cache::load;
use super::reads::{host_of, respond_rendered, scheme_of};
use super::routes::{API_PREFIX, ROUTES};
use super::state::AppState;

/// The route the shortcut answers, as [`ROUTES`] spells it.
const ROUTE: &str = "/packages/{name}";

/// What the shortcut needs, built once with the router.
pub struct PackageShortcut {
    state: AppState,
    /// `/api/v1/registry/packages/`.
    prefix: String,
    /// Literal routes next to `{name}` (`search`, `upload`): the router
    /// matches those first.
    literals: Vec<&'static str>,
    /// Whether the request needs a granted token (`--require-auth` and a
    /// non-public route).
    needs_token: bool,
    log_requests: bool,
}

impl PackageShortcut {
    pub(super) fn new(state: AppState, log_requests: bool) -> PackageShortcut {
        let parent = ROUTE.rsplit_once('/').map_or("", |(p, _)| p);
        let literals = ROUTES
            .iter()
            .filter_map(|r| r.path.strip_prefix(parent)?.strip_prefix('/'))
            .filter(|rest| !rest.contains('/') && !rest.contains('{'))
            .collect();
        // Not in the table would be a bug; then never public.
        let public = ROUTES.iter().find(|r| r.path == ROUTE).is_some_and(|r| r.public);
        PackageShortcut {
            needs_token: state.require_auth && !public,
            prefix: format!("{API_PREFIX}{parent}/"),
            literals,
            state,
            log_requests,
        }
    }

    /// The answer to `req`, or `None` for the router to give.
    pub fn answer<B: hyper::body::Body>(&self, req: &Request<B>, peer: SocketAddr) -> Option<Response<Body>> {
        if req.method() != Method::GET || !req.body().is_end_stream() {
            return None;
        }
        let name = req.uri().path().strip_prefix(self.prefix.as_str())?;
        if self.literals.contains(&name) || crate::names::validate(name).is_err() {
            return None;
        }
        let headers = req.headers();
        if self.needs_token && self.state.tokens.check(headers) != Access::Granted {
            return None;
        }
        let start = self.log_requests.then(Instant::now);
        let state = &self.state;
        // An error or a missing document: the router says so.
        let doc = load(state, name).ok()??;
        let count = state.downloads.get(name);
        let host = host_of(headers)?;
        let resp = {
            let map = state.rendered.map.read().ok()?;
            let r = map.get(name)?;
            let same_base = r
                .base
                .strip_prefix(scheme_of(headers))
                .and_then(|b| b.strip_prefix("://"))
                == Some(host);
            if !Arc::ptr_eq(&r.doc, &doc) || r.count != count || !same_base {
                return None;
            }
            respond_rendered(headers, r)
        };
        if let Some(start) = start {
            super::routes::log_line(peer, req.method(), req.uri(), resp.status().as_u16(), start.elapsed());
        }
        Some(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::document::{PackageDocument, PackageInfo, index_key};
    use crate::registry::storage::{DirStorage, Storage};
    use crate::server::{ServerConfig, Tokens};
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;

    const PEER: &str = "127.0.0.1:9";

    fn state(require_auth: bool) -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = Arc::new(DirStorage::new(dir.path()));
        let doc = PackageDocument {
            info: PackageInfo {
                name: "a".to_owned(),
                version: "1.0.0".to_owned(),
                ..PackageInfo::default()
            },
            versions: Some(Vec::new()),
        };
        let bytes = serde_json::to_vec(&doc).expect("json");
        assert!(storage.create(&index_key("a"), &bytes).expect("create"));
        let mut config = ServerConfig::new(storage, "127.0.0.1:0");
        config.require_auth = require_auth;
        config.tokens = Tokens::from_plain(["t"]);
        let state = AppState::new(&config, "127.0.0.1:0".parse().expect("addr"));
        (dir, state)
    }

    fn get(path: &str, host: &str, token: Option<&str>) -> Request<String> {
        let mut b = Request::get(path).header("host", host);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(String::new()).expect("request")
    }

    /// What the router's handler answers (and keeps).
    fn routed(state: &AppState, host: &str) -> Vec<u8> {
        let mut headers = HeaderMap::new();
        headers.insert("host", host.parse().expect("host"));
        let resp = crate::runtime::block_on(super::super::reads::package(
            State(state.clone()),
            headers,
            Path("a".to_owned()),
        ))
        .expect("runtime")
        .expect("answer");
        body(resp)
    }

    fn body(resp: Response<Body>) -> Vec<u8> {
        crate::runtime::block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
            .expect("runtime")
            .expect("body")
            .to_vec()
    }

    #[test]
    fn the_shortcut_answers_only_a_kept_answer_for_the_same_request() {
        let (_dir, state) = state(false);
        let fast = PackageShortcut::new(state.clone(), false);
        let peer = PEER.parse().expect("peer");
        let path = "/api/v1/registry/packages/a";
        assert!(fast.answer(&get(path, "h:1", None), peer).is_none(), "nothing kept yet");
        let expected = routed(&state, "h:1");
        let resp = fast.answer(&get(path, "h:1", None), peer).expect("kept");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(body(resp), expected, "the router's answer, byte for byte");

        // Anything else is the router's.
        assert!(fast.answer(&get(path, "other:1", None), peer).is_none(), "another host");
        let mut head = get(path, "h:1", None);
        *head.method_mut() = Method::HEAD;
        assert!(fast.answer(&head, peer).is_none(), "HEAD");
        let with_body = Request::get(path)
            .header("host", "h:1")
            .body("x".to_owned())
            .expect("request");
        assert!(fast.answer(&with_body, peer).is_none(), "a body");
        for other in [
            "/api/v1/registry/packages/search",
            "/api/v1/registry/packages/a/",
            "/api/v1/registry/packages/%61",
        ] {
            assert!(fast.answer(&get(other, "h:1", None), peer).is_none(), "{other}");
        }
        let mut https = get(path, "h:1", None);
        https
            .headers_mut()
            .insert("x-forwarded-proto", "https".parse().expect("proto"));
        assert!(fast.answer(&https, peer).is_none(), "another scheme");
        state.downloads.record("a");
        assert!(fast.answer(&get(path, "h:1", None), peer).is_none(), "another count");
    }

    #[test]
    fn under_require_auth_the_shortcut_answers_only_a_granted_token() {
        let (_dir, state) = state(true);
        let fast = PackageShortcut::new(state.clone(), false);
        let peer = PEER.parse().expect("peer");
        let path = "/api/v1/registry/packages/a";
        routed(&state, "h:1");
        assert!(fast.answer(&get(path, "h:1", None), peer).is_none(), "no token");
        assert!(
            fast.answer(&get(path, "h:1", Some("wrong")), peer).is_none(),
            "a refused token"
        );
        assert!(
            fast.answer(&get(path, "h:1", Some("t")), peer).is_some(),
            "a granted token"
        );
    }
}
