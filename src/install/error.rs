//! What can go wrong installing, verifying and filling the cache.

use super::{nofollow, state};

/// What can go wrong installing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InstallError {
    /// A file operation failed.
    #[error("{what}: {source}")]
    #[diagnostic(code(fm::install::io))]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A downloaded archive is not the one the lock names.
    #[error(
        "sha256 mismatch for {package} {version} from registry {registry}\n  expected (fm.lock): {expected}\n  actual (download):  {actual}"
    )]
    #[diagnostic(
        code(fm::install::digest_mismatch),
        help(
            "the registry serves different bytes than when fm.lock was written; nothing was installed and the cache was not changed. If the change is legitimate, re-lock with `fm lock --upgrade-package {package}`"
        )
    )]
    DigestMismatch {
        package: String,
        version: String,
        registry: String,
        expected: String,
        actual: String,
    },
    /// A downloaded archive does not match the checksum its own registry
    /// publishes for it (`fm install`, or a lock the registry still agrees
    /// with): re-locking cannot help.
    #[error(
        "sha256 mismatch for {package} {version} from registry {registry}\n  expected (the registry's checksum): {expected}\n  actual (download):                  {actual}"
    )]
    #[diagnostic(
        code(fm::install::registry_digest_mismatch),
        help(
            "registry {registry} serves bytes for {package} {version} that disagree with its own checksum: the registry is broken or its archives were tampered with. Nothing was installed and the cache was not changed; re-locking cannot help. Tell the registry's operator, or install from another registry"
        )
    )]
    RegistryDigestMismatch {
        package: String,
        version: String,
        registry: String,
        expected: String,
        actual: String,
    },
    /// A cached archive no longer has its digest (disk corruption or
    /// tampering); it was removed.
    #[error("the cached archive of {package} is corrupt: {path}\n  expected: {expected}\n  actual:   {actual}")]
    #[diagnostic(
        code(fm::install::corrupt_cache),
        help("the corrupt file was removed; run the command again to download it")
    )]
    CorruptCache {
        package: String,
        path: String,
        expected: String,
        actual: String,
    },
    /// An archive was refused while unpacking.
    #[error("cannot unpack {package} {version}: {source}")]
    #[diagnostic(
        code(fm::install::unpack),
        help("the archive was refused and nothing was installed; ask its publisher to rebuild it with `fm pack`")
    )]
    Unpack {
        package: String,
        version: String,
        #[source]
        source: crate::archive::ArchiveError,
    },
    /// `--offline` and archives are not cached.
    #[error("--offline: {} not in the cache: {}", if missing.len() == 1 { "this package is" } else { "these packages are" }, missing.join(", "))]
    #[diagnostic(
        code(fm::install::offline),
        help("run `fm sync` once without --offline (with network access) to download them into the cache")
    )]
    Offline { missing: Vec<String> },
    /// The lock names a registry it does not declare.
    #[error("{package} comes from registry {registry}, which fm.lock does not list under [[registry]]")]
    #[diagnostic(code(fm::install::unknown_registry), help("re-create the lock with `fm lock`"))]
    UnknownRegistry { package: String, registry: String },
    /// A registry URL in the lock cannot be parsed.
    #[error("registry {registry} has an invalid URL in fm.lock: {reason}")]
    #[diagnostic(code(fm::install::bad_url), help("re-create the lock with `fm lock`"))]
    BadRegistryUrl { registry: String, reason: String },
    /// `--dir` points at a folder fm did not create.
    #[error("refusing to install into {dir}: it is not empty and fm did not install into it before")]
    #[diagnostic(
        code(fm::install::not_owned),
        help("fm removes everything in its install folder that the lock does not name; choose an empty or new folder")
    )]
    NotOwned { dir: String },
    /// A package entry fm cannot install safely.
    #[error("cannot install {package:?}: {reason}")]
    #[diagnostic(code(fm::install::invalid_package), help("re-create the lock with `fm lock`"))]
    InvalidPackage { package: String, reason: String },
    /// A symbolic link on the path to something fm would write or remove.
    #[error("refusing to use {path}: it is a symbolic link")]
    #[diagnostic(
        code(fm::install::symlink),
        help(
            "fm never writes or removes anything through a symbolic link: one committed to a repository (or restored into a cache) could make it delete or overwrite files anywhere. Nothing was changed. Remove the link (`rm {path}`) and run the command again"
        )
    )]
    Link { path: String },
    /// A file where fm keeps a folder.
    #[error("{path} is not a folder")]
    #[diagnostic(
        code(fm::install::not_a_folder),
        help("fm keeps a folder there; nothing was changed. Move the file away and run the command again")
    )]
    NotAFolder { path: String },
    /// A package folder fm did not install is where it would install one.
    #[error("{} {} in the way: fm did not install {} ({state} does not record {2})", paths.join(", "), if paths.len() == 1 { "is" } else { "are" }, if paths.len() == 1 { "it" } else { "them" })]
    #[diagnostic(
        code(fm::install::not_installed_by_fm),
        help(
            "fm replaces and removes only what it installed; nothing was changed. Move or delete it yourself, then run the command again"
        )
    )]
    NotInstalledByFm { paths: Vec<String>, state: String },
    /// Writing to the cache failed (a full disk, a quota, permissions).
    #[error("cannot write to the cache {cache} while downloading {package}: {source}")]
    #[diagnostic(
        code(fm::install::cache_write),
        help("free space there, or point FM_CACHE_DIR at a folder with room; nothing was installed")
    )]
    CacheWrite {
        cache: String,
        package: String,
        #[source]
        source: std::io::Error,
    },
    /// `fm verify` with nothing installed.
    #[error("nothing is installed in {dir} (no state file)")]
    #[diagnostic(code(fm::install::nothing_installed), help("run `fm sync` first"))]
    NothingInstalled { dir: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] state::StateError),
}

impl From<nofollow::DirError> for InstallError {
    fn from(e: nofollow::DirError) -> InstallError {
        match e {
            nofollow::DirError::Link(p) => InstallError::Link {
                path: p.display().to_string(),
            },
            nofollow::DirError::NotDir(p) => InstallError::NotAFolder {
                path: p.display().to_string(),
            },
            nofollow::DirError::Io { path, source } => InstallError::Io {
                what: path.display().to_string(),
                source,
            },
        }
    }
}

impl InstallError {
    /// A [`InstallError::DigestMismatch`] whose expected digest is the
    /// registry's own current checksum (not only fm.lock's), said as such.
    pub fn registry_contradicts_itself(self) -> InstallError {
        match self {
            InstallError::DigestMismatch {
                package,
                version,
                registry,
                expected,
                actual,
            } => InstallError::RegistryDigestMismatch {
                package,
                version,
                registry,
                expected,
                actual: actual.replace("fm.lock records", "the registry's record says"),
            },
            other => other,
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> InstallError {
        let what = what.into();
        move |source| InstallError::Io { what, source }
    }
}
