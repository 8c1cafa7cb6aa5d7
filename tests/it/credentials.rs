//! Credentials bound to origins, and fm.lock bound to the project (issue
//! #12 point 2, #13): a real `fm registry serve --require-auth` (A) and a
//! recording TCP listener of our own (B, the attacker's host) on loopback.
//! B must never see a token, and a lock pointing a registry at B must be
//! refused before any connection to it. Then registry moves (dependency
//! confusion) refused by `fm lock` and `fm sync`, and `fm diff`'s alarm.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::common::*;

const TOKEN: &str = "company-SECRET-token-4f1e";

/// What B saw: one entry a connection, `(request line, Authorization)`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// The attacker's host: accepts anything, records the request line and
/// the `Authorization` header, answers 404.
struct Recorder {
    url: String,
    seen: Seen,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen: Seen = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut auth = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.trim_end().split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        auth = Some(v.trim().to_owned());
                    }
                }
                log.lock().expect("log").push((first.trim_end().to_owned(), auth));
                let body = r#"{"error":{"code":"not_found","message":"not here"}}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Recorder { url, seen }
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().expect("seen").clone()
    }

    /// Asserts that no request B saw carried a token.
    #[track_caller]
    fn assert_no_token(&self) {
        for (line, auth) in self.seen() {
            assert_eq!(auth, None, "B received a credential with {line}");
        }
    }
}

/// Registry A: `fm registry serve --token TOKEN --require-auth` over a
/// storage holding `a@1.0.0`.
fn server_a(ctx: &TestContext) -> Server {
    let storage = ctx.dir_registry("a-storage");
    storage.publish("a", "1.0.0", &[]);
    ctx.serve(&storage.root, &["--token", TOKEN, "--require-auth"], &[])
}

/// `registries.json` with these `(name, url, token, priority)` entries.
fn user_config(ctx: &TestContext, entries: &[(&str, &str, Option<&str>, i64)]) {
    let registries: Vec<serde_json::Value> = entries
        .iter()
        .map(|(name, url, token, priority)| {
            serde_json::json!({"name": name, "url": url, "auth_token": token, "priority": priority, "enabled": true})
        })
        .collect();
    std::fs::write(
        ctx.home.join("registries.json"),
        serde_json::json!({ "registries": registries }).to_string(),
    )
    .expect("write registries.json");
}

/// fm.toml depending on `a ^1`, with `[[registries]]` `(name, url)`.
fn manifest(ctx: &TestContext, registries: &[(&str, &str)]) {
    let mut text = String::from("[project]\nname = \"app\"\n\n[dependencies]\na = \"^1\"\n");
    for (name, url) in registries {
        text.push_str(&format!("\n[[registries]]\nname = \"{name}\"\nurl = \"{url}\"\n"));
    }
    ctx.write_manifest(&text);
}

/// What a pull request does: points fm.lock's registry `name` at `url`.
fn repoint_lock(ctx: &TestContext, from: &str, to: &str) {
    let lock = ctx.read("fm.lock");
    assert!(lock.contains(from), "{lock}");
    std::fs::write(ctx.project.join("fm.lock"), lock.replace(from, to)).expect("write fm.lock");
}

/// Forgets what was installed and cached, so a sync would have to download.
fn forget_installed(ctx: &TestContext) {
    let _ = std::fs::remove_dir_all(ctx.project.join(".fm"));
    let _ = std::fs::remove_dir_all(&ctx.cache);
}

fn slash(url: &str) -> String {
    format!("{url}/")
}

