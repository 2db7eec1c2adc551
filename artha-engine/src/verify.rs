//! Audits by deterministic replay (DESIGN §6): anyone holding the chain's
//! commitment and the store's content can check a node's work.
//!
//! [`Engine::verify`](crate::Engine::verify) trusts only the chain:
//! 1. the **commitment** (job root, steps, windows, manifest CID) and the
//!    **terms** (spec CID) are read from the contracts;
//! 2. the manifest, the spec and the **step log** are fetched by those
//!    CIDs and checked: the log must rebuild to the committed root
//!    ([`artha_core::audit::verify_step_log`]), so the node cannot show a
//!    verifier anything but what it committed;
//! 3. the windows to replay are drawn from the chain's **audit seed** — a
//!    block hash after the commit, unknown to the node when it committed —
//!    with [`artha_core::audit::audit_windows`] (`ProofOfCompute.auditWindows`
//!    draws the same), or all of them;
//! 4. each window is **replayed** from the committed checkpoint before it
//!    (or from the initial model) with the verifier's own deterministic
//!    runtime, in a sandbox like a job's, and every replayed step record is
//!    compared with the committed one; the first difference is the
//!    evidence a challenge needs (committed record, its Merkle path, the
//!    replayed record).
//!
//! # Verdicts, and the rule for unavailable data
//!
//! - `fraud`: committed data was fetched, matched its CID, and is provably
//!   wrong — a replayed record differs, the log does not rebuild to the
//!   committed root, or a committed checkpoint does not hold the step it
//!   claims. Anyone with the same data reaches the same verdict.
//! - `unverifiable`: something could not be fetched (manifest, log, spec,
//!   checkpoint, inputs), the runtime is not one this verifier replays, or
//!   the replay itself failed. **Never** reported as fraud: a verifier's
//!   own outage must not slash an honest node. On chain the same rule
//!   holds: a juror who cannot fetch the data votes `Unavailable`, and a
//!   majority of those voids the job — the submitter is refunded and the
//!   node is not paid, but not slashed ("no data, no pay"). Withholding
//!   data therefore earns a node nothing.
//! - `valid`: every replayed window agrees.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use artha_core::{
    ArthaUri, Cid, Error, ErrorKind, Executor, JobId, JobKind, JobSpec, JobTree, KeccakHash,
    LaunchSpec, Limits, Mounts, ProofChain, Result, Runtime, RuntimeEvent, StepRecord,
};
use serde::{Deserialize, Serialize};

use crate::engine::parts::Parts;
use crate::exec::ProcessExecutor;
use crate::fsutil::io_err;
use crate::jobs::now_ms;
use crate::lifecycle::stage::Inputs;
use crate::proofs::{Mismatch, ProofManifest};

/// Windows audited by default: 8 catch a node faking a quarter of its
/// windows 90 % of the time; see [`artha_core::audit::sample_size`] for
/// the sample a target needs (44 for 99 % at 10 %).
pub const DEFAULT_SAMPLE: u64 = 8;

/// Largest manifest or spec read, bytes.
const MAX_SMALL: u64 = 16 << 20;

/// What to audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOptions {
    /// Windows to draw from the audit seed; `None` replays every window.
    pub sample: Option<u64>,
    /// Exactly these windows (0-based) instead of a draw.
    pub windows: Option<Vec<u64>>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            sample: Some(DEFAULT_SAMPLE),
            windows: None,
        }
    }
}

/// An audit's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every replayed window agrees with the commitment.
    Valid,
    /// Committed data is provably wrong (see the module docs).
    Fraud,
    /// Something could not be fetched or replayed; nothing is concluded.
    Unverifiable,
}

/// One audited window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowAudit {
    /// The window (0-based).
    pub window: u64,
    /// Its first and last step.
    pub steps: (u64, u64),
    /// What its replay found.
    pub verdict: Verdict,
    /// Why, for anything but `valid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The first differing step, with its proof under the job root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<Mismatch>,
    /// Steps replayed (from the checkpoint to the window's end).
    pub replayed_steps: u64,
    /// Wall time of the replay, milliseconds.
    pub replay_ms: u64,
}

