//! What the bucket tests share, whatever the cloud: emulators started on
//! 127.0.0.1 for the life of the test binary, a [`Bucket`] (its URL, the
//! flags and credentials a replica needs, a direct handle on it), and the
//! end-to-end scenarios every backend must pass (tests/it/scale.rs for S3,
//! tests/it/clouds.rs for Azure and GCS).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use fm::registry::object::ObjectStorage;
use fm::registry::storage::Storage;
use serde_json::Value;

use crate::common::*;

pub const TOKEN: &str = "scale-publish-token";

/// An emulator process for this test binary. It runs under a shell that
/// kills it when our end of its stdin closes, i.e. when this process exits.
pub struct Service {
    pub port: u16,
    _guard: Mutex<(Child, ChildStdin)>,
}

impl Service {
    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Starts `command` (a shell command that serves on `port`) and waits until
/// something answers HTTP there; `hint` says how to install it.
pub fn start_service(command: &str, port: u16, hint: &str) -> Service {
    let script = format!("{command} >/dev/null 2>&1 & pid=$!; read _; kill $pid; wait $pid");
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let stdin = child.stdin.take().expect("stdin");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http(port, "GET", "/", &[]).is_none() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("`{command}` exited ({status}): {hint}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "`{command}` did not start on 127.0.0.1:{port}: {hint}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Service {
        port,
        _guard: Mutex::new((child, stdin)),
    }
}

/// Fails unless `program --version` runs. A missing tool fails the test that
/// needs it, naming what to install: an emulator test either runs or
/// fails, never passes without running (`.ci/run` installs every tool).
pub fn have(program: &str, needed_by: &str) {
    let ok = Command::new(program).arg("--version").output().is_ok();
    assert!(
        ok,
        "{needed_by}: `{program}` is not installed; install it (see .ci/run) and run the tests again"
    );
}

/// Where test tools installed from npm or PyPI are cached between runs.
pub fn tools_dir(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-tools")
        .join(name)
}

/// A bare HTTP/1.1 request to 127.0.0.1:`port`; the status, or `None` when
/// nothing answers.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Option<u16> {
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

/// A fresh bucket (or container) of some cloud, ready for replicas.
pub struct Bucket {
    /// `--storage`, e.g. `s3://fm-e2e/reg`
    pub url: String,
    /// Flags every replica gets (`--storage-endpoint …`).
    pub flags: Vec<String>,
    /// Credentials every replica gets.
    pub env: Vec<(String, String)>,
    /// The same bucket, opened directly by the test.
    pub direct: ObjectStorage,
}

impl Bucket {
    /// `fm registry serve` over this bucket, as replica `id`.
    pub fn replica(&self, ctx: &TestContext, id: &str) -> Server {
        self.replica_with(ctx, id, &[])
    }

    /// [`Bucket::replica`] with more flags.
    pub fn replica_with(&self, ctx: &TestContext, id: &str, more: &[&str]) -> Server {
        let mut extra: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        extra.extend(["--token", TOKEN, "--replica-id", id]);
        extra.extend(more);
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        ctx.serve(Path::new(&self.url), &extra, &env)
    }
}

pub async fn upload(c: &reqwest::Client, server: &Server, bytes: Vec<u8>) -> (u16, Value) {
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

pub async fn get_json(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let resp = c.get(url).send().await.expect("get");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub fn packed(ctx: &TestContext, name: &str, version: &str, deps: &[(&str, &str)]) -> Vec<u8> {
    let dir = package_source(&ctx.root.join("src").join(version), name, version, deps);
    pack_folder(&dir).bytes
}

pub fn versions(doc: &Value) -> Vec<String> {
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

/// Publish, yank, search, lock and sync through one replica over `bucket`;
/// the bucket holds the directory-registry layout and the replica's
/// download counts.
pub fn publish_yank_search_and_sync(ctx: &TestContext, bucket: &Bucket) {
    let server = bucket.replica(ctx, "one");
    let shown = format!("(storage {})", bucket.url);
    let log = server.log_when(|l| l.contains(&shown));
    assert!(log.contains(&shown), "{log}");

    let mut shas = std::collections::BTreeMap::new();
    for (name, version, deps) in [
        ("a", "1.0.0", &[][..]),
        ("a", "1.1.0", &[][..]),
        ("b", "1.0.0", &[("a", "^1")][..]),
    ] {
        let bytes = packed(ctx, name, version, deps);
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
        assert_eq!(
            bucket.direct.read(&key).expect("read").expect("archive").0,
            bytes,
            "{key}"
        );
    }
    assert_eq!(
        bucket.direct.list("index/").expect("list"),
        ["index/a.json", "index/b.json"]
    );

    let mut cmd = ctx.fm();
    cmd.args(["yank", "a@1.1.0", "--registry", &server.url])
        .env("FLOWMASON_REGISTRY_TOKEN", TOKEN);
    assert_code(&cmd.output().expect("yank"), 0);
    let stored: Value =
        serde_json::from_slice(&bucket.direct.read("index/a.json").expect("read").expect("doc").0).expect("json");
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
        "[project]\nname = \"app\"\n\n[dependencies]\nb = \"^1\"\n\n[[registries]]\nname = \"bucket\"\nurl = \"{}\"\n",
        server.url
    ));
    let lock = fm::lock::Lockfile {
        log: Default::default(),
        root: vec!["b ^1".to_owned()],
        registries: vec![fm::lock::LockedRegistry {
            name: "bucket".to_owned(),
            url: server.url.clone(),
            priority: 100,
            explicit: false,
        }],
        packages: [("a", "1.0.0", None), ("b", "1.0.0", Some("a ^1"))]
            .into_iter()
            .map(|(name, version, dep)| {
                let bytes = packed(ctx, name, version, &[]);
                let (sha, size) = if name == "b" {
                    (shas["b"].1.clone(), shas["b"].2)
                } else {
                    (fm::fsutil::sha256_hex(&bytes), bytes.len() as u64)
                };
                fm::lock::LockedPackage {
                    name: name.parse().unwrap(),
                    version: semver::Version::parse(version).expect("version"),
                    registry: "bucket".to_owned(),
                    sha256: sha.parse().unwrap(),
                    size,
                    dependencies: dep.into_iter().map(|d| d.parse().unwrap()).collect(),
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
            .direct
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

/// Two replicas over `bucket`: `spread` concurrent uploads of different
/// versions of one package all land; `racers` concurrent uploads of one
/// version admit exactly one; download counts add up across replicas.
pub fn replicas_lose_no_publish_and_admit_one_winner(ctx: &TestContext, bucket: &Bucket, spread: usize, racers: usize) {
    let servers = [bucket.replica(ctx, "r1"), bucket.replica(ctx, "r2")];
    let archives: Vec<Vec<u8>> = (0..spread)
        .map(|i| packed(ctx, "many", &format!("1.{i}.0"), &[]))
        .collect();
    let one = packed(ctx, "race", "1.0.0", &[]);
    let c = reqwest::Client::new();
    runtime().block_on(async {
        // Versions of one package, alternating between the replicas.
        let results = futures_util::future::join_all(
            archives
                .into_iter()
                .enumerate()
                .map(|(i, b)| upload(&c, &servers[i % 2], b)),
        )
        .await;
        assert!(results.iter().all(|r| r.0 == 201), "{results:?}");
        let want: Vec<String> = {
            let mut v: Vec<String> = (0..spread).map(|i| format!("1.{i}.0")).collect();
            v.sort();
            v
        };
        for s in &servers {
            let (status, doc) = get_json(&c, &s.api("packages/many")).await;
            assert_eq!(status, 200);
            assert_eq!(versions(&doc), want);
            assert_eq!(doc["latest_version"], format!("1.{}.0", spread - 1));
        }

        // Uploads of one version: exactly one wins.
        let results =
            futures_util::future::join_all((0..racers).map(|i| upload(&c, &servers[i % 2], one.clone()))).await;
        let created = results.iter().filter(|r| r.0 == 201).count();
        let conflicts = results.iter().filter(|r| r.0 == 409).count();
        assert_eq!((created, conflicts), (1, racers - 1), "{results:?}");
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
        bucket.direct.list("stats/downloads/").expect("list"),
        ["stats/downloads/r1.json", "stats/downloads/r2.json"]
    );
    let r3 = bucket.replica(ctx, "r3");
    runtime().block_on(async {
        let (_, doc) = get_json(&c, &r3.api("packages/race")).await;
        assert_eq!(doc["downloads"], 3, "{doc}");
    });
}
