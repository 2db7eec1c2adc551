//! Proof-recording overhead of the native runtime: what the gradient,
//! weight and batch digests and the `step` event cost, as a fraction of a
//! training step, for an MNIST-sized MLP (784 → 128 → 10, batch 64, AdamW)
//! or, with `--model lm`, the llama LM of `runtimes/LM.md` (byte tokens,
//! width `--hidden`, 4 layers, 4 heads, context 64, batch `--batch`).
//!
//! Steps record sampled digests except at window ends (every 100 steps)
//! and the last step (`runtimes/PROOFS.md`); the parts are timed both
//! ways, and the work per step is given amortised over a window.
//!
//! Three trainers start from the same state and take the same steps in
//! alternating blocks: one records as the runtime does (a [`Recorder`]
//! computes the digests as a task on the rayon pool while the next step
//! runs, and appends the `step` line to a real events file), one records inline
//! (digests on the training thread, then the line), and one does not
//! record. The overhead is the time difference over the time of the
//! unrecorded steps; the recording parts are also timed one by one. At the
//! end all three must hold the same weights (recording changes nothing),
//! and the final weight digest is printed: it is the same for every
//! `RAYON_NUM_THREADS`.
//!
//! Run: `cargo run --release -p artha-runtime --example overhead`
//! (options: `--rounds N`, `--block N`, `--batch N`, `--hidden N`,
//! `--model mlp|lm`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use artha_core::protocol::RuntimeEvent;
use artha_core::{Error, ErrorKind, Result};
use artha_runtime::data::{Dataset, Targets};
use artha_runtime::rng::Stream;
use artha_runtime::train::{Recorder, Trainer};
use artha_runtime::{EventSink, RunConfig, kernels};
use candle_core::Device;

const FEATURES: usize = 784;
const CLASSES: usize = 10;
const ROWS: usize = 8192;

struct Opts {
    rounds: usize,
    block: usize,
    batch: usize,
    hidden: usize,
    lm: bool,
}

/// The LM's context (and training sequence length) and layers.
const LM_SEQ: usize = 64;
const LM_LAYERS: usize = 4;

fn opts() -> Result<Opts> {
    let mut o = Opts {
        rounds: 20,
        block: 25,
        batch: 64,
        hidden: 128,
        lm: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [k, v] = pair else {
            return Err(Error::invalid("arguments", "options take a value"));
        };
        if k == "--model" {
            o.lm = match v.as_str() {
                "lm" | "llama" => true,
                "mlp" => false,
                other => {
                    return Err(Error::invalid(
                        "arguments",
                        format!("--model {other}: mlp or lm"),
                    ));
                }
            };
            continue;
        }
        let n: usize = v
            .parse()
            .map_err(|_| Error::invalid("arguments", format!("`{v}` is not a number")))?;
        match k.as_str() {
            "--rounds" => o.rounds = n,
            "--block" => o.block = n,
            "--batch" => o.batch = n,
            "--hidden" => o.hidden = n,
            other => {
                return Err(Error::invalid(
                    "arguments",
                    format!("unknown option {other}"),
                ));
            }
        }
    }
    if o.rounds == 0 || o.block == 0 || o.batch == 0 || o.hidden == 0 {
        return Err(Error::invalid("arguments", "values must be positive"));
    }
    Ok(o)
}

/// Text for the LM: 256 KiB of bytes drawn from a skewed distribution
/// over printable characters, cut into rows of [`LM_SEQ`].
fn text() -> Dataset {
    let s = Stream::new(1, "bench-text", 0);
    let ids: Vec<u32> = (0..256 * 1024u64)
        .map(|i| {
            let u = s.f32_at(i);
            32 + (u * u * 90.0) as u32
        })
        .collect();
    Dataset {
        x: Vec::new(),
        rows: (ids.len() - 1) / LM_SEQ,
        features: LM_SEQ,
        y: Some(Targets::Tokens {
            ids,
            seq_len: LM_SEQ,
            alphabet: None,
        }),
        source: "generated".into(),
    }
}

