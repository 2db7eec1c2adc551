//! The [`BlobStore`] and [`Svdb`] conformance suite.
//!
//! Every scenario is a public async function. [`blob_contract`] checks the
//! bare [`BlobStore`] contract on any `&dyn BlobStore`; the others drive an
//! [`Svdb`] over the backend under test (push, get, ls, materialize, pins,
//! GC, verify, corruption, hostile manifests, tree limits) and take a fresh
//! [`Harness`]: an empty store, a scratch directory and a way to open a
//! second handle on the same store. [`run_all`] runs them all, each on a
//! harness of its own, and [`run_scenario`] runs one by name (one test per
//! scenario, as `artha-engine/tests/store_local.rs` does).
//!
//! A scenario panics on the first check that fails; [`run_all`] and
//! [`run_scenario`] re-raise the panic with the scenario's name in front.
//!
//! [`corruption_is_detected`] damages a stored blob behind the store's back
//! through [`Tamper`], implemented here for [`LocalBlobStore`] and (feature
//! `s3`) [`S3BlobStore`](crate::store::S3BlobStore); implement it for your
//! backend.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use artha_core::{ArthaUri, BlobStore, Cid, Error, ErrorKind};

use crate::store::manifest::{
    MAX_DEPTH, MAX_DIR_ENTRIES, MAX_TREE_BYTES, MAX_TREE_ENTRIES, MAX_TREE_PATH_BYTES,
};
use crate::store::{
    Deal, EntryKind, FileManifest, LocalBlobStore, Manifest, ProblemKind, PushOptions,
    StoreBackend, Svdb, TreeLimits, remove_tree,
};

/// Chunk size the suite's stores should use (`Svdb::with_chunk_size(CS)`),
/// so multi-chunk files stay small. The scenarios count chunks with it.
pub const CS: u32 = 64 * 1024;

/// Lets a scenario damage a stored blob behind the store's back.
pub trait Tamper {
    /// Replaces the stored bytes of `cid` with `bytes`, without any check
    /// (the next `get` must then report `Corrupted`).
    fn overwrite(&self, cid: &Cid, bytes: Vec<u8>) -> impl Future<Output = ()>;
}

impl Tamper for LocalBlobStore {
    async fn overwrite(&self, cid: &Cid, data: Vec<u8>) {
        let p = self.blob_path(cid);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
            .expect("make a stored blob writable");
        std::fs::write(&p, data).expect("overwrite a stored blob");
    }
}

#[cfg(feature = "s3")]
impl Tamper for crate::store::S3BlobStore {
    async fn overwrite(&self, cid: &Cid, data: Vec<u8>) {
        use object_store::ObjectStoreExt;
        self.object_store()
            .put(&self.key(cid), data.into())
            .await
            .expect("overwrite a stored object");
    }
}

/// Opens a second handle on the store of a [`Harness`] (a restart).
pub type Reopen<B> = Box<dyn Fn() -> Svdb<B> + Send + Sync>;

/// A fresh, empty store plus a scratch directory for inputs and outputs.
pub struct Harness<B> {
    /// The store under test, empty, with chunk size [`CS`].
    pub svdb: Svdb<B>,
    /// Scratch space: sources, outputs, job directories.
    pub tmp: tempfile::TempDir,
    /// Whether `materialize` is expected to hard-link (a backend whose
    /// [`StoreBackend::local`] is `Some`).
    pub links: bool,
    /// Opens a second handle on the same store (same blobs, same pin
    /// state), as a restarted engine would.
    pub reopen: Reopen<B>,
}

impl<B> std::fmt::Debug for Harness<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("tmp", &self.tmp.path())
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl<B> Harness<B> {
    /// A path under the scratch directory.
    pub fn work(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// Every scenario of the suite, in the order [`run_all`] runs them.
pub const SCENARIOS: &[&str] = &[
    "blob_contract",
    "file_round_trip",
    "tree_round_trip_and_dedup",
    "materialize_read_only",
    "corruption_is_detected",
    "missing_content_is_reported",
    "traversal_is_refused",
    "pins_and_gc",
    "verify_clean",
    "concurrent_tasks",
    "push_errors",
    "manifest_bomb_is_refused",
    "oversized_directory_is_refused",
    "tree_limits_are_exact",
];

/// Runs the scenario called `name` (one of [`SCENARIOS`]) on `h`.
///
/// # Panics
/// When a check fails (the message starts with the scenario's name), or
/// when `name` is not a scenario.
pub async fn run_scenario<B: StoreBackend + Tamper>(name: &str, h: Harness<B>) {
    let fut = async move {
        match name {
            "blob_contract" => blob_contract(h.svdb.backend()).await,
            "file_round_trip" => file_round_trip(h).await,
            "tree_round_trip_and_dedup" => tree_round_trip_and_dedup(h).await,
            "materialize_read_only" => materialize_read_only(h).await,
            "corruption_is_detected" => corruption_is_detected(h).await,
            "missing_content_is_reported" => missing_content_is_reported(h).await,
            "traversal_is_refused" => traversal_is_refused(h).await,
            "pins_and_gc" => pins_and_gc(h).await,
            "verify_clean" => verify_clean(h).await,
            "concurrent_tasks" => concurrent_tasks(h).await,
            "push_errors" => push_errors(h).await,
            "manifest_bomb_is_refused" => manifest_bomb_is_refused(h).await,
            "oversized_directory_is_refused" => oversized_directory_is_refused(h).await,
            "tree_limits_are_exact" => tree_limits_are_exact(h).await,
            other => panic!("no store scenario `{other}` (see SCENARIOS)"),
        }
    };
    super::scenario("store", name, fut).await;
}

/// Runs every scenario of [`SCENARIOS`], each on a fresh harness from
/// `make`, one after the other.
///
/// # Panics
/// On the first failing scenario, naming it.
pub async fn run_all<B, F, Fut>(mut make: F)
where
    B: StoreBackend + Tamper,
    F: FnMut() -> Fut,
    Fut: Future<Output = Harness<B>>,
{
    for name in SCENARIOS {
        run_scenario(name, make().await).await;
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every value of context `key` in `e`.
pub fn ctx<'a>(e: &'a Error, key: &str) -> Vec<&'a str> {
    e.context()
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn exec(p: &Path, text: &str) {
    std::fs::write(p, text).expect("write failed");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
        .expect("set_permissions failed");
}

/// A small tree with every kind of entry: nested directories, an empty
/// directory, an empty file, an executable, a multi-chunk file and a copy
/// of it, and two symlinks that stay inside.
pub fn make_tree(root: &Path, seed: u64) {
    std::fs::create_dir_all(root.join("bin")).expect("create_dir_all failed");
    std::fs::create_dir_all(root.join("data")).expect("create_dir_all failed");
    std::fs::create_dir_all(root.join("nested/x/y/z")).expect("create_dir_all failed");
    std::fs::create_dir_all(root.join("emptydir")).expect("create_dir_all failed");
    std::fs::write(root.join("a.txt"), format!("hello {seed}\n")).expect("write failed");
    exec(&root.join("bin/run.sh"), "#!/bin/sh\necho hi\n");
    let big = bytes(seed, 3 * CS as usize + 123);
    std::fs::write(root.join("data/big.bin"), &big).expect("write failed");
    std::fs::write(root.join("data/copy.bin"), &big).expect("write failed");
    std::fs::write(root.join("data/empty"), b"").expect("write failed");
    std::fs::write(root.join("nested/x/y/z/deep.txt"), b"deep").expect("write failed");
    std::os::unix::fs::symlink("a.txt", root.join("link")).expect("symlink failed");
    std::os::unix::fs::symlink("../a.txt", root.join("data/up")).expect("symlink failed");
}

/// Asserts two trees have the same names, kinds, contents, executable bits
/// and symlink targets.
pub fn assert_same_tree(a: &Path, b: &Path) {
    fn list(d: &Path) -> BTreeMap<String, PathBuf> {
        std::fs::read_dir(d)
            .expect("read_dir failed")
            .map(|e| {
                let e = e.expect("read a directory entry");
                (
                    e.file_name().into_string().expect("a UTF-8 file name"),
                    e.path(),
                )
            })
            .collect()
    }
    let (la, lb) = (list(a), list(b));
    assert_eq!(
        la.keys().collect::<Vec<_>>(),
        lb.keys().collect::<Vec<_>>(),
        "{} vs {}",
        a.display(),
        b.display()
    );
    for (name, pa) in la {
        let pb = &lb[&name];
        let (ma, mb) = (
            std::fs::symlink_metadata(&pa).expect("symlink_metadata failed"),
            std::fs::symlink_metadata(pb).expect("symlink_metadata failed"),
        );
        assert_eq!(ma.file_type(), mb.file_type(), "{name}");
        if ma.is_dir() {
            assert_same_tree(&pa, pb);
        } else if ma.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&pa).expect("read_link failed"),
                std::fs::read_link(pb).expect("read_link failed")
            );
        } else {
            assert_eq!(
                std::fs::read(&pa).expect("read failed"),
                std::fs::read(pb).expect("read failed"),
                "{name}"
            );
            assert_eq!(ma.mode() & 0o100, mb.mode() & 0o100, "exec bit of {name}");
        }
    }
}

