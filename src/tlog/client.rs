//! The client side of the transparency log (SPEC §9): what `fm lock`,
//! `fm sync` and `fm verify --log` prove before they trust a registry.
//!
//! For each registry a lock uses:
//!
//! 1. **The key.** Pinned by `log-key` in fm.toml (or `log_key` in the
//!    user config), else by the `log-key` fm.lock recorded, else trusted on
//!    first use (`fm lock` only) and recorded in fm.lock, where a reviewer
//!    sees it and `fm diff` flags a change. A registry whose `log/key`
//!    differs from the pinned key is refused; so is one that has no log
//!    while a key is pinned for it or `require-log = true`. Without either,
//!    a registry without a log works as before, with one notice.
//! 2. **The checkpoint.** Signed by the pinned key, and a consistent
//!    extension of the newest checkpoint this machine remembers for the log
//!    ([`super::memory`]): a smaller one is a rollback, a same-size one with
//!    another root or a larger one whose consistency proof fails is a fork.
//! 3. **Inclusion.** Each locked version's record, at the `log_index` its
//!    document gave (fm.lock's `log-index`), is a `publish` record of that
//!    name, version, SHA-256 and size, included in the signed tree. A
//!    version without an index in a logged registry is refused.
//!
//! Proofs read only the tiles on their paths, fetched in parallel
//! ([`super::proof`]); proved records are remembered, so a run whose
//! packages were all proved before makes no request at all.
//! Nothing here prints: notices come back in [`Report::notices`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::key::LogVerifier;
use super::memory::{self, Memory};
use super::proof::{self, Needs, ProofFailure, Tiles};
use super::record::{Action, Record};
use super::{TlogError, layout};
use crate::lock::Lockfile;
use crate::manifest::LogPin;
use crate::registry::{Registry, RegistryError};

/// One registry as the client sees it.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub client: Arc<dyn Registry>,
    /// `log-key` / `require-log` from fm.toml or the user config.
    pub pin: LogPin,
    /// The `log-key` the existing fm.lock records for it.
    pub locked_key: Option<String>,
}

/// What a command asks of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `fm lock`: trust a log key on first use; a registry without a log
    /// gets a notice.
    Lock,
    /// `fm sync`: check the registries fm.lock (or fm.toml) pins a key
    /// for; skip records proved before.
    Sync,
    /// `fm verify --log`: like `Sync`, but prove every record again.
    Reprove,
}

/// What the checks found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Registry → the key its log was verified with (what fm.lock records).
    pub keys: BTreeMap<String, String>,
    /// One line each, for the command to print (first-use trust, no log).
    pub notices: Vec<String>,
    /// Records proved by fetching tiles.
    pub proved: usize,
    /// Records proved on an earlier run (no request made).
    pub remembered: usize,
    /// Registry → the size of the checkpoint the proofs used.
    pub checkpoints: BTreeMap<String, u64>,
    /// Log files requested, in all.
    pub requests: usize,
    /// Rounds of requests (each round's requests run in parallel), at most
    /// over the registries (they are checked at the same time).
    pub rounds: usize,
}

/// A locked package, as a log must record it.
#[derive(Debug, Clone)]
struct Claim {
    name: String,
    version: String,
    sha256: String,
    size: u64,
    index: Option<u64>,
}

