//! `fm.toml`: the project manifest (SPEC §1) and the package manifest that
//! `fm pack` reads (SPEC §5).
//!
//! Parsing is two steps. serde + toml read the text into raw types whose
//! values keep their byte spans ([`toml::Spanned`]); validation then turns
//! them into [`Manifest`], and every mistake becomes a [`ManifestError`] that
//! carries the file and the span, so miette can point at the offending line.
//!
//! Editing (`fm add`, `fm remove`) goes through `toml_edit` so comments,
//! ordering and formatting survive; see [`edit`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use toml::Spanned;

use crate::names;
use crate::req::Requirement;

/// The file name `fm` looks for.
pub const MANIFEST_FILE: &str = "fm.toml";

/// Priority of a registry that does not give one (SPEC §1).
pub const DEFAULT_PRIORITY: i64 = 100;

/// A validated `fm.toml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it was read from.
    pub path: PathBuf,
    /// `[project]`; absent in a package-only manifest.
    pub project: Option<Project>,
    /// `[package]`: present in folders `fm pack` builds.
    pub package: Option<PackageMeta>,
    /// `[dependencies]`, sorted by name.
    pub dependencies: BTreeMap<String, Dependency>,
    /// `[[registries]]`, in file order (not yet sorted by priority).
    pub registries: Vec<RegistryDecl>,
}

/// `[project]`.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub version: Option<semver::Version>,
}

/// One entry of `[dependencies]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    /// The requirement, keeping the text the user wrote.
    pub req: Requirement,
    /// `registry = "x"`: the dependency comes from that registry only.
    pub registry: Option<String>,
}

impl fmt::Display for Dependency {
    /// The form recorded in `fm.lock`'s `[root]`: `name req (registry)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.req)?;
        if let Some(r) = &self.registry {
            write!(f, " ({r})")?;
        }
        Ok(())
    }
}

/// One `[[registries]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryDecl {
    pub name: String,
    /// Normalised location: an `http(s)://` URL or a `file://` URL of an
    /// absolute folder (relative paths are resolved against the manifest's
    /// folder).
    pub url: url::Url,
    pub priority: i64,
    pub explicit: bool,
    /// The path as written, when fm.toml gives a relative path. fm.lock
    /// records this rather than the absolute URL, so a lock committed with
    /// a project stays fresh in every checkout of it.
    pub relative: Option<String>,
}

/// `[package]`: what `fm pack` writes into `manifest.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageMeta {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub author: Option<String>,
    pub author_email: Option<String>,
    pub license: Option<String>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    pub entry: Option<String>,
    #[serde(default)]
    pub exports: Vec<String>,
    /// Archive paths of components; derived from `components/**/*.py` when
    /// absent.
    pub components: Option<Vec<String>>,
    /// Archive paths of pipelines; derived from `pipelines/**/*.pipeline.json`
    /// when absent.
    pub pipelines: Option<Vec<String>>,
    /// Extra files or folders to leave out of the archive.
    #[serde(default)]
    pub exclude: Vec<String>,
}

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
    /// The manifest has neither `[project]` nor `[package]`.
    #[error("{} has no [project] table", path.display())]
    #[diagnostic(code(fm::manifest::no_project), help("add `[project]` with `name = \"...\"`"))]
    NoProject { path: PathBuf },
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

// ---------------------------------------------------------------------------
// Raw serde types

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    project: Option<RawProject>,
    package: Option<Spanned<PackageMeta>>,
    #[serde(default)]
    dependencies: BTreeMap<Spanned<String>, Spanned<RawDep>>,
    #[serde(default)]
    registries: Vec<Spanned<RawRegistry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: Spanned<String>,
    version: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    name: Spanned<String>,
    url: Spanned<String>,
    priority: Option<i64>,
    #[serde(default)]
    explicit: bool,
}

