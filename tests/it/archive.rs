//! `.fmpkg` archives (SPEC §5): FlowMason-packed archives read, packing
//! reproducible across checkouts, hostile archives refused by extraction
//! with nothing written outside the target.

use crate::common::*;

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use fm::archive::{self, ArchiveError, Limits};
use zip::write::SimpleFileOptions;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The SOURCE_DATE_EPOCH fixtures/generate.sh packs with.
const FIXTURE_EPOCH: &str = "1767225600";

// ---------------------------------------------------------------------------
// FlowMason 1.0.24 archives

#[test]
fn reads_every_flowmason_archive() {
    let dir = repo().join("fixtures/flowmason");
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut seen = Vec::new();
    for line in sums.lines() {
        let (sum, file) = line.split_once("  ").unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(
            fm::fsutil::sha256_hex(&bytes),
            sum,
            "{file} is not the captured archive"
        );
        let m = archive::read_manifest(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        // Its manifest.json entry has mode 0600 and no file-type bits; the
        // other entries are 0100644. All are plain files to fm.
        archive::check_entries(&bytes, &Limits::default()).unwrap();
        let deps: Vec<String> = m.dependencies.iter().map(|(n, r)| format!("{n} {r}")).collect();
        seen.push(format!(
            "{}@{} deps={deps:?} components={:?} category={:?} tags={:?}",
            m.raw.name,
            m.version,
            m.components(),
            m.raw.category,
            m.tags()
        ));
    }
    insta::assert_snapshot!(seen.join("\n"), @r#"
    summarizer@1.0.0 deps=["text-utils ^1.0.0"] components=["components/operators/bullets.py"] category=Some("transformers") tags=["nlp", "summary"]
    support-bot@1.0.0 deps=["summarizer ^1.0.0", "text-utils >=1.1.0, <2.0.0"] components=[""] category=Some("agents") tags=["support", "tickets"]
    text-utils@1.0.0 deps=[] components=["components/nodes/normalize.py"] category=None tags=[]
    text-utils@1.1.0 deps=[] components=["components/nodes/normalize.py"] category=None tags=[]
    "#);
}

#[test]
fn extracts_a_flowmason_archive() {
    let bytes = std::fs::read(repo().join("fixtures/flowmason/support-bot-1.0.0.fmpkg")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    let files = archive::extract(Cursor::new(&bytes), &dest, &Limits::default()).unwrap();
    let listed: Vec<String> = files
        .iter()
        .map(|f| format!("{} {} {}", f.path, f.size, f.executable))
        .collect();
    insta::assert_snapshot!(listed.join("\n"), @r"
    manifest.json 713 false
    pipelines/main.pipeline.json 738 false
    prompts/triage.txt 92 false
    ");
    for f in &files {
        let on_disk = std::fs::read(dest.join(&f.path)).unwrap();
        assert_eq!(fm::fsutil::sha256_hex(&on_disk), f.sha256, "{}", f.path);
    }
}

#[test]
fn publishes_flowmason_archives_with_their_checksums() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    for file in [
        "text-utils-1.0.0",
        "text-utils-1.1.0",
        "summarizer-1.0.0",
        "support-bot-1.0.0",
    ] {
        let path = repo().join(format!("fixtures/flowmason/{file}.fmpkg"));
        let out = ctx.run(&["publish", path.to_str().unwrap(), "--registry", reg.to_str().unwrap()]);
        assert_code(&out, 0);
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.join("index/text-utils.json")).unwrap()).unwrap();
    assert_eq!(doc["version"], "1.1.0");
    assert_eq!(
        doc["versions"][1]["checksum"],
        "12e20b383ff8dbc61cf383b660df24b535954128e799eb9fdb9efb4af5109b52"
    );
    let stored = std::fs::read(reg.join("packages/support-bot/support-bot-1.0.0.fmpkg")).unwrap();
    let original = std::fs::read(repo().join("fixtures/flowmason/support-bot-1.0.0.fmpkg")).unwrap();
    assert_eq!(stored, original, "the registry stores the uploaded bytes unchanged");
}

// ---------------------------------------------------------------------------
// Reproducible packing

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Sets every file's mtime under `dir` to `secs` after the epoch.
fn touch_all(dir: &Path, secs: u64) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            touch_all(&entry.path(), secs);
        } else {
            let f = std::fs::File::options().write(true).open(entry.path()).unwrap();
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .unwrap();
        }
    }
}

