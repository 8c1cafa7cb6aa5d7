//! `fm registry log init | checkpoint | verify`: the transparency log
//! (SPEC §9). The library does the work ([`crate::tlog`]); this parses,
//! opens the storage or registry, and prints.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::args::LogCommand;
use super::{Context, Failure};
use crate::registry::HttpRegistry;
#[cfg(feature = "cloud")]
use crate::registry::object::ObjectStorage;
use crate::registry::storage::{DirStorage, Storage, is_object_url};
use crate::tlog::{self, LogKey, LogSource, LogVerifier, StorageSource};

pub fn run(ctx: &Context, c: LogCommand) -> Result<(), Failure> {
    match c {
        LogCommand::Init {
            storage,
            storage_endpoint,
            key,
            origin,
            backfill,
        } => init(ctx, &storage, storage_endpoint.as_deref(), &key, origin, backfill),
        LogCommand::Checkpoint { registry, key } => checkpoint(ctx, &registry, key.as_deref()),
        LogCommand::Verify { registry, key, against } => verify(ctx, &registry, key.as_deref(), against.as_deref()),
    }
}

/// Reads a private log key file (`--log-key`, `FM_LOG_KEY`).
pub fn load_key(ctx: &Context, path: &Path) -> Result<LogKey, Failure> {
    let path = ctx.cwd.join(path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::user(miette::miette!("cannot read the log key {}: {e}", path.display())))?;
    LogKey::parse(&text).map_err(|e| {
        Failure::user(miette::miette!(
            help = "a log key file is what `fm registry log init --key FILE` wrote",
            "{}: {e}",
            path.display()
        ))
    })
}

/// `--log-key` of `fm publish`/`fm yank`/`fm registry serve`, loaded.
pub fn optional_key(ctx: &Context, path: Option<&Path>) -> Result<Option<LogKey>, Failure> {
    path.map(|p| load_key(ctx, p)).transpose()
}

fn open_storage(
    ctx: &Context,
    storage: &str,
    endpoint: Option<&str>,
) -> Result<(Arc<dyn Storage>, Option<PathBuf>), Failure> {
    if is_object_url(storage) {
        #[cfg(not(feature = "cloud"))]
        return Err(Failure::without_feature("a bucket --storage", "cloud"));
        #[cfg(feature = "cloud")]
        {
            let s = ObjectStorage::open(storage, endpoint)
                .map_err(|e| Failure::user(miette::miette!("cannot open the storage {storage}: {e}")))?;
            return Ok((Arc::new(s), None));
        }
    }
    if endpoint.is_some() {
        return Err(Failure::usage("--storage-endpoint needs a bucket --storage", None));
    }
    let root = match url::Url::parse(storage) {
        Ok(u) if u.scheme() == "file" => u
            .to_file_path()
            .map_err(|()| Failure::usage(format!("--storage {storage}: not a local file URL"), None))?,
        _ => ctx.cwd.join(storage),
    };
    std::fs::create_dir_all(&root).map_err(|e| {
        Failure::user(miette::miette!(
            "cannot create the storage folder {}: {e}",
            root.display()
        ))
    })?;
    Ok((Arc::new(DirStorage::new(&root)), Some(root)))
}

fn default_origin(storage: &str, root: Option<&Path>) -> String {
    let base = match root {
        Some(r) => std::fs::canonicalize(r)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "registry".into()),
        None => storage
            .split("://")
            .nth(1)
            .unwrap_or(storage)
            .trim_end_matches('/')
            .to_owned(),
    };
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-/".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("fm.registry/{clean}")
}

