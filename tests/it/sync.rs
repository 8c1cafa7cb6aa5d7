//! `fm sync --frozen`, `fm verify`: installing a lock exactly, safely, and
//! surviving interruptions. Locks are written by the tests (the resolver is
//! not involved); re-locking modes live in `sync_relock.rs`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;

/// A project whose manifest names `reg` and packages `a`, `b`, `c` (1.x)
/// published there.
/// A project over one directory registry `main`, with the digest of each
/// published `name@version` (also used by `install_safety`).
pub(crate) struct World {
    pub ctx: TestContext,
    pub reg: DirRegistry,
    pub sha: std::collections::BTreeMap<String, String>,
}

pub(crate) fn world(packages: &[(&str, &str)]) -> World {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    let mut sha = std::collections::BTreeMap::new();
    for (n, v) in packages {
        sha.insert(format!("{n}@{v}"), reg.publish(n, v, &[]));
    }
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        reg.url()
    ));
    World { ctx, reg, sha }
}

impl World {
    /// Locks exactly these `name@version`s.
    pub(crate) fn lock(&self, ids: &[&str]) {
        let entries: Vec<LockEntry<'_>> = ids
            .iter()
            .map(|id| {
                let (name, version) = id.split_once('@').expect("name@version");
                LockEntry {
                    name,
                    version,
                    sha256: &self.sha[*id],
                    deps: &[],
                }
            })
            .collect();
        write_lock(&self.ctx, "main", &self.reg, &entries);
    }

    pub(crate) fn packages_dir(&self) -> PathBuf {
        self.ctx.project.join(".fm/packages")
    }

