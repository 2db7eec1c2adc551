//! File and directory manifests and their canonical encoding.
//!
//! A manifest is a blob like any other; its BLAKE3 is the [`Cid`] behind an
//! `artha://` URI. The encoding is JSON with a fixed shape so that the same
//! tree always hashes the same, in any language:
//!
//! - UTF-8, no whitespace, keys in the order shown below, no other keys;
//! - integers in decimal, strings escaped as `serde_json` (and Python's
//!   `json.dumps(..., separators=(",", ":"), ensure_ascii=False)`) does;
//! - directory entries sorted by name (byte order), names unique.
//!
//! ```text
//! {"type":"artha.file.v1","size":5242881,"chunk_size":4194304,"chunks":["b3:…","b3:…"]}
//! {"type":"artha.dir.v1","entries":[
//!   {"name":"bin","kind":"file","mode":"755","size":10,"cid":"b3:…"},
//!   {"name":"data","kind":"dir","size":5242881,"cid":"b3:…"},
//!   {"name":"latest","kind":"symlink","size":4,"target":"data"}]}
//! ```
//!
//! A file manifest lists the CIDs of the file's fixed-size chunks (every
//! chunk is `chunk_size` bytes except the last, which is 1 to `chunk_size`
//! bytes; an empty file has no chunks). It holds content only, so equal
//! files have equal CIDs whatever their names. A directory entry carries the
//! name, the kind, the mode (`644` or `755`: only the executable bit is kept,
//! as git does, so the CID does not depend on a umask), the size (a file's
//! length, a directory's total file bytes, a symlink target's length) and
//! the child's CID (or the symlink's target).
//!
//! Decoding is strict: anything that does not re-encode to the same bytes
//! is rejected, as are names that are not one valid path segment (`..`,
//! `/`, `\`, NUL, empty), unsorted or duplicate names, and file manifests
//! whose chunk count does not match their size.

use std::fmt;

