//! `fm diff` over crafted lock pairs (every category, in text, JSON and
//! Markdown), its exit codes, its default sides from git, `git diff` through
//! the fm diff drivers, and `fm completions`.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use fm::lock::{LockedPackage, LockedRegistry, Lockfile};

fn registry(name: &str, url: &str) -> LockedRegistry {
    LockedRegistry {
        name: name.into(),
        url: url.into(),
        priority: 100,
        explicit: false,
    }
}

fn package(name: &str, version: &str, registry: &str, digest: char, deps: &[&str]) -> LockedPackage {
    LockedPackage {
        name: name.parse().unwrap(),
        version: version.parse().expect("version"),
        registry: registry.into(),
        sha256: std::iter::repeat_n(digest, 64).collect::<String>().parse().unwrap(),
        size: 1000,
        dependencies: deps.iter().map(|d| d.parse().unwrap()).collect(),
    }
}

fn registries() -> Vec<LockedRegistry> {
    vec![
        registry("company", "https://registry.company.com/"),
        registry("public", "https://fm.example.org/"),
    ]
}

/// The old side of the pair that covers every category.
fn old_lock() -> Lockfile {
    Lockfile {
        log: Default::default(),
        root: vec![
            "filter-kit >=0.3, <0.5".into(),
            "legacy ^0.3".into(),
            "sentiment ^1.0".into(),
            "summarizer ^1.2".into(),
            "tampered ^1".into(),
        ],
        registries: registries(),
        packages: vec![
            package("filter-kit", "0.3.2", "company", 'f', &[]),
            package("legacy", "0.3.1", "company", 'a', &[]),
            package("sentiment", "1.0.5", "company", 'b', &[]),
            package("summarizer", "1.4.2", "company", 'c', &["text-utils ^2.0"]),
            package("tampered", "1.4.2", "company", '1', &[]),
            package("text-utils", "2.1.0", "company", 'd', &[]),
        ],
    }
}

/// The new side: one change of each kind against [`old_lock`].
fn new_lock() -> Lockfile {
    let mut packages = vec![
        package("filter-kit", "0.3.2", "public", 'f', &[]),
        package("sentiment", "1.0.4", "company", 'e', &[]),
        package(
            "summarizer",
            "1.5.0",
            "company",
            '7',
            &["text-utils ^2.1", "tokenizer ^1"],
        ),
        package("tampered", "1.4.2", "company", '9', &[]),
        package("text-utils", "2.1.0", "company", 'd', &[]),
        package("tokenizer", "1.0.0", "company", '5', &[]),
    ];
    packages[3].size = 1337;
    Lockfile {
        log: Default::default(),
        root: vec![
            "filter-kit >=0.3, <0.5 (public)".into(),
            "sentiment ^1.0".into(),
            "summarizer ^1.5".into(),
            "tampered ^1".into(),
        ],
        registries: registries(),
        packages,
    }
}

fn write_pair(ctx: &TestContext) {
    std::fs::write(ctx.project.join("old.lock"), old_lock().render()).expect("write");
    std::fs::write(ctx.project.join("new.lock"), new_lock().render()).expect("write");
}

fn stdout(out: &std::process::Output) -> String {
    text(out).0
}

#[test]
fn text_report_covers_every_category_with_the_digest_alarm_first() {
    let ctx = TestContext::new();
    write_pair(&ctx);
    let out = ctx.run(&["diff", "old.lock", "new.lock"]);
    assert_code(&out, 0);
    let s = stdout(&out);
    assert!(
        s.find("SAME VERSION, DIFFERENT SHA-256").expect("alarm") < s.find("Added").expect("added"),
        "the alarm must come first:\n{s}"
    );
    insta::assert_snapshot!("every_category_text", s);
}

#[test]
fn json_report_is_the_documented_schema() {
    let ctx = TestContext::new();
    write_pair(&ctx);
    let out = ctx.run(&["diff", "old.lock", "new.lock", "--format", "json"]);
    assert_code(&out, 0);
    let s = stdout(&out);
    let v: serde_json::Value = serde_json::from_str(&s).expect("stdout is JSON only");
    assert_eq!(v["version"], 1);
    assert_eq!(v["digest_changed"][0]["name"], "tampered");
    // The global --json flag selects the same document.
    let again = ctx.run(&["--json", "diff", "old.lock", "new.lock"]);
    assert_eq!(stdout(&again), s);
    insta::assert_snapshot!("every_category_json", s);
}

