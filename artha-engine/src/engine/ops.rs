//! The service operations of an engine, in the values of [`crate::api`]:
//! what the CLI, the REST API and the bindings show — estimates, job
//! listings, what settles when, statistics — computed in one place.

use std::collections::BTreeMap;

use artha_core::{ChainAction, JobPhase, JobRecord, JobSpec, JobStatus, ProofChain, Result};

use super::Engine;
use crate::api::{DueJob, EngineInfo, JobEstimate, JobSummary, SettleReport, Stats, Submitted};
use crate::lifecycle::effects::committed;

impl Engine {
    /// What `spec` may cost and how long it may run, at this node's price.
    pub fn estimate(&self, spec: &JobSpec) -> Result<JobEstimate> {
        let e = self.parts.cost.estimate(spec)?;
        Ok(JobEstimate {
            gpu_seconds: e.gpu_seconds,
            cost: e.cost,
            rate: self.parts.cost.rate_per_gpu_second,
            duration_secs: spec.resources.max_duration_secs,
            devices: artha_core::CostModel::billed_devices(spec),
        })
    }

    /// Submits `spec` as [`submit`](Self::submit) does (held, as
    /// [`submit_held`](Self::submit_held), with `hold`), with a budget of
    /// zero meaning "the estimate" (as `arthai train` without `--budget`);
    /// returns the job's id, status and estimate.
    pub async fn submit_estimated(&self, mut spec: JobSpec, hold: bool) -> Result<Submitted> {
        let estimate = self.estimate(&spec)?;
        if spec.budget.is_zero() {
            spec.budget = estimate.cost;
        }
        let job = if hold {
            self.submit_held(spec).await?
        } else {
            self.submit(spec).await?
        };
        Ok(Submitted {
            job_id: job.id(),
            status: job.status()?,
            estimate,
        })
    }

    /// Every job, newest first, one line each.
    pub fn summaries(&self) -> Result<Vec<JobSummary>> {
        self.list()?.iter().map(|r| self.summary(r)).collect()
    }

    fn summary(&self, r: &JobRecord) -> Result<JobSummary> {
        let st = JobStatus::of(r, None)?;
        Ok(JobSummary {
            job_id: r.id,
            status: status_name(&st),
            phase: r.phase,
            kind: r.spec.kind.to_string(),
            gpu_seconds: r.gpu_seconds,
            reason: r.reason.clone(),
            submitted_at: r.history.first().map_or(0, |t| t.at_ms / 1000),
        })
    }

    /// Committed jobs that are not settled yet, with the chain time from
    /// which each may be finalized, soonest first.
    pub async fn due(&self) -> Result<Vec<DueJob>> {
        let parts = &self.parts;
        let now = parts.chain.next_block_time().await?;
        let mut out = Vec::new();
        for job in
            parts
                .ledger
                .list(&[JobPhase::Completed, JobPhase::Failed, JobPhase::Cancelled])?
        {
            let r = parts.ledger.get(&job)?;
            if !committed(parts, &r).await {
                continue;
            }
            if let Some(at) = parts.chain.settles_at(&job).await? {
                out.push(DueJob {
                    job_id: job,
                    settles_at: at,
                    in_secs: at.saturating_sub(now),
                });
            }
        }
        out.sort_by_key(|d| (d.settles_at, d.job_id.to_string()));
        Ok(out)
    }

    /// Settles every job whose challenge period has passed, and says what
    /// is still waiting and until when.
    pub async fn settle(&self) -> Result<SettleReport> {
        let settled = self.settle_due().await? as u64;
        Ok(SettleReport {
            settled,
            pending: self.due().await?,
            chain_time: self.chain_time().await?,
            challenge_period_secs: self.parts.chain.challenge_period_secs(),
        })
    }

    /// Proof-submission, settlement and resource statistics.
    pub async fn stats(&self) -> Result<Stats> {
        let parts = &self.parts;
        let mut s = Stats::default();
        for p in JobPhase::ALL {
            s.jobs_by_phase.insert(p.as_str().to_string(), 0);
        }
        for r in self.list()? {
            s.jobs += 1;
            *s.jobs_by_phase
                .entry(r.phase.as_str().to_string())
                .or_insert(0) += 1;
            s.gpu_seconds += r.gpu_seconds.unwrap_or(0);
            for x in &r.receipts {
                s.transactions += 1;
                s.gas_used += x.receipt.gas_used;
                match x.action {
                    ChainAction::Commit => s.proof_commits += 1,
                    ChainAction::Finalize => s.finalized += 1,
                    ChainAction::Fail => s.refunded += 1,
                    _ => {}
                }
            }
            if r.receipts.iter().any(|x| x.action == ChainAction::Commit) {
                s.steps_committed += r.progress.step;
            }
        }
        s.outbox_depth = parts.outbox.entries().await.len() as u64;
        let inv = parts.gpus.inventory().devices.len() as u64;
        s.gpus_total = inv;
        s.gpus_in_use = inv.saturating_sub(u64::from(self.free_gpus()));
        s.store_bytes = parts.store.pins().await?.iter().map(|p| p.size).sum();
        Ok(s)
    }

    /// Who this engine is.
    pub fn info(&self) -> EngineInfo {
        EngineInfo {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            home: self.home().display().to_string(),
            identity: self.identity().to_string(),
            node_id: self.node_id(),
            accounts: self
                .chain()
                .accounts()
                .into_iter()
                .map(|(p, a)| (p.as_str().to_string(), a))
                .collect::<BTreeMap<_, _>>(),
            pid: std::process::id(),
        }
    }
}

/// The name a status shows (`failed` for a failed job, even refunded).
pub(crate) fn status_name(st: &JobStatus) -> String {
    st.status.as_str().to_string()
}
