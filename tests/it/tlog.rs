//! The transparency log (SPEC §9), phase 1: `fm registry log init`,
//! publishing into a logged registry (CLI and server), a writer that
//! stopped mid-way, concurrent writers without a coordinator, and
//! `fm registry log verify [--against]`. Every log is also checked by
//! tests/it/tlog_verify.py, a verifier that shares no code with fm.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{TestContext, assert_code, package_source, text};
use fm::archive::{self, Limits};
use fm::registry::publish;
use fm::registry::storage::DirStorage;
use fm::tlog::LogKey;

const TOKEN: &str = "tlog-test-token";

/// `python3` with `cryptography` (the verifier's Ed25519), installed if missing.
fn python() -> &'static str {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| {
        let has = || {
            Command::new("python3")
                .args(["-c", "import cryptography.hazmat.primitives.asymmetric.ed25519"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !has() {
            let status = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "cryptography"])
                .status()
                .expect("python3 is needed for tests/it/tlog_verify.py");
            assert!(
                status.success() && has(),
                "cannot install cryptography: python3 -m pip install cryptography"
            );
        }
    });
    "python3"
}

/// Runs the independent verifier on `registry/log`; returns its records
/// as (index, action, name, version, sha256).
fn independent_verify(registry: &Path) -> Vec<(u64, String, String, String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tlog_verify.py");
    let out = Command::new(python())
        .arg(script)
        .arg(registry.join("log"))
        .arg("--records")
        .output()
        .expect("run tlog_verify.py");
    let (o, e) = text(&out);
    assert!(out.status.success(), "tlog_verify.py refused the log:\n{e}");
    eprint!("{e}");
    o.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].parse().unwrap(),
                f[1].into(),
                f[2].into(),
                f[3].into(),
                f[4].into(),
            )
        })
        .collect()
}

/// The independent verifier's exit status and stderr on `registry/log`.
fn independent_verdict(registry: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tlog_verify.py");
    let out = Command::new(python())
        .arg(script)
        .arg(registry.join("log"))
        .output()
        .unwrap();
    (out.status.success(), text(&out).1)
}

/// `fm registry log init` on `registry` with a key file outside it.
fn init_log(ctx: &TestContext, registry: &Path, extra: &[&str]) -> PathBuf {
    let key = ctx
        .root
        .join("keys")
        .join(format!("{}.key", registry.file_name().unwrap().to_string_lossy()));
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let out = ctx
        .fm()
        .args(["registry", "log", "init", "--storage"])
        .arg(registry)
        .arg("--key")
        .arg(&key)
        .args(extra)
        .output()
        .unwrap();
    assert_code(&out, 0);
    key
}

fn load_key(path: &Path) -> LogKey {
    LogKey::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn archive_of(ctx: &TestContext, name: &str, version: &str) -> Vec<u8> {
    let dir = package_source(&ctx.root.join("pkgsrc"), name, version, &[]);
    archive::pack(&dir).unwrap().bytes
}

/// Every version in the registry's documents, with its log_index.
fn documented(registry: &Path) -> BTreeMap<(String, String), (Option<u64>, String)> {
    let storage = DirStorage::new(registry);
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(registry.join("index")).unwrap() {
        let name = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".json")
            .to_owned();
        let (doc, _) = publish::read_document(&storage, &name).unwrap().unwrap();
        for v in doc.versions.unwrap() {
            out.insert((name.clone(), v.version.clone()), (v.log_index, v.checksum.clone()));
        }
    }
    out
}

/// One log, every documented version in it once, at its index.
fn assert_one_consistent_log(registry: &Path, expected_versions: usize) {
    let records = independent_verify(registry);
    let docs = documented(registry);
    assert_eq!(docs.len(), expected_versions);
    let mut seen = BTreeMap::new();
    for (i, action, name, version, sha) in &records {
        assert_eq!(action, "publish");
        assert!(
            seen.insert((name.clone(), version.clone()), *i).is_none(),
            "{name}@{version} logged twice"
        );
        let (index, checksum) = &docs[&(name.clone(), version.clone())];
        assert_eq!((index, checksum), (&Some(*i), sha));
    }
    assert_eq!(seen.len(), expected_versions);
}

