//! Opening a chain for the engine: the backend, the contracts (deployed on
//! first use, then remembered), one client per party, and — only where the
//! engine created the chain itself — the admin's [`Attestor`].
//!
//! Two entry points, free of engine types (the engine's defaults call them):
//! - [`open_embedded`]: the in-process EVM under a directory, with five
//!   development accounts derived from a seed and funded, as anvil's are.
//! - [`open_rpc`]: any JSON-RPC endpoint, with one private key per party
//!   ([`PartyKeys`]).
//!
//! # Who holds which key, and why
//!
//! | account | signs | holds |
//! |---|---|---|
//! | admin | the deployment; [`Attestor::certify`], [`Attestor::revoke`] | ADMIN, ATTESTOR |
//! | scheduler | `assign`, `fail`, registering a trained model | SCHEDULER, REGISTRAR |
//! | worker (node operator) | `register_node`, `commit`, `finalize`; is paid | — |
//! | submitter | `submit_job`, datasets, models of its own; is refunded | — |
//! | verifier | `challenge` (posts the bond) | — |
//!
//! Each party gets an [`ArthaContracts`] bound to its own account, inside
//! [`ChainParties`]; none of them can send from another account, and none
//! of them is the admin. The admin's key is used only to deploy and by the
//! [`Attestor`] handle, which [`ChainSetup::attestor`] carries only when
//! this process was given the admin key: always on the embedded
//! development chain (the engine created that chain and is its admin, as
//! anvil's dev keys are everyone's), and on an RPC chain only when
//! [`PartyKeys::admin`] is set (typically once, to deploy).
//!
//! Certification is the attestor's judgement of a node, so it cannot come
//! from the node: `NodeCertRegistry.certify` needs ATTESTOR, which the
//! worker does not hold, and an upheld challenge decertifies the node
//! (`ProofOfCompute.resolve` → `NodeCertRegistry.slash`). A slashed node's
//! worker can re-stake (`addStake`) but cannot make it eligible again: only
//! the attestor can, deliberately. Code holding an attestor should certify
//! a node when it is first registered, never re-certify one it finds
//! decertified.
//!
//! # Deployment files
//!
//! The deployment is saved as a [`DeploymentFile`] (addresses and
//! parameters, no account): `<dir>/deployment.json` for the embedded chain,
//! `<dir>/deployment-rpc-<tag>.json` for an endpoint, where the tag is a
//! hash of the URL and the scheduler's address. A file written by the
//! previous version (with `accounts: {admin, operator, submitter}`) still
//! loads; its SCHEDULER and REGISTRAR roles belong to the old admin, so:
//! on the embedded chain they are granted to the new scheduler (and the new
//! accounts funded) when it opens; on an RPC chain the file's name no
//! longer matches (the old tag hashed the admin's address) and the
//! contracts are deployed afresh when the admin key is given.

use std::path::Path;
use std::sync::Arc;

use alloy_primitives::{Address, U256, keccak256};
use artha_core::{Chain, Error, ErrorKind, Party, Result};

use super::EvmBackend;
use super::contracts::{ArthaContracts, Attestor, Deployment, DeploymentFile, Params, Roles};
#[cfg(feature = "embedded-chain")]
use super::embedded::EmbeddedEvm;
use super::parties::ChainParties;

/// The contracts over a type-erased backend, acting as one account.
pub type DynContracts = ArthaContracts<Arc<dyn EvmBackend>>;

/// What a development account is funded with: 1 000 000 ARTH.
pub const DEV_FUNDS_ARTH: u64 = 1_000_000;

/// The accounts of a chain setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartyAccounts {
    /// The chain admin (deployer, attestor), when this process
    /// holds its key.
    pub admin: Option<Address>,
    /// Assigns jobs, ends unrun ones, registers trained models.
    pub scheduler: Address,
    /// Operates the node: registers it, commits, finalizes, is paid.
    pub worker: Address,
    /// Submits jobs and locks their escrow; is refunded.
    pub submitter: Address,
    /// Challenges committed work.
    pub verifier: Address,
}