/// Ten Gaussian blobs in 784 dimensions (an MNIST-shaped problem).
fn dataset() -> Dataset {
    let s = Stream::new(1, "bench-data", 0);
    let mut x = Vec::with_capacity(ROWS * FEATURES);
    let mut y = Vec::with_capacity(ROWS);
    for r in 0..ROWS {
        let c = r % CLASSES;
        for j in 0..FEATURES {
            let noise = s.f32_at((r * FEATURES + j) as u64) * 2.0 - 1.0;
            let centre = if j % CLASSES == c { 0.5 } else { 0.0 };
            x.push(centre + noise);
        }
        y.push(c as i64);
    }
    Dataset {
        x,
        rows: ROWS,
        features: FEATURES,
        y: Some(Targets::Classes(y)),
        source: "generated".into(),
    }
}

fn config(o: &Opts, dir: &std::path::Path) -> Result<RunConfig> {
    let model = dir.join("model");
    std::fs::create_dir_all(&model).map_err(|e| {
        Error::new(ErrorKind::Internal, "cannot create the model dir").with_source(e)
    })?;
    if o.lm {
        let c = format!(
            "{{\"kind\": \"llama\", \"hidden_size\": {}, \"num_hidden_layers\": {LM_LAYERS}, \
             \"num_attention_heads\": 4, \"max_position_embeddings\": {LM_SEQ}}}",
            o.hidden
        );
        std::fs::write(model.join("config.json"), c).map_err(|e| {
            Error::new(ErrorKind::Internal, "cannot write config.json").with_source(e)
        })?;
    }
    let vars: HashMap<&str, String> = [
        ("EPOCHS", "1000".to_string()),
        ("BATCH_SIZE", o.batch.to_string()),
        ("LEARNING_RATE", "0.001".into()),
        ("ARTHA_SEED", "7".into()),
        ("ARTHA_HIDDEN", o.hidden.to_string()),
        ("ARTHA_MODEL_DIR", dir.join("model").display().to_string()),
        (
            "ARTHA_CHECKPOINT_DIR",
            dir.join("checkpoints").display().to_string(),
        ),
    ]
    .into_iter()
    .collect();
    RunConfig::from_lookup(|k| vars.get(k).cloned())
}

/// How a block of steps is recorded.
enum Mode<'a> {
    Off,
    Inline(&'a mut EventSink),
    Threaded(&'a mut Recorder, &'a mut EventSink),
}

/// Runs `n` steps, recording them as `mode` says.
fn block(tr: &mut Trainer, n: usize, mode: Mode<'_>) -> Result<Duration> {
    let t = Instant::now();
    match mode {
        Mode::Off => {
            for _ in 0..n {
                tr.step(false)?;
            }
        }
        Mode::Inline(sink) => {
            for _ in 0..n {
                let out = tr.step(true)?;
                sink.emit(&RuntimeEvent::Step(out.record))?;
            }
            sink.flush()?;
        }
        Mode::Threaded(rec, sink) => {
            for _ in 0..n {
                let (_, data) = tr.advance()?;
                rec.submit(data, sink)?;
            }
            rec.drain(sink)?;
            sink.flush()?;
        }
    }
    Ok(t.elapsed())
}