#[test]
fn init_publish_300_versions_verify_and_consistency() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let key_file = init_log(&ctx, &reg, &["--origin", "fm.registry/tests"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let key = load_key(&key_file);
    let storage = DirStorage::new(&reg);
    for i in 0..300 {
        let bytes = archive_of(&ctx, &format!("p{}", i % 3), &format!("1.{i}.0"));
        let p = publish::publish(&storage, &bytes, None, &Limits::default(), Some(&key)).unwrap();
        assert_eq!(p.record.log_index, Some(i));
    }
    let out = ctx.fm().args(["registry", "log", "verify"]).arg(&reg).output().unwrap();
    assert_code(&out, 0);
    let (_, err) = text(&out);
    assert!(err.contains("300 records of fm.registry/tests"), "{err}");
    assert!(err.contains("300 version(s) in 3 document(s)"), "{err}");
    assert_one_consistent_log(&reg, 300);

    // The checkpoint as another machine saw it, then the log grows.
    let out = ctx
        .fm()
        .args(["registry", "log", "checkpoint"])
        .arg(&reg)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let (note, _) = text(&out);
    assert!(note.starts_with("fm.registry/tests\n300\n"), "{note}");
    let old = ctx.root.join("seen.checkpoint");
    std::fs::write(&old, &note).unwrap();
    // A yank is logged too, and the documents keep the publish's index.
    let out = ctx
        .fm()
        .args(["yank", "p0@1.0.0", "--registry"])
        .arg(&reg)
        .arg("--log-key")
        .arg(&key_file)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let out = ctx
        .fm()
        .args(["publish", "--registry"])
        .arg(&reg)
        .arg(package_source(&ctx.root.join("pkgsrc"), "late", "1.0.0", &[]))
        .env("FM_LOG_KEY", &key_file)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let out = ctx
        .fm()
        .args(["registry", "log", "verify"])
        .arg(&reg)
        .arg("--against")
        .arg(&old)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let (_, err) = text(&out);
    assert!(
        err.contains("the log of 302 records extends the checkpoint of 300 records"),
        "{err}"
    );
    let records = independent_verify(&reg);
    assert_eq!(records[300].1, "yank");
    assert_eq!(records[301].2, "late");

    // A forked history under the same key (a second log the registry could
    // show to someone else): its checkpoint is refused.
    let fork = ctx.root.join("fork");
    let out = ctx
        .fm()
        .args(["registry", "log", "init", "--storage"])
        .arg(&fork)
        .arg("--key")
        .arg(&key_file)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let fork_storage = DirStorage::new(&fork);
    for i in 0..5 {
        let bytes = archive_of(&ctx, "evil", &format!("9.{i}.0"));
        publish::publish(&fork_storage, &bytes, None, &Limits::default(), Some(&key)).unwrap();
    }
    let forked = ctx.root.join("forked.checkpoint");
    std::fs::copy(fork.join("log/checkpoint"), &forked).unwrap();
    let out = ctx
        .fm()
        .args(["registry", "log", "verify"])
        .arg(&reg)
        .arg("--against")
        .arg(&forked)
        .output()
        .unwrap();
    assert_code(&out, 1);
    let (_, err) = text(&out);
    assert!(
        err.contains("not consistent with the checkpoint") && err.contains("(a fork)"),
        "{err}"
    );
    eprintln!("FIGURES tlog: 302 records verified by fm and by tlog_verify.py; a forked checkpoint refused");
}

#[test]
fn a_logged_registry_refuses_unlogged_publishes_and_foreign_keys() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    // The key may not live in the served folder.
    std::fs::create_dir_all(&reg).unwrap();
    let out = ctx
        .fm()
        .args(["registry", "log", "init", "--storage"])
        .arg(&reg)
        .arg("--key")
        .arg(reg.join("secret.key"))
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(!reg.join("secret.key").exists());
    init_log(&ctx, &reg, &[]);
    let src = package_source(&ctx.root.join("pkgsrc"), "a", "1.0.0", &[]);
    let out = ctx
        .fm()
        .args(["publish", "--registry"])
        .arg(&reg)
        .arg(&src)
        .output()
        .unwrap();
    assert_code(&out, 1);
    let (_, err) = text(&out);
    assert!(
        err.contains("keeps a transparency log, and no log key was given"),
        "{err}"
    );
    assert!(err.contains("--log-key FILE"), "{err}");
    assert!(!reg.join("index/a.json").exists());
    // Another key: refused as well.
    let other = ctx.root.join("other.key");
    std::fs::write(&other, LogKey::generate("fm.registry/reg").unwrap().1).unwrap();
    let out = ctx
        .fm()
        .args(["publish", "--registry"])
        .arg(&reg)
        .arg(&src)
        .arg("--log-key")
        .arg(&other)
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(text(&out).1.contains("but "), "{}", text(&out).1);
    assert!(!reg.join("index/a.json").exists());
    // A registry without a log publishes as before, without log_index.
    let plain = ctx.dir_registry("plain");
    plain.publish("a", "1.0.0", &[]);
    let doc = std::fs::read_to_string(plain.root.join("index/a.json")).unwrap();
    assert!(!doc.contains("log_index"), "{doc}");
}