fn no_staging_left(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read_dir failed") {
        let n = e
            .expect("read a directory entry")
            .file_name()
            .into_string()
            .expect("a UTF-8 file name");
        assert!(!n.ends_with(".partial"), "staging output left behind: {n}");
    }
}

fn unpinned() -> PushOptions {
    PushOptions {
        pin: None,
        progress: None,
    }
}

// ------------------------------------------------------------------ checks

/// The [`BlobStore`] contract itself, on an empty store: `put` returns the
/// content's CID and is idempotent, `get` returns exactly the bytes (the
/// empty blob too), `has` and `list` see what is stored, an unknown CID is
/// `NotFound` naming it, and `delete` is idempotent.
pub async fn blob_contract(b: &dyn BlobStore) {
    let data = bytes(1, 1000);
    let cid = b.put(data.clone()).await.expect("put failed");
    assert_eq!(cid, Cid::of(&data));
    assert_eq!(
        b.put(data.clone()).await.expect("put failed"),
        cid,
        "second put"
    );
    assert_eq!(b.get(&cid).await.expect("get failed"), data);
    assert!(b.has(&cid).await.expect("has failed"));
    let empty = b.put(Vec::new()).await.expect("put failed");
    assert_eq!(b.get(&empty).await.expect("get failed"), Vec::<u8>::new());
    let mut listed = b.list().await.expect("list failed");
    listed.sort();
    let mut want = vec![cid, empty];
    want.sort();
    assert_eq!(listed, want);
    let unknown = Cid::of(b"never stored");
    let e = b.get(&unknown).await.expect_err("get should fail");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context_value("cid"), Some(unknown.to_string().as_str()));
    assert!(!b.has(&unknown).await.expect("has failed"));
    b.delete(&cid).await.expect("delete failed");
    b.delete(&cid).await.expect("delete failed"); // idempotent
    assert!(!b.has(&cid).await.expect("has failed"));
    assert_eq!(
        b.get(&cid).await.expect_err("get should fail").kind(),
        ErrorKind::NotFound
    );
}

/// Single files of every size class round-trip; a second push writes
/// nothing.
pub async fn file_round_trip<B: StoreBackend>(h: Harness<B>) {
    let cs = CS as usize;
    for (i, size) in [0, 1, cs - 1, cs, cs + 1, 3 * cs + 17]
        .into_iter()
        .enumerate()
    {
        let src = h.work(&format!("f{i}"));
        let data = bytes(i as u64 + 10, size);
        std::fs::write(&src, &data).expect("write failed");
        let r = h
            .svdb
            .push_path(&src, &PushOptions::default())
            .await
            .expect("push_path failed");
        assert_eq!(r.kind, EntryKind::File);
        assert_eq!((r.size, r.files, r.dirs), (size as u64, 1, 0));
        assert_eq!(r.chunks, (size as u64).div_ceil(cs as u64), "size {size}");
        assert!(r.bytes_written >= size as u64, "{r:?}");
        assert_eq!(r.blobs_written, r.chunks + 1, "chunks + manifest: {r:?}");
        assert_eq!(r.uri.to_string(), format!("artha://{}", r.cid));
        let again = h
            .svdb
            .push_path(&src, &PushOptions::default())
            .await
            .expect("push_path failed");
        assert_eq!(again.cid, r.cid);
        assert_eq!(
            (again.bytes_written, again.blobs_written),
            (0, 0),
            "re-push of {size}"
        );
        let out = h.work(&format!("out{i}"));
        let got = h.svdb.get(&r.uri, &out).await.expect("get failed");
        assert_eq!(
            (got.kind, got.bytes, got.files),
            (EntryKind::File, size as u64, 1)
        );
        assert_eq!(std::fs::read(&out).expect("read failed"), data);
        let ls = h.svdb.ls(&r.uri).await.expect("ls failed");
        assert_eq!(
            (ls.kind, ls.size, ls.cid),
            (EntryKind::File, size as u64, Some(r.cid))
        );
        // The root blob is a canonical file manifest.
        let m = h.svdb.backend().get(&r.cid).await.expect("get failed");
        match Manifest::decode(&r.cid, &m).expect("decode failed") {
            Manifest::File(FileManifest {
                size: s,
                chunk_size,
                chunks,
            }) => {
                assert_eq!(
                    (s, chunk_size, chunks.len() as u64),
                    (size as u64, CS, r.chunks)
                );
            }
            Manifest::Dir(_) => panic!("a file pushed as a directory"),
        }
    }
}

