//! The chain suite: the Artha contracts on an [`EvmBackend`], used by their
//! parties.
//!
//! The implementation under test is the backend (the embedded EVM, an RPC
//! chain such as anvil, or yours): [`deploy`] puts the contracts on it as
//! the admin (granting the scheduler its roles), attaches one client per
//! party ([`Parties`]: the admin's [`Attestor`], and a scheduler, worker,
//! submitter and verifier client, each sending from its own account), has
//! the worker register the suite's node and the attestor certify it. The
//! scenarios then drive the deployment through [`ProofChain`] and the
//! contract bindings, each write sent by the party the contracts expect it
//! from, and check that the others are refused (`PermissionDenied`). They
//! share one deployment and must run in [`SCENARIOS`] order
//! ([`disputes_by_jury`] slashes the node), which is what [`run_all`]
//! does.
//!
//! The backend must support `increase_time` (a development chain) and
//! sign for the five [`Accounts`], which must hold funds (a few dozen ARTH
//! each; anvil's development accounts do, the embedded EVM is funded with
//! `EmbeddedEvm::fund`, see [`FUNDING`]).
//!
//! After [`run_all`], job [`SETTLED_JOB`] is `Finalized`, [`VALID_JOB`]
//! `Committed` (its challenge rejected by the jury), [`SLASHED_JOB`]
//! `Slashed`, [`FAILED_JOB`] `Failed` (a restart test can check that the
//! chain kept them), and [`node`] is slashed for good: no account can
//! certify it again.

use alloy_primitives::{Address, B256, U256};
use artha_core::{
    Amount, Blake3Digest, ChainJobStatus, ChainSubmission, Challenge, Cid, Commitment, DatasetId,
    DatasetRegistration, Error, ErrorKind, JobId, JobTree, ModelId, NodeId, ProofChain, Receipt,
    Registry, Result, StepRecord,
};
use std::sync::Arc;

use crate::chain::EvmBackend;
use crate::chain::contracts::{ArthaContracts, Attestor, Params, Roles, Vote, revert_name, word16};
use crate::chain::parties::ChainParties;
use crate::chain::setup::PartyAccounts;

/// The rate the suite's node charges: 0.001 ARTH per GPU-second, in wei;
/// also the price of one step (one GPU-second per step).
pub const RATE: u128 = 1_000_000_000_000_000;

/// The most steps a suite job may commit (what its spec implies).
pub const MAX_STEPS: u64 = 300;

/// What to fund each account with on a chain that mints (1000 ARTH).
pub const FUNDING: U256 = U256::from_limbs([0x35c9_adc5_dea0_0000, 0x36, 0, 0]);

/// The job [`job_settles`] runs to finalization.
pub const SETTLED_JOB: [u8; 16] = [7; 16];
/// The job [`proof_chain_contract`] fails after assignment.
pub const FAILED_JOB: [u8; 16] = [9; 16];
/// The job [`disputes_by_jury`] gets slashed.
pub const SLASHED_JOB: [u8; 16] = [8; 16];
/// The honest job [`disputes_by_jury`] defends against a false challenge.
pub const VALID_JOB: [u8; 16] = [6; 16];

/// `n` ARTH.
pub fn arth(n: u128) -> Amount {
    Amount::from_arth(n).expect("a small ARTH amount")
}

/// The node the suite registers and assigns jobs to.
pub fn node() -> NodeId {
    NodeId::from_bytes([0x4e; 16])
}

/// The accounts of a suite run (the backend must sign for each; the
/// caller funds the five parties, the admin funds the jurors): the chain
/// admin (deployer, attestor), the four parties of a job, and three
/// jurors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounts {
    /// Deploys the contracts, certifies nodes, resolves challenges.
    pub admin: Address,
    /// Assigns jobs, fails unrun ones, registers trained models.
    pub scheduler: Address,
    /// Operates the node: registers it, commits, is paid.
    pub worker: Address,
    /// Submits jobs and locks their escrow; is refunded.
    pub submitter: Address,
    /// Challenges committed work (and finalizes, as anyone may).
    pub verifier: Address,
    /// Staked verifiers drawn to judge disputes.
    pub jurors: [Address; 3],
}

impl Accounts {
    /// The five accounts: admin, scheduler, worker, submitter, verifier.
    pub fn all(&self) -> [Address; 5] {
        [
            self.admin,
            self.scheduler,
            self.worker,
            self.submitter,
            self.verifier,
        ]
    }

    /// The suite's accounts of a chain setup's, which must include the
    /// admin's (`None` without it: the suite deploys).
    pub fn from_party_accounts(p: &PartyAccounts, jurors: [Address; 3]) -> Option<Self> {
        Some(Accounts {
            admin: p.admin?,
            scheduler: p.scheduler,
            worker: p.worker,
            submitter: p.submitter,
            verifier: p.verifier,
            jurors,
        })
    }
}

impl From<Accounts> for PartyAccounts {
    fn from(a: Accounts) -> Self {
        PartyAccounts {
            admin: Some(a.admin),
            scheduler: a.scheduler,
            worker: a.worker,
            submitter: a.submitter,
            verifier: a.verifier,
        }
    }
}

