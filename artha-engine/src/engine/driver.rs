//! Drives one job through its lifecycle, from whatever phase the ledger
//! holds (so the same code runs a fresh job and resumes one after a crash).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use artha_core::protocol::runtime_env;
use artha_core::{
    ArthaUri, ChainJobStatus, ChainSubmission, Error, ErrorKind, ExecHandle, ExecState, Executor,
    ExitReason, InputRef, JobId, JobKind, JobSpec, KeccakHash, LaunchSpec, Limits, LogLine,
    MerkleTree, Mounts, PlacementRequest, Receipt, Result, Runtime, RuntimeEvent, Scheduler,
};

use super::{Inner, ModelEntry, NATIVE_RUNTIMES, RunCtl, input_uri, job_deal};
use crate::chain::contracts::revert_name;
use crate::chain::outbox::Write;
use crate::exec::{EVENTS_FILE, EventTail, collect, failure_reason};
use crate::fsutil::{io_err, write_atomic};
use crate::jobs::{Artifact, JobPhase, JobRecord, now_ms};
use crate::proofs::{MANIFEST_FORMAT, ProofManifest, ProofRecorder};
use crate::sched::WeightedScheduler;
use crate::store::util::blocking;
use crate::store::{EntryKind, PushOptions};

/// Most times a job whose runtime died with the engine is resumed.
const MAX_RESUMES: u32 = 3;
/// Grace period between SIGTERM and SIGKILL when stopping a runtime.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The inputs a spec names, resolved to stored content (checked to exist).
pub(crate) struct Inputs {
    pub model: Option<ArthaUri>,
    pub dataset: Option<ArthaUri>,
}

pub(crate) async fn resolve_inputs(inner: &Inner, spec: &JobSpec) -> Result<Inputs> {
    let model = match &spec.model {
        Some(m) => Some(input_uri(
            m,
            |id| Ok(inner.catalog.model(id)?.map(|e| e.uri)),
            "model",
        )?),
        None => None,
    };
    let dataset = match &spec.dataset {
        Some(d) => Some(input_uri(
            d,
            |id| Ok(inner.catalog.dataset(id)?.map(|e| e.uri)),
            "dataset",
        )?),
        None => None,
    };
    for (field, uri) in [("model", &model), ("dataset", &dataset)] {
        if let Some(u) = uri {
            inner
                .store
                .ls(u)
                .await
                .map_err(|e| e.with_context("field", field))?;
        }
    }
    Ok(Inputs { model, dataset })
}

fn job_dir(inner: &Inner, job: &JobId) -> PathBuf {
    inner.process.jobs_root().join(job.to_string())
}

fn events_path(inner: &Inner, job: &JobId) -> PathBuf {
    job_dir(inner, job).join("artha").join(EVENTS_FILE)
}

fn executor<'a>(inner: &'a Inner, runtime: &Runtime) -> Result<&'a dyn Executor> {
    match runtime {
        Runtime::Native(_) => Ok(&inner.process),
        #[cfg(feature = "docker")]
        Runtime::Image(_) => match &inner.docker {
            Some(d) => Ok(d),
            None => Err(Error::new(
                ErrorKind::Unavailable,
                "image runtimes need Docker and no Docker daemon answered",
            )
            .with_context("field", "runtime.image")),
        },
        #[cfg(not(feature = "docker"))]
        Runtime::Image(_) => Err(Error::new(
            ErrorKind::Unsupported,
            "built without the `docker` feature",
        )),
    }
}

/// Sends a chain write through the outbox, retrying while the chain is
/// unavailable, and records its receipt on the job once.
async fn chain_write(inner: &Inner, job: &JobId, w: Write) -> Result<()> {
    let action = w.name();
    let mut delay = Duration::from_millis(200);
    let receipt: Option<Receipt> = loop {
        match inner.outbox.write(w.clone()).await {
            Ok(r) => break r,
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    };
    add_receipt(inner, job, action, receipt)
}

fn add_receipt(inner: &Inner, job: &JobId, action: &str, r: Option<Receipt>) -> Result<()> {
    let Some(r) = r else { return Ok(()) };
    let rec = inner.ledger.get(job)?;
    if rec.receipts.iter().any(|x| x.action == action) {
        return Ok(());
    }
    inner.ledger.add_receipt(job, action, r)
}

/// Whether the job's results are committed on chain: a `commit` receipt,
/// or a commit the outbox found on chain after a crash between sending it
/// and recording it (such a write has no receipt to show).
pub(crate) async fn committed(inner: &Inner, r: &JobRecord) -> bool {
    r.receipts.iter().any(|x| x.action == "commit") || inner.outbox.is_done(&r.id, "commit").await
}

fn add_artifact(inner: &Inner, job: &JobId, kind: &str, name: &str, uri: &ArthaUri) -> Result<()> {
    let rec = inner.ledger.get(job)?;
    if rec
        .artifacts
        .iter()
        .any(|a| a.kind == kind && a.name == name)
    {
        return Ok(());
    }
    inner.ledger.add_artifact(
        job,
        Artifact {
            kind: kind.into(),
            name: name.into(),
            uri: uri.to_string(),
        },
    )
}

/// Runs the job from its current phase until it is terminal (Completed,
/// Failed, Cancelled: closed, waiting for settlement) or Settled.
pub(crate) async fn drive(inner: &Inner, job: JobId, ctl: &RunCtl) -> Result<()> {
    loop {
        let r = inner.ledger.get(&job)?;
        ctl.progress.send_modify(|p| p.phase = Some(r.phase));
        let cancelled = *ctl.cancel.borrow();
        match r.phase {
            JobPhase::Submitted => {
                inner
                    .ledger
                    .transition(&job, JobPhase::Submitted, JobPhase::Accepted, None)?;
            }
            JobPhase::Accepted | JobPhase::Scheduled | JobPhase::Staging if cancelled => {
                inner.ledger.transition(
                    &job,
                    r.phase,
                    JobPhase::Cancelled,
                    Some(&format!("cancelled by the submitter during {}", r.phase)),
                )?;
            }
            JobPhase::Accepted => schedule(inner, &r, ctl).await?,
            JobPhase::Scheduled => {
                inner
                    .ledger
                    .transition(&job, JobPhase::Scheduled, JobPhase::Staging, None)?;
            }
            JobPhase::Staging => stage_and_launch(inner, &r, None, ctl).await?,
            JobPhase::Running => run(inner, &r, ctl).await?,
            JobPhase::Proving => prove(inner, &r, None).await?,
            JobPhase::Completed | JobPhase::Failed | JobPhase::Cancelled => {
                close(inner, &r).await?;
                return Ok(());
            }
            JobPhase::Settled => return Ok(()),
        }
    }
}

/// Records a hard failure of the driver itself (a staging or launch error,
/// an unusable input): the job fails with the reason and is closed.
pub(crate) async fn fail_hard(inner: &Inner, job: &JobId, e: &Error) {
    let Ok(r) = inner.ledger.get(job) else { return };
    if r.phase.is_terminal() {
        return;
    }
    let reason = describe(e);
    if inner
        .ledger
        .transition(job, r.phase, JobPhase::Failed, Some(&reason))
        .is_ok()
        && let Ok(r) = inner.ledger.get(job)
    {
        let _ = close(inner, &r).await;
    }
}

fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    for (k, v) in e.context() {
        if !s.contains(v.as_str()) {
            s.push_str(&format!(" [{k}: {v}]"));
        }
    }
    s
}

