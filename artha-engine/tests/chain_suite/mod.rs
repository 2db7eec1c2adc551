//! The chain behaviour suite: the same checks on every backend.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use alloy_primitives::{Address, B256};
use artha_core::{
    Amount, Blake3Digest, ChainJobStatus, ChainSubmission, Challenge, Cid, Commitment, DatasetId,
    Error, ErrorKind, JobId, JobTree, KeccakHash, ModelId, NodeId, ProofChain, Receipt, Registry,
    StepRecord,
};
use artha_engine::chain::EvmBackend;
use artha_engine::chain::contracts::{
    ArthaContracts, Attestor, Params, Roles, revert_name, word16,
};

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

/// The accounts of a suite run (funded by the caller).
#[derive(Debug, Clone, Copy)]
pub struct Accounts {
    pub admin: Address,
    pub scheduler: Address,
    pub worker: Address,
    pub submitter: Address,
    pub verifier: Address,
}

impl Accounts {
    pub fn all(&self) -> [Address; 5] {
        [
            self.admin,
            self.scheduler,
            self.worker,
            self.submitter,
            self.verifier,
        ]
    }
}

/// One client per party, and the admin's attestor.
pub struct Parties<B> {
    pub attestor: Attestor<B>,
    pub scheduler: ArthaContracts<B>,
    pub worker: ArthaContracts<B>,
    pub submitter: ArthaContracts<B>,
    pub verifier: ArthaContracts<B>,
}

/// Deploys as `a.admin` (roles to `a.scheduler`) and attaches a client per
/// party.
pub async fn deploy<B: EvmBackend + Clone>(backend: B, a: Accounts) -> Parties<B> {
    let params = Params::default();
    let d = ArthaContracts::deploy(
        &backend,
        a.admin,
        &Roles {
            scheduler: a.scheduler,
        },
        params,
    )
    .await
    .unwrap();
    let worker = ArthaContracts::attach(backend.clone(), d, a.worker, params);
    Parties {
        attestor: Attestor::attach(backend, d, a.admin, params),
        scheduler: worker.as_account(a.scheduler),
        submitter: worker.as_account(a.submitter),
        verifier: worker.as_account(a.verifier),
        worker,
    }
}

/// The account a mined transaction was sent from.
pub async fn sender<B: EvmBackend>(c: &ArthaContracts<B>, r: &Receipt) -> Address {
    c.backend()
        .receipt(B256::from(*r.tx_hash.as_bytes()))
        .await
        .unwrap()
        .expect("mined")
        .from
}

/// Asserts `r` failed with kind `kind` and contract error `name`.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(r: artha_core::Result<T>, kind: ErrorKind, name: &str) -> Error {
    let e = r.unwrap_err();
    assert_eq!(e.kind(), kind, "{e} {:?}", e.context());
    assert_eq!(revert_name(&e), Some(name), "{e}");
    e
}

/// Registers the node as the worker and has the attestor certify it.
pub async fn register_node<B: EvmBackend + Clone>(p: &Parties<B>) {
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
        .unwrap();
    assert_eq!(sender(&p.worker, &r).await, p.worker.address());
    assert!(
        !p.worker.node_eligible(&node()).await.unwrap(),
        "registered is not certified"
    );
    let r = p.attestor.certify(&node()).await.unwrap();
    assert_eq!(sender(&p.worker, &r).await, p.attestor.address());
    assert!(p.worker.node_eligible(&node()).await.unwrap());
}

