//! Output that says what happened and that scripts can read (issue #13):
//! per-package change lines, `--quiet`, `--json` with a schema version on
//! every data command, exit 2 for usage errors, a help line on every
//! argument, and the small things a user notices.

use crate::common::*;

use clap::CommandFactory;

fn ok(ctx: &TestContext, args: &[&str]) -> (String, String) {
    let out = ctx.run(args);
    assert_code(&out, 0);
    let (o, e) = text(&out);
    (ctx.filter(&o), ctx.filter(&e))
}

fn json(ctx: &TestContext, args: &[&str]) -> serde_json::Value {
    let out = ctx.run(args);
    assert_code(&out, 0);
    serde_json::from_str(&text(&out).0).unwrap_or_else(|e| panic!("fm {args:?}: not JSON ({e}): {:?}", text(&out)))
}

fn manifest(ctx: &TestContext, reg: &DirRegistry, deps: &str) {
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\n{deps}\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        reg.url()
    ));
}

/// Regression: `fm sync` printed only `Installed 2 packages in 85 ms`, never
/// which packages it added, upgraded or removed.
#[test]
fn sync_lists_each_change_then_the_summary_and_quiet_prints_nothing() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("parser", "1.4.0", &[]);
    reg.publish("parser", "1.5.0", &[]);
    reg.publish("old-lib", "0.3.1", &[]);
    reg.publish("summarizer", "1.2.0", &[]);
    manifest(&ctx, &reg, "parser = \"=1.4.0\"\nold-lib = \"0.3\"\n");
    let (out, err) = ok(&ctx, &["sync"]);
    assert_eq!(out, "");
    insta::assert_snapshot!(err, @r"
    Added old-lib 0.3.1
    Added parser 1.4.0
    warning: registry main (file://[ROOT]/registries/main/) keeps no transparency log: its packages are checked by SHA-256 only, not verified against a log (said once; set require-log = true on it to refuse such a registry)
     + old-lib 0.3.1
     + parser 1.4.0
    Installed 2 packages in [TIME]
    ");

    manifest(&ctx, &reg, "parser = \"=1.5.0\"\nsummarizer = \"1.2\"\n");
    let (_, err) = ok(&ctx, &["sync"]);
    insta::assert_snapshot!(err, @r"
    Removed old-lib 0.3.1
    Updated parser 1.4.0 -> 1.5.0 (required by fm.toml: parser =1.5.0)
    Added summarizer 1.2.0
     - old-lib 0.3.1
     ~ parser 1.4.0 -> 1.5.0
     + summarizer 1.2.0
    Installed 2 packages, removed 1 in [TIME]
    ");

    let (_, err) = ok(&ctx, &["sync"]);
    insta::assert_snapshot!(err, @"2 packages up to date in [TIME]");

    manifest(&ctx, &reg, "parser = \"=1.4.0\"\n");
    let out = ctx.run(&["--quiet", "sync"]);
    assert_code(&out, 0);
    assert_eq!(
        text(&out),
        (String::new(), String::new()),
        "--quiet prints nothing on success"
    );
    assert!(ctx.project.join(".fm/packages/parser").is_dir());
    assert!(!ctx.project.join(".fm/packages/summarizer").exists());
}

/// Regression: `fm install` said how many packages, not which, nor that a
/// version replaced another.
#[test]
fn install_lists_each_change() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("parser", "1.4.0", &[]);
    reg.publish("parser", "1.5.0", &[("text-utils", "^2")]);
    reg.publish("text-utils", "2.1.0", &[]);
    ok(&ctx, &["registry", "add", "main", &reg.url()]);
    let (_, err) = ok(&ctx, &["install", "parser", "--version", "=1.4.0"]);
    insta::assert_snapshot!(err, @r"
     + parser 1.4.0
       Installed parser 1.4.0
    ");
    let (_, err) = ok(&ctx, &["install", "parser", "--version", "^1.5"]);
    insta::assert_snapshot!(err, @r"
     ~ parser 1.4.0 -> 1.5.0
     + text-utils 2.1.0
       Installed parser 1.5.0 (+1 dependency)
    ");
    let out = ctx.run(&["-q", "install", "parser"]);
    assert_code(&out, 0);
    assert_eq!(text(&out), (String::new(), String::new()));
}

/// Regression: `--json` was missing on sync, install, verify, yank, pack
/// (no version), publish to a folder, and the registry edits; the JSON that
/// existed had no schema version.
#[test]
fn json_of_every_command_whose_result_is_data_or_a_change() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("parser", "1.4.0", &[]);
    reg.publish("parser", "1.5.0", &[]);
    manifest(&ctx, &reg, "parser = \"=1.4.0\"\n");

    let lock = json(&ctx, &["lock", "--json"]);
    assert_eq!(lock["version"], 1);
    assert_eq!(lock["changes"][0]["change"], "added");
    assert_eq!(lock["written"], true);
    let check = json(&ctx, &["lock", "--check", "--json"]);
    assert_eq!((&check["version"], &check["fresh"]), (&1.into(), &true.into()));

    manifest(&ctx, &reg, "parser = \"=1.5.0\"\n");
    let sync = json(&ctx, &["sync", "--json"]);
    assert_eq!(sync["version"], 1);
    assert_eq!(sync["lock_changes"][0]["change"], "updated");
    assert_eq!(
        sync["changes"],
        serde_json::json!([{"change": "added", "name": "parser", "version": "1.5.0"}])
    );
    assert_eq!((&sync["installed"], &sync["removed"]), (&1.into(), &0.into()));

    let verify = json(&ctx, &["verify", "--json"]);
    assert_eq!(verify["version"], 1);
    assert_eq!(verify["clean"], true);
    assert_eq!(verify["checked_packages"], 1);

    let tree = json(&ctx, &["tree", "--json"]);
    assert_eq!(tree["schema_version"], 1);
    assert_eq!(tree["children"][0]["name"], "parser");
    let why = json(&ctx, &["why", "parser", "--json"]);
    assert_eq!((&why["schema_version"], &why["version"]), (&1.into(), &"1.5.0".into()));
    let diff = json(&ctx, &["diff", "/dev/null", "fm.lock", "--json"]);
    assert_eq!(diff["version"], 1);

    let added = json(&ctx, &["registry", "add", "main", &reg.url(), "--json"]);
    assert_eq!(
        (&added["version"], &added["change"], &added["name"]),
        (&1.into(), &"added".into(), &"main".into())
    );
    let other = ctx.dir_registry("other");
    json(&ctx, &["registry", "add", "other", &other.url(), "--json"]);
    let default = json(&ctx, &["registry", "set-default", "main", "--json"]);
    assert_eq!(
        (&default["version"], &default["change"]),
        (&1.into(), &"default".into())
    );
    let removed = json(&ctx, &["registry", "remove", "other", "--json"]);
    assert_eq!(
        (&removed["version"], &removed["change"]),
        (&1.into(), &"removed".into())
    );
    let list = json(&ctx, &["registry", "list", "--json"]);
    assert_eq!(list["version"], 1);

    let install = json(
        &ctx,
        &[
            "install",
            "parser",
            "--version",
            "=1.4.0",
            "--dir",
            "elsewhere",
            "--json",
        ],
    );
    assert_eq!(install["version"], 1);
    assert_eq!(install["changes"][0]["name"], "parser");

    let src = package_source(&ctx.root.join("src"), "fresh", "0.1.0", &[]);
    let packed = ctx.root.join("fresh.fmpkg");
    let pack = json(
        &ctx,
        &["pack", src.to_str().unwrap(), "-o", packed.to_str().unwrap(), "--json"],
    );
    assert_eq!(
        (&pack["schema_version"], &pack["version"]),
        (&1.into(), &"0.1.0".into())
    );
    assert_eq!(pack["sha256"].as_str().map(str::len), Some(64));
    let publish = json(
        &ctx,
        &["publish", packed.to_str().unwrap(), "--registry", "main", "--json"],
    );
    assert_eq!(
        (&publish["schema_version"], &publish["name"], &publish["version"]),
        (&1.into(), &"fresh".into(), &"0.1.0".into())
    );
    assert_eq!(publish["sha256"], pack["sha256"]);
    let yank = json(&ctx, &["yank", "fresh@0.1.0", "--registry", "main", "--json"]);
    assert_eq!((&yank["schema_version"], &yank["yanked"]), (&1.into(), &true.into()));
    let unyank = json(&ctx, &["yank", "fresh@0.1.0", "--undo", "--registry", "main", "--json"]);
    assert_eq!(unyank["yanked"], false);

    let cache = json(&ctx, &["registry", "cache", "--json"]);
    assert_eq!(cache["version"], 1);
    assert!(cache["files"].as_u64() > Some(0));
    let cleared = json(&ctx, &["registry", "cache", "--clear", "--json"]);
    assert_eq!(cleared["version"], 1);
    assert!(cleared["removed_files"].as_u64() > Some(0));
}

/// Regression: `--json` on a command with no JSON form printed what it
/// always prints (or nothing, or started a server).
#[test]
fn json_on_a_command_without_a_json_form_is_a_usage_error() {
    let ctx = TestContext::new();
    let out = ctx.run(&["--json", "completions", "bash"]);
    assert_code(&out, 2);
    assert_eq!(text(&out).0, "");
    insta::assert_snapshot!(text(&out).1, @r"
      x `fm completions` has no JSON output
      help: run it without --json
    ");
    let storage = ctx.root.join("storage");
    let mut child = ctx
        .fm()
        .args(["registry", "serve", "--json", "--bind", "127.0.0.1:0", "--storage"])
        .arg(&storage)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // A safety net, not a timing assertion: a server that started would run forever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("fm registry serve --json started a server");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));
}

/// Regression: a bad requirement or name on the command line, and a bad
/// `--bind`, exited 1 (the bind with advice about another address).
#[test]
fn usage_errors_exit_2() {
    let ctx = TestContext::new();
    ctx.write_manifest("[project]\nname = \"app\"\n");
    let cases: &[&[&str]] = &[
        &["add", "parser@>>1"],
        &["add", "Parser"],
        &["remove", "../x"],
        &["why", "Bad!"],
        &["yank", "parser"],
        &["yank", "parser@1"],
        &["install", "parser", "--version", "not a version"],
        &["install", "-rf"],
        &["init", "--name", "Bad Name"],
        &["lock", "--upgrade-package", "UP"],
        &["registry", "add", "Bad/Name", "https://example.org"],
        &["registry", "serve", "--bind", "nonsense"],
        &["registry", "serve", "--bind", "127.0.0.1:99999"],
        &["registry", "serve", "--host", "bad host"],
    ];
    for args in cases {
        let out = ctx.run(args);
        assert_eq!(out.status.code(), Some(2), "fm {args:?}: {:?}", text(&out));
    }
    assert_eq!(ctx.read("fm.toml"), "[project]\nname = \"app\"\n", "nothing was edited");
    let out = ctx.run(&["registry", "serve", "--bind", "nonsense"]);
    insta::assert_snapshot!(text(&out).1, @r#"
    error: invalid value 'nonsense' for '--bind <ADDR>': "nonsense" is not HOST:PORT (for example 127.0.0.1:8999, [::1]:8999, localhost:0)

    For more information, try '--help'.
    "#);
    let out = ctx.run(&["add", "parser@>>1"]);
    insta::assert_snapshot!(text(&out).1, @r#"
    error: invalid value 'parser@>>1' for '<PKG[@REQ]>': invalid version requirement ">>1" for parser: unexpected character '>' while parsing major version number; for example `parser@^1.2` or `parser@>=1.0, <2`

    For more information, try '--help'.
    "#);
}

/// Every subcommand, at any depth, as its path of names.
fn subcommands(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut p = path.clone();
        p.push(sub.get_name().to_owned());
        out.push((p.clone(), sub.clone()));
        subcommands(sub, p, out);
    }
}

/// Regression: `why <PACKAGE>`, `yank <PKG@VERSION>`, `--registry`,
/// `--category`, `--token`, `--priority`, `--clear`, `--format` and more had
/// no help line.
#[test]
fn every_argument_and_flag_has_a_help_line() {
    let ctx = TestContext::new();
    let mut cmd = fm::cli::args::Cli::command();
    cmd.build();
    let mut all = Vec::new();
    subcommands(&cmd, Vec::new(), &mut all);
    assert!(all.len() > 20, "{} subcommands", all.len());
    let mut missing = Vec::new();
    for (path, sub) in &all {
        for arg in sub.get_arguments() {
            if arg.is_hide_set() || matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            if arg.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                missing.push(format!("fm {} {}", path.join(" "), arg.get_id()));
            }
        }
        // And the real binary prints it: in `fm help <cmd>`, every
        // argument's line (after `Arguments:`/`Options:`) carries text
        // after the argument itself, or on the next, indented line.
        let mut args = vec!["help"];
        args.extend(path.iter().map(String::as_str));
        let (out, _) = ok(&ctx, &args);
        let lines: Vec<&str> = out
            .lines()
            .skip_while(|l| !matches!(*l, "Arguments:" | "Options:"))
            .collect();
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let keys = match arg.get_long() {
                Some(long) => vec![format!("--{long}")],
                None => {
                    let name = arg
                        .get_value_names()
                        .and_then(|v| v.first())
                        .map_or_else(|| arg.get_id().to_string().to_uppercase(), |v| v.to_string());
                    vec![format!("<{name}>"), format!("[{name}]")]
                }
            };
            let key = keys.join(" or ");
            let Some(at) = lines.iter().position(|l| keys.iter().any(|k| l.contains(k))) else {
                missing.push(format!("fm help {}: no {key}", path.join(" ")));
                continue;
            };
            let line = lines[at].trim();
            let rest = line.find("  ").map_or("", |i| line[i..].trim());
            let next_is_help = lines.get(at + 1).is_some_and(|n| {
                let t = n.trim_start();
                n.len() - t.len() > 8 && !t.is_empty() && !t.starts_with(['-', '<', '['])
            });
            if rest.is_empty() && !next_is_help {
                missing.push(format!("fm help {}: {line}", path.join(" ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "arguments without a help line:\n{}",
        missing.join("\n")
    );
}

/// Regression: `1 files`, and sizes in raw bytes.
#[test]
fn cache_and_pack_say_files_and_sizes_for_people() {
    let ctx = TestContext::new();
    std::fs::write(ctx.cache.join("one"), vec![0u8; 2048]).expect("write");
    let (out, _) = ok(&ctx, &["registry", "cache"]);
    insta::assert_snapshot!(out, @r"
    [ROOT]/cache
    1 file, 2.0 KiB
    ");
    let (_, err) = ok(&ctx, &["registry", "cache", "--clear"]);
    insta::assert_snapshot!(err, @"     Removed 1 file (2.0 KiB) from [ROOT]/cache");

    let src = package_source(&ctx.root.join("src"), "fresh", "0.1.0", &[]);
    let (_, err) = ok(&ctx, &["pack", src.to_str().unwrap()]);
    let re = regex::Regex::new(r"\(\d+(\.\d)? (B|KiB|MiB), sha256 [0-9a-f]{64}\)$").expect("regex");
    assert!(re.is_match(err.trim_end()), "{err}");
}

/// Regression: a `--manifest-path` that is not there was reported as
/// `cannot read nope/fm.toml: no such file` and then `no such file` again.
#[test]
fn a_missing_manifest_is_named_once_with_a_fix() {
    let ctx = TestContext::new();
    let out = ctx.run(&["--manifest-path", "nope/fm.toml", "sync"]);
    assert_code(&out, 1);
    insta::assert_snapshot!(text(&out).1, @r"
    fm::manifest::missing

      x nope/fm.toml does not exist
      help: check --manifest-path (or FM_MANIFEST); `fm init` creates an fm.toml in the current folder
    ");
}

/// Regression: git merge markers in fm.toml were reported as
/// `key with no value, expected '='`.
#[test]
fn merge_markers_in_the_manifest_are_named_as_such() {
    let ctx = TestContext::new();
    ctx.write_manifest(
        "[project]\nname = \"app\"\n\n[dependencies]\n<<<<<<< HEAD\nparser = \"^1.4\"\n=======\nparser = \"^1.5\"\n>>>>>>> feature\n",
    );
    let out = ctx.run(&["lock"]);
    assert_code(&out, 1);
    insta::assert_snapshot!(ctx.filter(&text(&out).1), @r#"
    fm::manifest::conflicted

      x [ROOT]/project/fm.toml contains git merge-conflict markers
       ,-[[ROOT]/project/fm.toml:5:1]
     4 | [dependencies]
     5 | <<<<<<< HEAD
       : ^^^^^^|^^^^^
       :       `-- the conflict starts here
     6 | parser = "^1.4"
       `----
      help: finish the merge in fm.toml: keep the lines you want from each side and delete the
            <<<<<<<, ======= and >>>>>>> lines; then run `fm lock`
    "#);
}

/// Regression: an fm.lock parse error had no line or column and advised
/// deleting the lock (losing every locked version); `fm lock` could not
/// read it either.
#[test]
fn an_invalid_lock_names_line_and_column_and_fm_lock_keeps_what_it_can() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    let a = reg.publish("parser", "1.4.0", &[]);
    reg.publish("parser", "1.5.0", &[]);
    manifest(&ctx, &reg, "parser = \"^1.4\"\n");
    write_lock(
        &ctx,
        "main",
        &reg,
        &[LockEntry {
            name: "parser",
            version: "1.4.0",
            sha256: &a,
            deps: &[],
        }],
    );
    let broken = format!("{}[[package]]\nname = 3\n", ctx.read("fm.lock"));
    std::fs::write(ctx.project.join("fm.lock"), &broken).expect("write");
    let line = broken.lines().count();
    let out = ctx.run(&["sync"]);
    assert_code(&out, 1);
    let err = ctx.filter(&text(&out).1);
    assert!(err.contains(&format!("line {line}, column 8")), "{err}");
    assert!(err.contains("run `fm lock`"), "{err}");
    assert!(!err.contains("delete it"), "{err}");

    let (_, err) = ok(&ctx, &["lock"]);
    assert!(err.contains("Locked 1 package"), "{err}");
    let lock = ctx.read("fm.lock");
    assert!(
        lock.contains("version = \"1.4.0\""),
        "the locked version was kept:\n{lock}"
    );
    ok(&ctx, &["sync"]);
}

/// Regression: `-v` said nothing about the registry requests fm made.
#[test]
fn verbose_logs_each_request_with_status_and_time_and_no_token() {
    const TOKEN: &str = "cli-output-sekrit-42";
    let ctx = TestContext::new();
    let storage = ctx.dir_registry("served");
    storage.publish("parser", "1.4.0", &[]);
    let server = ctx.serve(&storage.root, &["--token", TOKEN], &[]);
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nparser = \"1.4\"\n\n[[registries]]\nname = \"main\"\nurl = \"{}\"\n",
        server.url
    ));
    let out = ctx
        .fm()
        .args(["-v", "sync"])
        .env("FM_TOKEN_MAIN", TOKEN)
        .output()
        .expect("run");
    assert_code(&out, 0);
    let err = ctx.filter(&text(&out).1);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("  GET ")).collect();
    insta::assert_snapshot!(lines.join("\n"), @r"
      GET http://127.0.0.1:[PORT]/api/v1/registry/packages/parser 200 in [TIME]
      GET http://127.0.0.1:[PORT]/api/v1/registry/log/key 404 in [TIME]
      GET http://127.0.0.1:[PORT]/api/v1/registry/packages/parser/1.4.0/download 200 in [TIME]
    ");
    assert!(!err.contains(TOKEN));
    println!(
        "FIGURES request-log: {} requests logged by fm -v sync, 0 tokens",
        lines.len()
    );
    let quiet = ctx.run(&["sync"]);
    assert!(!text(&quiet).1.contains("  GET "), "no request log without -v");
}

/// A registry of our own that answers `packages/{name}` with `doc` after
/// `delay` (anything else: 404), so a resolution takes longer than a moment.
fn slow_registry(doc: String, delay: std::time::Duration) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let doc = doc.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (status, body) = if path.ends_with("/packages/parser") {
                    std::thread::sleep(delay);
                    ("200 OK", doc)
                } else {
                    (
                        "404 Not Found",
                        r#"{"error":{"code":"not_found","message":"no"}}"#.to_owned(),
                    )
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    format!("http://{addr}")
}

/// `fm args…` on a pseudo-terminal (util-linux `script`), as a user's
/// terminal sees it: stdout and stderr together.
fn on_a_terminal(ctx: &TestContext, args: &str) -> String {
    let fm = ctx.fm();
    let mut cmd = std::process::Command::new("script");
    cmd.current_dir(&ctx.project);
    for (k, v) in fm.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd
        .args(["-qec", &format!("{} {args}", fm_bin().display()), "/dev/null"])
        .env("FM_PROGRESS_DELAY_MS", "0")
        .output()
        .expect("run script (util-linux) to give fm a terminal");
    assert_code(&out, 0);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Regression: a slow resolution showed nothing at all until it ended.
#[test]
fn a_slow_resolution_shows_progress_on_a_terminal_only() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    reg.publish("parser", "1.4.0", &[]);
    let doc = std::fs::read_to_string(reg.root.join("index/parser.json")).expect("document");
    let url = slow_registry(doc, std::time::Duration::from_millis(1500));
    ctx.write_manifest(&format!(
        "[project]\nname = \"app\"\n\n[dependencies]\nparser = \"1.4\"\n\n[[registries]]\nname = \"main\"\nurl = \"{url}\"\n"
    ));
    let shown = on_a_terminal(&ctx, "lock");
    assert!(
        shown.contains("Resolving: 0 packages fetched, 1 request in flight"),
        "{shown:?}"
    );
    assert!(shown.contains("Locked 1 package"), "{shown:?}");
    std::fs::remove_file(ctx.project.join("fm.lock")).expect("rm");
    let json = on_a_terminal(&ctx, "--json lock");
    assert!(!json.contains("Resolving"), "no progress with --json: {json:?}");
    std::fs::remove_file(ctx.project.join("fm.lock")).expect("rm");
    let quiet = on_a_terminal(&ctx, "--quiet lock");
    assert_eq!(quiet, "", "nothing with --quiet");
}
