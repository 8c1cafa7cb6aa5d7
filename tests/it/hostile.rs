//! A hostile-input corpus, generated here, fed to every door fm has:
//! archives to `fm publish` (directory registry) and to the server's upload
//! endpoint; manifests and locks to the CLI; package names to `fm add`,
//! `fm install` and the upload endpoint. Each is refused with a precise
//! error and nothing is written. Cases other tests already cover (`..`,
//! absolute paths, symlinks, devices, high-ratio bombs at sync; zip slip,
//! symlinks, bad manifests at publish) are not repeated here.

use std::io::{Cursor, Write as _};

use crate::common::*;
use zip::write::SimpleFileOptions;

const MANIFEST: &str = r#"{"name": "evil", "version": "1.0.0"}"#;
const TOKEN: &str = "hostile-token";

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in entries {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(body).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Replaces every occurrence of `from` by `to` (same length) in the local
/// headers only (`local`), or in both headers.
fn patch_name(bytes: &mut [u8], from: &[u8], to: &[u8], local_only: bool) {
    assert_eq!(from.len(), to.len());
    let mut i = 0;
    let mut hits = 0;
    while i + 4 <= bytes.len() {
        let local = bytes[i..i + 4] == [0x50, 0x4b, 0x03, 0x04];
        let central = bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02];
        if local || (central && !local_only) {
            let (len_at, name_at) = if local { (26, 30) } else { (28, 46) };
            let n = u16::from_le_bytes([bytes[i + len_at], bytes[i + len_at + 1]]) as usize;
            if &bytes[i + name_at..i + name_at + n] == from {
                bytes[i + name_at..i + name_at + n].copy_from_slice(to);
                hits += 1;
            }
        }
        i += 1;
    }
    assert!(hits > 0, "name not found");
}

/// Sets a little-endian field of the entry `name`: `central_at` in its
/// central-directory header and `local_at` in its local header (`None`:
/// leave that header alone).
fn patch_entry(bytes: &mut [u8], name: &[u8], central_at: Option<usize>, local_at: Option<usize>, value: &[u8]) {
    let mut hits = 0;
    for i in 0..bytes.len().saturating_sub(46) {
        let local = bytes[i..i + 4] == [0x50, 0x4b, 0x03, 0x04];
        let central = bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02];
        let (len_at, name_at, field) = match (local, central) {
            (true, _) => (26, 30, local_at),
            (_, true) => (28, 46, central_at),
            _ => continue,
        };
        let n = u16::from_le_bytes([bytes[i + len_at], bytes[i + len_at + 1]]) as usize;
        if let Some(at) = field
            && bytes.get(i + name_at..i + name_at + n) == Some(name)
        {
            bytes[i + at..i + at + value.len()].copy_from_slice(value);
            hits += 1;
        }
    }
    assert!(hits > 0, "entry not found");
}

/// The end of central directory record's offset.
fn eocd(bytes: &[u8]) -> usize {
    (0..bytes.len() - 21)
        .rev()
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .expect("end record")
}

