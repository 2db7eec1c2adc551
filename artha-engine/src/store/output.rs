//! [`Svdb::get`] and [`Svdb::materialize`]: lay a stored file or tree out on
//! disk.
//!
//! Both build the whole output under a temporary sibling name
//! (`.<name>.artha-<pid>.<n>.partial`) and rename it into place only when
//! every chunk was fetched and verified, so the destination either does not
//! exist or is complete. `get` makes an ordinary writable copy;
//! `materialize` makes a read-only one for a job (files `0444`/`0555`,
//! directories `0555`) and, on the local backend, hard-links single-chunk
//! files to their verified blobs when the destination is on the store's
//! filesystem (a hard link shares the blob's inode, so the file is the
//! blob: a job that made it writable and changed it would corrupt the
//! store, which the next read of that blob detects; containers mount these
//! trees read-only). Remove a materialized tree with [`remove_tree`].

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use artha_core::{ArthaUri, Cid, Error, ErrorKind, Result};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use super::StoreBackend;
use super::manifest::{
    DirManifest, EntryKind, FileManifest, MAX_DEPTH, Node, TreeBudget, over_limit,
    target_stays_inside,
};
use super::svdb::{Resolved, Svdb, inconsistent};
use super::util::{blocking, bounded, io_err, rename_noreplace, unique_suffix};

/// What [`Svdb::get`] or [`Svdb::materialize`] laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutReport {
    /// The URI read.
    pub uri: ArthaUri,
    /// Where it was written.
    pub path: PathBuf,
    /// File or directory.
    pub kind: EntryKind,
    /// Regular files written.
    pub files: u64,
    /// Directories created (the root included).
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Logical bytes laid out.
    pub bytes: u64,
    /// Files hard-linked to local blobs.
    pub linked: u64,
    /// Files written by copying chunks.
    pub copied: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Get,
    Materialize,
}

#[derive(Debug)]
struct PlanFile {
    /// Path inside the output ("" for a single-file root).
    rel: String,
    /// Shared by every file of the tree with the same content.
    manifest: Arc<FileManifest>,
    executable: bool,
}

impl PlanFile {
    /// Whether the file is laid out as a hard link to its one blob.
    fn linkable(&self, link: bool) -> bool {
        link && self.manifest.chunks.len() == 1 && !self.executable
    }
}

#[derive(Debug)]
struct Plan {
    kind: EntryKind,
    /// Directories below the root, parents before children.
    dirs: Vec<String>,
    files: Vec<PlanFile>,
    symlinks: Vec<(String, String)>,
    bytes: u64,
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Deletes a tree made by [`Svdb::materialize`] (or anything else),
/// restoring write permission on its directories first. Never follows
/// symlinks and never changes file modes (hard-linked files share their mode
/// with the store's blobs). Absent is fine.
pub fn remove_tree(path: impl AsRef<Path>) -> Result<()> {
    fn unlock(dir: &Path) -> io::Result<()> {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        for e in fs::read_dir(dir)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                unlock(&e.path())?;
            }
        }
        Ok(())
    }
    let path = path.as_ref();
    let r = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => unlock(path).and_then(|()| fs::remove_dir_all(path)),
        Ok(_) => fs::remove_file(path),
    };
    r.map_err(|e| io_err("remove a tree", path, e))
}

impl<B: StoreBackend> Svdb<B> {
    /// Writes the file or tree `uri` names to `dest` as an ordinary writable
    /// copy (modes 644/755). `dest` must not exist; its parent must. Every
    /// chunk is verified; on any error `dest` is left absent. A tree past
    /// the store's [`TreeLimits`](super::TreeLimits), deeper than
    /// [`MAX_DEPTH`] or with a directory of more than
    /// [`MAX_DIR_ENTRIES`](super::manifest::MAX_DIR_ENTRIES) entries is
    /// refused (`InvalidInput`, context `limit`) before anything is written.
    pub async fn get(&self, uri: &ArthaUri, dest: impl AsRef<Path>) -> Result<LayoutReport> {
        self.lay_out(uri, dest.as_ref(), Mode::Get).await
    }

