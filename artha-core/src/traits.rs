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

/// Implements a trait for `&T`, `Arc<T>` and `Box<T>` by forwarding every
/// method, so `Arc<dyn Executor>` (and the like) is an executor too:
/// `forward_trait!(Trait, async { m(a: A) -> R; } sync { n() -> S; })`
/// (async methods return `Result<R>`).
macro_rules! forward_trait {
    ($tr:ident, async $a:tt sync $s:tt) => {
        forward_trait!(@one $tr, &T, $a, $s);
        forward_trait!(@one $tr, std::sync::Arc<T>, $a, $s);
        forward_trait!(@one $tr, Box<T>, $a, $s);
    };
    (@one $tr:ident, $ptr:ty,
     { $($an:ident($($aa:ident: $at:ty),*) -> $ar:ty;)* },
     { $($sn:ident($($sa:ident: $st:ty),*) -> $sr:ty;)* }) => {
        #[cfg_attr(not(target_arch = "wasm32"), async_trait)]
        #[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
        impl<T: $tr + ?Sized> $tr for $ptr {
            $(async fn $an(&self, $($aa: $at),*) -> Result<$ar> {
                (**self).$an($($aa),*).await
            })*
            $(fn $sn(&self, $($sa: $st),*) -> $sr {
                (**self).$sn($($sa),*)
            })*
        }
    };
}

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

forward_trait!(BlobStore, async {
    put(data: Vec<u8>) -> Cid;
    get(cid: &Cid) -> Vec<u8>;
    has(cid: &Cid) -> bool;
    delete(cid: &Cid) -> ();
    list() -> Vec<Cid>;
} sync {});

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
    /// Whether this executor runs jobs of `runtime` (the engine routes each
    /// job to the first executor that does).
    fn supports(&self, runtime: &Runtime) -> bool;
    /// The runtimes it offers, as a node advertises them: native runtime
    /// ids, and `image` for an executor that runs any container image.
    fn runtimes(&self) -> Vec<String>;
}

forward_trait!(Executor, async {
    launch(spec: LaunchSpec) -> ExecHandle;
    state(handle: &ExecHandle) -> ExecState;
    wait(handle: &ExecHandle) -> ExecState;
    stop(handle: &ExecHandle, grace: Duration) -> ();
    logs(handle: &ExecHandle, since: u64) -> Vec<LogLine>;
    remove(handle: &ExecHandle) -> ();
    list() -> Vec<ExecHandle>;
} sync {
    supports(runtime: &Runtime) -> bool;
    runtimes() -> Vec<String>;
});

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

forward_trait!(Scheduler, async {
    place(job: &PlacementRequest, nodes: &[NodeView]) -> Placement;
} sync {});

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

/// A job as submitted to the chain, with its escrow: the terms it will be
/// paid on are fixed here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSubmission {
    /// The job.
    pub job_id: JobId,
    /// Content id of the spec's canonical JSON in the store: what anyone
    /// replaying the job reads (runtime, inputs, hyper-parameters, seed).
    pub spec: Cid,
    /// Most steps the node may commit: the step count the spec implies
    /// (or what the budget buys, when the data cannot be counted).
    pub max_steps: u64,
    /// Price of one committed step, fixed at submission.
    pub price_per_step: Amount,
    /// Escrow to lock (≥ `max_steps × price_per_step`).
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
    /// Number of steps (what the node is paid for).
    pub steps: u64,
    /// Digest of the final weights.
    pub final_weights: Blake3Digest,
    /// Manifest listing window roots, checkpoint CIDs and the step log.
    pub manifest: Cid,
}

/// A job's commitment as the chain holds it — what a verifier trusts,
/// rather than anything the node serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCommitment {
    /// Root over the window roots.
    pub job_root: KeccakHash,
    /// The proof manifest's content id.
    pub manifest: Cid,
    /// Steps committed.
    pub steps: u64,
    /// Steps per window.
    pub window: u32,
    /// Number of windows.
    pub windows: u32,
    /// Block the commitment was included in.
    pub commit_block: u64,
    /// Its block timestamp.
    pub committed_at: u64,
    /// Challenges open against it.
    pub open_challenges: u16,
}

/// The terms a job was submitted on, as the chain holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTerms {
    /// Content id of the spec.
    pub spec: Cid,
    /// Most steps payable.
    pub max_steps: u64,
    /// Price of one step.
    pub price_per_step: Amount,
    /// The submitter's account (`0x…`).
    pub submitter: String,
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
    /// A jury found the committed data unavailable: the submitter was
    /// refunded, the node not paid (nor slashed).
    Voided,
}

