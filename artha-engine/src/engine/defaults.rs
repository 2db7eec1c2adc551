//! The embedded default of every slot of [`super::EngineBuilder`] — the only
//! place that names concrete backends:
//! - store: the local SVDB backend under `<home>/store`;
//! - executors: the process executor for the native runtimes
//!   ([`NATIVE_RUNTIMES`], served by `artha-runtime`), then Docker for
//!   image runtimes when a daemon answers;
//! - scheduler: [`WeightedScheduler`];
//! - chain: the six contracts on the in-process EVM (revm) under
//!   `<home>/chain`, or on a JSON-RPC endpoint, one client per party.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy_primitives::keccak256;
use artha_core::{Error, ErrorKind, Executor, Result, Scheduler};

use crate::chain::contracts::{Attestor, Params};
use crate::chain::parties::ChainParties;
use crate::chain::setup::{ChainSetup, PartyKeys};
use crate::config::{ChainConfig, ChainMode, GpuConfig, GpuSource, StoreConfig, StoreUrl};
use crate::exec::{GpuInventory, ProcessExecutor};
use crate::home::EngineHome;
use crate::policy::Did;
use crate::sched::WeightedScheduler;
use crate::store::{LocalBlobStore, StoreBackend};

/// Native runtime ids the default process executor serves with
/// `artha-runtime` (the id becomes `ARTHA_MODEL_KIND` unless the spec's env
/// sets it).
pub const NATIVE_RUNTIMES: &[&str] = &["mlp", "logreg", "llama"];

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

/// What the chain side of an engine is.
pub(crate) enum ChainChoice {
    /// The in-process EVM under the home (default).
    Embedded,
    /// A JSON-RPC endpoint with one key per party (and the admin's,
    /// optionally): see [`crate::chain::setup::open_rpc`].
    Rpc { url: String, keys: Box<PartyKeys> },
    /// A chain set up by the caller.
    Setup(Box<ChainSetup>),
    /// Party clients given by the caller (no attestor: the node must be
    /// certified already, or by someone else).
    Parties(Box<ChainParties>),
}

/// The store's backend as configured: the local one under
/// `<home>/store`, or an S3 bucket (checked to answer, so a refused or
/// silent endpoint is an `Unavailable` error before anything is opened).
pub(crate) async fn store(home: &EngineHome, cfg: &StoreConfig) -> Result<Arc<dyn StoreBackend>> {
    match remote_store(cfg).await? {
        Some(s) => Ok(s),
        None => Ok(Arc::new(LocalBlobStore::open(home.dir("store"))?)),
    }
}

/// The configured remote store, checked to answer (`None` for the local
/// one) — opened before the home, so a store that does not answer changes
/// nothing.
pub(crate) async fn remote_store(cfg: &StoreConfig) -> Result<Option<Arc<dyn StoreBackend>>> {
    match &cfg.url {
        StoreUrl::Local => Ok(None),
        StoreUrl::S3 { bucket, prefix } => s3_store(cfg, bucket, prefix).await.map(Some),
    }
}

