//! A directory registry, read as a client (SPEC §4): `index/{name}.json` and
//! `packages/{name}/{name}-{version}.fmpkg` under a folder.
//!
//! [`Registry::document`] keeps each document it parsed with the file's
//! identity (size, mtime, inode) and parses it again only when the file
//! changed, so a long-lived client still sees a publish at once;
//! [`Registry::versions`] keeps the [`VersionList`]s it read the same way
//! (the solver's reads: each version's record is parsed only when the
//! solver asks for it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::document::{PackageDocument, archive_key, index_key};
use super::versions::VersionList;
use super::{Registry, RegistryError};

/// A file's identity: size, mtime (ns), inode.
type Stamp = (u64, Option<std::time::SystemTime>, u64);

fn stamp(m: &std::fs::Metadata) -> Stamp {
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(m);
    #[cfg(not(unix))]
    let ino = 0;
    (m.len(), m.modified().ok(), ino)
}

/// Values read from documents, by package name, with the [`Stamp`] of
/// their file.
type Kept<T> = HashMap<String, (Stamp, Arc<T>)>;

/// A registry folder on this machine.
#[derive(Debug, Clone)]
pub struct DirectoryRegistry {
    name: String,
    url: url::Url,
    root: PathBuf,
    /// Documents already parsed by [`Registry::document`], by name, with
    /// the identity of the file they were parsed from.
    docs: Arc<Mutex<Kept<PackageDocument>>>,
    /// The same for [`Registry::versions`].
    lists: Arc<Mutex<Kept<VersionList>>>,
}

impl DirectoryRegistry {
    /// A client for the folder `root`, known as `name` at `url`.
    pub fn new(name: &str, url: url::Url, root: PathBuf) -> DirectoryRegistry {
        DirectoryRegistry {
            name: name.to_owned(),
            url,
            root,
            docs: Arc::default(),
            lists: Arc::default(),
        }
    }

    /// The folder.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// Where an archive lives.
    pub fn archive_path(&self, package: &str, version: &str) -> PathBuf {
        self.root.join(archive_key(package, version))
    }

