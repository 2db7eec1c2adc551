//! The four seams of the engine: [`BlobStore`], [`Executor`], [`Scheduler`]
//! and [`ProofChain`].
//!
//! The traits are small and object safe (`Arc<dyn Executor>` works); they
//! are async through `async_trait`, with `Send` futures on native targets and
//! non-`Send` ones on `wasm32`, so the same definitions compile for the
//! browser ([`MaybeSend`] / [`MaybeSync`] name that bound). Convenience
//! methods live in extension traits in `artha-engine`, not here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::hash::{Blake3Digest, Cid, KeccakHash};
use crate::ids::{JobId, NodeId};
use crate::merkle::StepProof;
use crate::money::Amount;
use crate::proof::StepRecord;
use crate::spec::{JobSpec, Runtime};

/// `Send` on native targets, nothing on `wasm32` (where futures are
/// single-threaded).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` on native targets, nothing on `wasm32`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` on native targets, nothing on `wasm32`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
/// `Sync` on native targets, nothing on `wasm32`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

// ---------------------------------------------------------------- BlobStore

/// Content-addressed storage of immutable blobs (chunks and manifests).
///
/// Guarantees every implementation must give:
/// - `put` stores `data` under `Cid::of(data)` and returns that CID; storing
///   the same bytes again writes nothing and succeeds. A blob becomes
///   visible under its CID only once it is complete and durable (no
///   partial object is ever readable).
/// - `get` returns exactly the bytes whose BLAKE3 is the CID, or an error of
///   kind `NotFound` (unknown CID) or `Corrupted` (the stored bytes do not
///   hash to the CID); it never returns unverified data.
/// - `delete` of an absent CID succeeds (idempotent).
/// - Concurrent calls from many tasks and processes are safe.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait BlobStore: MaybeSend + MaybeSync {
    /// Stores a blob; returns its CID.
    async fn put(&self, data: Vec<u8>) -> Result<Cid>;
    /// Reads and verifies a blob.
    async fn get(&self, cid: &Cid) -> Result<Vec<u8>>;
    /// Whether a blob is stored (without reading it).
    async fn has(&self, cid: &Cid) -> Result<bool>;
    /// Removes a blob (garbage collection); absent is fine.
    async fn delete(&self, cid: &Cid) -> Result<()>;
    /// Every stored CID, in no particular order.
    async fn list(&self) -> Result<Vec<Cid>>;
}

// ----------------------------------------------------------------- Executor

/// Host paths an executor mounts into a job (DESIGN §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mounts {
    /// Model input, mounted read-only at `/model`.
    pub model: Option<PathBuf>,
    /// Data input, mounted read-only at `/data`.
    pub data: Option<PathBuf>,
    /// Checkpoint directory, read-write at `/checkpoints`.
    pub checkpoints: PathBuf,
    /// Exchange directory holding `events.jsonl`, read-write at `/artha`.
    pub artha: PathBuf,
}

/// Limits an executor enforces on a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU in thousandths of a core.
    pub cpu_millis: u32,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Most processes / threads.
    pub pids: u32,
    /// Wall-clock limit.
    pub max_duration: Duration,
}

/// Everything an executor needs to start one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// The job.
    pub job_id: JobId,
    /// The node it runs on (recorded as a label for reconciliation).
    pub node_id: NodeId,
    /// Image or native runtime.
    pub runtime: Runtime,
    /// Arguments for the runtime (a container's command after its
    /// entrypoint; extra arguments for a native program).
    #[serde(default)]
    pub args: Vec<String>,
    /// Full environment (see [`crate::protocol::runtime_env`]).
    pub env: BTreeMap<String, String>,
    /// Host paths to mount.
    pub mounts: Mounts,
    /// GPU device indices allocated to the job (may be empty).
    pub gpus: Vec<u32>,
    /// Resource limits.
    pub limits: Limits,
    /// Whether the job may use the network (off by default).
    pub network: bool,
}

/// A running or finished job as an executor knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecHandle {
    /// The job.
    pub job_id: JobId,
    /// Backend-specific id: a container id, a process group id.
    pub backend_id: String,
}

/// Why a job stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum ExitReason {
    /// The runtime exited by itself with `code` (0 is success).
    Exited {
        /// Exit code.
        code: i64,
    },
    /// Killed for exceeding its memory limit.
    OutOfMemory,
    /// Killed for exceeding its maximum duration.
    TimedOut,
    /// Stopped by a caller.
    Stopped,
    /// The backend lost track of it (daemon gone, container removed).
    Lost {
        /// What happened.
        detail: String,
    },
}