use artha_core::uri::validate_path;
use artha_core::{Cid, Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

/// Smallest chunk size a store accepts (64 KiB).
pub const MIN_CHUNK_SIZE: u32 = 64 * 1024;
/// Largest chunk size a store accepts (16 MiB).
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Largest manifest accepted when decoding (64 MiB: a file manifest of about
/// 900 000 chunks, or a directory of about 500 000 entries).
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024 * 1024;
/// Deepest directory nesting accepted when pushing or reading a tree.
pub const MAX_DEPTH: usize = 128;
/// Longest symlink target accepted.
pub const MAX_TARGET_LEN: usize = 4096;

// ------------------------------------------------------------------ limits
//
// Everything a peer could have written into a store (manifests, blobs) is
// hostile input. A directory manifest is small, but it may name the same
// sub-directory manifest many times, and that one many times again: five
// manifests under 20 KB can describe millions of files. Reading a tree
// therefore counts what it has seen while it walks, level by level, and
// stops as soon as a running count passes one of the limits below, before
// it allocates anything for the entries past the limit. A refused tree is
// an `InvalidInput` error (the stored data is malformed for this reader,
// not damaged: its blobs hash correctly) with context `limit` (the name of
// the limit), `max` (its value), `cid` (the manifest at which the count
// went over), and `uri` and `path` where known. The walks of pin, GC and
// verify visit each distinct manifest once, so shared sub-trees cost
// nothing there; a pin also checks the expanded totals of its tree (computed
// per distinct manifest, never by expanding).

/// Most entries one directory manifest may list (200 000).
///
/// Checked while a manifest is decoded (the entries past it are not
/// parsed) and when one is built, so a larger directory can be neither
/// pushed nor read. Room for real data sets (COCO's `train2017/` holds
/// 118 287 images in one directory), and a directory of this many entries
/// is about 20 MB of manifest, well under [`MAX_MANIFEST_BYTES`]. Refused
/// with context `limit` = `max_dir_entries`.
pub const MAX_DIR_ENTRIES: usize = 200_000;

/// Default of [`TreeLimits::max_entries`]: 2 000 000 files, directories
/// and symlinks (counted with repeats) in one tree read.
///
/// Twice the suggested million so that ImageNet-1k's training set (1.28
/// million files) fits; a plan of this many entries holds a few hundred MB
/// of paths and manifests. Every entry names at most one manifest, so this
/// also bounds the manifests a read visits (fan-out).
pub const MAX_TREE_ENTRIES: u64 = 2_000_000;

/// Default of [`TreeLimits::max_bytes`]: 1 TiB of file content (logical
/// bytes, counted with repeats) in one tree read.
pub const MAX_TREE_BYTES: u64 = 1 << 40;

/// Default of [`TreeLimits::max_path_bytes`]: 256 MiB of relative paths
/// (the sum of every entry's path length inside the tree read, which is
/// what a read holds in memory). Names are up to 255 bytes and trees up to
/// [`MAX_DEPTH`] deep, so without it two million entries could need 64 GB
/// of paths; real trees average well under 128 bytes a path.
pub const MAX_TREE_PATH_BYTES: u64 = 256 << 20;

/// Limits on one tree that [`Svdb::get`](super::Svdb::get),
/// [`Svdb::materialize`](super::Svdb::materialize) and
/// [`Svdb::pin`](super::Svdb::pin) accept (set them with
/// [`Svdb::with_tree_limits`](super::Svdb::with_tree_limits)). All counts
/// are of the tree as it would be laid out: a sub-directory referenced
/// twice counts twice. Depth ([`MAX_DEPTH`]) and entries per directory
/// ([`MAX_DIR_ENTRIES`]) are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TreeLimits {
    /// Most files, directories and symlinks below the root (default
    /// [`MAX_TREE_ENTRIES`]); context `limit` = `max_entries`.
    pub max_entries: u64,
    /// Most bytes of file content (default [`MAX_TREE_BYTES`]); context
    /// `limit` = `max_bytes`.
    pub max_bytes: u64,
    /// Most bytes of relative paths, summed over every entry (default
    /// [`MAX_TREE_PATH_BYTES`]); context `limit` = `max_path_bytes`.
    pub max_path_bytes: u64,
}

impl Default for TreeLimits {
    /// [`MAX_TREE_ENTRIES`], [`MAX_TREE_BYTES`] and [`MAX_TREE_PATH_BYTES`].
    fn default() -> Self {
        TreeLimits {
            max_entries: MAX_TREE_ENTRIES,
            max_bytes: MAX_TREE_BYTES,
            max_path_bytes: MAX_TREE_PATH_BYTES,
        }
    }
}

/// The error of a tree that passes a limit: `InvalidInput` with context
/// `limit` and `max` (the caller adds `cid`, `uri`, `path`).
pub(crate) fn over_limit(limit: &'static str, max: u64, what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("refusing a tree with more than {max} {what} (limit {limit})"),
    )
    .with_context("limit", limit)
    .with_context("max", max.to_string())
}

impl TreeLimits {
    /// Checks running totals against the limits.
    pub(crate) fn check(&self, entries: u64, bytes: u64, path_bytes: u64) -> Result<()> {
        if entries > self.max_entries {
            return Err(over_limit(
                "max_entries",
                self.max_entries,
                "entries (files, directories and symlinks)",
            ));
        }
        if bytes > self.max_bytes {
            return Err(over_limit("max_bytes", self.max_bytes, "bytes of files"));
        }
        if path_bytes > self.max_path_bytes {
            return Err(over_limit(
                "max_path_bytes",
                self.max_path_bytes,
                "bytes of paths",
            ));
        }
        Ok(())
    }
}

/// Running totals of a tree being read, checked against [`TreeLimits`] as
/// each directory is counted (before its entries are expanded).
#[derive(Debug, Clone)]
pub(crate) struct TreeBudget {
    limits: TreeLimits,
    /// Entries counted so far.
    pub(crate) entries: u64,
    /// File bytes counted so far (as the directory entries declare them;
    /// each is checked against its file manifest later).
    pub(crate) bytes: u64,
    /// Path bytes counted so far.
    pub(crate) path_bytes: u64,
}

impl TreeBudget {
    /// An empty budget.
    pub(crate) fn new(limits: TreeLimits) -> Self {
        TreeBudget {
            limits,
            entries: 0,
            bytes: 0,
            path_bytes: 0,
        }
    }

