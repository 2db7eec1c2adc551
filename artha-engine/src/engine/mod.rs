//! The engine: one handle that ties the store, the executors, the scheduler,
//! the policy, the job ledger, the proofs and the chain into the job
//! lifecycle (DESIGN §3).
//!
//! ```no_run
//! # async fn demo() -> artha_core::Result<()> {
//! use artha_engine::Engine;
//! let engine = Engine::open("/tmp/artha-home").await?;
//! let dataset = engine.register_dataset_path("data.csv".as_ref(), "demo", "").await?;
//! # let _ = dataset; Ok(()) }
//! ```
//!
//! ## Defaults of [`Engine::open`]
//!
//! Everything has an embedded default, so `Engine::open(dir)` needs no
//! configuration and no external service:
//! - storage: the local SVDB under `<home>/store`;
//! - chain: the contracts deployed on the in-process EVM (revm) under
//!   `<home>/chain`, with funded development accounts (like `anvil`'s);
//! - identity: a did:key generated on first use under `<home>/keys`, trusted
//!   as credential issuer, with a self-issued credential;
//! - executors: the process executor for native runtimes (the
//!   `artha-runtime` program: `$ARTHA_NATIVE_RUNTIME`, else next to the
//!   current executable, else on `PATH`), and Docker when a daemon answers;
//! - GPUs: NVML when built with `gpu` and a driver answers, else a simulated
//!   inventory of [`EngineBuilder::simulated_gpus`] devices, so GPU
//!   accounting and allocation behave the same on a CPU-only machine;
//! - this machine registers itself as a node on `NodeCertRegistry` (staked
//!   and certified by the local attestor) and is the scheduler's only
//!   candidate until other nodes are known.
//!
//! ## Lifecycle
//!
//! `Submitted → Accepted → Scheduled → Staging → Running → Proving →
//! Completed | Failed | Cancelled → Settled`, persisted in SQLite (WAL) by
//! [`JobLedger`]; every chain write goes through the [`Outbox`]. Each job is
//! driven by a task that resumes from whatever phase the ledger holds, so a
//! restarted engine ([`Engine::open`] on the same home) continues every
//! unfinished job: a job whose process or container still runs is
//! re-attached; one whose runtime died with the engine is resumed from its
//! last checkpoint (the events after it are dropped and recomputed — the
//! runtime is deterministic, so the proofs are the same); chain writes that
//! were recorded but not confirmed are checked against the chain before
//! being re-sent, so nothing is applied twice.
//!
//! Payment: the engine measures each job's wall time while its runtime runs
//! (never the runtime's own claim) and bills `devices × seconds`, rounded
//! up per run segment and capped at the job's maximum. A job that fails or
//! is cancelled after computing steps commits proofs of those steps and is
//! paid for the time measured; one that computed none is refunded in full.
//! Settlement (`finalize`) happens once the chain's challenge period after
//! the commit has passed: [`Engine::settle_due`] runs on open and every
//! [`EngineBuilder::settle_interval`].

mod catalog;
mod driver;
mod view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::keccak256;
use artha_core::{
    Amount, ArthaUri, CostModel, DatasetId, Error, ErrorKind, InputRef, JobId, JobSpec, LogLine,
    ModelId, NodeId, ProofChain, Result, Runtime,
};
use serde::Serialize;
use tokio::sync::watch;

pub use catalog::{Catalog, DatasetEntry, ModelEntry};
pub use view::JobsView;

use crate::chain::EvmBackend;
use crate::chain::contracts::{ArthaContracts, Attestor, Params};
use crate::chain::outbox::Outbox;
use crate::chain::parties::ChainParties;
use crate::chain::setup::{ChainSetup, PartyKeys};
use crate::exec::{GpuAllocator, GpuInventory, ProcessExecutor};
use crate::home::EngineHome;
use crate::jobs::{JobLedger, JobPhase, JobRecord, now_ms};
use crate::policy::{Did, Identity, Policy, SignedCredential};
use crate::proofs::ProofManifest;
use crate::store::{Deal, LocalBlobStore, PushOptions, PushReport, Svdb};

/// The contracts the engine talks to, over any EVM backend.
pub type Contracts = ArthaContracts<Arc<dyn EvmBackend>>;

/// Price per GPU-second of the local node by default: 0.001 ARTH.
pub const DEFAULT_RATE_WEI: u128 = 1_000_000_000_000_000;

/// Native runtime ids the process executor serves with `artha-runtime`
/// (the id becomes `ARTHA_MODEL_KIND` unless the spec's env sets it).
pub const NATIVE_RUNTIMES: &[&str] = &["mlp", "logreg"];