/// A zip with a folder entry `dir` (ending in `/`) among `files`.
fn zip_with_dir(files: &[(&str, &[u8])], dir: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in files {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(body).unwrap();
    }
    zip.add_directory(dir, opts).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Archives the old structural walk, or publish, let through (issue #12
/// point 3): zip structures that disagree with themselves, and names that
/// no install on some OS can unpack. Each is refused by every door.
fn consistency_and_portability_corpus() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut cases = Vec::new();
    let m = ("manifest.json", MANIFEST.as_bytes());
    // The end record's "entries on this disk" (read by the zip crate) says
    // 2, its "entries in all" (walked) says 1: the walk never saw the
    // second entry, whose local header names a traversal.
    let mut bytes = zip_of(&[m, ("components/ok.py", b"x")]);
    patch_name(&mut bytes, b"components/ok.py", b"../../../evil.py", true);
    let at = eocd(&bytes);
    bytes[at + 10..at + 12].copy_from_slice(&1u16.to_le_bytes());
    cases.push(("end record entry counts differ", bytes, "two entry counts differ"));
    // A deflate bomb whose declared compressed size is 100x the truth: a
    // ratio computed on the declared size passes.
    let zeros = vec![0u8; 8 << 20];
    let mut bytes = zip_of(&[m, ("components/zeros.bin", &zeros)]);
    let lie = ((8u32 << 20) / 100).to_le_bytes();
    patch_entry(&mut bytes, b"components/zeros.bin", Some(20), Some(18), &lie);
    cases.push(("lying compressed size", bytes, "declared compressed size"));
    // Bytes hidden between two entries (a second local header no central
    // entry lists).
    let cd_of = |z: &[u8]| u32::from_le_bytes(z[eocd(z) + 16..eocd(z) + 20].try_into().unwrap()) as usize;
    let first = zip_of(&[m]);
    let cd = cd_of(&first);
    let hidden = zip_of(&[("components/hidden.py", b"import os".as_slice())]);
    let mut bytes = first[..cd].to_vec();
    bytes.extend_from_slice(&hidden[..cd_of(&hidden)]);
    let shift = (bytes.len() - cd) as u32;
    bytes.extend_from_slice(&first[cd..]);
    let at = eocd(&bytes);
    let off = u32::from_le_bytes(bytes[at + 16..at + 20].try_into().unwrap()) + shift;
    bytes[at + 16..at + 20].copy_from_slice(&off.to_le_bytes());
    cases.push(("data hidden between entries", bytes, "belong to no entry"));
    // A zip64 end record (the zip crate writes one with a zip64 comment)
    // whose entry count disagrees with the 32-bit end record's.
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.set_zip64_comment(Some("fm"));
    for (name, body) in [m, ("components/a.py", b"x".as_slice())] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(body).unwrap();
    }
    let mut bytes = zip.finish().unwrap().into_inner();
    let z = (0..bytes.len() - 4)
        .rev()
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x06, 0x06])
        .expect("zip64 end record");
    for at in [z + 24, z + 32] {
        bytes[at..at + 8].copy_from_slice(&1u64.to_le_bytes());
    }
    cases.push(("zip64 end record disagrees", bytes, "disagree on the central directory"));
    // Names an install on Windows or macOS cannot unpack.
    for (case, name, words) in [
        ("Windows device name", "CON", "reserved device name"),
        (
            "Windows device name with an extension",
            "components/aux.py",
            "reserved device name",
        ),
        ("trailing dot", "components/a.py.", "ends with a dot or a space"),
        ("trailing space", "components/a.py ", "ends with a dot or a space"),
        (
            "Windows-forbidden character",
            "components/a?.py",
            "cannot be in a Windows file name",
        ),
        (".git folder", ".git/hooks/post-checkout", "never part of a package"),
        (".fm folder", "x/.fm/state.toml", "never part of a package"),
    ] {
        cases.push((case, zip_of(&[m, (name, b"x")]), words));
    }
    let long_component = format!("components/{}.py", "a".repeat(300));
    cases.push((
        "300-character component",
        zip_of(&[m, (long_component.as_str(), b"x")]),
        "path component is",
    ));
    let long_path = format!("{}/a.py", ["abcdefghijklmnopqrstuvwxyz0123456789"; 8].join("/"));
    cases.push((
        "path over the length cap",
        zip_of(&[m, (long_path.as_str(), b"x")]),
        "its path is",
    ));
    cases.push((
        "file then folder of the same name",
        zip_with_dir(&[m, ("components/x", b"x")], "components/x/"),
        "file/folder collision",
    ));
    cases.push((
        "file and a file beneath it",
        zip_of(&[m, ("components/x", b"x"), ("components/x/y.py", b"y")]),
        "file/folder collision",
    ));
    cases.push((
        "names equal once normalized (NFC)",
        zip_of(&[
            m,
            ("components/caf\u{e9}.py", b"1"),
            ("components/cafe\u{301}.py", b"2"),
        ]),
        "Unicode normalization",
    ));
    cases.push((
        "file and folder differing in case",
        zip_of(&[m, ("components/X", b"x"), ("components/x/y.py", b"y")]),
        "file/folder collision",
    ));
    cases
}

