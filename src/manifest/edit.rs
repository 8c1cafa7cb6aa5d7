//! Editing `fm.toml` in place (`fm add`, `fm remove`) through `toml_edit`,
//! so comments, ordering and formatting survive. The file is validated
//! before an edit builds on it and the result before it replaces the file.

use std::path::Path;

use miette::{NamedSource, SourceSpan};
use toml_edit::{DocumentMut, InlineTable, Item, Table, value};

use super::{Manifest, ManifestError};
use crate::names;
use crate::req::Requirement;

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
    names::validate(name).map_err(|why| ManifestError::BadArgument(format!("invalid package name {name:?}: {why}")))?;
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
