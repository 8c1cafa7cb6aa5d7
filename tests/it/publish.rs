//! `fm publish` and `fm yank` on directory registries (SPEC §4): hostile
//! archives refused with the registry untouched, concurrent publishers
//! never losing each other's versions, published versions immutable.

use crate::common::*;

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;

/// Every file under `dir` (relative path → SHA-256), including hidden ones.
fn snapshot_dir(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for entry in rd {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if entry.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"), String::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, fm::fsutil::sha256_hex(&std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn publish(ctx: &TestContext, file: &Path, registry: &Path) -> std::process::Output {
    ctx.run(&[
        "publish",
        file.to_str().unwrap(),
        "--registry",
        registry.to_str().unwrap(),
    ])
}

/// Packs `name@version` (no dependencies) into `ctx.root/archives/`.
fn packed(ctx: &TestContext, name: &str, version: &str) -> PathBuf {
    let src = package_source(&ctx.root.join("src"), name, version, &[]);
    let p = pack_folder(&src);
    let out = ctx.root.join("archives").join(p.file_name());
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &p.bytes).unwrap();
    out
}

fn document(registry: &Path, name: &str) -> fm::registry::document::PackageDocument {
    serde_json::from_slice(&std::fs::read(registry.join(format!("index/{name}.json"))).unwrap()).unwrap()
}

#[test]
fn publish_writes_the_layout_with_the_archive_checksum() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let file = packed(&ctx, "summarizer", "1.2.0");
    let out = publish(&ctx, &file, &reg);
    assert_code(&out, 0);
    let sha = fm::fsutil::sha256_hex(&std::fs::read(&file).unwrap());
    assert_eq!(
        std::fs::read(reg.join("packages/summarizer/summarizer-1.2.0.fmpkg")).unwrap(),
        std::fs::read(&file).unwrap()
    );
    let doc = document(&reg, "summarizer");
    assert_eq!(doc.info.checksum, sha);
    assert_eq!(doc.versions.unwrap()[0].checksum, sha);
    assert_eq!(
        ctx.filter(&text(&out).1).replace(&sha, "[SHA]"),
        "   Published summarizer@1.2.0 to [ROOT]/reg/ (sha256 [SHA])\n"
    );
}

#[test]
fn publish_packs_a_folder_and_accepts_a_file_url() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let src = package_source(&ctx.root.join("src"), "tokenizer", "1.0.0", &[("text-utils", "^1.1")]);
    let url = url::Url::from_directory_path(&reg).unwrap();
    let out = ctx.run(&["publish", src.to_str().unwrap(), "--registry", url.as_str()]);
    assert_code(&out, 0);
    let doc = document(&reg, "tokenizer");
    assert_eq!(doc.versions.unwrap()[0].dependencies["text-utils"], "^1.1");
}

#[test]
fn duplicate_version_is_refused_and_the_registry_is_unchanged() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    assert_code(&publish(&ctx, &packed(&ctx, "a", "1.0.0"), &reg), 0);
    assert_code(&publish(&ctx, &packed(&ctx, "a", "1.1.0"), &reg), 0);
    let before = snapshot_dir(&reg);

    // Different bytes under the same version…
    let src = package_source(&ctx.root.join("other"), "a", "1.0.0", &[("b", "^2")]);
    let out = ctx.run(&["publish", src.to_str().unwrap(), "--registry", reg.to_str().unwrap()]);
    assert_code(&out, 1);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
    fm::publish::exists

      x a@1.0.0 is already published in [ROOT]/reg/
      help: published versions are immutable: bump `version` in [package] and publish again
    ");
    assert_eq!(snapshot_dir(&reg), before);

    // …and the very same bytes again.
    let out = publish(&ctx, &ctx.root.join("archives/a-1.0.0.fmpkg"), &reg);
    assert_code(&out, 1);
    assert_eq!(snapshot_dir(&reg), before);
}

