//! [`Svdb`]: chunked, manifest-based storage over any [`StoreBackend`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use artha_core::hash::parse_hex32;
use artha_core::{ArthaUri, Blake3Digest, Cid, Error, ErrorKind, Result};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use super::StoreBackend;
use super::local::{DirSync, LocalBlobStore};
use super::manifest::{
    DirEntry, DirManifest, EntryKind, FileManifest, MAX_CHUNK_SIZE, MAX_DEPTH, MIN_CHUNK_SIZE,
    Manifest, Node, TreeLimits, over_limit,
};
use super::util::{blocking, io_err, lock, write_atomic};
use crate::home::EngineHome;

/// Chunk size of new files: 4 MiB (see the module docs for why).
pub const DEFAULT_CHUNK_SIZE: u32 = 4 * 1024 * 1024;

/// Receives progress of a push (e.g. to draw a progress bar).
pub trait Progress: Send + Sync {
    /// Called once, after the input was scanned, with the bytes to hash.
    fn start(&self, total_bytes: u64);
    /// Called as chunks are done, with the bytes just hashed.
    fn advance(&self, bytes: u64);
}

/// Storage deal terms recorded with a pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    /// Copies to keep (1 to [`Deal::MAX_REPLICAS`]).
    pub replicas: u32,
    /// Duration of the deal in months (1 to [`Deal::MAX_MONTHS`]).
    pub months: u32,
    /// Who pays for and owns the pin (an identity or account name).
    pub owner: String,
}

impl Default for Deal {
    /// Three replicas for one month, owned by `local`.
    fn default() -> Self {
        Deal {
            replicas: 3,
            months: 1,
            owner: "local".into(),
        }
    }
}

impl Deal {
    /// Most replicas a deal may ask for.
    pub const MAX_REPLICAS: u32 = 64;
    /// Longest deal, in months (ten years).
    pub const MAX_MONTHS: u32 = 120;

    /// Checks the terms; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=Self::MAX_REPLICAS).contains(&self.replicas) {
            return Err(Error::invalid(
                "replicas",
                format!(
                    "replicas must be between 1 and {}, got {}",
                    Self::MAX_REPLICAS,
                    self.replicas
                ),
            ));
        }
        if !(1..=Self::MAX_MONTHS).contains(&self.months) {
            return Err(Error::invalid(
                "months",
                format!(
                    "months must be between 1 and {}, got {}",
                    Self::MAX_MONTHS,
                    self.months
                ),
            ));
        }
        if self.owner.is_empty()
            || self.owner.len() > 256
            || self.owner.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "owner",
                "owner must be 1 to 256 bytes without control characters",
            ));
        }
        Ok(())
    }
}

/// A pinned root: kept by GC, with its deal terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The pinned manifest.
    pub cid: Cid,
    /// Copies to keep.
    pub replicas: u32,
    /// Deal duration in months.
    pub months: u32,
    /// Logical size of the pinned file or tree, bytes.
    pub size: u64,
    /// Owner of the pin.
    pub owner: String,
    /// When it was pinned, seconds since the Unix epoch.
    pub created_at: u64,
}

/// Options of [`Svdb::push_path`].
#[derive(Clone)]
pub struct PushOptions {
    /// Pin the pushed root with these terms (default: [`Deal::default`]).
    /// `None` leaves it unpinned, so the next GC removes it.
    pub pin: Option<Deal>,
    /// Progress receiver.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            pin: Some(Deal::default()),
            progress: None,
        }
    }
}

impl fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushOptions")
            .field("pin", &self.pin)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a push stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushReport {
    /// `artha://<cid>` of the pushed file or tree.
    pub uri: ArthaUri,
    /// The root manifest's CID.
    pub cid: Cid,
    /// File or directory.
    pub kind: EntryKind,
    /// Logical bytes pushed (sum of file sizes).
    pub size: u64,
    /// Regular files pushed.
    pub files: u64,
    /// Directories pushed (the root included).
    pub dirs: u64,
    /// Chunks the files consist of (with repeats).
    pub chunks: u64,
    /// Blobs (chunks and manifests) newly written.
    pub blobs_written: u64,
    /// Bytes newly written to the backend; 0 when everything was stored.
    pub bytes_written: u64,
    /// The pin, when one was asked for.
    pub pin: Option<Pin>,
}