/// The archive corpus: (case, bytes, words the refusal must hold).
fn archive_corpus() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut cases = consistency_and_portability_corpus();
    let m = ("manifest.json", MANIFEST.as_bytes());
    cases.push((
        "drive-letter path",
        zip_of(&[m, ("C:/evil.txt", b"x")]),
        "drive-letter path",
    ));
    cases.push((
        "drive-letter with backslash",
        zip_of(&[m, ("C:\\evil.txt", b"x")]),
        "backslash",
    ));
    cases.push((
        "backslash traversal",
        zip_of(&[m, ("components\\..\\..\\evil.txt", b"x")]),
        "backslash",
    ));
    cases.push((
        "NTFS stream",
        zip_of(&[m, ("components/a.py:evil", b"x")]),
        "`:` in a path",
    ));
    // The zip writer refuses duplicates: write another name, then rename.
    let mut bytes = zip_of(&[m, ("components/a.py", b"one"), ("components/b.py", b"two")]);
    patch_name(&mut bytes, b"components/b.py", b"components/a.py", false);
    cases.push(("duplicate entry", bytes, "duplicate entry"));
    cases.push((
        "case-folded duplicate",
        zip_of(&[m, ("components/A.py", b"one"), ("components/a.py", b"two")]),
        "duplicate entry",
    ));
    cases.push((
        "control character",
        zip_of(&[m, ("components/a\u{1b}[2J.py", b"x")]),
        "control character",
    ));
    // Non-UTF-8 name: patched in both headers after writing.
    let mut bytes = zip_of(&[m, ("components/zz.py", b"x")]);
    patch_name(&mut bytes, b"components/zz.py", b"components/\xff\xfe.py", false);
    cases.push(("non-UTF-8 name", bytes, "not valid UTF-8"));
    // The local header names a traversal, the central directory a good path.
    let mut bytes = zip_of(&[m, ("components/ok.py", b"x")]);
    patch_name(&mut bytes, b"components/ok.py", b"../../../evil.py", true);
    cases.push(("local header disagrees with central directory", bytes, "local header"));
    // Stacked zips (a second archive appended to, or a prefix before, a
    // good one): readers disagree on which one they see.
    let good = zip_of(&[m, ("components/a.py", b"good")]);
    let evil = zip_of(&[m, ("components/a.py", b"evil")]);
    cases.push((
        "stacked zips",
        [good.clone(), evil].concat(),
        "central directory is not where",
    ));
    cases.push((
        "data before the archive",
        [b"#!/bin/sh\n".to_vec(), good].concat(),
        "central directory is not where",
    ));
    // Many-entry bomb: more entries than the cap (10 000).
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("manifest.json", stored).unwrap();
    zip.write_all(MANIFEST.as_bytes()).unwrap();
    for i in 0..10_001 {
        zip.start_file(format!("f/{i}"), stored).unwrap();
    }
    cases.push((
        "many-entry bomb",
        zip.finish().unwrap().into_inner(),
        "entries (at most 10000)",
    ));
    // High-ratio bomb (publish and upload; sync is covered in sync.rs).
    let zeros = vec![0u8; 4 << 20];
    cases.push((
        "high-ratio bomb",
        zip_of(&[m, ("components/zeros.bin", &zeros)]),
        "zip bomb",
    ));
    // A huge manifest.json.
    let huge = format!(
        r#"{{"name": "evil", "version": "1.0.0", "description": "{}"}}"#,
        "a".repeat(2 << 20)
    );
    cases.push((
        "huge manifest.json",
        zip_of(&[("manifest.json", huge.as_bytes())]),
        "manifest.json is over",
    ));
    // A deeply nested manifest.json.
    // (Nesting under an unknown key is skipped without recursion and
    // accepted; under a known one it must be refused.)
    let deep = format!(
        r#"{{"name": "evil", "version": "1.0.0", "dependencies": {{"a": {}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    cases.push((
        "deeply nested manifest.json",
        zip_of(&[("manifest.json", deep.as_bytes())]),
        "manifest.json",
    ));
    cases.push((
        "invalid UTF-8 manifest.json",
        zip_of(&[("manifest.json", b"{\"name\": \"ev\xffil\", \"version\": \"1.0.0\"}")]),
        "manifest.json",
    ));
    // Hostile names in manifest.json.
    for (case, name, why) in [
        ("name ../x", "../x", "it starts with '.'"),
        ("name CON", "con", "reserved device name"),
        ("upper-case name", "Evil", "upper-case letter"),
        ("cyrillic look-alike name", "\u{0435}vil", "it starts with"),
        ("fullwidth look-alike name", "e\u{ff56}il", "it contains"),
        ("name with a slash", "a/b", "it contains '/'"),
    ] {
        let manifest = format!(r#"{{"name": "{name}", "version": "1.0.0"}}"#);
        let bytes = zip_of(&[("manifest.json", manifest.as_bytes()), ("components/a.py", b"x")]);
        cases.push((case, bytes, why));
    }
    cases
}

