//! `fm sync --frozen` against a fault-injecting loopback registry of our
//! own: wrong bytes, truncated bodies, connections reset mid-body, stalls
//! past the client's timeout, 500s, redirects to another origin, bodies
//! longer than the lock says. Every fault ends in a clear error or a
//! successful retry; after an error the project has no `.fm` and the cache
//! holds only archives whose digest verifies; the next clean sync heals.
//!
//! Then the limits of every read (`fm::registry::transport`): a trickle of
//! one byte at a time misses the total deadline, an endless document is cut
//! off at the cap with bounded memory, an endless archive at the locked
//! size, and escapes in what a registry writes are never printed.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the fault server does with one request.
#[derive(Clone, Debug)]
enum Fault {
    /// The archive, correctly.
    Serve,
    /// As many bytes as the archive, but different ones.
    WrongBytes,
    /// `Content-Length` of the archive, half of it, then a clean close.
    Truncate,
    /// Half the body, then a TCP reset.
    ResetMidBody,
    /// A TCP reset before any answer.
    ResetBeforeHeaders,
    /// Headers and half the body, then silence past the client's timeout.
    StallMidBody,
    /// Silence past the client's timeout before any answer.
    StallBeforeHeaders,
    /// 500 Internal Server Error.
    Status500,
    /// 302 to the same path on another origin.
    RedirectTo(String),
    /// 302 to itself, forever.
    RedirectLoop,
    /// The archive followed by 1 MiB more.
    Oversized,
    /// A status line, then one header byte every [`TRICKLE_EVERY`].
    TrickleHeaders,
    /// Headers of a 200 with a 1 MB body, then one body byte every
    /// [`TRICKLE_EVERY`].
    TrickleBody,
    /// A 200 JSON answer without a length that never ends (up to
    /// [`ENDLESS`] bytes, then a close).
    EndlessJson,
    /// A 200 archive answer without a length: the archive, then zeros that
    /// never end (up to [`ENDLESS`] bytes).
    EndlessArchive,
    /// This status and JSON body.
    Answer(u16, String),
    /// Nothing until the flag is set (or [`HOLD_AT_MOST`] passed), then
    /// [`Fault::WrongBytes`].
    HeldWrongBytes(Arc<std::sync::atomic::AtomicBool>),
}

/// The longest [`Fault::HeldWrongBytes`] holds its answer back.
const HOLD_AT_MOST: Duration = Duration::from_secs(40);

/// How often a trickling fault sends its next byte.
const TRICKLE_EVERY: Duration = Duration::from_millis(100);
/// How long a trickle goes on: far past any deadline under test, so that a
/// client without a total deadline is still waiting when its watchdog ends
/// it.
const TRICKLE_FOR: Duration = Duration::from_secs(180);
/// Where an endless answer stops: far past every cap under test.
const ENDLESS: u64 = 512 << 20;

/// Requests a fault server answered: path and `Authorization` header.
type Seen = Vec<(String, Option<String>)>;

/// A loopback HTTP/1.1 server answering each request with the next fault of
/// its script (then [`Fault::Serve`]), recording the path and the
/// `Authorization` header it saw.
struct FaultServer {
    url: String,
    script: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Seen>>,
    /// Body bytes the endless faults managed to write before the client
    /// hung up.
    sent: Arc<std::sync::atomic::AtomicU64>,
}

/// How long a stall lasts: well past `FM_HTTP_TIMEOUT_SECS=1`.
const STALL: Duration = Duration::from_secs(3);

