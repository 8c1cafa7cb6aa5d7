//! The yank check's memo for HTTP registries that keep a transparency log
//! (SPEC §9): every publish, yank and un-yank is a log record, so one
//! request for `log/checkpoint` tells whether anything changed since the
//! memo was written. The same size and root hash: nothing did, and no
//! document is requested. A larger tree: the new records (in the entry
//! bundles from the memo's size on) name exactly the packages that
//! changed; only their memo entries are dropped (and their documents read
//! again). Anything else (a smaller tree, another root at the same size, a
//! bundle that cannot be read, more than [`MAX_NEW_RECORDS`] new records)
//! drops the whole memo.
//!
//! The checkpoint is used only as a change marker, not as a proof: its
//! signature is not checked here (`fm sync`'s log checks prove what is
//! installed). A registry that lies in its log can hide from this check
//! only its own yanks, which it could as well leave out of its documents.
//! A registry without a log (FlowMason Studio), one fm.lock pins no log
//! key for (no checkpoint is asked of it), or one that cannot be read
//! (`--offline`) gets no memo: each document is requested as before.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::yank_memo::Memo;
use crate::registry::Registry;
use crate::registry::tlog::layout::WIDTH;
use crate::registry::tlog::{Record, proof};
use crate::resolve::RegistrySet;

/// More new records than this: reading every document is cheaper than
/// reading the bundles.
const MAX_NEW_RECORDS: u64 = 64 * WIDTH;

/// The memos of the HTTP registries among `used` (registry names, those
/// fm.lock pins a log key for) that keep a log, each advanced to the log's
/// current checkpoint.
pub(super) fn memos<'a>(registries: &'a RegistrySet, cache: &Path, used: &HashSet<&str>) -> HashMap<&'a str, Memo> {
    let jobs: Vec<(&'a str, Arc<dyn Registry>, Memo)> = registries
        .entries
        .iter()
        .filter(|e| e.client.local_root().is_none() && used.contains(e.decl.name.as_str()))
        .filter_map(|e| {
            let url = crate::registry::redact_url(e.client.url()).to_string();
            let memo = Memo::load_logged(cache, &url)?;
            Some((e.decl.name.as_str(), e.client.clone(), memo))
        })
        .collect();
    if jobs.is_empty() {
        return HashMap::new();
    }
    let Ok(runtime) = crate::runtime::get() else {
        return HashMap::new();
    };
    // A thread of its own: callers may be inside a runtime already.
    std::thread::scope(|s| {
        s.spawn(|| {
            runtime.block_on(async {
                let all = futures_util::future::join_all(jobs.into_iter().map(|(name, client, mut memo)| async move {
                    let now = checkpoint(&*client).await?;
                    let changed = match memo.checkpoint() {
                        Some(old) if *old == now => Some(HashSet::new()),
                        Some((size, _)) if *size < now.0 && now.0 - *size <= MAX_NEW_RECORDS => {
                            changed_since(&*client, *size, now.0).await
                        }
                        _ => None,
                    };
                    memo.advance(now, changed.as_ref());
                    Some((name, memo))
                }));
                tokio::time::timeout(super::yanked::BUDGET, all)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .collect()
            })
        })
        .join()
        .unwrap_or_default()
    })
}

/// The size and root hash of the log's current checkpoint, if it has one.
async fn checkpoint(client: &dyn Registry) -> Option<(u64, String)> {
    let note = client.log_file("checkpoint").await.ok()??;
    parse_checkpoint(&note)
}

/// The size and root hash (base64, as written) of a checkpoint note's
/// text: `origin`, `size`, `hash` lines (C2SP tlog-checkpoint).
fn parse_checkpoint(note: &[u8]) -> Option<(u64, String)> {
    let text = std::str::from_utf8(note).ok()?;
    let mut lines = text.split('\n');
    let _origin = lines.next()?;
    let size: u64 = lines.next()?.parse().ok()?;
    let hash = lines.next()?;
    if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) {
        return None;
    }
    Some((size, hash.to_owned()))
}

/// The package names of records `from..to` of the log (a tree of `to`
/// records), read from their entry bundles; `None` if any cannot be read.
async fn changed_since(client: &dyn Registry, from: u64, to: u64) -> Option<HashSet<String>> {
    let bundles = (from / WIDTH)..to.div_ceil(WIDTH);
    let fetched = futures_util::future::join_all(bundles.map(|k| async move {
        let bytes = client.log_file(&proof::bundle_path(k * WIDTH, to)).await.ok()??;
        Some((k, crate::registry::tlog::layout::decode_bundle(&bytes)?))
    }))
    .await;
    let mut names = HashSet::new();
    for bundle in fetched {
        let (k, records) = bundle?;
        // A bundle short of records would hide the changes it leaves out.
        if (records.len() as u64) < WIDTH.min(to - k * WIDTH) {
            return None;
        }
        for (i, bytes) in records.iter().enumerate() {
            let index = k * WIDTH + i as u64;
            if (from..to).contains(&index) {
                names.insert(Record::parse(bytes).ok()?.name);
            }
        }
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_gives_its_size_and_root_hash() {
        let note = b"example.com/log\n42\nq7zXqW3nQ1f0p2uRr+/=\n\n\xe2\x80\x94 example.com/log abcd\n";
        assert_eq!(parse_checkpoint(note), Some((42, "q7zXqW3nQ1f0p2uRr+/=".to_owned())));
        assert_eq!(parse_checkpoint(b"origin\nx\nabc\n"), None);
        assert_eq!(parse_checkpoint(b"origin\n3\n\n"), None);
        assert_eq!(parse_checkpoint(b"origin\n3\nab c\n"), None);
    }
}
