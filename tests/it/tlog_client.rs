//! The transparency log (SPEC §9), phase 2: the client. `fm lock`, `fm
//! sync` and `fm verify --log` against honest and lying registries —
//! directory registries and the real `fm registry serve` on loopback.
//! Every lie is made the way a registry operator could make it: rewriting
//! files in the registry's own storage after honest publishes.

use std::path::{Path, PathBuf};

use crate::common::{DirRegistry, Server, TestContext, assert_code, pack_folder, package_source, text};
use crate::tlog::{init_log, load_key};
use fm::archive::Limits;
use fm::registry::publish;
use fm::registry::storage::DirStorage;

/// A directory registry with a log; returns it and its key file.
fn logged(ctx: &TestContext, name: &str) -> (DirRegistry, PathBuf) {
    let reg = ctx.dir_registry(name);
    let key = init_log(ctx, &reg.root, &[]);
    (reg, key)
}

/// Publishes `name@version` into `root`'s log with `key`; returns its sha256.
fn publish_logged(
    ctx: &TestContext,
    root: &Path,
    key: &Path,
    name: &str,
    version: &str,
    deps: &[(&str, &str)],
) -> String {
    let dir = package_source(&ctx.root.join("pkgsrc"), name, version, deps);
    let packed = pack_folder(&dir);
    let key = load_key(key);
    publish::publish(
        &DirStorage::new(root),
        &packed.bytes,
        None,
        &Limits::default(),
        Some(&key),
    )
    .unwrap();
    packed.sha256
}

fn manifest(ctx: &TestContext, url: &str, deps: &str, extra: &str) {
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\n{deps}\n[[registries]]\nname = \"main\"\nurl = \"{url}\"\n{extra}"
    ));
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Puts `with` where `place` is (the registry now serves other files at
/// the same URL); the old contents go to `{place}.old`.
fn swap_in(place: &Path, with: &Path) {
    let old = place.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    std::fs::rename(place, &old).unwrap();
    std::fs::rename(with, place).unwrap();
}

/// Rewrites `name@version` in `root`: another archive under the same
/// version, and a document that agrees with it (keeping its log_index).
/// Returns the new sha256.
fn rewrite_version(ctx: &TestContext, root: &Path, name: &str, version: &str) -> String {
    let dir = package_source(&ctx.root.join("evil"), name, version, &[]);
    std::fs::write(dir.join("components/backdoor.py"), "import os\n").unwrap();
    let packed = pack_folder(&dir);
    std::fs::write(
        root.join(format!("packages/{name}/{name}-{version}.fmpkg")),
        &packed.bytes,
    )
    .unwrap();
    edit_document(root, name, |doc| {
        for v in doc["versions"].as_array_mut().unwrap() {
            if v["version"] == version {
                v["checksum"] = packed.sha256.clone().into();
                v["size_bytes"] = packed.bytes.len().into();
            }
        }
        doc["checksum"] = packed.sha256.clone().into();
        doc["size_bytes"] = packed.bytes.len().into();
    });
    packed.sha256
}

fn edit_document(root: &Path, name: &str, f: impl FnOnce(&mut serde_json::Value)) {
    let path = root.join(format!("index/{name}.json"));
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut doc);
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

fn ok(out: &std::process::Output) -> String {
    let (o, e) = text(out);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{o}\nstderr:\n{e}",
        out.status.code()
    );
    e
}

/// The error, its lines joined again (miette wraps at 100 columns, at
/// spaces, or after a `/`, `-` or `+`, which it keeps: a log key, base64
/// with `+` and `/` in it, can be cut after either, depending on the key).
fn fails(out: &std::process::Output) -> String {
    let (_, e) = text(out);
    assert_code(out, 1);
    let wrap = regex::Regex::new(r"([/+-]?)\n\s*(\|\s*)?").unwrap();
    let joined = wrap
        .replace_all(&e, |c: &regex::Captures| {
            if c[1].is_empty() {
                " ".to_owned()
            } else {
                c[1].to_owned()
            }
        })
        .into_owned();
    eprintln!("{joined}");
    joined
}

