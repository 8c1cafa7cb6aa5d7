//! The HTTP registry client against real servers on loopback: the real
//! `fm registry serve`, and small recording servers of our own for what it
//! cannot show (redirects to another origin, 5xx, a FlowMason Studio
//! server without `versions`).

use crate::common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use fm::registry::{HttpRegistry, OpenOptions, Registry, RegistryError};

const TOKEN: &str = "sekrit-token-123";

fn opts(cache: &std::path::Path, token: Option<&str>) -> OpenOptions {
    OpenOptions {
        offline: false,
        token: token.map(str::to_owned),
        token_origin: None,
        mirror: None,
        cache_dir: cache.to_owned(),
    }
}

fn url(s: &str) -> url::Url {
    url::Url::parse(s).expect("url")
}

// ---------------------------------------------------------------------------
// A recording HTTP/1.1 server (one thread a connection, `Connection: close`).

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    fn start(bind: &str, handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Recorder {
        let listener = TcpListener::bind(bind).expect("bind recorder");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, handler) = (seen.clone(), Arc::new(handler));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, path) = (
                        parts.next().unwrap_or("").to_owned(),
                        parts.next().unwrap_or("").to_owned(),
                    );
                    let mut headers = Vec::new();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.trim_end().split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                            headers.push((k.to_owned(), v.trim().to_owned()));
                        }
                    }
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body);
                    let req = Seen { method, path, headers };
                    let n = {
                        let mut l = log.lock().expect("log");
                        l.push(req.clone());
                        l.len()
                    };
                    let (status, headers, body) = handler(&req, n);
                    let mut out = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    let _ = stream.write_all(out.as_bytes());
                    let _ = stream.write_all(&body);
                });
            }
        });
        Recorder { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

fn json_reply(v: serde_json::Value) -> Reply {
    (
        200,
        vec![("content-type".into(), "application/json".into())],
        v.to_string().into_bytes(),
    )
}

fn doc_json(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "version": "1.0.0", "checksum": "", "size_bytes": 0,
        // A version record's checksum is checked when the document is read.
        "versions": [{"version": "1.0.0", "checksum": "0".repeat(64), "size_bytes": 0, "dependencies": {}}]
    })
}

// ---------------------------------------------------------------------------

#[test]
fn token_is_not_sent_after_a_redirect_to_another_origin() {
    let ctx = TestContext::new();
    let other = Recorder::start("127.0.0.1:0", |req, _| {
        let name = req.path.rsplit('/').next().unwrap_or("").to_owned();
        json_reply(doc_json(&name))
    });
    let other_url = other.url.clone();
    let origin = Recorder::start("127.0.0.1:0", move |req, _| {
        let name = req.path.rsplit('/').next().unwrap_or("").to_owned();
        if name == "same" {
            if req.path.starts_with("/moved/") {
                return json_reply(doc_json("same"));
            }
            return (302, vec![("location".into(), "/moved/same".into())], Vec::new());
        }
        // Off to another port: another origin.
        let to = format!("{other_url}/api/v1/registry/packages/{name}");
        (302, vec![("location".into(), to)], Vec::new())
    });
    let reg = HttpRegistry::new("corp", &url(&origin.url), &opts(&ctx.cache, Some(TOKEN))).expect("open");
    runtime().block_on(async {
        let doc = reg.document("away").await.expect("document").expect("found");
        assert_eq!(doc.info.name, "away");
        let doc = reg.document("same").await.expect("document").expect("found");
        assert_eq!(doc.info.name, "same");
    });
    let bearer = format!("Bearer {TOKEN}");
    let at_origin = origin.seen();
    assert_eq!(at_origin.len(), 3, "{at_origin:?}");
    assert!(
        at_origin
            .iter()
            .all(|r| r.header("authorization") == Some(bearer.as_str())),
        "{at_origin:?}"
    );
    let at_other = other.seen();
    assert_eq!(at_other.len(), 1);
    assert_eq!(at_other[0].method, "GET");
    assert_eq!(at_other[0].header("authorization"), None, "token leaked: {at_other:?}");
    // Debug never shows the token.
    assert!(!format!("{reg:?}").contains(TOKEN));
}