/// What the chain side of an engine is.
enum ChainChoice {
    /// The in-process EVM under the home (default).
    Embedded,
    /// A JSON-RPC endpoint with one key per party (and the admin's,
    /// optionally): see [`crate::chain::setup::open_rpc`].
    Rpc { url: String, keys: PartyKeys },
    /// A chain opened by the caller.
    Setup(Box<ChainSetup>),
}

/// Whether to use Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerChoice {
    /// Use it when a daemon answers (default).
    Auto,
    /// Require it: opening fails when no daemon answers.
    Required,
    /// Never.
    Off,
}

/// Builds an [`Engine`]; every setting has a default (see the module docs).
pub struct EngineBuilder {
    home: Option<PathBuf>,
    chain: ChainChoice,
    native_runtime: Option<(PathBuf, Vec<String>)>,
    docker: DockerChoice,
    gpus: Option<GpuInventory>,
    simulated_gpus: u32,
    rate: Amount,
    budget_cap: Amount,
    params: Params,
    poll: Duration,
    settle_interval: Duration,
    region: String,
    trusted: Vec<Did>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("home", &self.home)
            .field("native_runtime", &self.native_runtime)
            .field("docker", &self.docker)
            .finish_non_exhaustive()
    }
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            home: None,
            chain: ChainChoice::Embedded,
            native_runtime: None,
            docker: DockerChoice::Auto,
            gpus: None,
            simulated_gpus: 4,
            rate: Amount::from_wei(DEFAULT_RATE_WEI),
            budget_cap: Amount::from_wei(1_000_000 * 10u128.pow(18)),
            params: Params::default(),
            poll: Duration::from_millis(50),
            settle_interval: Duration::from_secs(10),
            region: "local".into(),
            trusted: Vec::new(),
        }
    }
}

impl EngineBuilder {
    /// The engine home (default: `$ARTHA_HOME`, else `~/.artha`).
    #[must_use]
    pub fn home(mut self, dir: impl Into<PathBuf>) -> Self {
        self.home = Some(dir.into());
        self
    }

    /// Use a chain the caller opened ([`crate::chain::setup`]) instead of
    /// the embedded chain.
    #[must_use]
    pub fn chain_setup(mut self, setup: ChainSetup) -> Self {
        self.chain = ChainChoice::Setup(Box::new(setup));
        self
    }

    /// Use the EVM chain at `url` (e.g. anvil) with one hex private key per
    /// party, and the admin's to deploy the contracts there on first use
    /// (the deployment is remembered in the home); see
    /// [`crate::chain::setup::open_rpc`].
    #[must_use]
    pub fn rpc_chain(mut self, url: impl Into<String>, keys: PartyKeys) -> Self {
        self.chain = ChainChoice::Rpc {
            url: url.into(),
            keys,
        };
        self
    }

    /// The program (and leading arguments) that runs native runtimes.
    #[must_use]
    pub fn native_runtime(mut self, program: impl Into<PathBuf>, args: &[&str]) -> Self {
        self.native_runtime = Some((program.into(), args.iter().map(|s| s.to_string()).collect()));
        self
    }

    /// Whether to use Docker (default [`DockerChoice::Auto`]).
    #[must_use]
    pub fn docker(mut self, choice: DockerChoice) -> Self {
        self.docker = choice;
        self
    }

    /// The GPU inventory to allocate from (default: NVML, else simulated).
    #[must_use]
    pub fn gpus(mut self, inventory: GpuInventory) -> Self {
        self.gpus = Some(inventory);
        self
    }

    /// How many GPUs the simulated inventory has when NVML finds none
    /// (default 4).
    #[must_use]
    pub fn simulated_gpus(mut self, count: u32) -> Self {
        self.simulated_gpus = count;
        self
    }

    /// This node's price per GPU-second (default 0.001 ARTH).
    #[must_use]
    pub fn rate(mut self, rate: Amount) -> Self {
        self.rate = rate;
        self
    }

    /// Contract parameters for a fresh embedded deployment.
    #[must_use]
    pub fn params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// How often a running job's events are read (default 50 ms).
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// Trusts `issuer`'s credentials too (the local identity is always
    /// trusted).
    #[must_use]
    pub fn trust(mut self, issuer: Did) -> Self {
        self.trusted.push(issuer);
        self
    }

    /// The largest budget per job of the local identity's own credential
    /// (default 1 000 000 ARTH).
    #[must_use]
    pub fn budget_cap(mut self, cap: Amount) -> Self {
        self.budget_cap = cap;
        self
    }