/// Five distinct accounts (admin `0xad…`, scheduler `0x5c…`, worker
/// `0x0b…`, submitter `0x5b…`, verifier `0x7e…`) for a chain that accepts
/// any sender (the embedded EVM).
pub fn dev_accounts() -> Accounts {
    Accounts {
        admin: addr(0xad),
        scheduler: addr(0x5c),
        worker: addr(0x0b),
        submitter: addr(0x5b),
        verifier: addr(0x7e),
        jurors: [addr(0x11), addr(0x12), addr(0x13)],
    }
}

/// One deployment as its parties use it: the admin's attestor, and one
/// client per party, each acting as its own account.
#[derive(Debug, Clone)]
pub struct Parties<B> {
    /// The admin: certifies and revokes nodes, resolves challenges.
    pub attestor: Attestor<B>,
    /// The scheduler's client.
    pub scheduler: ArthaContracts<B>,
    /// The worker's (node operator's) client.
    pub worker: ArthaContracts<B>,
    /// The submitter's client.
    pub submitter: ArthaContracts<B>,
    /// The verifier's client.
    pub verifier: ArthaContracts<B>,
    /// The jurors' clients.
    pub jurors: Vec<ArthaContracts<B>>,
}

impl<B: EvmBackend + Clone> Parties<B> {
    /// The five accounts.
    pub fn accounts(&self) -> Accounts {
        Accounts {
            admin: self.attestor.address(),
            scheduler: self.scheduler.address(),
            worker: self.worker.address(),
            submitter: self.submitter.address(),
            verifier: self.verifier.address(),
            jurors: [0, 1, 2].map(|i| self.jurors[i].address()),
        }
    }

    /// An [`Attestor`] handle acting as `account`: the admin's is
    /// [`Parties::attestor`]; any other account's is refused
    /// (`PermissionDenied`) by the contracts.
    pub fn attestor_as(&self, account: Address) -> Attestor<B> {
        Attestor::attach(
            self.worker.backend().clone(),
            self.worker.deployment,
            account,
            self.worker.params,
        )
    }
}

impl<B: EvmBackend + Clone + 'static> Parties<B> {
    /// The four party clients as one [`ProofChain`] routing each write to
    /// its party (as the engine uses them).
    pub fn chain_parties(&self) -> ChainParties {
        ChainParties {
            submitter: Arc::new(self.submitter.clone()),
            scheduler: Arc::new(self.scheduler.clone()),
            worker: Arc::new(self.worker.clone()),
            verifier: Arc::new(self.verifier.clone()),
        }
    }
}

/// `n` step records, distinct per `salt`.
pub fn records(n: u64, salt: &str) -> Vec<StepRecord> {
    (1..=n)
        .map(|s| {
            let d = |k: &str| Blake3Digest::of(format!("{k}-{s}-{salt}").as_bytes());
            StepRecord {
                step: s,
                epoch: 0,
                loss: 1.0 / s as f64,
                grad_digest: d("g"),
                weight_digest: d("w"),
                batch_digest: d("b"),
            }
        })
        .collect()
}

/// A submission of `job` at [`RATE`] per step for at most [`MAX_STEPS`].
pub fn submission(job: JobId, budget: Amount) -> ChainSubmission {
    ChainSubmission {
        job_id: job,
        spec: Cid::of(b"spec"),
        max_steps: MAX_STEPS,
        price_per_step: Amount::from_wei(RATE),
        budget,
    }
}

/// The commitment of `job` over `tree`.
pub fn commitment(job: JobId, tree: &JobTree, steps: u64) -> Commitment {
    Commitment {
        job_id: job,
        job_root: tree.root(),
        window: tree.window_size(),
        windows: tree.window_roots().len() as u32,
        steps,
        final_weights: Blake3Digest::of(b"final"),
        manifest: Cid::of(b"manifest"),
    }
}

/// The account a mined transaction was sent from.
///
/// # Panics
/// If the backend does not know the transaction.
pub async fn sender<B: EvmBackend>(c: &ArthaContracts<B>, r: &Receipt) -> Address {
    c.backend()
        .receipt(B256::from(*r.tx_hash.as_bytes()))
        .await
        .expect("receipt failed")
        .expect("the transaction is mined")
        .from
}

/// Asserts that `r` failed with kind `kind` and the contract error `name`;
/// returns the error.
///
/// # Panics
/// If `r` succeeded, or failed otherwise.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(r: Result<T>, kind: ErrorKind, name: &str) -> Error {
    let e = r.expect_err(&format!("should be refused with {name}"));
    assert_eq!(e.kind(), kind, "{e} {:?}", e.context());
    assert_eq!(revert_name(&e), Some(name), "{e}");
    e
}

/// Every scenario of the suite, in the order they must run (on one
/// deployment, after [`deploy`]).
pub const SCENARIOS: &[&str] = &[
    "parties_and_roles",
    "registries_and_lineage",
    "job_settles",
    "proof_chain_contract",
    "disputes_by_jury",
];

