//! The user configuration: `~/.flowmason/registries.json` in FlowMason's
//! format (SPEC §4), moved by `FM_HOME`; and where fm keeps its cache.
//!
//! Rules kept here:
//! - the file is written atomically, mode 0600 when it holds a token;
//! - unknown keys in entries are kept (FlowMason may add some);
//! - tokens are never printed: [`RegistryEntry`]'s `Debug` redacts them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::location::origin;

/// One configured registry, in FlowMason's field order.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct RegistryEntry {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default = "default_priority")]
    pub priority: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub can_publish: bool,
    #[serde(default)]
    pub requires_auth: bool,
    #[serde(default)]
    pub description: String,
    /// fm's addition: fetch metadata and archives from here instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// Keys fm does not know, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for RegistryEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryEntry")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<redacted>"))
            .field("priority", &self.priority)
            .field("enabled", &self.enabled)
            .field("is_default", &self.is_default)
            .field("mirror", &self.mirror)
            .finish_non_exhaustive()
    }
}

fn default_priority() -> i64 {
    crate::location::DEFAULT_PRIORITY
}

fn yes() -> bool {
    true
}

/// The whole `registries.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserConfig {
    #[serde(default)]
    pub registries: Vec<RegistryEntry>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why the user configuration could not be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(code(fm::config::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid: {reason}", path.display())]
    #[diagnostic(
        code(fm::config::invalid),
        help("fix the JSON, or move the file away and re-add registries with `fm registry add`")
    )]
    Invalid { path: PathBuf, reason: String },
}

/// `FM_HOME`, else `~/.flowmason`.
pub fn fm_home() -> PathBuf {
    if let Some(h) = std::env::var_os("FM_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".flowmason")
}

/// `FM_CACHE_DIR`, else the platform cache folder + `fm`.
pub fn cache_dir() -> PathBuf {
    if let Some(c) = std::env::var_os("FM_CACHE_DIR").filter(|c| !c.is_empty()) {
        return PathBuf::from(c);
    }
    dirs::cache_dir().unwrap_or_else(|| fm_home().join("cache")).join("fm")
}

impl UserConfig {
    /// The file's path.
    pub fn path() -> PathBuf {
        fm_home().join("registries.json")
    }

    /// Reads the configuration; a missing or empty file is an empty one.
    pub fn load() -> Result<UserConfig, ConfigError> {
        Self::load_from(&Self::path())
    }

    /// Reads the configuration at `path`.
    pub fn load_from(path: &Path) -> Result<UserConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UserConfig::default()),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if text.trim().is_empty() {
            return Ok(UserConfig::default());
        }
        serde_json::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Writes the configuration atomically; 0600 when a token is stored.
    pub fn save(&self) -> Result<(), ConfigError> {
        self.save_to(&Self::path())
    }

    /// Writes the configuration to `path`.
    pub fn save_to(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.to_owned(),
            source,
        };
        let mut text = serde_json::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        crate::fsutil::write_atomic_private(path, text.as_bytes()).map_err(io)?;
        #[cfg(unix)]
        if self.registries.iter().any(|r| r.auth_token.is_some()) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        Ok(())
    }

    /// Enabled registries, highest priority (lowest number) first.
    pub fn enabled(&self) -> Vec<&RegistryEntry> {
        let mut r: Vec<&RegistryEntry> = self.registries.iter().filter(|r| r.enabled).collect();
        r.sort_by_key(|r| r.priority);
        r
    }

    /// The entry of that name.
    pub fn get(&self, name: &str) -> Option<&RegistryEntry> {
        self.registries.iter().find(|r| r.name == name)
    }

    /// `fm registry add`: adds the registry, or changes only what `add`
    /// gives of an existing one (a re-add without `--priority` keeps its
    /// priority: resetting a private registry's 10 to the default 100 could
    /// let a public registry win its names). A re-add enables a disabled
    /// entry and allows publishing to it. Says what changed.
    pub fn upsert(&mut self, add: RegistryAdd) -> Upsert {
        if add.default {
            for e in &mut self.registries {
                if e.name != add.name {
                    e.is_default = false;
                }
            }
        }
        let Some(e) = self.registries.iter_mut().find(|e| e.name == add.name) else {
            self.registries.push(RegistryEntry {
                name: add.name,
                url: add.url,
                auth_token: add.token,
                priority: add.priority.unwrap_or(crate::location::DEFAULT_PRIORITY),
                enabled: true,
                is_default: add.default,
                can_publish: true,
                requires_auth: false,
                description: String::new(),
                mirror: None,
                extra: serde_json::Map::new(),
            });
            return Upsert::Added;
        };
        let mut changed = Vec::new();
        if e.url != add.url {
            changed.push(format!("url {} -> {}", e.url, add.url));
            e.url = add.url;
        }
        if let Some(p) = add.priority
            && p != e.priority
        {
            changed.push(format!("priority {} -> {p}", e.priority));
            e.priority = p;
        }
        if let Some(t) = add.token
            && e.auth_token.as_deref() != Some(t.as_str())
        {
            changed.push(
                if e.auth_token.is_some() {
                    "token replaced"
                } else {
                    "token added"
                }
                .to_owned(),
            );
            e.auth_token = Some(t);
        }
        if !e.enabled {
            changed.push("enabled".to_owned());
            e.enabled = true;
        }
        // fm's `registry add` is how a read-only entry (FlowMason's
        // `can_publish: false`) is made publishable: its help says so.
        if !e.can_publish {
            changed.push("publishing allowed".to_owned());
            e.can_publish = true;
        }
        if add.default && !e.is_default {
            changed.push("now the default".to_owned());
            e.is_default = true;
        }
        Upsert::Updated(changed)
    }
}

