//! The library façade as an embedding program sees it: the example
//! binaries in `examples/` run against temp directory registries and are
//! checked by what they print, and [`fm::Client`] is driven in-process
//! against a real `fm registry serve` (tokens bound to their origin).

use std::path::PathBuf;
use std::process::Command;

use crate::common::{TestContext, assert_code, runtime, text};

/// The compiled example `name`. `cargo test` builds every example before
/// it runs the tests, so this `cargo build --example` is normally a no-op
/// that only reports the path; run alone (`cargo test --test it
/// examples::`) it builds what is missing or stale, so an example is never
/// tested as an old binary.
pub fn example_bin(name: &str) -> PathBuf {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--quiet",
            "--example",
            name,
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .expect("run cargo build --example");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "cargo build --example {name} failed:\n{stderr}");
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo named no executable for example {name}:\n{stdout}"))
}

/// `ctx`'s environment (no FM_*/FLOWMASON* of the user's), for an example.
fn example(ctx: &TestContext, name: &str) -> Command {
    let mut c = ctx.fm();
    let fm = std::mem::replace(&mut c, Command::new(example_bin(name)));
    for (k, v) in fm.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.current_dir(&ctx.project);
    c
}

/// Digests and sizes follow the packer's output; what matters is that
/// they are printed.
fn no_digests(text: &str) -> String {
    let text = regex::Regex::new("[0-9a-f]{64}")
        .expect("regex")
        .replace_all(text, "[SHA256]");
    regex::Regex::new(r"\(\d+ bytes")
        .expect("regex")
        .replace_all(&text, "([N] bytes")
        .into_owned()
}

#[test]
fn search_and_install_finds_downloads_verifies_and_unpacks() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("summarizer", "1.0.0", &[("text-utils", "^1")]);
    reg.publish("summarizer", "1.2.0", &[("text-utils", "^1")]);
    reg.publish("text-utils", "1.0.0", &[]);
    reg.yank("summarizer", "1.0.0");
    let dest = ctx.root.join("out");
    std::fs::create_dir(&dest).expect("mkdir");
    let out = example(&ctx, "search_and_install")
        .arg(&reg.root)
        .arg("summ")
        .arg(&dest)
        .output()
        .expect("run example");
    assert_code(&out, 0);
    let (stdout, _) = text(&out);
    insta::assert_snapshot!(no_digests(&ctx.filter(&stdout)), @r#"
    1 package(s) match "summ":
      summarizer 1.2.0  summarizer for tests
    summarizer versions: 1.2.0, 1.0.0 (yanked)
    Downloaded summarizer 1.2.0 ([N] bytes, sha256 [SHA256]): verified
    Unpacked 3 file(s) into [ROOT]/out/summarizer
      components/summarizer.py
      manifest.json
      pipelines/main.pipeline.json
    "#);
    let installed = std::fs::read_to_string(dest.join("summarizer/components/summarizer.py")).expect("unpacked");
    assert!(installed.contains("summarizer 1.2.0"), "{installed}");
}

/// The registry's archive was replaced after publishing (its document
/// still names the old digest): the download is refused, naming both
/// digests, and nothing is unpacked.
#[test]
fn search_and_install_refuses_an_archive_that_does_not_match_its_checksum() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    let published = reg.publish("summarizer", "1.0.0", &[]);
    let other = ctx.dir_registry("other");
    other.publish("summarizer", "1.0.0", &[("text-utils", "^1")]);
    std::fs::copy(
        other.archive_path("summarizer", "1.0.0"),
        reg.archive_path("summarizer", "1.0.0"),
    )
    .expect("swap");
    let dest = ctx.root.join("out");
    std::fs::create_dir(&dest).expect("mkdir");
    let out = example(&ctx, "search_and_install")
        .arg(&reg.root)
        .arg("summarizer")
        .arg(&dest)
        .output()
        .expect("run example");
    assert_code(&out, 1);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("sha256 mismatch for summarizer 1.0.0"), "{stderr}");
    assert!(stderr.contains(&published), "names the registry's digest: {stderr}");
    assert!(!dest.join("summarizer").exists(), "nothing unpacked");
    println!(
        "FIGURES client-verify: 1 archive swapped behind its document: refused naming both digests, 0 files unpacked"
    );
}

