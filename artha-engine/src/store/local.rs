//! [`LocalBlobStore`]: blobs as files under a directory (the embedded default,
//! `<home>/store`).
//!
//! ```text
//! <root>/blobs/ab/ab12…ef   one read-only file per blob, named by its 64 hex digits,
//!                           fanned out by the first two
//! <root>/tmp/               blobs being written: <hex>.<pid>.<n>.tmp
//! ```
//!
//! A write goes to a uniquely named file in `tmp/`, is fsynced, made
//! read-only and renamed into place, then the fan-out directory is fsynced:
//! a blob is visible under its CID only once complete and durable, so a
//! crash (or `kill -9`) at any point leaves either no blob or a whole one,
//! plus possibly a temporary file that [`crate::store::Svdb::gc`] removes.
//! Writers never share a temporary name, and renaming identical content over
//! identical content is harmless, so any number of tasks and processes may
//! write the same blobs at once. Every read re-hashes the bytes.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use artha_core::hash::parse_hex32;
use artha_core::{Blake3Digest, BlobStore, Cid, Error, ErrorKind, Result};
use async_trait::async_trait;

use super::util::{blocking, fsync_dir, io_err, pid_alive, unique_suffix};

/// How old a temporary file of a live process must be before GC removes it.
const TEMP_GRACE: Duration = Duration::from_secs(3600);

/// Blobs as read-only files under a root directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
}

impl LocalBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        for d in [&blobs, &tmp] {
            fs::create_dir_all(d).map_err(|e| io_err("create the store directory", d, e))?;
        }
        Ok(LocalBlobStore { root, blobs, tmp })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `cid` lives (whether or not it is stored).
    pub fn blob_path(&self, cid: &Cid) -> PathBuf {
        let hex = cid.to_hex();
        self.blobs.join(&hex[..2]).join(hex)
    }

    /// The device id of the blob directory (hard links work only within one).
    pub(crate) fn device(&self) -> Result<u64> {
        fs::metadata(&self.blobs)
            .map(|m| m.dev())
            .map_err(|e| io_err("stat the store", &self.blobs, e))
    }

    /// Stores `data` whose CID the caller computed as `cid` (in-process, so
    /// trusted). Returns whether anything was written (`false`: already
    /// stored, or being written by another task of the same push). With
    /// `dirs`, the fsync of the fan-out directory is deferred to
    /// [`DirSync::flush`] so one push pays it once per directory.
    pub(crate) fn put_hashed_blocking(
        &self,
        cid: &Cid,
        data: &[u8],
        dirs: Option<&DirSync>,
    ) -> Result<bool> {
        let path = self.blob_path(cid);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => return Ok(false),
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::Corrupted,
                    "the blob path is not a regular file",
                )
                .with_context("cid", cid.to_string())
                .with_context("path", path.display().to_string()));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io_err("stat a blob", &path, e).with_context("cid", cid.to_string()));
            }
        }
        if let Some(d) = dirs
            && !d.claim(cid)
        {
            return Ok(false);
        }
        let dir = path.parent().unwrap_or(&self.blobs);
        match fs::create_dir(dir) {
            Ok(()) => fsync_dir(&self.blobs)
                .map_err(|e| io_err("sync the blob directory", &self.blobs, e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(
                    io_err("create a blob directory", dir, e).with_context("cid", cid.to_string())
                );
            }
        }
        let tmp = self
            .tmp
            .join(format!("{}.{}.tmp", cid.to_hex(), unique_suffix()));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data)?;
            f.set_permissions(fs::Permissions::from_mode(0o444))?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write a blob", &path, e).with_context("cid", cid.to_string()));
        }
        match dirs {
            Some(d) => d.add(dir),
            None => {
                fsync_dir(dir).map_err(|e| io_err("sync a blob directory", dir, e))?;
            }
        }
        Ok(true)
    }

    /// Reads and verifies a blob.
    pub(crate) fn get_blocking(&self, cid: &Cid) -> Result<Vec<u8>> {
        let path = self.blob_path(cid);
        let mut data = Vec::new();
        let read = fs::File::open(&path).and_then(|mut f| {
            if let Ok(m) = f.metadata() {
                data.reserve_exact(m.len() as usize);
            }
            f.read_to_end(&mut data)
        });
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_found(cid));
            }
            Err(e) => {
                return Err(io_err("read a blob", &path, e).with_context("cid", cid.to_string()));
            }
        }
        check_hash(cid, &data, &path)?;
        Ok(data)
    }

    fn has_blocking(&self, cid: &Cid) -> Result<bool> {
        let path = self.blob_path(cid);
        match fs::symlink_metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("stat a blob", &path, e).with_context("cid", cid.to_string())),
        }
    }

    fn delete_blocking(&self, cid: &Cid) -> Result<()> {
        let path = self.blob_path(cid);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete a blob", &path, e).with_context("cid", cid.to_string())),
        }
    }

    fn list_blocking(&self) -> Result<Vec<Cid>> {
        let mut out = Vec::new();
        let top =
            fs::read_dir(&self.blobs).map_err(|e| io_err("list the store", &self.blobs, e))?;
        for fan in top {
            let fan = fan.map_err(|e| io_err("list the store", &self.blobs, e))?;
            let prefix = fan.file_name();
            let Some(prefix) = prefix.to_str().filter(|p| p.len() == 2) else {
                continue;
            };
            let dir = fan.path();
            if !dir.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&dir).map_err(|e| io_err("list the store", &dir, e))? {
                let entry = entry.map_err(|e| io_err("list the store", &dir, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !name.starts_with(prefix) {
                    continue;
                }
                if let Ok(bytes) = parse_hex32("cid", name) {
                    out.push(Cid::from_digest(Blake3Digest::from_bytes(bytes)));
                }
            }
        }
        Ok(out)
    }

    /// Temporary files left by writers that died (kill -9, power loss) or
    /// that are older than an hour.
    pub(crate) fn stale_temp_files(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let now = SystemTime::now();
        for entry in fs::read_dir(&self.tmp).map_err(|e| io_err("list temp files", &self.tmp, e))? {
            let entry = entry.map_err(|e| io_err("list temp files", &self.tmp, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // <hex>.<pid>.<n>.tmp
            let pid = name.split('.').nth(1).and_then(|p| p.parse::<u32>().ok());
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > TEMP_GRACE);
            let dead = pid.is_some_and(|p| p != std::process::id() && !pid_alive(p));
            if old || dead {
                out.push(entry.path());
            }
        }
        Ok(out)
    }
}

/// The error for a blob that is not stored.
pub(crate) fn not_found(cid: &Cid) -> Error {
    Error::new(
        ErrorKind::NotFound,
        "unknown CID: no such blob in the store",
    )
    .with_context("cid", cid.to_string())
}

/// Checks that `data` hashes to `cid`; `Corrupted` naming the CID otherwise.
pub(crate) fn check_hash(cid: &Cid, data: &[u8], location: &Path) -> Result<()> {
    let got = Cid::of(data);
    if &got == cid {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Corrupted,
        format!(
            "stored blob does not match its CID ({} bytes hash to {got}): truncated or altered",
            data.len()
        ),
    )
    .with_context("cid", cid.to_string())
    .with_context("path", location.display().to_string()))
}

