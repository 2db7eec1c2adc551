//! [`EngineBuilder`]: the composition root. Every part is a slot that takes
//! a trait object — the store ([`StoreBackend`], or any
//! [`artha_core::BlobStore`]), executors ([`Executor`]), the scheduler
//! ([`Scheduler`]) and the chain (one [`artha_core::Chain`] client per
//! party, [`ChainParties`]) — and has an embedded default assembled in
//! [`super::defaults`]. The engine never names a concrete backend outside
//! that module.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artha_core::{Amount, BlobStore, CostModel, Executor, NodeId, Result, Scheduler};

use super::Engine;
use super::catalog::Catalog;
use super::defaults::{self, ChainChoice, DockerChoice};
use super::parts::Parts;
use crate::chain::contracts::Params;
use crate::chain::outbox::Outbox;
use crate::chain::parties::ChainParties;
use crate::chain::setup::{ChainSetup, PartyKeys};
use crate::config::Config;
use crate::exec::{GpuAllocator, GpuInventory};
use crate::home::EngineHome;
use crate::jobs::{JobLedger, now_ms};
use crate::policy::{Did, Policy};
use crate::store::{DynBlobStore, StoreBackend, Svdb};

/// The configuration of the home at `root`, with `store_url` (when given)
/// in place of `ARTHA_STORE`: what the builder is told wins over the
/// environment, which wins over the file.
pub(crate) fn load_config(root: &std::path::Path, store_url: Option<&str>) -> Result<Config> {
    Config::load_with_env(root, |k| match (k, store_url) {
        ("ARTHA_STORE", Some(u)) => Some(u.to_string()),
        _ => std::env::var(k).ok(),
    })
}

/// Price per GPU-second of the local node by default: 0.001 ARTH.
pub const DEFAULT_RATE_WEI: u128 = 1_000_000_000_000_000;

