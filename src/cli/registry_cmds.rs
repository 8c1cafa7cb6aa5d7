//! `fm registry list | add | remove | set-default | cache`: the user's
//! registries in `~/.flowmason/registries.json` (FlowMason's format) and
//! the download cache.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Context, Failure, fmt};
use crate::config::{RegistryAdd, RegistryEntry, Upsert, UserConfig};

pub fn list(ctx: &Context, all: bool) -> Result<(), Failure> {
    let config = UserConfig::load()?;
    let mut entries: Vec<&RegistryEntry> = config.registries.iter().filter(|e| all || e.enabled).collect();
    entries.sort_by_key(|e| (e.priority, e.name.clone()));
    if ctx.global.json {
        // Tokens are never printed: only whether one is stored.
        let out: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name,
                    "url": e.url,
                    "priority": e.priority,
                    "enabled": e.enabled,
                    "is_default": e.is_default,
                    "can_publish": e.can_publish,
                    "has_token": e.auth_token.is_some(),
                    "mirror": e.mirror,
                    "description": e.description,
                })
            })
            .collect();
        ctx.shell.json(&serde_json::json!({"version": 1, "registries": out}));
        return Ok(());
    }
    if entries.is_empty() {
        ctx.shell
            .info("No registries configured (add one with `fm registry add NAME URL`)");
        return Ok(());
    }
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for e in entries {
        let mut flags = Vec::new();
        if e.is_default {
            flags.push("default".to_owned());
        }
        if !e.enabled {
            flags.push("disabled".to_owned());
        }
        if e.auth_token.is_some() {
            flags.push("token".to_owned());
        }
        if let Some(m) = &e.mirror {
            flags.push(format!("mirror {m}"));
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!("  ({})", flags.join(", "))
        };
        out.push_str(&format!("{:<width$}  {:>4}  {}{flags}\n", e.name, e.priority, e.url));
    }
    ctx.shell.data(out);
    Ok(())
}

pub fn add(
    ctx: &Context,
    name: String,
    url: String,
    token: Option<String>,
    priority: Option<i64>,
    default: bool,
) -> Result<(), Failure> {
    crate::names::validate(&name)
        .map_err(|why| Failure::usage(format!("invalid registry name {name:?}: {why}"), None))?;
    let parsed = crate::location::parse_location(&url, &ctx.cwd)
        .map_err(|why| Failure::usage(format!("invalid registry URL {url:?}: {why}"), None))?;
    let url = if parsed.scheme() == "file" {
        parsed.to_string()
    } else {
        // Credentials belong in --token, not in the URL.
        crate::registry::redact_url(&parsed).to_string()
    };
    if parsed.scheme() != "file" {
        // As FlowMason does: probe `health`; unlike it, keep the registry
        // enabled either way (it may just be down right now).
        let probe = crate::registry::HttpRegistry::new(&name, &parsed, &crate::registry::OpenOptions::default())?;
        let probe = super::target::runtime()?
            .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(5), probe.health()).await });
        match probe {
            Ok(Ok(())) => {}
            Ok(Err(e)) => ctx.shell.warn(format!("{e} (saved anyway)")),
            Err(_) => ctx
                .shell
                .warn(format!("{name} did not answer within 5 s (saved anyway)")),
        }
    }
    let mut config = UserConfig::load()?;
    let outcome = config.upsert(RegistryAdd {
        name: name.clone(),
        url,
        token,
        priority,
        default,
    });
    let entry = config.get(&name).cloned();
    let (change, changed) = match (&outcome, &entry) {
        (Upsert::Updated(changed), Some(e)) if changed.is_empty() => {
            ctx.shell.status(
                "Unchanged",
                format!("registry {name} ({}, priority {})", e.url, e.priority),
            );
            ("unchanged", Vec::new())
        }
        (Upsert::Updated(changed), _) => {
            config.save()?;
            ctx.shell
                .status("Updated", format!("registry {name}: {}", changed.join(", ")));
            ("updated", changed.clone())
        }
        (Upsert::Added, e) => {
            config.save()?;
            let (u, p) = e.as_ref().map(|e| (e.url.clone(), e.priority)).unwrap_or_default();
            ctx.shell
                .status("Added", format!("registry {name} ({u}, priority {p})"));
            ("added", Vec::new())
        }
    };
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "version": 1,
            "change": change,
            "changed": changed,
            "name": name,
            "url": entry.as_ref().map(|e| e.url.clone()),
            "priority": entry.as_ref().map(|e| e.priority),
            "is_default": entry.as_ref().is_some_and(|e| e.is_default),
            "has_token": entry.as_ref().is_some_and(|e| e.auth_token.is_some()),
        }));
    }
    Ok(())
}

