//! `fm lock`, `fm tree`, `fm why` and the re-locking `fm add`/`fm remove`,
//! driven through the real binary against directory registries.

mod common;

use common::{DirRegistry, TestContext, assert_code, text};

type Pkgs<'a> = &'a [(&'a str, &'a str, &'a [(&'a str, &'a str)])];

/// A registry "main" holding `pkgs`, and a project depending on `deps`.
fn setup(ctx: &TestContext, pkgs: Pkgs<'_>, deps: &[(&str, &str)]) -> DirRegistry {
    let reg = ctx.dir_registry("main");
    for (n, v, d) in pkgs {
        reg.publish(n, v, d);
    }
    write_project(ctx, &reg, deps);
    reg
}

fn write_project(ctx: &TestContext, reg: &DirRegistry, deps: &[(&str, &str)]) {
    let mut m = String::from("[project]\nname = \"app\"\n\n[dependencies]\n");
    for (n, r) in deps {
        m.push_str(&format!("{n} = \"{r}\"\n"));
    }
    m.push_str(&format!("\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n", reg.url()));
    ctx.write_manifest(&m);
}

/// The locked `name version` pairs.
fn locked(ctx: &TestContext) -> String {
    let lock = ctx.read("fm.lock");
    let mut out = Vec::new();
    let mut name = String::new();
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = n.trim_matches('"').to_owned();
        } else if let Some(v) = line.strip_prefix("version = \"") {
            out.push(format!("{name} {}", v.trim_end_matches('"')));
        }
    }
    out.join("\n")
}

/// `fm lock`'s stderr, filtered.
fn lock_err(ctx: &TestContext, code: i32) -> String {
    let out = ctx.run(&["lock"]);
    assert_code(&out, code);
    trim(&ctx.filter(&text(&out).1))
}

/// Without trailing spaces (miette pads empty lines).
fn trim(s: &str) -> String {
    s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

#[test]
fn no_conflict() {
    let ctx = TestContext::new();
    setup(
        &ctx,
        &[
            ("foo", "1.0.0", &[("bar", "^1.0.0")]),
            ("bar", "1.0.0", &[]),
            ("bar", "2.0.0", &[]),
        ],
        &[("foo", "^1.0.0")],
    );
    insta::assert_snapshot!(lock_err(&ctx, 0), @r"
           Added bar 1.0.0
           Added foo 1.0.0
          Locked 2 packages
    ");
    insta::assert_snapshot!(locked(&ctx), @r"
    bar 1.0.0
    foo 1.0.0
    ");
}

#[test]
fn avoiding_conflict_during_decision_making() {
    let ctx = TestContext::new();
    setup(
        &ctx,
        &[
            ("foo", "1.0.0", &[]),
            ("foo", "1.1.0", &[("bar", "^2.0.0")]),
            ("bar", "1.0.0", &[]),
            ("bar", "1.1.0", &[]),
            ("bar", "2.0.0", &[]),
        ],
        &[("foo", "^1.0.0"), ("bar", "^1.0.0")],
    );
    lock_err(&ctx, 0);
    insta::assert_snapshot!(locked(&ctx), @r"
    bar 1.1.0
    foo 1.0.0
    ");
}

#[test]
fn conflict_resolution() {
    let ctx = TestContext::new();
    setup(
        &ctx,
        &[
            ("foo", "1.0.0", &[]),
            ("foo", "2.0.0", &[("bar", "^1.0.0")]),
            ("bar", "1.0.0", &[("foo", "^1.0.0")]),
        ],
        &[("foo", ">=1.0.0")],
    );
    lock_err(&ctx, 0);
    insta::assert_snapshot!(locked(&ctx), @"foo 1.0.0");
}

#[test]
fn conflict_resolution_with_a_partial_satisfier() {
    let ctx = TestContext::new();
    setup(
        &ctx,
        &[
            ("foo", "1.0.0", &[]),
            ("foo", "1.1.0", &[("left", "^1.0.0"), ("right", "^1.0.0")]),
            ("left", "1.0.0", &[("shared", ">=1.0.0")]),
            ("right", "1.0.0", &[("shared", "<2.0.0")]),
            ("shared", "2.0.0", &[]),
            ("shared", "1.0.0", &[("target", "^1.0.0")]),
            ("target", "2.0.0", &[]),
            ("target", "1.0.0", &[]),
        ],
        &[("foo", "^1.0.0"), ("target", "^2.0.0")],
    );
    lock_err(&ctx, 0);
    insta::assert_snapshot!(locked(&ctx), @r"
    foo 1.0.0
    target 2.0.0
    ");
}

#[test]
fn linear_error_reporting() {
    let ctx = TestContext::new();
    setup(
        &ctx,
        &[
            ("foo", "1.0.0", &[("bar", "^2.0.0")]),
            ("bar", "2.0.0", &[("baz", "^3.0.0")]),
            ("baz", "1.0.0", &[]),
            ("baz", "3.0.0", &[]),
        ],
        &[("foo", "^1.0.0"), ("baz", "^1.0.0")],
    );
    insta::assert_snapshot!(lock_err(&ctx, 1), @r"
    fm::resolve::conflict

      x cannot resolve the dependencies
      |
      | Because bar ^2.0.0 depends on baz ^3.0.0 and foo 1.0.0 depends on bar ^2.0.0, foo 1.0.0
      | depends on baz ^3.0.0.
      | And because the project depends on baz ^1.0.0 and foo ^1.0.0, the project's requirements
      | cannot all be met.
      help: change one of these requirements in fm.toml (or ask for a release of the package that
            holds the other back), then run `fm lock` again
    ");
    assert!(!ctx.project.join("fm.lock").exists(), "a failed lock writes nothing");
}

#[test]
fn branching_error_reporting() {
    let ctx = TestContext::new();
    setup(
        &ctx,
        &[
            ("foo", "1.0.0", &[("a", "^1.0.0"), ("b", "^1.0.0")]),
            ("foo", "1.1.0", &[("x", "^1.0.0"), ("y", "^1.0.0")]),
            ("a", "1.0.0", &[("b", "^2.0.0")]),
            ("b", "1.0.0", &[]),
            ("b", "2.0.0", &[]),
            ("x", "1.0.0", &[("y", "^2.0.0")]),
            ("y", "1.0.0", &[]),
            ("y", "2.0.0", &[]),
        ],
        &[("foo", "^1.0.0")],
    );
    insta::assert_snapshot!(lock_err(&ctx, 1), @r"
    fm::resolve::conflict

      x cannot resolve the dependencies
      |
      | Because a ^1.0.0 depends on b ^2.0.0 and foo 1.0.0 depends on a ^1.0.0, foo 1.0.0 depends on b
      | ^2.0.0.
      | And because foo 1.0.0 depends on b ^1.0.0, foo 1.0.0 cannot be used. (1)
      |
      | Because x ^1.0.0 depends on y ^2.0.0 and foo 1.1.0 depends on x ^1.0.0, foo 1.1.0 depends on y
      | ^2.0.0.
      | And because foo 1.1.0 depends on y ^1.0.0, foo 1.1.0 cannot be used.
      | And because foo 1.0.0 cannot be used (1), foo ^1.0.0 cannot be used.
      | And because the project depends on foo ^1.0.0, the project's requirements cannot all be met.
      help: change one of these requirements in fm.toml (or ask for a release of the package that
            holds the other back), then run `fm lock` again
    ");
}
