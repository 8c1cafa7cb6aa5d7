//! The registry server under SIGKILL and races: `fm registry serve` killed
//! during concurrent uploads, many times, then restarted on the same
//! storage; `fm publish` to a directory racing the server's uploads to that
//! same directory. The index must stay consistent and byte-exact.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::common::*;

const TOKEN: &str = "crash-test-token";

/// `POST packages/upload`; the status, or `None` when the connection died.
async fn upload(c: &reqwest::Client, api: &str, bytes: Vec<u8>) -> Option<u16> {
    let form = reqwest::multipart::Form::new()
        .text("checksum", fm::fsutil::sha256_hex(&bytes))
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name("pkg.fmpkg"));
    let resp = c.post(api).bearer_auth(TOKEN).multipart(form).send().await.ok()?;
    let status = resp.status().as_u16();
    let _ = resp.bytes().await;
    Some(status)
}

/// Checks the storage on disk and through a running server: every listed
/// version's archive exists, hashes to the listed checksum, is served byte
/// for byte; temp files are never listed nor served. Returns the listed
/// `name@version`s.
fn check_consistent(storage: &Path, server: &Server, rt: &tokio::runtime::Runtime) -> Vec<String> {
    let mut listed = Vec::new();
    let c = reqwest::Client::new();
    let mut documents = 0;
    for (rel, bytes) in snapshot_tree(&storage.join("index")) {
        if rel.starts_with(".fm-tmp-") {
            // A killed writer's temp file: never listed (dot files are not
            // keys), swept by nobody, harmless.
            continue;
        }
        assert!(rel.ends_with(".json"), "stray index file {rel}");
        documents += 1;
        let doc: fm::registry::document::PackageDocument =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("index/{rel} is not a document: {e}"));
        for v in doc.versions.clone().unwrap_or_default() {
            let key = fm::registry::document::archive_key(&doc.info.name, &v.version);
            let archive = std::fs::read(storage.join(&key)).unwrap_or_else(|e| panic!("{key} is listed but: {e}"));
            assert_eq!(fm::fsutil::sha256_hex(&archive), v.checksum, "{key}");
            assert_eq!(archive.len() as u64, v.size_bytes, "{key}");
            let served = rt.block_on(async {
                let r = c
                    .get(server.api(&format!("packages/{}/{}/download", doc.info.name, v.version)))
                    .send()
                    .await
                    .expect("download");
                assert_eq!(r.status().as_u16(), 200, "{key}");
                r.bytes().await.expect("body").to_vec()
            });
            assert!(served == archive, "{key}: served bytes differ from the stored archive");
            listed.push(format!("{}@{}", doc.info.name, v.version));
        }
    }
    // Listing and search read every document and skip the temp files.
    let (status, total) = rt.block_on(async {
        let r = c.get(server.api("packages/search?q=")).send().await.expect("search");
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        (status, v["total_count"].as_u64())
    });
    assert_eq!(status, 200, "search after a restart");
    assert_eq!(total, Some(documents), "search lists every document and nothing else");
    // Temp files left by killed writers are never served.
    for (rel, _) in snapshot_tree(&storage.join("packages")) {
        let file = rel.rsplit('/').next().unwrap_or(&rel);
        if file.starts_with(".fm-tmp-") {
            let pkg = rel.split('/').next().unwrap_or("");
            let status = rt.block_on(async {
                c.get(server.api(&format!("packages/{pkg}/{file}/download")))
                    .send()
                    .await
                    .expect("get")
                    .status()
                    .as_u16()
            });
            assert!(status >= 400, "a temp file was served: {rel} ({status})");
        }
    }
    listed.sort();
    listed
}