fn pack_with(ctx: &TestContext, dir: &Path, out: &Path, epoch: Option<&str>) -> Vec<u8> {
    let mut cmd = ctx.fm();
    cmd.args(["pack", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    if let Some(e) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", e);
    }
    let output = cmd.output().unwrap();
    assert_code(&output, 0);
    std::fs::read(out).unwrap()
}

#[test]
fn the_same_tree_in_two_checkouts_packs_to_the_same_bytes() {
    let ctx = TestContext::new();
    let src = repo().join("fixtures/packages/doc-ingest-1.0.0");
    let a = ctx.root.join("checkout-a/doc-ingest");
    let b = ctx.root.join("elsewhere/checkout-b/doc-ingest");
    copy_tree(&src, &a);
    copy_tree(&src, &b);
    touch_all(&a, 1_000_000_000);
    touch_all(&b, 1_700_000_000);
    // Checkout b also has version control, fm's own state and build output,
    // all of which stay out of the archive.
    for junk in [
        ".git/HEAD",
        ".fm/state.toml",
        "target/debug/x",
        "fm.lock",
        "old-1.0.0.fmpkg",
    ] {
        let p = b.join(junk);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "junk").unwrap();
    }

    for epoch in [None, Some("1767225600")] {
        let pa = pack_with(&ctx, &a, &ctx.root.join("a.fmpkg"), epoch);
        let pb = pack_with(&ctx, &b, &ctx.root.join("b.fmpkg"), epoch);
        assert_eq!(
            fm::fsutil::sha256_hex(&pa),
            fm::fsutil::sha256_hex(&pb),
            "SOURCE_DATE_EPOCH={epoch:?}"
        );
    }

    let bytes = pack_with(&ctx, &b, &ctx.root.join("b.fmpkg"), None);
    let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
    let names: Vec<String> = (0..zip.len())
        .map(|i| {
            let e = zip.by_index(i).unwrap();
            let t = e.last_modified().unwrap();
            format!(
                "{} {:o} {}-{:02}-{:02} {:02}:{:02}:{:02}",
                e.name(),
                e.unix_mode().unwrap(),
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .collect();
    insta::assert_snapshot!(names.join("\n"), @r"
    manifest.json 100644 1980-01-01 00:00:00
    components/_helpers.py 100644 1980-01-01 00:00:00
    components/doc_ingest.py 100644 1980-01-01 00:00:00
    pipelines/doc_ingest.pipeline.json 100644 1980-01-01 00:00:00
    prompts/doc_ingest.txt 100644 1980-01-01 00:00:00
    ");
    let m = archive::read_manifest(&bytes).unwrap();
    assert_eq!(
        m.raw.components,
        ["components/doc_ingest.py"],
        "private _helpers.py is not a component"
    );
    assert_eq!(m.raw.built_at, None, "no build time without SOURCE_DATE_EPOCH");
}

#[test]
fn source_date_epoch_sets_timestamps_and_built_at() {
    let ctx = TestContext::new();
    let src = repo().join("fixtures/packages/math-core-1.0.0");
    let plain = pack_with(&ctx, &src, &ctx.root.join("p.fmpkg"), None);
    let dated = pack_with(&ctx, &src, &ctx.root.join("d.fmpkg"), Some("1767225600"));
    assert_ne!(plain, dated);
    let m = archive::read_manifest(&dated).unwrap();
    assert_eq!(m.raw.built_at.as_deref(), Some("2026-01-01T00:00:00"));
    let mut zip = zip::ZipArchive::new(Cursor::new(&dated)).unwrap();
    let t = zip.by_index(1).unwrap().last_modified().unwrap();
    assert_eq!((t.year(), t.month(), t.day()), (2026, 1, 1));
}

#[test]
fn fixture_registries_match_their_sources() {
    // Every archive in fixtures/registries is what `fm pack` makes of its
    // source folder in this checkout (so generate.sh's output is
    // reproducible on any machine), and every document's checksum is the
    // archive's SHA-256.
    let ctx = TestContext::new();
    let regs = repo().join("fixtures/registries");
    let mut count = 0;
    for registry in ["main", "company"] {
        for entry in std::fs::read_dir(regs.join(registry).join("index")).unwrap() {
            let path = entry.unwrap().path();
            let doc: fm::registry::document::PackageDocument =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            for record in doc.versions.as_ref().unwrap() {
                let name = &doc.info.name;
                let archive_path = regs
                    .join(registry)
                    .join(fm::registry::document::archive_key(name, &record.version));
                let stored = std::fs::read(&archive_path).unwrap();
                assert_eq!(
                    fm::fsutil::sha256_hex(&stored),
                    record.checksum,
                    "{}",
                    archive_path.display()
                );
                assert_eq!(stored.len() as u64, record.size_bytes);
                let src = repo().join(format!("fixtures/packages/{name}-{}", record.version));
                if src.is_dir() {
                    let packed = pack_with(&ctx, &src, &ctx.root.join("x.fmpkg"), Some(FIXTURE_EPOCH));
                    assert!(
                        packed == stored,
                        "{name}@{} repacks differently; run fixtures/generate.sh",
                        record.version
                    );
                    count += 1;
                }
            }
        }
    }
    assert_eq!(
        count,
        std::fs::read_dir(repo().join("fixtures/packages")).unwrap().count()
    );
}

// ---------------------------------------------------------------------------
// Hostile archives, refused by extraction

/// A zip with a valid manifest.json followed by `entries`.
pub fn hostile_zip(entries: &[(&str, Entry)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    zip.start_file("manifest.json", opts).unwrap();
    zip.write_all(br#"{"name": "evil", "version": "1.0.0"}"#).unwrap();
    for (name, entry) in entries {
        match entry {
            Entry::File(body) => {
                zip.start_file(*name, opts).unwrap();
                zip.write_all(body.as_bytes()).unwrap();
            }
            Entry::Symlink(target) => zip.add_symlink(*name, *target, opts).unwrap(),
        }
    }
    zip.finish().unwrap().into_inner()
}

pub enum Entry {
    File(&'static str),
    Symlink(&'static str),
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.push(rel);
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Extracts `bytes` into `sandbox/target`; returns the error and checks that
/// nothing appeared in the sandbox outside `target`.
fn extract_refused(bytes: &[u8]) -> ArchiveError {
    let sandbox = tempfile::tempdir().unwrap();
    let target = sandbox.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let err = archive::extract(Cursor::new(bytes), &target, &Limits::default()).unwrap_err();
    let outside: Vec<String> = tree(sandbox.path())
        .into_iter()
        .filter(|p| p != "target" && !p.starts_with("target/"))
        .collect();
    assert!(outside.is_empty(), "written outside the target: {outside:?}");
    // The same bytes are refused by the check registries run before storing.
    assert!(archive::check_entries(bytes, &Limits::default()).is_err());
    err
}

#[test]
fn extraction_refuses_zip_slip() {
    let err = extract_refused(&hostile_zip(&[
        ("ok.txt", Entry::File("fine")),
        ("../escaped.txt", Entry::File("pwned")),
    ]));
    insta::assert_snapshot!(err.to_string(), @r#"unsafe archive entry "../escaped.txt": `..` path component (path traversal)"#);
    let err = extract_refused(&hostile_zip(&[("a/b/../../../escaped.txt", Entry::File("pwned"))]));
    assert!(matches!(err, ArchiveError::UnsafeEntry { .. }), "{err}");
}

#[test]
fn extraction_refuses_absolute_paths() {
    // An absolute path into the sandbox itself, so a write would be seen.
    let sandbox = tempfile::tempdir().unwrap();
    let target = sandbox.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let abs = sandbox.path().join("escaped.txt");
    let name: &'static str = Box::leak(abs.display().to_string().into_boxed_str());
    let bytes = hostile_zip(&[(name, Entry::File("pwned"))]);
    let err = archive::extract(Cursor::new(&bytes), &target, &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("absolute path"), "{err}");
    assert!(!abs.exists());
    let outside: Vec<String> = tree(sandbox.path())
        .into_iter()
        .filter(|p| p != "target" && !p.starts_with("target/"))
        .collect();
    assert!(outside.is_empty(), "written outside the target: {outside:?}");
    assert!(archive::check_entries(&bytes, &Limits::default()).is_err());
}

#[test]
fn extraction_refuses_symlinks() {
    // A link to outside, then a write through it.
    let err = extract_refused(&hostile_zip(&[
        ("link", Entry::Symlink("..")),
        ("link/escaped.txt", Entry::File("pwned")),
    ]));
    insta::assert_snapshot!(err.to_string(), @r#"unsafe archive entry "link": symbolic link"#);
    let err = extract_refused(&hostile_zip(&[("etc", Entry::Symlink("/etc"))]));
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn extraction_refuses_duplicates_and_backslashes() {
    let err = extract_refused(&hostile_zip(&[
        ("a.txt", Entry::File("one")),
        ("A.txt", Entry::File("two")),
    ]));
    assert!(err.to_string().contains("duplicate"), "{err}");
    let err = extract_refused(&hostile_zip(&[("..\\escaped.txt", Entry::File("pwned"))]));
    assert!(err.to_string().contains("backslash"), "{err}");
}

#[test]
fn extraction_stops_at_the_caps() {
    let sandbox = tempfile::tempdir().unwrap();
    let big = "x".repeat(4096);
    let body: &'static str = Box::leak(big.into_boxed_str());
    let bytes = hostile_zip(&[("a", Entry::File(body)), ("b", Entry::File(body))]);
    let limits = Limits {
        max_total_bytes: 5000,
        ..Limits::default()
    };
    let dest = sandbox.path().join("t1");
    std::fs::create_dir(&dest).unwrap();
    let err = archive::extract(Cursor::new(&bytes), &dest, &limits).unwrap_err();
    assert!(matches!(err, ArchiveError::TooLarge(_)), "{err}");
    let limits = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    let dest = sandbox.path().join("t2");
    std::fs::create_dir(&dest).unwrap();
    let err = archive::extract(Cursor::new(&bytes), &dest, &limits).unwrap_err();
    assert!(matches!(err, ArchiveError::TooLarge(_)), "{err}");
    assert!(
        tree(&dest).is_empty(),
        "the entry cap is checked before anything is written"
    );
}

/// zip64 is read, not refused: entries with zip64 extra fields
/// (`large_file`) and a zip64 end record publish and install like any
/// archive.
#[test]
fn a_zip64_archive_publishes_and_installs() {
    let ctx = TestContext::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.set_zip64_comment(Some("zip64 end record"));
    let body = b"def run(x):\n    return x\n".repeat(1000);
    for (name, bytes) in [
        ("manifest.json", br#"{"name": "big", "version": "1.0.0"}"#.as_slice()),
        ("components/big.py", body.as_slice()),
    ] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    assert!(
        bytes.windows(4).any(|w| w == [0x50, 0x4b, 0x06, 0x06]),
        "no zip64 end record"
    );
    let file = ctx.root.join("big.fmpkg");
    std::fs::write(&file, &bytes).unwrap();
    let reg = ctx.root.join("reg");
    assert_code(
        &ctx.run(&["publish", file.to_str().unwrap(), "--registry", reg.to_str().unwrap()]),
        0,
    );
    let url = url::Url::from_directory_path(&reg).unwrap();
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nbig = \"1\"\n\n[[registries]]\nname = \"main\"\nurl = \"{url}\"\n"
    ));
    assert_code(&ctx.run(&["sync"]), 0);
    assert_eq!(
        std::fs::read(ctx.project.join(".fm/packages/big/components/big.py")).unwrap(),
        body
    );
}
