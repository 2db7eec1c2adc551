//! One job's state machine (DESIGN §3): from whatever phase the ledger
//! holds, [`drive`] steps the job through
//! `Accepted → Scheduled → Staging → Running → Proving → Completed |
//! Failed | Cancelled → Settled`, one phase per module — [`schedule`],
//! [`stage`], [`run`], [`prove`], [`settle`] — over the engine's parts.
//! The same code runs a fresh job and resumes one after a crash: every
//! phase is idempotent from the ledger's record and the files it keeps in
//! the job's directory. What a job does to the world outside that
//! directory (chain writes, stored artifacts) is in [`effects`].

pub(crate) mod effects;
pub(crate) mod prove;
pub(crate) mod run;
pub(crate) mod schedule;
pub(crate) mod settle;
pub(crate) mod stage;
pub(crate) mod terms;

use std::time::Duration;

use artha_core::{Error, JobId, Result};

use crate::engine::parts::{Parts, RunCtl};
use crate::jobs::{JobPhase, JobProgress};

/// Most times a job whose runtime died with the engine is resumed.
pub(crate) const MAX_RESUMES: u32 = 3;

/// Grace period between SIGTERM and SIGKILL when stopping a runtime.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs the job from its current phase until it is terminal (Completed,
/// Failed, Cancelled: closed, waiting for settlement) or Settled.
/// One job as its phases see it: the engine's parts, the job's run
/// control (cancel flag, live progress, launch time) and its id. Each
/// phase is an `async fn(&JobCtx, &JobRecord)`; the record is the ledger's
/// at the start of the phase.
#[derive(Clone, Copy)]
pub(crate) struct JobCtx<'a> {
    pub(crate) parts: &'a Parts,
    pub(crate) ctl: &'a RunCtl,
    pub(crate) job: JobId,
}

pub(crate) async fn drive(parts: &Parts, job: JobId, ctl: &RunCtl) -> Result<()> {
    // Progress persisted by an earlier run of the engine is where a
    // re-attached or resumed run continues from.
    if let Ok(r) = parts.ledger.get(&job) {
        ctl.progress.send_if_modified(|p| {
            let fresh = *p == JobProgress::default();
            if fresh {
                *p = r.progress.clone();
            }
            fresh
        });
    }
    let cx = JobCtx { parts, ctl, job };
    loop {
        let r = parts.ledger.get(&job)?;
        // Wakes the waiters on each phase.
        ctl.progress.send_modify(|_| {});
        let cancelled = *ctl.cancel.borrow();
        match r.phase {
            JobPhase::Submitted => {
                parts
                    .ledger
                    .transition(&job, JobPhase::Submitted, JobPhase::Accepted, None)?;
            }
            JobPhase::Accepted | JobPhase::Scheduled | JobPhase::Staging if cancelled => {
                parts.ledger.transition(
                    &job,
                    r.phase,
                    JobPhase::Cancelled,
                    Some(&format!("cancelled by the submitter during {}", r.phase)),
                )?;
            }
            JobPhase::Accepted => schedule::schedule(&cx, &r).await?,
            JobPhase::Scheduled => {
                parts
                    .ledger
                    .transition(&job, JobPhase::Scheduled, JobPhase::Staging, None)?;
            }
            JobPhase::Staging => stage::stage_and_launch(&cx, &r, None).await?,
            JobPhase::Running => run::run(&cx, &r).await?,
            JobPhase::Proving => prove::prove(parts, &r, None).await?,
            JobPhase::Completed | JobPhase::Failed | JobPhase::Cancelled => {
                settle::close(parts, &r).await?;
                return Ok(());
            }
            JobPhase::Settled => return Ok(()),
        }
    }
}

/// Records a hard failure of the driver itself (a staging or launch error,
/// an unusable input): the job fails with the reason and is closed.
pub(crate) async fn fail_hard(parts: &Parts, job: &JobId, e: &Error) {
    let Ok(r) = parts.ledger.get(job) else { return };
    if r.phase.is_terminal() {
        return;
    }
    let reason = describe(e);
    if parts
        .ledger
        .transition(job, r.phase, JobPhase::Failed, Some(&reason))
        .is_ok()
        && let Ok(r) = parts.ledger.get(job)
    {
        let _ = settle::close(parts, &r).await;
    }
}

pub(crate) use crate::exec::describe;

/// Test hook: with `ARTHA_FAILPOINT=<name>` in the environment the engine
/// sends itself SIGKILL (`kill -9`: no destructors, no flush) when it
/// reaches the point `name`. The crash tests use it to land exactly in the
/// windows between durable steps; it does nothing otherwise.
pub(crate) fn failpoint(name: &str) {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let point = POINT.get_or_init(|| std::env::var("ARTHA_FAILPOINT").ok());
    if point.as_deref() == Some(name) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
}

/// Whether the job's events file holds anything (work a run did).
pub(crate) fn holds_events(parts: &Parts, job: &JobId) -> bool {
    std::fs::symlink_metadata(stage::events_path(parts, job)).is_ok_and(|m| m.len() > 0)
}