/// Deploys the contracts on `backend` as `accounts.admin` with the
/// scheduler's roles granted to `accounts.scheduler` (all funded by the
/// caller) and attaches a client per party; the worker registers [`node`]
/// with a stake of 1 ARTH at [`RATE`] — not eligible until the attestor
/// certifies it, which it then does.
pub async fn deploy<B: EvmBackend + Clone>(backend: B, accounts: Accounts) -> Parties<B> {
    let params = Params::default();
    let d = ArthaContracts::deploy(
        &backend,
        accounts.admin,
        &Roles {
            scheduler: accounts.scheduler,
        },
        params,
    )
    .await
    .expect("deploy the contracts");
    let worker = ArthaContracts::attach(backend.clone(), d, accounts.worker, params);
    // The admin funds the jurors (a plain transfer, on any chain).
    for j in accounts.jurors {
        backend
            .send(
                accounts.admin,
                j,
                alloy_primitives::Bytes::new(),
                U256::from(5 * 10u128.pow(18)),
            )
            .await
            .expect("fund a juror");
    }
    let p = Parties {
        attestor: Attestor::attach(backend, d, accounts.admin, params),
        scheduler: worker.as_account(accounts.scheduler),
        submitter: worker.as_account(accounts.submitter),
        verifier: worker.as_account(accounts.verifier),
        jurors: accounts
            .jurors
            .iter()
            .map(|j| worker.as_account(*j))
            .collect(),
        worker,
    };
    let r = p
        .worker
        .register_node(
            &node(),
            8,
            81_920,
            Amount::from_wei(RATE),
            "local",
            &["mlp"],
            arth(1),
        )
        .await
        .expect("register_node failed");
    assert_eq!(sender(&p.worker, &r).await, accounts.worker);
    assert!(
        !p.worker
            .node_eligible(&node())
            .await
            .expect("node_eligible failed"),
        "registered is not certified"
    );
    let r = p.attestor.certify(&node()).await.expect("certify failed");
    assert_eq!(sender(&p.worker, &r).await, accounts.admin);
    assert!(
        p.worker
            .node_eligible(&node())
            .await
            .expect("node_eligible failed"),
        "certified and staked is eligible"
    );
    p
}

/// Deploys (see [`deploy`]) and runs every scenario of [`SCENARIOS`] in
/// order ([`proof_chain_contract`] on [`Parties::chain_parties`]); returns
/// the deployment's parties.
///
/// # Panics
/// On the first failed check, naming the scenario.
pub async fn run_all<B: EvmBackend + Clone + 'static>(
    backend: B,
    accounts: Accounts,
) -> Parties<B> {
    let mut p = None;
    super::scenario("chain", "deploy", async {
        p = Some(deploy(backend, accounts).await);
    })
    .await;
    let p = p.expect("deploy returned a deployment");
    super::scenario("chain", "parties_and_roles", parties_and_roles(&p)).await;
    super::scenario(
        "chain",
        "registries_and_lineage",
        registries_and_lineage(&p),
    )
    .await;
    super::scenario("chain", "job_settles", job_settles(&p)).await;
    let chain = p.chain_parties();
    super::scenario(
        "chain",
        "proof_chain_contract",
        proof_chain_contract(&chain, &node()),
    )
    .await;
    super::scenario("chain", "disputes_by_jury", disputes_by_jury(&p)).await;
    p
}

/// Each client sends as its own account; the scheduler holds SCHEDULER
/// (jobs) and REGISTRAR (models), the admin ATTESTOR, nobody else (no
/// account holds an arbiter role: juries decide disputes); only the attestor certifies (the worker is refused:
/// `PermissionDenied`, naming the role and the account); a node registers
/// once (`AlreadyExists`); an unknown node is `NotFound`; [`node`]'s
/// standing names the worker as its operator.
pub async fn parties_and_roles<B: EvmBackend + Clone>(p: &Parties<B>) {
    let a = p.accounts();
    for (c, who) in [
        (&p.scheduler, a.scheduler),
        (&p.worker, a.worker),
        (&p.submitter, a.submitter),
        (&p.verifier, a.verifier),
    ] {
        assert_eq!(c.address(), who);
        assert_eq!(c.account(), who.to_string());
        assert_eq!(
            c.balance().await.expect("balance failed"),
            c.balance_of(who).await.expect("balance_of failed")
        );
    }
    let (w, d) = (&p.worker, p.worker.deployment);
    for (contract, role, who, holds) in [
        (d.jobs, "SCHEDULER", a.scheduler, true),
        (d.models, "REGISTRAR", a.scheduler, true),
        (d.jobs, "SCHEDULER", a.admin, false),
        (d.jobs, "SCHEDULER", a.worker, false),
        (d.nodes, "ATTESTOR", a.worker, false),
        (d.nodes, "ATTESTOR", a.admin, true),
        (d.proofs, "ARBITER", a.admin, false),
        (d.proofs, "ARBITER", a.verifier, false),
    ] {
        assert_eq!(
            w.has_role(contract, role, who)
                .await
                .expect("has_role failed"),
            holds,
            "{who} holds {role}: {holds}"
        );
    }
    assert!(
        w.has_party_roles(&Roles {
            scheduler: a.scheduler
        })
        .await
        .expect("has_party_roles failed")
    );

    // Only the attestor certifies: not the worker, for its own node.
    let e = refused(
        p.attestor_as(a.worker).certify(&node()).await,
        ErrorKind::PermissionDenied,
        "Unauthorized",
    );
    assert_eq!(e.context_value("role"), Some("ATTESTOR"), "{e}");
    assert_eq!(
        e.context_value("account"),
        Some(a.worker.to_string().as_str())
    );
    refused(
        w.register_node(
            &node(),
            8,
            81_920,
            Amount::from_wei(RATE),
            "local",
            &["mlp"],
            arth(1),
        )
        .await,
        ErrorKind::AlreadyExists,
        "NodeExists",
    );
    let e = refused(
        Registry::node(w, &NodeId::from_bytes([9; 16])).await,
        ErrorKind::NotFound,
        "UnknownNode",
    );
    assert!(e.context_value("node_id").is_some(), "{e}");
    let standing = Registry::node(w, &node()).await.expect("node failed");
    assert_eq!(standing.operator, a.worker.to_string());
    assert!(standing.eligible && standing.certified, "{standing:?}");
}

