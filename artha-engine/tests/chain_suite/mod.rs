//! The chain behaviour suite: the same checks on every backend.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use alloy_primitives::Address;
use artha_core::{
    Amount, Blake3Digest, ChainJobStatus, ChainSubmission, Challenge, Cid, Commitment, DatasetId,
    JobId, JobTree, KeccakHash, ModelId, NodeId, ProofChain, StepRecord,
};
use artha_engine::chain::EvmBackend;
use artha_engine::chain::contracts::{Accounts, ArthaContracts, Params, revert_name, word16};

pub const RATE: u128 = 1_000_000_000_000_000; // 0.001 ARTH per GPU-second

pub fn arth(n: u128) -> Amount {
    Amount::from_arth(n).unwrap()
}

pub fn node() -> NodeId {
    NodeId::from_bytes([0x4e; 16])
}

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

pub fn submission(job: JobId, budget: Amount) -> ChainSubmission {
    ChainSubmission {
        job_id: job,
        spec_hash: KeccakHash::of(b"spec"),
        max_gpu_seconds: 4_710,
        rate: Amount::from_wei(RATE),
        budget,
    }
}

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

/// Deploys, registers the node and runs the whole suite. Accounts must be
/// funded by the caller.
pub async fn run<B: EvmBackend>(backend: B, accounts: Accounts) -> ArthaContracts<B> {
    let c = ArthaContracts::deploy(backend, accounts, Params::default())
        .await
        .unwrap();
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
    .unwrap();
    assert!(c.node_eligible(&node()).await.unwrap());

    // Registries and lineage.
    let ds = DatasetId::from_bytes([1; 16]);
    c.register_dataset(&ds, &Cid::of(b"data"), None, 1024, "tabular")
        .await
        .unwrap();
    let e = c
        .register_dataset(&ds, &Cid::of(b"data"), None, 1024, "tabular")
        .await
        .unwrap_err();
    assert_eq!(revert_name(&e), Some("DatasetExists"), "{e}");
    let (m0, m1) = (ModelId::from_bytes([2; 16]), ModelId::from_bytes([3; 16]));
    let job = JobId::from_bytes([7; 16]);
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
    .unwrap();
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
    .unwrap();
    assert_eq!(
        c.lineage(&m1).await.unwrap(),
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
        .unwrap_err();
    assert_eq!(revert_name(&e), Some("UnknownParent"));

    // Submission: bad inputs are reverted with named errors and change nothing.
    let sub0 = c.balance(accounts.submitter).await.unwrap();
    let e = c
        .submit_job(&submission(job, Amount::from_wei(4_710 * RATE - 1)))
        .await
        .unwrap_err();
    assert_eq!(revert_name(&e), Some("BudgetBelowEstimate"), "{e}");
    let e = c
        .submit_job(&submission(job, Amount::ZERO))
        .await
        .unwrap_err();
    assert_eq!(revert_name(&e), Some("Unfunded"));
    assert_eq!(
        c.balance(accounts.submitter).await.unwrap(),
        sub0,
        "reverts move nothing"
    );
    let r = c.submit_job(&submission(job, arth(10))).await.unwrap();
    assert!(r.block_number > 0 && r.gas_used > 21_000);
    assert_eq!(c.job_status(&job).await.unwrap(), ChainJobStatus::Submitted);
    assert_eq!(c.escrow_of(&job).await.unwrap(), (arth(10), false));
    let e = c.submit_job(&submission(job, arth(10))).await.unwrap_err();
    assert_eq!(revert_name(&e), Some("JobExists"));

    // Assignment and commitment.
    c.assign(&job, &node()).await.unwrap();
    assert_eq!(c.job_status(&job).await.unwrap(), ChainJobStatus::Assigned);
    let recs = records(250, "honest");
    let tree = JobTree::build(&recs, 100).unwrap();
    let com = commitment(job, &tree, 250, 4_710);
    let mut bad = com.clone();
    bad.gpu_seconds = 4_711;
    assert_eq!(
        revert_name(&c.commit(&bad).await.unwrap_err()),
        Some("GpuSecondsOverMax")
    );
    bad = com.clone();
    bad.windows = 9;
    assert_eq!(
        revert_name(&c.commit(&bad).await.unwrap_err()),
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
        revert_name(&intruder.commit(&com).await.unwrap_err()),
        Some("NotAssignedNode")
    );
    c.commit(&com).await.unwrap();
    assert_eq!(
        revert_name(&c.commit(&com).await.unwrap_err()),
        Some("AlreadyCommitted")
    );
    assert_eq!(
        revert_name(&c.finalize(&job).await.unwrap_err()),
        Some("ChallengePeriodActive")
    );

    // Settlement after the challenge period: measured GPU-s × rate to the node.
    c.backend().increase_time(3_601).await.unwrap();
    let (op0, sub1) = (
        c.balance(accounts.operator).await.unwrap(),
        c.balance(accounts.submitter).await.unwrap(),
    );
    c.finalize(&job).await.unwrap();
    assert_eq!(c.job_status(&job).await.unwrap(), ChainJobStatus::Finalized);
    let paid = c
        .balance(accounts.operator)
        .await
        .unwrap()
        .checked_sub(op0)
        .unwrap();
    let refunded = c
        .balance(accounts.submitter)
        .await
        .unwrap()
        .checked_sub(sub1)
        .unwrap();
    assert_eq!(paid, "4.71 ARTH".parse().unwrap());
    assert_eq!(
        paid.checked_add(refunded).unwrap(),
        arth(10),
        "escrow in = payout + refund"
    );
    assert!(c.escrow_of(&job).await.unwrap().1, "escrow closed");
    assert_eq!(
        revert_name(&c.finalize(&job).await.unwrap_err()),
        Some("AlreadyFinalized")
    );

    // A faked step, challenged with its proof and upheld.
    let job2 = JobId::from_bytes([8; 16]);
    c.submit_job(&submission(job2, arth(10))).await.unwrap();
    c.assign(&job2, &node()).await.unwrap();
    let mut faked = records(250, "honest");
    faked[149] = records(250, "faked")[149];
    let tree2 = JobTree::build(&faked, 100).unwrap();
    c.commit(&commitment(job2, &tree2, 250, 4_000))
        .await
        .unwrap();
    let proof = tree2.prove_step(149).unwrap();
    let honest = records(250, "honest")[149];
    let ch = Challenge {
        job_id: job2,
        committed: faked[149],
        proof,
        replayed: honest,
        bond: "0.1 ARTH".parse().unwrap(),
    };
    let mut wrong = ch.clone();
    wrong.replayed = records(250, "honest")[150];
    assert_eq!(
        revert_name(&c.challenge(&wrong).await.unwrap_err()),
        Some("StepMismatch")
    );
    c.challenge(&ch).await.unwrap();
    assert_eq!(
        c.job_status(&job2).await.unwrap(),
        ChainJobStatus::Challenged
    );
    let sub2 = c.balance(accounts.submitter).await.unwrap();
    let id = c.challenge_count().await.unwrap();
    c.resolve(id, true).await.unwrap();
    assert_eq!(c.job_status(&job2).await.unwrap(), ChainJobStatus::Slashed);
    assert_eq!(
        c.balance(accounts.submitter)
            .await
            .unwrap()
            .checked_sub(sub2)
            .unwrap(),
        arth(10),
        "full refund"
    );
    assert!(
        !c.node_eligible(&node()).await.unwrap(),
        "slashed node is decertified"
    );
    c
}

/// Gas of a whole job life (submit, assign, commit, finalize) in real
/// transactions, for a job of `steps` steps in windows of 100.
pub async fn life_gas<B: EvmBackend>(c: &ArthaContracts<B>, job: JobId, steps: u64) -> [u64; 5] {
    let recs = records(steps.min(1_000), "gas");
    let tree = JobTree::build(&recs, 100).unwrap();
    let mut com = commitment(job, &tree, steps, 4_000);
    com.windows = steps.div_ceil(100) as u32; // the root stands in for a longer run's root
    let a = c
        .submit_job(&submission(job, arth(10)))
        .await
        .unwrap()
        .gas_used;
    let b = c.assign(&job, &node()).await.unwrap().gas_used;
    let d = c.commit(&com).await.unwrap().gas_used;
    c.backend().increase_time(3_601).await.unwrap();
    let e = c.finalize(&job).await.unwrap().gas_used;
    [a, b, d, e, a + b + d + e]
}

pub fn addr(b: u8) -> Address {
    Address::repeat_byte(b)
}
