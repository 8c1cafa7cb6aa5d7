//! A hook on every HTTP request the registry client sends, for the CLI's
//! progress and `-v` request log: nothing is observed until the CLI calls
//! [`set_observer`], once per process.
//!
//! An observer only ever sees a URL that went through
//! [`redact_url`](super::redact_url) (no userinfo, no query, which is where
//! a pre-signed URL keeps its signature) and never a header, so no token
//! can reach what it prints.

use std::sync::OnceLock;
use std::time::Duration;

/// Told of each request as it starts and as its answer's headers arrive.
pub trait RequestObserver: Send + Sync {
    /// A request is being sent.
    fn started(&self, method: &str, url: &url::Url);
    /// Its answer: the status, or why none came (`Err` holds a short reason).
    fn finished(&self, method: &str, url: &url::Url, status: Result<u16, &str>, elapsed: Duration);
}

static OBSERVER: OnceLock<Box<dyn RequestObserver>> = OnceLock::new();

/// Installs the process's observer; a second call is ignored.
pub fn set_observer(observer: Box<dyn RequestObserver>) {
    let _ = OBSERVER.set(observer);
}

/// The URL as an observer may see it.
fn shown(url: &url::Url) -> url::Url {
    super::redact_url(url)
}

pub(crate) fn started(method: &reqwest::Method, url: &url::Url) {
    if let Some(o) = OBSERVER.get() {
        o.started(method.as_str(), &shown(url));
    }
}

pub(crate) fn finished(
    method: &reqwest::Method,
    url: &url::Url,
    sent: &Result<Result<reqwest::Response, reqwest::Error>, tokio::time::error::Elapsed>,
    elapsed: Duration,
) {
    if let Some(o) = OBSERVER.get() {
        let status = match sent {
            Ok(Ok(r)) => Ok(r.status().as_u16()),
            Ok(Err(e)) if e.is_timeout() => Err("timed out"),
            Err(_) => Err("timed out"),
            Ok(Err(e)) if e.is_connect() => Err("cannot connect"),
            Ok(Err(_)) => Err("failed"),
        };
        o.finished(method.as_str(), &shown(url), status, elapsed);
    }
}
