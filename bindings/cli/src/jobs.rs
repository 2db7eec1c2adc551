//! Job, registry and quickstart commands: argument conversion and output;
//! the engine does the work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use artha_core::JobPhase;
use artha_core::request::{BudgetText, DEFAULT_RUNTIME, JobRequest, typed_hyper_value};
use artha_core::{
    ArthaUri, ArtifactKind, DatasetId, Error, ErrorKind, JobId, JobKind, JobSpec, KeccakHash,
    LogLine, ModelId,
};
use artha_engine::api::JobSummary;
use artha_engine::core::{JobEvent, JobProgress, JobStatus};
use artha_engine::engine::{DatasetMeta, ModelRegistration};
use artha_engine::{Connection, Engine, quickstart};
use clap::Args;
use futures_util::StreamExt;

use crate::input;
use crate::out::{errln, outln};
use crate::storage::{print_json, runtime};

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
    #[arg(long, visible_alias = "data")]
    dataset: Option<String>,
    /// Runtime: a native id (`mlp`, `logreg`) or `image:<reference>`.
    #[arg(long, default_value = "mlp")]
    runtime: String,
    /// Epochs.
    #[arg(long)]
    epochs: Option<u32>,
    /// Mini-batch size.
    #[arg(long, visible_alias = "batch")]
    batch_size: Option<u32>,
    /// Learning rate.
    #[arg(long, visible_alias = "lr")]
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
    /// Budget: `1000` (ARTH), `2.5 ARTH` or `1000 wei` (default: the
    /// estimate).
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
    /// Return once submitted instead of following the job to its end. With
    /// `arthai serve` running for the home, the daemon drives it; without,
    /// the next `arthai` command on this home (e.g. `job-status --wait`)
    /// carries it on.
    #[arg(long)]
    detach: bool,
    /// Record the job (checked, its budget estimated) but start it only on
    /// `arthai job-release JOB`, as `sbatch --hold`; prints its id.
    #[arg(long)]
    hold: bool,
}

fn parse_id<T: std::str::FromStr<Err = Error>>(field: &str, s: &str) -> Result<T, Error> {
    s.parse().map_err(|e: Error| e.with_context("field", field))
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

/// Builds the spec from a file and/or flags (flags win), through the
/// [`JobRequest`] every front end shares. The budget is zero when neither
/// gives one (the estimate is filled in later).
fn build_spec(kind: JobKind, a: &JobArgs) -> Result<JobSpec, Error> {
    let base = match &a.spec {
        Some(f) => Some(input::read_spec("--spec", f)?),
        None => None,
    };
    let mut req = JobRequest {
        model: a.model.clone(),
        dataset: a.dataset.clone(),
        // `--runtime` defaults to `mlp`: a spec file's runtime stands
        // unless another is named.
        runtime: (a.spec.is_none() || a.runtime != DEFAULT_RUNTIME).then(|| a.runtime.clone()),
        epochs: a.epochs,
        batch_size: a.batch_size,
        learning_rate: a.learning_rate,
        seed: a.seed,
        gpus: a.gpus,
        gpu_memory_mib: a.gpu_memory,
        max_duration_secs: a.max_duration,
        budget: a.budget.clone().map(BudgetText::Text),
        proof_window: a.proof_window,
        ..JobRequest::default()
    };
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::invalid("--env", format!("`{kv}` is not KEY=VALUE")))?;
        req.env.insert(k.to_string(), v.to_string());
    }
    for kv in &a.hyper {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::invalid("--hyper", format!("`{kv}` is not KEY=VALUE")))?;
        req.hyper.insert(k.to_string(), typed_hyper_value(v));
    }
    req.apply(kind, base).map_err(as_flag)
}

/// An error about a request field, naming the flag (`model` → `--model`).
fn as_flag(e: Error) -> Error {
    match e.context_value("field") {
        Some(f) if !f.starts_with('-') && !f.contains('.') => {
            let flag = format!("--{}", f.replace('_', "-"));
            e.with_context("flag", flag)
        }
        _ => e,
    }
}

/// Every problem the spec has on its own (all but the budget when none was
/// given: the estimate fills it in), before the engine opens.
fn precheck(spec: &JobSpec) -> Result<(), Error> {
    JobRequest::precheck(spec).map_err(Error::from)
}

