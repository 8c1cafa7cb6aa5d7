//! `fm registry list/add/remove/set-default/cache` on the user config.

use crate::common::*;

#[test]
fn registries_are_listed_without_tokens() {
    let ctx = TestContext::new();
    let dir = ctx.dir_registry("local");
    // Unreachable HTTP registries are saved anyway, with a warning.
    let out = ctx.run(&[
        "registry",
        "add",
        "corp",
        "http://127.0.0.1:9/",
        "--token",
        "t0p",
        "--priority",
        "10",
    ]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r"
    warning: registry corp: cannot reach http://127.0.0.1:[PORT]/api/v1/registry/health: connection failed: Connection refused (os error 111) (saved anyway)
           Added registry corp (http://127.0.0.1:[PORT]/, priority 10)
    ");
    assert_code(&ctx.run(&["registry", "add", "local", &dir.url(), "--default"]), 0);
    let out = ctx.run(&["registry", "list"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).0), @r"
    corp     10  http://127.0.0.1:[PORT]/  (token)
    local   100  file://[ROOT]/registries/local/  (default)
    ");
    assert_code(&ctx.run(&["registry", "set-default", "corp"]), 0);
    let out = ctx.run(&["registry", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).expect("json");
    assert_eq!(json["registries"][0]["is_default"], true);
    assert_eq!(json["registries"][0]["has_token"], true);
    assert!(!text(&out).0.contains("t0p"));
    // FlowMason's format on disk.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.home.join("registries.json")).expect("config"))
            .expect("json");
    let keys: Vec<&str> = config["registries"][0]
        .as_object()
        .expect("entry")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "name",
            "url",
            "auth_token",
            "priority",
            "enabled",
            "is_default",
            "can_publish",
            "requires_auth",
            "description"
        ]
    );
    let out = ctx.run(&["registry", "set-default", "nope"]);
    assert_code(&out, 1);
    assert!(text(&out).1.contains("no registry named \"nope\""));
}

#[test]
fn cache_is_shown_and_cleared() {
    let ctx = TestContext::new();
    std::fs::create_dir_all(ctx.cache.join("http/x")).expect("mkdir");
    std::fs::write(ctx.cache.join("http/x/a.json"), "{}").expect("write");
    std::fs::write(ctx.cache.join(".lock"), "").expect("write");
    let out = ctx.run(&["registry", "cache"]);
    assert_code(&out, 0);
    insta::assert_snapshot!(ctx.filter(&text(&out).0), @r"
    [ROOT]/cache
    2 files, 2 B
    ");
    let out = ctx.run(&["registry", "cache", "--clear", "--older-than", "1"]);
    assert_code(&out, 0);
    assert!(ctx.cache.join("http/x/a.json").exists(), "fresh entries stay");
    let out = ctx.run(&["registry", "cache", "--clear"]);
    assert_code(&out, 0);
    assert!(!ctx.cache.join("http/x/a.json").exists());
    assert!(ctx.cache.join(".lock").exists(), "lock files stay");
}

#[test]
fn read_only_registries_refuse_publish_and_yank() {
    let ctx = TestContext::new();
    let dir = ctx.dir_registry("ro");
    dir.publish("alpha", "1.0.0", &[]);
    let before = snapshot_tree(&dir.root);
    // As FlowMason's `registry add` saves it: can_publish false.
    let config = serde_json::json!({"registries": [{
        "name": "ro", "url": dir.url(), "auth_token": null, "priority": 100, "enabled": true,
        "is_default": true, "can_publish": false, "requires_auth": false, "description": ""
    }]});
    std::fs::write(ctx.home.join("registries.json"), config.to_string()).expect("config");
    let src = package_source(&ctx.root.join("src"), "beta", "1.0.0", &[]);
    let src = src.to_str().expect("utf-8");
    for args in [
        vec!["publish", src],
        vec!["publish", src, "--registry", "ro"],
        vec!["publish", src, "--registry", &dir.url()],
        vec!["yank", "alpha@1.0.0"],
    ] {
        let out = ctx.run(&args);
        assert_code(&out, 1);
        let err = text(&out).1;
        assert!(
            err.contains("registry ro is configured as read-only"),
            "{args:?}: {err}"
        );
        assert!(err.contains("fm registry add ro URL"), "{err}");
    }
    assert_eq!(
        snapshot_tree(&dir.root),
        before,
        "nothing written to a read-only registry"
    );

    // `fm registry add` (fm's, not FlowMason's) allows publishing again.
    assert_code(&ctx.run(&["registry", "add", "ro", &dir.url()]), 0);
    assert_code(&ctx.run(&["publish", src]), 0);
    assert_code(&ctx.run(&["yank", "alpha@1.0.0"]), 0);
}