/// State of a job in its executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ExecState {
    /// Being created or started.
    Starting,
    /// Running.
    Running,
    /// Finished.
    Finished {
        /// Why.
        #[serde(flatten)]
        reason: ExitReason,
        /// Wall-clock seconds between start and exit, measured by the
        /// executor.
        wall_seconds: u64,
    },
}

/// One line of a job's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Position in the job's log, from 0; pass `seq + 1` as `since` to read on.
    pub seq: u64,
    /// `true` for stderr.
    pub stderr: bool,
    /// The text, without its newline.
    pub text: String,
}

/// Runs jobs: containers, processes, remote nodes.
///
/// Guarantees:
/// - `launch` returns once the job is started (or fails with a reason and
///   leaves nothing behind); the handle is labelled with the job and node ids
///   so that `list` finds it again after an engine restart.
/// - A job never runs past `limits.max_duration`.
/// - `stop` is idempotent; after it (or after `wait` returns) no process of
///   the job is left.
/// - The job's GPU indices are exactly `LaunchSpec::gpus`.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait Executor: MaybeSend + MaybeSync {
    /// Starts a job.
    async fn launch(&self, spec: LaunchSpec) -> Result<ExecHandle>;
    /// Current state.
    async fn state(&self, handle: &ExecHandle) -> Result<ExecState>;
    /// Waits until the job finishes; returns its final state.
    async fn wait(&self, handle: &ExecHandle) -> Result<ExecState>;
    /// Stops the job: a polite signal, then a kill after `grace`.
    async fn stop(&self, handle: &ExecHandle, grace: Duration) -> Result<()>;
    /// Output lines from position `since`.
    async fn logs(&self, handle: &ExecHandle, since: u64) -> Result<Vec<LogLine>>;
    /// Releases what the finished job holds (container, work files it owns).
    async fn remove(&self, handle: &ExecHandle) -> Result<()>;
    /// Every job this executor knows, running or finished, found by label.
    async fn list(&self) -> Result<Vec<ExecHandle>>;
}

// ---------------------------------------------------------------- Scheduler

/// What the scheduler knows of a node (from `NodeCertRegistry` and the
/// node's own reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// The node.
    pub id: NodeId,
    /// Region, e.g. `eu-west`.
    pub region: String,
    /// GPUs installed.
    pub gpus_total: u32,
    /// GPUs not allocated now.
    pub gpus_free: u32,
    /// Memory per GPU, MiB.
    pub gpu_memory_mib: u64,
    /// Runtimes it can run: image references and native ids.
    pub runtimes: BTreeSet<String>,
    /// Price per GPU-second.
    pub price_per_gpu_second: Amount,
    /// Fraction of promised uptime delivered, in [0, 1].
    pub sla: f64,
    /// Reputation, in [0, 1].
    pub reputation: f64,
    /// Whether an attestor certified it and the certificate is valid.
    pub certified: bool,
    /// Stake held.
    pub stake: Amount,
    /// Inputs it already holds (for locality).
    pub cached: BTreeSet<Cid>,
}

/// What is being placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacementRequest {
    /// The job.
    pub job_id: JobId,
    /// Its spec.
    pub spec: JobSpec,
    /// Content it reads (for locality).
    pub inputs: Vec<Cid>,
    /// Preferred region, if any.
    pub region: Option<String>,
    /// Least stake a node must hold.
    pub min_stake: Amount,
}

/// Where a job goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// The chosen node.
    pub node: NodeId,
    /// Its score in [0, 1].
    pub score: f64,
}

/// Chooses a node for a job.
///
/// Guarantees: the chosen node satisfies every hard constraint (GPU count
/// and memory, runtime, certificate, stake); the choice is deterministic for
/// the same inputs; `ResourceExhausted` when no node fits.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait Scheduler: MaybeSend + MaybeSync {
    /// Places `job` on one of `nodes`.
    async fn place(&self, job: &PlacementRequest, nodes: &[NodeView]) -> Result<Placement>;
}

// --------------------------------------------------------------- ProofChain

/// Proof that a transaction was included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Transaction hash.
    pub tx_hash: KeccakHash,
    /// Block it was included in.
    pub block_number: u64,
    /// Gas it used.
    pub gas_used: u64,
}

/// A job as submitted to the chain, with its escrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSubmission {
    /// The job.
    pub job_id: JobId,
    /// keccak256 of the spec's canonical JSON.
    pub spec_hash: KeccakHash,
    /// Most GPU-seconds payable.
    pub max_gpu_seconds: u64,
    /// Price per GPU-second, fixed at submission.
    pub rate: Amount,
    /// Escrow to lock (≥ `max_gpu_seconds × rate`).
    pub budget: Amount,
}