#[test]
fn a_download_redirected_to_storage_gets_no_token_and_storage_errors_name_the_package() {
    let ctx = TestContext::new();
    // The "bucket": same host as the registry, another port (another origin).
    let storage = Recorder::start("127.0.0.1:0", |req, _| {
        let object = req.path.split('?').next().unwrap_or("").to_owned();
        let xml = |code: &str, message: &str| {
            format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{message}</Message><SignatureProvided>deadbeef</SignatureProvided></Error>").into_bytes()
        };
        match object.as_str() {
            "/bucket/ok" => (200, Vec::new(), b"archive bytes".to_vec()),
            "/bucket/expired" => (403, Vec::new(), xml("AccessDenied", "Request has expired")),
            "/bucket/gone" => (404, Vec::new(), xml("NoSuchKey", "The specified key does not exist.")),
            _ => (307, vec![("location".into(), req.path.clone())], Vec::new()),
        }
    });
    let storage_url = storage.url.clone();
    let origin = Recorder::start("127.0.0.1:0", move |req, _| {
        let package = req.path.split('/').nth(5).unwrap_or("").to_owned();
        let to = format!("{storage_url}/bucket/{package}?X-Amz-Expires=300&X-Amz-Signature=deadbeef");
        (307, vec![("location".into(), to)], Vec::new())
    });
    let reg = HttpRegistry::new("corp", &url(&origin.url), &opts(&ctx.cache, Some(TOKEN))).expect("open");
    let download = |package: &str| {
        let mut bytes = Vec::new();
        runtime()
            .block_on(reg.download(package, "1.0.0", &mut bytes))
            .map(|_| bytes)
    };
    assert_eq!(download("ok").expect("download"), b"archive bytes");
    let failed = |package: &str| {
        let e = download(package).expect_err("storage error");
        let help = miette::Diagnostic::help(&e).map(|h| h.to_string()).unwrap_or_default();
        format!("{e}\n{help}")
    };
    let expired = failed("expired");
    assert!(
        expired.contains("registry corp: downloading expired@1.0.0")
            && expired.contains("403")
            && expired.contains("AccessDenied: Request has expired")
            && expired.contains("may have expired"),
        "{expired}"
    );
    let gone = failed("gone");
    assert!(
        gone.contains("registry corp: downloading gone@1.0.0") && gone.contains("404") && gone.contains("NoSuchKey"),
        "{gone}"
    );
    let looped = failed("loop");
    assert!(
        looped.contains("registry corp: downloading loop@1.0.0: too many redirects"),
        "{looped}"
    );
    for e in [&expired, &gone, &looped] {
        assert!(
            !e.contains("deadbeef") && !e.contains(TOKEN),
            "signature or token in an error: {e}"
        );
    }

    let bearer = format!("Bearer {TOKEN}");
    let at_origin = origin.seen();
    assert_eq!(at_origin.len(), 4, "{at_origin:?}");
    assert!(
        at_origin
            .iter()
            .all(|r| r.header("authorization") == Some(bearer.as_str()))
    );
    let at_storage = storage.seen();
    assert!(
        at_storage.len() > 10,
        "the loop was followed to the limit: {at_storage:?}"
    );
    for r in &at_storage {
        assert!(
            r.headers.iter().all(|(_, v)| !v.contains(TOKEN)),
            "token sent to the storage host: {r:?}"
        );
    }
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times() {
    let ctx = TestContext::new();
    let flaky = Recorder::start("127.0.0.1:0", |req, n| {
        if req.path.ends_with("/down") || n <= 2 {
            (
                503,
                Vec::new(),
                b"{\"error\":{\"code\":\"x\",\"message\":\"busy\"}}".to_vec(),
            )
        } else {
            json_reply(doc_json("up"))
        }
    });
    let reg = HttpRegistry::new("flaky", &url(&flaky.url), &opts(&ctx.cache, None)).expect("open");
    runtime().block_on(async {
        let doc = reg
            .document("up")
            .await
            .expect("third attempt succeeds")
            .expect("found");
        assert_eq!(doc.info.name, "up");
        let err = reg.document("down").await.expect_err("503 every time");
        let text = err.to_string();
        assert!(
            text.contains("flaky") && text.contains("503") && text.contains("busy"),
            "{text}"
        );
    });
    assert_eq!(flaky.seen().len(), 3 + 3);
}

#[test]
fn documents_are_cached_revalidated_with_etags_and_read_offline() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("st");
    reg.publish("a", "1.0.0", &[("b", "^1")]);
    let server = ctx.serve(&reg.root, &[], &[]);
    let rt = runtime();
    let first = HttpRegistry::new("srv", &url(&server.url), &opts(&ctx.cache, None)).expect("open");
    rt.block_on(async {
        // Many concurrent callers, one request.
        let docs = futures_util::future::join_all((0..20).map(|_| first.document("a"))).await;
        assert!(docs.iter().all(|d| d.as_ref().is_ok_and(|d| d.is_some())));
        assert!(first.document("nope").await.expect("404 is none").is_none());
    });
    let second = HttpRegistry::new("srv", &url(&server.url), &opts(&ctx.cache, None)).expect("open");
    rt.block_on(async {
        let doc = second.document("a").await.expect("document").expect("found");
        assert_eq!(doc.versions.as_ref().map(Vec::len), Some(1));
        assert_eq!(doc.versions.as_ref().expect("versions")[0].dependencies["b"], "^1");
    });
    let log = server.log_when(|l| l.contains("GET /api/v1/registry/packages/a 304"));
    assert_eq!(log.matches("GET /api/v1/registry/packages/a 200").count(), 1, "{log}");
    assert_eq!(log.matches("GET /api/v1/registry/packages/a 304").count(), 1, "{log}");
}

