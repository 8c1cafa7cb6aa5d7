//! [`Storage`] on an object store (S3 and S3-compatible servers, Google
//! Cloud Storage, Azure Blob Storage), through the `object_store` crate,
//! for registries that run as stateless replicas over one bucket.
//!
//! The two writes that matter map onto conditional puts:
//!
//! - [`Storage::create`] is `PutMode::Create` (S3 and Azure:
//!   `If-None-Match: *`; GCS: `x-goog-if-generation-match: 0`): of two
//!   uploads of one archive, the store lets exactly one through.
//! - [`Storage::swap`] is `PutMode::Update` (S3 and Azure: `If-Match:
//!   <etag>`; GCS: `x-goog-if-generation-match: <generation>`), or
//!   `PutMode::Create` when the document is expected to be absent: a
//!   replica that read a stale document loses and retries.
//!
//! Keys are the directory-registry layout (SPEC §4) under the URL's prefix,
//! so a bucket is also a static registry. A [`Tag`] is the object's ETag
//! and version (GCS's generation, which its `PutMode::Update` compares),
//! when the store reports one.
//!
//! The trait is synchronous and the server calls it from async handlers
//! too, so every call runs on a process-wide runtime of its own and the
//! caller waits for the answer — through `block_in_place` when it is a
//! worker of a multi-thread runtime, so that runtime's other tasks move on.
//! Small objects (documents, counters) are cached in memory and revalidated
//! with `If-None-Match`, so an unchanged document costs a 304, not a body.
//!
//! A store that can sign URLs (S3 and S3-compatible servers; see
//! [`ObjectStorage::with_signer`]) implements [`Storage::presign_get`], which
//! `--redirect-downloads` uses to send clients to the bucket for archives.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::storage::{Storage, Tag};

/// Objects up to this size are cached.
const CACHE_MAX_OBJECT: usize = 1024 * 1024;
/// Bytes kept in the cache before it is cleared.
const CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Keys never cached here: archives are immutable, and the server keeps
/// the ones it serves by digest.
const UNCACHED_PREFIX: &str = "packages/";

/// A registry in a bucket: `s3://bucket/prefix`, `gs://bucket/prefix`,
/// `az://container/prefix`.
#[derive(Debug)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// Signs URLs to the same store, when it can ([`Storage::presign_get`]).
    signer: Option<Arc<dyn Signer>>,
    prefix: String,
    url: String,
    cache: Mutex<Cache>,
}

/// Whether `location` names an object store rather than a folder.
pub fn is_object_url(location: &str) -> bool {
    ["s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://"]
        .iter()
        .any(|s| location.len() >= s.len() && location[..s.len()].eq_ignore_ascii_case(s))
}

impl ObjectStorage {
    /// Opens `url`: `s3://BUCKET[/PREFIX]`, `gs://BUCKET[/PREFIX]`,
    /// `az://CONTAINER[/PREFIX]` or
    /// `abfss://CONTAINER@ACCOUNT.dfs.core.windows.net[/PREFIX]`.
    /// Credentials come from each cloud's standard environment variables
    /// (see [`credential_variables`]); `endpoint` selects an S3-compatible
    /// server, a GCS emulator or an Azure endpoint (plain http only on a
    /// loopback address).
    pub fn open(url: &str, endpoint: Option<&str>) -> io::Result<ObjectStorage> {
        let at = Location::parse(url)?;
        let endpoint = endpoint.map(Endpoint::parse).transpose()?;
        // Every store here can also sign URLs (for --redirect-downloads).
        let (store, signer): (Arc<dyn ObjectStore>, Arc<dyn Signer>) = match at.cloud {
            Cloud::S3 => {
                let s = s3_store(&at, endpoint.as_ref())?;
                (s.clone(), s)
            }
            Cloud::Gcs => {
                let s = gcs_store(&at, endpoint.as_ref())?;
                (s.clone(), s)
            }
            Cloud::Azure => {
                let s = azure_store(&at, endpoint.as_ref())?;
                (s.clone(), s)
            }
        };
        Ok(ObjectStorage::with_store(store, &at.prefix, at.shown()).with_signer(signer))
    }

