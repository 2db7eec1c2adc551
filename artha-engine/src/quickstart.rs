//! `arthai quickstart`'s flow: a small, real, reproducible dataset and an
//! initial model, pushed and registered; a training job on the native
//! runtime; proofs committed and the job settled on the development chain.
//!
//! The dataset is a two-class problem (two Gaussian blobs in 4 dimensions,
//! 512 rows, CSV with a header, label last), generated from a seed by a
//! SplitMix64 stream and a Box–Muller transform, so every machine produces
//! byte-identical files and therefore the same CID.
//!
//! With [`QuickstartModel::Llama`] (`arthai quickstart --lm`) it trains the
//! native runtime's language model (`runtimes/LM.md`) instead: a small
//! llama (2 layers, width 64, char tokens, context 32) on a generated text
//! of sentences over a fixed vocabulary ([`synthetic_text`], ~16 KB, the
//! same bytes on every machine).

use std::fmt::Write as _;

use artha_core::{
    Amount, CostModel, DatasetId, Estimate, InputRef, JobId, JobKind, JobSpec, ModelId, Result,
    Runtime,
};

pub use crate::engine::DEFAULT_RATE_WEI;
use crate::engine::{DatasetEntry, Engine, ModelEntry, ModelRegistration};
use crate::fsutil::{io_err, write_atomic};
use crate::jobs::{JobPhase, JobRecord};

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

/// The initial model quickstart registers: an MLP classifier architecture
/// (no weights; the runtime initialises them from the seed).
pub const INITIAL_MODEL_CONFIG: &str =
    "{\"kind\": \"mlp\", \"task\": \"classify\", \"hidden\": [16], \"classes\": 2}\n";

/// The language model `quickstart --lm` registers (`runtimes/LM.md`).
pub const INITIAL_LM_CONFIG: &str = "{\"kind\": \"llama\", \"tokenizer\": \"char\", \"hidden_size\": 64, \
     \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128, \
     \"max_position_embeddings\": 32}\n";

/// Which model quickstart trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuickstartModel {
    /// An MLP classifier on two Gaussian blobs (the default).
    #[default]
    Mlp,
    /// The native runtime's llama language model on a generated text.
    Llama,
}

/// A text of `words` words in sentences, drawn by a seeded SplitMix64
/// stream from a fixed vocabulary: the same bytes on every machine.
pub fn synthetic_text(seed: u64, words: usize) -> String {
    const VOCAB: &[&str] = &[
        "the",
        "node",
        "trains",
        "a",
        "model",
        "and",
        "proves",
        "every",
        "step",
        "on",
        "chain",
        "verifier",
        "replays",
        "window",
        "from",
        "its",
        "checkpoint",
        "pays",
        "for",
        "work",
        "small",
        "language",
        "learns",
        "text",
    ];
    let mut rng = SplitMix64::new(seed);
    let mut out = String::new();
    let mut sentence = 0;
    for _ in 0..words {
        let w = VOCAB[(rng.next_u64() % VOCAB.len() as u64) as usize];
        if sentence == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
        } else {
            out.push_str(w);
        }
        sentence += 1;
        if sentence >= 4 + (rng.next_u64() % 6) as usize {
            out.push_str(".\n");
            sentence = 0;
        } else {
            out.push(' ');
        }
    }
    out.push('\n');
    out
}

/// What quickstart did.
#[derive(Debug, Clone)]
pub struct QuickstartReport {
    /// The dataset it registered.
    pub dataset: DatasetEntry,
    /// The initial model it registered.
    pub initial_model: ModelEntry,
    /// The training job.
    pub job: JobId,
    /// Its cost estimate (the budget locked in escrow).
    pub estimate: Estimate,
}

/// The training spec quickstart submits.
pub fn spec(model: ModelId, dataset: DatasetId, cost: &CostModel) -> Result<(JobSpec, Estimate)> {
    spec_for(QuickstartModel::Mlp, model, dataset, cost)
}

