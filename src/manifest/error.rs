//! [`ManifestError`]: every mistake in an `fm.toml`, with the file and the
//! span miette points at.

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// A mistake in a manifest, pointing at where it is.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ManifestError {
    /// The file could not be read (the cause is shown once, below).
    #[error("cannot read {}", path.display())]
    #[diagnostic(code(fm::manifest::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No `fm.toml` in the current folder or above it.
    #[error("no fm.toml found in {} or any parent folder", start.display())]
    #[diagnostic(
        code(fm::manifest::not_found),
        help("run `fm init` to create one, or pass --manifest-path")
    )]
    NotFound { start: PathBuf },
    /// `--manifest-path` or `FM_MANIFEST` names a file that is not there.
    #[error("{} does not exist", path.display())]
    #[diagnostic(
        code(fm::manifest::missing),
        help("check --manifest-path (or FM_MANIFEST); `fm init` creates an fm.toml in the current folder")
    )]
    Missing { path: PathBuf },
    /// The file still holds git merge-conflict markers.
    #[error("{} contains git merge-conflict markers", path.display())]
    #[diagnostic(
        code(fm::manifest::conflicted),
        help(
            "finish the merge in fm.toml: keep the lines you want from each side and delete the <<<<<<<, ======= and >>>>>>> lines; then run `fm lock`"
        )
    )]
    Conflicted {
        path: PathBuf,
        #[source_code]
        src: NamedSource<String>,
        #[label("the conflict starts here")]
        span: SourceSpan,
    },
    /// The TOML is malformed, or a key is unknown or of the wrong type.
    #[error("{message}")]
    #[diagnostic(code(fm::manifest::syntax))]
    Syntax {
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        span: Option<SourceSpan>,
        #[help]
        help: Option<String>,
    },
    /// A value is well-formed TOML but not acceptable.
    #[error("{message}")]
    #[diagnostic(code(fm::manifest::invalid))]
    Invalid {
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },
    /// Two `[[registries]]` entries share a name.
    #[error("registry {name:?} is declared twice")]
    #[diagnostic(
        code(fm::manifest::duplicate_registry),
        help("give each [[registries]] entry a different name, or remove one of them")
    )]
    DuplicateRegistry {
        name: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("first declared here")]
        first: SourceSpan,
        #[label("declared again here")]
        second: SourceSpan,
    },
    /// `fm pack` was pointed at a folder whose `fm.toml` cannot be packed:
    /// no `[package]`, or a dependency that names a registry. (The code is
    /// `fm::archive::pack`, as before packing stopped reading `fm.toml`
    /// itself: the message a user sees did not change.)
    #[error("cannot pack {}: {reason}", dir.display())]
    #[diagnostic(code(fm::archive::pack))]
    NotPackable { dir: PathBuf, reason: String },
    /// `fm init` found a manifest already there.
    #[error("{} already exists", path.display())]
    #[diagnostic(code(fm::manifest::exists), help("edit it, or remove it first to start over"))]
    AlreadyExists { path: PathBuf },
    /// `fm remove` named a dependency the manifest does not have.
    #[error("{name} is not a dependency in {}", path.display())]
    #[diagnostic(code(fm::manifest::no_such_dependency))]
    NoSuchDependency { name: String, path: PathBuf },
    /// `fm add` was given a bad name, requirement or registry.
    #[error("{0}")]
    #[diagnostic(code(fm::manifest::bad_argument))]
    BadArgument(String),
}
