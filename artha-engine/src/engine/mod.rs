//! The engine: the composition root that ties a store, executors, a
//! scheduler and one chain client per party — each a trait object, each
//! with an embedded default (the `defaults` module is the only one naming
//! concrete backends) — to the policy, the job ledger and the proofs, and
//! drives each job through its lifecycle (DESIGN §3).
//!
//! ```no_run
//! # async fn demo(spec: artha_core::JobSpec) -> artha_core::Result<()> {
//! use artha_engine::Engine;
//! use artha_engine::engine::DatasetMeta;
//! let engine = Engine::open("/tmp/artha-home").await?;
//! let meta = DatasetMeta::named("demo");
//! let dataset = engine.register_dataset_path("data.csv".as_ref(), &meta).await?;
//! let job = engine.submit(spec).await?; // a `Job` handle
//! let outcome = job.wait().await?;      // `JobOutcome`
//! # let _ = (dataset, outcome); Ok(()) }
//! ```
//!
//! ## Defaults of [`Engine::open`]
//!
//! Everything has an embedded default, so `Engine::open(dir)` needs no
//! configuration and no external service; `<home>/artha.toml` and the
//! `ARTHA_*` variables ([`crate::config`]) change what the builder was not
//! told:
//! - storage: the local SVDB under `<home>/store` (or an S3 bucket);
//! - chain: the contracts deployed on the in-process EVM (revm) under
//!   `<home>/chain`, with a funded development account per party (like
//!   `anvil`'s) — submitter, scheduler, worker, verifier — and none of them
//!   the admin (or a JSON-RPC chain with a key file per party);
//! - identity: a did:key generated on first use under `<home>/keys`, trusted
//!   as credential issuer, with a self-issued credential;
//! - executors: the process executor for native runtimes (the
//!   `artha-runtime` program: `$ARTHA_NATIVE_RUNTIME`, else next to the
//!   current executable, else on `PATH`), and Docker when a daemon answers;
//! - GPUs: NVML when built with `gpu` and a driver answers, else a simulated
//!   inventory (4 devices of 16 GiB unless configured), so GPU accounting
//!   and allocation behave the same on a CPU-only machine;
//! - this machine's worker registers it as a node on `NodeCertRegistry`
//!   (staked; certified once by the development chain's attestor, whose key
//!   the engine then drops) and it is the scheduler's only candidate until
//!   other nodes are known.
//!
//! ## Lifecycle
//!
//! `Submitted → Accepted → Scheduled → Staging → Running → Proving →
//! Completed | Failed | Cancelled → Settled`, persisted in SQLite (WAL) by
//! the job ledger; every chain write goes through the outbox
//! ([`crate::chain::outbox::Outbox`]). Each job is driven by a task
//! (`lifecycle`, one module per phase) that resumes from whatever phase the
//! ledger holds, so a restarted engine ([`Engine::open`] on the same home)
//! continues every unfinished job: a job whose process or container still
//! runs is re-attached; one whose runtime died with the engine is resumed
//! from its last checkpoint (the events after it are dropped and recomputed
//! — the runtime is deterministic, so the proofs are the same); chain writes
//! that were recorded but not confirmed are checked against the chain
//! before being re-sent, so nothing is applied twice.
//!
//! Payment: the engine measures each job's wall time while its runtime runs
//! (never the runtime's own claim) and bills `devices × seconds`, rounded
//! up per run segment and capped at the job's maximum. A job that fails or
//! is cancelled after computing steps commits proofs of those steps and is
//! paid for the time measured; one that computed none is refunded in full.
//! Settlement (`finalize`) happens once the chain's challenge period after
//! the commit has passed: [`Engine::settle_due`] runs on open and every
//! [`EngineBuilder::settle_interval`].

mod builder;
pub(crate) mod catalog;
mod defaults;
mod job;
mod ops;
pub(crate) mod parts;
mod registry;
mod tasks;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use artha_core::{
    ArthaUri, ChainAction, CostModel, Error, ErrorKind, InputRef, JobId, JobPhase, JobRecord,
    JobSpec, JobStatus, LogLine, NodeId, ProofChain, Result,
};

pub use builder::{DEFAULT_RATE_WEI, EngineBuilder};
pub use catalog::{Catalog, DatasetEntry, ModelEntry};
pub use defaults::{DockerChoice, NATIVE_RUNTIMES};
pub use job::Job;
pub use parts::EngineStore;
pub use registry::{DatasetMeta, ModelRegistration, NodeInfo};