    pub(crate) fn installed(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.packages_dir())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn stderr(out: &std::process::Output) -> String {
    text(out).1
}

#[test]
fn frozen_sync_installs_exactly_the_lock_then_is_a_no_op() {
    let w = world(&[("a", "1.0.0"), ("b", "1.0.0"), ("c", "1.0.0")]);
    w.lock(&["a@1.0.0", "b@1.0.0"]);
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(w.ctx.filter(&stderr(&out)), @r"
     + a 1.0.0
     + b 1.0.0
    Installed 2 packages in [TIME]
    ");
    assert_eq!(w.installed(), ["a", "b"]);
    assert_eq!(
        std::fs::read_to_string(w.packages_dir().join("a/components/a.py")).unwrap(),
        "# a 1.0.0\ndef run(x):\n    return x\n"
    );
    assert!(w.packages_dir().join("b/manifest.json").is_file());

    let state = w.ctx.read(".fm/state.toml");
    assert!(state.contains(&format!("sha256 = \"{}\"", w.sha["a@1.0.0"])), "{state}");
    assert!(state.contains("\"components/b.py\" = { sha256 = \""), "{state}");

    // Nothing to do the second time; installed files are not touched.
    let before = inode(&w.packages_dir().join("a/components/a.py"));
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(w.ctx.filter(&stderr(&out)), @"2 packages up to date in [TIME]");
    assert_eq!(inode(&w.packages_dir().join("a/components/a.py")), before);
    assert_eq!(w.ctx.read(".fm/state.toml"), state);

    let out = w.ctx.run(&["verify"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(stderr(&out), @"Verified 2 packages (6 files): no drift");
}

#[test]
fn sync_replaces_changed_and_removes_extras() {
    let w = world(&[("a", "1.0.0"), ("a", "1.1.0"), ("b", "1.0.0"), ("c", "1.0.0")]);
    w.lock(&["a@1.0.0", "b@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    // A stray folder a user dropped in is not fm's: reported, kept.
    std::fs::create_dir_all(w.packages_dir().join("stray")).unwrap();
    w.lock(&["a@1.1.0", "c@1.0.0"]);
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(w.ctx.filter(&stderr(&out)), @r"
    warning: left [ROOT]/project/.fm/packages/stray in place: fm did not install it ([ROOT]/project/.fm/state.toml does not record it); remove it yourself if it is not needed
     ~ a 1.0.0 -> 1.1.0
     - b 1.0.0
     + c 1.0.0
    Installed 2 packages, removed 1 in [TIME]
    ");
    assert_eq!(w.installed(), ["a", "c", "stray"]);
    std::fs::remove_dir(w.packages_dir().join("stray")).unwrap();
    assert!(
        std::fs::read_to_string(w.packages_dir().join("a/components/a.py"))
            .unwrap()
            .contains("1.1.0")
    );
    assert!(!w.ctx.read(".fm/state.toml").contains("name = \"b\""));
    assert_code(&w.ctx.run(&["verify"]), 0);
}

#[test]
fn digest_mismatch_fails_naming_both_digests_and_changes_nothing() {
    let w = world(&[("a", "1.0.0"), ("a", "1.0.1"), ("b", "1.0.0")]);
    w.lock(&["b@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    let project_before = snapshot_tree(&w.ctx.project);
    let cache_before = snapshot_tree(&w.ctx.cache);

    // The registry now serves other bytes for a 1.0.0 than the lock records.
    w.lock(&["a@1.0.0", "b@1.0.0"]);
    let project_before_lock = snapshot_tree(&w.ctx.project);
    std::fs::copy(w.reg.archive_path("a", "1.0.1"), w.reg.archive_path("a", "1.0.0")).unwrap();
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("sha256 mismatch for a 1.0.0 from registry main"), "{err}");
    assert!(err.contains(&w.sha["a@1.0.0"]), "expected digest missing: {err}");
    assert!(err.contains(&w.sha["a@1.0.1"]), "actual digest missing: {err}");
    assert_eq!(snapshot_tree(&w.ctx.project), project_before_lock);
    assert_eq!(snapshot_tree(&w.ctx.cache), cache_before);
    // Only fm.lock (written by the test) differs from before.
    assert_eq!(project_before.len(), project_before_lock.len());
}

#[test]
fn digest_mismatch_on_a_first_sync_creates_nothing_in_the_project() {
    let w = world(&[("a", "1.0.0"), ("a", "1.0.1"), ("b", "1.0.0")]);
    w.lock(&["a@1.0.0", "b@1.0.0"]);
    std::fs::copy(w.reg.archive_path("a", "1.0.1"), w.reg.archive_path("a", "1.0.0")).unwrap();
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 1);
    assert!(!w.ctx.project.join(".fm").exists());
    // b downloaded fine, but nothing enters the cache unless all match.
    assert!(!w.ctx.cache.join("archives").exists());
    assert!(!w.ctx.cache.join("trees").exists());
}

#[test]
fn a_missing_registry_folder_is_named_as_such_not_as_missing_archives() {
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    let moved = w.ctx.root.join("elsewhere");
    std::fs::rename(&w.reg.root, &moved).expect("move the registry away");
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("registry main: cannot read the registry folder") && err.contains("registries/main"),
        "{err}"
    );
    assert!(!err.contains("has no archive"), "{err}");
    // Only the folder is gone: with it back, the same lock installs.
    std::fs::rename(&moved, &w.reg.root).expect("move it back");
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
}

#[test]
fn frozen_reads_no_metadata_and_offline_works_warm_and_fails_cold() {
    let w = world(&[("a", "1.0.0"), ("b", "1.0.0")]);
    w.lock(&["a@1.0.0", "b@1.0.0"]);

    // Cold cache, offline: names what is missing and how to get it.
    let out = w.ctx.run(&["--offline", "sync", "--frozen"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("a 1.0.0, b 1.0.0"), "{err}");
    assert!(err.contains("without --offline"), "{err}");
    assert!(!w.ctx.project.join(".fm/packages/a").exists());

    // --frozen needs only the archives: the index is gone.
    std::fs::remove_dir_all(w.reg.root.join("index")).unwrap();
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    assert_eq!(w.installed(), ["a", "b"]);

    // Warm cache, offline, registry gone: a fresh install still works.
    std::fs::remove_dir_all(&w.reg.root).unwrap();
    std::fs::remove_dir_all(w.ctx.project.join(".fm")).unwrap();
    let out = w.ctx.run(&["--offline", "sync", "--frozen"]);
    assert_code(&out, 0);
    assert_eq!(w.installed(), ["a", "b"]);
    assert_code(&w.ctx.run(&["verify"]), 0);
}

#[test]
fn verify_reports_modified_missing_and_extra_files() {
    let w = world(&[("a", "1.0.0"), ("b", "1.0.0")]);
    w.lock(&["a@1.0.0", "b@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    let pkgs = w.packages_dir();
    std::fs::OpenOptions::new()
        .append(true)
        .open(pkgs.join("a/components/a.py"))
        .unwrap()
        .write_all(b"import os\n")
        .unwrap();
    std::fs::remove_file(pkgs.join("b/pipelines/main.pipeline.json")).unwrap();
    std::fs::write(pkgs.join("b/notes.txt"), "mine").unwrap();
    std::fs::create_dir(pkgs.join("zeta")).unwrap();
    let out = w.ctx.run(&["verify"]);
    assert_code(&out, 1);
    insta::assert_snapshot!(w.ctx.filter(&stderr(&out)), @r"
      x installed packages differ from the archives they were installed from:
      | a:
      |   modified components/a.py
      | b:
      |   missing  pipelines/main.pipeline.json
      |   extra    notes.txt
      | zeta: extra (not installed by fm sync)
      help: run `fm sync --repair` to install the drifted packages again from their locked archives
    ");

    // Installed files are the project's own copies: a second project
    // still gets the pristine file (regression: the edit went through a
    // hard link into the cache).
    let other = w.ctx.root.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(w.ctx.project.join("fm.toml"), other.join("fm.toml")).unwrap();
    std::fs::copy(w.ctx.project.join("fm.lock"), other.join("fm.lock")).unwrap();
    let out = w
        .ctx
        .fm()
        .current_dir(&other)
        .args(["sync", "--frozen"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        std::fs::read_to_string(other.join(".fm/packages/a/components/a.py")).unwrap(),
        "# a 1.0.0\ndef run(x):\n    return x\n"
    );
    let out = w.ctx.fm().current_dir(&other).arg("verify").output().unwrap();
    assert_code(&out, 0);

    // `--repair` re-hashes against the archives and installs the drifted
    // ones again; the stranger is fm's to report, not to delete.
    let out = w.ctx.run(&["sync", "--frozen", "--repair"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("Repairing a, b"), "{}", stderr(&out));
    assert_eq!(w.installed(), ["a", "b", "zeta"]);
    assert_eq!(
        std::fs::read_to_string(pkgs.join("a/components/a.py")).unwrap(),
        "# a 1.0.0\ndef run(x):\n    return x\n"
    );
    assert!(!pkgs.join("b/notes.txt").exists() && pkgs.join("b/pipelines/main.pipeline.json").exists());
    std::fs::remove_dir(pkgs.join("zeta")).unwrap();
    assert_code(&w.ctx.run(&["verify"]), 0);
    let out = w.ctx.run(&["sync", "--frozen", "--repair"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("nothing to repair"), "{}", stderr(&out));

    // A plain sync notices edits by their stat data (no hashing).
    std::fs::write(pkgs.join("a/components/a.py"), "edited").unwrap();
    std::fs::remove_file(pkgs.join("b/manifest.json")).unwrap();
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("Reinstalled a, b"), "{}", stderr(&out));
    assert_code(&w.ctx.run(&["verify"]), 0);
}

#[cfg(unix)]
fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

#[cfg(not(unix))]
fn inode(_: &Path) -> u64 {
    0
}

#[cfg(unix)]
#[test]
fn a_second_project_installs_from_the_cache_its_own_copies() {
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    let other = w.ctx.root.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(w.ctx.project.join("fm.toml"), other.join("fm.toml")).unwrap();
    std::fs::copy(w.ctx.project.join("fm.lock"), other.join("fm.lock")).unwrap();
    // The registry is gone: the second project can only use the cache.
    std::fs::remove_dir_all(&w.reg.root).unwrap();
    let out = w
        .ctx
        .fm()
        .current_dir(&other)
        .args(["sync", "--frozen"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    // Not hard links: an edit in one project must not reach the other.
    assert_ne!(
        inode(&w.packages_dir().join("a/components/a.py")),
        inode(&other.join(".fm/packages/a/components/a.py"))
    );
}

#[test]
fn dir_flag_installs_elsewhere_and_refuses_a_foreign_folder() {
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    let out = w.ctx.run(&["sync", "--frozen", "--dir", "vendor"]);
    assert_code(&out, 0);
    assert!(w.ctx.project.join("vendor/a/components/a.py").is_file());
    assert!(w.ctx.project.join("vendor/.fm-state.toml").is_file());
    assert!(!w.ctx.project.join(".fm/packages").exists());
    assert_code(&w.ctx.run(&["verify", "--dir", "vendor"]), 0);

    let foreign = w.ctx.project.join("docs");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("README.md"), "keep me").unwrap();
    let out = w.ctx.run(&["sync", "--frozen", "--dir", "docs"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("it is not empty"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(foreign.join("README.md")).unwrap(), "keep me");
}

// ---------------------------------------------------------------------------
// Hostile archives

/// How to build each hostile entry.
enum Hostile {
    Named(String),
    Symlink,
    Device,
    Bomb,
}

fn hostile_zip(kind: &Hostile) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("manifest.json", opts).unwrap();
    zip.write_all(br#"{"name": "x", "version": "1.0.0"}"#).unwrap();
    match kind {
        Hostile::Named(name) => {
            zip.start_file(name.as_str(), opts).unwrap();
            zip.write_all(b"pwned").unwrap();
        }
        Hostile::Symlink => {
            zip.add_symlink("escape", "/tmp", opts).unwrap();
        }
        Hostile::Device => {
            zip.start_file("devnode", opts.unix_permissions(0o644)).unwrap();
            zip.write_all(b"").unwrap();
        }
        Hostile::Bomb => {
            zip.start_file("zeros.bin", opts).unwrap();
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..20 {
                zip.write_all(&chunk).unwrap();
            }
        }
    }
    let mut bytes = zip.finish().unwrap().into_inner();
    if let Hostile::Device = kind {
        make_last_entry_a_device(&mut bytes);
    }
    bytes
}

/// Rewrites the external attributes of the central-directory entry named
/// `devnode` to a character device (S_IFCHR | 0644).
fn make_last_entry_a_device(bytes: &mut [u8]) {
    let sig = [0x50, 0x4b, 0x01, 0x02];
    let mut i = 0;
    let mut patched = false;
    while i + 46 < bytes.len() {
        if bytes[i..i + 4] == sig {
            let name_len = u16::from_le_bytes([bytes[i + 28], bytes[i + 29]]) as usize;
            if &bytes[i + 46..i + 46 + name_len] == b"devnode" {
                bytes[i + 5] = 3; // made by: unix
                let attrs: u32 = (0o020644u32) << 16;
                bytes[i + 38..i + 42].copy_from_slice(&attrs.to_le_bytes());
                patched = true;
            }
        }
        i += 1;
    }
    assert!(patched, "central directory entry not found");
}

#[test]
fn hostile_archives_are_refused_and_nothing_escapes() {
    let w = world(&[("a", "1.0.0")]);
    let outside = w.ctx.root.join("outside-evil.txt");
    let cases = [
        (Hostile::Named("../../../../outside-evil.txt".into()), "path traversal"),
        (Hostile::Named(outside.display().to_string()), "absolute path"),
        (Hostile::Symlink, "symbolic link"),
        (Hostile::Device, "device"),
        (Hostile::Bomb, "zip bomb"),
    ];
    for (kind, expected) in &cases {
        let bytes = hostile_zip(kind);
        let path = w.reg.archive_path("x", "1.0.0");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let sha = fm::fsutil::sha256_hex(&bytes);
        write_lock(
            &w.ctx,
            "main",
            &w.reg,
            &[LockEntry {
                name: "x",
                version: "1.0.0",
                sha256: &sha,
                deps: &[],
            }],
        );
        let out = w.ctx.run(&["sync", "--frozen"]);
        assert_code(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("cannot unpack x 1.0.0"), "{expected}: {err}");
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(!outside.exists(), "{expected}: wrote outside");
        assert!(!w.packages_dir().join("x").exists(), "{expected}: installed");
        // Nothing left half-unpacked in the cache either.
        assert!(
            !w.ctx.cache.join("trees").join(&sha).exists(),
            "{expected}: cached tree"
        );
        let tmp: Vec<_> = std::fs::read_dir(w.ctx.cache.join("tmp")).unwrap().flatten().collect();
        assert!(tmp.is_empty(), "{expected}: leftovers {tmp:?}");
    }
    // The system temp dir did not get an entry from the symlink case either.
    assert!(!Path::new("/tmp/outside-evil.txt").exists());
}

// ---------------------------------------------------------------------------
// Interruptions and concurrency

#[test]
fn kill_9_at_random_moments_then_sync_heals_and_verify_passes() {
    let names: Vec<String> = (0..24).map(|i| format!("p{i:02}")).collect();
    let mut pkgs = Vec::new();
    for n in &names {
        pkgs.push((n.as_str(), "1.0.0"));
        pkgs.push((n.as_str(), "2.0.0"));
    }
    let w = world(&pkgs);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill -9 test seed: {seed}");
    let mut rng = Rng(seed);
    let mut interrupted = 0;
    for round in 0..24 {
        // A debug-build sync of these takes some 30-200 ms here: kills land
        // anywhere from process start to after the end.
        // Each round wants a different set: versions and membership vary.
        let mut ids: Vec<String> = Vec::new();
        for n in &names {
            let (keep, v1) = (!rng.next().is_multiple_of(4), rng.next().is_multiple_of(2));
            if keep {
                ids.push(format!("{n}@{}", if v1 { "1.0.0" } else { "2.0.0" }));
            }
        }
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        w.lock(&id_refs);
        if rng.next().is_multiple_of(3) {
            // Sometimes cold: the kill then lands in downloads or unpacking.
            let _ = std::fs::remove_dir_all(&w.ctx.cache);
        }
        let mut child = w
            .ctx
            .fm()
            .args(["sync", "--frozen"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.next() % 150_000));
        if matches!(child.try_wait(), Ok(None)) {
            interrupted += 1;
        }
        let _ = child.kill(); // SIGKILL on unix
        let _ = child.wait();

        let out = w.ctx.run(&["sync", "--frozen"]);
        assert_code(&out, 0);
        let out = w.ctx.run(&["verify"]);
        if out.status.code() != Some(0) {
            panic!("round {round} (seed {seed}): verify failed:\n{}", stderr(&out));
        }
        let mut want: Vec<String> = ids.iter().map(|id| id.split('@').next().unwrap().to_owned()).collect();
        want.sort();
        assert_eq!(w.installed(), want, "round {round} (seed {seed})");
        for id in &ids {
            let (n, v) = id.split_once('@').unwrap();
            let text = std::fs::read_to_string(w.packages_dir().join(n).join(format!("components/{n}.py"))).unwrap();
            assert!(text.contains(v), "round {round} (seed {seed}): {n} is not {v}");
        }
    }
    eprintln!("{interrupted} of 24 syncs were killed while running");
}

#[test]
fn two_syncs_at_once_on_one_project_and_cache_both_succeed() {
    let names: Vec<String> = (0..16).map(|i| format!("q{i:02}")).collect();
    let pkgs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1.0.0")).collect();
    let w = world(&pkgs);
    let ids: Vec<String> = names.iter().map(|n| format!("{n}@1.0.0")).collect();
    w.lock(&ids.iter().map(String::as_str).collect::<Vec<_>>());
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(&w.ctx.cache);
        let _ = std::fs::remove_dir_all(w.ctx.project.join(".fm"));
        let spawn = || {
            w.ctx
                .fm()
                .args(["sync", "--frozen"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (c1, c2) = (spawn(), spawn());
        assert_code(&c1.wait_with_output().unwrap(), 0);
        assert_code(&c2.wait_with_output().unwrap(), 0);
        assert_code(&w.ctx.run(&["verify"]), 0);
        assert_eq!(w.installed().len(), 16);
    }
}

/// `fm sync` proves the install folder unchanged while it reads fm.lock
/// (`fm::install::Precheck`). A proof made before another run changed the
/// folder must not stand: here it saw `a` and `b` installed, then a sync
/// of another lock removed `b`; installing `a` and `b` with that proof
/// must install `b` again, not report everything up to date.
#[test]
fn a_noop_proof_made_before_another_sync_changed_the_folder_is_not_used() {
    use fm::install::{Cache, Layout, NoProgress, Options, Precheck};
    let w = world(&[("a", "1.0.0"), ("b", "1.0.0")]);
    w.lock(&["a@1.0.0", "b@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    let both = fm::lock::Lockfile::load(&w.ctx.project.join("fm.lock"))
        .expect("lock")
        .expect("lock exists");

    let layout = Layout::project(&w.ctx.project);
    let precheck = Precheck::start(&layout);
    precheck.finish();
    w.lock(&["a@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    assert_eq!(w.installed(), ["a"]);

    let opts = Options {
        offline: false,
        prune: true,
        cache: Cache::new(w.ctx.cache.clone()),
        reinstall: Default::default(),
        precheck,
    };
    let report = fm::project::install_lock(
        &both,
        &w.ctx.project,
        &layout,
        &opts,
        &NoProgress,
        fm::project::Digests::FromRegistry,
    )
    .expect("install");
    assert_eq!(report.installed, [("b".to_owned(), "1.0.0".to_owned())]);
    assert_eq!(w.installed(), ["a", "b"]);
}