/// Why a registry's log was not accepted. Each message names the registry
/// (and the package, version, digest and index it is about); nothing was
/// written or installed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ClientError {
    /// A log is required (a pinned key, `require-log`), and there is none.
    #[error("registry {registry} has no transparency log, but {why}; nothing was written or installed")]
    #[diagnostic(
        code(fm::tlog::required),
        help(
            "a registry that dropped its log may be hiding a rewrite: ask its operator; if the registry never had one, remove the pin ({why})"
        )
    )]
    Required { registry: String, why: String },
    /// The registry's log key is not the pinned one.
    #[error(
        "registry {registry}'s transparency log is signed by {published}, but {pinned_by} pins {pinned}; nothing was written or installed"
    )]
    #[diagnostic(
        code(fm::tlog::key_changed),
        help(
            "a log key never changes for a log's lifetime: a new key means a new history. If the operator really replaced it, pin the new key with `log-key = \"{published}\"` on the registry in fm.toml and review the lock diff"
        )
    )]
    KeyChanged {
        registry: String,
        pinned: String,
        pinned_by: &'static str,
        published: String,
    },
    /// The registry's log does not record this version (no index, an
    /// index past the log, or another record at that index).
    #[error(
        "registry {registry} serves {package} {version} (sha256 {sha256}) but its transparency log does not record it: {reason}; nothing was written or installed"
    )]
    #[diagnostic(
        code(fm::tlog::not_logged),
        help(
            "the registry's documents and its log disagree: it may have rewritten or added this version outside the log. Keep fm.lock as it is and report it to the registry's operator"
        )
    )]
    NotLogged {
        registry: String,
        package: String,
        version: String,
        sha256: String,
        reason: String,
    },
    /// The record is there but not provably in the signed tree.
    #[error(
        "registry {registry}: the log record {index} of {package} {version} (sha256 {sha256}) is not included in its signed checkpoint: {reason}; nothing was written or installed"
    )]
    #[diagnostic(
        code(fm::tlog::not_included),
        help("the registry serves log tiles that do not match its checkpoint: a tampered or broken log")
    )]
    NotIncluded {
        registry: String,
        package: String,
        version: String,
        sha256: String,
        index: u64,
        reason: String,
    },
    /// The new checkpoint does not extend the remembered one.
    #[error(
        "registry {registry} shows a transparency log of {size} records (root {root}) that does not extend the one of {remembered_size} records this machine saw before: {reason}; nothing was written or installed"
    )]
    #[diagnostic(
        code(fm::tlog::fork),
        help(
            "the registry has shown two different histories (a fork or a rollback). The earlier checkpoint is kept in {}: keep it as evidence, and compare with `fm registry log verify {registry} --against FILE`",
            evidence.display()
        )
    )]
    Fork {
        registry: String,
        size: u64,
        root: String,
        remembered_size: u64,
        reason: String,
        evidence: PathBuf,
    },
    /// The checkpoint or key is malformed or not signed by the pinned key.
    #[error("registry {registry}'s transparency log cannot be trusted: {source}")]
    #[diagnostic(code(fm::tlog::bad_log))]
    Log {
        registry: String,
        #[source]
        source: TlogError,
    },
    /// The log could not be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
    /// The memory of checkpoints could not be read or written.
    #[error("cannot use the transparency-log memory in the cache: {0}")]
    #[diagnostic(
        code(fm::tlog::memory),
        help("check that the cache folder (FM_CACHE_DIR) is writable and holds no symbolic link")
    )]
    Memory(String),
    /// fm.lock lacks what a check needs.
    #[error("{0}")]
    #[diagnostic(code(fm::tlog::lock), help("run `fm lock` to record it"))]
    Lock(String),
}

/// The user config's `log_key` / `require_log` of a registry entry
/// (FlowMason's format keeps unknown keys; fm reads these two).
pub fn config_pin(e: &crate::config::RegistryEntry) -> LogPin {
    LogPin {
        key: e
            .extra
            .get("log_key")
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_owned())
            .filter(|s| LogVerifier::parse(s).is_ok()),
        require: e.extra.get("require_log").and_then(|v| v.as_bool()).unwrap_or(false),
    }
}

/// `fm lock`: proves every package of `lock` in its registry's log,
/// records the keys in `lock.log.keys` (and drops the indexes of
/// registries without a log). `Ok` means the lock may be written.
pub fn prove_lock(lock: &mut Lockfile, targets: &[Target], offline: bool) -> Result<Report, ClientError> {
    let report = check(lock, targets, Mode::Lock, offline)?;
    lock.log.keys = report.keys.clone();
    let logged: Vec<String> = lock
        .packages
        .iter()
        .filter(|p| !report.keys.contains_key(&p.registry))
        .map(|p| p.name.to_string())
        .collect();
    for name in logged {
        lock.log.indexes.remove(&name);
    }
    Ok(report)
}

