//! Small filesystem and task helpers for the store.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use artha_core::{Error, ErrorKind, Result};

pub(crate) use crate::fsutil::{fsync_dir, io_err, rename_noreplace, unique_suffix, write_atomic};

/// Runs blocking filesystem work on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        if e.is_cancelled() {
            // The async runtime is shutting down: the work never ran.
            Error::new(ErrorKind::Cancelled, "the engine is shutting down").with_retryable(true)
        } else {
            Error::new(ErrorKind::Internal, "a storage worker thread failed").with_source(e)
        }
    })?
}

/// A held advisory lock on the store's lock file: shared for pushes (many at
/// once, across processes), exclusive for garbage collection. Released on
/// drop, or by the OS when the process dies.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

/// Takes the store lock at `path`, waiting for it.
pub(crate) async fn lock(path: PathBuf, exclusive: bool) -> Result<StoreLock> {
    blocking(move || {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err("open the store lock", &path, e))?;
        let r = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        r.map_err(|e| io_err("lock the store", &path, e))?;
        Ok(StoreLock { _file: file })
    })
    .await
}

/// Whether a process with this id exists (Linux `/proc`; elsewhere assume it
/// does, so nothing is removed early).
pub(crate) fn pid_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Runs `f` on every item (taken from `items` only as work starts, so a
/// lazy iterator costs no memory per item) with at most `n` futures in
/// flight, handing the
/// results to `each` in item order. On the first error (from `f` or `each`)
/// it starts no new work, waits for the work in flight (so nothing of this
/// call still writes when it returns), and returns that error.
pub(crate) async fn bounded<T, R, F, Fut>(
    items: impl IntoIterator<Item = T>,
    n: usize,
    f: F,
    mut each: impl FnMut(R) -> Result<()>,
) -> Result<()>
where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = Result<R>>,
{
    use futures_util::{StreamExt, stream};
    use std::sync::atomic::AtomicBool;
    let failed = AtomicBool::new(false);
    let mut first: Option<Error> = None;
    let mut s = stream::iter(
        items
            .into_iter()
            .take_while(|_| !failed.load(Ordering::Relaxed)),
    )
    .map(f)
    .buffered(n.max(1));
    while let Some(r) = s.next().await {
        if let Err(e) = r.and_then(&mut each) {
            failed.store(true, Ordering::Relaxed);
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}