/// Records jobs, commitments and settlement on a chain.
///
/// Guarantees: each write returns only once included, with its receipt;
/// writes are idempotent per job and step of the flow (re-sending after a
/// crash never duplicates a transaction); reverts come back as typed
/// errors naming the contract error: `AlreadyExists` (an id taken),
/// `NotFound` (an unknown id), `PermissionDenied` (a caller without the
/// role), `Conflict` (too early: the same write succeeds later), else
/// `Reverted`.
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
    /// The timestamp the next block will have (what a write sent now sees).
    async fn next_block_time(&self) -> Result<u64>;
    /// When a committed job may be finalized (`None` before a commit).
    async fn settles_at(&self, job: &JobId) -> Result<Option<u64>>;
    /// The escrow a job holds.
    async fn escrow(&self, job: &JobId) -> Result<Escrow>;
    /// The balance of the account this chain client acts as.
    async fn balance(&self) -> Result<Amount>;
    /// Moves a development chain's clock forward; `Unsupported` elsewhere.
    async fn advance_time(&self, secs: u64) -> Result<()>;
    /// The receipt of transaction `tx` as the chain holds it (`None` when
    /// it is not on chain) — how anyone checks a receipt a job records.
    async fn receipt(&self, tx: &KeccakHash) -> Result<Option<Receipt>>;
    /// The node a job is assigned to (`None` before assignment).
    async fn job_node(&self, job: &JobId) -> Result<Option<NodeId>>;
    /// A job's commitment as the chain holds it (`None` before a commit).
    async fn commitment(&self, job: &JobId) -> Result<Option<ChainCommitment>>;
    /// The terms a job was submitted on.
    async fn job_terms(&self, job: &JobId) -> Result<JobTerms>;
    /// The seed a committed job's audit is drawn from: a block hash the
    /// node could not know when it committed, mixed with the job id.
    /// `Conflict` until that block exists.
    async fn audit_seed(&self, job: &JobId) -> Result<KeccakHash>;
    /// The account this chain client acts as, as text (`0x…`).
    fn account(&self) -> String;
    /// The challenge period after a commit, seconds.
    fn challenge_period_secs(&self) -> u64;
    /// The least stake a node must hold to be scheduled.
    fn min_stake(&self) -> Amount;
}

/// A job's escrow on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    /// What it still holds.
    pub held: Amount,
    /// Whether it was paid out or refunded.
    pub closed: bool,
}

forward_trait!(ProofChain, async {
    submit_job(submission: &ChainSubmission) -> Receipt;
    assign(job: &JobId, node: &NodeId) -> Receipt;
    commit(commitment: &Commitment) -> Receipt;
    challenge(challenge: &Challenge) -> Receipt;
    finalize(job: &JobId) -> Receipt;
    fail(job: &JobId) -> Receipt;
    job_status(job: &JobId) -> ChainJobStatus;
    block_time() -> u64;
    next_block_time() -> u64;
    settles_at(job: &JobId) -> Option<u64>;
    escrow(job: &JobId) -> Escrow;
    balance() -> Amount;
    advance_time(secs: u64) -> ();
    receipt(tx: &KeccakHash) -> Option<Receipt>;
    job_node(job: &JobId) -> Option<NodeId>;
    commitment(job: &JobId) -> Option<ChainCommitment>;
    job_terms(job: &JobId) -> JobTerms;
    audit_seed(job: &JobId) -> KeccakHash;
} sync {
    account() -> String;
    challenge_period_secs() -> u64;
    min_stake() -> Amount;
});

// ----------------------------------------------------------------- Registry

/// A node's registration on the chain's node registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRegistration {
    /// The node.
    pub node: NodeId,
    /// GPUs it offers.
    pub gpus: u32,
    /// Memory of its smallest GPU, MiB.
    pub gpu_memory_mib: u32,
    /// Price per GPU-second.
    pub price_per_gpu_second: Amount,
    /// Region label.
    pub region: String,
    /// Runtimes it runs (see [`Executor::runtimes`]).
    pub runtimes: Vec<String>,
    /// Stake it posts.
    pub stake: Amount,
}