#[cfg(feature = "s3")]
async fn s3_store(cfg: &StoreConfig, bucket: &str, prefix: &str) -> Result<Arc<dyn StoreBackend>> {
    use artha_core::BlobStore;
    let mut c = crate::store::S3Config::new(bucket);
    c.prefix = prefix.to_string();
    c.endpoint = cfg.endpoint.clone();
    c.region = cfg.region.clone();
    c.allow_http = cfg.allows_http();
    if let Some(k) = &cfg.credentials {
        c.access_key_id = Some(k.access_key_id.clone());
        c.secret_access_key = Some(k.secret_access_key.clone());
    }
    let store = crate::store::S3BlobStore::new(c)?;
    let where_ = cfg.endpoint.clone().unwrap_or_else(|| "AWS".into());
    let unavailable = |why: String| {
        Error::new(
            ErrorKind::Unavailable,
            format!("the S3 store does not answer: {why}"),
        )
        .with_context("store", format!("s3://{bucket}/{prefix}"))
        .with_context("endpoint", scheme_and_host(&where_))
    };
    match tokio::time::timeout(
        std::time::Duration::from_secs(15),
        store.has(&artha_core::Cid::of(b"")),
    )
    .await
    {
        Ok(Ok(_)) => Ok(Arc::new(store)),
        Ok(Err(e)) if e.kind() == ErrorKind::Unavailable || e.kind() == ErrorKind::Timeout => {
            Err(unavailable(e.to_string()))
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(unavailable("no answer within 15 s".into())),
    }
}

/// `scheme://host[:port]` of an endpoint URL (no user info, path or query:
/// what an error may show).
#[cfg(feature = "s3")]
fn scheme_and_host(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if scheme.is_empty() {
        host.to_string()
    } else {
        format!("{scheme}://{host}")
    }
}

#[cfg(not(feature = "s3"))]
async fn s3_store(_: &StoreConfig, _: &str, _: &str) -> Result<Arc<dyn StoreBackend>> {
    Err(Error::new(
        ErrorKind::Unsupported,
        "built without the `s3` feature: no S3 store",
    )
    .with_context("field", "store.url"))
}

/// The chain as configured: embedded, or a JSON-RPC endpoint with the
/// parties' key files.
pub(crate) fn chain_choice(cfg: &ChainConfig) -> Result<ChainChoice> {
    match &cfg.mode {
        ChainMode::Embedded => Ok(ChainChoice::Embedded),
        ChainMode::Rpc { url } => {
            let key = |name: &str, p: Option<&Path>| -> Result<String> {
                let p = p.ok_or_else(|| {
                    Error::invalid(
                        format!("chain.{name}_key_file"),
                        "required with an RPC chain",
                    )
                })?;
                crate::config::read_key_file(p)
            };
            let k = &cfg.keys;
            let keys = PartyKeys {
                admin: k
                    .admin
                    .as_deref()
                    .map(crate::config::read_key_file)
                    .transpose()?,
                scheduler: key("scheduler", k.scheduler.as_deref())?,
                worker: key("operator", k.operator.as_deref())?,
                submitter: key("submitter", k.submitter.as_deref())?,
                verifier: key("verifier", k.verifier.as_deref())?,
            };
            Ok(ChainChoice::Rpc {
                url: url.clone(),
                keys: Box::new(keys),
            })
        }
    }
}

/// The GPU inventory as configured (`simulated` overrides the configured
/// count of a simulated inventory).
pub(crate) fn gpu_inventory(cfg: &GpuConfig, simulated: Option<u32>) -> Result<GpuInventory> {
    let count = simulated.unwrap_or(cfg.count);
    let fake = GpuInventory::simulated(count, cfg.memory_mib);
    Ok(match cfg.source {
        GpuSource::Auto => GpuInventory::detect_or(fake),
        GpuSource::Simulated => fake,
        #[cfg(feature = "gpu")]
        GpuSource::Nvml => {
            GpuInventory::from_nvml().map_err(|e| e.with_context("field", "gpus.source"))?
        }
        #[cfg(not(feature = "gpu"))]
        GpuSource::Nvml => {
            return Err(artha_core::Error::new(
                artha_core::ErrorKind::Unsupported,
                "NVML needs an engine built with the `gpu` feature",
            )
            .with_context("field", "gpus.source"));
        }
    })
}

/// The default scheduler.
pub(crate) fn scheduler() -> Arc<dyn Scheduler> {
    Arc::new(WeightedScheduler)
}

/// The default executors: the process executor for native runtimes, then
/// Docker (as `docker` says).
pub(crate) async fn executors(
    runs_root: &Path,
    native_runtime: Option<(PathBuf, Vec<String>)>,
    docker: DockerChoice,
    inventory: &GpuInventory,
) -> Result<Vec<Arc<dyn Executor>>> {
    let (program, args) = native_runtime.unwrap_or_else(|| (default_native_runtime(), Vec::new()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process = ProcessExecutor::new(runs_root);
    for id in NATIVE_RUNTIMES {
        process = process.with_runtime(*id, &program, &args);
    }
    // Opening the home made it private again; jobs still running from
    // before a restart (re-attached later) must keep reaching their
    // directories.
    process.grant_access()?;
    let mut out: Vec<Arc<dyn Executor>> = vec![Arc::new(process)];
    if let Some(d) = open_docker(docker, runs_root, inventory).await? {
        out.push(d);
    }
    Ok(out)
}

/// The chain side of an engine: the party clients, the development
/// chain's attestor (to certify this node when it first registers; the
/// engine does not keep it), what keeps a development chain alive, and a
/// tag naming the deployment (for the outbox file).
pub(crate) struct ChainAssembly {
    pub(crate) parties: ChainParties,
    pub(crate) jury: Option<crate::dispute::Jury>,
    pub(crate) attestor: Option<Attestor>,
    pub(crate) dev: Option<Box<dyn std::any::Any + Send + Sync>>,
    pub(crate) tag: String,
}

/// Assembles the chain side. The embedded development chain's accounts
/// derive from the local identity (`did`), so each home has its own.
pub(crate) async fn chain(
    home: &EngineHome,
    did: &Did,
    choice: ChainChoice,
    params: Params,
) -> Result<ChainAssembly> {
    let dir = home.dir("chain");
    let setup = match choice {
        ChainChoice::Parties(p) => {
            let tag = hex::encode(&keccak256(format!("{:?}", p.accounts()).as_bytes())[..8]);
            return Ok(ChainAssembly {
                parties: *p,
                jury: None,
                attestor: None,
                dev: None,
                tag,
            });
        }
        ChainChoice::Setup(s) => *s,
        ChainChoice::Embedded => {
            crate::chain::setup::open_embedded(&dir, &did.to_string(), params).await?
        }
        ChainChoice::Rpc { url, keys } => {
            crate::chain::setup::open_rpc(&url, &keys, params, &dir).await?
        }
    };
    #[cfg(feature = "embedded-chain")]
    let dev: Option<Box<dyn std::any::Any + Send + Sync>> = setup
        .dev
        .clone()
        .map(|d| Box::new(d) as Box<dyn std::any::Any + Send + Sync>);
    #[cfg(not(feature = "embedded-chain"))]
    let dev = None;
    let jury = crate::dispute::Jury::of(&setup);
    Ok(ChainAssembly {
        jury,
        parties: setup.parties,
        attestor: setup.attestor,
        dev,
        tag: hex::encode(setup.deployment.jobs.as_slice()),
    })
}

/// Makes the SQLite databases `names` under `dir` (and their `-wal` and
/// `-shm` files) readable by their owner only: the ledger holds specs with
/// their `env` (secrets) and the jobs directory may be searchable by the
/// native jobs' user.
pub(crate) fn private_files(dir: &Path, names: &[&str]) -> Result<()> {
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

/// `$ARTHA_NATIVE_RUNTIME`, else `artha-runtime` next to the current
/// executable, else the first `artha-runtime` on this process's `PATH`
/// (resolved here: a job starts with a minimal `PATH` of its own, so a
/// program installed by `cargo install` would not be found there), else
/// the bare name.
pub(crate) fn default_native_runtime() -> PathBuf {
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
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("artha-runtime"))
            .find(|p| p.is_file())
    }) {
        return found;
    }
    PathBuf::from("artha-runtime")
}

#[cfg(feature = "docker")]
async fn open_docker(
    choice: DockerChoice,
    runs_root: &Path,
    inventory: &GpuInventory,
) -> Result<Option<Arc<dyn Executor>>> {
    if choice == DockerChoice::Off {
        return Ok(None);
    }
    let mut cfg = crate::exec::DockerConfig::new(runs_root);
    cfg.gpu_source = inventory.source;
    match crate::exec::DockerExecutor::connect(cfg).await {
        Ok(d) => Ok(Some(Arc::new(d))),
        Err(e) if choice == DockerChoice::Required => Err(e),
        Err(_) => Ok(None),
    }
}

#[cfg(not(feature = "docker"))]
async fn open_docker(
    choice: DockerChoice,
    _runs_root: &Path,
    _inventory: &GpuInventory,
) -> Result<Option<Arc<dyn Executor>>> {
    if choice == DockerChoice::Required {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "built without the `docker` feature",
        ));
    }
    Ok(None)
}