    /// How often due jobs are settled in the background (default 10 s).
    #[must_use]
    pub fn settle_interval(mut self, every: Duration) -> Self {
        self.settle_interval = every;
        self
    }

    /// Opens the engine: locks the home, opens every part, registers the
    /// node, and resumes every unfinished job.
    pub async fn build(self) -> Result<Engine> {
        let root = match &self.home {
            Some(h) => h.clone(),
            None => EngineHome::default_path()?,
        };
        let home = EngineHome::open(&root)?;
        let store = Svdb::open(&home)?;
        let ledger = JobLedger::open(&home.dir("jobs").join("ledger.db"))?;
        let catalog = Catalog::open(&home.dir("jobs").join("catalog.db"))?;
        private_files(&home.dir("jobs"), &["ledger.db", "catalog.db"])?;
        let now = now_ms() / 1000;
        let (mut policy, identity, credential) =
            Policy::local(&home.dir("keys").join("identity.key"), self.budget_cap, now)?;
        for did in self.trusted {
            policy.trust(did);
        }
        let node = NodeId::derive(&[b"node", identity.did().as_str().as_bytes()]);

        let chain_dir = home.dir("chain");
        let setup = match self.chain {
            ChainChoice::Setup(s) => *s,
            ChainChoice::Embedded => {
                let seed = identity.did().to_string();
                crate::chain::setup::open_embedded(&chain_dir, &seed, self.params).await?
            }
            ChainChoice::Rpc { url, keys } => {
                crate::chain::setup::open_rpc(&url, &keys, self.params, &chain_dir).await?
            }
        };
        #[cfg(feature = "embedded-chain")]
        let dev = setup.dev.clone();
        #[cfg(not(feature = "embedded-chain"))]
        let dev: Option<DevChain> = None;
        let contracts = Arc::new(setup.contracts(artha_core::Party::Worker));
        let submitter = setup.contracts(artha_core::Party::Submitter);
        let scheduler = setup.contracts(artha_core::Party::Scheduler);
        let outbox_path = chain_dir.join(format!(
            "outbox-{}.json",
            hex::encode(setup.deployment.jobs.as_slice())
        ));
        let outbox = Outbox::open(setup.parties.clone(), outbox_path)?;

        let inventory = match self.gpus {
            Some(inv) => inv,
            None => GpuInventory::detect_or(GpuInventory::simulated(self.simulated_gpus, 16_384)),
        };
        let gpus = GpuAllocator::open(inventory, home.dir("jobs").join("gpus.json"))?;
        let runs_root = home.dir("jobs").join("run");
        std::fs::create_dir_all(&runs_root)
            .map_err(|e| crate::fsutil::io_err("create the runs directory", &runs_root, e))?;
        // Search only (no listing of job ids) for the native jobs' user.
        private_dir(&runs_root, 0o711)?;
        let (program, args) = match self.native_runtime {
            Some(p) => p,
            None => (default_native_runtime(), Vec::new()),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut process = ProcessExecutor::new(&runs_root);
        for id in NATIVE_RUNTIMES {
            process = process.with_runtime(*id, &program, &args);
        }
        // Opening the home made it private again; jobs still running from
        // before a restart (re-attached below) must keep reaching their
        // directories.
        process.grant_access()?;
        let docker = open_docker(self.docker, &runs_root, gpus.inventory()).await?;

        let inner = Arc::new(Inner {
            home,
            store,
            ledger,
            catalog,
            contracts,
            submitter,
            scheduler,
            attestor: setup.attestor,
            outbox,
            dev,
            process,
            docker,
            gpus,
            policy,
            identity,
            credential,
            node,
            cost: CostModel::new(self.rate),
            region: self.region,
            poll: self.poll,
            runs: Mutex::new(HashMap::new()),
            settle: tokio::sync::Mutex::new(()),
            tasks: Mutex::new(Vec::new()),
        });
        inner.register_node().await?;
        view::write_node_facts(
            inner.home.root(),
            &view::NodeFacts {
                rate_wei: inner.cost.rate_per_gpu_second.wei(),
            },
        )?;
        let engine = Engine { inner };
        engine.resume_unfinished().await?;
        let weak = Arc::downgrade(&engine.inner);
        let every = self.settle_interval;
        let settler = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { break };
                let _ = driver::settle_due(&inner).await;
            }
        });
        engine.inner.track(settler);
        Ok(engine)
    }
}

#[cfg(feature = "embedded-chain")]
type DevChain = Arc<crate::chain::embedded::EmbeddedEvm>;
#[cfg(not(feature = "embedded-chain"))]
type DevChain = ();

