//! `fm yank PKG@VERSION [--undo] [--registry R]`.
//!
//! A yanked version stays downloadable (existing locks keep working) but is
//! never picked by a new resolution (SPEC §2).

use std::path::Path;

use super::args::YankArgs;
use super::pack::{Target, target};
use super::{Context, Failure};
use crate::registry::publish;
use crate::registry::storage::DirStorage;

pub fn yank(ctx: &Context, a: YankArgs) -> Result<(), Failure> {
    let Some((name, version)) = a.package.split_once('@') else {
        return Err(Failure::usage(
            format!("expected PKG@VERSION, got {:?}", a.package),
            Some("for example: fm yank text-utils@1.0.0 --registry ./registry"),
        ));
    };
    let Some(text) = a.registry else {
        return Err(Failure::usage(
            "fm yank needs --registry",
            Some("pass --registry with a directory registry path or file:// URL"),
        ));
    };
    match target(ctx, &text)? {
        Target::Directory(root) => yank_directory(ctx, &root, name, version, !a.undo),
        Target::Http(url) => {
            let url = crate::registry::redact_url(&url);
            Err(Failure::not_built(&format!("yank on {url}")))
        }
    }
}

/// Yanks (or un-yanks) a version in a directory registry.
fn yank_directory(ctx: &Context, root: &Path, name: &str, version: &str, yanked: bool) -> Result<(), Failure> {
    if !root.is_dir() {
        return Err(Failure::user(miette::miette!(
            help = "check the path given to --registry",
            "no directory registry at {}",
            root.display()
        )));
    }
    let storage = DirStorage::new(root);
    publish::set_yanked(&storage, name, version, yanked)?;
    ctx.shell.status(
        if yanked { "Yanked" } else { "Unyanked" },
        format!("{name}@{version} in {}", root.display()),
    );
    Ok(())
}
