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
//! worker of a multi-thread runtime, so that runtime's other tasks move on
//! (`bridge`). URLs and endpoints are parsed in `location`, the three
//! clouds' stores built in `clouds`.
//! Small objects (documents, counters) are cached in memory and revalidated
//! with `If-None-Match`, so an unchanged document costs a 304, not a body.
//!
//! A store that can sign URLs (S3 and S3-compatible servers; see
//! [`ObjectStorage::with_signer`]) implements [`Storage::presign_get`], which
//! `--redirect-downloads` uses to send clients to the bucket for archives.

mod bridge;
mod clouds;
mod location;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};

pub use location::credential_variables;

use self::bridge::run;
use self::clouds::{azure_store, gcs_store, s3_store};
use self::location::{Cloud, Endpoint, Location};
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
    use crate::registry::storage::is_object_url;
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
}
