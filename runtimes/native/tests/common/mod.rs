//! Shared set-up for the tests that drive the `artha-runtime` binary: job
//! directories, generated datasets, running the program and reading back
//! its events.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use artha_core::protocol::RuntimeEvent;
use artha_core::{Blake3Digest, InferRecord, StepRecord};
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_artha-runtime");

/// A job's directories (the four mounts) under one temporary root, and the
/// environment it runs with.
pub struct Job {
    pub root: TempDir,
    pub model: PathBuf,
    pub data: PathBuf,
    pub checkpoints: PathBuf,
    pub artha: PathBuf,
    pub env: BTreeMap<String, String>,
}

impl Job {
    /// Empty mounts and the protocol environment pointing at them.
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let dir = |n: &str| {
            let p = root.path().join(n);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let (model, data, checkpoints, artha) =
            (dir("model"), dir("data"), dir("checkpoints"), dir("artha"));
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("ARTHA_MODEL_DIR", &model),
            ("ARTHA_DATA_DIR", &data),
            ("ARTHA_CHECKPOINT_DIR", &checkpoints),
            ("ARTHA_EVENTS", &artha.join("events.jsonl")),
        ] {
            env.insert(k.to_string(), v.display().to_string());
        }
        env.insert("ARTHA_JOB_ID".into(), "test".into());
        env.insert("ARTHA_LOG_EVERY".into(), "0".into());
        Job {
            root,
            model,
            data,
            checkpoints,
            artha,
            env,
        }
    }

    /// Sets environment variables.
    pub fn set(&mut self, pairs: &[(&str, &str)]) -> &mut Self {
        for (k, v) in pairs {
            self.env.insert((*k).to_string(), (*v).to_string());
        }
        self
    }

    /// Removes an environment variable.
    pub fn unset(&mut self, k: &str) -> &mut Self {
        self.env.remove(k);
        self
    }

    /// Writes a file into the data directory.
    pub fn data_file(&self, name: &str, body: &[u8]) -> PathBuf {
        let p = self.data.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    /// Runs the binary with `args` and exactly this job's environment (the
    /// events file is emptied first, so the outcome holds this run's
    /// events only).
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_with(args, &[])
    }

    /// [`Job::run`] with extra variables for this run only.
    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Outcome {
        let events = PathBuf::from(&self.env["ARTHA_EVENTS"]);
        let _ = std::fs::remove_file(&events);
        let out = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .envs(extra.iter().copied())
            .output()
            .unwrap();
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        let events = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                RuntimeEvent::parse_line(i as u64 + 1, l)
                    .unwrap_or_else(|e| panic!("events line {} does not parse: {e}\n{l}", i + 1))
            })
            .collect();
        Outcome {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            events,
        }
    }

    /// Runs and asserts success.
    pub fn run_ok(&self, args: &[&str]) -> Outcome {
        let o = self.run(args);
        o.assert_ok();
        o
    }

    /// A checkpoint file's bytes.
    pub fn checkpoint_bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.checkpoints.join(name)).unwrap()
    }
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub events: Vec<RuntimeEvent>,
}

impl Outcome {
    pub fn assert_ok(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "run failed\nstderr: {}\nevents: {:?}",
            self.stderr,
            self.errors()
        );
        assert!(self.errors().is_empty(), "{:?}", self.errors());
    }

    pub fn steps(&self) -> Vec<StepRecord> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Step(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    pub fn infers(&self) -> Vec<InferRecord> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Infer(r) => Some(*r),
                _ => None,
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Error { message } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn checkpoints(&self) -> Vec<(String, u64)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Checkpoint { path, step } => Some((path.clone(), *step)),
                _ => None,
            })
            .collect()
    }

    /// The `complete` event: steps run and final weights.
    pub fn complete(&self) -> (u64, Blake3Digest) {
        let c: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Complete {
                    steps,
                    final_weights,
                } => Some((*steps, *final_weights)),
                _ => None,
            })
            .collect();
        assert_eq!(c.len(), 1, "one complete event expected: {:?}", self.events);
        c[0]
    }

    /// The events a verifier compares: everything but `log` lines (which
    /// carry timings).
    pub fn proof_events(&self) -> Vec<RuntimeEvent> {
        self.events
            .iter()
            .filter(|e| !matches!(e, RuntimeEvent::Log { .. }))
            .cloned()
            .collect()
    }

    /// Asserts the run failed with exit `code`, one `error` event whose
    /// message contains `needle`, and not a single step record or
    /// `complete` event.
    pub fn assert_failed(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; stderr: {}; events: {:?}",
            self.stderr,
            self.events
        );
        let errors = self.errors();
        assert_eq!(errors.len(), 1, "{:?}", self.events);
        assert!(
            errors[0].contains(needle),
            "error `{}` should mention `{needle}`",
            errors[0]
        );
        assert!(self.stderr.contains(needle), "stderr: {}", self.stderr);
        assert!(self.steps().is_empty(), "step records: {:?}", self.steps());
        assert!(
            !self
                .events
                .iter()
                .any(|e| matches!(e, RuntimeEvent::Complete { .. })),
            "{:?}",
            self.events
        );
    }
}