/// The scheduler registers a model trained by job `job` (it alone holds
/// REGISTRAR).
async fn register_trained<B: EvmBackend>(
    c: &ArthaContracts<B>,
    model: &ModelId,
    parent: &ModelId,
    ds: &DatasetId,
    job: &JobId,
) -> Result<Receipt> {
    c.register_model(
        model,
        &Cid::of(b"w1"),
        "mlp",
        Some(ds),
        Default::default(),
        "v1",
        Some(parent),
        Some(job),
    )
    .await
}

/// The submitter registers its dataset and model, once each
/// (`AlreadyExists`: `DatasetExists`, `ModelExists`); a dataset reads
/// back as registered, with its licence or none (an unknown one is
/// `NotFound`, naming it); a model trained by a
/// job registers only from the scheduler (REGISTRAR: the submitter and the
/// worker are refused, `PermissionDenied`); a model's lineage runs back
/// through its parents; an unknown model or parent is `NotFound`.
pub async fn registries_and_lineage<B: EvmBackend + Clone>(p: &Parties<B>) {
    let a = p.accounts();
    let (sched, worker, subm) = (&p.scheduler, &p.worker, &p.submitter);
    let job = JobId::from_bytes(SETTLED_JOB);
    let ds = DatasetId::from_bytes([1; 16]);
    let r = subm
        .register_dataset(&ds, &Cid::of(b"data"), None, 1024, "tabular")
        .await
        .expect("register_dataset failed");
    assert_eq!(sender(subm, &r).await, a.submitter);
    refused(
        subm.register_dataset(&ds, &Cid::of(b"data"), None, 1024, "tabular")
            .await,
        ErrorKind::AlreadyExists,
        "DatasetExists",
    );
    // Read back as registered: without a licence (zero on chain) …
    assert_eq!(
        Registry::dataset(worker, &ds)
            .await
            .expect("dataset failed"),
        DatasetRegistration {
            id: ds,
            content: Cid::of(b"data"),
            size: 1024,
            tags: "tabular".into(),
            license: None,
        }
    );
    // … and with one, registered and read through the `Registry` trait.
    let licensed = DatasetRegistration {
        id: DatasetId::from_bytes([5; 16]),
        content: Cid::of(b"corpus"),
        size: 1 << 40,
        tags: "nlp,english,gpt".into(),
        license: Some(Cid::of(b"licence text")),
    };
    let r = Registry::register_dataset(subm, &licensed)
        .await
        .expect("register_dataset (licensed) failed");
    assert_eq!(sender(subm, &r).await, a.submitter);
    assert_eq!(
        Registry::dataset(worker, &licensed.id)
            .await
            .expect("dataset failed"),
        licensed
    );
    let e = refused(
        Registry::dataset(worker, &DatasetId::from_bytes([9; 16])).await,
        ErrorKind::NotFound,
        "UnknownDataset",
    );
    assert_eq!(
        e.context_value("dataset_id"),
        Some(DatasetId::from_bytes([9; 16]).to_string().as_str()),
        "{e}"
    );
    let (m0, m1) = (ModelId::from_bytes([2; 16]), ModelId::from_bytes([3; 16]));
    subm.register_model(
        &m0,
        &Cid::of(b"w0"),
        "mlp",
        Some(&ds),
        Default::default(),
        "v0",
        None,
        None,
    )
    .await
    .expect("register_model failed");
    assert_eq!(
        subm.model_provenance(&m0)
            .await
            .expect("model_provenance failed")
            .owner,
        a.submitter
    );
    for c in [subm, worker] {
        let e = refused(
            register_trained(c, &m1, &m0, &ds, &job).await,
            ErrorKind::PermissionDenied,
            "Unauthorized",
        );
        assert_eq!(e.context_value("role"), Some("REGISTRAR"), "{e}");
    }
    let r = register_trained(sched, &m1, &m0, &ds, &job)
        .await
        .expect("register_model (trained) failed");
    assert_eq!(sender(sched, &r).await, a.scheduler);
    let prov = sched
        .model_provenance(&m1)
        .await
        .expect("model_provenance failed");
    assert_eq!(prov.owner, a.scheduler);
    assert_eq!(prov.job, word16(job.as_bytes()));
    refused(
        register_trained(sched, &m1, &m0, &ds, &job).await,
        ErrorKind::AlreadyExists,
        "ModelExists",
    );
    assert_eq!(
        sched.lineage(&m1).await.expect("lineage failed"),
        vec![word16(m1.as_bytes()), word16(m0.as_bytes())]
    );
    refused(
        Registry::lineage(worker, &ModelId::from_bytes([9; 16])).await,
        ErrorKind::NotFound,
        "UnknownModel",
    );
    refused(
        subm.register_model(
            &ModelId::from_bytes([4; 16]),
            &Cid::of(b"w"),
            "mlp",
            None,
            Default::default(),
            "v",
            Some(&ModelId::from_bytes([9; 16])),
            None,
        )
        .await,
        ErrorKind::NotFound,
        "UnknownParent",
    );
}

