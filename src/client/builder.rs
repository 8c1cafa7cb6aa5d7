//! Opening a [`Client`] with options: [`Client::builder`].

use super::*;

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
    pub(super) location: String,
    pub(super) base: Option<PathBuf>,
    pub(super) name: Option<String>,
    pub(super) token: Option<String>,
    pub(super) mirror: Option<String>,
    pub(super) offline: bool,
    pub(super) cache_dir: Option<PathBuf>,
    pub(super) log_key: Option<Arc<LogKey>>,
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