    /// A storage over any object store (tests use the in-memory one).
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str, url: String) -> ObjectStorage {
        ObjectStorage {
            store,
            signer: None,
            prefix: prefix.trim_matches('/').to_owned(),
            url,
            cache: Mutex::default(),
        }
    }

    /// Lets [`Storage::presign_get`] sign URLs with `signer`, which must
    /// reach the same objects as the store (usually the store itself).
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> ObjectStorage {
        self.signer = Some(signer);
        self
    }

    fn path(&self, key: &str) -> io::Result<Path> {
        let full = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(&full)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad storage key {key:?}: {e}")))
    }

    fn failed(&self, key: &str, e: object_store::Error) -> io::Error {
        io::Error::other(format!("{} ({key}): {e}", self.url))
    }

    fn remember(&self, key: &str, tag: &Tag, bytes: &Bytes) {
        if bytes.len() > CACHE_MAX_OBJECT || key.starts_with(UNCACHED_PREFIX) {
            return;
        }
        if let Ok(mut c) = self.cache.lock() {
            if c.bytes + bytes.len() > CACHE_MAX_BYTES {
                c.map.clear();
                c.bytes = 0;
            }
            c.bytes += bytes.len();
            if let Some((_, old)) = c.map.insert(key.to_owned(), (tag.clone(), bytes.clone())) {
                c.bytes -= old.len();
            }
        }
    }

    fn forget(&self, key: &str) {
        if let Ok(mut c) = self.cache.lock()
            && let Some((_, old)) = c.map.remove(key)
        {
            c.bytes -= old.len();
        }
    }
}

/// Small objects read or written, with their tags, to revalidate.
#[derive(Debug, Default)]
struct Cache {
    map: HashMap<String, (Tag, Bytes)>,
    /// The bytes in `map`.
    bytes: usize,
}

/// The clouds a storage URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cloud {
    S3,
    Gcs,
    Azure,
}

/// A parsed storage URL: which cloud, which bucket (container), which
/// account (Azure, when the URL names it) and which prefix.
#[derive(Debug)]
struct Location {
    cloud: Cloud,
    /// The URL's scheme as given (lower case), kept for display.
    scheme: String,
    bucket: String,
    account: Option<String>,
    prefix: String,
}

impl Location {
    fn parse(url: &str) -> io::Result<Location> {
        let parsed = url::Url::parse(url).map_err(|e| invalid(format!("bad storage URL {url}: {e}")))?;
        let scheme = parsed.scheme().to_ascii_lowercase();
        let cloud = match scheme.as_str() {
            "s3" | "s3a" => Cloud::S3,
            "gs" => Cloud::Gcs,
            "az" | "abfs" | "abfss" => Cloud::Azure,
            _ => {
                return Err(invalid(format!(
                    "storage URL {url}: use s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX"
                )));
            }
        };
        if parsed.password().is_some() || parsed.query().is_some() {
            // Never echo the URL back: it may hold a secret.
            return Err(invalid(format!(
                "storage URL {scheme}://…: credentials do not belong in the URL; set them in the environment ({})",
                credential_variables(url)
            )));
        }
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let (bucket, account) = if cloud == Cloud::Azure && !parsed.username().is_empty() {
            // abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX
            let account = [".dfs.core.windows.net", ".blob.core.windows.net"]
                .iter()
                .find_map(|s| host.strip_suffix(s))
                .filter(|a| !a.is_empty() && !a.contains('.'))
                .ok_or_else(|| {
                    invalid(format!(
                        "storage URL {url}: expected {scheme}://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX"
                    ))
                })?;
            (parsed.username().to_owned(), Some(account.to_owned()))
        } else if parsed.username().is_empty() {
            (host, None)
        } else {
            return Err(invalid(format!(
                "storage URL {scheme}://…: credentials do not belong in the URL; set them in the environment ({})",
                credential_variables(url)
            )));
        };
        if bucket.is_empty() {
            let what = if cloud == Cloud::Azure { "CONTAINER" } else { "BUCKET" };
            return Err(invalid(format!(
                "storage URL {url} names no {} ({scheme}://{what}/PREFIX)",
                what.to_ascii_lowercase()
            )));
        }
        let prefix = parsed.path().trim_matches('/').to_owned();
        if !prefix.is_empty() {
            Path::parse(&prefix).map_err(|e| invalid(format!("bad prefix in {url}: {e}")))?;
        }
        Ok(Location {
            cloud,
            scheme,
            bucket,
            account,
            prefix,
        })
    }

    /// The URL as shown in logs and errors: rebuilt from its parts, so it
    /// never carries anything but names.
    fn shown(&self) -> String {
        let host = match &self.account {
            Some(account) => format!("{}@{account}.dfs.core.windows.net", self.bucket),
            None => self.bucket.clone(),
        };
        let scheme = if self.cloud == Cloud::S3 { "s3" } else { &self.scheme };
        if self.prefix.is_empty() {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}/{}", self.prefix)
        }
    }
}

