//! Parsing `fm.toml`: serde + toml read the text into raw types whose
//! values keep their byte spans ([`toml::Spanned`]); [`Manifest::parse`]
//! then validates them, one named step per table, in a fixed
//! order (conflict markers, TOML, `[project]`, `[package]`,
//! `[[registries]]`, `[dependencies]`), so the first mistake reported is
//! always the same one. Every mistake is a [`ManifestError`] carrying the
//! file and the span.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use miette::{NamedSource, SourceSpan};
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use toml::Spanned;

use super::{Dependency, LogPin, MAX_DEPENDENCIES, Manifest, ManifestError, PackageMeta, Project, RegistryDecl};
use crate::location::{DEFAULT_PRIORITY, parse_location, relative_location};
use crate::names;
use crate::req::Requirement;

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
    #[serde(rename = "log-key")]
    log_key: Option<Spanned<String>>,
    #[serde(default, rename = "require-log")]
    require_log: bool,
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

impl Manifest {
    /// Validates `text` as if read from `path` (used for relative registry
    /// paths and for naming the file in diagnostics).
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let src = Source { path, text };
        src.check_conflict_markers()?;
        let raw = src.deserialize()?;
        let project = raw.project.map(|p| src.project(p)).transpose()?;
        let package = raw.package.map(|p| src.package(p)).transpose()?;
        let registries = src.registries(raw.registries)?;
        let dependencies = src.dependencies(raw.dependencies, &registries)?;
        Ok(Manifest {
            path: path.to_owned(),
            project,
            package,
            dependencies,
            registries,
        })
    }
}

