//! The limits every HTTP read from a registry keeps: a total deadline and a
//! byte cap, so that a registry that answers slowly, one byte at a time, or
//! forever can neither hang fm nor fill its memory.
//!
//! - **Deadline.** Each attempt of a request has `FM_HTTP_TIMEOUT_SECS`
//!   (60 by default) for everything: connecting, the headers and the whole
//!   body. A timer that restarts on every byte is not enough (a registry
//!   trickling one byte a second would never trip it), so the deadline is
//!   fixed when the attempt starts ([`Budget`]). An attempt that gets no
//!   answer in time is retried (3 attempts in all, see `http/send.rs`); a body
//!   that misses its deadline is an error.
//! - **Archives** get the same deadline plus the time their bytes take at a
//!   minimum throughput of [`MIN_ARCHIVE_BYTES_PER_SEC`] (64 KiB/s): the
//!   deadline moves on by one second for every 64 KiB received. A big
//!   archive on a slow but steady link still arrives; a trickle is cut off
//!   about `FM_HTTP_TIMEOUT_SECS` after the request started. The caller
//!   caps the bytes near the size `fm.lock` records (`install::fetch`), so
//!   an archive's total time is bounded by about
//!   `FM_HTTP_TIMEOUT_SECS + size / 64 KiB/s`.
//! - **Uploads** (`fm publish`) get the deadline plus their body's time at
//!   the same minimum throughput.
//! - **Byte caps.** A JSON document (package document, search page, upload
//!   answer) is at most `FM_HTTP_MAX_DOCUMENT_MIB` MiB (64 by default): a
//!   larger `Content-Length` is refused before the body is read, and a body
//!   that runs past the cap is cut off there. An error answer is read for
//!   its message up to [`ERROR_BODY_MAX`] bytes only, and the rest ignored.

use std::time::Duration;

use tokio::time::Instant;

/// Bytes of an error answer read for its message.
pub const ERROR_BODY_MAX: u64 = 64 * 1024;

/// The slowest steady rate an archive download is allowed, on top of the
/// request's deadline.
pub const MIN_ARCHIVE_BYTES_PER_SEC: u64 = 64 * 1024;

/// The variable giving the deadline.
pub const TIMEOUT_VAR: &str = "FM_HTTP_TIMEOUT_SECS";

/// The variable giving the document cap.
pub const MAX_DOCUMENT_VAR: &str = "FM_HTTP_MAX_DOCUMENT_MIB";

/// A positive integer from the environment variable `var`, or `default`.
fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// Requests in flight at once per registry client, and so downloads at
/// once in `fm sync`, unless `FM_CONCURRENT_DOWNLOADS` says otherwise.
/// Over a network each request waits about a round trip for its first
/// byte, so how many run at once, not bandwidth, bounds a cold sync of many
/// small archives: at 50 ms of round trip the 10,000-package benchmark's
/// 1,299 archives took 1.55 s into a fresh folder with uv's 50, 0.71 s
/// with 128 and 0.52 s with 200 (BENCHMARKS.md, "default concurrency").
/// 128 keeps one client's sockets well under a server's connection limit
/// (`fm registry serve` takes 1,024) and the usual 1,024 descriptors.
pub const DEFAULT_CONCURRENCY: usize = 128;

/// The environment variable that sets [`concurrency`] (1 to 256).
pub const CONCURRENCY_VAR: &str = "FM_CONCURRENT_DOWNLOADS";

/// `FM_CONCURRENT_DOWNLOADS` when it is a number from 1 to 256, else
/// [`DEFAULT_CONCURRENCY`].
pub fn concurrency() -> usize {
    std::env::var(CONCURRENCY_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=256).contains(n))
        .unwrap_or(DEFAULT_CONCURRENCY)
}

/// The total deadline of one attempt of a request: `FM_HTTP_TIMEOUT_SECS`
/// (a positive number of seconds), 60 by default.
pub fn deadline() -> Duration {
    Duration::from_secs(env_u64(TIMEOUT_VAR, 60))
}

/// The most bytes one JSON document may have: `FM_HTTP_MAX_DOCUMENT_MIB`
/// MiB, 64 by default.
pub fn max_document_bytes() -> u64 {
    env_u64(MAX_DOCUMENT_VAR, 64).saturating_mul(1024 * 1024)
}

/// The clock of one attempt: when it started and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    started: Instant,
    limit: Duration,
}

impl Budget {
    /// A budget of [`deadline()`] from now.
    pub fn start() -> Budget {
        Budget::start_sending(0)
    }

