//! [`Job`]: the handle of one job — its status, its events as a stream,
//! its logs, waiting for its outcome, cancelling it.

use std::time::Duration;

use artha_core::{
    Error, ErrorKind, JobEvent, JobId, JobOutcome, JobPhase, JobRecord, JobStatus, LogLine, Result,
};
use futures_util::Stream;
use tokio::sync::watch;

use super::Engine;

/// How long a waiter sleeps at most between looks at the ledger.
const POLL: Duration = Duration::from_millis(50);

/// A job of an [`Engine`] (from [`Engine::submit`] or [`Engine::job`]).
#[derive(Debug, Clone)]
pub struct Job {
    engine: Engine,
    id: JobId,
}

impl Job {
    pub(crate) fn new(engine: Engine, id: JobId) -> Self {
        Job { engine, id }
    }

    /// Its id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Its status: phase, progress, cost, artifacts, receipts, history and,
    /// once it has ended, its outcome.
    pub fn status(&self) -> Result<JobStatus> {
        self.engine.status(&self.id)
    }

    /// Its record as the ledger holds it.
    pub fn record(&self) -> Result<JobRecord> {
        self.engine.record(&self.id)
    }

    /// Its output lines (stdout/stderr) from position `since`.
    pub async fn logs(&self, since: u64) -> Result<Vec<LogLine>> {
        self.engine.logs(&self.id, since).await
    }

    /// Waits until the job has ended and the engine has closed it (its GPUs
    /// freed; refunded when nothing was computed), and returns how it
    /// ended. It does not wait for settlement after the challenge period.
    pub async fn wait(&self) -> Result<JobOutcome> {
        let r = self.wait_for(JobPhase::is_terminal).await?;
        JobOutcome::of(&r).ok_or_else(|| {
            Error::new(ErrorKind::Internal, "an ended job has no outcome")
                .with_context("job_id", self.id.to_string())
        })
    }

    /// Waits until the job's phase satisfies `done`; for a terminal phase,
    /// also until the engine has closed the job.
    pub async fn wait_for(&self, done: fn(JobPhase) -> bool) -> Result<JobRecord> {
        let mut rx = self.changes();
        loop {
            let r = self.record()?;
            if done(r.phase) && !(r.phase.is_terminal() && self.driving()) {
                return Ok(r);
            }
            next_change(&mut rx, POLL).await;
        }
    }

