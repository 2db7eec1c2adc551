//! The SVDB on the local filesystem: the public store suite
//! (`artha_engine::testing::store`, one test per scenario), plus what
//! only a local store can show: on-disk layout, `kill -9` during a push,
//! several processes pushing at once, a full disk, hard links vs copies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod store_suite;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artha_core::{ArthaUri, Cid, ErrorKind};
use artha_engine::EngineHome;
use artha_engine::store::{LocalBlobStore, PushOptions, Svdb};
use artha_engine::testing::store::{
    self as suite, CS, Harness, Tamper, assert_same_tree, bytes, ctx,
};

async fn make() -> Option<Harness<LocalBlobStore>> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let reopen = move || open(&dir);
    Some(Harness {
        svdb: reopen(),
        tmp,
        links: true,
        reopen: Box::new(reopen),
    })
}

store_scenarios!(make);

/// The whole suite through its public entry point, as a user would run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_the_local_store() {
    suite::run_all(|| async { make().await.unwrap() }).await;
}

/// A failing scenario is reported by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "store scenario `blob_contract` failed")]
async fn a_failing_scenario_is_named() {
    // Not empty: the blob contract's `list` check fails.
    let h = make().await.unwrap();
    artha_core::BlobStore::put(h.svdb.backend(), b"left over".to_vec())
        .await
        .unwrap();
    suite::run_scenario("blob_contract", h).await;
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn open(dir: &Path) -> Svdb<LocalBlobStore> {
    Svdb::open_dir(dir).unwrap().with_chunk_size(CS).unwrap()
}

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

// ----------------------------------------------------------- child helper

/// Not a test: the body of the child processes the tests below start (this
/// same binary, re-executed with `ARTHA_STORE_CHILD` set).
#[test]
#[ignore = "helper: started by other tests in a child process"]
fn child_helper() {
    let Ok(mode) = std::env::var("ARTHA_STORE_CHILD") else {
        return;
    };
    let store = PathBuf::from(std::env::var("ARTHA_STORE_DIR").unwrap());
    let src = PathBuf::from(std::env::var("ARTHA_STORE_SRC").unwrap());
    rt().block_on(async {
        let svdb = open(&store);
        match mode.as_str() {
            // Push fresh content forever; the parent kills us mid-push.
            "loop" => {
                for i in 0u64.. {
                    let seed = u64::from(std::process::id()) * 1000 + i;
                    std::fs::create_dir_all(src.join("small")).unwrap();
                    std::fs::write(src.join("big.bin"), bytes(seed, 64 * CS as usize)).unwrap();
                    for j in 0..40 {
                        std::fs::write(src.join(format!("small/{j}")), bytes(seed + j, 700))
                            .unwrap();
                    }
                    svdb.push_path(&src, &PushOptions::default()).await.unwrap();
                }
            }
            // Push once and report the URI.
            "push" => {
                let r = svdb.push_path(&src, &PushOptions::default()).await.unwrap();
                println!("URI={}", r.uri);
            }
            // Run under a file size limit below one chunk: the push must
            // fail cleanly and leave a sound store.
            "fsize" => {
                let e = svdb
                    .push_path(&src, &PushOptions::default())
                    .await
                    .unwrap_err();
                assert_eq!(e.kind(), ErrorKind::ResourceExhausted, "{e}");
                assert!(!ctx(&e, "cid").is_empty(), "{e}");
                assert!(e.to_string().contains("no space"), "{e}");
                let v = svdb.verify().await.unwrap();
                assert!(v.is_ok(), "{v:?}");
                assert!(svdb.pins().await.unwrap().is_empty());
                assert_eq!(count_files(&store.join("tmp")), 0, "temp file left");
                println!("FSIZE-OK");
            }
            other => panic!("unknown child mode {other}"),
        }
    });
}

fn child(mode: &str, store: &Path, src: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "child_helper",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("ARTHA_STORE_CHILD", mode)
    .env("ARTHA_STORE_DIR", store)
    .env("ARTHA_STORE_SRC", src);
    c
}

// ------------------------------------------------------------------ tests

#[test]
fn layout_under_the_engine_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = EngineHome::open(tmp.path().join("home")).unwrap();
    let svdb = Svdb::open(&home).unwrap();
    let src = tmp.path().join("f.txt");
    std::fs::write(&src, b"hello").unwrap();
    let r = rt()
        .block_on(svdb.push_path(&src, &PushOptions::default()))
        .unwrap();
    let chunk = Cid::of(b"hello");
    let hex = chunk.to_hex();
    let blob = home.dir("store").join("blobs").join(&hex[..2]).join(&hex);
    assert_eq!(svdb.backend().blob_path(&chunk), blob);
    let md = std::fs::metadata(&blob).unwrap();
    assert_eq!(md.mode() & 0o777, 0o444);
    assert_eq!(std::fs::read(&blob).unwrap(), b"hello");
    assert!(svdb.backend().blob_path(&r.cid).is_file());
    assert!(
        home.dir("store")
            .join("pins")
            .join(format!("{}.json", r.cid.to_hex()))
            .is_file()
    );
    assert_eq!(count_files(&home.dir("store").join("tmp")), 0);
}