    /// Counts the entries of `dir`, a directory whose own path inside the
    /// tree is `prefix_len` bytes long (0 for the root), and checks the
    /// totals. Costs nothing per entry beyond adding up its name and size.
    pub(crate) fn add_dir(&mut self, dir: &DirManifest, prefix_len: usize) -> Result<()> {
        let n = dir.entries.len() as u64;
        let sep = if prefix_len == 0 {
            0
        } else {
            prefix_len as u64 + 1
        };
        let (names, bytes) = dir.entries.iter().fold((0u64, 0u64), |(names, bytes), e| {
            let b = match e.node {
                Node::File { .. } => e.size,
                _ => 0,
            };
            (
                names.saturating_add(e.name.len() as u64),
                bytes.saturating_add(b),
            )
        });
        self.entries = self.entries.saturating_add(n);
        self.bytes = self.bytes.saturating_add(bytes);
        self.path_bytes = self
            .path_bytes
            .saturating_add(n.saturating_mul(sep))
            .saturating_add(names);
        self.limits.check(self.entries, self.bytes, self.path_bytes)
    }

    /// Counts one file of `size` bytes that is the whole read (no entry,
    /// no path).
    pub(crate) fn add_root_file(&mut self, size: u64) -> Result<()> {
        self.bytes = self.bytes.saturating_add(size);
        self.limits.check(self.entries, self.bytes, self.path_bytes)
    }
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file (its CID names a file manifest).
    File,
    /// A directory (its CID names a directory manifest).
    Dir,
    /// A symbolic link to a path inside the same tree.
    Symlink,
}

impl EntryKind {
    /// `file`, `dir` or `symlink`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a directory entry points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// A file: its file manifest and whether it is executable.
    File {
        /// CID of the file manifest.
        cid: Cid,
        /// Mode `755` rather than `644`.
        executable: bool,
    },
    /// A directory: its directory manifest.
    Dir {
        /// CID of the directory manifest.
        cid: Cid,
    },
    /// A symbolic link. The target is relative: zero or more leading `..`
    /// segments followed by plain names, and it must stay inside the tree
    /// being read (checked where the tree is laid out).
    Symlink {
        /// The link's target.
        target: String,
    },
}

/// One entry of a directory manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawEntry", into = "RawEntry")]
pub struct DirEntry {
    /// The name: one path segment.
    pub name: String,
    /// File length, total file bytes of a directory, or symlink target length.
    pub size: u64,
    /// What it is.
    pub node: Node,
}

impl DirEntry {
    /// The entry's kind.
    pub fn kind(&self) -> EntryKind {
        match self.node {
            Node::File { .. } => EntryKind::File,
            Node::Dir { .. } => EntryKind::Dir,
            Node::Symlink { .. } => EntryKind::Symlink,
        }
    }

    /// The child's CID (none for a symlink).
    pub fn cid(&self) -> Option<&Cid> {
        match &self.node {
            Node::File { cid, .. } | Node::Dir { cid } => Some(cid),
            Node::Symlink { .. } => None,
        }
    }

    /// Unix permission bits a plain copy gets: `0o755`, `0o644`, or `0o777`
    /// for a symlink.
    pub fn mode(&self) -> u32 {
        match self.node {
            Node::File {
                executable: true, ..
            } => 0o755,
            Node::File { .. } => 0o644,
            Node::Dir { .. } => 0o755,
            Node::Symlink { .. } => 0o777,
        }
    }
}

/// The wire form of a [`DirEntry`]; field order is the canonical key order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    kind: EntryKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cid: Option<Cid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

impl From<DirEntry> for RawEntry {
    fn from(e: DirEntry) -> Self {
        let (kind, mode, cid, target) = match e.node {
            Node::File { cid, executable } => (
                EntryKind::File,
                Some(if executable { "755" } else { "644" }.to_string()),
                Some(cid),
                None,
            ),
            Node::Dir { cid } => (EntryKind::Dir, None, Some(cid), None),
            Node::Symlink { target } => (EntryKind::Symlink, None, None, Some(target)),
        };
        RawEntry {
            name: e.name,
            kind,
            mode,
            size: e.size,
            cid,
            target,
        }
    }
}

