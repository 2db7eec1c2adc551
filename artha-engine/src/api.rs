//! The values the engine's service API exchanges — the same for the
//! embedded engine ([`crate::Engine`]), the daemon's REST API
//! ([`crate::server`]) and its remote client ([`crate::remote`]); every
//! one is serialisable, so a value means the same thing whichever side of
//! an HTTP connection it is on.
//!
//! Money is an [`Amount`] (integer wei, written `"4.71 ARTH"`), times are
//! seconds since the Unix epoch, hashes and ids are typed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use artha_core::{Amount, Error, ErrorKind, JobId, JobPhase, JobStatus, NodeId};
use serde::{Deserialize, Serialize};

/// What submitting a job returns: its id and status, and what it was
/// estimated to cost and take before it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submitted {
    /// The job.
    pub job_id: JobId,
    /// Its status right after submission.
    pub status: JobStatus,
    /// The estimate its budget was checked against.
    pub estimate: JobEstimate,
}

/// A job's estimate: the most it can be billed and how long it may run.
///
/// The engine bills measured time, capped by the spec's
/// `resources.max_duration_secs` on every billed device, so the cost is an
/// upper bound and the duration is the longest the job may run; a job that
/// ends sooner is billed less and the rest of its budget is refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEstimate {
    /// Upper bound of billed GPU-seconds (devices × maximum duration).
    pub gpu_seconds: u64,
    /// `gpu_seconds × rate`: the most the job can cost.
    pub cost: Amount,
    /// Price of one GPU-second, fixed at submission.
    pub rate: Amount,
    /// The longest the job may run, seconds.
    pub duration_secs: u64,
    /// Devices billed (a job asking for no GPU is billed as one).
    pub devices: u64,
}

/// One line of a job listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The job.
    pub job_id: JobId,
    /// What its status says (`failed` for a failed job even once refunded;
    /// see [`JobStatus`]).
    pub status: String,
    /// Its phase in the engine's lifecycle.
    pub phase: JobPhase,
    /// `train`, `infer` or `agent`.
    pub kind: String,
    /// GPU-seconds measured (once run).
    pub gpu_seconds: Option<u64>,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// When it was submitted, seconds since the Unix epoch.
    pub submitted_at: u64,
}

/// A committed job waiting for its challenge period to pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueJob {
    /// The job.
    pub job_id: JobId,
    /// The chain time from which it may be finalized.
    pub settles_at: u64,
    /// Seconds of chain time until then (0 when due now).
    pub in_secs: u64,
}

/// What a settlement pass did, and what is left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleReport {
    /// Jobs finalized by this pass.
    pub settled: u64,
    /// Committed jobs still inside their challenge period, soonest first.
    pub pending: Vec<DueJob>,
    /// The chain's time when the pass ran.
    pub chain_time: u64,
    /// The challenge period after a commit, seconds.
    pub challenge_period_secs: u64,
}

/// Proof-submission and settlement statistics of an engine (`/stats`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Jobs by the phase they are in.
    pub jobs_by_phase: BTreeMap<String, u64>,
    /// Jobs in all.
    pub jobs: u64,
    /// Proof commitments on chain (one per committed job).
    pub proof_commits: u64,
    /// Training steps covered by those commitments.
    pub steps_committed: u64,
    /// Jobs finalized (the node paid).
    pub finalized: u64,
    /// Jobs ended and refunded without a commit.
    pub refunded: u64,
    /// Chain transactions the jobs made.
    pub transactions: u64,
    /// Gas those transactions used.
    pub gas_used: u64,
    /// GPU-seconds measured over all jobs.
    pub gpu_seconds: u64,
    /// Chain writes recorded but not yet confirmed (the outbox).
    pub outbox_depth: u64,
    /// GPUs in the inventory.
    pub gpus_total: u64,
    /// GPUs held by jobs.
    pub gpus_in_use: u64,
    /// Logical bytes pinned in the store.
    pub store_bytes: u64,
}

