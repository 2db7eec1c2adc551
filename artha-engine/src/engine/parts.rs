//! What an engine is made of: the four seams as trait objects (store,
//! executors, scheduler, one chain client per party) and the engine's own
//! state (home, ledger, catalog, policy, GPU allocator), plus the per-job
//! run controls of the jobs it drives.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artha_core::{CostModel, Executor, JobId, Scheduler};
use tokio::sync::watch;

use super::catalog::Catalog;
use crate::chain::outbox::Outbox;
use crate::chain::parties::ChainParties;
use crate::exec::GpuAllocator;
use crate::home::EngineHome;
use crate::jobs::{JobLedger, JobProgress};
use crate::policy::{Identity, Policy, SignedCredential};
use crate::store::{StoreBackend, Svdb};

/// The engine's store: the SVDB over any backend.
pub type EngineStore = Svdb<Arc<dyn StoreBackend>>;

/// The control of one job this engine drives: its cancel flag, its live
/// progress, and when this process launched its current run.
pub(crate) struct RunCtl {
    pub(crate) cancel: watch::Sender<bool>,
    pub(crate) progress: watch::Sender<JobProgress>,
    /// When this process launched the job's current run (to measure it).
    pub(crate) launched: Mutex<Option<std::time::Instant>>,
    /// Whether a task is driving the job now.
    pub(crate) driving: std::sync::atomic::AtomicBool,
}

/// The parts of an engine (see the module docs).
pub(crate) struct Parts {
    pub(crate) home: EngineHome,
    pub(crate) store: EngineStore,
    pub(crate) ledger: JobLedger,
    pub(crate) catalog: Catalog,
    pub(crate) chain: ChainParties,
    pub(crate) outbox: Outbox<ChainParties>,
    /// Tried in order: a job runs on the first that supports its runtime.
    pub(crate) executors: Vec<Arc<dyn Executor>>,
    pub(crate) scheduler: Arc<dyn Scheduler>,
    /// `<home>/jobs/run`: one directory per job.
    pub(crate) runs_root: PathBuf,
    pub(crate) gpus: GpuAllocator,
    pub(crate) policy: Policy,
    pub(crate) identity: Identity,
    pub(crate) credential: SignedCredential,
    pub(crate) node: artha_core::NodeId,
    pub(crate) cost: CostModel,
    /// The deterministic runtime audits replay with (the verifier's own,
    /// never the one a job ran with).
    pub(crate) replay_runtime: (PathBuf, Vec<String>),
    /// BLAKE3 of the replay runtime's program (`None` when it cannot be
    /// read): the code a submitted native job is pinned to. Hashed on first
    /// use ([`Parts::runtime_code`]).
    pub(crate) runtime_code: std::sync::OnceLock<Option<artha_core::Blake3Digest>>,
    /// Typed contract clients for disputes (the verifier's and the jurors
    /// this process signs for); `None` when the chain came as bare parties.
    pub(crate) jury: Option<crate::dispute::Jury>,
    pub(crate) region: String,
    pub(crate) poll: Duration,
    pub(crate) runs: Mutex<HashMap<JobId, Arc<RunCtl>>>,
    pub(crate) settle: tokio::sync::Mutex<()>,
    /// The tasks driving jobs and settling in the background (aborted by
    /// `Engine::shutdown`).
    pub(crate) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Keeps the development chain (and its attestor) alive with the engine.
    #[allow(dead_code)]
    pub(crate) dev: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Parts {
    /// BLAKE3 of the replay runtime's program, hashed once.
    pub(crate) fn runtime_code(&self) -> Option<artha_core::Blake3Digest> {
        *self
            .runtime_code
            .get_or_init(|| program_digest(&self.replay_runtime.0))
    }

    pub(crate) fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Arc<RunCtl>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `task` for `Engine::shutdown` (and forgets finished ones).
    pub(crate) fn track(&self, task: tokio::task::JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    pub(crate) fn run_ctl(&self, job: &JobId) -> Arc<RunCtl> {
        self.runs()
            .entry(*job)
            .or_insert_with(|| {
                Arc::new(RunCtl {
                    cancel: watch::channel(false).0,
                    progress: watch::channel(JobProgress::default()).0,
                    launched: Mutex::new(None),
                    driving: std::sync::atomic::AtomicBool::new(false),
                })
            })
            .clone()
    }
}

/// BLAKE3 of a program file (`None` when it cannot be read: a bare name
/// resolved only at launch).
fn program_digest(path: &std::path::Path) -> Option<artha_core::Blake3Digest> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut f, &mut h).ok()?;
    Some(artha_core::Blake3Digest::from_bytes(
        *h.finalize().as_bytes(),
    ))
}