#[test]
fn offline_uses_the_cache_alone() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("st");
    reg.publish("a", "1.0.0", &[]);
    let server = ctx.serve(&reg.root, &[], &[]);
    let base = url(&server.url);
    let rt = runtime();
    rt.block_on(async {
        let online = HttpRegistry::new("srv", &base, &opts(&ctx.cache, None)).expect("open");
        online.document("a").await.expect("document").expect("found");
    });
    drop(server);
    let mut o = opts(&ctx.cache, None);
    o.offline = true;
    let offline = HttpRegistry::new("srv", &base, &o).expect("open");
    rt.block_on(async {
        let doc = offline.document("a").await.expect("cached").expect("found");
        assert_eq!(doc.info.version, "1.0.0");
        let err = offline.document("b").await.expect_err("not cached");
        assert!(matches!(err, RegistryError::Offline { .. }), "{err}");
    });
}

#[test]
fn a_mirror_serves_while_the_canonical_url_is_kept_and_gets_no_token() {
    let ctx = TestContext::new();
    let mirror = Recorder::start("127.0.0.1:0", |req, _| {
        let name = req.path.rsplit('/').next().unwrap_or("").to_owned();
        json_reply(doc_json(&name))
    });
    let canonical = url("http://127.0.0.1:9/");
    let mut o = opts(&ctx.cache, Some(TOKEN));
    o.mirror = Some(url(&mirror.url));
    let reg = fm::registry::open("corp", &canonical, &o).expect("open");
    assert_eq!(reg.url(), &canonical);
    runtime().block_on(async {
        reg.document("a").await.expect("document").expect("found");
    });
    let seen = mirror.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/v1/registry/packages/a");
    assert_eq!(seen[0].header("authorization"), None);
}