    fn io(&self, what: String) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
        move |source| RegistryError::Io {
            registry: self.name.clone(),
            what,
            source,
        }
    }

    /// Reads a document synchronously.
    pub fn read_document(&self, package: &str) -> Result<Option<PackageDocument>, RegistryError> {
        let Some((path, bytes)) = self.read_index(package)? else {
            return Ok(None);
        };
        self.parse_document(package, &path, &bytes).map(Some)
    }

    /// Reads a document's versions synchronously, each record parsed only
    /// when asked for ([`VersionList`]).
    pub fn read_versions(&self, package: &str) -> Result<Option<VersionList>, RegistryError> {
        let Some((path, bytes)) = self.read_index(package)? else {
            return Ok(None);
        };
        match String::from_utf8(bytes) {
            Ok(text) => VersionList::parse(&self.name, package, path.display().to_string(), text).map(Some),
            // Not UTF-8: what a full read makes of it.
            Err(e) => {
                let doc = self.parse_document(package, &path, e.as_bytes())?;
                Ok(Some(VersionList::from_document(&self.name, package, Arc::new(doc))))
            }
        }
    }

    /// The bytes of `index/{package}.json`; `None` when there is none.
    fn read_index(&self, package: &str) -> Result<Option<(PathBuf, Vec<u8>)>, RegistryError> {
        if crate::names::validate(package).is_err() {
            return Ok(None);
        }
        let path = self.root.join(index_key(package));
        match std::fs::read(&path) {
            Ok(b) => Ok(Some((path, b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !self.root.is_dir() {
                    return Err(RegistryError::Io {
                        registry: self.name.clone(),
                        what: format!("folder {}", self.root.display()),
                        source: e,
                    });
                }
                Ok(None)
            }
            Err(e) => Err(self.io(path.display().to_string())(e)),
        }
    }

    fn parse_document(&self, package: &str, path: &Path, bytes: &[u8]) -> Result<PackageDocument, RegistryError> {
        let doc: PackageDocument = serde_json::from_slice(bytes).map_err(|e| RegistryError::Corrupt {
            registry: self.name.clone(),
            package: package.to_owned(),
            reason: format!("{}: {e}", path.display()),
        })?;
        if doc.info.name != package {
            return Err(RegistryError::Corrupt {
                registry: self.name.clone(),
                package: package.to_owned(),
                reason: format!("{} names package {:?}", path.display(), doc.info.name),
            });
        }
        Ok(doc)
    }

    /// The kept value of `package` in `kept` if its file is unchanged,
    /// else `read`'s, kept.
    fn kept<T>(
        &self,
        kept: &Mutex<Kept<T>>,
        package: &str,
        read: impl FnOnce() -> Result<Option<T>, RegistryError>,
    ) -> Result<Option<Arc<T>>, RegistryError> {
        let path = self.root.join(index_key(package));
        let before = std::fs::metadata(&path).ok().map(|m| stamp(&m));
        if let Some(now) = &before
            && let Some((s, value)) = kept.lock().ok().and_then(|m| m.get(package).cloned())
            && s == *now
        {
            return Ok(Some(value));
        }
        let value = read()?.map(Arc::new);
        // Stamped before the read: a change in between is seen next time.
        if let (Some(value), Some(s), Ok(mut m)) = (&value, before, kept.lock()) {
            m.insert(package.to_owned(), (s, value.clone()));
        }
        Ok(value)
    }
}

impl Registry for DirectoryRegistry {
    fn name(&self) -> &str {
        &self.name
    }

    fn url(&self) -> &url::Url {
        &self.url
    }

    fn document<'a>(&'a self, package: &'a str) -> BoxFuture<'a, Result<Option<Arc<PackageDocument>>, RegistryError>> {
        // Local reads are a few hundred microseconds: no need for a thread.
        async move { self.kept(&self.docs, package, || self.read_document(package)) }.boxed()
    }

    fn versions<'a>(&'a self, package: &'a str) -> BoxFuture<'a, Result<Option<Arc<VersionList>>, RegistryError>> {
        async move { self.kept(&self.lists, package, || self.read_versions(package)) }.boxed()
    }

    fn download<'a>(
        &'a self,
        package: &'a str,
        version: &'a str,
        sink: &'a mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> BoxFuture<'a, Result<u64, RegistryError>> {
        async move {
            // Both come from documents and locks, which may be hostile: never
            // let them build a path outside the registry folder.
            if crate::names::validate(package).is_err() || semver::Version::parse(version).is_err() {
                return Err(RegistryError::MissingArchive {
                    registry: self.name.clone(),
                    package: package.to_owned(),
                    version: version.to_owned(),
                });
            }
            let path = self.archive_path(package, version);
            let mut file = match tokio::fs::File::open(&path).await {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.root.is_dir() => {
                    // Not a missing archive: the whole registry is not
                    // there (a relative path read from another folder, an
                    // unmounted share).
                    return Err(self.io(format!("the registry folder {}", self.root.display()))(e));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(RegistryError::MissingArchive {
                        registry: self.name.clone(),
                        package: package.to_owned(),
                        version: version.to_owned(),
                    });
                }
                Err(e) => return Err(self.io(path.display().to_string())(e)),
            };
            tokio::io::copy(&mut file, sink)
                .await
                .map_err(self.io(path.display().to_string()))
        }
        .boxed()
    }

    fn local_root(&self) -> Option<&std::path::Path> {
        Some(&self.root)
    }

    fn log_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, RegistryError>> {
        async move {
            // Only the layout's own paths: a hostile caller cannot leave log/.
            if !super::tlog::layout::is_public_path(path) {
                return Ok(None);
            }
            let file = self.root.join("log").join(path);
            match std::fs::read(&file) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.io(file.display().to_string())(e)),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `fm lock` parsed every document twice (solver, then the yanked check).
    #[test]
    fn a_document_is_parsed_again_only_when_its_file_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/registries/company/index/classifier.json"
        );
        std::fs::create_dir_all(tmp.path().join("index")).unwrap();
        let path = tmp.path().join("index/classifier.json");
        std::fs::copy(fixture, &path).unwrap();
        let url = url::Url::from_directory_path(tmp.path()).unwrap();
        let reg = DirectoryRegistry::new("company", url, tmp.path().to_owned());
        let first = crate::runtime::block_on(reg.document("classifier"))
            .unwrap()
            .unwrap()
            .unwrap();
        // The same file: the kept copy, the same one.
        let second = crate::runtime::block_on(reg.document("classifier"))
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        // A changed file is read again; a removed one is gone.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}\n\n")).unwrap();
        let third = crate::runtime::block_on(reg.document("classifier"))
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &third));
        std::fs::remove_file(&path).unwrap();
        assert!(
            crate::runtime::block_on(reg.document("classifier"))
                .unwrap()
                .unwrap()
                .is_none()
        );
    }
}