use crate::chain::parties::ChainParties;
use crate::jobs::now_ms;
use crate::lifecycle;
use crate::policy::{Did, SignedCredential};
use crate::proofs::ProofManifest;
use crate::store::Deal;
use parts::Parts;

/// The Artha engine. Cheap to clone; one engine serves many concurrent jobs.
#[derive(Clone)]
pub struct Engine {
    pub(crate) parts: Arc<Parts>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("home", &self.parts.home.root())
            .field("node", &self.parts.node)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    now_ms() / 1000
}

impl Engine {
    /// A builder with every default.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Opens the engine at `home` with every default (see the module docs).
    /// A second open of the same home, in this process or another, fails
    /// with `Conflict` and changes nothing.
    pub async fn open(home: impl Into<PathBuf>) -> Result<Engine> {
        Engine::builder().home(home).build().await
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        self.parts.home.root()
    }

    /// The local identity (the submitter's did:key).
    pub fn identity(&self) -> &Did {
        self.parts.identity.did()
    }

    /// Issues `credential` signed by the local identity, which this engine
    /// trusts — how a node operator admits another submitter (its
    /// `subject`) with a budget cap, a rate limit and a validity window.
    /// The issuer field is set to the local identity.
    pub fn issue_credential(
        &self,
        mut credential: crate::policy::Credential,
    ) -> Result<SignedCredential> {
        credential.issuer = self.parts.identity.did().clone();
        self.parts.identity.issue(credential)
    }

    /// The local identity's self-issued credential.
    pub fn credential(&self) -> &SignedCredential {
        &self.parts.credential
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.parts.node
    }

    /// The store.
    pub fn store(&self) -> &EngineStore {
        &self.parts.store
    }

    /// The chain, one client per party.
    pub fn chain(&self) -> &ChainParties {
        &self.parts.chain
    }

    /// The catalog of datasets and models.
    pub fn catalog(&self) -> &Catalog {
        &self.parts.catalog
    }

    /// The price model of this node.
    pub fn cost_model(&self) -> CostModel {
        self.parts.cost
    }

    /// How many of this node's GPUs no job holds now.
    pub fn free_gpus(&self) -> u32 {
        self.parts.gpus.free_count()
    }

    /// The GPU inventory this node allocates from.
    pub fn gpu_inventory(&self) -> &crate::exec::GpuInventory {
        self.parts.gpus.inventory()
    }

    /// Submits a job as the local identity with its own credential.
    pub async fn submit(&self, spec: JobSpec) -> Result<Job> {
        let did = self.parts.identity.did().clone();
        let cred = self.parts.credential.clone();
        self.submit_as(spec, &did, &cred).await
    }

    /// Submits a job as `submitter`, presenting `credential`: checks the
    /// spec (every problem by field), its inputs (registered ids or stored
    /// content), the policy (trusted issuer, signature, validity, subject,
    /// budget cap, rate limit) and budget ≥ estimate; then records it and
    /// starts driving it. Nothing is recorded when any check fails.
    pub async fn submit_as(
        &self,
        spec: JobSpec,
        submitter: &Did,
        credential: &SignedCredential,
    ) -> Result<Job> {
        self.admit_and_record(spec, submitter, credential, false)
            .await
    }

    /// Submits a job as [`submit`](Self::submit) does but holds it (like
    /// `sbatch --hold`): it is checked and recorded — `Accepted`, with the
    /// reason `held: …` — and starts only on [`release`](Self::release)
    /// (cancelling it ends it). Its escrow is locked when it starts, so the
    /// balance is checked again then.
    pub async fn submit_held(&self, spec: JobSpec) -> Result<Job> {
        let did = self.parts.identity.did().clone();
        let cred = self.parts.credential.clone();
        self.admit_and_record(spec, &did, &cred, true).await
    }

    /// Starts a held job (`Conflict` when it is not held).
    pub async fn release(&self, job: &JobId) -> Result<JobStatus> {
        self.parts.ledger.release(job)?;
        tasks::spawn_driver(self, *job);
        self.status(job)
    }

