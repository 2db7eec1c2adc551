//! The training loop.
//!
//! Step `k` (counted from 1 across epochs) belongs to epoch
//! `e = (k − 1) / steps_per_epoch` and takes batch `b = (k − 1) mod
//! steps_per_epoch` of that epoch's permutation ([`crate::rng::permutation`]
//! of `(seed, e)`), rows `b·B .. min((b+1)·B, rows)` (the last batch of an
//! epoch may be short). Everything a step computes is a function of the
//! seed, the data, the hyper-parameters and the weights and optimizer state
//! after step `k − 1`, which is exactly what the checkpoint after step
//! `k − 1` holds: replaying from it gives the same step records bit for bit.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use artha_core::protocol::RuntimeEvent;
use artha_core::{Blake3Digest, Error, ErrorKind, Result, StepRecord};
use candle_core::{Device, Tensor};

use crate::checkpoint::{self, TrainState};
use crate::config::{ModelFile, RunConfig};
use crate::data::{self, Dataset, Targets, Task};
use crate::digest::{NamedDigest, Sampler};
use crate::events::EventSink;
use crate::kernels::{self, tensor_err};
use crate::model::{Model, ModelConfig, ModelKind, params_digest};
use crate::optim::Optimizer;
use crate::rng::permutation;

/// Default hidden width of an MLP.
pub const DEFAULT_HIDDEN: usize = 64;

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The record (digests are zero until recorded).
    pub record: StepRecord,
    /// Samples in the batch.
    pub rows: usize,
    /// Correct predictions in the batch (classification).
    pub correct: usize,
}

/// A model, its optimizer, its data and its position.
#[derive(Debug)]
pub struct Trainer {
    model: Model,
    opt: Optimizer,
    data: Dataset,
    data_digest: Blake3Digest,
    device: Device,
    seed: u64,
    batch_size: usize,
    step: u64,
    steps_per_epoch: u64,
    perm: Option<(u64, Vec<u32>)>,
    started_from: Option<PathBuf>,
    names: Arc<[String]>,
    proof_window: u64,
    total_steps: u64,
}

fn mismatch(what: &str, ckpt: impl std::fmt::Debug, job: impl std::fmt::Debug) -> Error {
    Error::invalid(
        "checkpoint",
        format!("the checkpoint is of another {what}: it has {ckpt:?}, this job has {job:?}"),
    )
}

/// The architecture a job asks for: environment over `config.json` over
/// defaults, sized by the data.
pub fn wanted_config(cfg: &RunConfig, file: &ModelFile, data: &Dataset) -> Result<ModelConfig> {
    let kind = cfg.kind.or(file.kind).unwrap_or(ModelKind::Mlp);
    if let Some(Targets::Tokens { alphabet, .. }) = &data.y {
        if kind != ModelKind::Llama {
            return Err(Error::invalid(
                "ARTHA_MODEL_KIND",
                format!("{kind:?} does not train on text: set kind llama"),
            ));
        }
        let c = ModelConfig::llama(file.lm_config(alphabet.clone()));
        c.validate()?;
        return Ok(c);
    }
    if kind == ModelKind::Llama {
        return Err(Error::invalid(
            "data",
            "a llama model trains on a text (.txt) file",
        ));
    }
    let task = cfg.task.or(file.task).unwrap_or(Task::Classify);
    let hidden = cfg
        .hidden
        .clone()
        .or_else(|| file.hidden.clone())
        .unwrap_or_else(|| match kind {
            ModelKind::Mlp => vec![DEFAULT_HIDDEN],
            ModelKind::Logreg | ModelKind::Llama => vec![],
        });
    let outputs = match task {
        Task::Classify => cfg
            .classes
            .or(file.classes)
            .or_else(|| data.classes_needed())
            .unwrap_or(2)
            .max(2),
        Task::Regress => data.y.as_ref().map_or(1, Targets::dim),
    };
    let c = ModelConfig {
        kind,
        task,
        inputs: data.features,
        outputs,
        hidden,
        lm: None,
    };
    c.validate()?;
    Ok(c)
}