/// The training spec quickstart submits for `which` model.
pub fn spec_for(
    which: QuickstartModel,
    model: ModelId,
    dataset: DatasetId,
    cost: &CostModel,
) -> Result<(JobSpec, Estimate)> {
    // (runtime, epochs, batch, learning rate, time limit in seconds)
    let (runtime, epochs, batch, lr, secs) = match which {
        QuickstartModel::Mlp => ("mlp", 3, 32, 0.05, 120),
        QuickstartModel::Llama => ("llama", 2, 16, 0.01, 300),
    };
    let mut spec = JobSpec::new(
        JobKind::Train,
        Runtime::Native(runtime.into()),
        Amount::ZERO,
    );
    spec.model = Some(InputRef::Id(model));
    spec.dataset = Some(InputRef::Id(dataset));
    spec.hyper.epochs = epochs;
    spec.hyper.batch_size = batch;
    spec.hyper.learning_rate = lr;
    spec.hyper.seed = 42;
    spec.resources.gpus = 1;
    spec.resources.gpu_memory_mib = 512;
    spec.resources.max_duration_secs = secs;
    spec.proof_window = 16;
    let estimate = cost.estimate(&spec)?;
    spec.budget = estimate.cost;
    spec.validate_with(cost)?;
    Ok((spec, estimate))
}

/// Quickstart up to submission: writes a small real dataset (512 rows, two
/// Gaussian classes) and the initial model's architecture under
/// `<home>/quickstart/`, pushes and registers both, and submits the training
/// job. Follow it with [`Engine::job`] (its events, or `wait`), then
/// [`finish`].
pub async fn start(engine: &Engine) -> Result<QuickstartReport> {
    start_with(engine, QuickstartModel::Mlp).await
}

/// [`start`] for `which` model (files under `<home>/quickstart/` or, for
/// the language model, `<home>/quickstart-lm/`).
pub async fn start_with(engine: &Engine, which: QuickstartModel) -> Result<QuickstartReport> {
    let lm = which == QuickstartModel::Llama;
    let dir = engine
        .home()
        .join(if lm { "quickstart-lm" } else { "quickstart" });
    let io = |e: std::io::Error| io_err("write the quickstart files", &dir, e);
    std::fs::create_dir_all(dir.join("model")).map_err(io)?;
    // The text goes in a directory (`train.txt`): a single-file dataset is
    // staged under the name the MLP reads (`data.csv`).
    if lm {
        std::fs::create_dir_all(dir.join("text")).map_err(io)?;
    }
    let (data, body, config, name, tags, arch) = if lm {
        (
            dir.join("text").join("train.txt"),
            synthetic_text(42, 3000),
            INITIAL_LM_CONFIG,
            "quickstart-text",
            "synthetic,text",
            "llama",
        )
    } else {
        (
            dir.join("data.csv"),
            synthetic_dataset(42, 512),
            INITIAL_MODEL_CONFIG,
            "quickstart-blobs",
            "synthetic,classification",
            "mlp",
        )
    };
    write_atomic(&data, body.as_bytes())?;
    write_atomic(&dir.join("model").join("config.json"), config.as_bytes())?;
    let dataset = engine
        .register_dataset_path(
            if lm { dir.join("text") } else { data.clone() }.as_path(),
            &crate::engine::DatasetMeta {
                name: name.into(),
                tags: tags.into(),
                ..Default::default()
            },
        )
        .await?;
    let model_uri = engine.push(&dir.join("model")).await?.uri;
    let initial_model = engine
        .register_model(
            &model_uri,
            &ModelRegistration {
                name: format!("quickstart-{arch}"),
                architecture: arch.into(),
                version: "0".into(),
                parent: None,
                dataset: None,
                code_hash: None,
            },
        )
        .await?;
    let (spec, estimate) = spec_for(which, initial_model.id, dataset.id, &engine.cost_model())?;
    let job = engine.submit(spec).await?.id();
    Ok(QuickstartReport {
        dataset,
        initial_model,
        job,
        estimate,
    })
}

/// Quickstart's end on a development chain: waits for the job to finish,
/// moves the chain clock past the challenge period (as `anvil`'s
/// `evm_increaseTime` would) and settles; returns the final record.
pub async fn finish(engine: &Engine, job: &JobId) -> Result<JobRecord> {
    let r = engine.job(job)?.wait_for(JobPhase::is_terminal).await?;
    if r.phase == JobPhase::Completed {
        engine
            .dev_advance_time(artha_core::ProofChain::challenge_period_secs(engine.chain()) + 1)
            .await?;
        engine.settle_due().await?;
    }
    // Settled now, or (a failure) left as it is for the caller to report.
    engine.record(job)
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
    fn spec_is_valid_and_budget_is_the_estimate() {
        let cost = CostModel::new(Amount::from_wei(DEFAULT_RATE_WEI));
        let (spec, estimate) =
            spec(ModelId::derive(&[b"m"]), DatasetId::derive(&[b"d"]), &cost).unwrap();
        spec.validate().unwrap();
        assert_eq!(estimate.gpu_seconds, 120);
        assert_eq!(spec.budget.wei(), 120 * DEFAULT_RATE_WEI);
    }
}
