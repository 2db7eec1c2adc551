//! Inference: a trained model over input rows.
//!
//! Reads the weights (a checkpoint or final weights file from the model
//! directory), the inputs from the data directory, and writes
//! `predictions.csv` to the output directory: for classification a
//! `prediction` column (the arg-max class) then one probability column per
//! class `p0 … p{C−1}`; for regression the columns `y0 … y{D−1}`. Rows are
//! served in batches of `BATCH_SIZE`; each batch is one `infer` event with
//! `input_digest` = canonical tensor digest of the batch's inputs
//! (`f32 [rows, features]`) and `output_digest` = that of its outputs
//! (probabilities or values, `f32 [rows, outputs]`). The run ends with
//! `complete` (0 steps, the weights' digest).

use std::fmt::Write as _;
use std::path::PathBuf;

use artha_core::protocol::RuntimeEvent;
use artha_core::{DType, Error, ErrorKind, InferRecord, Result, tensor_digest};
use candle_core::Tensor;

use crate::checkpoint;
use crate::config::RunConfig;
use crate::data::{self, Task};
use crate::events::EventSink;
use crate::kernels::{softmax_rows, tensor_err};
use crate::lm::{Lm, pick};
use crate::rng::Stream;

fn le_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Finds the weights file in the model directory.
pub fn weights_path(cfg: &RunConfig) -> Result<PathBuf> {
    if let Some(name) = cfg.weights.as_deref() {
        data::check_relative("ARTHA_WEIGHTS", name)?;
        return Ok(cfg.model_dir.join(name));
    }
    for n in ["model.safetensors", "final.safetensors"] {
        let p = cfg.model_dir.join(n);
        if p.is_file() {
            return Ok(p);
        }
    }
    let found: Vec<PathBuf> = std::fs::read_dir(&cfg.model_dir)
        .map_err(|e| {
            Error::new(ErrorKind::NotFound, "cannot read the model directory")
                .with_context("dir", cfg.model_dir.display().to_string())
                .with_source(e)
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::new(
            ErrorKind::NotFound,
            "no model weights: expected model.safetensors, final.safetensors or one .safetensors file",
        )
        .with_context("dir", cfg.model_dir.display().to_string())),
        _ => Err(Error::invalid(
            "ARTHA_WEIGHTS",
            "several .safetensors files in the model directory: name one",
        )),
    }
}

fn output_dir(cfg: &RunConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.output_dir).map_err(|e| {
        Error::new(
            ErrorKind::PermissionDenied,
            "the output directory is not writable",
        )
        .with_context("dir", cfg.output_dir.display().to_string())
        .with_source(e)
    })
}