// ------------------------------------------------------------- scheduling

async fn schedule(inner: &Inner, r: &JobRecord, ctl: &RunCtl) -> Result<()> {
    let job = r.id;
    let spec = &r.spec;
    let estimate = inner.cost.estimate(spec)?;
    let spec_json = serde_json::to_vec(spec)
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode the spec").with_source(e))?;
    chain_write(
        inner,
        &job,
        Write::Submit(ChainSubmission {
            job_id: job,
            spec_hash: KeccakHash::of(&spec_json),
            max_gpu_seconds: estimate.gpu_seconds,
            rate: inner.cost.rate_per_gpu_second,
            budget: spec.budget,
        }),
    )
    .await?;

    let inputs = resolve_inputs(inner, spec).await?;
    let req = PlacementRequest {
        job_id: job,
        spec: spec.clone(),
        inputs: [&inputs.model, &inputs.dataset]
            .into_iter()
            .flatten()
            .map(|u| *u.cid())
            .collect(),
        region: None,
        min_stake: artha_core::Amount::from_wei(inner.contracts.params.min_stake),
    };
    // Wait in the queue while the node's GPUs are taken; fail only when the
    // job can never fit.
    // The node's standing comes from NodeCertRegistry (active, certified,
    // staked; its price, stake and reputation feed the score); its capacity
    // from the GPU allocator.
    let certified = inner.contracts.node_eligible(&inner.node).await?;
    if !certified {
        return Err(Error::new(
            ErrorKind::ResourceExhausted,
            "no eligible node: this node is not active, certified and staked on NodeCertRegistry",
        )
        .with_context("node_id", inner.node.to_string()));
    }
    let record = inner.contracts.node(&inner.node).await?;
    let mut delay = Duration::from_millis(50);
    let gpus = loop {
        let mut view = node_view(inner, &job, spec);
        view.certified = certified && record.active && record.certified;
        view.stake = record.stake;
        view.price_per_gpu_second = record.price_per_gpu_second;
        view.reputation = crate::sched::reputation_score(record.reputation);
        let placed = WeightedScheduler.place(&req, &[view]).await.and_then(|p| {
            inner
                .gpus
                .allocate(&job, spec.resources.gpus, spec.resources.gpu_memory_mib)
                .map(|g| (p, g))
        });
        match placed {
            Ok((_, gpus)) => break gpus,
            Err(e) if e.kind() == ErrorKind::ResourceExhausted && fits_at_all(inner, spec) => {
                if *ctl.cancel.borrow() {
                    return Ok(()); // the driver loop cancels it
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    };
    inner.ledger.set_placement(&job, &inner.node, &gpus)?;
    assign_here(inner, &job).await?;
    inner
        .ledger
        .transition(&job, JobPhase::Accepted, JobPhase::Scheduled, None)
}

/// Records on `AIJobManager` that this node runs `job`.
async fn assign_here(inner: &Inner, job: &JobId) -> Result<()> {
    let w = Write::Assign {
        job: *job,
        node: inner.node,
    };
    chain_write(inner, job, w).await
}

fn node_view(inner: &Inner, job: &JobId, spec: &JobSpec) -> artha_core::NodeView {
    let inv = inner.gpus.inventory();
    let mut runtimes: Vec<&str> = NATIVE_RUNTIMES.to_vec();
    if let (Runtime::Image(img), true) = (&spec.runtime, inner.docker.is_some()) {
        runtimes.push(img);
    }
    let mut v = crate::sched::node_view(
        inner.node,
        inv.devices.len() as u32,
        inv.devices.iter().map(|d| d.memory_mib).min().unwrap_or(0),
        &runtimes,
        inner.cost.rate_per_gpu_second,
    );
    // GPUs this job already holds (allocated before a crash) count as free
    // for it: allocating again returns the same indices.
    v.gpus_free = inner.gpus.free_count() + inner.gpus.held_by(job).len() as u32;
    v.region = inner.region.clone();
    v
}

fn fits_at_all(inner: &Inner, spec: &JobSpec) -> bool {
    let inv = inner.gpus.inventory();
    inv.devices
        .iter()
        .filter(|d| d.memory_mib >= spec.resources.gpu_memory_mib)
        .count()
        >= spec.resources.gpus as usize
}

// ---------------------------------------------------------------- staging

/// Lays `uri` out for a job under `dir`: a tree as the directory itself, a
/// file as `dir/<file_name>` (data: `data.csv` or `data.npy` by content).
async fn stage_input(inner: &Inner, uri: &ArthaUri, dir: &Path, file_name: &str) -> Result<()> {
    let listing = inner.store.ls(uri).await?;
    match listing.kind {
        EntryKind::Dir => {
            inner.store.materialize(uri, dir).await?;
        }
        _ => {
            std::fs::create_dir_all(dir)
                .map_err(|e| io_err("create an input directory", dir, e))?;
            let name = if file_name.is_empty() {
                let tmp = dir.join("input.part");
                inner.store.materialize(uri, &tmp).await?;
                let mut head = [0u8; 6];
                let n = std::fs::File::open(&tmp)
                    .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
                    .map_err(|e| io_err("read a staged input", &tmp, e))?;
                let name = if n == 6 && &head == b"\x93NUMPY" {
                    "data.npy"
                } else {
                    "data.csv"
                };
                std::fs::rename(&tmp, dir.join(name))
                    .map_err(|e| io_err("name a staged input", &tmp, e))?;
                return Ok(());
            } else {
                file_name
            };
            inner.store.materialize(uri, dir.join(name)).await?;
        }
    }
    Ok(())
}

fn mounts(inner: &Inner, job: &JobId, spec: &JobSpec) -> Mounts {
    let dir = job_dir(inner, job);
    Mounts {
        model: spec.model.as_ref().map(|_| dir.join("model")),
        data: spec.dataset.as_ref().map(|_| dir.join("data")),
        checkpoints: dir.join("checkpoints"),
        artha: dir.join("artha"),
    }
}

fn launch_spec(inner: &Inner, r: &JobRecord, resume: Option<&str>) -> LaunchSpec {
    let spec = &r.spec;
    let mut env = runtime_env(&r.id, spec);
    // Free-form hyper-parameters reach the runtime as `ARTHA_<KEY>` (e.g.
    // `task` → `ARTHA_TASK`); the protocol's own variables win.
    for (k, v) in &spec.hyper.extra {
        let value = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        env.entry(format!("ARTHA_{}", k.to_ascii_uppercase()))
            .or_insert(value);
    }
    if let Runtime::Native(id) = &spec.runtime {
        env.entry("ARTHA_MODEL_KIND".into())
            .or_insert_with(|| id.clone());
    }
    if let Some(ckpt) = resume {
        env.insert("ARTHA_RESUME".into(), ckpt.into());
    }
    LaunchSpec {
        job_id: r.id,
        node_id: inner.node,
        runtime: spec.runtime.clone(),
        args: Vec::new(),
        env,
        mounts: mounts(inner, &r.id, spec),
        gpus: r.gpus.clone(),
        limits: Limits {
            cpu_millis: spec.resources.cpu_millis,
            memory_mib: spec.resources.memory_mib,
            pids: 512,
            max_duration: Duration::from_secs(spec.resources.max_duration_secs),
        },
        network: false,
    }
}

/// Stages the inputs (fresh) and launches the runtime; `resume` names the
/// checkpoint to resume from when relaunching.
async fn stage_and_launch(
    inner: &Inner,
    r: &JobRecord,
    resume: Option<&str>,
    ctl: &RunCtl,
) -> Result<()> {
    let job = r.id;
    let dir = job_dir(inner, &job);
    if resume.is_none() {
        if holds_events(inner, &job) {
            // A directory that holds events holds work: it is never deleted.
            if r.phase == JobPhase::Staging {
                // Launched just before a crash that kept the handle from
                // the ledger (the run was stopped on open): continue as a
                // run that died with the engine (resumed from its last
                // checkpoint, its work kept).
                return inner
                    .ledger
                    .transition(&job, JobPhase::Staging, JobPhase::Running, None);
            }
            return Err(Error::new(
                ErrorKind::Internal,
                "refusing to stage again over a job directory that holds events",
            )
            .with_context("job_id", job.to_string()));
        }
        // Staging again after a crash starts from clean directories (the
        // resume counter and the output log are kept).
        for sub in ["model", "data", "checkpoints", "artha", ".collect"] {
            crate::store::remove_tree(dir.join(sub))?;
        }
        let inputs = resolve_inputs(inner, &r.spec).await?;
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create the job directory", &dir, e))?;
        // Others (the native job's user included) may only pass through.
        super::private_dir(&dir, 0o711)?;
        let m = mounts(inner, &job, &r.spec);
        if let (Some(uri), Some(d)) = (&inputs.model, &m.model) {
            stage_input(inner, uri, d, "model.safetensors").await?;
        }
        if let (Some(uri), Some(d)) = (&inputs.dataset, &m.data) {
            stage_input(inner, uri, d, "").await?;
        }
        for d in [&m.checkpoints, &m.artha] {
            std::fs::create_dir_all(d).map_err(|e| io_err("create a job directory", d, e))?;
        }
    }
    if r.phase == JobPhase::Staging && *ctl.cancel.borrow() {
        // Cancelled while its inputs were staged: it never starts.
        return inner.ledger.transition(
            &job,
            JobPhase::Staging,
            JobPhase::Cancelled,
            Some("cancelled by the submitter during staging"),
        );
    }
    let exec = executor(inner, &r.spec.runtime)?;
    let launched = Instant::now();
    let handle = exec.launch(launch_spec(inner, r, resume)).await?;
    *ctl.launched.lock().unwrap_or_else(|p| p.into_inner()) = Some(launched);
    inner.ledger.set_exec(&job, Some(&handle))?;
    if r.phase == JobPhase::Staging {
        inner
            .ledger
            .transition(&job, JobPhase::Staging, JobPhase::Running, None)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- running

/// Reads the whole events file (an error for a malformed line, a file that
/// is not a regular file, or one over the limits of [`EventTail`]).
fn read_events(path: &Path) -> Result<Vec<RuntimeEvent>> {
    let mut out = Vec::new();
    EventTail::new(path).poll_all(&mut out)?;
    Ok(out)
}

/// Where the engine copies what it collects from a job before storing it:
/// inside the job's directory (on the same filesystem as the job's files)
/// but outside every mount the job can write.
fn collect_dir(inner: &Inner, job: &JobId) -> Result<PathBuf> {
    let d = job_dir(inner, job).join(".collect");
    std::fs::create_dir_all(&d).map_err(|e| io_err("create the collection directory", &d, e))?;
    Ok(d)
}

/// Pushes a private copy of something collected from a job, then removes
/// the copy.
async fn push_collected(inner: &Inner, job: &JobId, copy: &Path) -> Result<ArthaUri> {
    let pushed = inner
        .store
        .push_path(
            copy,
            &PushOptions {
                pin: Some(job_deal(job)),
                progress: None,
            },
        )
        .await;
    let _ = crate::store::remove_tree(copy);
    Ok(pushed?.uri)
}

/// Handles new events: progress, and checkpoints pushed to the store as they
/// appear (each once).
async fn take_events(inner: &Inner, r: &JobRecord, ctl: &RunCtl, events: &[RuntimeEvent]) {
    for ev in events {
        match ev {
            RuntimeEvent::Step(s) => ctl.progress.send_modify(|p| {
                p.step = s.step;
                p.epoch = s.epoch;
                p.loss = Some(s.loss);
            }),
            RuntimeEvent::Infer(_) => ctl.progress.send_modify(|p| p.inferences += 1),
            RuntimeEvent::Checkpoint { path, .. }
                if store_checkpoint(inner, r, path).await.is_ok() =>
            {
                ctl.progress.send_modify(|p| p.checkpoints += 1);
            }
            _ => {}
        }
    }
}

async fn store_checkpoint(inner: &Inner, r: &JobRecord, rel: &str) -> Result<ArthaUri> {
    if let Some(a) = inner
        .ledger
        .get(&r.id)?
        .artifacts
        .iter()
        .find(|a| a.kind == "checkpoint" && a.name == rel)
    {
        return a.uri.parse();
    }
    if rel.is_empty()
        || Path::new(rel)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(Error::invalid(
            "events.checkpoint.path",
            "must be a relative path inside the checkpoint directory",
        ));
    }
    // The job controls its checkpoint directory: copy the file out without
    // following links (regular files with one link only), then store the
    // copy.
    let root = mounts(inner, &r.id, &r.spec).checkpoints;
    let copy = collect_dir(inner, &r.id)?.join(unique_name("checkpoint"));
    let copied = {
        let (rel, copy) = (PathBuf::from(rel), copy.clone());
        blocking(move || collect::copy_file_out(&root, &rel, "a checkpoint", &copy)).await
    };
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&copy);
        return Err(e.with_context("field", "events.checkpoint.path"));
    }
    let uri = push_collected(inner, &r.id, &copy).await?;
    add_artifact(inner, &r.id, "checkpoint", rel, &uri)?;
    Ok(uri)
}

fn unique_name(what: &str) -> String {
    format!("{what}-{}", crate::fsutil::unique_suffix())
}

fn resumes_path(inner: &Inner, job: &JobId) -> PathBuf {
    job_dir(inner, job).join("resumes")
}

/// What the engine records, durably and before anything else, the moment a
/// run ends (`<job dir>/run-end.json`, outside every mount the job can
/// write). Everything after it (billing, saving logs, removing the
/// container or process, proving) is redone from this record after a crash,
/// so a kill anywhere between the runtime's exit and `proving` loses no
/// finished work and bills it once.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RunEnd {
    /// How the executor saw the run end.
    state: ExecState,
    /// The job's GPU-seconds in all, this run included (measured by the
    /// engine).
    gpu_seconds: u64,
    /// Why the events were refused, when they were.
    bad_event: Option<String>,
    /// Whether the submitter cancelled the run.
    cancelled: bool,
}

fn run_end_path(inner: &Inner, job: &JobId) -> PathBuf {
    job_dir(inner, job).join("run-end.json")
}

fn read_run_end(inner: &Inner, job: &JobId) -> Result<Option<RunEnd>> {
    let p = run_end_path(inner, job);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::new(ErrorKind::Corrupted, "the run-end record is malformed")
                .with_context("path", p.display().to_string())
                .with_source(e)
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read the run-end record", &p, e)),
    }
}

