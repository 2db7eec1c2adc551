//! The engine's background work: one task driving each job (with retries
//! of retryable errors), recovery on open, the settler, and the node's
//! registration.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use artha_core::{ErrorKind, JobId, NodeRegistration, Registry, Result};

use super::Engine;
use super::parts::Parts;
use crate::chain::contracts::Attestor;
use crate::jobs::JobPhase;
use crate::lifecycle;

/// Registers this node on the chain's node registry when it is unknown
/// there, and has `attestor` (the development chain's admin, when this
/// engine created that chain) certify it. A node that is registered but
/// not eligible (revoked, or slashed below the least stake) is left as it
/// is: the worker cannot certify itself, so its jobs wait for an attestor
/// to decide.
pub(crate) async fn register_node(parts: &Parts, attestor: Option<&Attestor>) -> Result<()> {
    match parts.chain.node(&parts.node).await {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let inv = parts.gpus.inventory();
    let mem = inv.devices.iter().map(|d| d.memory_mib).min().unwrap_or(0);
    let mut runtimes: Vec<String> = parts.executors.iter().flat_map(|e| e.runtimes()).collect();
    runtimes.sort();
    runtimes.dedup();
    let reg = NodeRegistration {
        node: parts.node,
        gpus: inv.devices.len() as u32,
        gpu_memory_mib: u32::try_from(mem).unwrap_or(u32::MAX),
        price_per_gpu_second: parts.cost.rate_per_gpu_second,
        region: parts.region.clone(),
        runtimes,
        stake: artha_core::ProofChain::min_stake(&parts.chain),
    };
    match parts.chain.register_node(&reg).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if let Some(a) = attestor {
        a.certify(&parts.node).await?;
    }
    Ok(())
}

/// Starts the task that drives `job` to its end.
pub(crate) fn spawn_driver(engine: &Engine, job: JobId) {
    let parts = engine.parts.clone();
    let ctl = parts.run_ctl(&job);
    ctl.driving.store(true, Ordering::SeqCst);
    let task = tokio::spawn(async move {
        // A retryable error (the chain or Docker briefly unavailable)
        // retries from the ledger's phase; others fail the job.
        let mut delay = Duration::from_millis(500);
        for attempt in 0.. {
            match lifecycle::drive(&parts, job, &ctl).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() && attempt < 12 => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    lifecycle::fail_hard(&parts, &job, &e).await;
                    break;
                }
            }
        }
        ctl.driving.store(false, Ordering::SeqCst);
        // Wakes the waiters (the phase is read from the ledger).
        ctl.progress.send_modify(|_| {});
    });
    engine.parts.track(task);
}

/// Recovery on open: chain writes recorded before a crash go out first;
/// leftover runs are stopped; every unfinished job is driven again, and
/// ended jobs not yet closed are closed.
pub(crate) async fn resume_unfinished(engine: &Engine) -> Result<()> {
    let parts = &engine.parts;
    // Checked against the chain so nothing is applied twice.
    let _ = parts.outbox.flush().await;
    // Entries of settled jobs (left by a crash before they were dropped).
    let settled: HashSet<JobId> = parts
        .ledger
        .list(&[JobPhase::Settled])?
        .into_iter()
        .collect();
    parts.outbox.forget_where(|j| settled.contains(j)).await?;
    let unfinished = parts.ledger.unfinished()?;
    parts.gpus.retain(&unfinished)?;
    // Containers and processes of this engine's jobs that the ledger does
    // not know as the job's current run (launched just before a crash, or
    // left over) are stopped and removed; the driver relaunches what should
    // run. Other engines' jobs (other homes) are left alone.
    for exec in &parts.executors {
        for h in exec.list().await.unwrap_or_default() {
            let Ok(r) = parts.ledger.get(&h.job_id) else {
                continue;
            };
            if r.phase.is_terminal() || r.exec.as_ref() != Some(&h) {
                let _ = exec.stop(&h, Duration::from_secs(2)).await;
                let _ = exec.remove(&h).await;
            }
        }
    }
    for job in unfinished {
        // A held job waits for its release.
        if parts
            .ledger
            .get(&job)
            .is_ok_and(|r| crate::jobs::is_held(&r))
        {
            continue;
        }
        spawn_driver(engine, job);
    }
    // Ended jobs not yet closed (the engine died between the end and the
    // refund) are closed now; committed ones are settled when due.
    for job in parts
        .ledger
        .list(&[JobPhase::Completed, JobPhase::Failed, JobPhase::Cancelled])?
    {
        let r = parts.ledger.get(&job)?;
        if !lifecycle::effects::committed(parts, &r).await {
            spawn_driver(engine, job);
        }
    }
    let _ = lifecycle::settle::settle_due(parts).await;
    Ok(())
}

/// Settles due jobs every `every` while the engine lives.
pub(crate) fn spawn_settler(engine: &Engine, every: Duration) {
    let weak = std::sync::Arc::downgrade(&engine.parts);
    let settler = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(parts) = weak.upgrade() else { break };
            let _ = lifecycle::settle::settle_due(&parts).await;
        }
    });
    engine.parts.track(settler);
}

/// Aborts the background tasks (at an await point, so every ledger and
/// outbox write is whole) and waits for them.
pub(crate) async fn shutdown(parts: &Parts) {
    let tasks: Vec<_> = std::mem::take(&mut *parts.tasks.lock().unwrap_or_else(|p| p.into_inner()));
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    for ctl in parts.runs().values() {
        ctl.driving.store(false, Ordering::SeqCst);
    }
}
