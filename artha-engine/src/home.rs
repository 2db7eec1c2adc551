//! The engine home: one directory that holds everything an engine owns.
//!
//! ```text
//! <home>/           0700
//!   artha-home      marker: "artha-home <layout version>", written atomically on creation
//!   engine.lock     advisory lock held while an engine has the home open
//!   store/    0700  content-addressed blobs (SVDB)
//!   chain/    0700  embedded chain state and receipts
//!   jobs/     0700  per-job working directories, the job ledger (see JOBS_DIR_MODE)
//!   keys/     0700  identities (files 0600)
//! ```
//!
//! An engine running as root runs native jobs as an unprivileged user, and
//! gives the home and `jobs/` the search bit for others (`0701`: reach a
//! known name, never list or read) so that user reaches its job directory;
//! opening keeps that bit (a job may be running) and removes every other
//! bit for group and others. The ledger and catalog files are `0600`.
//!
//! The home is `$ARTHA_HOME` when set, else `~/.artha` (like `~/.cargo` or
//! `~/.docker`). Opening takes an exclusive lock on `engine.lock`, so a
//! second engine on the same home gets a clear `Conflict` error instead of
//! corrupting state; the lock is released when the [`EngineHome`] drops or
//! the process dies (the OS releases it, so a crash leaves no stale lock).
//!
//! **Private.** The home holds job secrets (`--env` values in the ledger),
//! pushed files and keys, so it is readable by its owner only: the home and
//! its subdirectories are created 0700, and opening an existing home sets
//! them back to these modes if they differ (a home made world-readable by an
//! older version, or by hand, is tightened). Files in `keys/` are 0600
//! (tightened on open too).
//!
//! **Only Artha homes are opened.** A path that does not exist, or an empty
//! directory, becomes a new home. An existing directory is opened only if
//! it is an Artha home: it has the [`MARKER`] file, or an `engine.lock`
//! (homes created before the marker existed; they get the marker on open).
//! Anything else — `--home /`, `--home ~` — is refused with `InvalidInput`
//! before anything is created in it, as is a path that is not a directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use artha_core::{Error, ErrorKind, Result};

use crate::fsutil::{io_err, write_atomic};

/// Subdirectories created in every home.
pub const SUBDIRS: &[&str] = &["store", "chain", "jobs", "keys"];

/// The marker file that makes a directory recognisable as an Artha home;
/// it holds one line, `artha-home <layout version>`.
pub const MARKER: &str = "artha-home";

/// The layout version written in the [`MARKER`].
const LAYOUT_VERSION: u32 = 1;

/// The lock file (also what identifies homes created before the [`MARKER`]).
const LOCK: &str = "engine.lock";

/// Mode of the home directory itself: owner only. To let a job run as
/// another (unprivileged) uid reach its job directory, the home and
/// `jobs/` must allow traversal (0o711, see [`JOBS_DIR_MODE`]); nothing else
/// about the home changes.
pub(crate) const HOME_DIR_MODE: u32 = 0o700;

/// Mode of `jobs/`. Owner only by default. Relax it (and [`HOME_DIR_MODE`])
/// to 0o711 when jobs run as another uid that must traverse into its job
/// directory: both are applied exactly on every open, so changing them here
/// also updates existing homes. With traversal allowed, everything under
/// `jobs/` whose name can be guessed (`ledger.db`, `catalog.db`, other jobs'
/// directories) must then be private by its own mode.
pub(crate) const JOBS_DIR_MODE: u32 = 0o700;

/// Mode of the other subdirectories (`store/`, `chain/`, `keys/`).
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;

/// Mode of secret files (keys).
pub(crate) const SECRET_FILE_MODE: u32 = 0o600;

/// The mode a home subdirectory gets.
pub(crate) fn subdir_mode(sub: &str) -> u32 {
    if sub == "jobs" {
        JOBS_DIR_MODE
    } else {
        PRIVATE_DIR_MODE
    }
}

/// An opened, locked engine home.
#[derive(Debug)]
pub struct EngineHome {
    root: PathBuf,
    _lock: File,
}

/// What is at a home path before opening it.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Nothing: create the home.
    Nothing,
    /// An empty directory: make it a home.
    Empty,
    /// An Artha home (marker or lock file).
    Home,
}

