//! `fm registry serve --storage s3://…`: a registry in a bucket of a real
//! S3-compatible server (moto in server mode, on 127.0.0.1, started here),
//! served by one or more stateless replicas. The scenarios are shared with
//! the Azure and GCS tests (tests/it/buckets.rs).
//!
//! Needs moto (`python3 -m pip install 'moto[server]'`): .ci/run installs
//! it, and the tests install it themselves when it is missing. Without
//! python3 at all they say so loudly and pass.

use crate::buckets::*;
use crate::common::*;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use fm::registry::object::ObjectStorage;
use fm::registry::storage::Storage;
use serde_json::Value;

const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "fm-test"),
    ("AWS_SECRET_ACCESS_KEY", "fm-test"),
    ("AWS_REGION", "us-east-1"),
];

/// One moto server for this test binary.
pub(crate) fn moto() -> &'static Service {
    static MOTO: OnceLock<Service> = OnceLock::new();
    MOTO.get_or_init(start_moto)
}

fn start_moto() -> Service {
    have("python3", "the S3 tests (they need `pip install 'moto[server]'`)");
    // The test installs what it needs: on a fresh machine `cargo test` alone
    // works (.ci/run installs moto up front as well).
    let has_moto = |py: &str| {
        Command::new("python3")
            .args(["-c", py])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has_moto("import moto.server") {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "moto[server]"])
            .status()
            .expect("run pip");
        assert!(
            status.success() && has_moto("import moto.server"),
            "cannot install moto: run python3 -m pip install 'moto[server]'"
        );
    }
    let port = free_port();
    start_service(
        &format!("python3 -m moto.server -H 127.0.0.1 -p {port}"),
        port,
        "install it with python3 -m pip install 'moto[server]'",
    )
}

