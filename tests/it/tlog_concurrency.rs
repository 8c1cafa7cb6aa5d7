//! The transparency log under concurrency and crashes: publishers
//! SIGKILLed mid-way, 8 `fm publish` processes on one folder, two
//! `fm registry serve` replicas on one folder (and the log route they
//! serve). Each log is checked by fm and by tests/it/tlog_verify.py.

use std::path::PathBuf;

use crate::common::{TestContext, assert_code, pack_folder, package_source, text};
use crate::tlog::{TOKEN, assert_one_consistent_log, documented, independent_verify, init_log};

#[test]
fn a_publisher_killed_mid_way_leaves_a_log_the_next_one_completes() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let key_file = init_log(&ctx, &reg, &[]);
    let srcs: Vec<PathBuf> = (0..40)
        .map(|i| package_source(&ctx.root.join("pkgsrc"), "k", &format!("1.{i}.0"), &[]))
        .collect();
    // Kill publishers at varying moments; wherever they stop, the next
    // publish and verify see one consistent log.
    let mut killed = 0;
    for (i, src) in srcs.iter().enumerate().take(20) {
        let mut child = ctx
            .fm()
            .args(["publish", "--registry"])
            .arg(&reg)
            .arg(src)
            .arg("--log-key")
            .arg(&key_file)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis((i as u64 * 7) % 60));
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            killed += 1;
        }
        let _ = child.wait();
    }
    for src in &srcs[20..] {
        let out = ctx
            .fm()
            .args(["publish", "--registry"])
            .arg(&reg)
            .arg(src)
            .arg("--log-key")
            .arg(&key_file)
            .output()
            .unwrap();
        assert_code(&out, 0);
    }
    let out = ctx.fm().args(["registry", "log", "verify"]).arg(&reg).output().unwrap();
    assert_code(&out, 0);
    let records = independent_verify(&reg);
    let docs = documented(&reg);
    for ((name, version), (index, sha)) in &docs {
        let r = &records[index.expect("logged") as usize];
        assert_eq!((&r.2, &r.3, &r.4), (name, version, sha));
    }
    eprintln!(
        "FIGURES tlog killed publishers: {killed} of 20 killed mid-way, {} records, {} versions listed, log verified",
        records.len(),
        docs.len()
    );
}

#[test]
fn concurrent_publishers_on_one_folder_make_one_log() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let key_file = init_log(&ctx, &reg, &[]);
    let (writers, each) = (8, 5);
    let srcs: Vec<Vec<PathBuf>> = (0..writers)
        .map(|w| {
            (0..each)
                .map(|i| package_source(&ctx.root.join("pkgsrc"), &format!("w{w}"), &format!("1.{i}.0"), &[]))
                .collect()
        })
        .collect();
    std::thread::scope(|s| {
        for list in &srcs {
            let (ctx, reg, key_file) = (&ctx, &reg, &key_file);
            s.spawn(move || {
                for src in list {
                    let out = ctx
                        .fm()
                        .args(["publish", "--registry"])
                        .arg(reg)
                        .arg(src)
                        .arg("--log-key")
                        .arg(key_file)
                        .output()
                        .unwrap();
                    assert_code(&out, 0);
                }
            });
        }
    });
    assert_one_consistent_log(&reg, writers * each);
    let out = ctx.fm().args(["registry", "log", "verify"]).arg(&reg).output().unwrap();
    assert_code(&out, 0);
    eprintln!(
        "FIGURES tlog concurrent: {writers} fm publish processes x {each} versions on one folder -> one log of {} records",
        writers * each
    );
}

