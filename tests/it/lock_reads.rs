//! What `fm lock` reads of a registry, and when: a document read ahead of
//! the solver, a version record parsed only when its version is tried, the
//! yanked warning from what the solver read. Split from `tests/it/lock.rs`.

use super::lock::{lock_err, locked, setup, write_project};
use crate::common::{TestContext, assert_code, text};

#[test]
fn a_broken_document_read_ahead_fails_only_a_lock_that_needs_it() {
    let ctx = TestContext::new();
    let reg = setup(
        &ctx,
        &[
            ("unrelated", "1.0.0", &[]),
            ("needed", "1.0.0", &[]),
            ("top", "1.0.0", &[("needed", "^1")]),
            ("top", "2.0.0", &[("unrelated", "^1")]),
        ],
        &[("top", "^1")],
    );
    std::fs::write(reg.root.join("index/unrelated.json"), "{\"name\": \"unrelated\", oops").unwrap();
    let out = ctx.run(&["lock"]);
    assert_code(&out, 0);
    let got = locked(&ctx);
    assert!(got.contains("needed 1.0.0") && got.contains("top 1.0.0"), "{got}");
    assert!(!got.contains("unrelated"), "{got}");

    std::fs::remove_file(ctx.project.join("fm.lock")).unwrap();
    std::fs::write(reg.root.join("index/needed.json"), "{\"name\": \"needed\", oops").unwrap();
    let err = lock_err(&ctx, 1);
    assert!(!err.contains("unrelated"), "{err}");
    insta::assert_snapshot!(err, @r"
    fm::registry::corrupt

      x registry main served an invalid document for needed: [ROOT]/registries/main/
      | index/needed.json: key must be a string at line 1 column 20
    ");
    assert!(!ctx.project.join("fm.lock").exists(), "a failed lock writes nothing");
    eprintln!(
        "FIGURES read-ahead: 1 broken document read ahead, never needed: locked; 1 broken document needed: refused with its message, 0 mentions of the other"
    );
}

// fm lock parsed every field of every version record of every document the
// solver touched; now a record is read (and checked) only when the solver
// tries that version: a bad record of a version never tried no longer
// refuses the whole package, and one that is tried still does.
#[test]
fn a_bad_record_is_refused_only_when_its_version_is_tried() {
    let ctx = TestContext::new();
    let reg = setup(
        &ctx,
        &[("a", "1.0.0", &[]), ("a", "2.0.0", &[]), ("a", "3.0.0", &[])],
        &[("a", "^2")],
    );
    let index = reg.root.join("index/a.json");
    let mut doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    let at = |doc: &serde_json::Value, v: &str| {
        doc["versions"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r["version"] == v)
            .unwrap()
    };
    // 1.0.0 and 3.0.0 are never tried for ^2.
    for v in ["1.0.0", "3.0.0"] {
        let i = at(&doc, v);
        doc["versions"][i]["checksum"] = "not-a-digest".into();
    }
    std::fs::write(&index, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = ctx.run(&["lock"]);
    assert_code(&out, 0);
    assert_eq!(locked(&ctx), "a 2.0.0");

    // The version it picks must be whole.
    std::fs::remove_file(ctx.project.join("fm.lock")).unwrap();
    let i = at(&doc, "2.0.0");
    doc["versions"][i]["dependencies"] = serde_json::json!({"../b": "^1"});
    std::fs::write(&index, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = ctx.run(&["lock"]);
    assert_code(&out, 1);
    let (_, err) = text(&out);
    // Its own fault is named, not the first bad record in the file.
    assert!(err.contains("invalid package name \"../b\""), "{err}");
    assert!(!ctx.project.join("fm.lock").exists());
    eprintln!(
        "FIGURES lazy-records: 2 bad records of versions never tried: locked; 1 bad record of the version tried: refused, no fm.lock"
    );
}

// The yanked warning after a resolve now comes from what the solver read
// (it read every locked document a second time): a re-lock that keeps a
// yanked version the lock pins still says so, and one that moves off it
// does not.
#[test]
fn a_relock_that_keeps_a_yanked_pinned_version_warns() {
    let ctx = TestContext::new();
    let reg = setup(
        &ctx,
        &[("util", "1.1.0", &[]), ("util", "1.2.0", &[]), ("other", "1.0.0", &[])],
        &[("util", "^1")],
    );
    assert_code(&ctx.run(&["lock"]), 0);
    assert_eq!(locked(&ctx), "util 1.2.0");
    reg.yank("util", "1.2.0");
    write_project(&ctx, &reg, &[("util", "^1"), ("other", "^1")]);
    let out = ctx.run(&["lock"]);
    assert_code(&out, 0);
    let err = text(&out).1;
    assert!(
        err.contains("util 1.2.0 is locked, but registry main has yanked it"),
        "{err}"
    );
    assert_eq!(locked(&ctx), "other 1.0.0\nutil 1.2.0");
    let out = ctx.run(&["lock", "--upgrade-package", "util"]);
    assert_code(&out, 0);
    assert!(!text(&out).1.contains("yanked"), "{}", text(&out).1);
    assert_eq!(locked(&ctx), "other 1.0.0\nutil 1.1.0");
}