impl PartyAccounts {
    /// The account of `party`.
    pub fn of(&self, party: Party) -> Address {
        match party {
            Party::Submitter => self.submitter,
            Party::Scheduler => self.scheduler,
            Party::Worker => self.worker,
            Party::Verifier => self.verifier,
        }
    }

    /// The roles these accounts get at deployment.
    pub fn roles(&self) -> Roles {
        Roles {
            scheduler: self.scheduler,
        }
    }
}

/// An opened chain: one client per party, where the contracts are, and the
/// attestor when this process is the chain's admin.
pub struct ChainSetup {
    /// One client per party, each acting as its own account.
    pub parties: ChainParties,
    /// Each party's account (and the admin's, when held).
    pub accounts: PartyAccounts,
    /// Where the contracts are.
    pub deployment: Deployment,
    /// With what parameters they were deployed (a saved deployment's, not
    /// the ones asked for).
    pub params: Params,
    /// The admin's attestor: `Some` on the embedded
    /// development chain, and on an RPC chain given the admin key; never
    /// part of [`ChainSetup::parties`].
    pub attestor: Option<Attestor>,
    /// The backend every client uses (receipts, the dev clock).
    pub backend: Arc<dyn EvmBackend>,
    /// Juror accounts this process signs for (the embedded chain's
    /// [`dev_jurors`]; none on an RPC chain, whose jurors are other
    /// parties' processes).
    pub jurors: Vec<Address>,
    /// The embedded chain itself, when that is the chain.
    #[cfg(feature = "embedded-chain")]
    pub dev: Option<Arc<EmbeddedEvm>>,
}

impl std::fmt::Debug for ChainSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainSetup")
            .field("accounts", &self.accounts)
            .field("deployment", &self.deployment)
            .field("params", &self.params)
            .field("attestor", &self.attestor.as_ref().map(Attestor::address))
            .finish_non_exhaustive()
    }
}

impl ChainSetup {
    /// The typed client of `party` (the same account as
    /// `parties.get(party)`).
    pub fn contracts(&self, party: Party) -> DynContracts {
        ArthaContracts::attach(
            self.backend.clone(),
            self.deployment,
            self.accounts.of(party),
            self.params,
        )
    }

    /// A client acting as `account` (a juror's, say).
    pub fn contracts_of(&self, account: Address) -> DynContracts {
        ArthaContracts::attach(self.backend.clone(), self.deployment, account, self.params)
    }

    /// Builds the setup for `accounts` on contracts already deployed.
    fn assemble(
        backend: Arc<dyn EvmBackend>,
        file: DeploymentFile,
        accounts: PartyAccounts,
        with_attestor: bool,
    ) -> Self {
        let DeploymentFile { deployment, params } = file;
        let client = |a: Address| -> Arc<dyn Chain> {
            Arc::new(ArthaContracts::attach(
                backend.clone(),
                deployment,
                a,
                params,
            ))
        };
        let parties = ChainParties {
            submitter: client(accounts.submitter),
            scheduler: client(accounts.scheduler),
            worker: client(accounts.worker),
            verifier: client(accounts.verifier),
        };
        let attestor = match (with_attestor, accounts.admin) {
            (true, Some(admin)) => {
                Some(Attestor::attach(backend.clone(), deployment, admin, params))
            }
            _ => None,
        };
        ChainSetup {
            parties,
            accounts,
            deployment,
            params,
            attestor,
            backend,
            jurors: Vec::new(),
            #[cfg(feature = "embedded-chain")]
            dev: None,
        }
    }
}

/// The development accounts of a seed: `keccak256("artha dev account
/// <label> <seed>")`, last 20 bytes, for the labels `admin`, `scheduler`,
/// `operator` (the worker: its label before parties had their own
/// accounts, so a home made then keeps its node's operator), `submitter`
/// and `verifier`. The engine passes its identity's DID as the seed, so
/// each home has its own.
pub fn dev_accounts(seed: &str) -> PartyAccounts {
    let a = |label: &str| {
        let h = keccak256(format!("artha dev account {label} {seed}").as_bytes());
        Address::from_slice(&h[12..])
    };
    PartyAccounts {
        admin: Some(a("admin")),
        scheduler: a("scheduler"),
        worker: a("operator"),
        submitter: a("submitter"),
        verifier: a("verifier"),
    }
}