/// The key file: refused inside the served folder (anyone could download
/// it); created 0600 if absent, else read.
fn key_file(ctx: &Context, path: &Path, root: Option<&Path>, origin: &str) -> Result<(LogKey, bool), Failure> {
    let path = ctx.cwd.join(path);
    if let Some(root) = root {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
        let parent = path.parent().unwrap_or(Path::new("."));
        let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_owned());
        if parent.starts_with(&root) {
            return Err(Failure::usage(
                format!(
                    "--key {}: the private key would be inside the registry folder {}, which is served to anyone",
                    path.display(),
                    root.display()
                ),
                Some("keep the key outside the storage, e.g. --key ~/.flowmason/log.key"),
            ));
        }
    }
    if path.exists() {
        return Ok((load_key(ctx, &path)?, false));
    }
    let (key, text) = LogKey::generate(origin).map_err(|e| Failure::usage(e.to_string(), None))?;
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let write = open.open(&path).and_then(|mut f| {
        use std::io::Write;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    write.map_err(|e| Failure::user(miette::miette!("cannot create the log key {}: {e}", path.display())))?;
    Ok((key, true))
}

fn init(
    ctx: &Context,
    storage: &str,
    endpoint: Option<&str>,
    key: &Path,
    origin: Option<String>,
    backfill: bool,
) -> Result<(), Failure> {
    let (store, root) = open_storage(ctx, storage, endpoint)?;
    let origin = origin.unwrap_or_else(|| default_origin(storage, root.as_deref()));
    let (key, created) = key_file(ctx, key, root.as_deref(), &origin)?;
    if created {
        ctx.shell
            .status("Created", format!("log key {} (keep it secret)", key.origin()));
    }
    tlog::init(store.as_ref(), &key)?;
    ctx.shell.status(
        "Initialized",
        format!("transparency log {} in {}", key.verifier().vkey(), store.describe()),
    );
    let log = tlog::Appender::for_storage(store.as_ref(), Some(&key))?
        .ok_or_else(|| Failure::user(miette::miette!("the log was not created in {}", store.describe())))?;
    if backfill {
        let done = tlog::backfill::backfill(&log)?;
        ctx.shell.status(
            "Backfilled",
            format!("{} version(s) of {} package(s)", done.versions, done.packages),
        );
    }
    Ok(())
}

/// A registry's log files over HTTP (a server's API or a static host).
struct HttpSource {
    registry: HttpRegistry,
    runtime: &'static tokio::runtime::Runtime,
}

impl LogSource for HttpSource {
    fn get(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.runtime
            .block_on(self.registry.get_log_file(path))
            .map_err(|e| io::Error::other(e.to_string()))
    }
    fn describe(&self) -> String {
        crate::registry::redact_url(self.registry.api()).to_string()
    }
}

enum Opened {
    Dir(DirStorage),
    Http(Box<HttpSource>),
}

impl LogSource for Opened {
    fn get(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match self {
            Opened::Dir(s) => StorageSource(s).get(path),
            Opened::Http(h) => h.get(path),
        }
    }
    fn describe(&self) -> String {
        match self {
            Opened::Dir(s) => s.describe(),
            Opened::Http(h) => h.describe(),
        }
    }
}

fn open_registry(ctx: &Context, registry: &str) -> Result<Opened, Failure> {
    let target = super::target::resolve(ctx, Some(registry))?;
    if let Some(root) = target.directory() {
        return Ok(Opened::Dir(DirStorage::new(root)));
    }
    let registry = HttpRegistry::new(&target.name, &target.url, &target.opts)?;
    Ok(Opened::Http(Box::new(HttpSource {
        registry,
        runtime: super::target::runtime()?,
    })))
}

fn pinned(ctx: &Context, key: Option<&str>) -> Result<Option<LogVerifier>, Failure> {
    let Some(k) = key else { return Ok(None) };
    let file = ctx.cwd.join(k);
    let text = if file.is_file() {
        std::fs::read_to_string(&file)
            .map_err(|e| Failure::user(miette::miette!("cannot read {}: {e}", file.display())))?
    } else {
        k.to_owned()
    };
    Ok(Some(
        LogVerifier::parse(&text).map_err(|e| Failure::usage(format!("--key: {e}"), None))?,
    ))
}

/// Without `--key`: the key this project or the user pins for `registry`
/// (fm.toml's `log-key`, the user config's `log_key`, else the one fm.lock
/// trusted on first use), so that a registry which swapped its key and
/// re-signed another history is not verified against the key it serves.
fn project_pin(ctx: &Context, registry: &str) -> Option<LogVerifier> {
    let manifest = ctx.manifest_path().ok();
    let decl = manifest
        .as_ref()
        .and_then(|p| crate::manifest::Manifest::load(p).ok())
        .and_then(|m| m.registries.into_iter().find(|d| d.name == registry));
    let config = crate::config::UserConfig::load().ok();
    let from_config = config
        .as_ref()
        .and_then(|c| c.get(registry))
        .and_then(|e| crate::tlog::client::config_pin(e).key);
    let from_lock = || {
        let lock_path = manifest.as_ref()?.with_file_name("fm.lock");
        crate::lock::Lockfile::load(&lock_path)
            .ok()??
            .log
            .keys
            .get(registry)
            .cloned()
    };
    let key = decl.and_then(|d| d.log.key).or(from_config).or_else(from_lock)?;
    LogVerifier::parse(&key).ok()
}

fn checkpoint(ctx: &Context, registry: &str, key: Option<&str>) -> Result<(), Failure> {
    let pinned = pinned(ctx, key)?.or_else(|| project_pin(ctx, registry));
    let opened = open_registry(ctx, registry)?;
    let src: &dyn LogSource = &opened;
    let verifier = match pinned {
        Some(v) => v,
        None => tlog::verify::published_verifier(src)?,
    };
    let (cp, note) = tlog::verify::checkpoint(src, &verifier)?;
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "schema": 1,
            "origin": cp.origin(),
            "size": cp.size(),
            "root": cp.hash().to_string(),
            "key": verifier.vkey(),
            "note": String::from_utf8_lossy(&note),
        }));
        return Ok(());
    }
    ctx.shell.data(String::from_utf8_lossy(&note).into_owned());
    Ok(())
}