/// What [`Engine::verify`](crate::Engine::verify) found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The job.
    pub job_id: JobId,
    /// Fraud if any window is; else unverifiable if any is; else valid.
    pub verdict: Verdict,
    /// Why, when the audit stopped before replaying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The chain's audit seed the windows were drawn from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<KeccakHash>,
    /// Steps committed.
    pub committed_steps: u64,
    /// Windows committed.
    pub windows_committed: u64,
    /// The windows audited.
    pub windows: Vec<WindowAudit>,
    /// Steps replayed in all.
    pub replayed_steps: u64,
    /// Replay wall time in all, milliseconds.
    pub replay_ms: u64,
}

impl AuditReport {
    /// The first mismatch found (the evidence a challenge carries).
    pub fn evidence(&self) -> Option<&Mismatch> {
        self.windows.iter().find_map(|w| w.mismatch.as_ref())
    }

    fn stopped(job: JobId, verdict: Verdict, reason: String, committed: u64, windows: u64) -> Self {
        AuditReport {
            job_id: job,
            verdict,
            reason: Some(reason),
            seed: None,
            committed_steps: committed,
            windows_committed: windows,
            windows: Vec::new(),
            replayed_steps: 0,
            replay_ms: 0,
        }
    }
}

/// A fetch that failed: unavailable (never fraud).
type Fetched<T> = std::result::Result<T, String>;

/// Reads `cid` from the store into memory (at most `limit` bytes).
async fn fetch(parts: &Parts, cid: &Cid, what: &str, limit: u64) -> Fetched<Vec<u8>> {
    let uri = ArthaUri::new(*cid);
    let size = match parts.store.ls(&uri).await {
        Ok(l) => l.size,
        Err(e) => return Err(format!("{what} {cid} cannot be fetched: {}", e.message())),
    };
    if size > limit {
        return Err(format!("{what} {cid} is {size} bytes, above {limit}"));
    }
    let tmp = parts.home.dir("verify").join(format!(
        ".fetch-{}-{}-{}",
        std::process::id(),
        now_ms(),
        cid.to_string().get(..16).unwrap_or("x")
    ));
    if let Some(d) = tmp.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let got = parts.store.get(&uri, &tmp).await;
    let bytes = got
        .map_err(|e| format!("{what} {cid} cannot be fetched: {}", e.message()))
        .and_then(|_| std::fs::read(&tmp).map_err(|e| format!("{what}: {e}")));
    let _ = std::fs::remove_file(&tmp);
    bytes
}

