//! `fm init`, `fm add`, `fm remove`: edits of fm.toml.

use super::args::{AddArgs, InitArgs, RemoveArgs};
use super::{Context, Failure};
use crate::manifest::{self, Manifest, edit};
use crate::project::{LockOptions, LockOutcome, Project};

pub fn init(ctx: &Context, a: InitArgs) -> Result<(), Failure> {
    let name = match a.name {
        Some(n) => n,
        None => ctx
            .cwd
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase().replace([' ', '.'], "-"))
            .unwrap_or_else(|| "project".to_owned()),
    };
    if a.package {
        let path = manifest::init_package(&ctx.cwd, &name)?;
        ctx.shell.status(
            "Created",
            format!(
                "{} for package {name}, with components/{}.py (build it with `fm pack`)",
                path.display(),
                name.replace('-', "_")
            ),
        );
        if ctx.global.json {
            ctx.shell
                .json(&serde_json::json!({"version": 1, "path": path, "name": name, "package": true}));
        }
        return Ok(());
    }
    let path = manifest::init(&ctx.cwd, &name)?;
    ctx.shell
        .status("Created", format!("{} for project {name}", path.display()));
    match manifest::ignore_install_folder(&ctx.cwd) {
        Ok(p) => ctx.shell.verbose(format!("{} keeps .fm/ out of git", p.display())),
        Err(e) => ctx.shell.warn(format!(
            "cannot write .fm/.gitignore: {e}; add .fm/ to your .gitignore yourself"
        )),
    }
    if ctx.global.json {
        ctx.shell
            .json(&serde_json::json!({"version": 1, "path": path, "name": name, "package": false}));
    }
    Ok(())
}

/// Splits `PKG[@REQ]`.
fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (spec, None),
    }
}

/// Re-locks after an edit of fm.toml; on failure puts fm.toml back as it
/// was, so a dependency that cannot be resolved is never left half-added.
fn relock(ctx: &Context, path: &std::path::Path, original: &str) -> Result<LockOutcome, Failure> {
    let outcome = Manifest::load(path).map_err(Failure::from).and_then(|m| {
        let opts = LockOptions {
            offline: ctx.global.offline,
            ..LockOptions::default()
        };
        let outcome = Project::new(m).lock(&opts).map_err(Failure::from);
        super::requests_done();
        outcome
    });
    if outcome.is_err() {
        if let Err(e) = crate::fsutil::write_atomic(path, original.as_bytes()) {
            ctx.shell.warn(format!("cannot restore {}: {e}", path.display()));
        } else {
            ctx.shell.warn(format!("{} was left unchanged", path.display()));
        }
    }
    outcome
}

fn read(path: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|source| {
        Failure::from(manifest::ManifestError::Io {
            path: path.to_owned(),
            source,
        })
    })
}

/// `fm add PKG[@REQ]`. Without a requirement, the package is resolved
/// first (as `*`) and then written as `^<the version picked>`, like
/// `cargo add`.
pub fn add(ctx: &Context, a: AddArgs) -> Result<(), Failure> {
    let path = ctx.manifest_path()?;
    let (name, req) = split_spec(&a.package);
    let original = read(&path)?;
    let before = Manifest::load(&path)?;
    let old_lock = Project::new(before)
        .read_lock()?
        .and_then(|e| e.sides.into_iter().next());
    let change = edit::add(&path, name, req.unwrap_or("*"), a.registry.as_deref())?;
    let mut outcome = relock(ctx, &path, &original)?;
    let mut written_req = req.unwrap_or("*").to_owned();
    if req.is_none()
        && let Some(p) = outcome.lock.package(name)
    {
        written_req = format!("^{}", p.version);
        edit::add(&path, name, &written_req, a.registry.as_deref())?;
        outcome = relock(ctx, &path, &original)?;
    }
    match change {
        edit::Change::Replaced { old } => ctx.shell.status(
            "Updated",
            format!("{name} {old} -> {written_req:?} in {}", path.display()),
        ),
        _ => ctx
            .shell
            .status("Added", format!("{name} {written_req:?} to {}", path.display())),
    }
    let changes = crate::lock::changes(old_lock.as_ref(), &outcome.lock);
    super::lock::print_outcome(ctx, &changes, &outcome);
    Ok(())
}

pub fn remove(ctx: &Context, a: RemoveArgs) -> Result<(), Failure> {
    let path = ctx.manifest_path()?;
    let original = read(&path)?;
    edit::remove(&path, &a.package)?;
    ctx.shell
        .status("Removed", format!("{} from {}", a.package, path.display()));
    let outcome = relock(ctx, &path, &original)?;
    super::lock::print_outcome(ctx, &outcome.changes, &outcome);
    Ok(())
}
