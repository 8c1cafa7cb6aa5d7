//! Error answers made into messages: the status, what the registry said
//! (fm's `{"error":{"message"}}`, FlowMason's `{"detail"}`, a bucket's
//! XML), and what to do. Text the registry wrote is printed through
//! [`crate::text::printable`], capped.

use reqwest::StatusCode;

use super::super::transport;
use super::HttpRegistry;
use super::send::Fetched;
use crate::registry::{RegistryError, redact_url};

impl HttpRegistry {
    /// Turns an unexpected status into an error naming the registry and
    /// what to do.
    pub(super) async fn status_error(&self, mut f: Fetched, what: &str) -> RegistryError {
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
    pub(super) async fn storage_error(&self, mut f: Fetched, package: &str, version: &str) -> RegistryError {
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
}

/// The message of an `{"error":{"message"}}` (fm) or `{"detail"}`
/// (FlowMason) answer. The registry wrote it: returned without controls
/// or escapes, at most 500 characters.
pub(super) fn server_message(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let m = v.pointer("/error/message").or_else(|| v.get("detail"))?;
    let m = m.as_str().map_or_else(|| m.to_string(), str::to_owned);
    Some(crate::text::printable(&m).chars().take(500).collect())
}

/// `Code: Message` of an S3-style XML error (`<Error><Code>…`), as bucket
/// hosts answer a refused pre-signed URL.
pub(super) fn s3_message(text: &str) -> Option<String> {
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
pub(super) fn error_chain(e: &reqwest::Error) -> String {
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
