//! Jobs as every front end sees them: the typed, serialisable values that
//! the engine, the CLI, the HTTP API and the bindings share — a job's
//! [`JobPhase`], its [`JobRecord`] and [`JobStatus`], the [`JobEvent`]s of
//! its life, and its [`JobOutcome`]. Nothing here is matched by string:
//! artifacts have an [`ArtifactKind`], chain receipts a [`ChainAction`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::ids::{JobId, NodeId};
use crate::money::Amount;
use crate::spec::JobSpec;
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
/// it, with its progress, cost and outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job.
    pub job_id: JobId,
    /// Its phase.
    pub status: JobPhase,
    /// `train`, `infer` or `agent`.
    pub kind: String,
    /// Who submitted it (a DID).
    pub submitter: String,
    /// The node it runs on.
    pub node: Option<NodeId>,
    /// GPU indices it holds or held.
    pub gpus: Vec<u32>,
    /// What its runtime reported.
    pub progress: JobProgress,
    /// GPU-seconds measured.
    pub gpu_seconds: Option<u64>,
    /// What they cost at the node's price (when known).
    pub cost: Option<Amount>,
    /// Its budget.
    pub budget: Amount,
    /// Reason of the last failure or cancellation.
    pub reason: Option<String>,
    /// How it ended (once it has).
    pub outcome: Option<JobOutcome>,
    /// What it produced.
    pub artifacts: Vec<Artifact>,
    /// Its chain transactions.
    pub receipts: Vec<ReceiptRecord>,
    /// Its history, oldest first.
    pub history: Vec<Transition>,
}

impl JobStatus {
    /// The status of `record`, costed at `rate` per GPU-second when known.
    pub fn of(record: &JobRecord, cost: Option<&crate::money::CostModel>) -> Result<JobStatus> {
        let cost = match (record.gpu_seconds, cost) {
            (Some(s), Some(m)) => Some(m.cost(s)?),
            _ => None,
        };
        Ok(JobStatus {
            job_id: record.id,
            status: record.phase,
            kind: record.spec.kind.to_string(),
            submitter: record.submitter.clone(),
            node: record.node,
            gpus: record.gpus.clone(),
            progress: record.progress.clone(),
            gpu_seconds: record.gpu_seconds,
            cost,
            budget: record.spec.budget,
            reason: record.reason.clone(),
            outcome: JobOutcome::of(record),
            artifacts: record.artifacts.clone(),
            receipts: record.receipts.clone(),
            history: record.history.clone(),
        })
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
