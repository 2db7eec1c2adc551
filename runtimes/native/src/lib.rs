//! # artha-runtime
//!
//! Artha's native runtime: trains and serves small real models (an MLP
//! classifier/regressor, logistic or linear regression) over CSV or NPY
//! data on the CPU with [candle](https://docs.rs/candle-core) tensors, and
//! is **bit-deterministic**: the same seed, data and hyper-parameters give
//! the same step records (loss, gradient, weight and batch digests) on
//! every run, for any `RAYON_NUM_THREADS`, on any x86-64 or other IEEE-754
//! machine, for the glibc and the static musl build alike. That is what
//! lets a verifier replay an audited window of steps from its checkpoint
//! and compare every Merkle leaf (DESIGN §6).
//!
//! ## Protocol
//!
//! It speaks the runtime protocol of [`artha_core::protocol`]: events
//! (`step`, `checkpoint`, `infer`, `log`, `complete`, `error`) go one JSON
//! object per line to `$ARTHA_EVENTS`, serialised by
//! [`artha_core::protocol::RuntimeEvent`] itself. On failure — missing or
//! malformed data, shape mismatches, a non-finite loss, a checkpoint of
//! another model or run, an unwritable checkpoint directory — it writes an
//! `error` event with the reason and exits non-zero, and it never reports
//! a step it did not compute.
//!
//! ## Environment
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `ARTHA_MODE` (or `ARTHA_JOB_KIND`) | `train` or `infer` (a first argument `train`/`infer` overrides) | `train` |
//! | `ARTHA_JOB_ID` | shown in the banner | `local` |
//! | `EPOCHS`, `BATCH_SIZE`, `LEARNING_RATE`, `ARTHA_SEED` | training | 1, 32, 0.001, 0 |
//! | `ARTHA_PROOF_WINDOW` | proof window; also the default checkpoint interval | 100 |
//! | `ARTHA_EVENTS` | events file | `/artha/events.jsonl` |
//! | `ARTHA_MODEL_DIR`, `ARTHA_DATA_DIR`, `ARTHA_CHECKPOINT_DIR` | the mounts | `/model`, `/data`, `/checkpoints` |
//! | `ARTHA_OUTPUT_DIR` | where inference writes `predictions.csv` | the checkpoint dir |
//! | `ARTHA_MODEL_KIND` | `mlp` or `logreg` | `mlp` |
//! | `ARTHA_TASK` | `classify` or `regress` | `classify` |
//! | `ARTHA_HIDDEN` | hidden widths, e.g. `128,64` | `64` (none for `logreg`) |
//! | `ARTHA_CLASSES` | number of classes | largest label + 1 |
//! | `ARTHA_OPTIMIZER` | `adamw` or `sgd` | `adamw` |
//! | `ARTHA_WEIGHT_DECAY`, `ARTHA_MOMENTUM` | optimizer settings | 0.01 (AdamW) / 0, 0 |
//! | `ARTHA_CHECKPOINT_EVERY` | steps between checkpoints (0 = final only) | the proof window |
//! | `ARTHA_RESUME` | `latest`, or a checkpoint file (absolute, or in the checkpoint then model dir) | none |
//! | `ARTHA_MAX_STEPS` | stop after this global step (replaying a window) | none |
//! | `ARTHA_DATA_FILE` | data file name in the data dir | see [`data`] |
//! | `ARTHA_WEIGHTS` | weights file name in the model dir (inference) | see [`infer`] |
//! | `ARTHA_LOG_EVERY` | progress line every N steps | a tenth of an epoch |
//! | `ARTHA_DEVICE` | `cpu`, `cuda` or `cuda:N` (feature `cuda`) | `cpu` |
//! | `RAYON_NUM_THREADS` | CPU threads (results do not depend on it) | all cores |
//!
//! `$ARTHA_MODEL_DIR/config.json` may set `kind`, `task`, `hidden` and
//! `classes` (the environment wins). In training, a
//! `$ARTHA_MODEL_DIR/model.safetensors` (e.g. another job's
//! `final.safetensors`) gives the initial weights.
//!
//! Exit codes: 0 done; 2 bad input (configuration, data, checkpoint); 3 the
//! loss went non-finite; 4 a file could not be written; 1 anything else.
//!
//! ## Determinism
//!
//! - Randomness (initialisation, shuffling) comes from a counter-based
//!   generator addressed by `(seed, purpose, index, counter)` ([`rng`]), so
//!   the only "RNG position" a checkpoint needs is its step number.
//! - Every reduction on CPU (matrix products, bias gradients, the loss)
//!   runs in the fixed-order kernels of [`kernels`], with `exp`/`ln` from
//!   the pure-Rust `libm`; candle's own CPU matmul (`gemm`) is not used
//!   because it selects kernels and blocking by CPU features and cache
//!   sizes. Element-wise operations stay with candle (IEEE 754 rounds them
//!   identically everywhere).
//! - Checkpoints carry the weights, the optimizer state and its step count
//!   ([`checkpoint`]); resuming from the checkpoint after step `k` yields
//!   steps `k+1…` identical to an uninterrupted run. Checkpoint files are
//!   byte-for-byte reproducible (sorted metadata), so the same job gives
//!   the same checkpoint CIDs.
//! - With `--features cuda` the model runs on a GPU through candle's CUDA
//!   kernels: faster, deterministic per GPU model, but not bit-equal to the
//!   CPU path; audits replay on CPU.
//!
//! ## Digests
//!
//! See [`digest`]: the gradient, weight and batch digests of a step record
//! are named-tensor digests over canonical tensor digests, reproduced by
//! the Python helper for PyTorch runtimes. On CPU they are computed as a
//! task on the rayon pool while the next step runs ([`train::Recorder`]);
//! `step` events still come out in step order, each before the checkpoint
//! event that follows it. What recording costs is in `docs/BENCHMARKS.md`
//! ("Native runtime").
#![deny(missing_docs)]

/// `println!` that never panics: a runtime outlives the engine that
/// launched it (it runs in its own process group and the next engine
/// re-attaches to it), so its stdout may become a pipe with no reader.
/// The events file is the record; a lost progress line is not an error.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that never panics (see `say!`).
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod digest;
pub mod events;
pub mod infer;
pub mod kernels;
pub mod lm;
pub mod model;
pub mod optim;
pub mod rng;
pub mod train;

use artha_core::{Error, ErrorKind, Result};

pub use config::{Mode, RunConfig};
pub use events::EventSink;

/// Runs the job `cfg` describes, reporting to `sink`.
pub fn run(cfg: &RunConfig, sink: &mut EventSink) -> Result<()> {
    match cfg.mode {
        Mode::Train => train::run(cfg, sink),
        Mode::Infer => infer::run(cfg, sink),
    }
}

/// The process exit code for an error (see the crate docs).
pub fn exit_code(e: &Error) -> u8 {
    if e.context_value("field") == Some("loss") {
        return 3;
    }
    match e.kind() {
        ErrorKind::InvalidInput
        | ErrorKind::NotFound
        | ErrorKind::Corrupted
        | ErrorKind::Unsupported => 2,
        ErrorKind::PermissionDenied => 4,
        _ => 1,
    }
}

/// One line describing an error with its context, for the `error` event.
pub fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    for (k, v) in e.context() {
        if !s.contains(v.as_str()) {
            s.push_str(&format!(" [{k}: {v}]"));
        }
    }
    s
}