/// Jurors of the embedded development chain: `keccak256("artha dev juror
/// <i> <seed>")`, last 20 bytes, for i = 1..=5 — enough for a jury of 3
/// when some are parties to a dispute. Funded like the party accounts; they
/// join the pool when a dispute first needs them
/// ([`crate::Engine::adjudicate`]).
pub fn dev_jurors(seed: &str) -> Vec<Address> {
    (1..=5)
        .map(|i| {
            let h = keccak256(format!("artha dev juror {i} {seed}").as_bytes());
            Address::from_slice(&h[12..])
        })
        .collect()
}

/// Opens the embedded development chain under `dir`: the EVM at
/// `dir/evm`, the deployment at `dir/deployment.json` (deployed with
/// `params` on first use, after funding the five [`dev_accounts`] of `seed`
/// with [`DEV_FUNDS_ARTH`] each). The engine is the chain's admin, so the
/// setup has an attestor. A deployment made by the previous version gets
/// its party roles granted to the scheduler, and accounts it did not fund
/// are funded.
#[cfg(feature = "embedded-chain")]
pub async fn open_embedded(dir: &Path, seed: &str, params: Params) -> Result<ChainSetup> {
    let evm = Arc::new(EmbeddedEvm::open(&dir.join("evm"))?);
    let backend: Arc<dyn EvmBackend> = evm.clone();
    let accounts = dev_accounts(seed);
    let admin = accounts
        .admin
        .ok_or_else(|| Error::new(ErrorKind::Internal, "development accounts without an admin"))?;
    let funds = U256::from(DEV_FUNDS_ARTH) * U256::from(10u64).pow(U256::from(18u64));
    let all = [
        admin,
        accounts.scheduler,
        accounts.worker,
        accounts.submitter,
        accounts.verifier,
    ];
    let saved = dir.join("deployment.json");
    let file = match DeploymentFile::load(&saved)? {
        Some(f) => {
            let admin_client = ArthaContracts::attach(&backend, f.deployment, admin, f.params);
            admin_client
                .check_version()
                .await
                .map_err(|e| e.with_context("path", saved.display().to_string()))?;
            if !admin_client.has_party_roles(&accounts.roles()).await? {
                // A deployment of the previous version: its admin held the
                // party roles.
                Attestor::attach(&backend, f.deployment, admin, f.params)
                    .grant_party_roles(&accounts.roles())
                    .await?;
                for a in all {
                    if EmbeddedEvm::balance(&evm, a)?.is_zero() {
                        evm.fund(a, funds)?;
                    }
                }
            }
            f
        }
        None => {
            // A development chain funds its accounts, as anvil does.
            for a in all {
                evm.fund(a, funds)?;
            }
            let deployment =
                ArthaContracts::deploy(&backend, admin, &accounts.roles(), params).await?;
            let f = DeploymentFile { deployment, params };
            f.save(&saved)?;
            f
        }
    };
    let jurors = dev_jurors(seed);
    for j in &jurors {
        if EmbeddedEvm::balance(&evm, *j)?.is_zero() {
            evm.fund(*j, funds)?;
        }
    }
    let mut setup = ChainSetup::assemble(backend, file, accounts, true);
    setup.jurors = jurors;
    setup.dev = Some(evm);
    Ok(setup)
}

/// Without `embedded-chain`: `Unsupported`.
#[cfg(not(feature = "embedded-chain"))]
pub async fn open_embedded(_dir: &Path, _seed: &str, _params: Params) -> Result<ChainSetup> {
    Err(Error::new(
        ErrorKind::Unsupported,
        "built without `embedded-chain`: use a JSON-RPC chain",
    ))
}

/// The private keys (hex, `0x` optional) of the parties on a JSON-RPC
/// chain. The admin's is optional: given, the contracts are deployed on
/// first use and the setup has an [`Attestor`]; without it a deployment
/// must have been saved already (made with the admin key once). The same
/// key may serve several parties, though then payouts and refunds land in
/// one account.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PartyKeys {
    /// The chain admin (deployer, attestor).
    pub admin: Option<String>,
    /// The scheduler (SCHEDULER and REGISTRAR).
    pub scheduler: String,
    /// The node operator.
    pub worker: String,
    /// The submitter of jobs.
    pub submitter: String,
    /// The verifier (challenger).
    pub verifier: String,
}