/// Audits `job` (see the module docs).
pub(crate) async fn audit(parts: &Parts, job: &JobId, opts: &AuditOptions) -> Result<AuditReport> {
    let chain = &parts.chain;
    let c = chain.commitment(job).await?.ok_or_else(|| {
        Error::new(ErrorKind::NotFound, "the job has no commitment on chain")
            .with_context("job_id", job.to_string())
    })?;
    let terms = chain.job_terms(job).await?;
    let (steps, windows) = (c.steps, u64::from(c.windows));
    let stop = |v: Verdict, why: String| Ok(AuditReport::stopped(*job, v, why, steps, windows));

    // The manifest the chain names, checked against the chain.
    let manifest = match fetch(parts, &c.manifest, "manifest", MAX_SMALL).await {
        Ok(b) => match serde_json::from_slice::<ProofManifest>(&b) {
            Ok(m) => m,
            Err(e) => {
                return stop(
                    Verdict::Fraud,
                    format!("the committed manifest is malformed: {e}"),
                );
            }
        },
        Err(why) => return stop(Verdict::Unverifiable, why),
    };
    if let Err(e) = manifest.validate() {
        return stop(
            Verdict::Fraud,
            format!("the committed manifest is inconsistent: {}", e.message()),
        );
    }
    if manifest.first_step != 1 {
        // Committed step logs count from 1 (a resumed run's too).
        return stop(
            Verdict::Fraud,
            format!(
                "the committed manifest starts at step {}",
                manifest.first_step
            ),
        );
    }
    if manifest.job_root != c.job_root
        || manifest.steps != c.steps
        || manifest.window != c.window
        || manifest.job_id != *job
    {
        return stop(
            Verdict::Fraud,
            "the committed manifest disagrees with the commitment (root, steps, window or job)"
                .into(),
        );
    }
    // The spec the submitter fixed on chain, and the code it pinned.
    let doc = match fetch(parts, &terms.spec, "spec", MAX_SMALL).await {
        Ok(b) => match artha_core::audit::JobDocument::parse(&b) {
            Ok(d) => d,
            Err(e) => {
                return stop(
                    Verdict::Unverifiable,
                    format!("the spec on chain is malformed: {}", e.message()),
                );
            }
        },
        Err(why) => return stop(Verdict::Unverifiable, why),
    };
    if let (Some(pinned), Some(mine)) = (doc.runtime_code, parts.runtime_code())
        && pinned != mine
    {
        return stop(
            Verdict::Unverifiable,
            format!(
                "the job is pinned to runtime code {pinned}; this verifier's runtime is {mine} (another build replays other bits)"
            ),
        );
    }
    let spec: JobSpec = doc.spec;
    if spec.kind == JobKind::Infer {
        return audit_inference(parts, job, &spec, &manifest, steps, windows).await;
    }
    if spec.kind != JobKind::Train {
        return stop(
            Verdict::Unverifiable,
            "agent jobs are not deterministic: nothing to replay".into(),
        );
    }
    // The step log, bound to the committed root.
    let Some(log_cid) = manifest.step_log else {
        return stop(
            Verdict::Unverifiable,
            "the manifest names no step log".into(),
        );
    };
    let limit = steps.saturating_mul(StepRecord::ENCODED_LEN as u64);
    let log = match fetch(parts, &log_cid, "step log", limit).await {
        Ok(b) => b,
        Err(why) => return stop(Verdict::Unverifiable, why),
    };
    let records = match artha_core::audit::verify_step_log(&log, c.window, &c.job_root, steps) {
        Ok(r) => r,
        Err(e) => {
            return stop(
                Verdict::Fraud,
                format!("the committed step log is wrong: {}", e.message()),
            );
        }
    };
    let tree = JobTree::build(&records, c.window)?;

    // The windows: asked for, all, or drawn from the chain's seed.
    let (seed, chosen) = match (&opts.windows, opts.sample) {
        (Some(ws), _) => {
            if let Some(w) = ws.iter().find(|w| **w >= windows) {
                return Err(Error::invalid(
                    "windows",
                    format!("window {w} of {windows}"),
                ));
            }
            (None, ws.clone())
        }
        (None, None) => (None, (0..windows).collect()),
        (None, Some(m)) => {
            let seed = chain.audit_seed(job).await?;
            (
                Some(seed),
                crate::proofs::audit_windows(&seed, job, windows, m),
            )
        }
    };

    let mut report = AuditReport {
        job_id: *job,
        verdict: Verdict::Valid,
        reason: None,
        seed,
        committed_steps: steps,
        windows_committed: windows,
        windows: Vec::new(),
        replayed_steps: 0,
        replay_ms: 0,
    };
    // The inputs, resolved once for every window's replay.
    let inputs = match crate::lifecycle::stage::resolve_inputs(parts, &spec).await {
        Ok(i) => i,
        Err(e) => {
            return stop(
                Verdict::Unverifiable,
                format!("the job's inputs cannot be fetched: {}", e.message()),
            );
        }
    };
    for w in chosen {
        let wa = audit_window(parts, job, &spec, &inputs, &manifest, &records, &tree, w).await?;
        report.replayed_steps += wa.replayed_steps;
        report.replay_ms += wa.replay_ms;
        report.windows.push(wa);
    }
    report.verdict = if report.windows.iter().any(|w| w.verdict == Verdict::Fraud) {
        Verdict::Fraud
    } else if report
        .windows
        .iter()
        .any(|w| w.verdict == Verdict::Unverifiable)
    {
        Verdict::Unverifiable
    } else {
        Verdict::Valid
    };
    Ok(report)
}

