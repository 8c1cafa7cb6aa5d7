//! The metadata index: package documents fetched concurrently, ahead of the
//! synchronous solver.
//!
//! Every fetch runs as a task on a tokio runtime owned by the index (its
//! workers are threads other than the solver's): [`Index::request`] queues
//! one without waiting; the provider calls it for every dependency of a
//! version the moment those dependencies are known, and a fetch that
//! completes requests the dependencies of the version most likely to be
//! picked (the locked one, else the newest non-yanked), recursively. So an
//! HTTP resolution costs about as many round trips as the graph is deep, not
//! one per package, and a directory registry's documents are read and
//! scanned on another core while the solver works. The lookahead is bounded
//! by the graph: only names reachable through likely versions are read
//! ahead.
//!
//! The solver thread asks for a document with [`Index::get`], which blocks
//! until it is there. A name still queued (no worker started it yet) is
//! taken over by the solver and fetched right there, polled once: a
//! registry that answers at once (directory, memory) costs no wait behind
//! the queue, and one that must wait (HTTP) has its request on the wire and
//! finishes as a task. A name a worker is reading is waited for; the
//! worker never waits on the solver, so there is no deadlock.
//!
//! A fetch that fails is kept as a failure and reported only to a caller
//! that asks for the name with [`Index::get`]: a prefetched name the solver
//! never needs cannot fail a resolution.
//!
//! Registry choice is made here (SPEC §2): a name pinned by the project to
//! a registry comes from that registry only; any other name comes from the
//! first registry, in priority order, that has it, skipping `explicit`
//! registries. Registries are asked one after the other for one name, so a
//! lower-priority registry is never consulted for a name a higher one has
//! (dependency confusion), while different names are fetched in parallel.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use semver::Version;

use super::RegistrySet;
use crate::registry::{RegistryError, VersionList, VersionRecord};

/// One usable version of a package.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub version: Version,
    pub yanked: bool,
    /// Index of its record in the document's `versions`
    /// ([`VersionList::entries`]).
    pub record: usize,
}

/// A package as one registry serves it.
#[derive(Debug)]
pub struct PackageEntry {
    /// Index into [`RegistrySet::entries`].
    pub registry: usize,
    pub doc: Arc<VersionList>,
    /// Versions with a valid semver version, newest first.
    pub candidates: Vec<Candidate>,
}

impl PackageEntry {
    fn new(registry: usize, doc: Arc<VersionList>) -> PackageEntry {
        let mut candidates: Vec<Candidate> = doc
            .entries()
            .into_iter()
            .enumerate()
            .filter_map(|(record, (version, yanked))| {
                Version::parse(version).ok().map(|version| Candidate {
                    version,
                    yanked,
                    record,
                })
            })
            .collect();
        // Newest first; the record index breaks ties (duplicate versions in
        // a corrupt document) so the order never depends on listing order
        // more than the document itself does.
        candidates.sort_by(|a, b| b.version.cmp(&a.version).then(a.record.cmp(&b.record)));
        candidates.dedup_by(|a, b| a.version == b.version);
        PackageEntry {
            registry,
            doc,
            candidates,
        }
    }

    /// The full record of a candidate, parsed and checked the first time
    /// it is asked for: `Err` when the registry's record is not valid.
    pub fn record(&self, c: &Candidate) -> Result<Option<&VersionRecord>, RegistryError> {
        self.doc.record(c.record)
    }

    /// The candidate with this version.
    pub fn candidate(&self, v: &Version) -> Option<&Candidate> {
        self.candidates
            .binary_search_by(|c| v.cmp(&c.version))
            .ok()
            .map(|i| &self.candidates[i])
    }
}

enum Slot {
    /// Claimed, waiting for a worker to start it, or for the solver to take
    /// it over ([`Index::get`]).
    Queued,
    /// Being fetched.
    Pending,
    Ready(Option<Arc<PackageEntry>>),
    /// The registry's error, handed to every caller asking for the name.
    Failed(Arc<RegistryError>),
}

struct State {
    slots: HashMap<String, Slot>,
}

struct Shared {
    registries: RegistrySet,
    /// name → registry index, for the project's `registry = "x"` pins.
    pins: HashMap<String, usize>,
    /// Versions the lock prefers, to guess which version's dependencies to
    /// prefetch.
    hints: HashMap<String, Version>,
    state: Mutex<State>,
    ready: Condvar,
    handle: crate::runtime::Spawner,
    /// Set by [`Index::stop`]: no queued fetch starts after, none reads
    /// ahead.
    stopped: AtomicBool,
}

/// Documents, fetched ahead of the solver.
pub struct Index {
    shared: Arc<Shared>,
    // Dropped last: aborts the fetch tasks.
    _tasks: crate::runtime::TaskGroup,
}

impl Index {
    /// An index over `registries`; `pins` maps names to registry indexes.
    pub fn new(
        registries: RegistrySet,
        pins: HashMap<String, usize>,
        hints: HashMap<String, Version>,
    ) -> std::io::Result<Index> {
        let (tasks, handle) = crate::runtime::TaskGroup::new()?;
        let shared = Arc::new(Shared {
            registries,
            pins,
            hints,
            state: Mutex::new(State { slots: HashMap::new() }),
            ready: Condvar::new(),
            handle,
            stopped: AtomicBool::new(false),
        });
        Ok(Index { shared, _tasks: tasks })
    }

    /// Starts fetching `name` unless it is fetched or being fetched. Call
    /// from the solver thread: a name first looked up in a registry that
    /// must wait (HTTP) is polled once right here, so its request is on the
    /// wire at once, without a hand-off to a worker; any other (a
    /// directory, whose read is the work itself) is queued for a worker.
    pub fn request(&self, name: &str) {
        let first = candidates_for(&self.shared, name).into_iter().next();
        let local = first.is_none_or(|i| self.shared.registries.entries[i].client.local_root().is_some());
        if local {
            request(&self.shared, name);
        } else if claim(&self.shared, name) && start(&self.shared, name) {
            fetch_here(&self.shared, name);
        }
    }

