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

/// What can go wrong using a [`Client`].
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ClientError {
    /// The location given to [`Client::open`] is not a registry location.
    #[error("invalid registry location {location:?}: {reason}")]
    #[diagnostic(
        code(fm::client::location),
        help("give an http(s):// URL, a static+https:// URL, a file:// URL or a folder")
    )]
    Location {
        /// What was given.
        location: String,
        /// Why it is not a registry location.
        reason: crate::location::LocationError,
    },
    /// [`Client::from_config`]: the user configuration has no registry of
    /// that name.
    #[error("no registry named {name:?} is configured in {}", path.display())]
    #[diagnostic(
        code(fm::client::not_configured),
        help("configure it with `fm registry add {name} URL`, or open it by URL with `Client::open`")
    )]
    NotConfigured {
        /// The name asked for.
        name: String,
        /// The user configuration read.
        path: PathBuf,
    },
    /// The user configuration could not be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// The registry could not be read (I/O, HTTP, an invalid document).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
    /// The registry has no package of that name.
    #[error("registry {registry} has no package {package}")]
    #[diagnostic(code(fm::client::no_package), help("check the name with `Client::search`"))]
    PackageNotFound {
        /// The client's registry name.
        registry: String,
        /// The package asked for.
        package: String,
    },
    /// The registry has the package, but not that version.
    #[error("registry {registry} has no version {version} of {package} (it has: {})", available.join(", "))]
    #[diagnostic(code(fm::client::no_version))]
    VersionNotFound {
        /// The client's registry name.
        registry: String,
        /// The package.
        package: String,
        /// The version asked for.
        version: String,
        /// Every version the registry lists, newest first.
        available: Vec<String>,
    },
    /// The registry publishes no usable SHA-256 for the version, so its
    /// bytes could not be verified; nothing was downloaded.
    #[error("registry {registry} publishes no valid sha256 for {package} {version} (checksum {checksum:?})")]
    #[diagnostic(
        code(fm::client::unverifiable),
        help(
            "fm installs nothing it cannot verify: ask the registry's operator to republish it, or use another registry"
        )
    )]
    Unverifiable {
        /// The client's registry name.
        registry: String,
        /// The package.
        package: String,
        /// The version.
        version: String,
        /// What the registry gave as its checksum (printable, shortened).
        checksum: String,
    },
    /// A download did not match the registry's own checksum
    /// ([`InstallError::RegistryDigestMismatch`], as `fm install` says it),
    /// or could not be written.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Download(#[from] InstallError),
    /// The archive breaks the archive rules (bad manifest, unsafe entry
    /// names, over a cap).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Archive(#[from] ArchiveError),
    /// A publish or yank on a directory registry was refused.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Publish(#[from] PublishError),
    /// A file operation of [`VerifiedArchive::unpack`] failed.
    #[error("{what}: {source}")]
    #[diagnostic(code(fm::client::io))]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

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

