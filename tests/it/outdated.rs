//! `fm outdated` against directory registries where newer versions exist
//! inside and outside the requirements, with a hand-built fm.lock.

use crate::common::*;
use fm::lock::{LockedPackage, LockedRegistry, Lockfile};

fn locked(name: &str, version: &str, sha256: &str, deps: &[&str]) -> LockedPackage {
    LockedPackage {
        name: name.parse().unwrap(),
        version: version.parse().expect("version"),
        registry: "main".into(),
        sha256: sha256.parse().unwrap(),
        size: 1,
        dependencies: deps.iter().map(|d| d.parse().unwrap()).collect(),
    }
}

/// A project depending on `app ^1.0` and `solo 0.5` from registry `main`,
/// locked at app 1.0.0 (which needs util ^1.1), util 1.1.0 and solo 0.5.0,
/// while the registry has newer versions of app and util inside and outside
/// those requirements (and a yanked util 1.4.0).
fn project() -> TestContext {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    let app = reg.publish("app", "1.0.0", &[("util", "^1.1")]);
    reg.publish("app", "1.2.0", &[("util", "^1.1")]);
    reg.publish("app", "2.0.0", &[("util", "^2")]);
    let util = reg.publish("util", "1.1.0", &[]);
    reg.publish("util", "1.3.0", &[]);
    reg.publish("util", "1.4.0", &[]);
    reg.yank("util", "1.4.0");
    reg.publish("util", "2.0.0", &[]);
    reg.publish("util", "3.0.0-beta.1", &[]);
    let solo = reg.publish("solo", "0.5.0", &[]);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app-user\"\n\n[dependencies]\napp = \"^1.0\"\nsolo = \"0.5\"\n\n\
         [[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        reg.url()
    ));
    let lock = Lockfile {
        log: Default::default(),
        root: vec!["app ^1.0".into(), "solo ^0.5".into()],
        registries: vec![LockedRegistry {
            name: "main".into(),
            url: reg.url(),
            priority: 100,
            explicit: false,
        }],
        packages: vec![
            locked("app", "1.0.0", &app, &["util ^1.1"]),
            locked("solo", "0.5.0", &solo, &[]),
            locked("util", "1.1.0", &util, &[]),
        ],
    };
    lock.save(&ctx.project.join("fm.lock")).expect("save lock");
    ctx
}

#[test]
fn table_shows_locked_allowed_and_newest() {
    let ctx = project();
    let out = ctx.run(&["outdated"]);
    assert_code(&out, 0);
    let (stdout, stderr) = text(&out);
    insta::assert_snapshot!(stdout, @r"
    Package  Locked  Allowed  Reachable  Newest  Registry
    app      1.0.0   1.2.0    1.2.0      2.0.0   main
    solo     0.5.0   0.5.0    0.5.0      0.5.0   main
    util     1.1.0   1.3.0    1.3.0      2.0.0   main
    ");
    insta::assert_snapshot!(ctx.filter(&stderr), @r"
    app, util can be upgraded within the requirements: fm lock --upgrade-package NAME (or fm lock --upgrade)
    app, util have newer versions beyond the requirements: raise them in fm.toml (or in the packages that depend on them)
    ");
}

#[test]
fn json_names_who_requires_what() {
    let ctx = project();
    let out = ctx.run(&["outdated", "--json"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).expect("stdout is JSON only");
    assert_eq!(v["version"], 1);
    let util = &v["packages"][2];
    assert_eq!(util["name"], "util");
    assert_eq!(util["locked"], "1.1.0");
    assert_eq!(util["allowed"], "1.3.0", "1.4.0 is yanked");
    assert_eq!(util["newest"], "2.0.0", "pre-releases are not offered");
    assert_eq!(util["requirements"], serde_json::json!([{"by": "app", "req": "^1.1"}]));
    assert_eq!(
        v["packages"][0]["requirements"],
        serde_json::json!([{"by": null, "req": "^1.0"}])
    );
}

#[test]
fn a_package_the_registry_no_longer_has_shows_dashes() {
    let ctx = project();
    let mut lock = Lockfile::load(&ctx.project.join("fm.lock"))
        .expect("load")
        .expect("lock");
    lock.packages.push(locked("vanished", "0.1.0", &"0".repeat(64), &[]));
    lock.save(&ctx.project.join("fm.lock")).expect("save");
    let out = ctx.run(&["outdated"]);
    assert_code(&out, 0);
    assert!(
        text(&out)
            .0
            .contains("vanished  0.1.0   -        -          -       main"),
        "{}",
        text(&out).0
    );
}

#[test]
fn without_a_lock_it_says_to_lock_first() {
    let ctx = TestContext::new();
    ctx.write_manifest("[project]\nname = \"app\"\n");
    let out = ctx.run(&["outdated"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains("fm.lock does not exist"), "{err}");
    assert!(err.contains("run `fm lock` first"), "{err}");
}