/// SIGINT (Ctrl-C) as a stream, listening from now on: a signal that
/// comes while the follower is busy is kept for its next look.
fn interrupts() -> Result<tokio::signal::unix::Signal, Error> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot listen for Ctrl-C").with_source(e))
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
    let of = if epochs > 0 {
        format!("/{epochs}")
    } else {
        String::new()
    };
    match p.loss {
        Some(loss) => format!(
            "{phase}: epoch {}{of} step {} loss {loss:.4} checkpoints {}",
            p.epoch + 1,
            p.step,
            p.checkpoints
        ),
        None => phase.to_string(),
    }
}

/// Follows a job (through its event stream) until it ends, with a live
/// line on a terminal (and plain progress lines on stderr otherwise,
/// unless `json`). Ctrl-C stops following, not the job, and says how to
/// follow it again.
async fn follow(c: &Connection, job: &JobId, epochs: u32, json: bool) -> Result<(), Error> {
    let pb = bar(json);
    let mut last = String::new();
    let mut phase = JobPhase::Submitted;
    let mut progress = JobProgress::default();
    let mut events = c.events(job, true).await?;
    let mut interrupt = interrupts()?;
    loop {
        let ev = tokio::select! {
            ev = events.next() => ev,
            _ = interrupt.recv() => {
                if let Some(pb) = &pb { pb.finish_and_clear(); }
                let how = if c.is_remote() {
                    "the daemon goes on running it"
                } else {
                    "its runtime goes on; the next arthai command on this home carries it on"
                };
                errln!("\ninterrupted: job {job} was not cancelled ({how}).")?;
                errln!("follow it again: arthai job-status {job} --wait   (or job-logs {job} --follow; cancel: arthai job-cancel {job})")?;
                return Err(Error::new(ErrorKind::Cancelled, "stopped following (the job goes on)")
                    .with_context("job_id", job.to_string())
                    .with_context("signal", "SIGINT"));
            }
        };
        let Some(ev) = ev else { break };
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
        if phase.is_terminal() {
            break;
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(())
}

async fn print_status(c: &Connection, job: &JobId, json: bool) -> Result<(), Error> {
    print_record(&c.status(job).await?, json)
}

/// Prints a job's status as JSON (every field, every artifact), or as
/// text (checkpoints listed compactly when there are many).
fn print_record(r: &JobStatus, json: bool) -> Result<(), Error> {
    if json {
        return print_json(r);
    }
    outln!("job {}", r.job_id)?;
    if r.status == r.phase {
        outln!("  status:      {}", r.status)?;
    } else {
        outln!("  status:      {} ({})", r.status, r.phase)?;
    }
    if let Some(reason) = &r.reason {
        outln!("  reason:      {reason}")?;
    }
    if let Some(m) = &r.trained_model {
        outln!("  model:       {m} (trained; registered with its lineage)")?;
    }
    if let Some(n) = &r.node {
        let gpus = r.gpu_allocated.as_deref().unwrap_or("no GPU");
        outln!("  node:        {n} ({gpus})")?;
    }
    if let Some(start) = r.started_at {
        let took = r
            .duration_secs
            .map_or_else(String::new, |d| format!(", {d} s"));
        outln!("  started:     {start} (Unix s){took}")?;
    }
    let t = &r.training;
    if t.step > 0 {
        let loss = t.loss.map_or_else(|| "null".to_string(), |l| l.to_string());
        outln!(
            "  progress:    {:.0}% (step {}, epoch {}, loss {loss})",
            r.progress * 100.0,
            t.step,
            t.epoch + 1
        )?;
    } else if t.inferences > 0 {
        outln!(
            "  progress:    {:.0}% ({} inferences)",
            r.progress * 100.0,
            t.inferences
        )?;
    }
    if let Some(s) = r.gpu_seconds {
        let cost = r
            .cost
            .map_or_else(|| "cost unknown".to_string(), |c| c.to_string());
        outln!("  measured:    {s} GPU-s → {cost} (budget {})", r.budget)?;
    }
    if !r.artifacts.is_empty() {
        outln!("  artifacts:")?;
        let checkpoints: Vec<_> = r
            .artifacts
            .iter()
            .filter(|a| a.kind == ArtifactKind::Checkpoint)
            .collect();
        let compact = checkpoints.len() > 3;
        for a in &r.artifacts {
            if compact && a.kind == ArtifactKind::Checkpoint {
                continue;
            }
            outln!("    {:<10} {:<28} {}", a.kind.as_str(), a.name, a.uri)?;
        }
        if let (true, Some(first), Some(last)) = (compact, checkpoints.first(), checkpoints.last())
        {
            let kind = ArtifactKind::Checkpoint.as_str();
            outln!("    {kind:<10} {:<28} {}", first.name, first.uri)?;
            outln!(
                "    {kind:<10} … {} more ({} in all)",
                checkpoints.len() - 2,
                checkpoints.len()
            )?;
            outln!("    {kind:<10} {:<28} {}", last.name, last.uri)?;
        }
    }
    if !r.receipts.is_empty() {
        outln!("  receipts:")?;
        for x in &r.receipts {
            let mut extra = String::new();
            if let Some(step) = x.step {
                extra.push_str(&format!(" step {step}"));
            }
            if let Some(p) = x.payout {
                extra.push_str(&format!(" payout {p}"));
            }
            if let Some(p) = x.refund {
                extra.push_str(&format!(" refund {p}"));
            }
            outln!(
                "    {:<15} block {:<5} gas {:<8} tx {}{extra}",
                x.action.as_str(),
                x.block,
                x.gas,
                x.tx_hash
            )?;
        }
    }
    Ok(())
}

pub(crate) fn submit(o: &Opts, json: bool, kind: JobKind, a: &JobArgs) -> Result<(), Error> {
    // Everything about the input is checked before the engine opens.
    let spec = build_spec(kind, a)?;
    precheck(&spec)?;
    let budget_field = if a.budget.is_none() && a.spec.is_some() {
        "budget"
    } else {
        "--budget"
    };
    with_conn(o, async |c| {
        let epochs = spec.hyper.epochs;
        if !json && !a.detach && !a.hold {
            errln!("Submitting {kind} job...")?;
            if let Some(m) = &spec.model {
                errln!("  Model:      {m}")?;
            }
            if let Some(d) = &spec.dataset {
                errln!("  Dataset:    {d}")?;
            }
            if kind == JobKind::Train {
                errln!("  Epochs:     {}", spec.hyper.epochs)?;
                errln!("  Batch Size: {}", spec.hyper.batch_size)?;
                errln!("  LR:         {}", spec.hyper.learning_rate)?;
            }
            if !spec.budget.is_zero() {
                errln!("  Budget:     {}", spec.budget)?;
            }
        }
        let sub = c.submit_with(spec, a.hold).await;
        let sub = sub.map_err(|e| {
            // The engine names the spec's field; the user typed the flag.
            if e.context_value("field") == Some("budget") {
                e.with_context("option", budget_field)
            } else {
                e
            }
        })?;
        let job = sub.job_id;
        if a.detach || a.hold {
            if json {
                return print_json(&sub);
            }
            outln!("{job}")?;
            return Ok(());
        }
        if !json {
            let e = &sub.estimate;
            errln!("Job submitted.")?;
            errln!("  Job ID: {job}")?;
            errln!("  Status: {}", sub.status.status)?;
            errln!(
                "  Estimated Cost: at most {} ({} GPU-s x {})",
                e.cost,
                e.gpu_seconds,
                e.rate
            )?;
            errln!("  Estimated Duration: at most {} s", e.duration_secs)?;
            errln!("Monitor with: arthai job-status {job}")?;
        }
        follow(c, &job, epochs, json).await?;
        let _ = c.settle().await;
        print_status(c, &job, json).await?;
        // The engine's outcome rule (a job still inside its challenge
        // period has none yet: it completed).
        match c.status(&job).await?.outcome {
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

impl Opts {
    /// The home directory.
    pub(crate) fn root(&self) -> Result<PathBuf, Error> {
        match &self.home {
            Some(h) => Ok(h.clone()),
            None => artha_engine::EngineHome::default_path(),
        }
    }
}

/// Connects to the home's engine — its `arthai serve` when one answers,
/// else an embedded engine opened here — runs `f`, and closes the
/// connection before the process's async runtime goes: an embedded engine
/// is shut down, so jobs this command did not finish (a `--detach`ed
/// submission, jobs resumed on open) stop at a clean point and carry on
/// with the next engine on this home.
pub(crate) fn with_conn<T>(
    o: &Opts,
    f: impl AsyncFnOnce(&Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    runtime()?.block_on(async {
        let c = connect(o).await?;
        let out = f(&c).await;
        c.close().await;
        out
    })
}

async fn connect(o: &Opts) -> Result<Connection, Error> {
    let root = o.root()?;
    let c = artha_engine::connect_or(&root, async || open_engine(o).await).await?;
    if let Some(url) = c.url() {
        let flag = if o.rpc_url.is_some() {
            Some("--rpc-url")
        } else if o.store.is_some() {
            Some("--store")
        } else {
            None
        };
        if let Some(flag) = flag {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "this home is served by `arthai serve` at {url}, which has its own chain and store; \
                     drop {flag}, or stop the daemon to open the home with it"
                ),
            )
            .with_context("option", flag));
        }
    }
    Ok(c)
}

/// Opens the embedded engine with the global options.
pub(crate) async fn open_engine(o: &Opts) -> Result<Engine, Error> {
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
    b.build().await.map_err(|e| {
        if e.kind() == ErrorKind::Conflict {
            Error::new(
                ErrorKind::Conflict,
                format!(
                    "{}; to use this home from several shells at once, run `arthai serve` for it \
                     (every arthai command then talks to the daemon)",
                    e.message()
                ),
            )
        } else {
            e
        }
    })
}

fn job_id(s: &str) -> Result<JobId, Error> {
    parse_id("job_id", s)
}

pub(crate) fn status(o: &Opts, json: bool, id: &str, wait: bool) -> Result<(), Error> {
    let job = job_id(id)?;
    with_conn(o, async |c| {
        if wait {
            // The total of epochs is the spec's, which a status does not
            // carry: the line shows the epoch alone.
            follow(c, &job, 0, json).await?;
            let _ = c.settle().await;
        }
        print_status(c, &job, json).await
    })
}

pub(crate) fn logs(
    o: &Opts,
    json: bool,
    id: &str,
    since: u64,
    follow_on: bool,
) -> Result<(), Error> {
    let job = job_id(id)?;
    with_conn(o, async |c| {
        if !follow_on {
            let lines = c.logs(&job, since).await?;
            if json {
                return print_json(&lines);
            }
            return print_logs(&lines, false);
        }
        let mut lines = c.follow_logs(&job, since).await?;
        let mut interrupt = interrupts()?;
        loop {
            let line = tokio::select! {
                l = lines.next() => l,
                _ = interrupt.recv() => {
                    errln!("\ninterrupted: job {job} goes on; follow again with: arthai job-logs {job} --follow")?;
                    return Ok(());
                }
            };
            let Some(line) = line else { break };
            print_logs(&[line?], json)?;
        }
        Ok(())
    })
}

/// Prints lines as text, or with `json` one JSON object per line (as
/// `--follow` streams them).
fn print_logs(lines: &[LogLine], json: bool) -> Result<(), Error> {
    if json {
        for l in lines {
            outln!("{}", serde_json::to_string(l).unwrap_or_default())?;
        }
        return Ok(());
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
    with_conn(o, async |c| print_list(&c.jobs().await?, json))
}

fn print_list(jobs: &[JobSummary], json: bool) -> Result<(), Error> {
    if json {
        return print_json(&jobs);
    }
    for r in jobs {
        outln!(
            "{}  {:<10} {:<6} {}",
            r.job_id,
            r.status,
            r.kind,
            r.reason.as_deref().unwrap_or_default()
        )?;
    }
    Ok(())
}

pub(crate) fn release(o: &Opts, json: bool, id: &str) -> Result<(), Error> {
    let job = job_id(id)?;
    with_conn(o, async |c| print_record(&c.release(&job).await?, json))
}

pub(crate) fn cancel(o: &Opts, json: bool, id: &str) -> Result<(), Error> {
    let job = job_id(id)?;
    with_conn(o, async |c| print_record(&c.cancel(&job).await?, json))
}

pub(crate) fn proofs(o: &Opts, json: bool, id: &str) -> Result<(), Error> {
    let job = job_id(id)?;
    with_conn(o, async |c| {
        let m = c.proofs(&job).await?;
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

/// `arthai verify`: audits a job by replay (and disputes it when asked);
/// the verdict is the exit code (see [`crate::exit`]).
pub(crate) fn verify(
    o: &Opts,
    json: bool,
    id: &str,
    req: &artha_engine::dispute::VerifyRequest,
) -> Result<(), Error> {
    use artha_engine::verify::Verdict;
    let job = job_id(id)?;
    with_conn(o, async |c| {
        let out = c.verify(&job, req).await?;
        let a = &out.audit;
        crate::exit::set_verdict(match a.verdict {
            Verdict::Valid => 0,
            Verdict::Fraud => crate::exit::FRAUD,
            Verdict::Unverifiable => crate::exit::UNVERIFIABLE,
        });
        if json {
            return print_json(&out);
        }
        let verdict = match a.verdict {
            Verdict::Valid => "valid",
            Verdict::Fraud => "FRAUD",
            Verdict::Unverifiable => "unverifiable",
        };
        outln!("audit of job {}: {verdict}", a.job_id)?;
        if let Some(r) = &a.reason {
            outln!("  {r}")?;
        }
        if let Some(seed) = &a.seed {
            outln!("  audit seed:    {seed} (from the chain)")?;
        }
        outln!(
            "  replayed:      {} windows of {}, {} steps in {} ms ({} steps committed)",
            a.windows.len(),
            a.windows_committed,
            a.replayed_steps,
            a.replay_ms,
            a.committed_steps
        )?;
        for w in &a.windows {
            let v = match w.verdict {
                Verdict::Valid => "ok",
                Verdict::Fraud => "FRAUD",
                Verdict::Unverifiable => "unverifiable",
            };
            outln!(
                "  window {:>5} (steps {}–{}): {v}{}",
                w.window,
                w.steps.0,
                w.steps.1,
                w.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )?;
        }
        if let Some(d) = &out.dispute {
            outln!(
                "  challenge {}: verdict {:?}, job {:?} on chain",
                d.challenge.id,
                d.challenge.verdict,
                d.job_status
            )?;
        }
        Ok(())
    })
}

/// `arthai verify --follow`, the verifier mode: a round of
/// [`Connection::verify_pending`] every `every` (one line per audit, with
/// the dispute when `--challenge` found fraud), until Ctrl-C. Exits 10 once
/// it found fraud.
pub(crate) fn verify_follow(
    o: &Opts,
    json: bool,
    req: &artha_engine::dispute::VerifyRequest,
    every: Duration,
) -> Result<(), Error> {
    use artha_engine::verify::Verdict;
    with_conn(o, async |c| {
        let mut int = interrupts()?;
        let mut done = std::collections::HashSet::new();
        loop {
            for out in c.verify_pending(req, &mut done).await? {
                if out.audit.verdict == Verdict::Fraud {
                    crate::exit::set_verdict(crate::exit::FRAUD);
                }
                if json {
                    let line = serde_json::to_string(&out).map_err(|e| {
                        Error::new(ErrorKind::Internal, "cannot encode an audit").with_source(e)
                    })?;
                    outln!("{line}")?;
                } else {
                    let a = &out.audit;
                    outln!(
                        "{} {:?}: {} of {} windows, {} steps replayed in {} ms{}",
                        a.job_id,
                        a.verdict,
                        a.windows.len(),
                        a.windows_committed,
                        a.replayed_steps,
                        a.replay_ms,
                        out.dispute
                            .as_ref()
                            .map(|d| format!("; challenge {} → {:?}", d.challenge.id, d.job_status))
                            .unwrap_or_default()
                    )?;
                }
            }
            tokio::select! {
                _ = int.recv() => return Ok(()),
                () = tokio::time::sleep(every) => {}
            }
        }
    })
}

/// A path to push, or an `artha://` URI already stored; `field` names the
/// argument in errors.
async fn content(c: &Connection, field: &'static str, source: &str) -> Result<ArthaUri, Error> {
    if source.starts_with(ArthaUri::SCHEME) {
        return source
            .parse()
            .map_err(|e: Error| e.with_context("field", field));
    }
    let p = Path::new(source);
    if !p.exists() {
        return Err(Error::new(ErrorKind::NotFound, "no such file or directory")
            .with_context("field", field)
            .with_context("path", source.to_string()));
    }
    c.push(p)
        .await
        .map(|r| r.uri)
        .map_err(|e| input::path_error(e, field, p, false))
}

/// The name of something registered without `--name`: the file or
/// directory name of a path, else the last segment of the URI's path, else
/// `unnamed`.
fn default_name(source: &str) -> String {
    let trimmed = source.trim_end_matches('/');
    if let Some(rest) = trimmed.strip_prefix(ArthaUri::SCHEME) {
        return match rest.split_once('/') {
            Some((_, path)) if !path.is_empty() => {
                path.rsplit('/').next().unwrap_or("unnamed").into()
            }
            _ => "unnamed".into(),
        };
    }
    Path::new(trimmed)
        .file_stem()
        .map_or_else(|| "unnamed".into(), |s| s.to_string_lossy().into_owned())
}

pub(crate) fn dataset_register(
    o: &Opts,
    json: bool,
    source: &str,
    name: Option<&str>,
    tags: &str,
    license: Option<&str>,
) -> Result<(), Error> {
    with_conn(o, async |c| {
        let uri = content(c, "source", source).await?;
        let license = match license {
            Some(l) => Some(content(c, "--license", l).await?),
            None => None,
        };
        let meta = DatasetMeta {
            name: name.map_or_else(|| default_name(source), str::to_string),
            tags: tags.to_string(),
            license,
        };
        let d = c.register_dataset(&uri, &meta).await?;
        if json {
            return print_json(&d);
        }
        outln!("{}", d.id)?;
        errln!("  {}  {}  tags [{}]", d.uri, d.name, d.tags)?;
        if let Some(l) = &d.license {
            errln!("  licence {l}")?;
        }
        Ok(())
    })
}

/// `model-register`'s arguments.
#[derive(Debug)]
pub(crate) struct ModelArgs<'a> {
    pub source: &'a str,
    pub name: Option<&'a str>,
    pub architecture: &'a str,
    pub version: &'a str,
    pub parent: Option<&'a str>,
    pub dataset: Option<&'a str>,
    pub code_hash: Option<&'a str>,
}

pub(crate) fn model_register(o: &Opts, json: bool, a: &ModelArgs<'_>) -> Result<(), Error> {
    let parent = a
        .parent
        .map(|p| parse_id::<ModelId>("--parent", p))
        .transpose()?;
    let dataset = a
        .dataset
        .map(|d| parse_id::<DatasetId>("--dataset", d))
        .transpose()?;
    let code_hash = a
        .code_hash
        .map(|h| parse_id::<KeccakHash>("--code-hash", h))
        .transpose()?;
    with_conn(o, async |c| {
        let uri = content(c, "source", a.source).await?;
        let m = c
            .register_model(
                &uri,
                &ModelRegistration {
                    name: a
                        .name
                        .map_or_else(|| default_name(a.source), str::to_string),
                    architecture: a.architecture.into(),
                    version: a.version.into(),
                    parent,
                    dataset,
                    code_hash,
                },
            )
            .await?;
        if json {
            return print_json(&m);
        }
        outln!("{}", m.id)?;
        errln!(
            "  {}  {}  {} version {} code {}",
            m.uri,
            m.name,
            m.architecture,
            m.version,
            m.code_hash
        )?;
        Ok(())
    })
}

pub(crate) fn dataset_list(o: &Opts, json: bool) -> Result<(), Error> {
    with_conn(o, async |c| {
        let ds = c.datasets().await?;
        if json {
            return print_json(&ds);
        }
        for d in ds {
            outln!(
                "{}  {:<20} {:>10} B  [{}]  {}",
                d.id,
                d.name,
                d.size,
                d.tags,
                d.license.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    })
}

pub(crate) fn model_list(o: &Opts, json: bool) -> Result<(), Error> {
    with_conn(o, async |c| {
        let ms = c.models().await?;
        if json {
            return print_json(&ms);
        }
        for m in ms {
            outln!(
                "{}  {:<20} {:<8} v{}  {}",
                m.id,
                m.name,
                m.architecture,
                m.version,
                m.uri
            )?;
        }
        Ok(())
    })
}

pub(crate) fn model_lineage(o: &Opts, json: bool, id: &str) -> Result<(), Error> {
    let id = parse_id::<ModelId>("model_id", id)?;
    with_conn(o, async |c| {
        let ms = c.lineage(&id).await?;
        if json {
            return print_json(&ms);
        }
        for (depth, m) in ms.iter().enumerate() {
            let arrow = if depth == 0 { "" } else { "<- " };
            outln!(
                "{:indent$}{arrow}{}  {}  {} v{}",
                "",
                m.id,
                m.name,
                m.architecture,
                m.version,
                indent = depth * 2
            )?;
        }
        Ok(())
    })
}

pub(crate) fn node_list(o: &Opts, json: bool) -> Result<(), Error> {
    with_conn(o, async |c| {
        let ns = c.nodes().await?;
        if json {
            return print_json(&ns);
        }
        for n in ns {
            outln!(
                "{}  {}/{} GPUs free  {}  stake {}  reputation {}  {}  [{}]",
                n.id,
                n.gpus_free,
                n.gpus_total,
                n.standing.price_per_gpu_second,
                n.standing.stake,
                n.standing.reputation,
                if n.standing.eligible {
                    "eligible"
                } else {
                    "not eligible"
                },
                n.runtimes.join(",")
            )?;
        }
        Ok(())
    })
}

pub(crate) fn settle(o: &Opts, json: bool, when: bool) -> Result<(), Error> {
    with_conn(o, async |c| {
        if when {
            let due = c.due().await?;
            if json {
                return print_json(&due);
            }
            if due.is_empty() {
                outln!("nothing waiting to settle")?;
            }
            for d in due {
                let at = if d.in_secs == 0 {
                    "due now".to_string()
                } else {
                    format!("in {} s (chain time {})", d.in_secs, d.settles_at)
                };
                outln!("{}  {at}", d.job_id)?;
            }
            return Ok(());
        }
        let r = c.settle().await?;
        if json {
            return print_json(&r);
        }
        outln!("settled {} job(s)", r.settled)?;
        if let Some(next) = r.pending.first() {
            errln!(
                "  {} more inside the {} s challenge period; the next settles in {} s ({}).",
                r.pending.len(),
                r.challenge_period_secs,
                next.in_secs,
                next.job_id
            )?;
            errln!(
                "  see them with `arthai settle --when`; on a development chain `arthai dev advance {}` moves the clock",
                next.in_secs
            )?;
        }
        Ok(())
    })
}

pub(crate) fn dev_advance(o: &Opts, json: bool, secs: u64) -> Result<(), Error> {
    with_conn(o, async |c| {
        let t = c.dev_advance(secs).await?;
        if json {
            return print_json(&serde_json::json!({ "chain_time": t }));
        }
        outln!("chain time {t} (+{secs} s)")?;
        Ok(())
    })
}

pub(crate) fn quickstart(o: &Opts, json: bool, lm: bool) -> Result<(), Error> {
    let which = if lm {
        quickstart::QuickstartModel::Llama
    } else {
        quickstart::QuickstartModel::Mlp
    };
    let started = std::time::Instant::now();
    with_conn(o, async |c| {
        let Connection::Local(engine) = c else {
            return Err(Error::new(
                ErrorKind::Conflict,
                "quickstart runs its own engine and demo chain clock; this home is served by `arthai serve` \
                 (stop it, or give another --home)",
            ));
        };
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
        let q = quickstart::start_with(engine, which).await?;
        say(format!(
            "  dataset   {} {} ({} bytes)",
            q.dataset.id, q.dataset.uri, q.dataset.size
        ))?;
        let (arch, what) = if lm {
            ("llama", "llama: 2 layers, width 64, char tokens")
        } else {
            ("mlp", "mlp, hidden 16")
        };
        say(format!(
            "  model     {} {} (initial: {what})",
            q.initial_model.id, q.initial_model.uri
        ))?;
        say(format!(
            "  job       {} — train native {arch}, budget {} ({} GPU-s max) locked in escrow",
            q.job, q.estimate.cost, q.estimate.gpu_seconds
        ))?;
        follow(c, &q.job, 3, json).await?;
        say(format!(
            "  settling  dev chain: clock advanced past the {} s challenge period",
            artha_engine::core::ProofChain::challenge_period_secs(engine.chain())
        ))?;
        let r = quickstart::finish(engine, &q.job).await?;
        print_status(c, &q.job, json).await?;
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