/// Whether the job's events file holds anything (work a run did).
fn holds_events(inner: &Inner, job: &JobId) -> bool {
    std::fs::symlink_metadata(events_path(inner, job)).is_ok_and(|m| m.len() > 0)
}

/// Test hook: with `ARTHA_FAILPOINT=<name>` in the environment the engine
/// sends itself SIGKILL (`kill -9`: no destructors, no flush) when it
/// reaches the point `name`. The crash tests use it to land exactly in the
/// windows between durable steps; it does nothing otherwise.
pub(crate) fn failpoint(name: &str) {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let point = POINT.get_or_init(|| std::env::var("ARTHA_FAILPOINT").ok());
    if point.as_deref() == Some(name) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
}

async fn run(inner: &Inner, r: &JobRecord, ctl: &RunCtl) -> Result<()> {
    let job = r.id;
    if let Some(end) = read_run_end(inner, &job)? {
        // The run ended before a crash: finish what followed its end.
        return after_run(inner, r, ctl, end).await;
    }
    let exec = executor(inner, &r.spec.runtime)?;
    let Some(handle) = r.exec.clone() else {
        if holds_events(inner, &job) {
            // A run whose end was never recorded (an engine of an earlier
            // version stopped in the gap): its work is kept, never restaged.
            let end = RunEnd {
                state: ExecState::Finished {
                    reason: ExitReason::Lost {
                        detail: "the engine stopped before it recorded the run's end".into(),
                    },
                    wall_seconds: 0,
                },
                gpu_seconds: r.gpu_seconds.unwrap_or(0),
                bad_event: None,
                cancelled: false,
            };
            return after_run(inner, r, ctl, end).await;
        }
        // Crashed between the transition and recording the handle: relaunch.
        return relaunch(inner, r, None, ctl).await;
    };
    let events_file = events_path(inner, &job);
    let mut tail = EventTail::new(&events_file);
    let mut bad_event: Option<String> = None;
    let mut cancelled = false;
    let mut cancel_rx = ctl.cancel.subscribe();
    let mut cancel_wait = Box::pin(async move {
        // Fires at once when the job was cancelled before this run began.
        let _ = cancel_rx.wait_for(|c| *c).await;
    });
    // Measured from this process's launch, or from now when re-attaching to
    // a run launched before a restart (the time in between is not billed).
    let started = ctl
        .launched
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_else(Instant::now);
    let state = {
        let wait = exec.wait(&handle);
        tokio::pin!(wait);
        loop {
            let mut batch = Vec::new();
            tokio::select! {
                state = &mut wait => break state?,
                () = tokio::time::sleep(inner.poll) => {
                    if bad_event.is_none() && let Err(e) = tail.poll(&mut batch) {
                        bad_event = Some(format!("runtime wrote a malformed event: {}", describe(&e)));
                        let _ = exec.stop(&handle, STOP_GRACE).await;
                    }
                }
                () = &mut cancel_wait, if !cancelled => {
                    cancelled = true;
                    let _ = exec.stop(&handle, STOP_GRACE).await;
                }
            }
            take_events(inner, r, ctl, &batch).await;
        }
    };
    let mut rest = Vec::new();
    if bad_event.is_none()
        && let Err(e) = tail.poll_all(&mut rest)
    {
        bad_event = Some(format!("runtime wrote a malformed event: {}", describe(&e)));
    }
    take_events(inner, r, ctl, &rest).await;

    // Measured by the engine: wall time while the runtime ran, × devices,
    // rounded up, capped at the job's maximum.
    let devices = artha_core::CostModel::billed_devices(&r.spec);
    let secs = started.elapsed().as_millis().div_ceil(1000) as u64;
    let max = inner.cost.estimate(&r.spec)?.gpu_seconds;
    let total = r
        .gpu_seconds
        .unwrap_or(0)
        .saturating_add(secs.saturating_mul(devices))
        .min(max);
    let end = RunEnd {
        state,
        gpu_seconds: total,
        bad_event,
        cancelled,
    };
    failpoint("run-ended");
    // The first durable act after the run: everything below is redone from
    // this record after a crash.
    let bytes = serde_json::to_vec(&end).map_err(|e| {
        Error::new(ErrorKind::Internal, "cannot encode the run-end record").with_source(e)
    })?;
    write_atomic(&run_end_path(inner, &job), &bytes)?;
    failpoint("run-end-recorded");
    after_run(inner, r, ctl, end).await
}