/// `$ARTHA_NATIVE_RUNTIME`, else `artha-runtime` next to the current
/// executable, else `artha-runtime` (looked up on `PATH` at launch).
/// Makes the SQLite databases `names` under `dir` (and their `-wal` and
/// `-shm` files) readable by their owner only: the ledger holds specs with
/// their `env` (secrets) and the jobs directory may be searchable by the
/// native jobs' user.
fn private_files(dir: &Path, names: &[&str]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for name in names {
        for suffix in ["", "-wal", "-shm"] {
            let p = dir.join(format!("{name}{suffix}"));
            match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::fsutil::io_err("restrict a database file", &p, e)),
            }
        }
    }
    Ok(())
}

/// Sets the mode of the directory `dir`.
pub(crate) fn private_dir(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| crate::fsutil::io_err("restrict a directory", dir, e))
}

fn default_native_runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("ARTHA_NATIVE_RUNTIME") {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        for d in [dir.clone(), dir.join("..")] {
            let p = d.join("artha-runtime");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("artha-runtime")
}

#[cfg(feature = "docker")]
type Docker = crate::exec::DockerExecutor;
#[cfg(not(feature = "docker"))]
type Docker = ();

#[cfg(feature = "docker")]
async fn open_docker(
    choice: DockerChoice,
    runs_root: &Path,
    inventory: &GpuInventory,
) -> Result<Option<Docker>> {
    if choice == DockerChoice::Off {
        return Ok(None);
    }
    let mut cfg = crate::exec::DockerConfig::new(runs_root);
    cfg.gpu_source = inventory.source;
    match crate::exec::DockerExecutor::connect(cfg).await {
        Ok(d) => Ok(Some(d)),
        Err(e) if choice == DockerChoice::Required => Err(e),
        Err(_) => Ok(None),
    }
}

#[cfg(not(feature = "docker"))]
async fn open_docker(
    choice: DockerChoice,
    _runs_root: &Path,
    _inventory: &GpuInventory,
) -> Result<Option<Docker>> {
    if choice == DockerChoice::Required {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "built without the `docker` feature",
        ));
    }
    Ok(None)
}

/// Live progress of a running job.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    /// Current phase.
    pub phase: Option<JobPhase>,
    /// Last step reported.
    pub step: u64,
    /// Its epoch (0-based).
    pub epoch: u32,
    /// Its loss.
    pub loss: Option<f64>,
    /// Checkpoints stored so far.
    pub checkpoints: u32,
    /// Inference batches served.
    pub inferences: u64,
}

struct RunCtl {
    cancel: watch::Sender<bool>,
    progress: watch::Sender<Progress>,
    /// When this process launched the job's current run (to measure it).
    launched: Mutex<Option<std::time::Instant>>,
    /// Whether a task is driving the job now.
    driving: std::sync::atomic::AtomicBool,
}

