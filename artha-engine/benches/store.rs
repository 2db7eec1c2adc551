//! Storage benchmark: ingest of a large file vs `b3sum` on the same file in
//! the same run, a second push of it (must write nothing), and materialize
//! of a many-file tree vs `cp -a`. Run by `bench/store.sh`, which installs
//! `b3sum` and builds this in release mode; prints a Markdown table.
//!
//! ```text
//! cargo bench -p artha-engine --bench store -- [--dir DIR] [--size-mib 1024]
//!     [--files 10000] [--runs 3] [--chunk-mib 1,2,4]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use artha_engine::store::{DEFAULT_CHUNK_SIZE, LocalBlobStore, PushOptions, Svdb, remove_tree};

struct Args {
    dir: PathBuf,
    size_mib: u64,
    files: usize,
    runs: usize,
    chunk_mib: Vec<u32>,
}

fn args() -> Args {
    let mut a = Args {
        dir: std::env::temp_dir().join("artha-store-bench"),
        size_mib: 1024,
        files: 10_000,
        runs: 3,
        chunk_mib: vec![1, 2, 4],
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--dir" => a.dir = PathBuf::from(v()),
            "--size-mib" => a.size_mib = v().parse().expect("--size-mib"),
            "--files" => a.files = v().parse().expect("--files"),
            "--runs" => a.runs = v().parse().expect("--runs"),
            "--chunk-mib" => {
                a.chunk_mib = v()
                    .split(',')
                    .map(|s| s.parse().expect("--chunk-mib"))
                    .collect()
            }
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// Incompressible, non-repeating bytes (xorshift64*), fast to generate.
fn fill(seed: u64, buf: &mut [u8]) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for c in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
}

fn make_file(path: &Path, mib: u64) {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == mib << 20) {
        return;
    }
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..mib {
        fill(i + 1, &mut buf);
        f.write_all(&buf).unwrap();
    }
    f.sync_all().unwrap();
}