/// Job [`SETTLED_JOB`] from submission to payout: an unknown job is
/// `NotFound`; a budget below the estimate and an unfunded job revert and
/// move nothing; the submitter escrows the job once (`AlreadyExists`);
/// only the scheduler assigns (the others: `PermissionDenied`);
/// commitments over the maximum or malformed revert, and only the
/// assigned node's operator commits (`PermissionDenied`), once;
/// finalizing waits for the challenge period; then anyone (the verifier)
/// finalizes, the worker is paid its committed steps × the price fixed at
/// submission, the rest is refunded to the submitter, and the escrow
/// closes.
pub async fn job_settles<B: EvmBackend + Clone>(p: &Parties<B>) {
    let a = p.accounts();
    let (sched, worker, subm, verif) = (&p.scheduler, &p.worker, &p.submitter, &p.verifier);
    let job = JobId::from_bytes(SETTLED_JOB);
    // Submission: bad inputs are reverted with named errors and change nothing.
    let sub0 = subm.balance().await.expect("balance failed");
    refused(
        subm.submit_job(&submission(
            job,
            Amount::from_wei(u128::from(MAX_STEPS) * RATE - 1),
        ))
        .await,
        ErrorKind::Reverted,
        "BudgetBelowEstimate",
    );
    refused(
        subm.submit_job(&submission(job, Amount::ZERO)).await,
        ErrorKind::Reverted,
        "Unfunded",
    );
    assert_eq!(
        subm.balance().await.expect("balance failed"),
        sub0,
        "reverts move nothing"
    );
    refused(
        worker.job_status(&job).await,
        ErrorKind::NotFound,
        "UnknownJob",
    );
    let r = subm
        .submit_job(&submission(job, arth(10)))
        .await
        .expect("submit_job failed");
    assert!(r.block_number > 0 && r.gas_used > 21_000, "{r:?}");
    assert_eq!(sender(subm, &r).await, a.submitter);
    assert_eq!(
        worker.job_status(&job).await.expect("job_status failed"),
        ChainJobStatus::Submitted
    );
    assert_eq!(
        worker.escrow_of(&job).await.expect("escrow_of failed"),
        (arth(10), false)
    );
    refused(
        subm.submit_job(&submission(job, arth(10))).await,
        ErrorKind::AlreadyExists,
        "JobExists",
    );

    // Assignment: the scheduler's alone.
    for c in [worker, subm, verif] {
        let e = refused(
            c.assign(&job, &node()).await,
            ErrorKind::PermissionDenied,
            "Unauthorized",
        );
        assert_eq!(e.context_value("role"), Some("SCHEDULER"), "{e}");
    }
    let r = sched.assign(&job, &node()).await.expect("assign failed");
    assert_eq!(sender(sched, &r).await, a.scheduler);
    assert_eq!(
        worker.job_status(&job).await.expect("job_status failed"),
        ChainJobStatus::Assigned
    );
    assert_eq!(
        worker.job_node(&job).await.expect("job_node failed"),
        Some(node())
    );

    // Commitment: the assigned node's operator alone.
    let recs = records(250, "honest");
    let tree = JobTree::build(&recs, 100).expect("build failed");
    let com = commitment(job, &tree, 250);
    let mut bad = com.clone();
    bad.steps = MAX_STEPS + 1;
    bad.windows = 4;
    refused(
        worker.commit(&bad).await,
        ErrorKind::Reverted,
        "StepsOverMax",
    );
    bad = com.clone();
    bad.windows = 9;
    refused(
        worker.commit(&bad).await,
        ErrorKind::Reverted,
        "MalformedRoot",
    );
    for c in [subm, sched] {
        refused(
            c.commit(&com).await,
            ErrorKind::PermissionDenied,
            "NotAssignedNode",
        );
    }
    let r = worker.commit(&com).await.expect("commit failed");
    assert_eq!(sender(worker, &r).await, a.worker);
    refused(
        worker.commit(&com).await,
        ErrorKind::Reverted,
        "AlreadyCommitted",
    );
    // The audit seed is a block hash after the commit's: not there yet.
    refused(
        verif.audit_seed(&job).await,
        ErrorKind::Conflict,
        "SeedNotReady",
    );
    // Too early: a conflict (the same write succeeds later).
    refused(
        worker.finalize(&job).await,
        ErrorKind::Conflict,
        "ChallengePeriodActive",
    );

    // Settlement after the challenge period: committed steps × price to
    // the node (its clock is not evidence). Anyone may finalize: the verifier does, so the worker's and the
    // submitter's balances move by the payout and the refund exactly.
    worker
        .advance_time(3_601)
        .await
        .expect("advance_time failed");
    // Now the seed exists, and the contract draws the windows the engine
    // derives from it.
    let seed = verif.audit_seed(&job).await.expect("audit_seed failed");
    assert_eq!(
        verif
            .audit_windows(&job, 2)
            .await
            .expect("audit_windows failed"),
        artha_core::audit::audit_windows(&seed, job.as_bytes(), 3, 2)
    );
    let (op0, sub1) = (
        worker.balance().await.expect("balance failed"),
        subm.balance().await.expect("balance failed"),
    );
    let r = verif.finalize(&job).await.expect("finalize failed");
    assert_eq!(sender(verif, &r).await, a.verifier);
    assert_eq!(
        worker.job_status(&job).await.expect("job_status failed"),
        ChainJobStatus::Finalized
    );
    let paid = worker
        .balance()
        .await
        .expect("balance failed")
        .checked_sub(op0)
        .expect("checked_sub failed");
    let refunded = subm
        .balance()
        .await
        .expect("balance failed")
        .checked_sub(sub1)
        .expect("checked_sub failed");
    assert_eq!(paid, "0.25 ARTH".parse().expect("parse failed"));
    assert_eq!(
        paid.checked_add(refunded).expect("checked_add failed"),
        arth(10),
        "escrow in = payout + refund"
    );
    assert!(
        worker.escrow_of(&job).await.expect("escrow_of failed").1,
        "escrow closed"
    );
    refused(
        worker.finalize(&job).await,
        ErrorKind::Reverted,
        "AlreadyFinalized",
    );
}

