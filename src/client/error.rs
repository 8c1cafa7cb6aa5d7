//! What can go wrong using a [`Client`](super::Client).

use super::*;

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
