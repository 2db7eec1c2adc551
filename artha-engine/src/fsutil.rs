//! Small filesystem helpers shared by the engine's modules.

use std::io::Write;
use std::path::Path;

use artha_core::{Error, ErrorKind, Result};

/// An `Internal` error about `path`, with the I/O error as source.
pub(crate) fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            ErrorKind::ResourceExhausted
        }
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("cannot {what}"))
        .with_context("path", path.display().to_string())
        .with_source(e)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync, rename over `path`, fsync of the directory. Readers see
/// the old content or the new one, never a mix, even across a crash.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error("write atomically", path, e)
    })
}