/// A fresh bucket `name` on moto, with the prefix `reg`.
pub(crate) fn bucket(moto: &Service, name: &str) -> Bucket {
    assert_eq!(
        http(moto.port, "PUT", &format!("/{name}"), &[]),
        Some(200),
        "create bucket {name}"
    );
    let mut b = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(name)
        .with_endpoint(moto.endpoint())
        .with_allow_http(true);
    for (k, v) in CREDENTIALS {
        b = match k {
            "AWS_ACCESS_KEY_ID" => b.with_access_key_id(v),
            "AWS_SECRET_ACCESS_KEY" => b.with_secret_access_key(v),
            _ => b.with_region(v),
        };
    }
    let store = b.build().expect("s3 client");
    let url = format!("s3://{name}/reg");
    Bucket {
        direct: ObjectStorage::with_store(Arc::new(store), "reg", url.clone()),
        url,
        flags: vec!["--storage-endpoint".to_owned(), moto.endpoint()],
        env: CREDENTIALS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

#[test]
fn publish_yank_search_and_sync_through_a_bucket() {
    let moto = moto();
    publish_yank_search_and_sync(&TestContext::new(), &bucket(moto, "fm-e2e"));
}

#[test]
fn two_replicas_on_one_bucket_lose_no_publish_and_admit_one_winner() {
    let moto = moto();
    replicas_lose_no_publish_and_admit_one_winner(&TestContext::new(), &bucket(moto, "fm-replicas"), 50, 20);
}

/// `--storage-cache-ttl`: a replica may serve the document it read for up
/// to the window without asking the bucket; writes through it are seen
/// through it at once, and its writes start from the bucket, never from
/// its own possibly stale copy, so nothing is lost.
#[test]
fn a_freshness_window_bounds_staleness_on_other_replicas_only() {
    let moto = moto();
    let ctx = TestContext::new();
    let bucket = bucket(moto, "fm-ttl");
    let with_ttl = |id: &str, ttl: &str| bucket.replica_with(&ctx, id, &["--storage-cache-ttl", ttl]);
    let (a, b) = (with_ttl("a", "1h"), with_ttl("b", "1h"));
    let always = bucket.replica(&ctx, "always");
    let archives: Vec<Vec<u8>> = ["1.0.0", "2.0.0", "3.0.0"]
        .iter()
        .map(|v| packed(&ctx, "cached", v, &[]))
        .collect();
    let c = reqwest::Client::new();
    let doc_of = |s: &Server| s.api("packages/cached");
    runtime().block_on(async {
        assert_eq!(upload(&c, &a, archives[0].clone()).await.0, 201);
        // Both a and b now hold a copy of the document with 1.0.0.
        for s in [&a, &b] {
            let (status, doc) = get_json(&c, &doc_of(s)).await;
            assert_eq!((status, versions(&doc)), (200, vec!["1.0.0".to_owned()]));
        }

        assert_eq!(upload(&c, &a, archives[1].clone()).await.0, 201);
        let both = vec!["1.0.0".to_owned(), "2.0.0".to_owned()];
        // The writer sees its own write at once, and so does a replica
        // without a window …
        assert_eq!(versions(&get_json(&c, &doc_of(&a)).await.1), both);
        assert_eq!(versions(&get_json(&c, &doc_of(&always)).await.1), both);
        // … while b keeps the copy it read, for up to its window (an hour).
        assert_eq!(versions(&get_json(&c, &doc_of(&b)).await.1), ["1.0.0"]);
        let r = c
            .get(b.api("packages/cached/2.0.0/download"))
            .send()
            .await
            .expect("download");
        assert_eq!(r.status().as_u16(), 404, "not listed in b's copy yet");

        // A yank through b starts from the bucket: 2.0.0 is not lost, and b
        // sees its own write at once.
        let r = c
            .put(b.api("packages/cached/1.0.0/yank"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("yank");
        assert_eq!(r.status().as_u16(), 200);
        for s in [&b, &always] {
            let doc = get_json(&c, &doc_of(s)).await.1;
            assert_eq!(versions(&doc), both, "{doc}");
            let yanked: Vec<&Value> = doc["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["yanked"] == true)
                .map(|r| &r["version"])
                .collect();
            assert_eq!(yanked, ["1.0.0"], "{doc}");
        }
    });

    // A short window runs out: d catches up with a publish through a
    // without any write through d.
    let d = with_ttl("d", "200ms");
    runtime().block_on(async {
        assert_eq!(versions(&get_json(&c, &doc_of(&d)).await.1).len(), 2);
        assert_eq!(upload(&c, &a, archives[2].clone()).await.0, 201);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while versions(&get_json(&c, &doc_of(&d)).await.1).len() < 3 {
            assert!(std::time::Instant::now() < deadline, "d never saw 3.0.0");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn a_replica_killed_mid_upload_leaves_no_partial_version() {
    let moto = moto();
    let ctx = TestContext::new();
    let bucket = bucket(moto, "fm-killed");
    let mut doomed = bucket.replica(&ctx, "doomed");
    let survivor = bucket.replica(&ctx, "survivor");
    let bytes = packed(&ctx, "k", "1.0.0", &[]);

    // Half an upload, then the replica dies (SIGKILL: nothing runs after).
    let addr = doomed.url.trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    let head = format!(
        "POST /api/v1/registry/packages/upload HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    );
    s.write_all(head.as_bytes()).expect("send head");
    s.write_all(&bytes[..bytes.len() / 2]).expect("send half");
    s.flush().expect("flush");
    doomed.child.kill().expect("kill");
    doomed.child.wait().expect("reap");
    drop(doomed);

    // A replica that died after writing the archive but before the
    // document: the archive is in the bucket, unlisted.
    let orphan = packed(&ctx, "k", "2.0.0", &[]);
    assert!(
        bucket
            .direct
            .create("packages/k/k-2.0.0.fmpkg", &orphan)
            .expect("orphan")
    );

    let c = reqwest::Client::new();
    runtime().block_on(async {
        assert_eq!(get_json(&c, &survivor.api("packages/k")).await.0, 404);
        for v in ["1.0.0", "2.0.0"] {
            let r = c
                .get(survivor.api(&format!("packages/k/{v}/download")))
                .send()
                .await
                .expect("download");
            assert_eq!(r.status().as_u16(), 404, "k@{v} is not published");
        }
        let (_, found) = get_json(&c, &survivor.api("packages/search?q=k")).await;
        assert_eq!(found["total_count"], 0, "{found}");
        // Uploading the same bytes again completes both.
        assert_eq!(upload(&c, &survivor, bytes.clone()).await.0, 201);
        assert_eq!(upload(&c, &survivor, orphan.clone()).await.0, 201);
        let (_, doc) = get_json(&c, &survivor.api("packages/k")).await;
        assert_eq!(versions(&doc), ["1.0.0", "2.0.0"]);
    });
    assert_eq!(bucket.direct.list("packages/k/").expect("list").len(), 2);
}

#[test]
fn a_missing_bucket_or_a_plain_http_remote_endpoint_fails_at_start() {
    let moto = moto();
    let ctx = TestContext::new();
    let mut cmd = ctx.fm();
    cmd.args([
        "registry",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--storage",
        "s3://fm-no-such-bucket/reg",
        "--storage-endpoint",
        &moto.endpoint(),
    ])
    .envs(CREDENTIALS);
    let out = cmd.output().expect("serve");
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(
        err.contains("cannot reach the storage s3://fm-no-such-bucket/reg") && err.contains("bucket exists"),
        "{err}"
    );

    let mut cmd = ctx.fm();
    cmd.args([
        "registry",
        "serve",
        "--storage",
        "s3://b/reg",
        "--storage-endpoint",
        "http://s3.example.com",
    ]);
    let out = cmd.output().expect("serve");
    assert_code(&out, 1);
    assert!(
        text(&out).1.contains("only allowed on a loopback address"),
        "{}",
        text(&out).1
    );
}

// ---------------------------------------------------------------------------
// --redirect-downloads

/// A recording TCP pass-through in front of moto: every byte in both
/// directions is kept, so a test can see what reached the "bucket host".
/// With `expire` set, a request carrying a pre-signed signature is answered
/// `403` the way S3 answers an expired link, instead of being forwarded.
struct Proxy {
    endpoint: String,
    seen: Arc<Mutex<Vec<u8>>>,
    expire: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let expire = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, refuse) = (seen.clone(), expire.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (log, refuse, upstream) = (log.clone(), refuse.clone(), upstream.clone());
                std::thread::spawn(move || Proxy::connection(client, &upstream, &log, &refuse));
            }
        });
        Proxy { endpoint, seen, expire }
    }

    fn connection(
        mut client: std::net::TcpStream,
        upstream: &str,
        log: &Arc<Mutex<Vec<u8>>>,
        refuse: &std::sync::atomic::AtomicBool,
    ) {
        // The first request head decides; later requests on a forwarded
        // connection are only recorded.
        let mut head = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        log.lock().expect("log").extend_from_slice(&head);
        if refuse.load(std::sync::atomic::Ordering::SeqCst)
            && String::from_utf8_lossy(&head).contains("X-Amz-Signature")
        {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
            let answer = format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(answer.as_bytes());
            return;
        }
        let Ok(mut server) = std::net::TcpStream::connect(upstream) else {
            return;
        };
        if server.write_all(&head).is_err() {
            return;
        }
        let (Ok(mut server_r), Ok(mut client_w)) = (server.try_clone(), client.try_clone()) else {
            return;
        };
        let back_log = log.clone();
        let back = std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = server_r.read(&mut buf) {
                if n == 0 || client_w.write_all(&buf[..n]).is_err() {
                    break;
                }
                back_log.lock().expect("log").extend_from_slice(&buf[..n]);
            }
            let _ = client_w.shutdown(std::net::Shutdown::Write);
        });
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 || server.write_all(&buf[..n]).is_err() {
                break;
            }
            log.lock().expect("log").extend_from_slice(&buf[..n]);
        }
        let _ = server.shutdown(std::net::Shutdown::Write);
        let _ = back.join();
    }

    /// Everything that went through, both ways, as text.
    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("log")).into_owned()
    }
}

/// A raw `GET` with headers to `server`; the status line and headers.
fn raw_get(server: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let addr = server.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let head = answer.split("\r\n\r\n").next().unwrap_or("").to_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head)
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn redirected_downloads_come_from_the_bucket_verified_and_without_the_token() {
    let moto = moto();
    let ctx = TestContext::new();
    let made = bucket(moto, "fm-redirect");
    let (url, bucket) = (made.url.clone(), made.direct);
    // The replica reaches the bucket through the proxy, so the URLs it signs
    // send clients there too.
    let proxy = Proxy::start(&moto.endpoint());
    let server = ctx.serve(
        Path::new(&url),
        &[
            "--storage-endpoint",
            &proxy.endpoint,
            "--token",
            TOKEN,
            "--require-auth",
            "--redirect-downloads",
            "--redirect-expires",
            "120",
            "--replica-id",
            "redir",
        ],
        &CREDENTIALS,
    );
    let mut shas = std::collections::BTreeMap::new();
    for (name, deps) in [("a", &[][..]), ("b", &[("a", "^1")][..])] {
        let bytes = packed(&ctx, name, "1.0.0", deps);
        shas.insert(name, fm::fsutil::sha256_hex(&bytes));
        fm::registry::publish::publish(&bucket, &bytes, None, &fm::archive::Limits::default(), None).expect("publish");
    }

    // The route answers 307 to a pre-signed bucket URL, never cacheable for
    // long; a client holding the digest still gets 304; reads need the token.
    let bearer = format!("Bearer {TOKEN}");
    let path = "/api/v1/registry/packages/a/1.0.0/download";
    let (status, head) = raw_get(&server, path, &[("Authorization", &bearer)]);
    assert_eq!(status, 307, "{head}");
    let location = header(&head, "location").expect("Location");
    assert!(
        location.starts_with(&format!("{}/fm-redirect/reg/packages/a/a-1.0.0.fmpkg?", proxy.endpoint))
            && location.contains("X-Amz-Signature=")
            && location.contains("X-Amz-Expires=120"),
        "{location}"
    );
    assert_eq!(header(&head, "cache-control"), Some("no-store"), "{head}");
    let etag = format!("\"{}\"", shas["a"]);
    let (status, head) = raw_get(&server, path, &[("Authorization", &bearer), ("If-None-Match", &etag)]);
    assert_eq!((status, header(&head, "etag")), (304, Some(etag.as_str())), "{head}");
    assert_eq!(raw_get(&server, path, &[]).0, 401);
    assert_eq!(
        raw_get(
            &server,
            "/api/v1/registry/packages/a/9.9.9/download",
            &[("Authorization", &bearer)]
        )
        .0,
        404
    );

    // lock + sync with the token configured for the registry.
    let manifest = format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nb = \"^1\"\n\n[[registries]]\nname = \"corp\"\nurl = \"{}\"\n",
        server.url
    );
    ctx.write_manifest(&manifest);
    let with_token = |ctx: &TestContext, args: &[&str]| {
        let mut cmd = ctx.fm();
        cmd.args(args).env("FM_TOKEN_CORP", TOKEN);
        cmd.output().expect("run fm")
    };
    assert_code(&with_token(&ctx, &["lock"]), 0);
    assert_code(&with_token(&ctx, &["sync"]), 0);
    for name in ["a", "b"] {
        let installed = std::fs::read_to_string(ctx.project.join(format!(".fm/packages/{name}/components/{name}.py")))
            .expect("installed component");
        assert!(installed.starts_with(&format!("# {name} 1.0.0")), "{installed}");
    }

    // The bytes came from the bucket host, fetched with the signed URLs,
    // and the token never went there.
    let seen = proxy.seen();
    let signed_gets = |name: &str| {
        let get = format!("GET /fm-redirect/reg/packages/{name}/{name}-1.0.0.fmpkg?");
        // Both directions of every connection share one log, so a request
        // line may follow a response's last bytes on the same "line".
        seen.match_indices(&get)
            .filter(|(i, _)| {
                seen[*i..]
                    .lines()
                    .next()
                    .is_some_and(|l| l.contains("X-Amz-Signature="))
            })
            .count()
    };
    for name in ["a", "b"] {
        assert_eq!(signed_gets(name), 1, "signed GETs of {name} through the proxy");
    }
    assert!(!seen.contains(TOKEN), "the registry token reached the storage host");
    assert!(!server.log().contains(TOKEN));

    // Counted at redirect time: two redirects of a (raw + sync), one of b.
    let c = reqwest::Client::new();
    runtime().block_on(async {
        for (name, want) in [("a", 2), ("b", 1)] {
            let doc: Value = c
                .get(server.api(&format!("packages/{name}")))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            assert_eq!(doc["downloads"], want, "{name}: {doc}");
        }
    });

    // Tampered bytes in the bucket: a fresh project with the same lock
    // refuses them and installs nothing.
    let other = TestContext::new();
    other.write_manifest(&manifest);
    std::fs::copy(ctx.project.join("fm.lock"), other.project.join("fm.lock")).expect("copy lock");
    let key = "packages/a/a-1.0.0.fmpkg";
    let (_, tag) = bucket.read(key).expect("read").expect("archive");
    let evil = packed(&other, "a", "1.0.0", &[("b", "^1")]);
    assert!(bucket.swap(key, Some(&tag), &evil).expect("overwrite"));
    let before = snapshot_tree(&other.project);
    let out = with_token(&other, &["sync"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains("sha256 mismatch for a 1.0.0 from registry corp"), "{err}");
    assert_eq!(
        snapshot_tree(&other.project),
        before,
        "a failed sync changed the project"
    );

    // An expired link: the storage host's refusal names registry and package.
    proxy.expire.store(true, std::sync::atomic::Ordering::SeqCst);
    let third = TestContext::new();
    third.write_manifest(&manifest);
    std::fs::copy(ctx.project.join("fm.lock"), third.project.join("fm.lock")).expect("copy lock");
    let out = with_token(&third, &["sync"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    println!(
        "FIGURES redirect: 2 archives fetched by signed GETs from the bucket host ({} bytes through it both ways), 0 tokens there; 1 tampered archive refused, 1 expired link refused",
        seen.len()
    );
    assert!(
        // (miette wraps long lines: test words, not sentences)
        err.contains("registry corp: downloading ")
            && err.contains("403 Forbidden")
            && err.contains("AccessDenied")
            && err.contains("may have expired")
            && !err.contains("X-Amz-Signature"),
        "{err}"
    );
}

#[test]
fn redirect_downloads_needs_a_bucket() {
    let ctx = TestContext::new();
    let out = ctx.run(&[
        "registry",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--storage",
        "./reg",
        "--redirect-downloads",
    ]);
    assert_code(&out, 2);
    let err = text(&out).1;
    assert!(
        err.contains("--redirect-downloads needs a storage that can sign URLs") && err.contains("reg"),
        "{err}"
    );
    let out = ctx.run(&["registry", "serve", "--storage", "./reg", "--redirect-expires", "60"]);
    assert_code(&out, 2);
}
