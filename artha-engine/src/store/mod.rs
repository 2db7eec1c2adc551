//! The SVDB: content-addressed storage for datasets, models and checkpoints.
//!
//! Two layers:
//!
//! 1. **Blob backends** implementing [`artha_core::BlobStore`] (whole,
//!    immutable blobs named by their BLAKE3 [`artha_core::Cid`]):
//!    [`LocalBlobStore`] (files under `<home>/store`, the embedded default)
//!    and, with feature `s3`, `S3BlobStore` (any S3-compatible bucket via
//!    `object_store`). Both verify every read and never expose a partial
//!    blob.
//! 2. **[`Svdb`]**, generic over a backend: files are cut into fixed-size
//!    chunks (default [`DEFAULT_CHUNK_SIZE`], 4 MiB), each chunk a blob;
//!    a [file manifest](manifest::FileManifest) lists a file's chunks and a
//!    [directory manifest](manifest::DirManifest) lists names, modes, sizes
//!    and child CIDs. The BLAKE3 of the root manifest is the CID of
//!    `artha://<cid>`. On top: [`Svdb::push_path`] (dedup: content already
//!    stored is not written again, and the report says how many bytes were),
//!    [`Svdb::get`], [`Svdb::ls`], [`Svdb::materialize`] (read-only tree for
//!    a job, hard links from verified local blobs), pins with deal metadata
//!    ([`Deal`]: replicas, months, owner), [`Svdb::gc`] and [`Svdb::verify`].
//!
//! ## Why 4 MiB chunks
//!
//! Each chunk costs one blob write (create, write, fsync and rename of a
//! file, or one S3 PUT) and one manifest line. At 4 MiB a 1 GiB file is 256
//! blobs; at 1 MiB it is 1 024 fsyncs, and the measured ingest rate of a
//! 1 GiB file on our 2-core CI machine was 0.6–0.8× the 4 MiB rate (2 MiB in
//! between; `docs/BENCHMARKS.md`, "Storage", `bash bench/store.sh`). Ingest
//! runs at the speed of a durable copy of the same bytes (`dd
//! conv=fdatasync`): hashing (per chunk, on as many blocking threads as
//! there are chunks in flight, twice the cores by default) is hidden behind
//! the disk. Dedup granularity is coarser than with 1 MiB chunks, but what
//! we dedup (re-pushed datasets, unchanged checkpoint shards, identical files
//! across trees) repeats as whole files, and small files are one chunk at
//! any size. The chunk size is recorded per file manifest, so a store may
//! hold files cut at different sizes ([`Svdb::with_chunk_size`], 64 KiB to
//! 16 MiB).
//!
//! ## Consistency
//!
//! A push writes chunks (each fsynced before it is renamed into place), then
//! manifests, then fsyncs the directories holding them, then writes its pin
//! atomically. A crash at any point leaves complete blobs only (some possibly
//! unreferenced, and temporary files, for GC to remove) and never a pin
//! pointing at something missing; `kill -9` during pushes is tested.
//! Pushes hold a shared lock on `<state>/store.lock` and GC an exclusive one,
//! so GC never deletes the chunks of a push in flight in any process on this
//! machine. Pins live under `<state>/pins/` (one atomic file per pinned CID),
//! also for the S3 backend.
//!
//! ## Bad input
//!
//! Paths in manifests and URIs are single checked segments (no `..`, `/`,
//! `\`, NUL, empty); symlinks must be relative and stay inside the tree
//! (leading `..` only, never above the tree being read or pushed); special
//! files are refused. Unknown CIDs and missing chunks are `NotFound`, bytes
//! that do not match their CID are `Corrupted`, a full disk is
//! `ResourceExhausted`; each error names the CID and path involved, and
//! output is written under a temporary name and renamed into place only
//! when complete.
//!
//! Manifests a peer wrote are hostile too: a few small directory manifests
//! that name the same sub-directory many times can describe millions of
//! files. Reads count as they walk and refuse, with an `InvalidInput` error
//! whose context names the `limit`, its `max`, the `cid` and the `uri`, a
//! tree past [`TreeLimits`] (entries, file bytes and path bytes, counted as
//! laid out), [`MAX_DEPTH`](manifest::MAX_DEPTH) levels, or a directory of
//! more than [`MAX_DIR_ENTRIES`](manifest::MAX_DIR_ENTRIES) entries, before
//! allocating for what lies past the limit and before anything is written
//! at the destination. [`Svdb::ls`] reads one manifest per path segment and
//! never expands; pin, GC and verify visit each distinct manifest once, and
//! [`Svdb::pin`] refuses a tree past the limits.

mod ingest;
mod local;
pub mod manifest;
mod output;
#[cfg(feature = "s3")]
mod s3;
mod svdb;
pub(crate) mod util;

pub use local::LocalBlobStore;
pub use manifest::{DirEntry, DirManifest, EntryKind, FileManifest, Manifest, Node, TreeLimits};
pub use output::{LayoutReport, remove_tree};
#[cfg(feature = "s3")]
pub use s3::{S3BlobStore, S3Config};
pub use svdb::{
    DEFAULT_CHUNK_SIZE, Deal, GcReport, Listing, Pin, Problem, ProblemKind, Progress, PushOptions,
    PushReport, Svdb, VerifyReport,
};

use artha_core::{BlobStore, Cid, Result};

/// A [`BlobStore`] the [`Svdb`] can use, with optional capabilities.
///
/// Implement it (the defaults are fine) for a custom backend:
/// `impl StoreBackend for MyStore {}`.
pub trait StoreBackend: BlobStore {
    /// The local filesystem view of this backend, if it is one: lets the
    /// SVDB hash and write in one step and hard-link blobs when
    /// materializing.
    fn local(&self) -> Option<&LocalBlobStore> {
        None
    }
}

impl StoreBackend for LocalBlobStore {
    fn local(&self) -> Option<&LocalBlobStore> {
        Some(self)
    }
}

#[cfg(feature = "s3")]
impl StoreBackend for S3BlobStore {}

impl<T: StoreBackend + ?Sized> StoreBackend for std::sync::Arc<T> {
    fn local(&self) -> Option<&LocalBlobStore> {
        (**self).local()
    }
}

/// Any [`BlobStore`] trait object as a [`StoreBackend`] (with no local
/// fast paths).
pub struct DynBlobStore(pub std::sync::Arc<dyn BlobStore>);

impl std::fmt::Debug for DynBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynBlobStore")
    }
}

#[async_trait::async_trait]
impl BlobStore for DynBlobStore {
    async fn put(&self, data: Vec<u8>) -> Result<Cid> {
        self.0.put(data).await
    }
    async fn get(&self, cid: &Cid) -> Result<Vec<u8>> {
        self.0.get(cid).await
    }
    async fn has(&self, cid: &Cid) -> Result<bool> {
        self.0.has(cid).await
    }
    async fn delete(&self, cid: &Cid) -> Result<()> {
        self.0.delete(cid).await
    }
    async fn list(&self) -> Result<Vec<Cid>> {
        self.0.list().await
    }
}

impl StoreBackend for DynBlobStore {}