/// A small deterministic generator for test data (SplitMix64).
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen(seed)
    }

    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// A table of `f32` features and one target per row.
#[derive(Debug, Clone)]
pub struct Table {
    pub x: Vec<Vec<f32>>,
    pub y: Vec<f32>,
}

impl Table {
    pub fn features(&self) -> usize {
        self.x[0].len()
    }

    /// CSV with a header, the target last (`f32` values printed so that
    /// they parse back exactly).
    pub fn csv(&self) -> Vec<u8> {
        let mut s: String = (0..self.features())
            .map(|j| format!("x{j},"))
            .collect::<String>();
        s.push_str("target\n");
        for (row, y) in self.x.iter().zip(&self.y) {
            for v in row {
                s.push_str(&format!("{v},"));
            }
            s.push_str(&format!("{y}\n"));
        }
        s.into_bytes()
    }

    /// CSV of the inputs only.
    pub fn inputs_csv(&self) -> Vec<u8> {
        let mut s: String = (0..self.features())
            .map(|j| format!("x{j}"))
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
        for row in &self.x {
            let cells: Vec<String> = row.iter().map(f32::to_string).collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        s.into_bytes()
    }

    /// `x.npy` (`[n, features]`) and `y.npy` (`[n]`).
    pub fn npy(&self) -> (Vec<u8>, Vec<u8>) {
        let flat: Vec<f32> = self.x.iter().flatten().copied().collect();
        (
            artha_runtime::data::npy_f32_bytes(&[self.x.len(), self.features()], &flat),
            artha_runtime::data::npy_f32_bytes(&[self.y.len()], &self.y),
        )
    }

    /// Row-major inputs.
    pub fn flat_x(&self) -> Vec<f32> {
        self.x.iter().flatten().copied().collect()
    }
}

/// `n` samples of `classes` Gaussian blobs (σ = 1) in `features`
/// dimensions, centred `spread` apart on the axes, rows interleaved.
pub fn blobs(seed: u64, n: usize, features: usize, classes: usize, spread: f64) -> Table {
    let mut g = Gen::new(seed);
    let mut x = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % classes;
        let row = (0..features)
            .map(|j| {
                let centre = if j == c % features {
                    if c < features { spread } else { -spread }
                } else {
                    0.0
                };
                (centre + g.normal()) as f32
            })
            .collect();
        x.push(row);
        y.push(c as f32);
    }
    Table { x, y }
}

/// `n` samples of `y = 1.5 x0 − 2 x1 + x0 x2 + 0.5 + ε` (ε ~ N(0, 0.05²)),
/// `x` uniform in `[−1, 1]³`.
pub fn regression(seed: u64, n: usize) -> Table {
    let mut g = Gen::new(seed);
    let mut x = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let r: Vec<f64> = (0..3).map(|_| g.uniform(-1.0, 1.0)).collect();
        let t = 1.5 * r[0] - 2.0 * r[1] + r[0] * r[2] + 0.5 + 0.05 * g.normal();
        x.push(r.iter().map(|&v| v as f32).collect());
        y.push(t as f32);
    }
    Table { x, y }
}

/// Variance of `v`.
pub fn variance(v: &[f32]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
    v.iter()
        .map(|&a| (f64::from(a) - mean).powi(2))
        .sum::<f64>()
        / n
}

/// Mean loss of the steps of the last epoch.
pub fn last_epoch_loss(steps: &[StepRecord]) -> f64 {
    let last = steps.last().unwrap().epoch;
    let l: Vec<f64> = steps
        .iter()
        .filter(|s| s.epoch == last)
        .map(|s| s.loss)
        .collect();
    l.iter().sum::<f64>() / l.len() as f64
}

/// Parses `predictions.csv`: header, then rows of numbers.
pub fn read_predictions(path: &Path) -> (Vec<String>, Vec<Vec<f32>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse::<f32>().unwrap()).collect())
        .collect();
    (header, rows)
}

/// Asserts steps are numbered `from..=to` without gaps.
pub fn assert_contiguous(steps: &[StepRecord], from: u64, to: u64) {
    let got: Vec<u64> = steps.iter().map(|s| s.step).collect();
    let want: Vec<u64> = (from..=to).collect();
    assert_eq!(got, want);
}
