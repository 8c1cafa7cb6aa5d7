//! `fm install PKG`: resolve one package and its dependencies from the
//! user's registries and add them to an install folder, without a manifest
//! or lock.

use std::time::Instant;

use super::args::InstallArgs;
use super::{Context, Failure};
use crate::install::Layout;
use crate::req::Requirement;

pub fn install(ctx: &Context, a: InstallArgs) -> Result<(), Failure> {
    let start = Instant::now();
    crate::names::validate(&a.package)
        .map_err(|why| Failure::usage(format!("invalid package name {:?}: {why}", a.package), None))?;
    let req = match &a.version {
        Some(v) => Requirement::parse(v).map_err(|e| {
            Failure::usage(
                format!("invalid version requirement {v:?}: {e}"),
                Some("use a version (1.2.0) or a requirement (^1.2, >=1.0, <2)"),
            )
        })?,
        None => Requirement::any(),
    };
    let lock = crate::resolve::resolve_one(
        &a.package,
        &req,
        a.registry.as_deref(),
        &crate::resolve::LockOptions {
            offline: ctx.global.offline,
            ..Default::default()
        },
    )?;
    let layout = match &a.dir {
        Some(d) => Layout::dir(&ctx.cwd.join(d)),
        None => Layout::project(&ctx.cwd),
    };
    let report = super::sync::run_install(ctx, &lock, &ctx.cwd, &layout, false, Default::default())?;
    super::sync::summarize(ctx, &report, start.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Regression: `fm install --version` clashed with the `--version` flag
    /// clap propagates, and clap panicked on every `fm install`.
    #[test]
    fn install_version_flag_does_not_clash() {
        use clap::CommandFactory;
        super::super::args::Cli::command().debug_assert();
    }
}