impl std::fmt::Debug for PartyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("PartyKeys")
            .field("admin", &self.admin.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// The roles of a keys text, in the order [`PartyKeys::parse`] names them.
pub const KEY_ROLES: [&str; 5] = ["admin", "scheduler", "worker", "submitter", "verifier"];

impl PartyKeys {
    /// Parses keys text (e.g. `arthai`'s `--rpc-keys-file`, `--rpc-keys` or
    /// `$ARTHA_RPC_KEYS`) into one private key per party:
    ///
    /// ```text
    /// # comments start with `#`
    /// admin=0xac09…ff80       # optional: deploys the contracts, attests nodes
    /// scheduler=0x59c6…690d   # assigns jobs, registers trained models
    /// worker=0x5de4…365a      # the node operator: commits, is paid
    /// submitter=0x7c85…07a6   # submits jobs, locks escrow, is refunded
    /// verifier=0x47e1…926a    # challenges committed work
    /// ```
    ///
    /// One `role=key` entry per line (or separated by commas, as
    /// `--rpc-keys` takes them); white space around entries and `=` is
    /// ignored; a key is 64 hex digits, `0x` optional. `admin` may be left out
    /// (then the contracts must already be deployed for this endpoint, and the
    /// engine cannot certify nodes); every other role is required. An unknown
    /// role, a role given twice, a missing role, an entry without `=` or a key
    /// that is not 64 hex digits is invalid input naming `field`, the `role`
    /// and (in `file`) the file — never the key.
    pub fn parse(field: &str, file: Option<&Path>, text: &str) -> Result<PartyKeys> {
        let fail = |role: Option<&str>, msg: String| {
            let mut e = Error::invalid(field, msg);
            if let Some(r) = role {
                e = e.with_context("role", r.to_string());
            }
            if let Some(f) = file {
                e = e.with_context("file", f.display().to_string());
            }
            e
        };
        let mut found: [Option<String>; 5] = Default::default();
        let entries = text
            .lines()
            .map(|l| l.split_once('#').map_or(l, |(before, _)| before))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (n, entry) in entries.enumerate() {
            let Some((role, key)) = entry.split_once('=') else {
                return Err(fail(
                    None,
                    format!(
                        "entry {} is not `role=key`: give one key per role ({}), e.g. \
                         `worker=0x…` (the three-key list of earlier versions is no longer read)",
                        n + 1,
                        KEY_ROLES.join(", ")
                    ),
                ));
            };
            let (role, key) = (role.trim(), key.trim());
            let Some(i) = KEY_ROLES.iter().position(|r| *r == role) else {
                // Shown only when it looks like a role name, not a stray key.
                let shown = if role.len() <= 32 && role.chars().all(|c| c.is_ascii_alphabetic()) {
                    role
                } else {
                    "?"
                };
                return Err(fail(
                    Some(shown),
                    format!(
                        "unknown role `{shown}` (the roles are {})",
                        KEY_ROLES.join(", ")
                    ),
                ));
            };
            if found[i].is_some() {
                return Err(fail(Some(role), format!("the `{role}` key is given twice")));
            }
            let hex = key.strip_prefix("0x").unwrap_or(key);
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(fail(
                    Some(role),
                    format!("the `{role}` key is not a private key (64 hex digits, `0x` optional)"),
                ));
            }
            found[i] = Some(key.to_string());
        }
        let [admin, scheduler, worker, submitter, verifier] = found;
        let need = |role: &str, k: Option<String>| {
            k.ok_or_else(|| {
                fail(
                    Some(role),
                    format!("no key for the `{role}` role (give `{role}=0x…`)"),
                )
            })
        };
        Ok(PartyKeys {
            admin,
            scheduler: need("scheduler", scheduler)?,
            worker: need("worker", worker)?,
            submitter: need("submitter", submitter)?,
            verifier: need("verifier", verifier)?,
        })
    }
}