/// FlowMason Studio 1.0.24 as captured: PackageInfo without `versions`,
/// search listing every version, relative download URLs.
fn flowmason_studio() -> (Recorder, Arc<Mutex<usize>>) {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/flowmason/packages"
    ));
    let mut infos = Vec::new();
    for f in [
        "text-utils-1.0.0",
        "text-utils-1.1.0",
        "summarizer-1.0.0",
        "support-bot-1.0.0",
    ] {
        let bytes = std::fs::read(dir.join(format!("{f}.fmpkg"))).expect("fixture");
        let m = fm::archive::read_manifest(&bytes).expect("manifest");
        let (name, version) = (m.raw.name.clone(), m.raw.version.clone());
        let info = serde_json::json!({
            "name": name, "version": version, "description": m.raw.description,
            "author": m.raw.author, "author_email": null,
            "download_url": format!("/api/v1/registry/packages/{name}/{version}/download"),
            "checksum": fm::fsutil::sha256_hex(&bytes), "size_bytes": bytes.len(),
            "components": m.raw.components, "component_count": m.raw.components.len(),
            "tags": m.raw.tags.clone().unwrap_or_default(), "category": m.raw.category,
            "license": m.raw.license, "homepage": null, "repository": m.raw.repository,
            "published_at": "2026-11-21T22:49:39.338659", "downloads": 0,
            "available_versions": [], "latest_version": version,
        });
        infos.push((info, bytes));
    }
    // Studio skips the digest check when `checksum` is empty; fm cannot
    // lock such a version, and leaves it out without losing the others.
    let (mut unverifiable, bytes) = infos[0].clone();
    unverifiable["version"] = "0.9.0".into();
    unverifiable["latest_version"] = "0.9.0".into();
    unverifiable["checksum"] = "".into();
    infos.push((unverifiable, bytes));
    let downloads = Arc::new(Mutex::new(0));
    let counter = downloads.clone();
    let rec = Recorder::start("127.0.0.1:0", move |req, _| {
        let path = req.path.split('?').next().unwrap_or("");
        let rest = path.strip_prefix("/api/v1/registry/").unwrap_or("");
        let seg: Vec<&str> = rest.split('/').collect();
        match seg.as_slice() {
            ["packages", "search"] => {
                let q: std::collections::HashMap<String, String> = url(&format!("http://x{}", req.path))
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let needle = q.get("q").cloned().unwrap_or_default().to_lowercase();
                let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                let size: usize = q.get("page_size").and_then(|p| p.parse().ok()).unwrap_or(20);
                let hits: Vec<_> = infos
                    .iter()
                    .map(|(i, _)| i.clone())
                    .filter(|i| i["name"].as_str().unwrap_or("").contains(&needle))
                    .collect();
                let page_hits: Vec<_> = hits.iter().skip((page - 1) * size).take(size).cloned().collect();
                json_reply(
                    serde_json::json!({"packages": page_hits, "total_count": hits.len(), "page": page, "page_size": size, "query": needle}),
                )
            }
            ["packages", name] => {
                // FlowMason's bug: the last file name in string order.
                match infos.iter().rev().find(|(i, _)| i["name"] == *name) {
                    Some((i, _)) => json_reply(i.clone()),
                    None => (
                        404,
                        Vec::new(),
                        format!("{{\"detail\":\"Package '{name}' not found\"}}").into_bytes(),
                    ),
                }
            }
            ["packages", name, version, "download"] => {
                *counter.lock().expect("count") += 1;
                match infos
                    .iter()
                    .find(|(i, _)| i["name"] == *name && i["version"] == *version)
                {
                    Some((_, b)) => (
                        200,
                        vec![("content-type".into(), "application/octet-stream".into())],
                        b.clone(),
                    ),
                    None => (404, Vec::new(), Vec::new()),
                }
            }
            _ => (404, Vec::new(), b"{\"error\":\"Not found\"}".to_vec()),
        }
    });
    (rec, downloads)
}

#[test]
fn legacy_flowmason_servers_give_versions_and_dependencies_from_archives() {
    let ctx = TestContext::new();
    let (studio, downloads) = flowmason_studio();
    let rt = runtime();
    for round in 0..2 {
        let reg = HttpRegistry::new("studio", &url(&studio.url), &opts(&ctx.cache, None)).expect("open");
        rt.block_on(async {
            let bot = reg.document("support-bot").await.expect("document").expect("found");
            let v = bot.versions.as_ref().expect("versions");
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].dependencies["summarizer"], "^1.0.0");
            assert_eq!(v[0].dependencies["text-utils"], ">=1.1.0, <2.0.0");
            let tu = reg.document("text-utils").await.expect("document").expect("found");
            let versions: Vec<&str> = tu.versions_newest_first().iter().map(|r| r.version.as_str()).collect();
            assert_eq!(versions, ["1.1.0", "1.0.0"], "round {round}");
            // FlowMason's prefix match (`text` → text-utils) is not a package.
            assert!(reg.document("text").await.expect("document").is_none());
            let mut bytes = Vec::new();
            reg.download("summarizer", "1.0.0", &mut bytes).await.expect("download");
            assert_eq!(bytes.len(), 1178);
            // Its search lists every version; fm shows one entry a package.
            let found = reg.search("text", None, 100).await.expect("search");
            let found: Vec<(&str, &str)> = found.iter().map(|i| (i.name.as_str(), i.version.as_str())).collect();
            assert_eq!(found, [("text-utils", "1.1.0")]);
        });
    }
    // Each archive's manifest was read once (cached by digest): three
    // archives for the documents, plus the two explicit downloads.
    assert_eq!(*downloads.lock().expect("count"), 3 + 2);
}

