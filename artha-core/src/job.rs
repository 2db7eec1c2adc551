//! Jobs as every front end sees them: the typed, serialisable values that
//! the engine, the CLI, the HTTP API and the bindings share — a job's
//! [`JobPhase`], its [`JobRecord`] and [`JobStatus`], the [`JobEvent`]s of
//! its life, and its [`JobOutcome`]. Nothing here is matched by string:
//! artifacts have an [`ArtifactKind`], chain receipts a [`ChainAction`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::hash::KeccakHash;
use crate::ids::{JobId, NodeId};
use crate::money::Amount;
use crate::spec::{JobKind, JobSpec};
use crate::traits::{ExecHandle, LogLine, Receipt};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    /// Received, not yet checked.
    Submitted,
    /// Policy admitted it; escrow locked.
    Accepted,
    /// A node and GPUs were chosen.
    Scheduled,
    /// Inputs are being laid out for the runtime.
    Staging,
    /// The runtime runs.
    Running,
    /// The runtime finished; proofs are being built and committed.
    Proving,
    /// Work and proofs are done.
    Completed,
    /// Something failed; the reason says what.
    Failed,
    /// A caller cancelled it.
    Cancelled,
    /// Payment and refunds are done on chain.
    Settled,
}

impl JobPhase {
    /// All phases, in lifecycle order.
    pub const ALL: [JobPhase; 10] = [
        JobPhase::Submitted,
        JobPhase::Accepted,
        JobPhase::Scheduled,
        JobPhase::Staging,
        JobPhase::Running,
        JobPhase::Proving,
        JobPhase::Completed,
        JobPhase::Failed,
        JobPhase::Cancelled,
        JobPhase::Settled,
    ];

    /// The stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobPhase::Submitted => "submitted",
            JobPhase::Accepted => "accepted",
            JobPhase::Scheduled => "scheduled",
            JobPhase::Staging => "staging",
            JobPhase::Running => "running",
            JobPhase::Proving => "proving",
            JobPhase::Completed => "completed",
            JobPhase::Failed => "failed",
            JobPhase::Cancelled => "cancelled",
            JobPhase::Settled => "settled",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Result<Self> {
        JobPhase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::invalid("phase", format!("unknown job phase `{s}`")))
    }

    /// Whether the engine has nothing left to do for the job but settle it
    /// (or nothing at all, once settled).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobPhase::Completed | JobPhase::Failed | JobPhase::Cancelled | JobPhase::Settled
        )
    }

    /// Whether `self → next` is a legal transition.
    pub fn can_become(self, next: JobPhase) -> bool {
        use JobPhase::*;
        matches!(
            (self, next),
            (Submitted, Accepted)
                | (Accepted, Scheduled)
                | (Scheduled, Staging)
                | (Staging, Running)
                | (Running, Proving)
                | (Proving, Completed)
                | (
                    Submitted | Accepted | Scheduled | Staging | Running | Proving,
                    Failed
                )
                | (
                    Submitted | Accepted | Scheduled | Staging | Running,
                    Cancelled
                )
                | (Completed | Failed | Cancelled, Settled)
        )
    }
}

impl std::fmt::Display for JobPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Phase entered.
    pub phase: JobPhase,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Why (always set for failures and cancellations).
    pub reason: Option<String>,
}

/// Something a job produced (a checkpoint, the final model, a proof manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// What it is.
    pub kind: ArtifactKind,
    /// Name inside the job (e.g. `step-100.safetensors`).
    pub name: String,
    /// Where it is stored (`artha://…`).
    pub uri: String,
}

/// A chain transaction the job caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// What it did.
    pub action: ChainAction,
    /// The receipt.
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// Everything the ledger holds about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job.
    pub id: JobId,
    /// Who submitted it (a DID).
    pub submitter: String,
    /// What was asked.
    pub spec: JobSpec,
    /// Current phase.
    pub phase: JobPhase,
    /// Reason of the last failure or cancellation.
    pub reason: Option<String>,
    /// Node it was placed on.
    pub node: Option<NodeId>,
    /// GPU indices it holds or held.
    pub gpus: Vec<u32>,
    /// Executor handle while it runs.
    pub exec: Option<ExecHandle>,
    /// GPU-seconds measured by the engine.
    pub gpu_seconds: Option<u64>,
    /// Outputs.
    pub artifacts: Vec<Artifact>,
    /// Chain receipts.
    pub receipts: Vec<ReceiptRecord>,
    /// History, oldest first.
    pub history: Vec<Transition>,
    /// Progress its runtime reported (persisted with the job).
    #[serde(default)]
    pub progress: JobProgress,
    /// The price of one committed step, fixed at submission (what the node
    /// is paid per step; `None` before submission or for older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_per_step: Option<Amount>,
}

