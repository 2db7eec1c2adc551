//! Settlement, the one place a job's money moves at its end: a job with
//! nothing committed is ended on chain and refunded; a committed one is
//! finalized (the node paid, the rest refunded) once its challenge period
//! has passed.

use artha_core::{ChainJobStatus, ErrorKind, ProofChain, Result};

use super::effects::{chain_write, committed};
use super::schedule::assign_here;
use crate::chain::outbox::Write;
use crate::engine::parts::Parts;
use crate::jobs::{JobPhase, JobRecord};

/// Closes a terminal job: frees its GPUs; a job with nothing committed is
/// ended on chain and refunded (then Settled). Committed jobs wait for
/// [`settle_due`].
pub(crate) async fn close(parts: &Parts, r: &JobRecord) -> Result<()> {
    let job = r.id;
    parts.gpus.release(&job)?;
    if r.phase == JobPhase::Settled || committed(parts, r).await {
        return settle_due(parts).await.map(|_| ());
    }
    let status = match parts.chain.job_status(&job).await {
        Ok(s) => Some(s),
        // Never submitted (an unknown job; older chains revert untyped).
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Reverted) => None,
        Err(e) => return Err(e),
    };
    match status {
        None | Some(ChainJobStatus::Cancelled | ChainJobStatus::Failed) => {}
        Some(ChainJobStatus::Submitted) => {
            assign_here(parts, &job).await?;
            chain_write(parts, &job, Write::Fail { job }).await?;
        }
        Some(ChainJobStatus::Assigned) => chain_write(parts, &job, Write::Fail { job }).await?,
        Some(_) => return settle_due(parts).await.map(|_| ()),
    }
    parts.ledger.transition(
        &job,
        r.phase,
        JobPhase::Settled,
        Some("nothing computed: escrow refunded"),
    )?;
    parts.outbox.forget(&job).await
}

/// Finalizes every committed job whose challenge period has passed.
///
/// One job never blocks another: a job under challenge is skipped until
/// its jury resolves; a job the chain ended otherwise (`Slashed` or
/// `Voided` by a jury: the submitter refunded, the node unpaid; or
/// `Finalized` by anyone) is marked settled with what happened; and a job
/// whose finalize fails for another reason is left for the next round
/// while the others settle.
pub(crate) async fn settle_due(parts: &Parts) -> Result<usize> {
    let _guard = parts.settle.lock().await;
    let mut settled = 0;
    let mut now = None;
    for job in parts
        .ledger
        .list(&[JobPhase::Completed, JobPhase::Failed, JobPhase::Cancelled])?
    {
        let r = parts.ledger.get(&job)?;
        if !committed(parts, &r).await {
            continue;
        }
        let note = match parts.chain.job_status(&job).await {
            Ok(ChainJobStatus::Challenged) => continue,
            Ok(ChainJobStatus::Slashed) => {
                Some("a jury upheld a challenge: the node was slashed, the submitter refunded")
            }
            Ok(ChainJobStatus::Voided) => Some(
                "a jury found the committed data unavailable: the submitter refunded, the node unpaid",
            ),
            Ok(ChainJobStatus::Finalized) => {
                Some("finalized on chain: the node paid for its committed steps, the rest refunded")
            }
            Ok(_) => None,
            Err(_) => continue,
        };
        if let Some(note) = note {
            parts
                .ledger
                .transition(&job, r.phase, JobPhase::Settled, Some(note))?;
            parts.outbox.forget(&job).await?;
            settled += 1;
            continue;
        }
        // A read first: a finalize sent inside the challenge period would
        // only revert (and cost an outbox record and a failed transaction).
        let t = match now {
            Some(t) => t,
            None => *now.insert(parts.chain.next_block_time().await?),
        };
        if parts.chain.settles_at(&job).await?.is_some_and(|at| t < at) {
            continue;
        }
        match chain_write(parts, &job, Write::Finalize { job }).await {
            Ok(()) => {}
            // Inside the challenge period after all (the chain's clock), or
            // challenged meanwhile, or any other failure of this job alone:
            // the next round tries again; the other jobs settle now.
            Err(_) => continue,
        }
        parts.ledger.transition(
            &job,
            r.phase,
            JobPhase::Settled,
            Some("challenge period passed: node paid for its committed steps, rest refunded"),
        )?;
        parts.outbox.forget(&job).await?;
        settled += 1;
    }
    Ok(settled)
}