/// What a node commits for a finished job: one root, whatever the step count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// The job.
    pub job_id: JobId,
    /// Root over the window roots.
    pub job_root: KeccakHash,
    /// Steps per window.
    pub window: u32,
    /// Number of windows.
    pub windows: u32,
    /// Number of steps.
    pub steps: u64,
    /// GPU-seconds measured by the engine.
    pub gpu_seconds: u64,
    /// Digest of the final weights.
    pub final_weights: Blake3Digest,
    /// Manifest listing window roots and checkpoint CIDs.
    pub manifest: Cid,
}

/// A claim that a committed step is wrong, with the replayed record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    /// The job.
    pub job_id: JobId,
    /// The committed record being disputed.
    pub committed: StepRecord,
    /// Its proof under the job root.
    pub proof: StepProof,
    /// What replaying the step produced.
    pub replayed: StepRecord,
    /// Bond posted with the challenge.
    pub bond: Amount,
}

/// A job's state on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainJobStatus {
    /// Escrow locked, no node yet.
    Submitted,
    /// A node is assigned.
    Assigned,
    /// Results committed; the challenge period runs.
    Committed,
    /// A challenge is open.
    Challenged,
    /// Paid out and refunded.
    Finalized,
    /// Cancelled before assignment and refunded.
    Cancelled,
    /// A challenge was upheld; the submitter was refunded.
    Slashed,
    /// The job failed after assignment (nothing committed) and was refunded.
    Failed,
}

/// Records jobs, commitments and settlement on a chain.
///
/// Guarantees: each write returns only once included, with its receipt;
/// writes are idempotent per job and step of the flow (re-sending after a
/// crash never duplicates a transaction); reverts come back as errors of
/// kind `Reverted` naming the contract error.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait ProofChain: MaybeSend + MaybeSync {
    /// Submits a job and locks its escrow.
    async fn submit_job(&self, submission: &ChainSubmission) -> Result<Receipt>;
    /// Assigns a job to a node.
    async fn assign(&self, job: &JobId, node: &NodeId) -> Result<Receipt>;
    /// Commits a job's results.
    async fn commit(&self, commitment: &Commitment) -> Result<Receipt>;
    /// Opens a challenge against a committed step.
    async fn challenge(&self, challenge: &Challenge) -> Result<Receipt>;
    /// Pays out a job whose challenge period passed without an upheld
    /// challenge.
    async fn finalize(&self, job: &JobId) -> Result<Receipt>;
    /// Ends an assigned job that will not be committed (it failed, or was
    /// cancelled, before any step was run) and refunds its escrow in full.
    async fn fail(&self, job: &JobId) -> Result<Receipt>;
    /// The job's state.
    async fn job_status(&self, job: &JobId) -> Result<ChainJobStatus>;
    /// The chain's current block timestamp, seconds since the Unix epoch.
    async fn block_time(&self) -> Result<u64>;
}

/// Forwards every [`ProofChain`] call through a smart pointer or reference,
/// so `Arc<dyn ProofChain>` and `&C` are chains too.
macro_rules! forward_proof_chain {
    ($($ptr:ty),*) => {$(
        #[cfg_attr(not(target_arch = "wasm32"), async_trait)]
        #[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
        impl<T: ProofChain + ?Sized> ProofChain for $ptr {
            async fn submit_job(&self, submission: &ChainSubmission) -> Result<Receipt> {
                (**self).submit_job(submission).await
            }
            async fn assign(&self, job: &JobId, node: &NodeId) -> Result<Receipt> {
                (**self).assign(job, node).await
            }
            async fn commit(&self, commitment: &Commitment) -> Result<Receipt> {
                (**self).commit(commitment).await
            }
            async fn challenge(&self, challenge: &Challenge) -> Result<Receipt> {
                (**self).challenge(challenge).await
            }
            async fn finalize(&self, job: &JobId) -> Result<Receipt> {
                (**self).finalize(job).await
            }
            async fn fail(&self, job: &JobId) -> Result<Receipt> {
                (**self).fail(job).await
            }
            async fn job_status(&self, job: &JobId) -> Result<ChainJobStatus> {
                (**self).job_status(job).await
            }
            async fn block_time(&self) -> Result<u64> {
                (**self).block_time().await
            }
        }
    )*};
}
forward_proof_chain!(&T, std::sync::Arc<T>, Box<T>);
