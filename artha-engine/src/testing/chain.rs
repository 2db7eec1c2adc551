//! The chain suite: the Artha contracts on an [`EvmBackend`].
//!
//! The implementation under test is the backend (the embedded EVM, an RPC
//! chain such as anvil, or yours): [`deploy`] puts the contracts on it and
//! registers the suite's node; the scenarios then drive the deployment
//! through [`ProofChain`] and the contract bindings. They share one
//! deployment and must run in [`SCENARIOS`] order ([`challenge_is_upheld`]
//! decertifies the node), which is what [`run_all`] does.
//!
//! The backend must support `increase_time` (a development chain), and
//! the three [`Accounts`] must hold funds (a few dozen ARTH each; anvil's
//! development accounts do, the embedded EVM is funded with
//! `EmbeddedEvm::fund`, see [`FUNDING`]).
//!
//! After [`run_all`], job `[7; 16]` is `Finalized` and job `[8; 16]` is
//! `Slashed` (a restart test can check that the chain kept them).

use alloy_primitives::{Address, U256};
use artha_core::{
    Amount, Blake3Digest, ChainJobStatus, ChainSubmission, Challenge, Cid, Commitment, DatasetId,
    JobId, JobTree, KeccakHash, ModelId, NodeId, ProofChain, StepRecord,
};

use crate::chain::EvmBackend;
use crate::chain::contracts::{Accounts, ArthaContracts, Params, revert_name, word16};

/// The rate the suite's node charges: 0.001 ARTH per GPU-second, in wei.
pub const RATE: u128 = 1_000_000_000_000_000;

/// What to fund each account with on a chain that mints (1000 ARTH).
pub const FUNDING: U256 = U256::from_limbs([0x35c9_adc5_dea0_0000, 0x36, 0, 0]);

/// The job [`job_settles`] runs to finalization.
pub const SETTLED_JOB: [u8; 16] = [7; 16];
/// The job [`proof_chain_contract`] fails after assignment.
pub const FAILED_JOB: [u8; 16] = [9; 16];
/// The job [`challenge_is_upheld`] gets slashed.
pub const SLASHED_JOB: [u8; 16] = [8; 16];

/// `n` ARTH.
pub fn arth(n: u128) -> Amount {
    Amount::from_arth(n).expect("a small ARTH amount")
}

/// The node the suite registers and assigns jobs to.
pub fn node() -> NodeId {
    NodeId::from_bytes([0x4e; 16])
}