/// `--storage-endpoint`: an https URL, or plain http on a loopback address.
#[derive(Debug)]
struct Endpoint {
    url: String,
    http: bool,
    loopback: bool,
}

impl Endpoint {
    fn parse(endpoint: &str) -> io::Result<Endpoint> {
        let e = url::Url::parse(endpoint).map_err(|e| invalid(format!("bad --storage-endpoint {endpoint}: {e}")))?;
        let http = match e.scheme() {
            "https" => false,
            "http" if is_loopback(&e) => true,
            "http" => {
                return Err(invalid(format!(
                    "--storage-endpoint {endpoint}: plain http is only allowed on a loopback address; use https"
                )));
            }
            other => {
                return Err(invalid(format!(
                    "--storage-endpoint {endpoint}: {other}:// is not an endpoint; use https://HOST[:PORT]"
                )));
            }
        };
        if e.password().is_some() || !e.username().is_empty() || e.query().is_some() {
            return Err(invalid(
                "--storage-endpoint: credentials do not belong in the endpoint; set them in the environment".to_owned(),
            ));
        }
        Ok(Endpoint {
            url: endpoint.trim_end_matches('/').to_owned(),
            http,
            loopback: is_loopback(&e),
        })
    }
}

/// The environment variables that hold credentials for the cloud `url`
/// names, for error messages and help.
pub fn credential_variables(url: &str) -> &'static str {
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    match scheme.as_str() {
        "gs" => {
            "GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_SERVICE_ACCOUNT (a key file) or GOOGLE_SERVICE_ACCOUNT_KEY (the key's \
             JSON); or run on Google Cloud with an attached service account (none for an emulator on a loopback \
             --storage-endpoint)"
        }
        "az" | "abfs" | "abfss" => {
            "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY, AZURE_STORAGE_TOKEN, \
             or AZURE_CLIENT_ID + AZURE_CLIENT_SECRET + AZURE_TENANT_ID; or run on Azure with a managed identity"
        }
        _ => "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, or an instance role",
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn build_failed(at: &Location, e: object_store::Error) -> io::Error {
    io::Error::other(format!("cannot open {}: {e}", at.shown()))
}

/// An S3 (or S3-compatible) bucket; credentials from the `AWS_*` variables.
fn s3_store(at: &Location, endpoint: Option<&Endpoint>) -> io::Result<Arc<object_store::aws::AmazonS3>> {
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&at.bucket);
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(&e.url).with_allow_http(e.http);
    }
    Ok(Arc::new(builder.build().map_err(|e| build_failed(at, e))?))
}

/// A Google Cloud Storage bucket; credentials from the `GOOGLE_*`
/// variables (or the machine's service account). `endpoint` replaces
/// `https://storage.googleapis.com` (an emulator, or a private endpoint).
fn gcs_store(at: &Location, endpoint: Option<&Endpoint>) -> io::Result<Arc<object_store::gcp::GoogleCloudStorage>> {
    use object_store::ClientConfigKey;
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(&at.bucket);
    if let Some(e) = endpoint {
        builder = builder
            .with_base_url(&e.url)
            .with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), e.http.to_string());
        let explicit = [
            GoogleConfigKey::ServiceAccount,
            GoogleConfigKey::ServiceAccountKey,
            GoogleConfigKey::ApplicationCredentials,
            GoogleConfigKey::BearerToken,
        ]
        .iter()
        .any(|k| builder.get_config_value(k).is_some());
        if e.loopback && !explicit {
            // An emulator takes no OAuth token, and fetching one would ask
            // the cloud metadata server, off this machine.
            let anonymous = object_store::gcp::GcpCredential { bearer: String::new() };
            builder = builder.with_credentials(Arc::new(object_store::StaticCredentialProvider::new(anonymous)));
        }
    }
    let store = builder.build().map_err(|e| {
        io::Error::other(format!(
            "cannot open {}: {e} (credentials: {})",
            at.shown(),
            credential_variables("gs://")
        ))
    })?;
    Ok(Arc::new(store))
}

