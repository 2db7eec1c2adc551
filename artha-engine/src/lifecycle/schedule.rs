//! Scheduling: the job is submitted on chain with its escrow, placed by
//! the scheduler on an eligible node with free GPUs (waiting in the queue
//! while they are taken), and assigned on chain.

use std::time::Duration;

use artha_core::{
    ChainSubmission, Error, ErrorKind, JobId, JobSpec, PlacementRequest, ProofChain, Registry,
    Result, Runtime,
};

use super::JobCtx;
use super::effects::chain_write;
use super::stage::resolve_inputs;
use crate::chain::outbox::Write;
use crate::engine::parts::Parts;
use crate::jobs::{JobPhase, JobRecord};

pub(crate) async fn schedule(cx: &JobCtx<'_>, r: &JobRecord) -> Result<()> {
    let JobCtx { parts, ctl, .. } = *cx;
    let job = cx.job;
    let spec = &r.spec;
    let inputs = resolve_inputs(parts, spec).await?;
    let terms = super::terms::terms(
        parts,
        &job,
        spec,
        inputs.dataset.as_ref(),
        inputs.model.as_ref(),
    )
    .await?;
    parts
        .ledger
        .set_price_per_step(&job, terms.price_per_step)?;
    chain_write(
        parts,
        &job,
        Write::Submit(ChainSubmission {
            job_id: job,
            spec: terms.spec,
            max_steps: terms.max_steps,
            price_per_step: terms.price_per_step,
            budget: spec.budget,
        }),
    )
    .await?;

    let req = PlacementRequest {
        job_id: job,
        spec: spec.clone(),
        inputs: [&inputs.model, &inputs.dataset]
            .into_iter()
            .flatten()
            .map(|u| *u.cid())
            .collect(),
        region: None,
        min_stake: parts.chain.min_stake(),
    };
    // Wait in the queue while the node's GPUs are taken; fail only when the
    // job can never fit.
    // The node's standing comes from NodeCertRegistry (active, certified,
    // staked; its price, stake and reputation feed the score); its capacity
    // from the GPU allocator.
    let record = parts.chain.node(&parts.node).await?;
    if !record.eligible {
        return Err(Error::new(
            ErrorKind::ResourceExhausted,
            "no eligible node: this node is not active, certified and staked on NodeCertRegistry",
        )
        .with_context("node_id", parts.node.to_string()));
    }
    let mut delay = Duration::from_millis(50);
    let gpus = loop {
        let mut view = node_view(parts, &job, spec);
        view.certified = record.eligible && record.active && record.certified;
        view.stake = record.stake;
        view.price_per_gpu_second = record.price_per_gpu_second;
        view.reputation = crate::sched::reputation_score(record.reputation);
        let placed = parts.scheduler.place(&req, &[view]).await.and_then(|p| {
            parts
                .gpus
                .allocate(&job, spec.resources.gpus, spec.resources.gpu_memory_mib)
                .map(|g| (p, g))
        });
        match placed {
            Ok((_, gpus)) => break gpus,
            Err(e) if e.kind() == ErrorKind::ResourceExhausted && fits_at_all(parts, spec) => {
                if *ctl.cancel.borrow() {
                    return Ok(()); // the driver loop cancels it
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    };
    parts.ledger.set_placement(&job, &parts.node, &gpus)?;
    assign_here(parts, &job).await?;
    parts
        .ledger
        .transition(&job, JobPhase::Accepted, JobPhase::Scheduled, None)
}

/// Records on `AIJobManager` that this node runs `job`.
pub(crate) async fn assign_here(parts: &Parts, job: &JobId) -> Result<()> {
    let w = Write::Assign {
        job: *job,
        node: parts.node,
    };
    chain_write(parts, job, w).await
}

pub(crate) fn node_view(parts: &Parts, job: &JobId, spec: &JobSpec) -> artha_core::NodeView {
    let inv = parts.gpus.inventory();
    // What the executors run: their native runtime ids, and the job's own
    // image when an executor runs images.
    let mut runtimes: Vec<String> = parts.executors.iter().flat_map(|e| e.runtimes()).collect();
    if let Runtime::Image(img) = &spec.runtime
        && parts.executors.iter().any(|e| e.supports(&spec.runtime))
    {
        runtimes.push(img.clone());
    }
    let runtimes: Vec<&str> = runtimes.iter().map(String::as_str).collect();
    let mut v = crate::sched::node_view(
        parts.node,
        inv.devices.len() as u32,
        inv.devices.iter().map(|d| d.memory_mib).min().unwrap_or(0),
        &runtimes,
        parts.cost.rate_per_gpu_second,
    );
    // GPUs this job already holds (allocated before a crash) count as free
    // for it: allocating again returns the same indices.
    v.gpus_free = parts.gpus.free_count() + parts.gpus.held_by(job).len() as u32;
    v.region = parts.region.clone();
    v
}

pub(crate) fn fits_at_all(parts: &Parts, spec: &JobSpec) -> bool {
    let inv = parts.gpus.inventory();
    inv.devices
        .iter()
        .filter(|d| d.memory_mib >= spec.resources.gpu_memory_mib)
        .count()
        >= spec.resources.gpus as usize
}