/// What `fm registry add` gives: `None`/`false` means "not given".
#[derive(Debug, Clone)]
pub struct RegistryAdd {
    pub name: String,
    pub url: String,
    pub token: Option<String>,
    pub priority: Option<i64>,
    pub default: bool,
}

/// What [`UserConfig::upsert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    Added,
    /// The existing entry's changes, one phrase each (empty: unchanged).
    Updated(Vec<String>),
}

/// A token and the one origin it may be sent to.
#[derive(Clone, PartialEq, Eq)]
pub struct BoundToken {
    secret: String,
    origin: url::Origin,
}

impl BoundToken {
    /// The secret, for the `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The origin it is bound to.
    pub fn origin(&self) -> &url::Origin {
        &self.origin
    }
}

impl std::fmt::Debug for BoundToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundToken")
            .field("secret", &"<redacted>")
            .field("origin", &self.origin.ascii_serialization())
            .finish()
    }
}

fn env_token(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|t| !t.is_empty())
}

/// The environment variable holding registry `name`'s token:
/// `FM_TOKEN_<NAME>`, upper-cased, `-` → `_`.
pub fn token_var(name: &str) -> String {
    format!("FM_TOKEN_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// Who gave fm a registry's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredBy {
    /// A repository file (fm.toml, fm.lock): whoever wrote the last commit.
    Repository,
    /// The user: a URL or folder typed on the command line.
    User,
}

/// The token for registry `name`, declared (by fm.toml, the user config
/// or the command line: `by`) at `declared`, whose requests go to `target`
/// (`declared`, or its mirror). SPEC §4's order, each source bound to an
/// origin:
///
/// 1. `FM_TOKEN_<NAME>`: only when `target` is on `declared`'s origin (the
///    URL fm.toml, or the user config where fm.toml names no registries,
///    gives that name; never a mirror elsewhere);
/// 2. `FLOWMASON_REGISTRY_TOKEN`: only when `target` is on the origin of
///    a registry of the user config (its `url`), or is a URL the user typed
///    ([`DeclaredBy::User`]); never to a URL that came from a repository
///    file alone;
/// 3. an `auth_token` of the user config: only to its own entry's origin
///    (the entry of that name first, else any entry on that origin).
///
/// A mirror gets a token only through 2 or 3: when the user config has
/// an entry whose `url` is on the mirror's origin (an entry added for the
/// mirror, `enabled: false` keeps it out of resolution).
///
/// Why: fm.toml and fm.lock come from whoever wrote the last commit. A
/// token chosen by a registry *name* would follow that name to any URL a
/// pull request gives it.
pub fn token_for(
    name: &str,
    declared: &url::Url,
    target: &url::Url,
    by: DeclaredBy,
    config: &UserConfig,
) -> Option<BoundToken> {
    let to = origin(target)?;
    let on_declared = origin(declared).as_ref() == Some(&to);
    let bind = |secret: String| BoundToken {
        secret,
        origin: to.clone(),
    };
    if on_declared && let Some(t) = env_token(&token_var(name)) {
        return Some(bind(t));
    }
    let on_origin = |e: &&RegistryEntry| {
        url::Url::parse(&e.url)
            .ok()
            .and_then(|u| origin(&u))
            .is_some_and(|o| o == to)
    };
    if (config.registries.iter().any(|e| on_origin(&e)) || (by == DeclaredBy::User && on_declared))
        && let Some(t) = env_token("FLOWMASON_REGISTRY_TOKEN")
    {
        return Some(bind(t));
    }
    let with_token = |e: &&RegistryEntry| e.auth_token.as_deref().is_some_and(|t| !t.is_empty());
    config
        .registries
        .iter()
        .filter(on_origin)
        .filter(with_token)
        .find(|e| e.name == name)
        .or_else(|| config.registries.iter().filter(on_origin).find(with_token))
        .and_then(|e| e.auth_token.clone())
        .map(bind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    fn entry(name: &str, url: &str, token: Option<&str>) -> RegistryEntry {
        serde_json::from_value(serde_json::json!({"name": name, "url": url, "auth_token": token})).unwrap()
    }

    #[test]
    fn a_config_token_goes_to_its_own_origin_only() {
        let config = UserConfig {
            registries: vec![
                entry("company", "https://a.example/", Some("SECRET")),
                entry("mirror", "https://m.example/", Some("MIRROR")),
            ],
            ..Default::default()
        };
        let a = u("https://a.example/");
        let b = u("https://b.example/");
        assert_eq!(
            token_for("company", &a, &a, DeclaredBy::Repository, &config).map(|t| t.secret().to_owned()),
            Some("SECRET".into())
        );
        // The same name at another origin (a pull request's fm.toml).
        assert_eq!(token_for("company", &b, &b, DeclaredBy::Repository, &config), None);
        // Another name at company's origin: company's token, bound there.
        let t = token_for(
            "corp",
            &u("https://a.example:443/sub/"),
            &a,
            DeclaredBy::Repository,
            &config,
        )
        .unwrap();
        assert_eq!((t.secret(), t.origin()), ("SECRET", &a.origin()));
        // A mirror gets only the token of an entry on its own origin.
        let m = u("https://m.example/x/");
        assert_eq!(
            token_for("company", &a, &m, DeclaredBy::Repository, &config).map(|t| t.secret().to_owned()),
            Some("MIRROR".into())
        );
        assert_eq!(
            token_for(
                "company",
                &a,
                &u("https://other.example/"),
                DeclaredBy::Repository,
                &config
            ),
            None
        );
    }
}
