//! Accepting connections, so that the server survives its clients: anyone
//! who can open a socket can open thousands, send nothing, or send half a
//! request and stall.
//!
//! The rules this loop keeps:
//!
//! - **A bounded number of connections** ([`ConnLimits::max_connections`]):
//!   a connection is accepted only with a permit in hand. Past the limit,
//!   new clients wait in the kernel's backlog (they are served as soon as a
//!   slot frees) instead of the server running out of file descriptors.
//!   The default is sized from `RLIMIT_NOFILE` ([`default_max_connections`])
//!   so that every connection can also hold one open archive and the
//!   storage, the download-count flush and the runtime keep a reserve.
//! - **Idle connections are closed** after [`ConnLimits::idle_timeout`]
//!   with no request in flight and no byte moved either way.
//! - **Half-sent requests are closed**: a request head must be complete
//!   within [`ConnLimits::header_timeout`] of its first byte; a request
//!   body that stalls (no bytes for `idle_timeout`) fails the request.
//! - **At the descriptor limit** (`EMFILE`/`ENFILE` from `accept`), the
//!   loop backs off (10 ms doubling to 1 s, one warning per episode) and
//!   keeps serving; it never spins and never exits.
//! - **Graceful shutdown**: on the shutdown signal, accepting stops, every
//!   connection is told to finish its request in flight and close, and the
//!   loop returns once all have (idle ones at once, the others within the
//!   timeouts above).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// How many connections, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once; more wait in the backlog.
    pub max_connections: usize,
    /// From a request head's first byte to its end.
    pub header_timeout: Duration,
    /// With no request in flight and no byte moving; also how long a
    /// request body may stall.
    pub idle_timeout: Duration,
}

/// File descriptors kept out of the connection budget: stdio, the
/// runtime's, the listener, storage reads and writes, the flush.
pub const FD_RESERVE: u64 = 64;
/// The default connection limit where descriptors are plentiful.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Defaults of [`ConnLimits::header_timeout`] and
/// [`ConnLimits::idle_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            max_connections: default_max_connections(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// The soft `RLIMIT_NOFILE`, if there is one.
pub fn fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The most connections the descriptor limit affords: each connection is
/// one descriptor and may hold one archive open while it streams, so half
/// of what is left after [`FD_RESERVE`] (at least 1).
pub fn fd_budget() -> Option<usize> {
    fd_limit().map(|n| {
        usize::try_from(n.saturating_sub(FD_RESERVE) / 2)
            .unwrap_or(usize::MAX)
            .max(1)
    })
}

/// [`DEFAULT_MAX_CONNECTIONS`], or less when the descriptor limit is
/// lower ([`fd_budget`]).
pub fn default_max_connections() -> usize {
    fd_budget().map_or(DEFAULT_MAX_CONNECTIONS, |b| b.min(DEFAULT_MAX_CONNECTIONS))
}

/// Answers a request before the router, or `None` to let the router answer
/// it ([`super::fast`]).
pub type Shortcut = Arc<dyn Fn(&hyper::Request<Incoming>, SocketAddr) -> Option<hyper::Response<Body>> + Send + Sync>;

/// Serves `app` (after `shortcut`, if any) on `listener` under `limits`
/// until `shutdown` completes, then drains the connections (see the module
/// doc).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shortcut: Option<Shortcut>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max));
    let (closing, close_rx) = watch::channel(false);
    let mut backoff = BACKOFF_MIN;
    let mut warned = false;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = BACKOFF_MIN;
                warned = false;
                tokio::spawn(connection(
                    stream,
                    peer,
                    app.clone(),
                    shortcut.clone(),
                    limits,
                    permit,
                    close_rx.clone(),
                ));
            }
            // The client gave up before we took it: nothing to do.
            Err(e) if is_peer_error(&e) => {}
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: resources come back as
                // connections close, so wait, then try again.
                drop(permit);
                if !warned {
                    eprintln!(
                        "warning: cannot accept a connection: {e}; retrying (raise `ulimit -n` or lower --max-connections)"
                    );
                    warned = true;
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a permit until it ends.
    let _ = slots.acquire_many(max as u32).await;
}

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

