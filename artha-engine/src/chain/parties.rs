//! [`ChainParties`]: one chain client per party of a job.
//!
//! Each party — submitter, scheduler, worker (node operator), verifier —
//! acts on the chain with its own account, and none of them holds the
//! chain admin's key (deployer, attestor). `ChainParties` routes
//! each write to the party the contracts expect it from, so the engine
//! (and its outbox) can treat the set as one [`ProofChain`]:
//!
//! | call | party |
//! |---|---|
//! | `submit_job`, `balance` | submitter |
//! | `assign`, `fail`, registering a trained model (`ModelRecord::job`) | scheduler |
//! | `commit`, `finalize`, `register_node` | worker |
//! | `challenge`; reading commitments, terms and audit seeds | verifier |
//! | `register_dataset`, `register_model` (no job) | submitter |
//! | reads (`job_status`, `settles_at`, `escrow`, times, nodes, datasets, models, lineage) | worker |
//!
//! In the single-machine default every party lives in one engine, but they
//! interact only through the chain and the store, exactly as they would
//! across machines.

use std::sync::Arc;

use artha_core::{
    Amount, Chain, ChainCommitment, ChainJobStatus, ChainSubmission, Challenge, Commitment,
    DatasetId, DatasetRegistration, Escrow, JobId, JobTerms, ModelId, ModelRecord, NodeId,
    NodeRegistration, NodeStanding, Party, ProofChain, Receipt, Registry, Result,
};
use async_trait::async_trait;

/// One chain client per party (see the module docs).
#[derive(Clone)]
pub struct ChainParties {
    /// Submits jobs, locks escrow, registers datasets and models.
    pub submitter: Arc<dyn Chain>,
    /// Assigns jobs, ends unrun ones, registers trained models.
    pub scheduler: Arc<dyn Chain>,
    /// Registers the node, commits proofs, finalizes (and is paid).
    pub worker: Arc<dyn Chain>,
    /// Challenges committed work.
    pub verifier: Arc<dyn Chain>,
}

impl std::fmt::Debug for ChainParties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainParties")
            .field("submitter", &self.submitter.account())
            .field("scheduler", &self.scheduler.account())
            .field("worker", &self.worker.account())
            .field("verifier", &self.verifier.account())
            .finish()
    }
}

impl ChainParties {
    /// The same client for every party (a chain where one account plays
    /// every role, e.g. a test double).
    pub fn single(chain: Arc<dyn Chain>) -> Self {
        ChainParties {
            submitter: chain.clone(),
            scheduler: chain.clone(),
            worker: chain.clone(),
            verifier: chain,
        }
    }

    /// The client of `party`.
    pub fn get(&self, party: Party) -> &Arc<dyn Chain> {
        match party {
            Party::Submitter => &self.submitter,
            Party::Scheduler => &self.scheduler,
            Party::Worker => &self.worker,
            Party::Verifier => &self.verifier,
        }
    }

    /// Each party's account, in [`Party::ALL`] order.
    pub fn accounts(&self) -> Vec<(Party, String)> {
        Party::ALL
            .iter()
            .map(|p| (*p, self.get(*p).account()))
            .collect()
    }
}

#[async_trait]
impl ProofChain for ChainParties {
    async fn submit_job(&self, s: &ChainSubmission) -> Result<Receipt> {
        self.submitter.submit_job(s).await
    }
    async fn assign(&self, job: &JobId, node: &NodeId) -> Result<Receipt> {
        self.scheduler.assign(job, node).await
    }
    async fn commit(&self, c: &Commitment) -> Result<Receipt> {
        self.worker.commit(c).await
    }
    async fn challenge(&self, c: &Challenge) -> Result<Receipt> {
        self.verifier.challenge(c).await
    }
    async fn finalize(&self, job: &JobId) -> Result<Receipt> {
        self.worker.finalize(job).await
    }
    async fn fail(&self, job: &JobId) -> Result<Receipt> {
        self.scheduler.fail(job).await
    }
    async fn job_status(&self, job: &JobId) -> Result<ChainJobStatus> {
        self.worker.job_status(job).await
    }
    async fn block_time(&self) -> Result<u64> {
        self.worker.block_time().await
    }
    async fn next_block_time(&self) -> Result<u64> {
        self.worker.next_block_time().await
    }
    async fn settles_at(&self, job: &JobId) -> Result<Option<u64>> {
        self.worker.settles_at(job).await
    }
    async fn escrow(&self, job: &JobId) -> Result<Escrow> {
        self.worker.escrow(job).await
    }
    async fn balance(&self) -> Result<Amount> {
        self.submitter.balance().await
    }
    async fn advance_time(&self, secs: u64) -> Result<()> {
        self.worker.advance_time(secs).await
    }
    async fn receipt(&self, tx: &artha_core::KeccakHash) -> Result<Option<Receipt>> {
        self.worker.receipt(tx).await
    }
    async fn job_node(&self, job: &JobId) -> Result<Option<NodeId>> {
        self.worker.job_node(job).await
    }
    async fn commitment(&self, job: &JobId) -> Result<Option<ChainCommitment>> {
        self.verifier.commitment(job).await
    }
    async fn job_terms(&self, job: &JobId) -> Result<JobTerms> {
        self.verifier.job_terms(job).await
    }
    async fn audit_seed(&self, job: &JobId) -> Result<artha_core::KeccakHash> {
        self.verifier.audit_seed(job).await
    }
    fn account(&self) -> String {
        self.submitter.account()
    }
    fn challenge_period_secs(&self) -> u64 {
        self.worker.challenge_period_secs()
    }
    fn min_stake(&self) -> Amount {
        self.worker.min_stake()
    }
}

#[async_trait]
impl Registry for ChainParties {
    async fn register_node(&self, r: &NodeRegistration) -> Result<Receipt> {
        self.worker.register_node(r).await
    }
    async fn node(&self, node: &NodeId) -> Result<NodeStanding> {
        self.worker.node(node).await
    }
    async fn register_dataset(&self, d: &DatasetRegistration) -> Result<Receipt> {
        self.submitter.register_dataset(d).await
    }
    async fn dataset(&self, dataset: &DatasetId) -> Result<DatasetRegistration> {
        self.worker.dataset(dataset).await
    }
    async fn register_model(&self, m: &ModelRecord) -> Result<Receipt> {
        if m.job.is_some() {
            self.scheduler.register_model(m).await
        } else {
            self.submitter.register_model(m).await
        }
    }
    async fn model(&self, model: &ModelId) -> Result<ModelRecord> {
        self.worker.model(model).await
    }
    async fn lineage(&self, model: &ModelId) -> Result<Vec<ModelId>> {
        self.worker.lineage(model).await
    }
}