fn make_tree(root: &Path, files: usize) -> u64 {
    if root.join(".done").exists() {
        return std::fs::read_to_string(root.join(".done"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(root);
    let mut total = 0u64;
    let per_dir = 100;
    for i in 0..files {
        let d = root.join(format!("d{:03}", i / per_dir));
        if i % per_dir == 0 {
            std::fs::create_dir_all(&d).unwrap();
        }
        // 1 to 16 KiB, like a dataset of small records.
        let len = 1024 + (i * 7919) % (15 * 1024);
        let mut buf = vec![0u8; len];
        fill(1_000_000 + i as u64, &mut buf);
        std::fs::write(d.join(format!("f{i:05}.bin")), &buf).unwrap();
        total += len as u64;
    }
    std::fs::write(root.join(".done"), total.to_string()).unwrap();
    total
}

fn warm(path: &Path) {
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 8 << 20];
    while f.read(&mut buf).unwrap() > 0 {}
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn gibs(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 / d.as_secs_f64()
}

fn time_cmd(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let d = t.elapsed();
    assert!(out.status.success(), "{cmd:?} failed: {out:?}");
    d
}

fn open(dir: &Path, chunk: u32, conc: usize) -> Svdb<LocalBlobStore> {
    Svdb::open_dir(dir)
        .unwrap()
        .with_chunk_size(chunk)
        .unwrap()
        .with_concurrency(conc)
}

#[tokio::main]
async fn main() {
    let a = args();
    std::fs::create_dir_all(&a.dir).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let big = a.dir.join("big.bin");
    make_file(&big, a.size_mib);
    let size = a.size_mib << 20;
    warm(&big);
    let opts = PushOptions::default();
    let copy = a.dir.join("dd.out");
    let b3sum = || {
        warm(&big);
        time_cmd(
            Command::new("b3sum")
                .arg("--num-threads")
                .arg(threads.to_string())
                .arg(&big),
        )
    };
    // What writing the same bytes durably costs, without hashing.
    let dd = || {
        let _ = std::fs::remove_file(&copy);
        warm(&big);
        let d = time_cmd(
            Command::new("dd")
                .arg(format!("if={}", big.display()))
                .arg(format!("of={}", copy.display()))
                .args(["bs=4M", "conv=fdatasync", "status=none"]),
        );
        std::fs::remove_file(&copy).unwrap();
        d
    };
    println!(
        "machine: {threads} cores; file {} MiB; {} runs of each row, every run of ours \
         timed back to back with its peers; medians (ratio: median of the per-run ratios)",
        a.size_mib, a.runs
    );
    println!();
    println!(
        "| what | ours | `b3sum --num-threads {threads}` | ours vs b3sum | durable copy (`dd bs=4M conv=fdatasync`) | ours vs dd |"
    );
    println!("|---|---|---|---|---|---|");
    let row = |what: String, ours: Vec<Duration>, b3: Vec<Duration>, dd: Vec<Duration>| {
        let r_b3 = median_f(
            ours.iter()
                .zip(&b3)
                .map(|(o, b)| b.as_secs_f64() / o.as_secs_f64())
                .collect(),
        );
        let r_dd = median_f(
            ours.iter()
                .zip(&dd)
                .map(|(o, d)| d.as_secs_f64() / o.as_secs_f64())
                .collect(),
        );
        let (o, b, d) = (median(ours), median(b3), median(dd));
        println!(
            "| {what} | {:.3} s, {:.2} GiB/s | {:.3} s, {:.2} GiB/s | {r_b3:.2}× | {:.3} s, {:.2} GiB/s | {r_dd:.2}× |",
            o.as_secs_f64(),
            gibs(size, o),
            b.as_secs_f64(),
            gibs(size, b),
            d.as_secs_f64(),
            gibs(size, d),
        );
    };

    let store = a.dir.join("store");
    let mut configs: Vec<(u32, usize)> = a.chunk_mib.iter().map(|m| (*m, 2 * threads)).collect();
    configs.push((DEFAULT_CHUNK_SIZE >> 20, threads));
    for (mib, conc) in configs {
        let (mut ours, mut b3, mut dds) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..a.runs {
            remove_tree(&store).unwrap();
            let svdb = open(&store, mib << 20, conc);
            b3.push(b3sum());
            warm(&big);
            let t = Instant::now();
            let r = svdb.push_path(&big, &opts).await.unwrap();
            ours.push(t.elapsed());
            assert!(
                r.bytes_written >= size,
                "first push wrote {}",
                r.bytes_written
            );
            dds.push(dd());
        }
        row(
            format!("ingest, {mib} MiB chunks, {conc} in flight"),
            ours,
            b3,
            dds,
        );
    }

    // Re-push into a store that holds the file (default chunk size).
    remove_tree(&store).unwrap();
    let svdb = open(&store, DEFAULT_CHUNK_SIZE, threads);
    svdb.push_path(&big, &opts).await.unwrap();
    let (mut ours, mut b3, mut dds) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.runs {
        b3.push(b3sum());
        warm(&big);
        let t = Instant::now();
        let r = svdb.push_path(&big, &opts).await.unwrap();
        ours.push(t.elapsed());
        assert_eq!(r.bytes_written, 0, "re-push wrote bytes");
        assert_eq!(r.blobs_written, 0);
        dds.push(dd());
    }
    row(
        format!("re-push of the same file, {threads} in flight: 0 bytes written"),
        ours,
        b3,
        dds,
    );
    remove_tree(&store).unwrap();

    // Many small files.
    let tree = a.dir.join("tree");
    let tree_bytes = make_tree(&tree, a.files);
    std::fs::remove_file(tree.join(".done")).ok();
    let svdb = open(&store, DEFAULT_CHUNK_SIZE, 2 * threads);
    let t = Instant::now();
    let r = svdb.push_path(&tree, &opts).await.unwrap();
    let push_t = t.elapsed();
    std::fs::write(tree.join(".done"), tree_bytes.to_string()).unwrap();
    println!();
    println!(
        "tree: {} files, {} dirs, {:.1} MiB",
        r.files,
        r.dirs,
        tree_bytes as f64 / (1 << 20) as f64
    );
    println!();
    println!("| what | time | files/s |");
    println!("|---|---|---|");
    println!(
        "| push of the tree (all new; up to 32 small chunks in flight) | {:.3} s | {:.0} |",
        push_t.as_secs_f64(),
        r.files as f64 / push_t.as_secs_f64()
    );
    let (mut mat, mut cp) = (Vec::new(), Vec::new());
    let mut linked = 0;
    for i in 0..a.runs {
        let dest = a.dir.join(format!("mat{i}"));
        remove_tree(&dest).unwrap();
        let t = Instant::now();
        let m = svdb.materialize(&r.uri, &dest).await.unwrap();
        mat.push(t.elapsed());
        linked = m.linked;
        remove_tree(&dest).unwrap();
        let dest = a.dir.join(format!("cp{i}"));
        let _ = std::fs::remove_dir_all(&dest);
        cp.push(time_cmd(Command::new("cp").arg("-a").arg(&tree).arg(&dest)));
        std::fs::remove_dir_all(&dest).unwrap();
    }
    let ratio = median_f(
        mat.iter()
            .zip(&cp)
            .map(|(m, c)| c.as_secs_f64() / m.as_secs_f64())
            .collect(),
    );
    let d = median(mat);
    println!(
        "| materialize (verify + hard link; {linked} of {} linked) | {:.3} s | {:.0} |",
        r.files,
        d.as_secs_f64(),
        r.files as f64 / d.as_secs_f64()
    );
    let d = median(cp);
    println!(
        "| peer: `cp -a` of the source tree | {:.3} s | {:.0} |",
        d.as_secs_f64(),
        r.files as f64 / d.as_secs_f64()
    );
    println!();
    println!("materialize vs `cp -a`: {ratio:.2}× as fast (median of per-run ratios)");
    remove_tree(&store).unwrap();
}