/// What [`Svdb::ls`] found at a URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The URI listed.
    pub uri: ArthaUri,
    /// What it names.
    pub kind: EntryKind,
    /// File length or total file bytes of the tree.
    pub size: u64,
    /// The manifest's CID (none for a symlink).
    pub cid: Option<Cid>,
    /// For a file: whether it is executable.
    pub executable: bool,
    /// For a symlink: its target.
    pub target: Option<String>,
    /// For a directory: its entries, sorted by name.
    pub entries: Vec<DirEntry>,
}

/// What [`Svdb::gc`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Pins honoured.
    pub pins: usize,
    /// Blobs kept (reachable from a pin).
    pub kept: usize,
    /// Blobs deleted.
    pub deleted: usize,
    /// Temporary files of dead writers removed (local backend).
    pub temp_files_removed: usize,
}

/// What is wrong with a blob [`Svdb::verify`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Referenced but not stored.
    Missing,
    /// Stored bytes do not hash to the CID.
    Corrupted,
    /// Expected a manifest, found something else or a malformed one.
    InvalidManifest,
}

/// One problem found by [`Svdb::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The blob.
    pub cid: Cid,
    /// What is wrong.
    pub kind: ProblemKind,
    /// The manifest (or pin) that refers to it, if any.
    pub referenced_by: Option<Cid>,
    /// Human-readable detail.
    pub detail: String,
}

/// Result of a full [`Svdb::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Blobs re-hashed.
    pub blobs: usize,
    /// Bytes re-hashed.
    pub bytes: u64,
    /// Pins whose trees were walked.
    pub pins: usize,
    /// Everything wrong; empty when the store is sound.
    pub problems: Vec<Problem>,
    /// Temporary files of dead writers (harmless; GC removes them).
    pub stale_temp_files: usize,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A resolved URI.
#[derive(Debug, Clone)]
pub(crate) enum Resolved {
    File {
        cid: Cid,
        manifest: FileManifest,
        executable: bool,
    },
    Dir {
        cid: Cid,
        manifest: DirManifest,
    },
    Symlink {
        target: String,
    },
}

/// Blobs reachable from some roots, and what was wrong on the way.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub(crate) manifests: HashSet<Cid>,
    /// Chunk → a file manifest that lists it.
    pub(crate) chunks: HashMap<Cid, Cid>,
    pub(crate) problems: Vec<Problem>,
    /// What each directory manifest adds to a tree, when the walk was asked
    /// to keep it (to compute a tree's expanded totals without expanding).
    pub(crate) dirs: HashMap<Cid, DirSummary>,
}

/// One directory manifest, reduced to what its tree's totals need.
#[derive(Debug, Default)]
pub(crate) struct DirSummary {
    /// Its entries.
    entries: u64,
    /// The declared sizes of its files.
    file_bytes: u64,
    /// The lengths of its entries' names.
    name_bytes: u64,
    /// Its sub-directories (with repeats) and the lengths of their names.
    children: Vec<(Cid, u64)>,
}

/// A tree's totals as it would be laid out (shared sub-trees counted once
/// per reference).
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    entries: u64,
    bytes: u64,
    /// Path bytes of everything below, relative to this directory.
    path_bytes: u64,
    /// Directory levels below this one.
    height: usize,
}