impl TryFrom<RawEntry> for DirEntry {
    type Error = String;
    fn try_from(r: RawEntry) -> std::result::Result<Self, String> {
        check_name(&r.name).map_err(|e| e.message().to_string())?;
        let node = match (r.kind, r.mode.as_deref(), r.cid, r.target) {
            (EntryKind::File, Some(m), Some(cid), None) => Node::File {
                cid,
                executable: match m {
                    "644" => false,
                    "755" => true,
                    other => {
                        return Err(format!(
                            "entry {:?}: mode must be \"644\" or \"755\", not {other:?}",
                            r.name
                        ));
                    }
                },
            },
            (EntryKind::Dir, None, Some(cid), None) => Node::Dir { cid },
            (EntryKind::Symlink, None, None, Some(target)) => {
                check_target_shape(&target).map_err(|m| format!("entry {:?}: {m}", r.name))?;
                if r.size != target.len() as u64 {
                    return Err(format!(
                        "entry {:?}: a symlink's size must be its target's length",
                        r.name
                    ));
                }
                Node::Symlink { target }
            }
            (kind, ..) => {
                return Err(format!(
                    "entry {:?}: a {kind} entry has exactly the fields of its kind \
                     (file: mode, cid; dir: cid; symlink: target)",
                    r.name
                ));
            }
        };
        Ok(DirEntry {
            name: r.name,
            size: r.size,
            node,
        })
    }
}

/// A file: its size and the CIDs of its fixed-size chunks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawFile", into = "RawFile")]
pub struct FileManifest {
    /// Length in bytes.
    pub size: u64,
    /// Bytes per chunk (the last chunk may be shorter).
    pub chunk_size: u32,
    /// Chunk CIDs in file order.
    pub chunks: Vec<Cid>,
}

impl FileManifest {
    /// Length of chunk `index`.
    pub fn chunk_len(&self, index: usize) -> u64 {
        let start = index as u64 * u64::from(self.chunk_size);
        self.size
            .saturating_sub(start)
            .min(u64::from(self.chunk_size))
    }

    /// Number of chunks a file of `size` bytes has.
    pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
        size.div_ceil(u64::from(chunk_size.max(1)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    size: u64,
    chunk_size: u32,
    chunks: Vec<Cid>,
}

impl From<FileManifest> for RawFile {
    fn from(f: FileManifest) -> Self {
        RawFile {
            size: f.size,
            chunk_size: f.chunk_size,
            chunks: f.chunks,
        }
    }
}

impl TryFrom<RawFile> for FileManifest {
    type Error = String;
    fn try_from(r: RawFile) -> std::result::Result<Self, String> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&r.chunk_size) {
            return Err(format!(
                "chunk_size {} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}",
                r.chunk_size
            ));
        }
        let want = FileManifest::chunk_count(r.size, r.chunk_size);
        if r.chunks.len() as u64 != want {
            return Err(format!(
                "a file of {} bytes in chunks of {} has {want} chunks, the manifest lists {}",
                r.size,
                r.chunk_size,
                r.chunks.len()
            ));
        }
        Ok(FileManifest {
            size: r.size,
            chunk_size: r.chunk_size,
            chunks: r.chunks,
        })
    }
}

/// A directory: its entries, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawDir", into = "RawDir")]
pub struct DirManifest {
    /// Entries in byte order of their names, names unique.
    pub entries: Vec<DirEntry>,
}

impl DirManifest {
    /// Builds a manifest, sorting the entries; duplicate names are an error.
    /// More than [`MAX_DIR_ENTRIES`] entries is an `InvalidInput` error
    /// (such a directory could not be read back).
    pub fn new(mut entries: Vec<DirEntry>) -> Result<Self> {
        if entries.len() > MAX_DIR_ENTRIES {
            return Err(too_many_entries(entries.len()));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = entries.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::invalid("name", "duplicate name in a directory")
                .with_context("name", w[0].name.clone()));
        }
        Ok(DirManifest { entries })
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&DirEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Total size: the sum of the entries' sizes.
    pub fn size(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind() != EntryKind::Symlink)
            .fold(0u64, |acc, e| acc.saturating_add(e.size))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    #[serde(deserialize_with = "bounded_entries")]
    entries: Vec<DirEntry>,
}

/// Marks the decoding error of a directory over [`MAX_DIR_ENTRIES`], so
/// [`Manifest::decode`] can name the limit in the error's context.
const DIR_ENTRIES_MARKER: &str = "entries in one directory manifest (limit max_dir_entries";