/// `"^1.2"` or `{ version = "^1.2", registry = "x" }`.
struct RawDep {
    version: Spanned<String>,
    registry: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetailedDep {
    version: Spanned<String>,
    registry: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawDep {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare string needs a span of its own: ask for the whole value
        // spanned, then split the two forms.
        let spanned: Spanned<StringOrTable> = Spanned::deserialize(d)?;
        let span = spanned.span();
        Ok(match spanned.into_inner() {
            StringOrTable::String(s) => RawDep {
                version: Spanned::new(span, s),
                registry: None,
            },
            StringOrTable::Table(t) => t,
        })
    }
}

enum StringOrTable {
    String(String),
    Table(RawDep),
}

impl<'de> Deserialize<'de> for StringOrTable {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrTable;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a version requirement string or a table with `version` (and `registry`)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOrTable, E> {
                Ok(StringOrTable::String(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StringOrTable, A::Error> {
                let d = RawDetailedDep::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(StringOrTable::Table(RawDep {
                    version: d.version,
                    registry: d.registry,
                }))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Parsing and validation

/// Most direct dependencies a manifest (and a published package's
/// `manifest.json`) may declare: resolving asks each registry about each
/// one, so an absurd fan-out is refused before the first request.
pub const MAX_DEPENDENCIES: usize = 1000;

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })?;
        Manifest::parse(path, &text)
    }

    /// Validates `text` as if read from `path` (used for relative registry
    /// paths and for naming the file in diagnostics).
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let src = || NamedSource::new(path.display().to_string(), text.to_owned());
        if let Some(span) = conflict_marker(text) {
            return Err(ManifestError::Conflicted {
                path: path.to_owned(),
                src: src(),
                span,
            });
        }
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            // serde says "field"; a TOML user thinks in keys.
            let message = e.message().trim().replace("unknown field", "unknown key");
            let help = if message.starts_with("unknown key") {
                Some("see the fm.toml reference in SPEC §1 for the keys fm knows".to_owned())
            } else {
                None
            };
            let (src, span) = match e.span() {
                Some(span) => {
                    let (src, span) = excerpt(path, text, span);
                    (src, Some(span))
                }
                None => (src(), None),
            };
            ManifestError::Syntax {
                // With a span, miette shows the file name above the snippet.
                message: match span {
                    Some(_) => message,
                    None => format!("invalid {}: {message}", path.display()),
                },
                src,
                span,
                help,
            }
        })?;
        let invalid = |span: std::ops::Range<usize>, message: String, label: &str, help: Option<String>| {
            let (src, span) = excerpt(path, text, span);
            ManifestError::Invalid {
                message,
                src,
                span,
                label: label.to_owned(),
                help,
            }
        };

        let project = match raw.project {
            None => None,
            Some(p) => {
                if let Err(why) = names::validate(p.name.get_ref()) {
                    return Err(invalid(
                        p.name.span(),
                        format!("invalid project name {:?}: {why}", p.name.get_ref()),
                        "invalid name",
                        Some(names::HELP.to_owned()),
                    ));
                }
                let version = match p.version {
                    None => None,
                    Some(v) => Some(semver::Version::parse(v.get_ref()).map_err(|e| {
                        invalid(
                            v.span(),
                            format!("invalid project version {:?}: {e}", v.get_ref()),
                            "not a semantic version",
                            Some("write a version such as \"0.1.0\"".to_owned()),
                        )
                    })?),
                };
                Some(Project {
                    name: p.name.into_inner(),
                    version,
                })
            }
        };

        let package = match raw.package {
            None => None,
            Some(p) => {
                let span = p.span();
                let meta = p.into_inner();
                if let Err(why) = names::validate(&meta.name) {
                    return Err(invalid(
                        value_span(text, "package", "name").unwrap_or(span),
                        format!("invalid package name {:?}: {why}", meta.name),
                        "invalid name",
                        Some(names::HELP.to_owned()),
                    ));
                }
                if let Err(e) = semver::Version::parse(&meta.version) {
                    return Err(invalid(
                        value_span(text, "package", "version").unwrap_or(span),
                        format!("invalid package version {:?}: {e}", meta.version),
                        "not a semantic version",
                        Some("write a version such as \"1.0.0\"".to_owned()),
                    ));
                }
                Some(meta)
            }
        };

