//! The engine home: one directory that holds everything an engine owns.
//!
//! ```text
//! <home>/
//!   engine.lock     advisory lock held while an engine has the home open
//!   store/          content-addressed blobs (SVDB)
//!   chain/          embedded chain state and receipts
//!   jobs/           per-job working directories
//!   keys/           identities (files 0600)
//! ```
//!
//! The home is `$ARTHA_HOME` when set, else `~/.artha` (like `~/.cargo` or
//! `~/.docker`). Opening takes an exclusive lock on `engine.lock`, so a
//! second engine on the same home gets a clear `Conflict` error instead of
//! corrupting state; the lock is released when the [`EngineHome`] drops or
//! the process dies (the OS releases it, so a crash leaves no stale lock).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use artha_core::{Error, ErrorKind, Result};

/// Subdirectories created in every home.
pub const SUBDIRS: &[&str] = &["store", "chain", "jobs", "keys"];

/// An opened, locked engine home.
#[derive(Debug)]
pub struct EngineHome {
    root: PathBuf,
    _lock: File,
}

impl EngineHome {
    /// The default home: `$ARTHA_HOME`, else `$HOME/.artha`.
    pub fn default_path() -> Result<PathBuf> {
        if let Some(h) = std::env::var_os("ARTHA_HOME").filter(|h| !h.is_empty()) {
            return Ok(PathBuf::from(h));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".artha"))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "cannot find the engine home: set ARTHA_HOME or HOME, or pass --home",
                )
            })
    }

    /// Creates (if needed) and locks the home at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let io = |what: &str, path: &Path, e: std::io::Error| {
            Error::new(ErrorKind::Internal, format!("cannot {what}"))
                .with_context("path", path.display().to_string())
                .with_source(e)
        };
        std::fs::create_dir_all(&root).map_err(|e| io("create the engine home", &root, e))?;
        let lock_path = root.join("engine.lock");
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io("open the engine lock", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "another engine has this home open (stop it, or talk to its `arthai serve`)",
                )
                .with_context("path", root.display().to_string()));
            }
            Err(TryLockError::Error(e)) => return Err(io("lock the engine home", &lock_path, e)),
        }
        // Record the holder for people debugging a busy home; not used for locking.
        lock.set_len(0)
            .map_err(|e| io("write the engine lock", &lock_path, e))?;
        writeln!(lock, "{}", std::process::id())
            .map_err(|e| io("write the engine lock", &lock_path, e))?;
        for sub in SUBDIRS {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| io("create a home directory", &p, e))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let keys = root.join("keys");
            std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io("restrict the keys directory", &keys, e))?;
        }
        Ok(EngineHome { root, _lock: lock })
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<home>/<sub>`.
    pub fn dir(&self, sub: &str) -> PathBuf {
        self.root.join(sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_layout_and_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let home = EngineHome::open(tmp.path().join("h")).unwrap();
        for sub in SUBDIRS {
            assert!(home.dir(sub).is_dir(), "{sub}");
        }
        let second = EngineHome::open(home.root()).unwrap_err();
        assert_eq!(second.kind(), ErrorKind::Conflict);
        assert!(second.to_string().contains("another engine"), "{second}");
        drop(home);
        EngineHome::open(tmp.path().join("h")).unwrap();
    }

    #[test]
    fn open_on_a_file_fails_clearly() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("file");
        std::fs::write(&f, b"x").unwrap();
        let e = EngineHome::open(&f).unwrap_err();
        assert_eq!(
            e.context_value("path"),
            Some(f.display().to_string().as_str())
        );
    }
}