/// A tree with every entry kind round-trips through get, ls works on the
/// root and on sub-paths, dedup holds inside the tree and across pushes,
/// and a one-byte change rewrites only what it must.
pub async fn tree_round_trip_and_dedup<B: StoreBackend>(h: Harness<B>) {
    let src = h.work("tree");
    make_tree(&src, 7);
    let r = h
        .svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    assert_eq!(r.kind, EntryKind::Dir);
    assert_eq!(r.files, 6);
    assert_eq!(
        r.dirs, 8,
        "root, bin, data, emptydir, nested, x, y, z: {r:?}"
    );
    let big = 3 * CS as u64 + 123;
    assert_eq!(
        r.chunks,
        4 + 4 + 3,
        "big + copy (4 each) + 3 one-chunk files"
    );
    // copy.bin dedups against big.bin: its 4 chunks are not written twice.
    let logical = r.size;
    assert!(r.bytes_written < logical, "{r:?}");
    assert!(r.bytes_written > big, "{r:?}");

    let again = h
        .svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    assert_eq!(again.cid, r.cid);
    assert_eq!((again.bytes_written, again.blobs_written), (0, 0));

    let out = h.work("out");
    let got = h.svdb.get(&r.uri, &out).await.expect("get failed");
    assert_eq!((got.files, got.symlinks, got.bytes), (6, 2, logical));
    assert_same_tree(&src, &out);
    assert!(
        std::fs::read_dir(out.join("emptydir"))
            .expect("read_dir failed")
            .next()
            .is_none()
    );

    let ls = h.svdb.ls(&r.uri).await.expect("ls failed");
    let names: Vec<_> = ls
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind()))
        .collect();
    assert_eq!(
        names,
        [
            ("a.txt", EntryKind::File),
            ("bin", EntryKind::Dir),
            ("data", EntryKind::Dir),
            ("emptydir", EntryKind::Dir),
            ("link", EntryKind::Symlink),
            ("nested", EntryKind::Dir),
        ]
    );
    let bin = ls
        .entries
        .iter()
        .find(|e| e.name == "bin")
        .expect("ls lists `bin`");
    assert_eq!(bin.size, 18);
    let data = h
        .svdb
        .ls(&ArthaUri::with_path(r.cid, "data").expect("with_path failed"))
        .await
        .expect("ls failed");
    assert_eq!(data.size, 2 * big);
    let run = h
        .svdb
        .ls(&ArthaUri::with_path(r.cid, "bin/run.sh").expect("with_path failed"))
        .await
        .expect("ls failed");
    assert!(run.executable && run.kind == EntryKind::File);
    let link = h
        .svdb
        .ls(&ArthaUri::with_path(r.cid, "link").expect("with_path failed"))
        .await
        .expect("ls failed");
    assert_eq!(link.target.as_deref(), Some("a.txt"));

    // Sub-paths: one file, one directory.
    let deep = h.work("deep.txt");
    h.svdb
        .get(
            &ArthaUri::with_path(r.cid, "nested/x/y/z/deep.txt").expect("with_path failed"),
            &deep,
        )
        .await
        .expect("get failed");
    assert_eq!(std::fs::read(&deep).expect("read failed"), b"deep");
    let sub = h.work("nested");
    h.svdb
        .get(
            &ArthaUri::with_path(r.cid, "nested").expect("with_path failed"),
            &sub,
        )
        .await
        .expect("get failed");
    assert_same_tree(&src.join("nested"), &sub);
    // A missing path and a path through a file.
    let e = h
        .svdb
        .ls(&ArthaUri::with_path(r.cid, "data/nope").expect("with_path failed"))
        .await
        .expect_err("ls should fail");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context_value("path"), Some("data/nope"));
    let e = h
        .svdb
        .ls(&ArthaUri::with_path(r.cid, "a.txt/x").expect("with_path failed"))
        .await
        .expect_err("ls should fail");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    // get never overwrites.
    let e = h.svdb.get(&r.uri, &out).await.expect_err("get should fail");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);

    // Change one byte of one chunk of big.bin: one chunk, its file manifest
    // and the two directory manifests above it are new.
    let mut content = std::fs::read(src.join("data/big.bin")).expect("read failed");
    content[CS as usize + 5] ^= 0xff;
    std::fs::write(src.join("data/big.bin"), &content).expect("write failed");
    let changed = h
        .svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    assert_ne!(changed.cid, r.cid);
    assert_eq!(changed.blobs_written, 4, "{changed:?}");
    assert!(changed.bytes_written > u64::from(CS));
    assert!(changed.bytes_written < 2 * u64::from(CS));
}

/// materialize lays out a read-only tree (hard links on the local backend),
/// and remove_tree deletes it.
pub async fn materialize_read_only<B: StoreBackend>(h: Harness<B>) {
    let src = h.work("tree");
    make_tree(&src, 8);
    let r = h
        .svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    let dir = h.work("job-data");
    let m = h
        .svdb
        .materialize(&r.uri, &dir)
        .await
        .expect("materialize failed");
    assert_same_tree(&src, &dir);
    assert_eq!(m.files, 6);
    assert_eq!(m.linked + m.copied, 6);
    if h.links {
        // a.txt, deep.txt: one chunk and not executable.
        assert_eq!(m.linked, 2, "{m:?}");
        let a = std::fs::metadata(dir.join("a.txt")).expect("metadata failed");
        assert!(a.nlink() >= 2, "a.txt should be a hard link");
    } else {
        assert_eq!(m.linked, 0);
    }
    fn check_ro(p: &Path) {
        let md = std::fs::symlink_metadata(p).expect("symlink_metadata failed");
        if md.file_type().is_symlink() {
            return;
        }
        assert_eq!(md.mode() & 0o222, 0, "{} is writable", p.display());
        if md.is_dir() {
            assert_eq!(md.mode() & 0o777, 0o555, "{}", p.display());
            for e in std::fs::read_dir(p).expect("read_dir failed") {
                check_ro(&e.expect("read a directory entry").path());
            }
        }
    }
    check_ro(&dir);
    let exe = std::fs::metadata(dir.join("bin/run.sh")).expect("metadata failed");
    assert_eq!(exe.mode() & 0o777, 0o555);
    // A single file materializes too.
    let one = h.work("one.txt");
    let f = h
        .svdb
        .materialize(
            &ArthaUri::with_path(r.cid, "a.txt").expect("with_path failed"),
            &one,
        )
        .await
        .expect("materialize failed");
    assert_eq!(f.kind, EntryKind::File);
    assert_eq!(std::fs::read(&one).expect("read failed"), b"hello 8\n");
    remove_tree(&dir).expect("remove_tree failed");
    assert!(!dir.exists());
    remove_tree(&dir).expect("remove_tree failed"); // absent is fine
    // The store is intact after removing the hard links.
    assert!(h.svdb.verify().await.expect("verify failed").is_ok());
}