        let base = path.parent().unwrap_or(Path::new("."));
        let mut registries: Vec<RegistryDecl> = Vec::new();
        let mut seen: BTreeMap<String, std::ops::Range<usize>> = BTreeMap::new();
        for r in raw.registries {
            let r = r.into_inner();
            let name = r.name.get_ref();
            if let Err(why) = names::validate(name) {
                return Err(invalid(
                    r.name.span(),
                    format!("invalid registry name {name:?}: {why}"),
                    "invalid name",
                    Some(names::HELP.to_owned()),
                ));
            }
            if let Some(first) = seen.get(name) {
                return Err(ManifestError::DuplicateRegistry {
                    name: name.clone(),
                    src: src(),
                    first: first.clone().into(),
                    second: r.name.span().into(),
                });
            }
            seen.insert(name.clone(), r.name.span());
            let url = parse_location(r.url.get_ref(), base).map_err(|why| {
                invalid(
                    r.url.span(),
                    format!("invalid URL for registry {name:?}: {why}"),
                    "not an http(s) URL, file:// URL or path",
                    Some("use https://host/..., file:///abs/path or a path relative to fm.toml".to_owned()),
                )
            })?;
            registries.push(RegistryDecl {
                relative: relative_location(r.url.get_ref()),
                name: r.name.into_inner(),
                url,
                priority: r.priority.unwrap_or(DEFAULT_PRIORITY),
                explicit: r.explicit,
            });
        }

        let mut dependencies = BTreeMap::new();
        let mut over_limit = None;
        for (name, dep) in raw.dependencies {
            if dependencies.len() == MAX_DEPENDENCIES && over_limit.is_none() {
                over_limit = Some(name.span());
            }
            if let Err(why) = names::validate(name.get_ref()) {
                return Err(invalid(
                    name.span(),
                    format!("invalid dependency name {:?}: {why}", name.get_ref()),
                    "invalid name",
                    Some(names::HELP.to_owned()),
                ));
            }
            let dep = dep.into_inner();
            let req = Requirement::parse(dep.version.get_ref()).map_err(|e| {
                invalid(
                    dep.version.span(),
                    format!(
                        "invalid version requirement {:?} for {}: {e}",
                        dep.version.get_ref(),
                        name.get_ref()
                    ),
                    "invalid requirement",
                    Some("use Cargo's syntax: \"^1.2\", \"~1.2.3\", \">=0.3, <0.5\", \"1.0.4\", \"*\"".to_owned()),
                )
            })?;
            if let Some(reg) = &dep.registry
                && !seen.contains_key(reg.get_ref())
            {
                let declared: Vec<&str> = seen.keys().map(String::as_str).collect();
                return Err(invalid(
                    reg.span(),
                    format!(
                        "dependency {} names registry {:?}, which is not declared",
                        name.get_ref(),
                        reg.get_ref()
                    ),
                    "undeclared registry",
                    Some(if declared.is_empty() {
                        "declare it in a [[registries]] table".to_owned()
                    } else {
                        format!("declared registries: {}", declared.join(", "))
                    }),
                ));
            }
            let name = name.into_inner();
            dependencies.insert(
                name.clone(),
                Dependency {
                    name,
                    req,
                    registry: dep.registry.map(Spanned::into_inner),
                },
            );
        }

        if let Some(span) = over_limit {
            return Err(invalid(
                span,
                format!(
                    "{} declares {} dependencies (at most {MAX_DEPENDENCIES})",
                    path.display(),
                    dependencies.len()
                ),
                "one too many",
                Some(
                    "a project or package this wide is refused before any registry is asked; \
                     group the packages into a few packages of your own"
                        .to_owned(),
                ),
            ));
        }

        Ok(Manifest {
            path: path.to_owned(),
            project,
            package,
            dependencies,
            registries,
        })
    }

    /// The folder holding `fm.toml`.
    pub fn root(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The manifest's registries, highest priority (lowest number) first;
    /// ties keep file order.
    pub fn registries_by_priority(&self) -> Vec<RegistryDecl> {
        let mut r = self.registries.clone();
        r.sort_by_key(|r| r.priority);
        r
    }
}

/// Lines longer than this are cut around the span in diagnostics.
const MAX_SNIPPET_LINE: usize = 240;

/// The source and span a diagnostic shows: the whole file, unless the line
/// holding `span` is very long (a hostile or generated file), then only a
/// window of that line, named with its line and column, so an error stays a
/// few lines long whatever the input.
pub(crate) fn excerpt(path: &Path, text: &str, span: std::ops::Range<usize>) -> (NamedSource<String>, SourceSpan) {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    if line_end - line_start <= MAX_SNIPPET_LINE {
        return (
            NamedSource::new(path.display().to_string(), text.to_owned()),
            span.into(),
        );
    }
    let floor = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let from = floor(start.saturating_sub(MAX_SNIPPET_LINE / 2).max(line_start));
    let to = floor((start + MAX_SNIPPET_LINE / 2).min(line_end));
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let len = span.end.min(to).saturating_sub(start);
    (
        NamedSource::new(
            format!("{}:{line}:{column} (excerpt of a long line)", path.display()),
            text[from..to].to_owned(),
        ),
        (start - from, len).into(),
    )
}

