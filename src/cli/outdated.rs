//! `fm outdated`: reads fm.lock, fetches each locked package's document from
//! the registry the lock names, and prints [`crate::outdated::report`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;

use super::args::OutdatedArgs;
use super::{Context, Failure};
use crate::lock::{LOCK_FILE, Lockfile};
use crate::manifest::Manifest;
use crate::outdated::{self, Row};
use crate::registry::{PackageDocument, RegistryError};

/// Why `fm outdated` cannot start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum OutdatedError {
    /// There is nothing locked to compare.
    #[error("{} does not exist", path.display())]
    #[diagnostic(
        code(fm::outdated::no_lock),
        help("run `fm lock` first: fm outdated compares the locked versions with the registries")
    )]
    NoLock { path: PathBuf },
    /// The async runtime could not start.
    #[error("cannot start the runtime that fetches registry documents: {0}")]
    #[diagnostic(code(fm::outdated::runtime))]
    Runtime(std::io::Error),
}

/// A registry's answer for one package.
type Fetched = Result<Option<Arc<PackageDocument>>, RegistryError>;

/// How many registry documents are fetched at once.
const CONCURRENCY: usize = 16;

pub fn outdated(ctx: &Context, a: OutdatedArgs) -> Result<(), Failure> {
    let manifest = Manifest::load(&ctx.manifest_path()?)?;
    let lock_path = manifest.root().join(LOCK_FILE);
    let lock = Lockfile::load(&lock_path)?.ok_or(OutdatedError::NoLock { path: lock_path })?;
    let set = crate::project::Project::new(manifest.clone()).registries(ctx.global.offline)?;

    let mut jobs = Vec::new();
    for p in &lock.packages {
        match set.entries.iter().find(|e| e.decl.name == p.registry) {
            Some(e) => jobs.push((p.name.to_string(), e.client.clone())),
            None => ctx.shell.warn(format!(
                "fm.lock takes {} from registry {}, which this project no longer uses; run `fm lock`",
                p.name, p.registry
            )),
        }
    }
    let runtime = crate::runtime::get().map_err(OutdatedError::Runtime)?;
    let fetched: Vec<(String, Fetched)> = runtime.block_on(
        futures_util::stream::iter(jobs)
            .map(|(name, client)| async move {
                let doc = client.document(&name).await;
                (name, doc)
            })
            .buffer_unordered(CONCURRENCY)
            .collect(),
    );
    let mut docs = BTreeMap::new();
    for (name, doc) in fetched {
        docs.insert(name, doc?);
    }

    let direct = manifest
        .dependencies
        .iter()
        .map(|(n, d)| (n.clone(), d.req.clone()))
        .collect();
    let rows = outdated::report(&lock, &direct, &docs);
    for y in crate::project::yanked::in_documents(&lock, |n| docs.get(n).and_then(|d| d.as_deref())) {
        ctx.shell.warn(y.warning());
    }
    if ctx.global.json {
        ctx.shell.json(&outdated::to_json(&rows));
    } else {
        ctx.shell.data(table(&rows, super::diff::stdout_color(ctx)));
        summary(ctx, &rows);
    }
    let up: Vec<&str> = rows
        .iter()
        .filter(|r| r.upgradable())
        .map(|r| r.name.as_str())
        .collect();
    if a.exit_code && !up.is_empty() {
        return Err(Failure::user(miette::miette!(
            help = "--exit-code makes fm outdated exit 1 when a locked package can be upgraded",
            "{} can be upgraded",
            up.join(", ")
        )));
    }
    Ok(())
}

/// The table on stdout: allowed upgrades in green, versions beyond the
/// requirements in yellow (when colored).
fn table(rows: &[Row], color: bool) -> String {
    let paint = |on: bool, code: &str, s: &str| {
        if color && on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let head = ["Package", "Locked", "Allowed", "Reachable", "Newest", "Registry"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let dash = || "-".to_owned();
            [
                r.name.clone(),
                r.locked.clone(),
                r.allowed.clone().unwrap_or_else(dash),
                r.reachable.clone().unwrap_or_else(dash),
                r.newest.clone().unwrap_or_else(dash),
                r.registry.clone(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.len());
        }
    }
    let mut out = String::new();
    let line = |c: [String; 6], r: Option<&Row>| {
        let up = r.is_some_and(Row::upgradable);
        let held = r.is_some_and(Row::held_back);
        let beyond = r.is_some_and(Row::beyond_requirements);
        let pad = |i: usize| " ".repeat(width[i] - c[i].len());
        format!(
            "{}{}  {}{}  {}{}  {}{}  {}{}  {}\n",
            c[0],
            pad(0),
            c[1],
            pad(1),
            paint(up && !held, "32", &c[2]),
            pad(2),
            paint(held, "31", &c[3]),
            pad(3),
            paint(beyond, "33", &c[4]),
            pad(4),
            c[5]
        )
    };
    out.push_str(&line(head.map(str::to_owned), None));
    for (c, r) in cells.into_iter().zip(rows) {
        out.push_str(&line(c, Some(r)));
    }
    out
}

/// What to do about it, on stderr.
fn summary(ctx: &Context, rows: &[Row]) {
    let up: Vec<&str> = rows
        .iter()
        .filter(|r| r.upgradable())
        .map(|r| r.name.as_str())
        .collect();
    let beyond: Vec<&str> = rows
        .iter()
        .filter(|r| r.beyond_requirements())
        .map(|r| r.name.as_str())
        .collect();
    for r in rows.iter().filter(|r| r.held_back()) {
        let holders: Vec<String> = r.held_back_by.iter().map(ToString::to_string).collect();
        ctx.shell.info(format!(
            "{} {} is held back by {}: fm lock can reach {} (upgrade those with it: fm lock --upgrade-package {} --upgrade-package NAME)",
            r.name,
            r.allowed.as_deref().unwrap_or("-"),
            holders.join(", "),
            r.reachable.as_deref().unwrap_or("-"),
            r.name,
        ));
    }
    if up.is_empty() && beyond.is_empty() && !rows.iter().any(Row::held_back) {
        ctx.shell
            .info(format!("All {} locked packages are up to date.", rows.len()));
        return;
    }
    if up.is_empty() && beyond.is_empty() {
        return;
    }
    if !up.is_empty() {
        ctx.shell.info(format!(
            "{} can be upgraded within the requirements: fm lock --upgrade-package NAME (or fm lock --upgrade)",
            up.join(", ")
        ));
    }
    if !beyond.is_empty() {
        ctx.shell.info(format!(
            "{} {} newer versions beyond the requirements: raise them in fm.toml (or in the packages that depend on them)",
            beyond.join(", "),
            if beyond.len() == 1 { "has" } else { "have" }
        ));
    }
}
