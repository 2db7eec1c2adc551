//! A read-only view of a home that another process's engine holds.
//!
//! One engine has a home open at a time (the lock in [`crate::home`]); a
//! second `arthai job-status` while `arthai train` runs would be refused.
//! [`JobsView`] reads what that engine records — the job ledger (SQLite in
//! WAL mode, which lets readers in beside the writer; progress is persisted
//! there with each job) and the runs' output — without taking the lock or writing anything, so
//! status, listings, progress and logs can be watched from another shell.
//! It cannot drive, cancel or settle jobs: that needs the engine (or, once
//! it exists, the daemon of `arthai serve`).

use std::path::{Path, PathBuf};

use artha_core::{
    Amount, CostModel, Error, ErrorKind, JobId, JobPhase, JobStatus, LogLine, Result, RuntimeEvent,
    StepRecord,
};
use serde::{Deserialize, Serialize};

use crate::fsutil::{io_err, write_atomic};
use crate::jobs::{JobLedger, JobRecord};

/// What an engine records about its node for readers (`jobs/node.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeFacts {
    /// Price per GPU-second, wei.
    pub rate_wei: u128,
}

pub(crate) fn node_facts_path(home: &Path) -> PathBuf {
    home.join("jobs").join("node.json")
}

/// Records `facts` for [`JobsView`] readers.
pub(crate) fn write_node_facts(home: &Path, facts: &NodeFacts) -> Result<()> {
    let bytes = serde_json::to_vec(facts)
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode node facts").with_source(e))?;
    write_atomic(&node_facts_path(home), &bytes)
}

/// Read-only access to the jobs of a home, while another engine holds it.
#[derive(Debug)]
pub struct JobsView {
    ledger: JobLedger,
    runs: PathBuf,
    cost: Option<CostModel>,
}

impl JobsView {
    /// Opens the view of `home` (`NotFound` when it holds no job ledger).
    pub fn open(home: impl AsRef<Path>) -> Result<JobsView> {
        let home = home.as_ref();
        let db = home.join("jobs").join("ledger.db");
        if !db.is_file() {
            return Err(
                Error::new(ErrorKind::NotFound, "no job ledger in this home")
                    .with_context("path", db.display().to_string()),
            );
        }
        let cost = match std::fs::read(node_facts_path(home)) {
            Ok(b) => serde_json::from_slice::<NodeFacts>(&b)
                .ok()
                .map(|f| CostModel::new(Amount::from_wei(f.rate_wei))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("read the node facts", &node_facts_path(home), e)),
        };
        Ok(JobsView {
            ledger: JobLedger::open(&db)?,
            runs: home.join("jobs").join("run"),
            cost,
        })
    }

    /// The view of `home` when another process's engine holds it; `None`
    /// when the home is free (open the [`super::Engine`] then).
    pub fn if_busy(home: impl AsRef<Path>) -> Result<Option<JobsView>> {
        if !crate::home::is_home(home.as_ref()) {
            return Ok(None); // not a home yet: nobody holds it
        }
        match crate::home::EngineHome::open(home.as_ref()) {
            Ok(_free) => Ok(None),
            Err(e) if e.kind() == ErrorKind::Conflict => JobsView::open(home).map(Some),
            Err(e) => Err(e),
        }
    }

    /// A job's record.
    pub fn record(&self, job: &JobId) -> Result<JobRecord> {
        self.ledger.get(job)
    }

    /// A job's status, with the progress persisted with it and, for a
    /// running job, the last step in the tail of its events file: a
    /// bounded read whatever the length of the job's events.
    pub fn status(&self, job: &JobId) -> Result<JobStatus> {
        let mut r = self.record(job)?;
        if r.phase == JobPhase::Running
            && let Some(s) = last_step(&self.runs.join(job.to_string()))
            && s.step > r.progress.step
        {
            r.progress.step = s.step;
            r.progress.epoch = s.epoch;
            r.progress.loss = Some(s.loss);
        }
        JobStatus::of(&r, self.cost.as_ref())
    }

    /// Every job, newest first.
    pub fn list(&self) -> Result<Vec<JobRecord>> {
        super::list_jobs(&self.ledger)
    }

    /// A job's output lines from `since` (as recorded so far).
    pub fn logs(&self, job: &JobId, since: u64) -> Result<Vec<LogLine>> {
        self.ledger.get(job)?;
        crate::lifecycle::run::read_output(&self.runs.join(job.to_string()), since)
    }
}

/// How much of the end of an events file [`last_step`] reads.
const TAIL_BYTES: u64 = 256 * 1024;

/// The last step a job's runtime reported, from the last [`TAIL_BYTES`] of
/// its events file (opened without following links; the job controls the
/// file, so anything unreadable or malformed is simply no answer).
fn last_step(job_dir: &Path) -> Option<StepRecord> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = crate::exec::collect::open_in(
        &job_dir.join("artha"),
        Path::new(crate::exec::EVENTS_FILE),
        "the events file",
        u64::MAX,
    )
    .ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.take(TAIL_BYTES).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // cut mid-line
    }
    lines
        .iter()
        .rev()
        .find_map(|l| match RuntimeEvent::parse_line(0, l) {
            Ok(RuntimeEvent::Step(s)) => Some(s),
            _ => None,
        })
}
