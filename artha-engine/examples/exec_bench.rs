//! Executor benchmark (docs/BENCHMARKS.md, "Executors").
//!
//! 1. Start latency: `DockerExecutor::launch` → first event line on the
//!    host, against `docker run --rm` of the same image doing the same thing
//!    (same mounts, network none), interleaved in the same run.
//! 2. 50 concurrent short jobs over 8 simulated GPUs, one GPU each: wall
//!    time, and a check that no GPU index was held by two jobs at once.
//!
//! Run: `ARTHA_TESTRT_IMAGE=$(. tests/lib/images.sh; testrt_image) \
//!       cargo run --release -p artha-engine --example exec_bench`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artha_core::{Executor, JobId, LaunchSpec, Limits, Mounts, NodeId, Runtime};
use artha_engine::exec::{
    DockerConfig, DockerExecutor, EVENTS_FILE, GpuAllocator, GpuInventory, supervise,
};

fn job_dirs(root: &Path, job: &JobId) -> Mounts {
    let dir = root.join(job.to_string());
    for d in ["data", "checkpoints", "artha"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    Mounts {
        model: None,
        data: Some(dir.join("data")),
        checkpoints: dir.join("checkpoints"),
        artha: dir.join("artha"),
    }
}

fn spec(job: JobId, mounts: Mounts, image: &str, args: &[&str], gpus: Vec<u32>) -> LaunchSpec {
    LaunchSpec {
        job_id: job,
        node_id: NodeId::from_bytes([1; 16]),
        runtime: Runtime::Image(image.into()),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::new(),
        mounts,
        gpus,
        limits: Limits {
            cpu_millis: 1000,
            memory_mib: 128,
            pids: 32,
            max_duration: Duration::from_secs(60),
        },
        network: false,
    }
}

async fn first_event(path: &Path, t0: Instant) -> Duration {
    loop {
        if std::fs::metadata(path)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
        {
            return t0.elapsed();
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let image =
        std::env::var("ARTHA_TESTRT_IMAGE").expect("set ARTHA_TESTRT_IMAGE (see the doc comment)");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ex = DockerExecutor::connect(DockerConfig::new(root))
        .await
        .unwrap();
    let rounds = 15;
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        // Ours.
        let job = JobId::derive(&[b"bench-ours", &(i as u64).to_le_bytes()]);
        let m = job_dirs(root, &job);
        let ev = m.artha.join(EVENTS_FILE);
        let t0 = Instant::now();
        let h = ex
            .launch(spec(job, m, &image, &["events", "1"], vec![]))
            .await
            .unwrap();
        let d = first_event(&ev, t0).await;
        ex.wait(&h).await.unwrap();
        ex.remove(&h).await.unwrap();
        if i > 0 {
            ours.push(d);
        }
        // Peer: docker run --rm with the same mounts and settings.
        let job = JobId::derive(&[b"bench-peer", &(i as u64).to_le_bytes()]);
        let m = job_dirs(root, &job);
        std::process::Command::new("chown")
            .args(["65534:65534"])
            .arg(&m.artha)
            .status()
            .unwrap();
        let ev = m.artha.join(EVENTS_FILE);
        let t0 = Instant::now();
        let mut child = tokio::process::Command::new("docker")
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
            ])
            .args(["--read-only", "--user", "65534:65534", "-v"])
            .arg(format!("{}:/artha:rw", m.artha.display()))
            .args([&image, "events", "1"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let d = first_event(&ev, t0).await;
        child.wait().await.unwrap();
        if i > 0 {
            peer.push(d);
        }
    }
    let (o, p) = (median(&mut ours), median(&mut peer));
    println!(
        "start→first event, median of {} (first round discarded as warm-up):",
        rounds - 1
    );
    println!(
        "  DockerExecutor::launch  {:>7.1} ms",
        o.as_secs_f64() * 1e3
    );
    println!(
        "  docker run --rm         {:>7.1} ms",
        p.as_secs_f64() * 1e3
    );
    println!(
        "  ratio ours/peer         {:>7.2}×",
        o.as_secs_f64() / p.as_secs_f64()
    );

    // 50 concurrent short jobs over 8 simulated GPUs.
    let gpus = Arc::new(GpuAllocator::new(GpuInventory::simulated(8, 16_384)));
    let ex = Arc::new(ex);
    let intervals: Arc<Mutex<Vec<(u32, Instant, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..50u64 {
        let (ex, gpus, intervals, image) =
            (ex.clone(), gpus.clone(), intervals.clone(), image.clone());
        let root = root.to_path_buf();
        tasks.push(tokio::spawn(async move {
            let job = JobId::derive(&[b"bench-many", &n.to_le_bytes()]);
            let idx = loop {
                match gpus.allocate(&job, 1, 1024) {
                    Ok(i) => break i,
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            };
            let held = Instant::now();
            let m = job_dirs(&root, &job);
            let ev = m.artha.join(EVENTS_FILE);
            let h = ex
                .launch(spec(
                    job,
                    m,
                    &image,
                    &["events", "1", "sleep", "200"],
                    idx.clone(),
                ))
                .await
                .unwrap();
            let out = supervise(ex.as_ref(), &h, &ev, Duration::from_millis(20))
                .await
                .unwrap();
            assert!(out.failure.is_none(), "{:?}", out.failure);
            ex.remove(&h).await.unwrap();
            let released = Instant::now();
            gpus.release(&job).unwrap();
            intervals
                .lock()
                .unwrap()
                .extend(idx.iter().map(|i| (*i, held, released)));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = t0.elapsed();
    let iv = intervals.lock().unwrap();
    let mut collisions = 0;
    for (a, x) in iv.iter().enumerate() {
        for y in iv.iter().skip(a + 1) {
            if x.0 == y.0 && x.1 < y.2 && y.1 < x.2 {
                collisions += 1;
            }
        }
    }
    println!("50 concurrent jobs (1 GPU each, 8 simulated GPUs, each runs ~200 ms):");
    println!("  wall time               {:>7.2} s", wall.as_secs_f64());
    println!("  GPU-index collisions    {collisions}");
    assert_eq!(collisions, 0);
}