fn missing(name: &str) -> Failure {
    Failure::user(miette::miette!(
        help = "see the configured registries with `fm registry list --all`",
        "no registry named {name:?} is configured"
    ))
}

pub fn remove(ctx: &Context, name: String) -> Result<(), Failure> {
    let mut config = UserConfig::load()?;
    let before = config.registries.len();
    config.registries.retain(|e| e.name != name);
    if config.registries.len() == before {
        return Err(missing(&name));
    }
    config.save()?;
    ctx.shell.status("Removed", format!("registry {name}"));
    if ctx.global.json {
        ctx.shell
            .json(&serde_json::json!({"version": 1, "change": "removed", "name": name}));
    }
    Ok(())
}

pub fn set_default(ctx: &Context, name: String) -> Result<(), Failure> {
    let mut config = UserConfig::load()?;
    if config.get(&name).is_none() {
        return Err(missing(&name));
    }
    for e in &mut config.registries {
        e.is_default = e.name == name;
    }
    config.save()?;
    ctx.shell.status("Default", format!("registry is now {name}"));
    if ctx.global.json {
        ctx.shell
            .json(&serde_json::json!({"version": 1, "change": "default", "name": name}));
    }
    Ok(())
}

/// Files under `dir` (recursively) with their size and modification time.
fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, u64, SystemTime)>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            walk(&entry.path(), out);
        } else if meta.is_file() {
            out.push((
                entry.path(),
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            ));
        }
    }
}

pub fn cache(ctx: &Context, clear: bool, older_than: Option<u64>) -> Result<(), Failure> {
    let dir = crate::config::cache_dir();
    if !clear {
        let mut files = Vec::new();
        walk(&dir, &mut files);
        if older_than.is_some() {
            return Err(Failure::usage("--older-than needs --clear", None));
        }
        let size: u64 = files.iter().map(|f| f.1).sum();
        if ctx.global.json {
            ctx.shell.json(&serde_json::json!({
                "version": 1,
                "path": dir,
                "files": files.len(),
                "size_bytes": size,
            }));
        } else {
            ctx.shell.data(format!(
                "{}\n{}, {}\n",
                dir.display(),
                fmt::count(files.len(), "file", "files"),
                fmt::size(size)
            ));
        }
        return Ok(());
    }
    // No link is followed, and no sync fills the cache meanwhile.
    let cache = crate::install::Cache::new(dir.clone());
    let cleared = cache.clear(
        older_than.map(|days| Duration::from_secs(days.saturating_mul(86_400))),
        || {
            ctx.shell.status(
                "Waiting",
                format!("for another fm process to release {}", cache.lock_path().display()),
            )
        },
    )?;
    let (removed, freed) = (cleared.files, cleared.bytes);
    ctx.shell.status(
        "Removed",
        format!(
            "{} ({}) from {}",
            fmt::count(removed, "file", "files"),
            fmt::size(freed),
            dir.display()
        ),
    );
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "version": 1,
            "path": dir,
            "removed_files": removed,
            "freed_bytes": freed,
        }));
    }
    Ok(())
}
