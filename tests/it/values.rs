//! Checked values (`fm::values`): a bad package name, digest or locked
//! dependency in fm.lock or in a registry document is refused where it is
//! read, with a message naming the file, the field and the value.

use crate::common::{TestContext, assert_code, text};

/// Without trailing spaces (miette pads empty lines).
fn trim(s: &str) -> String {
    s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// A project locked at `a 1.0.0` (which needs `b ^1`) from registry `main`.
fn locked_project(ctx: &TestContext) -> crate::common::DirRegistry {
    let reg = ctx.dir_registry("main");
    reg.publish("a", "1.0.0", &[("b", "^1")]);
    reg.publish("b", "1.0.0", &[]);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"^1\"\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        reg.url()
    ));
    assert_code(&ctx.run(&["lock"]), 0);
    reg
}

#[test]
fn a_lock_with_a_bad_name_digest_or_dependency_is_refused_when_read() {
    let ctx = TestContext::new();
    locked_project(&ctx);
    let good = ctx.read("fm.lock");
    let sha = good
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .map(|s| s.trim_end_matches('"').to_owned())
        .expect("a digest");
    let cases = [
        ("name", "name = \"a\"", "name = \"A/../x\""),
        ("digest", &format!("sha256 = \"{sha}\"") as &str, "sha256 = \"ZZ\""),
        ("dependency", "dependencies = [\"b ^1\"]", "dependencies = [\"b\"]"),
        ("requirement", "dependencies = [\"b ^1\"]", "dependencies = [\"b ^^1\"]"),
    ];
    let mut shown = Vec::new();
    for (case, from, to) in cases {
        assert!(good.contains(from), "{case}: {from:?} not in\n{good}");
        std::fs::write(ctx.project.join("fm.lock"), good.replacen(from, to, 1)).unwrap();
        let out = ctx.run(&["sync", "--frozen"]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(
            !ctx.project.join(".fm/packages/a").exists(),
            "{case}: installed from a bad lock"
        );
        shown.push(format!("{case}: {}", trim(&ctx.filter(&err))));
    }
    insta::assert_snapshot!(shown.join("\n\n"), @r#"
    name: fm::lock::invalid

      x [ROOT]/project/fm.lock is not a valid lock file: line 12, column 8: invalid
      | package name "A/../x": it contains the upper-case letter 'A' (names are lower case)
      help: fm.lock is written by fm only; run `fm lock` to write it again (it keeps the locked
            versions it can still read)


    digest: fm::lock::invalid

      x [ROOT]/project/fm.lock is not a valid lock file: line 15, column 10: "ZZ" is not
      | a hex SHA-256 (64 lower-case hex digits)
      help: fm.lock is written by fm only; run `fm lock` to write it again (it keeps the locked
            versions it can still read)


    dependency: fm::lock::invalid

      x [ROOT]/project/fm.lock is not a valid lock file: line 17, column 16: dependency
      | "b" is not `name requirement`
      help: fm.lock is written by fm only; run `fm lock` to write it again (it keeps the locked
            versions it can still read)


    requirement: fm::lock::invalid

      x [ROOT]/project/fm.lock is not a valid lock file: line 17, column 16: dependency
      | "b ^^1": invalid requirement: unexpected character '^' while parsing major version number
      help: fm.lock is written by fm only; run `fm lock` to write it again (it keeps the locked
            versions it can still read)
    "#);
    eprintln!(
        "FIGURES lock-values: {} corrupted fm.lock fields (name, digest, dependency shape, requirement): {} refused at parse, 0 installs",
        shown.len(),
        shown.len()
    );
}

#[test]
fn a_document_with_a_bad_digest_or_dependency_name_is_refused_when_read() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("a", "1.0.0", &[("b", "^1")]);
    reg.publish("b", "1.0.0", &[]);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"^1\"\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        reg.url()
    ));
    let index = reg.root.join("index/a.json");
    let good: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    let mut shown = Vec::new();
    // Only the version record's fields: the top-level `checksum` is
    // FlowMason's PackageInfo and stays as it is.
    let bad_digest = |doc: &mut serde_json::Value| doc["versions"][0]["checksum"] = "not-a-digest".into();
    let bad_name = |doc: &mut serde_json::Value| {
        doc["versions"][0]["dependencies"] = serde_json::json!({"../b": "^1"});
    };
    type Corrupt<'a> = &'a dyn Fn(&mut serde_json::Value);
    let cases: [(&str, Corrupt<'_>); 2] = [("digest", &bad_digest), ("dependency name", &bad_name)];
    for (case, corrupt) in cases {
        let mut doc = good.clone();
        corrupt(&mut doc);
        std::fs::write(&index, serde_json::to_vec(&doc).unwrap()).unwrap();
        let out = ctx.run(&["lock"]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(
            !ctx.project.join("fm.lock").exists(),
            "{case}: locked from a bad document"
        );
        shown.push(format!("{case}: {}", trim(&ctx.filter(&err))));
    }
    insta::assert_snapshot!(shown.join("\n\n"), @r#"
    digest: fm::registry::corrupt

      x registry main served an invalid document for a: [ROOT]/registries/main/index/
      | a.json: "not-a-digest" is not a hex SHA-256 (64 lower-case hex digits) at line 1 column 521


    dependency name: fm::registry::corrupt

      x registry main served an invalid document for a: [ROOT]/registries/main/index/
      | a.json: invalid package name "../b": it starts with '.' at line 1 column 613
    "#);
    eprintln!(
        "FIGURES document-values: {} corrupted version-record fields (checksum, dependency name): {} refused when the document is read, 0 locks",
        shown.len(),
        shown.len()
    );
}