/// Deploys, registers the node and runs the whole suite. Accounts must be
/// funded by the caller.
pub async fn run<B: EvmBackend + Clone>(backend: B, a: Accounts) -> Parties<B> {
    let p = deploy(backend, a).await;
    let (sched, worker, subm, verif) = (&p.scheduler, &p.worker, &p.submitter, &p.verifier);
    // Each client is its own account.
    for (c, who) in [
        (sched, a.scheduler),
        (worker, a.worker),
        (subm, a.submitter),
        (verif, a.verifier),
    ] {
        assert_eq!(c.address(), who);
        assert_eq!(c.account(), who.to_string());
        assert_eq!(c.balance().await.unwrap(), c.balance_of(who).await.unwrap());
    }
    let d = worker.deployment;
    assert!(
        worker
            .has_role(d.jobs, "SCHEDULER", a.scheduler)
            .await
            .unwrap()
    );
    assert!(
        worker
            .has_role(d.models, "REGISTRAR", a.scheduler)
            .await
            .unwrap()
    );
    assert!(!worker.has_role(d.jobs, "SCHEDULER", a.admin).await.unwrap());
    assert!(
        !worker
            .has_role(d.nodes, "ATTESTOR", a.worker)
            .await
            .unwrap()
    );
    assert!(worker.has_role(d.nodes, "ATTESTOR", a.admin).await.unwrap());
    assert!(worker.has_role(d.proofs, "ARBITER", a.admin).await.unwrap());

    // The worker registers its node; only the attestor certifies it.
    let as_worker = Attestor::attach(worker.backend().clone(), d, a.worker, worker.params);
    register_node(&p).await;
    let e = refused(
        as_worker.certify(&node()).await,
        ErrorKind::PermissionDenied,
        "Unauthorized",
    );
    assert_eq!(e.context_value("role"), Some("ATTESTOR"), "{e}");
    assert_eq!(
        e.context_value("account"),
        Some(a.worker.to_string().as_str())
    );
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
    let e = refused(
        Registry::node(worker, &NodeId::from_bytes([9; 16])).await,
        ErrorKind::NotFound,
        "UnknownNode",
    );
    assert!(e.context_value("node_id").is_some(), "{e}");
    let standing = Registry::node(worker, &node()).await.unwrap();
    assert_eq!(standing.operator, a.worker.to_string());
    assert!(standing.eligible && standing.certified);

    // Registries and lineage: the submitter's own dataset and model; a
    // trained model (with a job) only from the scheduler (REGISTRAR).
    let ds = DatasetId::from_bytes([1; 16]);
    let r = subm
        .register_dataset(&ds, &Cid::of(b"data"), None, 1024, "tabular")
        .await
        .unwrap();
    assert_eq!(sender(subm, &r).await, a.submitter);
    refused(
        subm.register_dataset(&ds, &Cid::of(b"data"), None, 1024, "tabular")
            .await,
        ErrorKind::AlreadyExists,
        "DatasetExists",
    );
    let (m0, m1) = (ModelId::from_bytes([2; 16]), ModelId::from_bytes([3; 16]));
    let job = JobId::from_bytes([7; 16]);
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
    .unwrap();
    assert_eq!(subm.model_provenance(&m0).await.unwrap().owner, a.submitter);
    let trained = |c: &ArthaContracts<B>| {
        let c = c.clone();
        async move {
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
        }
    };
    for c in [subm, worker] {
        let e = refused(
            trained(c).await,
            ErrorKind::PermissionDenied,
            "Unauthorized",
        );
        assert_eq!(e.context_value("role"), Some("REGISTRAR"), "{e}");
    }
    let r = trained(sched).await.unwrap();
    assert_eq!(sender(sched, &r).await, a.scheduler);
    let prov = sched.model_provenance(&m1).await.unwrap();
    assert_eq!(prov.owner, a.scheduler);
    assert_eq!(prov.job, word16(job.as_bytes()));
    refused(
        trained(sched).await,
        ErrorKind::AlreadyExists,
        "ModelExists",
    );
    assert_eq!(
        sched.lineage(&m1).await.unwrap(),
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

    // Submission: bad inputs are reverted with named errors and change nothing.
    let sub0 = subm.balance().await.unwrap();
    refused(
        subm.submit_job(&submission(job, Amount::from_wei(4_710 * RATE - 1)))
            .await,
        ErrorKind::Reverted,
        "BudgetBelowEstimate",
    );
    refused(
        subm.submit_job(&submission(job, Amount::ZERO)).await,
        ErrorKind::Reverted,
        "Unfunded",
    );
    assert_eq!(subm.balance().await.unwrap(), sub0, "reverts move nothing");
    refused(
        worker.job_status(&job).await,
        ErrorKind::NotFound,
        "UnknownJob",
    );
    let r = subm.submit_job(&submission(job, arth(10))).await.unwrap();
    assert!(r.block_number > 0 && r.gas_used > 21_000);
    assert_eq!(sender(subm, &r).await, a.submitter);
    assert_eq!(
        worker.job_status(&job).await.unwrap(),
        ChainJobStatus::Submitted
    );
    assert_eq!(worker.escrow_of(&job).await.unwrap(), (arth(10), false));
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
    let r = sched.assign(&job, &node()).await.unwrap();
    assert_eq!(sender(sched, &r).await, a.scheduler);
    assert_eq!(
        worker.job_status(&job).await.unwrap(),
        ChainJobStatus::Assigned
    );
    assert_eq!(worker.job_node(&job).await.unwrap(), Some(node()));

    // Commitment: the assigned node's operator alone.
    let recs = records(250, "honest");
    let tree = JobTree::build(&recs, 100).unwrap();
    let com = commitment(job, &tree, 250, 4_710);
    let mut bad = com.clone();
    bad.gpu_seconds = 4_711;
    refused(
        worker.commit(&bad).await,
        ErrorKind::Reverted,
        "GpuSecondsOverMax",
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
    let r = worker.commit(&com).await.unwrap();
    assert_eq!(sender(worker, &r).await, a.worker);
    refused(
        worker.commit(&com).await,
        ErrorKind::Reverted,
        "AlreadyCommitted",
    );
    refused(
        worker.finalize(&job).await,
        ErrorKind::Reverted,
        "ChallengePeriodActive",
    );

    // Settlement after the challenge period: measured GPU-s × rate to the
    // node. Anyone may finalize: the verifier does, so the operator's and
    // the submitter's balances move by the payout and the refund exactly.
    worker.advance_time(3_601).await.unwrap();
    let (op0, sub1) = (
        worker.balance().await.unwrap(),
        subm.balance().await.unwrap(),
    );
    let r = verif.finalize(&job).await.unwrap();
    assert_eq!(sender(verif, &r).await, a.verifier);
    assert_eq!(
        worker.job_status(&job).await.unwrap(),
        ChainJobStatus::Finalized
    );
    let paid = worker.balance().await.unwrap().checked_sub(op0).unwrap();
    let refunded = subm.balance().await.unwrap().checked_sub(sub1).unwrap();
    assert_eq!(paid, "4.71 ARTH".parse().unwrap());
    assert_eq!(
        paid.checked_add(refunded).unwrap(),
        arth(10),
        "escrow in = payout + refund"
    );
    assert!(worker.escrow_of(&job).await.unwrap().1, "escrow closed");
    refused(
        worker.finalize(&job).await,
        ErrorKind::Reverted,
        "AlreadyFinalized",
    );

    // A faked step, challenged by the verifier with its proof and upheld by
    // the arbiter (the admin); nobody else can resolve.
    let job2 = JobId::from_bytes([8; 16]);
    subm.submit_job(&submission(job2, arth(10))).await.unwrap();
    sched.assign(&job2, &node()).await.unwrap();
    let mut faked = records(250, "honest");
    faked[149] = records(250, "faked")[149];
    let tree2 = JobTree::build(&faked, 100).unwrap();
    worker
        .commit(&commitment(job2, &tree2, 250, 4_000))
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
    refused(
        verif.challenge(&wrong).await,
        ErrorKind::Reverted,
        "StepMismatch",
    );
    let r = verif.challenge(&ch).await.unwrap();
    assert_eq!(sender(verif, &r).await, a.verifier);
    assert_eq!(
        worker.job_status(&job2).await.unwrap(),
        ChainJobStatus::Challenged
    );
    let sub2 = subm.balance().await.unwrap();
    let id = worker.challenge_count().await.unwrap();
    let e = refused(
        as_worker.resolve(id, false).await,
        ErrorKind::PermissionDenied,
        "Unauthorized",
    );
    assert_eq!(e.context_value("role"), Some("ARBITER"), "{e}");
    refused(
        p.attestor
            .resolve(id + alloy_primitives::U256::from(1), true)
            .await,
        ErrorKind::NotFound,
        "UnknownChallenge",
    );
    let r = p.attestor.resolve(id, true).await.unwrap();
    assert_eq!(sender(worker, &r).await, a.admin);
    assert_eq!(
        worker.job_status(&job2).await.unwrap(),
        ChainJobStatus::Slashed
    );
    assert_eq!(
        subm.balance().await.unwrap().checked_sub(sub2).unwrap(),
        arth(10),
        "full refund"
    );

    // Slashed: decertified, and the worker alone cannot make it eligible
    // again — not by re-registering, re-staking or certifying itself.
    let n = worker.node(&node()).await.unwrap();
    assert!(!n.certified && n.active, "{n:?}");
    assert!(!worker.node_eligible(&node()).await.unwrap());
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
    worker.add_stake(&node(), arth(1)).await.unwrap();
    refused(
        as_worker.certify(&node()).await,
        ErrorKind::PermissionDenied,
        "Unauthorized",
    );
    assert!(
        !worker.node_eligible(&node()).await.unwrap(),
        "a slashed node stays out until the attestor says otherwise"
    );
    let job3 = JobId::from_bytes([9; 16]);
    subm.submit_job(&submission(job3, arth(10))).await.unwrap();
    refused(
        sched.assign(&job3, &node()).await,
        ErrorKind::Reverted,
        "NodeNotEligible",
    );
    // The attestor's deliberate decision brings it back.
    p.attestor.certify(&node()).await.unwrap();
    assert!(worker.node_eligible(&node()).await.unwrap());
    sched.assign(&job3, &node()).await.unwrap();
    // An assigned job that will not run: the scheduler fails it (refund).
    let r = sched.fail(&job3).await.unwrap();
    assert_eq!(sender(sched, &r).await, a.scheduler);
    assert_eq!(
        worker.job_status(&job3).await.unwrap(),
        ChainJobStatus::Failed
    );
    p
}

/// Gas of a whole job life (submit, assign, commit, finalize) in real
/// transactions, for a job of `steps` steps in windows of 100.
pub async fn life_gas<B: EvmBackend + Clone>(p: &Parties<B>, job: JobId, steps: u64) -> [u64; 5] {
    let recs = records(steps.min(1_000), "gas");
    let tree = JobTree::build(&recs, 100).unwrap();
    let mut com = commitment(job, &tree, steps, 4_000);
    com.windows = steps.div_ceil(100) as u32; // the root stands in for a longer run's root
    let a = p
        .submitter
        .submit_job(&submission(job, arth(10)))
        .await
        .unwrap()
        .gas_used;
    let b = p.scheduler.assign(&job, &node()).await.unwrap().gas_used;
    let d = p.worker.commit(&com).await.unwrap().gas_used;
    p.worker.advance_time(3_601).await.unwrap();
    let e = p.worker.finalize(&job).await.unwrap().gas_used;
    [a, b, d, e, a + b + d + e]
}

pub fn addr(b: u8) -> Address {
    Address::repeat_byte(b)
}
