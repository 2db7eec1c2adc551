//! Job, registry and quickstart commands: argument conversion and output;
//! the engine does the work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use artha_core::JobPhase;
use artha_core::JobRecord;
use artha_core::{
    Amount, ArthaUri, DatasetId, Error, ErrorKind, InputRef, JobId, JobKind, JobSpec, LogLine,
    ModelId, Runtime,
};
use artha_engine::core::{JobEvent, JobProgress, JobStatus};
use artha_engine::engine::{JobsView, ModelRegistration};
use artha_engine::{Engine, quickstart};
use clap::Args;
use futures_util::StreamExt;

use crate::input;
use crate::out::{errln, outln};
use crate::storage::{print_json, runtime};

/// The per-GPU memory floor `--gpus` implies when `--gpu-memory` is absent.
const DEFAULT_GPU_MEMORY_MIB: u64 = 1024;

/// Options shared by `train` and `infer`.
#[derive(Debug, Args)]
pub(crate) struct JobArgs {
    /// A job spec file (JSON); the flags below override its fields.
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Model: a registered `model-…` id or an `artha://` URI.
    #[arg(long)]
    model: Option<String>,
    /// Dataset or inputs: a registered `dataset-…` id or an `artha://` URI.
    #[arg(long)]
    dataset: Option<String>,
    /// Runtime: a native id (`mlp`, `logreg`) or `image:<reference>`.
    #[arg(long, default_value = "mlp")]
    runtime: String,
    /// Epochs.
    #[arg(long)]
    epochs: Option<u32>,
    /// Mini-batch size.
    #[arg(long)]
    batch_size: Option<u32>,
    /// Learning rate.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// GPUs.
    #[arg(long)]
    gpus: Option<u32>,
    /// Memory each GPU must have, MiB (default with `--gpus`: 1024).
    #[arg(long, value_name = "MIB")]
    gpu_memory: Option<u64>,
    /// Longest run, seconds (bounds the budget: devices × seconds × rate).
    #[arg(long)]
    max_duration: Option<u64>,
    /// Budget, e.g. `2.5 ARTH` or `1000 wei` (default: the estimate).
    #[arg(long)]
    budget: Option<String>,
    /// Steps per proof window.
    #[arg(long)]
    proof_window: Option<u32>,
    /// A free-form hyper-parameter, `key=value` (repeatable); the runtime
    /// sees it as `ARTHA_<KEY>` (e.g. `task=regress`, `optimizer=sgd`,
    /// `hidden=64,32`). Numbers and booleans are typed, the rest are text.
    #[arg(long = "hyper", value_name = "KEY=VALUE")]
    hyper: Vec<String>,
    /// Extra environment for the runtime, `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Return once submitted instead of following the job to its end. The
    /// job is driven while an engine has the home open: the next `arthai`
    /// command on this home (e.g. `job-status --wait`) carries it on.
    #[arg(long)]
    detach: bool,
}

fn parse_id<T: std::str::FromStr<Err = Error>>(field: &str, s: &str) -> Result<T, Error> {
    s.parse().map_err(|e: Error| e.with_context("field", field))
}

fn parse_ref<Id: std::str::FromStr<Err = Error>>(
    field: &str,
    s: &str,
) -> Result<InputRef<Id>, Error> {
    s.parse()
        .map_err(|e: Error| e.with_context("field", format!("--{field}")))
}

impl JobArgs {
    /// Length limits of the flags (see [`crate::input`]).
    pub(crate) fn check(&self) -> Result<(), Error> {
        use input::{MAX_NAME_BYTES, MAX_PATH_BYTES, check_len};
        if let Some(f) = &self.spec {
            input::check_path("--spec", f)?;
        }
        check_len(
            "--model",
            self.model.as_deref().unwrap_or_default(),
            MAX_PATH_BYTES,
        )?;
        check_len(
            "--dataset",
            self.dataset.as_deref().unwrap_or_default(),
            MAX_PATH_BYTES,
        )?;
        check_len("--runtime", &self.runtime, MAX_NAME_BYTES)?;
        check_len(
            "--budget",
            self.budget.as_deref().unwrap_or_default(),
            MAX_NAME_BYTES,
        )?;
        input::check_pairs("--hyper", &self.hyper, input::MAX_EXTRA, 64)?;
        input::check_pairs("--env", &self.env, input::MAX_ENV, input::MAX_ENV_KEY)?;
        Ok(())
    }
}