/// Looks at `root` without changing anything; refuses what must not become
/// a home.
fn inspect(root: &Path) -> Result<Found> {
    let refuse = |why: &str| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("cannot use `{}` as the engine home: {why}", root.display()),
        )
        .with_context("home", root.display().to_string())
    };
    let meta = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(io_err("inspect the engine home", root, e)),
    };
    if !meta.is_dir() {
        return Err(refuse("it is not a directory"));
    }
    if root.join(MARKER).exists() || root.join(LOCK).exists() {
        return Ok(Found::Home);
    }
    let entries = std::fs::read_dir(root).map_err(|e| io_err("list the engine home", root, e))?;
    // A new home may hold its configuration already (written before the
    // first command); anything else means it is someone else's directory.
    let mut others = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != crate::config::FILE_NAME);
    if others.next().is_none() {
        return Ok(Found::Empty);
    }
    Err(refuse(
        "it is not empty and not an Artha home (no `artha-home` marker or `engine.lock`); \
         pass a new or empty directory (it may hold only `artha.toml`)",
    ))
}

/// Creates the home directory (its parents with default modes), owner only.
fn create_root(root: &Path) -> Result<()> {
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| io_err("create the engine home's parent", parent, e))?;
    }
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(HOME_DIR_MODE);
    }
    match b.create(root) {
        Ok(()) => Ok(()),
        // Created meanwhile (another engine opening the same new home):
        // look again, it must be empty or a home by now.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => inspect(root).map(|_| ()),
        Err(e) => Err(io_err("create the engine home", root, e)),
    }
}