    async fn admit_and_record(
        &self,
        spec: JobSpec,
        submitter: &Did,
        credential: &SignedCredential,
        hold: bool,
    ) -> Result<Job> {
        let parts = &self.parts;
        spec.validate()?;
        // Money problems are insufficient funds (exit 6), not invalid input:
        // a budget below the estimate, or over what the submitter holds.
        let estimate = parts.cost.estimate(&spec)?;
        if spec.budget < estimate.cost {
            return Err(Error::new(
                ErrorKind::InsufficientFunds,
                format!(
                    "budget {} is below the cost estimate {} ({} GPU-s × {})",
                    spec.budget,
                    estimate.cost,
                    estimate.gpu_seconds,
                    parts.cost.rate_per_gpu_second
                ),
            )
            .with_context("field", "budget"));
        }
        if !parts.executors.iter().any(|e| e.supports(&spec.runtime)) {
            return Err(lifecycle::stage::no_executor(&spec.runtime));
        }
        if spec.resources.gpus > 0 && !lifecycle::schedule::fits_at_all(parts, &spec) {
            let inv = parts.gpus.inventory();
            return Err(Error::invalid(
                "resources.gpus",
                format!(
                    "asks for {} GPU(s) with {} MiB each; this node has {} GPU(s) of {} MiB at most",
                    spec.resources.gpus,
                    spec.resources.gpu_memory_mib,
                    inv.devices.len(),
                    inv.devices.iter().map(|d| d.memory_mib).max().unwrap_or(0)
                ),
            ));
        }
        lifecycle::stage::resolve_inputs(parts, &spec).await?;
        // A budget the submitter cannot lock is refused before anything is
        // recorded (one over the credential's cap is the policy's to refuse).
        if spec.budget <= credential.credential.budget_cap {
            let balance = parts.chain.balance().await?;
            if spec.budget > balance {
                return Err(Error::new(
                    ErrorKind::InsufficientFunds,
                    format!(
                        "budget {} is over the submitter's balance {balance}; nothing was locked",
                        spec.budget
                    ),
                )
                .with_context("field", "budget")
                .with_context("account", parts.chain.submitter.account()));
            }
        }
        parts.policy.admit(
            submitter,
            credential,
            spec.budget,
            estimate.cost,
            now_secs(),
        )?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("no randomness: {e}")))?;
        let job = JobId::derive(&[&nonce, submitter.as_str().as_bytes()]);
        parts.ledger.insert(&job, submitter.as_str(), &spec)?;
        parts.ledger.transition(
            &job,
            JobPhase::Submitted,
            JobPhase::Accepted,
            hold.then_some(crate::jobs::HELD),
        )?;
        if !hold {
            tasks::spawn_driver(self, job);
        }
        Ok(Job::new(self.clone(), job))
    }

    /// The handle of a job this engine knows (`NotFound` otherwise).
    pub fn job(&self, job: &JobId) -> Result<Job> {
        self.record(job)?;
        Ok(Job::new(self.clone(), *job))
    }

    /// A job's record.
    pub fn record(&self, job: &JobId) -> Result<JobRecord> {
        self.parts.ledger.get(job)
    }

    /// A job's status (its record with progress, cost and outcome); the
    /// progress of a job this engine drives is live.
    pub fn status(&self, job: &JobId) -> Result<JobStatus> {
        let mut r = self.record(job)?;
        if let Some(ctl) = self.parts.runs().get(job) {
            let live = ctl.progress.borrow();
            if live.step > r.progress.step || live.inferences > r.progress.inferences {
                r.progress = live.clone();
            }
        }
        let mut st = JobStatus::of(&r, Some(&self.parts.cost))?;
        if r.receipts
            .iter()
            .any(|x| x.action == ChainAction::ModelRegister)
        {
            st.trained_model = self.parts.catalog.model_of_job(job)?.map(|m| m.id);
        }
        Ok(st)
    }

    /// Every job, newest first.
    pub fn list(&self) -> Result<Vec<JobRecord>> {
        list_jobs(&self.parts.ledger)
    }

    /// A job's output lines (stdout/stderr) from `since`.
    pub async fn logs(&self, job: &JobId, since: u64) -> Result<Vec<LogLine>> {
        lifecycle::run::logs(&self.parts, job, since).await
    }

    /// The proof manifest a job committed.
    pub async fn proofs(&self, job: &JobId) -> Result<ProofManifest> {
        lifecycle::prove::manifest_of(&self.parts, job).await
    }

    /// Audits a committed job by deterministic replay (see
    /// [`crate::verify`]): reads the commitment and terms from the chain,
    /// fetches the manifest, spec, step log and checkpoints they name,
    /// draws windows from the chain's audit seed (or takes `opts.windows`,
    /// or all), replays them with this engine's own runtime and compares
    /// every step. Works on any job this engine can read from the chain
    /// and the store, not only its own.
    pub async fn verify(
        &self,
        job: &JobId,
        opts: &crate::verify::AuditOptions,
    ) -> Result<crate::verify::AuditReport> {
        crate::verify::audit(&self.parts, job, opts).await
    }

    /// Settles every job whose challenge period has passed; returns how many
    /// were settled.
    pub async fn settle_due(&self) -> Result<usize> {
        lifecycle::settle::settle_due(&self.parts).await
    }

    /// The chain's block time.
    pub async fn chain_time(&self) -> Result<u64> {
        self.parts.chain.block_time().await
    }

    /// Moves a development chain's clock forward (the embedded chain, or
    /// anvil's `evm_increaseTime`) — e.g. past the challenge period in a
    /// demo — and returns the chain's time after the move: the timestamp
    /// the next block will carry (the last block's, [`chain_time`](Self::chain_time),
    /// moves only when a block is mined). `Unsupported` on other chains.
    pub async fn dev_advance_time(&self, secs: u64) -> Result<u64> {
        self.parts.chain.advance_time(secs).await?;
        self.parts.chain.next_block_time().await
    }

    /// Stops this engine: the tasks driving jobs and settling are aborted
    /// (at an await point, so every ledger and outbox write is whole) and
    /// waited for, and the home is unlocked once the last clone of this
    /// handle is dropped. Runtimes keep running — processes in their own
    /// process groups, containers under dockerd — and the next
    /// [`Engine::open`] of the home re-attaches to them (or resumes a job
    /// from its last checkpoint when its runtime is gone), exactly as after
    /// a crash.
    pub async fn shutdown(self) {
        tasks::shutdown(&self.parts).await;
    }
}