/// Everything that follows a run's recorded end: billing, the container's
/// logs, removing the run from its executor, then resuming a run that died
/// with the engine, or moving the job on (proving, or failed/cancelled with
/// its partial work committed). Idempotent: after a crash it runs again
/// from the same [`RunEnd`].
async fn after_run(inner: &Inner, r: &JobRecord, ctl: &RunCtl, end: RunEnd) -> Result<()> {
    let job = r.id;
    let RunEnd {
        state,
        gpu_seconds,
        bad_event,
        cancelled,
    } = end;
    inner.ledger.set_gpu_seconds(&job, gpu_seconds)?;
    failpoint("run-billed");
    if let Some(handle) = inner.ledger.get(&job)?.exec {
        let exec = executor(inner, &r.spec.runtime)?;
        if matches!(r.spec.runtime, Runtime::Image(_)) {
            // Container logs go with the container; keep them with the job.
            save_logs(inner, exec, &handle).await;
        }
        exec.remove(&handle).await?;
        failpoint("run-removed");
        inner.ledger.set_exec(&job, None)?;
    }
    failpoint("run-closed");

    let events_file = events_path(inner, &job);
    let events = if bad_event.is_some() {
        Vec::new()
    } else {
        read_events(&events_file).unwrap_or_default()
    };
    let lost = matches!(
        &state,
        ExecState::Finished {
            reason: ExitReason::Lost { .. },
            ..
        }
    );
    let completed = events
        .iter()
        .any(|e| matches!(e, RuntimeEvent::Complete { .. }));
    if lost && !completed && !cancelled && bad_event.is_none() {
        // The runtime died with the engine: resume from the last checkpoint.
        let n = read_resumes(inner, &job) + 1;
        if n <= MAX_RESUMES {
            write_atomic(&resumes_path(inner, &job), n.to_string().as_bytes())?;
            let ckpt = rewind_to_checkpoint(inner, r)?;
            // The resumed run is a new run: its end is recorded anew.
            remove_run_end(inner, &job)?;
            let r = inner.ledger.get(&job)?;
            return relaunch(inner, &r, ckpt.as_deref(), ctl).await;
        }
    }
    // A run re-attached after a restart ends as `Lost` (its exit status
    // went to the engine that launched it); its events tell: `complete`
    // and no `error` is a finished run.
    let reported_error = events
        .iter()
        .any(|e| matches!(e, RuntimeEvent::Error { .. }));
    let failure = bad_event.or_else(|| {
        if lost && completed && !reported_error {
            None
        } else {
            failure_reason(&state, &events)
        }
    });
    let (to, reason) = if cancelled {
        (
            JobPhase::Cancelled,
            Some("cancelled by the submitter while running".to_string()),
        )
    } else if let Some(f) = failure {
        (JobPhase::Failed, Some(f))
    } else {
        return inner
            .ledger
            .transition(&job, JobPhase::Running, JobPhase::Proving, None);
    };
    // Steps already computed are committed (and paid for their measured
    // time); with none, the job is refunded when closed.
    let r = inner.ledger.get(&job)?;
    if let Err(e) = prove(inner, &r, Some(to)).await {
        let why = format!(
            "{}; proofs of the partial work not committed: {}",
            reason.clone().unwrap_or_default(),
            describe(&e)
        );
        return inner
            .ledger
            .transition(&job, JobPhase::Running, to, Some(&why));
    }
    inner
        .ledger
        .transition(&job, JobPhase::Running, to, reason.as_deref())
}