/// The totals of the tree at `root`, from the summaries of a walk, one
/// computation per distinct manifest (never by expanding); checks them
/// against `limits` and [`MAX_DEPTH`]. Manifests the walk could not read
/// count as empty (the walk reported them).
fn check_tree(dirs: &HashMap<Cid, DirSummary>, root: &Cid, limits: &TreeLimits) -> Result<()> {
    let mut memo: HashMap<Cid, Totals> = HashMap::new();
    let mut on_path: HashSet<Cid> = HashSet::new();
    let mut stack = vec![(*root, false)];
    while let Some((cid, ready)) = stack.pop() {
        if memo.contains_key(&cid) {
            continue;
        }
        let Some(s) = dirs.get(&cid) else {
            memo.insert(cid, Totals::default());
            continue;
        };
        if !ready {
            if !on_path.insert(cid) {
                // A manifest that contains itself: impossible to make with
                // BLAKE3, refused rather than looped on.
                return Err(inconsistent(
                    &cid,
                    "",
                    "a directory manifest contains itself".into(),
                ));
            }
            stack.push((cid, true));
            stack.extend(
                s.children
                    .iter()
                    .filter(|(c, _)| !memo.contains_key(c))
                    .map(|(c, _)| (*c, false)),
            );
            continue;
        }
        on_path.remove(&cid);
        let mut t = Totals {
            entries: s.entries,
            bytes: s.file_bytes,
            path_bytes: s.name_bytes,
            height: 0,
        };
        for (c, name_len) in &s.children {
            let sub = memo.get(c).copied().unwrap_or_default();
            t.entries = t.entries.saturating_add(sub.entries);
            t.bytes = t.bytes.saturating_add(sub.bytes);
            t.path_bytes = t
                .path_bytes
                .saturating_add(sub.entries.saturating_mul(name_len.saturating_add(1)))
                .saturating_add(sub.path_bytes);
            t.height = t.height.max(sub.height.saturating_add(1));
        }
        let err = |e: Error| e.with_context("cid", cid.to_string());
        limits
            .check(t.entries, t.bytes, t.path_bytes)
            .map_err(err)?;
        if t.height >= MAX_DEPTH {
            return Err(err(over_limit(
                "max_depth",
                MAX_DEPTH as u64,
                "directory levels",
            )));
        }
        memo.insert(cid, t);
    }
    Ok(())
}

/// Content-addressed, chunked storage over a blob backend: push, get, ls,
/// materialize, pins, GC and verification. See the [module docs](super).
pub struct Svdb<B> {
    pub(super) backend: B,
    pub(super) state: PathBuf,
    pub(super) chunk_size: u32,
    pub(super) concurrency: usize,
    pub(super) limits: TreeLimits,
}