impl PartyKeys {
    /// Each key with its role's name, the admin's first when given.
    pub fn named(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::with_capacity(5);
        if let Some(a) = &self.admin {
            out.push(("admin", a.as_str()));
        }
        out.extend([
            ("scheduler", self.scheduler.as_str()),
            ("worker", self.worker.as_str()),
            ("submitter", self.submitter.as_str()),
            ("verifier", self.verifier.as_str()),
        ]);
        out
    }
}

/// Opens the chain at `url` with `keys`: the contracts saved for this
/// endpoint and scheduler under `dir` (`deployment-rpc-<tag>.json`) while
/// their code is still there (a restarted anvil forgets everything), else
/// deployed with `params` by the admin key and saved — or, without the
/// admin key, `NotFound`. The scheduler must hold SCHEDULER and REGISTRAR
/// (`PermissionDenied` otherwise, unless the admin key is given: then they
/// are granted). An invalid key is `InvalidInput` naming its role
/// (`field` = `keys.<role>`).
#[cfg(feature = "evm")]
pub async fn open_rpc(
    url: &str,
    keys: &PartyKeys,
    params: Params,
    dir: &Path,
) -> Result<ChainSetup> {
    use super::rpc::{RpcChain, key_address};
    let named = keys.named();
    let mut addr = std::collections::BTreeMap::new();
    for (role, key) in &named {
        addr.insert(*role, key_address(&format!("keys.{role}"), key)?);
    }
    let get = |role: &str| {
        addr.get(role)
            .copied()
            .ok_or_else(|| Error::new(ErrorKind::Internal, format!("no {role} key after parsing")))
    };
    let accounts = PartyAccounts {
        admin: addr.get("admin").copied(),
        scheduler: get("scheduler")?,
        worker: get("worker")?,
        submitter: get("submitter")?,
        verifier: get("verifier")?,
    };
    let key_refs: Vec<&str> = named.iter().map(|(_, k)| *k).collect();
    let backend: Arc<dyn EvmBackend> = Arc::new(RpcChain::connect(url, &key_refs).await?);
    let tag = hex::encode(&keccak256(format!("{url} {}", accounts.scheduler).as_bytes())[..8]);
    let saved = dir.join(format!("deployment-rpc-{tag}.json"));
    let scheduler_view = |f: &DeploymentFile| {
        ArthaContracts::attach(&backend, f.deployment, accounts.scheduler, f.params)
    };
    let mut file = None;
    if let Some(f) = DeploymentFile::load(&saved)? {
        // A read that fails for want of code means the chain was reset.
        match scheduler_view(&f).has_party_roles(&accounts.roles()).await {
            Ok(true) => {
                scheduler_view(&f)
                    .check_version()
                    .await
                    .map_err(|e| e.with_context("path", saved.display().to_string()))?;
                file = Some(f);
            }
            Ok(false) => match accounts.admin {
                Some(admin) => {
                    Attestor::attach(&backend, f.deployment, admin, f.params)
                        .grant_party_roles(&accounts.roles())
                        .await?;
                    file = Some(f);
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        "the scheduler's account lacks the SCHEDULER and REGISTRAR roles on \
                         this deployment: give the admin key once to grant them",
                    )
                    .with_context("account", accounts.scheduler.to_string())
                    .with_context("path", saved.display().to_string()));
                }
            },
            Err(e) if e.is_retryable() => return Err(e),
            Err(_) => {}
        }
    }
    let file = match (file, accounts.admin) {
        (Some(f), _) => f,
        (None, Some(admin)) => {
            let deployment =
                ArthaContracts::deploy(&backend, admin, &accounts.roles(), params).await?;
            let f = DeploymentFile { deployment, params };
            f.save(&saved)?;
            f
        }
        (None, None) => {
            return Err(Error::new(
                ErrorKind::NotFound,
                "no deployment of the Artha contracts is known for this endpoint and scheduler: \
                 give the admin key once to deploy them, or put their deployment file here",
            )
            .with_context("path", saved.display().to_string()));
        }
    };
    Ok(ChainSetup::assemble(backend, file, accounts, true))
}