    /// Lays the file or tree `uri` names out at `dir` read-only, for a job:
    /// hard links to verified local blobs where possible, copies otherwise.
    /// `dir` must not exist; its parent must. All or nothing. The same
    /// limits as [`Svdb::get`] apply.
    pub async fn materialize(&self, uri: &ArthaUri, dir: impl AsRef<Path>) -> Result<LayoutReport> {
        self.lay_out(uri, dir.as_ref(), Mode::Materialize).await
    }

    /// Reads the manifests of the tree `uri` names, breadth first, counting
    /// as it goes (see [`TreeLimits`](super::manifest::TreeLimits)): each
    /// level's directories are counted before any of their entries is
    /// expanded, so a tree past a limit is refused after reading at most one
    /// more level of manifests, whatever it describes. Each distinct
    /// manifest is read once per level (a sub-tree named many times costs
    /// one read), and each distinct file manifest once.
    async fn plan(&self, uri: &ArthaUri) -> Result<Plan> {
        let ctx = |e: Error| e.with_context("uri", uri.to_string());
        let base = uri.path().to_string();
        let full = |rel: &str| {
            if base.is_empty() {
                rel.to_string()
            } else if rel.is_empty() {
                base.clone()
            } else {
                format!("{base}/{rel}")
            }
        };
        let at = |e: Error, cid: &Cid, rel: &str| {
            let e = e.with_context("cid", cid.to_string());
            let p = full(rel);
            if p.is_empty() {
                e
            } else {
                e.with_context("path", p)
            }
        };
        let mut budget = TreeBudget::new(self.limits);
        let (root_cid, root) = match self.resolve(uri).await? {
            Resolved::File {
                cid,
                manifest,
                executable,
            } => {
                budget
                    .add_root_file(manifest.size)
                    .map_err(|e| ctx(at(e, &cid, "")))?;
                return Ok(Plan {
                    kind: EntryKind::File,
                    dirs: Vec::new(),
                    bytes: manifest.size,
                    files: vec![PlanFile {
                        rel: String::new(),
                        manifest: Arc::new(manifest),
                        executable,
                    }],
                    symlinks: Vec::new(),
                });
            }
            Resolved::Symlink { target } => {
                return Err(Error::invalid(
                    "uri",
                    format!("names a symlink (-> {target:?}); read its target instead"),
                )
                .with_context("uri", uri.to_string()));
            }
            Resolved::Dir { cid, manifest } => (cid, manifest),
        };
        // The declared size of the whole tree; every directory's is checked
        // against its manifest below and every file's against its file
        // manifest, so a tree that claims too much is refused now and one
        // that lies about it is refused as inconsistent.
        if root.size() > self.limits.max_bytes {
            let e = over_limit("max_bytes", self.limits.max_bytes, "bytes of files");
            return Err(ctx(at(e, &root_cid, "")));
        }
        let mut plan = Plan {
            kind: EntryKind::Dir,
            dirs: Vec::new(),
            files: Vec::new(),
            symlinks: Vec::new(),
            bytes: 0,
        };
        // (rel, file manifest cid, executable, size)
        let mut file_refs: Vec<(String, Cid, bool, u64)> = Vec::new();
        let mut level: Vec<(String, Cid, Arc<DirManifest>)> =
            vec![(String::new(), root_cid, Arc::new(root))];
        let mut depth = 0usize;
        while !level.is_empty() {
            // Level `depth` holds directories nested `depth` deep; like a
            // push and the pin walk, at most MAX_DEPTH - 1 below the root.
            if depth >= MAX_DEPTH
                && let Some((rel, cid, _)) = level.first()
            {
                let e = over_limit("max_depth", MAX_DEPTH as u64, "directory levels");
                return Err(ctx(at(e, cid, rel)));
            }
            // Count the whole level before building anything from it.
            for (rel, cid, dm) in &level {
                budget
                    .add_dir(dm, rel.len())
                    .map_err(|e| ctx(at(e, cid, rel)))?;
            }
            // (rel, dir manifest cid, declared size)
            let mut next_dirs: Vec<(String, Cid, u64)> = Vec::new();
            for (rel, _, dm) in &level {
                for e in &dm.entries {
                    let child = join(rel, &e.name);
                    match &e.node {
                        Node::Dir { cid } => next_dirs.push((child, *cid, e.size)),
                        Node::File { cid, executable } => {
                            file_refs.push((child, *cid, *executable, e.size))
                        }
                        Node::Symlink { target } => {
                            if !target_stays_inside(depth, target) {
                                return Err(Error::invalid(
                                    "manifest",
                                    format!(
                                        "symlink -> {target:?} points outside the tree being read"
                                    ),
                                )
                                .with_context("uri", uri.to_string())
                                .with_context("path", full(&child)));
                            }
                            plan.symlinks.push((child, target.clone()));
                        }
                    }
                }
            }
            plan.dirs.extend(next_dirs.iter().map(|(r, ..)| r.clone()));
            // Each distinct directory manifest of the next level, read once
            // (errors name the first path that refers to it).
            let mut first: HashMap<Cid, String> = HashMap::new();
            for (rel, cid, _) in &next_dirs {
                first.entry(*cid).or_insert_with(|| full(rel));
            }
            let loaded: HashMap<Cid, (Arc<DirManifest>, u64)> = stream::iter(first)
                .map(|(cid, p)| async move {
                    let m = self.load_dir_manifest(&cid, &p).await?;
                    let size = m.size();
                    Ok::<_, Error>((cid, (Arc::new(m), size)))
                })
                .buffer_unordered(self.concurrency * 2)
                .try_collect()
                .await
                .map_err(ctx)?;
            level = Vec::with_capacity(next_dirs.len());
            for (rel, cid, declared) in next_dirs {
                let Some((m, size)) = loaded.get(&cid) else {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        "a planned directory was not read",
                    ));
                };
                if *size != declared {
                    return Err(ctx(inconsistent(
                        &cid,
                        &full(&rel),
                        format!(
                            "the directory entry says {declared} bytes, the directory manifest {size}"
                        ),
                    )));
                }
                level.push((rel, cid, m.clone()));
            }
            depth += 1;
        }
        // Each distinct file manifest, read once.
        let mut first: HashMap<Cid, String> = HashMap::new();
        for (rel, cid, ..) in &file_refs {
            first.entry(*cid).or_insert_with(|| full(rel));
        }
        let loaded: HashMap<Cid, Arc<FileManifest>> = stream::iter(first)
            .map(|(cid, p)| async move {
                let m = self.load_file_manifest(&cid, &p, None).await?;
                Ok::<_, Error>((cid, Arc::new(m)))
            })
            .buffer_unordered(self.concurrency * 2)
            .try_collect()
            .await
            .map_err(ctx)?;
        plan.files = Vec::with_capacity(file_refs.len());
        for (rel, cid, executable, size) in file_refs {
            let Some(manifest) = loaded.get(&cid) else {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "a planned file was not read",
                ));
            };
            if manifest.size != size {
                return Err(ctx(inconsistent(
                    &cid,
                    &full(&rel),
                    format!(
                        "the directory entry says {size} bytes, the file manifest {}",
                        manifest.size
                    ),
                )));
            }
            plan.bytes = plan.bytes.saturating_add(size);
            plan.files.push(PlanFile {
                rel,
                manifest: manifest.clone(),
                executable,
            });
        }
        Ok(plan)
    }

    async fn lay_out(&self, uri: &ArthaUri, dest: &Path, mode: Mode) -> Result<LayoutReport> {
        let exists = |p: &Path| {
            Error::new(ErrorKind::AlreadyExists, "the destination already exists")
                .with_context("path", p.display().to_string())
        };
        if fs::symlink_metadata(dest).is_ok() {
            return Err(exists(dest));
        }
        let name = dest
            .file_name()
            .ok_or_else(|| {
                Error::invalid("dest", "must name a file or directory")
                    .with_context("path", dest.display().to_string())
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let parent_dev = fs::metadata(&parent)
            .map_err(|e| io_err("use the destination's directory", &parent, e))?
            .dev();
        let plan = Arc::new(self.plan(uri).await?);
        let staging = parent.join(format!(".{name}.artha-{}.partial", unique_suffix()));
        let link = match (mode, self.backend.local()) {
            (Mode::Materialize, Some(local)) => local.device()? == parent_dev,
            _ => false,
        };
        let filled = self.fill(&plan, &staging, mode, link).await;
        let result = filled.and_then(|(linked, copied)| {
            rename_noreplace(&staging, dest).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    exists(dest)
                } else {
                    io_err("move the output into place", dest, e)
                }
            })?;
            Ok((linked, copied))
        });
        match result {
            Ok((linked, copied)) => Ok(LayoutReport {
                uri: uri.clone(),
                path: dest.to_path_buf(),
                kind: plan.kind,
                files: plan.files.len() as u64,
                dirs: if plan.kind == EntryKind::Dir {
                    plan.dirs.len() as u64 + 1
                } else {
                    0
                },
                symlinks: plan.symlinks.len() as u64,
                bytes: plan.bytes,
                linked,
                copied,
            }),
            Err(e) => {
                let _ = remove_tree(&staging);
                Err(e.with_context("uri", uri.to_string()))
            }
        }
    }

    /// Writes the plan under `staging`; returns (linked, copied) file counts.
    /// Paths and work items are made one at a time from the plan, so this
    /// holds nothing per file or chunk beyond the plan itself.
    async fn fill(
        &self,
        plan: &Arc<Plan>,
        staging: &Path,
        mode: Mode,
        link: bool,
    ) -> Result<(u64, u64)> {
        fn at(staging: &Path, rel: &str) -> PathBuf {
            if rel.is_empty() {
                staging.to_path_buf()
            } else {
                staging.join(rel)
            }
        }
        // Directories, then every file that is not linked, created empty.
        {
            let plan = plan.clone();
            let staging = staging.to_path_buf();
            blocking(move || {
                if plan.kind == EntryKind::Dir {
                    let dirs = std::iter::once("").chain(plan.dirs.iter().map(String::as_str));
                    for d in dirs.map(|d| at(&staging, d)) {
                        fs::create_dir(&d)
                            .map_err(|e| io_err("create an output directory", &d, e))?;
                    }
                }
                for f in plan.files.iter().filter(|f| !f.linkable(link)) {
                    let p = at(&staging, &f.rel);
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&p)
                        .map_err(|e| io_err("create an output file", &p, e))?;
                }
                Ok(())
            })
            .await?;
        }
        enum Op {
            Link(usize),
            Chunk(usize, usize),
        }
        let files = &plan.files;
        let ops = (0..files.len()).flat_map(move |i| {
            let linked = files[i].linkable(link);
            let chunks = if linked {
                0
            } else {
                files[i].manifest.chunks.len()
            };
            linked
                .then_some(Op::Link(i))
                .into_iter()
                .chain((0..chunks).map(move |c| Op::Chunk(i, c)))
        });
        let mut linked = 0u64;
        bounded(
            ops,
            self.concurrency,
            |op| async move {
                match op {
                    Op::Link(i) => {
                        let f = &plan.files[i];
                        self.link_file(f, at(staging, &f.rel)).await
                    }
                    Op::Chunk(i, c) => {
                        let f = &plan.files[i];
                        self.copy_chunk(f, c, at(staging, &f.rel))
                            .await
                            .map(|()| false)
                    }
                }
            },
            |l| {
                linked += u64::from(l);
                Ok(())
            },
        )
        .await?;
        let copied = plan.files.len() as u64 - linked;
        // Symlinks, then modes: files first, directories deepest first.
        let (ro, rw) = match mode {
            Mode::Get => ((0o644, 0o755), false),
            Mode::Materialize => ((0o444, 0o555), true),
        };
        let plan = plan.clone();
        let staging = staging.to_path_buf();
        blocking(move || {
            for (rel, t) in &plan.symlinks {
                let p = at(&staging, rel);
                std::os::unix::fs::symlink(t, &p).map_err(|e| io_err("create a symlink", &p, e))?;
            }
            for f in plan.files.iter().filter(|f| !f.linkable(link)) {
                let p = at(&staging, &f.rel);
                let m = if f.executable { ro.1 } else { ro.0 };
                fs::set_permissions(&p, fs::Permissions::from_mode(m))
                    .map_err(|e| io_err("set a file's mode", &p, e))?;
            }
            if rw && plan.kind == EntryKind::Dir {
                let dirs = plan.dirs.iter().rev().map(String::as_str);
                for d in dirs.chain(std::iter::once("")).map(|d| at(&staging, d)) {
                    fs::set_permissions(&d, fs::Permissions::from_mode(0o555))
                        .map_err(|e| io_err("make a directory read-only", &d, e))?;
                }
            }
            Ok(())
        })
        .await?;
        Ok((linked, copied))
    }

    /// Fetches, verifies and writes chunk `c` of `f` into `path`.
    async fn copy_chunk(&self, f: &PlanFile, c: usize, path: PathBuf) -> Result<()> {
        let cid = f.manifest.chunks[c];
        let want = f.manifest.chunk_len(c);
        let offset = c as u64 * u64::from(f.manifest.chunk_size);
        let rel = f.rel.clone();
        let check = move |data: &[u8]| -> Result<()> {
            if data.len() as u64 != want {
                return Err(inconsistent(
                    &cid,
                    &rel,
                    format!(
                        "chunk {c} is {} bytes, the file manifest needs {want}",
                        data.len()
                    ),
                ));
            }
            Ok(())
        };
        let ctx = |e: Error| {
            if f.rel.is_empty() {
                e
            } else {
                e.with_context("path", f.rel.clone())
            }
        };
        let write = move |data: &[u8], path: &Path| -> Result<()> {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| io_err("open an output file", path, e))?;
            file.write_all_at(data, offset).map_err(|e| {
                io_err("write an output file", path, e).with_context("cid", cid.to_string())
            })
        };
        if let Some(local) = self.backend.local() {
            let local = local.clone();
            return blocking(move || {
                let data = local.get_blocking(&cid)?;
                check(&data)?;
                write(&data, &path)
            })
            .await
            .map_err(ctx);
        }
        let data = self.backend.get(&cid).await.map_err(ctx)?;
        check(&data).map_err(ctx)?;
        blocking(move || write(&data, &path)).await
    }

    /// Hard-links a single-chunk file to its verified blob (copying if the
    /// link fails, e.g. too many links); returns whether it was linked.
    async fn link_file(&self, f: &PlanFile, path: PathBuf) -> Result<bool> {
        let Some(local) = self.backend.local() else {
            return Err(Error::new(
                ErrorKind::Internal,
                "link without a local backend",
            ));
        };
        let local = local.clone();
        let cid = f.manifest.chunks[0];
        let want = f.manifest.size;
        let rel = Arc::new(f.rel.clone());
        blocking(move || {
            let data = local.get_blocking(&cid).map_err(|e| {
                if rel.is_empty() {
                    e
                } else {
                    e.with_context("path", rel.to_string())
                }
            })?;
            if data.len() as u64 != want {
                return Err(inconsistent(
                    &cid,
                    &rel,
                    format!(
                        "the chunk is {} bytes, the file manifest says {want}",
                        data.len()
                    ),
                ));
            }
            if fs::hard_link(local.blob_path(&cid), &path).is_ok() {
                return Ok(true);
            }
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&path)
                .map_err(|e| io_err("create an output file", &path, e))?;
            file.write_all_at(&data, 0)
                .map_err(|e| io_err("write an output file", &path, e))?;
            Ok(false)
        })
        .await
    }
}
