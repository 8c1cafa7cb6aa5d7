//! `fm sync`: make the install folder hold exactly what fm.lock names.
//!
//! Modes: by default a missing or stale lock is re-locked first; `--locked`
//! fails on a stale lock instead (naming what differs) and installs
//! nothing; `--frozen` installs the lock as it is, reading no registry
//! metadata (only archives). In every mode, before any request, the lock's
//! registry URLs must be the ones the project declares
//! ([`crate::project::binding`]); `--offline` uses the cache only. The
//! decisions are the project layer's ([`Project::prepare_sync`]); this
//! module prints them and drives the install with progress bars.
//! A plain sync notices installed files edited since it wrote them by their
//! stat data and installs those packages again; `--repair` also re-hashes
//! everything against the locked archives first (what `fm verify` does) and
//! installs whatever differs.

use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::args::SyncArgs;
use super::fmt;
use super::{Context, Failure};
use crate::install::{self, Cache, Layout, Progress};
use crate::lock::{Change, Lockfile};
pub(super) use crate::project::Digests;
use crate::project::{LockMode, Project};

pub fn sync(ctx: &Context, a: SyncArgs) -> Result<(), Failure> {
    let start = Instant::now();
    let project = Project::load(&ctx.manifest_path()?)?;
    let mode = LockMode::from_flags(a.locked, a.frozen);
    let layout = match &a.dir {
        Some(d) => Layout::dir_in(&ctx.cwd, d),
        None => Layout::project(project.root()),
    };
    // The install folder's no-op proof runs while fm.lock is read.
    let precheck = if a.repair {
        install::Precheck::default()
    } else {
        install::Precheck::start(&layout)
    };
    let plan = project.prepare_sync(mode, ctx.global.offline)?;
    if plan.relocked {
        super::requests_done();
    }
    for change in &plan.changes {
        ctx.shell.info(change);
    }
    for y in &plan.yanked {
        ctx.shell.warn(y.warning());
    }
    for n in &plan.log.notices {
        ctx.shell.warn(n);
    }
    super::verify::log_figures(ctx, &plan.log);
    // Nothing is installed that its registry's log does not prove (SPEC §9).
    super::verify::prove_log(ctx, &project, &plan.lock, crate::tlog::client::Mode::Sync)?;
    let reinstall = if a.repair {
        drifted(ctx, &layout, &plan.lock)?
    } else {
        Default::default()
    };
    let report = run_install(
        ctx,
        &plan.lock,
        project.root(),
        &layout,
        Install {
            prune: true,
            reinstall,
            precheck,
        },
        plan.digests(),
    )?;
    summarize(ctx, &report, start.elapsed(), &plan.changes);
    // The process ends now: freeing the lock's and the report's thousands
    // of allocations one by one would only delay it (as `fm lock` does).
    std::mem::forget((plan, report, project));
    Ok(())
}

/// `--repair`: the packages `fm verify` would report (checked against the
/// locked archives), announced.
fn drifted(ctx: &Context, layout: &Layout, lock: &Lockfile) -> Result<std::collections::BTreeSet<String>, Failure> {
    let drift = match install::verify::verify(layout, &Cache::from_env(), Some(&lock.packages)) {
        Ok(d) => d,
        // Nothing installed yet: the install below is a full one anyway.
        Err(install::InstallError::NothingInstalled { .. }) => return Ok(Default::default()),
        Err(e) => return Err(e.into()),
    };
    // A package whose archive is not cached is installed again: that
    // downloads the locked archive, verified, and unpacks it.
    let names = drift.to_repair();
    if names.is_empty() {
        ctx.shell.status(
            "Verified",
            format!(
                "{}, {}: nothing to repair",
                fmt::count(drift.checked_packages, "package", "packages"),
                fmt::count(drift.checked_files, "file", "files")
            ),
        );
    } else {
        let list: Vec<&str> = names.iter().map(String::as_str).collect();
        ctx.shell.status("Repairing", list.join(", "));
    }
    Ok(names)
}

/// How [`run_install`] installs (the rest of [`install::Options`] comes
/// from the command line and the environment).
#[derive(Default)]
pub(super) struct Install {
    /// Remove what the lock does not name (`fm sync`; not `fm install`).
    pub prune: bool,
    /// Packages to install again (`--repair`).
    pub reinstall: std::collections::BTreeSet<String>,
    /// The install folder's no-op proof, started early.
    pub precheck: install::Precheck,
}

/// Installs `lock`'s packages into `layout`, with bars when stderr is a
/// terminal. Relative registry paths in the lock are relative to `base`
/// (the folder of fm.toml and fm.lock).
pub(super) fn run_install(
    ctx: &Context,
    lock: &Lockfile,
    base: &Path,
    layout: &Layout,
    how: Install,
    digests: Digests<'_>,
) -> Result<install::Report, Failure> {
    let opts = install::Options {
        offline: ctx.global.offline,
        prune: how.prune,
        cache: Cache::from_env(),
        reinstall: how.reinstall,
        precheck: how.precheck,
    };
    let bars = Bars {
        enabled: ctx.shell.progress_enabled(),
        shell: ctx.shell.clone(),
        bar: Default::default(),
    };
    let report = crate::project::install_lock(lock, base, layout, &opts, &bars, digests)?;
    if !report.changed.is_empty() {
        ctx.shell.status(
            "Reinstalled",
            format!("{} (files changed since fm installed them)", report.changed.join(", ")),
        );
    }
    for name in &report.foreign {
        ctx.shell.warn(format!(
            "left {} in place: fm did not install it ({} does not record it); remove it yourself if it is not needed",
            layout.packages.join(name).display(),
            layout.state.display()
        ));
    }
    Ok(report)
}

