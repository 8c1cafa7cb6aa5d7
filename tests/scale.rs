//! `fm registry serve --storage s3://…`: a registry in a bucket of a real
//! S3-compatible server (moto in server mode, on 127.0.0.1, started here),
//! served by one or more stateless replicas.
//!
//! Needs moto (`python3 -m pip install 'moto[server]'`): .ci/run installs
//! it, and the tests install it themselves when it is missing. Without
//! python3 at all they say so loudly and pass.

mod common;
use common::*;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use fm::registry::object::ObjectStorage;
use fm::registry::storage::Storage;
use serde_json::Value;

const TOKEN: &str = "scale-publish-token";
const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "fm-test"),
    ("AWS_SECRET_ACCESS_KEY", "fm-test"),
    ("AWS_REGION", "us-east-1"),
];

/// One moto server for this test binary. It runs under a shell that kills
/// it when our end of its stdin closes, i.e. when this process exits.
struct Moto {
    endpoint: String,
    _guard: Mutex<(Child, ChildStdin)>,
}

fn moto() -> Option<&'static Moto> {
    static MOTO: OnceLock<Option<Moto>> = OnceLock::new();
    MOTO.get_or_init(start_moto).as_ref()
}

fn start_moto() -> Option<Moto> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!(
            "\n!!!!! SKIPPING the S3 tests: python3 is not installed (they need `pip install 'moto[server]'`) !!!!!\n"
        );
        return None;
    }
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let script =
        format!("python3 -m moto.server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; read _; kill $pid; wait $pid");
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn moto");
    let stdin = child.stdin.take().expect("stdin");
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http(port, "GET", "/", &[]).is_none() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("moto exited ({status}): install it with python3 -m pip install 'moto[server]'");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "moto did not start on {endpoint}: install it with python3 -m pip install 'moto[server]'"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Some(Moto {
        endpoint,
        _guard: Mutex::new((child, stdin)),
    })
}

/// A bare HTTP/1.1 request to 127.0.0.1:`port`; the status, or `None` when
/// nothing answers.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// A fresh bucket; its `s3://` URL (with a prefix) and a direct handle on it.
fn bucket(moto: &Moto, name: &str) -> (String, ObjectStorage) {
    let port: u16 = moto
        .endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert_eq!(
        http(port, "PUT", &format!("/{name}"), &[]),
        Some(200),
        "create bucket {name}"
    );
    let mut b = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(name)
        .with_endpoint(&moto.endpoint)
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
    (url.clone(), ObjectStorage::with_store(Arc::new(store), "reg", url))
}

