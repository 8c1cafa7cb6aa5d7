//! The registry's totals (packages, versions, components, bytes,
//! categories), kept so that `health`, `stats` and `categories` answer in
//! O(1) (O(categories)) instead of reading every document per request: an
//! unauthenticated `health` that walks 20,000 documents is a lever for
//! anyone who wants the server busy.
//!
//! - Seeded once at start from every document.
//! - Updated at once by every publish, yank and un-yank through this
//!   server ([`Counts::set`] with the package's new document).
//! - Refreshed from the storage every [`REFRESH_EVERY`] in the background
//!   ([`spawn_refresher`]), so what another replica over the same bucket,
//!   or `fm publish` into the same folder, wrote shows within that bound.
//!   A refresh costs one listing plus reads of the documents that changed
//!   (the document cache revalidates the rest by stamp or tag). A write
//!   through this server during a refresh is not lost: it is re-applied
//!   over the refreshed totals.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::registry::document::PackageDocument;

/// How stale totals may be after a write through another process.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// What one package adds to the totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Share {
    versions: usize,
    components: usize,
    size: u64,
    category: Option<String>,
}

impl Share {
    fn of(doc: &PackageDocument) -> Share {
        let (mut versions, mut size) = (0, 0);
        for r in doc.versions.iter().flatten() {
            versions += 1;
            size += r.size_bytes;
        }
        Share {
            versions,
            components: doc.info.component_count,
            size,
            category: doc.info.category.clone().filter(|c| !c.is_empty()),
        }
    }
}

/// The totals at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub packages: usize,
    pub versions: usize,
    pub components: usize,
    pub size_bytes: u64,
    /// Packages per category.
    pub categories: BTreeMap<String, usize>,
}

#[derive(Debug, Default)]
struct Inner {
    shares: HashMap<String, Share>,
    totals: Totals,
    /// Writes through this server since the running refresh began (`None`:
    /// no refresh running).
    recent: Option<HashMap<String, Option<Share>>>,
}

impl Inner {
    fn apply(&mut self, name: &str, share: Option<Share>) {
        let t = &mut self.totals;
        if let Some(old) = self.shares.remove(name) {
            t.packages -= 1;
            t.versions -= old.versions;
            t.components -= old.components;
            t.size_bytes -= old.size;
            if let Some(c) = &old.category
                && let Some(n) = t.categories.get_mut(c)
            {
                *n -= 1;
                if *n == 0 {
                    t.categories.remove(c);
                }
            }
        }
        if let Some(new) = share {
            t.packages += 1;
            t.versions += new.versions;
            t.components += new.components;
            t.size_bytes += new.size;
            if let Some(c) = &new.category {
                *t.categories.entry(c.clone()).or_default() += 1;
            }
            self.shares.insert(name.to_owned(), new);
        }
    }
}

/// The kept totals (see the module doc).
#[derive(Debug, Default)]
pub struct Counts {
    inner: RwLock<Inner>,
}

impl Counts {
    /// Totals of `docs`.
    pub fn seeded<'a>(docs: impl IntoIterator<Item = &'a PackageDocument>) -> Counts {
        let mut inner = Inner::default();
        for d in docs {
            inner.apply(&d.info.name, Some(Share::of(d)));
        }
        Counts {
            inner: RwLock::new(inner),
        }
    }

    /// A copy of the current totals.
    pub fn totals(&self) -> Totals {
        self.inner.read().map(|i| i.totals.clone()).unwrap_or_default()
    }

    /// `(packages, components)`, for `health`.
    pub fn summary(&self) -> (usize, usize) {
        self.inner
            .read()
            .map(|i| (i.totals.packages, i.totals.components))
            .unwrap_or_default()
    }

    /// After a write through this server: `name` now has `doc` (`None`:
    /// it is gone).
    pub fn set(&self, name: &str, doc: Option<&PackageDocument>) {
        let share = doc.map(Share::of);
        if let Ok(mut i) = self.inner.write() {
            if let Some(recent) = &mut i.recent {
                recent.insert(name.to_owned(), share.clone());
            }
            i.apply(name, share);
        }
    }

    /// Marks the start of a refresh: writes from now on are remembered.
    pub fn begin_refresh(&self) {
        if let Ok(mut i) = self.inner.write() {
            i.recent = Some(HashMap::new());
        }
    }

    /// Replaces the totals by those of `docs` (read since
    /// [`begin_refresh`](Self::begin_refresh)), then re-applies the writes
    /// made meanwhile, which `docs` may predate.
    pub fn finish_refresh<'a>(&self, docs: impl IntoIterator<Item = &'a PackageDocument>) {
        let fresh = Counts::seeded(docs);
        let Ok(mut fresh) = fresh.inner.into_inner() else {
            return;
        };
        if let Ok(mut i) = self.inner.write() {
            for (name, share) in i.recent.take().unwrap_or_default() {
                fresh.apply(&name, share);
            }
            *i = fresh;
        }
    }

    /// Gives up a refresh that failed.
    pub fn abandon_refresh(&self) {
        if let Ok(mut i) = self.inner.write() {
            i.recent = None;
        }
    }
}

/// Calls `refresh` (blocking) every `every` until the handle is aborted.
pub fn spawn_refresher<F>(every: Duration, refresh: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() + Send + Sync + 'static,
{
    let refresh = Arc::new(refresh);
    // A zero period would make `interval` panic and the loop spin.
    let every = every.max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let r = refresh.clone();
            let _ = tokio::task::spawn_blocking(move || r()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::VersionRecord;
    use crate::registry::document::PackageInfo;

    fn doc(name: &str, versions: &[u64], category: &str, components: usize) -> PackageDocument {
        PackageDocument {
            info: PackageInfo {
                name: name.to_owned(),
                category: Some(category.to_owned()),
                component_count: components,
                ..PackageInfo::default()
            },
            versions: Some(
                versions
                    .iter()
                    .enumerate()
                    .map(|(i, size)| VersionRecord {
                        version: format!("1.{i}.0"),
                        size_bytes: *size,
                        ..VersionRecord::default()
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn writes_update_the_totals_and_survive_a_refresh_that_predates_them() {
        let (a, b) = (doc("a", &[10, 20], "x", 2), doc("b", &[5], "y", 1));
        let c = Counts::seeded([&a, &b]);
        let t = c.totals();
        assert_eq!((t.packages, t.versions, t.components, t.size_bytes), (2, 3, 3, 35));
        assert_eq!(t.categories, BTreeMap::from([("x".into(), 1), ("y".into(), 1)]));

        c.begin_refresh();
        let b2 = doc("b", &[5, 7], "x", 4);
        c.set("b", Some(&b2));
        // The refresh read the storage before the write: it still has b.
        c.finish_refresh([&a, &b]);
        let t = c.totals();
        assert_eq!((t.packages, t.versions, t.components, t.size_bytes), (2, 4, 6, 42));
        assert_eq!(t.categories, BTreeMap::from([("x".into(), 2)]));

        // Another process added d: the next refresh shows it.
        let d = doc("d", &[1], "z", 0);
        c.begin_refresh();
        c.finish_refresh([&a, &b2, &d]);
        assert_eq!(c.summary(), (3, 6));
        c.set("d", None);
        assert_eq!(c.totals().categories.get("z"), None);
    }
}
