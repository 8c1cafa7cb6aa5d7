//! The test harness every integration test shares: a temp project with its
//! own cache and FM_HOME, directory registries filled by really packing and
//! publishing packages, and the real `fm` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fm::archive::{self, Limits};
use fm::registry::publish;
use fm::registry::storage::DirStorage;

/// Packs the package folder `dir` as `fm pack` does: its `fm.toml` gives
/// the metadata ([`fm::manifest::Manifest::pack_input`]).
pub fn pack_folder(dir: &Path) -> archive::Packed {
    let manifest = fm::manifest::Manifest::load(&dir.join("fm.toml"))
        .unwrap_or_else(|e| panic!("load {}/fm.toml: {e}", dir.display()));
    let input = manifest
        .pack_input()
        .unwrap_or_else(|e| panic!("pack {}: {e}", dir.display()));
    archive::pack(dir, &input).unwrap_or_else(|e| panic!("pack {}: {e}", dir.display()))
}

/// The compiled `fm` binary.
pub fn fm_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fm"))
}

/// A temp world: `root/project` (cwd), `root/home` (FM_HOME), `root/cache`.
pub struct TestContext {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub project: PathBuf,
    pub home: PathBuf,
    pub cache: PathBuf,
}

impl TestContext {
    pub fn new() -> TestContext {
        let tmp = tempfile::Builder::new().prefix("fm-test-").tempdir().expect("tempdir");
        let root = tmp.path().canonicalize().expect("canonicalize");
        let project = root.join("project");
        let home = root.join("home");
        let cache = root.join("cache");
        for d in [&project, &home, &cache] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        TestContext {
            tmp,
            root,
            project,
            home,
            cache,
        }
    }

    /// `fm` in the project folder, isolated from the user's environment.
    pub fn fm(&self) -> Command {
        let mut c = Command::new(fm_bin());
        c.current_dir(&self.project);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("FM_") || k.starts_with("FLOWMASON") || k == "SOURCE_DATE_EPOCH" {
                c.env_remove(&k);
            }
        }
        c.env("FM_HOME", &self.home)
            .env("FM_CACHE_DIR", &self.cache)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100");
        c
    }

    /// Runs `fm args…` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.fm().args(args).output().expect("run fm")
    }

    /// A directory registry at `root/registries/{name}`.
    pub fn dir_registry(&self, name: &str) -> DirRegistry {
        let root = self.root.join("registries").join(name);
        std::fs::create_dir_all(&root).expect("mkdir registry");
        DirRegistry {
            root,
            work: self.root.join("pkgsrc"),
        }
    }

    /// Writes `fm.toml` in the project.
    pub fn write_manifest(&self, text: &str) {
        std::fs::write(self.project.join("fm.toml"), text).expect("write fm.toml");
    }

    /// Reads a project file.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.project.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// insta filters that make output stable: temp paths and timings.
    pub fn filters(&self) -> Vec<(String, String)> {
        vec![
            (regex_escape(&self.root.display().to_string()), "[ROOT]".to_owned()),
            (r"in \d+(\.\d+)? ?(ms|s|µs)".to_owned(), "in [TIME]".to_owned()),
            (r"127\.0\.0\.1:\d+".to_owned(), "127.0.0.1:[PORT]".to_owned()),
        ]
    }

    /// Applies [`filters`](Self::filters) to `text`.
    pub fn filter(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (pat, rep) in self.filters() {
            out = regex::Regex::new(&pat)
                .expect("filter regex")
                .replace_all(&out, rep.as_str())
                .into_owned();
        }
        out
    }
}

fn regex_escape(s: &str) -> String {
    regex::escape(s)
}

/// A directory registry being filled by a test.
pub struct DirRegistry {
    pub root: PathBuf,
    work: PathBuf,
}

impl DirRegistry {
    /// `file://` URL of the registry.
    pub fn url(&self) -> String {
        url::Url::from_directory_path(&self.root).expect("url").to_string()
    }

    /// Packs and publishes `name@version` with these dependencies; returns
    /// the archive's SHA-256.
    pub fn publish(&self, name: &str, version: &str, deps: &[(&str, &str)]) -> String {
        let dir = package_source(&self.work, name, version, deps);
        let packed = pack_folder(&dir);
        let storage = DirStorage::new(&self.root);
        publish::publish(&storage, &packed.bytes, None, &Limits::default(), None)
            .unwrap_or_else(|e| panic!("publish {name}@{version}: {e}"));
        packed.sha256
    }

    /// Yanks a version.
    pub fn yank(&self, name: &str, version: &str) {
        publish::set_yanked(&DirStorage::new(&self.root), name, version, true, None).expect("yank");
    }

    /// Path of an archive in this registry.
    pub fn archive_path(&self, name: &str, version: &str) -> PathBuf {
        self.root.join(format!("packages/{name}/{name}-{version}.fmpkg"))
    }
}