/// The span of `[table] key`'s value, for errors found after serde has
/// thrown the spans of a nested struct away.
fn value_span(text: &str, table: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let doc = toml_edit::Document::parse(text).ok()?;
    doc.get(table)?.get(key)?.span()
}

/// Parses a registry location: `http(s)://…`, `file://…`, or a path
/// (relative to `base`).
pub fn parse_location(text: &str, base: &Path) -> Result<url::Url, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    if let Some((scheme, _)) = text.split_once("://") {
        let url = url::Url::parse(text).map_err(|e| e.to_string())?;
        return match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" | "static+http" | "static+https" => {
                let host = match crate::registry::http::strip_static(&url) {
                    Ok((inner, _)) => inner.host_str().map(str::to_owned),
                    Err(e) => return Err(e.to_string()),
                };
                if host.is_none_or(|h| h.is_empty()) {
                    Err("it has no host".to_owned())
                } else {
                    Ok(url)
                }
            }
            "file" => Ok(url),
            other => Err(format!("scheme {other:?} is not supported")),
        };
    }
    if text.contains(':') && !cfg!(windows) && !text.starts_with('/') && !text.starts_with('.') {
        return Err("it looks like a URL without a supported scheme".to_owned());
    }
    let path = Path::new(text);
    let abs = if path.is_absolute() {
        path.to_owned()
    } else {
        std::path::absolute(base.join(path)).map_err(|e| e.to_string())?
    };
    let abs = normalize(&abs);
    url::Url::from_directory_path(&abs).map_err(|()| format!("{} is not an absolute path", abs.display()))
}

/// A registry location written as a relative path, normalised to `/`
/// separators without a trailing one (`../registries/main`); `None` for URLs
/// and absolute paths.
pub fn relative_location(text: &str) -> Option<String> {
    let text = text.trim();
    if text.contains("://") || Path::new(text).is_absolute() {
        return None;
    }
    let t = text.replace('\\', "/");
    let t = t.trim_end_matches('/');
    Some(if t.is_empty() { ".".to_owned() } else { t.to_owned() })
}

/// Removes `.` and `..` components lexically (the folder may not exist yet).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Finds the manifest: `explicit` (from `--manifest-path` or `FM_MANIFEST`)
/// or the nearest `fm.toml` from `start` upwards.
/// The first line that opens a git merge conflict (`<<<<<<< ours`), as a
/// span, so the message points at it rather than at TOML's confusion.
fn conflict_marker(text: &str) -> Option<SourceSpan> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "<<<<<<<" || bare.starts_with("<<<<<<< ") {
            return Some((offset, bare.len()).into());
        }
        offset += line.len();
    }
    None
}

pub fn find(explicit: Option<&Path>, start: &Path) -> Result<PathBuf, ManifestError> {
    if let Some(p) = explicit {
        let p = if p.is_dir() {
            p.join(MANIFEST_FILE)
        } else {
            p.to_owned()
        };
        if !p.is_file() {
            return Err(ManifestError::Missing { path: p });
        }
        return Ok(std::path::absolute(&p).unwrap_or(p));
    }
    let start = std::path::absolute(start).unwrap_or_else(|_| start.to_owned());
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        let candidate = d.join(MANIFEST_FILE);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(ManifestError::NotFound { start })
}

/// The starter manifest `fm init` writes.
pub fn starter(name: &str) -> String {
    format!(
        r#"[project]
name = "{name}"
version = "0.1.0"

[dependencies]
# summarizer = "^1.2"

# Registries are searched in priority order, lower first. Without any, fm
# uses the registries in ~/.flowmason/registries.json.
# [[registries]]
# name = "local"
# url = "http://127.0.0.1:8999"
"#
    )
}