#[test]
fn hostile_archives_are_refused_by_publish_and_by_the_upload_endpoint_and_nothing_is_written() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("dir-registry");
    let storage = ctx.root.join("storage");
    let server = ctx.serve(&storage, &["--token", TOKEN], &[]);
    let rt = runtime();
    let c = reqwest::Client::new();
    let corpus = archive_corpus();
    let mut refused = 0;
    for (case, bytes, words) in &corpus {
        // fm publish to a directory registry.
        let file = ctx.root.join("upload.fmpkg");
        std::fs::write(&file, bytes).unwrap();
        let out = ctx.run(&["publish", file.to_str().unwrap(), "--registry", reg.to_str().unwrap()]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(
            err.contains(words),
            "{case}: the refusal does not say {words:?}:\n{err}"
        );
        assert!(err.len() < 4096, "{case}: a {}-byte error", err.len());
        assert!(
            snapshot_tree(&reg).is_empty(),
            "{case}: fm publish wrote into the registry"
        );
        refused += 1;

        // The server's upload endpoint.
        let (status, body) = rt.block_on(async {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name("x.fmpkg"),
            );
            let r = c
                .post(server.api("packages/upload"))
                .bearer_auth(TOKEN)
                .multipart(form)
                .send()
                .await
                .expect("upload");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
        assert!(
            status == 400 || status == 413,
            "{case}: upload answered {status}: {body}"
        );
        assert!(
            body.contains(words),
            "{case}: the server's refusal does not say {words:?}: {body}"
        );
        let stored: Vec<String> = snapshot_tree(&storage)
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| !p.starts_with('.') && p != "downloads.json")
            .collect();
        assert!(stored.is_empty(), "{case}: the server stored {stored:?}");
        refused += 1;
    }
    eprintln!(
        "FIGURES hostile-archives: {} hostile archives x 2 doors (fm publish, upload endpoint) = {refused} refusals; 0 files written",
        corpus.len()
    );
}

/// The install door: each archive of the consistency and portability
/// corpus, put straight into a registry folder (as a registry that skipped
/// the checks would serve it) and locked by its digest, is refused by
/// `fm sync --frozen`, and nothing is installed.
#[test]
fn hostile_archives_are_refused_by_sync_and_nothing_is_installed() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let url = url::Url::from_directory_path(&reg).unwrap().to_string();
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nevil = \"=1.0.0\"\n\n[[registries]]\nname = \"main\"\nurl = \"{url}\"\n"
    ));
    let corpus = consistency_and_portability_corpus();
    for (case, bytes, words) in &corpus {
        let path = reg.join("packages/evil/evil-1.0.0.fmpkg");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        fm::lock::Lockfile {
            log: Default::default(),
            root: vec!["evil =1.0.0".into()],
            registries: vec![fm::lock::LockedRegistry {
                name: "main".into(),
                url: url.clone(),
                priority: 100,
                explicit: false,
            }],
            packages: vec![fm::lock::LockedPackage {
                name: "evil".parse().unwrap(),
                version: semver::Version::new(1, 0, 0),
                registry: "main".into(),
                sha256: fm::fsutil::sha256_hex(bytes).parse().unwrap(),
                size: bytes.len() as u64,
                dependencies: vec![],
            }],
        }
        .save(&ctx.project.join("fm.lock"))
        .unwrap();
        let out = ctx.run(&["sync", "--frozen"]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(
            err.contains(words),
            "{case}: the refusal does not say {words:?}:\n{err}"
        );
        let installed: Vec<String> = snapshot_tree(&ctx.project.join(".fm/packages"))
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert!(installed.is_empty(), "{case}: installed {installed:?}");
        assert!(!ctx.root.join("evil.py").exists(), "{case}: wrote outside the target");
    }
    eprintln!(
        "FIGURES hostile-archives-install: {} inconsistent or unportable archives refused by fm sync; 0 files installed",
        corpus.len()
    );
}

