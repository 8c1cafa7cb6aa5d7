//! `fm init`, `fm add`, `fm remove`: edits of fm.toml.

use super::args::{AddArgs, InitArgs, RemoveArgs};
use super::{Context, Failure};
use crate::manifest::{self, edit};

pub fn init(ctx: &Context, a: InitArgs) -> Result<(), Failure> {
    let name = match a.name {
        Some(n) => n,
        None => ctx
            .cwd
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase().replace([' ', '.'], "-"))
            .unwrap_or_else(|| "project".to_owned()),
    };
    let path = manifest::init(&ctx.cwd, &name)?;
    ctx.shell
        .status("Created", format!("{} for project {name}", path.display()));
    Ok(())
}

/// Splits `PKG[@REQ]`.
fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (spec, None),
    }
}

pub fn add(ctx: &Context, a: AddArgs) -> Result<(), Failure> {
    let path = ctx.manifest_path()?;
    let (name, req) = split_spec(&a.package);
    let req = req.unwrap_or("*");
    let change = edit::add(&path, name, req, a.registry.as_deref())?;
    match change {
        edit::Change::Replaced { old } => ctx
            .shell
            .status("Updated", format!("{name} {old:?} -> {req:?} in {}", path.display())),
        _ => ctx
            .shell
            .status("Added", format!("{name} {req:?} to {}", path.display())),
    }
    Ok(())
}

pub fn remove(ctx: &Context, a: RemoveArgs) -> Result<(), Failure> {
    let path = ctx.manifest_path()?;
    edit::remove(&path, &a.package)?;
    ctx.shell
        .status("Removed", format!("{} from {}", a.package, path.display()));
    Ok(())
}