#[test]
fn kill_9_during_push_leaves_a_verifiable_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    open(&store);
    let rt = rt();
    let mut stale_now = 0;
    for round in 0..5u64 {
        let src = tmp.path().join(format!("src{round}"));
        let mut c = child("loop", &store, &src)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it write a varying amount, then kill it without warning.
        let before = count_files(&store.join("blobs"));
        let want = before + 30 + 17 * round as usize;
        let start = Instant::now();
        while count_files(&store.join("blobs")) < want {
            assert!(c.try_wait().unwrap().is_none(), "child exited early");
            assert!(start.elapsed() < Duration::from_secs(120), "child too slow");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(round * 7));
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        let svdb = open(&store);
        let v = rt.block_on(svdb.verify()).unwrap();
        assert!(v.is_ok(), "round {round}: {v:?}");
        stale_now = v.stale_temp_files;
        // Everything pinned reads back.
        for (i, p) in rt.block_on(svdb.pins()).unwrap().iter().enumerate() {
            let out = tmp.path().join(format!("out{round}-{i}"));
            rt.block_on(svdb.get(&ArthaUri::new(p.cid), &out)).unwrap();
        }
    }
    eprintln!("temporary files left by killed writers: {stale_now}");
    let svdb = open(&store);
    let g = rt.block_on(svdb.gc()).unwrap();
    assert_eq!(g.temp_files_removed, stale_now);
    let v = rt.block_on(svdb.verify()).unwrap();
    assert!(v.is_ok() && v.stale_temp_files == 0, "{v:?}");
}

#[test]
fn processes_pushing_overlapping_content_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    open(&store);
    let shared = bytes(99, 20 * CS as usize);
    let mut srcs = Vec::new();
    for i in 0..4u64 {
        let s = tmp.path().join(format!("src{i}"));
        std::fs::create_dir_all(s.join("common")).unwrap();
        std::fs::write(s.join("shared.bin"), &shared).unwrap();
        std::fs::write(
            s.join("own.bin"),
            bytes(100 + i, 3 * CS as usize + i as usize),
        )
        .unwrap();
        for j in 0..30 {
            std::fs::write(s.join(format!("common/{j}.txt")), format!("line {j}\n")).unwrap();
        }
        srcs.push(s);
    }
    let children: Vec<_> = srcs[1..]
        .iter()
        .map(|s| {
            child("push", &store, s)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let rt = rt();
    let svdb = open(&store);
    let mine = rt
        .block_on(svdb.push_path(&srcs[0], &PushOptions::default()))
        .unwrap();
    let mut uris = vec![mine.uri];
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed");
        let text = String::from_utf8(out.stdout).unwrap();
        // libtest prints `test child_helper ... ` before our output.
        let uri = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("URI="))
            .unwrap_or_else(|| panic!("no URI in the child's output: {text}"));
        uris.push(uri.parse::<ArthaUri>().unwrap());
    }
    let v = rt.block_on(svdb.verify()).unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.pins, 4);
    for (i, (uri, src)) in uris.iter().zip(&srcs).enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        rt.block_on(svdb.get(uri, &out)).unwrap();
        assert_same_tree(src, &out);
    }
}