pub(crate) struct Inner {
    home: EngineHome,
    store: Svdb<LocalBlobStore>,
    ledger: JobLedger,
    catalog: Catalog,
    /// The worker's client (reads, node registration).
    contracts: Arc<Contracts>,
    /// The submitter's client (datasets, models, balance).
    submitter: Contracts,
    /// The scheduler's client (trained models).
    scheduler: Contracts,
    /// The admin's attestor, on a chain this engine administers.
    attestor: Option<Attestor>,
    outbox: Outbox<ChainParties>,
    #[allow(dead_code)] // used only with `embedded-chain`
    dev: Option<DevChain>,
    process: ProcessExecutor,
    #[allow(dead_code)] // used only with `docker`
    docker: Option<Docker>,
    gpus: GpuAllocator,
    policy: Policy,
    identity: Identity,
    credential: SignedCredential,
    node: NodeId,
    cost: CostModel,
    region: String,
    poll: Duration,
    runs: Mutex<HashMap<JobId, Arc<RunCtl>>>,
    settle: tokio::sync::Mutex<()>,
    /// The tasks driving jobs and settling in the background (aborted by
    /// [`Engine::shutdown`]).
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Inner {
    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Arc<RunCtl>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `task` for [`Engine::shutdown`] (and forgets finished ones).
    fn track(&self, task: tokio::task::JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    fn run_ctl(&self, job: &JobId) -> Arc<RunCtl> {
        self.runs()
            .entry(*job)
            .or_insert_with(|| {
                Arc::new(RunCtl {
                    cancel: watch::channel(false).0,
                    progress: watch::channel(Progress::default()).0,
                    launched: Mutex::new(None),
                    driving: std::sync::atomic::AtomicBool::new(false),
                })
            })
            .clone()
    }

    async fn register_node(&self) -> Result<()> {
        match self.contracts.node(&self.node).await {
            // Registered: eligible, or decertified (a slash) — which only
            // the attestor may undo, deliberately, not the node reopening.
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let inv = self.gpus.inventory();
        let mem = inv.devices.iter().map(|d| d.memory_mib).min().unwrap_or(0);
        self.contracts
            .register_node(
                &self.node,
                inv.devices.len() as u32,
                u32::try_from(mem).unwrap_or(u32::MAX),
                self.cost.rate_per_gpu_second,
                &self.region,
                NATIVE_RUNTIMES,
                Amount::from_wei(self.contracts.params.min_stake),
            )
            .await?;
        if let Some(a) = &self.attestor {
            a.certify(&self.node).await?;
        }
        Ok(())
    }
}

/// A registration request for a model.
#[derive(Debug, Clone, Default)]
pub struct ModelRegistration {
    /// Human name.
    pub name: String,
    /// Architecture, e.g. `mlp`.
    pub architecture: String,
    /// Version label (default `1`).
    pub version: String,
    /// The model it derives from.
    pub parent: Option<ModelId>,
    /// The dataset it was trained on.
    pub dataset: Option<DatasetId>,
}

/// The Artha engine. Cheap to clone; one engine serves many concurrent jobs.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("home", &self.inner.home.root())
            .field("node", &self.inner.node)
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
        self.inner.home.root()
    }

    /// The local identity.
    pub fn identity(&self) -> &Did {
        self.inner.identity.did()
    }

    /// Issues `credential` signed by the local identity, which this engine
    /// trusts — how a node operator admits another submitter (its
    /// `subject`) with a budget cap, a rate limit and a validity window.
    /// The issuer field is set to the local identity.
    pub fn issue_credential(
        &self,
        mut credential: crate::policy::Credential,
    ) -> Result<SignedCredential> {
        credential.issuer = self.inner.identity.did().clone();
        self.inner.identity.issue(credential)
    }

    /// The local identity's self-issued credential.
    pub fn credential(&self) -> &SignedCredential {
        &self.inner.credential
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node
    }

    /// The store.
    pub fn store(&self) -> &Svdb<LocalBlobStore> {
        &self.inner.store
    }

    /// The contracts.
    pub fn contracts(&self) -> &Contracts {
        &self.inner.contracts
    }

    /// The job ledger.
    pub fn ledger(&self) -> &JobLedger {
        &self.inner.ledger
    }

    /// The catalog of datasets and models.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The price model of this node.
    pub fn cost_model(&self) -> CostModel {
        self.inner.cost
    }

    /// The GPU allocator.
    pub fn gpus(&self) -> &GpuAllocator {
        &self.inner.gpus
    }

    /// Pushes a file or tree into the store and pins it.
    pub async fn push(&self, path: &Path) -> Result<PushReport> {
        self.inner
            .store
            .push_path(path, &PushOptions::default())
            .await
    }

    /// Pushes `path` and registers it as a dataset (on chain and in the
    /// catalog). The id derives from the content and name, so registering
    /// the same file under the same name twice returns the same dataset.
    pub async fn register_dataset_path(
        &self,
        path: &Path,
        name: &str,
        tags: &str,
    ) -> Result<DatasetEntry> {
        let report = self.push(path).await?;
        self.register_dataset(&report.uri, name, tags).await
    }

    /// Registers stored content as a dataset.
    pub async fn register_dataset(
        &self,
        uri: &ArthaUri,
        name: &str,
        tags: &str,
    ) -> Result<DatasetEntry> {
        check_name("name", name)?;
        let listing = self.inner.store.ls(uri).await?;
        let cid = listing.cid.unwrap_or(*uri.cid());
        let id = DatasetId::derive(&[uri.to_string().as_bytes(), name.as_bytes()]);
        if let Some(d) = self.inner.catalog.dataset(&id)? {
            return Ok(d);
        }
        let r = self
            .inner
            .submitter
            .register_dataset(&id, &cid, None, listing.size, tags)
            .await;
        registered_once(r, "DatasetExists")?;
        let entry = DatasetEntry {
            id,
            uri: uri.to_string(),
            name: name.to_string(),
            size: listing.size,
            tags: tags.to_string(),
            created_ms: now_ms(),
        };
        self.inner.catalog.put_dataset(&entry)?;
        Ok(entry)
    }

    /// Registers stored content (weights, or a directory with `config.json`)
    /// as a model (on chain and in the catalog), with its lineage.
    pub async fn register_model(
        &self,
        uri: &ArthaUri,
        reg: &ModelRegistration,
    ) -> Result<ModelEntry> {
        check_name("name", &reg.name)?;
        check_name("architecture", &reg.architecture)?;
        if let Some(p) = &reg.parent
            && self.inner.catalog.model(p)?.is_none()
        {
            return Err(Error::new(ErrorKind::NotFound, "unknown parent model")
                .with_context("field", "parent")
                .with_context("model_id", p.to_string()));
        }
        if let Some(d) = &reg.dataset
            && self.inner.catalog.dataset(d)?.is_none()
        {
            return Err(Error::new(ErrorKind::NotFound, "unknown dataset")
                .with_context("field", "dataset")
                .with_context("dataset_id", d.to_string()));
        }
        let listing = self.inner.store.ls(uri).await?;
        let cid = listing.cid.unwrap_or(*uri.cid());
        let version = if reg.version.is_empty() {
            "1".to_string()
        } else {
            reg.version.clone()
        };
        let id = ModelId::derive(&[
            uri.to_string().as_bytes(),
            reg.name.as_bytes(),
            version.as_bytes(),
        ]);
        if let Some(m) = self.inner.catalog.model(&id)? {
            return Ok(m);
        }
        let r = self
            .inner
            .submitter
            .register_model(
                &id,
                &cid,
                &reg.architecture,
                reg.dataset.as_ref(),
                keccak256(reg.architecture.as_bytes()),
                &version,
                reg.parent.as_ref(),
                None,
            )
            .await;
        registered_once(r, "ModelExists")?;
        let entry = ModelEntry {
            id,
            uri: uri.to_string(),
            name: reg.name.clone(),
            architecture: reg.architecture.clone(),
            version,
            parent: reg.parent,
            dataset: reg.dataset,
            job: None,
            created_ms: now_ms(),
        };
        self.inner.catalog.put_model(&entry)?;
        Ok(entry)
    }

    /// Submits a job as the local identity with its own credential.
    pub async fn submit(&self, spec: JobSpec) -> Result<JobId> {
        let did = self.inner.identity.did().clone();
        let cred = self.inner.credential.clone();
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
    ) -> Result<JobId> {
        let inner = &self.inner;
        spec.validate()?;
        // Money problems are insufficient funds (exit 6), not invalid input:
        // a budget below the estimate, or over what the submitter holds.
        let estimate = inner.cost.estimate(&spec)?;
        if spec.budget < estimate.cost {
            return Err(Error::new(
                ErrorKind::InsufficientFunds,
                format!(
                    "budget {} is below the cost estimate {} ({} GPU-s × {})",
                    spec.budget,
                    estimate.cost,
                    estimate.gpu_seconds,
                    inner.cost.rate_per_gpu_second
                ),
            )
            .with_context("field", "budget"));
        }
        if let Runtime::Native(id) = &spec.runtime
            && !NATIVE_RUNTIMES.contains(&id.as_str())
        {
            return Err(Error::invalid(
                "runtime.native",
                format!(
                    "unknown native runtime `{id}` (known: {})",
                    NATIVE_RUNTIMES.join(", ")
                ),
            ));
        }
        if matches!(spec.runtime, Runtime::Image(_)) && inner.docker.is_none() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "image runtimes need Docker and no Docker daemon answered",
            )
            .with_context("field", "runtime.image"));
        }
        driver::resolve_inputs(inner, &spec).await?;
        // A budget the submitter cannot lock is refused before anything is
        // recorded (one over the credential's cap is the policy's to refuse).
        if spec.budget <= credential.credential.budget_cap {
            let balance = artha_core::ProofChain::balance(&inner.submitter).await?;
            if spec.budget > balance {
                return Err(Error::new(
                    ErrorKind::InsufficientFunds,
                    format!(
                        "budget {} is over the submitter's balance {balance}; nothing was locked",
                        spec.budget
                    ),
                )
                .with_context("field", "budget")
                .with_context("account", inner.submitter.address().to_string()));
            }
        }
        inner.policy.admit(
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
        inner.ledger.insert(&job, submitter.as_str(), &spec)?;
        inner
            .ledger
            .transition(&job, JobPhase::Submitted, JobPhase::Accepted, None)?;
        self.spawn_driver(job);
        Ok(job)
    }

    fn spawn_driver(&self, job: JobId) {
        let inner = self.inner.clone();
        let ctl = inner.run_ctl(&job);
        ctl.driving.store(true, std::sync::atomic::Ordering::SeqCst);
        let task = tokio::spawn(async move {
            // A retryable error (the chain or Docker briefly unavailable)
            // retries from the ledger's phase; others fail the job.
            let mut delay = Duration::from_millis(500);
            for attempt in 0.. {
                match driver::drive(&inner, job, &ctl).await {
                    Ok(()) => break,
                    Err(e) if e.is_retryable() && attempt < 12 => {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                    Err(e) => {
                        driver::fail_hard(&inner, &job, &e).await;
                        break;
                    }
                }
            }
            ctl.driving
                .store(false, std::sync::atomic::Ordering::SeqCst);
            ctl.progress.send_modify(|p| {
                p.phase = inner.ledger.get(&job).ok().map(|r| r.phase);
            });
        });
        self.inner.track(task);
    }

    async fn resume_unfinished(&self) -> Result<()> {
        let inner = &self.inner;
        // Chain writes recorded before a crash go out first (checked against
        // the chain so nothing is applied twice).
        let _ = inner.outbox.flush().await;
        // Entries of settled jobs (left by a crash before they were dropped).
        let settled: std::collections::HashSet<JobId> = inner
            .ledger
            .list(&[JobPhase::Settled])?
            .into_iter()
            .collect();
        inner.outbox.forget_where(|j| settled.contains(j)).await?;
        let unfinished = inner.ledger.unfinished()?;
        inner.gpus.retain(&unfinished)?;
        // Containers and processes of this engine's jobs that the ledger
        // does not know as the job's current run (launched just before a
        // crash, or left over) are stopped and removed; the driver relaunches
        // what should run. Other engines' jobs (other homes) are left alone.
        let mut executors: Vec<&dyn artha_core::Executor> = vec![&inner.process];
        #[cfg(feature = "docker")]
        if let Some(d) = &inner.docker {
            executors.push(d);
        }
        for exec in executors {
            for h in exec.list().await.unwrap_or_default() {
                let Ok(r) = inner.ledger.get(&h.job_id) else {
                    continue;
                };
                if r.phase.is_terminal() || r.exec.as_ref() != Some(&h) {
                    let _ = exec.stop(&h, Duration::from_secs(2)).await;
                    let _ = exec.remove(&h).await;
                }
            }
        }
        for job in unfinished {
            self.spawn_driver(job);
        }
        // Ended jobs not yet closed (the engine died between the end and the
        // refund) are closed now; committed ones are settled when due.
        for job in
            inner
                .ledger
                .list(&[JobPhase::Completed, JobPhase::Failed, JobPhase::Cancelled])?
        {
            let r = inner.ledger.get(&job)?;
            if !driver::committed(inner, &r).await {
                self.spawn_driver(job);
            }
        }
        let _ = driver::settle_due(inner).await;
        Ok(())
    }

    /// A job's record.
    pub fn status(&self, job: &JobId) -> Result<JobRecord> {
        self.inner.ledger.get(job)
    }

    /// A job's status as JSON shaped like the reference's `/job/:id/status`:
    /// `job_id`, `status`, `progress`, `node`, `gpus`, `gpu_seconds`,
    /// `cost`, `artifacts`, `receipts`, `history`, `reason`.
    pub fn status_json(&self, job: &JobId) -> Result<serde_json::Value> {
        let r = self.status(job)?;
        let progress = self
            .progress(job)
            .map(|rx| rx.borrow().clone())
            .unwrap_or_default();
        status_json_of(&r, &progress, Some(&self.inner.cost))
    }

    /// Every job, newest first.
    pub fn list(&self) -> Result<Vec<JobRecord>> {
        list_jobs(&self.inner.ledger)
    }

    /// A job's output lines (stdout/stderr) from `since`.
    pub async fn logs(&self, job: &JobId, since: u64) -> Result<Vec<LogLine>> {
        driver::logs(&self.inner, job, since).await
    }

    /// Whether a task of this engine is driving `job` now.
    fn driving(&self, job: &JobId) -> bool {
        self.inner
            .runs()
            .get(job)
            .is_some_and(|c| c.driving.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Live progress of a job this engine is driving.
    pub fn progress(&self, job: &JobId) -> Option<watch::Receiver<Progress>> {
        self.inner.runs().get(job).map(|c| c.progress.subscribe())
    }

    /// Cancels a job that has not finished running: staging stops, a
    /// running runtime is stopped, GPUs are freed. Steps already computed are
    /// committed and paid for their measured time; a job with none is
    /// refunded. `Conflict` once the job is past running.
    pub async fn cancel(&self, job: &JobId) -> Result<JobRecord> {
        let r = self.status(job)?;
        if !matches!(
            r.phase,
            JobPhase::Submitted
                | JobPhase::Accepted
                | JobPhase::Scheduled
                | JobPhase::Staging
                | JobPhase::Running
        ) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a {} job cannot be cancelled", r.phase),
            )
            .with_context("job_id", job.to_string()));
        }
        let ctl = self.inner.run_ctl(job);
        ctl.cancel.send_replace(true);
        self.wait(job, |p| p.is_terminal()).await
    }

    /// Waits until the job's phase satisfies `done`; for a terminal phase,
    /// also until the engine has closed the job (its GPUs freed; refunded
    /// when nothing was computed). It wakes on each of the driver's phase
    /// changes (and at least every 50 ms).
    pub async fn wait(&self, job: &JobId, done: fn(JobPhase) -> bool) -> Result<JobRecord> {
        let mut rx = self.progress(job);
        loop {
            let r = self.status(job)?;
            if done(r.phase) && !(r.phase.is_terminal() && self.driving(job)) {
                return Ok(r);
            }
            self.next_change(&mut rx, Duration::from_millis(50)).await;
        }
    }

    /// Sleeps until the job's progress changes (phase, step, checkpoint) or
    /// `at_most` passes. `rx` comes from [`Engine::progress`].
    pub async fn next_change(&self, rx: &mut Option<watch::Receiver<Progress>>, at_most: Duration) {
        match rx {
            Some(r) => {
                if let Ok(Err(_)) = tokio::time::timeout(at_most, r.changed()).await {
                    // The driver is gone: poll from now on.
                    *rx = None;
                }
            }
            None => tokio::time::sleep(at_most).await,
        }
    }

    /// The proof manifest a job committed.
    pub async fn proofs(&self, job: &JobId) -> Result<ProofManifest> {
        driver::manifest_of(&self.inner, job).await
    }

    /// Settles every job whose challenge period has passed; returns how many
    /// were settled.
    pub async fn settle_due(&self) -> Result<usize> {
        driver::settle_due(&self.inner).await
    }

    /// The escrow a job still holds on chain, and whether it is closed.
    pub async fn escrow(&self, job: &JobId) -> Result<(Amount, bool)> {
        self.inner.contracts.escrow_of(job).await
    }

    /// The chain's block time.
    pub async fn chain_time(&self) -> Result<u64> {
        self.inner.contracts.block_time().await
    }

    /// Moves a development chain's clock forward (the embedded chain, or
    /// anvil's `evm_increaseTime`) — e.g. past the challenge period in a
    /// demo. `Unsupported` on other chains.
    pub async fn dev_advance_time(&self, secs: u64) -> Result<()> {
        self.inner.contracts.backend().increase_time(secs).await
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
        let tasks: Vec<_> =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        for ctl in self.inner.runs().values() {
            ctl.driving
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A registration's chain write, where `exists` (the registry's revert for
/// a taken id) means it was already made: ids derive from the content and
/// name, so it is the same registration, written on chain before a crash
/// kept it out of the catalog.
fn registered_once(r: Result<artha_core::Receipt>, exists: &str) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let _ = exists;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn check_name(field: &str, value: &str) -> Result<()> {
    if value.len() > 256 || value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "must be at most 256 characters with no control characters",
        ));
    }
    Ok(())
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