#[test]
fn concurrent_publishes_are_all_kept() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    for round in 0..3 {
        let files: Vec<PathBuf> = (0..10)
            .map(|i| packed(&ctx, "busy", &format!("{round}.{i}.0")))
            .collect();
        let children: Vec<_> = files
            .iter()
            .map(|f| {
                ctx.fm()
                    .args(["publish", f.to_str().unwrap(), "--registry", reg.to_str().unwrap()])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            assert_code(&child.wait_with_output().unwrap(), 0);
        }
        let doc = document(&reg, "busy");
        let versions = doc.versions.as_ref().unwrap();
        assert_eq!(versions.len(), 10 * (round + 1), "round {round}: a publish was lost");
        for f in &files {
            let name = f.file_name().unwrap().to_str().unwrap();
            let version = name.trim_start_matches("busy-").trim_end_matches(".fmpkg");
            let record = doc.version(version).unwrap_or_else(|| panic!("{version} missing"));
            let stored = std::fs::read(reg.join(format!("packages/busy/{name}"))).unwrap();
            assert_eq!(fm::fsutil::sha256_hex(&stored), record.checksum);
        }
        assert_eq!(doc.info.version, format!("{round}.9.0"));
    }
    // No temporary files left behind.
    let leftovers: Vec<String> = snapshot_dir(&reg)
        .into_keys()
        .filter(|k| k.contains(".fm-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn concurrent_publishes_of_the_same_version_keep_exactly_one() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    let files: Vec<PathBuf> = (0..6)
        .map(|i| {
            let src = package_source(&ctx.root.join(format!("src{i}")), "race", "1.0.0", &[]);
            std::fs::write(src.join("variant.txt"), format!("variant {i}")).unwrap();
            let p = pack_folder(&src);
            let out = ctx.root.join(format!("race-{i}.fmpkg"));
            std::fs::write(&out, &p.bytes).unwrap();
            out
        })
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            ctx.fm()
                .args(["publish", f.to_str().unwrap(), "--registry", reg.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 1).count(), 5, "{codes:?}");
    let doc = document(&reg, "race");
    let stored = std::fs::read(reg.join("packages/race/race-1.0.0.fmpkg")).unwrap();
    assert_eq!(doc.versions.unwrap()[0].checksum, fm::fsutil::sha256_hex(&stored));
}

// ---------------------------------------------------------------------------
// Hostile and invalid archives

fn zip_with(entries: &[(&str, Option<&str>)], manifest: Option<&str>) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    if let Some(m) = manifest {
        zip.start_file("manifest.json", opts).unwrap();
        zip.write_all(m.as_bytes()).unwrap();
    }
    for (name, body) in entries {
        match body {
            Some(b) => {
                zip.start_file(*name, opts).unwrap();
                zip.write_all(b.as_bytes()).unwrap();
            }
            None => zip.add_symlink(*name, "../../..", opts).unwrap(),
        }
    }
    zip.finish().unwrap().into_inner()
}

const EVIL_MANIFEST: &str = r#"{"name": "evil", "version": "1.0.0"}"#;

/// Publishes `bytes` into a registry that already holds a package; asserts
/// exit 1, the registry byte-for-byte unchanged and nothing new beside it.
fn refused(bytes: &[u8]) -> String {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    assert_code(&publish(&ctx, &packed(&ctx, "good", "1.0.0"), &reg), 0);
    let file = ctx.root.join("upload.fmpkg");
    std::fs::write(&file, bytes).unwrap();
    let registry_before = snapshot_dir(&reg);
    let world_before = snapshot_dir(&ctx.root);
    let out = publish(&ctx, &file, &reg);
    assert_code(&out, 1);
    assert_eq!(snapshot_dir(&reg), registry_before, "the registry changed");
    assert_eq!(snapshot_dir(&ctx.root), world_before, "something was written");
    ctx.filter(&text(&out).1)
}

#[test]
fn publish_refuses_zip_slip() {
    let err = refused(&zip_with(&[("../../escaped.txt", Some("pwned"))], Some(EVIL_MANIFEST)));
    insta::assert_snapshot!(err, @r#"
    fm::archive::unsafe_entry

      x unsafe archive entry "../../escaped.txt": `..` path component (path traversal)
      help: the archive was refused and nothing was installed; ask its publisher to rebuild it with
            `fm pack`
    "#);
}

#[test]
fn publish_refuses_absolute_paths() {
    let err = refused(&zip_with(&[("/tmp/escaped.txt", Some("pwned"))], Some(EVIL_MANIFEST)));
    assert!(
        err.contains("unsafe archive entry \"/tmp/escaped.txt\": absolute path"),
        "{err}"
    );
}

#[test]
fn publish_refuses_symlinks() {
    let err = refused(&zip_with(&[("components/link", None)], Some(EVIL_MANIFEST)));
    assert!(
        err.contains("unsafe archive entry \"components/link\": symbolic link"),
        "{err}"
    );
}

#[test]
fn publish_refuses_a_hostile_package_name() {
    // FlowMason 1.0.24 stored this outside its registry folder (defect 7).
    let err = refused(&zip_with(
        &[("a.txt", Some("x"))],
        Some(r#"{"name": "../../escaped", "version": "1.0.0"}"#),
    ));
    insta::assert_snapshot!(err, @r#"
    fm::archive::invalid_manifest

      x invalid manifest.json: package name "../../escaped" is invalid: it starts with '.'
    "#);
}

#[test]
fn publish_refuses_archives_without_a_valid_manifest() {
    let err = refused(&zip_with(&[("a.txt", Some("x"))], None));
    assert!(err.contains("no manifest.json"), "{err}");
    let err = refused(&zip_with(&[], Some(r#"{"name": "ok", "version": "one"}"#)));
    assert!(err.contains("not a semantic version"), "{err}");
    let err = refused(&zip_with(
        &[],
        Some(r#"{"name": "ok", "version": "1.0.0", "dependencies": {"b": "latest"}}"#),
    ));
    assert!(err.contains("requirement \"latest\" on b"), "{err}");
    let err = refused(b"this is not a zip file");
    assert!(err.contains("not a zip file"), "{err}");
}

// ---------------------------------------------------------------------------
// fm yank

#[test]
fn yank_and_undo_on_a_directory_registry() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    for v in ["1.0.0", "1.1.0"] {
        assert_code(&publish(&ctx, &packed(&ctx, "math-core", v), &reg), 0);
    }
    let archive_before = std::fs::read(reg.join("packages/math-core/math-core-1.1.0.fmpkg")).unwrap();
    let out = ctx.run(&["yank", "math-core@1.1.0", "--registry", reg.to_str().unwrap()]);
    assert_code(&out, 0);
    let doc = document(&reg, "math-core");
    assert!(doc.version("1.1.0").unwrap().yanked);
    assert_eq!(
        doc.info.version, "1.0.0",
        "a yanked version is not advertised as latest"
    );
    assert_eq!(
        std::fs::read(reg.join("packages/math-core/math-core-1.1.0.fmpkg")).unwrap(),
        archive_before,
        "the bytes stay downloadable"
    );

    let out = ctx.run(&["yank", "--undo", "math-core@1.1.0", "--registry", reg.to_str().unwrap()]);
    assert_code(&out, 0);
    let doc = document(&reg, "math-core");
    assert!(!doc.version("1.1.0").unwrap().yanked);
    assert_eq!(doc.info.version, "1.1.0");

    let out = ctx.run(&["yank", "math-core@9.9.9", "--registry", reg.to_str().unwrap()]);
    assert_code(&out, 1);
    assert!(text(&out).1.contains("math-core@9.9.9 is not published"));
    let out = ctx.run(&["yank", "math-core", "--registry", reg.to_str().unwrap()]);
    assert_code(&out, 2);
}

// ---------------------------------------------------------------------------
// Reading a directory registry as a client

#[test]
fn directory_registry_reads_documents_and_archives() {
    use fm::registry::{DirectoryRegistry, Registry};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registries/main");
    let url = url::Url::from_directory_path(&root).unwrap();
    let reg = DirectoryRegistry::new("main", url, root.clone());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let doc = reg.document("math-core").await.unwrap().unwrap();
        let versions: Vec<String> = doc
            .versions_newest_first()
            .iter()
            .map(|r| format!("{}{}", r.version, if r.yanked { " (yanked)" } else { "" }))
            .collect();
        assert_eq!(versions, ["1.3.0", "1.2.1 (yanked)", "1.2.0", "1.1.0", "1.0.0"]);
        assert!(reg.document("no-such-package").await.unwrap().is_none());
        assert!(reg.document("../main/index/math-core").await.unwrap().is_none());

        let record = doc.version("1.2.0").unwrap();
        let mut sink = Vec::new();
        let n = reg.download("math-core", "1.2.0", &mut sink).await.unwrap();
        assert_eq!(n, record.size_bytes);
        assert_eq!(fm::fsutil::sha256_hex(&sink), record.checksum);
    });
}

#[test]
fn directory_registry_never_reads_outside_its_folder() {
    // A hostile version (from a document or a lock) that would climb out of
    // the registry to a readable `secret.fmpkg` beside it.
    use fm::registry::{DirectoryRegistry, Registry};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("reg");
    std::fs::create_dir_all(root.join("packages/a/a-1")).unwrap();
    std::fs::write(tmp.path().join("secret.fmpkg"), "secret").unwrap();
    let reg = DirectoryRegistry::new("r", url::Url::from_directory_path(&root).unwrap(), root.clone());
    assert!(root.join("packages/a/a-1/../../../../secret.fmpkg").exists());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut sink = Vec::new();
    let err = rt
        .block_on(reg.download("a", "1/../../../../secret", &mut sink))
        .unwrap_err();
    assert!(
        matches!(err, fm::registry::RegistryError::MissingArchive { .. }),
        "{err}"
    );
    assert!(sink.is_empty());
}

/// Build metadata does not make a new version (issue #12 point 3): `1.0.0+x`
/// next to `1.0.0` was published, and the two sorted as one.
#[test]
fn a_version_differing_only_in_build_metadata_is_refused_by_publish_and_upload() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    assert_code(&publish(&ctx, &packed(&ctx, "a", "1.0.0"), &reg), 0);
    let before = snapshot_dir(&reg);
    let out = publish(&ctx, &packed(&ctx, "a", "1.0.0+build.7"), &reg);
    assert_code(&out, 1);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
    fm::publish::build_metadata

      x a@1.0.0+build.7 differs from the published a@1.0.0 in [ROOT]/reg/ only in build
      | metadata
      help: build metadata (`+…`) does not make a new version: bump `version` and publish again
    ");
    assert_eq!(snapshot_dir(&reg), before, "the registry changed");

    // The server: 1.0.0+x first, then 1.0.0.
    let storage = ctx.root.join("storage");
    let server = ctx.serve(&storage, &["--token", "t"], &[]);
    let rt = runtime();
    let upload = |file: PathBuf| {
        let bytes = std::fs::read(file).unwrap();
        rt.block_on(async {
            let r = client()
                .post(server.api("packages/upload"))
                .bearer_auth("t")
                .header("content-type", "application/octet-stream")
                .body(bytes)
                .send()
                .await
                .expect("upload");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    };
    assert_eq!(upload(packed(&ctx, "b", "2.0.0+x")).0, 201);
    let (status, body) = upload(packed(&ctx, "b", "2.0.0"));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("only in build metadata"), "{body}");
    assert!(
        !storage.join("packages/b/b-2.0.0.fmpkg").exists(),
        "the server stored the twin"
    );
}

/// A publish killed between writing the archive and listing it (SIGKILL,
/// disk full) left an unlisted archive and a temporary file: the version
/// could never be published again with other bytes ("already published").
/// The crash is reproduced by leaving exactly what it leaves.
/// `name@version` packed with a 16 MiB incompressible file, so that
/// writing it takes long enough to be killed in the middle.
fn big_packed(ctx: &TestContext, name: &str, version: &str) -> PathBuf {
    let src = package_source(&ctx.root.join("src"), name, version, &[]);
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ version.len() as u64;
    let bytes: Vec<u8> = (0..16 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(src.join("components/blob.bin"), bytes).unwrap();
    let p = pack_folder(&src);
    let out = ctx.root.join("archives").join(p.file_name());
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &p.bytes).unwrap();
    out
}

/// The `.fm-tmp-*` files anywhere in a registry folder.
fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for entry in rd.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(temporary_files(&path));
        } else if entry.file_name().to_string_lossy().starts_with(fm::fsutil::TMP_PREFIX) {
            out.push(path);
        }
    }
    out
}

/// Real `fm publish` processes SIGKILLed mid-write: killed as soon as the
/// 16 MiB archive's temporary file appears (while its bytes are being
/// written), or as soon as the archive itself appears (before the document
/// lists it). Whatever each left, the next `fm publish` of the same
/// version succeeds with the right checksum, sweeps the dead writers'
/// temporary files, and the version installs.
#[cfg(unix)]
#[test]
fn a_publish_sigkilled_mid_write_never_blocks_its_version() {
    #[derive(Clone, Copy, PartialEq)]
    enum Moment {
        TemporaryFile,
        Archive,
    }
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    assert_code(&publish(&ctx, &packed(&ctx, "a", "1.0.0"), &reg), 0);
    let folder = reg.join("packages/a");
    let moments = [Moment::TemporaryFile; 3].into_iter().chain([Moment::Archive; 5]);
    let (mut mid_write, mut orphans, mut finished, mut left) = (0, 0, 0, 0);
    let mut to_heal = Vec::new();
    for (i, moment) in moments.enumerate() {
        let version = format!("1.{}.0", i + 1);
        let file = big_packed(&ctx, "a", &version);
        let archive = folder.join(format!("a-{version}.fmpkg"));
        // Dead writers' files may still be there: wait for a new one.
        let before = temporary_files(&folder);
        let new_temporary = || temporary_files(&folder).iter().any(|p| !before.contains(p));
        let mut child = ctx
            .fm()
            .args(["publish", file.to_str().unwrap(), "--registry", reg.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            let seen = match moment {
                Moment::TemporaryFile => new_temporary(),
                Moment::Archive => archive.exists(),
            };
            if seen {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        if document(&reg, "a").version(&version).is_some() {
            finished += 1;
            continue;
        }
        left += temporary_files(&folder).iter().filter(|p| !before.contains(*p)).count();
        match moment {
            Moment::TemporaryFile if new_temporary() => mid_write += 1,
            Moment::Archive if archive.exists() => orphans += 1,
            _ => {}
        }
        to_heal.push((version, file));
    }
    assert!(mid_write > 0, "no publisher was killed while writing its archive");
    for (version, file) in &to_heal {
        let out = publish(&ctx, file, &reg);
        assert_code(&out, 0);
        let bytes = std::fs::read(file).unwrap();
        let doc = document(&reg, "a");
        assert_eq!(
            doc.version(version).expect("listed").checksum,
            fm::fsutil::sha256_hex(&bytes)
        );
        assert!(std::fs::read(folder.join(format!("a-{version}.fmpkg"))).unwrap() == bytes);
    }
    let swept = temporary_files(&reg);
    assert!(swept.is_empty(), "temporary files left: {swept:?}");
    let (version, _) = to_heal.last().expect("a version to heal");
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"={version}\"\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        url::Url::from_directory_path(&reg).unwrap()
    ));
    assert_code(&ctx.run(&["sync"]), 0);
    eprintln!(
        "FIGURES killed-publish-sigkill: 8 real fm publish processes SIGKILLed ({mid_write} while writing the archive, {orphans} with the archive written but not listed, {finished} already done); {} versions published again (exit 0, right checksum), {left} temporary files left by the dead, 0 remain (swept by the publishers after them); installs",
        to_heal.len()
    );
}

#[test]
fn a_killed_publish_never_blocks_its_version_and_its_temporary_files_are_swept() {
    let ctx = TestContext::new();
    let reg = ctx.root.join("reg");
    assert_code(&publish(&ctx, &packed(&ctx, "a", "1.0.0"), &reg), 0);
    // What a publisher killed mid-write leaves: an archive no document
    // lists, a temporary file beside it, one under index/.
    let orphan = reg.join("packages/a/a-1.1.0.fmpkg");
    std::fs::write(&orphan, b"half of an archive").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let mut leftovers = Vec::new();
    for tmp in [reg.join("packages/a/.fm-tmp-dead1"), reg.join("index/.fm-tmp-dead2")] {
        let f = std::fs::File::create(&tmp).unwrap();
        f.set_modified(old).unwrap();
        leftovers.push(tmp);
    }
    let fresh = packed(&ctx, "a", "1.1.0");
    let out = publish(&ctx, &fresh, &reg);
    assert_code(&out, 0);
    assert_eq!(std::fs::read(&orphan).unwrap(), std::fs::read(&fresh).unwrap());
    let doc = document(&reg, "a");
    let record = doc.version("1.1.0").expect("1.1.0 listed");
    assert_eq!(record.checksum, fm::fsutil::sha256_hex(&std::fs::read(&fresh).unwrap()));
    for tmp in &leftovers {
        assert!(!tmp.exists(), "{} was not swept", tmp.display());
    }
    // And it installs.
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"=1.1.0\"\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        url::Url::from_directory_path(&reg).unwrap()
    ));
    assert_code(&ctx.run(&["sync"]), 0);
    eprintln!(
        "FIGURES killed-publish: orphan archive replaced, {} temporary files older than the run swept, re-publish exit 0",
        leftovers.len()
    );
}