/// How it broke: a pull request changed fm.lock's `[[registry]] url` for
/// `company` to B, and `fm sync --frozen` sent `Authorization: Bearer
/// SECRET` (the user config's token for company at A) to B.
#[test]
fn a_lock_pointing_a_registry_elsewhere_is_refused_before_any_request() {
    let ctx = TestContext::new();
    let a = server_a(&ctx);
    let b = Recorder::start();
    user_config(&ctx, &[("company", &a.url, Some(TOKEN), 100)]);
    manifest(&ctx, &[("company", &a.url)]);
    // The token reaches A (which requires it for reads).
    assert_code(&ctx.run(&["sync"]), 0);
    repoint_lock(&ctx, &slash(&a.url), &slash(&b.url));
    forget_installed(&ctx);
    let lock = ctx.read("fm.lock");
    let mut refused = 0;
    for mode in [
        &["sync", "--frozen"][..],
        &["sync", "--locked"],
        &["sync"],
        &["sync", "--frozen", "--offline"],
    ] {
        let out = ctx.run(mode);
        assert_code(&out, 1);
        let err = text(&out).1;
        assert!(
            err.contains(&slash(&a.url)) && err.contains(&slash(&b.url)),
            "{mode:?}:\n{err}"
        );
        refused += 1;
    }
    assert_eq!(b.seen().len(), 0, "B saw connections: {:?}", b.seen());
    assert!(!ctx.project.join(".fm").exists());
    assert_eq!(ctx.read("fm.lock"), lock, "fm.lock is left for the user to judge");
    let out = ctx.run(&["sync", "--frozen"]);
    let err = text(&out).1.replace(&b.url, "[B]").replace(&a.url, "[A]");
    insta::assert_snapshot!(ctx.filter(&err), @r"
    fm::lock::registry_url_changed

      x fm.lock's registry company is at [B]/, but [ROOT]/project/
      | fm.toml declares company at [A]/: refusing fm.lock before any request
      | (nothing was sent to either URL)
      help: if [A]/ is the right place, re-lock against it: `fm lock --upgrade-
            package a`, and review the change with `fm diff`; if fm.lock was changed by someone else,
            restore it (`git checkout HEAD -- fm.lock`)
    ");
    eprintln!("FIGURES credentials: lock repointed to B: {refused} modes refused, 0 connections to B");
}

/// How it broke: fm.toml naming `company` at B got the user config's token
/// for `company` at A.
#[test]
fn a_manifest_naming_the_registry_elsewhere_gets_no_user_config_token() {
    let ctx = TestContext::new();
    let a = server_a(&ctx);
    let b = Recorder::start();
    user_config(&ctx, &[("company", &a.url, Some(TOKEN), 100)]);
    manifest(&ctx, &[("company", &b.url)]);
    let out = ctx.run(&["lock"]);
    assert_code(&out, 1);
    assert!(!b.seen().is_empty(), "fm.toml's URL is contacted");
    b.assert_no_token();
    // The same user config still authenticates at A.
    manifest(&ctx, &[("company", &a.url)]);
    assert_code(&ctx.run(&["sync"]), 0);
    eprintln!(
        "FIGURES credentials: fm.toml naming company at B: {} request(s) to B, 0 with a token",
        b.seen().len()
    );
}

/// How it broke: `FLOWMASON_REGISTRY_TOKEN` was sent to any URL a manifest
/// named.
#[test]
fn flowmason_registry_token_goes_only_to_registries_of_the_user_config() {
    let ctx = TestContext::new();
    let a = server_a(&ctx);
    let b = Recorder::start();
    manifest(&ctx, &[("public", &b.url)]);
    let out = ctx
        .fm()
        .arg("lock")
        .env("FLOWMASON_REGISTRY_TOKEN", TOKEN)
        .output()
        .expect("run");
    assert_code(&out, 1);
    assert!(!b.seen().is_empty());
    b.assert_no_token();
    // A registry of the user config gets it (A requires it).
    user_config(&ctx, &[("company", &a.url, None, 100)]);
    manifest(&ctx, &[]);
    let out = ctx
        .fm()
        .arg("sync")
        .env("FLOWMASON_REGISTRY_TOKEN", TOKEN)
        .output()
        .expect("run");
    assert_code(&out, 0);
    // fm.toml naming the user config's registry by its URL gets it too.
    manifest(&ctx, &[("corp", &a.url)]);
    forget_installed(&ctx);
    let out = ctx
        .fm()
        .arg("sync")
        .env("FLOWMASON_REGISTRY_TOKEN", TOKEN)
        .output()
        .expect("run");
    assert_code(&out, 0);
}

/// `FM_TOKEN_COMPANY` goes to the URL fm.toml gives `company`, and nowhere
/// else: not to another registry, not to a URL fm.lock gives company.
#[test]
fn fm_token_name_goes_to_the_manifest_url_only() {
    let ctx = TestContext::new();
    let a = server_a(&ctx);
    let b = Recorder::start();
    // B is also a registry of the project, searched first for `a`.
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = {{ version = \"^1\", registry = \"company\" }}\nb = \"^1\"\n\n\
         [[registries]]\nname = \"company\"\nurl = \"{}\"\n\n[[registries]]\nname = \"other\"\nurl = \"{}\"\npriority = 1\n",
        a.url, b.url
    ));
    let out = ctx
        .fm()
        .arg("lock")
        .env("FM_TOKEN_COMPANY", TOKEN)
        .output()
        .expect("run");
    assert_code(&out, 1); // `b` is in neither registry
    assert!(!b.seen().is_empty());
    b.assert_no_token();
    manifest(&ctx, &[("company", &a.url)]);
    let sync = |args: &[&str]| {
        ctx.fm()
            .args(args)
            .env("FM_TOKEN_COMPANY", TOKEN)
            .output()
            .expect("run")
    };
    assert_code(&sync(&["sync"]), 0);
    let before = b.seen().len();
    repoint_lock(&ctx, &slash(&a.url), &slash(&b.url));
    forget_installed(&ctx);
    for mode in [&["sync", "--frozen"][..], &["sync"]] {
        let out = sync(mode);
        assert_code(&out, 1);
        assert!(text(&out).1.contains(&slash(&b.url)), "{}", text(&out).1);
    }
    assert_eq!(b.seen().len(), before, "fm.lock's URL for company was contacted");
}

/// A lock used as it is names no registry the project does not declare:
/// otherwise fm.lock alone would choose where fm connects.
#[test]
fn a_frozen_lock_naming_an_undeclared_registry_is_refused() {
    let ctx = TestContext::new();
    let main = ctx.dir_registry("main");
    let sha = main.publish("a", "1.0.0", &[]);
    let b = Recorder::start();
    manifest(&ctx, &[("main", &main.url())]);
    let mut lock = write_lock(
        &ctx,
        "main",
        &main,
        &[LockEntry {
            name: "a",
            version: "1.0.0",
            sha256: &sha,
            deps: &[],
        }],
    );
    lock.registries[0].name = "evil".into();
    lock.registries[0].url = slash(&b.url);
    lock.packages[0].registry = "evil".into();
    lock.save(&ctx.project.join("fm.lock")).expect("save");
    let out = ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(
        err.contains("evil") && err.contains(&slash(&b.url)) && err.contains("does not declare"),
        "{err}"
    );
    assert!(b.seen().is_empty(), "{:?}", b.seen());
    assert!(!ctx.project.join(".fm").exists());
}

/// Two directory registries in the user config, `company` (searched first)
/// and `public`, both with `a`; fm.toml names none.
fn two_registries(ctx: &TestContext) -> (DirRegistry, DirRegistry) {
    let company = ctx.dir_registry("company");
    company.publish("a", "1.0.0", &[]);
    let public = ctx.dir_registry("public");
    public.publish("a", "1.0.0", &[]);
    public.publish("a", "1.9.0", &[]);
    user_config(
        ctx,
        &[
            ("company", &company.url(), None, 10),
            ("public", &public.url(), None, 100),
        ],
    );
    manifest(ctx, &[]);
    (company, public)
}

/// How it broke: with `company` removed from the user config, `fm lock`
/// and `fm sync` took `a` from `public` and reported success.
#[test]
fn relocking_refuses_to_move_a_package_to_another_registry() {
    let ctx = TestContext::new();
    let (company, public) = two_registries(&ctx);
    assert_code(&ctx.run(&["lock"]), 0);
    assert!(ctx.read("fm.lock").contains("registry = \"company\""));
    user_config(&ctx, &[("public", &public.url(), None, 100)]);
    let lock = ctx.read("fm.lock");
    for cmd in [&["lock"][..], &["sync"], &["sync", "--locked"]] {
        let out = ctx.run(cmd);
        assert_code(&out, 1);
        let err = text(&out).1;
        assert!(
            err.contains("company") && err.contains(&company.url()),
            "{cmd:?}:\n{err}"
        );
        if cmd != ["sync", "--locked"] {
            assert!(err.contains("public") && err.contains(&public.url()), "{cmd:?}:\n{err}");
            assert!(err.contains("fm lock --upgrade-package a"), "{cmd:?}:\n{err}");
            assert!(!err.contains("Updated"), "{err}");
        }
    }
    assert_eq!(ctx.read("fm.lock"), lock);
    assert!(!ctx.project.join(".fm").exists());
    let out = ctx.run(&["lock"]);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
    fm::lock::registry_moved

      x re-locking would move 1 locked package to another registry; fm.lock was not changed:
      |   - a: fm.lock has it from company (file://[ROOT]/registries/company/), re-
      | locking would take it from public (file://[ROOT]/registries/public/)
      help: a package that changes registry is how dependency confusion starts. If the move is
            intended, accept it: `fm lock --upgrade-package a`. If not, restore the registry it came
            from (its [[registries]] entry in fm.toml, or `fm registry add NAME URL`)
    ");
    // `--upgrade` alone does not accept a move; `--upgrade-package a` does.
    assert_code(&ctx.run(&["lock", "--upgrade"]), 1);
    let out = ctx.run(&["lock", "--upgrade-package", "a"]);
    assert_code(&out, 0);
    let new = ctx.read("fm.lock");
    assert!(new.contains("registry = \"public\"") && new.contains("1.9.0"), "{new}");
    assert_code(&ctx.run(&["sync", "--locked"]), 0);
    eprintln!(
        "FIGURES credentials: registry move refused by fm lock, fm sync, fm sync --locked, fm lock --upgrade (4), \
         accepted by fm lock --upgrade-package a; fm.lock unchanged until then"
    );
}

/// A teammate's user config has `company` at another folder: their fm.lock
/// names it there. `fm sync` refuses it naming both; `fm lock` refuses to
/// move `a` until `--upgrade-package a`.
#[test]
fn a_teammates_lock_with_another_url_for_a_registry_is_not_relocked_silently() {
    let ctx = TestContext::new();
    let (company, public) = two_registries(&ctx);
    let theirs = ctx.dir_registry("theirs");
    theirs.publish("a", "1.0.0", &[]);
    user_config(
        &ctx,
        &[
            ("company", &theirs.url(), None, 10),
            ("public", &public.url(), None, 100),
        ],
    );
    assert_code(&ctx.run(&["lock"]), 0);
    // Back to my config.
    user_config(
        &ctx,
        &[
            ("company", &company.url(), None, 10),
            ("public", &public.url(), None, 100),
        ],
    );
    let out = ctx.run(&["sync"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains(&company.url()) && err.contains(&theirs.url()), "{err}");
    let out = ctx.run(&["lock"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(
        err.contains(&theirs.url()) && err.contains("fm lock --upgrade-package a"),
        "{err}"
    );
    assert_code(&ctx.run(&["lock", "--upgrade-package", "a"]), 0);
    assert_code(&ctx.run(&["sync"]), 0);
}

fn url_change_pair(ctx: &TestContext) {
    let reg = |url: &str| fm::lock::LockedRegistry {
        name: "company".into(),
        url: url.into(),
        priority: 100,
        explicit: false,
    };
    let old = fm::lock::Lockfile {
        log: Default::default(),
        root: vec!["a ^1".into()],
        registries: vec![reg("https://registry.company.com/")],
        packages: vec![fm::lock::LockedPackage {
            name: "a".parse().unwrap(),
            version: semver::Version::new(1, 0, 0),
            registry: "company".into(),
            sha256: "a".repeat(64).parse().unwrap(),
            size: 1000,
            dependencies: vec![],
        }],
    };
    let mut new = old.clone();
    new.registries[0] = reg("https://registry.evil.example/");
    std::fs::write(ctx.project.join("old.lock"), old.render()).expect("write");
    std::fs::write(ctx.project.join("new.lock"), new.render()).expect("write");
}

/// How it broke: a lock whose only change is company's URL showed as a
/// "registry changed" line among the others, not as an alarm at the top.
#[test]
fn diff_raises_an_alarm_for_a_registry_url_change() {
    let ctx = TestContext::new();
    url_change_pair(&ctx);
    let out = ctx.run(&["diff", "old.lock", "new.lock", "--exit-code"]);
    assert_code(&out, 1);
    insta::assert_snapshot!(text(&out).0, @r"
    old.lock -> new.lock

    !!! REGISTRY URL CHANGED: 1 registry !!!
        A registry's URL changed: every package from it would be fetched from the new URL (and fm sync refuses the lock until fm.toml declares it). Do not accept this lock until you know why.
      ! company
          was https://registry.company.com/
          now https://registry.evil.example/

    Registry changed: 1 (check the new source)
      ! a 1.0.0: company <https://registry.company.com/> -> company <https://registry.evil.example/>

    Summary: 1 registry URL changed, 1 registry changed
    ");
    let out = ctx.run(&["diff", "old.lock", "new.lock", "--format", "markdown"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(text(&out).0, @r"
    <!-- fm-diff -->
    #### fm.lock: 1 registry URL changed, 1 registry changed

    > [!CAUTION]
    > **Registry URL changed: `company`.** A registry's URL changed: every package from it would be fetched from the new URL (and fm sync refuses the lock until fm.toml declares it). Do not accept this lock until you know why.

    | Change | Package | Old | New |
    |---|---|---|---|
    | :rotating_light: **registry URL changed** | `company` | `https://registry.company.com/` | `https://registry.evil.example/` |
    | :warning: **registry changed** | `a` | company `https://registry.company.com/` | company `https://registry.evil.example/` |

    <sub>`fm diff` from `old.lock` to `new.lock`</sub>
    ");
    let out = ctx.run(&["diff", "old.lock", "new.lock", "--format", "json"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(text(&out).0, @r#"
    {
      "version": 1,
      "old": "old.lock",
      "new": "new.lock",
      "changed": true,
      "digest_changed": [],
      "registry_url_changed": [
        {
          "name": "company",
          "old_url": "https://registry.company.com/",
          "new_url": "https://registry.evil.example/"
        }
      ],
      "log_key_changed": [],
      "added": [],
      "removed": [],
      "upgraded": [],
      "downgraded": [],
      "registry_changed": [
        {
          "name": "a",
          "version": "1.0.0",
          "from": {
            "name": "company",
            "url": "https://registry.company.com/"
          },
          "to": {
            "name": "company",
            "url": "https://registry.evil.example/"
          }
        }
      ],
      "edges_added": [],
      "edges_removed": [],
      "requirements_added": [],
      "requirements_removed": []
    }
    "#);
}