/// The [`ProofChain`] contract through the trait alone, on job
/// [`FAILED_JOB`] (so any `ProofChain` over a deployment where `node` is
/// registered and eligible, sending each write as the party that makes
/// it — [`ChainParties`] — can run it): every write returns a receipt of
/// an included transaction, each with its own hash; `job_status` follows
/// Submitted → Assigned → Failed; a second submission is an error of kind
/// `AlreadyExists`, a second `fail` and a commitment of the failed job
/// errors of kind `Reverted`; `block_time` is set and never goes back.
pub async fn proof_chain_contract(chain: &dyn ProofChain, node: &NodeId) {
    let job = JobId::from_bytes(FAILED_JOB);
    let t0 = chain.block_time().await.expect("block_time");
    assert!(t0 > 0, "a block time is set");
    let submitted = chain
        .submit_job(&submission(job, arth(10)))
        .await
        .expect("submit_job");
    assert!(submitted.block_number > 0, "{submitted:?}");
    assert!(submitted.gas_used > 0, "{submitted:?}");
    assert_eq!(
        chain.job_status(&job).await.expect("job_status"),
        ChainJobStatus::Submitted
    );
    let e = chain
        .submit_job(&submission(job, arth(10)))
        .await
        .expect_err("a second submission of one job should be refused");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    let assigned = chain.assign(&job, node).await.expect("assign");
    assert_eq!(
        chain.job_status(&job).await.expect("job_status"),
        ChainJobStatus::Assigned
    );
    let failed = chain.fail(&job).await.expect("fail an assigned job");
    assert_eq!(
        chain.job_status(&job).await.expect("job_status"),
        ChainJobStatus::Failed
    );
    let hashes = [submitted.tx_hash, assigned.tx_hash, failed.tx_hash];
    assert!(
        hashes[0] != hashes[1] && hashes[1] != hashes[2] && hashes[0] != hashes[2],
        "one transaction per write: {hashes:?}"
    );
    assert!(
        failed.block_number >= assigned.block_number
            && assigned.block_number >= submitted.block_number,
        "receipts in block order"
    );
    let e = chain
        .fail(&job)
        .await
        .expect_err("failing a failed job should revert");
    assert_eq!(e.kind(), ErrorKind::Reverted, "{e}");
    let recs = records(10, "failed");
    let tree = JobTree::build(&recs, 100).expect("a job tree");
    let e = chain
        .commit(&commitment(job, &tree, 10))
        .await
        .expect_err("committing a failed job should revert");
    assert_eq!(e.kind(), ErrorKind::Reverted, "{e}");
    let t1 = chain.block_time().await.expect("block_time");
    assert!(t1 >= t0, "block time went back: {t0} then {t1}");
}

