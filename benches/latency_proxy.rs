//! A latency-injecting TCP proxy for benchmarks: these machines have no
//! `netem`, so network latency is put on loopback between a client and a
//! server instead of being slept inside the server.
//!
//! ```sh
//! cargo run --release --example latency-proxy -- --listen 127.0.0.1:0 \
//!     --upstream 127.0.0.1:8999 --rtt-ms 50
//! ```
//!
//! prints `listening on ADDR` on stdout, then relays every connection to the
//! upstream. Every chunk read in either direction is released half a round
//! trip after it arrived, in order; reading goes on while earlier chunks
//! wait, so throughput is not limited (a long-fat pipe, not a slow one).
//! A new connection also pays one round trip before its first byte reaches
//! the server, as the TCP handshake does. Not run by CI (it is built by
//! `cargo test`, so it stays compiling); see benches/network.sh.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

struct Args {
    listen: SocketAddr,
    upstream: SocketAddr,
    rtt: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut upstream = None;
    let mut rtt = Duration::from_millis(50);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?.parse().map_err(|e| format!("--listen: {e}"))?),
            "--upstream" => upstream = Some(value()?.parse().map_err(|e| format!("--upstream: {e}"))?),
            "--rtt-ms" => rtt = Duration::from_millis(value()?.parse().map_err(|e| format!("--rtt-ms: {e}"))?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let listen: SocketAddr = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    if !listen.ip().is_loopback() {
        return Err("--listen must be a loopback address".to_owned());
    }
    Ok(Args {
        listen,
        upstream: upstream.ok_or("--upstream ADDR is required")?,
        rtt,
    })
}

/// Relays `from` to `to`, each chunk released `delay` after it arrived,
/// and not before `not_before`. EOF is relayed the same way.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    not_before: Instant,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut buf).await.unwrap_or(0);
            let due = (Instant::now() + delay).max(not_before + delay);
            if tx.send((due, buf[..n].to_vec())).is_err() || n == 0 {
                break;
            }
        }
    });
    while let Some((due, chunk)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        if chunk.is_empty() {
            let _ = to.shutdown().await;
            break;
        }
        if to.write_all(&chunk).await.is_err() {
            break;
        }
    }
    reader.abort();
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let half = args.rtt / 2;
    loop {
        let (client, _) = listener.accept().await?;
        let accepted = Instant::now();
        let upstream = args.upstream;
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            // The handshake: the client's first byte leaves one round trip
            // after it connected.
            let up = relay(cr, sw, half, accepted + args.rtt);
            let down = relay(sr, cw, half, accepted);
            tokio::join!(up, down);
        });
    }
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("latency-proxy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("latency-proxy: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latency-proxy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