/// A language model's inference (`runtimes/LM.md`): each line of
/// `prompts.txt` is extended by `ARTHA_MAX_NEW_TOKENS` tokens, greedy at
/// `ARTHA_TEMPERATURE=0`, else sampled with `Stream(seed, "sample",
/// prompt)`, into `generations.jsonl`. Each prompt is one `infer` event:
/// `input_digest` = canonical digest of its tokens (`i64 [n]`),
/// `output_digest` = that of the generated tokens (`i64 [m]`).
fn generate(
    cfg: &RunConfig,
    sink: &mut EventSink,
    ck: &checkpoint::Loaded,
    wpath: &std::path::Path,
) -> Result<()> {
    let lmc = ck.model.lm_config()?;
    let host = ck.model.host_params()?;
    let lm = Lm::new(lmc, &host)?;
    let enc = lmc.encoder();
    let path = data::find_text(&cfg.data_dir, cfg.data_file.as_deref(), &["prompts.txt"])?;
    let text = std::fs::read(&path).map_err(|e| {
        Error::new(ErrorKind::NotFound, "cannot read the prompts")
            .with_context("file", path.display().to_string())
            .with_source(e)
    })?;
    if text.len() as u64 > data::MAX_DATA_BYTES {
        return Err(Error::invalid("data", "the prompts file is too large")
            .with_context("file", path.display().to_string()));
    }
    output_dir(cfg)?;
    let ctx = lmc.max_position_embeddings;
    sink.log(format!(
        "generating {} tokens per prompt from {} with {} (temperature {})",
        cfg.max_new_tokens,
        path.display(),
        wpath.display(),
        cfg.temperature
    ))?;
    let i64_digest = |v: &[u32]| {
        let bytes: Vec<u8> = v.iter().flat_map(|&t| i64::from(t).to_le_bytes()).collect();
        tensor_digest(DType::I64, &[v.len() as u64], &bytes)
    };
    let mut out = String::new();
    // One prompt per line; a final newline ends the last line.
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if text.is_empty() || text.ends_with(b"\n") {
        lines.pop();
    }
    for (n, line) in lines.iter().enumerate() {
        let prompt = enc.encode(line, "data").map_err(|e| {
            e.with_context("file", path.display().to_string())
                .with_context("line", (n + 1).to_string())
        })?;
        let mut tokens = prompt.clone();
        if tokens.is_empty() {
            tokens.push(0); // the empty prompt starts from token 0
        }
        // Room for one new token: the last `ctx − 1` (at least one) are kept.
        let keep = tokens.len().saturating_sub(ctx.saturating_sub(1).max(1));
        tokens.drain(..keep);
        let stream = Stream::new(cfg.seed, "sample", n as u64);
        let mut generated = Vec::with_capacity(cfg.max_new_tokens);
        for i in 0..cfg.max_new_tokens {
            let start = tokens.len().saturating_sub(ctx);
            let window = &tokens[start..];
            let logits = lm.logits(window)?;
            let v = lmc.vocab_size;
            let last = &logits[(window.len() - 1) * v..window.len() * v];
            if last.iter().any(|z| !z.is_finite()) {
                return Err(Error::invalid(
                    "outputs",
                    format!("the model produced a non-finite logit for prompt {}", n + 1),
                ));
            }
            let t = pick(last, cfg.temperature, stream.f32_at(i as u64));
            tokens.push(t);
            generated.push(t);
        }
        sink.emit(&RuntimeEvent::Infer(InferRecord {
            input_digest: i64_digest(&prompt)?,
            output_digest: i64_digest(&generated)?,
        }))?;
        let line = serde_json::json!({
            "prompt": enc.decode(&prompt),
            "completion": enc.decode(&generated),
            "tokens": generated,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    let out_path = cfg.output_dir.join("generations.jsonl");
    checkpoint::write_atomic(&out_path, out.as_bytes())?;
    sink.emit(&RuntimeEvent::Complete {
        steps: 0,
        final_weights: ck.weights_digest,
    })?;
    sink.flush()?;
    say!(
        "Generated {} tokens for each of {} prompts; output in {}",
        cfg.max_new_tokens,
        lines.len(),
        out_path.display()
    );
    Ok(())
}

/// Runs an inference job.
pub fn run(cfg: &RunConfig, sink: &mut EventSink) -> Result<()> {
    let dev = crate::train::device(cfg.device)?;
    let wpath = weights_path(cfg)?;
    let ck = checkpoint::load(&wpath, &dev)?;
    let mc = ck.model.config().clone();
    if mc.lm.is_some() {
        return generate(cfg, sink, &ck, &wpath);
    }
    let path = data::find(&cfg.data_dir, cfg.data_file.as_deref(), false)?;
    let inputs = data::load_inputs(&path, mc.inputs)?;
    std::fs::create_dir_all(&cfg.output_dir).map_err(|e| {
        Error::new(
            ErrorKind::PermissionDenied,
            "the output directory is not writable",
        )
        .with_context("dir", cfg.output_dir.display().to_string())
        .with_source(e)
    })?;
    say!(
        "Artha native runtime - inference: {:?} {:?} {:?}, {} rows from {}",
        mc.kind,
        mc.task,
        mc.dims(),
        inputs.rows,
        path.display()
    );
    sink.log(format!(
        "serving {} rows from {} with {}",
        inputs.rows,
        path.display(),
        wpath.display()
    ))?;
    let f = inputs.features;
    let o = mc.outputs;
    let mut csv = String::new();
    match mc.task {
        Task::Classify => {
            csv.push_str("prediction");
            for c in 0..o {
                let _ = write!(csv, ",p{c}");
            }
        }
        Task::Regress => {
            let cols: Vec<String> = (0..o).map(|c| format!("y{c}")).collect();
            csv.push_str(&cols.join(","));
        }
    }
    csv.push('\n');
    let mut batches = 0u64;
    for chunk in inputs.x.chunks(cfg.batch_size * f) {
        let rows = chunk.len() / f;
        let x = Tensor::from_vec(chunk.to_vec(), (rows, f), &dev).map_err(tensor_err("inputs"))?;
        let (out, _) = ck.model.forward(&x)?;
        let raw: Vec<f32> = out
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .map_err(tensor_err("read back"))?;
        let values = match mc.task {
            Task::Classify => softmax_rows(&raw, o),
            Task::Regress => raw,
        };
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "outputs",
                format!("the model produced a non-finite output in batch {batches}"),
            ));
        }
        let shape = |n: usize| [rows as u64, n as u64];
        sink.emit(&RuntimeEvent::Infer(InferRecord {
            input_digest: tensor_digest(DType::F32, &shape(f), &le_bytes(chunk))?,
            output_digest: tensor_digest(DType::F32, &shape(o), &le_bytes(&values))?,
        }))?;
        for row in values.chunks_exact(o) {
            if mc.task == Task::Classify {
                let best = (0..o).fold(0, |b, i| if row[i] > row[b] { i } else { b });
                let _ = write!(csv, "{best}");
                for p in row {
                    let _ = write!(csv, ",{p}");
                }
            } else {
                let cols: Vec<String> = row.iter().map(f32::to_string).collect();
                csv.push_str(&cols.join(","));
            }
            csv.push('\n');
        }
        batches += 1;
    }
    let out_path = cfg.output_dir.join("predictions.csv");
    checkpoint::write_atomic(&out_path, csv.as_bytes())?;
    sink.emit(&RuntimeEvent::Complete {
        steps: 0,
        final_weights: ck.weights_digest,
    })?;
    sink.flush()?;
    say!(
        "Served {} rows in {batches} batches; predictions in {}",
        inputs.rows,
        out_path.display()
    );
    Ok(())
}