/// Checks that `have` (from a checkpoint) fits what the job set explicitly
/// and the data's shape.
fn check_model(
    have: &ModelConfig,
    cfg: &RunConfig,
    file: &ModelFile,
    data: &Dataset,
) -> Result<()> {
    if let Some(k) = cfg.kind.or(file.kind)
        && k != have.kind
    {
        return Err(mismatch("model kind", have.kind, k));
    }
    if let Some(lm) = &have.lm {
        if file.has_lm_fields() {
            let want = file.lm_config(lm.alphabet.clone());
            if want != *lm {
                return Err(mismatch("architecture (config.json)", lm, &want));
            }
        }
        return Ok(());
    }
    if let Some(t) = cfg.task.or(file.task)
        && t != have.task
    {
        return Err(mismatch("task", have.task, t));
    }
    if let Some(h) = cfg.hidden.as_ref().or(file.hidden.as_ref())
        && *h != have.hidden
    {
        return Err(mismatch("architecture (hidden layers)", &have.hidden, h));
    }
    if let Some(c) = cfg.classes.or(file.classes)
        && have.task == Task::Classify
        && c != have.outputs
    {
        return Err(mismatch("number of classes", have.outputs, c));
    }
    if have.inputs != data.features {
        return Err(mismatch("input width", have.inputs, data.features));
    }
    match (&data.y, have.task) {
        (Some(Targets::Values { dim, .. }), Task::Regress) if *dim != have.outputs => {
            Err(mismatch("output width", have.outputs, *dim))
        }
        _ => Ok(()),
    }
}

/// Checks that every label is a class of the model.
fn check_labels(model: &ModelConfig, data: &Dataset) -> Result<()> {
    if let (Task::Classify, Some(need)) = (model.task, data.classes_needed())
        && need > model.outputs
    {
        return Err(Error::invalid(
            "data",
            format!(
                "label {} is out of range for a model with {} classes",
                need - 1,
                model.outputs
            ),
        )
        .with_context("file", data.source.display().to_string()));
    }
    Ok(())
}

/// The device a run asks for.
pub fn device(choice: crate::config::DeviceChoice) -> Result<Device> {
    match choice {
        crate::config::DeviceChoice::Cpu => Ok(Device::Cpu),
        #[cfg(feature = "cuda")]
        crate::config::DeviceChoice::Cuda(n) => Device::new_cuda(n).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot open CUDA device {n}: {e}"),
            )
        }),
        #[cfg(not(feature = "cuda"))]
        crate::config::DeviceChoice::Cuda(_) => Err(Error::new(
            ErrorKind::Unsupported,
            "this build of artha-runtime has no CUDA support (feature `cuda`)",
        )),
    }
}

/// Resolves `ARTHA_RESUME`: `latest` (the newest step checkpoint in the
/// checkpoint directory), an absolute path, or a name looked up in the
/// checkpoint directory and then the model directory.
pub fn resume_path(cfg: &RunConfig) -> Result<Option<PathBuf>> {
    let Some(r) = cfg.resume.as_deref() else {
        return Ok(None);
    };
    if r == "latest" {
        return checkpoint::latest(&cfg.checkpoint_dir);
    }
    let p = Path::new(r);
    if p.is_absolute() {
        return Ok(Some(p.to_path_buf()));
    }
    data::check_relative("ARTHA_RESUME", r)?;
    for dir in [&cfg.checkpoint_dir, &cfg.model_dir] {
        if dir.join(p).is_file() {
            return Ok(Some(dir.join(p)));
        }
    }
    Err(
        Error::new(ErrorKind::NotFound, "checkpoint to resume from not found")
            .with_context("resume", r.to_string()),
    )
}

impl Trainer {
    /// A trainer for `cfg` over `data`: resumed from `ARTHA_RESUME`, or
    /// started from `$ARTHA_MODEL_DIR/model.safetensors` (fresh optimizer),
    /// or freshly initialised.
    pub fn new(cfg: &RunConfig, data: Dataset, device: Device) -> Result<Self> {
        if data.y.is_none() {
            return Err(Error::invalid("data", "training data has no targets"));
        }
        let file = cfg.model_file()?;
        let data_digest = data.digest()?;
        let steps_per_epoch = data.rows.div_ceil(cfg.batch_size) as u64;
        let init_weights = cfg.model_dir.join("model.safetensors");
        let (model, opt, step, started_from) = if let Some(path) = resume_path(cfg)? {
            let ck = checkpoint::load(&path, &device)?;
            check_model(ck.model.config(), cfg, &file, &data)?;
            let (Some(state), Some(opt)) = (ck.train, ck.optimizer) else {
                return Err(Error::invalid(
                    "ARTHA_RESUME",
                    "the checkpoint holds weights only, no training state",
                ));
            };
            let want = &cfg.optimizer;
            if state.seed != cfg.seed {
                return Err(mismatch("run (seed)", state.seed, cfg.seed));
            }
            if state.batch_size != cfg.batch_size {
                return Err(mismatch(
                    "run (batch size)",
                    state.batch_size,
                    cfg.batch_size,
                ));
            }
            if state.optimizer != *want {
                return Err(mismatch("run (optimizer settings)", &state.optimizer, want));
            }
            if state.data_digest != data_digest || state.rows != data.rows {
                return Err(mismatch("dataset", state.data_digest, data_digest));
            }
            (ck.model, opt, state.step, Some(path))
        } else if init_weights.is_file() {
            let ck = checkpoint::load(&init_weights, &device)?;
            check_model(ck.model.config(), cfg, &file, &data)?;
            let opt = Optimizer::new(cfg.optimizer.clone(), ck.model.params())?;
            (ck.model, opt, 0, Some(init_weights))
        } else {
            let mc = wanted_config(cfg, &file, &data)?;
            let model = Model::init(mc, cfg.seed, &device)?;
            let opt = Optimizer::new(cfg.optimizer.clone(), model.params())?;
            (model, opt, 0, None)
        };
        check_labels(model.config(), &data)?;
        Ok(Trainer {
            names: model.names().into(),
            model,
            opt,
            data,
            data_digest,
            device,
            seed: cfg.seed,
            batch_size: cfg.batch_size,
            step,
            steps_per_epoch,
            perm: None,
            started_from,
            proof_window: cfg.proof_window,
            total_steps: u64::from(cfg.epochs) * steps_per_epoch,
        })
    }