/// Unmounts a tmpfs on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn full_disk_on_a_small_tmpfs() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // Not root: `full_disk_under_a_file_size_limit` covers the error path.
        eprintln!("skipping: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _guard = Mount(mnt.clone());
    let store = mnt.join("store");
    let svdb = open(&store);
    let src = tmp.path().join("big.bin");
    std::fs::write(&src, bytes(5, 4 << 20)).unwrap();
    let rt = rt();
    let e = rt
        .block_on(svdb.push_path(&src, &PushOptions::default()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceExhausted, "{e}");
    let cid = ctx(&e, "cid")[0].parse::<Cid>().unwrap();
    assert!(ctx(&e, "path")[0].contains(&cid.to_hex()), "{e}");
    assert_eq!(ctx(&e, "file"), [src.display().to_string().as_str()]);
    // Consistent: only whole blobs are visible (the chunks written before
    // the disk filled, each complete), no temp file, nothing pinned.
    let v = rt.block_on(svdb.verify()).unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert!(v.blobs > 0, "some whole chunks fit");
    assert!(
        !svdb.backend().blob_path(&cid).exists(),
        "failed blob visible"
    );
    assert_eq!(count_files(&store.join("tmp")), 0);
    assert!(rt.block_on(svdb.pins()).unwrap().is_empty());
    // GC frees the orphaned chunks; the store works again.
    let g = rt.block_on(svdb.gc()).unwrap();
    assert_eq!(g.deleted, v.blobs);
    let small = tmp.path().join("small.txt");
    std::fs::write(&small, b"fits").unwrap();
    let r = rt
        .block_on(svdb.push_path(&small, &PushOptions::default()))
        .unwrap();
    rt.block_on(svdb.get(&r.uri, tmp.path().join("small.out")))
        .unwrap();
}

#[test]
fn full_disk_under_a_file_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    open(&store);
    let src = tmp.path().join("big.bin");
    std::fs::write(&src, bytes(6, 8 * CS as usize)).unwrap();
    // RLIMIT_FSIZE of 32 KiB, below one 64 KiB chunk; SIGXFSZ ignored so the
    // write fails with EFBIG instead of killing the process.
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 32; exec "$0" child_helper --exact --ignored --nocapture --test-threads 1"#)
        .arg(&exe)
        .env("ARTHA_STORE_CHILD", "fsize")
        .env("ARTHA_STORE_DIR", &store)
        .env("ARTHA_STORE_SRC", &src)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("FSIZE-OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn materialize_copies_across_filesystems_and_verifies_links() {
    let rt = rt();
    let tmp = tempfile::tempdir().unwrap();
    let svdb = open(&tmp.path().join("store"));
    let src = tmp.path().join("tree");
    suite::make_tree(&src, 12);
    let r = rt
        .block_on(svdb.push_path(&src, &PushOptions::default()))
        .unwrap();
    // /dev/shm is a tmpfs: another filesystem than the store's.
    let store_dev = std::fs::metadata(tmp.path()).unwrap().dev();
    match tempfile::tempdir_in("/dev/shm") {
        Ok(shm) if std::fs::metadata(shm.path()).unwrap().dev() != store_dev => {
            let dest = shm.path().join("job");
            let m = rt.block_on(svdb.materialize(&r.uri, &dest)).unwrap();
            assert_eq!((m.linked, m.copied), (0, 6), "{m:?}");
            assert_same_tree(&src, &dest);
            artha_engine::store::remove_tree(&dest).unwrap();
        }
        _ => eprintln!("skipping the cross-filesystem half: no separate /dev/shm"),
    }
    // A corrupted blob is never hard-linked into a job.
    let a = Cid::of(b"hello 12\n");
    rt.block_on(svdb.backend().overwrite(&a, b"HELLO 12\n".to_vec()));
    let dest = tmp.path().join("job");
    let e = rt.block_on(svdb.materialize(&r.uri, &dest)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted);
    assert_eq!(e.context_value("cid"), Some(a.to_string().as_str()));
    assert!(!dest.exists());
}
