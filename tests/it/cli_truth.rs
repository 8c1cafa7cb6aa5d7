//! The CLI does what it says (issue #13): FlowMason's meanings for
//! `fm install --version`, `fm search` over the project's registries and
//! every page, `fm registry add` re-adds that keep what was not given, a URL
//! that is not a registry named as such; no quiet lock changes (downgrades,
//! forced moves, yanked versions, what holds an upgrade back); a project and
//! a package that start right. Each test drives the real binary against real
//! directory registries or a real `fm registry serve`.

use std::io::{Read, Write};

use crate::common::*;

/// `fm registry add NAME URL` for a directory registry (no network probe).
fn add_registry(ctx: &TestContext, name: &str, url: &str, extra: &[&str]) {
    let mut args = vec!["registry", "add", name, url];
    args.extend_from_slice(extra);
    assert_code(&ctx.run(&args), 0);
}

/// The version of `name` installed in `dir` (package_source writes it into
/// the package's pipeline).
fn installed_version(dir: &std::path::Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(name).join("pipelines/main.pipeline.json")).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc["version"].as_str().map(str::to_owned)
}

// Regression: `--version 1.2.0` installed the newest ^1.2.0 (1.3.0), against
// FlowMason's documentation, and the output did not say which.
#[test]
fn install_version_means_exactly_that_version() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("dep-a", "1.0.0", &[]);
    reg.publish("dep-b", "1.0.0", &[]);
    reg.publish("my-package", "1.2.0", &[("dep-a", "^1"), ("dep-b", "^1")]);
    reg.publish("my-package", "1.3.0", &[("dep-a", "^1"), ("dep-b", "^1")]);
    add_registry(&ctx, "main", &reg.url(), &[]);

    let out = ctx.run(&["install", "my-package", "--version", "1.2.0", "--dir", "exact"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
     + dep-a 1.0.0
     + dep-b 1.0.0
     + my-package 1.2.0
       Installed my-package 1.2.0 (+2 dependencies)
    ");
    assert_eq!(
        installed_version(&ctx.project.join("exact"), "my-package").as_deref(),
        Some("1.2.0")
    );

    // An operator still means a range.
    let out = ctx.run(&["install", "my-package", "--version", ">=1.2, <2", "--dir", "range"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
     + dep-a 1.0.0
     + dep-b 1.0.0
     + my-package 1.3.0
       Installed my-package 1.3.0 (+2 dependencies)
    ");
    assert_eq!(
        installed_version(&ctx.project.join("range"), "my-package").as_deref(),
        Some("1.3.0")
    );
}

// Regression: a re-add without --priority reset a private registry's 10 to
// 100 (letting a public registry win its names) and said nothing about it.
#[test]
fn registry_re_add_keeps_what_was_not_given_and_says_what_changed() {
    let ctx = TestContext::new();
    let first = ctx.dir_registry("corp");
    let second = ctx.dir_registry("corp-moved");
    add_registry(&ctx, "corp", &first.url(), &["--priority", "10"]);

    let out = ctx.run(&["registry", "add", "corp", &first.url()]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @"   Unchanged registry corp (file://[ROOT]/registries/corp/, priority 10)");

    let out = ctx.run(&["registry", "add", "corp", &second.url()]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @"     Updated registry corp: url file://[ROOT]/registries/corp/ -> file://[ROOT]/registries/corp-moved/");

    let out = ctx.run(&["registry", "add", "corp", &second.url(), "--priority", "5"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @"     Updated registry corp: priority 10 -> 5");

    let out = ctx.run(&["registry", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert_eq!(json["registries"][0]["priority"], 5);
    assert_eq!(json["registries"][0]["url"], second.url());
}

/// A project over one directory registry `main`.
fn project(ctx: &TestContext, reg: &DirRegistry, deps: &str) {
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\n{deps}\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        reg.url()
    ));
}

// Regression: a move to a lower version was printed as "Updated".
#[test]
fn lock_says_downgraded_apart_from_updated() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("x", "1.5.0", &[]);
    reg.publish("x", "2.0.0", &[]);
    project(&ctx, &reg, "x = \">=1\"\n");
    assert_code(&ctx.run(&["lock"]), 0);
    project(&ctx, &reg, "x = \"<2\"\n");
    let out = ctx.run(&["lock"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
      Downgraded x 2.0.0 -> 1.5.0 (required by fm.toml: x <2)
          Locked 1 package
    ");
    let out = ctx.run(&["lock", "--upgrade", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert_eq!(json["changes"], serde_json::json!([]));
}

// Regression: `--upgrade-package a` moved b without saying why.
#[test]
fn upgrade_package_moves_others_only_when_it_must_and_says_why() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("a", "1.0.0", &[("b", "^1")]);
    reg.publish("b", "1.0.0", &[]);
    reg.publish("c", "1.0.0", &[]);
    project(&ctx, &reg, "a = \">=1\"\nc = \"^1\"\n");
    assert_code(&ctx.run(&["lock"]), 0);
    reg.publish("a", "2.0.0", &[("b", "^2")]);
    reg.publish("b", "1.1.0", &[]);
    reg.publish("b", "2.0.0", &[]);
    reg.publish("c", "1.1.0", &[]);
    let out = ctx.run(&["lock", "--upgrade-package", "a"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
         Updated a 1.0.0 -> 2.0.0
         Updated b 1.0.0 -> 2.0.0 (required by a 2.0.0: b ^2)
          Locked 3 packages
    ");
    let lock = ctx.read("fm.lock");
    assert!(lock.contains("name = \"c\"\nversion = \"1.0.0\""), "c stays: {lock}");
}

// Regression: a locked version yanked since was kept without a word.
#[test]
fn yanked_locked_versions_are_warned_about_by_lock_sync_and_outdated() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("util", "1.1.0", &[]);
    reg.publish("util", "1.2.0", &[]);
    project(&ctx, &reg, "util = \"=1.1.0\"\n");
    assert_code(&ctx.run(&["lock"]), 0);
    reg.yank("util", "1.1.0");
    let warning = "warning: util 1.1.0 is locked, but registry main has yanked it; move off it with `fm lock --upgrade-package util` (or pin another version in fm.toml)";
    for args in [vec!["lock"], vec!["sync"], vec!["sync", "--locked"], vec!["outdated"]] {
        let out = ctx.run(&args);
        assert_code(&out, 0);
        let err = text(&out).1;
        assert!(err.contains(warning), "{args:?}: {err}");
    }
    // --frozen reads no metadata, so it cannot know.
    let out = ctx.run(&["sync", "--frozen"]);
    assert_code(&out, 0);
    assert!(!text(&out).1.contains("yanked"));
    let out = ctx.run(&["outdated", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert_eq!(json["packages"][0]["yanked"], true);
}

/// app ^1 and other ^1; app 1.2.0 needs shared ^2, which other 1.0.0 (shared
/// ^1) shuts out; app 1.1.0 still takes shared ^1. Locked: app 1.0.0, other
/// 1.0.0, shared 1.0.0.
fn held_back_project() -> TestContext {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("shared", "1.0.0", &[]);
    reg.publish("app", "1.0.0", &[("shared", "^1")]);
    reg.publish("other", "1.0.0", &[("shared", "^1")]);
    project(&ctx, &reg, "app = \"^1\"\nother = \"^1\"\n");
    assert_code(&ctx.run(&["lock"]), 0);
    reg.publish("app", "1.1.0", &[("shared", "^1")]);
    reg.publish("app", "1.2.0", &[("shared", "^2")]);
    reg.publish("shared", "2.0.0", &[]);
    ctx
}

// Regression: `fm outdated` showed app 1.2.0 as "allowed" though no lock of
// this project can reach it while other 1.0.0 is locked, and had no
// --exit-code for CI.
#[test]
fn outdated_shows_what_the_lock_can_reach_and_what_holds_it_back() {
    let ctx = held_back_project();
    let out = ctx.run(&["outdated"]);
    assert_code(&out, 0);
    let (stdout, stderr) = text(&out);
    insta::assert_snapshot!(stdout, @r"
    Package  Locked  Allowed  Reachable  Newest  Registry
    app      1.0.0   1.2.0    1.1.0      1.2.0   main
    other    1.0.0   1.0.0    1.0.0      1.0.0   main
    shared   1.0.0   1.0.0    1.0.0      2.0.0   main
    ");
    insta::assert_snapshot!(ctx.filter(&stderr), @r"
    app 1.2.0 is held back by other 1.0.0 (shared ^1): fm lock can reach 1.1.0 (upgrade those with it: fm lock --upgrade-package app --upgrade-package NAME)
    app can be upgraded within the requirements: fm lock --upgrade-package NAME (or fm lock --upgrade)
    shared has newer versions beyond the requirements: raise them in fm.toml (or in the packages that depend on them)
    ");
    let out = ctx.run(&["outdated", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert_eq!(json["packages"][0]["reachable"], "1.1.0");
    assert_eq!(
        json["packages"][0]["held_back_by"],
        serde_json::json!([{"by": "other", "version": "1.0.0", "req": "shared ^1"}])
    );

    // What outdated says is reachable is what fm lock does.
    let out = ctx.run(&["outdated", "--exit-code"]);
    assert_code(&out, 1);
    let out = ctx.run(&["lock", "--upgrade-package", "app"]);
    assert_code(&out, 0);
    assert!(text(&out).1.contains("Updated app 1.0.0 -> 1.1.0"), "{}", text(&out).1);
    let out = ctx.run(&["outdated", "--exit-code"]);
    assert_code(&out, 0);
}

/// A directory registry whose archive of `name@version` has other bytes
/// than its index says (same size), as a tampered or broken registry has.
fn tamper(reg: &DirRegistry, name: &str, version: &str) {
    let path = reg.archive_path(name, version);
    let mut bytes = std::fs::read(&path).expect("archive");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("write archive");
}

// Regression: `fm install` (no lock at all) said "expected (fm.lock)" and
// suggested a re-lock, which cannot help when a registry contradicts itself.
#[test]
fn digest_mismatch_blames_a_registry_that_contradicts_itself() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("pkg", "1.0.0", &[]);
    add_registry(&ctx, "main", &reg.url(), &[]);
    tamper(&reg, "pkg", "1.0.0");
    let out = ctx.run(&["install", "pkg", "--dir", "vendor"]);
    assert_code(&out, 1);
    let err = ctx.filter(&text(&out).1);
    let err = regex::Regex::new("[0-9a-f]{64}").unwrap().replace_all(&err, "[SHA256]");
    insta::assert_snapshot!(err, @r"
    fm::install::registry_digest_mismatch

      x sha256 mismatch for pkg 1.0.0 from registry main
      |   expected (the registry's checksum):
      | [SHA256]
      |   actual (download):
      | [SHA256]
      help: registry main serves bytes for pkg 1.0.0 that disagree with its own checksum: the registry
            is broken or its archives were tampered with. Nothing was installed and the cache was not
            changed; re-locking cannot help. Tell the registry's operator, or install from another
            registry
    ");

    // A project whose lock still agrees with the registry's checksum: the
    // same diagnosis, not "re-lock".
    project(&ctx, &reg, "pkg = \"^1\"\n");
    let out = ctx.run(&["sync"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains("registry_digest_mismatch"), "{err}");
    assert!(!err.contains("fm lock"), "{err}");
    assert!(!ctx.project.join(".fm/packages/pkg").exists() && !ctx.project.join("vendor/pkg").exists());
    println!(
        "FIGURES digest-context: 2 mismatches where the registry contradicts its own checksum (fm install, fm sync): 2 blamed on the registry, 0 re-lock hints, 0 installs"
    );
}

// The lock-specific wording stays where it is true: the registry now
// publishes another digest than the one fm.lock recorded.
#[test]
fn digest_mismatch_against_an_old_lock_still_suggests_a_re_lock() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("pkg", "1.0.0", &[]);
    project(&ctx, &reg, "pkg = \"^1\"\n");
    assert_code(&ctx.run(&["lock"]), 0);
    // The registry is rebuilt with other bytes (and its index says so).
    std::fs::remove_dir_all(&reg.root).expect("rm registry");
    let again = ctx.dir_registry("main");
    let src = package_source(&ctx.root.join("other-src"), "pkg", "1.0.0", &[]);
    std::fs::write(src.join("components/extra.py"), "# changed\n").expect("write");
    let packed = pack_folder(&src);
    fm::registry::publish::publish(
        &fm::registry::storage::DirStorage::new(&again.root),
        &packed.bytes,
        None,
        &fm::archive::Limits::default(),
        None,
    )
    .expect("publish");
    let out = ctx.run(&["sync"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains("fm::install::digest_mismatch"), "{err}");
    assert!(err.contains("If the change is legitimate, re-lock"), "{err}");
    assert!(err.contains("--upgrade-package pkg"), "{err}");
    println!("FIGURES digest-context: 1 mismatch against an outdated lock: 1 re-lock hint");
}

// Regression: `fm init` left `.fm/` to be committed by the first `git add .`.
#[test]
fn init_makes_the_install_folder_ignored_and_sync_keeps_it() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("pkg", "1.0.0", &[]);
    assert_code(&ctx.run(&["init", "--name", "app"]), 0);
    assert_eq!(
        ctx.read(".fm/.gitignore"),
        "# Created by fm: everything in .fm/ is installed or fm's own state.\n*\n"
    );
    project(&ctx, &reg, "pkg = \"^1\"\n");
    assert_code(&ctx.run(&["sync"]), 0);
    assert_code(&ctx.run(&["verify"]), 0);
    assert_code(&ctx.run(&["sync"]), 0);
    assert!(ctx.project.join(".fm/packages/pkg").is_dir());
    assert!(ctx.project.join(".fm/.gitignore").is_file(), "sync leaves it alone");
    if std::process::Command::new("git").arg("--version").output().is_ok() {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .current_dir(&ctx.project)
                .output()
                .expect("git")
        };
        assert!(git(&["init", "-q"]).status.success());
        let status = git(&["status", "--porcelain", "--untracked-files=all"]);
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(!status.contains(".fm/"), "{status}");
        assert!(status.contains("fm.toml"), "{status}");
    }
}

// Regression: `fm init --package` did not exist (SPEC §6 lists it).
#[test]
fn init_package_scaffolds_a_folder_that_pack_accepts() {
    let ctx = TestContext::new();
    let dir = ctx.project.join("my-pkg");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let out = ctx
        .fm()
        .current_dir(&dir)
        .args(["init", "--package"])
        .output()
        .expect("run");
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @"     Created [ROOT]/project/my-pkg/fm.toml for package my-pkg, with components/my_pkg.py (build it with `fm pack`)");
    let out = ctx
        .fm()
        .current_dir(&dir)
        .args(["pack", "--json"])
        .output()
        .expect("run");
    assert_code(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert_eq!(json["name"], "my-pkg");
    assert_eq!(json["version"], "0.1.0");
    let bytes = std::fs::read(dir.join("my-pkg-0.1.0.fmpkg")).expect("archive");
    let manifest = fm::archive::read_manifest(&bytes).expect("manifest");
    assert_eq!(manifest.raw.components, ["components/my_pkg.py"]);
}

// Regression: a package depending on something no registry has was
// published without a word; every install of it then failed.
#[test]
fn publish_warns_about_dependencies_no_registry_has() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("real", "1.0.0", &[]);
    add_registry(&ctx, "main", &reg.url(), &["--default"]);
    let src = package_source(
        &ctx.root.join("src"),
        "tool",
        "1.0.0",
        &[("real", "^1"), ("ghost", "^1")],
    );
    let out = ctx.run(&["publish", src.to_str().expect("utf-8")]);
    assert_code(&out, 0);
    let err = ctx.filter(&text(&out).1);
    let err = regex::Regex::new("[0-9a-f]{64}").unwrap().replace_all(&err, "[SHA256]");
    insta::assert_snapshot!(err, @r"
       Published tool@1.0.0 to [ROOT]/registries/main/ (sha256 [SHA256])
    warning: tool depends on ghost ^1, which none of the configured registries (main) has: installing tool will fail until ghost is published
    ");
}

// Regression: inside a project, `fm search` searched the user's registries
// instead of the project's, and stopped at 100 results (total_count 100).
#[test]
fn search_in_a_project_uses_its_registries_in_order_and_every_page() {
    let ctx = TestContext::new();
    let served = ctx.dir_registry("served");
    for i in 0..150 {
        served.publish(&format!("widget-{i:03}"), "1.0.0", &[]);
    }
    let server = ctx.serve(&served.root, &[], &[]);
    let other = ctx.dir_registry("other");
    other.publish("widget-extra", "1.0.0", &[]);
    let elsewhere = ctx.dir_registry("elsewhere");
    elsewhere.publish("widget-elsewhere", "1.0.0", &[]);
    add_registry(&ctx, "elsewhere", &elsewhere.url(), &[]);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[[registries]]\nname = \"other\"\nurl = \"{}\"\npriority = 20\n\n\
         [[registries]]\nname = \"company\"\nurl = \"{}\"\npriority = 10\n",
        other.url(),
        server.url
    ));
    let out = ctx.run(&["search", "widget", "--json"]);
    assert_code(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert_eq!(json["total_count"], 151);
    assert_eq!(json["registries"], serde_json::json!(["company", "other"]));
    let packages = json["packages"].as_array().expect("packages");
    assert_eq!(packages.len(), 151);
    assert!(packages[..150].iter().all(|p| p["registry"] == "company"));
    assert_eq!(packages[150]["name"], "widget-extra");
    assert_eq!(packages[150]["registry"], "other");
    let out = ctx.run(&["search", "widget"]);
    assert_code(&out, 0);
    let stdout = text(&out).0;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 151);
    assert_eq!(lines[0], "widget-000 1.0.0    widget-000 for tests  (company)");
    assert_eq!(lines[150], "widget-extra 1.0.0  widget-extra for tests  (other)");
    println!(
        "FIGURES search-pages: 151 matches over 2 registries (150 served, 2 pages of 100); 151 shown, total_count 151"
    );
}

/// A loopback HTTP server answering every request with an HTML 404 page,
/// as a web server at a wrong path does.
fn html_404_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let body = "<html><body><h1>404 Not Found</h1></body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

// Regression: a URL that is not a registry was reported as "no registry has
// a package named x".
#[test]
fn a_url_that_is_not_a_registry_is_named_as_such() {
    let ctx = TestContext::new();
    let url = html_404_server();
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nx = \"^1\"\n\n[[registries]]\nname = \"web\"\nurl = \"{url}/wrong/path\"\n"
    ));
    let out = ctx.run(&["lock"]);
    assert_code(&out, 1);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
    fm::registry::http

      x registry web: http://127.0.0.1:[PORT]/wrong/path does not answer as an fm or FlowMason
      | registry: GET http://127.0.0.1:[PORT]/wrong/path/api/v1/registry/health returned 404 Not Found
      | (an HTML page)
      help: check the registry's URL (the server's base, without /api/v1/registry): `fm registry
            list`, or [[registries]] web in fm.toml
    ");
    // A real registry that lacks the package still says so.
    let empty = ctx.dir_registry("empty");
    let server = ctx.serve(&empty.root, &[], &[]);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nx = \"^1\"\n\n[[registries]]\nname = \"real\"\nurl = \"{}\"\n",
        server.url
    ));
    let out = ctx.run(&["lock"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains("fm::resolve::conflict"), "{err}");
    assert!(!err.contains("does not answer as"), "{err}");
}