#[test]
fn markdown_report_is_a_table_for_a_pull_request() {
    let ctx = TestContext::new();
    write_pair(&ctx);
    let out = ctx.run(&["diff", "old.lock", "new.lock", "--format", "markdown"]);
    assert_code(&out, 0);
    insta::assert_snapshot!("every_category_markdown", stdout(&out));
}

#[test]
fn exit_code_is_0_when_unchanged_and_1_when_changed() {
    let ctx = TestContext::new();
    write_pair(&ctx);
    let same = ctx.run(&["diff", "old.lock", "old.lock", "--exit-code"]);
    assert_code(&same, 0);
    assert_eq!(stdout(&same), "No changes between old.lock and old.lock.\n");
    let changed = ctx.run(&["diff", "old.lock", "new.lock", "--exit-code"]);
    assert_code(&changed, 1);
    assert!(
        text(&changed)
            .1
            .contains("old.lock and new.lock differ: 1 digest changed, 1 added")
    );
    // Without --exit-code a difference is not a failure.
    assert_code(&ctx.run(&["diff", "old.lock", "new.lock"]), 0);
    // JSON says the same thing.
    let json = ctx.run(&["diff", "old.lock", "old.lock", "--json", "--exit-code"]);
    assert_code(&json, 0);
    assert!(stdout(&json).contains("\"changed\": false"));
}

#[test]
fn only_a_changed_digest_still_fails_the_exit_code() {
    let ctx = TestContext::new();
    let old = old_lock();
    let mut new = old.clone();
    new.packages[0].sha256 = "0".repeat(64).parse().unwrap();
    std::fs::write(ctx.project.join("a.lock"), old.render()).expect("write");
    std::fs::write(ctx.project.join("b.lock"), new.render()).expect("write");
    let out = ctx.run(&["diff", "a.lock", "b.lock", "--exit-code"]);
    assert_code(&out, 1);
    let s = stdout(&out);
    assert!(s.contains("filter-kit 0.3.2 (company)"), "{s}");
    assert!(s.contains(&format!("now sha256 {}", "0".repeat(64))), "{s}");
}

#[test]
fn color_only_when_asked() {
    let ctx = TestContext::new();
    write_pair(&ctx);
    let plain = ctx.run(&["diff", "old.lock", "new.lock"]);
    assert!(!stdout(&plain).contains('\x1b'));
    let colored = ctx.run(&["--color", "always", "diff", "old.lock", "new.lock"]);
    assert!(stdout(&colored).contains("\x1b[1;31m!!! SAME VERSION"));
}

#[test]
fn an_unreadable_lock_is_a_clear_error() {
    let ctx = TestContext::new();
    write_pair(&ctx);
    std::fs::write(ctx.project.join("bad.lock"), "version = 1\n[[package]]\nname = 3\n").expect("write");
    let out = ctx.run(&["diff", "old.lock", "bad.lock"]);
    assert_code(&out, 1);
    assert!(text(&out).1.contains("bad.lock is not a valid lock file"));
    let missing = ctx.run(&["diff", "old.lock", "nowhere.lock"]);
    assert_code(&missing, 1);
    assert!(text(&missing).1.contains("cannot read"));
    // /dev/null is the empty lock git passes for an added or deleted file.
    let added = ctx.run(&["diff", "/dev/null", "new.lock", "--json"]);
    assert_code(&added, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&added)).expect("json");
    assert_eq!(v["added"].as_array().map(Vec::len), Some(6));
}

// ---- git ------------------------------------------------------------------

/// `git` in `dir`, isolated from the user's and the system's configuration.
fn git(ctx: &TestContext, dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", ctx.home.join("gitconfig"))
        .env("HOME", &ctx.home)
        .env("GIT_AUTHOR_NAME", "fm test")
        .env("GIT_AUTHOR_EMAIL", "fm@example.org")
        .env("GIT_COMMITTER_NAME", "fm test")
        .env("GIT_COMMITTER_EMAIL", "fm@example.org")
        .env("GIT_PAGER", "cat")
        .env("PAGER", "cat")
        .env("FM_HOME", &ctx.home)
        .env("FM_CACHE_DIR", &ctx.cache)
        .env("NO_COLOR", "1")
        .output()
        .expect("run git");
    assert_code(&out, 0);
    out
}