/// Replays an inference job's batches (one window) and compares each
/// batch's input and output digests with the committed inference log.
async fn audit_inference(
    parts: &Parts,
    job: &JobId,
    spec: &JobSpec,
    manifest: &ProofManifest,
    batches: u64,
    windows: u64,
) -> Result<AuditReport> {
    let stop = |v: Verdict, why: String| Ok(AuditReport::stopped(*job, v, why, batches, windows));
    let Some(log_cid) = manifest.step_log else {
        return stop(
            Verdict::Unverifiable,
            "the manifest names no inference log".into(),
        );
    };
    let limit = batches.saturating_mul(artha_core::InferRecord::ENCODED_LEN as u64);
    let log = match fetch(parts, &log_cid, "inference log", limit).await {
        Ok(b) => b,
        Err(why) => return stop(Verdict::Unverifiable, why),
    };
    let committed = match artha_core::audit::verify_infer_log(&log, &manifest.job_root, batches) {
        Ok(r) => r,
        Err(e) => {
            return stop(
                Verdict::Fraud,
                format!("the committed inference log is wrong: {}", e.message()),
            );
        }
    };
    let Runtime::Native(id) = &spec.runtime else {
        return stop(
            Verdict::Unverifiable,
            "only native runtimes replay bit for bit".into(),
        );
    };
    let mut wa = WindowAudit {
        window: 0,
        steps: (1, batches),
        verdict: Verdict::Valid,
        reason: None,
        mismatch: None,
        replayed_steps: 0,
        replay_ms: 0,
    };
    let replay = Replay::new(parts)?;
    let staged = match crate::lifecycle::stage::resolve_inputs(parts, spec).await {
        Ok(inputs) => replay.stage(parts, spec, &inputs, None).await,
        Err(e) => Err(format!(
            "the job's inputs cannot be fetched: {}",
            e.message()
        )),
    };
    let t0 = Instant::now();
    let ran = match staged {
        Ok(_) => replay
            .run(parts, job, spec, id, None, None)
            .await
            .map_err(|e| e.message().to_string()),
        Err(why) => Err(why),
    };
    wa.replay_ms = t0.elapsed().as_millis() as u64;
    replay.remove();
    match ran {
        Err(why) => {
            wa.verdict = Verdict::Unverifiable;
            wa.reason = Some(format!("the replay failed: {why}"));
        }
        Ok((events, code)) => {
            let replayed: Vec<artha_core::InferRecord> = events
                .iter()
                .filter_map(|e| match e {
                    RuntimeEvent::Infer(i) => Some(*i),
                    _ => None,
                })
                .collect();
            wa.replayed_steps = replayed.len() as u64;
            if code != 0 {
                wa.verdict = Verdict::Unverifiable;
                wa.reason = Some(format!("the replay exited {code}"));
            } else if let Some(i) = committed
                .iter()
                .zip(&replayed)
                .position(|(c, r)| c != r)
                .or_else(|| {
                    (committed.len() != replayed.len()).then(|| committed.len().min(replayed.len()))
                })
            {
                wa.verdict = Verdict::Fraud;
                wa.reason = Some(format!(
                    "batch {}: the replayed input or output digest differs from the committed one",
                    i + 1
                ));
            }
        }
    }
    Ok(AuditReport {
        job_id: *job,
        verdict: wa.verdict,
        reason: None,
        seed: None,
        committed_steps: batches,
        windows_committed: windows,
        replayed_steps: wa.replayed_steps,
        replay_ms: wa.replay_ms,
        windows: vec![wa],
    })
}