/// Disputes decided by a jury, no arbiter:
/// - job [`VALID_JOB`] commits honest work; a challenge with a bogus
///   replayed record is judged by the three jurors (drawn from chain
///   randomness after the challenge block): two vote `Valid`, one `Fraud`.
///   The bond goes to the node's operator, the job returns to `Committed`,
///   and the minority juror loses half its stake to the majority;
/// - job [`SLASHED_JOB`] commits a faked step; a challenge with the wrong
///   replayed step reverts (`StepMismatch`); the right one is upheld by a
///   unanimous `Fraud` jury: the node's slash and the bond go to the
///   challenger, the submitter is refunded in full, and the node can never
///   be certified again, not even by the admin's attestor.
///
/// Bad input reverts with named errors: a low juror stake
/// (`JurorStakeTooLow`), a draw before its block (`JuryNotReady`, a
/// conflict), a vote from outside the jury (`NotOnJury`), a reveal that
/// does not match its commitment (`BadReveal`), a resolution while voting
/// is open (`VotingOpen`, a conflict). Runs last.
pub async fn disputes_by_jury<B: EvmBackend + Clone>(p: &Parties<B>) {
    let a = p.accounts();
    let (sched, worker, subm, verif) = (&p.scheduler, &p.worker, &p.submitter, &p.verifier);
    let stake = arth(1);
    refused(
        p.jurors[0].join_jury(Amount::from_wei(10)).await,
        ErrorKind::Reverted,
        "JurorStakeTooLow",
    );
    for j in &p.jurors {
        j.join_jury(stake).await.expect("join_jury failed");
    }
    let salt = |i: u8| B256::repeat_byte(i);

    // 1. An honest job, falsely challenged: the jury keeps it.
    let job1 = JobId::from_bytes(VALID_JOB);
    subm.submit_job(&submission(job1, arth(10)))
        .await
        .expect("submit_job failed");
    sched.assign(&job1, &node()).await.expect("assign failed");
    let honest = records(250, "honest");
    let tree1 = JobTree::build(&honest, 100).expect("build failed");
    worker
        .commit(&commitment(job1, &tree1, 250))
        .await
        .expect("commit failed");
    let false_claim = Challenge {
        job_id: job1,
        committed: honest[10],
        proof: tree1.prove_step(10).expect("prove_step failed"),
        replayed: records(250, "liar")[10],
        bond: "0.1 ARTH".parse().expect("parse failed"),
    };
    verif
        .challenge(&false_claim)
        .await
        .expect("challenge failed");
    let id1 = u64::try_from(
        worker
            .challenge_count()
            .await
            .expect("challenge_count failed"),
    )
    .expect("a small id");
    // The draw needs a block mined after the challenge's.
    refused(
        verif.draw_jury(id1).await,
        ErrorKind::Conflict,
        "JuryNotReady",
    );
    worker.advance_time(1).await.expect("advance_time failed");
    verif.draw_jury(id1).await.expect("draw_jury failed");
    let mut jury = verif.jury_of(id1).await.expect("jury_of failed");
    jury.sort();
    let mut want = a.jurors.to_vec();
    want.sort();
    assert_eq!(jury, want, "the pool of three is the jury");
    refused(
        verif.commit_vote(id1, Vote::Fraud, salt(1)).await,
        ErrorKind::PermissionDenied,
        "NotOnJury",
    );
    let votes1 = [Vote::Valid, Vote::Valid, Vote::Fraud];
    for (j, v) in p.jurors.iter().zip(votes1) {
        j.commit_vote(id1, v, salt(7))
            .await
            .expect("commit_vote failed");
    }
    refused(verif.resolve(id1).await, ErrorKind::Conflict, "VotingOpen");
    refused(
        p.jurors[0].reveal_vote(id1, Vote::Fraud, salt(7)).await,
        ErrorKind::Reverted,
        "BadReveal",
    );
    let op0 = worker.balance().await.expect("balance failed");
    for (j, v) in p.jurors.iter().zip(votes1) {
        j.reveal_vote(id1, v, salt(7))
            .await
            .expect("reveal_vote failed");
    }
    p.jurors[0].resolve(id1).await.expect("resolve failed");
    let info = verif
        .challenge_info(id1)
        .await
        .expect("challenge_info failed");
    assert!(
        info.resolved && info.verdict == Some(Vote::Valid),
        "{info:?}"
    );
    assert_eq!(
        worker.job_status(&job1).await.expect("job_status failed"),
        ChainJobStatus::Committed,
        "an honest job survives a false challenge"
    );
    assert_eq!(
        worker
            .balance()
            .await
            .expect("balance failed")
            .checked_sub(op0)
            .expect("checked_sub failed"),
        false_claim.bond,
        "the false challenger's bond goes to the node's operator"
    );
    let half = stake.wei() / 2;
    let s = juror_stakes(p, &a).await;
    assert_eq!(s[2], stake.wei() - half, "the minority juror loses half");
    assert_eq!(
        s[0] + s[1],
        2 * stake.wei() + half,
        "the majority shares it"
    );

    // Below the seat stake the minority juror left the pool; it takes its
    // half back and joins again with a full stake.
    p.jurors[2].leave_jury().await.expect("leave_jury failed");
    p.jurors[2]
        .join_jury(stake)
        .await
        .expect("join_jury failed");

    // 2. A faked step: the jury upholds the challenge.
    let job2 = JobId::from_bytes(SLASHED_JOB);
    subm.submit_job(&submission(job2, arth(10)))
        .await
        .expect("submit_job failed");
    sched.assign(&job2, &node()).await.expect("assign failed");
    let mut faked = records(250, "honest");
    faked[149] = records(250, "faked")[149];
    let tree2 = JobTree::build(&faked, 100).expect("build failed");
    worker
        .commit(&commitment(job2, &tree2, 250))
        .await
        .expect("commit failed");
    let ch = Challenge {
        job_id: job2,
        committed: faked[149],
        proof: tree2.prove_step(149).expect("prove_step failed"),
        replayed: records(250, "honest")[149],
        bond: "0.1 ARTH".parse().expect("parse failed"),
    };
    let mut wrong = ch.clone();
    wrong.replayed = records(250, "honest")[150];
    refused(
        verif.challenge(&wrong).await,
        ErrorKind::Reverted,
        "StepMismatch",
    );
    let r = verif.challenge(&ch).await.expect("challenge failed");
    assert_eq!(sender(verif, &r).await, a.verifier);
    assert_eq!(
        worker.job_status(&job2).await.expect("job_status failed"),
        ChainJobStatus::Challenged
    );
    let id2 = u64::try_from(
        worker
            .challenge_count()
            .await
            .expect("challenge_count failed"),
    )
    .expect("a small id");
    worker.advance_time(1).await.expect("advance_time failed");
    p.jurors[1].draw_jury(id2).await.expect("draw_jury failed");
    let drawn = verif.jury_of(id2).await.expect("jury_of failed");
    let (sub2, ver2) = (
        subm.balance().await.expect("balance failed"),
        verif.balance().await.expect("balance failed"),
    );
    let mine: Vec<_> = p
        .jurors
        .iter()
        .filter(|j| drawn.contains(&j.address()))
        .collect();
    assert!(!mine.is_empty(), "a jury was drawn: {drawn:?}");
    for j in &mine {
        j.commit_vote(id2, Vote::Fraud, salt(9))
            .await
            .expect("commit_vote failed");
    }
    for j in &mine {
        j.reveal_vote(id2, Vote::Fraud, salt(9))
            .await
            .expect("reveal_vote failed");
    }
    mine[0].resolve(id2).await.expect("resolve failed");
    assert_eq!(
        worker.job_status(&job2).await.expect("job_status failed"),
        ChainJobStatus::Slashed
    );
    assert_eq!(
        subm.balance()
            .await
            .expect("balance failed")
            .checked_sub(sub2)
            .expect("checked_sub failed"),
        arth(10),
        "full refund"
    );
    assert_eq!(
        verif
            .balance()
            .await
            .expect("balance failed")
            .checked_sub(ver2)
            .expect("checked_sub failed")
            .wei(),
        ch.bond.wei() + Params::default().slash,
        "the bond back and the slash to the challenger"
    );

    // Slashed for good: decertified, and no one — not even the admin's
    // attestor — can certify it again.
    let n = worker.node(&node()).await.expect("node failed");
    assert!(!n.certified, "{n:?}");
    refused(
        worker
            .register_node(
                &node(),
                8,
                81_920,
                Amount::from_wei(RATE),
                "local",
                &["mlp"],
                arth(1),
            )
            .await,
        ErrorKind::AlreadyExists,
        "NodeExists",
    );
    worker
        .add_stake(&node(), arth(1))
        .await
        .expect("add_stake failed");
    refused(
        p.attestor.certify(&node()).await,
        ErrorKind::Reverted,
        "NodeWasSlashed",
    );
    assert!(
        !worker
            .node_eligible(&node())
            .await
            .expect("node_eligible failed"),
        "a slashed node stays out"
    );
}

