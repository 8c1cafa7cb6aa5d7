//! Tokens never leak: publish, search, sync and failing requests (401, 403)
//! against `fm registry serve --token T --require-auth`, all with
//! `--verbose`; then everything fm wrote (stdout, stderr, fm.lock, the
//! install state, the cache, FM_HOME except the registries.json where the
//! user stored the token, the server's own log) is searched for the tokens.

use std::path::Path;

use crate::common::*;

const TOKEN: &str = "sEcReT-publish-token-8c1f2a";
const WRONG: &str = "wrong-token-5d0e77";

#[test]
fn no_token_appears_in_anything_fm_writes() {
    let ctx = TestContext::new();
    let storage = ctx.root.join("storage");
    let server = ctx.serve(&storage, &["--token", TOKEN, "--require-auth", "--verbose"], &[]);
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut record = |what: &str, out: &std::process::Output| {
        outputs.push((format!("{what} stdout"), out.stdout.clone()));
        outputs.push((format!("{what} stderr"), out.stderr.clone()));
    };

    let out = ctx.run(&["registry", "add", "main", &server.url, "--token", TOKEN]);
    assert_code(&out, 0);
    record("registry add", &out);

    let src = package_source(&ctx.root.join("src"), "a", "1.0.0", &[]);
    let out = ctx.run(&["--verbose", "publish", src.to_str().unwrap(), "--registry", "main"]);
    assert_code(&out, 0);
    record("publish", &out);

    let out = ctx.run(&["--verbose", "search", "a", "--registry", "main"]);
    assert_code(&out, 0);
    assert!(text(&out).0.contains('a'), "{}", text(&out).0);
    record("search", &out);

    // A project locking a@1.0.0 from the server.
    let archive = std::fs::read(storage.join("packages/a/a-1.0.0.fmpkg")).unwrap();
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\na = \"1.0.0\"\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        server.url
    ));
    let lock = fm::lock::Lockfile {
        log: Default::default(),
        root: vec!["a =1.0.0".into()],
        registries: vec![fm::lock::LockedRegistry {
            name: "main".into(),
            url: server.url.clone(),
            priority: 100,
            explicit: false,
        }],
        packages: vec![fm::lock::LockedPackage {
            name: "a".parse().unwrap(),
            version: semver::Version::new(1, 0, 0),
            registry: "main".into(),
            sha256: fm::fsutil::sha256_hex(&archive).parse().unwrap(),
            size: archive.len() as u64,
            dependencies: vec![],
        }],
    };
    lock.save(&ctx.project.join("fm.lock")).unwrap();
    let out = ctx.run(&["--verbose", "sync", "--frozen"]);
    assert_code(&out, 0);
    record("sync", &out);
    let out = ctx.run(&["--verbose", "verify"]);
    assert_code(&out, 0);
    record("verify", &out);

    // A wrong token: 403 on upload (and 401/403 on reads), errors that do
    // not echo it.
    let src2 = package_source(&ctx.root.join("src"), "b", "1.0.0", &[]);
    let out = ctx
        .fm()
        .args(["--verbose", "publish", src2.to_str().unwrap(), "--registry", "main"])
        .env("FM_TOKEN_MAIN", WRONG)
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = text(&out).1;
    assert!(err.contains("403") || err.contains("401"), "{err}");
    record("publish with a wrong token", &out);
    let out = ctx
        .fm()
        .args(["--verbose", "search", "a", "--registry", "main"])
        .env("FM_TOKEN_MAIN", WRONG)
        .output()
        .unwrap();
    assert_code(&out, 1);
    record("search with a wrong token", &out);
    // No token at all (a user without the registry configured): 401.
    let out = ctx
        .fm()
        .args(["--verbose", "search", "a", "--registry", &server.url])
        .env("FM_HOME", ctx.root.join("other-home"))
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(text(&out).1.contains("401"), "{}", text(&out).1);
    record("search without a token", &out);
    // A token in the lock's URL is never written back nor printed.
    let with_userinfo = server.url.replace("http://", &format!("http://user:{TOKEN}@"));
    std::fs::write(
        ctx.project.join("fm.lock"),
        std::fs::read_to_string(ctx.project.join("fm.lock"))
            .unwrap()
            .replace(&server.url, &with_userinfo),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&ctx.cache);
    let out = ctx.run(&["--verbose", "sync", "--frozen"]);
    record("sync from a URL with userinfo", &out);
    std::fs::write(ctx.project.join("fm.lock"), lock.render()).unwrap();

    // Everything fm wrote.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (dir, label) in [(&ctx.project, "project"), (&ctx.cache, "cache"), (&ctx.home, "FM_HOME")] {
        for (rel, bytes) in snapshot_tree(dir) {
            if label == "FM_HOME" && Path::new(&rel).file_name().is_some_and(|f| f == "registries.json") {
                // Where the user asked fm to keep it.
                assert!(String::from_utf8_lossy(&bytes).contains(TOKEN));
                continue;
            }
            files.push((format!("{label}/{rel}"), bytes));
        }
    }
    files.push(("server log".into(), server.log().into_bytes()));
    let scanned = outputs.len() + files.len();
    let bytes: usize = outputs.iter().chain(files.iter()).map(|(_, b)| b.len()).sum();
    for (what, content) in outputs.iter().chain(files.iter()) {
        let text = String::from_utf8_lossy(content);
        for secret in [TOKEN, WRONG] {
            assert!(!text.contains(secret), "{what} contains a token:\n{text}");
        }
    }
    // The server's storage never holds it either.
    for (rel, content) in snapshot_tree(&storage) {
        assert!(!String::from_utf8_lossy(&content).contains(TOKEN), "storage/{rel}");
    }
    eprintln!(
        "FIGURES secrets: {scanned} outputs and files ({bytes} bytes) from registry add, publish, search, sync, verify, 401/403 failures and a userinfo URL, all --verbose; 0 tokens found"
    );
}