fn replica(ctx: &TestContext, moto: &Moto, url: &str, id: &str) -> Server {
    ctx.serve(
        Path::new(url),
        &[
            "--storage-endpoint",
            &moto.endpoint,
            "--token",
            TOKEN,
            "--replica-id",
            id,
        ],
        &CREDENTIALS,
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn upload(c: &reqwest::Client, server: &Server, bytes: Vec<u8>) -> (u16, Value) {
    let resp = c
        .post(server.api("packages/upload"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_json(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let resp = c.get(url).send().await.expect("get");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn packed(ctx: &TestContext, name: &str, version: &str, deps: &[(&str, &str)]) -> Vec<u8> {
    let dir = package_source(&ctx.root.join("src").join(version), name, version, deps);
    fm::archive::pack(&dir).expect("pack").bytes
}

fn versions(doc: &Value) -> Vec<String> {
    let mut v: Vec<String> = doc["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["version"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn publish_yank_search_and_sync_through_a_bucket() {
    let Some(moto) = moto() else { return };
    let ctx = TestContext::new();
    let (url, bucket) = bucket(moto, "fm-e2e");
    let server = replica(&ctx, moto, &url, "one");
    let shown = format!("(storage {url})");
    let log = server.log_when(|l| l.contains(&shown));
    assert!(log.contains(&shown), "{log}");

    let mut shas = std::collections::BTreeMap::new();
    for (name, version, deps) in [
        ("a", "1.0.0", &[][..]),
        ("a", "1.1.0", &[][..]),
        ("b", "1.0.0", &[("a", "^1")][..]),
    ] {
        let bytes = packed(&ctx, name, version, deps);
        shas.insert(name, (version, fm::fsutil::sha256_hex(&bytes), bytes.len() as u64));
        let file = ctx.root.join(format!("{name}-{version}.fmpkg"));
        std::fs::write(&file, &bytes).expect("write archive");
        let mut cmd = ctx.fm();
        cmd.arg("publish")
            .arg(&file)
            .args(["--registry", &server.url])
            .env("FLOWMASON_REGISTRY_TOKEN", TOKEN);
        assert_code(&cmd.output().expect("publish"), 0);
        // The bucket holds the directory-registry layout.
        let key = format!("packages/{name}/{name}-{version}.fmpkg");
        assert_eq!(bucket.read(&key).expect("read").expect("archive").0, bytes, "{key}");
    }
    assert_eq!(bucket.list("index/").expect("list"), ["index/a.json", "index/b.json"]);

    let mut cmd = ctx.fm();
    cmd.args(["yank", "a@1.1.0", "--registry", &server.url])
        .env("FLOWMASON_REGISTRY_TOKEN", TOKEN);
    assert_code(&cmd.output().expect("yank"), 0);
    let stored: Value =
        serde_json::from_slice(&bucket.read("index/a.json").expect("read").expect("doc").0).expect("json");
    let record = |v: &str| {
        stored["versions"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["version"] == v).cloned())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        (&record("1.1.0")["yanked"], &record("1.0.0")["yanked"]),
        (&Value::Bool(true), &Value::Bool(false))
    );

    let out = ctx.run(&["search", "b", "--registry", &server.url]);
    assert_code(&out, 0);
    assert!(text(&out).0.starts_with("b 1.0.0"), "{}", text(&out).0);

    // `fm sync --frozen` downloads through the server from the bucket.
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nb = \"^1\"\n\n[[registries]]\nname = \"s3\"\nurl = \"{}\"\n",
        server.url
    ));
    let lock = fm::lock::Lockfile {
        root: vec!["b ^1".to_owned()],
        registries: vec![fm::lock::LockedRegistry {
            name: "s3".to_owned(),
            url: server.url.clone(),
            priority: 100,
            explicit: false,
        }],
        packages: [("a", "1.0.0", None), ("b", "1.0.0", Some("a ^1"))]
            .into_iter()
            .map(|(name, version, dep)| {
                let bytes = packed(&ctx, name, version, &[]);
                let (sha, size) = if name == "b" {
                    (shas["b"].1.clone(), shas["b"].2)
                } else {
                    (fm::fsutil::sha256_hex(&bytes), bytes.len() as u64)
                };
                fm::lock::LockedPackage {
                    name: name.to_owned(),
                    version: semver::Version::parse(version).expect("version"),
                    registry: "s3".to_owned(),
                    sha256: sha,
                    size,
                    dependencies: dep.into_iter().map(str::to_owned).collect(),
                }
            })
            .collect(),
    };
    lock.save(&ctx.project.join("fm.lock")).expect("write fm.lock");
    let out = ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    for name in ["a", "b"] {
        assert!(ctx.project.join(".fm/packages").join(name).exists(), "{name} installed");
    }

    // Download counts land in this replica's own object at shutdown.
    assert!(server.stop().success());
    let counts: Value = serde_json::from_slice(
        &bucket
            .read("stats/downloads/one.json")
            .expect("read")
            .expect("counter object")
            .0,
    )
    .expect("json");
    assert_eq!(
        (counts["a"].as_u64(), counts["b"].as_u64()),
        (Some(1), Some(1)),
        "{counts}"
    );
}

#[test]
fn two_replicas_on_one_bucket_lose_no_publish_and_admit_one_winner() {
    let Some(moto) = moto() else { return };
    let ctx = TestContext::new();
    let (url, bucket) = bucket(moto, "fm-replicas");
    let servers = [replica(&ctx, moto, &url, "r1"), replica(&ctx, moto, &url, "r2")];
    let archives: Vec<Vec<u8>> = (0..50)
        .map(|i| packed(&ctx, "many", &format!("1.{i}.0"), &[]))
        .collect();
    let one = packed(&ctx, "race", "1.0.0", &[]);
    let c = reqwest::Client::new();
    runtime().block_on(async {
        // 50 versions of one package, alternating between the replicas.
        let results = futures_util::future::join_all(
            archives
                .into_iter()
                .enumerate()
                .map(|(i, b)| upload(&c, &servers[i % 2], b)),
        )
        .await;
        assert!(results.iter().all(|r| r.0 == 201), "{results:?}");
        let want: Vec<String> = {
            let mut v: Vec<String> = (0..50).map(|i| format!("1.{i}.0")).collect();
            v.sort();
            v
        };
        for s in &servers {
            let (status, doc) = get_json(&c, &s.api("packages/many")).await;
            assert_eq!(status, 200);
            assert_eq!(versions(&doc), want);
            assert_eq!(doc["latest_version"], "1.49.0");
        }

        // 20 uploads of one version: exactly one wins.
        let results = futures_util::future::join_all((0..20).map(|i| upload(&c, &servers[i % 2], one.clone()))).await;
        let created = results.iter().filter(|r| r.0 == 201).count();
        let conflicts = results.iter().filter(|r| r.0 == 409).count();
        assert_eq!((created, conflicts), (1, 19), "{results:?}");
        let (_, doc) = get_json(&c, &servers[1].api("packages/race")).await;
        assert_eq!(versions(&doc), ["1.0.0"]);

        // Downloads on both replicas add up, without a shared counter.
        for (i, s) in [0, 0, 1].into_iter().map(|i| (i, &servers[i])) {
            let r = c
                .get(s.api("packages/race/1.0.0/download"))
                .send()
                .await
                .expect("download");
            assert_eq!(r.status().as_u16(), 200, "download from replica {i}");
            assert_eq!(r.bytes().await.expect("body").as_ref(), one.as_slice());
        }
    });
    let [r1, r2] = servers;
    assert!(r1.stop().success() && r2.stop().success());
    assert_eq!(
        bucket.list("stats/downloads/").expect("list"),
        ["stats/downloads/r1.json", "stats/downloads/r2.json"]
    );
    let r3 = replica(&ctx, moto, &url, "r3");
    runtime().block_on(async {
        let (_, doc) = get_json(&c, &r3.api("packages/race")).await;
        assert_eq!(doc["downloads"], 3, "{doc}");
    });
}

/// `--storage-cache-ttl`: a replica may serve the document it read for up
/// to the window without asking the bucket; writes through it are seen
/// through it at once, and its writes start from the bucket, never from
/// its own possibly stale copy, so nothing is lost.
#[test]
fn a_freshness_window_bounds_staleness_on_other_replicas_only() {
    let Some(moto) = moto() else { return };
    let ctx = TestContext::new();
    let (url, _bucket) = bucket(moto, "fm-ttl");
    let with_ttl = |id: &str, ttl: &str| {
        ctx.serve(
            Path::new(&url),
            &[
                "--storage-endpoint",
                &moto.endpoint,
                "--token",
                TOKEN,
                "--replica-id",
                id,
                "--storage-cache-ttl",
                ttl,
            ],
            &CREDENTIALS,
        )
    };
    let (a, b) = (with_ttl("a", "1h"), with_ttl("b", "1h"));
    let always = replica(&ctx, moto, &url, "always");
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
    let Some(moto) = moto() else { return };
    let ctx = TestContext::new();
    let (url, bucket) = bucket(moto, "fm-killed");
    let mut doomed = replica(&ctx, moto, &url, "doomed");
    let survivor = replica(&ctx, moto, &url, "survivor");
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
    assert!(bucket.create("packages/k/k-2.0.0.fmpkg", &orphan).expect("orphan"));

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
    assert_eq!(bucket.list("packages/k/").expect("list").len(), 2);
}

#[test]
fn a_missing_bucket_or_a_plain_http_remote_endpoint_fails_at_start() {
    let Some(moto) = moto() else { return };
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
        &moto.endpoint,
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