/// The jurors' stakes, in [`Accounts::jurors`] order.
async fn juror_stakes<B: EvmBackend + Clone>(p: &Parties<B>, a: &Accounts) -> Vec<u128> {
    let mut out = Vec::new();
    for j in a.jurors {
        out.push(
            p.verifier
                .juror_stake_of(j)
                .await
                .expect("juror_stake_of failed")
                .wei(),
        );
    }
    out
}

/// Gas of a whole job life (submit, assign, commit, finalize) in real
/// transactions, each sent by its party, for a job of `steps` steps in
/// windows of 100: `[submit, assign, commit, finalize, total]`.
pub async fn life_gas<B: EvmBackend + Clone>(p: &Parties<B>, job: JobId, steps: u64) -> [u64; 5] {
    let recs = records(steps.min(1_000), "gas");
    let tree = JobTree::build(&recs, 100).expect("build failed");
    let mut com = commitment(job, &tree, steps);
    com.windows = steps.div_ceil(100) as u32; // the root stands in for a longer run's root
    let mut sub = submission(job, arth(10));
    sub.max_steps = steps;
    sub.price_per_step = Amount::from_wei(1);
    let a = p
        .submitter
        .submit_job(&sub)
        .await
        .expect("submit_job failed")
        .gas_used;
    let b = p
        .scheduler
        .assign(&job, &node())
        .await
        .expect("assign failed")
        .gas_used;
    let d = p.worker.commit(&com).await.expect("commit failed").gas_used;
    p.worker
        .advance_time(3_601)
        .await
        .expect("advance_time failed");
    let e = p
        .worker
        .finalize(&job)
        .await
        .expect("finalize failed")
        .gas_used;
    [a, b, d, e, a + b + d + e]
}

/// The address of 20 bytes `b`.
pub fn addr(b: u8) -> Address {
    Address::repeat_byte(b)
}
