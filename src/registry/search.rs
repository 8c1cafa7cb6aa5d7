//! `fm search` over any registry: the server's `packages/search`, or a scan
//! of a directory registry's `index/`, with the same matching rules
//! (case-insensitive substring of name, description and tags; exact
//! category).

use std::collections::BTreeMap;

use super::document::PackageInfo;
use super::publish::read_document;
use super::storage::{DirStorage, Storage};
use super::{HttpRegistry, OpenOptions, RegistryError};

/// Whether `info` matches `query` (lower-cased) and `category`.
pub fn matches(info: &PackageInfo, query: &str, category: Option<&str>) -> bool {
    if category.is_some_and(|c| info.category.as_deref() != Some(c)) {
        return false;
    }
    let q = query.to_lowercase();
    q.is_empty()
        || format!("{} {} {}", info.name, info.description, info.tags.join(" "))
            .to_lowercase()
            .contains(&q)
}

/// One entry a name, its newest version (FlowMason servers list every
/// version separately), filtered by `category`, sorted by name, at most
/// `limit`.
pub fn merge_newest(infos: Vec<PackageInfo>, category: Option<&str>, limit: usize) -> Vec<PackageInfo> {
    let mut by_name: BTreeMap<String, PackageInfo> = BTreeMap::new();
    for info in infos {
        if category.is_some_and(|c| info.category.as_deref() != Some(c)) {
            continue;
        }
        let newer =
            |old: &PackageInfo| semver::Version::parse(&info.version).ok() > semver::Version::parse(&old.version).ok();
        match by_name.get(&info.name) {
            Some(old) if !newer(old) => {}
            _ => {
                by_name.insert(info.name.clone(), info);
            }
        }
    }
    by_name.into_values().take(limit).collect()
}

/// Searches the directory registry at `root`.
pub fn search_directory(
    name: &str,
    root: &std::path::Path,
    query: &str,
    category: Option<&str>,
    limit: usize,
) -> Result<Vec<PackageInfo>, RegistryError> {
    let storage = DirStorage::new(root);
    let io = |source| RegistryError::Io {
        registry: name.to_owned(),
        what: format!("folder {}", root.display()),
        source,
    };
    if !root.is_dir() {
        return Err(io(std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
    }
    let mut out = Vec::new();
    for key in storage.list("index/").map_err(io)? {
        let Some(pkg) = key.strip_prefix("index/").and_then(|k| k.strip_suffix(".json")) else {
            continue;
        };
        let doc = read_document(&storage, pkg).map_err(|e| RegistryError::Corrupt {
            registry: name.to_owned(),
            package: pkg.to_owned(),
            reason: e.to_string(),
        })?;
        if let Some((doc, _)) = doc
            && matches(&doc.info, query, category)
        {
            out.push(doc.info);
        }
    }
    Ok(merge_newest(out, category, limit))
}

/// Searches the registry `name` at `url`, whatever its kind.
pub async fn search(
    name: &str,
    url: &url::Url,
    opts: &OpenOptions,
    query: &str,
    category: Option<&str>,
    limit: usize,
) -> Result<Vec<PackageInfo>, RegistryError> {
    let source = opts.mirror.as_ref().unwrap_or(url);
    let found = match source.scheme() {
        "file" => {
            let root = source.to_file_path().map_err(|()| RegistryError::Unsupported {
                registry: name.to_owned(),
                reason: format!("{source} is not a local path"),
            })?;
            search_directory(name, &root, query, category, limit)?
        }
        _ => {
            HttpRegistry::new(name, url, opts)?
                .search(query, category, limit)
                .await?
        }
    };
    Ok(found.into_iter().map(printable_info).collect())
}

/// A search result as printed: every text field the registry wrote,
/// without control characters or terminal escapes ([`crate::text`]).
fn printable_info(mut i: PackageInfo) -> PackageInfo {
    use crate::text::printable_owned as clean;
    for s in [
        &mut i.name,
        &mut i.version,
        &mut i.description,
        &mut i.download_url,
        &mut i.checksum,
        &mut i.published_at,
        &mut i.latest_version,
    ] {
        *s = clean(std::mem::take(s));
    }
    for o in [
        &mut i.author,
        &mut i.author_email,
        &mut i.category,
        &mut i.license,
        &mut i.homepage,
        &mut i.repository,
    ] {
        *o = o.take().map(clean);
    }
    for v in [&mut i.components, &mut i.tags, &mut i.available_versions] {
        *v = std::mem::take(v).into_iter().map(clean).collect();
    }
    i
}