/// What kind of thing an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// A checkpoint the runtime wrote.
    Checkpoint,
    /// The weights of a trained model (registered in the model registry).
    Model,
    /// The proof manifest.
    Proofs,
    /// An inference job's output tree.
    Outputs,
}

impl ArtifactKind {
    /// Its stable name: `checkpoint`, `model`, `proofs`, `outputs`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Checkpoint => "checkpoint",
            ArtifactKind::Model => "model",
            ArtifactKind::Proofs => "proofs",
            ArtifactKind::Outputs => "outputs",
        }
    }
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a chain transaction of a job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainAction {
    /// The submitter submitted it and locked its escrow.
    Submit,
    /// The scheduler assigned it to a node.
    Assign,
    /// The worker committed its proofs.
    Commit,
    /// It was finalized: the node paid, the rest refunded.
    Finalize,
    /// It ended without a commit and was refunded.
    Fail,
    /// A verifier challenged it.
    Challenge,
    /// The model it trained was registered.
    ModelRegister,
}

impl ChainAction {
    /// Its stable name (`submit`, `assign`, `commit`, `finalize`, `fail`,
    /// `challenge`, `model_register`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChainAction::Submit => "submit",
            ChainAction::Assign => "assign",
            ChainAction::Commit => "commit",
            ChainAction::Finalize => "finalize",
            ChainAction::Fail => "fail",
            ChainAction::Challenge => "challenge",
            ChainAction::ModelRegister => "model_register",
        }
    }
}

impl std::fmt::Display for ChainAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job's runtime has reported so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Last step reported.
    pub step: u64,
    /// Its epoch (0-based).
    pub epoch: u32,
    /// Its loss.
    pub loss: Option<f64>,
    /// Checkpoints stored so far.
    #[serde(default)]
    pub checkpoints: u32,
    /// Inference batches served.
    #[serde(default)]
    pub inferences: u64,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum JobOutcome {
    /// It ran to completion and its proofs are committed.
    Completed,
    /// It failed: the error kind (`insufficient_funds` when the chain
    /// refused its escrow, else `job_failed`) and why.
    Failed {
        /// The kind of error this outcome is.
        kind: String,
        /// Why it failed (and how it was closed).
        reason: String,
    },
    /// The submitter cancelled it.
    Cancelled {
        /// When and how.
        reason: String,
    },
}

impl JobOutcome {
    /// The outcome of a job, once it has one (`None` while it runs). The
    /// rule: a job completed when it reached `Completed` and never failed
    /// or was cancelled; a settled job with no commit was refunded, so it
    /// failed or was cancelled, as its history says.
    pub fn of(record: &JobRecord) -> Option<JobOutcome> {
        let ended = record
            .history
            .iter()
            .rev()
            .find(|t| matches!(t.phase, JobPhase::Failed | JobPhase::Cancelled));
        match record.phase {
            JobPhase::Completed => return Some(JobOutcome::Completed),
            JobPhase::Settled if ended.is_none() => {
                let committed = record
                    .receipts
                    .iter()
                    .any(|r| r.action == ChainAction::Commit);
                if committed {
                    return Some(JobOutcome::Completed);
                }
            }
            JobPhase::Failed | JobPhase::Cancelled | JobPhase::Settled => {}
            _ => return None,
        }
        let failure = ended.and_then(|t| t.reason.clone());
        let mut reason = failure
            .clone()
            .or_else(|| record.reason.clone())
            .unwrap_or_else(|| "the job did not complete".into());
        if let Some(closing) = &record.reason
            && !reason.contains(closing.as_str())
        {
            reason = format!("{reason}; {closing}");
        }
        if ended.is_some_and(|t| t.phase == JobPhase::Cancelled) {
            return Some(JobOutcome::Cancelled { reason });
        }
        // A failure records its error's kind first (`insufficient_funds:
        // …`): the chain refusing the escrow is a money problem, any
        // other a failed job.
        let kind = match &failure {
            Some(f) if f.starts_with(ErrorKind::InsufficientFunds.as_str()) => {
                ErrorKind::InsufficientFunds
            }
            _ => ErrorKind::JobFailed,
        };
        Some(JobOutcome::Failed {
            kind: kind.as_str().to_string(),
            reason,
        })
    }