/// A corrupted or truncated chunk is detected on every read path, named by
/// CID, never returned as data, and leaves no output behind.
pub async fn corruption_is_detected<B: StoreBackend + Tamper>(h: Harness<B>) {
    let src = h.work("tree");
    make_tree(&src, 9);
    let r = h
        .svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    let file = h
        .svdb
        .ls(&ArthaUri::with_path(r.cid, "data/big.bin").expect("with_path failed"))
        .await
        .expect("ls failed");
    let fm = match Manifest::decode(
        &file.cid.expect("ls of a file gives its CID"),
        &h.svdb
            .backend()
            .get(&file.cid.expect("ls of a file gives its CID"))
            .await
            .expect("get failed"),
    )
    .expect("decode failed")
    {
        Manifest::File(f) => f,
        Manifest::Dir(_) => unreachable!(),
    };
    let victim = fm.chunks[1];
    let original = h.svdb.backend().get(&victim).await.expect("get failed");
    for (what, damaged) in [
        ("altered", {
            let mut d = original.clone();
            d[10] ^= 1;
            d
        }),
        ("truncated", original[..original.len() / 2].to_vec()),
    ] {
        h.svdb.backend().overwrite(&victim, damaged).await;
        let e = h
            .svdb
            .backend()
            .get(&victim)
            .await
            .expect_err("get should fail");
        assert_eq!(e.kind(), ErrorKind::Corrupted, "{what}");
        assert_eq!(e.context_value("cid"), Some(victim.to_string().as_str()));

        let out = h.work(&format!("out-{what}"));
        let e = h.svdb.get(&r.uri, &out).await.expect_err("get should fail");
        assert_eq!(e.kind(), ErrorKind::Corrupted, "{what}: {e}");
        assert!(ctx(&e, "cid").contains(&victim.to_string().as_str()), "{e}");
        assert!(ctx(&e, "path").contains(&"data/big.bin"), "{e}");
        assert!(!out.exists(), "no partial output");
        no_staging_left(h.tmp.path());

        let job = h.work(&format!("job-{what}"));
        let e = h
            .svdb
            .materialize(&r.uri, &job)
            .await
            .expect_err("materialize should fail");
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        assert!(!job.exists());

        let v = h.svdb.verify().await.expect("verify failed");
        assert!(!v.is_ok());
        assert_eq!(v.problems.len(), 1, "{v:?}");
        assert_eq!(
            (v.problems[0].cid, v.problems[0].kind),
            (victim, ProblemKind::Corrupted)
        );
    }
    // Deleting the bad blob and pushing again repairs the store.
    h.svdb
        .backend()
        .delete(&victim)
        .await
        .expect("delete failed");
    let again = h
        .svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    assert_eq!(again.cid, r.cid);
    assert_eq!(again.blobs_written, 1);
    assert!(h.svdb.verify().await.expect("verify failed").is_ok());
}

/// Unknown CIDs and manifests referencing missing chunks are `NotFound`
/// errors naming the CID; nothing is written or pinned.
pub async fn missing_content_is_reported<B: StoreBackend>(h: Harness<B>) {
    let unknown = Cid::of(b"no such tree");
    let uri = ArthaUri::new(unknown);
    for e in [
        h.svdb.ls(&uri).await.expect_err("ls should fail"),
        h.svdb
            .get(&uri, h.work("x"))
            .await
            .expect_err("get should fail"),
        h.svdb
            .materialize(&uri, h.work("y"))
            .await
            .expect_err("materialize should fail"),
        h.svdb
            .pin(&unknown, &Deal::default())
            .await
            .expect_err("pin should fail"),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(
            ctx(&e, "cid").contains(&unknown.to_string().as_str()),
            "{e}"
        );
    }
    assert!(!h.work("x").exists() && !h.work("y").exists());

    // A file manifest whose second chunk was never stored.
    let b = h.svdb.backend();
    let present = b.put(bytes(3, CS as usize)).await.expect("put failed");
    let absent = Cid::of(b"absent chunk");
    let fm = Manifest::File(FileManifest {
        size: u64::from(CS) + 10,
        chunk_size: CS,
        chunks: vec![present, absent],
    });
    let fcid = b.put(fm.encode()).await.expect("put failed");
    let dir = format!(
        r#"{{"type":"artha.dir.v1","entries":[{{"name":"f.bin","kind":"file","mode":"644","size":{},"cid":"{fcid}"}}]}}"#,
        u64::from(CS) + 10
    );
    let dcid = b.put(dir.into_bytes()).await.expect("put failed");
    let out = h.work("partial");
    let e = h
        .svdb
        .get(&ArthaUri::new(dcid), &out)
        .await
        .expect_err("get should fail");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(ctx(&e, "cid").contains(&absent.to_string().as_str()), "{e}");
    assert!(ctx(&e, "path").contains(&"f.bin"), "{e}");
    assert!(!out.exists());
    no_staging_left(h.tmp.path());
    let e = h
        .svdb
        .pin(&dcid, &Deal::default())
        .await
        .expect_err("pin should fail");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context_value("cid"), Some(absent.to_string().as_str()));
    assert!(h.svdb.pins().await.expect("pins failed").is_empty());

    // A pinned tree that loses a chunk: verify names it and its manifest.
    let src = h.work("one.bin");
    std::fs::write(&src, bytes(4, 2 * CS as usize)).expect("write failed");
    let r = h
        .svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    let chunk = match Manifest::decode(&r.cid, &b.get(&r.cid).await.expect("get failed"))
        .expect("decode failed")
    {
        Manifest::File(f) => f.chunks[0],
        Manifest::Dir(_) => unreachable!(),
    };
    b.delete(&chunk).await.expect("delete failed");
    let v = h.svdb.verify().await.expect("verify failed");
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert_eq!(v.problems[0].kind, ProblemKind::Missing);
    assert_eq!(v.problems[0].cid, chunk);
    assert_eq!(v.problems[0].referenced_by, Some(r.cid));
    // GC refuses nothing here (chunks are leaves) but keeps what is pinned.
    h.svdb.gc().await.expect("gc failed");
    assert!(b.has(&r.cid).await.expect("has failed"));
}

