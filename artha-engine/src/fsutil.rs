//! Small filesystem helpers shared by the engine's modules.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use artha_core::{Error, ErrorKind};

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
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> artha_core::Result<()> {
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

/// Runs `f` — work that blocks (SQLite, small file reads) — without holding
/// up an async worker: on a multi-thread tokio runtime the worker hands its
/// other tasks over first (`block_in_place`); elsewhere (a current-thread
/// runtime, a plain thread) it runs inline.
pub(crate) fn off_async<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
