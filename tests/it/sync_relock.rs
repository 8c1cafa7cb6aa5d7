//! `fm sync` modes that re-lock or check freshness, and `fm install`: these
//! go through the resolver (`crate::resolve`), so they pass once the
//! resolver is merged. Everything that needs no resolver is in `sync.rs`.

use crate::common::*;

fn manifest(ctx: &TestContext, reg: &DirRegistry, deps: &[(&str, &str)]) {
    let mut text = String::from("[project]\nname = \"app\"\n\n[dependencies]\n");
    for (n, r) in deps {
        text.push_str(&format!("{n} = \"{r}\"\n"));
    }
    text.push_str(&format!("\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n", reg.url()));
    ctx.write_manifest(&text);
}

fn installed(ctx: &TestContext, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(ctx.project.join(dir))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn sync_without_a_lock_locks_then_installs() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("b", "1.0.0", &[]);
    reg.publish("a", "1.0.0", &[("b", "^1")]);
    manifest(&ctx, &reg, &[("a", "^1")]);
    let out = ctx.run(&["sync"]);
    assert_code(&out, 0);
    let err = text(&out).1;
    assert!(err.contains("Added a 1.0.0"), "{err}");
    assert!(err.contains("Installed 2 packages"), "{err}");
    assert!(ctx.project.join("fm.lock").is_file());
    assert_eq!(installed(&ctx, ".fm/packages"), ["a", "b"]);
    assert_code(&ctx.run(&["verify"]), 0);

    // Fresh now: --locked installs without re-locking.
    let lock = ctx.read("fm.lock");
    assert_code(&ctx.run(&["sync", "--locked"]), 0);
    assert_eq!(ctx.read("fm.lock"), lock);
}

#[test]
fn sync_relocks_a_stale_lock_and_installs_the_change() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("a", "1.0.0", &[]);
    reg.publish("c", "2.0.0", &[]);
    manifest(&ctx, &reg, &[("a", "^1")]);
    assert_code(&ctx.run(&["sync"]), 0);
    manifest(&ctx, &reg, &[("c", "^2")]);
    let out = ctx.run(&["sync"]);
    assert_code(&out, 0);
    let err = text(&out).1;
    assert!(
        err.contains("Added c 2.0.0") && err.contains("Removed a 1.0.0"),
        "{err}"
    );
    assert_eq!(installed(&ctx, ".fm/packages"), ["c"]);
}

#[test]
fn locked_fails_on_a_stale_lock_naming_what_differs_and_installs_nothing() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("a", "1.0.0", &[]);
    reg.publish("newdep", "1.0.0", &[]);
    manifest(&ctx, &reg, &[("a", "^1")]);
    assert_code(&ctx.run(&["sync"]), 0);
    let lock = ctx.read("fm.lock");
    let installed_before = snapshot_tree(&ctx.project.join(".fm"));
    manifest(&ctx, &reg, &[("a", "^1"), ("newdep", "^1")]);
    let out = ctx.run(&["sync", "--locked"]);
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains("stale") && err.contains("newdep"), "{err}");
    // --frozen does not skip the (offline) freshness check --locked asks for.
    assert_code(&ctx.run(&["sync", "--locked", "--frozen"]), 1);
    assert_eq!(snapshot_tree(&ctx.project.join(".fm")), installed_before);
    assert_eq!(ctx.read("fm.lock"), lock);
}

#[test]
fn offline_sync_installs_a_fresh_lock_from_the_cache() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("a", "1.0.0", &[]);
    manifest(&ctx, &reg, &[("a", "^1")]);
    assert_code(&ctx.run(&["sync"]), 0);
    std::fs::remove_dir_all(ctx.project.join(".fm")).unwrap();
    let out = ctx.run(&["--offline", "sync"]);
    assert_code(&out, 0);
    assert_eq!(installed(&ctx, ".fm/packages"), ["a"]);
}

#[test]
fn install_adds_a_package_and_its_dependencies_without_a_manifest() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("b", "1.0.0", &[]);
    reg.publish("a", "1.0.0", &[("b", "^1")]);
    reg.publish("a", "2.0.0", &[("b", "^1")]);
    reg.publish("z", "0.1.0", &[]);
    std::fs::write(
        ctx.home.join("registries.json"),
        format!(
            r#"{{"registries":[{{"name":"main","url":"{}","priority":100,"enabled":true}}]}}"#,
            reg.url()
        ),
    )
    .unwrap();
    let out = ctx.run(&["install", "a", "--version", "^1", "--dir", "vendor"]);
    assert_code(&out, 0);
    assert_eq!(installed(&ctx, "vendor"), ["a", "b"]);
    assert!(
        std::fs::read_to_string(ctx.project.join("vendor/a/components/a.py"))
            .unwrap()
            .contains("1.0.0")
    );
    // A second install adds to the folder.
    assert_code(&ctx.run(&["install", "z", "--dir", "vendor"]), 0);
    assert_eq!(installed(&ctx, "vendor"), ["a", "b", "z"]);
    assert_code(&ctx.run(&["verify", "--dir", "vendor"]), 0);
    assert!(!ctx.project.join("fm.toml").exists() && !ctx.project.join("fm.lock").exists());
}
