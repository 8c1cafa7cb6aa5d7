//! `fm lock`: resolve and write fm.lock; `--check` says whether it is stale
//! without writing anything.

use super::args::LockArgs;
use super::{Context, Failure};
use crate::lock::Change;
use crate::project::{LockOptions, LockOutcome, LockState, Project};

/// fm.lock does not match fm.toml (`fm lock --check`).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{} is stale:\n{}", path.display(), reasons.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n"))]
#[diagnostic(code(fm::lock::stale), help("run `fm lock` to update it"))]
pub struct StaleLock {
    pub path: std::path::PathBuf,
    pub reasons: Vec<String>,
}

pub fn lock(ctx: &Context, a: LockArgs) -> Result<(), Failure> {
    let project = Project::load(&ctx.manifest_path()?)?;
    if a.check {
        return check(ctx, &project);
    }
    let opts = LockOptions {
        offline: ctx.global.offline,
        upgrade_all: a.upgrade,
        upgrade: a.upgrade_package,
    };
    let outcome = project.lock_keeping(&opts);
    super::requests_done();
    let (outcome, registries) = outcome?;
    print_outcome(ctx, &outcome.changes, &outcome);
    // The process exits next: freeing every document, version list and
    // map one by one would cost more than printing did (about 4 % of a
    // 2,000-package lock). Only here, never in the library.
    std::mem::forget(registries);
    std::mem::forget(outcome);
    Ok(())
}

/// Whether fm.lock is fresh, decided offline; writes nothing.
fn check(ctx: &Context, project: &Project) -> Result<(), Failure> {
    let path = project.lock_path();
    let reasons = match project.read_lock()? {
        None => vec!["fm.lock does not exist".to_owned()],
        Some(existing) => match (&existing.state, existing.valid()) {
            (LockState::Conflicted, _) => vec!["fm.lock contains git merge-conflict markers".to_owned()],
            (LockState::Invalid(e), _) => vec![e.to_string()],
            (LockState::Valid, Some(lock)) => project.check_fresh(lock).err().unwrap_or_default(),
            (LockState::Valid, None) => vec!["fm.lock cannot be read".to_owned()],
        },
    };
    if ctx.global.json {
        ctx.shell
            .json(&serde_json::json!({ "version": 1, "fresh": reasons.is_empty(), "reasons": reasons }));
    }
    if reasons.is_empty() {
        ctx.shell.status("Fresh", format!("{} matches fm.toml", path.display()));
        Ok(())
    } else {
        Err(StaleLock { path, reasons }.into())
    }
}

/// Prints one line a change (status, stderr), or the changes as JSON on
/// stdout with `--json`.
pub(super) fn print_outcome(ctx: &Context, changes: &[Change], outcome: &LockOutcome) {
    for c in changes {
        let (verb, rest) = c.parts();
        ctx.shell.status(verb, rest);
    }
    for y in &outcome.yanked {
        ctx.shell.warn(y.warning());
    }
    for n in &outcome.log.notices {
        ctx.shell.warn(n);
    }
    super::verify::log_figures(ctx, &outcome.log);
    let n = outcome.lock.packages.len();
    let packages = super::fmt::count(n, "package", "packages");
    if outcome.written {
        ctx.shell.status("Locked", packages);
    } else {
        ctx.shell.status("Fresh", format!("fm.lock is up to date ({packages})"));
    }
    if ctx.global.json {
        let mut doc = serde_json::json!({
            "version": 1,
            "changes": changes,
            "written": outcome.written,
            "packages": n,
        });
        // Added only when there is something to say (keys are only ever added).
        if !outcome.yanked.is_empty() {
            doc["yanked"] = serde_json::json!(outcome.yanked);
        }
        ctx.shell.json(&doc);
    }
}