fn too_many_entries(n: usize) -> Error {
    over_limit(
        "max_dir_entries",
        MAX_DIR_ENTRIES as u64,
        "entries in one directory manifest",
    )
    .with_context("entries", n.to_string())
}

/// Deserializes a directory's entries, failing at entry
/// `MAX_DIR_ENTRIES + 1` before it is parsed (the input's size already
/// bounds the work, this bounds what is built from it).
fn bounded_entries<'de, D>(d: D) -> std::result::Result<Vec<DirEntry>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<DirEntry>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of directory entries")
        }
        fn visit_seq<A>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error>
        where
            A: serde::de::SeqAccess<'de>,
        {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(e) = seq.next_element::<DirEntry>()? {
                if out.len() == MAX_DIR_ENTRIES {
                    return Err(serde::de::Error::custom(format!(
                        "refusing a directory with more than {MAX_DIR_ENTRIES} \
                         {DIR_ENTRIES_MARKER})"
                    )));
                }
                out.push(e);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V)
}

impl From<DirManifest> for RawDir {
    fn from(d: DirManifest) -> Self {
        RawDir { entries: d.entries }
    }
}

impl TryFrom<RawDir> for DirManifest {
    type Error = String;
    fn try_from(r: RawDir) -> std::result::Result<Self, String> {
        if let Some(w) = r.entries.windows(2).find(|w| w[0].name >= w[1].name) {
            return Err(if w[0].name == w[1].name {
                format!("duplicate entry {:?}", w[0].name)
            } else {
                format!(
                    "entries must be sorted by name: {:?} comes before {:?}",
                    w[0].name, w[1].name
                )
            });
        }
        Ok(DirManifest { entries: r.entries })
    }
}

/// The shape [`Manifest::decode`] parses a directory manifest into (the
/// type key is checked by the canonical re-encoding).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecodeDir {
    #[serde(rename = "type")]
    _type: serde::de::IgnoredAny,
    #[serde(deserialize_with = "bounded_entries")]
    entries: Vec<DirEntry>,
}

/// The shape [`Manifest::decode`] parses a file manifest into.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecodeFile {
    #[serde(rename = "type")]
    _type: serde::de::IgnoredAny,
    size: u64,
    chunk_size: u32,
    chunks: Vec<Cid>,
}

/// A decoded manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Manifest {
    /// A file.
    #[serde(rename = "artha.file.v1")]
    File(FileManifest),
    /// A directory.
    #[serde(rename = "artha.dir.v1")]
    Dir(DirManifest),
}

impl Manifest {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain structs to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The CID of the canonical encoding.
    pub fn cid(&self) -> Cid {
        Cid::of(&self.encode())
    }

    /// Decodes and checks a manifest read under `cid`; anything that is not
    /// a canonical manifest is an `InvalidInput` error naming the CID.
    pub fn decode(cid: &Cid, bytes: &[u8]) -> Result<Manifest> {
        let bad = |msg: String| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("not a valid manifest: {msg}"),
            )
            .with_context("cid", cid.to_string())
        };
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(bad(format!(
                "{} bytes is more than the {MAX_MANIFEST_BYTES}-byte limit",
                bytes.len()
            )));
        }
        if !bytes.starts_with(br#"{"type":"artha."#) {
            return Err(bad(
                "it does not start with {\"type\":\"artha. (a raw chunk, or not Artha data)".into(),
            ));
        }
        let parse_err = |e: serde_json::Error| {
            let msg = e.to_string();
            if msg.contains(DIR_ENTRIES_MARKER) {
                bad(msg)
                    .with_context("limit", "max_dir_entries")
                    .with_context("max", MAX_DIR_ENTRIES.to_string())
            } else {
                bad(msg)
            }
        };
        // Dispatch on the (canonical, leading) type key and parse straight
        // into the manifest's fields: serde's internally tagged enums would
        // first buffer the whole document as a generic tree, several times
        // the input's size.
        let m = if bytes.starts_with(br#"{"type":"artha.dir.v1","#) {
            let d: DecodeDir = serde_json::from_slice(bytes).map_err(parse_err)?;
            Manifest::Dir(DirManifest::try_from(RawDir { entries: d.entries }).map_err(bad)?)
        } else if bytes.starts_with(br#"{"type":"artha.file.v1","#) {
            let f: DecodeFile = serde_json::from_slice(bytes).map_err(parse_err)?;
            Manifest::File(
                FileManifest::try_from(RawFile {
                    size: f.size,
                    chunk_size: f.chunk_size,
                    chunks: f.chunks,
                })
                .map_err(bad)?,
            )
        } else {
            return Err(bad(
                "unknown manifest type (expected artha.dir.v1 or artha.file.v1)".into(),
            ));
        };
        if m.encode() != bytes {
            return Err(bad(
                "not in canonical form (whitespace, key order or escapes differ)".into(),
            ));
        }
        Ok(m)
    }
}