#[test]
fn fm_publish_search_and_yank_over_http() {
    let ctx = TestContext::new();
    let server = ctx.serve(&ctx.root.join("st"), &["--token", TOKEN], &[]);
    let src = package_source(&ctx.root.join("src"), "summarizer", "1.2.0", &[("text-utils", "^1")]);
    let src = src.to_str().expect("utf-8");

    // Without a token: refused, with a hint.
    let out = ctx.run(&["publish", src, "--registry", &server.url]);
    assert_code(&out, 1);
    let (_, err) = text(&out);
    assert!(
        err.contains("requires a token") && err.contains("fm registry add"),
        "{err}"
    );

    let out = ctx.run(&["registry", "add", "corp", &server.url, "--token", TOKEN, "--default"]);
    assert_code(&out, 0);
    let config = std::fs::read_to_string(ctx.home.join("registries.json")).expect("config");
    assert!(config.contains("\"is_default\": true"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ctx.home.join("registries.json"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = ctx.run(&["registry", "list"]);
    assert_code(&out, 0);
    assert!(!text(&out).0.contains(TOKEN));
    assert!(text(&out).0.contains("default, token"), "{}", text(&out).0);

    let out = ctx.run(&["publish", src]);
    assert_code(&out, 0);
    assert!(text(&out).1.contains("Published summarizer@1.2.0"), "{}", text(&out).1);
    let out = ctx.run(&["publish", src, "--registry", "corp"]);
    assert_code(&out, 1);
    assert!(text(&out).1.contains("409"), "{}", text(&out).1);

    let out = ctx.run(&["search", "SUMMAR", "--json"]);
    assert_code(&out, 0);
    let found: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert_eq!(found["total_count"], 1);
    assert_eq!(found["packages"][0]["name"], "summarizer");
    assert_eq!(found["packages"][0]["registry"], "corp");
    let out = ctx.run(&["search", "summar", "--category", "nope"]);
    assert_code(&out, 0);
    assert!(text(&out).0.is_empty());

    let out = ctx.run(&["yank", "summarizer@1.2.0"]);
    assert_code(&out, 0);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(server.storage.join("index/summarizer.json")).expect("doc"))
            .expect("json");
    assert_eq!(doc["versions"][0]["yanked"], true);
    let out = ctx.run(&["yank", "summarizer@1.2.0", "--undo", "--registry", "corp"]);
    assert_code(&out, 0);
    assert!(!server.log().contains(TOKEN));

    let out = ctx.run(&["registry", "remove", "corp"]);
    assert_code(&out, 0);
    let out = ctx.run(&["registry", "remove", "corp"]);
    assert_code(&out, 1);
}

/// Runs `fm args…`. Every command these tests use is built, so a
/// "not implemented" answer is a failure, never a skip.
fn run_built(ctx: &TestContext, args: &[&str], env: &[(&str, &str)]) -> Option<std::process::Output> {
    let mut cmd = ctx.fm();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run fm");
    assert!(
        !(out.status.code() == Some(2) && text(&out).1.contains("not implemented")),
        "`fm {}` is not built in this tree",
        args[0]
    );
    Some(out)
}

#[test]
fn flowmason_archives_publish_lock_sync_and_verify_over_http() {
    let ctx = TestContext::new();
    let server = ctx.serve(&ctx.root.join("st"), &["--token", TOKEN], &[]);
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/flowmason/packages"
    ));
    for f in [
        "text-utils-1.0.0",
        "text-utils-1.1.0",
        "summarizer-1.0.0",
        "support-bot-1.0.0",
    ] {
        let mut cmd = ctx.fm();
        cmd.args(["publish"])
            .arg(dir.join(format!("{f}.fmpkg")))
            .args(["--registry", &server.url])
            .env("FLOWMASON_REGISTRY_TOKEN", TOKEN);
        assert_code(&cmd.output().expect("publish"), 0);
    }
    let out = ctx.run(&["search", "support", "--registry", &server.url]);
    assert_code(&out, 0);
    assert!(text(&out).0.starts_with("support-bot 1.0.0"), "{}", text(&out).0);

    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nsupport-bot = \"^1\"\n\n[[registries]]\nname = \"srv\"\nurl = \"{}\"\n",
        server.url
    ));
    let Some(out) = run_built(&ctx, &["lock"], &[]) else {
        return;
    };
    assert_code(&out, 0);
    let lock = ctx.read("fm.lock");
    for (name, version) in [
        ("support-bot", "1.0.0"),
        ("summarizer", "1.0.0"),
        ("text-utils", "1.1.0"),
    ] {
        assert!(
            lock.contains(&format!("name = \"{name}\"\nversion = \"{version}\"")),
            "{lock}"
        );
    }
    // The lock records the canonical URL, never a token.
    assert!(!lock.contains(TOKEN));
    let Some(out) = run_built(&ctx, &["sync"], &[]) else {
        return;
    };
    assert_code(&out, 0);
    let Some(out) = run_built(&ctx, &["verify"], &[]) else {
        return;
    };
    assert_code(&out, 0);
}

