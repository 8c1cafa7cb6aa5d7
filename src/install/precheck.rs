//! A no-op proof started before the lock is read.
//!
//! `fm sync`'s no-op is made of two independent reads: fm.lock (parsed on
//! one thread) and the install folder (the state file, then one `fstatat`
//! per installed file and folder, in parallel). A [`Precheck`] starts the
//! second as soon as the layout is known, on a thread of its own, so the
//! two overlap; [`super::install`] then only compares the lock with what
//! was proven in place ([`super::plan::Proven::covers`]).
//!
//! It decides nothing by itself: a precheck that failed, found anything in
//! doubt, or was made for another layout is ignored, and the install
//! proves (or plans) from scratch, reporting whatever is wrong. Like the
//! install's own no-op proof it reads the project only, without the
//! project lock, through handles opened without following links.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::layout::Layout;
use super::plan::{self, Proven};

/// The install folder's no-op proof, running or done; give it to
/// [`super::Options::precheck`].
#[derive(Clone, Default)]
pub struct Precheck {
    inner: Arc<Mutex<Option<Running>>>,
}

struct Running {
    /// The packages folder and state file of the layout it was started for.
    packages: PathBuf,
    state: PathBuf,
    proof: Proof,
}

enum Proof {
    Running(JoinHandle<Option<Proven>>),
    Done(Option<Proven>),
}

impl std::fmt::Debug for Precheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Precheck").finish_non_exhaustive()
    }
}

impl Precheck {
    /// Starts proving that `layout` holds, unchanged, what its state file
    /// records. Costs a thread; a failure to start one leaves nothing to
    /// take (the install proves it itself).
    pub fn start(layout: &Layout) -> Precheck {
        let owned = layout.clone();
        let thread = std::thread::Builder::new()
            .name("fm-precheck".to_owned())
            .spawn(move || {
                let opened = owned.open(false).ok()??;
                plan::prove(&owned, &opened, None).ok()?
            });
        let running = thread.ok().map(|thread| Running {
            packages: layout.packages.clone(),
            state: layout.state.clone(),
            proof: Proof::Running(thread),
        });
        Precheck {
            inner: Arc::new(Mutex::new(running)),
        }
    }

    /// Waits for the proof to end (what [`super::install`] does before
    /// using it).
    pub fn finish(&self) {
        if let Ok(mut guard) = self.inner.lock()
            && let Some(running) = guard.as_mut()
            && let Proof::Running(_) = running.proof
        {
            let Proof::Running(thread) = std::mem::replace(&mut running.proof, Proof::Done(None)) else {
                return;
            };
            running.proof = Proof::Done(thread.join().ok().flatten());
        }
    }

    /// What was proven for `layout` (waiting for the proof to end), once:
    /// `None` if it was started for another layout, found anything in
    /// doubt, or was taken already.
    pub(super) fn take(&self, layout: &Layout) -> Option<Proven> {
        self.finish();
        let running = self.inner.lock().ok()?.take()?;
        let Proof::Done(proven) = running.proof else {
            return None;
        };
        (running.packages == layout.packages && running.state == layout.state).then_some(proven?)
    }
}
