//! [`Svdb::push_path`]: scan, chunk, hash and store a file or a tree.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use artha_core::{ArthaUri, Cid, Error, ErrorKind, Result};

use super::StoreBackend;
use super::local::DirSync;
use super::manifest::{
    DirEntry, DirManifest, EntryKind, FileManifest, MAX_DEPTH, Manifest, Node, TreeLimits,
    check_name, target_stays_inside,
};
use super::svdb::{PushOptions, PushReport, Svdb};
use super::util::{blocking, bounded, io_err, lock};

/// A regular file found by the scan.
#[derive(Debug)]
struct ScanFile {
    path: PathBuf,
    size: u64,
    executable: bool,
    mtime: Option<SystemTime>,
}

#[derive(Debug)]
enum ScanItem {
    File(usize),
    /// Children sorted by name.
    Dir(Vec<(String, ScanItem)>),
    Symlink(String),
}

#[derive(Debug)]
struct Scan {
    root: ScanItem,
    files: Vec<ScanFile>,
    dirs: u64,
    total: u64,
    /// Files, directories and symlinks below the root, and the bytes of
    /// their relative paths: checked against `limits` as the scan goes, so
    /// a push never stores a tree that a read would refuse.
    entries: u64,
    path_bytes: u64,
    limits: TreeLimits,
}

fn invalid_path(path: &Path, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, msg).with_context("path", path.display().to_string())
}

fn scan(root: &Path, limits: TreeLimits) -> Result<Scan> {
    let meta = fs::metadata(root).map_err(|e| io_err("read the path to push", root, e))?;
    let mut s = Scan {
        root: ScanItem::Dir(Vec::new()),
        files: Vec::new(),
        dirs: 0,
        total: 0,
        entries: 0,
        path_bytes: 0,
        limits,
    };
    if meta.is_file() {
        s.root = ScanItem::File(add_file(&mut s, root.to_path_buf(), &meta));
    } else if meta.is_dir() {
        s.dirs = 1;
        let children = scan_dir(&mut s, root, 0)?;
        s.root = ScanItem::Dir(children);
    } else {
        return Err(invalid_path(
            root,
            "cannot push: not a regular file or directory",
        ));
    }
    Ok(s)
}

/// Refuses the push as soon as the tree passes a read limit ([`TreeLimits`]).
fn check_limits(s: &Scan, path: &Path) -> Result<()> {
    s.limits
        .check(s.entries, s.total, s.path_bytes)
        .map_err(|e| e.with_context("path", path.display().to_string()))
}

fn add_file(s: &mut Scan, path: PathBuf, meta: &fs::Metadata) -> usize {
    s.total += meta.len();
    s.files.push(ScanFile {
        path,
        size: meta.len(),
        executable: meta.permissions().mode() & 0o111 != 0,
        mtime: meta.modified().ok(),
    });
    s.files.len() - 1
}

fn scan_dir(s: &mut Scan, dir: &Path, depth: usize) -> Result<Vec<(String, ScanItem)>> {
    scan_dir_at(s, dir, depth, 0)
}

/// `prefix`: bytes of the relative path of `dir` (0 for the root).
fn scan_dir_at(
    s: &mut Scan,
    dir: &Path,
    depth: usize,
    prefix: u64,
) -> Result<Vec<(String, ScanItem)>> {
    if depth >= MAX_DEPTH {
        return Err(invalid_path(
            dir,
            format!("cannot push: deeper than {MAX_DEPTH} directory levels"),
        ));
    }
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| io_err("list a directory to push", dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| io_err("list a directory to push", dir, e))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| invalid_path(&path, "cannot push: the file name is not UTF-8"))?;
        check_name(&name)
            .map_err(|e| invalid_path(&path, format!("cannot push: {}", e.message())))?;
        let rel_len = if prefix == 0 {
            name.len() as u64
        } else {
            prefix + 1 + name.len() as u64
        };
        s.entries += 1;
        s.path_bytes += rel_len;
        let ft = entry
            .file_type()
            .map_err(|e| io_err("stat a file to push", &path, e))?;
        let item = if ft.is_dir() {
            s.dirs += 1;
            check_limits(s, &path)?;
            ScanItem::Dir(scan_dir_at(s, &path, depth + 1, rel_len)?)
        } else if ft.is_file() {
            let meta = fs::metadata(&path).map_err(|e| io_err("stat a file to push", &path, e))?;
            ScanItem::File(add_file(s, path.clone(), &meta))
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)
                .map_err(|e| io_err("read a symlink to push", &path, e))?
                .into_os_string()
                .into_string()
                .map_err(|_| invalid_path(&path, "cannot push: the symlink target is not UTF-8"))?;
            if !target_stays_inside(depth, &target) {
                return Err(invalid_path(
                    &path,
                    format!(
                        "cannot push: symlink -> {target:?} points outside the pushed tree \
                         (only relative targets with leading `..` that stay inside are stored)"
                    ),
                )
                .with_context("target", target));
            }
            ScanItem::Symlink(target)
        } else {
            return Err(invalid_path(
                &path,
                "cannot push: special file (socket, FIFO or device)",
            ));
        };
        check_limits(s, &path)?;
        out.push((name, item));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Reads `len` bytes at `offset`; a short read means the file shrank.
