//! Which registry a write (`fm publish`, `fm yank`) or a search goes to:
//! `--registry R` (a configured name, a `[[registries]]` name of the nearest
//! fm.toml, a URL or a directory), else the user's default registry.

use super::{Context, Failure};
use crate::config::UserConfig;
use crate::registry::OpenOptions;

/// A registry chosen on the command line.
pub struct Target {
    pub name: String,
    pub url: url::Url,
    pub opts: OpenOptions,
    /// `false` when the user's config says `can_publish: false` for it.
    pub can_publish: bool,
}

impl Target {
    /// The registry's folder, when it is a directory registry.
    pub fn directory(&self) -> Option<std::path::PathBuf> {
        let source = self.opts.mirror.as_ref().unwrap_or(&self.url);
        (source.scheme() == "file")
            .then(|| source.to_file_path().ok())
            .flatten()
    }

    /// Refuses a publish or yank (`what`) to a registry the user's config
    /// marks `can_publish: false`, before anything is sent.
    pub fn check_writable(&self, what: &str) -> Result<(), Failure> {
        if self.can_publish {
            return Ok(());
        }
        Err(Failure::user(miette::miette!(
            help = format!(
                "run `fm registry add {} URL` again to allow it (FlowMason's `registry add` always saves \
                 can_publish: false), or edit can_publish in {}",
                self.name,
                UserConfig::path().display()
            ),
            "registry {} is configured as read-only (can_publish: false): not sending this {what}",
            self.name
        )))
    }
}

/// Resolves `--registry` (or the default registry).
pub fn resolve(ctx: &Context, registry: Option<&str>) -> Result<Target, Failure> {
    let config = UserConfig::load()?;
    let (name, url, can_publish, typed) = match registry {
        Some(r) => named(ctx, &config, r)?,
        None => {
            let entry = config
                .registries
                .iter()
                .find(|e| e.is_default && e.enabled)
                .or_else(|| match config.enabled().as_slice() {
                    [only] => Some(*only),
                    _ => None,
                })
                .ok_or_else(|| {
                    Failure::usage(
                        "no registry given and no default registry configured",
                        Some("pass --registry NAME|URL|DIR, or run `fm registry set-default NAME`"),
                    )
                })?;
            (entry.name.clone(), location(ctx, &entry.url)?, entry.can_publish, false)
        }
    };
    // A URL typed after --registry is the user's; a name fm.toml declares
    // is the repository's (its URL gets no FLOWMASON_REGISTRY_TOKEN).
    let opts = if typed {
        OpenOptions::for_user_url(&name, &url, &config, ctx.global.offline)
    } else {
        OpenOptions::for_registry(&name, &url, &config, ctx.global.offline)
    };
    Ok(Target {
        name,
        url,
        opts,
        can_publish,
    })
}

fn location(ctx: &Context, text: &str) -> Result<url::Url, Failure> {
    crate::location::parse_location(text, &ctx.cwd)
        .map_err(|why| Failure::usage(format!("invalid registry location {text:?}: {why}"), None))
}

/// A registry named on the command line: its name, location, and whether
/// the user's config allows writing to it (anything not configured does),
/// and whether the location was typed (not taken from a config or fm.toml).
fn named(ctx: &Context, config: &UserConfig, r: &str) -> Result<(String, url::Url, bool, bool), Failure> {
    if let Some(e) = config.get(r) {
        return Ok((e.name.clone(), location(ctx, &e.url)?, e.can_publish, false));
    }
    if let Some(decl) = ctx
        .manifest_path()
        .ok()
        .and_then(|p| crate::manifest::Manifest::load(&p).ok())
        .and_then(|m| m.registries.into_iter().find(|d| d.name == r))
    {
        return Ok((decl.name, decl.url, true, false));
    }
    if crate::names::validate(r).is_ok() && !r.contains('/') && !std::path::Path::new(r).exists() {
        return Err(Failure::user(miette::miette!(
            help = "configure it with `fm registry add NAME URL`, or pass a URL or a folder",
            "no registry named {r:?} is configured"
        )));
    }
    let url = location(ctx, r)?;
    let configured = config
        .registries
        .iter()
        .find(|e| e.url.trim_end_matches('/') == url.as_str().trim_end_matches('/'));
    let name = configured.map_or_else(|| crate::registry::redact_url(&url).to_string(), |e| e.name.clone());
    Ok((name, url, configured.is_none_or(|e| e.can_publish), true))
}

/// The runtime for commands that talk to registries ([`crate::runtime`]).
pub fn runtime() -> Result<&'static tokio::runtime::Runtime, Failure> {
    crate::runtime::get().map_err(|e| Failure::user(miette::miette!("{e}")))
}