#[test]
fn backfill_logs_existing_versions_in_a_stable_order() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("old");
    for (n, v) in [("b", "1.0.0"), ("a", "2.0.0"), ("a", "1.10.0"), ("a", "1.9.0")] {
        reg.publish(n, v, &[]);
    }
    reg.yank("a", "1.10.0");
    init_log(&ctx, &reg.root, &["--backfill"]);
    let records = independent_verify(&reg.root);
    let order: Vec<String> = records.iter().map(|r| format!("{} {}@{}", r.1, r.2, r.3)).collect();
    assert_eq!(
        order,
        [
            "publish a@1.9.0",
            "publish a@1.10.0",
            "yank a@1.10.0",
            "publish a@2.0.0",
            "publish b@1.0.0"
        ]
    );
    let out = ctx
        .fm()
        .args(["registry", "log", "verify"])
        .arg(&reg.root)
        .output()
        .unwrap();
    assert_code(&out, 0);
    // Running it again appends nothing.
    init_log(&ctx, &reg.root, &["--backfill"]);
    assert_eq!(independent_verify(&reg.root).len(), 5);
}

#[test]
fn a_writer_stopped_after_sequencing_is_completed_by_the_next() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let key_file = init_log(&ctx, &reg, &[]);
    let key = load_key(&key_file);
    let storage = DirStorage::new(&reg);
    for i in 0..3 {
        publish::publish(
            &storage,
            &archive_of(&ctx, "a", &format!("1.{i}.0")),
            None,
            &Limits::default(),
            Some(&key),
        )
        .unwrap();
    }
    // What a publisher SIGKILLed right after its create-if-absent of the
    // sequence object leaves: log/seq/003 and nothing derived from it.
    let orphan = fm::tlog::Record::publish("ghost", "1.0.0", &"0".repeat(64), 1, "2026-12-01T20:00:00Z");
    std::fs::write(reg.join("log/seq/003"), orphan.to_bytes()).unwrap();
    let out = ctx.fm().args(["registry", "log", "verify"]).arg(&reg).output().unwrap();
    assert_code(&out, 0);
    let (_, err) = text(&out);
    assert!(
        err.contains("3 records") && err.contains("record 3 is sequenced but no checkpoint covers it"),
        "{err}"
    );
    // The next publish takes index 4 and completes 3 on the way.
    let out = ctx
        .fm()
        .args(["publish", "--verbose", "--registry"])
        .arg(&reg)
        .arg(package_source(&ctx.root.join("pkgsrc"), "b", "1.0.0", &[]))
        .arg("--log-key")
        .arg(&key_file)
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(text(&out).1.contains("Logged as record 4"), "{}", text(&out).1);
    let records = independent_verify(&reg);
    assert_eq!(records.len(), 5);
    assert_eq!(records[3].2, "ghost");
    let out = ctx.fm().args(["registry", "log", "verify"]).arg(&reg).output().unwrap();
    assert_code(&out, 0);
}

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
fn the_independent_verifier_refuses_what_fm_refuses() {
    // The second verifier is only worth something if it can say no.
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let key = load_key(&init_log(&ctx, &reg, &[]));
    let storage = DirStorage::new(&reg);
    for i in 0..3 {
        publish::publish(
            &storage,
            &archive_of(&ctx, "a", &format!("1.{i}.0")),
            None,
            &Limits::default(),
            Some(&key),
        )
        .unwrap();
    }
    assert!(independent_verdict(&reg).0);
    let tile = reg.join("log/tile/0/000.p/3");
    let good = std::fs::read(&tile).unwrap();
    let mut bad = good.clone();
    bad[40] ^= 1;
    std::fs::write(&tile, &bad).unwrap();
    let (ok, err) = independent_verdict(&reg);
    assert!(!ok && err.contains("tile/0/000.p/3"), "{err}");
    assert_code(
        &ctx.fm().args(["registry", "log", "verify"]).arg(&reg).output().unwrap(),
        1,
    );
    std::fs::write(&tile, &good).unwrap();
    // A checkpoint whose size was edited under the old signature.
    let cp = reg.join("log/checkpoint");
    let note = std::fs::read_to_string(&cp).unwrap();
    std::fs::write(&cp, note.replacen("\n3\n", "\n2\n", 1)).unwrap();
    let (ok, err) = independent_verdict(&reg);
    assert!(!ok && err.contains("signature"), "{err}");
    assert_code(
        &ctx.fm().args(["registry", "log", "verify"]).arg(&reg).output().unwrap(),
        1,
    );
    // A checkpoint signed by the real key over a root the entries do not hash to.
    std::fs::write(&cp, key.sign_checkpoint(3, fm_hash(b"not the root")).unwrap()).unwrap();
    let (ok, err) = independent_verdict(&reg);
    assert!(!ok && err.contains("root"), "{err}");
    assert_code(
        &ctx.fm().args(["registry", "log", "verify"]).arg(&reg).output().unwrap(),
        1,
    );
}

fn fm_hash(b: &[u8]) -> tlog_tiles::Hash {
    tlog_tiles::record_hash(b)
}
