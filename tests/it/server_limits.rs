//! The server survives its clients (issue #12, point 5): idle and
//! half-sent connections at a low file-descriptor limit, connections
//! closed by their timeouts, public routes decided by route, and `health`
//! / `stats` answered from kept counts. All against the real
//! `fm registry serve` on 127.0.0.1, with raw sockets of our own.

use crate::common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "limits-token";

fn addr(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// `n` sockets that connect and send nothing, and `n` that send half a
/// request head and stall.
fn hostile_sockets(server: &Server, n: usize) -> Vec<TcpStream> {
    let mut socks = Vec::with_capacity(2 * n);
    for i in 0..2 * n {
        let mut s = TcpStream::connect(addr(server)).expect("connect");
        if i % 2 == 1 {
            s.write_all(b"GET /api/v1/registry/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .expect("half a head");
        }
        socks.push(s);
    }
    socks
}

/// A client whose every request must finish within `secs` (generous: this
/// bounds a hang, it does not measure speed).
fn patient_client(secs: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(secs))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// Downloads of `package` saved in the storage, over every replica.
fn saved_downloads(storage: &std::path::Path, package: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir(storage.join("stats/downloads")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter_map(|v| v[package].as_u64())
        .sum()
}

/// Health, one download, then a graceful stop: the time health took, the
/// saved download count and the server's log.
fn health_and_a_counted_download(server: Server, sha: &str) -> (u128, u64, String) {
    let c = patient_client(60);
    let rt = runtime();
    let start = Instant::now();
    let (status, health) = rt.block_on(async {
        let r = c.get(server.api("health")).send().await.expect("health answers");
        (r.status().as_u16(), r.json::<Value>().await.expect("json"))
    });
    let health_ms = start.elapsed().as_millis();
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["packages_count"], 1, "{health}");
    let bytes = rt.block_on(async {
        let r = c
            .get(server.api("packages/a/1.0.0/download"))
            .send()
            .await
            .expect("download answers");
        assert_eq!(r.status().as_u16(), 200);
        r.bytes().await.expect("body")
    });
    assert_eq!(fm::fsutil::sha256_hex(&bytes), sha);
    let storage = server.storage.clone();
    let log = server.log();
    let status = server.stop();
    assert!(status.success(), "graceful exit: {status:?}");
    (health_ms, saved_downloads(&storage, "a"), log)
}

// Regression: 300 idle sockets at a 256 file limit made `health` time out
// and download counts fail to save (nothing ever closed them).
#[test]
fn idle_and_half_sent_sockets_at_a_256_file_limit_starve_neither_health_nor_download_counts() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("st");
    let sha = reg.publish("a", "1.0.0", &[]);
    let server = ctx.serve_limited(
        &reg.root,
        &["--idle-timeout", "2s", "--header-timeout", "1s"],
        &[],
        Some(256),
    );
    let socks = hostile_sockets(&server, 150);
    let (health_ms, saved, _) = health_and_a_counted_download(server, &sha);
    assert_eq!(saved, 1, "the download count was saved");
    println!(
        "FIGURES server_limits: {} hostile sockets (150 idle, 150 half-sent) at ulimit -n 256 (96 connections at once), idle 2s / header 1s: health answered after {health_ms} ms, 1 download counted and saved",
        socks.len()
    );
}

// Past the descriptor limit (--max-connections above what `ulimit -n`
// affords), accept fails with EMFILE: the server warns, backs off and
// keeps serving once the timeouts free descriptors.
#[test]
fn accept_at_the_file_limit_backs_off_and_keeps_serving() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("st");
    let sha = reg.publish("a", "1.0.0", &[]);
    let server = ctx.serve_limited(
        &reg.root,
        &[
            "--idle-timeout",
            "1s",
            "--header-timeout",
            "1s",
            "--max-connections",
            "1000",
        ],
        &[],
        Some(128),
    );
    let socks = hostile_sockets(&server, 100);
    let (health_ms, saved, log) = health_and_a_counted_download(server, &sha);
    assert_eq!(saved, 1, "the download count was saved");
    assert!(log.contains("--max-connections 1000"), "{log}");
    assert!(log.contains("warning: cannot accept a connection"), "{log}");
    let warnings = log.matches("cannot accept a connection").count();
    println!(
        "FIGURES server_limits: {} hostile sockets at ulimit -n 128 with --max-connections 1000: EMFILE met, {warnings} warning(s), health answered after {health_ms} ms, download counted and saved",
        socks.len()
    );
}