/// The starter `fm.toml` of `fm init --package`: a `[package]` that
/// `fm pack` accepts as it is.
pub fn package_starter(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
description = "{name}: a FlowMason package"
# license = "MIT"
# category = "transformers"
# Archive members: components/**/*.py and pipelines/**/*.pipeline.json are
# found by themselves; list `components` or `pipelines` here to choose.

[dependencies]
# text-utils = "^1.0"
"#
    )
}

/// The example component of `fm init --package`.
pub fn component_starter(name: &str) -> String {
    let func = name.replace('-', "_");
    format!(
        r#""""{name}: an example component (fm init --package). Replace it with your own."""


def {func}(text: str) -> str:
    return text.strip()
"#
    )
}

/// Makes `{dir}/.fm/` ignored by git with a `.gitignore` inside it holding
/// `*` (as uv does for `.venv`), so installed packages are never committed
/// by accident, whatever the repository's own `.gitignore` says. An
/// existing `.fm/.gitignore` is left as it is. Returns its path.
pub fn ignore_install_folder(dir: &Path) -> std::io::Result<PathBuf> {
    let fm = dir.join(".fm");
    std::fs::create_dir_all(&fm)?;
    let path = fm.join(".gitignore");
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(b"# Created by fm: everything in .fm/ is installed or fm's own state.\n*\n")?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    Ok(path)
}

/// Writes a starter package folder into `dir` (`fm.toml` with a
/// `[package]`, `components/{name}.py`), refusing to overwrite `fm.toml`.
pub fn init_package(dir: &Path, name: &str) -> Result<PathBuf, ManifestError> {
    names::validate(name)
        .map_err(|why| ManifestError::BadArgument(format!("invalid package name {name:?}: {why}. {}", names::HELP)))?;
    let path = create_new(&dir.join(MANIFEST_FILE), &package_starter(name))?;
    let components = dir.join("components");
    let component = components.join(format!("{}.py", name.replace('-', "_")));
    let io = |source| ManifestError::Io {
        path: component.clone(),
        source,
    };
    std::fs::create_dir_all(&components).map_err(io)?;
    if !component.exists() {
        std::fs::write(&component, component_starter(name)).map_err(io)?;
    }
    Ok(path)
}

fn create_new(path: &Path, text: &str) -> Result<PathBuf, ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(text.as_bytes()).map_err(io)?;
            Ok(path.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(ManifestError::AlreadyExists { path: path.to_owned() })
        }
        Err(e) => Err(io(e)),
    }
}

/// Writes a starter manifest into `dir`, refusing to overwrite one.
pub fn init(dir: &Path, name: &str) -> Result<PathBuf, ManifestError> {
    names::validate(name)
        .map_err(|why| ManifestError::BadArgument(format!("invalid project name {name:?}: {why}. {}", names::HELP)))?;
    let path = dir.join(MANIFEST_FILE);
    let io = |source| ManifestError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(starter(name).as_bytes()).map_err(io)?;
            Ok(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(ManifestError::AlreadyExists { path }),
        Err(e) => Err(io(e)),
    }
}

/// Editing `fm.toml` in place, keeping comments and layout.
pub mod edit {
    use super::*;
    use toml_edit::{DocumentMut, InlineTable, Item, Table, value};