fn is_peer_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

/// One connection: HTTP/1.1 with hyper's header timer as a backstop, and
/// a watchdog that applies [`ConnLimits`] from what the connection does.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    shortcut: Option<Shortcut>,
    limits: ConnLimits,
    _permit: tokio::sync::OwnedSemaphorePermit,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let on_request = activity.clone();
    let body_timeout = limits.idle_timeout;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let busy = on_request.begin();
        if let Some(resp) = shortcut.as_ref().and_then(|s| s(&req, peer)) {
            drop(busy);
            return Either::Left(std::future::ready(Ok(resp)));
        }
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        let req = req.map(|b| Body::new(tower_http::timeout::TimeoutBody::new(body_timeout, b)));
        Either::Right(async move {
            let resp = tower_service::Service::call(&mut app, req).await;
            drop(busy);
            resp
        })
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own timer runs from when it waits for a head (idle or not):
    // only a backstop past both of ours.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout + limits.header_timeout);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let wake = activity.deadline(&limits);
        tokio::select! {
            _ = conn.as_mut() => return,
            changed = closing.changed(), if !draining => {
                if changed.is_err() || *closing.borrow() {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {
                // Re-checked: bytes may have moved while we slept.
                if activity.deadline(&limits) <= Instant::now() {
                    // Dropping the connection closes the socket.
                    return;
                }
            }
        }
    }
}

/// What a connection did last, shared by its socket and its service.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds since `start` when a byte last moved either way.
    last: AtomicU64,
    /// Requests being handled.
    in_flight: AtomicUsize,
    /// When the first byte of a head arrived with no request in flight.
    head_started: Mutex<Option<Instant>>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            head_started: Mutex::new(None),
        }
    }

    fn moved(&self, read: bool) {
        let now = Instant::now();
        let ms = u64::try_from(now.duration_since(self.start).as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::SeqCst);
        if read
            && self.in_flight.load(Ordering::SeqCst) == 0
            && let Ok(mut h) = self.head_started.lock()
        {
            h.get_or_insert(now);
        }
    }

    /// A request's head is complete and its handler runs.
    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut h) = self.head_started.lock() {
            *h = None;
        }
        Busy(self.clone())
    }

    /// When the connection is to be closed if nothing happens before:
    /// never while a handler runs; else the head's deadline if one has
    /// begun, and the idle deadline.
    fn deadline(&self, limits: &ConnLimits) -> Instant {
        let now = Instant::now();
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return now + limits.idle_timeout;
        }
        let last = self.start + Duration::from_millis(self.last.load(Ordering::SeqCst));
        let idle = last + limits.idle_timeout;
        match self.head_started.lock().ok().and_then(|h| *h) {
            Some(head) => idle.min(head + limits.header_timeout),
            None => idle,
        }
    }
}

/// Marks a request in flight until dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        // The answer is ready: idle time counts from here.
        self.0.moved(false);
    }
}

/// A socket that records when bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.moved(true);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.moved(false);
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.moved(false);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits {
            max_connections: 1,
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_started_head_has_the_shorter_deadline_and_a_request_in_flight_none() {
        let a = Arc::new(Activity::new());
        let l = limits();
        let idle = a.deadline(&l);
        assert!(idle >= a.start + l.idle_timeout);
        a.moved(true);
        assert!(a.deadline(&l) < a.start + l.idle_timeout, "a head began: its deadline");
        let busy = a.begin();
        assert!(
            a.deadline(&l) > Instant::now() + l.header_timeout,
            "in flight: not closed"
        );
        drop(busy);
        assert!(
            a.deadline(&l) > Instant::now() + l.header_timeout,
            "answered: idle again"
        );
    }

    #[test]
    fn the_default_limit_fits_the_descriptor_limit() {
        let max = default_max_connections();
        assert!((1..=DEFAULT_MAX_CONNECTIONS).contains(&max));
        if let Some(n) = fd_limit() {
            assert!((max as u64) * 2 + FD_RESERVE <= n.max(FD_RESERVE + 2));
        }
    }
}
