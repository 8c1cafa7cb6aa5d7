//! `fm registry serve --storage s3://…`: a registry in a bucket of a real
//! S3-compatible server (moto in server mode, on 127.0.0.1, started here),
//! served by one or more stateless replicas. The scenarios are shared with
//! the Azure and GCS tests (tests/buckets).
//!
//! Needs moto (`python3 -m pip install 'moto[server]'`): .ci/run installs
//! it, and the tests install it themselves when it is missing. Without
//! python3 at all they say so loudly and pass.

mod buckets;
mod common;
use buckets::*;
use common::*;

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use fm::registry::object::ObjectStorage;
use fm::registry::storage::Storage;

const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "fm-test"),
    ("AWS_SECRET_ACCESS_KEY", "fm-test"),
    ("AWS_REGION", "us-east-1"),
];

/// One moto server for this test binary.
fn moto() -> Option<&'static Service> {
    static MOTO: OnceLock<Option<Service>> = OnceLock::new();
    MOTO.get_or_init(start_moto).as_ref()
}

fn start_moto() -> Option<Service> {
    if !have("python3", "the S3 tests (they need `pip install 'moto[server]'`)") {
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
    let port = free_port();
    Some(start_service(
        &format!("python3 -m moto.server -H 127.0.0.1 -p {port}"),
        port,
        "install it with python3 -m pip install 'moto[server]'",
    ))
}

/// A fresh bucket `name` on moto, with the prefix `reg`.
fn bucket(moto: &Service, name: &str) -> Bucket {
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
    let Some(moto) = moto() else { return };
    publish_yank_search_and_sync(&TestContext::new(), &bucket(moto, "fm-e2e"));
}

#[test]
fn two_replicas_on_one_bucket_lose_no_publish_and_admit_one_winner() {
    let Some(moto) = moto() else { return };
    replicas_lose_no_publish_and_admit_one_winner(&TestContext::new(), &bucket(moto, "fm-replicas"), 50, 20);
}

#[test]
fn a_replica_killed_mid_upload_leaves_no_partial_version() {
    let Some(moto) = moto() else { return };
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