#[test]
fn two_replicas_on_one_folder_append_to_one_log_and_serve_it() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let key_file = init_log(&ctx, &reg, &[]);
    let key_arg = key_file.to_string_lossy().into_owned();
    let a = ctx.serve(&reg, &["--token", TOKEN, "--log-key", &key_arg], &[]);
    let b = ctx.serve(&reg, &["--token", TOKEN, "--log-key", &key_arg], &[]);
    let n = 24;
    let srcs: Vec<PathBuf> = (0..n)
        .map(|i| {
            package_source(
                &ctx.root.join("pkgsrc"),
                &format!("r{}", i % 4),
                &format!("1.{i}.0"),
                &[],
            )
        })
        .collect();
    std::thread::scope(|s| {
        for (i, src) in srcs.iter().enumerate() {
            let url = if i % 2 == 0 { &a.url } else { &b.url };
            let ctx = &ctx;
            s.spawn(move || {
                let out = ctx
                    .fm()
                    .args(["publish", "--registry", url])
                    .arg(src)
                    .env("FLOWMASON_REGISTRY_TOKEN", TOKEN)
                    .output()
                    .unwrap();
                assert_code(&out, 0);
            });
        }
    });
    assert_one_consistent_log(&reg, n);
    // Over HTTP, through the registry client: the same log, every tile.
    let out = ctx.fm().args(["registry", "log", "verify", &b.url]).output().unwrap();
    assert_code(&out, 0);
    assert!(text(&out).1.contains(&format!("{n} records")), "{}", text(&out).1);
    // What the route serves, and what it does not.
    let rt = crate::common::runtime();
    let c = crate::common::client();
    let get = |path: &str| {
        rt.block_on(async {
            let r = c.get(a.api(&format!("log/{path}"))).send().await.unwrap();
            let cache = r.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), cache)
        })
    };
    assert_eq!(get("checkpoint"), (200, Some("no-cache".into())));
    assert_eq!(
        get("tile/0/000.p/24"),
        (200, Some("public, max-age=31536000, immutable".into()))
    );
    assert_eq!(get("tile/entries/000.p/24").0, 200);
    assert_eq!(get("key").0, 200);
    for hidden in [
        "seq/000",
        "tile/0/000.p/0",
        "tile%2F..%2F..%2Findex%2Fr0.json",
        "..%2F..%2Findex%2Fr0.json",
        "tile/0/x000/000",
        "tile/64/000",
    ] {
        assert_eq!(get(hidden).0, 404, "{hidden}");
    }
    // A replica without the key refuses to publish into the logged folder.
    let c2 = ctx.serve(&reg, &["--token", TOKEN], &[]);
    let out = ctx
        .fm()
        .args(["publish", "--registry", &c2.url])
        .arg(package_source(&ctx.root.join("pkgsrc"), "late", "1.0.0", &[]))
        .env("FLOWMASON_REGISTRY_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(text(&out).1.contains("cannot sign"), "{}", text(&out).1);
    assert!(!reg.join("index/late.json").exists());
    eprintln!(
        "FIGURES tlog replicas: 2 fm registry serve replicas, {n} concurrent uploads -> one log, verified over HTTP and by tlog_verify.py"
    );
}

#[test]
fn two_replicas_on_one_s3_bucket_append_to_one_log() {
    use fm::tlog::{LogSource as _, StorageSource, layout, verify_log};
    let moto = crate::scale::moto();
    let bucket = crate::scale::bucket(moto, "fm-tlog");
    let ctx = TestContext::new();
    let key_file = ctx.root.join("s3.key");
    let out = ctx
        .fm()
        .args(["registry", "log", "init", "--storage", &bucket.url, "--key"])
        .arg(&key_file)
        .args(&bucket.flags)
        .envs(bucket.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert_code(&out, 0);
    let key_arg = key_file.to_string_lossy().into_owned();
    let a = bucket.replica_with(&ctx, "a", &["--log-key", &key_arg]);
    let b = bucket.replica_with(&ctx, "b", &["--log-key", &key_arg]);
    let n = 16;
    let archives: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let dir = package_source(
                &ctx.root.join("pkgsrc"),
                &format!("s{}", i % 3),
                &format!("1.{i}.0"),
                &[],
            );
            pack_folder(&dir).bytes
        })
        .collect();
    let rt = crate::common::runtime();
    let c = crate::common::client();
    rt.block_on(async {
        let uploads = archives.iter().enumerate().map(|(i, bytes)| {
            let server = if i % 2 == 0 { &a } else { &b };
            crate::buckets::upload(&c, server, bytes.clone())
        });
        for (status, body) in futures_util::future::join_all(uploads).await {
            assert_eq!(status, 201, "{body}");
        }
    });
    // The log in the bucket: every record once, each document's index right.
    let key = crate::tlog::load_key(&key_file);
    let src = StorageSource(&bucket.direct);
    let verified = verify_log(&src, Some(key.verifier())).unwrap();
    assert_eq!(verified.checkpoint.size(), n);
    let mut docs = Vec::new();
    for name in ["s0", "s1", "s2"] {
        docs.push(
            fm::registry::publish::read_document(&bucket.direct, name)
                .unwrap()
                .unwrap()
                .0,
        );
    }
    let versions: Vec<_> = docs
        .iter()
        .flat_map(|d| d.versions.iter().flatten().map(move |v| (d.info.name.as_str(), v)))
        .collect();
    assert_eq!(versions.len() as u64, n);
    assert_eq!(verified.check_versions(versions.iter().copied()), Vec::<String>::new());
    // Over HTTP through a replica, and by the independent verifier on a
    // copy of the bucket's public log files.
    let out = ctx.fm().args(["registry", "log", "verify", &b.url]).output().unwrap();
    assert_code(&out, 0);
    let copy = ctx.root.join("copy");
    let mut paths = vec![layout::KEY.to_owned(), layout::CHECKPOINT.to_owned()];
    for t in tlog_tiles::Tile::new_tiles(layout::HEIGHT, 0, n) {
        paths.push(layout::tile_path(&t));
    }
    for k in 0..n.div_ceil(layout::WIDTH) {
        paths.push(layout::tile_path(&layout::bundle_tile(k, n)));
    }
    for p in &paths {
        let file = copy.join("log").join(p);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, src.get(p).unwrap().unwrap()).unwrap();
    }
    assert_eq!(independent_verify(&copy).len() as u64, n);
    eprintln!(
        "FIGURES tlog s3: 2 replicas on one moto bucket, {n} concurrent uploads -> one log of {n} records, verified in the bucket, over HTTP and by tlog_verify.py"
    );
}