#[test]
fn fm_lock_works_against_a_flowmason_studio_server() {
    let ctx = TestContext::new();
    let (studio, _) = flowmason_studio();
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nsupport-bot = \"^1\"\n\n[[registries]]\nname = \"studio\"\nurl = \"{}\"\n",
        studio.url
    ));
    let Some(out) = run_built(&ctx, &["lock"], &[]) else {
        return;
    };
    assert_code(&out, 0);
    let lock = ctx.read("fm.lock");
    assert!(lock.contains("name = \"text-utils\"\nversion = \"1.1.0\""), "{lock}");
}

#[test]
fn one_client_keeps_working_across_runtimes() {
    // `fm sync` may resolve on one runtime and download on another: pooled
    // connections of a dropped runtime must not break the next requests.
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("st");
    reg.publish("a", "1.0.0", &[]);
    reg.publish("b", "1.0.0", &[]);
    let server = ctx.serve(&reg.root, &[], &[]);
    let client = HttpRegistry::new("srv", &url(&server.url), &opts(&ctx.cache, None)).expect("open");
    runtime().block_on(async { client.document("a").await.expect("a").expect("found") });
    let rt = runtime();
    rt.block_on(async {
        client.document("b").await.expect("b").expect("found");
        let mut bytes = Vec::new();
        client.download("a", "1.0.0", &mut bytes).await.expect("download");
        assert!(!bytes.is_empty());
    });
}

/// `python3 -m http.server` over `dir` on 127.0.0.1, killed on drop.
struct StaticHost {
    child: std::process::Child,
    url: String,
}

impl StaticHost {
    fn start(dir: &std::path::Path) -> Option<StaticHost> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            eprintln!("\n!!!!! SKIPPING the static-host test: python3 is not installed !!!!!\n");
            return None;
        };
        let host = StaticHost {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "python3 -m http.server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(host)
    }
}

