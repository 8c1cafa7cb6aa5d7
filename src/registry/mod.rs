//! Registries: where package documents and archives come from (SPEC §4).
//!
//! - [`document`]: the JSON documents every registry serves.
//! - [`storage`]: the directory layout behind a trait with create-if-absent
//!   and compare-and-swap, shared by `fm publish` and the server.
//! - [`publish`]: publishing and yanking on a storage.
//! - [`directory`]: a directory registry as a client reads it.
//! - [`http`]: an HTTP registry (fm's server or FlowMason Studio's).
//! - [`search`]: `fm search` over either kind.
//! - [`transport`]: the deadline and byte caps of every HTTP read.
//! - [`versions`]: a package's versions as resolution reads them, each
//!   record parsed only when asked for.
//!
//! Every registry a client reads implements [`Registry`]; the resolver and
//! installer see nothing else. Methods are async so that HTTP registries can
//! fetch many documents at once (prefetching) and stream archives.

pub mod backfill;
pub mod directory;
pub mod document;
pub mod http;
#[cfg(feature = "cloud")]
pub mod object;
pub mod observe;
pub mod publish;
pub mod search;
pub mod storage;
pub mod tlog;
pub mod transport;
pub mod versions;

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

pub use directory::DirectoryRegistry;
pub use document::{PackageDocument, PackageInfo, VersionRecord};
pub use http::HttpRegistry;
pub use versions::VersionList;
// Where registry URLs are parsed, shown and compared (re-exported: every
// registry message names one).
pub use crate::location::{redact_url, same_url};

/// A source of package documents and archives.
pub trait Registry: Send + Sync + fmt::Debug {
    /// The registry's name (from fm.toml or the user config).
    fn name(&self) -> &str;
    /// The canonical URL recorded in `fm.lock` (never a mirror, never with
    /// credentials).
    fn url(&self) -> &url::Url;
    /// The `packages/{name}` document, or `None` when the registry does not
    /// have that package.
    fn document<'a>(&'a self, package: &'a str) -> BoxFuture<'a, Result<Option<Arc<PackageDocument>>, RegistryError>>;
    /// The package's versions as resolution reads them ([`VersionList`]),
    /// or `None` when the registry does not have that package. By default
    /// the [`document`](Self::document), parsed whole; a directory
    /// registry parses a version's full record only when it is asked for.
    fn versions<'a>(&'a self, package: &'a str) -> BoxFuture<'a, Result<Option<Arc<VersionList>>, RegistryError>> {
        Box::pin(async move {
            let doc = self.document(package).await?;
            Ok(doc.map(|d| Arc::new(VersionList::from_document(self.name(), package, d))))
        })
    }
    /// Streams the archive of `package@version` into `sink`; returns the
    /// number of bytes written. The caller verifies the digest.
    fn download<'a>(
        &'a self,
        package: &'a str,
        version: &'a str,
        sink: &'a mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> BoxFuture<'a, Result<u64, RegistryError>>;
    /// A public file of the registry's transparency log (`path` relative
    /// to `log/`: `key`, `checkpoint`, `tile/...`), or `None` when it has
    /// none (FlowMason Studio keeps no log).
    fn log_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, RegistryError>> {
        let _ = path;
        Box::pin(async { Ok(None) })
    }
    /// The folder documents are read from, for a directory registry (the
    /// yank check memoizes by its files' stat data); `None` otherwise.
    fn local_root(&self) -> Option<&std::path::Path> {
        None
    }
}

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    /// Reading a directory registry failed.
    #[error("registry {registry}: cannot read {what}: {source}")]
    #[diagnostic(code(fm::registry::io))]
    Io {
        registry: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A document the registry served is not valid.
    #[error("registry {registry} served an invalid document for {package}: {reason}")]
    #[diagnostic(code(fm::registry::corrupt))]
    Corrupt {
        registry: String,
        package: String,
        reason: String,
    },
    /// The archive is not there.
    #[error("registry {registry} has no archive for {package}@{version}")]
    #[diagnostic(code(fm::registry::missing_archive))]
    MissingArchive {
        registry: String,
        package: String,
        version: String,
    },
    /// The registry's URL cannot be used.
    #[error("registry {registry}: {reason}")]
    #[diagnostic(code(fm::registry::unsupported))]
    Unsupported { registry: String, reason: String },
    /// An HTTP request failed. `message` says what, in a few words;
    /// `source`, when the client failed (not the registry's answer), is
    /// reqwest's error with its whole chain (hyper's, the OS's), stripped
    /// of the URL: a pre-signed URL's query is a credential, and `message`
    /// names the URL without it.
    #[error("registry {registry}: {message}")]
    #[diagnostic(code(fm::registry::http))]
    Http {
        registry: String,
        message: String,
        #[help]
        help: Option<String>,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// `--offline` and the document is not cached.
    #[error("registry {registry}: {package} is not in the local cache and --offline forbids the network")]
    #[diagnostic(
        code(fm::registry::offline),
        help("run the command once without --offline to fill the cache")
    )]
    Offline { registry: String, package: String },
}

