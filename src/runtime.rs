//! The one tokio runtime of the process: every registry request, download,
//! object-store call and the server run on it.
//!
//! Rules kept here:
//! - **Built once, lazily, and never dropped** ([`get`]): a multi-thread
//!   runtime whose workers are named `fm`. One runtime means one set of
//!   worker threads and one timer however many registries a command talks
//!   to; never dropping it means no `Runtime` is ever dropped inside
//!   another one's worker (which panics).
//! - **Blocking from synchronous code** goes through [`block_on`], which also
//!   works from inside the runtime (a worker is handed to
//!   `block_in_place`; a current-thread runtime's thread waits on a scoped
//!   thread of its own), where `Runtime::block_on` would panic.
//! - **Background work that belongs to a value** ([`TaskGroup`]): tasks
//!   spawned through its [`Spawner`] are aborted when the group is dropped,
//!   as they were when each such value owned a runtime of its own (the
//!   resolver's prefetching stops with the resolution).
//!
//! This is the only place in `src/` that builds a runtime.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio::task::AbortHandle;

/// The process's runtime, built on first use. The error is the builder's
/// (threads that could not be spawned), every time it is asked for.
pub fn get() -> std::io::Result<&'static Runtime> {
    static RT: OnceLock<Result<Runtime, (std::io::ErrorKind, String)>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("fm")
            .enable_all()
            .build()
            .map_err(|e| (e.kind(), e.to_string()))
    })
    .as_ref()
    .map_err(|(kind, e)| std::io::Error::new(*kind, format!("cannot start the async runtime: {e}")))
}

/// A handle to [`get`]'s runtime.
pub fn handle() -> std::io::Result<Handle> {
    Ok(get()?.handle().clone())
}

/// Runs `fut` to completion on the runtime and returns its output, from any
/// thread: a plain one, a worker of this runtime, or the thread of a
/// current-thread runtime (a `#[tokio::test]`).
pub fn block_on<F>(fut: F) -> std::io::Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = get()?;
    Ok(match Handle::try_current() {
        Err(_) => rt.block_on(fut),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| rt.block_on(fut)),
        // A current-thread runtime cannot lend its thread: wait on another.
        Ok(_) => std::thread::scope(|s| match s.spawn(|| rt.block_on(fut)).join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    })
}

/// Tasks on the runtime that end together: dropping the group aborts every
/// task spawned through its [`Spawner`]s, finished or not.
pub struct TaskGroup {
    tasks: Arc<Tasks>,
}

/// Spawns tasks into a [`TaskGroup`]; cheap to clone, and safe to keep in
/// the tasks themselves (it does not keep them alive).
#[derive(Clone)]
pub struct Spawner {
    handle: Handle,
    tasks: Arc<Tasks>,
}

#[derive(Default)]
struct Tasks {
    /// `None` once the group is dropped: nothing is spawned after.
    running: Mutex<Option<Vec<AbortHandle>>>,
}

impl TaskGroup {
    /// An empty group on [`get`]'s runtime, and the spawner that fills it.
    pub fn new() -> std::io::Result<(TaskGroup, Spawner)> {
        let tasks = Arc::new(Tasks {
            running: Mutex::new(Some(Vec::new())),
        });
        let spawner = Spawner {
            handle: handle()?,
            tasks: Arc::clone(&tasks),
        };
        Ok((TaskGroup { tasks }, spawner))
    }
}

impl Drop for TaskGroup {
    fn drop(&mut self) {
        let running = self.tasks.running.lock().unwrap_or_else(|p| p.into_inner()).take();
        for task in running.into_iter().flatten() {
            task.abort();
        }
    }
}

impl Spawner {
    /// Spawns `fut` as a task of the group; once the group is dropped, does
    /// nothing (`fut` is dropped unpolled).
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut running = self.tasks.running.lock().unwrap_or_else(|p| p.into_inner());
        let Some(running) = running.as_mut() else { return };
        running.retain(|t| !t.is_finished());
        running.push(self.handle.spawn(fut).abort_handle());
    }

    /// Enters the runtime's context (to poll a future that registers timers
    /// or sockets on this thread).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.handle.enter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_however_often_it_is_asked_for() {
        let a = get().unwrap() as *const Runtime;
        let b = get().unwrap() as *const Runtime;
        assert_eq!(a, b);
    }

    #[test]
    fn block_on_works_inside_the_runtime_too() {
        let outer = block_on(async { block_on(async { 1 + 1 }).unwrap() }).unwrap();
        assert_eq!(outer, 2);
    }

    #[tokio::test]
    async fn block_on_works_inside_a_current_thread_runtime() {
        assert_eq!(block_on(async { 3 }).unwrap(), 3);
    }

    #[test]
    fn dropping_a_group_aborts_its_tasks() {
        let (group, spawner) = TaskGroup::new().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        spawner.spawn(async move {
            let _tx = tx; // dropped when the task is aborted
            std::future::pending::<()>().await;
        });
        drop(group);
        // The task was aborted, so its sender is gone at once (a task left
        // running would keep it, and the wait would time out instead).
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(60)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
        // And nothing spawns after: the future is dropped unpolled.
        let (tx2, rx2) = std::sync::mpsc::channel::<()>();
        spawner.spawn(async move {
            let _ = tx2.send(());
        });
        assert_eq!(rx2.try_recv(), Err(std::sync::mpsc::TryRecvError::Disconnected));
    }
}
