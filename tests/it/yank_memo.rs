//! The yank check's memo (`{cache}/yank-memo/`, src/project/yank_memo.rs):
//! a plain `fm sync` of an unchanged directory registry reads no document,
//! yet a yank (or un-yank) since the memo was written is still seen; the
//! memo is cache content, so one that does not parse, names another
//! registry, or is a link is ignored, and it is replaced atomically, never
//! written through a link.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::common::*;
use fm::registry::publish;
use fm::registry::storage::DirStorage;

const WARNING: &str = "warning: util 1.1.0 is locked, but registry main has yanked it";

/// util =1.1.0 and extra ^1 from one directory registry, locked.
fn setup() -> (TestContext, DirRegistry) {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("util", "1.1.0", &[]);
    reg.publish("util", "1.2.0", &[]);
    reg.publish("extra", "1.0.0", &[]);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nutil = \"=1.1.0\"\nextra = \"^1\"\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        reg.url()
    ));
    assert_code(&ctx.run(&["lock"]), 0);
    (ctx, reg)
}

/// The memo only vouches for documents older than 100 ms (a change within
/// one clock tick could go unseen); let the registry's files age past it.
fn age() {
    std::thread::sleep(std::time::Duration::from_millis(250));
}

fn set_yanked(reg: &DirRegistry, yanked: bool) {
    publish::set_yanked(&DirStorage::new(&reg.root), "util", "1.1.0", yanked, None).expect("set_yanked");
}

/// The one memo file in the cache.
fn memo_file(ctx: &TestContext) -> PathBuf {
    let dir = ctx.cache.join("yank-memo");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().expect("one memo")
}

/// Runs `fm args` (exit 0) and says whether it warned about util 1.1.0.
fn warns(ctx: &TestContext, args: &[&str]) -> bool {
    let out = ctx.run(args);
    assert_code(&out, 0);
    text(&out).1.contains(WARNING)
}

/// A memo line claiming util's document, with its current stat data,
/// yanks nothing.
fn claim_not_yanked(reg: &DirRegistry, registry_line: &str) -> String {
    let m = std::fs::metadata(reg.root.join("index/util.json")).expect("stat");
    format!(
        "fm-yank-memo 1\n{registry_line}\nutil {} {} {} {} {} -\n",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        m.ctime() * 1_000_000_000 + m.ctime_nsec()
    )
}

fn registry_line(memo: &Path) -> String {
    let text = std::fs::read_to_string(memo).expect("memo");
    let line = text.lines().nth(1).expect("registry line").to_owned();
    assert!(line.starts_with("registry /"), "{text}");
    line
}

// A memo keyed by document name alone would have hidden a yank made after
// the first sync; an un-yank must clear the warning again.
#[test]
fn a_yank_after_the_memo_was_written_is_warned_about_and_an_unyank_clears_it() {
    let (ctx, reg) = setup();
    age();
    assert!(!warns(&ctx, &["sync"]));
    let memo = memo_file(&ctx);
    let text = std::fs::read_to_string(&memo).expect("memo");
    assert!(text.contains("\nutil ") && text.contains("\nextra "), "{text}");

    set_yanked(&reg, true);
    assert!(warns(&ctx, &["sync"]), "plain sync after a yank");
    assert!(warns(&ctx, &["sync", "--locked"]), "--locked after a yank");
    age();
    // Now from the memo, which records the yank.
    assert!(warns(&ctx, &["sync"]));
    let text = std::fs::read_to_string(&memo).expect("memo");
    assert!(
        text.lines().any(|l| l.starts_with("util ") && l.ends_with(" 1.1.0")),
        "{text}"
    );
    assert!(warns(&ctx, &["sync", "--locked"]));
    assert!(warns(&ctx, &["lock"]));

    set_yanked(&reg, false);
    assert!(!warns(&ctx, &["sync"]), "plain sync after an un-yank");
    assert!(!warns(&ctx, &["sync", "--locked"]), "--locked after an un-yank");
    age();
    assert!(!warns(&ctx, &["sync"]));
    assert!(!warns(&ctx, &["sync", "--locked"]));
}