/// `fm sync` / `fm verify --log`: proves the packages of an existing
/// `lock` whose registries fm.lock or fm.toml pins a key for (or requires
/// a log of). Registries are opened from the lock's URLs (relative ones
/// against `base`), with the user config's mirrors and tokens.
pub fn prove_locked(
    lock: &Lockfile,
    base: &Path,
    pins: &BTreeMap<String, LogPin>,
    mode: Mode,
    offline: bool,
) -> Result<Report, ClientError> {
    let config = crate::config::UserConfig::load().map_err(|e| ClientError::Lock(e.to_string()))?;
    let registries = lock.registries_at(base).map_err(|e| ClientError::Lock(e.to_string()))?;
    let mut targets = Vec::new();
    for r in registries {
        let pin = pins.get(&r.name).cloned().unwrap_or_default();
        let locked_key = lock.log.keys.get(&r.name).cloned();
        if pin.key.is_none() && locked_key.is_none() && !pin.require {
            continue;
        }
        let url = url::Url::parse(&r.url).map_err(|e| ClientError::Lock(format!("registry {}: {e}", r.name)))?;
        let opts = crate::registry::OpenOptions::for_registry(&r.name, &url, &config, offline);
        targets.push(Target {
            client: crate::registry::open(&r.name, &url, &opts)?,
            name: r.name,
            pin,
            locked_key,
        });
    }
    check(lock, &targets, mode, offline)
}

fn check(lock: &Lockfile, targets: &[Target], mode: Mode, offline: bool) -> Result<Report, ClientError> {
    let cache = crate::config::cache_dir();
    let mut report = Report::default();
    let mut jobs = Vec::new();
    for t in targets {
        let claims: Vec<Claim> = lock
            .packages
            .iter()
            .filter(|p| p.registry == t.name)
            .map(|p| Claim {
                name: p.name.to_string(),
                version: p.version.to_string(),
                sha256: p.sha256.to_ascii_lowercase(),
                size: p.size,
                index: lock.log.indexes.get(p.name.as_str()).copied(),
            })
            .collect();
        if claims.is_empty() && mode != Mode::Lock {
            continue;
        }
        jobs.push((t, claims));
    }
    if jobs.is_empty() {
        return Ok(report);
    }
    // On the process's one runtime, from any thread (callers may be inside it).
    let results: Vec<Result<Outcome, ClientError>> = crate::runtime::block_on(futures_util::future::join_all(
        jobs.iter()
            .map(|(t, claims)| check_registry(t, claims, mode, offline, &cache)),
    ))
    .map_err(memory_err)?;
    for r in results {
        let o = r?;
        if let Some(k) = o.key {
            report.keys.insert(o.registry.clone(), k);
        }
        if let Some(size) = o.size {
            report.checkpoints.insert(o.registry.clone(), size);
        }
        report.notices.extend(o.notice);
        report.proved += o.proved;
        report.remembered += o.remembered;
        report.requests += o.requests;
        report.rounds = report.rounds.max(o.rounds);
    }
    Ok(report)
}

#[derive(Default)]
struct Outcome {
    registry: String,
    key: Option<String>,
    notice: Option<String>,
    size: Option<u64>,
    proved: usize,
    remembered: usize,
    requests: usize,
    rounds: usize,
}

fn memory_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Memory(e.to_string())
}