fn micros(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn time_it(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let t = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    Ok(micros(t.elapsed(), reps))
}

fn main() -> Result<()> {
    let o = opts()?;
    let dir = std::env::temp_dir().join(format!("artha-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::new(ErrorKind::Internal, "cannot create a temporary directory").with_source(e)
    })?;
    let cfg = config(&o, &dir)?;
    let data = if o.lm { text() } else { dataset() };
    let mut threaded = Trainer::new(&cfg, data.clone(), Device::Cpu)?;
    let mut inline = Trainer::new(&cfg, data.clone(), Device::Cpu)?;
    let mut off = Trainer::new(&cfg, data, Device::Cpu)?;
    let mut sink = EventSink::open(&dir.join("events.jsonl"))?;
    let mut sink2 = EventSink::open(&dir.join("events-inline.jsonl"))?;
    let mut recorder = Recorder::pooled();
    let threads = rayon::current_num_threads();
    let mc = off.model().config().clone();
    let what = match &mc.lm {
        Some(l) => format!(
            "llama ({} layers, width {}, SwiGLU {}, context {LM_SEQ}, bytes)",
            l.num_hidden_layers, l.hidden_size, l.intermediate_size
        ),
        None => format!("MLP {:?}", mc.dims()),
    };
    println!(
        "native {what}, {} parameters, batch {}, AdamW, matmul body {:?}; {threads} rayon thread(s)",
        mc.param_count(),
        o.batch,
        kernels::Isa::detect()
    );

    // Warm up all three, then alternate blocks (in a rotating order) so
    // drift and noise hit them alike.
    block(
        &mut threaded,
        o.block,
        Mode::Threaded(&mut recorder, &mut sink),
    )?;
    block(&mut inline, o.block, Mode::Inline(&mut sink2))?;
    block(&mut off, o.block, Mode::Off)?;
    let mut totals = [Duration::ZERO; 3];
    let mut ratios: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for r in 0..o.rounds {
        let mut t = [Duration::ZERO; 3];
        for i in 0..3 {
            let which = (r + i) % 3;
            t[which] = match which {
                0 => block(&mut off, o.block, Mode::Off)?,
                1 => block(
                    &mut threaded,
                    o.block,
                    Mode::Threaded(&mut recorder, &mut sink),
                )?,
                _ => block(&mut inline, o.block, Mode::Inline(&mut sink2))?,
            };
        }
        for i in 0..3 {
            totals[i] += t[i];
        }
        ratios[0].push(t[1].as_secs_f64() / t[0].as_secs_f64() - 1.0);
        ratios[1].push(t[2].as_secs_f64() / t[0].as_secs_f64() - 1.0);
    }
    let steps = o.rounds * o.block;
    let step_off = micros(totals[0], steps);
    let step_threaded = micros(totals[1], steps);
    let step_inline = micros(totals[2], steps);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let med_threaded = median(&mut ratios[0]);
    let med_inline = median(&mut ratios[1]);
    let on = &mut inline;

    // The recording parts, on one more step of `on`: the step's digests
    // as recorded (sampled, or full at a window end) and in full, and the
    // event line.
    let reps = 200;
    let (_, data) = on.advance()?;
    let record = data.clone().digest()?;
    let (sampled, full) = if data.is_full() {
        (None, data)
    } else {
        (Some(data.clone()), data.into_full())
    };
    let time_digests = |d: &artha_runtime::train::StepData| -> Result<f64> {
        let copies: Vec<_> = (0..reps).map(|_| d.clone()).collect();
        let t = Instant::now();
        for c in copies {
            std::hint::black_box(c.digest()?);
        }
        Ok(micros(t.elapsed(), reps))
    };
    let t_full = time_digests(&full)?;
    let t_sampled = match &sampled {
        Some(d) => time_digests(d)?,
        None => t_full,
    };
    let t_emit = time_it(reps * 10, || sink2.emit(&RuntimeEvent::Step(record)))?;
    sink2.flush()?;
    let window = 100.0;
    let amortised = ((window - 1.0) * t_sampled + t_full) / window + t_emit;

    // `on` took one more step above: bring the others level and compare.
    off.step(false)?;
    let (_, data) = threaded.advance()?;
    recorder.submit(data, &mut sink)?;
    recorder.drain(&mut sink)?;
    let digest = off.model().digest()?;
    let same = on.model().digest()? == digest && threaded.model().digest()? == digest;
    drop((sink, sink2));
    let _ = std::fs::remove_dir_all(&dir);
    if !same {
        return Err(Error::new(
            ErrorKind::Internal,
            "recording changed the weights: the trainers diverged",
        ));
    }
    let pct = |x: f64| 100.0 * (x - step_off) / step_off;
    println!(
        "steps timed:            {steps} per mode (off, threaded, inline), blocks of {}",
        o.block
    );
    println!("step, recording off:    {step_off:.1} µs");
    println!(
        "step, recording on:     {step_threaded:.1} µs as the runtime records (pool task): \
         overhead {:.2}% (median of {} rounds {:.2}%)",
        pct(step_threaded),
        o.rounds,
        100.0 * med_threaded
    );
    println!(
        "step, recording inline: {step_inline:.1} µs (digests on the training thread): \
         overhead {:.2}% (median {:.2}%)",
        pct(step_inline),
        100.0 * med_inline
    );
    println!(
        "recording parts:        digests of a step {t_sampled:.1} µs sampled, {t_full:.1} µs full; \
         step event {t_emit:.2} µs"
    );
    println!(
        "work recorded per step: {amortised:.1} µs = {:.2}% of an unrecorded step \
         (99 sampled + 1 full per window of 100, and the event)",
        100.0 * amortised / step_off
    );
    println!(
        "final weights after {} steps: {digest} (identical in all three modes)",
        off.step_count(),
    );
    Ok(())
}
