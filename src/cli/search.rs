//! `fm search Q [--registry R] [--category C] [--json]`: in a project, the
//! registries `fm lock` uses there (the manifest's, else the user's), in
//! priority order; outside one, the user's enabled registries; or only
//! `--registry`. Searched in parallel, every page of each; results in
//! registry priority order, each naming its registry.

use super::args::SearchArgs;
use super::{Context, Failure};
use crate::config::UserConfig;
use crate::registry::{OpenOptions, PackageInfo, search};

/// Results kept per registry: every match, up to a bound a hostile server
/// cannot push past (it could claim any `total_count`).
const LIMIT: usize = 10_000;

pub fn search(ctx: &Context, a: SearchArgs) -> Result<(), Failure> {
    let targets: Vec<(String, url::Url, OpenOptions)> = match a.registry.as_deref() {
        Some(r) => {
            let t = super::target::resolve(ctx, Some(r))?;
            vec![(t.name, t.url, t.opts)]
        }
        None => {
            let config = UserConfig::load()?;
            let manifest = ctx
                .manifest_path()
                .ok()
                .and_then(|p| crate::manifest::Manifest::load(&p).ok());
            let mut out = Vec::new();
            match manifest {
                // What `fm lock` would use here, in its order.
                Some(m) => {
                    for d in crate::project::Project::new(m).registry_decls()? {
                        let opts = OpenOptions::for_registry(&d.name, &d.url, &config, ctx.global.offline);
                        out.push((d.name, d.url, opts));
                    }
                }
                None => {
                    for e in config.enabled() {
                        match crate::location::parse_location(&e.url, &ctx.cwd) {
                            Ok(url) => {
                                let opts = OpenOptions::for_registry(&e.name, &url, &config, ctx.global.offline);
                                out.push((e.name.clone(), url, opts));
                            }
                            Err(why) => ctx.shell.warn(format!("skipping registry {}: {why}", e.name)),
                        }
                    }
                }
            }
            if out.is_empty() {
                return Err(Failure::usage(
                    "no registries to search",
                    Some("add one with `fm registry add NAME URL` (or [[registries]] in fm.toml), or pass --registry"),
                ));
            }
            out
        }
    };
    let category = a.category.as_deref().filter(|c| !c.is_empty());
    let results = super::target::runtime()?.block_on(futures_util::future::join_all(
        targets
            .iter()
            .map(|(name, url, opts)| search::search(name, url, opts, &a.query, category, LIMIT)),
    ));
    let mut found: Vec<(String, PackageInfo)> = Vec::new();
    let mut failures = 0;
    for ((name, _, _), result) in targets.iter().zip(results) {
        match result {
            Ok(infos) => found.extend(infos.into_iter().map(|i| (name.clone(), i))),
            Err(e) => {
                failures += 1;
                ctx.shell.warn(format!("{:?}", miette::Report::new(e)));
            }
        }
    }
    if failures == targets.len() {
        return Err(Failure::user(miette::miette!("no registry could be searched")));
    }
    if ctx.global.json {
        let packages: Vec<_> = found
            .iter()
            .map(|(r, i)| {
                serde_json::json!({
                    "name": i.name,
                    "version": i.version,
                    "description": i.description,
                    "registry": r,
                    "components": i.components,
                    "category": i.category,
                    "tags": i.tags,
                })
            })
            .collect();
        ctx.shell.json(&serde_json::json!({
            "version": 1,
            "query": a.query,
            "total_count": packages.len(),
            "registries": targets.iter().map(|(n, _, _)| n).collect::<Vec<_>>(),
            "packages": packages,
        }));
        return Ok(());
    }
    if found.is_empty() {
        ctx.shell.info(format!("No packages match {:?}", a.query));
        return Ok(());
    }
    let width = found
        .iter()
        .map(|(_, i)| i.name.len() + i.version.len() + 1)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (r, i) in &found {
        let id = format!("{} {}", i.name, i.version);
        out.push_str(&format!("{id:<width$}  {}  ({r})\n", i.description));
    }
    ctx.shell.data(out);
    Ok(())
}