/// A zip inside a package is an ordinary file: kept byte for byte, never
/// unpacked, so a bomb or traversal inside it goes nowhere.
#[test]
fn a_zip_inside_a_package_is_stored_opaque_and_never_unpacked() {
    let ctx = TestContext::new();
    let inner = zip_of(&[("../../../evil.txt", b"pwned"), ("zeros.bin", &vec![0u8; 4 << 20])]);
    let outer = zip_of(&[
        ("manifest.json", br#"{"name": "nest", "version": "1.0.0"}"#.as_slice()),
        ("components/inner.zip", &inner),
    ]);
    let reg = ctx.root.join("reg");
    let file = ctx.root.join("nest.fmpkg");
    std::fs::write(&file, &outer).unwrap();
    assert_code(
        &ctx.run(&["publish", file.to_str().unwrap(), "--registry", reg.to_str().unwrap()]),
        0,
    );
    let sha = fm::fsutil::sha256_hex(&outer);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        url::Url::from_directory_path(&reg).unwrap()
    ));
    let lock = fm::lock::Lockfile {
        log: Default::default(),
        root: vec!["nest =1.0.0".into()],
        registries: vec![fm::lock::LockedRegistry {
            name: "main".into(),
            url: url::Url::from_directory_path(&reg).unwrap().to_string(),
            priority: 100,
            explicit: false,
        }],
        packages: vec![fm::lock::LockedPackage {
            name: "nest".parse().unwrap(),
            version: semver::Version::new(1, 0, 0),
            registry: "main".into(),
            sha256: sha.parse().unwrap(),
            size: outer.len() as u64,
            dependencies: vec![],
        }],
    };
    lock.save(&ctx.project.join("fm.lock")).unwrap();
    assert_code(&ctx.run(&["sync", "--frozen"]), 0);
    let installed = std::fs::read(ctx.project.join(".fm/packages/nest/components/inner.zip")).unwrap();
    assert!(installed == inner, "the inner zip changed");
    assert!(!ctx.root.join("evil.txt").exists() && !ctx.project.join("evil.txt").exists());
}