/// The write state of one push: the fan-out directories it wrote into,
/// fsynced together before anything that refers to their blobs is written,
/// and the CIDs it is writing, so that a chunk repeated within the push (two
/// copies of a file) is written once.
#[derive(Debug, Default)]
pub(crate) struct DirSync {
    inner: Mutex<(HashSet<PathBuf>, HashSet<Cid>)>,
}

impl DirSync {
    fn add(&self, dir: &Path) {
        if let Ok(mut g) = self.inner.lock()
            && !g.0.contains(dir)
        {
            g.0.insert(dir.to_path_buf());
        }
    }

    /// Whether the caller should write `cid` (false: another task of this
    /// push is writing it; the push waits for every task before it writes
    /// manifests, so the blob is there before anything refers to it).
    pub(crate) fn claim(&self, cid: &Cid) -> bool {
        self.inner.lock().is_ok_and(|mut g| g.1.insert(*cid))
    }

    /// fsyncs every recorded directory.
    pub(crate) fn flush(&self) -> Result<()> {
        let dirs: Vec<PathBuf> = match self.inner.lock() {
            Ok(mut g) => g.0.drain().collect(),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "directory sync list poisoned",
                ));
            }
        };
        for d in dirs {
            fsync_dir(&d).map_err(|e| io_err("sync a blob directory", &d, e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, data: Vec<u8>) -> Result<Cid> {
        let s = self.clone();
        blocking(move || {
            let cid = Cid::of(&data);
            s.put_hashed_blocking(&cid, &data, None)?;
            Ok(cid)
        })
        .await
    }

    async fn get(&self, cid: &Cid) -> Result<Vec<u8>> {
        let (s, cid) = (self.clone(), *cid);
        blocking(move || s.get_blocking(&cid)).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        let (s, cid) = (self.clone(), *cid);
        blocking(move || s.has_blocking(&cid)).await
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        let (s, cid) = (self.clone(), *cid);
        blocking(move || s.delete_blocking(&cid)).await
    }

    async fn list(&self) -> Result<Vec<Cid>> {
        let s = self.clone();
        blocking(move || s.list_blocking()).await
    }
}
