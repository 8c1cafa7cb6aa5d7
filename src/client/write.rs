//! Writes: [`Client::publish`], [`Client::yank`], [`Client::unyank`].

use super::*;

impl Client {
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
}

/// Runs blocking storage work (file locks, fsync) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ClientError::Io {
        what: "a publish task".to_owned(),
        source: std::io::Error::other(e.to_string()),
    })
}
