//! `fm registry log init --backfill`: a record for every version published
//! before the log existed, in a stable order — package name (bytewise),
//! then version (semver, unparseable ones last by text), each publish
//! followed by a `yank` record when the version is yanked — and the
//! documents' `log_index` set. Versions that already have a `log_index`
//! are skipped, so running it again (after a crash) appends nothing twice.

use super::document::index_key;
use super::publish::{self, PublishError};
use super::tlog::{Appender, Record};

/// What a backfill appended.
#[derive(Debug, Default, Clone, Copy)]
pub struct Backfilled {
    pub packages: usize,
    pub versions: usize,
}

/// Backfills every document in the appender's storage.
pub fn backfill(log: &Appender<'_>) -> Result<Backfilled, PublishError> {
    let storage = log.storage();
    let io = |source| PublishError::Io {
        registry: storage.describe(),
        source,
    };
    let mut names: Vec<String> = storage
        .list("index/")
        .map_err(io)?
        .iter()
        .filter_map(|k| k.strip_prefix("index/")?.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    let mut done = Backfilled::default();
    for name in names {
        let Some((doc, _)) = publish::read_document(storage, &name)? else {
            continue;
        };
        let mut todo: Vec<_> = doc
            .versions
            .iter()
            .flatten()
            .filter(|v| v.log_index.is_none())
            .cloned()
            .collect();
        todo.sort_by(|a, b| {
            (a.semver().is_none(), a.semver(), &a.version).cmp(&(b.semver().is_none(), b.semver(), &b.version))
        });
        if todo.is_empty() {
            continue;
        }
        let mut indexes = Vec::new();
        for v in &todo {
            let time = if v.published_at.parse::<jiff::Timestamp>().is_ok() {
                v.published_at.clone()
            } else {
                publish::now()
            };
            let n = log.append(&Record::publish(&name, &v.version, &v.checksum, v.size_bytes, &time))?;
            if v.yanked {
                log.append(&Record::yank(&name, &v.version, &v.checksum, true, &time))?;
            }
            indexes.push((v.version.clone(), n));
        }
        while let Some((mut doc, tag)) = publish::read_document(storage, &name)? {
            for v in doc.versions.iter_mut().flatten() {
                if let Some((_, n)) = indexes.iter().find(|(ver, _)| *ver == v.version) {
                    v.log_index.get_or_insert(*n);
                }
            }
            doc.refresh_info();
            if storage
                .swap(&index_key(&name), Some(&tag), &publish::to_json(&doc))
                .map_err(io)?
            {
                break;
            }
        }
        done.packages += 1;
        done.versions += todo.len();
    }
    Ok(done)
}
