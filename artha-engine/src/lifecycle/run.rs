//! Running: the one run loop. It tails the job's events while the
//! executor runs it, stops it on cancellation or a malformed event, measures
//! its time, records the run's end durably, and then (idempotently, after
//! a crash too) bills it, removes it from its executor, resumes a run that
//! died with the engine from its last checkpoint, or moves the job on.

use std::path::{Path, PathBuf};
use std::time::Instant;

use artha_core::{
    Error, ErrorKind, ExecHandle, ExecState, Executor, ExitReason, JobId, JobProgress, LogLine,
    Result, RuntimeEvent,
};

use super::effects::store_checkpoint;
use super::prove::prove;
use super::stage::{events_path, executor, job_dir, mounts, stage_and_launch};
use super::{JobCtx, MAX_RESUMES, STOP_GRACE, describe, failpoint, holds_events};
use crate::engine::parts::Parts;
use crate::exec::{EventTail, RunOutcome, failure_reason, supervise_with};
use crate::fsutil::{io_err, write_atomic};
use crate::jobs::{JobPhase, JobRecord};

/// Reads the whole events file (an error for a malformed line, a file that
/// is not a regular file, or one over the limits of [`EventTail`]).
pub(crate) fn read_events(path: &Path) -> Result<Vec<RuntimeEvent>> {
    let mut out = Vec::new();
    EventTail::new(path).poll_all(&mut out)?;
    Ok(out)
}

/// Handles new events: progress (live, and persisted with the job when it
/// changed), and checkpoints pushed to the store as they appear (each
/// once).
pub(crate) async fn take_events(cx: &JobCtx<'_>, r: &JobRecord, events: &[RuntimeEvent]) {
    let JobCtx { parts, ctl, .. } = *cx;
    if events.is_empty() {
        return;
    }
    for ev in events {
        match ev {
            RuntimeEvent::Step(s) => ctl.progress.send_modify(|p| {
                p.step = s.step;
                p.epoch = s.epoch;
                p.loss = Some(s.loss);
            }),
            RuntimeEvent::Infer(_) => ctl.progress.send_modify(|p| p.inferences += 1),
            RuntimeEvent::Checkpoint { path, .. }
                if store_checkpoint(parts, r, path).await.is_ok() =>
            {
                ctl.progress.send_modify(|p| p.checkpoints += 1);
            }
            _ => {}
        }
    }
    let now = ctl.progress.borrow().clone();
    let job = r.id;
    let _ = parts
        .ledger
        .off_worker(move |l| l.set_progress(&job, &now))
        .await;
}

pub(crate) fn resumes_path(parts: &Parts, job: &JobId) -> PathBuf {
    job_dir(parts, job).join("resumes")
}

/// What the engine records, durably and before anything else, the moment a
/// run ends (`<job dir>/run-end.json`, outside every mount the job can
/// write). Everything after it (billing, saving logs, removing the
/// container or process, proving) is redone from this record after a crash,
/// so a kill anywhere between the runtime's exit and `proving` loses no
/// finished work and bills it once.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RunEnd {
    /// How the executor saw the run end.
    state: ExecState,
    /// The job's GPU-seconds in all, this run included (measured by the
    /// engine).
    gpu_seconds: u64,
    /// Why the events were refused, when they were.
    bad_event: Option<String>,
    /// Whether the submitter cancelled the run.
    cancelled: bool,
}

pub(crate) fn run_end_path(parts: &Parts, job: &JobId) -> PathBuf {
    job_dir(parts, job).join("run-end.json")
}

pub(crate) fn read_run_end(parts: &Parts, job: &JobId) -> Result<Option<RunEnd>> {
    let p = run_end_path(parts, job);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::new(ErrorKind::Corrupted, "the run-end record is malformed")
                .with_context("path", p.display().to_string())
                .with_source(e)
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read the run-end record", &p, e)),
    }
}