/// Manifests and locks that are huge, deeply nested or invalid UTF-8.
#[test]
fn hostile_manifests_and_locks_are_refused_with_a_short_precise_error() {
    let ctx = TestContext::new();
    let head = "[project]\nname = \"app\"\n\n[dependencies]\n";
    let mut huge = String::from(head);
    for i in 0..20_000 {
        huge.push_str(&format!("p{i} = \"^1\"\n"));
    }
    huge.push_str("\"Bad Name\" = \"^1\"\n");
    let manifests: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "deeply nested arrays",
            format!("{head}x = {}{}\n", "[".repeat(50_000), "]".repeat(50_000)).into_bytes(),
            "recursion",
        ),
        (
            "deeply nested tables",
            format!("{head}x = {}1{}\n", "{a=".repeat(50_000), "}".repeat(50_000)).into_bytes(),
            "recursion",
        ),
        ("invalid UTF-8", b"[project]\nname = \"\xff\xfe\"\n".to_vec(), "UTF-8"),
        ("huge, one bad name at the end", huge.into_bytes(), "Bad Name"),
    ];
    let mut refused = 0;
    for (case, bytes, words) in &manifests {
        std::fs::write(ctx.project.join("fm.toml"), bytes).unwrap();
        let out = ctx.run(&["add", "foo@^1"]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {}", &err[..err.len().min(2000)]);
        assert!(
            err.contains(words),
            "{case}: the error does not say {words:?}: {}",
            &err[..err.len().min(2000)]
        );
        assert!(err.len() < 8192, "{case}: a {}-byte error message", err.len());
        assert_eq!(
            &std::fs::read(ctx.project.join("fm.toml")).unwrap(),
            bytes,
            "{case}: fm.toml changed"
        );
        refused += 1;
    }

    ctx.write_manifest(&format!(
        "{head}\n[[registries]]\nname = \"main\"\nurl = \"https://127.0.0.1:9/\"\n"
    ));
    let locks: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "deeply nested lock",
            format!("version = 1\nx = {}{}\n", "[".repeat(50_000), "]".repeat(50_000)).into_bytes(),
            "recursion",
        ),
        (
            "invalid UTF-8 lock",
            b"version = 1\n[[package]]\nname = \"\xff\"\n".to_vec(),
            "UTF-8",
        ),
        (
            "huge lock",
            {
                let mut s = String::from("version = 1\n");
                for i in 0..20_000 {
                    s.push_str(&format!(
                        "[[package]]\nname = \"p{i}\"\nversion = \"1.0.0\"\nregistry = \"main\"\nsha256 = \"zz\"\n"
                    ));
                }
                s.into_bytes()
            },
            "fm.lock",
        ),
        (
            "path trick in a locked name",
            fm::lock::Lockfile {
                log: Default::default(),
                root: vec!["x =1.0.0".into()],
                registries: vec![fm::lock::LockedRegistry {
                    name: "main".into(),
                    url: "https://127.0.0.1:9/".into(),
                    priority: 100,
                    explicit: false,
                }],
                packages: vec![fm::lock::LockedPackage {
                    name: "x".parse().unwrap(),
                    version: semver::Version::new(1, 0, 0),
                    registry: "main".into(),
                    sha256: "0".repeat(64).parse().unwrap(),
                    size: 1,
                    dependencies: vec![],
                }],
            }
            .render()
            // fm cannot hold an invalid name: the hostile lock is text.
            .replace("name = \"x\"", "name = \"../x\"")
            .into_bytes(),
            "../x",
        ),
    ];
    for (case, bytes, words) in &locks {
        std::fs::write(ctx.project.join("fm.lock"), bytes).unwrap();
        let out = ctx.run(&["sync", "--frozen"]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {}", &err[..err.len().min(2000)]);
        assert!(
            err.contains(words),
            "{case}: the error does not say {words:?}: {}",
            &err[..err.len().min(2000)]
        );
        assert!(err.len() < 8192, "{case}: a {}-byte error message", err.len());
        assert!(!ctx.project.join(".fm").exists(), "{case}: .fm was created");
        refused += 1;
    }
    eprintln!("FIGURES hostile-files: {refused} hostile manifests and locks refused; 0 files written");
}

/// Package names with path tricks at the CLI.
#[test]
fn hostile_package_names_are_refused_by_add_and_install() {
    let ctx = TestContext::new();
    let manifest = "[project]\nname = \"app\"\n\n[dependencies]\n";
    ctx.write_manifest(manifest);
    let names = [
        ("../x", "it starts with '.'"),
        ("a/../../x", "it contains '/'"),
        ("con", "reserved device name"),
        ("LPT1", "upper-case letter"),
        ("Foo", "upper-case letter"),
        ("\u{0430}pp", "it starts with"), // cyrillic a
        ("fo\u{043e}", "it contains"),    // cyrillic o
        ("\u{ff46}oo", "it starts with"), // fullwidth f
        ("a\u{200b}b", "it contains"),    // zero-width space
        ("-rf", ""),                      // a flag, or a bad name: refused either way
    ];
    let mut refused = 0;
    for (name, words) in names {
        for cmd in ["add", "install"] {
            let spec = format!("{name}@^1");
            let out = if cmd == "add" {
                ctx.run(&[cmd, &spec])
            } else {
                ctx.run(&[cmd, name])
            };
            let (_, err) = text(&out);
            assert_ne!(out.status.code(), Some(0), "{cmd} {name}: accepted");
            assert!(
                err.contains(words),
                "{cmd} {name}: the error does not say {words:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{cmd} {name}: {err}");
            assert_eq!(ctx.read("fm.toml"), manifest, "{cmd} {name}: fm.toml changed");
            assert!(!ctx.project.join(".fm").exists() && !ctx.project.join("fm.lock").exists());
            refused += 1;
        }
    }
    eprintln!("FIGURES hostile-names: {refused} hostile package names refused by fm add / fm install; 0 files written");
}