fn run(ctx: &TestContext, args: &[&str]) -> std::process::Output {
    ctx.run(args)
}

/// The one line of a lock that starts with `key = `.
fn lock_lines(ctx: &TestContext, key: &str) -> Vec<String> {
    ctx.read("fm.lock")
        .lines()
        .filter(|l| l.starts_with(&format!("{key} = ")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_honest_log_is_pinned_on_first_use_proved_and_remembered() {
    let ctx = TestContext::new();
    let (reg, key) = logged(&ctx, "main");
    publish_logged(&ctx, &reg.root, &key, "b", "1.0.0", &[]);
    publish_logged(&ctx, &reg.root, &key, "a", "1.0.0", &[("b", "^1")]);
    manifest(&ctx, &reg.url(), "a = \"^1\"\n", "");
    let e = ok(&run(&ctx, &["lock", "--verbose"]));
    let vkey = load_key(&key).verifier().vkey().to_owned();
    assert!(
        e.contains(&format!("trusting its transparency log key {vkey} on first use")),
        "{e}"
    );
    assert!(e.contains("Transparency log: 2 proved, 0 proved before"), "{e}");
    assert_eq!(lock_lines(&ctx, "log-key"), [format!("log-key = \"{vkey}\"")]);
    assert_eq!(lock_lines(&ctx, "log-index"), ["log-index = 1", "log-index = 0"]);
    // The checkpoint is remembered in the cache, per log key.
    let remembered: Vec<_> = std::fs::read_dir(ctx.cache.join("tlog")).unwrap().collect();
    assert_eq!(remembered.len(), 1);
    // sync and a second machine's view agree; verify --log proves again.
    let e = ok(&run(&ctx, &["sync", "--locked", "--verbose"]));
    assert!(e.contains("Transparency log: 0 proved, 2 proved before"), "{e}");
    let e = ok(&run(&ctx, &["verify", "--log"]));
    assert!(
        e.contains("Verified 2 packages against their registries' transparency logs (main at 2 records)"),
        "{e}"
    );
    eprintln!("FIGURES tlog-client honest: 2 packages proved, then 0 requests on sync");
}

#[test]
fn proved_packages_need_no_request_again() {
    // Made to fail by any request: the log is removed after the first lock;
    // a re-lock and a sync of the same packages still pass (they would be
    // refused with "has no transparency log" if they asked).
    let ctx = TestContext::new();
    let (reg, key) = logged(&ctx, "main");
    publish_logged(&ctx, &reg.root, &key, "a", "1.0.0", &[]);
    manifest(&ctx, &reg.url(), "a = \"^1\"\n", "");
    ok(&run(&ctx, &["lock"]));
    std::fs::rename(reg.root.join("log"), ctx.root.join("log-aside")).unwrap();
    ok(&run(&ctx, &["lock", "--upgrade"]));
    ok(&run(&ctx, &["sync", "--locked"]));
    // verify --log proves again, so it asks, and a log that vanished
    // while fm.lock pins its key is refused.
    let e = fails(&run(&ctx, &["verify", "--log"]));
    assert!(
        e.contains("registry main has no transparency log, but fm.lock pins its log key"),
        "{e}"
    );
}

#[test]
fn a_rewritten_archive_and_document_is_caught_with_an_empty_cache_and_no_lock() {
    let ctx = TestContext::new();
    let (reg, key) = logged(&ctx, "main");
    let honest = publish_logged(&ctx, &reg.root, &key, "a", "1.0.0", &[]);
    let evil = rewrite_version(&ctx, &reg.root, "a", "1.0.0");
    assert_ne!(honest, evil);
    manifest(&ctx, &reg.url(), "a = \"^1\"\n", "");
    let e = fails(&run(&ctx, &["lock"]));
    assert!(
        e.contains(&format!(
            "registry main serves a 1.0.0 (sha256 {evil}) but its transparency log does not record it: log index 0 records publish a@1.0.0 (sha256 {honest})"
        )),
        "{e}"
    );
    assert!(!ctx.project.join("fm.lock").exists(), "nothing is written");
    eprintln!("FIGURES tlog-client rewrite: empty cache, no lock: refused, 0 files written");
    // fm sync re-locks the same way: nothing installed.
    let e = fails(&run(&ctx, &["sync"]));
    assert!(e.contains("does not record it"), "{e}");
    assert!(!ctx.project.join(".fm/packages/a").exists());
}

/// `fm install` (no manifest, no lock) proves what it selects as `fm lock`
/// does: a rewritten version is refused and nothing is installed.
#[test]
fn fm_install_refuses_a_version_its_log_does_not_record() {
    let ctx = TestContext::new();
    let (reg, key) = logged(&ctx, "main");
    let honest = publish_logged(&ctx, &reg.root, &key, "a", "1.0.0", &[]);
    let evil = rewrite_version(&ctx, &reg.root, "a", "1.0.0");
    ok(&run(&ctx, &["registry", "add", "main", &reg.url()]));
    let e = fails(&run(&ctx, &["install", "a"]));
    assert!(
        e.contains(&format!(
            "serves a 1.0.0 (sha256 {evil}) but its transparency log does not record it"
        )),
        "{e}"
    );
    assert!(e.contains(&honest), "{e}");
    assert!(!ctx.project.join(".fm/packages/a").exists(), "nothing is installed");
    // An honest version of the same registry installs.
    publish_logged(&ctx, &reg.root, &key, "b", "1.0.0", &[]);
    ok(&run(&ctx, &["install", "b"]));
    assert!(ctx.project.join(".fm/packages/b").is_dir());
    eprintln!(
        "FIGURES tlog-client install: a rewritten version refused by fm install, 0 files installed; an honest one installs"
    );
}

#[test]
fn a_version_outside_the_log_is_refused() {
    let ctx = TestContext::new();
    let (reg, key) = logged(&ctx, "main");
    publish_logged(&ctx, &reg.root, &key, "a", "1.0.0", &[]);
    publish_logged(&ctx, &reg.root, &key, "b", "1.0.0", &[]);
    manifest(&ctx, &reg.url(), "a = \"^1\"\n", "");
    // A dropped record: the document names no index (published unlogged).
    edit_document(&reg.root, "a", |d| {
        d["versions"][0]
            .as_object_mut()
            .unwrap()
            .remove("log_index")
            .map(|_| ())
            .unwrap()
    });
    let e = fails(&run(&ctx, &["lock"]));
    assert!(
        e.contains("the registry keeps a log, but gives no log_index for this version"),
        "{e}"
    );
    // An index past the log.
    edit_document(&reg.root, "a", |d| d["versions"][0]["log_index"] = 7.into());
    let e = fails(&run(&ctx, &["lock"]));
    assert!(
        e.contains("its document gives log index 7, past the 2 records of the signed checkpoint"),
        "{e}"
    );
    // Another version's record.
    edit_document(&reg.root, "a", |d| d["versions"][0]["log_index"] = 1.into());
    let e = fails(&run(&ctx, &["lock"]));
    assert!(e.contains("log index 1 records publish b@1.0.0"), "{e}");
    // The honest index passes.
    edit_document(&reg.root, "a", |d| d["versions"][0]["log_index"] = 0.into());
    ok(&run(&ctx, &["lock"]));
    eprintln!(
        "FIGURES tlog-client outside-the-log: 3 lies refused (no index, index past the log, another record), honest passes"
    );
}

#[test]
fn two_histories_are_caught_when_one_client_sees_both() {
    let ctx = TestContext::new();
    let (reg, key) = logged(&ctx, "main");
    publish_logged(&ctx, &reg.root, &key, "a", "1.0.0", &[]);
    // The same log, forked: one history gets b, the other c (same key).
    let fork = ctx.root.join("fork");
    copy_dir(&reg.root, &fork);
    publish_logged(&ctx, &reg.root, &key, "b", "1.0.0", &[]);
    publish_logged(&ctx, &fork, &key, "c", "1.0.0", &[]);
    manifest(&ctx, &reg.url(), "a = \"^1\"\n", "");
    ok(&run(&ctx, &["lock"]));
    // Now this client is shown the other history at the same URL.
    swap_in(&reg.root, &fork);
    let e = fails(&run(&ctx, &["verify", "--log"]));
    assert!(
        e.contains("shows a transparency log of 2 records")
            && e.contains(
                "does not extend the one of 2 records this machine saw before: the same size with another root"
            ),
        "{e}"
    );
    // A fresh lock is refused too, and the evidence is kept.
    std::fs::remove_file(ctx.project.join("fm.lock")).unwrap();
    let e = fails(&run(&ctx, &["lock"]));
    assert!(e.contains("the registry has shown two different histories"), "{e}");
    assert!(ctx.filter(&e).contains("[ROOT]/cache/tlog/"), "{e}");
    // A longer forked history fails its consistency proof.
    publish_logged(&ctx, &reg.root, &key, "d", "1.0.0", &[]);
    let e = fails(&run(&ctx, &["lock"]));
    assert!(e.contains("its first 2 records hash to another root"), "{e}");
    eprintln!("FIGURES tlog-client fork: 3 refusals (verify --log, fresh lock same size, fresh lock longer fork)");
}

#[test]
fn a_truncated_reordered_or_resigned_log_is_refused() {
    let ctx = TestContext::new();
    let (reg, key) = logged(&ctx, "main");
    publish_logged(&ctx, &reg.root, &key, "a", "1.0.0", &[]);
    let first = std::fs::read(reg.root.join("log/checkpoint")).unwrap();
    publish_logged(&ctx, &reg.root, &key, "b", "1.0.0", &[]);
    manifest(&ctx, &reg.url(), "a = \"^1\"\nb = \"^1\"\n", "");
    ok(&run(&ctx, &["lock"]));
    let pristine = ctx.root.join("pristine");
    copy_dir(&reg.root, &pristine);

    // Truncated: the older checkpoint served again.
    std::fs::write(reg.root.join("log/checkpoint"), &first).unwrap();
    let e = fails(&run(&ctx, &["verify", "--log"]));
    assert!(
        e.contains("it has fewer records than before (1 < 2): a rollback or a truncated log"),
        "{e}"
    );

    // Reordered: the same two versions logged the other way round, signed
    // with the registry's own key, documents to match.
    let reordered = ctx.root.join("reordered");
    std::fs::create_dir_all(&reordered).unwrap();
    let out = ctx
        .fm()
        .args(["registry", "log", "init", "--storage"])
        .arg(&reordered)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert_code(&out, 0);
    publish_logged(&ctx, &reordered, &key, "b", "1.0.0", &[]);
    publish_logged(&ctx, &reordered, &key, "a", "1.0.0", &[]);
    let _ = std::fs::remove_dir_all(&reg.root);
    copy_dir(&reordered, &reg.root);
    let e = fails(&run(&ctx, &["verify", "--log"]));
    assert!(e.contains("the same size with another root"), "{e}");

    // Re-signed with another key: refused against the pinned one.
    let _ = std::fs::remove_dir_all(&reg.root);
    copy_dir(&pristine, &reg.root);
    let (other, _) = fm::tlog::LogKey::generate("fm.registry/main").unwrap();
    let sig = other
        .sign_checkpoint(
            2,
            *load_key(&key)
                .verifier()
                .open_checkpoint(&std::fs::read(reg.root.join("log/checkpoint")).unwrap())
                .unwrap()
                .hash(),
        )
        .unwrap();
    std::fs::write(reg.root.join("log/checkpoint"), sig).unwrap();
    let e = fails(&run(&ctx, &["verify", "--log"]));
    assert!(
        e.contains("transparency log cannot be trusted: bad checkpoint: not signed by"),
        "{e}"
    );

    // The untouched log verifies again.
    let _ = std::fs::remove_dir_all(&reg.root);
    copy_dir(&pristine, &reg.root);
    ok(&run(&ctx, &["verify", "--log"]));
    eprintln!(
        "FIGURES tlog-client history: truncated, reordered (own key), re-signed (other key): 3 refused; pristine verifies"
    );
}

#[test]
fn a_swapped_key_is_refused_and_a_pinned_key_wins() {
    let ctx = TestContext::new();
    let (reg, key) = logged(&ctx, "main");
    publish_logged(&ctx, &reg.root, &key, "a", "1.0.0", &[]);
    manifest(&ctx, &reg.url(), "a = \"^1\"\n", "");
    ok(&run(&ctx, &["lock"]));
    let old_lock = ctx.read("fm.lock");
    let old_vkey = load_key(&key).verifier().vkey().to_owned();
    // The operator (or an attacker) replaces the whole log under a new key.
    let again = ctx.root.join("again");
    std::fs::create_dir_all(&again).unwrap();
    let new_key = init_log(&ctx, &again, &[]);
    publish_logged(&ctx, &again, &new_key, "a", "1.0.0", &[]);
    publish_logged(&ctx, &again, &new_key, "b", "1.0.0", &[]);
    let new_vkey = load_key(&new_key).verifier().vkey().to_owned();
    swap_in(&reg.root, &again);
    let refused = format!("registry main's transparency log is signed by {new_vkey}, but fm.lock pins {old_vkey}");
    // What was proved stays proved (no request); proving again, or
    // anything new, meets the new key and is refused.
    let e = fails(&run(&ctx, &["verify", "--log"]));
    assert!(e.contains(&refused), "{e}");
    // `fm registry log verify` and `checkpoint` in the project check
    // against the key fm.lock pins, not the one the registry now serves.
    for cmd in ["verify", "checkpoint"] {
        let e = fails(&run(&ctx, &["registry", "log", cmd, "main"]));
        assert!(
            e.contains(&format!("bad checkpoint: not signed by {old_vkey}")),
            "{cmd}: {e}"
        );
    }
    manifest(&ctx, &reg.url(), "a = \"^1\"\nb = \"^1\"\n", "");
    let e = fails(&run(&ctx, &["lock"]));
    assert!(e.contains(&refused), "{e}");
    // Pinning the new key in fm.toml is how a real rotation is accepted;
    // the lock diff then shows the change.
    manifest(
        &ctx,
        &reg.url(),
        "a = \"^1\"\nb = \"^1\"\n",
        &format!("log-key = \"{new_vkey}\"\n"),
    );
    ok(&run(&ctx, &["lock"]));
    assert_eq!(lock_lines(&ctx, "log-key"), [format!("log-key = \"{new_vkey}\"")]);
    std::fs::write(ctx.root.join("old.lock"), old_lock).unwrap();
    let out = ctx
        .fm()
        .args(["diff"])
        .arg(ctx.root.join("old.lock"))
        .arg("fm.lock")
        .output()
        .unwrap();
    let (o, _) = text(&out);
    assert!(
        o.contains("TRANSPARENCY LOG KEY CHANGED: 1 registry")
            && o.contains(&format!("was {old_vkey}"))
            && o.contains(&format!("now {new_vkey}")),
        "{o}"
    );
    // A wrong key in fm.toml is refused against the registry.
    manifest(
        &ctx,
        &reg.url(),
        "a = \"^1\"\nb = \"^1\"\n",
        &format!("log-key = \"{old_vkey}\"\n"),
    );
    let e = fails(&run(&ctx, &["lock"]));
    assert!(e.contains("but fm.toml pins"), "{e}");
}

#[test]
fn a_registry_without_a_log_works_with_one_notice_unless_a_log_is_required() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("plain");
    reg.publish("a", "1.0.0", &[]);
    manifest(&ctx, &reg.url(), "a = \"^1\"\n", "");
    let e = ok(&run(&ctx, &["sync"]));
    assert_eq!(e.matches("keeps no transparency log").count(), 1, "{e}");
    // Said once per machine, not on every lock.
    let e = ok(&run(&ctx, &["lock", "--upgrade"]));
    assert!(!e.contains("keeps no transparency log"), "{e}");
    // The memo is a plain file; a link planted in its place is neither
    // written through nor taken for the memo: the notice is said again.
    #[cfg(unix)]
    {
        let noticed = ctx.cache.join("tlog").join("noticed");
        let memos: Vec<_> = std::fs::read_dir(&noticed)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(memos.len(), 1, "{memos:?}");
        let elsewhere = ctx.root.join("elsewhere");
        std::fs::write(&elsewhere, "mine").unwrap();
        std::fs::remove_file(&memos[0]).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &memos[0]).unwrap();
        let e = ok(&run(&ctx, &["lock", "--upgrade"]));
        assert_eq!(e.matches("keeps no transparency log").count(), 1, "{e}");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "mine");
        std::fs::remove_file(&memos[0]).unwrap();
        ok(&run(&ctx, &["lock", "--upgrade"]));
        assert!(std::fs::symlink_metadata(&memos[0]).unwrap().is_file());
    }
    assert!(lock_lines(&ctx, "log-key").is_empty());
    assert!(lock_lines(&ctx, "log-index").is_empty());
    manifest(&ctx, &reg.url(), "a = \"^1\"\n", "require-log = true\n");
    let e = fails(&run(&ctx, &["sync", "--locked"]));
    assert!(
        e.contains("fm.toml sets require-log for registry main, and fm.lock records no log-key for it"),
        "{e}"
    );
    let e = fails(&run(&ctx, &["lock"]));
    assert!(
        e.contains("registry main has no transparency log, but fm.toml sets require-log = true for it"),
        "{e}"
    );
    // A bad log-key is an error at its line in fm.toml.
    manifest(&ctx, &reg.url(), "a = \"^1\"\n", "log-key = \"not a key\"\n");
    let e = text(&run(&ctx, &["lock"])).1;
    assert!(e.contains("invalid log-key for registry \"main\""), "{e}");
}