    /// Global steps completed.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Steps in one epoch.
    pub fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The training data.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The checkpoint or weights file the run started from, if any.
    pub fn started_from(&self) -> Option<&Path> {
        self.started_from.as_deref()
    }

    /// Epoch of global step `step` (1-based).
    pub fn epoch_of(&self, step: u64) -> u64 {
        (step.max(1) - 1) / self.steps_per_epoch
    }

    /// The training state to save after the current step.
    pub fn state(&self) -> TrainState {
        TrainState {
            step: self.step,
            epoch: u32::try_from(self.epoch_of(self.step)).unwrap_or(u32::MAX),
            seed: self.seed,
            batch_size: self.batch_size,
            optimizer: self.opt.config().clone(),
            optimizer_t: self.opt.t(),
            data_digest: self.data_digest,
            rows: self.data.rows,
        }
    }

    /// Saves a training checkpoint to `path`; returns the weight digest.
    pub fn save(&self, path: &Path) -> Result<Blake3Digest> {
        checkpoint::save(path, &self.model, Some((&self.opt, &self.state())))
    }

    /// Runs the next step. With `record`, computes the gradient, weight and
    /// batch digests here and now; without, leaves them zero (benchmarks
    /// only). A non-finite loss is an error and changes nothing.
    pub fn step(&mut self, record: bool) -> Result<StepOutcome> {
        let (mut out, data) = self.advance()?;
        if record {
            out.record = data.digest()?;
        }
        Ok(out)
    }