/// Path traversal in manifests, URIs and pushed trees is refused with an
/// error naming the CID or path, and nothing is written outside the
/// destination.
pub async fn traversal_is_refused<B: StoreBackend>(h: Harness<B>) {
    let b = h.svdb.backend();
    let leaf = b.put(b"x".to_vec()).await.expect("put failed");
    let fm = b
        .put(
            Manifest::File(FileManifest {
                size: 1,
                chunk_size: CS,
                chunks: vec![leaf],
            })
            .encode(),
        )
        .await
        .expect("put failed");
    let entry = |name: &str| {
        format!(
            r#"{{"name":{},"kind":"file","mode":"644","size":1,"cid":"{fm}"}}"#,
            serde_json::to_string(name).expect("a JSON string")
        )
    };
    let dir_of = |entries: Vec<String>| {
        format!(
            r#"{{"type":"artha.dir.v1","entries":[{}]}}"#,
            entries.join(",")
        )
    };
    let bad_dirs = [
        ("dotdot", dir_of(vec![entry("..")])),
        ("slash", dir_of(vec![entry("a/../../etc")])),
        ("absolute", dir_of(vec![entry("/etc")])),
        ("nul", dir_of(vec![entry("a\u{0}b")])),
        ("backslash", dir_of(vec![entry("..\\x")])),
        ("empty", dir_of(vec![entry("")])),
        ("unsorted", dir_of(vec![entry("b"), entry("a")])),
        ("duplicate", dir_of(vec![entry("a"), entry("a")])),
        (
            "abs-symlink",
            dir_of(vec![
                r#"{"name":"l","kind":"symlink","size":11,"target":"/etc/passwd"}"#.into(),
            ]),
        ),
        (
            "spaced",
            dir_of(vec![entry("a")]).replace(",\"kind\"", ", \"kind\""),
        ),
        ("raw chunk", "just some bytes".into()),
    ];
    let outside = h.work("outside");
    std::fs::create_dir(&outside).expect("create_dir failed");
    for (what, text) in bad_dirs {
        let cid = b.put(text.into_bytes()).await.expect("put failed");
        let uri = ArthaUri::new(cid);
        let dest = outside.join("dest");
        for e in [
            h.svdb.ls(&uri).await.expect_err("ls should fail"),
            h.svdb.get(&uri, &dest).await.expect_err("get should fail"),
            h.svdb
                .materialize(&uri, &dest)
                .await
                .expect_err("materialize should fail"),
            h.svdb
                .pin(&cid, &Deal::default())
                .await
                .expect_err("pin should fail"),
        ] {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
            assert!(
                ctx(&e, "cid").contains(&cid.to_string().as_str()),
                "{what}: {e}"
            );
        }
        assert_eq!(
            std::fs::read_dir(&outside)
                .expect("read_dir failed")
                .count(),
            0,
            "{what}"
        );
    }
    // A well-formed symlink that climbs above the tree being read.
    let escaping = dir_of(vec![
        r#"{"name":"l","kind":"symlink","size":16,"target":"../../etc/passwd"}"#.into(),
    ]);
    let cid = b.put(escaping.into_bytes()).await.expect("put failed");
    let e = h
        .svdb
        .materialize(&ArthaUri::new(cid), outside.join("d"))
        .await
        .expect_err("materialize should fail");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(e.context_value("path"), Some("l"));
    assert_eq!(
        std::fs::read_dir(&outside)
            .expect("read_dir failed")
            .count(),
        0
    );
    // Relative to a sub-tree, `../a.txt` escapes even though it is fine in
    // the whole tree.
    let src = h.work("tree");
    make_tree(&src, 10);
    let r = h
        .svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    let e = h
        .svdb
        .get(
            &ArthaUri::with_path(r.cid, "data").expect("with_path failed"),
            outside.join("data"),
        )
        .await
        .expect_err("get should fail");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.context_value("path"), Some("data/up"));
    assert_eq!(
        std::fs::read_dir(&outside)
            .expect("read_dir failed")
            .count(),
        0
    );

    // URIs.
    for bad in [
        format!("artha://{}/../x", r.cid),
        format!("artha://{}//etc/passwd", r.cid),
        format!("artha://{}/a\0b", r.cid),
    ] {
        assert_eq!(
            bad.parse::<ArthaUri>()
                .expect_err("parse should fail")
                .kind(),
            ErrorKind::InvalidInput
        );
    }

    // Pushing a tree with a symlink pointing outside it.
    let pins_before = h.svdb.pins().await.expect("pins failed");
    for (name, target) in [
        ("abs", "/etc/passwd"),
        ("up", "../../outside"),
        ("mid", "x/../../y"),
    ] {
        let t = h.work(&format!("evil-{name}"));
        std::fs::create_dir_all(t.join("sub")).expect("create_dir_all failed");
        std::fs::write(t.join("ok.txt"), b"ok").expect("write failed");
        let link = t.join("sub").join("l");
        std::os::unix::fs::symlink(target, &link).expect("symlink failed");
        let e = h
            .svdb
            .push_path(&t, &PushOptions::default())
            .await
            .expect_err("push_path should fail");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}: {e}");
        assert_eq!(
            e.context_value("path"),
            Some(link.display().to_string().as_str())
        );
    }
    assert_eq!(h.svdb.pins().await.expect("pins failed"), pins_before);
}

/// Pins carry deal terms, persist, and decide what GC keeps.
/// The second handle comes from [`Harness::reopen`].
pub async fn pins_and_gc<B: StoreBackend>(h: Harness<B>) {
    let reopen = &h.reopen;
    let shared = bytes(20, 2 * CS as usize);
    let a = h.work("a");
    std::fs::create_dir(&a).expect("create_dir failed");
    std::fs::write(a.join("shared.bin"), &shared).expect("write failed");
    std::fs::write(a.join("only-a"), bytes(21, 1000)).expect("write failed");
    let bdir = h.work("b");
    std::fs::create_dir(&bdir).expect("create_dir failed");
    std::fs::write(bdir.join("shared.bin"), &shared).expect("write failed");
    std::fs::write(bdir.join("only-b"), bytes(22, 3000)).expect("write failed");
    let c = h.work("c.bin");
    std::fs::write(&c, bytes(23, 5000)).expect("write failed");

    let deal = Deal {
        replicas: 5,
        months: 12,
        owner: "alice".into(),
    };
    let ra = h
        .svdb
        .push_path(
            &a,
            &PushOptions {
                pin: Some(deal.clone()),
                progress: None,
            },
        )
        .await
        .expect("push_path failed");
    let pin = ra.pin.clone().expect("a pinned push reports its pin");
    assert_eq!(
        (
            pin.cid,
            pin.replicas,
            pin.months,
            pin.size,
            pin.owner.as_str()
        ),
        (ra.cid, 5, 12, 2 * u64::from(CS) + 1000, "alice")
    );
    let rb = h
        .svdb
        .push_path(&bdir, &PushOptions::default())
        .await
        .expect("push_path failed");
    assert!(
        rb.bytes_written < 2 * u64::from(CS),
        "shared.bin dedups: {rb:?}"
    );
    let rc = h
        .svdb
        .push_path(&c, &unpinned())
        .await
        .expect("push_path failed");
    assert!(rc.pin.is_none());

    // Persisted: a fresh handle on the same store sees the same pins.
    let fresh = reopen();
    let mut pins = fresh.pins().await.expect("pins failed");
    pins.sort_by_key(|p| p.owner.clone());
    assert_eq!(pins.len(), 2);
    assert_eq!(pins[0].owner, "alice");
    assert_eq!(
        (pins[1].owner.as_str(), pins[1].replicas, pins[1].months),
        ("local", 3, 1)
    );

    let g = fresh.gc().await.expect("gc failed");
    assert_eq!(g.pins, 2);
    assert_eq!(g.deleted, 2, "c's chunk and manifest: {g:?}");
    assert_eq!(
        h.svdb
            .get(&rc.uri, h.work("c-out"))
            .await
            .expect_err("get should fail")
            .kind(),
        ErrorKind::NotFound
    );
    assert!(h.svdb.unpin(&rb.cid).await.expect("unpin failed"));
    assert!(!h.svdb.unpin(&rb.cid).await.expect("unpin failed"));
    let g = h.svdb.gc().await.expect("gc failed");
    // only-b chunk + its file manifest + b's dir manifest.
    assert_eq!(g.deleted, 3, "{g:?}");
    assert_eq!(
        h.svdb
            .get(&rb.uri, h.work("b-out"))
            .await
            .expect_err("get should fail")
            .kind(),
        ErrorKind::NotFound
    );
    let out = h.work("a-out");
    h.svdb.get(&ra.uri, &out).await.expect("get failed");
    assert_same_tree(&a, &out);
    assert!(h.svdb.verify().await.expect("verify failed").is_ok());
    // Pinning an existing tree again (e.g. to change the deal).
    let p = h
        .svdb
        .pin(
            &ra.cid,
            &Deal {
                replicas: 1,
                ..deal.clone()
            },
        )
        .await
        .expect("pin failed");
    assert_eq!(p.replicas, 1);
    assert_eq!(h.svdb.pins().await.expect("pins failed").len(), 1);

    // Bad deal terms name their field and change nothing.
    for (bad, field) in [
        (
            Deal {
                replicas: 0,
                ..deal.clone()
            },
            "replicas",
        ),
        (
            Deal {
                months: 1000,
                ..deal.clone()
            },
            "months",
        ),
        (
            Deal {
                owner: String::new(),
                ..deal.clone()
            },
            "owner",
        ),
    ] {
        let e = h
            .svdb
            .pin(&ra.cid, &bad)
            .await
            .expect_err("pin should fail");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.context_value("field"), Some(field));
        let e = h
            .svdb
            .push_path(
                &c,
                &PushOptions {
                    pin: Some(bad),
                    progress: None,
                },
            )
            .await
            .expect_err("push_path should fail");
        assert_eq!(e.context_value("field"), Some(field));
    }
    assert_eq!(h.svdb.pins().await.expect("pins failed").len(), 1);
}