/// Without `evm`: `Unsupported`.
#[cfg(not(feature = "evm"))]
pub async fn open_rpc(
    _url: &str,
    _keys: &PartyKeys,
    _params: Params,
    _dir: &Path,
) -> Result<ChainSetup> {
    Err(Error::new(
        ErrorKind::Unsupported,
        "built without `evm`: no JSON-RPC chain",
    ))
}

#[cfg(all(test, feature = "embedded-chain"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use artha_core::{Amount, ProofChain};

    const SEED: &str = "did:key:z6MkTest";

    fn million() -> Amount {
        Amount::from_arth(u128::from(DEV_FUNDS_ARTH)).unwrap()
    }

    #[tokio::test]
    async fn embedded_parties_have_their_own_funded_accounts_and_the_engine_attests() {
        let tmp = tempfile::tempdir().unwrap();
        let s = open_embedded(tmp.path(), SEED, Params::default())
            .await
            .unwrap();
        let a = s.accounts;
        let admin = a.admin.unwrap();
        let mut all = vec![admin, a.scheduler, a.worker, a.submitter, a.verifier];
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 5, "five distinct accounts");
        assert_eq!(a, dev_accounts(SEED));
        assert_ne!(dev_accounts("another home"), a);
        assert_eq!(s.attestor.as_ref().map(Attestor::address), Some(admin));
        for party in Party::ALL {
            let c = s.parties.get(party);
            assert_eq!(c.account(), a.of(party).to_string(), "{party}");
            assert_eq!(c.balance().await.unwrap(), million(), "{party}");
            assert_eq!(s.contracts(party).address(), a.of(party));
        }
        let worker = s.contracts(Party::Worker);
        assert!(worker.has_party_roles(&a.roles()).await.unwrap());
        assert!(
            !worker
                .has_role(s.deployment.jobs, "SCHEDULER", admin)
                .await
                .unwrap()
        );
        let text = std::fs::read_to_string(tmp.path().join("deployment.json")).unwrap();
        assert!(!text.contains("accounts"), "{text}");
        let deployment = s.deployment;
        drop(s);

        // Reopened: the same contracts, nothing funded again.
        let s = open_embedded(tmp.path(), SEED, Params::default())
            .await
            .unwrap();
        assert_eq!(s.deployment, deployment);
        assert_eq!(s.parties.submitter.balance().await.unwrap(), million());
        assert!(s.dev.is_some());
    }

    #[tokio::test]
    async fn a_deployment_of_the_previous_version_gets_its_scheduler_roles() {
        let tmp = tempfile::tempdir().unwrap();
        let a = dev_accounts(SEED);
        let admin = a.admin.unwrap();
        let funds = U256::from(10u128.pow(24));
        let deployment = {
            // What the previous version did: three funded accounts, the
            // admin holding SCHEDULER and REGISTRAR.
            let evm = Arc::new(EmbeddedEvm::open(&tmp.path().join("evm")).unwrap());
            for who in [admin, a.worker, a.submitter] {
                evm.fund(who, funds).unwrap();
            }
            let params = Params::default();
            let d = ArthaContracts::deploy(&evm, admin, &Roles { scheduler: admin }, params)
                .await
                .unwrap();
            let old = serde_json::json!({
                "deployment": d,
                "accounts": {"admin": admin, "operator": a.worker, "submitter": a.submitter},
                "params": params,
            });
            std::fs::write(tmp.path().join("deployment.json"), old.to_string()).unwrap();
            d
        };
        let s = open_embedded(tmp.path(), SEED, Params::default())
            .await
            .unwrap();
        assert_eq!(s.deployment, deployment, "the same contracts");
        let worker = s.contracts(Party::Worker);
        assert!(worker.has_party_roles(&a.roles()).await.unwrap());
        // The new accounts are funded; the old ones keep their balances.
        assert_eq!(s.parties.verifier.balance().await.unwrap(), million());
        assert_eq!(s.parties.scheduler.balance().await.unwrap(), million());
        assert_eq!(
            s.parties.worker.balance().await.unwrap(),
            Amount::from_wei(10u128.pow(24))
        );
    }
}