/// Builds the spec from a file and/or flags (flags win). The budget is
/// zero when neither gives one (the estimate is filled in later).
fn build_spec(kind: JobKind, a: &JobArgs) -> Result<JobSpec, Error> {
    let runtime = match a.runtime.strip_prefix("image:") {
        Some(img) => Runtime::Image(img.to_string()),
        None => Runtime::Native(a.runtime.clone()),
    };
    let mut spec = match &a.spec {
        Some(f) => input::read_spec("--spec", f)?,
        None => JobSpec::new(kind, runtime.clone(), Amount::ZERO),
    };
    if a.spec.is_none() || a.runtime != "mlp" {
        spec.runtime = runtime;
    }
    spec.kind = kind;
    if let Some(m) = &a.model {
        spec.model = Some(parse_ref::<ModelId>("model", m)?);
    }
    if let Some(d) = &a.dataset {
        spec.dataset = Some(parse_ref::<DatasetId>("dataset", d)?);
    }
    if let Some(v) = a.epochs {
        spec.hyper.epochs = v;
    }
    if let Some(v) = a.batch_size {
        spec.hyper.batch_size = v;
    }
    if let Some(v) = a.learning_rate {
        spec.hyper.learning_rate = v;
    }
    if let Some(v) = a.seed {
        spec.hyper.seed = v;
    }
    if let Some(v) = a.gpus {
        spec.resources.gpus = v;
    }
    if let Some(v) = a.gpu_memory {
        spec.resources.gpu_memory_mib = v;
    } else if spec.resources.gpus > 0 && spec.resources.gpu_memory_mib == 0 {
        // `--gpus N` alone asks for any N GPUs, as `docker run --gpus N`
        // does; the spec itself needs a per-GPU memory floor.
        spec.resources.gpu_memory_mib = DEFAULT_GPU_MEMORY_MIB;
    }
    if let Some(v) = a.max_duration {
        spec.resources.max_duration_secs = v;
    }
    if let Some(v) = a.proof_window {
        spec.proof_window = v;
    }
    let mut env = BTreeMap::new();
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::invalid("--env", format!("`{kv}` is not KEY=VALUE")))?;
        env.insert(k.to_string(), v.to_string());
    }
    spec.env.extend(env);
    for kv in &a.hyper {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::invalid("--hyper", format!("`{kv}` is not KEY=VALUE")))?;
        let value = serde_json::from_str::<serde_json::Value>(v)
            .ok()
            .filter(|j| j.is_number() || j.is_boolean())
            .unwrap_or_else(|| serde_json::Value::String(v.to_string()));
        spec.hyper.extra.insert(k.to_string(), value);
    }
    spec.budget = match &a.budget {
        Some(b) => b
            .parse()
            .map_err(|e: Error| e.with_context("field", "--budget"))?,
        None if a.spec.is_some() => spec.budget,
        None => Amount::ZERO,
    };
    Ok(spec)
}

/// Every problem the spec has on its own (all but the budget when none was
/// given: the estimate fills it in), before the engine opens.
fn precheck(spec: &JobSpec) -> Result<(), Error> {
    let mut probe = spec.clone();
    if probe.budget.is_zero() {
        probe.budget = Amount::from_wei(1);
    }
    probe.validate().map_err(Error::from)
}

/// The budget when none was given: the estimate. (The engine refuses a
/// budget below the estimate or over the submitter's balance.)
fn fund(engine: &Engine, spec: &mut JobSpec) -> Result<(), Error> {
    if spec.budget.is_zero() {
        spec.budget = engine.cost_model().estimate(spec)?.cost;
    }
    Ok(())
}

fn bar(json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    Some(pb)
}

fn describe_progress(phase: JobPhase, p: &JobProgress, epochs: u32) -> String {
    match p.loss {
        Some(loss) => format!(
            "{phase}: epoch {}/{epochs} step {} loss {loss:.4} checkpoints {}",
            p.epoch + 1,
            p.step,
            p.checkpoints
        ),
        None => phase.to_string(),
    }
}

