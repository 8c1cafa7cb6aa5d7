//! `fm verify`: re-hash the installed tree against `.fm/state.toml`.

use std::fmt::Write as _;

use super::args::VerifyArgs;
use super::fmt;
use super::{Context, Failure};
use crate::install::{Layout, verify};

pub fn verify(ctx: &Context, a: VerifyArgs) -> Result<(), Failure> {
    let layout = match &a.dir {
        Some(d) => Layout::dir(&ctx.cwd.join(d)),
        None => {
            let manifest_path = ctx.manifest_path()?;
            Layout::project(manifest_path.parent().unwrap_or(std::path::Path::new(".")))
        }
    };
    let drift = verify::verify(&layout)?;
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
    Err(Failure::user(miette::miette!(
        help = "run `fm sync --repair` to install the drifted packages again from the cache",
        "installed packages differ from what fm sync recorded:\n{}",
        text.trim_end()
    )))
}
