//! A lock committed with a project stays fresh in every checkout of it:
//! registries given as relative paths in fm.toml are recorded as written.

use crate::common::*;

#[test]
fn relative_registry_paths_keep_the_lock_fresh_in_another_checkout() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("a", "1.0.0", &[("b", "^1")]);
    reg.publish("b", "1.1.0", &[]);
    ctx.write_manifest(
        "[project]\nname = \"p\"\n\n[dependencies]\na = \"^1\"\n\n[[registries]]\nname = \"main\"\nurl = \"../registries/main\"\n",
    );
    assert_code(&ctx.run(&["lock"]), 0);
    let lock = ctx.read("fm.lock");
    assert!(lock.contains("url = \"../registries/main\"\n"), "{lock}");
    assert!(
        !lock.contains(ctx.root.to_str().unwrap()),
        "absolute path leaked into fm.lock:\n{lock}"
    );

    // Another checkout: the same tree somewhere else.
    let other = TestContext::new();
    copy_tree(&ctx.root.join("registries"), &other.root.join("registries"));
    std::fs::copy(ctx.project.join("fm.toml"), other.project.join("fm.toml")).unwrap();
    std::fs::copy(ctx.project.join("fm.lock"), other.project.join("fm.lock")).unwrap();
    let out = other.run(&["sync", "--locked"]);
    assert_code(&out, 0);
    assert_eq!(other.read("fm.lock"), lock, "sync --locked must not rewrite the lock");
    assert!(other.project.join(".fm/packages/b").is_dir());
    assert_code(&other.run(&["lock", "--check"]), 0);
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