/// Follows a job (through its event stream) until `done`, with a live
/// line on a terminal (and plain progress lines on stderr otherwise,
/// unless `json`).
async fn follow(
    engine: &Engine,
    job: &JobId,
    epochs: u32,
    json: bool,
    done: fn(JobPhase) -> bool,
) -> Result<(), Error> {
    let pb = bar(json);
    let mut last = String::new();
    let mut phase = JobPhase::Submitted;
    let mut progress = JobProgress::default();
    let mut events = std::pin::pin!(engine.job(job)?.progress_events());
    while let Some(ev) = events.next().await {
        match ev? {
            JobEvent::Phase { phase: p, .. } => phase = p,
            JobEvent::Progress(p) => progress = p,
            _ => continue,
        }
        let line = describe_progress(phase, &progress, epochs);
        if line != last {
            match &pb {
                Some(pb) => pb.set_message(line.clone()),
                None if !json => errln!("  {line}")?,
                None => {}
            }
            last = line;
        }
        if done(phase) {
            break;
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(())
}

fn print_status(engine: &Engine, job: &JobId, json: bool) -> Result<(), Error> {
    print_record(&engine.status(job)?, json)
}

/// Prints a job's status as JSON, or as text.
fn print_record(r: &JobStatus, json: bool) -> Result<(), Error> {
    if json {
        return print_json(r);
    }
    outln!("job {}", r.job_id)?;
    outln!("  status:      {}", r.status)?;
    if let Some(reason) = &r.reason {
        outln!("  reason:      {reason}")?;
    }
    if let Some(n) = &r.node {
        outln!("  node:        {n} (GPUs {:?})", r.gpus)?;
    }
    if let Some(s) = r.gpu_seconds {
        let cost = r
            .cost
            .map_or_else(|| "cost unknown".to_string(), |c| c.to_string());
        outln!("  measured:    {s} GPU-s → {cost} (budget {})", r.budget)?;
    } else if r.progress.step > 0 {
        let loss = r
            .progress
            .loss
            .map_or_else(|| "null".to_string(), |l| l.to_string());
        outln!("  progress:    step {}, loss {loss}", r.progress.step)?;
    }
    if !r.artifacts.is_empty() {
        outln!("  artifacts:")?;
        for a in &r.artifacts {
            outln!("    {:<10} {:<28} {}", a.kind, a.name, a.uri)?;
        }
    }
    if !r.receipts.is_empty() {
        outln!("  receipts:")?;
        for x in &r.receipts {
            outln!(
                "    {:<15} block {:<5} gas {:<8} tx {}",
                x.action,
                x.receipt.block_number,
                x.receipt.gas_used,
                x.receipt.tx_hash
            )?;
        }
    }
    Ok(())
}

pub(crate) fn submit(o: &Opts, json: bool, kind: JobKind, a: &JobArgs) -> Result<(), Error> {
    // Everything about the input is checked before the engine opens.
    let mut spec = build_spec(kind, a)?;
    precheck(&spec)?;
    let budget_field = if a.budget.is_none() && a.spec.is_some() {
        "budget"
    } else {
        "--budget"
    };
    with_engine(o, async |engine| {
        fund(engine, &mut spec)?;
        let epochs = spec.hyper.epochs;
        let job = engine.submit(spec).await.map(|j| j.id()).map_err(|e| {
            // The engine names the spec's field; the user typed the flag.
            if e.context_value("field") == Some("budget") {
                e.with_context("option", budget_field)
            } else {
                e
            }
        })?;
        if a.detach {
            if json {
                return print_json(&serde_json::json!({ "job_id": job.to_string() }));
            }
            return outln!("{job}");
        }
        if !json {
            errln!("submitted {job}")?;
        }
        follow(engine, &job, epochs, json, JobPhase::is_terminal).await?;
        let _ = engine.settle_due().await;
        print_status(engine, &job, json)?;
        // The engine's outcome rule (a job still inside its challenge
        // period has none yet: it completed).
        match engine.status(&job)?.outcome {
            Some(outcome) => outcome.into_result(&job),
            None => Ok(()),
        }
    })
}

/// How to open the engine (global options).
#[derive(Debug, Clone, Default)]
pub(crate) struct Opts {
    pub home: Option<PathBuf>,
    pub rpc_url: Option<String>,
    pub rpc_keys: Option<String>,
    pub store: Option<String>,
}

/// Opens the engine, runs `f`, and shuts the engine down before the
/// process's async runtime goes: jobs this command did not finish (a
/// `--detach`ed submission, jobs resumed on open) stop at a clean point
/// and carry on with the next engine on this home.
fn with_engine<T>(o: &Opts, f: impl AsyncFnOnce(&Engine) -> Result<T, Error>) -> Result<T, Error> {
    runtime()?.block_on(async {
        let engine = open_engine(o).await?;
        let out = f(&engine).await;
        engine.shutdown().await;
        out
    })
}

async fn open_engine(o: &Opts) -> Result<Engine, Error> {
    let mut b = Engine::builder();
    if let Some(h) = &o.home {
        b = b.home(h);
    }
    if let Some(s) = &o.store {
        b = b.store_url(s.clone());
    }
    if let Some(url) = &o.rpc_url {
        // `role=key` entries (see `input::parse_keys`); a keys file was
        // checked when it was read, naming the file.
        let keys = crate::input::parse_keys(
            "--rpc-keys",
            None,
            o.rpc_keys.as_deref().unwrap_or_default(),
        )?;
        b = b.rpc_chain(url.clone(), keys);
    }
    if std::env::var_os("ARTHA_NATIVE_RUNTIME").is_none()
        && let Ok(me) = std::env::current_exe()
    {
        // `arthai` carries the native runtime (`arthai runtime`).
        b = b.native_runtime(me, &["runtime"]);
    }
    b.build().await
}

fn job_id(s: &str) -> Result<JobId, Error> {
    parse_id("job_id", s)
}

/// A read-only view of the home when another process's engine holds it
/// (e.g. `arthai train` running in another shell); `None` when it is free.
fn busy_home_view(o: &Opts) -> Result<Option<JobsView>, Error> {
    let home = match &o.home {
        Some(h) => h.clone(),
        None => artha_engine::EngineHome::default_path()?,
    };
    let view = JobsView::if_busy(&home)?;
    if view.is_some() {
        errln!("note: another arthai process has this home open; showing what it has recorded")?;
    }
    Ok(view)
}

pub(crate) fn status(o: &Opts, json: bool, id: &str, wait: bool) -> Result<(), Error> {
    let job = job_id(id)?;
    if !wait && let Some(view) = busy_home_view(o)? {
        return print_record(&view.status(&job)?, json);
    }
    with_engine(o, async |engine| {
        if wait {
            let epochs = engine.record(&job)?.spec.hyper.epochs;
            follow(engine, &job, epochs, json, JobPhase::is_terminal).await?;
            let _ = engine.settle_due().await;
        }
        print_status(engine, &job, json)
    })
}

pub(crate) fn logs(o: &Opts, json: bool, id: &str, since: u64) -> Result<(), Error> {
    let job = job_id(id)?;
    if let Some(view) = busy_home_view(o)? {
        return print_logs(&view.logs(&job, since)?, json);
    }
    with_engine(o, async |engine| {
        print_logs(&engine.logs(&job, since).await?, json)
    })
}

fn print_logs(lines: &[LogLine], json: bool) -> Result<(), Error> {
    if json {
        return print_json(&lines);
    }
    for l in lines {
        if l.stderr {
            errln!("{}", l.text)?;
        } else {
            outln!("{}", l.text)?;
        }
    }
    Ok(())
}

pub(crate) fn list(o: &Opts, json: bool) -> Result<(), Error> {
    if let Some(view) = busy_home_view(o)? {
        return print_list(view.list()?, json);
    }
    with_engine(o, async |engine| print_list(engine.list()?, json))
}

fn print_list(jobs: Vec<JobRecord>, json: bool) -> Result<(), Error> {
    {
        if json {
            let rows: Vec<_> = jobs
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "job_id": r.id.to_string(), "status": r.phase.as_str(),
                        "kind": r.spec.kind.to_string(), "gpu_seconds": r.gpu_seconds,
                    })
                })
                .collect();
            return print_json(&rows);
        }
        for r in jobs {
            outln!(
                "{}  {:<10} {:<6} {}",
                r.id,
                r.phase,
                r.spec.kind,
                r.reason.unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

pub(crate) fn cancel(o: &Opts, json: bool, id: &str) -> Result<(), Error> {
    let job = job_id(id)?;
    with_engine(o, async |engine| {
        engine.job(&job)?.cancel().await?;
        print_status(engine, &job, json)
    })
}

pub(crate) fn proofs(o: &Opts, json: bool, id: &str) -> Result<(), Error> {
    let job = job_id(id)?;
    with_engine(o, async |engine| {
        let m = engine.proofs(&job).await?;
        if json {
            return print_json(&m);
        }
        outln!("proofs of job {}", m.job_id)?;
        outln!("  job root:      {}", m.job_root)?;
        outln!(
            "  steps:         {} ({} windows of {})",
            m.steps,
            m.window_roots.len(),
            m.window
        )?;
        outln!("  final weights: {}", m.final_weights)?;
        for (i, w) in m.window_roots.iter().enumerate() {
            outln!("  window {i:>4}:   {w}")?;
        }
        for c in &m.checkpoints {
            let cid = c.cid.map(|c| c.to_string()).unwrap_or_default();
            outln!("  checkpoint step {:>6}: {} {cid}", c.step, c.path)?;
        }
        Ok(())
    })
}

/// A path to push, or an `artha://` URI already stored.
async fn content(engine: &Engine, source: &str) -> Result<ArthaUri, Error> {
    if source.starts_with(ArthaUri::SCHEME) {
        return source
            .parse()
            .map_err(|e: Error| e.with_context("field", "source"));
    }
    let p = Path::new(source);
    if !p.exists() {
        return Err(Error::new(ErrorKind::NotFound, "no such file or directory")
            .with_context("field", "source")
            .with_context("path", source.to_string()));
    }
    engine
        .push(p)
        .await
        .map(|r| r.uri)
        .map_err(|e| input::path_error(e, "source", p, false))
}

pub(crate) fn dataset_register(
    o: &Opts,
    json: bool,
    source: &str,
    name: &str,
    tags: &str,
) -> Result<(), Error> {
    with_engine(o, async |engine| {
        let uri = content(engine, source).await?;
        let meta = artha_engine::engine::DatasetMeta {
            name: name.into(),
            tags: tags.into(),
            license: None,
        };
        let d = engine.register_dataset(&uri, &meta).await?;
        if json {
            return print_json(&d);
        }
        outln!("{}  {}  {}", d.id, d.uri, d.name)?;
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn model_register(
    o: &Opts,
    json: bool,
    source: &str,
    name: &str,
    architecture: &str,
    version: &str,
    parent: Option<&str>,
    dataset: Option<&str>,
) -> Result<(), Error> {
    let parent = parent
        .map(|p| parse_id::<ModelId>("--parent", p))
        .transpose()?;
    let dataset = dataset
        .map(|d| parse_id::<DatasetId>("--dataset", d))
        .transpose()?;
    with_engine(o, async |engine| {
        let uri = content(engine, source).await?;
        let m = engine
            .register_model(
                &uri,
                &ModelRegistration {
                    name: name.into(),
                    architecture: architecture.into(),
                    version: version.into(),
                    parent,
                    dataset,
                    code_hash: None,
                },
            )
            .await?;
        if json {
            return print_json(&m);
        }
        outln!("{}  {}  {}", m.id, m.uri, m.name)?;
        Ok(())
    })
}

pub(crate) fn settle(o: &Opts, json: bool) -> Result<(), Error> {
    with_engine(o, async |engine| {
        let n = engine.settle_due().await?;
        if json {
            return print_json(&serde_json::json!({ "settled": n }));
        }
        outln!("settled {n} job(s)")?;
        Ok(())
    })
}

pub(crate) fn quickstart(o: &Opts, json: bool) -> Result<(), Error> {
    let started = std::time::Instant::now();
    with_engine(o, async |engine| {
        let say = |s: String| if json { Ok(()) } else { errln!("{s}") };
        say(format!(
            "Artha quickstart (home {})",
            engine.home().display()
        ))?;
        say(format!("  identity  {}", engine.identity()))?;
        say(format!(
            "  node      {} (registered on chain)",
            engine.node_id()
        ))?;
        // Each party acts with its own account; none holds the chain admin's.
        for (party, account) in engine.chain().accounts() {
            say(format!("  {:<9} {account}", party.as_str()))?;
        }
        let q = quickstart::start(engine).await?;
        say(format!(
            "  dataset   {} {} ({} bytes)",
            q.dataset.id, q.dataset.uri, q.dataset.size
        ))?;
        say(format!(
            "  model     {} {} (initial: mlp, hidden 16)",
            q.initial_model.id, q.initial_model.uri
        ))?;
        say(format!(
            "  job       {} — train native mlp, budget {} ({} GPU-s max) locked in escrow",
            q.job, q.estimate.cost, q.estimate.gpu_seconds
        ))?;
        follow(engine, &q.job, 3, json, JobPhase::is_terminal).await?;
        say(format!(
            "  settling  dev chain: clock advanced past the {} s challenge period",
            artha_engine::core::ProofChain::challenge_period_secs(engine.chain())
        ))?;
        let r = quickstart::finish(engine, &q.job).await?;
        print_status(engine, &q.job, json)?;
        say(format!("done in {:.1} s", started.elapsed().as_secs_f64()))?;
        if r.phase != JobPhase::Settled {
            return Err(Error::new(
                ErrorKind::JobFailed,
                r.reason
                    .unwrap_or_else(|| format!("the job ended {}", r.phase)),
            )
            .with_context("job_id", q.job.to_string()));
        }
        Ok(())
    })
}