    /// Runs the next step and returns its outcome (digests zero) with what
    /// its digests cover, for a [`Recorder`] to turn into the record. A
    /// non-finite loss is an error and changes nothing.
    pub fn advance(&mut self) -> Result<(StepOutcome, StepData)> {
        let k = self.step + 1;
        let epoch = self.epoch_of(k);
        let b = ((k - 1) % self.steps_per_epoch) as usize;
        if self.perm.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.perm = Some((epoch, permutation(self.seed, epoch, self.data.rows)));
        }
        let perm = self.perm.as_ref().map(|(_, p)| p.as_slice()).unwrap_or(&[]);
        let start = b * self.batch_size;
        let idx = &perm[start..(start + self.batch_size).min(self.data.rows)];
        let rows = idx.len();
        if let Some(Targets::Tokens { ids, seq_len, .. }) = &self.data.y {
            // A language model: row r is ids[r·L ..][..L], its targets one on.
            let l = *seq_len;
            let mut inputs = Vec::with_capacity(rows * l);
            let mut targets = Vec::with_capacity(rows * l);
            for &i in idx {
                let s = i as usize * l;
                inputs.extend_from_slice(&ids[s..s + l]);
                targets.extend_from_slice(&ids[s + 1..s + l + 1]);
            }
            let (loss, grads) = self.model.lm_step(&inputs, &targets, rows, l)?;
            let wide = |v: &[u32]| v.iter().map(|&t| i64::from(t)).collect::<Vec<_>>();
            let batch = Batch::Tokens {
                x: wide(&inputs),
                y: wide(&targets),
                shape: [rows, l],
            };
            return self.finish_step(k, epoch, loss, grads, rows, 0, batch);
        }
        let f = self.data.features;
        let mut xb = Vec::with_capacity(rows * f);
        for &i in idx {
            let i = i as usize;
            xb.extend_from_slice(&self.data.x[i * f..(i + 1) * f]);
        }
        let y = match &self.data.y {
            Some(Targets::Classes(c)) => {
                BatchTargets::Classes(idx.iter().map(|&i| c[i as usize]).collect())
            }
            Some(Targets::Values { data, dim }) => {
                let mut yb = Vec::with_capacity(rows * dim);
                for &i in idx {
                    let i = i as usize;
                    yb.extend_from_slice(&data[i * dim..(i + 1) * dim]);
                }
                BatchTargets::Values(yb, *dim)
            }
            Some(Targets::Tokens { .. }) | None => {
                return Err(Error::invalid("data", "training data has no targets"));
            }
        };
        // The batch digest hashes the inputs where they are: in place for
        // a CPU tensor, from this host copy for a GPU one.
        let (x, x_host) = if self.device.is_cpu() {
            let x = Tensor::from_vec(xb, (rows, f), &self.device).map_err(tensor_err("batch"))?;
            (x, None)
        } else {
            let x =
                Tensor::from_slice(&xb, (rows, f), &self.device).map_err(tensor_err("batch"))?;
            (x, Some(xb))
        };
        let (out, cache) = self.model.forward(&x)?;
        let out_host: Vec<f32> = out
            .flatten_all()
            .and_then(|o| o.to_vec1())
            .map_err(tensor_err("read back"))?;
        let outputs = self.model.config().outputs;
        let (loss, grad, correct) = match &y {
            BatchTargets::Classes(yb) => {
                let (loss, grad) = kernels::softmax_xent(&out_host, yb, outputs)?;
                let correct = out_host
                    .chunks_exact(outputs)
                    .zip(yb)
                    .filter(|(z, y)| argmax(z) == **y as usize)
                    .count();
                (loss, grad, correct)
            }
            BatchTargets::Values(yb, _) => {
                let (loss, grad) = kernels::mse(&out_host, yb)?;
                (loss, grad, 0)
            }
        };
        if !loss.is_finite() {
            return Err(diverged(loss, k));
        }
        let dout =
            Tensor::from_vec(grad, (rows, outputs), &self.device).map_err(tensor_err("grad"))?;
        let grads = self.model.backward(&cache, dout)?;
        let batch = Batch::Rows { x, x_host, y };
        self.finish_step(k, epoch, loss, grads, rows, correct, batch)
    }

    /// Applies step `k`'s gradients and returns its outcome and what its
    /// digests cover. A non-finite loss is an error and changes nothing.
    #[allow(clippy::too_many_arguments)]
    fn finish_step(
        &mut self,
        k: u64,
        epoch: u64,
        loss: f64,
        grads: Vec<Tensor>,
        rows: usize,
        correct: usize,
        batch: Batch,
    ) -> Result<(StepOutcome, StepData)> {
        if !loss.is_finite() {
            return Err(diverged(loss, k));
        }
        self.opt.step(self.model.params_mut(), &grads)?;
        self.step = k;
        let record = StepRecord {
            step: k,
            epoch: u32::try_from(epoch).unwrap_or(u32::MAX),
            loss,
            grad_digest: Blake3Digest::ZERO,
            weight_digest: Blake3Digest::ZERO,
            batch_digest: Blake3Digest::ZERO,
        };
        let full = crate::digest::is_full_step(k, self.proof_window, self.total_steps);
        let data = StepData {
            record,
            sampler: (!full).then(|| Sampler::new(self.seed, k)),
            names: Arc::clone(&self.names),
            batch,
            grads,
            weights: self.model.params().to_vec(),
        };
        Ok((
            StepOutcome {
                record,
                rows,
                correct,
            },
            data,
        ))
    }
}

/// The error of a non-finite loss at step `k`.
fn diverged(loss: f64, k: u64) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "the loss is not finite ({loss}) at step {k}: training diverged (lower LEARNING_RATE?)"
        ),
    )
    .with_context("field", "loss")
    .with_context("step", k.to_string())
}

/// A step's batch, as its digest names it (`x`, `y`).
#[derive(Debug)]
enum Batch {
    /// Feature rows (`x`: `f32 [rows, features]`, held as the model's
    /// input tensor, with a host copy when that lives on a GPU).
    Rows {
        x: Tensor,
        x_host: Option<Vec<f32>>,
        y: BatchTargets,
    },
    /// Token rows of a language model (`x`, `y`: `i64 [rows, L]`).
    Tokens {
        x: Vec<i64>,
        y: Vec<i64>,
        shape: [usize; 2],
    },
}

/// A batch's targets, as the batch digest names them (`y`).
#[derive(Debug)]
enum BatchTargets {
    /// `i64 [rows]`.
    Classes(Vec<i64>),
    /// `f32 [rows, dim]`.
    Values(Vec<f32>, usize),
}

/// What one step's digests cover: its batch, its gradients and the weights
/// after its update. Tensors are shared, not copied (candle tensors are
/// immutable: the next step makes new ones), so the digests can be
/// computed while the next step runs.
#[derive(Debug)]
pub struct StepData {
    record: StepRecord,
    /// `None` at a full step; the positions of a sampled one.
    sampler: Option<Sampler>,
    names: Arc<[String]>,
    batch: Batch,
    grads: Vec<Tensor>,
    weights: Vec<Tensor>,
}

impl StepData {
    /// The step number.
    pub fn step(&self) -> u64 {
        self.record.step
    }