/// How to open a [`Client`]: [`Client::builder`], then the options, then
/// [`open`](Self::open).
///
/// ```
/// # fn main() -> Result<(), fm::client::ClientError> {
/// let client = fm::Client::builder("https://registry.example.com")
///     .name("company")
///     .token("s3cret")
///     .open()?;
/// assert_eq!(client.name(), "company");
/// // The token is never shown.
/// assert!(!format!("{client:?}").contains("s3cret"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    location: String,
    base: Option<PathBuf>,
    name: Option<String>,
    token: Option<String>,
    mirror: Option<String>,
    offline: bool,
    cache_dir: Option<PathBuf>,
    log_key: Option<Arc<LogKey>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("location", &self.location)
            .field("name", &self.name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("mirror", &self.mirror)
            .field("offline", &self.offline)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The registry's name, used in messages and by [`registry_set`] (the
    /// name a lock records). Default: its URL, without credentials.
    ///
    /// ```
    /// let client = fm::Client::builder("https://r.example").name("main").open().unwrap();
    /// assert_eq!(client.name(), "main");
    /// ```
    pub fn name(mut self, name: &str) -> ClientBuilder {
        self.name = Some(name.to_owned());
        self
    }

    /// A bearer token for reads (when the server requires it) and for
    /// publish and yank. It is bound to the origin of the registry's own
    /// URL: it goes to no mirror, to no other host a redirect names, and a
    /// directory registry gets none.
    ///
    /// ```
    /// let client = fm::Client::builder("https://r.example").token("t0ken").open().unwrap();
    /// assert!(!format!("{client:?}").contains("t0ken"));
    /// ```
    pub fn token(mut self, token: &str) -> ClientBuilder {
        self.token = Some(token.to_owned());
        self
    }

    /// Fetch documents and archives from `location` (a URL or a folder)
    /// instead, while [`Client::url`] stays the canonical URL. Safe with an
    /// untrusted mirror: every download is verified against the checksum,
    /// and the token stays with the canonical origin.
    ///
    /// ```
    /// let client = fm::Client::builder("https://r.example")
    ///     .mirror("https://mirror.example/fm")
    ///     .open()
    ///     .unwrap();
    /// assert_eq!(client.url().as_str(), "https://r.example/");
    /// ```
    pub fn mirror(mut self, location: &str) -> ClientBuilder {
        self.mirror = Some(location.to_owned());
        self
    }

    /// Read documents from the local cache only; never use the network
    /// (as `fm --offline`).
    ///
    /// ```
    /// let client = fm::Client::builder("https://r.example").offline(true).open().unwrap();
    /// # let _ = client;
    /// ```
    pub fn offline(mut self, offline: bool) -> ClientBuilder {
        self.offline = offline;
        self
    }

    /// Where HTTP registries cache documents (under `{dir}/http`). Default:
    /// fm's cache folder (`FM_CACHE_DIR`, else the platform's cache folder
    /// + `fm`), shared with the `fm` commands.
    ///
    /// ```
    /// let cache = tempfile::tempdir().unwrap();
    /// let client = fm::Client::builder("https://r.example").cache_dir(cache.path()).open().unwrap();
    /// # let _ = client;
    /// ```
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> ClientBuilder {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The private key of a directory registry's transparency log (SPEC
    /// §9): a logged registry refuses publish and yank without it.
    /// Ignored by HTTP registries (the server holds its own key).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// let folder = dir.path().display().to_string();
    /// // A registry with a log (what `fm registry log init` makes).
    /// let (key, _key_file) = fm::tlog::LogKey::generate("registry.example/log")?;
    /// fm::tlog::init(&fm::registry::storage::DirStorage::new(dir.path()), &key)?;
    ///
    /// let without = fm::Client::open(&folder)?;
    /// assert!(without.publish(std::fs::read(fixture)?).await.is_err(), "refused: no key");
    /// let with = fm::Client::builder(&folder).log_key(key).open()?;
    /// with.publish(std::fs::read(fixture)?).await?;
    /// assert!(with.get_version("summarizer", "1.0.0").await?.log_index.is_some());
    /// # Ok(()) }
    /// ```
    pub fn log_key(mut self, key: LogKey) -> ClientBuilder {
        self.log_key = Some(Arc::new(key));
        self
    }

    /// Relative folders are taken relative to `dir` instead of the
    /// current directory.
    ///
    /// ```
    /// let base = tempfile::tempdir().unwrap();
    /// let client = fm::Client::builder("registry").relative_to(base.path()).open().unwrap();
    /// assert_eq!(client.url().to_file_path().unwrap(), base.path().join("registry"));
    /// ```
    pub fn relative_to(mut self, dir: impl Into<PathBuf>) -> ClientBuilder {
        self.base = Some(dir.into());
        self
    }

    /// Opens the client. Fails only on a location that is not a registry
    /// location; nothing is read until a method asks.
    ///
    /// ```
    /// assert!(fm::Client::builder("ftp://r.example").open().is_err());
    /// ```
    pub fn open(self) -> Result<Client, ClientError> {
        let location = |text: &str| {
            // No base: a relative folder is made absolute against the
            // process's current directory, as `std::fs` would open it.
            let base = self.base.clone().unwrap_or_default();
            crate::location::parse_location(text, &base).map_err(|reason| ClientError::Location {
                location: text.to_owned(),
                reason,
            })
        };
        let url = location(&self.location)?;
        let mirror = self.mirror.as_deref().map(location).transpose()?;
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| registry::redact_url(&url).to_string());
        // Bound to the canonical URL's origin; `None` for a folder, which
        // gets no token at all.
        let token_origin = crate::location::origin(&url);
        let opts = OpenOptions {
            offline: self.offline,
            token: self.token.clone().filter(|_| token_origin.is_some()),
            token_origin,
            mirror,
            cache_dir: self.cache_dir.clone().unwrap_or_else(crate::config::cache_dir),
        };
        Client::with_options(&name, url, opts, self.log_key)
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

    /// Downloads the archive of `name@version` and checks it against the
    /// SHA-256 the registry publishes for that version. Only verified
    /// bytes are returned: a mismatch is an error naming both digests, a
    /// version without a valid checksum is refused before any download,
    /// and a registry that sends more than the recorded size is cut off.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// let client = fm::Client::open(&dir.path().display().to_string())?;
    /// let published = client.publish(std::fs::read(fixture)?).await?;
    /// let archive = client.download("summarizer", "1.0.0").await?;
    /// assert_eq!(archive.sha256(), published.checksum);
    /// assert_eq!(archive.bytes(), std::fs::read(fixture)?);
    ///
    /// // Bytes changed behind the registry's back are refused.
    /// let stored = dir.path().join("packages/summarizer/summarizer-1.0.0.fmpkg");
    /// std::fs::write(&stored, b"not the published archive")?;
    /// let err = client.download("summarizer", "1.0.0").await.unwrap_err();
    /// assert!(err.to_string().contains("sha256 mismatch"));
    /// # Ok(()) }
    /// ```
    pub async fn download(&self, name: &str, version: &str) -> Result<VerifiedArchive, ClientError> {
        let doc = self.document(name).await?;
        let record = self.record(&doc, name, version)?;
        if !crate::fsutil::is_sha256_hex(&record.checksum) {
            return Err(ClientError::Unverifiable {
                registry: self.name.clone(),
                package: name.to_owned(),
                version: record.version.clone(),
                checksum: crate::text::printable(&record.checksum).chars().take(80).collect(),
            });
        }
        let expected = record.checksum.to_ascii_lowercase();
        // The install path's writer: hashes as bytes arrive, refuses more
        // than the record's size plus a little (to show a near miss).
        let limit = record.size_bytes.saturating_add(SIZE_SLACK);
        let progress = crate::install::NoProgress;
        let mut writer = HashingWriter::new(Vec::new(), limit, &progress);
        let result = self.registry().download(name, &record.version, &mut writer).await;
        let overflowed = writer.overflowed();
        let (actual, _, bytes) = writer.finish();
        let mismatch = |actual: String| {
            ClientError::Download(InstallError::RegistryDigestMismatch {
                package: name.to_owned(),
                version: record.version.clone(),
                registry: self.name.clone(),
                expected: expected.clone(),
                actual,
            })
        };
        match result {
            Ok(_) => {}
            Err(_) if overflowed => {
                return Err(mismatch(format!(
                    "unknown: it sent over {limit} bytes, the registry's record says {}; cut off there",
                    record.size_bytes
                )));
            }
            Err(e) => return Err(e.into()),
        }
        if actual != expected {
            return Err(mismatch(actual));
        }
        Ok(VerifiedArchive {
            name: name.to_owned(),
            version: record.version.clone(),
            sha256: actual,
            bytes,
        })
    }

    /// Publishes an archive (`.fmpkg` bytes). It is first checked by the
    /// rules every install applies (a valid `manifest.json`, safe and
    /// portable entry names, the caps), so a broken archive never leaves
    /// this machine. Returns the published version's [`PackageInfo`].
    /// Published versions are immutable: the same name and version again
    /// is refused.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// let client = fm::Client::open(&dir.path().display().to_string())?;
    /// let info = client.publish(std::fs::read(fixture)?).await?;
    /// assert_eq!((info.name.as_str(), info.version.as_str()), ("summarizer", "1.0.0"));
    /// assert!(client.publish(std::fs::read(fixture)?).await.is_err(), "immutable");
    /// assert!(client.publish(b"not a zip".to_vec()).await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn publish(&self, archive: Vec<u8>) -> Result<PackageInfo, ClientError> {
        let manifest = archive::read_manifest(&archive)?;
        archive::check_entries(&archive, &Limits::default())?;
        if let Some(root) = self.directory() {
            let key = self.log_key.clone();
            let published = blocking(move || {
                publish::publish(
                    &DirStorage::new(&root),
                    &archive,
                    None,
                    &Limits::default(),
                    key.as_deref(),
                )
            })
            .await??;
            return Ok(published.document.info_for(&published.record));
        }
        let file_name = format!("{}-{}.fmpkg", manifest.raw.name, manifest.version);
        let info = self.http()?.upload(archive, &file_name).await?;
        self.reopen()?;
        Ok(info)
    }

    /// Yanks `name@version`: resolvers no longer pick it (unless a lock
    /// already pins it); its archive stays downloadable.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// let client = fm::Client::open(&dir.path().display().to_string())?;
    /// client.publish(std::fs::read(fixture)?).await?;
    /// client.yank("summarizer", "1.0.0").await?;
    /// assert!(client.get_version("summarizer", "1.0.0").await?.yanked);
    /// client.download("summarizer", "1.0.0").await?; // still there
    /// # Ok(()) }
    /// ```
    pub async fn yank(&self, name: &str, version: &str) -> Result<(), ClientError> {
        self.set_yanked(name, version, true).await
    }

    /// Un-yanks `name@version`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// let client = fm::Client::open(&dir.path().display().to_string())?;
    /// client.publish(std::fs::read(fixture)?).await?;
    /// client.yank("summarizer", "1.0.0").await?;
    /// client.unyank("summarizer", "1.0.0").await?;
    /// assert!(!client.get_version("summarizer", "1.0.0").await?.yanked);
    /// # Ok(()) }
    /// ```
    pub async fn unyank(&self, name: &str, version: &str) -> Result<(), ClientError> {
        self.set_yanked(name, version, false).await
    }

    async fn set_yanked(&self, name: &str, version: &str, yanked: bool) -> Result<(), ClientError> {
        if let Some(root) = self.directory() {
            let (name, version, key) = (name.to_owned(), version.to_owned(), self.log_key.clone());
            blocking(move || publish::set_yanked(&DirStorage::new(&root), &name, &version, yanked, key.as_deref()))
                .await??;
            return Ok(());
        }
        self.http()?.set_yanked(name, version, yanked).await?;
        self.reopen()
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

/// Runs blocking storage work (file locks, fsync) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ClientError::Io {
        what: "a publish task".to_owned(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// An archive whose bytes matched its registry's SHA-256
/// ([`Client::download`]).
#[derive(Clone)]
pub struct VerifiedArchive {
    name: String,
    version: String,
    sha256: String,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for VerifiedArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedArchive")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("sha256", &self.sha256)
            .field("size", &self.bytes.len())
            .finish()
    }
}

impl VerifiedArchive {
    /// The package's name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// # let client = fm::Client::open(&dir.path().display().to_string())?;
    /// # client.publish(std::fs::read(fixture)?).await?;
    /// let archive = client.download("summarizer", "1.0.0").await?;
    /// assert_eq!((archive.name(), archive.version()), ("summarizer", "1.0.0"));
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version, as the registry lists it.
    ///
    /// See [`name`](Self::name).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The verified SHA-256 (lower-case hex).
    ///
    /// See [`Client::download`].
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The archive's bytes.
    ///
    /// See [`Client::download`].
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The archive's bytes, owned.
    ///
    /// See [`Client::download`].
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The archive's `manifest.json`, validated.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// # let client = fm::Client::open(&dir.path().display().to_string())?;
    /// # client.publish(std::fs::read(fixture)?).await?;
    /// let manifest = client.download("summarizer", "1.0.0").await?.manifest()?;
    /// assert_eq!(manifest.raw.dependencies["text-utils"], "^1.0.0");
    /// # Ok(()) }
    /// ```
    pub fn manifest(&self) -> Result<ValidManifest, ClientError> {
        Ok(archive::read_manifest(&self.bytes)?)
    }

    /// Unpacks the archive into the new folder `dest` (its parent must
    /// exist; `dest` must not, not even as a link), with the checks every
    /// install applies: no absolute paths, `..`, links or device files,
    /// names every OS can create, capped size and entry count. Returns the
    /// files written, sorted by path, with their SHA-256. On failure the
    /// folder is removed again.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/flowmason/summarizer-1.0.0.fmpkg");
    /// # let client = fm::Client::open(&dir.path().display().to_string())?;
    /// # client.publish(std::fs::read(fixture)?).await?;
    /// let out = tempfile::tempdir()?;
    /// let archive = client.download("summarizer", "1.0.0").await?;
    /// let files = archive.unpack(&out.path().join("summarizer"))?;
    /// assert!(files.iter().any(|f| f.path == "manifest.json"));
    /// assert!(out.path().join("summarizer/manifest.json").is_file());
    /// // Never into something that exists.
    /// assert!(archive.unpack(&out.path().join("summarizer")).is_err());
    /// # Ok(()) }
    /// ```
    pub fn unpack(&self, dest: &Path) -> Result<Vec<ExtractedFile>, ClientError> {
        // create_dir refuses an existing path, a link included: the
        // folder is ours, so no entry can meet a link planted in it.
        std::fs::create_dir(dest).map_err(|source| ClientError::Io {
            what: format!("creating {}", dest.display()),
            source,
        })?;
        match archive::extract(std::io::Cursor::new(&self.bytes), dest, &Limits::default()) {
            Ok(files) => Ok(files),
            Err(e) => {
                let _ = std::fs::remove_dir_all(dest);
                Err(e.into())
            }
        }
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
