//! fm.toml: pointed diagnostics for every kind of mistake (SPEC §1), `fm init`,
//! and `fm add` / `fm remove` editing the file without losing comments or
//! layout.

use crate::common::*;

/// Runs `fm add probe` on a manifest and returns the rendered diagnostic
/// (stderr, temp paths filtered). Asserts exit 1 and that the file was not
/// touched.
fn diagnostic(manifest: &str) -> String {
    let ctx = TestContext::new();
    ctx.write_manifest(manifest);
    let out = ctx.run(&["add", "probe@^1"]);
    assert_code(&out, 1);
    assert_eq!(ctx.read("fm.toml"), manifest, "a failed edit must leave fm.toml alone");
    ctx.filter(&text(&out).1)
}

#[test]
fn unknown_key_points_at_the_key() {
    insta::assert_snapshot!(diagnostic("[project]\nname = \"app\"\nnmae = \"typo\"\n"));
}

#[test]
fn unknown_table_points_at_the_table() {
    insta::assert_snapshot!(diagnostic(
        "[project]\nname = \"app\"\n\n[dependencys]\nsummarizer = \"^1\"\n"
    ));
}

#[test]
fn invalid_project_name() {
    insta::assert_snapshot!(diagnostic("[project]\nname = \"Support Bot\"\n"));
}

#[test]
fn invalid_dependency_name() {
    insta::assert_snapshot!(diagnostic(
        "[project]\nname = \"app\"\n\n[dependencies]\n\"../escape\" = \"^1\"\n"
    ));
}

#[test]
fn invalid_requirement() {
    insta::assert_snapshot!(diagnostic(
        "[project]\nname = \"app\"\n\n[dependencies]\nsummarizer = \"^1.2\"\nsentiment = \">=1 <2\"\n"
    ));
}

#[test]
fn invalid_requirement_in_a_table() {
    insta::assert_snapshot!(diagnostic(
        "[project]\nname = \"app\"\n\n[dependencies]\nfilter-kit = { version = \"latest\" }\n"
    ));
}

#[test]
fn duplicate_registry_points_at_both() {
    insta::assert_snapshot!(diagnostic(
        r#"[project]
name = "app"

[[registries]]
name = "company"
url = "https://registry.company.com"

[[registries]]
name = "company"
url = "../registry"
"#
    ));
}

#[test]
fn dependency_naming_an_undeclared_registry() {
    insta::assert_snapshot!(diagnostic(
        r#"[project]
name = "app"

[dependencies]
filter-kit = { version = ">=0.3, <0.5", registry = "compnay" }

[[registries]]
name = "company"
url = "https://registry.company.com"
"#
    ));
}

#[test]
fn bad_registry_url_scheme() {
    insta::assert_snapshot!(diagnostic(
        "[project]\nname = \"app\"\n\n[[registries]]\nname = \"main\"\nurl = \"ftp://registry.example.com\"\n"
    ));
}

#[test]
fn registry_url_without_host() {
    insta::assert_snapshot!(diagnostic(
        "[project]\nname = \"app\"\n\n[[registries]]\nname = \"main\"\nurl = \"https://\"\n"
    ));
}

#[test]
fn invalid_package_name_in_a_package_folder() {
    // `fm pack` reads the [package] table; the span is the name's value.
    let ctx = TestContext::new();
    ctx.write_manifest("[package]\nname = \"My_Package\"\nversion = \"1.0.0\"\n");
    std::fs::write(ctx.project.join("README.txt"), "hi").unwrap();
    let out = ctx.run(&["pack"]);
    assert_code(&out, 1);
    insta::assert_snapshot!(ctx.filter(&text(&out).1));
}

/// `fm pack` refuses a folder whose fm.toml has no `[package]`, and a
/// package whose dependency names a registry, naming the folder. (These
/// checks moved from `archive::pack` to `Manifest::pack_input` when packing
/// stopped reading fm.toml; the messages and the code stayed.)
#[test]
fn pack_refuses_a_manifest_it_cannot_publish() {
    let ctx = TestContext::new();
    std::fs::write(ctx.project.join("README.txt"), "hi").unwrap();
    ctx.write_manifest("[project]\nname = \"app\"\n");
    let out = ctx.run(&["pack"]);
    assert_code(&out, 1);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
    fm::archive::pack

      x cannot pack [ROOT]/project: [ROOT]/project/fm.toml has no [package]
      | table
    ");

    ctx.write_manifest(
        "[package]\nname = \"pkg\"\nversion = \"1.0.0\"\n\n[dependencies]\nb = { version = \"^1\", registry = \"main\" }\n\n[[registries]]\nname = \"main\"\nurl = \"../reg\"\n",
    );
    let out = ctx.run(&["pack"]);
    assert_code(&out, 1);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
    fm::archive::pack

      x cannot pack [ROOT]/project: dependency b names a registry; a published package's
      | dependencies come from the installing project's registries
    ");
    assert!(!ctx.project.join("pkg-1.0.0.fmpkg").exists(), "nothing is written");
}

