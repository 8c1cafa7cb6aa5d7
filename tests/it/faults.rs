//! `fm sync --frozen` against a fault-injecting loopback registry of our
//! own: wrong bytes, truncated bodies, connections reset mid-body, stalls
//! past the client's timeout, 500s, redirects to another origin, bodies
//! longer than the lock says. Every fault ends in a clear error or a
//! successful retry; after an error the project has no `.fm` and the cache
//! holds only archives whose digest verifies; the next clean sync heals.

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
}

/// Requests a fault server answered: path and `Authorization` header.
type Seen = Vec<(String, Option<String>)>;

/// A loopback HTTP/1.1 server answering each request with the next fault of
/// its script (then [`Fault::Serve`]), recording the path and the
/// `Authorization` header it saw.
struct FaultServer {
    url: String,
    script: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Seen>>,
}

/// How long a stall lasts: well past `FM_HTTP_TIMEOUT_SECS=1`.
const STALL: Duration = Duration::from_secs(3);

impl FaultServer {
    fn start(archive: Vec<u8>) -> FaultServer {
        let script: Arc<Mutex<VecDeque<Fault>>> = Arc::default();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, v) = (script.clone(), seen.clone());
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
                    let (v, archive) = (v.clone(), archive.clone());
                    tokio::spawn(async move {
                        let _ = answer(stream, fault, &archive, &v).await;
                    });
                }
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("fault server address");
        FaultServer {
            url: format!("http://{addr}"),
            script,
            seen,
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
    }
    stream.flush().await?;
    Ok(())
}

const TOKEN: &str = "fault-test-token-3b9d";

/// A project locking `a 1.0.0` from registry `main` at `url`.
fn project_for(ctx: &TestContext, url: &str, sha: &str, size: u64) {
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"1.0.0\"\n\n[[registries]]\nname = \"main\"\nurl = \"{url}\"\n"
    ));
    let lock = fm::lock::Lockfile {
        root: vec!["a =1.0.0".into()],
        registries: vec![fm::lock::LockedRegistry {
            name: "main".into(),
            url: url.into(),
            priority: 100,
            explicit: false,
        }],
        packages: vec![fm::lock::LockedPackage {
            name: "a".into(),
            version: semver::Version::new(1, 0, 0),
            registry: "main".into(),
            sha256: sha.into(),
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