/// A job's status as JSON (see [`Engine::status_json`]); `cost` is null
/// when the node's price is unknown to the caller.
pub(crate) fn status_json_of(
    r: &JobRecord,
    progress: &Progress,
    cost_model: Option<&CostModel>,
) -> Result<serde_json::Value> {
    let cost = match (r.gpu_seconds, cost_model) {
        (Some(s), Some(m)) => Some(m.cost(s)?),
        _ => None,
    };
    Ok(serde_json::json!({
        "job_id": r.id.to_string(),
        "status": r.phase.as_str(),
        "kind": r.spec.kind.to_string(),
        "submitter": r.submitter,
        "node": r.node.map(|n| n.to_string()),
        "gpus": r.gpus,
        "progress": {
            "step": progress.step,
            "epoch": progress.epoch,
            "loss": progress.loss,
        },
        "gpu_seconds": r.gpu_seconds,
        "cost": cost.map(|c| c.to_string()),
        "budget": r.spec.budget.to_string(),
        "reason": r.reason,
        "artifacts": r.artifacts,
        "receipts": r.receipts,
        "history": r.history,
    }))
}

/// Every job in `ledger`, newest first.
pub(crate) fn list_jobs(ledger: &JobLedger) -> Result<Vec<JobRecord>> {
    let mut out = Vec::new();
    for id in ledger.list(&JobPhase::ALL)? {
        out.push(ledger.get(&id)?);
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.history.first().map_or(0, |t| t.at_ms)));
    Ok(out)
}