#[test]
fn valid_manifests_parse() {
    // The SPEC §1 example, with a relative directory registry.
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("local");
    reg.publish("summarizer", "1.2.0", &[]);
    ctx.write_manifest(
        r#"[project]
name = "support-bot"
version = "0.1.0"

[dependencies]
summarizer = "^1.2"

[[registries]]
name = "local"
url = "../registries/local"
priority = 10
explicit = false
"#,
    );
    let m = fm::manifest::Manifest::load(&ctx.project.join("fm.toml")).unwrap();
    assert_eq!(m.registries[0].url.to_file_path().unwrap(), reg.root);
    assert_eq!(m.dependencies["summarizer"].to_string(), "summarizer ^1.2");
}

// ---------------------------------------------------------------------------
// fm init

#[test]
fn init_writes_a_starter_manifest() {
    let ctx = TestContext::new();
    let out = ctx.run(&["init", "--name", "support-bot"]);
    assert_code(&out, 0);
    let written = ctx.read("fm.toml");
    insta::assert_snapshot!(written);
    // It parses, and names the project.
    let m = fm::manifest::Manifest::load(&ctx.project.join("fm.toml")).unwrap();
    assert_eq!(m.project.unwrap().name, "support-bot");
}

#[test]
fn init_names_the_project_after_its_folder() {
    let ctx = TestContext::new();
    let dir = ctx.project.join("My.Project");
    std::fs::create_dir(&dir).unwrap();
    let out = ctx.fm().current_dir(&dir).arg("init").output().unwrap();
    assert_code(&out, 0);
    let m = fm::manifest::Manifest::load(&dir.join("fm.toml")).unwrap();
    assert_eq!(m.project.unwrap().name, "my-project");
}

#[test]
fn init_refuses_to_overwrite() {
    let ctx = TestContext::new();
    let mine = "# mine\n[project]\nname = \"keep-me\"\n";
    ctx.write_manifest(mine);
    let out = ctx.run(&["init", "--name", "other"]);
    assert_code(&out, 1);
    assert_eq!(ctx.read("fm.toml"), mine);
    insta::assert_snapshot!(ctx.filter(&text(&out).1));
}

#[test]
fn init_refuses_an_invalid_name() {
    let ctx = TestContext::new();
    let out = ctx.run(&["init", "--name", "Bad Name"]);
    assert_code(&out, 2); // a usage error, reported by clap (issue #13)
    assert!(!ctx.project.join("fm.toml").exists());
    assert!(text(&out).1.contains("invalid name \"Bad Name\""), "{}", text(&out).1);
}

// ---------------------------------------------------------------------------
// fm add / fm remove

/// A project with comments everywhere, over a directory registry that has
/// the packages it names (so a re-lock after the edit can succeed).
fn commented_project() -> (TestContext, String) {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    for (name, version) in [
        ("summarizer", "1.2.0"),
        ("summarizer", "1.3.0"),
        ("sentiment", "1.0.4"),
        ("text-utils", "1.1.0"),
        ("filter-kit", "0.4.0"),
    ] {
        reg.publish(name, version, &[]);
    }
    let manifest = r#"# Support bot: answers tickets.
[project]
name = "support-bot"   # keep this name
version = "0.1.0"

[dependencies]
# Summaries for the ticket view.
summarizer = "^1.2"    # pinned below 2.0 on purpose
sentiment = "1.0.4"

# Registries, highest priority first.
[[registries]]
name = "main"
url = "../registries/main"
priority = 10          # before the user's registries
"#;
    ctx.write_manifest(manifest);
    (ctx, manifest.to_owned())
}

#[test]
fn add_appends_keeping_comments_and_layout() {
    let (ctx, before) = commented_project();
    let out = ctx.run(&["add", "text-utils@^1.1"]);
    assert_code(&out, 0);
    let after = ctx.read("fm.toml");
    // Exactly one line more, right after the last dependency (the table is
    // not sorted, so it is not re-sorted).
    assert_eq!(
        after,
        before.replace(
            "sentiment = \"1.0.4\"\n",
            "sentiment = \"1.0.4\"\ntext-utils = \"^1.1\"\n"
        )
    );
}