/// Reads until the server closes the socket (or 30 s pass: then `Err`);
/// the text read and when it closed, counted from `start`.
fn read_until_closed(mut s: TcpStream, start: Instant) -> std::io::Result<(String, Duration)> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        // Closed with our later bytes unread: a reset is a close too.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(e),
    }
    Ok((String::from_utf8_lossy(&got).into_owned(), start.elapsed()))
}

#[test]
fn the_server_closes_idle_half_sent_and_stalled_connections() {
    let ctx = TestContext::new();
    let server = ctx.serve(
        &ctx.root.join("st"),
        &["--idle-timeout", "1s", "--header-timeout", "1s", "--token", TOKEN],
        &[],
    );
    let connect = || TcpStream::connect(addr(&server)).expect("connect");
    let start = Instant::now();
    let idle = connect();
    let mut half = connect();
    half.write_all(b"GET /api/v1/registry/health HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    // A byte now and then is not a head: the header deadline counts from
    // the first byte.
    let mut dribble = connect();
    dribble
        .write_all(b"GET /api/v1/registry/health HTTP/1.1\r\n")
        .expect("write");
    let mut kept_alive = connect();
    kept_alive
        .write_all(b"GET /api/v1/registry/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut stalled_body = connect();
    stalled_body
        .write_all(
            format!(
                "POST /api/v1/registry/packages/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n0123456789"
            )
            .as_bytes(),
        )
        .expect("write");
    let dribbler = std::thread::spawn(move || {
        for _ in 0..6 {
            std::thread::sleep(Duration::from_millis(400));
            if dribble.write_all(b"X-A: b\r\n").is_err() {
                break;
            }
        }
        dribble
    });
    let mut figures = Vec::new();
    for (what, sock) in [
        ("idle", idle),
        ("half-sent head", half),
        ("kept alive after an answer", kept_alive),
        ("stalled body", stalled_body),
    ] {
        let (text, took) = read_until_closed(sock, start).unwrap_or_else(|e| panic!("{what}: never closed: {e}"));
        figures.push(format!("{what} {} ms", took.as_millis()));
        match what {
            "kept alive after an answer" => assert!(text.starts_with("HTTP/1.1 200"), "{text}"),
            "stalled body" => assert!(text.starts_with("HTTP/1.1 400"), "{text}"),
            _ => assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{what}: {text}"),
        }
    }
    let dribble = dribbler.join().expect("dribbler");
    let (_, took) = read_until_closed(dribble, start).expect("dribbled head: never closed");
    figures.push(format!("dribbled head {} ms", took.as_millis()));
    // The server itself is fine.
    let c = patient_client(30);
    runtime().block_on(async { assert_eq!(status_of(c.get(server.api("health"))).await, 200) });
    println!(
        "FIGURES server_limits: 5 of 5 connections closed by the server (idle 1s, header 1s), after: {}",
        figures.join(", ")
    );
}

// Regression: `--require-auth` exempted every path ending in `/health`, so a
// package named `health` (and `packages/x/health`) was readable without a
// token.
#[test]
fn under_require_auth_exactly_the_health_route_is_public() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("st");
    reg.publish("x", "1.0.0", &[]);
    reg.publish("health", "1.0.0", &[]);
    let server = ctx.serve(&reg.root, &["--require-auth", "--token", TOKEN], &[]);
    let c = client();
    let mut walked = 0;
    runtime().block_on(async {
        for route in fm::server::routes::ROUTES {
            let path = route.path.replace("{name}", "x").replace("{version}", "1.0.0");
            let url = format!("{}{}{path}", server.url, fm::server::routes::API_PREFIX);
            for method in route.methods {
                let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
                let anonymous = status_of(c.request(method.clone(), &url)).await;
                let with_token = status_of(c.request(method.clone(), &url).bearer_auth(TOKEN)).await;
                if route.public {
                    assert_ne!(anonymous, 401, "{method} {path} is public");
                } else {
                    assert_eq!(anonymous, 401, "{method} {path} needs a token");
                }
                assert!(
                    ![401, 403, 405].contains(&with_token),
                    "{method} {path} with a token: {with_token}"
                );
                walked += 1;
            }
        }
        // Paths that merely end in `health` are not the health route.
        for path in [
            "packages/health",
            "packages/health/versions",
            "packages/x/health",
            "packages/health/1.0.0",
            "packages/health/1.0.0/download",
            "nothing/health",
            "categories/health",
            "stats?x=/health",
            "health/",
        ] {
            assert_eq!(status_of(c.get(server.api(path))).await, 401, "{path} needs a token");
            walked += 1;
        }
        assert_eq!(status_of(c.get(server.api("health"))).await, 200);
        assert_eq!(
            status_of(c.get(server.api("packages/health")).bearer_auth(TOKEN)).await,
            200
        );
    });
    let public: Vec<&str> = fm::server::routes::ROUTES
        .iter()
        .filter(|r| r.public)
        .map(|r| r.path)
        .collect();
    assert_eq!(public, ["/health"]);
    println!("FIGURES server_limits: {walked} route/method/path probes under --require-auth, 1 public route (health)");
}

async fn counts(c: &reqwest::Client, server: &Server) -> (Value, Value) {
    let h = c.get(server.api("health")).send().await.expect("health");
    let s = c.get(server.api("stats")).send().await.expect("stats");
    (h.json().await.expect("json"), s.json().await.expect("json"))
}

// Regression: every `health` and `stats` read every document. Now they
// answer from counts kept by this server, so a document written behind the
// server's back shows only after the next refresh.
#[test]
fn health_and_stats_answer_from_kept_counts_updated_by_writes_and_refreshes() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("st");
    reg.publish("a", "1.0.0", &[]);
    reg.publish("a", "1.1.0", &[]);
    let server = ctx.serve(&reg.root, &["--token", TOKEN, "--stats-refresh", "1h"], &[]);
    runtime().block_on(async {
        let c = client();
        let (h, s) = counts(&c, &server).await;
        assert_eq!(
            (h["packages_count"].as_u64(), s["versions_count"].as_u64()),
            (Some(1), Some(2))
        );

        // Behind the server's back: not counted until a refresh.
        reg.publish("behind", "1.0.0", &[]);
        let (h, _) = counts(&c, &server).await;
        assert_eq!(h["packages_count"], 1, "health recounted the documents: {h}");

        // Through the server: counted at once.
        let bytes = std::fs::read(pack_path(&ctx, "b", "2.0.0")).expect("archive");
        let r = c
            .post(server.api("packages/upload"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status().as_u16(), 201);
        let (h, s) = counts(&c, &server).await;
        assert_eq!(h["packages_count"], 2, "{h}");
        assert_eq!(s["versions_count"], 3, "{s}");
        // Yanking keeps the version counted (its bytes stay downloadable).
        let r = c
            .put(server.api("packages/a/1.1.0/yank"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("yank");
        assert_eq!(r.status().as_u16(), 200);
        let (_, s) = counts(&c, &server).await;
        assert_eq!(s["versions_count"], 3, "{s}");
    });
    drop(server);

    // A short refresh: the write behind its back shows, and stats agree
    // with what a fresh count of the folder says.
    let server = ctx.serve(&reg.root, &["--stats-refresh", "1s"], &[]);
    reg.publish("later", "1.0.0", &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let rt = runtime();
    let c = client();
    let h = rt.block_on(async {
        loop {
            let (h, _) = counts(&c, &server).await;
            if h["packages_count"] == 4 || Instant::now() > deadline {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(h["packages_count"], 4, "{h}");
    let (_, s) = rt.block_on(counts(&c, &server));
    assert_eq!(s["versions_count"], 5, "{s}");
    assert_eq!(s["packages_count"], 4, "{s}");
}

/// Packs `name@version` from a source folder under the test root.
fn pack_path(ctx: &TestContext, name: &str, version: &str) -> std::path::PathBuf {
    let dir = package_source(&ctx.root.join("src"), name, version, &[]);
    let out = ctx.root.join(format!("{name}-{version}.fmpkg"));
    std::fs::write(&out, pack_folder(&dir).bytes).expect("write");
    out
}
