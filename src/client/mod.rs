//! [`Client`]: fm's registries as a library, for programs that embed fm —
//! what FlowMason's Python client offers (`search`, `get_package`,
//! verified downloads, `publish`), over the same code the `fm` commands
//! use.
//!
//! A [`Client`] is one registry: an HTTP server (fm's or FlowMason
//! Studio's), a static host, or a directory registry on this machine.
//! Everything it does is a call into [`crate::registry`]: documents and
//! downloads through the [`Registry`] trait, search through
//! [`registry::search`], publishing and yanking through
//! [`registry::publish`] (a folder) or [`HttpRegistry`] (a server), with the
//! same validation, deadlines and byte caps as the CLI.
//!
//! Rules it keeps:
//! - a token given to [`ClientBuilder::token`] is bound to the origin of
//!   the registry's own URL (SPEC §7): never sent to a mirror, to another
//!   host a redirect points at, nor to a folder;
//! - [`Client::download`] returns only bytes whose SHA-256 equals the
//!   checksum the registry publishes for that version, and stops reading
//!   shortly past the recorded size (a registry may send forever);
//! - [`VerifiedArchive::unpack`] writes only into a folder it creates, with
//!   the archive rules every install applies ([`crate::archive::extract`]).
//!
//! Methods that talk to a registry are `async`: call them on a tokio
//! runtime (`#[tokio::main]`, or the runtime your program already has).
//! To resolve dependencies over clients (or over your own [`Registry`]
//! implementation), hand them to [`registry_set`] and
//! [`crate::resolve::resolve`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
//! // A directory registry in an empty folder, and one package in it.
//! let client = fm::Client::open(&dir.path().display().to_string())?;
//! client.publish(std::fs::read(fixture)?).await?;
//!
//! // Search it, and download what was found, verified against its SHA-256.
//! let found = client.search("summar").await?;
//! assert_eq!(found[0].name, "summarizer");
//! let archive = client.download(&found[0].name, &found[0].version).await?;
//! assert_eq!(archive.sha256(), found[0].checksum);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::archive::{self, ArchiveError, ExtractedFile, Limits, ValidManifest};
use crate::config::{ConfigError, UserConfig};
use crate::install::InstallError;
use crate::install::fetch::{HashingWriter, SIZE_SLACK};
use crate::manifest::RegistryDecl;
use crate::registry::publish::{self, PublishError};
use crate::registry::storage::DirStorage;
use crate::registry::{
    self, HttpRegistry, OpenOptions, PackageDocument, PackageInfo, Registry, RegistryError, VersionRecord,
};
use crate::resolve::{RegistryEntry, RegistrySet};
use crate::tlog::LogKey;

/// Most results [`Client::search`] returns: every match, up to a bound a
/// hostile server cannot push past (as `fm search` does).
pub const SEARCH_LIMIT: usize = 10_000;

mod builder;
mod download;
mod error;
mod write;

pub use builder::ClientBuilder;
pub use download::VerifiedArchive;
pub use error::ClientError;