#[test]
fn add_keeps_a_sorted_table_sorted() {
    let (ctx, before) = commented_project();
    let sorted = before.replace(
        "# Summaries for the ticket view.\nsummarizer = \"^1.2\"    # pinned below 2.0 on purpose\nsentiment = \"1.0.4\"\n",
        "sentiment = \"1.0.4\"\n# Summaries for the ticket view.\nsummarizer = \"^1.2\"    # pinned below 2.0 on purpose\n",
    );
    ctx.write_manifest(&sorted);
    let out = ctx.run(&["add", "filter-kit@>=0.3, <0.5"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.read("fm.toml"));
}

#[test]
fn add_replaces_a_requirement_in_place() {
    let (ctx, before) = commented_project();
    let out = ctx.run(&["add", "summarizer@~1.3"]);
    assert_code(&out, 0);
    // The comment above and the comment after the value both survive.
    assert_eq!(
        ctx.read("fm.toml"),
        before.replace("summarizer = \"^1.2\"    # pinned", "summarizer = \"~1.3\"    # pinned")
    );
}

#[test]
fn add_with_a_registry_writes_an_inline_table() {
    let (ctx, before) = commented_project();
    let out = ctx.run(&["add", "filter-kit@^0.4", "--registry", "main"]);
    assert_code(&out, 0);
    assert_eq!(
        ctx.read("fm.toml"),
        before.replace(
            "sentiment = \"1.0.4\"\n",
            "sentiment = \"1.0.4\"\nfilter-kit = { version = \"^0.4\", registry = \"main\" }\n"
        )
    );
}

#[test]
fn add_refuses_an_undeclared_registry_and_changes_nothing() {
    let (ctx, before) = commented_project();
    let out = ctx.run(&["add", "filter-kit@^0.4", "--registry", "company"]);
    assert_code(&out, 1);
    assert_eq!(ctx.read("fm.toml"), before);
    let err = text(&out).1;
    assert!(
        err.contains("registry \"company\" is not declared") && err.contains("declared: main"),
        "{err}"
    );
}

#[test]
fn add_refuses_a_bad_requirement_and_changes_nothing() {
    let (ctx, before) = commented_project();
    let out = ctx.run(&["add", "text-utils@>=1 <2"]);
    assert_code(&out, 2); // a usage error (issue #13)
    assert_eq!(ctx.read("fm.toml"), before);
    assert!(text(&out).1.contains("invalid version requirement"), "{}", text(&out).1);
}

#[test]
fn remove_keeps_everything_else() {
    let (ctx, before) = commented_project();
    let out = ctx.run(&["remove", "sentiment"]);
    assert_code(&out, 0);
    assert_eq!(ctx.read("fm.toml"), before.replace("sentiment = \"1.0.4\"\n", ""));
}

#[test]
fn remove_of_a_missing_dependency_fails_and_changes_nothing() {
    let (ctx, before) = commented_project();
    let out = ctx.run(&["remove", "nope"]);
    assert_code(&out, 1);
    assert_eq!(ctx.read("fm.toml"), before);
    assert!(text(&out).1.contains("nope is not a dependency"), "{}", text(&out).1);
}

#[test]
fn the_sample_project_parses_and_its_registries_have_its_dependencies() {
    // fixtures/project is what the README's first command syncs.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let m = fm::manifest::Manifest::load(&root.join("project/fm.toml")).unwrap();
    let regs = m.registries_by_priority();
    let names: Vec<&str> = regs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["company", "main"]);
    for r in &regs {
        let path = r.url.to_file_path().unwrap();
        assert!(path.join("index").is_dir(), "{} has no index/", path.display());
    }
    for dep in m.dependencies.values() {
        let found = regs.iter().any(|r| {
            dep.registry.as_deref().is_none_or(|n| n == r.name)
                && r.url
                    .to_file_path()
                    .unwrap()
                    .join(format!("index/{}.json", dep.name))
                    .is_file()
        });
        assert!(found, "no registry of the sample project has {}", dep.name);
    }
}

#[test]
fn the_manifest_is_found_upwards_or_where_told() {
    let (ctx, before) = commented_project();
    // From a subfolder, fm walks up to the project's fm.toml.
    let sub = ctx.project.join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    let out = ctx
        .fm()
        .current_dir(&sub)
        .args(["remove", "sentiment"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(ctx.read("fm.toml"), before.replace("sentiment = \"1.0.4\"\n", ""));

    // FM_MANIFEST and --manifest-path select one explicitly.
    let elsewhere = ctx.root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let registry = "\n[[registries]]\nname = \"main\"\nurl = \"../registries/main\"\n";
    let other = format!(
        "[project]\nname = \"other\"\n\n[dependencies]\ntext-utils = \"^1.1\"\nfilter-kit = \"^0.4\"\n{registry}"
    );
    std::fs::write(elsewhere.join("fm.toml"), other).unwrap();
    let out = ctx
        .fm()
        .env("FM_MANIFEST", elsewhere.join("fm.toml"))
        .args(["remove", "text-utils"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let out = ctx.run(&["--manifest-path", elsewhere.to_str().unwrap(), "remove", "filter-kit"]);
    assert_code(&out, 0);
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("fm.toml")).unwrap(),
        format!("[project]\nname = \"other\"\n\n[dependencies]\n{registry}")
    );

    // None anywhere: a clear error.
    let out = ctx.fm().current_dir(&ctx.home).args(["remove", "x"]).output().unwrap();
    assert_code(&out, 1);
    assert!(text(&out).1.contains("no fm.toml found"), "{}", text(&out).1);
}
