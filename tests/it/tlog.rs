//! The transparency log (SPEC §9), phase 1: `fm registry log init`,
//! publishing into a logged registry (CLI and server), a writer that
//! stopped mid-way, concurrent writers without a coordinator, and
//! `fm registry log verify [--against]`. Every log is also checked by
//! tests/it/tlog_verify.py, a verifier that shares no code with fm.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{TestContext, assert_code, pack_folder, package_source, text};
use fm::archive::Limits;
use fm::registry::publish;
use fm::registry::storage::DirStorage;
use fm::tlog::LogKey;

pub(crate) const TOKEN: &str = "tlog-test-token";

/// `python3` with `cryptography` (the verifier's Ed25519), installed if missing.
pub(crate) fn python() -> &'static str {
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
pub(crate) fn independent_verify(registry: &Path) -> Vec<(u64, String, String, String, String)> {
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
pub(crate) fn independent_verdict(registry: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tlog_verify.py");
    let out = Command::new(python())
        .arg(script)
        .arg(registry.join("log"))
        .output()
        .unwrap();
    (out.status.success(), text(&out).1)
}

/// `fm registry log init` on `registry` with a key file outside it.
pub(crate) fn init_log(ctx: &TestContext, registry: &Path, extra: &[&str]) -> PathBuf {
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

pub(crate) fn load_key(path: &Path) -> LogKey {
    LogKey::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub(crate) fn archive_of(ctx: &TestContext, name: &str, version: &str) -> Vec<u8> {
    let dir = package_source(&ctx.root.join("pkgsrc"), name, version, &[]);
    pack_folder(&dir).bytes
}

/// Every version in the registry's documents, with its log_index.
pub(crate) fn documented(registry: &Path) -> BTreeMap<(String, String), (Option<u64>, String)> {
    let storage = DirStorage::new(registry);
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(registry.join("index")).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        // A SIGKILLed writer may leave a temporary file (`.fm-tmp-*`).
        let Some(name) = file.strip_suffix(".json").filter(|_| !file.starts_with('.')) else {
            continue;
        };
        let name = name.to_owned();
        let (doc, _) = publish::read_document(&storage, &name).unwrap().unwrap();
        for v in doc.versions.unwrap() {
            out.insert((name.clone(), v.version.clone()), (v.log_index, v.checksum.to_string()));
        }
    }
    out
}

/// One log, every documented version in it once, at its index.
pub(crate) fn assert_one_consistent_log(registry: &Path, expected_versions: usize) {
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
    let out = log_verify(&ctx, &reg, None);
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
    let out = log_verify(&ctx, &reg, Some(&old));
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
    let out = log_verify(&ctx, &reg, Some(&forked));
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
    // ... and `verify` says it has no log (not that a file went missing).
    let out = log_verify(&ctx, &plain.root, None);
    assert_code(&out, 1);
    assert!(text(&out).1.contains("has no transparency log"), "{}", text(&out).1);
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
    let out = log_verify(&ctx, &reg.root, None);
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
    let out = log_verify(&ctx, &reg, None);
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
    let out = log_verify(&ctx, &reg, None);
    assert_code(&out, 0);
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
    assert_code(&log_verify(&ctx, &reg, None), 1);
    std::fs::write(&tile, &good).unwrap();
    // A checkpoint whose size was edited under the old signature.
    let cp = reg.join("log/checkpoint");
    let note = std::fs::read_to_string(&cp).unwrap();
    std::fs::write(&cp, note.replacen("\n3\n", "\n2\n", 1)).unwrap();
    let (ok, err) = independent_verdict(&reg);
    assert!(!ok && err.contains("signature"), "{err}");
    assert_code(&log_verify(&ctx, &reg, None), 1);
    // A checkpoint signed by the real key over a root the entries do not hash to.
    std::fs::write(&cp, key.sign_checkpoint(3, fm_hash(b"not the root")).unwrap()).unwrap();
    let (ok, err) = independent_verdict(&reg);
    assert!(!ok && err.contains("root"), "{err}");
    assert_code(&log_verify(&ctx, &reg, None), 1);
}

/// `fm registry log verify REG [--against CHECKPOINT]`.
fn log_verify(ctx: &TestContext, reg: impl AsRef<std::ffi::OsStr>, against: Option<&Path>) -> std::process::Output {
    let mut cmd = ctx.fm();
    cmd.args(["registry", "log", "verify"]).arg(reg);
    if let Some(file) = against {
        cmd.arg("--against").arg(file);
    }
    cmd.output().unwrap()
}

fn fm_hash(b: &[u8]) -> tlog_tiles::Hash {
    tlog_tiles::record_hash(b)
}