/// How to open a registry client.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// Use cached documents only; never touch the network.
    pub offline: bool,
    /// Bearer token, sent only to `token_origin`.
    pub token: Option<String>,
    /// The one origin `token` may go to; `None`: the canonical URL's
    /// origin (so a mirror elsewhere gets none).
    pub token_origin: Option<url::Origin>,
    /// Fetch metadata and archives from here instead of the canonical URL.
    pub mirror: Option<url::Url>,
    /// Where HTTP clients cache documents (`{cache}/http/...`).
    pub cache_dir: std::path::PathBuf,
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("offline", &self.offline)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "token_origin",
                &self.token_origin.as_ref().map(url::Origin::ascii_serialization),
            )
            .field("mirror", &self.mirror)
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

impl OpenOptions {
    /// Options for registry `name` at `url` (its canonical URL, as fm.toml,
    /// fm.lock or the user config declares it): the mirror of the user config's
    /// entry for that URL, and the token bound to the origin requests go
    /// to ([`crate::config::token_for`]). A user-config entry of the same
    /// name at another URL lends neither its mirror nor its token.
    pub fn for_registry(name: &str, url: &url::Url, config: &crate::config::UserConfig, offline: bool) -> OpenOptions {
        Self::declared_by(name, url, crate::config::DeclaredBy::Repository, config, offline)
    }

    /// [`for_registry`](Self::for_registry) for a URL the user typed on
    /// the command line (`--registry URL`): `FLOWMASON_REGISTRY_TOKEN` may
    /// go to it.
    pub fn for_user_url(name: &str, url: &url::Url, config: &crate::config::UserConfig, offline: bool) -> OpenOptions {
        Self::declared_by(name, url, crate::config::DeclaredBy::User, config, offline)
    }

    fn declared_by(
        name: &str,
        url: &url::Url,
        by: crate::config::DeclaredBy,
        config: &crate::config::UserConfig,
        offline: bool,
    ) -> OpenOptions {
        let at_url = |e: &&crate::config::RegistryEntry| url::Url::parse(&e.url).is_ok_and(|u| same_url(&u, url));
        let entry = config
            .registries
            .iter()
            .filter(at_url)
            .find(|e| e.name == name)
            .or_else(|| config.registries.iter().find(at_url));
        let mirror = entry
            .and_then(|e| e.mirror.as_deref())
            .and_then(|m| url::Url::parse(m).ok());
        let target = mirror.as_ref().unwrap_or(url);
        let token = crate::config::token_for(name, url, target, by, config);
        OpenOptions {
            offline,
            token_origin: token.as_ref().map(|t| t.origin().clone()),
            token: token.map(|t| t.secret().to_owned()),
            mirror,
            cache_dir: crate::config::cache_dir(),
        }
    }
}

/// Opens a client for a registry by URL. `file://` URLs are directory
/// registries, `http(s)://` ones servers, `static+http(s)://` ones
/// directory registries on a static host. With a mirror, requests go to the
/// mirror while [`Registry::url`] stays the canonical `url`.
pub fn open(name: &str, url: &url::Url, opts: &OpenOptions) -> Result<Arc<dyn Registry>, RegistryError> {
    let source = opts.mirror.as_ref().unwrap_or(url);
    match source.scheme() {
        "file" => {
            let path = source.to_file_path().map_err(|()| RegistryError::Unsupported {
                registry: name.to_owned(),
                reason: format!("{source} is not a local path"),
            })?;
            Ok(Arc::new(DirectoryRegistry::new(name, url.clone(), path)))
        }
        "http" | "https" | "static+http" | "static+https" => Ok(Arc::new(HttpRegistry::new(name, url, opts)?)),
        other => Err(RegistryError::Unsupported {
            registry: name.to_owned(),
            reason: format!("{other} registries are not supported: use http://, https://, static+https:// or file://"),
        }),
    }
}
