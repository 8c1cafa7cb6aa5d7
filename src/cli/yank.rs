//! `fm yank PKG@VERSION [--undo] [--registry R]`.

use super::args::YankArgs;
use super::{Context, Failure};
use crate::registry::HttpRegistry;
use crate::registry::publish;
use crate::registry::storage::DirStorage;

pub fn yank(ctx: &Context, a: YankArgs) -> Result<(), Failure> {
    let Some((name, version)) = a.package.split_once('@') else {
        return Err(Failure::usage(
            format!("expected PKG@VERSION, got {:?}", a.package),
            Some("for example: fm yank summarizer@1.0.4"),
        ));
    };
    crate::names::validate(name)
        .map_err(|why| Failure::usage(format!("invalid package name {name:?}: {why}"), None))?;
    let version = semver::Version::parse(version)
        .map_err(|e| {
            Failure::usage(
                format!("invalid version {version:?}: {e}"),
                Some("give an exact version"),
            )
        })?
        .to_string();
    let yanked = !a.undo;
    let target = super::target::resolve(ctx, a.registry.as_deref())?;
    target.check_writable("yank")?;
    if let Some(root) = target.directory() {
        let key = super::log::optional_key(ctx, a.log_key.as_deref())?;
        publish::set_yanked(&DirStorage::new(root), name, &version, yanked, key.as_ref())?;
    } else {
        let registry = HttpRegistry::new(&target.name, &target.url, &target.opts)?;
        super::target::runtime()?.block_on(registry.set_yanked(name, &version, yanked))?;
    }
    let verb = if yanked { "Yanked" } else { "Unyanked" };
    let shown = crate::registry::redact_url(&target.url);
    ctx.shell.status(verb, format!("{name}@{version} in {shown}"));
    if ctx.global.json {
        ctx.shell.json(&serde_json::json!({
            "schema_version": 1,
            "name": name,
            "version": version,
            "yanked": yanked,
            "registry": target.name,
            "url": shown.as_str(),
        }));
    }
    Ok(())
}