/// Three distinct accounts (admin `0xad…`, operator `0x0b…`, submitter
/// `0x5b…`) for a chain that accepts any sender (the embedded EVM).
pub fn dev_accounts() -> Accounts {
    Accounts {
        admin: addr(0xad),
        operator: addr(0x0b),
        submitter: addr(0x5b),
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

/// A submission of `job` at [`RATE`] for at most 4,710 GPU-seconds.
pub fn submission(job: JobId, budget: Amount) -> ChainSubmission {
    ChainSubmission {
        job_id: job,
        spec_hash: KeccakHash::of(b"spec"),
        max_gpu_seconds: 4_710,
        rate: Amount::from_wei(RATE),
        budget,
    }
}

/// The commitment of `job` over `tree`.
pub fn commitment(job: JobId, tree: &JobTree, steps: u64, gpu_seconds: u64) -> Commitment {
    Commitment {
        job_id: job,
        job_root: tree.root(),
        window: tree.window_size(),
        windows: tree.window_roots().len() as u32,
        steps,
        gpu_seconds,
        final_weights: Blake3Digest::of(b"final"),
        manifest: Cid::of(b"manifest"),
    }
}

/// Every scenario of the suite, in the order they must run (on one
/// deployment, after [`deploy`]).
pub const SCENARIOS: &[&str] = &[
    "registries_and_lineage",
    "job_settles",
    "challenge_is_upheld",
];

/// Deploys the contracts on `backend` as `accounts` (funded by the
/// caller), registers [`node`] with a stake of 1 ARTH at [`RATE`] and
/// checks it is eligible.
pub async fn deploy<B: EvmBackend>(backend: B, accounts: Accounts) -> ArthaContracts<B> {
    let c = ArthaContracts::deploy(backend, accounts, Params::default())
        .await
        .expect("deploy the contracts");
    c.register_node(
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
    assert!(
        c.node_eligible(&node())
            .await
            .expect("node_eligible failed")
    );

    c
}

/// Deploys (see [`deploy`]) and runs every scenario of [`SCENARIOS`] in
/// order; returns the deployment.
///
/// # Panics
/// On the first failed check, naming the scenario.
pub async fn run_all<B: EvmBackend>(backend: B, accounts: Accounts) -> ArthaContracts<B> {
    let mut c = None;
    super::scenario("chain", "deploy", async {
        c = Some(deploy(backend, accounts).await);
    })
    .await;
    let c = c.expect("deploy returned a deployment");
    super::scenario(
        "chain",
        "registries_and_lineage",
        registries_and_lineage(&c),
    )
    .await;
    super::scenario("chain", "job_settles", job_settles(&c)).await;
    super::scenario(
        "chain",
        "proof_chain_contract",
        proof_chain_contract(&c, &node()),
    )
    .await;
    super::scenario("chain", "challenge_is_upheld", challenge_is_upheld(&c)).await;
    c
}

/// Datasets and models register once (`DatasetExists`), a model's lineage
/// runs back through its parents, and an unknown parent is refused
/// (`UnknownParent`).
pub async fn registries_and_lineage<B: EvmBackend>(c: &ArthaContracts<B>) {
    let job = JobId::from_bytes(SETTLED_JOB);
    let ds = DatasetId::from_bytes([1; 16]);
    c.register_dataset(&ds, &Cid::of(b"data"), None, 1024, "tabular")
        .await
        .expect("register_dataset failed");
    let e = c
        .register_dataset(&ds, &Cid::of(b"data"), None, 1024, "tabular")
        .await
        .expect_err("register_dataset should fail");
    assert_eq!(revert_name(&e), Some("DatasetExists"), "{e}");
    let (m0, m1) = (ModelId::from_bytes([2; 16]), ModelId::from_bytes([3; 16]));
    c.register_model(
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
    c.register_model(
        &m1,
        &Cid::of(b"w1"),
        "mlp",
        Some(&ds),
        Default::default(),
        "v1",
        Some(&m0),
        Some(&job),
    )
    .await
    .expect("register_model failed");
    assert_eq!(
        c.lineage(&m1).await.expect("lineage failed"),
        vec![word16(m1.as_bytes()), word16(m0.as_bytes())]
    );
    let e = c
        .register_model(
            &ModelId::from_bytes([4; 16]),
            &Cid::of(b"w"),
            "mlp",
            None,
            Default::default(),
            "v",
            Some(&ModelId::from_bytes([9; 16])),
            None,
        )
        .await
        .expect_err("register_model should fail");
    assert_eq!(revert_name(&e), Some("UnknownParent"));
}

/// Job [`SETTLED_JOB`] from submission to payout: a budget below the
/// estimate and an unfunded job revert and move nothing; the job is
/// escrowed once (`JobExists`); assignment; commitments over the maximum,
/// malformed, from another operator or sent twice revert; finalizing
/// waits for the challenge period; then the node is paid the measured
/// GPU-seconds × rate, the rest is refunded, and the escrow closes.
pub async fn job_settles<B: EvmBackend>(c: &ArthaContracts<B>) {
    let accounts = c.accounts;
    let job = JobId::from_bytes(SETTLED_JOB);
    // Submission: bad inputs are reverted with named errors and change nothing.
    let sub0 = c.balance(accounts.submitter).await.expect("balance failed");
    let e = c
        .submit_job(&submission(job, Amount::from_wei(4_710 * RATE - 1)))
        .await
        .expect_err("submit_job should fail");
    assert_eq!(revert_name(&e), Some("BudgetBelowEstimate"), "{e}");
    let e = c
        .submit_job(&submission(job, Amount::ZERO))
        .await
        .expect_err("submit_job should fail");
    assert_eq!(revert_name(&e), Some("Unfunded"));
    assert_eq!(
        c.balance(accounts.submitter).await.expect("balance failed"),
        sub0,
        "reverts move nothing"
    );
    let r = c
        .submit_job(&submission(job, arth(10)))
        .await
        .expect("submit_job failed");
    assert!(r.block_number > 0 && r.gas_used > 21_000);
    assert_eq!(
        c.job_status(&job).await.expect("job_status failed"),
        ChainJobStatus::Submitted
    );
    assert_eq!(
        c.escrow_of(&job).await.expect("escrow_of failed"),
        (arth(10), false)
    );
    let e = c
        .submit_job(&submission(job, arth(10)))
        .await
        .expect_err("submit_job should fail");
    assert_eq!(revert_name(&e), Some("JobExists"));

    // Assignment and commitment.
    c.assign(&job, &node()).await.expect("assign failed");
    assert_eq!(
        c.job_status(&job).await.expect("job_status failed"),
        ChainJobStatus::Assigned
    );
    let recs = records(250, "honest");
    let tree = JobTree::build(&recs, 100).expect("build failed");
    let com = commitment(job, &tree, 250, 4_710);
    let mut bad = com.clone();
    bad.gpu_seconds = 4_711;
    assert_eq!(
        revert_name(&c.commit(&bad).await.expect_err("commit should fail")),
        Some("GpuSecondsOverMax")
    );
    bad = com.clone();
    bad.windows = 9;
    assert_eq!(
        revert_name(&c.commit(&bad).await.expect_err("commit should fail")),
        Some("MalformedRoot")
    );
    // Someone other than the assigned node's operator.
    let intruder = ArthaContracts::attach(
        c.backend(),
        c.deployment,
        Accounts {
            operator: accounts.submitter,
            ..accounts
        },
        c.params,
    );
    assert_eq!(
        revert_name(&intruder.commit(&com).await.expect_err("commit should fail")),
        Some("NotAssignedNode")
    );
    c.commit(&com).await.expect("commit failed");
    assert_eq!(
        revert_name(&c.commit(&com).await.expect_err("commit should fail")),
        Some("AlreadyCommitted")
    );
    assert_eq!(
        revert_name(&c.finalize(&job).await.expect_err("finalize should fail")),
        Some("ChallengePeriodActive")
    );

    // Settlement after the challenge period: measured GPU-s × rate to the node.
    c.backend()
        .increase_time(3_601)
        .await
        .expect("increase_time failed");
    let (op0, sub1) = (
        c.balance(accounts.operator).await.expect("balance failed"),
        c.balance(accounts.submitter).await.expect("balance failed"),
    );
    c.finalize(&job).await.expect("finalize failed");
    assert_eq!(
        c.job_status(&job).await.expect("job_status failed"),
        ChainJobStatus::Finalized
    );
    let paid = c
        .balance(accounts.operator)
        .await
        .expect("balance failed")
        .checked_sub(op0)
        .expect("checked_sub failed");
    let refunded = c
        .balance(accounts.submitter)
        .await
        .expect("balance failed")
        .checked_sub(sub1)
        .expect("checked_sub failed");
    assert_eq!(paid, "4.71 ARTH".parse().expect("parse failed"));
    assert_eq!(
        paid.checked_add(refunded).expect("checked_add failed"),
        arth(10),
        "escrow in = payout + refund"
    );
    assert!(
        c.escrow_of(&job).await.expect("escrow_of failed").1,
        "escrow closed"
    );
    assert_eq!(
        revert_name(&c.finalize(&job).await.expect_err("finalize should fail")),
        Some("AlreadyFinalized")
    );
}

/// The [`ProofChain`] contract through the trait alone, on job
/// [`FAILED_JOB`] (so any `ProofChain` over a deployment where `node` is
/// registered and eligible can run it): every write returns a receipt of
/// an included transaction, each with its own hash; `job_status` follows
/// Submitted → Assigned → Failed; a second submission, a second `fail`
/// and a commitment of the failed job are errors of kind `Reverted`;
/// `block_time` is set and never goes back.
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
        .expect_err("a second submission of one job should revert");
    assert_eq!(e.kind(), artha_core::ErrorKind::Reverted, "{e}");
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
    assert_eq!(e.kind(), artha_core::ErrorKind::Reverted, "{e}");
    let recs = records(10, "failed");
    let tree = JobTree::build(&recs, 100).expect("a job tree");
    let e = chain
        .commit(&commitment(job, &tree, 10, 10))
        .await
        .expect_err("committing a failed job should revert");
    assert_eq!(e.kind(), artha_core::ErrorKind::Reverted, "{e}");
    let t1 = chain.block_time().await.expect("block_time");
    assert!(t1 >= t0, "block time went back: {t0} then {t1}");
}

/// Job [`SLASHED_JOB`] commits a faked step; a challenge with the wrong
/// replayed step reverts (`StepMismatch`); the right one, upheld, slashes
/// the job, refunds the submitter in full and decertifies [`node`] (so
/// this scenario runs last).
pub async fn challenge_is_upheld<B: EvmBackend>(c: &ArthaContracts<B>) {
    let accounts = c.accounts;
    // A faked step, challenged with its proof and upheld.
    let job2 = JobId::from_bytes(SLASHED_JOB);
    c.submit_job(&submission(job2, arth(10)))
        .await
        .expect("submit_job failed");
    c.assign(&job2, &node()).await.expect("assign failed");
    let mut faked = records(250, "honest");
    faked[149] = records(250, "faked")[149];
    let tree2 = JobTree::build(&faked, 100).expect("build failed");
    c.commit(&commitment(job2, &tree2, 250, 4_000))
        .await
        .expect("commit failed");
    let proof = tree2.prove_step(149).expect("prove_step failed");
    let honest = records(250, "honest")[149];
    let ch = Challenge {
        job_id: job2,
        committed: faked[149],
        proof,
        replayed: honest,
        bond: "0.1 ARTH".parse().expect("parse failed"),
    };
    let mut wrong = ch.clone();
    wrong.replayed = records(250, "honest")[150];
    assert_eq!(
        revert_name(
            &c.challenge(&wrong)
                .await
                .expect_err("challenge should fail")
        ),
        Some("StepMismatch")
    );
    c.challenge(&ch).await.expect("challenge failed");
    assert_eq!(
        c.job_status(&job2).await.expect("job_status failed"),
        ChainJobStatus::Challenged
    );
    let sub2 = c.balance(accounts.submitter).await.expect("balance failed");
    let id = c.challenge_count().await.expect("challenge_count failed");
    c.resolve(id, true).await.expect("resolve failed");
    assert_eq!(
        c.job_status(&job2).await.expect("job_status failed"),
        ChainJobStatus::Slashed
    );
    assert_eq!(
        c.balance(accounts.submitter)
            .await
            .expect("balance failed")
            .checked_sub(sub2)
            .expect("checked_sub failed"),
        arth(10),
        "full refund"
    );
    assert!(
        !c.node_eligible(&node())
            .await
            .expect("node_eligible failed"),
        "slashed node is decertified"
    );
}

/// Gas of a whole job life (submit, assign, commit, finalize) in real
/// transactions, for a job of `steps` steps in windows of 100.
pub async fn life_gas<B: EvmBackend>(c: &ArthaContracts<B>, job: JobId, steps: u64) -> [u64; 5] {
    let recs = records(steps.min(1_000), "gas");
    let tree = JobTree::build(&recs, 100).expect("build failed");
    let mut com = commitment(job, &tree, steps, 4_000);
    com.windows = steps.div_ceil(100) as u32; // the root stands in for a longer run's root
    let a = c
        .submit_job(&submission(job, arth(10)))
        .await
        .expect("submit_job failed")
        .gas_used;
    let b = c
        .assign(&job, &node())
        .await
        .expect("assign failed")
        .gas_used;
    let d = c.commit(&com).await.expect("commit failed").gas_used;
    c.backend()
        .increase_time(3_601)
        .await
        .expect("increase_time failed");
    let e = c.finalize(&job).await.expect("finalize failed").gas_used;
    [a, b, d, e, a + b + d + e]
}

/// The address of 20 bytes `b`.
pub fn addr(b: u8) -> Address {
    Address::repeat_byte(b)
}