/// A sound store verifies clean.
pub async fn verify_clean<B: StoreBackend>(h: Harness<B>) {
    let src = h.work("tree");
    make_tree(&src, 11);
    h.svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    let v = h.svdb.verify().await.expect("verify failed");
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.pins, 1);
    // 7 chunks (a.txt, run.sh, big.bin's 4, deep.txt; copy.bin dedups),
    // 5 file manifests (copy.bin shares big.bin's), 8 directory manifests.
    assert_eq!(v.blobs, 20, "{v:?}");
    assert_eq!(v.stale_temp_files, 0);
}

/// Several tasks pushing overlapping content at once all succeed and leave
/// a sound store.
pub async fn concurrent_tasks<B: StoreBackend>(h: Harness<B>) {
    let shared = bytes(30, 5 * CS as usize + 7);
    let mut dirs = Vec::new();
    for i in 0..6 {
        let d = h.work(&format!("t{i}"));
        std::fs::create_dir(&d).expect("create_dir failed");
        std::fs::write(d.join("shared.bin"), &shared).expect("write failed");
        std::fs::write(d.join("own.bin"), bytes(31 + i, 2 * CS as usize)).expect("write failed");
        std::fs::write(d.join("same-name.txt"), b"identical").expect("write failed");
        dirs.push(d);
    }
    let opts = PushOptions::default();
    let pushes = dirs.iter().map(|d| h.svdb.push_path(d, &opts));
    let reports = futures_util::future::join_all(pushes).await;
    for (d, r) in dirs.iter().zip(reports) {
        let r = r.expect("a concurrent push");
        let out = h.work(&format!(
            "{}-out",
            d.file_name().expect("a named directory").to_string_lossy()
        ));
        h.svdb.get(&r.uri, &out).await.expect("get failed");
        assert_same_tree(d, &out);
    }
    let v = h.svdb.verify().await.expect("verify failed");
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.pins, 6);
}

/// Bad push inputs: a missing path, a special file.
pub async fn push_errors<B: StoreBackend>(h: Harness<B>) {
    let missing = h.work("does-not-exist");
    let e = h
        .svdb
        .push_path(&missing, &PushOptions::default())
        .await
        .expect_err("push_path should fail");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.context_value("path"),
        Some(missing.display().to_string().as_str())
    );
    let d = h.work("with-socket");
    std::fs::create_dir(&d).expect("create_dir failed");
    let sock = d.join("s.sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).expect("bind failed");
    let e = h
        .svdb
        .push_path(&d, &PushOptions::default())
        .await
        .expect_err("push_path should fail");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        e.context_value("path"),
        Some(sock.display().to_string().as_str())
    );
    assert!(e.to_string().contains("special file"), "{e}");
    assert!(h.svdb.pins().await.expect("pins failed").is_empty());
}

// ------------------------------------------------------- hostile manifests
//
// Written by hand, byte for byte, as a peer would put them in a store:
// nothing here goes through the store's own manifest builders.

/// A file manifest of `size` bytes cut in `chunk_size` chunks, every chunk
/// named `chunk` (which need not exist).
fn hostile_file(size: u64, chunk_size: u32, chunk: &Cid) -> Vec<u8> {
    let n = size.div_ceil(u64::from(chunk_size));
    let chunks = vec![format!("\"{chunk}\""); n as usize].join(",");
    format!(
        r#"{{"type":"artha.file.v1","size":{size},"chunk_size":{chunk_size},"chunks":[{chunks}]}}"#
    )
    .into_bytes()
}