    /// Cancels the job if it has not finished running: staging stops, a
    /// running runtime is stopped, GPUs are freed. Steps already computed
    /// are committed and paid for; a job with none is refunded. `Conflict`
    /// once the job is past running. Returns the job's status once closed.
    pub async fn cancel(&self) -> Result<JobStatus> {
        let r = self.record()?;
        if !matches!(
            r.phase,
            JobPhase::Submitted
                | JobPhase::Accepted
                | JobPhase::Scheduled
                | JobPhase::Staging
                | JobPhase::Running
        ) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a {} job cannot be cancelled", r.phase),
            )
            .with_context("job_id", self.id.to_string()));
        }
        let ctl = self.engine.parts.run_ctl(&self.id);
        ctl.cancel.send_replace(true);
        if crate::jobs::is_held(&r) {
            // Nothing drives a held job: release it into a driver that
            // finds it cancelled.
            self.engine.parts.ledger.release(&self.id)?;
            super::tasks::spawn_driver(&self.engine, self.id);
        }
        self.wait_for(JobPhase::is_terminal).await?;
        self.status()
    }

    /// Its events, in order, from the start of its life: each phase it
    /// entered, progress as its runtime reports it, its log lines, its
    /// chain receipts and its artifacts. The stream ends once the job is
    /// settled; a job that ended but is not settled yet (inside its
    /// challenge period) ends the stream when it is closed.
    pub fn events(&self) -> impl Stream<Item = Result<JobEvent>> + Send + 'static {
        self.stream(true)
    }

    /// [`events`](Self::events) without the log lines, receipts and
    /// artifacts: phase changes and progress only (what a progress display
    /// needs, at the cost of one ledger read per change).
    pub fn progress_events(&self) -> impl Stream<Item = Result<JobEvent>> + Send + 'static {
        self.stream(false)
    }

    fn stream(&self, all: bool) -> impl Stream<Item = Result<JobEvent>> + Send + 'static {
        let state = EventsState {
            all,
            job: self.clone(),
            rx: None,
            phases: 0,
            receipts: 0,
            artifacts: 0,
            log_seq: 0,
            progress: None,
            queue: std::collections::VecDeque::new(),
            done: false,
        };
        futures_util::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(ev) = st.queue.pop_front() {
                    return Some((Ok(ev), st));
                }
                if st.done {
                    return None;
                }
                if st.rx.is_none() {
                    st.rx = st.job.changes();
                }
                match st.poll().await {
                    Ok(()) => {}
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                }
                if st.queue.is_empty() && !st.done {
                    next_change(&mut st.rx, POLL).await;
                }
            }
        })
    }

    fn changes(&self) -> Option<watch::Receiver<artha_core::JobProgress>> {
        self.engine
            .parts
            .runs()
            .get(&self.id)
            .map(|c| c.progress.subscribe())
    }

    /// Whether a task of this engine is driving the job now.
    fn driving(&self) -> bool {
        self.engine
            .parts
            .runs()
            .get(&self.id)
            .is_some_and(|c| c.driving.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Sleeps until the job's progress changes (phase, step, checkpoint) or
/// `at_most` passes.
async fn next_change(rx: &mut Option<watch::Receiver<artha_core::JobProgress>>, at_most: Duration) {
    match rx {
        Some(r) => {
            if let Ok(Err(_)) = tokio::time::timeout(at_most, r.changed()).await {
                // The driver is gone: poll from now on.
                *rx = None;
            }
        }
        None => tokio::time::sleep(at_most).await,
    }
}

struct EventsState {
    /// Logs, receipts and artifacts too.
    all: bool,
    job: Job,
    rx: Option<watch::Receiver<artha_core::JobProgress>>,
    phases: usize,
    receipts: usize,
    artifacts: usize,
    log_seq: u64,
    progress: Option<artha_core::JobProgress>,
    queue: std::collections::VecDeque<JobEvent>,
    done: bool,
}

impl EventsState {
    /// Queues what is new since the last look.
    async fn poll(&mut self) -> Result<()> {
        let r = self.job.record()?;
        let live = self
            .rx
            .as_ref()
            .map(|rx| rx.borrow().clone())
            .filter(|p| p.step > 0 || p.inferences > 0 || p.checkpoints > 0);
        let progress = live.unwrap_or_else(|| r.progress.clone());
        if self.progress.as_ref() != Some(&progress) && progress != Default::default() {
            self.progress = Some(progress.clone());
            self.queue.push_back(JobEvent::Progress(progress));
        }
        if self.all {
            for line in self.job.logs(self.log_seq).await.unwrap_or_default() {
                self.log_seq = line.seq + 1;
                self.queue.push_back(JobEvent::Log(line));
            }
            for a in r.artifacts.iter().skip(self.artifacts) {
                self.queue.push_back(JobEvent::Artifact(a.clone()));
            }
            for x in r.receipts.iter().skip(self.receipts) {
                self.queue.push_back(JobEvent::Receipt(x.clone()));
            }
        }
        self.artifacts = r.artifacts.len();
        self.receipts = r.receipts.len();
        for t in r.history.iter().skip(self.phases) {
            self.queue.push_back(JobEvent::Phase {
                phase: t.phase,
                reason: t.reason.clone(),
            });
        }
        self.phases = r.history.len();
        if r.phase == JobPhase::Settled || (r.phase.is_terminal() && !self.job.driving()) {
            self.done = true;
        }
        Ok(())
    }
}
