//! Sending a request: redirects followed by hand (the token only to its
//! origin), transient failures retried, every attempt on its deadline.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};

use super::super::transport::{self, BodyError, Budget};
use super::HttpRegistry;
use super::errors::error_chain;
use crate::registry::{RegistryError, redact_url};

const ATTEMPTS: u32 = 3;
const MAX_REDIRECTS: usize = 10;

/// What one response was.
pub(super) struct Fetched {
    pub(super) status: StatusCode,
    pub(super) headers: header::HeaderMap,
    pub(super) response: reqwest::Response,
    pub(super) url: url::Url,
    /// The clock of the attempt that got this answer: its body must
    /// arrive by the same deadline.
    pub(super) budget: Budget,
}

impl HttpRegistry {
    /// The body of a JSON answer (`what`, for messages), within the
    /// attempt's deadline and the document cap.
    pub(super) async fn read_document(&self, f: &mut Fetched, what: &str) -> Result<Vec<u8>, RegistryError> {
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
                BodyError::Read(e) => self.http_err_from(
                    format!("reading {what} from {at} failed: {}", error_chain(&e)),
                    e.is_timeout().then(|| transport::deadline_help(&f.budget)),
                    e,
                ),
            })
    }

    /// Sends a request, following redirects by hand (token only to the
    /// canonical origin, never after leaving it) and retrying transient
    /// failures. `body` is rebuilt for each attempt; its length in bytes
    /// (the second field) earns its upload time at the minimum throughput.
    pub(super) async fn send(
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
                    crate::registry::observe::started(&method, &url);
                    let sent = tokio::time::timeout_at(budget.deadline(), req.send()).await;
                    crate::registry::observe::finished(&method, &url, &sent, sent_at.elapsed());
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
                        return Err(self.http_err_from(
                            format!("cannot reach {}: {}", redact_url(&url), error_chain(&e)),
                            Some(
                                "check the registry URL and your network, or use --offline with a filled cache".into(),
                            ),
                            e,
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

    pub(super) async fn get(&self, url: url::Url, headers: header::HeaderMap) -> Result<Fetched, RegistryError> {
        self.send(Method::GET, url, headers, None).await
    }
}