/// Replays window `w` and compares it.
#[allow(clippy::too_many_arguments)]
async fn audit_window(
    parts: &Parts,
    job: &JobId,
    spec: &JobSpec,
    inputs: &Inputs,
    manifest: &ProofManifest,
    records: &[StepRecord],
    tree: &JobTree,
    w: u64,
) -> Result<WindowAudit> {
    let (start, end) = manifest
        .window_steps(w)
        .ok_or_else(|| Error::invalid("windows", format!("no window {w}")))?;
    let mut out = WindowAudit {
        window: w,
        steps: (start, end),
        verdict: Verdict::Valid,
        reason: None,
        mismatch: None,
        replayed_steps: 0,
        replay_ms: 0,
    };
    let give = |mut o: WindowAudit, v: Verdict, why: String| {
        o.verdict = v;
        o.reason = Some(why);
        Ok(o)
    };
    let Runtime::Native(id) = &spec.runtime else {
        return give(
            out,
            Verdict::Unverifiable,
            "only native runtimes replay bit for bit".into(),
        );
    };
    let ckpt = manifest.checkpoint_before(w).cloned();
    let replay = Replay::new(parts)?;
    let staged = replay.stage(parts, spec, inputs, ckpt.as_ref()).await;
    let resume = match staged {
        Ok(r) => r,
        Err(why) => {
            replay.remove();
            return give(out, Verdict::Unverifiable, why);
        }
    };
    let t0 = Instant::now();
    let ran = replay
        .run(parts, job, spec, id, resume.as_deref(), Some(end))
        .await;
    out.replay_ms = t0.elapsed().as_millis() as u64;
    replay.remove();
    let (events, exit) = match ran {
        Ok(r) => r,
        Err(e) => {
            return give(
                out,
                Verdict::Unverifiable,
                format!("the replay failed: {}", e.message()),
            );
        }
    };
    let replayed: Vec<StepRecord> = events
        .iter()
        .filter_map(|e| match e {
            RuntimeEvent::Step(s) => Some(*s),
            _ => None,
        })
        .collect();
    out.replayed_steps = replayed.len() as u64;
    // A committed checkpoint must hold the step it claims: the replay from
    // it starts right after that step.
    let from = ckpt.as_ref().map_or(manifest.first_step, |c| c.step + 1);
    if let Some(first) = replayed.first()
        && first.step != from
    {
        return give(
            out,
            Verdict::Fraud,
            format!(
                "the committed checkpoint of step {} resumes at step {} (it holds another step)",
                from - 1,
                first.step
            ),
        );
    }
    if exit != 0 {
        let why = events
            .iter()
            .find_map(|e| match e {
                RuntimeEvent::Error { message, .. } => Some(message.clone()),
                _ => None,
            })
            .unwrap_or_else(|| format!("exit code {exit}"));
        // A committed checkpoint (fetched, its CID matched) that the
        // deterministic runtime refuses is the node's fault.
        if ckpt.is_some() && why.contains("ARTHA_RESUME") {
            return give(
                out,
                Verdict::Fraud,
                format!("the committed checkpoint is not usable: {why}"),
            );
        }
        return give(
            out,
            Verdict::Unverifiable,
            format!("the replay failed: {why}"),
        );
    }
    let base = manifest.first_step;
    let committed = &records[(start - base) as usize..=(end - base) as usize];
    let window_replay: Vec<StepRecord> = replayed
        .iter()
        .copied()
        .filter(|r| r.step >= start && r.step <= end)
        .collect();
    if let Some(i) = artha_core::audit::first_mismatch(committed, &window_replay) {
        let Some(rep) = window_replay.get(i).copied() else {
            return give(
                out,
                Verdict::Fraud,
                format!(
                    "the replay stops at step {} of a window committed to step {end}",
                    start + i as u64 - 1
                ),
            );
        };
        let position = start - base + i as u64;
        out.mismatch = Some(Mismatch {
            committed: committed[i],
            replayed: rep,
            proof: tree.prove_step(position)?,
        });
        return give(
            out,
            Verdict::Fraud,
            format!(
                "step {}: the replayed record differs from the committed one",
                committed[i].step
            ),
        );
    }
    Ok(out)
}

/// One replay's sandbox: a job directory under `<home>/verify`, run by a
/// process executor with the verifier's own runtime.
struct Replay {
    id: JobId,
    root: PathBuf,
    dir: PathBuf,
}

impl Replay {
    fn new(parts: &Parts) -> Result<Self> {
        let root = parts.home.dir("verify");
        std::fs::create_dir_all(&root)
            .map_err(|e| io_err("create the verify directory", &root, e))?;
        crate::engine::private_dir(&root, 0o711)?;
        // Unique per replay (a clash would only be refused by the executor).
        let mut random = [0u8; 16];
        let _ = getrandom::fill(&mut random);
        let nonce = format!("{}-{}", std::process::id(), now_ms());
        let id = JobId::derive(&[b"replay", nonce.as_bytes(), &random]);
        let dir = root.join(id.to_string());
        Ok(Replay { id, root, dir })
    }

