//! Files fm rewrites keep their mode; new ones get the user's umask
//! (SPEC §7). They used to become 0600: a shared `fm.toml` turned private
//! after `fm add`, and a packed archive could not be served by another user.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `fm ARGS` under `umask 022`.
fn run_umask(ctx: &TestContext, args: &[&str]) -> std::process::Output {
    run_with_umask(ctx, "022", args)
}

#[test]
fn fm_add_keeps_the_manifest_mode_and_new_files_get_the_umask() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("a", "1.0.0", &[]);
    reg.publish("b", "1.0.0", &[]);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        reg.url()
    ));
    let manifest = ctx.project.join("fm.toml");
    std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_code(&run_umask(&ctx, &["add", "a"]), 0);
    assert_eq!(mode(&manifest), 0o644, "fm.toml after fm add");
    let lock = ctx.project.join("fm.lock");
    assert_eq!(mode(&lock), 0o644, "a new fm.lock under umask 022");

    // A narrower mode is kept too, not widened to the umask.
    std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o664)).unwrap();
    assert_code(&run_umask(&ctx, &["add", "b"]), 0);
    assert_eq!(mode(&manifest), 0o640, "fm.toml after a second fm add");
    assert_eq!(mode(&lock), 0o664, "fm.lock after a re-lock");

    // fm pack: a new archive gets the umask.
    let src = package_source(&ctx.root.join("src"), "c", "1.0.0", &[]);
    let out = ctx.root.join("c.fmpkg");
    assert_code(
        &run_umask(&ctx, &["pack", src.to_str().unwrap(), "-o", out.to_str().unwrap()]),
        0,
    );
    assert_eq!(mode(&out), 0o644, "a packed archive");
    eprintln!("FIGURES file-modes: fm.toml 0644 and 0640 kept, new fm.lock and archive 0644 under umask 022");
}

/// `fm ARGS` under `umask MASK`.
fn run_with_umask(ctx: &TestContext, mask: &str, args: &[&str]) -> std::process::Output {
    let cmd = ctx.fm();
    let mut sh = std::process::Command::new("sh");
    sh.current_dir(&ctx.project)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(
            cmd.get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .arg("-c")
        .arg(format!("umask {mask}; exec \"$0\" \"$@\""))
        .arg(cmd.get_program())
        .args(args);
    sh.output().unwrap()
}

/// Installed files are created with their mode at `open` (no `chmod`) and
/// their stat data is read from the open handle (no second walk): under a
/// umask that narrows the mode, fm still sets exactly 0644 / 0755, and the
/// stat data it records is the file's final one (a `chmod` after the
/// recorded `fstat` would change the ctime, and the next sync would find
/// every such file "changed" and reinstall it).
#[test]
fn installed_files_get_0644_or_0755_under_any_umask_and_their_recorded_stat_data_holds() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    let src = package_source(&ctx.root.join("tool-src"), "tool", "1.0.0", &[]);
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(src.join("bin/run"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(src.join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let packed = pack_folder(&src);
    fm::registry::publish::publish(
        &fm::registry::storage::DirStorage::new(&reg.root),
        &packed.bytes,
        None,
        &fm::archive::Limits::default(),
        None,
    )
    .unwrap();
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        reg.url()
    ));
    let entry = LockEntry {
        name: "tool",
        version: "1.0.0",
        sha256: &packed.sha256,
        deps: &[],
    };
    write_lock(&ctx, "main", &reg, &[entry]);
    let pkg = ctx.project.join(".fm/packages/tool");

    let mut seen = Vec::new();
    for mask in ["077", "022", "000"] {
        let _ = std::fs::remove_dir_all(ctx.project.join(".fm"));
        assert_code(&run_with_umask(&ctx, mask, &["sync", "--frozen"]), 0);
        assert_eq!(
            mode(&pkg.join("components/tool.py")),
            0o644,
            "a plain file under umask {mask}"
        );
        assert_eq!(mode(&pkg.join("bin/run")), 0o755, "an executable under umask {mask}");
        // What fm recorded is what is on disk: the next sync touches nothing.
        let out = run_with_umask(&ctx, mask, &["sync", "--frozen"]);
        assert_code(&out, 0);
        let (_, err) = text(&out);
        assert!(err.contains("1 package up to date"), "umask {mask}: {err}");
        let out = ctx.run(&["verify"]);
        assert_code(&out, 0);
        seen.push(mask);
    }
    eprintln!(
        "FIGURES install-modes: umask {}: files 0644, executables 0755, recorded stat data held (no-op sync, verify clean)",
        seen.join("/")
    );
}