/// Sets `path`'s mode to exactly `mode` if it differs. A directory is
/// followed through a symlink (a `store/` linked to another disk is as
/// private as one in place); with `follow` false a symlink is left alone.
#[cfg(unix)]
fn set_mode(path: &Path, mode: u32, follow: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .map_err(|e| io_err("read the permissions of", path, e))?;
    if meta.file_type().is_symlink() || meta.permissions().mode() & 0o7777 == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err("restrict the permissions of", path, e))
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
    ///
    /// Refuses (`InvalidInput`, context `home`) a path that is not a
    /// directory, or a non-empty directory that is not an Artha home; nothing
    /// is created then. See the [module docs](self).
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        // Absolute, so a home given relative to the working directory
        // (`--home h`) means the same directory to every part (the job
        // mounts, the native jobs' user) whatever their working directory.
        let root = std::path::absolute(root.as_ref())
            .map_err(|e| io_err("resolve the engine home", root.as_ref(), e))?;
        if inspect(&root)? == Found::Nothing {
            create_root(&root)?;
        }
        let lock_path = root.join(LOCK);
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err("open the engine lock", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "another engine has this home open (stop it, or talk to its `arthai serve`)",
                )
                .with_context("path", root.display().to_string()));
            }
            Err(TryLockError::Error(e)) => {
                return Err(io_err("lock the engine home", &lock_path, e));
            }
        }
        // Record the holder for people debugging a busy home; not used for locking.
        lock.set_len(0)
            .map_err(|e| io_err("write the engine lock", &lock_path, e))?;
        writeln!(lock, "{}", std::process::id())
            .map_err(|e| io_err("write the engine lock", &lock_path, e))?;
        let marker = root.join(MARKER);
        if !marker.exists() {
            write_atomic(&marker, format!("{MARKER} {LAYOUT_VERSION}\n").as_bytes())?;
        }
        for sub in SUBDIRS {
            let p = root.join(sub);
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(subdir_mode(sub));
            }
            match b.create(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => {}
                Err(e) => return Err(io_err("create a home directory", &p, e)),
            }
        }
        #[cfg(unix)]
        Self::restrict(&root)?;
        Ok(EngineHome { root, _lock: lock })
    }

    /// Sets the home, its subdirectories and the files in `keys/` to their
    /// modes (creation modes are reduced by the umask; homes from older
    /// versions were 0755).
    #[cfg(unix)]
    fn restrict(root: &Path) -> Result<()> {
        // The search bit for others on the home and `jobs/` is kept when
        // present: a native job running as another user (granted it by
        // `ProcessExecutor::grant_access`) may be running now, and must not
        // lose its way to its directory while a restarted engine opens the
        // home. Read and write bits are always removed.
        let search = |p: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).map_or(0, |m| m.permissions().mode() & 0o001)
        };
        set_mode(root, HOME_DIR_MODE | search(root), true)?;
        for sub in SUBDIRS {
            let p = root.join(sub);
            let keep = if *sub == "jobs" { search(&p) } else { 0 };
            set_mode(&p, subdir_mode(sub) | keep, true)?;
        }
        let keys = root.join("keys");
        let entries = std::fs::read_dir(&keys).map_err(|e| io_err("list the keys", &keys, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err("list the keys", &keys, e))?;
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_file {
                use std::os::unix::fs::PermissionsExt;
                let path = entry.path();
                let mode = entry
                    .metadata()
                    .map_err(|e| io_err("read the permissions of", &path, e))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    set_mode(&path, SECRET_FILE_MODE, false)?;
                }
            }
        }
        Ok(())
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
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn chmod(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

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
    fn a_new_home_is_private_and_marked() {
        let tmp = tempfile::tempdir().unwrap();
        let home = EngineHome::open(tmp.path().join("a").join("h")).unwrap();
        assert_eq!(mode(home.root()), 0o700);
        for sub in SUBDIRS {
            assert_eq!(mode(&home.dir(sub)), subdir_mode(sub), "{sub}");
            assert_eq!(mode(&home.dir(sub)), 0o700, "{sub}");
        }
        assert_eq!(
            std::fs::read_to_string(home.root().join(MARKER)).unwrap(),
            "artha-home 1\n"
        );
    }

    #[test]
    fn opening_tightens_a_loose_home_and_its_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("h");
        drop(EngineHome::open(&root).unwrap());
        let key = root.join("keys").join("identity.key");
        std::fs::write(&key, "00").unwrap();
        chmod(&key, 0o644);
        chmod(&root, 0o755);
        for sub in SUBDIRS {
            chmod(&root.join(sub), 0o755);
        }
        let home = EngineHome::open(&root).unwrap();
        // Private: no reading or writing by others; a search bit that was
        // there stays on the home and `jobs/` only (see `restrict`).
        assert_eq!(mode(home.root()), 0o701);
        for sub in SUBDIRS {
            let want = if *sub == "jobs" { 0o701 } else { 0o700 };
            assert_eq!(mode(&home.dir(sub)), want, "{sub}");
        }
        assert_eq!(mode(&key), 0o600);
    }

    #[test]
    fn an_empty_directory_becomes_a_home() {
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o750);
        let home = EngineHome::open(tmp.path()).unwrap();
        assert_eq!(mode(home.root()), 0o700);
        assert!(home.root().join(MARKER).is_file());
    }

    #[test]
    fn a_home_from_an_older_version_opens_and_gets_the_marker() {
        // Older versions made `engine.lock` and the subdirectories, 0755.
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("old");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("engine.lock"), "1\n").unwrap();
        for sub in SUBDIRS {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("jobs").join("ledger.db"), "x").unwrap();
        chmod(&root, 0o755);
        let home = EngineHome::open(&root).unwrap();
        assert!(home.root().join(MARKER).is_file());
        assert_eq!(mode(home.root()), 0o701);
        assert_eq!(mode(&home.dir("jobs")), 0o701);
    }

    #[test]
    fn a_non_empty_directory_that_is_not_a_home_is_refused_untouched() {
        // `--home /` or `--home ~`: never scatter store/, chain/, … into it.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("stuff");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        std::fs::create_dir(dir.join("store")).unwrap();
        chmod(&dir, 0o755);
        let e = EngineHome::open(&dir).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let shown = dir.display().to_string();
        assert!(e.message().contains(&shown), "{e}");
        assert!(
            e.message().contains("not empty and not an Artha home"),
            "{e}"
        );
        assert_eq!(e.context_value("home"), Some(shown.as_str()));
        assert_eq!(names(&dir), ["notes.txt", "store"], "nothing created");
        assert_eq!(mode(&dir), 0o755, "nothing changed");
    }

    #[test]
    fn open_on_a_file_fails_clearly() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("file");
        std::fs::write(&f, b"x").unwrap();
        let e = EngineHome::open(&f).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let shown = f.display().to_string();
        assert!(e.message().contains(&shown), "{e}");
        assert!(e.message().contains("not a directory"), "{e}");
        assert_eq!(e.context_value("home"), Some(shown.as_str()));
        assert_eq!(names(tmp.path()), ["file"], "nothing created beside it");
        assert_eq!(std::fs::read(&f).unwrap(), b"x");
    }
}