impl Drop for StaticHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_directory_registry_on_a_static_host_is_read_with_static_urls_and_never_written() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("static");
    reg.publish("leaf", "1.0.0", &[]);
    reg.publish("leaf", "1.2.0", &[]);
    reg.publish("app-core", "2.0.0", &[("leaf", "^1.1")]);
    let Some(host) = StaticHost::start(&reg.root) else {
        return;
    };
    let url = format!("static+{}", host.url);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\napp-core = \"^2\"\n\n[[registries]]\nname = \"cdn\"\nurl = \"{url}\"\n"
    ));
    let out = ctx.run(&["lock"]);
    assert_code(&out, 0);
    let lock = ctx.read("fm.lock");
    assert!(lock.contains(&format!("url = \"{url}\"")), "{lock}");
    assert!(lock.contains("name = \"leaf\"\nversion = \"1.2.0\""), "{lock}");
    let out = ctx.run(&["sync", "--locked"]);
    assert_code(&out, 0);
    assert_code(&ctx.run(&["verify"]), 0);
    assert!(ctx.project.join(".fm/packages/leaf").is_dir());

    // A name the host does not hold is absent (404), not an error.
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nnope = \"^1\"\n\n[[registries]]\nname = \"cdn\"\nurl = \"{url}\"\n"
    ));
    let out = ctx.run(&["lock"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains("nope") && !err.contains("404"), "{err}");

    // Files only: publishing and yanking are refused before anything is sent.
    let before = snapshot_tree(&reg.root);
    let src = package_source(&ctx.root.join("src"), "leaf", "9.0.0", &[]);
    let out = ctx.run(&["publish", src.to_str().expect("utf-8"), "--registry", &url]);
    assert_code(&out, 1);
    assert!(text(&out).1.contains("is a static registry"), "{}", text(&out).1);
    let out = ctx.run(&["yank", "leaf@1.0.0", "--registry", &url]);
    assert_code(&out, 1);
    assert_eq!(snapshot_tree(&reg.root), before);
}

#[test]
fn a_static_host_that_refuses_access_is_an_error_not_an_absent_package() {
    let ctx = TestContext::new();
    // As a private S3 bucket answers anonymous readers.
    let private = Recorder::start("127.0.0.1:0", |_, _| {
        (403, Vec::new(), b"<Error><Code>AccessDenied</Code></Error>".to_vec())
    });
    let reg = HttpRegistry::new(
        "cdn",
        &url(&format!("static+{}/reg/", private.url)),
        &opts(&ctx.cache, None),
    )
    .expect("open");
    runtime().block_on(async {
        let err = reg.document("a").await.expect_err("403 is not absence");
        let text = err.to_string();
        assert!(text.contains("403") && text.contains("index/a.json"), "{text}");
        let help = miette::Diagnostic::help(&err)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(help.contains("s3:ListBucket"), "{help}");
    });
    // Files at fixed paths, no API.
    assert_eq!(private.seen()[0].path, "/reg/index/a.json");
}

// Broke: RegistryError::Http flattened reqwest's error into its message, so
// the cause chain (hyper's, the OS's) was lost to miette and to a library
// caller walking `source()`.
#[test]
fn an_unreachable_registry_keeps_the_cause_chain_of_its_error() {
    let ctx = TestContext::new();
    // Port 9 (discard): nothing listens on loopback.
    ctx.write_manifest(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"^1\"\n\n[[registries]]\nname = \"main\"\nurl = \"http://127.0.0.1:9/\"\n",
    );
    let out = ctx.run(&["lock"]);
    assert_code(&out, 1);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
    fm::registry::http

      x registry main: cannot reach http://127.0.0.1:[PORT]/api/v1/registry/packages/a: connection failed:
      | Connection refused (os error 111)
      |-> error sending request
      |-> client error (Connect)
      |-> tcp connect error
      `-> Connection refused (os error 111)
      help: check the registry URL and your network, or use --offline with a filled cache
    ");

    // The library keeps it too, without the URL (a pre-signed one's query
    // is a credential).
    let reg = HttpRegistry::new("main", &url("http://127.0.0.1:9/"), &opts(&ctx.cache, None)).expect("client");
    let err = runtime().block_on(reg.document("a")).expect_err("nothing listens");
    assert!(matches!(err, RegistryError::Http { .. }), "{err:?}");
    let mut chain = Vec::new();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        chain.push(c.to_string());
        cause = c.source();
    }
    assert!(chain.len() >= 2, "no cause chain: {chain:?}");
    assert!(chain.iter().any(|c| c.contains("Connection refused")), "{chain:?}");
    assert!(
        !chain.iter().any(|c| c.contains("127.0.0.1:9")),
        "a cause names the URL: {chain:?}"
    );
    eprintln!(
        "FIGURES cause chain: connection refused: {} causes kept below the message ({}), 0 naming the URL",
        chain.len(),
        chain.join(" -> ")
    );
}
