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
        Some(v) => Requirement::parse(&flowmason_version(v)).map_err(|e| {
            Failure::usage(
                format!("invalid version requirement {v:?}: {e}"),
                Some("use a version (1.2.0) or a requirement (^1.2, >=1.0, <2)"),
            )
        })?,
        None => Requirement::any(),
    };
    let lock = crate::project::resolve_one(&ctx.cwd, &a.package, &req, a.registry.as_deref(), ctx.global.offline)?;
    super::requests_done();
    let layout = match &a.dir {
        Some(d) => Layout::dir_in(&ctx.cwd, d),
        None => Layout::project(&ctx.cwd),
    };
    let report = super::sync::run_install(
        ctx,
        &lock,
        &ctx.cwd,
        &layout,
        // `fm install` adds to what is installed.
        super::sync::Install::default(),
        // No fm.lock here: the digests are the registry's own.
        super::sync::Digests::FromRegistry,
    )?;
    // One line a change (or the JSON document), then what was asked for,
    // as FlowMason names it: `Installed my-package 1.2.0 (+2
    // dependencies)`; the sync-style summary follows in verbose.
    super::sync::print_changes(ctx, &report, &[]);
    if let Some(p) = lock.package(&a.package) {
        let deps = lock.packages.len().saturating_sub(1);
        let more = match deps {
            0 => String::new(),
            1 => " (+1 dependency)".to_owned(),
            n => format!(" (+{n} dependencies)"),
        };
        let already = if report.installed.iter().any(|(n, _)| n == &p.name) {
            ""
        } else {
            ", already installed"
        };
        ctx.shell
            .status("Installed", format!("{} {}{more}{already}", p.name, p.version));
    }
    ctx.shell.verbose(summary_line(&report, start.elapsed()));
    Ok(())
}

/// `--version` as FlowMason means it: a bare version (`1.2.0`) is exactly
/// that version (`=1.2.0`); anything with an operator (`^1.2`,
/// `>=1.2, <2`, `1.*`) is a requirement as in fm.toml.
fn flowmason_version(text: &str) -> String {
    let t = text.trim();
    let bare = t.starts_with(|c: char| c.is_ascii_digit())
        && !t.contains([',', '*', ' '])
        && !t.split('.').any(|part| part.eq_ignore_ascii_case("x"));
    if bare { format!("={t}") } else { t.to_owned() }
}

fn summary_line(report: &crate::install::Report, elapsed: std::time::Duration) -> String {
    format!(
        "{} installed, {} already in place, in {}",
        report.installed.len(),
        report.unchanged,
        super::fmt::duration(elapsed)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bare_version_is_exact_and_an_operator_a_range() {
        use super::flowmason_version as f;
        assert_eq!(f("1.2.0"), "=1.2.0");
        assert_eq!(f(" 1.2.0-rc.1 "), "=1.2.0-rc.1");
        assert_eq!(f("1.2"), "=1.2");
        assert_eq!(f("^1.2.0"), "^1.2.0");
        assert_eq!(f(">=1.2, <2"), ">=1.2, <2");
        assert_eq!(f("1.*"), "1.*");
        assert_eq!(f("1.x"), "1.x");
        assert_eq!(f("*"), "*");
    }

    /// Regression: `fm install --version` clashed with the `--version` flag
    /// clap propagates, and clap panicked on every `fm install`.
    #[test]
    fn install_version_flag_does_not_clash() {
        use clap::CommandFactory;
        super::super::args::Cli::command().debug_assert();
    }
}