    /// The step record with its gradient, weight and batch digests.
    pub fn digest(self) -> Result<StepRecord> {
        let mut batch = NamedDigest::sampled(self.sampler);
        match &self.batch {
            Batch::Rows { x, x_host, y } => {
                match x_host {
                    Some(xb) => batch.push_f32("x", x.dims(), xb)?,
                    None => batch.push_tensor("x", x)?,
                }
                let rows = x.dims().first().copied().unwrap_or(0);
                match y {
                    BatchTargets::Classes(yb) => batch.push_i64("y", &[rows], yb)?,
                    BatchTargets::Values(yb, dim) => batch.push_f32("y", &[rows, *dim], yb)?,
                }
            }
            Batch::Tokens { x, y, shape } => {
                batch.push_i64("x", shape, x)?;
                batch.push_i64("y", shape, y)?;
            }
        }
        Ok(StepRecord {
            batch_digest: batch.finish()?,
            grad_digest: params_digest(&self.names, &self.grads, self.sampler)?,
            weight_digest: params_digest(&self.names, &self.weights, self.sampler)?,
            ..self.record
        })
    }
}

/// Most steps whose digests are being computed while later steps run.
const IN_FLIGHT: usize = 2;

/// Turns [`StepData`] into `step` events, in step order. On the CPU the
/// digests of step `k` are computed as a task on the rayon pool while
/// step `k + 1` runs: the pool's threads are idle during the step's serial
/// parts, and a task (unlike an extra thread) never makes more threads
/// runnable than the pool has, so the products of the next step are not
/// held up by a descheduled worker. Elsewhere, or with
/// [`Recorder::inline`], digests are computed on the calling thread.
/// Either way the records are the same: a digest is a function of the
/// tensors only.
#[derive(Debug)]
pub struct Recorder {
    pool: Option<Pool>,
    /// Steps handed over and not yet emitted, oldest first.
    pending: VecDeque<u64>,
}

#[derive(Debug)]
struct Pool {
    tx: Sender<(u64, Result<StepRecord>)>,
    rx: Receiver<(u64, Result<StepRecord>)>,
    /// Records that finished before an earlier step's.
    ready: BTreeMap<u64, Result<StepRecord>>,
}

impl Recorder {
    /// A recorder that computes digests on the rayon pool.
    pub fn pooled() -> Self {
        let (tx, rx) = channel();
        Recorder {
            pool: Some(Pool {
                tx,
                rx,
                ready: BTreeMap::new(),
            }),
            pending: VecDeque::new(),
        }
    }

    /// A recorder that computes digests on the calling thread.
    pub fn inline() -> Self {
        Recorder {
            pool: None,
            pending: VecDeque::new(),
        }
    }

    /// Records one step: emits its `step` event now (inline) or once its
    /// digests are ready, after every earlier step's.
    pub fn submit(&mut self, data: StepData, sink: &mut EventSink) -> Result<()> {
        let Some(pool) = self.pool.as_mut() else {
            return sink.emit(&RuntimeEvent::Step(data.digest()?));
        };
        let step = data.step();
        self.pending.push_back(step);
        let tx = pool.tx.clone();
        rayon::spawn(move || {
            let _ = tx.send((step, data.digest()));
        });
        // Emit what is ready, waiting only when too many are in flight.
        self.emit_ready(sink, IN_FLIGHT)
    }

    /// Waits for every submitted step and emits its event.
    pub fn drain(&mut self, sink: &mut EventSink) -> Result<()> {
        self.emit_ready(sink, 0)
    }

    /// Emits the records due, in order, until at most `keep` are pending.
    fn emit_ready(&mut self, sink: &mut EventSink, keep: usize) -> Result<()> {
        let Some(pool) = self.pool.as_mut() else {
            return Ok(());
        };
        while let Some(&next) = self.pending.front() {
            while let Ok((k, r)) = pool.rx.try_recv() {
                pool.ready.insert(k, r);
            }
            let rec = match pool.ready.remove(&next) {
                Some(r) => r?,
                None if self.pending.len() > keep => {
                    // The sender lives in `pool`, so this waits for a task.
                    let (k, r) = pool.rx.recv().map_err(|_| {
                        Error::new(ErrorKind::Internal, "a recording task was lost")
                    })?;
                    pool.ready.insert(k, r);
                    continue;
                }
                None => break,
            };
            if rec.step != next {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("recorded step {} where step {next} was due", rec.step),
                ));
            }
            self.pending.pop_front();
            sink.emit(&RuntimeEvent::Step(rec))?;
        }
        Ok(())
    }
}

fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = i;
        }
    }
    best
}