/// Builds an [`Engine`]; every slot has a default (see the module docs of
/// [`crate::engine`]).
pub struct EngineBuilder {
    pub(super) home: Option<PathBuf>,
    store: Option<Arc<dyn StoreBackend>>,
    executors: Vec<Arc<dyn Executor>>,
    default_executors: bool,
    scheduler: Option<Arc<dyn Scheduler>>,
    chain: Option<ChainChoice>,
    native_runtime: Option<(PathBuf, Vec<String>)>,
    replay_runtime: Option<(PathBuf, Vec<String>)>,
    docker: Option<DockerChoice>,
    gpus: Option<GpuInventory>,
    simulated_gpus: Option<u32>,
    rate: Option<Amount>,
    budget_cap: Option<Amount>,
    params: Params,
    poll: Duration,
    settle_interval: Duration,
    region: Option<String>,
    trusted: Vec<Did>,
    config: Option<Config>,
    store_url: Option<String>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("home", &self.home)
            .field("executors", &self.executors.len())
            .field("native_runtime", &self.native_runtime)
            .field("docker", &self.docker)
            .finish_non_exhaustive()
    }
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            home: None,
            store: None,
            executors: Vec::new(),
            default_executors: true,
            scheduler: None,
            chain: None,
            native_runtime: None,
            replay_runtime: None,
            docker: None,
            gpus: None,
            simulated_gpus: None,
            rate: None,
            budget_cap: None,
            params: Params::default(),
            poll: Duration::from_millis(50),
            settle_interval: Duration::from_secs(10),
            region: None,
            trusted: Vec::new(),
            config: None,
            store_url: None,
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

    /// The store's backend (default: the local SVDB under `<home>/store`).
    /// Pins and the store's lock stay under the home.
    #[must_use]
    pub fn store(mut self, backend: Arc<dyn StoreBackend>) -> Self {
        self.store = Some(backend);
        self
    }

    /// Any [`BlobStore`] as the store's backend (without the local
    /// fast paths of [`StoreBackend::local`]).
    #[must_use]
    pub fn blob_store(self, store: Arc<dyn BlobStore>) -> Self {
        self.store(Arc::new(DynBlobStore(store)))
    }

    /// Adds an executor. Executors are tried in the order added, before the
    /// defaults: a job runs on the first that
    /// [supports](Executor::supports) its runtime.
    #[must_use]
    pub fn executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executors.push(executor);
        self
    }

    /// Leaves out the default executors (the process executor for native
    /// runtimes and Docker): only those given with
    /// [`executor`](Self::executor) run jobs.
    #[must_use]
    pub fn without_default_executors(mut self) -> Self {
        self.default_executors = false;
        self
    }

    /// The scheduler (default: the weighted scheduler of
    /// [`crate::sched::WeightedScheduler`]).
    #[must_use]
    pub fn scheduler(mut self, scheduler: Arc<dyn Scheduler>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// The chain, as one client per party (default: the contracts on the
    /// embedded chain under the home).
    #[must_use]
    pub fn chain(mut self, parties: ChainParties) -> Self {
        self.chain = Some(ChainChoice::Parties(Box::new(parties)));
        self
    }

    /// Use the EVM chain at `url` (e.g. anvil) with one key per party
    /// (and the admin's, optionally: given, the contracts are deployed on
    /// first use and this node is certified when it first registers). The
    /// deployment is remembered in the home.
    #[must_use]
    pub fn rpc_chain(mut self, url: impl Into<String>, keys: PartyKeys) -> Self {
        self.chain = Some(ChainChoice::Rpc {
            url: url.into(),
            keys: Box::new(keys),
        });
        self
    }

    /// Use a chain set up by the caller ([`crate::chain::setup`]).
    #[must_use]
    pub fn chain_setup(mut self, setup: ChainSetup) -> Self {
        self.chain = Some(ChainChoice::Setup(Box::new(setup)));
        self
    }

    /// The program (and leading arguments) that runs native runtimes.
    #[must_use]
    pub fn native_runtime(mut self, program: impl Into<PathBuf>, args: &[&str]) -> Self {
        self.native_runtime = Some((program.into(), args.iter().map(|s| s.to_string()).collect()));
        self
    }

    /// The deterministic runtime (program and leading arguments) audits
    /// replay windows with ([`Engine::verify`](crate::Engine::verify)): a
    /// verifier trusts its own copy of the runtime, never the one a node
    /// ran. Default: this engine's own native runtime
    /// ([`native_runtime`](Self::native_runtime), else
    /// `executors.native_runtime`, else `$ARTHA_NATIVE_RUNTIME`, else
    /// `artha-runtime` beside this program or on `PATH`).
    #[must_use]
    pub fn replay_runtime(mut self, program: impl Into<PathBuf>, args: &[&str]) -> Self {
        self.replay_runtime = Some((program.into(), args.iter().map(|s| s.to_string()).collect()));
        self
    }

    /// Whether to use Docker (default [`DockerChoice::Auto`]).
    #[must_use]
    pub fn docker(mut self, choice: DockerChoice) -> Self {
        self.docker = Some(choice);
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
        self.simulated_gpus = Some(count);
        self
    }

    /// This node's price per GPU-second (default 0.001 ARTH).
    #[must_use]
    pub fn rate(mut self, rate: Amount) -> Self {
        self.rate = Some(rate);
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
        self.budget_cap = Some(cap);
        self
    }

    /// How often due jobs are settled in the background (default 10 s).
    #[must_use]
    pub fn settle_interval(mut self, every: Duration) -> Self {
        self.settle_interval = every;
        self
    }

    /// This node's region label (default `local`).
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The configuration to fill in what the builder was not told (default:
    /// [`Config::load`] of the home: `<home>/artha.toml` and the `ARTHA_*`
    /// variables). What the builder is told wins over the configuration.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Replaces the configured store URL (`local` or `s3://bucket/prefix`;
    /// endpoint and credentials still come from the configuration).
    #[must_use]
    pub fn store_url(mut self, url: impl Into<String>) -> Self {
        self.store_url = Some(url.into());
        self
    }

    /// Opens the engine: locks the home, opens every part, registers the
    /// node, and resumes every unfinished job.
    pub async fn build(mut self) -> Result<Engine> {
        let root = match &self.home {
            Some(h) => h.clone(),
            None => EngineHome::default_path()?,
        };
        let cfg = match (self.config.take(), self.store_url.take()) {
            (Some(mut c), url) => {
                if let Some(u) = url {
                    c.store.url = u.parse()?;
                    c.validate()?;
                }
                c
            }
            (None, url) => load_config(&root, url.as_deref())?,
        };
        // A remote store is checked before anything is opened or created.
        let remote = match self.store.take() {
            Some(b) => Some(b),
            None => defaults::remote_store(&cfg.store).await?,
        };
        let home = EngineHome::open(&root)?;
        let backend = match remote {
            Some(b) => b,
            None => defaults::store(&home, &cfg.store).await?,
        };
        let store = Svdb::new(backend, home.dir("store"))?;
        let ledger = JobLedger::open(&home.dir("jobs").join("ledger.db"))?;
        let catalog = Catalog::open(&home.dir("jobs").join("catalog.db"))?;
        defaults::private_files(&home.dir("jobs"), &["ledger.db", "catalog.db"])?;
        let now = now_ms() / 1000;
        let budget_cap = self.budget_cap.unwrap_or(cfg.policy.budget_cap_wei);
        let (mut policy, identity, credential) =
            Policy::local(&home.dir("keys").join("identity.key"), budget_cap, now)?;
        for did in std::mem::take(&mut self.trusted) {
            policy.trust(did);
        }
        let node = NodeId::derive(&[b"node", identity.did().as_str().as_bytes()]);

        let chain_choice = match self.chain.take() {
            Some(c) => c,
            None => defaults::chain_choice(&cfg.chain)?,
        };
        let assembly = defaults::chain(&home, identity.did(), chain_choice, self.params).await?;
        let outbox_path = home
            .dir("chain")
            .join(format!("outbox-{}.json", assembly.tag));
        let chain = assembly.parties;
        let outbox = Outbox::open(chain.clone(), outbox_path)?;

        let inventory = match self.gpus.take() {
            Some(inv) => inv,
            None => defaults::gpu_inventory(&cfg.gpus, self.simulated_gpus)?,
        };
        let gpus = GpuAllocator::open(inventory, home.dir("jobs").join("gpus.json"))?;
        let runs_root = home.dir("jobs").join("run");
        std::fs::create_dir_all(&runs_root)
            .map_err(|e| crate::fsutil::io_err("create the runs directory", &runs_root, e))?;
        // Search only (no listing of job ids) for the native jobs' user.
        super::private_dir(&runs_root, 0o711)?;
        let replay_runtime = self
            .replay_runtime
            .take()
            .or_else(|| self.native_runtime.clone())
            .or_else(|| {
                cfg.executors
                    .native_runtime
                    .clone()
                    .map(|p| (p, Vec::new()))
            })
            .unwrap_or_else(|| (defaults::default_native_runtime(), Vec::new()));
        let mut executors = std::mem::take(&mut self.executors);
        if self.default_executors {
            executors.extend(
                defaults::executors(
                    &runs_root,
                    self.native_runtime.take().or_else(|| {
                        cfg.executors
                            .native_runtime
                            .clone()
                            .map(|p| (p, Vec::new()))
                    }),
                    self.docker.unwrap_or(cfg.executors.docker),
                    gpus.inventory(),
                )
                .await?,
            );
        }
        let scheduler = match self.scheduler.take() {
            Some(s) => s,
            None => defaults::scheduler(),
        };

        let parts = Arc::new(Parts {
            home,
            store,
            ledger,
            catalog,
            chain,
            outbox,
            executors,
            scheduler,
            runs_root,
            gpus,
            policy,
            identity,
            credential,
            node,
            cost: CostModel::new(self.rate.unwrap_or(cfg.node.rate_wei_per_gpu_second)),
            runtime_code: std::sync::OnceLock::new(),
            replay_runtime,
            jury: assembly.jury,
            region: self.region.unwrap_or(cfg.node.region),
            poll: self.poll,
            runs: Mutex::new(Default::default()),
            settle: tokio::sync::Mutex::new(()),
            tasks: Mutex::new(Vec::new()),
            dev: assembly.dev,
        });
        // The development chain's attestor certifies this node when it first
        // registers, then goes: the engine keeps no admin key.
        super::tasks::register_node(&parts, assembly.attestor.as_ref()).await?;
        let engine = Engine { parts };
        super::tasks::resume_unfinished(&engine).await?;
        super::tasks::spawn_settler(&engine, self.settle_interval);
        Ok(engine)
    }
}