fn remove_run_end(inner: &Inner, job: &JobId) -> Result<()> {
    let p = run_end_path(inner, job);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove the run-end record", &p, e)),
    }
}

fn read_resumes(inner: &Inner, job: &JobId) -> u32 {
    std::fs::read_to_string(resumes_path(inner, job))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Drops the events after the last checkpoint whose file exists (and which
/// the runtime can resume from), so the resumed run reports those steps
/// again; returns that checkpoint's file name, or `None` to start over.
fn rewind_to_checkpoint(inner: &Inner, r: &JobRecord) -> Result<Option<String>> {
    let path = events_path(inner, &r.id);
    let events = read_events(&path).unwrap_or_default();
    let ckpt_dir = mounts(inner, &r.id, &r.spec).checkpoints;
    let last = events
        .iter()
        .filter_map(|e| match e {
            RuntimeEvent::Checkpoint { path, step } if ckpt_dir.join(path).is_file() => {
                Some((path.clone(), *step))
            }
            _ => None,
        })
        .filter(|(p, _)| p != "final.safetensors")
        .max_by_key(|(_, s)| *s);
    let keep_until = last.as_ref().map_or(0, |(_, s)| *s);
    let mut out = String::new();
    for e in &events {
        let keep = match e {
            RuntimeEvent::Step(s) => s.step <= keep_until,
            RuntimeEvent::Checkpoint { step, path } => {
                *step <= keep_until && path != "final.safetensors"
            }
            RuntimeEvent::Log { .. } => true,
            _ => false,
        };
        if keep {
            let line = serde_json::to_string(e).map_err(|e| {
                Error::new(ErrorKind::Internal, "cannot encode an event").with_source(e)
            })?;
            out.push_str(&line);
            out.push('\n');
        }
    }
    write_atomic(&path, out.as_bytes())?;
    Ok(last.map(|(p, _)| p))
}

async fn relaunch(inner: &Inner, r: &JobRecord, ckpt: Option<&str>, ctl: &RunCtl) -> Result<()> {
    if ckpt.is_none() {
        // Nothing to resume from: start the run over.
        let m = mounts(inner, &r.id, &r.spec);
        crate::store::remove_tree(&m.checkpoints)?;
        std::fs::create_dir_all(&m.checkpoints)
            .map_err(|e| io_err("create the checkpoint directory", &m.checkpoints, e))?;
        write_atomic(&events_path(inner, &r.id), b"")?;
    }
    stage_and_launch(inner, r, ckpt, ctl).await
}

async fn save_logs(inner: &Inner, exec: &dyn Executor, handle: &ExecHandle) {
    let out = job_dir(inner, &handle.job_id).join("output.jsonl");
    if let Ok(lines) = exec.logs(handle, 0).await {
        let mut text = String::new();
        for l in &lines {
            if let Ok(j) = serde_json::to_string(l) {
                text.push_str(&j);
                text.push('\n');
            }
        }
        let _ = write_atomic(&out, text.as_bytes());
    }
}

pub(crate) async fn logs(inner: &Inner, job: &JobId, since: u64) -> Result<Vec<LogLine>> {
    let r = inner.ledger.get(job)?;
    if let Some(h) = &r.exec {
        let exec = executor(inner, &r.spec.runtime)?;
        if let Ok(lines) = exec.logs(h, since).await {
            return Ok(lines);
        }
    }
    read_output(&job_dir(inner, job), since)
}

/// The output lines recorded in a job's directory from `since`: a
/// container's saved logs (`output.jsonl`), else a native runtime's output
/// file; none when there is no output yet.
pub(crate) fn read_output(job_dir: &Path, since: u64) -> Result<Vec<LogLine>> {
    let p = job_dir.join("output.jsonl");
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        // A native runtime's output file (the process executor's).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return crate::exec::process::read_output_log(job_dir, since);
        }
        Err(e) => return Err(io_err("read the job output", &p, e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<LogLine>(l).ok())
        .filter(|l| l.seq >= since)
        .collect())
}

// ---------------------------------------------------------------- proving

/// Builds the proofs from the events, stores the manifest and outputs,
/// commits on chain, and (for a trained model) registers it with its
/// lineage. `partial` is the phase a failed or cancelled run ends in: its
/// steps are committed without a `complete` event; with no steps it is a
/// `NotFound` error (nothing to commit).
async fn prove(inner: &Inner, r: &JobRecord, partial: Option<JobPhase>) -> Result<()> {
    let job = r.id;
    let events = read_events(&events_path(inner, &job))?;
    let m = mounts(inner, &job, &r.spec);
    let (manifest, outputs) = if r.spec.kind == JobKind::Train || partial.is_some() {
        let mut rec = ProofRecorder::new(job, r.spec.proof_window, 1)?;
        for e in &events {
            rec.record(e)?;
        }
        if rec.steps().is_empty() {
            return Err(Error::new(ErrorKind::NotFound, "no step was computed"));
        }
        for c in rec.checkpoints().to_vec() {
            match store_checkpoint(inner, r, &c.path).await {
                Ok(uri) => rec.set_checkpoint_cid(&c.path, *uri.cid()),
                // A checkpoint the job reported but that is refused (a link,
                // a device, too big) fails the job with the reason.
                Err(e) if e.kind() == ErrorKind::InvalidInput => return Err(e),
                // One it removed since (runtimes rotate checkpoints) is left out.
                Err(_) => {}
            }
        }
        let manifest = if partial.is_some() {
            rec.finish_partial()?
        } else {
            rec.finish()?.0
        };
        (manifest, None)
    } else {
        (infer_manifest(&job, &events)?, Some(m.checkpoints.clone()))
    };
    manifest.validate()?;

    // The manifest and any outputs go to the store.
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| {
        Error::new(ErrorKind::Internal, "cannot encode the proof manifest").with_source(e)
    })?;
    // Written where the job cannot write (not its /artha mount).
    let mpath = job_dir(inner, &job).join("proofs.json");
    write_atomic(&mpath, &bytes)?;
    let pin = PushOptions {
        pin: Some(job_deal(&job)),
        progress: None,
    };
    let muri = inner.store.push_path(&mpath, &pin).await?.uri;
    add_artifact(inner, &job, "proofs", "proofs.json", &muri)?;
    if let Some(dir) = outputs {
        // The job's output tree, copied out without following links.
        let copy = collect_dir(inner, &job)?.join(unique_name("outputs"));
        let copied = {
            let copy = copy.clone();
            blocking(move || collect::copy_tree_out(&dir, "outputs", &copy)).await
        };
        if let Err(e) = copied {
            let _ = crate::store::remove_tree(&copy);
            return Err(e);
        }
        let out = push_collected(inner, &job, &copy).await?;
        add_artifact(inner, &job, "outputs", "outputs", &out)?;
    }

    let gpu_seconds = inner.ledger.get(&job)?.gpu_seconds.unwrap_or(0);
    let commitment = manifest.commitment(*muri.cid(), gpu_seconds)?;
    chain_write(inner, &job, Write::Commit(commitment)).await?;

    if partial.is_none() && r.spec.kind == JobKind::Train {
        register_trained_model(inner, r).await?;
    }
    if partial.is_none() {
        inner
            .ledger
            .transition(&job, JobPhase::Proving, JobPhase::Completed, None)?;
    }
    Ok(())
}