    /// `Ok` for a completed job, else the error a caller should report
    /// (kind `JobFailed`, `InsufficientFunds` or `Cancelled`).
    pub fn into_result(self, job: &JobId) -> Result<()> {
        let (kind, reason) = match self {
            JobOutcome::Completed => return Ok(()),
            JobOutcome::Failed { kind, reason } => {
                let k = if kind == ErrorKind::InsufficientFunds.as_str() {
                    ErrorKind::InsufficientFunds
                } else {
                    ErrorKind::JobFailed
                };
                (k, reason)
            }
            JobOutcome::Cancelled { reason } => (ErrorKind::JobFailed, reason),
        };
        Err(Error::new(kind, reason).with_context("job_id", job.to_string()))
    }
}

/// A job's status: the record as the reference's `/job/:id/status` shows
/// it — a superset of the reference's fields (`job_id`, `status`,
/// `progress`, `started_at`, `completed_at`, `duration_secs`,
/// `assigned_node`, `gpu_allocated`, `artifacts`, `receipts`) — with what
/// its runtime reported, its cost and its outcome.
///
/// - `status` is the phase as a caller reads it: a job that failed or was
///   cancelled says so (with its `reason`) even once its escrow was
///   refunded or its partial work paid; only a successful job says
///   `settled` once paid. The ledger's own phase is `phase`, and `settled`
///   says whether the money moved.
/// - `progress` is the fraction done, in `[0, 1]` (see
///   [`JobStatus::fraction_done`]); the runtime's own report is `training`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job.
    pub job_id: JobId,
    /// Its status: the phase, except that a failed or cancelled job stays
    /// `failed` / `cancelled` once settled.
    pub status: JobPhase,
    /// The fraction done, in `[0, 1]`.
    pub progress: f64,
    /// When it started running (first entry into `running`), Unix seconds.
    pub started_at: Option<u64>,
    /// When it ended (its entry into `completed`, `failed` or
    /// `cancelled`), Unix seconds.
    pub completed_at: Option<u64>,
    /// `completed_at − started_at`, or `now − started_at` while it runs.
    pub duration_secs: Option<u64>,
    /// The node it runs or ran on, as text.
    pub assigned_node: Option<String>,
    /// Its GPUs as `gpu:0` / `gpu:0,1` (`None` when it holds none).
    pub gpu_allocated: Option<String>,
    /// What it produced.
    pub artifacts: Vec<Artifact>,
    /// Its chain transactions, as the reference names them.
    pub receipts: Vec<ReceiptView>,
    /// The ledger's phase (`settled` for a refunded failure too).
    pub phase: JobPhase,
    /// Whether its payment and refunds are done on chain.
    pub settled: bool,
    /// `train`, `infer` or `agent`.
    pub kind: String,
    /// Who submitted it (a DID).
    pub submitter: String,
    /// The node it runs on.
    pub node: Option<NodeId>,
    /// GPU indices it holds or held.
    pub gpus: Vec<u32>,
    /// What its runtime reported last (step, epoch, loss, checkpoints,
    /// inferences).
    pub training: JobProgress,
    /// The model a training job produced, as registered (filled in by the
    /// engine, which keeps the registry).
    #[serde(default)]
    pub trained_model: Option<crate::ids::ModelId>,
    /// GPU-seconds measured.
    pub gpu_seconds: Option<u64>,
    /// What they cost at the node's price (when known).
    pub cost: Option<Amount>,
    /// Its budget.
    pub budget: Amount,
    /// Why it failed or was cancelled (with how it was closed); for other
    /// jobs the note of the last transition that gave one.
    pub reason: Option<String>,
    /// How it ended (once it has).
    pub outcome: Option<JobOutcome>,
    /// Its history, oldest first.
    pub history: Vec<Transition>,
}

/// What a job's chain transaction is, by the reference's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReceiptType {
    /// [`ChainAction::Submit`]: submitted with its escrow.
    JobSubmitted,
    /// [`ChainAction::Assign`]: assigned to a node.
    JobAssigned,
    /// [`ChainAction::Commit`] of a train job: its step proofs.
    TrainProof,
    /// [`ChainAction::Commit`] of an inference (or agent) job.
    InferProof,
    /// [`ChainAction::Finalize`]: the node paid, the rest refunded.
    FinalReceipt,
    /// [`ChainAction::Fail`]: ended uncommitted, the escrow refunded.
    Refund,
    /// [`ChainAction::Challenge`].
    Challenge,
    /// [`ChainAction::ModelRegister`]: the trained model registered.
    ModelRegistered,
}