/// One change to the install folder, as printed and as in `--json`.
#[derive(Debug, serde::Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
enum InstallChange<'a> {
    /// Not installed before.
    Added { name: &'a str, version: &'a str },
    /// Another version was installed before.
    Updated { name: &'a str, from: &'a str, to: &'a str },
    /// The same version, installed again (`--repair`, a changed digest).
    Reinstalled { name: &'a str, version: &'a str },
    /// Removed; `version` is null when the state file did not know it.
    Removed { name: &'a str, version: Option<&'a str> },
}

impl InstallChange<'_> {
    fn name(&self) -> &str {
        match self {
            InstallChange::Added { name, .. }
            | InstallChange::Updated { name, .. }
            | InstallChange::Reinstalled { name, .. }
            | InstallChange::Removed { name, .. } => name,
        }
    }
}

impl std::fmt::Display for InstallChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstallChange::Added { name, version } => write!(f, " + {name} {version}"),
            InstallChange::Updated { name, from, to } => write!(f, " ~ {name} {from} -> {to}"),
            InstallChange::Reinstalled { name, version } => write!(f, " ~ {name} {version} (reinstalled)"),
            InstallChange::Removed { name, version: Some(v) } => write!(f, " - {name} {v}"),
            InstallChange::Removed { name, version: None } => write!(f, " - {name}"),
        }
    }
}

/// What `report` changed, one entry a package, sorted by name.
fn install_changes(report: &install::Report) -> Vec<InstallChange<'_>> {
    let mut out: Vec<InstallChange<'_>> = report
        .installed
        .iter()
        .map(|(name, version)| match report.previous.get(name) {
            None => InstallChange::Added { name, version },
            Some(old) if old == version => InstallChange::Reinstalled { name, version },
            Some(old) => InstallChange::Updated {
                name,
                from: old,
                to: version,
            },
        })
        .chain(report.removed.iter().map(|name| InstallChange::Removed {
            name,
            version: report.previous.get(name).map(String::as_str),
        }))
        .collect();
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

/// Each change on its own line (`+ a 1.0.0`, `~ b 1.0.0 -> 1.1.0`,
/// `- c 0.3.1`), then the summary (`Installed 2 packages, removed 1 in
/// 85 ms`), on stderr; with `--json`, the document of docs/review-and-ci.md
/// on stdout. `--quiet` prints nothing.
pub(super) fn summarize(ctx: &Context, report: &install::Report, elapsed: Duration, lock_changes: &[Change]) {
    print_changes(ctx, report, lock_changes);
    let mut line = if report.installed.is_empty() && report.removed.is_empty() {
        format!("{} up to date", fmt::count(report.unchanged, "package", "packages"))
    } else {
        format!(
            "Installed {}",
            fmt::count(report.installed.len(), "package", "packages")
        )
    };
    if !report.removed.is_empty() {
        line.push_str(&format!(", removed {}", report.removed.len()));
    }
    ctx.shell.info(format!("{line} in {}", fmt::duration(elapsed)));
}

/// The changes alone: one line each on stderr, or with `--json` the
/// document of docs/review-and-ci.md on stdout.
pub(super) fn print_changes(ctx: &Context, report: &install::Report, lock_changes: &[Change]) {
    let changes = install_changes(report);
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "version": 1,
            "lock_changes": lock_changes,
            "changes": changes,
            "installed": report.installed.len(),
            "removed": report.removed.len(),
            "unchanged": report.unchanged,
            "downloaded": report.downloaded,
            "downloaded_bytes": report.downloaded_bytes,
        }));
    }
    for c in &changes {
        ctx.shell.info(c);
    }
}

/// indicatif bars on stderr when it is a terminal (and not --quiet):
/// bytes while downloading, then packages while unpacking. Also says when
/// fm waits for another fm process.
struct Bars {
    enabled: bool,
    shell: super::Shell,
    bar: std::sync::Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn replace(&self, bar: Option<ProgressBar>) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(old) = slot.take() {
                old.finish_and_clear();
            }
            *slot = bar;
        }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(slot) = self.bar.lock()
            && let Some(b) = slot.as_ref()
        {
            f(b);
        }
    }
}

impl Progress for Bars {
    fn waiting(&self, lock: &Path) {
        self.shell.status(
            "Waiting",
            format!("for another fm process to release {}", lock.display()),
        );
    }

    fn downloading(&self, packages: usize, bytes: u64) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::new(bytes);
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "Downloading {packages} {} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}}",
            if packages == 1 { "package" } else { "packages" }
        )) {
            bar.set_style(style.progress_chars("=> "));
        }
        self.replace(Some(bar));
    }

    fn downloaded(&self, bytes: u64) {
        self.with(|b| b.inc(bytes));
    }

    fn unpacking(&self, packages: usize) {
        if packages == 0 || !self.enabled {
            self.replace(None);
            return;
        }
        let bar = ProgressBar::new(packages as u64);
        if let Ok(style) = ProgressStyle::with_template("  Unpacking [{bar:30}] {pos}/{len} {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        self.replace(Some(bar));
    }

    fn unpacked(&self, name: &str) {
        let name = name.to_owned();
        self.with(|b| {
            b.set_message(name);
            b.inc(1);
        });
    }

    fn finish(&self) {
        self.replace(None);
    }
}