pub(crate) async fn run(cx: &JobCtx<'_>, r: &JobRecord) -> Result<()> {
    let JobCtx { parts, ctl, .. } = *cx;
    let job = r.id;
    if let Some(end) = read_run_end(parts, &job)? {
        // The run ended before a crash: finish what followed its end.
        return after_run(cx, r, end).await;
    }
    let exec = executor(parts, &r.spec.runtime)?;
    let Some(handle) = r.exec.clone() else {
        if holds_events(parts, &job) {
            // A run whose end was never recorded (an engine of an earlier
            // version stopped in the gap): its work is kept, never restaged.
            let end = RunEnd {
                state: ExecState::Finished {
                    reason: ExitReason::Lost {
                        detail: "the engine stopped before it recorded the run's end".into(),
                    },
                    wall_seconds: 0,
                },
                gpu_seconds: r.gpu_seconds.unwrap_or(0),
                bad_event: None,
                cancelled: false,
            };
            return after_run(cx, r, end).await;
        }
        // Crashed between the transition and recording the handle: relaunch.
        return relaunch(cx, r, None).await;
    };
    let mut cancel_rx = ctl.cancel.subscribe();
    let cancel = async move {
        // Fires at once when the job was cancelled before this run began.
        let _ = cancel_rx.wait_for(|c| *c).await;
    };
    // Measured from this process's launch, or from now when re-attaching to
    // a run launched before a restart (the time in between is not billed).
    let started = ctl
        .launched
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_else(Instant::now);
    let RunOutcome {
        state,
        bad_event,
        cancelled,
    } = supervise_with(
        exec,
        &handle,
        &events_path(parts, &job),
        parts.poll,
        STOP_GRACE,
        cancel,
        |batch| async move { take_events(cx, r, &batch).await },
    )
    .await?;

    // Measured by the engine: wall time while the runtime ran, × devices,
    // rounded up, capped at the job's maximum.
    let devices = artha_core::CostModel::billed_devices(&r.spec);
    let secs = started.elapsed().as_millis().div_ceil(1000) as u64;
    let max = parts.cost.estimate(&r.spec)?.gpu_seconds;
    let total = r
        .gpu_seconds
        .unwrap_or(0)
        .saturating_add(secs.saturating_mul(devices))
        .min(max);
    let end = RunEnd {
        state,
        gpu_seconds: total,
        bad_event,
        cancelled,
    };
    failpoint("run-ended");
    // The first durable act after the run: everything below is redone from
    // this record after a crash.
    let bytes = serde_json::to_vec(&end).map_err(|e| {
        Error::new(ErrorKind::Internal, "cannot encode the run-end record").with_source(e)
    })?;
    write_atomic(&run_end_path(parts, &job), &bytes)?;
    failpoint("run-end-recorded");
    after_run(cx, r, end).await
}