    /// The package `name`, waiting for its fetch; `Ok(None)` when no
    /// registry it may come from has it; `Err` with the registry's error
    /// when one could not be read.
    pub fn get(&self, name: &str) -> Result<Option<Arc<PackageEntry>>, Arc<RegistryError>> {
        let mut state = lock(&self.shared.state);
        loop {
            match state.slots.get(name) {
                Some(Slot::Ready(e)) => return Ok(e.clone()),
                Some(Slot::Failed(e)) => return Err(Arc::clone(e)),
                // Not started: fetched here rather than waited for.
                None | Some(Slot::Queued) => {
                    state.slots.insert(name.to_owned(), Slot::Pending);
                    drop(state);
                    fetch_here(&self.shared, name);
                    state = lock(&self.shared.state);
                }
                Some(Slot::Pending) => {
                    state = self.shared.ready.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }

    /// Stops reading ahead: a queued fetch no worker started stays queued
    /// ([`Index::get`] still fetches it when asked), and fetches that finish
    /// request nothing more. The solver calls it when it is done, so that
    /// documents nobody will read stop taking the cores the lock is built
    /// and written on.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
    }

    /// The registries.
    pub fn registries(&self) -> &RegistrySet {
        &self.shared.registries
    }

    /// The registries a name is looked up in, in order.
    pub fn searched(&self, name: &str) -> Vec<usize> {
        candidates_for(&self.shared, name)
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn candidates_for(shared: &Shared, name: &str) -> Vec<usize> {
    match shared.pins.get(name) {
        Some(&i) => vec![i],
        None => shared
            .registries
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.decl.explicit)
            .map(|(i, _)| i)
            .collect(),
    }
}

/// Marks `name` queued unless it is known already.
fn claim(shared: &Shared, name: &str) -> bool {
    let mut state = lock(&shared.state);
    if state.slots.contains_key(name) {
        return false;
    }
    state.slots.insert(name.to_owned(), Slot::Queued);
    true
}

/// Moves a queued `name` to pending; `false` when the solver took it over.
fn start(shared: &Shared, name: &str) -> bool {
    let mut state = lock(&shared.state);
    match state.slots.get_mut(name) {
        Some(slot @ Slot::Queued) => {
            *slot = Slot::Pending;
            true
        }
        _ => false,
    }
}

fn finish(
    shared: &Arc<Shared>,
    name: String,
    outcome: Result<Option<Arc<PackageEntry>>, RegistryError>,
    prefetch: bool,
) {
    let slot = match outcome {
        Ok(entry) => {
            if prefetch
                && !shared.stopped.load(Ordering::Relaxed)
                && let Some(e) = &entry
            {
                prefetch_likely(shared, &name, e);
            }
            Slot::Ready(entry)
        }
        Err(err) => Slot::Failed(Arc::new(err)),
    };
    lock(&shared.state).slots.insert(name, slot);
    shared.ready.notify_all();
}

/// Queues a fetch on the runtime (from the solver, and prefetching from
/// fetch tasks).
fn request(shared: &Arc<Shared>, name: &str) {
    if !claim(shared, name) {
        return;
    }
    let task_shared = Arc::clone(shared);
    let name = name.to_owned();
    shared.handle.spawn(async move {
        if task_shared.stopped.load(Ordering::Relaxed) || !start(&task_shared, &name) {
            return;
        }
        let outcome = fetch(Arc::clone(&task_shared), name.clone()).await;
        finish(&task_shared, name, outcome, true);
    });
}

/// Fetches a name marked pending from the solver thread: polls it once
/// right here, so a registry that answers at once (a directory, memory)
/// costs no thread hand-off; one that has to wait (HTTP) has its request
/// sent and goes on on the runtime.
fn fetch_here(shared: &Arc<Shared>, name: &str) {
    let _entered = shared.handle.enter();
    let mut fut: futures_util::future::BoxFuture<'static, _> = Box::pin(fetch(Arc::clone(shared), name.to_owned()));
    let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(outcome) => finish(shared, name.to_owned(), outcome, true),
        std::task::Poll::Pending => {
            let task_shared = Arc::clone(shared);
            let name = name.to_owned();
            shared.handle.spawn(async move {
                let outcome = fut.await;
                finish(&task_shared, name, outcome, true);
            });
        }
    }
}

/// First match by priority among the registries `name` may come from.
async fn fetch(shared: Arc<Shared>, name: String) -> Result<Option<Arc<PackageEntry>>, RegistryError> {
    for i in candidates_for(&shared, &name) {
        let client = &shared.registries.entries[i].client;
        if let Some(doc) = client.versions(&name).await? {
            return Ok(Some(Arc::new(PackageEntry::new(i, doc))));
        }
    }
    Ok(None)
}

/// Requests the dependencies of the version the solver will most likely
/// pick: the locked one if the lock has one, else the newest non-yanked.
fn prefetch_likely(shared: &Arc<Shared>, name: &str, entry: &PackageEntry) {
    let hinted = shared.hints.get(name).and_then(|v| entry.candidate(v));
    let likely = hinted.or_else(|| entry.candidates.iter().find(|c| !c.yanked));
    // A record that is not valid is the solver's to report, if it tries it.
    let Some(record) = likely.and_then(|c| entry.record(c).ok().flatten()) else {
        return;
    };
    let mut seen = HashSet::new();
    for dep in record.dependencies.keys() {
        if seen.insert(dep.as_str()) {
            request(shared, dep);
        }
    }
}