/// A directory manifest of `n` entries of `kind` (`file` or `dir`), all
/// naming `cid` and declaring `size` bytes; names are `f000000`,
/// `f000001`… or `d000000`… (sorted, as canonical form wants).
fn hostile_dir(kind: &str, n: usize, cid: &Cid, size: u64) -> Vec<u8> {
    let entries: Vec<String> = (0..n)
        .map(|i| match kind {
            "file" => format!(
                r#"{{"name":"f{i:06}","kind":"file","mode":"644","size":{size},"cid":"{cid}"}}"#
            ),
            _ => format!(r#"{{"name":"d{i:06}","kind":"dir","size":{size},"cid":"{cid}"}}"#),
        })
        .collect();
    format!(
        r#"{{"type":"artha.dir.v1","entries":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes()
}

/// Stores a fan-out tree: one directory of `fan` one-byte files, and
/// `levels` directories above it, each with `fan` entries naming the one
/// below. `levels + 3` blobs describe `fan^(levels+1)` files. Returns the
/// root's CID.
async fn store_fan_out<B: StoreBackend>(b: &B, fan: usize, levels: usize) -> Cid {
    let chunk = b.put(b"x".to_vec()).await.expect("put failed");
    let fm = b
        .put(hostile_file(1, CS, &chunk))
        .await
        .expect("put failed");
    let mut cid = b
        .put(hostile_dir("file", fan, &fm, 1))
        .await
        .expect("put failed");
    let mut size = fan as u64;
    for _ in 0..levels {
        cid = b
            .put(hostile_dir("dir", fan, &cid, size))
            .await
            .expect("put failed");
        size *= fan as u64;
    }
    cid
}

/// Stores a chain of `nested` directories, one inside the other below the
/// root (`d000000/d000000/…`), with one file at the bottom; returns the
/// root's CID.
async fn store_chain<B: StoreBackend>(b: &B, nested: usize) -> Cid {
    let chunk = b.put(b"x".to_vec()).await.expect("put failed");
    let fm = b
        .put(hostile_file(1, CS, &chunk))
        .await
        .expect("put failed");
    let mut cid = b
        .put(hostile_dir("file", 1, &fm, 1))
        .await
        .expect("put failed");
    for _ in 0..nested {
        cid = b
            .put(hostile_dir("dir", 1, &cid, 1))
            .await
            .expect("put failed");
    }
    cid
}

/// Asserts `e` is the refusal of a tree past limit `limit` (of value
/// `max`), naming a manifest, and the URI when one was read.
fn assert_refused(e: &Error, limit: &str, max: u64, uri: Option<&ArthaUri>) {
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(e.context_value("limit"), Some(limit), "{e}");
    assert_eq!(
        e.context_value("max"),
        Some(max.to_string().as_str()),
        "{e}"
    );
    assert!(!ctx(e, "cid").is_empty(), "{e}");
    if let Some(u) = uri {
        assert!(ctx(e, "uri").contains(&u.to_string().as_str()), "{e}");
    }
}

/// Relative paths of everything under `root`, with their total length.
fn path_bytes(root: &Path) -> (u64, u64) {
    fn walk(dir: &Path, prefix: &str, acc: &mut (u64, u64)) {
        for e in std::fs::read_dir(dir).expect("read_dir failed") {
            let e = e.expect("read a directory entry");
            let name = e.file_name().into_string().expect("a UTF-8 file name");
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            acc.0 += 1;
            acc.1 += rel.len() as u64;
            if e.file_type().expect("file type of an entry").is_dir() {
                walk(&e.path(), &rel, acc);
            }
        }
    }
    let mut acc = (0, 0);
    walk(root, "", &mut acc);
    acc
}

/// Checks that the store still works: a push and a get of a normal tree.
async fn store_still_works<B: StoreBackend>(svdb: &Svdb<B>, work: &Path) {
    let src = work.join("after-src");
    make_tree(&src, 77);
    let r = svdb
        .push_path(&src, &PushOptions::default())
        .await
        .expect("push_path failed");
    let out = work.join("after-out");
    svdb.get(&r.uri, &out).await.expect("get failed");
    assert_same_tree(&src, &out);
    let v = svdb.verify().await.expect("verify failed");
    assert!(v.is_ok(), "{v:?}");
}

/// Five manifests under 20 KB describing 16.7 million files (each of 64
/// directories names the same sub-directory, four levels deep): get,
/// materialize and pin refuse them quickly with an error naming the limit,
/// leave nothing at the destination, and the store still works. `ls` reads
/// one manifest and lists its 64 entries without expanding anything.
pub async fn manifest_bomb_is_refused<B: StoreBackend>(h: Harness<B>) {
    let b = h.svdb.backend();
    let root = store_fan_out(b, 64, 3).await;
    let uri = ArthaUri::new(root);
    let out = h.work("out");
    std::fs::create_dir(&out).expect("create_dir failed");
    let started = std::time::Instant::now();
    let l = h.svdb.ls(&uri).await.expect("ls failed");
    assert_eq!((l.kind, l.entries.len()), (EntryKind::Dir, 64));
    assert_eq!(l.size, 64u64.pow(4));
    // The bomb as a sub-directory of an innocent-looking tree.
    let wrapper = b
        .put(hostile_dir("dir", 1, &root, 64u64.pow(4)))
        .await
        .expect("put failed");
    let sub = ArthaUri::with_path(wrapper, "d000000").expect("with_path failed");
    for (what, u, e) in [
        (
            "get",
            &uri,
            h.svdb
                .get(&uri, out.join("g"))
                .await
                .expect_err("get should fail"),
        ),
        (
            "materialize",
            &uri,
            h.svdb
                .materialize(&uri, out.join("m"))
                .await
                .expect_err("materialize should fail"),
        ),
        (
            "get of a sub-tree",
            &sub,
            h.svdb
                .get(&sub, out.join("s"))
                .await
                .expect_err("get should fail"),
        ),
    ] {
        assert_refused(&e, "max_entries", MAX_TREE_ENTRIES, Some(u));
        assert!(e.to_string().contains("max_entries"), "{what}: {e}");
    }
    let e = h
        .svdb
        .pin(&root, &Deal::default())
        .await
        .expect_err("pin should fail");
    assert_refused(&e, "max_entries", MAX_TREE_ENTRIES, None);
    assert_eq!(e.context_value("pin"), Some(root.to_string().as_str()));
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    assert_eq!(std::fs::read_dir(&out).expect("read_dir failed").count(), 0);
    no_staging_left(&out);
    assert!(h.svdb.pins().await.expect("pins failed").is_empty());

    // The same shape claiming 1 GiB files: 4 TiB, refused on the declared
    // size before any chunk is read (the chunk does not even exist).
    let ghost = Cid::of(b"a chunk nobody stored");
    let big = 1u64 << 30;
    let fm = b
        .put(hostile_file(big, 16 << 20, &ghost))
        .await
        .expect("put failed");
    let dir = b
        .put(hostile_dir("file", 64, &fm, big))
        .await
        .expect("put failed");
    let top = b
        .put(hostile_dir("dir", 64, &dir, 64 * big))
        .await
        .expect("put failed");
    let u = ArthaUri::new(top);
    for e in [
        h.svdb
            .get(&u, out.join("g"))
            .await
            .expect_err("get should fail"),
        h.svdb
            .materialize(&u, out.join("m"))
            .await
            .expect_err("materialize should fail"),
    ] {
        assert_refused(&e, "max_bytes", MAX_TREE_BYTES, Some(&u));
        assert_eq!(e.context_value("cid"), Some(top.to_string().as_str()));
    }
    // Lying about it (directories declaring 0 bytes) does not help.
    let liar = b
        .put(hostile_dir("dir", 64, &dir, 0))
        .await
        .expect("put failed");
    let u = ArthaUri::new(liar);
    let e = h
        .svdb
        .get(&u, out.join("g"))
        .await
        .expect_err("get should fail");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("inconsistent"), "{e}");
    // Pin refuses it too, before looking for the chunk.
    let e = h
        .svdb
        .pin(&top, &Deal::default())
        .await
        .expect_err("pin should fail");
    assert_refused(&e, "max_bytes", MAX_TREE_BYTES, None);
    assert_eq!(std::fs::read_dir(&out).expect("read_dir failed").count(), 0);

    // Too deep: MAX_DEPTH nested directories below the root.
    let deep = store_chain(b, MAX_DEPTH).await;
    let u = ArthaUri::new(deep);
    for e in [
        h.svdb
            .get(&u, out.join("g"))
            .await
            .expect_err("get should fail"),
        h.svdb
            .materialize(&u, out.join("m"))
            .await
            .expect_err("materialize should fail"),
    ] {
        assert_refused(&e, "max_depth", MAX_DEPTH as u64, Some(&u));
    }
    let e = h
        .svdb
        .pin(&deep, &Deal::default())
        .await
        .expect_err("pin should fail");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(std::fs::read_dir(&out).expect("read_dir failed").count(), 0);

    // GC drops the unpinned bombs; the store still works.
    h.svdb.gc().await.expect("gc failed");
    assert!(!b.has(&root).await.expect("has failed"));
    store_still_works(&h.svdb, h.tmp.path()).await;
}

/// A directory manifest of more than MAX_DIR_ENTRIES entries is refused by
/// ls, get, materialize and pin, alone or as a sub-directory.
pub async fn oversized_directory_is_refused<B: StoreBackend>(h: Harness<B>) {
    let b = h.svdb.backend();
    let chunk = b.put(b"x".to_vec()).await.expect("put failed");
    let fm = b
        .put(hostile_file(1, CS, &chunk))
        .await
        .expect("put failed");
    let huge = b
        .put(hostile_dir("file", MAX_DIR_ENTRIES + 1, &fm, 1))
        .await
        .expect("put failed");
    let parent = b
        .put(hostile_dir("dir", 1, &huge, MAX_DIR_ENTRIES as u64 + 1))
        .await
        .expect("put failed");
    let out = h.work("out");
    std::fs::create_dir(&out).expect("create_dir failed");
    let max = MAX_DIR_ENTRIES as u64;
    for cid in [huge, parent] {
        let u = ArthaUri::new(cid);
        let mut errors = vec![
            h.svdb
                .get(&u, out.join("g"))
                .await
                .expect_err("get should fail"),
            h.svdb
                .materialize(&u, out.join("m"))
                .await
                .expect_err("materialize should fail"),
        ];
        if cid == huge {
            errors.push(h.svdb.ls(&u).await.expect_err("ls should fail"));
        } else {
            let sub = ArthaUri::with_path(cid, "d000000").expect("with_path failed");
            errors.push(h.svdb.ls(&sub).await.expect_err("ls should fail"));
        }
        for e in errors {
            assert_refused(&e, "max_dir_entries", max, None);
            assert!(ctx(&e, "cid").contains(&huge.to_string().as_str()), "{e}");
        }
        let e = h
            .svdb
            .pin(&cid, &Deal::default())
            .await
            .expect_err("pin should fail");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(ctx(&e, "cid").contains(&huge.to_string().as_str()), "{e}");
    }
    assert_eq!(std::fs::read_dir(&out).expect("read_dir failed").count(), 0);
    store_still_works(&h.svdb, h.tmp.path()).await;
}

/// A tree exactly at every limit is read and pinned; one unit under any
/// limit refuses it. Also: a chain of MAX_DEPTH - 1 nested directories is
/// read (MAX_DEPTH is refused, see `manifest_bomb_is_refused`).
pub async fn tree_limits_are_exact<B: StoreBackend>(h: Harness<B>) {
    let Harness { svdb, tmp, .. } = h;
    let work = |n: &str| tmp.path().join(n);
    assert_eq!(svdb.tree_limits(), TreeLimits::default());
    assert_eq!(
        TreeLimits::default(),
        TreeLimits {
            max_entries: MAX_TREE_ENTRIES,
            max_bytes: MAX_TREE_BYTES,
            max_path_bytes: MAX_TREE_PATH_BYTES,
        }
    );
    // 4 directories of 4 directories of 4 one-byte files.
    let root = store_fan_out(svdb.backend(), 4, 2).await;
    let uri = ArthaUri::new(root);
    let r = svdb.get(&uri, work("full")).await.expect("get failed");
    assert_eq!((r.files, r.dirs, r.bytes), (64, 21, 64));
    let (entries, paths) = path_bytes(&work("full"));
    assert_eq!(entries, 84);
    let exact = TreeLimits {
        max_entries: entries,
        max_bytes: 64,
        max_path_bytes: paths,
    };
    let mut svdb = svdb.with_tree_limits(exact);
    assert_eq!(svdb.tree_limits(), exact);
    svdb.get(&uri, work("g")).await.expect("get failed");
    svdb.materialize(&uri, work("m"))
        .await
        .expect("materialize failed");
    remove_tree(work("m")).expect("remove_tree failed");
    svdb.pin(&root, &Deal::default()).await.expect("pin failed");
    svdb.unpin(&root).await.expect("unpin failed");
    for (limit, under) in [
        (
            "max_entries",
            TreeLimits {
                max_entries: entries - 1,
                ..exact
            },
        ),
        (
            "max_bytes",
            TreeLimits {
                max_bytes: 63,
                ..exact
            },
        ),
        (
            "max_path_bytes",
            TreeLimits {
                max_path_bytes: paths - 1,
                ..exact
            },
        ),
    ] {
        svdb = svdb.with_tree_limits(under);
        let max = match limit {
            "max_entries" => under.max_entries,
            "max_bytes" => under.max_bytes,
            _ => under.max_path_bytes,
        };
        let dest = work("refused");
        for e in [
            svdb.get(&uri, &dest).await.expect_err("get should fail"),
            svdb.materialize(&uri, &dest)
                .await
                .expect_err("materialize should fail"),
        ] {
            assert_refused(&e, limit, max, Some(&uri));
        }
        let e = svdb
            .pin(&root, &Deal::default())
            .await
            .expect_err("pin should fail");
        assert_refused(&e, limit, max, None);
        assert!(!dest.exists());
        no_staging_left(tmp.path());
        // A push never stores a tree that a read would refuse.
        let e = svdb
            .push_path(work("full"), &unpinned())
            .await
            .expect_err("push_path should fail");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.context_value("limit"), Some(limit), "{e}");
        assert!(!ctx(&e, "path").is_empty(), "{e}");
    }
    // At the limits exactly, the same tree pushes.
    svdb = svdb.with_tree_limits(exact);
    svdb.push_path(work("full"), &unpinned())
        .await
        .expect("push_path failed");
    assert!(svdb.pins().await.expect("pins failed").is_empty());
    let svdb = svdb.with_tree_limits(TreeLimits::default());

    // Depth: MAX_DEPTH - 1 nested directories are fine.
    let deep = store_chain(svdb.backend(), MAX_DEPTH - 1).await;
    let u = ArthaUri::new(deep);
    let r = svdb.get(&u, work("deep")).await.expect("get failed");
    assert_eq!((r.dirs, r.files), (MAX_DEPTH as u64, 1));
    svdb.pin(&deep, &Deal::default()).await.expect("pin failed");
    store_still_works(&svdb, tmp.path()).await;
}