/// Everything that follows a run's recorded end: billing, the container's
/// logs, removing the run from its executor, then resuming a run that died
/// with the engine, or moving the job on (proving, or failed/cancelled with
/// its partial work committed). Idempotent: after a crash it runs again
/// from the same [`RunEnd`].
pub(crate) async fn after_run(cx: &JobCtx<'_>, r: &JobRecord, end: RunEnd) -> Result<()> {
    let parts = cx.parts;
    let job = r.id;
    let RunEnd {
        state,
        gpu_seconds,
        bad_event,
        cancelled,
    } = end;
    parts.ledger.set_gpu_seconds(&job, gpu_seconds)?;
    failpoint("run-billed");
    if let Some(handle) = parts.ledger.get(&job)?.exec {
        let exec = executor(parts, &r.spec.runtime)?;
        let dir = job_dir(parts, &job);
        if !dir.join(crate::exec::process::OUTPUT_FILE).exists() {
            // Logs that live with the run (a container's, a custom
            // executor's) go with it: keep them with the job. (The process
            // executor writes its output file into the job directory.)
            save_logs(parts, exec, &handle).await;
        }
        exec.remove(&handle).await?;
        failpoint("run-removed");
        parts.ledger.set_exec(&job, None)?;
    }
    failpoint("run-closed");

    let events_file = events_path(parts, &job);
    let events = if bad_event.is_some() {
        Vec::new()
    } else {
        read_events(&events_file).unwrap_or_default()
    };
    let lost = matches!(
        &state,
        ExecState::Finished {
            reason: ExitReason::Lost { .. },
            ..
        }
    );
    // A finished job's status shows the last values its runtime reported,
    // even when the run ended while no engine tailed its events.
    let recorded = parts.ledger.get(&job)?.progress;
    let last = final_progress(recorded.clone(), &events);
    if last != recorded {
        parts.ledger.set_progress(&job, &last)?;
    }
    let completed = events
        .iter()
        .any(|e| matches!(e, RuntimeEvent::Complete { .. }));
    if lost && !completed && !cancelled && bad_event.is_none() {
        // The runtime died with the engine: resume from the last checkpoint.
        let n = read_resumes(parts, &job) + 1;
        if n <= MAX_RESUMES {
            write_atomic(&resumes_path(parts, &job), n.to_string().as_bytes())?;
            let ckpt = rewind_to_checkpoint(parts, r)?;
            // The resumed run is a new run: its end is recorded anew.
            remove_run_end(parts, &job)?;
            let r = parts.ledger.get(&job)?;
            return relaunch(cx, &r, ckpt.as_deref()).await;
        }
    }
    // A run re-attached after a restart ends as `Lost` (its exit status
    // went to the engine that launched it); its events tell: `complete`
    // and no `error` is a finished run.
    let reported_error = events
        .iter()
        .any(|e| matches!(e, RuntimeEvent::Error { .. }));
    let failure = bad_event.or_else(|| {
        if lost && completed && !reported_error {
            None
        } else {
            failure_reason(&state, &events)
        }
    });
    let (to, reason) = if cancelled {
        (
            JobPhase::Cancelled,
            Some("cancelled by the submitter while running".to_string()),
        )
    } else if let Some(f) = failure {
        (JobPhase::Failed, Some(f))
    } else {
        return parts
            .ledger
            .transition(&job, JobPhase::Running, JobPhase::Proving, None);
    };
    // Steps already computed are committed (and paid for their measured
    // time); with none, the job is refunded when closed.
    let r = parts.ledger.get(&job)?;
    if let Err(e) = prove(parts, &r, Some(to)).await {
        let why = format!(
            "{}; proofs of the partial work not committed: {}",
            reason.clone().unwrap_or_default(),
            describe(&e)
        );
        return parts
            .ledger
            .transition(&job, JobPhase::Running, to, Some(&why));
    }
    parts
        .ledger
        .transition(&job, JobPhase::Running, to, reason.as_deref())
}

/// `recorded` brought up to the end of a run's `events`: the last step
/// (its epoch and loss) when it is past the recorded one, and at least as
/// many inferences as the events hold (checkpoints count only once
/// stored, so they stay as recorded).
pub(crate) fn final_progress(mut recorded: JobProgress, events: &[RuntimeEvent]) -> JobProgress {
    let last = events.iter().rev().find_map(|e| match e {
        RuntimeEvent::Step(s) => Some(s),
        _ => None,
    });
    if let Some(s) = last
        && s.step > recorded.step
    {
        recorded.step = s.step;
        recorded.epoch = s.epoch;
        recorded.loss = Some(s.loss);
    }
    let served = events
        .iter()
        .filter(|e| matches!(e, RuntimeEvent::Infer(_)))
        .count() as u64;
    recorded.inferences = recorded.inferences.max(served);
    recorded
}

pub(crate) fn remove_run_end(parts: &Parts, job: &JobId) -> Result<()> {
    let p = run_end_path(parts, job);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove the run-end record", &p, e)),
    }
}