/// A registry that sends far more than the recorded size is cut off soon
/// past it, not read to the end.
#[test]
fn client_download_cuts_off_an_archive_longer_than_its_record() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("summarizer", "1.0.0", &[]);
    std::fs::write(reg.archive_path("summarizer", "1.0.0"), vec![0u8; 4 << 20]).expect("grow");
    let client = fm::Client::open(&reg.root.display().to_string()).expect("open");
    let err = runtime()
        .block_on(client.download("summarizer", "1.0.0"))
        .expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains("sha256 mismatch") && msg.contains("cut off"), "{msg}");
    let record = std::fs::read_to_string(reg.root.join("index/summarizer.json")).expect("document");
    let size: serde_json::Value = serde_json::from_str(&record).expect("json");
    println!(
        "FIGURES client-verify: a 4 MiB answer for a {}-byte record: refused, cut off 64 KiB past the record",
        size["size_bytes"]
    );
}

#[test]
fn caching_registry_is_used_by_the_resolver_unchanged() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("doc-ingest", "1.0.0", &[("retrieval", "^1")]);
    reg.publish("retrieval", "1.0.0", &[("tokenizer", "^1")]);
    reg.publish("retrieval", "1.1.0", &[("tokenizer", "^1")]);
    reg.publish("tokenizer", "1.0.0", &[]);
    let out = example(&ctx, "caching_registry")
        .arg(&reg.root)
        .arg("doc-ingest")
        .arg("^1")
        .output()
        .expect("run example");
    assert_code(&out, 0);
    let (stdout, _) = text(&out);
    insta::assert_snapshot!(no_digests(&stdout), @r"
    doc-ingest 1.0.0 from main (sha256 [SHA256])
    retrieval 1.1.0 from main (sha256 [SHA256])
    tokenizer 1.0.0 from main (sha256 [SHA256])
    first resolution: 3 document(s) read from the registry
    second resolution: 0 document(s) read from the registry, 3 from the cache, same result: true
    ");
    println!(
        "FIGURES client-resolve: a user Registry (cache) under resolve::resolve: 3 documents read, then 0 on a second resolution, same lock"
    );
}

#[test]
fn caching_registry_reports_a_missing_package_as_the_resolver_does() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("tokenizer", "1.0.0", &[]);
    let out = example(&ctx, "caching_registry")
        .arg(&reg.root)
        .arg("no-such-package")
        .output()
        .expect("run example");
    assert_code(&out, 1);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("no-such-package"), "{stderr}");
}

/// Publish, read and yank over HTTP with a token; the token is bound to
/// the registry's own origin, so a mirror on another origin (that would
/// accept it) never receives it.
#[test]
fn client_sends_its_token_to_its_own_origin_only() {
    let ctx = TestContext::new();
    let token = "client-token-0123";
    let canonical = ctx.serve(&ctx.root.join("canonical"), &["--require-auth", "--token", token], &[]);
    let mirror = ctx.serve(&ctx.root.join("mirror"), &["--require-auth", "--token", token], &[]);
    let src = ctx.dir_registry("src");
    src.publish("summarizer", "1.0.0", &[]);
    let bytes = std::fs::read(src.archive_path("summarizer", "1.0.0")).expect("archive");
    let rt = runtime();

    let open = |token: Option<&str>, mirror: Option<&str>| {
        let mut b = fm::Client::builder(&canonical.url)
            .name("company")
            .cache_dir(&ctx.cache);
        if let Some(t) = token {
            b = b.token(t);
        }
        if let Some(m) = mirror {
            b = b.mirror(m);
        }
        b.open().expect("open")
    };
    let anonymous = open(None, None);
    rt.block_on(anonymous.health()).expect("health answers");
    let err = rt
        .block_on(anonymous.publish(bytes.clone()))
        .expect_err("needs the token");
    assert!(err.to_string().contains("401"), "{err}");

    let client = open(Some(token), None);
    let info = rt.block_on(client.publish(bytes.clone())).expect("publish");
    assert_eq!((info.name.as_str(), info.version.as_str()), ("summarizer", "1.0.0"));
    let archive = rt.block_on(client.download("summarizer", "1.0.0")).expect("download");
    assert_eq!(archive.bytes(), &bytes[..]);
    rt.block_on(client.yank("summarizer", "1.0.0")).expect("yank");
    assert!(
        rt.block_on(client.get_version("summarizer", "1.0.0"))
            .expect("read")
            .yanked
    );
    let found = rt.block_on(client.search("summ")).expect("search");
    assert_eq!(found.len(), 1);

    // The mirror holds the same package and takes the same token; reads
    // go to it, the token does not.
    let m = fm::Client::builder(&mirror.url)
        .token(token)
        .cache_dir(&ctx.cache)
        .open()
        .expect("open");
    rt.block_on(m.publish(bytes)).expect("publish to the mirror");
    let via_mirror = open(Some(token), Some(&mirror.url));
    let err = rt
        .block_on(via_mirror.get_package("summarizer"))
        .expect_err("no token for the mirror");
    assert!(err.to_string().contains("401"), "{err}");
    let log = mirror.log();
    assert!(!log.contains(token), "the mirror never sees the token");
    println!(
        "FIGURES client-token: publish, download, yank, search with the token on its origin: ok; anonymous publish: 401; \
         the same token through a mirror on another origin that would accept it: 401 (not sent)"
    );
}

