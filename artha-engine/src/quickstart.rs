//! The quickstart flow's inputs: a small, real, reproducible dataset and the
//! job spec that trains on it.
//!
//! The dataset is a two-class problem (two Gaussian blobs in 4 dimensions,
//! 512 rows, CSV with a header, label last), generated from a seed by a
//! SplitMix64 stream and a Box–Muller transform, so every machine produces
//! byte-identical files and therefore the same CID.

use std::fmt::Write as _;
use std::path::PathBuf;

use artha_core::{
    Amount, ArthaUri, Cid, CostModel, Estimate, InputRef, JobKind, JobSpec, Result, Runtime,
};

use crate::home::EngineHome;

/// Default price per GPU-second of the embedded node: 0.001 ARTH.
pub const DEFAULT_RATE_WEI: u128 = 1_000_000_000_000_000;

/// SplitMix64: a tiny counter-based generator with a fixed output for a
/// seed on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A stream starting at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in (0, 1].
    pub fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal sample (Box–Muller).
    pub fn next_normal(&mut self) -> f64 {
        let (u1, u2) = (self.next_unit(), self.next_unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// A CSV of `rows` samples: features `x0..x3`, then `label` (0 or 1).
/// Class 1 is shifted by +1.5 on every feature, so a linear model separates
/// the classes well but not perfectly.
pub fn synthetic_dataset(seed: u64, rows: usize) -> String {
    let mut rng = SplitMix64::new(seed);
    let mut out = String::from("x0,x1,x2,x3,label\n");
    for i in 0..rows {
        let label = i % 2;
        let shift = if label == 1 { 1.5 } else { 0.0 };
        for _ in 0..4 {
            let _ = write!(out, "{:.6},", rng.next_normal() + shift);
        }
        let _ = writeln!(out, "{label}");
    }
    out
}

/// What quickstart will run.
#[derive(Debug, Clone)]
pub struct QuickstartPlan {
    /// Where the dataset was written.
    pub dataset_path: PathBuf,
    /// The dataset's content id.
    pub dataset_cid: Cid,
    /// The training job.
    pub spec: JobSpec,
    /// Its cost estimate at the embedded node's rate.
    pub estimate: Estimate,
}

/// Writes the quickstart dataset into `<home>/quickstart/` and builds the
/// validated training spec for it.
pub fn prepare(home: &EngineHome) -> Result<QuickstartPlan> {
    let dir = home.dir("quickstart");
    let io = |e: std::io::Error| {
        artha_core::Error::new(
            artha_core::ErrorKind::Internal,
            "cannot write the quickstart dataset",
        )
        .with_context("path", dir.display().to_string())
        .with_source(e)
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let csv = synthetic_dataset(42, 512);
    let dataset_path = dir.join("data.csv");
    std::fs::write(&dataset_path, csv.as_bytes()).map_err(io)?;
    let dataset_cid = Cid::of(csv.as_bytes());

    let model = CostModel::new(Amount::from_wei(DEFAULT_RATE_WEI));
    let mut spec = JobSpec::new(JobKind::Train, Runtime::Native("mlp".into()), Amount::ZERO);
    spec.dataset = Some(InputRef::Uri(ArthaUri::new(dataset_cid)));
    spec.hyper.epochs = 3;
    spec.hyper.batch_size = 32;
    spec.hyper.learning_rate = 0.05;
    spec.hyper.seed = 42;
    spec.resources.gpus = 1;
    spec.resources.gpu_memory_mib = 512;
    spec.resources.max_duration_secs = 120;
    spec.proof_window = 16;
    let estimate = model.estimate(&spec)?;
    spec.budget = estimate.cost;
    spec.validate_with(&model)?;
    Ok(QuickstartPlan {
        dataset_path,
        dataset_cid,
        spec,
        estimate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_is_reproducible_and_balanced() {
        let a = synthetic_dataset(42, 512);
        assert_eq!(a, synthetic_dataset(42, 512));
        assert_ne!(a, synthetic_dataset(43, 512));
        let rows: Vec<&str> = a.lines().skip(1).collect();
        assert_eq!(rows.len(), 512);
        let ones = rows.iter().filter(|r| r.ends_with(",1")).count();
        assert_eq!(ones, 256);
        // Class means differ by about 1.5 on x0.
        let mean = |label: &str| {
            let xs: Vec<f64> = rows
                .iter()
                .filter(|r| r.ends_with(label))
                .map(|r| r.split(',').next().unwrap().parse::<f64>().unwrap())
                .collect();
            xs.iter().sum::<f64>() / xs.len() as f64
        };
        let gap = mean(",1") - mean(",0");
        assert!((1.2..1.8).contains(&gap), "gap {gap}");
    }

    #[test]
    fn prepare_writes_data_and_a_valid_spec() {
        let tmp = tempfile::tempdir().unwrap();
        let home = EngineHome::open(tmp.path()).unwrap();
        let plan = prepare(&home).unwrap();
        let bytes = std::fs::read(&plan.dataset_path).unwrap();
        assert_eq!(Cid::of(&bytes), plan.dataset_cid);
        plan.spec.validate().unwrap();
        assert_eq!(plan.estimate.gpu_seconds, 120);
        assert_eq!(plan.spec.budget.wei(), 120 * DEFAULT_RATE_WEI);
    }
}