impl<B: fmt::Debug> fmt::Debug for Svdb<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Svdb")
            .field("backend", &self.backend)
            .field("state", &self.state)
            .field("chunk_size", &self.chunk_size)
            .field("concurrency", &self.concurrency)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Svdb<LocalBlobStore> {
    /// A local store in `dir` (blobs, temporary files, pins and lock all
    /// under it).
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let local = LocalBlobStore::open(dir.as_ref())?;
        Svdb::new(local, dir.as_ref())
    }

    /// The engine home's store, `<home>/store`.
    pub fn open(home: &EngineHome) -> Result<Self> {
        Self::open_dir(home.dir("store"))
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl<B: StoreBackend> Svdb<B> {
    /// An SVDB over `backend`, keeping pins and its lock in `state_dir`.
    pub fn new(backend: B, state_dir: impl AsRef<Path>) -> Result<Self> {
        let state = state_dir.as_ref().to_path_buf();
        let pins = state.join("pins");
        std::fs::create_dir_all(&pins)
            .map_err(|e| io_err("create the store state directory", &pins, e))?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Svdb {
            backend,
            state,
            chunk_size: DEFAULT_CHUNK_SIZE,
            // Twice the cores: hashing keeps every core busy while the other
            // half of the in-flight chunks wait on fsync or the network.
            concurrency: (cores * 2).max(2),
            limits: TreeLimits::default(),
        })
    }

    /// Sets the chunk size of files pushed from now on (64 KiB to 16 MiB).
    pub fn with_chunk_size(mut self, bytes: u32) -> Result<Self> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&bytes) {
            return Err(Error::invalid(
                "chunk_size",
                format!("must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes, got {bytes}"),
            ));
        }
        self.chunk_size = bytes;
        Ok(self)
    }

    /// Sets how many chunks are hashed, written or fetched at once
    /// (default: twice the available cores).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets the limits on the trees [`Svdb::get`], [`Svdb::materialize`]
    /// and [`Svdb::pin`] accept (default: [`TreeLimits::default`]).
    pub fn with_tree_limits(mut self, limits: TreeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits on the trees this store reads.
    pub fn tree_limits(&self) -> TreeLimits {
        self.limits
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The chunk size of new files.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Where pins and the lock live.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    pub(super) fn lock_path(&self) -> PathBuf {
        self.state.join("store.lock")
    }

    fn pin_path(&self, cid: &Cid) -> PathBuf {
        self.state
            .join("pins")
            .join(format!("{}.json", cid.to_hex()))
    }

    /// Stores a blob whose CID the caller computed; returns whether it was
    /// written (`false`: already stored).
    pub(super) async fn store_blob(
        &self,
        cid: Cid,
        data: Vec<u8>,
        batch: Option<Arc<DirSync>>,
    ) -> Result<bool> {
        if let Some(local) = self.backend.local() {
            let local = local.clone();
            return blocking(move || local.put_hashed_blocking(&cid, &data, batch.as_deref()))
                .await;
        }
        if batch.is_some_and(|b| !b.claim(&cid)) || self.backend.has(&cid).await? {
            return Ok(false);
        }
        let got = self.backend.put(data).await?;
        if got != cid {
            return Err(Error::new(
                ErrorKind::Internal,
                "the backend stored a blob under another CID",
            )
            .with_context("cid", cid.to_string())
            .with_context("got", got.to_string()));
        }
        Ok(true)
    }

    /// Reads and decodes the manifest `cid`; `path` (inside the URI being
    /// read) goes into errors.
    pub(super) async fn load_manifest(&self, cid: &Cid, path: &str) -> Result<Manifest> {
        let with_path = |e: Error| {
            if path.is_empty() {
                e
            } else {
                e.with_context("path", path.to_string())
            }
        };
        let bytes = self.backend.get(cid).await.map_err(with_path)?;
        Manifest::decode(cid, &bytes).map_err(with_path)
    }

    pub(super) async fn load_file_manifest(
        &self,
        cid: &Cid,
        path: &str,
        size: Option<u64>,
    ) -> Result<FileManifest> {
        match self.load_manifest(cid, path).await? {
            Manifest::File(f) => {
                if let Some(s) = size.filter(|s| *s != f.size) {
                    return Err(inconsistent(
                        cid,
                        path,
                        format!(
                            "the directory entry says {s} bytes, the file manifest {}",
                            f.size
                        ),
                    ));
                }
                Ok(f)
            }
            Manifest::Dir(_) => Err(inconsistent(
                cid,
                path,
                "expected a file manifest, found a directory manifest".into(),
            )),
        }
    }

    pub(super) async fn load_dir_manifest(&self, cid: &Cid, path: &str) -> Result<DirManifest> {
        match self.load_manifest(cid, path).await? {
            Manifest::Dir(d) => Ok(d),
            Manifest::File(_) => Err(inconsistent(
                cid,
                path,
                "expected a directory manifest, found a file manifest".into(),
            )),
        }
    }

    /// Follows a URI's path through directory manifests.
    pub(super) async fn resolve(&self, uri: &ArthaUri) -> Result<Resolved> {
        let ctx = |e: Error| e.with_context("uri", uri.to_string());
        let root = *uri.cid();
        let mut current = match self.load_manifest(&root, "").await.map_err(ctx)? {
            Manifest::File(manifest) => Resolved::File {
                cid: root,
                manifest,
                executable: false,
            },
            Manifest::Dir(manifest) => Resolved::Dir {
                cid: root,
                manifest,
            },
        };
        let mut walked = String::new();
        for seg in uri.segments() {
            let dir = match &current {
                Resolved::Dir { manifest, .. } => manifest,
                _ => {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!("`{walked}` is not a directory"),
                    )
                    .with_context("uri", uri.to_string()));
                }
            };
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(seg);
            let entry = dir.get(seg).ok_or_else(|| {
                Error::new(ErrorKind::NotFound, "no such path in the tree")
                    .with_context("uri", uri.to_string())
                    .with_context("path", walked.clone())
            })?;
            current = match &entry.node {
                Node::File { cid, executable } => Resolved::File {
                    cid: *cid,
                    manifest: self
                        .load_file_manifest(cid, &walked, Some(entry.size))
                        .await
                        .map_err(ctx)?,
                    executable: *executable,
                },
                Node::Dir { cid } => Resolved::Dir {
                    cid: *cid,
                    manifest: self.load_dir_manifest(cid, &walked).await.map_err(ctx)?,
                },
                Node::Symlink { target } => Resolved::Symlink {
                    target: target.clone(),
                },
            };
            if matches!(current, Resolved::Symlink { .. }) && walked.len() < uri.path().len() {
                return Err(Error::invalid(
                    "uri",
                    "the path goes through a symlink; use the link's target instead",
                )
                .with_context("uri", uri.to_string())
                .with_context("path", walked));
            }
        }
        Ok(current)
    }

    /// Describes what a URI names; for a directory, lists its entries.
    /// Reads one manifest per path segment and never expands a tree (the
    /// size of a directory is what its manifest declares), so it is cheap
    /// on any tree; a directory of more than
    /// [`MAX_DIR_ENTRIES`](super::manifest::MAX_DIR_ENTRIES) entries is
    /// refused.
    pub async fn ls(&self, uri: &ArthaUri) -> Result<Listing> {
        Ok(match self.resolve(uri).await? {
            Resolved::File {
                cid,
                manifest,
                executable,
            } => Listing {
                uri: uri.clone(),
                kind: EntryKind::File,
                size: manifest.size,
                cid: Some(cid),
                executable,
                target: None,
                entries: Vec::new(),
            },
            Resolved::Dir { cid, manifest } => Listing {
                uri: uri.clone(),
                kind: EntryKind::Dir,
                size: manifest.size(),
                cid: Some(cid),
                executable: false,
                target: None,
                entries: manifest.entries,
            },
            Resolved::Symlink { target } => Listing {
                uri: uri.clone(),
                kind: EntryKind::Symlink,
                size: target.len() as u64,
                cid: None,
                executable: false,
                target: Some(target),
                entries: Vec::new(),
            },
        })
    }

    /// Every manifest and chunk reachable from `roots`; unreadable or
    /// malformed manifests are recorded as problems (chunks are listed, not
    /// read). Errors other than missing/corrupted/malformed blobs (an
    /// unreachable backend) abort the walk.
    ///
    /// Bounded by what is stored, never by what it describes: each distinct
    /// manifest is read once (a sub-tree referenced many times is queued
    /// once), manifests are decoded as they arrive (at most a few in memory
    /// as bytes), and directories go no deeper than [`MAX_DEPTH`]. With
    /// `summarize`, it keeps a [`DirSummary`] per directory manifest, from
    /// which [`check_tree`] computes the expanded totals of a tree.
    pub(crate) async fn walk(&self, roots: &[Cid], summarize: bool) -> Result<Walk> {
        let mut walk = Walk::default();
        // (cid, expected kind, referenced by)
        let mut frontier: Vec<(Cid, Option<EntryKind>, Option<Cid>)> = Vec::new();
        for r in roots {
            if walk.manifests.insert(*r) {
                frontier.push((*r, None, None));
            }
        }
        let mut depth = 0usize;
        while !frontier.is_empty() {
            depth += 1;
            let level = std::mem::take(&mut frontier);
            let mut fetched = stream::iter(level)
                .map(|(cid, want, parent)| async move {
                    let got = self
                        .backend
                        .get(&cid)
                        .await
                        .map(|bytes| Manifest::decode(&cid, &bytes));
                    (cid, want, parent, got)
                })
                .buffer_unordered(self.concurrency * 2);
            while let Some((cid, want, parent, got)) = fetched.next().await {
                let problem = |kind, detail: String| Problem {
                    cid,
                    kind,
                    referenced_by: parent,
                    detail,
                };
                let decoded = match got {
                    Ok(d) => d,
                    Err(e) => match e.kind() {
                        ErrorKind::NotFound => {
                            walk.problems
                                .push(problem(ProblemKind::Missing, e.to_string()));
                            continue;
                        }
                        ErrorKind::Corrupted => {
                            walk.problems
                                .push(problem(ProblemKind::Corrupted, e.to_string()));
                            continue;
                        }
                        _ => return Err(e),
                    },
                };
                let m = match decoded {
                    Ok(m) => m,
                    Err(e) => {
                        walk.problems
                            .push(problem(ProblemKind::InvalidManifest, e.to_string()));
                        continue;
                    }
                };
                match (m, want) {
                    (Manifest::File(f), None | Some(EntryKind::File)) => {
                        for c in f.chunks {
                            walk.chunks.entry(c).or_insert(cid);
                        }
                    }
                    (Manifest::Dir(d), None | Some(EntryKind::Dir)) => {
                        if depth > MAX_DEPTH {
                            walk.problems.push(problem(
                                ProblemKind::InvalidManifest,
                                format!("tree deeper than {MAX_DEPTH} levels"),
                            ));
                            continue;
                        }
                        let mut summary = DirSummary::default();
                        for e in &d.entries {
                            if summarize {
                                summary.entries += 1;
                                summary.name_bytes += e.name.len() as u64;
                                match &e.node {
                                    Node::File { .. } => {
                                        summary.file_bytes =
                                            summary.file_bytes.saturating_add(e.size);
                                    }
                                    Node::Dir { cid } => {
                                        summary.children.push((*cid, e.name.len() as u64));
                                    }
                                    Node::Symlink { .. } => {}
                                }
                            }
                            if let Some(c) = e.cid()
                                && walk.manifests.insert(*c)
                            {
                                frontier.push((*c, Some(e.kind()), Some(cid)));
                            }
                        }
                        if summarize {
                            walk.dirs.insert(cid, summary);
                        }
                    }
                    (_, Some(k)) => walk.problems.push(problem(
                        ProblemKind::InvalidManifest,
                        format!("the directory entry says {k}, the manifest is the other kind"),
                    )),
                }
            }
        }
        Ok(walk)
    }

    /// Pins `cid` (a file or directory manifest) with deal terms. The whole
    /// tree must be stored: a missing or malformed manifest or a missing
    /// chunk is an error naming it, and nothing is pinned. So is a tree
    /// that [`Svdb::get`] would refuse for its size (the store's
    /// [`TreeLimits`], [`MAX_DEPTH`]), computed once per distinct manifest.
    /// Pinning again replaces the terms.
    pub async fn pin(&self, cid: &Cid, deal: &Deal) -> Result<Pin> {
        deal.validate()?;
        let walk = self.walk(&[*cid], true).await?;
        if let Some(p) = walk.problems.first() {
            let kind = match p.kind {
                ProblemKind::Missing => ErrorKind::NotFound,
                ProblemKind::Corrupted => ErrorKind::Corrupted,
                ProblemKind::InvalidManifest => ErrorKind::InvalidInput,
            };
            let mut e = Error::new(kind, format!("cannot pin an incomplete tree: {}", p.detail))
                .with_context("pin", cid.to_string())
                .with_context("cid", p.cid.to_string());
            if let Some(r) = p.referenced_by {
                e = e.with_context("referenced_by", r.to_string());
            }
            return Err(e);
        }
        // A tree no read would accept is not pinned either.
        check_tree(&walk.dirs, cid, &self.limits).map_err(|e| {
            e.with_context("pin", cid.to_string())
                .with_context("uri", ArthaUri::new(*cid).to_string())
        })?;
        let chunks: Vec<(Cid, Cid)> = walk.chunks.into_iter().collect();
        let missing = stream::iter(chunks)
            .map(|(c, m)| async move { self.backend.has(&c).await.map(|h| (c, m, h)) })
            .buffer_unordered(self.concurrency * 2)
            .try_filter(|(_, _, has)| std::future::ready(!has))
            .try_next()
            .await?;
        if let Some((c, m, _)) = missing {
            return Err(Error::new(
                ErrorKind::NotFound,
                "cannot pin: a manifest references a missing chunk",
            )
            .with_context("pin", cid.to_string())
            .with_context("cid", c.to_string())
            .with_context("referenced_by", m.to_string()));
        }
        let size = match self.load_manifest(cid, "").await? {
            Manifest::File(f) => f.size,
            Manifest::Dir(d) => d.size(),
        };
        self.write_pin(cid, deal, size).await
    }

    pub(super) async fn write_pin(&self, cid: &Cid, deal: &Deal, size: u64) -> Result<Pin> {
        let pin = Pin {
            cid: *cid,
            replicas: deal.replicas,
            months: deal.months,
            size,
            owner: deal.owner.clone(),
            created_at: now_secs(),
        };
        let bytes = serde_json::to_vec_pretty(&pin)
            .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode a pin").with_source(e))?;
        let path = self.pin_path(cid);
        blocking(move || write_atomic(&path, &bytes)).await?;
        Ok(pin)
    }

    /// Removes the pin of `cid`; returns whether there was one. Its blobs go
    /// at the next [`Svdb::gc`] unless another pin reaches them.
    pub async fn unpin(&self, cid: &Cid) -> Result<bool> {
        let path = self.pin_path(cid);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove a pin", &path, e)),
        })
        .await
    }

    /// Every pin, sorted by CID. An unreadable pin file is an error (GC must
    /// not run on a partial view of the pins).
    pub async fn pins(&self) -> Result<Vec<Pin>> {
        let dir = self.state.join("pins");
        blocking(move || {
            let mut out = Vec::new();
            let rd = std::fs::read_dir(&dir).map_err(|e| io_err("list pins", &dir, e))?;
            for entry in rd {
                let entry = entry.map_err(|e| io_err("list pins", &dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(hex) = name.strip_suffix(".json") else {
                    continue;
                };
                if name.starts_with('.') {
                    continue; // a temporary file of an atomic write
                }
                let path = entry.path();
                let corrupted = |msg: String| {
                    Error::new(ErrorKind::Corrupted, msg)
                        .with_context("path", path.display().to_string())
                };
                let text = std::fs::read(&path).map_err(|e| io_err("read a pin", &path, e))?;
                let pin: Pin = serde_json::from_slice(&text)
                    .map_err(|e| corrupted(format!("malformed pin file: {e}")))?;
                let named = parse_hex32("pin", hex)
                    .map(|b| Cid::from_digest(Blake3Digest::from_bytes(b)))
                    .map_err(|_| corrupted("pin file name is not a CID".into()))?;
                if named != pin.cid {
                    return Err(corrupted(format!(
                        "pin file names {named} but holds {}",
                        pin.cid
                    )));
                }
                out.push(pin);
            }
            out.sort_by_key(|p| p.cid);
            Ok(out)
        })
        .await
    }

    /// Deletes every blob no pin reaches, and temporary files of dead
    /// writers. Waits for pushes in flight (on this machine) to finish, and
    /// refuses to run when a pinned tree is damaged (run [`Svdb::verify`]).
    pub async fn gc(&self) -> Result<GcReport> {
        let _lock = lock(self.lock_path(), true).await?;
        let pins = self.pins().await?;
        let roots: Vec<Cid> = pins.iter().map(|p| p.cid).collect();
        let walk = self.walk(&roots, false).await?;
        if let Some(p) = walk.problems.first() {
            return Err(Error::new(
                ErrorKind::Corrupted,
                format!(
                    "refusing to collect garbage: a pinned tree is damaged ({})",
                    p.detail
                ),
            )
            .with_context("cid", p.cid.to_string()));
        }
        let keep: HashSet<Cid> = walk
            .manifests
            .iter()
            .copied()
            .chain(walk.chunks.keys().copied())
            .collect();
        let all = self.backend.list().await?;
        let doomed: Vec<Cid> = all.iter().filter(|c| !keep.contains(c)).copied().collect();
        let deleted = doomed.len();
        stream::iter(doomed)
            .map(|c| async move { self.backend.delete(&c).await })
            .buffer_unordered(self.concurrency * 2)
            .try_collect::<Vec<()>>()
            .await?;
        let mut temp_files_removed = 0;
        if let Some(local) = self.backend.local() {
            let local = local.clone();
            temp_files_removed = blocking(move || {
                let stale = local.stale_temp_files()?;
                let mut n = 0;
                for p in stale {
                    if std::fs::remove_file(&p).is_ok() {
                        n += 1;
                    }
                }
                Ok(n)
            })
            .await?;
        }
        Ok(GcReport {
            pins: pins.len(),
            kept: all.len() - deleted,
            deleted,
            temp_files_removed,
        })
    }

    /// Re-hashes every stored blob and walks every pinned tree: reports
    /// corrupted blobs, missing chunks or manifests, and malformed manifests.
    /// An `Err` means the check itself could not run (backend unreachable).
    pub async fn verify(&self) -> Result<VerifyReport> {
        let all = self.backend.list().await?;
        // Only lengths are kept: the whole store need not fit in memory.
        let checked: Vec<(Cid, Result<usize>)> = stream::iter(all)
            .map(|c| async move { (c, self.backend.get(&c).await.map(|b| b.len())) })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut report = VerifyReport {
            blobs: 0,
            bytes: 0,
            pins: 0,
            problems: Vec::new(),
            stale_temp_files: 0,
        };
        let mut present = HashSet::new();
        let mut bad = HashSet::new();
        for (cid, r) in checked {
            match r {
                Ok(len) => {
                    report.blobs += 1;
                    report.bytes += len as u64;
                    present.insert(cid);
                }
                // Deleted by a concurrent GC between list and get.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) if e.kind() == ErrorKind::Corrupted => {
                    report.blobs += 1;
                    bad.insert(cid);
                    report.problems.push(Problem {
                        cid,
                        kind: ProblemKind::Corrupted,
                        referenced_by: None,
                        detail: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let pins = self.pins().await?;
        report.pins = pins.len();
        let roots: Vec<Cid> = pins.iter().map(|p| p.cid).collect();
        let walk = self.walk(&roots, false).await?;
        // Corrupted blobs are already reported once.
        report.problems.extend(
            walk.problems
                .into_iter()
                .filter(|p| !(p.kind == ProblemKind::Corrupted && bad.contains(&p.cid))),
        );
        let unknown: Vec<(Cid, Cid)> = walk
            .chunks
            .into_iter()
            .filter(|(c, _)| !present.contains(c) && !bad.contains(c))
            .collect();
        let missing: Vec<(Cid, Cid)> = stream::iter(unknown)
            .map(|(c, m)| async move { self.backend.has(&c).await.map(|h| (c, m, h)) })
            .buffer_unordered(self.concurrency * 2)
            .try_filter_map(|(c, m, has)| std::future::ready(Ok((!has).then_some((c, m)))))
            .try_collect()
            .await?;
        for (c, m) in missing {
            report.problems.push(Problem {
                cid: c,
                kind: ProblemKind::Missing,
                referenced_by: Some(m),
                detail: "a file manifest references a chunk that is not stored".into(),
            });
        }
        if let Some(local) = self.backend.local() {
            let local = local.clone();
            report.stale_temp_files = blocking(move || local.stale_temp_files()).await?.len();
        }
        report.problems.sort_by_key(|p| p.cid);
        Ok(report)
    }
}

/// A manifest that contradicts its parent or itself.
pub(super) fn inconsistent(cid: &Cid, path: &str, msg: String) -> Error {
    let mut e = Error::new(
        ErrorKind::InvalidInput,
        format!("inconsistent manifest: {msg}"),
    )
    .with_context("cid", cid.to_string());
    if !path.is_empty() {
        e = e.with_context("path", path.to_string());
    }
    e
}