impl FaultServer {
    fn start(archive: Vec<u8>) -> FaultServer {
        let script: Arc<Mutex<VecDeque<Fault>>> = Arc::default();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let sent: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, v, n) = (script.clone(), seen.clone(), sent.clone());
        let archive = Arc::new(archive);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let fault = s.lock().unwrap().pop_front().unwrap_or(Fault::Serve);
                    let (v, archive, n) = (v.clone(), archive.clone(), n.clone());
                    tokio::spawn(async move {
                        let _ = answer(stream, fault, &archive, &v, &n).await;
                    });
                }
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("fault server address");
        FaultServer {
            url: format!("http://{addr}"),
            script,
            seen,
            sent,
        }
    }

    fn script(&self, faults: &[Fault]) {
        *self.script.lock().unwrap() = faults.iter().cloned().collect();
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

async fn answer(
    mut stream: tokio::net::TcpStream,
    fault: Fault,
    archive: &[u8],
    seen: &Mutex<Seen>,
    sent: &std::sync::atomic::AtomicU64,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let auth = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .map(|l| l["authorization:".len()..].trim().to_owned());
    seen.lock().unwrap().push((path.clone(), auth));
    let ok = |len: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    let half = &archive[..archive.len() / 2];
    match fault {
        Fault::Serve => {
            stream.write_all(ok(archive.len()).as_bytes()).await?;
            stream.write_all(archive).await?;
        }
        Fault::HeldWrongBytes(release) => {
            let until = tokio::time::Instant::now() + HOLD_AT_MOST;
            while !release.load(std::sync::atomic::Ordering::SeqCst) && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let wrong: Vec<u8> = archive.iter().map(|b| b ^ 0x5a).collect();
            stream.write_all(ok(wrong.len()).as_bytes()).await?;
            stream.write_all(&wrong).await?;
        }
        Fault::WrongBytes => {
            let wrong: Vec<u8> = archive.iter().map(|b| b ^ 0x5a).collect();
            stream.write_all(ok(wrong.len()).as_bytes()).await?;
            stream.write_all(&wrong).await?;
        }
        Fault::Truncate => {
            stream.write_all(ok(archive.len()).as_bytes()).await?;
            stream.write_all(half).await?;
        }
        Fault::ResetMidBody => {
            stream.write_all(ok(archive.len()).as_bytes()).await?;
            stream.write_all(half).await?;
            stream.flush().await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            stream.set_zero_linger()?;
        }
        Fault::ResetBeforeHeaders => {
            stream.set_zero_linger()?;
        }
        Fault::StallMidBody => {
            stream.write_all(ok(archive.len()).as_bytes()).await?;
            stream.write_all(half).await?;
            stream.flush().await?;
            tokio::time::sleep(STALL).await;
        }
        Fault::StallBeforeHeaders => {
            tokio::time::sleep(STALL).await;
        }
        Fault::Status500 => {
            let body = r#"{"detail": "injected failure"}"#;
            stream
                .write_all(
                    format!(
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await?;
        }
        Fault::RedirectTo(origin) => {
            let to = format!("{origin}{path}");
            stream
                .write_all(
                    format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await?;
        }
        Fault::RedirectLoop => {
            stream
                .write_all(
                    format!("HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await?;
        }
        Fault::Oversized => {
            stream.write_all(ok(archive.len() + (1 << 20)).as_bytes()).await?;
            stream.write_all(archive).await?;
            stream.write_all(&vec![0u8; 1 << 20]).await?;
        }
        Fault::TrickleHeaders => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ").await?;
            trickle(&mut stream).await?;
        }
        Fault::TrickleBody => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
                .await?;
            trickle(&mut stream).await?;
        }
        Fault::EndlessJson => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
                .await?;
            stream
                .write_all(br#"{"name":"a","version":"1.0.0","description":""#)
                .await?;
            endless(&mut stream, b'a', sent).await?;
        }
        Fault::EndlessArchive => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
                .await?;
            stream.write_all(archive).await?;
            endless(&mut stream, 0, sent).await?;
        }
        Fault::Answer(status, body) => {
            stream
                .write_all(
                    format!(
                        "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await?;
        }
    }
    stream.flush().await?;
    Ok(())
}

/// One byte every [`TRICKLE_EVERY`] for [`TRICKLE_FOR`].
async fn trickle(stream: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    let until = tokio::time::Instant::now() + TRICKLE_FOR;
    while tokio::time::Instant::now() < until {
        stream.write_all(b"a").await?;
        stream.flush().await?;
        tokio::time::sleep(TRICKLE_EVERY).await;
    }
    Ok(())
}

/// `byte` as fast as the client reads, up to [`ENDLESS`] bytes, counting
/// what was written into `sent`.
async fn endless(
    stream: &mut tokio::net::TcpStream,
    byte: u8,
    sent: &std::sync::atomic::AtomicU64,
) -> std::io::Result<()> {
    let block = vec![byte; 64 * 1024];
    while sent.load(std::sync::atomic::Ordering::Relaxed) < ENDLESS {
        stream.write_all(&block).await?;
        sent.fetch_add(block.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

const TOKEN: &str = "fault-test-token-3b9d";

/// A project locking `a 1.0.0` from registry `main` at `url`.
fn project_for(ctx: &TestContext, url: &str, sha: &str, size: u64) {
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"1.0.0\"\n\n[[registries]]\nname = \"main\"\nurl = \"{url}\"\n"
    ));
    let lock = fm::lock::Lockfile {
        log: Default::default(),
        root: vec!["a =1.0.0".into()],
        registries: vec![fm::lock::LockedRegistry {
            name: "main".into(),
            url: url.into(),
            priority: 100,
            explicit: false,
        }],
        packages: vec![fm::lock::LockedPackage {
            name: "a".parse().unwrap(),
            version: semver::Version::new(1, 0, 0),
            registry: "main".into(),
            sha256: sha.parse().unwrap(),
            size,
            dependencies: vec![],
        }],
    };
    lock.save(&ctx.project.join("fm.lock")).expect("write fm.lock");
}

fn sync(ctx: &TestContext) -> std::process::Output {
    ctx.fm()
        .args(["sync", "--frozen"])
        .env("FM_HTTP_TIMEOUT_SECS", "1")
        .env("FM_TOKEN_MAIN", TOKEN)
        .output()
        .expect("run fm sync")
}

/// The cache holds only archives whose name is their digest, and no
/// leftovers in `tmp/`.
fn assert_cache_clean(cache: &Path, what: &str) -> usize {
    let mut archives = 0;
    for (rel, bytes) in snapshot_tree(&cache.join("archives")) {
        let name = Path::new(&rel).file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            fm::fsutil::sha256_hex(&bytes),
            name,
            "{what}: poisoned cache entry {rel}"
        );
        archives += 1;
    }
    let tmp = snapshot_tree(&cache.join("tmp"));
    assert!(
        tmp.is_empty(),
        "{what}: leftovers in the cache's tmp/: {:?}",
        tmp.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    archives
}

#[test]
fn every_fault_ends_in_a_clear_error_or_a_retry_never_a_partial_install_or_poisoned_cache() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("src");
    let sha = reg.publish("a", "1.0.0", &[]);
    let archive = std::fs::read(reg.archive_path("a", "1.0.0")).unwrap();
    let size = archive.len() as u64;
    let server = FaultServer::start(archive.clone());
    let other = FaultServer::start(archive.clone());
    project_for(&ctx, &server.url, &sha, size);

    // (faults in order, expected exit code, words the error must hold)
    let mismatch = ["a", "1.0.0", sha.as_str()];
    let cases: Vec<(Vec<Fault>, i32, &[&str])> = vec![
        (vec![Fault::WrongBytes], 1, &mismatch),
        (vec![Fault::Truncate], 1, &["a@1.0.0"]),
        (vec![Fault::ResetMidBody], 1, &["a@1.0.0"]),
        (vec![Fault::StallMidBody], 1, &["a@1.0.0"]),
        (vec![Fault::Oversized], 1, &["a", "1.0.0"]),
        (vec![Fault::Status500; 3], 1, &["500", "injected failure"]),
        (vec![Fault::RedirectLoop; 11], 1, &["too many redirects"]),
        (vec![Fault::Status500, Fault::Serve], 0, &[]),
        (vec![Fault::Status500, Fault::Status500, Fault::Serve], 0, &[]),
        (vec![Fault::StallBeforeHeaders, Fault::Serve], 0, &[]),
        (vec![Fault::ResetBeforeHeaders, Fault::Serve], 0, &[]),
        (vec![Fault::RedirectTo(other.url.clone())], 0, &[]),
    ];
    let mut injected = 0;
    let (mut errors, mut retried) = (0, 0);
    for (faults, code, words) in &cases {
        let what = format!("{faults:?}");
        let _ = std::fs::remove_dir_all(&ctx.cache);
        let _ = std::fs::remove_dir_all(ctx.project.join(".fm"));
        server.script(faults);
        let out = sync(&ctx);
        let (_, err) = text(&out);
        injected += faults.iter().filter(|f| !matches!(f, Fault::Serve)).count();
        assert_eq!(out.status.code(), Some(*code), "{what}: {err}");
        for w in *words {
            assert!(err.contains(w), "{what}: the error does not say {w:?}:\n{err}");
        }
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(!err.contains(TOKEN), "{what}: the token leaked into stderr");
        let cached = assert_cache_clean(&ctx.cache, &what);
        if *code == 0 {
            retried += 1;
            assert_eq!(cached, 1, "{what}");
            assert_code(&ctx.run(&["verify"]), 0);
            let installed = std::fs::read_to_string(ctx.project.join(".fm/packages/a/components/a.py")).unwrap();
            assert!(installed.contains("1.0.0"), "{what}");
        } else {
            errors += 1;
            assert_eq!(cached, 0, "{what}: a failed download was cached");
            assert!(
                !ctx.project.join(".fm").exists(),
                "{what}: a failed sync left .fm behind"
            );
            // The next clean run heals.
            server.script(&[]);
            let out = sync(&ctx);
            assert_code(&out, 0);
            assert_eq!(assert_cache_clean(&ctx.cache, &what), 1);
            assert_code(&ctx.run(&["verify"]), 0);
        }
        let seen = server.seen();
        if *code != 0 {
            // Every scripted fault was served (the healing run adds one).
            assert_eq!(seen.len(), faults.len() + 1, "{what}: {seen:?}");
        }
        assert!(
            seen.iter()
                .all(|(p, _)| p == "/api/v1/registry/packages/a/1.0.0/download"),
            "{what}: {seen:?}"
        );
        assert!(
            seen.iter()
                .all(|(_, a)| a.as_deref() == Some(&format!("Bearer {TOKEN}"))),
            "{what}: the registry's own origin gets the token: {seen:?}"
        );
        // Another origin never sees the token.
        for (path, auth) in other.seen() {
            assert_eq!(auth, None, "{what}: the token went to another origin ({path})");
        }
    }
    eprintln!(
        "FIGURES faults: {injected} faults injected in {} scenarios; {errors} clear errors, {retried} successful retries; 0 partial installs, 0 poisoned cache entries",
        cases.len()
    );
}

/// What [`watched`] saw of one `fm` run.
struct Watched {
    out: std::process::Output,
    /// Still running at [`WATCHDOG`], so killed.
    killed: bool,
    /// The highest `VmHWM` (peak resident set) seen in `/proc`, in KiB.
    peak_rss_kib: u64,
    secs: f64,
}

/// How long [`watched`] lets `fm` run: a bound on a hang, not a timing
/// assertion (every deadline under test is a few seconds).
const WATCHDOG: Duration = Duration::from_secs(90);

/// Runs `cmd`, killing it at [`WATCHDOG`], and samples its peak memory.
fn watched(cmd: &mut std::process::Command) -> Watched {
    use std::io::Read;
    use std::process::Stdio;
    let started = std::time::Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fm");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status_file = format!("/proc/{}/status", child.id());
    let (mut peak_rss_kib, mut killed) = (0, false);
    loop {
        // VmHWM is the high-water mark so far: sampling it misses nothing
        // but a final spike.
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak_rss_kib = peak_rss_kib.max(kib);
        }
        if child.try_wait().expect("wait fm").is_some() {
            break;
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = child.wait().expect("wait fm");
    Watched {
        out: std::process::Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        },
        killed,
        peak_rss_kib,
        secs: started.elapsed().as_secs_f64(),
    }
}

/// A project depending on `a` from registry `main` at `url`, not locked.
fn unlocked_project(ctx: &TestContext, url: &str) {
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"^1\"\n\n[[registries]]\nname = \"main\"\nurl = \"{url}\"\n"
    ));
}

// Broke: the read timeout restarted on every byte, so a registry sending one
// byte every 100 ms kept `fm lock` waiting forever, whatever
// FM_HTTP_TIMEOUT_SECS said.
#[test]
fn a_registry_that_trickles_bytes_fails_fm_lock_at_the_total_deadline() {
    let ctx = TestContext::new();
    let server = FaultServer::start(Vec::new());
    unlocked_project(&ctx, &server.url);
    let cases: [(Vec<Fault>, &[&str]); 2] = [
        (
            vec![Fault::TrickleBody],
            &["registry main", "not complete within 2 s", "FM_HTTP_TIMEOUT_SECS"],
        ),
        (
            vec![Fault::TrickleHeaders; 3],
            &[
                "registry main",
                "no answer from",
                "within 2 s",
                "attempts",
                "FM_HTTP_TIMEOUT_SECS",
            ],
        ),
    ];
    let mut took = Vec::new();
    for (faults, words) in cases {
        let what = format!("{:?}", faults[0]);
        server.script(&faults);
        let w = watched(ctx.fm().arg("lock").env("FM_HTTP_TIMEOUT_SECS", "2"));
        let (_, err) = text(&w.out);
        assert!(
            !w.killed,
            "{what}: fm lock was still waiting after {WATCHDOG:?}:\n{err}"
        );
        assert_code(&w.out, 1);
        for word in words {
            assert!(err.contains(word), "{what}: the error does not say {word:?}:\n{err}");
        }
        assert!(!ctx.project.join("fm.lock").exists(), "{what}: a lock was written");
        assert_eq!(server.seen().len(), faults.len(), "{what}: every attempt was made");
        if matches!(faults[0], Fault::TrickleBody) {
            insta::assert_snapshot!(ctx.filter(&err), @r"
            fm::registry::http

              x registry main: reading a's document from http://127.0.0.1:[PORT]/api/v1/registry/packages/a:
              | not complete within [TIME]
              help: the registry answers too slowly or not at all; FM_HTTP_TIMEOUT_SECS (now 2 s) is the total
                    deadline of each request (connect, headers and body; archives get 1 s more per 64 KiB
                    received): raise it for a slow registry
            ");
        }
        took.push(format!("{what} {:.1} s", w.secs));
    }
    eprintln!(
        "FIGURES trickle: 1 byte every {} ms, FM_HTTP_TIMEOUT_SECS=2: fm lock failed in {} (watchdog {} s)",
        TRICKLE_EVERY.as_millis(),
        took.join(", "),
        WATCHDOG.as_secs()
    );
}

// Broke: a registry streaming an endless JSON document drove `fm lock` past
// 10 GB of memory (the whole body was read before parsing).
#[cfg(target_os = "linux")]
#[test]
fn an_endless_document_is_cut_off_at_the_cap_with_bounded_memory() {
    let ctx = TestContext::new();
    let server = FaultServer::start(Vec::new());
    unlocked_project(&ctx, &server.url);
    server.script(&[Fault::EndlessJson]);
    // A deadline far away, so that only the cap can end the answer even on a
    // loaded machine.
    let w = watched(ctx.fm().arg("lock").env("FM_HTTP_TIMEOUT_SECS", "600"));
    let (_, err) = text(&w.out);
    assert!(!w.killed, "fm lock was still running after {WATCHDOG:?}:\n{err}");
    let sent = server.sent.load(std::sync::atomic::Ordering::Relaxed);
    let peak_mib = w.peak_rss_kib / 1024;
    assert!(w.peak_rss_kib > 0, "no memory figure read from /proc");
    assert!(
        peak_mib < 128,
        "fm lock's peak memory was {peak_mib} MiB, over twice the 64 MiB cap:\n{err}"
    );
    assert!(sent < ENDLESS, "fm read the whole endless answer ({sent} bytes)");
    assert_code(&w.out, 1);
    for word in ["registry main", "packages/a", "over 64 MiB", "FM_HTTP_MAX_DOCUMENT_MIB"] {
        assert!(err.contains(word), "the error does not say {word:?}:\n{err}");
    }
    insta::assert_snapshot!(ctx.filter(&err), @r"
    fm::registry::http

      x registry main: reading a's document from http://127.0.0.1:[PORT]/api/v1/registry/packages/a:
      | the answer is over 64 MiB
      help: a registry document may have at most 64 MiB (FM_HTTP_MAX_DOCUMENT_MIB); raise
            FM_HTTP_MAX_DOCUMENT_MIB if this registry really serves documents that large
    ");
    eprintln!(
        "FIGURES endless document: cut off after the registry sent {} MiB (cap 64 MiB); fm lock's peak RSS {peak_mib} MiB (bound 128 MiB, twice the cap)",
        sent >> 20
    );
}

// Broke: an archive was read on 64 MiB past the size fm.lock records before
// it was cut off (now 64 KiB, enough to name a near miss's digest).
#[test]
fn an_archive_longer_than_the_lock_is_refused_at_the_locked_size() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("src");
    let sha = reg.publish("a", "1.0.0", &[]);
    let archive = std::fs::read(reg.archive_path("a", "1.0.0")).unwrap();
    let size = archive.len() as u64;
    let server = FaultServer::start(archive);
    project_for(&ctx, &server.url, &sha, size);
    server.script(&[Fault::EndlessArchive]);
    let w = watched(ctx.fm().args(["sync", "--frozen"]).env("FM_TOKEN_MAIN", TOKEN));
    let (_, err) = text(&w.out);
    assert!(!w.killed, "fm sync was still running after {WATCHDOG:?}:\n{err}");
    // What the server got into the socket before fm hung up: the locked size
    // and 64 KiB, plus what the kernel's buffers hold; not the 64 MiB of
    // slack there was.
    let sent = server.sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 32 << 20,
        "the registry sent {} MiB before fm stopped reading:\n{err}",
        sent >> 20
    );
    assert_code(&w.out, 1);
    let limit = size + fm::install::fetch::SIZE_SLACK;
    for word in [
        "a",
        "1.0.0",
        &sha,
        &format!("sent over {limit} bytes, fm.lock records {size}"),
    ] {
        assert!(err.contains(word), "the error does not say {word:?}:\n{err}");
    }
    assert_eq!(assert_cache_clean(&ctx.cache, "endless archive"), 0);
    assert!(!ctx.project.join(".fm").exists(), "a failed sync left .fm behind");
    eprintln!(
        "FIGURES endless archive: locked size {size} bytes; cut off at byte {}; the registry got {} MiB into the socket before fm hung up",
        limit + 1,
        sent >> 20
    );
}

// Broke: descriptions in `fm search` and messages in a registry's error
// answers were printed byte for byte, terminal escapes included.
#[test]
fn registry_text_is_printed_without_control_characters_or_escapes() {
    const EVIL: &str = "\u{1b}[2J\u{1b}]8;;http://evil.example/\u{7}click\u{1b}]8;;\u{7}\u{1b}]52;c;cHduZWQ=\u{7}\r\nUpdated a 1.0.0 -> 6.6.6\u{9b}31m\u{202e}";
    let evil = serde_json::to_string(EVIL).unwrap();
    let ctx = TestContext::new();
    let server = FaultServer::start(Vec::new());
    unlocked_project(&ctx, &server.url);
    let page = format!(
        r#"{{"packages":[{{"name":"a","version":"1.0.0","description":{evil},"tags":[{evil}]}}],"total_count":1,"page":1,"page_size":100,"query":"a"}}"#
    );
    let error = format!(r#"{{"error":{{"code":"bad_request","message":{evil}}}}}"#);
    let runs: Vec<(&str, Vec<Fault>, Vec<&str>, i32)> = vec![
        (
            "fm search",
            vec![Fault::Answer(200, page)],
            vec!["search", "a", "--registry"],
            0,
        ),
        (
            "fm search, 503",
            vec![Fault::Answer(503, error.clone()); 3],
            vec!["search", "a", "--registry"],
            1,
        ),
        ("fm lock, 400", vec![Fault::Answer(400, error)], vec!["lock"], 1),
    ];
    let (mut checked, mut snapshots) = (0, Vec::new());
    for (what, faults, mut args, code) in runs {
        server.script(&faults);
        if args.last() == Some(&"--registry") {
            args.push(&server.url);
        }
        let out = ctx.fm().args(&args).output().expect("run fm");
        assert_code(&out, code);
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(text);
            let bad: Vec<char> = text
                .chars()
                .filter(|&c| (c.is_control() && c != '\n') || c == '\u{202e}')
                .collect();
            assert!(bad.is_empty(), "{what}: {stream} holds {bad:?}:\n{text}");
            assert!(!text.contains("http://evil.example"), "{what}: {stream}:\n{text}");
            checked += 1;
        }
        let (o, e) = text(&out);
        let shown = if code == 0 { o } else { e };
        snapshots.push(format!("{what}:\n{}", ctx.filter(&shown)));
        assert!(shown.contains("click"), "{what}: the registry's text is gone:\n{shown}");
        assert!(
            !shown.lines().any(|l| l.starts_with("Updated a")),
            "{what}: the registry forged a line:\n{shown}"
        );
    }
    insta::assert_snapshot!(snapshots.join("\n"), @r#"
    fm search:
    a 1.0.0  click  Updated a 1.0.0 -> 6.6.6  (http://127.0.0.1:[PORT]/)

    fm search, 503:
    warning: fm::registry::http

      x registry http://127.0.0.1:[PORT]/: searching for "a": http://127.0.0.1:[PORT]/api/v1/registry/
      | packages/search answered 503 Service Unavailable: click  Updated a 1.0.0 -> 6.6.6
      help: try again later; the registry may be overloaded or misconfigured

      x no registry could be searched


    fm lock, 400:
    fm::registry::http

      x registry main: fetching a: http://127.0.0.1:[PORT]/api/v1/registry/packages/a answered 400 Bad
      | Request: click  Updated a 1.0.0 -> 6.6.6
      help: try again later; the registry may be overloaded or misconfigured
    "#);
    eprintln!("FIGURES registry text: 3 answers with escapes, {checked} outputs checked: 0 control characters printed");
}

/// Whether `packages` holds a staging folder of `name` with its unpacked
/// `components/{name}.py`.
fn staged_in(packages: &Path, name: &str) -> bool {
    std::fs::read_dir(packages).into_iter().flatten().flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with(&format!(".fm-tmp-{name}-"))
            && e.path().join(format!("components/{name}.py")).is_file()
    })
}

// Unpacking while downloading: a verified archive is unpacked at once while
// another download is still under way, and when that one then fails its
// digest, the unpacked folder is removed and nothing enters the cache.
#[test]
fn an_archive_is_unpacked_while_others_download_and_a_later_mismatch_still_changes_nothing() {
    let ctx = TestContext::new();
    let main = ctx.dir_registry("main");
    let fast = ["a", "c", "d"];
    let shas: Vec<String> = fast.iter().map(|n| main.publish(n, "1.0.0", &[])).collect();
    let src = ctx.dir_registry("src");
    let sha_b = src.publish("b", "1.0.0", &[]);
    let archive_b = std::fs::read(src.archive_path("b", "1.0.0")).unwrap();
    let size_b = archive_b.len() as u64;
    let slow = FaultServer::start(archive_b);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"1.0.0\"\nb = \"1.0.0\"\nc = \"1.0.0\"\nd = \"1.0.0\"\n\n\
         [[registries]]\nname = \"main\"\nurl = \"{}\"\n\n[[registries]]\nname = \"slow\"\nurl = \"{}\"\n",
        main.url(),
        slow.url
    ));
    let registry = |name: &str, url: String| fm::lock::LockedRegistry {
        name: name.into(),
        url,
        priority: 100,
        explicit: false,
    };
    let package = |name: &str, registry: &str, sha: &str, size: u64| fm::lock::LockedPackage {
        name: name.parse().unwrap(),
        version: semver::Version::new(1, 0, 0),
        registry: registry.into(),
        sha256: sha.parse().unwrap(),
        size,
        dependencies: vec![],
    };
    let mut packages: Vec<fm::lock::LockedPackage> = fast
        .iter()
        .zip(&shas)
        .map(|(n, sha)| {
            let size = std::fs::metadata(main.archive_path(n, "1.0.0")).unwrap().len();
            package(n, "main", sha, size)
        })
        .collect();
    packages.push(package("b", "slow", &sha_b, size_b));
    packages.sort_by(|x, y| x.name.cmp(&y.name));
    fm::lock::Lockfile {
        root: packages.iter().map(|p| format!("{} =1.0.0", p.name)).collect(),
        registries: vec![registry("main", main.url()), registry("slow", slow.url.clone())],
        packages,
        log: Default::default(),
    }
    .save(&ctx.project.join("fm.lock"))
    .expect("write fm.lock");

    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    slow.script(&[Fault::HeldWrongBytes(release.clone())]);
    let mut child = ctx
        .fm()
        .args(["sync", "--frozen"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn fm sync");
    // b's answer is held back until a, c and d are seen unpacked (a bound
    // on a hang, not a timing assertion).
    let packages = ctx.project.join(".fm/packages");
    let started = std::time::Instant::now();
    let mut unpacked_early = false;
    while started.elapsed() < Duration::from_secs(30) && child.try_wait().expect("wait fm").is_none() {
        if fast.iter().all(|n| staged_in(&packages, n)) {
            unpacked_early = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = child.wait_with_output().expect("wait fm sync");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        unpacked_early,
        "a, c, d were not unpacked while b was downloading: {err}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("sha256 mismatch for b 1.0.0 from registry slow"), "{err}");
    assert!(!ctx.project.join(".fm").exists(), "a failed sync left .fm behind");
    assert_eq!(
        assert_cache_clean(&ctx.cache, "held mismatch"),
        0,
        "a is cached though b failed"
    );
    println!(
        "FIGURES streaming-unpack: {n} of {n} verified archives unpacked while 1 download was held; it then failed its digest: exit 1, 0 staged folders left (no .fm), 0 archives cached",
        n = fast.len()
    );

    // The same lock installs once b's registry sends the right bytes.
    slow.script(&[]);
    assert_code(&ctx.run(&["sync", "--frozen"]), 0);
    assert_eq!(assert_cache_clean(&ctx.cache, "after the clean sync"), 4);
    assert_code(&ctx.run(&["verify"]), 0);
}