/// An Azure Blob Storage container; the account from the URL or
/// `AZURE_STORAGE_ACCOUNT_NAME`, credentials from the `AZURE_*` variables.
/// `endpoint` replaces `https://ACCOUNT.blob.core.windows.net` (for
/// Azurite: `http://127.0.0.1:10000/devstoreaccount1`).
fn azure_store(at: &Location, endpoint: Option<&Endpoint>) -> io::Result<Arc<object_store::azure::MicrosoftAzure>> {
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(&at.bucket);
    if let Some(account) = &at.account {
        builder = builder.with_account(account);
    }
    let emulator = builder
        .get_config_value(&AzureConfigKey::UseEmulator)
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if emulator {
        // AZURE_STORAGE_USE_EMULATOR talks plain http to AZURITE_BLOB_STORAGE_URL.
        let target = std::env::var("AZURITE_BLOB_STORAGE_URL").unwrap_or_else(|_| "http://127.0.0.1:10000".into());
        let loopback = url::Url::parse(&target).is_ok_and(|u| is_loopback(&u));
        if !loopback || endpoint.is_some() {
            return Err(invalid(format!(
                "{}: AZURE_STORAGE_USE_EMULATOR is set, which talks plain http to AZURITE_BLOB_STORAGE_URL; \
                 use it only with a loopback emulator and without --storage-endpoint",
                at.shown()
            )));
        }
    } else if builder.get_config_value(&AzureConfigKey::AccountName).is_none() {
        return Err(invalid(format!(
            "{}: no storage account: set AZURE_STORAGE_ACCOUNT_NAME (and {}), or name it in the URL \
             (abfss://{}@ACCOUNT.dfs.core.windows.net/PREFIX)",
            at.shown(),
            credential_variables("az://"),
            at.bucket
        )));
    }
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(e.url.clone()).with_allow_http(e.http);
    }
    let store = builder.build().map_err(|e| {
        io::Error::other(format!(
            "cannot open {}: {e} (credentials: {})",
            at.shown(),
            credential_variables("az://")
        ))
    })?;
    Ok(Arc::new(store))
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn tag_of(e_tag: Option<String>, version: Option<String>) -> Tag {
    format!("{}\n{}", e_tag.unwrap_or_default(), version.unwrap_or_default())
}

fn version_of(tag: &Tag) -> UpdateVersion {
    let (e, v) = tag.split_once('\n').unwrap_or((tag.as_str(), ""));
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    UpdateVersion {
        e_tag: some(e),
        version: some(v),
    }
}

/// The runtime every object-store call runs on: the process's one
/// ([`crate::runtime`]), never dropped.
fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
    crate::runtime::get()
}

/// Runs `fut` on [`runtime`] and waits for it without stalling the caller's
/// runtime.
fn run<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> io::Result<T> {
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    let wait = move || {
        rx.recv()
            .map_err(|_| io::Error::other("an object store request was cancelled"))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(wait),
        _ => wait(),
    }
}

impl Storage for ObjectStorage {
    fn read(&self, key: &str) -> io::Result<Option<(Vec<u8>, Tag)>> {
        let path = self.path(key)?;
        let cached = self.cache.lock().ok().and_then(|c| c.map.get(key).cloned());
        let options = GetOptions {
            if_none_match: cached.as_ref().and_then(|(tag, _)| version_of(tag).e_tag),
            ..GetOptions::default()
        };
        let store = self.store.clone();
        let got = run(async move {
            let r = store.get_opts(&path, options).await?;
            let tag = tag_of(r.meta.e_tag.clone(), r.meta.version.clone());
            Ok::<_, object_store::Error>((r.bytes().await?, tag))
        })?;
        match got {
            Ok((bytes, tag)) => {
                self.remember(key, &tag, &bytes);
                Ok(Some((bytes.to_vec(), tag)))
            }
            Err(object_store::Error::NotModified { .. }) if cached.is_some() => {
                Ok(cached.map(|(tag, bytes)| (bytes.to_vec(), tag)))
            }
            Err(object_store::Error::NotFound { .. }) => {
                self.forget(key);
                Ok(None)
            }
            Err(e) => Err(self.failed(key, e)),
        }
    }

    fn create(&self, key: &str, bytes: &[u8]) -> io::Result<bool> {
        self.swap(key, None, bytes)
    }