/// An inference job's proofs: one window whose leaves are the `infer`
/// records (input and output digests) in order.
fn infer_manifest(job: &JobId, events: &[RuntimeEvent]) -> Result<ProofManifest> {
    let leaves: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            RuntimeEvent::Infer(i) => Some(i.leaf()),
            _ => None,
        })
        .collect();
    let final_weights = events
        .iter()
        .find_map(|e| match e {
            RuntimeEvent::Complete { final_weights, .. } => Some(*final_weights),
            _ => None,
        })
        .ok_or_else(|| Error::invalid("events", "the runtime never reported `complete`"))?;
    if leaves.is_empty() {
        return Err(Error::invalid("events", "no inference was served"));
    }
    let n = leaves.len();
    let window_root = MerkleTree::from_leaves(leaves)?.root();
    let job_root = MerkleTree::from_leaves(vec![window_root])?.root();
    Ok(ProofManifest {
        format: MANIFEST_FORMAT.into(),
        job_id: *job,
        window: u32::try_from(n).map_err(|_| Error::invalid("events", "too many inferences"))?,
        first_step: 1,
        steps: n as u64,
        window_roots: vec![window_root],
        job_root,
        final_weights,
        checkpoints: Vec::new(),
    })
}

async fn register_trained_model(inner: &Inner, r: &JobRecord) -> Result<()> {
    let job = r.id;
    let rec = inner.ledger.get(&job)?;
    let Some(final_ckpt) = rec
        .artifacts
        .iter()
        .find(|a| a.kind == "checkpoint" && a.name == "final.safetensors")
        .cloned()
    else {
        return Ok(()); // a runtime that keeps no final weights file
    };
    let uri: ArthaUri = final_ckpt.uri.parse()?;
    add_artifact(inner, &job, "model", "final.safetensors", &uri)?;
    let parent = match &r.spec.model {
        Some(InputRef::Id(m)) => Some(*m),
        _ => None,
    };
    let dataset = match &r.spec.dataset {
        Some(InputRef::Id(d)) => Some(*d),
        _ => None,
    };
    let architecture = match &r.spec.runtime {
        Runtime::Native(id) => id.clone(),
        Runtime::Image(img) => img.clone(),
    };
    let id = artha_core::ModelId::derive(&[b"trained", job.as_bytes()]);
    if inner.catalog.model(&id)?.is_none() {
        let code = alloy_primitives::keccak256(architecture.as_bytes());
        let receipt = inner
            .scheduler
            .register_model(
                &id,
                uri.cid(),
                &architecture,
                dataset.as_ref(),
                code,
                "1",
                parent.as_ref(),
                Some(&job),
            )
            .await;
        match receipt {
            Ok(rc) => add_receipt(inner, &job, "model_register", Some(rc))?,
            // Registered before a crash, not yet in the catalog.
            Err(e) if revert_name(&e) == Some("ModelExists") => {}
            Err(e) => return Err(e),
        }
        inner.catalog.put_model(&ModelEntry {
            id,
            uri: uri.to_string(),
            name: format!("trained by {job}"),
            architecture,
            version: "1".into(),
            parent,
            dataset,
            job: Some(job),
            created_ms: now_ms(),
        })?;
    }
    Ok(())
}