/// Checks that `name` is one valid path segment.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.contains('/') {
        return Err(Error::invalid("name", format!("{name:?} contains `/`")));
    }
    validate_path(name).map_err(|e| {
        Error::invalid("name", format!("{name:?}: {}", e.message())).with_context("name", name)
    })
}

/// Checks the shape of a symlink target: relative, zero or more leading
/// `..` then plain segments, no NUL, at most [`MAX_TARGET_LEN`] bytes.
/// Leading-only `..` makes the lexical containment check in
/// [`target_stays_inside`] sound even through other (contained) links.
pub(crate) fn check_target_shape(target: &str) -> std::result::Result<(), String> {
    if target.is_empty() {
        return Err("empty symlink target".into());
    }
    if target.len() > MAX_TARGET_LEN {
        return Err(format!("symlink target longer than {MAX_TARGET_LEN} bytes"));
    }
    if target.starts_with('/') {
        return Err(format!("symlink target {target:?} is absolute"));
    }
    let mut seen_name = false;
    for seg in target.split('/') {
        match seg {
            ".." if !seen_name => {}
            ".." => return Err(format!("symlink target {target:?} has `..` after a name")),
            "" | "." => {
                return Err(format!(
                    "symlink target {target:?} has an empty or `.` segment"
                ));
            }
            s if s.contains('\0') => return Err("symlink target contains NUL".into()),
            _ => seen_name = true,
        }
    }
    Ok(())
}