impl ReceiptType {
    /// The type of a receipt of `action` for a job of `kind`.
    pub fn of(action: ChainAction, kind: JobKind) -> ReceiptType {
        match action {
            ChainAction::Submit => ReceiptType::JobSubmitted,
            ChainAction::Assign => ReceiptType::JobAssigned,
            ChainAction::Commit if kind == JobKind::Train => ReceiptType::TrainProof,
            ChainAction::Commit => ReceiptType::InferProof,
            ChainAction::Finalize => ReceiptType::FinalReceipt,
            ChainAction::Fail => ReceiptType::Refund,
            ChainAction::Challenge => ReceiptType::Challenge,
            ChainAction::ModelRegister => ReceiptType::ModelRegistered,
        }
    }
}

/// A job's chain transaction as its [`JobStatus`] shows it (the ledger
/// keeps [`ReceiptRecord`]s; this is the view, not a stored format).
///
/// JSON: `{"type":"TrainProof","action":"commit","step":100,"tx_hash":"0x…",
/// "block":7,"gas":91234}`; a `FinalReceipt` adds `gpu_seconds`, `payout`
/// and `refund`, a `Refund` its `payout` (0) and `refund` (the budget);
/// amounts are decimal strings of wei.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptView {
    /// The reference's name of what it did.
    #[serde(rename = "type")]
    pub kind: ReceiptType,
    /// What it did ([`ChainAction`]'s name).
    pub action: ChainAction,
    /// A commit's step count: the last step of a train job, the number of
    /// inferences of an inference job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    /// Transaction hash.
    pub tx_hash: KeccakHash,
    /// Block it was included in.
    pub block: u64,
    /// Gas it used.
    pub gas: u64,
    /// GPU-seconds paid for (a `FinalReceipt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_seconds: Option<u64>,
    /// Paid to the node: `min(committed steps × step price, budget)`, as the
    /// contract pays it (`None` when the rate is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wei_text")]
    pub payout: Option<Amount>,
    /// Refunded to the submitter: `budget − payout`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wei_text")]
    pub refund: Option<Amount>,
}

/// An optional [`Amount`] as a decimal string of wei (`"4710000000000000000"`).
mod wei_text {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::money::Amount;

    pub(super) fn serialize<S: Serializer>(
        v: &Option<Amount>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_str(&a.wei().to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Amount>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| {
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(D::Error::custom("expected a decimal number of wei"));
                }
                t.parse::<u128>()
                    .map(Amount::from_wei)
                    .map_err(D::Error::custom)
            })
            .transpose()
    }
}