/// `fm::Project` as an embedder uses it: the bundled sample project locked
/// and synced over the bundled registries, then a second sync that finds
/// everything in place.
#[test]
fn lock_and_sync_locks_and_syncs_the_sample_project() {
    let ctx = TestContext::new();
    let tmp = ctx.root.join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    let out = example(&ctx, "lock_and_sync")
        .env("TMPDIR", &tmp)
        .output()
        .expect("run example");
    assert_code(&out, 0);
    let (stdout, _) = text(&out);
    let stdout = regex::Regex::new(r"\[ROOT\]/tmp/[^/]+/")
        .expect("regex")
        .replace_all(&ctx.filter(&stdout), "[WORK]/")
        .into_owned();
    insta::assert_snapshot!(stdout, @"
    Added classifier 1.0.0
    Added embeddings 1.0.0
    Added filter-kit 0.4.1
    Added json-tools 1.0.0
    Added math-core 1.2.0
    Added retrieval 1.0.0
    Added sentiment 1.1.0
    Added summarizer 1.2.0
    Added support-bot 1.0.0
    Added text-utils 1.2.0
    Added tokenizer 1.1.0
    Added vector-store 1.0.0
    locked 12 packages into [WORK]/project/fm.lock
    installed classifier 1.0.0
    installed embeddings 1.0.0
    installed filter-kit 0.4.1
    installed json-tools 1.0.0
    installed math-core 1.2.0
    installed retrieval 1.0.0
    installed sentiment 1.1.0
    installed summarizer 1.2.0
    installed support-bot 1.0.0
    installed text-utils 1.2.0
    installed tokenizer 1.1.0
    installed vector-store 1.0.0
    12 packages up to date
    ");
    println!("FIGURES examples: lock_and_sync locked 12 packages, installed 12, second sync 12 up to date");
}

/// A registry serves a hostile archive with a document whose checksum
/// matches it (it controls both): the download verifies, but unpacking
/// applies the install rules, refuses it, and leaves no folder behind,
/// also when the refusal comes after files were written (a bomb).
#[test]
fn client_unpack_refuses_a_hostile_verified_archive_and_leaves_nothing() {
    use std::io::Write as _;
    let zip_of = |entries: &[(&str, &[u8])]| {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in entries {
            zip.start_file(*name, opts).expect("entry");
            zip.write_all(body).expect("write");
        }
        zip.finish().expect("zip").into_inner()
    };
    let manifest: &[u8] = br#"{"name": "evil", "version": "1.0.0"}"#;
    let bomb = vec![b'a'; 4 << 20];
    let cases = [
        (
            "traversal",
            zip_of(&[("manifest.json", manifest), ("../evil.py", b"x")]),
        ),
        (
            "bomb",
            zip_of(&[("manifest.json", manifest), ("components/big.py", &bomb)]),
        ),
    ];
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    std::fs::create_dir_all(reg.join("index")).expect("mkdir");
    std::fs::create_dir_all(reg.join("packages/evil")).expect("mkdir");
    let client = fm::Client::open(&reg.display().to_string()).expect("open");
    let rt = runtime();
    for (case, bytes) in &cases {
        let sha = fm::fsutil::sha256_hex(bytes);
        let record = serde_json::json!({"version": "1.0.0", "checksum": sha, "size_bytes": bytes.len()});
        let doc = serde_json::json!({
            "name": "evil", "version": "1.0.0", "checksum": sha, "size_bytes": bytes.len(), "versions": [record],
        });
        std::fs::write(reg.join("index/evil.json"), doc.to_string()).expect("document");
        std::fs::write(reg.join("packages/evil/evil-1.0.0.fmpkg"), bytes).expect("archive");
        let archive = rt
            .block_on(client.download("evil", "1.0.0"))
            .expect("the checksum matches");
        let dest = ctx.root.join("out").join(case);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        let err = archive.unpack(&dest).expect_err("refused");
        assert!(!dest.exists(), "{case}: {} left behind ({err})", dest.display());
        assert!(
            !ctx.root.join("out/evil.py").exists(),
            "{case}: wrote outside the target"
        );
    }
    println!(
        "FIGURES client-unpack: {} hostile archives with matching checksums (traversal, bomb): refused at unpack, 0 folders left",
        cases.len()
    );
}