// The memo is cache content: shared, restorable from a CI cache, so
// untrusted. Only a whole memo of this very registry folder is used.
#[test]
fn a_garbage_or_foreign_memo_is_ignored_and_a_trusted_one_only_hides_a_warning() {
    let (ctx, reg) = setup();
    age();
    assert!(!warns(&ctx, &["sync"]));
    let memo = memo_file(&ctx);
    let ours = registry_line(&memo);
    set_yanked(&reg, true);
    age();

    // Control: a memo of this registry that matches the document's stat
    // data is believed (nothing is read), so poisoning it hides the
    // warning — and nothing else: the sync still installs the lock.
    std::fs::write(&memo, claim_not_yanked(&reg, &ours)).expect("plant");
    assert!(!warns(&ctx, &["sync"]), "the memo is used");
    std::fs::remove_dir_all(ctx.project.join(".fm")).expect("rm .fm");
    std::fs::write(&memo, claim_not_yanked(&reg, &ours)).expect("plant");
    assert!(!warns(&ctx, &["sync"]));
    assert_code(&ctx.run(&["verify"]), 0);

    let foreign = claim_not_yanked(&reg, "registry /somewhere/else");
    let wrong_version = claim_not_yanked(&reg, &ours).replace("fm-yank-memo 1", "fm-yank-memo 9");
    let truncated = {
        let t = claim_not_yanked(&reg, &ours);
        t[..t.len() - 3].to_owned()
    };
    let bad_line = format!("{}../../etc 1 2 3 4 5 -\n", claim_not_yanked(&reg, &ours));
    let cases: [(&str, Vec<u8>); 5] = [
        ("another registry", foreign.into_bytes()),
        ("another format", wrong_version.into_bytes()),
        ("a truncated line", truncated.into_bytes()),
        ("a bad name", bad_line.into_bytes()),
        ("binary garbage", (0..=255u8).cycle().take(4096).collect()),
    ];
    for (what, bytes) in &cases {
        std::fs::write(&memo, bytes).expect("plant");
        assert!(warns(&ctx, &["sync"]), "{what}: the memo must be ignored");
        // And replaced by a true one.
        let text = std::fs::read_to_string(&memo).expect("memo rewritten");
        assert!(text.starts_with(&format!("fm-yank-memo 1\n{ours}\n")), "{what}: {text}");
        assert!(
            text.lines().any(|l| l.starts_with("util ") && l.ends_with(" 1.1.0")),
            "{what}: {text}"
        );
        assert!(warns(&ctx, &["sync", "--locked"]), "{what}: from the rewritten memo");
    }
    println!(
        "FIGURES yank-memo: {} untrusted memos (foreign registry, format, truncated, bad name, garbage) ignored, warning shown each time; 1 trusted poisoned memo hid only the warning (install verified)",
        cases.len()
    );
}

// A link planted in the cache must not redirect the memo's write, and the
// memo is replaced by a rename (a hard link to it keeps the old bytes).
#[test]
fn the_memo_is_written_atomically_and_never_through_a_link() {
    let (ctx, reg) = setup();
    age();
    assert!(!warns(&ctx, &["sync"]));
    let memo = memo_file(&ctx);
    let name = memo.file_name().expect("name").to_owned();

    // A symlink at the memo's place: not read, not written through.
    let outside = ctx.root.join("outside.txt");
    std::fs::write(&outside, "keep\n").expect("write");
    std::fs::remove_file(&memo).expect("rm");
    std::os::unix::fs::symlink(&outside, &memo).expect("symlink");
    set_yanked(&reg, true);
    age();
    assert!(warns(&ctx, &["sync"]));
    assert!(warns(&ctx, &["sync"]));
    assert_eq!(std::fs::read_to_string(&outside).expect("outside"), "keep\n");
    assert!(std::fs::symlink_metadata(&memo).expect("link").file_type().is_symlink());

    // A symlink in place of the memo folder: nothing written where it points.
    let elsewhere = ctx.root.join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    std::fs::remove_dir_all(ctx.cache.join("yank-memo")).expect("rm");
    std::os::unix::fs::symlink(&elsewhere, ctx.cache.join("yank-memo")).expect("symlink");
    assert!(warns(&ctx, &["sync"]));
    assert_eq!(std::fs::read_dir(&elsewhere).expect("ls").count(), 0);

    // A hard link to the memo: the rewrite replaces the memo, the other
    // name keeps the old bytes (an in-place write would change both).
    std::fs::remove_file(ctx.cache.join("yank-memo")).expect("rm link");
    assert!(warns(&ctx, &["sync"]));
    let before = std::fs::read(&memo).expect("memo");
    let twin = ctx.root.join("twin.txt");
    std::fs::hard_link(&memo, &twin).expect("hard link");
    set_yanked(&reg, false);
    age();
    assert!(!warns(&ctx, &["sync"]));
    assert_eq!(std::fs::read(&twin).expect("twin"), before);
    assert_ne!(std::fs::read(&memo).expect("memo"), before, "the memo was rewritten");
    let left: Vec<_> = std::fs::read_dir(ctx.cache.join("yank-memo"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, vec![name], "no temporary files left");
}

/// Publishes `name@version` into `root` and its log (signed with `key`).
fn publish_logged(ctx: &TestContext, root: &Path, key: &Path, name: &str, version: &str) {
    let dir = package_source(&ctx.root.join("pkgsrc"), name, version, &[]);
    let packed = pack_folder(&dir);
    let key = crate::tlog::load_key(key);
    publish::publish(
        &DirStorage::new(root),
        &packed.bytes,
        None,
        &fm::archive::Limits::default(),
        Some(&key),
    )
    .expect("publish");
}

/// `fm -v args`: whether it warned about util 1.1.0, and the registry
/// paths it requested (`packages/util`, `log/checkpoint`, ...).
fn requests(ctx: &TestContext, args: &[&str]) -> (bool, Vec<String>) {
    let out = ctx.fm().arg("-v").args(args).output().expect("run fm");
    assert_code(&out, 0);
    let err = text(&out).1;
    let paths = err
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("GET "))
        .filter_map(|l| {
            l.split(' ')
                .next()?
                .split("/api/v1/registry/")
                .nth(1)
                .map(str::to_owned)
        })
        .collect();
    (err.contains(WARNING), paths)
}