/// A repository in the project folder with fm.toml and `old_lock()`
/// committed, and `new_lock()` in the working tree.
fn repo_with_changed_lock(ctx: &TestContext) {
    ctx.write_manifest("[project]\nname = \"app\"\n");
    git(ctx, &ctx.project, &["init", "-q", "-b", "main"]);
    std::fs::write(ctx.project.join("fm.lock"), old_lock().render()).expect("write");
    git(ctx, &ctx.project, &["add", "fm.toml", "fm.lock"]);
    git(ctx, &ctx.project, &["commit", "-q", "-m", "lock"]);
    std::fs::write(ctx.project.join("fm.lock"), new_lock().render()).expect("write");
}

/// The JSON report without its `old` and `new` labels.
fn without_labels(out: &std::process::Output) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&stdout(out)).expect("json");
    let map = v.as_object_mut().expect("object");
    map.remove("old");
    map.remove("new");
    v
}

/// The JSON report's `old` and `new` labels.
fn sides(out: &std::process::Output) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(&stdout(out)).expect("json");
    (
        v["old"].as_str().unwrap_or("").to_owned(),
        v["new"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn default_sides_are_head_and_the_working_lock() {
    let ctx = TestContext::new();
    repo_with_changed_lock(&ctx);
    write_pair(&ctx);
    let by_default = ctx.run(&["diff", "--json"]);
    assert_code(&by_default, 0);
    let explicit = ctx.run(&["diff", "old.lock", "new.lock", "--json"]);
    assert_eq!(sides(&by_default), ("HEAD:fm.lock".to_owned(), "fm.lock".to_owned()));
    assert_eq!(without_labels(&by_default), without_labels(&explicit));
    // From a subfolder, the manifest's folder is used.
    std::fs::create_dir_all(ctx.project.join("sub")).expect("mkdir");
    let from_sub = ctx
        .fm()
        .current_dir(ctx.project.join("sub"))
        .args(["diff", "--json"])
        .output()
        .expect("run");
    assert_eq!(stdout(&from_sub), stdout(&by_default));
    // REV:path reads a committed lock; a path the revision lacks is empty (a new file).
    git(&ctx, &ctx.project, &["commit", "-q", "-am", "upgrade"]);
    let rev = ctx.run(&["diff", "HEAD~1:fm.lock", "HEAD:fm.lock", "--json"]);
    assert_code(&rev, 0);
    assert_eq!(without_labels(&rev), without_labels(&explicit));
    let unchanged = ctx.run(&["diff", "--exit-code"]);
    assert_code(&unchanged, 0);
    let new_file = ctx.run(&["diff", "HEAD:nothing.lock", "fm.lock", "--json"]);
    assert_code(&new_file, 0);
    assert!(stdout(&new_file).contains("\"name\": \"tokenizer\""));
    let bad_rev = ctx.run(&["diff", "no-such-rev:fm.lock"]);
    assert_code(&bad_rev, 1);
    assert!(text(&bad_rev).1.contains("git cannot read no-such-rev:fm.lock"));
}

#[test]
fn an_uncommitted_lock_is_all_added() {
    let ctx = TestContext::new();
    ctx.write_manifest("[project]\nname = \"app\"\n");
    git(&ctx, &ctx.project, &["init", "-q", "-b", "main"]);
    std::fs::write(ctx.project.join("fm.lock"), new_lock().render()).expect("write");
    let out = ctx.run(&["diff", "--exit-code"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("Added: 6"), "{}", stdout(&out));
}

#[test]
fn without_a_manifest_the_current_folders_lock_is_compared() {
    let ctx = TestContext::new();
    git(&ctx, &ctx.project, &["init", "-q", "-b", "main"]);
    std::fs::write(ctx.project.join("fm.lock"), old_lock().render()).expect("write");
    git(&ctx, &ctx.project, &["add", "fm.lock"]);
    git(&ctx, &ctx.project, &["commit", "-q", "-m", "lock"]);
    assert_code(&ctx.run(&["diff", "--exit-code"]), 0);
    std::fs::write(ctx.project.join("fm.lock"), new_lock().render()).expect("write");
    let out = ctx.run(&["diff", "--exit-code"]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).starts_with("HEAD:fm.lock -> fm.lock\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn outside_a_repository_the_default_old_side_is_explained() {
    let ctx = TestContext::new();
    ctx.write_manifest("[project]\nname = \"app\"\n");
    std::fs::write(ctx.project.join("fm.lock"), new_lock().render()).expect("write");
    let out = ctx
        .fm()
        .env("GIT_CEILING_DIRECTORIES", &ctx.root)
        .arg("diff")
        .output()
        .expect("run");
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains("is not inside a git repository"), "{err}");
    assert!(err.contains("fm diff OLD.lock"), "{err}");
}

fn fm_quoted() -> String {
    format!("'{}'", fm_bin().display())
}

#[test]
fn git_diff_through_the_textconv_driver_shows_the_summary() {
    let ctx = TestContext::new();
    repo_with_changed_lock(&ctx);
    std::fs::write(ctx.project.join(".gitattributes"), "fm.lock diff=fmlock\n").expect("write");
    git(
        &ctx,
        &ctx.project,
        &[
            "config",
            "diff.fmlock.textconv",
            &format!("{} diff --textconv", fm_quoted()),
        ],
    );
    let out = git(&ctx, &ctx.project, &["diff", "--no-color", "fm.lock"]);
    let s = stdout(&out);
    assert!(
        s.contains("-summarizer 1.4.2 from company"),
        "git diff did not go through fm:\n{s}"
    );
    assert!(s.contains("+summarizer 1.5.0 from company"), "{s}");
    assert!(
        s.contains(&format!(
            "+tampered 1.4.2 from company sha256 {} (1337 bytes)",
            "9".repeat(64)
        )),
        "{s}"
    );
    assert!(s.contains("+    summarizer -> tokenizer ^1"), "{s}");
}

#[test]
fn git_diff_through_the_command_driver_shows_the_report() {
    let ctx = TestContext::new();
    repo_with_changed_lock(&ctx);
    std::fs::write(ctx.project.join(".gitattributes"), "fm.lock diff=fmlock\n").expect("write");
    git(
        &ctx,
        &ctx.project,
        &["config", "diff.fmlock.command", &format!("{} diff", fm_quoted())],
    );
    let out = git(&ctx, &ctx.project, &["diff", "fm.lock"]);
    let s = stdout(&out);
    assert!(
        s.starts_with("a/fm.lock -> b/fm.lock\n"),
        "git diff did not go through fm:\n{s}"
    );
    assert!(s.contains("SAME VERSION, DIFFERENT SHA-256"), "{s}");
    assert!(s.contains("summarizer 1.4.2 -> 1.5.0"), "{s}");
    // A deleted lock: git passes /dev/null as the new file.
    std::fs::remove_file(ctx.project.join("fm.lock")).expect("rm");
    let deleted = stdout(&git(&ctx, &ctx.project, &["diff", "--", "fm.lock"]));
    assert!(deleted.contains("Removed: 6"), "{deleted}");
}

#[test]
fn the_driver_arity_is_checked() {
    let ctx = TestContext::new();
    write_pair(&ctx);
    let out = ctx.run(&["diff", "fm.lock", "old.lock", "x", "100644"]);
    assert_code(&out, 2);
    assert!(text(&out).1.contains("not 4"));
    let seven = ctx.run(&[
        "diff", "fm.lock", "old.lock", "abc", "100644", "new.lock", "def", "100644",
    ]);
    assert_code(&seven, 0);
    assert!(stdout(&seven).starts_with("a/fm.lock -> b/fm.lock"));
}

#[test]
fn textconv_shows_an_unreadable_lock_as_it_is() {
    let ctx = TestContext::new();
    let conflicted = "<<<<<<< ours\nversion = 1\n=======\nversion = 1\n>>>>>>> theirs\n";
    std::fs::write(ctx.project.join("fm.lock"), conflicted).expect("write");
    let out = ctx.run(&["diff", "--textconv", "fm.lock"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), conflicted);
}

// ---- completions ----------------------------------------------------------

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    let ctx = TestContext::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = ctx.run(&["completions", shell]);
        assert_code(&out, 0);
        let s = stdout(&out);
        for sub in ["diff", "outdated", "sync", "lock", "registry"] {
            assert!(s.contains(sub), "{shell} completions do not mention {sub}");
        }
        assert!(s.contains("exit-code"), "{shell} completions lack diff's flags");
    }
}