/// The manifest a job stored (read back from the store, verified).
pub(crate) async fn manifest_of(inner: &Inner, job: &JobId) -> Result<ProofManifest> {
    let r = inner.ledger.get(job)?;
    let a = r
        .artifacts
        .iter()
        .find(|a| a.kind == "proofs")
        .ok_or_else(|| {
            Error::new(ErrorKind::NotFound, "the job has no proofs yet")
                .with_context("job_id", job.to_string())
        })?;
    let uri: ArthaUri = a.uri.parse()?;
    let tmp = inner
        .home
        .dir("jobs")
        .join(format!(".proofs-{job}-{}", now_ms()));
    inner.store.get(&uri, &tmp).await?;
    let bytes = std::fs::read(&tmp).map_err(|e| io_err("read the proof manifest", &tmp, e));
    let _ = std::fs::remove_file(&tmp);
    let m: ProofManifest = serde_json::from_slice(&bytes?).map_err(|e| {
        Error::new(
            ErrorKind::Corrupted,
            format!("proof manifest is malformed: {e}"),
        )
        .with_context("uri", uri.to_string())
    })?;
    m.validate()?;
    Ok(m)
}

// ------------------------------------------------------------- settlement

/// Closes a terminal job: frees its GPUs; a job with nothing committed is
/// ended on chain and refunded (then Settled). Committed jobs wait for
/// [`settle_due`].
async fn close(inner: &Inner, r: &JobRecord) -> Result<()> {
    let job = r.id;
    inner.gpus.release(&job)?;
    if r.phase == JobPhase::Settled || committed(inner, r).await {
        return settle_due(inner).await.map(|_| ());
    }
    let status = match artha_core::ProofChain::job_status(&*inner.contracts, &job).await {
        Ok(s) => Some(s),
        // Never submitted (UnknownJob).
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Reverted) => None,
        Err(e) => return Err(e),
    };
    match status {
        None | Some(ChainJobStatus::Cancelled | ChainJobStatus::Failed) => {}
        Some(ChainJobStatus::Submitted) => {
            assign_here(inner, &job).await?;
            chain_write(inner, &job, Write::Fail { job }).await?;
        }
        Some(ChainJobStatus::Assigned) => chain_write(inner, &job, Write::Fail { job }).await?,
        Some(_) => return settle_due(inner).await.map(|_| ()),
    }
    inner.ledger.transition(
        &job,
        r.phase,
        JobPhase::Settled,
        Some("nothing computed: escrow refunded"),
    )?;
    inner.outbox.forget(&job).await
}