pub(crate) fn read_resumes(parts: &Parts, job: &JobId) -> u32 {
    std::fs::read_to_string(resumes_path(parts, job))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Drops the events after the last checkpoint whose file exists (and which
/// the runtime can resume from), so the resumed run reports those steps
/// again; returns that checkpoint's file name, or `None` to start over.
pub(crate) fn rewind_to_checkpoint(parts: &Parts, r: &JobRecord) -> Result<Option<String>> {
    let path = events_path(parts, &r.id);
    let events = read_events(&path).unwrap_or_default();
    let ckpt_dir = mounts(parts, &r.id, &r.spec).checkpoints;
    let last = events
        .iter()
        .filter_map(|e| match e {
            RuntimeEvent::Checkpoint { path, step } if ckpt_dir.join(path).is_file() => {
                Some((path.clone(), *step))
            }
            _ => None,
        })
        .filter(|(p, _)| p != "final.safetensors")
        .max_by_key(|(_, s)| *s);
    let keep_until = last.as_ref().map_or(0, |(_, s)| *s);
    let mut out = String::new();
    for e in &events {
        let keep = match e {
            RuntimeEvent::Step(s) => s.step <= keep_until,
            RuntimeEvent::Checkpoint { step, path } => {
                *step <= keep_until && path != "final.safetensors"
            }
            RuntimeEvent::Log { .. } => true,
            _ => false,
        };
        if keep {
            let line = serde_json::to_string(e).map_err(|e| {
                Error::new(ErrorKind::Internal, "cannot encode an event").with_source(e)
            })?;
            out.push_str(&line);
            out.push('\n');
        }
    }
    write_atomic(&path, out.as_bytes())?;
    Ok(last.map(|(p, _)| p))
}

pub(crate) async fn relaunch(cx: &JobCtx<'_>, r: &JobRecord, ckpt: Option<&str>) -> Result<()> {
    let parts = cx.parts;
    if ckpt.is_none() {
        // Nothing to resume from: start the run over.
        let m = mounts(parts, &r.id, &r.spec);
        crate::store::remove_tree(&m.checkpoints)?;
        std::fs::create_dir_all(&m.checkpoints)
            .map_err(|e| io_err("create the checkpoint directory", &m.checkpoints, e))?;
        write_atomic(&events_path(parts, &r.id), b"")?;
    }
    stage_and_launch(cx, r, ckpt).await
}

pub(crate) async fn save_logs(parts: &Parts, exec: &dyn Executor, handle: &ExecHandle) {
    let out = job_dir(parts, &handle.job_id).join("output.jsonl");
    if let Ok(lines) = exec.logs(handle, 0).await {
        let mut text = String::new();
        for l in &lines {
            if let Ok(j) = serde_json::to_string(l) {
                text.push_str(&j);
                text.push('\n');
            }
        }
        let _ = write_atomic(&out, text.as_bytes());
    }
}

pub(crate) async fn logs(parts: &Parts, job: &JobId, since: u64) -> Result<Vec<LogLine>> {
    let r = parts.ledger.get(job)?;
    if let Some(h) = &r.exec {
        let exec = executor(parts, &r.spec.runtime)?;
        if let Ok(lines) = exec.logs(h, since).await {
            return Ok(lines);
        }
    }
    read_output(&job_dir(parts, job), since)
}

/// The output lines recorded in a job's directory from `since`: a
/// container's saved logs (`output.jsonl`), else a native runtime's output
/// file; none when there is no output yet.
pub(crate) fn read_output(job_dir: &Path, since: u64) -> Result<Vec<LogLine>> {
    let p = job_dir.join("output.jsonl");
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        // A native runtime's output file (the process executor's).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return crate::exec::process::read_output_log(job_dir, since);
        }
        Err(e) => return Err(io_err("read the job output", &p, e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<LogLine>(l).ok())
        .filter(|l| l.seq >= since)
        .collect())
}

#[cfg(test)]
mod tests {
    use artha_core::{Blake3Digest, InferRecord, StepRecord};

    use super::*;

    #[test]
    fn final_progress_takes_the_last_reported_values() {
        let d = Blake3Digest::of(b"x");
        let step = |step, epoch, loss| {
            RuntimeEvent::Step(StepRecord {
                step,
                epoch,
                loss,
                grad_digest: d,
                weight_digest: d,
                batch_digest: d,
            })
        };
        let events = [
            step(7, 0, 0.5),
            step(8, 1, 0.25),
            RuntimeEvent::Infer(InferRecord {
                input_digest: d,
                output_digest: d,
            }),
        ];
        let recorded = JobProgress {
            step: 5,
            epoch: 0,
            loss: Some(0.75),
            checkpoints: 2,
            inferences: 0,
        };
        let p = final_progress(recorded.clone(), &events);
        assert_eq!((p.step, p.epoch, p.loss), (8, 1, Some(0.25)));
        assert_eq!((p.checkpoints, p.inferences), (2, 1));
        // Never backwards.
        let ahead = JobProgress {
            step: 9,
            ..recorded
        };
        assert_eq!(final_progress(ahead.clone(), &events[..2]), ahead);
    }
}