fn verify(ctx: &Context, registry: &str, key: Option<&str>, against: Option<&Path>) -> Result<(), Failure> {
    let pinned = pinned(ctx, key)?.or_else(|| project_pin(ctx, registry));
    let opened = open_registry(ctx, registry)?;
    let src: &dyn LogSource = &opened;
    let verified = tlog::verify_log(src, pinned.as_ref())?;
    let size = verified.checkpoint.size();
    ctx.shell.status(
        "Verified",
        format!(
            "{} records of {} (root {}): every tile, the signed checkpoint",
            size,
            verified.verifier.origin(),
            verified.checkpoint.hash()
        ),
    );
    // The documents: every listed version at its log_index.
    let mut names: Vec<String> = verified.records.iter().map(|r| r.name.clone()).collect();
    let mut docs = Vec::new();
    match &opened {
        Opened::Dir(s) => {
            let listed = s.list("index/").map_err(|e| Failure::user(miette::miette!("{e}")))?;
            names.extend(
                listed
                    .iter()
                    .filter_map(|k| k.strip_prefix("index/")?.strip_suffix(".json").map(str::to_owned)),
            );
            names.sort();
            names.dedup();
            for n in &names {
                if let Some((d, _)) = crate::registry::publish::read_document(s, n)? {
                    docs.push(d);
                }
            }
        }
        Opened::Http(h) => {
            use crate::registry::Registry as _;
            names.sort();
            names.dedup();
            for n in &names {
                if let Some(d) = h.runtime.block_on(h.registry.document(n))? {
                    docs.push((*d).clone());
                }
            }
        }
    }
    let versions: Vec<_> = docs
        .iter()
        .flat_map(|d| d.versions.iter().flatten().map(move |v| (d.info.name.as_str(), v)))
        .collect();
    let problems = verified.check_versions(versions.iter().copied());
    if !problems.is_empty() {
        return Err(Failure::user(miette::miette!(
            help = "a document names a version the log does not record as published: the registry's documents and log disagree",
            "{} version(s) of {} disagree with its log:\n  {}",
            problems.len(),
            verified.registry,
            problems.join("\n  ")
        )));
    }
    ctx.shell.status(
        "Verified",
        format!(
            "{} version(s) in {} document(s) against the log",
            versions.len(),
            docs.len()
        ),
    );
    if let Opened::Dir(s) = &opened
        && s.read(&tlog::layout::seq_key(size)).ok().flatten().is_some()
    {
        ctx.shell.warn(format!(
            "record {size} is sequenced but no checkpoint covers it yet (a writer stopped mid-way): \
             the next publish, or `fm registry serve --log-key`, completes the log"
        ));
    }
    if let Some(file) = against {
        let file = ctx.cwd.join(file);
        let older = std::fs::read(&file)
            .map_err(|e| Failure::user(miette::miette!("cannot read the checkpoint {}: {e}", file.display())))?;
        let n = verified.check_consistent(&older, &file.display().to_string())?;
        ctx.shell.status(
            "Consistent",
            format!(
                "the log of {size} records extends the checkpoint of {n} records in {}",
                file.display()
            ),
        );
    }
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "schema": 1,
            "origin": verified.verifier.origin(),
            "size": size,
            "root": verified.checkpoint.hash().to_string(),
            "versions": versions.len(),
        }));
    }
    Ok(())
}
