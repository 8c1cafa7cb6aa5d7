//! `fm verify`: the installed tree against the archives it came from (and,
//! in a project, against the ones fm.lock names).

use std::fmt::Write as _;

use super::args::VerifyArgs;
use super::{Context, Failure, fmt};
use crate::install::{self, Cache, Layout, verify};
use crate::lock::{LOCK_FILE, Lockfile};

pub fn verify(ctx: &Context, a: VerifyArgs) -> Result<(), Failure> {
    if a.log {
        return verify_log(ctx);
    }
    let (layout, lock) = match &a.dir {
        Some(d) => (Layout::dir_in(&ctx.cwd, d), None),
        None => {
            let manifest_path = ctx.manifest_path()?;
            let root = manifest_path.parent().unwrap_or(std::path::Path::new("."));
            (
                Layout::project(root),
                Lockfile::load(&root.join(LOCK_FILE))?.map(|l| (l, root.to_owned())),
            )
        }
    };
    let cache = Cache::from_env();
    let locked = lock.as_ref().map(|(l, _)| l.packages.as_slice());
    let mut drift = verify::verify(&layout, &cache, locked)?;
    // What a package must contain comes from its archive: fetch the locked
    // ones that left the cache, then check again.
    if let Some((lock, root)) = &lock
        && !drift.uncached.is_empty()
        && !ctx.global.offline
    {
        let fetch: Vec<&crate::lock::LockedPackage> = lock
            .packages
            .iter()
            .filter(|p| drift.uncached.contains(&format!("{} {}", p.name, p.version)))
            .collect();
        if !fetch.is_empty() {
            let registries = lock
                .registries_at(root)
                .map_err(|e| Failure::user(miette::miette!("{e}")))?;
            let opts = install::Options {
                offline: false,
                prune: false,
                cache: cache.clone(),
                reinstall: Default::default(),
                precheck: Default::default(),
            };
            install::fetch_archives(&fetch, &registries, &opts, &install::NoProgress)?;
            drift = verify::verify(&layout, &cache, locked)?;
        }
    }
    if ctx.global.json {
        let packages: Vec<_> = drift
            .packages
            .iter()
            .map(
                |p| serde_json::json!({"name": p.name, "modified": p.modified, "missing": p.missing, "extra": p.extra}),
            )
            .collect();
        ctx.shell.json(&serde_json::json!({
            "version": 1,
            "clean": drift.is_clean(),
            "checked_packages": drift.checked_packages,
            "checked_files": drift.checked_files,
            "packages": packages,
            "missing_packages": drift.missing_packages,
            "extra_packages": drift.extra_packages,
            "not_locked": drift.not_locked.iter().map(|(n, i, l)| serde_json::json!({"name": n, "installed": i, "locked": l})).collect::<Vec<_>>(),
            "uncached": drift.uncached,
        }));
    }
    if drift.is_clean() {
        ctx.shell.info(format!(
            "Verified {} ({}): no drift",
            fmt::count(drift.checked_packages, "package", "packages"),
            fmt::count(drift.checked_files, "file", "files")
        ));
        return Ok(());
    }
    let mut text = String::new();
    for p in &drift.packages {
        let _ = writeln!(text, "{}:", p.name);
        for f in &p.modified {
            let _ = writeln!(text, "  modified {f}");
        }
        for f in &p.missing {
            let _ = writeln!(text, "  missing  {f}");
        }
        for f in &p.extra {
            let _ = writeln!(text, "  extra    {f}");
        }
    }
    for name in &drift.missing_packages {
        let _ = writeln!(text, "{name}: missing (the whole package folder)");
    }
    for name in &drift.extra_packages {
        let _ = writeln!(text, "{name}: extra (not installed by fm sync)");
    }
    for (name, installed, locked) in &drift.not_locked {
        let _ = writeln!(text, "{name}: installed {installed}, but fm.lock names {locked}");
    }
    for id in &drift.uncached {
        let _ = writeln!(
            text,
            "{id}: not checked (its archive is not in the cache {})",
            cache.root().display()
        );
    }
    Err(Failure::user(miette::miette!(
        help = "run `fm sync --repair` to install the drifted packages again from their locked archives",
        "installed packages differ from the archives they were installed from:\n{}",
        text.trim_end()
    )))
}

/// `fm verify --log`: every locked package proved again against its
/// registry's current checkpoint (and that checkpoint against the one this
/// machine remembers); the installed tree is not looked at.
fn verify_log(ctx: &Context) -> Result<(), Failure> {
    let project = crate::project::Project::load(&ctx.manifest_path()?)?;
    let Some(lock) = Lockfile::load(&project.lock_path())? else {
        return Err(Failure::user(miette::miette!(
            help = "run `fm lock` first",
            "{} does not exist",
            project.lock_path().display()
        )));
    };
    project.check_lock_urls(&lock, false)?;
    let report = prove_log(ctx, &project, &lock, crate::tlog::client::Mode::Reprove)?;
    let unlogged = lock
        .packages
        .iter()
        .filter(|p| !report.keys.contains_key(&p.registry))
        .count();
    let sizes: Vec<String> = report
        .checkpoints
        .iter()
        .map(|(r, n)| format!("{r} at {}", fmt::count(*n as usize, "record", "records")))
        .collect();
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "version": 1,
            "proved": report.proved,
            "unlogged": unlogged,
            "checkpoints": report.checkpoints,
        }));
    }
    ctx.shell.info(format!(
        "Verified {} against their registries' transparency logs ({})",
        fmt::count(report.proved, "package", "packages"),
        if sizes.is_empty() {
            "no logged registry".to_owned()
        } else {
            sizes.join(", ")
        }
    ));
    if unlogged > 0 {
        ctx.shell.warn(format!(
            "{} from registries without a log (or locked before fm checked logs): not verified",
            fmt::count(unlogged, "package", "packages")
        ));
    }
    Ok(())
}

/// Proves `lock`'s packages in their registries' logs ([`crate::tlog::client`]),
/// with the pins fm.toml (or the user config) declares; prints its notices.
pub(super) fn prove_log(
    ctx: &Context,
    project: &crate::project::Project,
    lock: &Lockfile,
    mode: crate::tlog::client::Mode,
) -> Result<crate::tlog::client::Report, Failure> {
    let pins = project.registry_decls()?.into_iter().map(|d| (d.name, d.log)).collect();
    let report = crate::tlog::client::prove_locked(lock, project.root(), &pins, mode, ctx.global.offline)
        .map_err(crate::project::ProjectError::from)?;
    for n in &report.notices {
        ctx.shell.warn(n);
    }
    log_figures(ctx, &report);
    Ok(report)
}

/// `--verbose`: what the log checks cost.
pub(super) fn log_figures(ctx: &Context, r: &crate::tlog::client::Report) {
    if r.proved + r.remembered > 0 {
        ctx.shell.verbose(format!(
            "Transparency log: {} proved, {} proved before; {} in {}",
            r.proved,
            r.remembered,
            fmt::count(r.requests, "request", "requests"),
            fmt::count(r.rounds, "round", "rounds")
        ));
    }
}