    /// What an edit did, for the message the CLI prints.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Change {
        Added,
        Replaced { old: String },
        Removed,
    }

    fn load(path: &Path) -> Result<(String, DocumentMut), ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })?;
        // Validate first so an edit never builds on a broken file.
        Manifest::parse(path, &text)?;
        let doc = text.parse::<DocumentMut>().map_err(|e| ManifestError::Syntax {
            message: format!("invalid {}: {}", path.display(), e.message()),
            src: NamedSource::new(path.display().to_string(), text.clone()),
            span: e.span().map(SourceSpan::from),
            help: None,
        })?;
        Ok((text, doc))
    }

    fn save(path: &Path, new: &str) -> Result<(), ManifestError> {
        // Validate the result before it replaces the file.
        Manifest::parse(path, new)?;
        crate::fsutil::write_atomic(path, new.as_bytes()).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Adds or replaces a dependency. Returns what changed.
    pub fn add(path: &Path, name: &str, req: &str, registry: Option<&str>) -> Result<Change, ManifestError> {
        names::validate(name)
            .map_err(|why| ManifestError::BadArgument(format!("invalid package name {name:?}: {why}")))?;
        Requirement::parse(req)
            .map_err(|e| ManifestError::BadArgument(format!("invalid version requirement {req:?} for {name}: {e}")))?;
        let (text, mut doc) = load(path)?;
        if let Some(r) = registry {
            let manifest = Manifest::parse(path, &text)?;
            if !manifest.registries.iter().any(|d| d.name == r) {
                let declared: Vec<&str> = manifest.registries.iter().map(|d| d.name.as_str()).collect();
                return Err(ManifestError::BadArgument(format!(
                    "registry {r:?} is not declared in {} ({})",
                    path.display(),
                    if declared.is_empty() {
                        "it declares no [[registries]]".to_owned()
                    } else {
                        format!("declared: {}", declared.join(", "))
                    }
                )));
            }
        }
        let deps = doc
            .entry("dependencies")
            .or_insert_with(|| Item::Table(Table::new()))
            .as_table_like_mut()
            .ok_or_else(|| ManifestError::BadArgument("[dependencies] in fm.toml is not a table".to_owned()))?;
        // The old requirement's text, without its comments.
        let old = deps.get(name).map(|i| {
            i.as_str()
                .or_else(|| i.get("version").and_then(Item::as_str))
                .map(str::to_owned)
                .unwrap_or_else(|| i.to_string().trim().to_owned())
        });
        let item = match registry {
            None => value(req),
            Some(r) => {
                let mut t = InlineTable::new();
                t.insert("version", req.into());
                t.insert("registry", r.into());
                value(t)
            }
        };
        match deps.get_mut(name) {
            Some(existing) => {
                // Keep the key's decoration (comments before it) and the
                // value's trailing comment.
                let decor = existing.as_value().map(|v| v.decor().clone());
                *existing = item;
                if let (Some(decor), Some(v)) = (decor, existing.as_value_mut()) {
                    *v.decor_mut() = decor;
                }
            }
            None => {
                // Keep a sorted table sorted (as `cargo add` does); leave an
                // unsorted one in the user's order, appending.
                let was_sorted = deps.iter().map(|(k, _)| k).is_sorted();
                deps.insert(name, item);
                if was_sorted {
                    deps.sort_values();
                }
            }
        }
        save(path, &doc.to_string())?;
        Ok(match old {
            None => Change::Added,
            Some(old) => Change::Replaced { old },
        })
    }

    /// Removes a dependency.
    pub fn remove(path: &Path, name: &str) -> Result<Change, ManifestError> {
        let (_, mut doc) = load(path)?;
        let removed = doc
            .get_mut("dependencies")
            .and_then(Item::as_table_like_mut)
            .and_then(|t| t.remove(name));
        if removed.is_none() {
            return Err(ManifestError::NoSuchDependency {
                name: name.to_owned(),
                path: path.to_owned(),
            });
        }
        save(path, &doc.to_string())?;
        Ok(Change::Removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let text = r#"
[project]
name = "support-bot"
version = "0.1.0"

[dependencies]
summarizer = "^1.2"
sentiment = "1.0.4"
filter-kit = { version = ">=0.3, <0.5", registry = "company" }

[[registries]]
name = "company"
url = "https://registry.company.com"
priority = 10
explicit = false

[[registries]]
name = "local"
url = "file:///srv/fm-registry"
"#;
        let m = Manifest::parse(Path::new("/p/fm.toml"), text).unwrap();
        assert_eq!(m.project.unwrap().name, "support-bot");
        assert_eq!(m.dependencies["filter-kit"].registry.as_deref(), Some("company"));
        assert_eq!(m.dependencies["sentiment"].to_string(), "sentiment ^1.0.4");
        assert_eq!(m.registries[1].priority, DEFAULT_PRIORITY);
    }

    #[test]
    fn relative_registry_paths_resolve_against_the_manifest() {
        let u = parse_location("../reg", Path::new("/a/b")).unwrap();
        assert_eq!(u.as_str(), "file:///a/reg/");
    }

    #[test]
    fn rejects_unknown_keys_with_a_span() {
        let err = Manifest::parse(Path::new("fm.toml"), "[project]\nname = \"x\"\nnmae = 1\n").unwrap_err();
        match err {
            ManifestError::Syntax { span, .. } => assert!(span.is_some()),
            other => panic!("{other:?}"),
        }
    }
}