/// Who an engine is: its home, identity, node and party accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// Liveness: `ok`.
    pub status: String,
    /// The engine's version.
    pub version: String,
    /// Its home directory.
    pub home: String,
    /// Its did:key identity.
    pub identity: String,
    /// Its node.
    pub node_id: NodeId,
    /// Each party's chain account (`submitter`, `scheduler`, …).
    pub accounts: BTreeMap<String, String>,
    /// The process serving it.
    pub pid: u32,
}

/// Where a daemon serves, as `<home>/serve.json` records it while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Base URL, e.g. `http://127.0.0.1:8090`.
    pub url: String,
    /// The daemon's process id.
    pub pid: u32,
    /// The certificate (PEM) to trust for an `https` URL.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
}

/// The discovery file of a home (`<home>/serve.json`).
pub fn discovery_path(home: &Path) -> PathBuf {
    home.join("serve.json")
}

/// The API token file of a home (`<home>/serve.token`, mode 0600).
pub fn token_path(home: &Path) -> PathBuf {
    home.join("serve.token")
}

/// The body of every error the REST API returns:
/// `{"error": {"kind", "message", "field", "context", "retryable"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An [`Error`] as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Its kind ([`ErrorKind::as_str`]).
    pub kind: String,
    /// The message for people.
    pub message: String,
    /// The field of the input it is about, when it is about one.
    pub field: Option<String>,
    /// Where it happened, as `[key, value]` pairs.
    #[serde(default)]
    pub context: Vec<(String, String)>,
    /// Whether retrying the same call may succeed.
    #[serde(default)]
    pub retryable: bool,
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> Self {
        ErrorBody {
            error: ErrorDetail {
                kind: e.kind().as_str().to_string(),
                message: e.message().to_string(),
                field: e.context_value("field").map(str::to_string),
                context: e
                    .context()
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), v.clone()))
                    .collect(),
                retryable: e.is_retryable(),
            },
        }
    }
}

impl ErrorBody {
    /// The error this body describes (context keys the client does not
    /// know come back under `detail`).
    pub fn into_error(self) -> Error {
        let d = self.error;
        let kind = ErrorKind::from_name(&d.kind).unwrap_or(ErrorKind::Internal);
        let mut e = Error::new(kind, d.message).with_retryable(d.retryable);
        let mut had_field = false;
        for (k, v) in d.context {
            had_field |= k == "field";
            e = e.with_context(context_key(&k), v);
        }
        if let (false, Some(f)) = (had_field, d.field) {
            e = e.with_context("field", f);
        }
        e
    }
}

/// The context keys errors use, as the static names [`Error`] keeps.
fn context_key(k: &str) -> &'static str {
    const KEYS: &[&str] = &[
        "field",
        "job_id",
        "path",
        "uri",
        "cid",
        "model_id",
        "dataset_id",
        "account",
        "option",
        "file",
        "home",
        "node",
        "phase",
        "status",
        "limit",
        "url",
        "input",
        "runtime",
        "contract",
        "error",
        "tx",
        "party",
        "key",
        "store",
        "bucket",
        "endpoint",
        "license",
        "max",
        "size",
        "route",
        "method",
        "retry_after_secs",
    ];
    KEYS.iter().copied().find(|x| *x == k).unwrap_or("detail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_json() {
        let e = Error::new(ErrorKind::NotFound, "unknown job")
            .with_context("job_id", "job-1")
            .with_context("weird", "x");
        let body = ErrorBody::from(&e);
        let text = serde_json::to_string(&body).unwrap_or_default();
        let back: ErrorBody = serde_json::from_str(&text).unwrap_or_else(|_| body.clone());
        let e2 = back.into_error();
        assert_eq!(e2.kind(), ErrorKind::NotFound);
        assert_eq!(e2.context_value("job_id"), Some("job-1"));
        assert_eq!(e2.context_value("detail"), Some("x"));
        assert!(!e2.is_retryable());
        let f = ErrorBody::from(&Error::invalid("spec.kind", "bad")).into_error();
        assert_eq!(f.context_value("field"), Some("spec.kind"));
    }
}