fn read_chunk(f: &ScanFile, offset: u64, buf: &mut [u8]) -> Result<()> {
    let file = fs::File::open(&f.path).map_err(|e| io_err("open a file to push", &f.path, e))?;
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            changed(f)
        } else {
            io_err("read a file to push", &f.path, e)
        }
    })
}

/// Chunk buffers reused across a push: a fresh multi-MiB allocation per
/// chunk costs page faults and zeroing comparable to hashing it.
#[derive(Debug, Default)]
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn take(&self, len: usize) -> Vec<u8> {
        let mut buf = self
            .0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        if buf.len() < len {
            buf.resize(len, 0);
        } else {
            buf.truncate(len);
        }
        buf
    }

    fn give(&self, buf: Vec<u8>) {
        if let Ok(mut p) = self.0.lock() {
            p.push(buf);
        }
    }
}

fn changed(f: &ScanFile) -> Error {
    Error::new(
        ErrorKind::Conflict,
        "the file changed while it was being pushed; push it again",
    )
    .with_context("path", f.path.display().to_string())
}

/// Builds the manifests of `item` (children first); returns the entry node
/// and its size.
fn build(
    item: &ScanItem,
    files: &[ScanFile],
    file_cids: &[Cid],
    out: &mut Vec<(Cid, Vec<u8>)>,
    seen: &mut HashSet<Cid>,
) -> Result<(Node, u64)> {
    Ok(match item {
        ScanItem::File(i) => (
            Node::File {
                cid: file_cids[*i],
                executable: files[*i].executable,
            },
            files[*i].size,
        ),
        ScanItem::Symlink(t) => (Node::Symlink { target: t.clone() }, t.len() as u64),
        ScanItem::Dir(children) => {
            let mut entries = Vec::with_capacity(children.len());
            for (name, child) in children {
                let (node, size) = build(child, files, file_cids, out, seen)?;
                entries.push(DirEntry {
                    name: name.clone(),
                    size,
                    node,
                });
            }
            let dm = DirManifest::new(entries)?;
            let size = dm.size();
            let bytes = Manifest::Dir(dm).encode();
            let cid = Cid::of(&bytes);
            if seen.insert(cid) {
                out.push((cid, bytes));
            }
            (Node::Dir { cid }, size)
        }
    })
}