fn serve_logged(ctx: &TestContext, root: &Path, key: &Path) -> Server {
    ctx.serve(root, &["--log-key", &key.display().to_string()], &[])
}

#[test]
fn over_http_an_honest_server_and_an_unchanged_mirror_verify_and_a_rewrite_is_caught() {
    let ctx = TestContext::new();
    let (reg, key) = logged(&ctx, "main");
    for i in 0..40 {
        publish_logged(&ctx, &reg.root, &key, &format!("p{i}"), "1.0.0", &[]);
    }
    publish_logged(&ctx, &reg.root, &key, "a", "1.0.0", &[("p3", "^1"), ("p39", "^1")]);
    let server = serve_logged(&ctx, &reg.root, &key);
    manifest(&ctx, &server.url, "a = \"^1\"\n", "");
    let e = ok(&run(&ctx, &["lock", "--verbose"]));
    assert!(e.contains("Transparency log: 3 proved"), "{e}");
    let cost = e
        .lines()
        .find(|l| l.contains("Transparency log:"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    eprintln!("FIGURES tlog-client http: 41-record log, {cost}");
    ok(&run(&ctx, &["sync", "--locked"]));

    // A mirror (a copy of the storage on a static host, here a folder)
    // serving the log unchanged verifies; the lock keeps the canonical URL.
    let mirror = ctx.root.join("mirror");
    copy_dir(&reg.root, &mirror);
    std::fs::write(
        ctx.home.join("registries.json"),
        format!(
            r#"{{"registries":[{{"name":"main","url":"{}","mirror":"{}"}}]}}"#,
            server.url,
            url::Url::from_directory_path(&mirror).unwrap()
        ),
    )
    .unwrap();
    let e = ok(&run(&ctx, &["verify", "--log"]));
    assert!(e.contains("Verified 3 packages"), "{e}");

    // The operator rewrites a version in the served storage; a client with
    // an empty cache and no lock catches it.
    std::fs::remove_file(ctx.home.join("registries.json")).unwrap();
    let evil = rewrite_version(&ctx, &reg.root, "p3", "1.0.0");
    let fresh = TestContext::new();
    manifest(&fresh, &server.url, "a = \"^1\"\n", "");
    let e = fails(&run(&fresh, &["lock"]));
    assert!(
        e.contains(&format!(
            "registry main serves p3 1.0.0 (sha256 {evil}) but its transparency log does not record it"
        )),
        "{e}"
    );
}
