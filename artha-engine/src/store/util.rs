//! Small filesystem and task helpers for the store.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use artha_core::{Error, ErrorKind, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A suffix unique within this machine for as long as the process lives:
/// `<pid>.<counter>`.
pub(crate) fn unique_suffix() -> String {
    format!(
        "{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An error about `path`, with the I/O error as source and a kind that says
/// what happened (a full disk is `ResourceExhausted`, not `Internal`).
pub(crate) fn io_err(what: &str, path: &Path, e: io::Error) -> Error {
    let kind = match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            ErrorKind::PermissionDenied
        }
        io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            ErrorKind::ResourceExhausted
        }
        _ => ErrorKind::Internal,
    };
    let msg = if kind == ErrorKind::ResourceExhausted {
        format!("cannot {what}: no space left (disk full, quota or file size limit)")
    } else {
        format!("cannot {what}")
    };
    Error::new(kind, msg)
        .with_context("path", path.display().to_string())
        .with_source(e)
}

/// Runs blocking filesystem work on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::new(ErrorKind::Internal, "a storage worker thread failed").with_source(e)
    })?
}

/// fsyncs a directory so that entries created or renamed in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of replacing
/// an existing `to` (`renameat2(RENAME_NOREPLACE)` where available).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            // Filesystems without the flag: fall back to check-then-rename.
            Err(Errno::EINVAL) | Err(Errno::ENOSYS) | Err(Errno::EOPNOTSUPP) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "destination exists",
        ));
    }
    std::fs::rename(from, to)
}

/// Writes `bytes` to `path` atomically and durably: a uniquely named
/// temporary file beside it, fsync, rename over `path`, fsync of the
/// directory. Safe when several tasks or processes write the same path.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", unique_suffix()));
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        fsync_dir(dir)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err("write atomically", path, e)
    })
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

/// Runs `f` on every item with at most `n` futures in flight, handing the
/// results to `each` in item order. On the first error (from `f` or `each`)
/// it starts no new work, waits for the work in flight (so nothing of this
/// call still writes when it returns), and returns that error.
pub(crate) async fn bounded<T, R, F, Fut>(
    items: Vec<T>,
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