#[test]
fn sigkill_during_concurrent_uploads_leaves_a_consistent_index_that_heals() {
    let ctx = TestContext::new();
    let storage = ctx.root.join("storage");
    // 3 packages x 4 versions, uploaded all at once each round.
    let mut archives: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for n in ["k0", "k1", "k2"] {
        for v in 0..4 {
            let version = format!("1.{v}.0");
            let dir = package_source(&ctx.root.join("src"), n, &version, &[]);
            archives.insert(format!("{n}@{version}"), pack_folder(&dir).bytes);
        }
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("server kill test seed: {seed}");
    let mut rng = Rng(seed);
    let rt = runtime();
    let c = reqwest::Client::new();
    let (mut kills, mut orphans_healed, mut killed_uploads) = (0, 0, 0);
    const ROUNDS: usize = 8;
    for round in 0..ROUNDS {
        let _ = std::fs::remove_dir_all(&storage);
        let server = ctx.serve(&storage, &["--token", TOKEN], &[]);
        let api = server.api("packages/upload");
        let delay = Duration::from_micros(rng.next() % 40_000);
        let mut child = server;
        let results = rt.block_on(async {
            let uploads = futures_util::future::join_all(archives.values().map(|b| upload(&c, &api, b.clone())));
            let killer = async {
                tokio::time::sleep(delay).await;
                let _ = child.child.kill(); // SIGKILL
                let _ = child.child.wait();
            };
            let (r, ()) = tokio::join!(uploads, killer);
            r
        });
        kills += 1;
        killed_uploads += results.iter().filter(|r| r.is_none()).count();
        assert!(
            results.iter().all(|r| matches!(r, None | Some(201))),
            "round {round} (seed {seed}): {results:?}"
        );
        drop(child);

        // Restart on the same storage: consistent, whatever was cut off.
        let server = ctx.serve(&storage, &["--token", TOKEN], &[]);
        let before = check_consistent(&storage, &server, &rt);
        let orphans: Vec<&String> = archives
            .keys()
            .filter(|id| {
                let (n, v) = id.split_once('@').unwrap();
                storage.join(fm::registry::document::archive_key(n, v)).exists() && !before.contains(id)
            })
            .collect();
        orphans_healed += orphans.len();
        // Everything re-uploaded: 201 for the missing and the orphaned, 409
        // for the listed; then all are listed, byte for byte.
        let again =
            rt.block_on(futures_util::future::join_all(archives.iter().map(|(id, b)| async {
                (id.clone(), upload(&c, &api_of(&server), b.clone()).await)
            })));
        for (id, status) in again {
            let want = if before.contains(&id) { 409 } else { 201 };
            assert_eq!(status, Some(want), "round {round} (seed {seed}): re-upload of {id}");
        }
        let after = check_consistent(&storage, &server, &rt);
        assert_eq!(
            after,
            archives.keys().cloned().collect::<Vec<_>>(),
            "round {round} (seed {seed})"
        );
    }
    eprintln!(
        "FIGURES server-kill: {kills} SIGKILLs during {} concurrent uploads each; {killed_uploads} uploads cut off; {orphans_healed} orphaned archives healed by re-upload; 0 inconsistent indexes",
        archives.len()
    );
}

fn api_of(server: &Server) -> String {
    server.api("packages/upload")
}

#[test]
fn fm_publish_to_a_directory_races_server_uploads_to_the_same_storage() {
    let ctx = TestContext::new();
    let storage = ctx.root.join("storage");
    let server = ctx.serve(&storage, &["--token", TOKEN], &[]);
    let api = server.api("packages/upload");
    // One package: every writer swaps the same document.
    let mut by_cli = Vec::new();
    let mut by_http = BTreeMap::new();
    for v in 0..12 {
        let version = format!("2.{v}.0");
        let dir = package_source(&ctx.root.join("src"), "race", &version, &[]);
        let packed = pack_folder(&dir);
        if v % 2 == 0 {
            let file = ctx.root.join(format!("race-{version}.fmpkg"));
            std::fs::write(&file, &packed.bytes).unwrap();
            by_cli.push((version, file, packed.bytes));
        } else {
            by_http.insert(version, packed.bytes);
        }
    }
    let children: Vec<_> = by_cli
        .iter()
        .map(|(_, file, _)| {
            ctx.fm()
                .args([
                    "publish",
                    file.to_str().unwrap(),
                    "--registry",
                    storage.to_str().unwrap(),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn fm publish")
        })
        .collect();
    let rt = runtime();
    let c = reqwest::Client::new();
    let statuses = rt.block_on(futures_util::future::join_all(
        by_http.values().map(|b| upload(&c, &api, b.clone())),
    ));
    assert!(statuses.iter().all(|s| *s == Some(201)), "{statuses:?}");
    for child in children {
        assert_code(&child.wait_with_output().unwrap(), 0);
    }
    let listed = check_consistent(&storage, &server, &rt);
    assert_eq!(listed.len(), 12, "{listed:?}");
    for (version, _, bytes) in &by_cli {
        let stored = std::fs::read(storage.join(fm::registry::document::archive_key("race", version))).unwrap();
        assert!(&stored == bytes, "race@{version} differs from what fm publish sent");
    }
    for (version, bytes) in &by_http {
        let stored = std::fs::read(storage.join(fm::registry::document::archive_key("race", version))).unwrap();
        assert!(&stored == bytes, "race@{version} differs from what was uploaded");
    }
    eprintln!(
        "FIGURES publish-race: 6 fm publish + 6 HTTP uploads of one package at once; 12 of 12 kept byte for byte"
    );
}