fn documents(paths: &[String]) -> Vec<&str> {
    paths
        .iter()
        .map(String::as_str)
        .filter(|p| p.starts_with("packages/") && !p.ends_with("/download"))
        .collect()
}

// Over HTTP each plain sync asked for every locked package's document.
// With a transparency log, one checkpoint request says nothing changed; a
// yank (a log record) names the one document to read again.
#[test]
fn over_http_a_logged_registry_costs_one_checkpoint_request_and_a_yank_is_still_seen() {
    const TOKEN: &str = "yank-memo-token";
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    let key = crate::tlog::init_log(&ctx, &reg.root, &[]);
    publish_logged(&ctx, &reg.root, &key, "util", "1.1.0");
    publish_logged(&ctx, &reg.root, &key, "util", "1.2.0");
    publish_logged(&ctx, &reg.root, &key, "extra", "1.0.0");
    let server = ctx.serve(
        &reg.root,
        &["--log-key", &key.display().to_string(), "--token", TOKEN],
        &[],
    );
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nutil = \"=1.1.0\"\nextra = \"^1\"\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        server.url
    ));
    assert_code(&ctx.run(&["lock"]), 0);
    assert!(!warns(&ctx, &["sync"]));
    let (warned, paths) = requests(&ctx, &["sync"]);
    assert!(!warned);
    assert_eq!(documents(&paths), Vec::<&str>::new(), "no-op sync: {paths:?}");
    assert!(paths.iter().any(|p| p == "log/checkpoint"), "{paths:?}");
    let noop = paths.len();

    let yank = |undo: bool| {
        let mut cmd = ctx.fm();
        cmd.args(["yank", "util@1.1.0", "--registry", &server.url])
            .env("FLOWMASON_REGISTRY_TOKEN", TOKEN);
        if undo {
            cmd.arg("--undo");
        }
        assert_code(&cmd.output().expect("yank"), 0);
    };
    yank(false);
    let (warned, paths) = requests(&ctx, &["sync"]);
    assert!(warned, "plain sync after a yank: {paths:?}");
    assert_eq!(documents(&paths), ["packages/util"], "{paths:?}");
    let (warned, paths) = requests(&ctx, &["sync", "--locked"]);
    assert!(warned, "--locked after a yank, from the memo");
    assert_eq!(documents(&paths), Vec::<&str>::new(), "{paths:?}");

    yank(true);
    let (warned, paths) = requests(&ctx, &["sync", "--locked"]);
    assert!(!warned, "after an un-yank");
    assert_eq!(documents(&paths), ["packages/util"], "{paths:?}");
    assert!(!warns(&ctx, &["sync"]));

    // A memo that claims another checkpoint is dropped whole.
    let memo = memo_file(&ctx);
    let text = std::fs::read_to_string(&memo).expect("memo");
    let forged: String = text
        .lines()
        .map(|l| {
            if l.starts_with("checkpoint ") {
                "checkpoint 999 AAAA"
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&memo, forged).expect("plant");
    yank(false);
    let (warned, paths) = requests(&ctx, &["sync"]);
    assert!(warned);
    assert_eq!(documents(&paths).len(), 2, "{paths:?}");
    println!(
        "FIGURES yank-memo http: no-op plain fm sync of 2 locked packages: {noop} registry requests, 0 documents (was 1 document request a package); after a yank: 1 document"
    );
}