/// Writes a package source folder and returns it.
pub fn package_source(work: &Path, name: &str, version: &str, deps: &[(&str, &str)]) -> PathBuf {
    let dir = work.join(format!("{name}-{version}"));
    std::fs::create_dir_all(dir.join("components")).expect("mkdir");
    std::fs::create_dir_all(dir.join("pipelines")).expect("mkdir");
    let mut toml = format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"{name} for tests\"\n\n[dependencies]\n"
    );
    for (d, r) in deps {
        toml.push_str(&format!("{d} = \"{r}\"\n"));
    }
    std::fs::write(dir.join("fm.toml"), toml).expect("write");
    std::fs::write(
        dir.join("components").join(format!("{}.py", name.replace('-', "_"))),
        format!("# {name} {version}\ndef run(x):\n    return x\n"),
    )
    .expect("write");
    std::fs::write(
        dir.join("pipelines").join("main.pipeline.json"),
        format!("{{\"name\": \"{name}\", \"version\": \"{version}\"}}\n"),
    )
    .expect("write");
    dir
}

/// stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    if out.status.code() != Some(code) {
        let (o, e) = text(out);
        panic!(
            "expected exit {code}, got {:?}\n--- stdout\n{o}\n--- stderr\n{e}",
            out.status.code()
        );
    }
}

/// A running `fm registry serve` on 127.0.0.1 (a free port), its stderr
/// collected. Stopped with SIGTERM (graceful) or killed on drop.
pub struct Server {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub storage: PathBuf,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl TestContext {
    /// Starts `fm registry serve --storage {storage} --bind 127.0.0.1:0 {extra…}`
    /// with `env` set, and waits for its address.
    pub fn serve(&self, storage: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        self.serve_limited(storage, extra, env, None)
    }

    /// [`serve`](Self::serve) with the open-file limit (`ulimit -n`) set to
    /// `nofile` when given.
    pub fn serve_limited(&self, storage: &Path, extra: &[&str], env: &[(&str, &str)], nofile: Option<u64>) -> Server {
        use std::io::BufRead;
        let mut cmd = self.fm();
        if let Some(n) = nofile {
            // The same environment and folder; `exec` keeps the pid, so
            // `stop` still signals the server itself.
            let fm = std::mem::replace(&mut cmd, Command::new("sh"));
            for (k, v) in fm.get_envs() {
                match v {
                    Some(v) => cmd.env(k, v),
                    None => cmd.env_remove(k),
                };
            }
            cmd.current_dir(&self.project)
                .arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(fm_bin());
        }
        cmd.args(["registry", "serve", "--bind", "127.0.0.1:0", "--storage"])
            .arg(storage)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn fm registry serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("http://")
                    && let Some(tx) = tx.take()
                {
                    let url: String = line[i..].split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(url);
                }
                let mut l = sink.lock().expect("log");
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the server did not print its address; log:\n{}",
                    log.lock().expect("log")
                );
            }
        };
        Server {
            child,
            url,
            storage: storage.to_owned(),
            log,
        }
    }
}

impl Server {
    /// `{url}/api/v1/registry/{path}`
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1/registry/{path}", self.url)
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// The log once `ready` holds for it (the server writes a request's
    /// line just before answering, and a thread copies it here: give it a
    /// moment). Returns the log either way after 10 s.
    pub fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let log = self.log();
            if ready(&log) || std::time::Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// SIGTERM, then waits for a graceful exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait for server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A package for [`write_lock`]: name, version, sha256 (from
/// [`DirRegistry::publish`]) and dependencies as lock strings (`b ^1.0`).
pub struct LockEntry<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub sha256: &'a str,
    pub deps: &'a [&'a str],
}

/// Writes `fm.lock` in the project naming packages of the one registry
/// `reg` (called `registry_name`); sizes are read from the registry's
/// archives. Returns the lock.
pub fn write_lock(
    ctx: &TestContext,
    registry_name: &str,
    reg: &DirRegistry,
    packages: &[LockEntry<'_>],
) -> fm::lock::Lockfile {
    let lock = fm::lock::Lockfile {
        log: Default::default(),
        root: packages.iter().map(|p| format!("{} ={}", p.name, p.version)).collect(),
        registries: vec![fm::lock::LockedRegistry {
            name: registry_name.to_owned(),
            url: reg.url(),
            priority: 100,
            explicit: false,
        }],
        packages: packages
            .iter()
            .map(|p| fm::lock::LockedPackage {
                name: p.name.parse().unwrap(),
                version: semver::Version::parse(p.version).expect("version"),
                registry: registry_name.to_owned(),
                sha256: p.sha256.parse().unwrap(),
                size: std::fs::metadata(reg.archive_path(p.name, p.version))
                    .map(|m| m.len())
                    .unwrap_or(0),
                dependencies: p.deps.iter().map(|d| d.parse().unwrap()).collect(),
            })
            .collect(),
    };
    lock.save(&ctx.project.join("fm.lock")).expect("write fm.lock");
    lock
}

/// Every file under `dir` (relative, sorted) with its bytes; empty if
/// `dir` does not exist.
pub fn snapshot_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("prefix").display().to_string();
                out.push((rel, std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A two-worker tokio runtime for tests that talk HTTP themselves.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A plain HTTP client (no token, default redirects).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

/// Sends `req` and returns the status (panics if no answer came).
pub async fn status_of(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.expect("request").status().as_u16()
}

/// A tiny xorshift generator: reproducible from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
