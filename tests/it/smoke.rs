use crate::common::*;

#[test]
fn publish_then_duplicate_is_refused() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("a", "1.0.0", &[]);
    let src = package_source(&ctx.root.join("src2"), "a", "1.0.0", &[]);
    let out = ctx.run(&[
        "publish",
        src.to_str().unwrap(),
        "--registry",
        reg.root.to_str().unwrap(),
    ]);
    assert_code(&out, 1);
    assert!(text(&out).1.contains("already published"));
}
