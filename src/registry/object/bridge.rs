//! The bridge from [`Storage`](crate::registry::storage::Storage)'s
//! synchronous calls to `object_store`'s async ones: every call runs on a
//! the process's one runtime and the caller waits for the answer,
//! through `block_in_place` when it is a worker of a multi-thread runtime
//! (the server's handlers), so that runtime's other tasks move on.
//!
//! Note for when `src/runtime.rs` (the process's one runtime, branch
//! `http`) lands: [`runtime`] becomes `crate::runtime::get()`, and [`run`]
//! a plain `crate::runtime::block_on(fut)`, which does the same
//! `block_in_place` dance from a worker.

use std::future::Future;
use std::io;

/// The runtime every object-store call runs on: the process's one
/// ([`crate::runtime`]), never dropped.
fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
    crate::runtime::get()
}

/// Runs `fut` on [`runtime`] and waits for it without stalling the caller's
/// runtime.
pub(super) fn run<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> io::Result<T> {
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    let wait = move || {
        rx.recv()
            .map_err(|_| io::Error::other("an object store request was cancelled"))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(wait),
        _ => wait(),
    }
}