/// Makes sure the checkpoint directory exists and takes files.
pub fn check_writable(dir: &Path) -> Result<()> {
    let fail = |e: std::io::Error| {
        Error::new(
            ErrorKind::PermissionDenied,
            format!("the checkpoint directory is not writable: {e}"),
        )
        .with_context("dir", dir.display().to_string())
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".artha-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Runs a training job: loads data, trains, checkpoints, reports.
pub fn run(cfg: &RunConfig, sink: &mut EventSink) -> Result<()> {
    let t0 = Instant::now();
    check_writable(&cfg.checkpoint_dir)?;
    let file = cfg.model_file()?;
    // The task decides how targets parse: the job's choice, else the
    // checkpoint's or initial weights', else classification.
    let init = cfg.model_dir.join("model.safetensors");
    let base = match resume_path(cfg)? {
        Some(p) => Some(checkpoint::read_config(&p)?),
        None if init.is_file() => Some(checkpoint::read_config(&init)?),
        None => None,
    };
    let kind = cfg.kind.or(file.kind).or(base.as_ref().map(|m| m.kind));
    let (path, data) = if kind == Some(ModelKind::Llama) {
        // A language model: its text, tokenized as the checkpoint's (or
        // config.json's) tokenizer does.
        let lm = match base.as_ref().and_then(|m| m.lm.clone()) {
            Some(lm) => lm,
            None => file.lm_config(None),
        };
        let seq_len = cfg.seq_len.unwrap_or(lm.max_position_embeddings);
        if seq_len > lm.max_position_embeddings {
            return Err(Error::invalid(
                "ARTHA_SEQ_LEN",
                format!(
                    "{seq_len} is above the model's max_position_embeddings ({})",
                    lm.max_position_embeddings
                ),
            ));
        }
        let path = data::find_text(&cfg.data_dir, cfg.data_file.as_deref(), &["train.txt"])?;
        let data = data::load_text(&path, seq_len, lm.tokenizer, lm.alphabet.as_deref())?;
        (path, data)
    } else {
        let task = cfg
            .task
            .or(file.task)
            .or(base.map(|m| m.task))
            .unwrap_or(Task::Classify);
        let path = data::find(&cfg.data_dir, cfg.data_file.as_deref(), true)?;
        let data = data::load_train(&path, task)?;
        (path, data)
    };
    let dev = device(cfg.device)?;
    let mut tr = Trainer::new(cfg, data, dev)?;
    let total = u64::from(cfg.epochs) * tr.steps_per_epoch();
    if let Some(m) = cfg.max_steps
        && m < tr.step_count()
    {
        return Err(Error::invalid(
            "ARTHA_MAX_STEPS",
            format!(
                "step {m} is before the step the run resumes from ({})",
                tr.step_count()
            ),
        ));
    }
    let end = cfg.max_steps.map_or(total, |m| m.min(total));
    let mc = tr.model().config().clone();
    banner(cfg, &tr, &mc, end);
    sink.log(format!(
        "training {:?} {:?} ({} parameters) on {} rows of {}, steps {}..={end}",
        mc.kind,
        mc.task,
        mc.param_count(),
        tr.data().rows,
        path.display(),
        tr.step_count() + 1
    ))?;
    let log_every = cfg
        .log_every
        .unwrap_or_else(|| (tr.steps_per_epoch() / 10).max(1));
    let first = tr.step_count();
    let mut ran = 0u64;
    let (mut ep_loss, mut ep_rows, mut ep_correct) = (0f64, 0usize, 0usize);
    let mut last_loss = f64::NAN;
    let train_start = Instant::now();
    // Step records are emitted by the recorder (digests overlap the next
    // step on CPU); every exit from the loop below drains it, so each step
    // computed is reported, before any checkpoint event that follows it.
    let mut recorder = if tr.device().is_cpu() {
        Recorder::pooled()
    } else {
        Recorder::inline()
    };
    let trained = (|| -> Result<()> {
        while tr.step_count() < end {
            let k = tr.step_count() + 1;
            let epoch = tr.epoch_of(k);
            let in_epoch = (k - 1) % tr.steps_per_epoch();
            if in_epoch == 0 || k == first + 1 {
                say!(
                    "\n{}\nEpoch {}/{}\n{}",
                    "=".repeat(60),
                    epoch + 1,
                    cfg.epochs,
                    "=".repeat(60)
                );
            }
            let (out, data) = tr.advance()?;
            recorder.submit(data, sink)?;
            ran += 1;
            last_loss = out.record.loss;
            ep_loss += out.record.loss * out.rows as f64;
            ep_rows += out.rows;
            ep_correct += out.correct;
            if log_every > 0 && (in_epoch % log_every == 0 || in_epoch + 1 == tr.steps_per_epoch())
            {
                say!(
                    "   Step {k:>6} | Batch {in_epoch:>5}/{:>5} | Loss: {:.4}",
                    tr.steps_per_epoch(),
                    out.record.loss
                );
            }
            if cfg.checkpoint_every > 0 && k % cfg.checkpoint_every == 0 {
                let name = checkpoint::step_file(k);
                tr.save(&cfg.checkpoint_dir.join(&name))?;
                recorder.drain(sink)?;
                sink.emit(&RuntimeEvent::Checkpoint {
                    path: name.clone(),
                    step: k,
                })?;
                say!("   Checkpoint saved: {name}");
            }
            if in_epoch + 1 == tr.steps_per_epoch() || k == end {
                let acc = if mc.task == Task::Classify && mc.lm.is_none() {
                    format!(
                        ", accuracy {:.2}%",
                        100.0 * ep_correct as f64 / ep_rows.max(1) as f64
                    )
                } else {
                    String::new()
                };
                say!(
                    "\n   Epoch {} summary: average loss {:.4}{acc}",
                    epoch + 1,
                    ep_loss / ep_rows.max(1) as f64
                );
                (ep_loss, ep_rows, ep_correct) = (0.0, 0, 0);
            }
        }
        Ok(())
    })();
    let drained = recorder.drain(sink);
    trained?;
    drained?;
    let secs = train_start.elapsed().as_secs_f64();
    let final_name = "final.safetensors";
    let final_weights = tr.save(&cfg.checkpoint_dir.join(final_name))?;
    sink.emit(&RuntimeEvent::Checkpoint {
        path: final_name.into(),
        step: tr.step_count(),
    })?;
    let rate = if secs > 0.0 { ran as f64 / secs } else { 0.0 };
    sink.log(format!(
        "trained {ran} steps in {secs:.3} s ({rate:.1} steps/s)"
    ))?;
    // The job's step count: a resumed run counts the steps before its
    // checkpoint too (the proofs cover the whole job).
    sink.emit(&RuntimeEvent::Complete {
        steps: first + ran,
        final_weights,
    })?;
    sink.flush()?;
    say!("\nTraining complete.");
    say!("   Final model saved: {final_name}");
    say!("   Steps this run: {ran} (global step {})", tr.step_count());
    if last_loss.is_finite() {
        say!("   Final loss: {last_loss:.4}");
    }
    say!("   Steps/s: {rate:.1}");
    say!("   Final weights: {final_weights}");
    say!("   Wall time: {:.2} s", t0.elapsed().as_secs_f64());
    Ok(())
}

fn banner(cfg: &RunConfig, tr: &Trainer, mc: &ModelConfig, end: u64) {
    let line = "-".repeat(60);
    say!("{line}");
    say!("  Artha native runtime - training");
    say!("{line}");
    say!("  Job ID:      {}", cfg.job_id);
    match &mc.lm {
        Some(lm) => say!(
            "  Model:       llama: {} layers, width {}, {} heads, SwiGLU {}, vocabulary {} ({:?}), context {}",
            lm.num_hidden_layers,
            lm.hidden_size,
            lm.num_attention_heads,
            lm.intermediate_size,
            lm.vocab_size,
            lm.tokenizer,
            lm.max_position_embeddings
        ),
        None => say!("  Model:       {:?} {:?} {:?}", mc.kind, mc.task, mc.dims()),
    }
    say!("  Parameters:  {}", mc.param_count());
    say!("  Epochs:      {}", cfg.epochs);
    say!("  Batch size:  {}", cfg.batch_size);
    say!("  LR:          {}", cfg.optimizer.lr);
    say!("  Optimizer:   {:?}", cfg.optimizer.kind);
    say!("  Seed:        {}", cfg.seed);
    say!("  Samples:     {}", tr.data().rows);
    say!("  Batches:     {} per epoch", tr.steps_per_epoch());
    if let Some(p) = tr.started_from() {
        say!("  Started from {} (step {})", p.display(), tr.step_count());
    }
    say!("  Steps:       {}..={end}", tr.step_count() + 1);
    say!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn trainer(batch: usize) -> Trainer {
        trainer_with(batch, 6)
    }

    fn trainer_with(batch: usize, hidden: usize) -> Trainer {
        let vars: HashMap<&str, String> = [
            ("BATCH_SIZE", batch.to_string()),
            ("ARTHA_HIDDEN", hidden.to_string()),
            ("ARTHA_SEED", "3".into()),
            ("ARTHA_MODEL_DIR", "/nonexistent/artha-model".into()),
        ]
        .into_iter()
        .collect();
        let cfg = RunConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let s = crate::rng::Stream::new(1, "test", 0);
        let rows = 40;
        let data = Dataset {
            x: (0..rows * 3).map(|i| s.f32_at(i as u64)).collect(),
            rows,
            features: 3,
            y: Some(Targets::Classes(
                (0..rows).map(|r| (r % 3) as i64).collect(),
            )),
            source: "memory".into(),
        };
        Trainer::new(&cfg, data, Device::Cpu).unwrap()
    }

    fn steps_in(path: &Path) -> Vec<StepRecord> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .enumerate()
            .filter_map(
                |(i, l)| match RuntimeEvent::parse_line(i as u64 + 1, l).unwrap() {
                    RuntimeEvent::Step(s) => Some(s),
                    _ => None,
                },
            )
            .collect()
    }

    /// The pool recorder emits, in order, exactly the records that
    /// recording on the training thread gives; unrecorded steps leave the
    /// digests zero and the training unchanged.
    #[test]
    fn the_pool_recorder_gives_the_inline_records() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        let mut inline = trainer(7);
        let mut sink = EventSink::open(&a).unwrap();
        let mut rec = Recorder::inline();
        for _ in 0..15 {
            let (_, data) = inline.advance().unwrap();
            rec.submit(data, &mut sink).unwrap();
        }
        drop(sink);
        let mut pooled = trainer(7);
        let mut sink = EventSink::open(&b).unwrap();
        let mut rec = Recorder::pooled();
        for i in 0..15 {
            let (_, data) = pooled.advance().unwrap();
            rec.submit(data, &mut sink).unwrap();
            if i == 6 {
                // As at a checkpoint: everything so far is out.
                rec.drain(&mut sink).unwrap();
                sink.flush().unwrap();
                assert_eq!(steps_in(&b).len(), 7);
            }
        }
        rec.drain(&mut sink).unwrap();
        drop(sink);
        let want = steps_in(&a);
        assert_eq!(want.len(), 15);
        assert_eq!(steps_in(&b), want);
        // Records read back went through JSON: compare like with like.
        let via_json = |r: StepRecord| {
            let line = serde_json::to_string(&RuntimeEvent::Step(r)).unwrap();
            match RuntimeEvent::parse_line(1, &line).unwrap() {
                RuntimeEvent::Step(s) => s,
                other => panic!("{other:?}"),
            }
        };
        let mut off = trainer(7);
        for (i, w) in want.iter().enumerate() {
            let out = off.step(false).unwrap();
            assert_eq!(out.record.weight_digest, Blake3Digest::ZERO);
            assert_eq!(via_json(out.record).loss, w.loss);
            // Step 6 is the job's last (1 epoch of 6 batches): a full step,
            // whose weight digest is the model's.
            if i == 5 {
                assert_eq!(off.model().digest().unwrap(), w.weight_digest);
            }
        }
        assert_eq!(via_json(trainer(7).step(true).unwrap().record), want[0]);
    }

    /// `runtimes/PROOFS.md`: a weight changed at a position step `k`'s
    /// sample does not read leaves record `k` as the honest one, but the
    /// loss of step `k + 1` differs, and so does the full weight digest at
    /// the window's end.
    #[test]
    fn a_perturbed_weight_is_caught() {
        let (k, end) = (3u64, 6u64); // the window 1..=6 ends at the job's last step
        let mut honest = trainer_with(7, 100);
        let records: Vec<StepRecord> = (0..end)
            .map(|_| honest.step(true).unwrap().record)
            .collect();
        let mut cheat = trainer_with(7, 100);
        for _ in 0..k {
            cheat.step(true).unwrap();
        }
        // fc.0.weight [100, 3] has more than SAMPLE elements: sampled at step k.
        let (p, numel) = (0usize, 300u64);
        let stream = crate::rng::Stream::new(3, "sample", k);
        let read: std::collections::HashSet<u64> = (0..crate::digest::SAMPLE as u64)
            .map(|i| stream.below(p as u64 * crate::digest::SAMPLE as u64 + i, numel))
            .collect();
        let unread = (0..numel).find(|q| !read.contains(q)).unwrap() as usize;
        let honest_w = cheat.model.params()[p].clone();
        let mut v: Vec<f32> = honest_w.flatten_all().unwrap().to_vec1().unwrap();
        v[unread] += 1e-3;
        cheat.model.params_mut()[p] = Tensor::from_vec(v, honest_w.dims(), &Device::Cpu).unwrap();
        // The cheat's record k: the same sampled weight digest as the honest one.
        let sampler = Some(Sampler::new(3, k));
        assert_eq!(
            params_digest(&cheat.names, cheat.model.params(), sampler).unwrap(),
            records[k as usize - 1].weight_digest
        );
        // ... but not the same full digest, nor the next step's loss.
        let mut again = trainer_with(7, 100);
        for _ in 0..k {
            again.step(false).unwrap();
        }
        assert_ne!(
            cheat.model().digest().unwrap(),
            again.model().digest().unwrap()
        );
        let next = cheat.step(true).unwrap().record;
        assert_ne!(next.loss, records[k as usize].loss);
        for _ in k + 1..end {
            cheat.step(true).unwrap();
        }
        let last = records[end as usize - 1].weight_digest;
        assert_eq!(honest.model().digest().unwrap(), last);
        assert_ne!(cheat.model().digest().unwrap(), last);
    }
}