impl<B: StoreBackend> Svdb<B> {
    /// Pushes a file or a directory tree; returns its `artha://` URI and
    /// what was written. Content already stored is not written again
    /// (`bytes_written` is 0 for a second push of the same content). Pins
    /// the root with `opts.pin`. Symlinks must stay inside the tree; special
    /// files and non-UTF-8 names are refused. On error nothing is pinned and
    /// no manifest names an incomplete tree.
    pub async fn push_path(
        &self,
        path: impl AsRef<Path>,
        opts: &PushOptions,
    ) -> Result<PushReport> {
        if let Some(d) = &opts.pin {
            d.validate()?;
        }
        let path = path.as_ref().to_path_buf();
        let _lock = lock(self.lock_path(), false).await?;
        let scan = {
            let p = path.clone();
            let limits = self.tree_limits();
            blocking(move || scan(&p, limits)).await?
        };
        if let Some(p) = &opts.progress {
            p.start(scan.total);
        }
        let cs = u64::from(self.chunk_size);
        let batch = Arc::new(DirSync::default());
        let pool = Arc::new(Pool::default());
        let files = Arc::new(scan.files);
        let jobs: Vec<(usize, u64)> = files
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                (0..FileManifest::chunk_count(f.size, self.chunk_size)).map(move |c| (i, c))
            })
            .collect();
        let chunk_total = jobs.len() as u64;
        let mut chunk_cids: Vec<Vec<Cid>> = files
            .iter()
            .map(
                |f| Vec::with_capacity(FileManifest::chunk_count(f.size, self.chunk_size) as usize),
            )
            .collect();
        let (mut blobs_written, mut bytes_written) = (0u64, 0u64);
        // Small chunks are bound by fsync latency, not CPU: keep more of them
        // in flight (the same memory as `concurrency` full chunks, at most 32).
        let avg = scan.total / chunk_total.max(1);
        let in_flight = (self.concurrency as u64 * cs / avg.max(1))
            .clamp(self.concurrency as u64, 32.max(self.concurrency as u64))
            as usize;
        bounded(
            jobs,
            in_flight,
            |(fi, ci)| {
                let files = files.clone();
                let batch = batch.clone();
                let pool = pool.clone();
                async move {
                    let f = &files[fi];
                    let offset = ci * cs;
                    let len = cs.min(f.size - offset);
                    let r = self
                        .ingest_chunk(files.clone(), fi, offset, len, batch, pool)
                        .await;
                    r.map(|(cid, written)| (fi, cid, len, written))
                        .map_err(|e| e.with_context("file", f.path.display().to_string()))
                }
            },
            |(fi, cid, len, written)| {
                chunk_cids[fi].push(cid);
                if written {
                    blobs_written += 1;
                    bytes_written += len;
                }
                if let Some(p) = &opts.progress {
                    p.advance(len);
                }
                Ok(())
            },
        )
        .await?;
        // The content must be what was scanned: a file that grew or was
        // rewritten during the push would get a manifest for neither version.
        {
            let files = files.clone();
            blocking(move || {
                for f in files.iter() {
                    let m = fs::metadata(&f.path)
                        .map_err(|e| io_err("re-check a pushed file", &f.path, e))?;
                    if m.len() != f.size || m.modified().ok() != f.mtime {
                        return Err(changed(f));
                    }
                }
                Ok(())
            })
            .await?;
        }
        let mut manifests: Vec<(Cid, Vec<u8>)> = Vec::new();
        let mut seen = HashSet::new();
        let mut file_cids = Vec::with_capacity(files.len());
        for (f, chunks) in files.iter().zip(chunk_cids) {
            let bytes = Manifest::File(FileManifest {
                size: f.size,
                chunk_size: self.chunk_size,
                chunks,
            })
            .encode();
            let cid = Cid::of(&bytes);
            file_cids.push(cid);
            if seen.insert(cid) {
                manifests.push((cid, bytes));
            }
        }
        let (root, size) = build(&scan.root, &files, &file_cids, &mut manifests, &mut seen)?;
        let (cid, kind) = match root {
            Node::File { cid, .. } => (cid, EntryKind::File),
            Node::Dir { cid } => (cid, EntryKind::Dir),
            Node::Symlink { .. } => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "a symlink cannot be a push root",
                ));
            }
        };
        bounded(
            manifests,
            32.max(self.concurrency),
            |(c, b)| {
                let batch = batch.clone();
                async move {
                    let n = b.len() as u64;
                    self.store_blob(c, b, Some(batch)).await.map(|w| (w, n))
                }
            },
            |(w, n)| {
                if w {
                    blobs_written += 1;
                    bytes_written += n;
                }
                Ok(())
            },
        )
        .await?;
        // Every blob of the tree is durable (files were fsynced as written;
        // now their directories) before a pin can name it.
        blocking(move || batch.flush()).await?;
        let pin = match &opts.pin {
            Some(deal) => Some(self.write_pin(&cid, deal, size).await?),
            None => None,
        };
        Ok(PushReport {
            uri: ArthaUri::new(cid),
            cid,
            kind,
            size,
            files: files.len() as u64,
            dirs: scan.dirs,
            chunks: chunk_total,
            blobs_written,
            bytes_written,
            pin,
        })
    }

    /// Reads, hashes and stores one chunk; returns its CID and whether it was
    /// newly written.
    async fn ingest_chunk(
        &self,
        files: Arc<Vec<ScanFile>>,
        fi: usize,
        offset: u64,
        len: u64,
        batch: Arc<DirSync>,
        pool: Arc<Pool>,
    ) -> Result<(Cid, bool)> {
        if let Some(local) = self.backend.local() {
            let local = local.clone();
            return blocking(move || {
                let mut data = pool.take(len as usize);
                let r = read_chunk(&files[fi], offset, &mut data).and_then(|()| {
                    let cid = Cid::of(&data);
                    let written = local.put_hashed_blocking(&cid, &data, Some(&batch))?;
                    Ok((cid, written))
                });
                pool.give(data);
                r
            })
            .await;
        }
        let (cid, data) = blocking(move || {
            let mut data = vec![0u8; len as usize];
            read_chunk(&files[fi], offset, &mut data)?;
            Ok((Cid::of(&data), data))
        })
        .await?;
        let written = self.store_blob(cid, data, Some(batch)).await?;
        Ok((cid, written))
    }
}