/// One registry, opened. Cheap to clone (clones share the connection
/// pool and the document cache).
#[derive(Clone)]
pub struct Client {
    name: String,
    url: url::Url,
    opts: OpenOptions,
    /// Replaced after each publish or yank: an HTTP registry keeps the
    /// documents it read in memory, and this client's next read must see
    /// its own write.
    registry: Arc<RwLock<Arc<dyn Registry>>>,
    log_key: Option<Arc<LogKey>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // OpenOptions' Debug redacts the token.
        f.debug_struct("Client")
            .field("name", &self.name)
            .field("url", &registry::redact_url(&self.url).as_str())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens the registry at `location`: an `http(s)://` server (fm's or
    /// FlowMason Studio's), a `static+https://` host, a `file://` URL, or a
    /// folder (relative to the current directory). Nothing is read yet.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let client = fm::Client::open(&dir.path().display().to_string()).unwrap();
    /// assert_eq!(client.url().scheme(), "file");
    /// ```
    pub fn open(location: &str) -> Result<Client, ClientError> {
        Client::builder(location).open()
    }

    /// A [`ClientBuilder`] for `location` (as [`open`](Self::open) takes
    /// it), to give a name, a token, a mirror or a cache folder.
    ///
    /// ```
    /// let client = fm::Client::builder("https://r.example").name("main").open().unwrap();
    /// assert_eq!(client.name(), "main");
    /// ```
    pub fn builder(location: &str) -> ClientBuilder {
        ClientBuilder {
            location: location.to_owned(),
            base: None,
            name: None,
            token: None,
            mirror: None,
            offline: false,
            cache_dir: None,
            log_key: None,
        }
    }

    /// Opens registry `name` of the user configuration
    /// (`~/.flowmason/registries.json`, moved by `FM_HOME`), with the
    /// token and mirror the `fm` commands would use for it
    /// ([`OpenOptions::for_registry`]).
    ///
    /// ```
    /// let err = fm::Client::from_config("no-such-registry-configured").unwrap_err();
    /// # let _ = err;
    /// ```
    pub fn from_config(name: &str) -> Result<Client, ClientError> {
        let config = UserConfig::load()?;
        let entry = config.get(name).ok_or_else(|| ClientError::NotConfigured {
            name: name.to_owned(),
            path: UserConfig::path(),
        })?;
        // A relative folder in the user config is relative to the current
        // directory, as for the `fm` commands.
        let url =
            crate::location::parse_location(&entry.url, Path::new("")).map_err(|reason| ClientError::Location {
                location: entry.url.clone(),
                reason,
            })?;
        let opts = OpenOptions::for_registry(&entry.name, &url, &config, false);
        Client::with_options(&entry.name, url, opts, None)
    }

    /// A client over registry `name` at `url` with options made by hand
    /// (see [`OpenOptions`]; its `token_origin` is where the token may go).
    ///
    /// ```
    /// let url = url::Url::parse("https://r.example/").unwrap();
    /// let client = fm::Client::with_options("main", url, fm::registry::OpenOptions::default(), None).unwrap();
    /// assert_eq!(client.name(), "main");
    /// ```
    pub fn with_options(
        name: &str,
        url: url::Url,
        opts: OpenOptions,
        log_key: Option<Arc<LogKey>>,
    ) -> Result<Client, ClientError> {
        let registry = registry::open(name, &url, &opts)?;
        Ok(Client {
            name: name.to_owned(),
            url,
            opts,
            registry: Arc::new(RwLock::new(registry)),
            log_key,
        })
    }

    /// The registry's name.
    ///
    /// ```
    /// let client = fm::Client::builder("https://r.example").name("main").open().unwrap();
    /// assert_eq!(client.name(), "main");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry's canonical URL (never the mirror's), as `fm.lock`
    /// would record it.
    ///
    /// ```
    /// let client = fm::Client::open("https://r.example/fm").unwrap();
    /// assert_eq!(client.url().as_str(), "https://r.example/fm");
    /// ```
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The registry as the resolver and installer see it: hand it to
    /// [`registry_set`], or wrap it in a [`Registry`] of your own.
    ///
    /// ```
    /// let client = fm::Client::builder("https://r.example").name("main").open().unwrap();
    /// assert_eq!(client.registry().name(), "main");
    /// ```
    pub fn registry(&self) -> Arc<dyn Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets the documents read so far (after a write of this client's).
    fn reopen(&self) -> Result<(), ClientError> {
        let fresh = registry::open(&self.name, &self.url, &self.opts)?;
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// Whether the registry is there: `GET health` answers (what
    /// FlowMason's `registry add` checks), or the folder exists.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// fm::Client::open(&dir.path().display().to_string())?.health().await?;
    /// let gone = dir.path().join("not-there").display().to_string();
    /// assert!(fm::Client::open(&gone)?.health().await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn health(&self) -> Result<(), ClientError> {
        match self.directory() {
            Some(root) if root.is_dir() => Ok(()),
            Some(root) => Err(RegistryError::Io {
                registry: self.name.clone(),
                what: format!("folder {}", root.display()),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
            }
            .into()),
            None => Ok(self.http()?.health().await?),
        }
    }

    /// Packages whose name, description or tags contain `query`
    /// (case-insensitive; `""` matches all): one entry a package, its
    /// newest version, sorted by name. Text fields are cleaned of control
    /// characters and terminal escapes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// let client = fm::Client::open(&dir.path().display().to_string())?;
    /// client.publish(std::fs::read(fixture)?).await?;
    /// let found = client.search("SUMMAR").await?;
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].name, "summarizer");
    /// assert!(client.search("nothing-like-it").await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn search(&self, query: &str) -> Result<Vec<PackageInfo>, ClientError> {
        self.search_category(query, None).await
    }

    /// [`search`](Self::search) among the packages of one `category`
    /// (exact match), when it is `Some`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// let client = fm::Client::open(&dir.path().display().to_string())?;
    /// client.publish(std::fs::read(fixture)?).await?;
    /// assert_eq!(client.search_category("", Some("transformers")).await?.len(), 1);
    /// assert!(client.search_category("", Some("agents")).await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn search_category(&self, query: &str, category: Option<&str>) -> Result<Vec<PackageInfo>, ClientError> {
        Ok(registry::search::search(&self.name, &self.url, &self.opts, query, category, SEARCH_LIMIT).await?)
    }

    /// The package's document: the newest version's [`PackageInfo`]
    /// (`info`) and every version with its checksum and dependencies
    /// (yanked ones too). `None` when the registry has no such package.
    /// Text is as the registry wrote it: print it through
    /// [`crate::text::printable`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// let client = fm::Client::open(&dir.path().display().to_string())?;
    /// client.publish(std::fs::read(fixture)?).await?;
    /// let doc = client.get_package("summarizer").await?.expect("published");
    /// assert_eq!(doc.info.latest_version, "1.0.0");
    /// assert_eq!(doc.info.category.as_deref(), Some("transformers"));
    /// assert!(client.get_package("absent").await?.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn get_package(&self, name: &str) -> Result<Option<Arc<PackageDocument>>, ClientError> {
        Ok(self.registry().document(name).await?)
    }

    /// Every version of the package, newest first (semver order), yanked
    /// ones included (see [`VersionRecord::yanked`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason");
    /// let client = fm::Client::open(&dir.path().display().to_string())?;
    /// for v in ["1.0.0", "1.1.0"] {
    ///     client.publish(std::fs::read(format!("{fixtures}/text-utils-{v}.fmpkg"))?).await?;
    /// }
    /// let versions = client.versions("text-utils").await?;
    /// let numbers: Vec<&str> = versions.iter().map(|r| r.version.as_str()).collect();
    /// assert_eq!(numbers, ["1.1.0", "1.0.0"]);
    /// assert!(client.versions("absent").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn versions(&self, name: &str) -> Result<Vec<VersionRecord>, ClientError> {
        let doc = self.document(name).await?;
        Ok(doc.versions_newest_first().into_iter().cloned().collect())
    }

    /// One version's record: checksum, size, dependencies, yanked, and the
    /// metadata of its manifest.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// let client = fm::Client::open(&dir.path().display().to_string())?;
    /// client.publish(std::fs::read(fixture)?).await?;
    /// let record = client.get_version("summarizer", "1.0.0").await?;
    /// assert_eq!(record.dependencies["text-utils"], "^1.0.0");
    /// assert!(client.get_version("summarizer", "9.9.9").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn get_version(&self, name: &str, version: &str) -> Result<VersionRecord, ClientError> {
        let doc = self.document(name).await?;
        self.record(&doc, name, version).cloned()
    }

    /// The package's document, or [`ClientError::PackageNotFound`].
    async fn document(&self, name: &str) -> Result<Arc<PackageDocument>, ClientError> {
        self.registry()
            .document(name)
            .await?
            .ok_or_else(|| ClientError::PackageNotFound {
                registry: self.name.clone(),
                package: name.to_owned(),
            })
    }

    fn record<'d>(
        &self,
        doc: &'d PackageDocument,
        name: &str,
        version: &str,
    ) -> Result<&'d VersionRecord, ClientError> {
        doc.version(version).ok_or_else(|| ClientError::VersionNotFound {
            registry: self.name.clone(),
            package: name.to_owned(),
            version: version.to_owned(),
            available: doc
                .versions_newest_first()
                .iter()
                .take(20)
                .map(|r| crate::text::printable_owned(r.version.clone()))
                .collect(),
        })
    }

    /// The folder writes go to, for a directory registry (or mirror).
    fn directory(&self) -> Option<PathBuf> {
        let source = self.opts.mirror.as_ref().unwrap_or(&self.url);
        (source.scheme() == "file")
            .then(|| source.to_file_path().ok())
            .flatten()
    }

    fn http(&self) -> Result<HttpRegistry, ClientError> {
        Ok(HttpRegistry::new(&self.name, &self.url, &self.opts)?)
    }
}

/// Registries for [`crate::resolve::resolve`], highest priority first, as
/// fm.toml's `[[registries]]` would list them (priorities 10, 20, …; none
/// explicit). Each is recorded in a lock under its [`Registry::name`] and
/// [`Registry::url`]. Any [`Registry`] will do: a [`Client`]'s, or one of
/// your own that wraps it (a cache, a fallback chain; see
/// `examples/caching_registry.rs`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let client = fm::Client::open(&dir.path().display().to_string())?;
/// let set = fm::client::registry_set([client.registry()]);
/// // An empty project resolves to an empty lock.
/// let lock = fm::resolve::resolve(&[], &set, &Default::default())?;
/// assert!(lock.packages.is_empty());
/// # Ok(()) }
/// ```
pub fn registry_set(registries: impl IntoIterator<Item = Arc<dyn Registry>>) -> RegistrySet {
    RegistrySet {
        entries: registries
            .into_iter()
            .zip(1i64..)
            .map(|(client, i)| RegistryEntry {
                decl: RegistryDecl {
                    name: client.name().to_owned(),
                    url: client.url().clone(),
                    priority: i * 10,
                    explicit: false,
                    relative: None,
                    log: Default::default(),
                },
                client,
            })
            .collect(),
    }
}
