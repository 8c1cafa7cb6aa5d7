//! Verified downloads: [`Client::download`] and the [`VerifiedArchive`] it returns.

use super::*;

impl Client {
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
        // The document's checksum was checked when it was read.
        let expected = record.checksum.to_string();
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