/// Resolves the input a spec names to stored content.
pub(crate) fn input_uri<Id>(
    r: &InputRef<Id>,
    lookup: impl Fn(&Id) -> Result<Option<String>>,
    field: &str,
) -> Result<ArthaUri>
where
    Id: std::fmt::Display,
{
    match r {
        InputRef::Uri(u) => Ok(u.clone()),
        InputRef::Id(id) => {
            let uri = lookup(id)?.ok_or_else(|| {
                Error::new(ErrorKind::NotFound, format!("unknown {field} `{id}`"))
                    .with_context("field", field.to_string())
            })?;
            uri.parse().map_err(|_| {
                Error::new(ErrorKind::Corrupted, "catalog holds a malformed URI")
                    .with_context("uri", uri)
            })
        }
    }
}

/// A pin for a job's outputs, owned by the job.
pub(crate) fn job_deal(job: &JobId) -> Deal {
    Deal {
        owner: job.to_string(),
        ..Deal::default()
    }
}

/// The store of the home at `root` as its configuration names it
/// (`<home>/artha.toml`, `ARTHA_*`; `url`, when given, replaces the
/// configured store URL: `local` or `s3://bucket/prefix`) — for tools that
/// use the store without opening the engine.
pub async fn open_store(root: &Path, url: Option<&str>) -> Result<EngineStore> {
    let cfg = builder::load_config(root, url)?;
    let remote = defaults::remote_store(&cfg.store).await?;
    let home = crate::home::EngineHome::open(root)?;
    let backend = match remote {
        Some(b) => b,
        None => defaults::store(&home, &cfg.store).await?,
    };
    crate::store::Svdb::new(backend, home.dir("store"))
}

/// Every job in `ledger`, newest first.
pub(crate) fn list_jobs(ledger: &crate::jobs::JobLedger) -> Result<Vec<JobRecord>> {
    let mut out = Vec::new();
    for id in ledger.list(&[])? {
        out.push(ledger.get(&id)?);
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.history.first().map_or(0, |t| t.at_ms)));
    Ok(out)
}

/// Sets the mode of the directory `dir`.
pub(crate) fn private_dir(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| crate::fsutil::io_err("restrict a directory", dir, e))
}