async fn check_registry(
    t: &Target,
    claims: &[Claim],
    mode: Mode,
    offline: bool,
    cache: &Path,
) -> Result<Outcome, ClientError> {
    let mut out = Outcome {
        registry: t.name.clone(),
        ..Outcome::default()
    };
    let log_err = |source| ClientError::Log {
        registry: t.name.clone(),
        source,
    };
    // fm.toml's key wins over fm.lock's: changing it there is how a
    // rotation is accepted (and the lock diff shows it).
    let (pinned, pinned_by) = match (&t.pin.key, &t.locked_key) {
        (Some(k), _) => (Some(k.clone()), "fm.toml"),
        (None, Some(k)) => (Some(k.clone()), "fm.lock"),
        (None, None) => (None, ""),
    };
    let pinned = pinned.map(|k| LogVerifier::parse(&k)).transpose().map_err(log_err)?;
    if pinned.is_none() && mode != Mode::Lock {
        if t.pin.require {
            return Err(ClientError::Lock(format!(
                "fm.toml requires a transparency log for registry {}, but fm.lock records no log-key for it",
                t.name
            )));
        }
        return Ok(out);
    }
    // Everything proved before under this key: no request at all.
    if let Some(v) = &pinned
        && mode != Mode::Reprove
    {
        let mem = Memory::load(cache, v).map_err(memory_err)?;
        let todo = claims
            .iter()
            .filter(|c| {
                !c.index.is_some_and(|i| {
                    mem.verified
                        .contains(&memory::verified_line(i, &c.sha256, &c.name, &c.version))
                })
            })
            .count();
        if todo == 0 {
            out.key = Some(v.vkey().to_owned());
            out.remembered = claims.len();
            return Ok(out);
        }
    }
    if offline {
        // Nothing can be fetched: keep what the lock says, prove later.
        out.key = pinned.map(|v| v.vkey().to_owned());
        out.notice = Some(format!(
            "registry {}: packages not proved against its transparency log (--offline); the next online run proves them",
            t.name
        ));
        return Ok(out);
    }
    // The key first: a registry without a log (FlowMason Studio) costs one
    // request, and the request log reads the same on every run.
    let Some(key_file) = t.client.log_file(layout::KEY).await? else {
        let why = match (&pinned, t.pin.require) {
            (Some(v), _) => format!("{pinned_by} pins its log key {}", v.vkey()),
            (None, true) => "fm.toml sets require-log = true for it".to_owned(),
            (None, false) => {
                let url = crate::registry::redact_url(t.client.url());
                out.notice = memory::first_notice(cache, &format!("unlogged {url}")).then(|| format!(
                    "registry {} ({url}) keeps no transparency log: its packages are checked by SHA-256 only, not verified against a log (said once; set require-log = true on it to refuse such a registry)",
                    t.name
                ));
                return Ok(out);
            }
        };
        return Err(ClientError::Required {
            registry: t.name.clone(),
            why,
        });
    };
    let published = LogVerifier::parse(&String::from_utf8_lossy(&key_file)).map_err(log_err)?;
    let verifier = match pinned {
        Some(v) if v.vkey() != published.vkey() => {
            return Err(ClientError::KeyChanged {
                registry: t.name.clone(),
                pinned: v.vkey().to_owned(),
                pinned_by,
                published: published.vkey().to_owned(),
            });
        }
        Some(v) => v,
        None => {
            out.notice = Some(format!(
                "registry {}: trusting its transparency log key {} on first use (recorded in fm.lock; pin it with log-key in fm.toml)",
                t.name,
                published.vkey()
            ));
            published
        }
    };
    out.key = Some(verifier.vkey().to_owned());
    let not_logged = |c: &Claim, reason: String| ClientError::NotLogged {
        registry: t.name.clone(),
        package: c.name.clone(),
        version: c.version.clone(),
        sha256: c.sha256.clone(),
        reason,
    };
    for c in claims {
        if c.index.is_none() {
            return Err(not_logged(
                c,
                "the registry keeps a log, but gives no log_index for this version".into(),
            ));
        }
    }
    let note = t.client.log_file(layout::CHECKPOINT).await?.ok_or_else(|| {
        log_err(TlogError::Missing {
            registry: t.name.clone(),
            path: layout::CHECKPOINT.into(),
        })
    })?;
    let cp = verifier.open_checkpoint(&note).map_err(log_err)?;
    out.size = Some(cp.size());
    let mem = Memory::load(cache, &verifier).map_err(memory_err)?;
    let tiles = Tiles::default();

    // The new checkpoint must extend the remembered one.
    if let Some((old, _)) = &mem.checkpoint {
        let fork = |reason: String| ClientError::Fork {
            registry: t.name.clone(),
            size: cp.size(),
            root: cp.hash().to_string(),
            remembered_size: old.size(),
            reason,
            evidence: mem.checkpoint_path(),
        };
        if old.size() > cp.size() {
            return Err(fork(format!(
                "it has fewer records than before ({} < {}): a rollback or a truncated log",
                cp.size(),
                old.size()
            )));
        }
        if old.size() == cp.size() && old.hash() != cp.hash() {
            return Err(fork(format!(
                "the same size with another root (remembered {})",
                old.hash()
            )));
        }
        tiles
            .run(
                t.client.as_ref(),
                |tiles| proof::consistent(tiles, old, &cp).map_err(&fork),
                ClientError::Registry,
                || fork("its tiles cannot prove consistency".into()),
            )
            .await?;
    }

    // Inclusion of every claim, all proofs' tiles fetched together.
    let todo: Vec<&Claim> = claims
        .iter()
        .filter(|c| {
            mode == Mode::Reprove
                || !c.index.is_some_and(|i| {
                    mem.verified
                        .contains(&memory::verified_line(i, &c.sha256, &c.name, &c.version))
                })
        })
        .collect();
    out.remembered = claims.len() - todo.len();
    for c in &todo {
        let index = c.index.unwrap_or(u64::MAX);
        if index >= cp.size() {
            return Err(not_logged(
                c,
                format!(
                    "its document gives log index {index}, past the {} records of the signed checkpoint",
                    cp.size()
                ),
            ));
        }
    }
    let entries: Vec<Vec<u8>> = tiles
        .run(
            t.client.as_ref(),
            |tiles| {
                let mut all = Vec::with_capacity(todo.len());
                let mut more = false;
                for c in &todo {
                    let index = c.index.unwrap_or(u64::MAX);
                    match proof::prove(tiles, &cp, index) {
                        Ok(Needs::Done(e)) => all.push(e),
                        Ok(Needs::More) => more = true,
                        Err(ProofFailure::NoEntry(reason)) => {
                            return Err(not_logged(c, format!("log index {index}: {reason}")));
                        }
                        Err(ProofFailure::NotIncluded(reason)) => {
                            return Err(ClientError::NotIncluded {
                                registry: t.name.clone(),
                                package: c.name.clone(),
                                version: c.version.clone(),
                                sha256: c.sha256.clone(),
                                index,
                                reason,
                            });
                        }
                    }
                }
                Ok(if more { Needs::More } else { Needs::Done(all) })
            },
            ClientError::Registry,
            || ClientError::Memory("the registry's log tiles could not all be fetched".into()),
        )
        .await?;
    let mut lines = Vec::with_capacity(todo.len());
    for (c, entry) in todo.iter().zip(&entries) {
        let index = c.index.unwrap_or(u64::MAX);
        let record =
            Record::parse(entry).map_err(|e| not_logged(c, format!("log index {index} is not a record: {e}")))?;
        let same = record.action == Action::Publish
            && record.name == c.name
            && record.version == c.version
            && record.sha256 == c.sha256
            && record.size == Some(c.size);
        if !same {
            let size = record.size.map(|s| format!(", size {s}")).unwrap_or_default();
            return Err(not_logged(
                c,
                format!(
                    "log index {index} records {record}{size} instead (the document says size {})",
                    c.size
                ),
            ));
        }
        lines.push(memory::verified_line(index, &c.sha256, &c.name, &c.version));
    }
    out.proved = todo.len();
    out.requests = 2 + tiles.requests.load(std::sync::atomic::Ordering::Relaxed);
    out.rounds = 2 + tiles.rounds.load(std::sync::atomic::Ordering::Relaxed);
    Memory::save(cache, &verifier, &note, cp.size(), &lines).map_err(memory_err)?;
    Ok(out)
}

/// Why `lock` is stale for the logs `decls` ask for: a `log-key` or
/// `require-log` in fm.toml that fm.lock does not record (decided offline,
/// for [`crate::resolve::check_fresh`]).
pub fn stale_pins(decls: &[crate::manifest::RegistryDecl], lock: &Lockfile) -> Vec<String> {
    let mut out = Vec::new();
    for d in decls {
        let locked = lock.log.keys.get(&d.name);
        match (&d.log.key, locked) {
            (Some(want), Some(have)) if want != have => out.push(format!(
                "fm.toml pins log-key {want} for registry {}, fm.lock records {have}",
                d.name
            )),
            (Some(want), None) => out.push(format!(
                "fm.toml pins log-key {want} for registry {}, which fm.lock does not record",
                d.name
            )),
            (None, None) if d.log.require => out.push(format!(
                "fm.toml sets require-log for registry {}, and fm.lock records no log-key for it",
                d.name
            )),
            _ => {}
        }
    }
    out
}