/// The text being parsed and the path it is named by in diagnostics.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// The whole file, for a diagnostic.
    fn named(&self) -> NamedSource<String> {
        NamedSource::new(self.path.display().to_string(), self.text.to_owned())
    }

    /// A [`ManifestError::Invalid`] pointing at `span`.
    fn invalid(&self, span: Range<usize>, message: String, label: &str, help: Option<String>) -> ManifestError {
        let (src, span) = excerpt(self.path, self.text, span);
        ManifestError::Invalid {
            message,
            src,
            span,
            label: label.to_owned(),
            help,
        }
    }

    /// Step 1: an unfinished git merge is named as such, rather than as
    /// TOML's confusion about `<<<<<<<`.
    fn check_conflict_markers(&self) -> Result<(), ManifestError> {
        match conflict_marker(self.text) {
            Some(span) => Err(ManifestError::Conflicted {
                path: self.path.to_owned(),
                src: self.named(),
                span,
            }),
            None => Ok(()),
        }
    }

    /// Step 2: TOML into the raw types; malformed TOML, unknown keys and
    /// wrong types become [`ManifestError::Syntax`].
    fn deserialize(&self) -> Result<RawManifest, ManifestError> {
        toml::from_str(self.text).map_err(|e| {
            // serde says "field"; a TOML user thinks in keys.
            let message = e.message().trim().replace("unknown field", "unknown key");
            let help = if message.starts_with("unknown key") {
                Some("see the fm.toml reference in SPEC §1 for the keys fm knows".to_owned())
            } else {
                None
            };
            let (src, span) = match e.span() {
                Some(span) => {
                    let (src, span) = excerpt(self.path, self.text, span);
                    (src, Some(span))
                }
                None => (self.named(), None),
            };
            ManifestError::Syntax {
                // With a span, miette shows the file name above the snippet.
                message: match span {
                    Some(_) => message,
                    None => format!("invalid {}: {message}", self.path.display()),
                },
                src,
                span,
                help,
            }
        })
    }

    /// Step 3: `[project]`'s name and version.
    fn project(&self, p: RawProject) -> Result<Project, ManifestError> {
        if let Err(why) = names::validate(p.name.get_ref()) {
            return Err(self.invalid(
                p.name.span(),
                format!("invalid project name {:?}: {why}", p.name.get_ref()),
                "invalid name",
                Some(names::HELP.to_owned()),
            ));
        }
        let version = match p.version {
            None => None,
            Some(v) => Some(semver::Version::parse(v.get_ref()).map_err(|e| {
                self.invalid(
                    v.span(),
                    format!("invalid project version {:?}: {e}", v.get_ref()),
                    "not a semantic version",
                    Some("write a version such as \"0.1.0\"".to_owned()),
                )
            })?),
        };
        Ok(Project {
            name: p.name.into_inner(),
            version,
        })
    }

    /// Step 4: `[package]`'s name and version (the rest is free text).
    fn package(&self, p: Spanned<PackageMeta>) -> Result<PackageMeta, ManifestError> {
        let span = p.span();
        let meta = p.into_inner();
        if let Err(why) = names::validate(&meta.name) {
            return Err(self.invalid(
                value_span(self.text, "package", "name").unwrap_or(span),
                format!("invalid package name {:?}: {why}", meta.name),
                "invalid name",
                Some(names::HELP.to_owned()),
            ));
        }
        if let Err(e) = semver::Version::parse(&meta.version) {
            return Err(self.invalid(
                value_span(self.text, "package", "version").unwrap_or(span),
                format!("invalid package version {:?}: {e}", meta.version),
                "not a semantic version",
                Some("write a version such as \"1.0.0\"".to_owned()),
            ));
        }
        Ok(meta)
    }

    /// Step 5: `[[registries]]`, in file order: valid names, each declared
    /// once, locations that parse (relative paths against fm.toml's folder).
    fn registries(&self, raw: Vec<Spanned<RawRegistry>>) -> Result<Vec<RegistryDecl>, ManifestError> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        let mut registries: Vec<RegistryDecl> = Vec::new();
        let mut seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
        for r in raw {
            let r = r.into_inner();
            let name = r.name.get_ref();
            if let Err(why) = names::validate(name) {
                return Err(self.invalid(
                    r.name.span(),
                    format!("invalid registry name {name:?}: {why}"),
                    "invalid name",
                    Some(names::HELP.to_owned()),
                ));
            }
            if let Some(first) = seen.get(name) {
                return Err(ManifestError::DuplicateRegistry {
                    name: name.clone(),
                    src: self.named(),
                    first: first.clone().into(),
                    second: r.name.span().into(),
                });
            }
            seen.insert(name.clone(), r.name.span());
            let url = parse_location(r.url.get_ref(), base).map_err(|why| {
                self.invalid(
                    r.url.span(),
                    format!("invalid URL for registry {name:?}: {why}"),
                    "not an http(s) URL, file:// URL or path",
                    Some("use https://host/..., file:///abs/path or a path relative to fm.toml".to_owned()),
                )
            })?;
            if let Some(key) = &r.log_key
                && signed_note::StandardVerifier::new(key.get_ref().trim()).is_err()
            {
                return Err(self.invalid(
                    key.span(),
                    format!("invalid log-key for registry {name:?}"),
                    "not a signed-note verifier key",
                    Some(
                        "give the registry's log/key as `fm registry log checkpoint NAME --json` prints it (NAME+ID+BASE64)"
                            .to_owned(),
                    ),
                ));
            }
            registries.push(RegistryDecl {
                log: LogPin {
                    key: r.log_key.map(|k| k.into_inner().trim().to_owned()),
                    require: r.require_log,
                },
                relative: relative_location(r.url.get_ref()),
                name: r.name.into_inner(),
                url,
                priority: r.priority.unwrap_or(DEFAULT_PRIORITY),
                explicit: r.explicit,
            });
        }
        Ok(registries)
    }

    /// Step 6: `[dependencies]`: each one valid, naming only declared
    /// registries, and at most [`MAX_DEPENDENCIES`] of them.
    fn dependencies(
        &self,
        raw: BTreeMap<Spanned<String>, Spanned<RawDep>>,
        registries: &[RegistryDecl],
    ) -> Result<BTreeMap<String, Dependency>, ManifestError> {
        let declared: BTreeSet<&str> = registries.iter().map(|r| r.name.as_str()).collect();
        let mut dependencies = BTreeMap::new();
        let mut over_limit = None;
        for (name, dep) in raw {
            if dependencies.len() == MAX_DEPENDENCIES && over_limit.is_none() {
                over_limit = Some(name.span());
            }
            let dep = self.dependency(name, dep.into_inner(), &declared)?;
            dependencies.insert(dep.name.clone(), dep);
        }
        if let Some(span) = over_limit {
            return Err(self.invalid(
                span,
                format!(
                    "{} declares {} dependencies (at most {MAX_DEPENDENCIES})",
                    self.path.display(),
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
        Ok(dependencies)
    }

    /// One entry of `[dependencies]`.
    fn dependency(
        &self,
        name: Spanned<String>,
        dep: RawDep,
        declared: &BTreeSet<&str>,
    ) -> Result<Dependency, ManifestError> {
        if let Err(why) = names::validate(name.get_ref()) {
            return Err(self.invalid(
                name.span(),
                format!("invalid dependency name {:?}: {why}", name.get_ref()),
                "invalid name",
                Some(names::HELP.to_owned()),
            ));
        }
        let req = Requirement::parse(dep.version.get_ref()).map_err(|e| {
            self.invalid(
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
            && !declared.contains(reg.get_ref().as_str())
        {
            return Err(self.invalid(
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
                    format!(
                        "declared registries: {}",
                        declared.iter().copied().collect::<Vec<_>>().join(", ")
                    )
                }),
            ));
        }
        Ok(Dependency {
            name: name.into_inner(),
            req,
            registry: dep.registry.map(Spanned::into_inner),
        })
    }
}

/// Lines longer than this are cut around the span in diagnostics.
const MAX_SNIPPET_LINE: usize = 240;

/// The source and span a diagnostic shows: the whole file, unless the line
/// holding `span` is very long (a hostile or generated file), then only a
/// window of that line, named with its line and column, so an error stays a
/// few lines long whatever the input.
fn excerpt(path: &Path, text: &str, span: Range<usize>) -> (NamedSource<String>, SourceSpan) {
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
fn value_span(text: &str, table: &str, key: &str) -> Option<Range<usize>> {
    let doc = toml_edit::Document::parse(text).ok()?;
    doc.get(table)?.get(key)?.span()
}

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
