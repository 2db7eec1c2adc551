//! Scheduler benchmark (docs/BENCHMARKS.md, "Scheduler"): 1 000 jobs placed
//! one after another over 10 000 nodes on one thread, each placement an
//! exact scan of every node (hard constraints, then the weighted score),
//! consuming GPUs as it goes.
//!
//! Run: `cargo run --release -p artha-engine --example sched_bench`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use artha_core::{Amount, Cid, JobId, JobKind, JobSpec, NodeId, PlacementRequest, Runtime};
use artha_engine::quickstart::SplitMix64;
use artha_engine::sched::{NodeTable, node_view};

const RUNTIMES: [&str; 6] = [
    "mlp",
    "logreg",
    "artha/torch:1",
    "artha/tf:1",
    "artha/jax:1",
    "artha/agent:1",
];
const REGIONS: [&str; 5] = ["us-west", "us-east", "eu-west", "eu-central", "ap-south"];
const MEM: [u64; 4] = [16_384, 24_576, 40_960, 81_920];

fn main() {
    let mut rng = SplitMix64::new(7);
    let mut pick = |n: u64| (rng.next_u64() % n) as usize;
    let pool: Vec<Cid> = (0..200u32).map(|i| Cid::of(&i.to_le_bytes())).collect();
    let nodes: Vec<_> = (0..10_000u32)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_le_bytes());
            let rts: Vec<&str> = RUNTIMES.iter().copied().filter(|_| pick(2) == 0).collect();
            let mut n = node_view(
                NodeId::from_bytes(id),
                1 + pick(8) as u32,
                MEM[pick(4)],
                &rts,
                Amount::from_wei(500_000_000_000_000 + pick(1_000) as u128 * 1_000_000_000_000),
            );
            n.region = REGIONS[pick(5)].into();
            n.sla = 0.9 + pick(100) as f64 / 1000.0;
            n.reputation = pick(1000) as f64 / 1000.0;
            n.certified = pick(20) != 0;
            n.cached = (0..pick(4)).map(|_| pool[pick(200)]).collect();
            n
        })
        .collect();
    let jobs: Vec<PlacementRequest> = (0..1_000u64)
        .map(|i| {
            let mut spec = JobSpec::new(
                JobKind::Train,
                Runtime::Native(RUNTIMES[pick(2)].into()),
                Amount::from_wei(1),
            );
            spec.resources.gpus = pick(3) as u32;
            spec.resources.gpu_memory_mib = if spec.resources.gpus == 0 {
                0
            } else {
                MEM[pick(3)]
            };
            PlacementRequest {
                job_id: JobId::derive(&[&i.to_le_bytes()]),
                spec,
                inputs: (0..1 + pick(2)).map(|_| pool[pick(200)]).collect(),
                region: (pick(2) == 0).then(|| REGIONS[pick(5)].to_string()),
                min_stake: Amount::ZERO,
            }
        })
        .collect();

    let build = Instant::now();
    let mut table = NodeTable::new(&nodes);
    let build = build.elapsed();
    let t0 = Instant::now();
    let mut placed = 0;
    let mut checksum = 0u64;
    for j in &jobs {
        if let Ok(p) = table.place(j) {
            placed += 1;
            checksum = checksum.wrapping_add(u64::from(p.node.as_bytes()[0]));
        }
    }
    let dt = t0.elapsed();
    println!("nodes 10000, jobs 1000, placed {placed} (checksum {checksum})");
    println!(
        "table build            {:>8.2} ms",
        build.as_secs_f64() * 1e3
    );
    println!("placement total        {:>8.2} ms", dt.as_secs_f64() * 1e3);
    println!(
        "per placement          {:>8.1} µs",
        dt.as_secs_f64() * 1e6 / jobs.len() as f64
    );
    println!(
        "placements/s           {:>8.0}",
        jobs.len() as f64 / dt.as_secs_f64()
    );
}
