//! Embedded chain benchmark (docs/BENCHMARKS.md, "Embedded chain: cost per
//! transaction"): the latency of a job submission and of an assignment on an
//! [`EmbeddedEvm`] persisted in a temporary directory, as the chain's
//! history grows.
//!
//! Deploys the six contracts, registers and certifies a node, then for each
//! point N (default 10 and 10 000): fills the chain up to N prior jobs (each
//! submitted and assigned, as the engine does), then times `samples` more
//! `submit_job` calls and `samples` `assign` calls one by one (median, p95,
//! max), times a fresh `EmbeddedEvm::open` of the same directory, and
//! reports the bytes on disk.
//!
//! Run: `bash bench/chain.sh [--points 10,10000] [--samples 50] [--dir DIR]`
//! (= `cargo run --release -p artha-engine --example chain_growth -- …`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "embedded-chain")]
mod bench {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use artha_core::{
        Amount, ChainSubmission, JobId, NodeId, NodeRegistration, ProofChain, Registry,
    };
    use artha_engine::chain::contracts::Params;
    use artha_engine::chain::embedded::EmbeddedEvm;

    /// Price per GPU-second of the node and of every job (0.001 ARTH).
    const RATE: u128 = 1_000_000_000_000_000;
    const STEPS: u64 = 10;

    fn job_id(i: u64) -> JobId {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&i.to_be_bytes());
        b[8] = 0x1b;
        JobId::from_bytes(b)
    }

    fn submission(i: u64) -> ChainSubmission {
        ChainSubmission {
            job_id: job_id(i),
            spec: artha_core::Cid::of(&i.to_be_bytes()),
            max_steps: STEPS,
            price_per_step: Amount::from_wei(RATE),
            budget: Amount::from_wei(RATE * u128::from(STEPS)),
        }
    }

    fn disk_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1e3
    }

    /// (median, p95, max) in milliseconds.
    fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
        v.sort();
        let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        (ms(at(0.5)), ms(at(0.95)), ms(v[v.len() - 1]))
    }

    struct Args {
        points: Vec<u64>,
        samples: u64,
        dir: Option<PathBuf>,
    }

    fn args() -> Args {
        let mut a = Args {
            points: vec![10, 10_000],
            samples: 50,
            dir: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(k) = it.next() {
            let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
            match k.as_str() {
                "--points" => a.points = v.split(',').map(|p| p.parse().unwrap()).collect(),
                "--samples" => a.samples = v.parse().unwrap(),
                "--dir" => a.dir = Some(PathBuf::from(v)),
                other => panic!("unknown argument {other}"),
            }
        }
        a
    }

    #[tokio::main(flavor = "current_thread")]
    pub(super) async fn main() {
        let args = args();
        let tmp = match &args.dir {
            Some(d) => {
                std::fs::create_dir_all(d).unwrap();
                tempfile::tempdir_in(d).unwrap()
            }
            None => tempfile::tempdir().unwrap(),
        };
        // The engine's own assembly: five development accounts, the
        // contracts deployed, one client per party.
        let setup = artha_engine::chain::setup::open_embedded(
            &tmp.path().join("chain"),
            "bench",
            Params::default(),
        )
        .await
        .unwrap();
        let dir = tmp.path().join("chain").join("evm");
        let evm: Arc<EmbeddedEvm> = setup.dev.clone().unwrap();
        let c = setup.parties.clone();
        let node = NodeId::from_bytes([0x4e; 16]);
        c.register_node(&NodeRegistration {
            node,
            gpus: 8,
            gpu_memory_mib: 81_920,
            price_per_gpu_second: Amount::from_wei(RATE),
            region: "local".into(),
            runtimes: vec!["mlp".into()],
            stake: Amount::from_arth(1).unwrap(),
        })
        .await
        .unwrap();
        setup
            .attestor
            .as_ref()
            .unwrap()
            .certify(&node)
            .await
            .unwrap();
        println!(
            "embedded chain in {} ({} samples per point)",
            dir.display(),
            args.samples
        );
        println!(
            "{:>7} {:>9} | {:>24} | {:>24} | {:>9} | {:>10}",
            "prior",
            "fill s",
            "submit_job ms med/p95/max",
            "assign ms med/p95/max",
            "open ms",
            "disk MB"
        );
        let mut jobs = 0u64;
        for &point in &args.points {
            let fill = Instant::now();
            while jobs < point {
                c.submit_job(&submission(jobs)).await.unwrap();
                c.assign(&job_id(jobs), &node).await.unwrap();
                jobs += 1;
            }
            let fill = fill.elapsed();
            let first = jobs;
            let mut submit = Vec::new();
            for i in first..first + args.samples {
                let t = Instant::now();
                c.submit_job(&submission(i)).await.unwrap();
                submit.push(t.elapsed());
            }
            let mut assign = Vec::new();
            for i in first..first + args.samples {
                let t = Instant::now();
                c.assign(&job_id(i), &node).await.unwrap();
                assign.push(t.elapsed());
            }
            jobs += args.samples;
            let t = Instant::now();
            let reopened = EmbeddedEvm::open(&dir).unwrap();
            let open = t.elapsed();
            assert_eq!(reopened.block_number(), evm.block_number());
            drop(reopened);
            let (sm, sp, sx) = stats(submit);
            let (am, ap, ax) = stats(assign);
            println!(
                "{point:>7} {:>9.1} | {sm:>7.2} {sp:>7.2} {sx:>8.2} | {am:>7.2} {ap:>7.2} {ax:>8.2} | {:>9.1} | {:>10.1}",
                fill.as_secs_f64(),
                ms(open),
                disk_bytes(&dir) as f64 / 1e6
            );
        }
        println!("blocks: {}", evm.block_number());
        let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                (e.file_name().to_string_lossy().into_owned(), len)
            })
            .collect();
        files.sort();
        for (name, len) in files {
            println!("  {name}: {:.1} MB", len as f64 / 1e6);
        }
    }
}

#[cfg(feature = "embedded-chain")]
fn main() {
    bench::main();
}

#[cfg(not(feature = "embedded-chain"))]
fn main() {
    eprintln!("chain_growth needs the `embedded-chain` feature of artha-engine");
    std::process::exit(2);
}