    /// A budget for a request that uploads `len` bytes: [`deadline()`] plus
    /// their time at [`MIN_ARCHIVE_BYTES_PER_SEC`], as an archive download
    /// gets.
    pub fn start_sending(len: u64) -> Budget {
        Budget {
            started: Instant::now(),
            limit: deadline() + Duration::from_secs(len / MIN_ARCHIVE_BYTES_PER_SEC),
        }
    }

    /// When the attempt must be complete (headers and body).
    pub fn deadline(&self) -> Instant {
        self.started + self.limit
    }

    /// When an archive download that has received `received` bytes must
    /// have its next bytes: the deadline plus `received` at
    /// [`MIN_ARCHIVE_BYTES_PER_SEC`].
    pub fn archive_deadline(&self, received: u64) -> Instant {
        let earned = Duration::from_secs_f64(received as f64 / MIN_ARCHIVE_BYTES_PER_SEC as f64);
        self.deadline() + earned
    }

    /// Whole seconds since the attempt started, for messages.
    pub fn elapsed_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The deadline in seconds, for messages.
    pub fn secs(&self) -> u64 {
        self.limit.as_secs()
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The deadline passed before the body was complete.
    Deadline,
    /// The body is (or says it is) larger than the cap.
    TooLarge,
    /// The connection failed.
    Read(reqwest::Error),
}

/// The whole body of `response`, at most `cap` bytes, complete by `by`.
///
/// The chunks are kept as they came and joined once at the end (into a
/// buffer of the exact size), never grown by doubling: a body cut off at
/// the cap has cost the cap in memory, not the sum of every buffer a
/// growing `Vec` left behind (an allocator keeps freed blocks for a while;
/// with doubling an endless answer peaked at about 3 × the cap).
pub async fn read_capped(response: &mut reqwest::Response, cap: u64, by: Instant) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > cap) {
        return Err(BodyError::TooLarge);
    }
    let mut chunks: Vec<bytes::Bytes> = Vec::new();
    let mut len: u64 = 0;
    loop {
        match tokio::time::timeout_at(by, response.chunk()).await {
            Err(_) => return Err(BodyError::Deadline),
            Ok(Err(e)) => return Err(BodyError::Read(e)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => {
                len += chunk.len() as u64;
                if len > cap {
                    return Err(BodyError::TooLarge);
                }
                chunks.push(chunk);
            }
        }
    }
    if chunks.len() == 1 {
        return Ok(Vec::from(chunks.swap_remove(0)));
    }
    let mut body = Vec::with_capacity(len as usize);
    for chunk in &chunks {
        body.extend_from_slice(chunk);
    }
    Ok(body)
}

/// Up to [`ERROR_BODY_MAX`] bytes of an answer read only for what it says
/// (an error's message, a health probe) as text, whatever else happens: a
/// message is a courtesy, and its absence no error.
pub async fn read_error_text(response: &mut reqwest::Response, by: Instant) -> String {
    let mut body = Vec::new();
    while (body.len() as u64) < ERROR_BODY_MAX {
        match tokio::time::timeout_at(by, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_MAX as usize);
    String::from_utf8_lossy(&body).into_owned()
}

/// The help of an error from a missed deadline.
pub fn deadline_help(budget: &Budget) -> String {
    format!(
        "the registry answers too slowly or not at all; {TIMEOUT_VAR} (now {} s) is the total deadline of each \
         request (connect, headers and body; archives get 1 s more per 64 KiB received): raise it for a slow registry",
        budget.secs()
    )
}

/// The help of an error from a document over the cap.
pub fn document_cap_help() -> String {
    format!(
        "a registry document may have at most {} MiB ({MAX_DOCUMENT_VAR}); raise {MAX_DOCUMENT_VAR} if this \
         registry really serves documents that large",
        max_document_bytes() / (1024 * 1024)
    )
}

/// An `AsyncWrite` into memory that refuses more than `cap` bytes.
pub struct CappedVec {
    /// What was written.
    pub bytes: Vec<u8>,
    cap: u64,
}

impl CappedVec {
    /// An empty buffer taking at most `cap` bytes.
    pub fn new(cap: u64) -> CappedVec {
        CappedVec { bytes: Vec::new(), cap }
    }
}

impl tokio::io::AsyncWrite for CappedVec {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.bytes.len() as u64 + buf.len() as u64 > this.cap {
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "more than {} bytes ({MAX_DOCUMENT_VAR})",
                this.cap
            ))));
        }
        this.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