impl JobStatus {
    /// The status of `record` now, costed at the `cost` model's rate per
    /// GPU-second when known.
    pub fn of(record: &JobRecord, cost: Option<&crate::money::CostModel>) -> Result<JobStatus> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        JobStatus::at(record, cost, now_ms)
    }

    /// The status of `record` at `now_ms` (milliseconds since the Unix
    /// epoch: what a running job's `duration_secs` counts to).
    pub fn at(
        record: &JobRecord,
        cost: Option<&crate::money::CostModel>,
        now_ms: u64,
    ) -> Result<JobStatus> {
        // The node is paid committed steps × the step price fixed at
        // submission (inference: batches served), never its clock.
        let committed = match record.spec.kind {
            JobKind::Infer => record.progress.inferences,
            _ => record.progress.step,
        };
        // Known once the run ended (what it committed is final): at the
        // price fixed at submission, else (older records) the cost model's.
        let step_price = record.price_per_step.or_else(|| {
            cost.and_then(|m| {
                m.step_price(&record.spec, crate::money::DEFAULT_GPU_MS_PER_STEP)
                    .ok()
            })
        });
        let price = match step_price {
            Some(p) if record.gpu_seconds.is_some() => p.checked_mul(u128::from(committed)),
            _ => None,
        };
        let outcome = JobOutcome::of(record);
        let status = match (record.phase, &outcome) {
            (JobPhase::Settled, Some(JobOutcome::Failed { .. })) => JobPhase::Failed,
            (JobPhase::Settled, Some(JobOutcome::Cancelled { .. })) => JobPhase::Cancelled,
            (phase, _) => phase,
        };
        let reason = match &outcome {
            Some(JobOutcome::Failed { reason, .. } | JobOutcome::Cancelled { reason }) => {
                Some(reason.clone())
            }
            _ => record.reason.clone(),
        };
        let secs = |phases: &[JobPhase]| {
            record
                .history
                .iter()
                .find(|t| phases.contains(&t.phase))
                .map(|t| t.at_ms / 1000)
        };
        let started_at = secs(&[JobPhase::Running]);
        let completed_at = secs(&[JobPhase::Completed, JobPhase::Failed, JobPhase::Cancelled]);
        let duration_secs = match (started_at, completed_at) {
            (Some(s), Some(c)) => Some(c.saturating_sub(s)),
            (Some(s), None) => Some((now_ms / 1000).saturating_sub(s)),
            _ => None,
        };
        let gpu_allocated = (!record.gpus.is_empty()).then(|| {
            let ids: Vec<String> = record.gpus.iter().map(u32::to_string).collect();
            format!("gpu:{}", ids.join(","))
        });
        let budget = record.spec.budget;
        let payout = price.map(|p| p.min(budget));
        let receipts = record
            .receipts
            .iter()
            .map(|r| {
                let kind = ReceiptType::of(r.action, record.spec.kind);
                let mut v = ReceiptView {
                    kind,
                    action: r.action,
                    step: None,
                    tx_hash: r.receipt.tx_hash,
                    block: r.receipt.block_number,
                    gas: r.receipt.gas_used,
                    gpu_seconds: None,
                    payout: None,
                    refund: None,
                };
                match kind {
                    ReceiptType::TrainProof => v.step = Some(record.progress.step),
                    ReceiptType::InferProof => v.step = Some(record.progress.inferences),
                    ReceiptType::FinalReceipt => {
                        v.gpu_seconds = record.gpu_seconds;
                        v.payout = payout;
                        v.refund = payout.and_then(|p| budget.checked_sub(p));
                    }
                    ReceiptType::Refund => {
                        v.payout = Some(Amount::ZERO);
                        v.refund = Some(budget);
                    }
                    _ => {}
                }
                v
            })
            .collect();
        Ok(JobStatus {
            job_id: record.id,
            status,
            progress: JobStatus::fraction_done(record, outcome.as_ref()),
            started_at,
            completed_at,
            duration_secs,
            assigned_node: record.node.map(|n| n.to_string()),
            gpu_allocated,
            artifacts: record.artifacts.clone(),
            receipts,
            phase: record.phase,
            settled: record.phase == JobPhase::Settled,
            kind: record.spec.kind.to_string(),
            submitter: record.submitter.clone(),
            node: record.node,
            gpus: record.gpus.clone(),
            training: record.progress.clone(),
            trained_model: None,
            gpu_seconds: record.gpu_seconds,
            cost: price,
            budget,
            reason,
            outcome,
            history: record.history.clone(),
        })
    }

    /// The fraction of a job done, in `[0, 1]`. The rule:
    ///
    /// - a job that completed (committed, settled or not) is done: `1.0`;
    /// - before it runs (`submitted` … `staging`): `0.0`;
    /// - `proving`: the runtime's work is done: `1.0`;
    /// - running, or stopped (failed, cancelled): for a train job, the
    ///   epochs finished over the epochs asked, `epoch / epochs` (the
    ///   runtime reports no step total, and the steps of an epoch are
    ///   not known to the engine, so the fraction of the current epoch
    ///   counts as zero: a lower bound); for an inference or agent job,
    ///   which report no total either, `0.0`.
    pub fn fraction_done(record: &JobRecord, outcome: Option<&JobOutcome>) -> f64 {
        if outcome == Some(&JobOutcome::Completed) {
            return 1.0;
        }
        match record.phase {
            JobPhase::Submitted | JobPhase::Accepted | JobPhase::Scheduled | JobPhase::Staging => {
                0.0
            }
            JobPhase::Proving | JobPhase::Completed => 1.0,
            JobPhase::Running | JobPhase::Failed | JobPhase::Cancelled | JobPhase::Settled => {
                let p = &record.progress;
                if record.spec.kind != JobKind::Train || p.step == 0 {
                    return 0.0;
                }
                let epochs = f64::from(record.spec.hyper.epochs.max(1));
                (f64::from(p.epoch) / epochs).clamp(0.0, 1.0)
            }
        }
    }
}