/// Whether a symlink at `depth` (number of directories between the tree's
/// root and the link's parent, 0 for a link in the root) with `target`
/// resolves inside the tree.
pub(crate) fn target_stays_inside(depth: usize, target: &str) -> bool {
    check_target_shape(target).is_ok()
        && target.split('/').take_while(|s| *s == "..").count() <= depth
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(name: &str, exec: bool) -> DirEntry {
        DirEntry {
            name: name.into(),
            size: 3,
            node: Node::File {
                cid: Cid::of(name.as_bytes()),
                executable: exec,
            },
        }
    }

    #[test]
    fn round_trips_and_is_canonical() {
        let d = Manifest::Dir(
            DirManifest::new(vec![
                file("b", true),
                file("a", false),
                DirEntry {
                    name: "l".into(),
                    size: 1,
                    node: Node::Symlink { target: "a".into() },
                },
            ])
            .unwrap(),
        );
        let bytes = d.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"type":"artha.dir.v1","entries":[{"name":"a","kind":"file","mode":"644","size":3,"cid":"b3:"#),
            "{text}"
        );
        assert_eq!(Manifest::decode(&Cid::of(&bytes), &bytes).unwrap(), d);
        // Whitespace, reordering and unknown keys are all rejected.
        let spaced = text.replacen(',', ", ", 1);
        assert!(Manifest::decode(&Cid::of(b"x"), spaced.as_bytes()).is_err());
        let extra = text.replacen(r#""kind":"file","#, r#""kind":"file","x":1,"#, 1);
        assert!(Manifest::decode(&Cid::of(b"x"), extra.as_bytes()).is_err());
    }

    #[test]
    fn file_manifest_checks_chunk_count() {
        let c = Cid::of(b"c");
        let ok = Manifest::File(FileManifest {
            size: (MIN_CHUNK_SIZE as u64) + 1,
            chunk_size: MIN_CHUNK_SIZE,
            chunks: vec![c, c],
        });
        let b = ok.encode();
        assert!(Manifest::decode(&c, &b).is_ok());
        let bad = String::from_utf8(b).unwrap().replacen(",\"b3:", "]}", 1);
        let bad = &bad[..bad.find("]}").unwrap() + 2];
        let e = Manifest::decode(&c, bad.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("chunks"), "{e}");
    }

    #[test]
    fn directory_entry_limit() {
        let entries: Vec<DirEntry> = (0..MAX_DIR_ENTRIES)
            .map(|i| file(&format!("f{i:07}"), false))
            .collect();
        let at_limit = Manifest::Dir(DirManifest::new(entries.clone()).unwrap()).encode();
        let c = Cid::of(&at_limit);
        match Manifest::decode(&c, &at_limit).unwrap() {
            Manifest::Dir(d) => assert_eq!(d.entries.len(), MAX_DIR_ENTRIES),
            Manifest::File(_) => unreachable!(),
        }
        // One more entry, sorted last: refused while decoding, naming the
        // limit and the CID.
        let mut text = String::from_utf8(at_limit).unwrap();
        text.truncate(text.len() - 2);
        let extra = Manifest::Dir(DirManifest::new(vec![file("z", false)]).unwrap()).encode();
        let extra = String::from_utf8(extra).unwrap();
        let one = &extra[extra.find("[{").unwrap() + 1..extra.len() - 2];
        text.push(',');
        text.push_str(one);
        text.push_str("]}");
        let e = Manifest::decode(&c, text.as_bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.context_value("limit"), Some("max_dir_entries"), "{e}");
        assert_eq!(e.context_value("cid"), Some(c.to_string().as_str()));
        // Nor can one be built (so a push cannot make one).
        let mut more = entries;
        more.push(file("z", false));
        let e = DirManifest::new(more).unwrap_err();
        assert_eq!(e.context_value("limit"), Some("max_dir_entries"), "{e}");
    }

    #[test]
    fn budget_counts_before_expanding() {
        let d = DirManifest::new(vec![
            file("ab", false),
            DirEntry {
                name: "d".into(),
                size: 7,
                node: Node::Dir { cid: Cid::of(b"d") },
            },
            DirEntry {
                name: "l".into(),
                size: 2,
                node: Node::Symlink {
                    target: "ab".into(),
                },
            },
        ])
        .unwrap();
        let limits = TreeLimits {
            max_entries: 6,
            max_bytes: 6,
            max_path_bytes: 4 + 2 * (4 + 4),
        };
        let mut b = TreeBudget::new(limits);
        b.add_dir(&d, 0).unwrap();
        // Only files count as bytes; paths are "ab", "d", "l".
        assert_eq!((b.entries, b.bytes, b.path_bytes), (3, 3, 4));
        // The same directory again at "xyz": paths "xyz/ab" and so on.
        b.add_dir(&d, 3).unwrap();
        assert_eq!((b.entries, b.bytes, b.path_bytes), (6, 6, 4 + 12 + 4));
        let e = b.clone().add_dir(&d, 0).unwrap_err();
        assert_eq!(e.context_value("limit"), Some("max_entries"));
        assert_eq!(e.context_value("max"), Some("6"));
        let e = TreeBudget::new(limits).add_root_file(7).unwrap_err();
        assert_eq!(e.context_value("limit"), Some("max_bytes"));
        let tight = TreeLimits {
            max_path_bytes: 19,
            ..limits
        };
        let mut b = TreeBudget::new(tight);
        b.add_dir(&d, 0).unwrap();
        let e = b.add_dir(&d, 3).unwrap_err();
        assert_eq!(e.context_value("limit"), Some("max_path_bytes"));
        assert_eq!(TreeLimits::default().max_entries, MAX_TREE_ENTRIES);
    }

    #[test]
    fn bad_names_and_targets() {
        for n in ["", ".", "..", "a/b", "a\0", "a\\b"] {
            assert!(check_name(n).is_err(), "{n:?}");
        }
        for t in ["/etc", "a/../b", "./a", "a//b", "", "a/"] {
            assert!(check_target_shape(t).is_err(), "{t:?}");
        }
        assert!(target_stays_inside(0, "a/b"));
        assert!(!target_stays_inside(0, "../a"));
        assert!(target_stays_inside(2, "../../a"));
        assert!(!target_stays_inside(2, "../../../a"));
    }
}
