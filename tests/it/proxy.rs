//! A counting, delaying TCP proxy between a client and `fm registry serve`
//! (a helper, not an area): tests observe how many requests a client has
//! in flight at once, and give every request latency, without anything in
//! the server's production build. (It replaced the server's test-only
//! `FM_TEST_DELAY_MS` probe.)
//!
//! A request is counted from its first byte reaching the proxy until the
//! first byte of its answer comes back. Each request is held for `delay`
//! before it is relayed to the server, as a slow network or server would.
//! HTTP/1.1 without pipelining (what reqwest sends) is all it has to
//! understand: on one connection, bytes from the client after an answer
//! began are the next request.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What the proxy saw so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests relayed (or being held).
    pub requests: usize,
    /// The most requests in flight at once.
    pub max_in_flight: usize,
    /// Requests in flight now.
    pub in_flight: usize,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Counters {
    fn begin(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running proxy on 127.0.0.1 (a free port). Its threads end with the
/// connections; the accept loop ends on drop.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`: use it where the server's URL would go.
    pub url: String,
    addr: SocketAddr,
    counters: Arc<Counters>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    /// Relays connections to `upstream` (a server's `http://ADDR` URL),
    /// holding each request for `delay`.
    pub fn start(upstream: &str, delay: Duration) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let counters = Arc::new(Counters::default());
        let stopped = Arc::new(AtomicBool::new(false));
        let (c, s) = (counters.clone(), stopped.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                relay_connection(client, server, delay, c.clone());
            }
        });
        Proxy {
            url: format!("http://{addr}"),
            addr,
            counters,
            stopped,
        }
    }

    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        ProxyStats {
            requests: c.requests.load(Ordering::SeqCst),
            max_in_flight: c.max_in_flight.load(Ordering::SeqCst),
            in_flight: c.in_flight.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

impl std::fmt::Display for ProxyStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "requests={} max_in_flight={} in_flight={}",
            self.requests, self.max_in_flight, self.in_flight
        )
    }
}

/// Two threads, one a direction, sharing whether a request is waiting for
/// its answer on this connection.
fn relay_connection(client: TcpStream, server: TcpStream, delay: Duration, counters: Arc<Counters>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let waiting = Arc::new(AtomicBool::new(false));
    let (Ok(client_w), Ok(server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    {
        let (waiting, counters) = (waiting.clone(), counters.clone());
        std::thread::spawn(move || {
            copy(client, server_w, |_| {
                if !waiting.swap(true, Ordering::SeqCst) {
                    counters.begin();
                    std::thread::sleep(delay);
                }
            });
        });
    }
    std::thread::spawn(move || {
        copy(server, client_w, |_| {
            if waiting.swap(false, Ordering::SeqCst) {
                counters.end();
            }
        });
        // The connection ended with a request unanswered.
        if waiting.swap(false, Ordering::SeqCst) {
            counters.end();
        }
    });
}

/// Copies `from` to `to`, calling `on_chunk` before relaying each chunk;
/// passes EOF on as a half-close.
fn copy(mut from: TcpStream, mut to: TcpStream, mut on_chunk: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        on_chunk(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