/// A node as the registry records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStanding {
    /// The operator's account (paid at settlement), as text.
    pub operator: String,
    /// Price per GPU-second.
    pub price_per_gpu_second: Amount,
    /// GPUs declared.
    pub gpu_count: u32,
    /// Memory of its smallest GPU, MiB.
    pub gpu_memory_mib: u32,
    /// Certified by an attestor.
    pub certified: bool,
    /// Registered and not deregistered.
    pub active: bool,
    /// Stake posted.
    pub stake: Amount,
    /// Finalized jobs minus a penalty per upheld challenge.
    pub reputation: u32,
    /// Region label.
    pub region: String,
    /// Active, certified and staked: the scheduler may place jobs on it.
    pub eligible: bool,
}

/// A dataset's registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRegistration {
    /// Its id.
    pub id: crate::ids::DatasetId,
    /// The stored content.
    pub content: Cid,
    /// Size in bytes.
    pub size: u64,
    /// Tags (comma separated).
    pub tags: String,
    /// Content id of its licence text (`None`: no licence; zero on chain).
    #[serde(default)]
    pub license: Option<Cid>,
}

/// A model's registration, with its lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Its id.
    pub id: crate::ids::ModelId,
    /// The stored weights.
    pub content: Cid,
    /// Architecture label.
    pub architecture: String,
    /// The dataset it was trained on.
    pub dataset: Option<crate::ids::DatasetId>,
    /// keccak256 of the code that produced it.
    pub code_hash: KeccakHash,
    /// Version label.
    pub version: String,
    /// The model it derives from.
    pub parent: Option<crate::ids::ModelId>,
    /// The job that trained it.
    pub job: Option<JobId>,
}

/// The chain's registries of nodes, datasets and models, as one party
/// sees them. A registration of an id that is already taken fails with
/// `AlreadyExists`.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait Registry: MaybeSend + MaybeSync {
    /// Registers (and stakes) a node operated by this party's account.
    async fn register_node(&self, registration: &NodeRegistration) -> Result<Receipt>;
    /// A node's record (`NotFound` for an unknown node).
    async fn node(&self, node: &NodeId) -> Result<NodeStanding>;
    /// Registers a dataset.
    async fn register_dataset(&self, dataset: &DatasetRegistration) -> Result<Receipt>;
    /// A dataset as registered (`NotFound` for an unknown dataset).
    async fn dataset(&self, dataset: &crate::ids::DatasetId) -> Result<DatasetRegistration>;
    /// Registers a model.
    async fn register_model(&self, model: &ModelRecord) -> Result<Receipt>;
    /// A model as registered, with its provenance (`NotFound` for an
    /// unknown model).
    async fn model(&self, model: &crate::ids::ModelId) -> Result<ModelRecord>;
    /// A model and its ancestors, nearest first (`NotFound` for an unknown
    /// model).
    async fn lineage(&self, model: &crate::ids::ModelId) -> Result<Vec<crate::ids::ModelId>>;
}

/// The parties of a job, each with its own identity and chain account.
/// None of them is the chain's admin (deployer, attestor, arbiter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// Submits jobs and locks their escrow.
    Submitter,
    /// Assigns jobs to nodes (and ends jobs that were never run).
    Scheduler,
    /// A node operator: runs jobs, commits their proofs, is paid.
    Worker,
    /// Audits committed work and challenges it.
    Verifier,
}

impl Party {
    /// Every party.
    pub const ALL: [Party; 4] = [
        Party::Submitter,
        Party::Scheduler,
        Party::Worker,
        Party::Verifier,
    ];

    /// Its name: `submitter`, `scheduler`, `worker`, `verifier`.
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Submitter => "submitter",
            Party::Scheduler => "scheduler",
            Party::Worker => "worker",
            Party::Verifier => "verifier",
        }
    }
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One party's client of a chain: its proof flow and its registries. Any
/// type that is both is one.
pub trait Chain: ProofChain + Registry {}
impl<T: ProofChain + Registry + ?Sized> Chain for T {}

forward_trait!(Registry, async {
    register_node(registration: &NodeRegistration) -> Receipt;
    node(node: &NodeId) -> NodeStanding;
    register_dataset(dataset: &DatasetRegistration) -> Receipt;
    dataset(dataset: &crate::ids::DatasetId) -> DatasetRegistration;
    register_model(model: &ModelRecord) -> Receipt;
    model(model: &crate::ids::ModelId) -> ModelRecord;
    lineage(model: &crate::ids::ModelId) -> Vec<crate::ids::ModelId>;
} sync {});