/// Errors stay short whatever the input (issue #12 point 7): a stale
/// 100 000-package lock listed every difference (6.5 MB on stderr), and a
/// 10 000-dependency manifest named every missing package in its hint.
#[test]
fn huge_locks_and_manifests_give_errors_of_a_few_kb() {
    let ctx = TestContext::new();
    // A closed port: any request would fail with a connection error, so an
    // error naming the limit proves none was sent.
    let registries = "[[registries]]\nname = \"main\"\nurl = \"http://127.0.0.1:9/\"\n";
    let mut manifest = String::from("[project]\nname = \"app\"\n\n[dependencies]\n");
    for i in 0..10_000 {
        manifest.push_str(&format!("p{i} = \"^1\"\n"));
    }
    manifest.push('\n');
    manifest.push_str(registries);
    ctx.write_manifest(&manifest);
    let out = ctx.run(&["lock"]);
    let (_, err) = text(&out);
    assert_code(&out, 1);
    assert!(
        err.contains("10000 dependencies (at most 1000)"),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(
        err.len() < 8192,
        "a {}-byte error for a 10 000-dependency manifest",
        err.len()
    );
    let manifest_err = err.len();

    // A 100 000-package lock whose [root] no longer matches fm.toml.
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\np0 = \"^1\"\n\n{registries}"
    ));
    let mut lock = String::from("version = 1\n\n[root]\ndependencies = [");
    for i in 0..100_000 {
        lock.push_str(&format!("\"p{i} ^1\", "));
    }
    lock.push_str("]\n\n[[registry]]\nname = \"main\"\nurl = \"http://127.0.0.1:9/\"\n");
    for i in 0..100_000 {
        lock.push_str(&format!(
            "\n[[package]]\nname = \"p{i}\"\nversion = \"1.0.0\"\nregistry = \"main\"\nsha256 = \"{}\"\nsize = 1\n",
            "0".repeat(64)
        ));
    }
    std::fs::write(ctx.project.join("fm.lock"), &lock).unwrap();
    let mut sizes = Vec::new();
    for args in [&["lock", "--check"][..], &["sync", "--locked"][..]] {
        let out = ctx.run(args);
        let (_, err) = text(&out);
        assert_code(&out, 1);
        assert!(
            err.contains("is stale") && err.contains("99989 more differences"),
            "{args:?}: {}",
            &err[..err.len().min(2000)]
        );
        assert!(
            err.len() < 8192,
            "{args:?}: a {}-byte error for a 100 000-package lock",
            err.len()
        );
        sizes.push(err.len());
    }
    eprintln!(
        "FIGURES error-size: 10 000-dependency manifest -> {manifest_err} B; stale 100 000-package lock -> {} B (lock --check), {} B (sync --locked)",
        sizes[0], sizes[1]
    );
}

/// A manifest.json with absurd fan-out is refused at publish, before any
/// installer would ask a registry about each dependency.
#[test]
fn a_package_with_absurd_fan_out_is_refused_at_publish() {
    let ctx = TestContext::new();
    let deps: Vec<String> = (0..1001).map(|i| format!("\"d{i}\": \"^1\"")).collect();
    let manifest = format!(
        r#"{{"name": "wide", "version": "1.0.0", "dependencies": {{{}}}}}"#,
        deps.join(", ")
    );
    let bytes = zip_of(&[("manifest.json", manifest.as_bytes()), ("components/a.py", b"x")]);
    let file = ctx.root.join("wide.fmpkg");
    std::fs::write(&file, &bytes).unwrap();
    let reg = ctx.root.join("reg");
    let out = ctx.run(&["publish", file.to_str().unwrap(), "--registry", reg.to_str().unwrap()]);
    let (_, err) = text(&out);
    assert_code(&out, 1);
    assert!(err.contains("1001 dependencies (at most 1000)"), "{err}");
    assert!(snapshot_tree(&reg).is_empty());
}