/// Something that happened to a job, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// It entered a phase.
    Phase {
        /// The phase.
        phase: JobPhase,
        /// Why (failures and cancellations).
        reason: Option<String>,
    },
    /// Its runtime reported progress.
    Progress(JobProgress),
    /// Its runtime printed a line.
    Log(LogLine),
    /// A chain transaction of the job was included.
    Receipt(ReceiptRecord),
    /// It produced an artifact.
    Artifact(Artifact),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::CostModel;
    use crate::spec::Runtime;

    const T0: u64 = 1_698_765_432_000;

    fn step(phase: JobPhase, at_ms: u64, reason: Option<&str>) -> Transition {
        Transition {
            phase,
            at_ms,
            reason: reason.map(str::to_string),
        }
    }

    fn receipt(action: ChainAction, block: u64) -> ReceiptRecord {
        ReceiptRecord {
            action,
            receipt: Receipt {
                tx_hash: KeccakHash::of(action.as_str().as_bytes()),
                block_number: block,
                gas_used: 21_000 + block,
            },
        }
    }

    /// A train job of 3 epochs with a 10 ARTH budget, placed on GPUs 0 and
    /// 1 of a node, that ran from `T0` and went through `phases` after.
    fn record(kind: JobKind, phases: &[(JobPhase, u64, Option<&str>)]) -> JobRecord {
        let mut spec = JobSpec::new(
            kind,
            Runtime::Native("mlp".into()),
            Amount::from_arth(10).unwrap(),
        );
        spec.hyper.epochs = 3;
        let mut history = vec![
            step(JobPhase::Submitted, T0 - 5_000, None),
            step(JobPhase::Accepted, T0 - 4_000, None),
            step(JobPhase::Scheduled, T0 - 3_000, None),
            step(JobPhase::Staging, T0 - 2_000, None),
            step(JobPhase::Running, T0, None),
        ];
        history.extend(phases.iter().map(|(p, at, r)| step(*p, *at, *r)));
        let phase = history.last().unwrap().phase;
        let reason = history.iter().rev().find_map(|t| t.reason.clone());
        JobRecord {
            id: JobId::from_bytes([0xab; 16]),
            submitter: "did:artha:alice".into(),
            spec,
            phase,
            reason,
            node: Some(NodeId::from_bytes([3; 16])),
            gpus: vec![0, 1],
            exec: None,
            gpu_seconds: None,
            artifacts: Vec::new(),
            receipts: vec![
                receipt(ChainAction::Submit, 1),
                receipt(ChainAction::Assign, 2),
            ],
            history,
            progress: JobProgress {
                step: 120,
                epoch: 1,
                loss: Some(0.25),
                checkpoints: 2,
                inferences: 0,
            },
            price_per_step: None,
        }
    }

    fn rate() -> CostModel {
        CostModel::new(Amount::parse_arth("0.001").unwrap())
    }

    #[test]
    fn a_running_job_has_its_epoch_fraction_and_its_time_so_far() {
        let r = record(JobKind::Train, &[]);
        let s = JobStatus::at(&r, Some(&rate()), T0 + 90_500).unwrap();
        assert_eq!(s.status, JobPhase::Running);
        assert_eq!(s.phase, JobPhase::Running);
        assert!(!s.settled);
        // Epoch 1 (0-based) of 3: one epoch done.
        assert!((s.progress - 1.0 / 3.0).abs() < 1e-12, "{}", s.progress);
        assert_eq!(s.started_at, Some(T0 / 1000));
        assert_eq!(s.completed_at, None);
        assert_eq!(s.duration_secs, Some(90));
        assert_eq!(s.gpu_allocated.as_deref(), Some("gpu:0,1"));
        assert_eq!(
            s.assigned_node,
            Some(NodeId::from_bytes([3; 16]).to_string())
        );
        assert_eq!(s.training.step, 120);
        assert_eq!(s.outcome, None);
        assert_eq!(s.cost, None, "not measured yet");
        let types: Vec<_> = s.receipts.iter().map(|x| x.kind).collect();
        assert_eq!(types, [ReceiptType::JobSubmitted, ReceiptType::JobAssigned]);

        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["status"], "running");
        assert_eq!(v["receipts"][0]["type"], "JobSubmitted");
        assert_eq!(v["receipts"][0]["action"], "submit");
        assert_eq!(v["receipts"][1]["block"], 2);
        assert!(v["receipts"][1].get("step").is_none());

        // Before it runs: nothing done, no times.
        let mut queued = r.clone();
        queued.history.truncate(2);
        queued.phase = JobPhase::Accepted;
        queued.gpus.clear();
        queued.progress = JobProgress::default();
        let s = JobStatus::at(&queued, None, T0).unwrap();
        assert_eq!(s.progress, 0.0);
        assert_eq!((s.started_at, s.duration_secs), (None, None));
        assert_eq!(s.gpu_allocated, None);
        let mut one = r;
        one.gpus = vec![0];
        let s = JobStatus::at(&one, None, T0).unwrap();
        assert_eq!(s.gpu_allocated.as_deref(), Some("gpu:0"));
    }

    #[test]
    fn a_settled_job_shows_its_payout_and_refund() {
        let end = T0 + 10_800_000;
        let mut r = record(
            JobKind::Train,
            &[
                (JobPhase::Proving, end - 60_000, None),
                (JobPhase::Completed, end, None),
                (
                    JobPhase::Settled,
                    end + 3_600_000,
                    Some(
                        "challenge period passed: node paid for its committed steps, rest refunded",
                    ),
                ),
            ],
        );
        r.gpu_seconds = Some(4_710);
        r.progress = JobProgress {
            step: 300,
            epoch: 2,
            loss: Some(0.125),
            checkpoints: 3,
            inferences: 0,
        };
        r.receipts.extend([
            receipt(ChainAction::Commit, 9),
            receipt(ChainAction::ModelRegister, 10),
            receipt(ChainAction::Finalize, 20),
        ]);
        let s = JobStatus::at(&r, Some(&rate()), end + 10_000_000).unwrap();
        assert_eq!(s.status, JobPhase::Settled);
        assert!(s.settled);
        assert_eq!(s.progress, 1.0);
        assert_eq!(s.outcome, Some(JobOutcome::Completed));
        assert_eq!(s.started_at, Some(1_698_765_432));
        assert_eq!(s.completed_at, Some(1_698_776_232));
        assert_eq!(s.duration_secs, Some(10_800));
        // The last values the runtime reported, not zeros.
        assert_eq!(s.training.step, 300);
        assert_eq!(s.training.epoch, 2);
        assert_eq!(s.training.checkpoints, 3);

        let commit = &s.receipts[2];
        assert_eq!(commit.kind, ReceiptType::TrainProof);
        assert_eq!(commit.step, Some(300));
        assert_eq!(s.receipts[3].kind, ReceiptType::ModelRegistered);
        let fin = &s.receipts[4];
        assert_eq!(fin.kind, ReceiptType::FinalReceipt);
        assert_eq!(fin.gpu_seconds, Some(4_710));
        // Paid per committed step, not for the 4 710 GPU-s the node's clock
        // says: 300 steps × (1 GPU-s × 0.001 ARTH) = 0.3 ARTH; 9.7 back.
        let v = serde_json::to_value(fin).unwrap();
        assert_eq!(v["type"], "FinalReceipt");
        assert_eq!(v["action"], "finalize");
        assert_eq!(v["gpu_seconds"], 4_710);
        assert_eq!(v["payout"], "300000000000000000");
        assert_eq!(v["refund"], "9700000000000000000");
        assert_eq!(v["block"], 20);
        assert_eq!(v["gas"], 21_020);
        assert!(v["tx_hash"].as_str().unwrap().starts_with("0x"));

        // The payout never exceeds the escrow (the budget).
        r.spec.budget = Amount::parse_arth("0.2").unwrap();
        let s = JobStatus::at(&r, Some(&rate()), end).unwrap();
        let v = serde_json::to_value(&s.receipts[4]).unwrap();
        assert_eq!(v["payout"], "200000000000000000");
        assert_eq!(v["refund"], "0");

        // Without a known rate: no amounts.
        let s = JobStatus::at(&r, None, end).unwrap();
        assert_eq!((s.receipts[4].payout, s.receipts[4].refund), (None, None));

        // Completed, inside the challenge period.
        r.history.pop();
        r.phase = JobPhase::Completed;
        r.receipts.pop();
        let s = JobStatus::at(&r, Some(&rate()), end).unwrap();
        assert_eq!(s.status, JobPhase::Completed);
        assert!(!s.settled);
        assert_eq!(s.progress, 1.0);
    }

    #[test]
    fn a_refunded_failure_still_says_failed_with_its_reason() {
        let end = T0 + 30_000;
        let mut r = record(
            JobKind::Train,
            &[
                (
                    JobPhase::Failed,
                    end,
                    Some("job_failed: the runtime exited with 1"),
                ),
                (
                    JobPhase::Settled,
                    end + 1_000,
                    Some("nothing computed: escrow refunded"),
                ),
            ],
        );
        r.progress = JobProgress::default();
        r.receipts.push(receipt(ChainAction::Fail, 5));
        let s = JobStatus::at(&r, Some(&rate()), end + 99_000).unwrap();
        assert_eq!(s.status, JobPhase::Failed);
        assert_eq!(s.phase, JobPhase::Settled);
        assert!(s.settled);
        let reason = s.reason.as_deref().unwrap();
        assert!(reason.contains("the runtime exited with 1"), "{reason}");
        assert!(matches!(s.outcome, Some(JobOutcome::Failed { .. })));
        assert_eq!(s.progress, 0.0);
        assert_eq!(s.completed_at, Some(end / 1000));
        assert_eq!(s.duration_secs, Some(30));
        let refund = s.receipts.last().unwrap();
        assert_eq!(refund.kind, ReceiptType::Refund);
        let v = serde_json::to_value(refund).unwrap();
        assert_eq!(v["payout"], "0");
        assert_eq!(v["refund"], "10000000000000000000");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["phase"], "settled");
        assert_eq!(v["settled"], true);
    }

    #[test]
    fn a_cancelled_job_says_cancelled_before_and_after_its_refund() {
        let end = T0 + 12_000;
        let mut r = record(
            JobKind::Infer,
            &[(
                JobPhase::Cancelled,
                end,
                Some("cancelled by the submitter while running"),
            )],
        );
        r.progress = JobProgress {
            inferences: 4,
            ..JobProgress::default()
        };
        let s = JobStatus::at(&r, None, end).unwrap();
        assert_eq!(s.status, JobPhase::Cancelled);
        assert!(!s.settled);
        assert_eq!(s.training.inferences, 4);
        assert_eq!(s.progress, 0.0, "an inference job reports no total");

        r.history.push(step(
            JobPhase::Settled,
            end + 500,
            Some("nothing computed: escrow refunded"),
        ));
        r.phase = JobPhase::Settled;
        r.reason = Some("nothing computed: escrow refunded".into());
        r.receipts.push(receipt(ChainAction::Fail, 6));
        let s = JobStatus::at(&r, None, end + 60_000).unwrap();
        assert_eq!(s.status, JobPhase::Cancelled);
        assert_eq!(s.phase, JobPhase::Settled);
        assert!(s.settled);
        assert!(
            s.reason
                .as_deref()
                .unwrap()
                .contains("cancelled by the submitter")
        );
        assert!(matches!(s.outcome, Some(JobOutcome::Cancelled { .. })));
        assert_eq!(s.duration_secs, Some(12));
        assert_eq!(serde_json::to_value(&s).unwrap()["status"], "cancelled");
    }

    #[test]
    fn an_inference_commit_counts_its_inferences() {
        let end = T0 + 5_000;
        let mut r = record(
            JobKind::Infer,
            &[
                (JobPhase::Proving, end, None),
                (JobPhase::Completed, end + 1_000, None),
            ],
        );
        r.progress = JobProgress {
            inferences: 16,
            ..JobProgress::default()
        };
        r.receipts.push(receipt(ChainAction::Commit, 7));
        let s = JobStatus::at(&r, None, end).unwrap();
        let c = s.receipts.last().unwrap();
        assert_eq!((c.kind, c.step), (ReceiptType::InferProof, Some(16)));
        assert_eq!(s.progress, 1.0);
    }

    #[test]
    fn the_status_round_trips_through_json() {
        let mut r = record(
            JobKind::Train,
            &[
                (JobPhase::Proving, T0 + 1_000, None),
                (JobPhase::Completed, T0 + 2_000, None),
                (JobPhase::Settled, T0 + 3_000, Some("paid")),
            ],
        );
        r.gpu_seconds = Some(7);
        r.artifacts.push(Artifact {
            kind: ArtifactKind::Checkpoint,
            name: "step-100.safetensors".into(),
            uri: "artha://example".into(),
        });
        r.receipts.extend([
            receipt(ChainAction::Commit, 3),
            receipt(ChainAction::Finalize, 4),
        ]);
        let s = JobStatus::at(&r, Some(&rate()), T0 + 9_000).unwrap();
        let text = serde_json::to_string(&s).unwrap();
        let back: JobStatus = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for k in [
            "job_id",
            "status",
            "progress",
            "started_at",
            "completed_at",
            "duration_secs",
            "assigned_node",
            "gpu_allocated",
            "artifacts",
            "receipts",
        ] {
            assert!(v.get(k).is_some(), "{k} in {v}");
        }
        assert!(v["progress"].is_number());
        assert_eq!(v["training"]["step"], 120);
        assert_eq!(v["artifacts"][0]["kind"], "checkpoint");
        // A payout that is not a decimal number of wei is refused.
        let bad = text.replace("\"payout\":\"120000000000000000\"", "\"payout\":\"7 ARTH\"");
        assert_ne!(bad, text);
        assert!(serde_json::from_str::<JobStatus>(&bad).is_err());
    }
}