    fn mounts(&self, spec: &JobSpec) -> Mounts {
        Mounts {
            model: spec.model.as_ref().map(|_| self.dir.join("model")),
            data: spec.dataset.as_ref().map(|_| self.dir.join("data")),
            checkpoints: self.dir.join("checkpoints"),
            artha: self.dir.join("artha"),
        }
    }

    /// Stages the inputs and the start checkpoint; returns `ARTHA_RESUME`.
    /// An error is a reason the window is unverifiable.
    async fn stage(
        &self,
        parts: &Parts,
        spec: &JobSpec,
        inputs: &Inputs,
        ckpt: Option<&crate::proofs::CheckpointRef>,
    ) -> Fetched<Option<String>> {
        let m = self.mounts(spec);
        for d in [&m.checkpoints, &m.artha] {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        if let (Some(uri), Some(d)) = (&inputs.model, &m.model) {
            crate::lifecycle::stage::stage_input(parts, uri, d, "model.safetensors")
                .await
                .map_err(|e| format!("the model cannot be fetched: {}", e.message()))?;
        }
        if let (Some(uri), Some(d)) = (&inputs.dataset, &m.data) {
            crate::lifecycle::stage::stage_input(parts, uri, d, "")
                .await
                .map_err(|e| format!("the dataset cannot be fetched: {}", e.message()))?;
        }
        let Some(c) = ckpt else { return Ok(None) };
        let cid = c
            .cid
            .ok_or_else(|| format!("the checkpoint of step {} was never stored", c.step))?;
        // A name of our own: the manifest's path is the node's text.
        let name = format!("resume-{}.safetensors", c.step);
        let dest = m.checkpoints.join(&name);
        parts
            .store
            .get(&ArthaUri::new(cid), &dest)
            .await
            .map_err(|e| {
                format!(
                    "the checkpoint of step {} cannot be fetched: {}",
                    c.step,
                    e.message()
                )
            })?;
        Ok(Some(name))
    }

    /// Runs the verifier's runtime to step `end`; the events and exit code.
    async fn run(
        &self,
        parts: &Parts,
        job: &JobId,
        spec: &JobSpec,
        runtime_id: &str,
        resume: Option<&str>,
        end: Option<u64>,
    ) -> Result<(Vec<RuntimeEvent>, i64)> {
        let (program, args) = &parts.replay_runtime;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let exec = ProcessExecutor::new(&self.root).with_runtime(runtime_id, program, &args);
        let mut env: BTreeMap<String, String> = crate::lifecycle::stage::job_env(job, spec);
        if let Some(r) = resume {
            env.insert("ARTHA_RESUME".into(), r.into());
        }
        if let Some(end) = end {
            env.insert("ARTHA_MAX_STEPS".into(), end.to_string());
        }
        let launch = LaunchSpec {
            job_id: self.id,
            node_id: parts.node,
            runtime: spec.runtime.clone(),
            args: Vec::new(),
            env,
            mounts: self.mounts(spec),
            gpus: Vec::new(),
            limits: Limits {
                cpu_millis: spec.resources.cpu_millis,
                memory_mib: spec.resources.memory_mib,
                pids: 512,
                max_duration: std::time::Duration::from_secs(spec.resources.max_duration_secs),
            },
            network: false,
        };
        let h = exec.launch(launch).await?;
        let state = exec.wait(&h).await?;
        let _ = exec.remove(&h).await;
        let code = match state {
            artha_core::ExecState::Finished {
                reason: artha_core::ExitReason::Exited { code },
                ..
            } => code,
            artha_core::ExecState::Finished { reason, .. } => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("the replay ended: {reason:?}"),
                ));
            }
            other => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("the replay is {other:?}"),
                ));
            }
        };
        let events = crate::lifecycle::run::read_events(
            &self.dir.join("artha").join(crate::exec::EVENTS_FILE),
        )?;
        Ok((events, code))
    }

    fn remove(&self) {
        let _ = crate::store::remove_tree(&self.dir);
    }
}