/// Finalizes every committed job whose challenge period has passed.
pub(crate) async fn settle_due(inner: &Inner) -> Result<usize> {
    let _guard = inner.settle.lock().await;
    let mut settled = 0;
    let mut now = None;
    for job in inner
        .ledger
        .list(&[JobPhase::Completed, JobPhase::Failed, JobPhase::Cancelled])?
    {
        let r = inner.ledger.get(&job)?;
        if !committed(inner, &r).await {
            continue;
        }
        // A read first: a finalize sent inside the challenge period would
        // only revert (and cost an outbox record and a failed transaction).
        let t = match now {
            Some(t) => t,
            None => *now.insert(inner.contracts.backend().next_block_time().await?),
        };
        if inner
            .contracts
            .settles_at(&job)
            .await?
            .is_some_and(|at| t < at)
        {
            continue;
        }
        match chain_write(inner, &job, Write::Finalize { job }).await {
            Ok(()) => {}
            Err(e) if revert_name(&e) == Some("ChallengePeriodActive") => continue,
            Err(e) => return Err(e),
        }
        inner.ledger.transition(
            &job,
            r.phase,
            JobPhase::Settled,
            Some("challenge period passed: node paid for measured GPU time, rest refunded"),
        )?;
        inner.outbox.forget(&job).await?;
        settled += 1;
    }
    Ok(settled)
}