    fn swap(&self, key: &str, expected: Option<&Tag>, bytes: &[u8]) -> io::Result<bool> {
        let path = self.path(key)?;
        let mode = match expected {
            None => PutMode::Create,
            Some(tag) => PutMode::Update(version_of(tag)),
        };
        let store = self.store.clone();
        let body = Bytes::copy_from_slice(bytes);
        let payload = PutPayload::from_bytes(body.clone());
        let put = run(async move {
            let options = PutOptions {
                mode,
                ..PutOptions::default()
            };
            store.put_opts(&path, payload, options).await
        })?;
        match put {
            Ok(r) => {
                self.remember(key, &tag_of(r.e_tag, r.version), &body);
                Ok(true)
            }
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                self.forget(key);
                Ok(false)
            }
            Err(e) => Err(self.failed(key, e)),
        }
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        Ok(self.list_tagged(prefix)?.into_iter().map(|(k, _)| k).collect())
    }

    /// One `LIST` request a thousand keys; the tags are the listing's
    /// ETags, as a `GET` of an unversioned object reports them.
    fn list_tagged(&self, prefix: &str) -> io::Result<Vec<(String, Option<Tag>)>> {
        let dir = prefix.trim_end_matches('/');
        let path = self.path(dir)?;
        let store = self.store.clone();
        let metas = run(async move { store.list(Some(&path)).try_collect::<Vec<_>>().await })?
            .map_err(|e| self.failed(prefix, e))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut keys: Vec<(String, Option<Tag>)> = metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.as_ref().strip_prefix(strip.as_str())?.to_owned();
                let tag = m.e_tag.is_some().then(|| tag_of(m.e_tag, m.version));
                Some((key, tag))
            })
            .filter(|(k, _)| {
                // Direct children only, like a folder listing.
                k.strip_prefix(dir)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(|rest| !rest.contains('/') && !rest.starts_with('.'))
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn describe(&self) -> String {
        self.url.clone()
    }

    fn presign_get(&self, key: &str, expires: Duration) -> io::Result<Option<url::Url>> {
        let Some(signer) = self.signer.clone() else {
            return Ok(None);
        };
        let path = self.path(key)?;
        let signed = run(async move {
            signer
                .signed_url(object_store::signer::Method::GET, &path, expires)
                .await
        })?;
        signed.map(Some).map_err(|e| self.failed(key, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn storage() -> ObjectStorage {
        ObjectStorage::with_store(Arc::new(InMemory::new()), "reg", "memory://reg".into())
    }

    #[test]
    fn create_is_if_absent_and_swap_compares_tags() {
        let s = storage();
        assert!(s.create("packages/a/a-1.0.0.fmpkg", b"one").expect("create"));
        assert!(!s.create("packages/a/a-1.0.0.fmpkg", b"two").expect("second create"));
        assert_eq!(
            s.read("packages/a/a-1.0.0.fmpkg").expect("read").expect("some").0,
            b"one"
        );

        assert!(s.swap("index/a.json", None, b"v1").expect("swap from absent"));
        assert!(!s.swap("index/a.json", None, b"v1'").expect("absent expected, present"));
        let (_, tag) = s.read("index/a.json").expect("read").expect("some");
        assert!(s.swap("index/a.json", Some(&tag), b"v2").expect("swap"));
        assert!(!s.swap("index/a.json", Some(&tag), b"v3").expect("stale tag loses"));
        // The cached copy is revalidated, not trusted.
        assert_eq!(s.read("index/a.json").expect("read").expect("some").0, b"v2");
        // Documents are kept to revalidate; archives are not.
        let cached = |k: &str| s.cache.lock().expect("cache").map.contains_key(k);
        assert!(cached("index/a.json") && !cached("packages/a/a-1.0.0.fmpkg"));
        assert_eq!(s.read("index/b.json").expect("read"), None);
    }

    #[test]
    fn list_returns_direct_children_without_the_prefix() {
        let s = storage();
        for k in [
            "index/a.json",
            "index/b.json",
            "packages/a/a-1.0.0.fmpkg",
            "stats/downloads/r1.json",
        ] {
            assert!(s.create(k, b"x").expect("create"));
        }
        assert_eq!(s.list("index/").expect("list"), ["index/a.json", "index/b.json"]);
        assert_eq!(s.list("stats/downloads/").expect("list"), ["stats/downloads/r1.json"]);
        assert!(s.list("nothing/").expect("list").is_empty());
        // A listed tag is the tag a read returns.
        let listed = s.list_tagged("index/").expect("list");
        let (_, read_tag) = s.read("index/a.json").expect("read").expect("some");
        assert_eq!(listed[0], ("index/a.json".to_owned(), Some(read_tag)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usable_from_an_async_worker() {
        let s = storage();
        assert!(s.create("index/a.json", b"x").expect("create"));
        assert!(s.read("index/a.json").expect("read").is_some());
    }

    #[test]
    fn presigned_urls_need_a_signer_and_carry_the_prefix() {
        assert_eq!(
            storage()
                .presign_get("packages/a/a-1.0.0.fmpkg", Duration::from_secs(60))
                .expect("presign"),
            None
        );
        let s3 = Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_bucket_name("b")
                .with_region("us-east-1")
                .with_access_key_id("id")
                .with_secret_access_key("secret")
                .with_endpoint("http://127.0.0.1:9")
                .with_allow_http(true)
                .build()
                .expect("s3"),
        );
        let s = ObjectStorage::with_store(s3.clone(), "reg", "s3://b/reg".into()).with_signer(s3);
        let url = s
            .presign_get("packages/a/a-1.0.0.fmpkg", Duration::from_secs(60))
            .expect("presign")
            .expect("signed");
        assert_eq!(url.path(), "/b/reg/packages/a/a-1.0.0.fmpkg");
        let query = url.query().unwrap_or_default();
        assert!(
            query.contains("X-Amz-Expires=60") && query.contains("X-Amz-Signature="),
            "{url}"
        );
    }

    #[test]
    fn urls() {
        assert!(is_object_url("s3://bucket/p") && is_object_url("S3://b") && !is_object_url("./s3"));
        let e = ObjectStorage::open("ftp://b", None).expect_err("unknown scheme");
        assert!(e.to_string().contains("gs://BUCKET/PREFIX"), "{e}");
        let e = ObjectStorage::open("s3://b", Some("http://example.com")).expect_err("http refused");
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = ObjectStorage::open("gs:///reg", None).expect_err("no bucket");
        assert!(e.to_string().contains("names no bucket"), "{e}");
        let e = ObjectStorage::open("az:///reg", None).expect_err("no container");
        assert!(e.to_string().contains("names no container"), "{e}");
    }

    #[test]
    fn cloud_urls_parse_and_show_no_secret() {
        let at = Location::parse("gs://bkt/fm/reg/").expect("gs");
        assert_eq!(
            (at.cloud, at.bucket.as_str(), at.prefix.as_str()),
            (Cloud::Gcs, "bkt", "fm/reg")
        );
        assert_eq!(at.shown(), "gs://bkt/fm/reg");
        let at = Location::parse("az://cont/reg").expect("az");
        assert_eq!(
            (at.cloud, at.bucket.as_str(), at.account.as_deref()),
            (Cloud::Azure, "cont", None)
        );
        assert_eq!(at.shown(), "az://cont/reg");
        let at = Location::parse("abfss://cont@acct.dfs.core.windows.net/reg").expect("abfss");
        assert_eq!((at.bucket.as_str(), at.account.as_deref()), ("cont", Some("acct")));
        assert_eq!(at.shown(), "abfss://cont@acct.dfs.core.windows.net/reg");
        assert_eq!(Location::parse("S3A://b").expect("s3a").shown(), "s3://b");
        // Secrets in a URL are refused without echoing them.
        for url in [
            "az://cont:hunter2@acct.blob.core.windows.net/reg",
            "gs://user:hunter2@bkt/reg",
            "az://cont/reg?sig=hunter2",
        ] {
            let e = Location::parse(url).expect_err(url).to_string();
            assert!(e.contains("do not belong in the URL") && !e.contains("hunter2"), "{e}");
        }
        let e = Location::parse("abfss://cont@acct.example.com/reg").expect_err("foreign host");
        assert!(e.to_string().contains("CONTAINER@ACCOUNT.dfs.core.windows.net"), "{e}");
        let e = Endpoint::parse("http://u:hunter2@127.0.0.1:1").expect_err("secret in endpoint");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(
            Endpoint::parse("http://[::1]:10000/devstoreaccount1")
                .expect("loopback")
                .http
        );
    }

    #[test]
    fn credential_errors_name_the_variables() {
        if std::env::var_os("AZURE_STORAGE_ACCOUNT_NAME").is_some() {
            return;
        }
        let e = ObjectStorage::open("az://cont/reg", None).expect_err("no account");
        let e = e.to_string();
        assert!(
            e.contains("AZURE_STORAGE_ACCOUNT_NAME")
                && e.contains("AZURE_STORAGE_ACCOUNT_KEY")
                && e.contains("az://cont/reg"),
            "{e}"
        );
        assert!(credential_variables("gs://b").contains("GOOGLE_APPLICATION_CREDENTIALS"));
        assert!(credential_variables("s3://b").contains("AWS_ACCESS_KEY_ID"));
    }
}
