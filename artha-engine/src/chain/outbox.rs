//! The chain outbox: writes to the chain that survive RPC outages and engine
//! restarts, without ever being applied twice.
//!
//! Every write (submit, assign, commit, finalize, fail) is recorded **before** it
//! is sent, keyed by job and action, in a file written atomically. Then:
//! - sent and mined → recorded as done with its receipt;
//! - the endpoint is unavailable (retryable error) → stays pending;
//!   [`Outbox::flush`] sends it again later;
//! - reverted → the chain is asked whether the action's effect is already
//!   there (a crash between send and record, or a duplicate); if so it is
//!   done, otherwise the entry is dropped and the revert returned.
//!
//! Before re-sending a pending write, [`Outbox::flush`] also asks the chain
//! whether the effect is already there, so an engine that crashed after
//! sending but before recording never sends the same transaction twice.
//! (The contracts themselves refuse duplicates too: `JobExists`,
//! `AlreadyCommitted`, `AlreadyFinalized`.)

use std::path::{Path, PathBuf};

use artha_core::{
    ChainJobStatus, ChainSubmission, Commitment, Error, ErrorKind, JobId, NodeId, ProofChain,
    Receipt, Result,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::fsutil::{io_err, write_atomic};

/// A chain write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Write {
    /// Submit a job with its escrow.
    Submit(ChainSubmission),
    /// Assign a job to a node.
    Assign {
        /// The job.
        job: JobId,
        /// The node.
        node: NodeId,
    },
    /// Commit a job's results.
    Commit(Commitment),
    /// Pay out a job after its challenge period.
    Finalize {
        /// The job.
        job: JobId,
    },
    /// End an assigned job with nothing to commit; refunds its escrow.
    Fail {
        /// The job.
        job: JobId,
    },
}

impl Write {
    /// The job the write is about.
    pub fn job(&self) -> JobId {
        match self {
            Write::Submit(s) => s.job_id,
            Write::Assign { job, .. } | Write::Finalize { job } | Write::Fail { job } => *job,
            Write::Commit(c) => c.job_id,
        }
    }

    /// What the write does, as recorded on the job.
    pub fn action(&self) -> artha_core::ChainAction {
        use artha_core::ChainAction;
        match self {
            Write::Submit(_) => ChainAction::Submit,
            Write::Assign { .. } => ChainAction::Assign,
            Write::Commit(_) => ChainAction::Commit,
            Write::Finalize { .. } => ChainAction::Finalize,
            Write::Fail { .. } => ChainAction::Fail,
        }
    }

    /// The action's name (`submit`, `assign`, `commit`, `finalize`).
    pub fn name(&self) -> &'static str {
        match self {
            Write::Submit(_) => "submit",
            Write::Assign { .. } => "assign",
            Write::Commit(_) => "commit",
            Write::Finalize { .. } => "finalize",
            Write::Fail { .. } => "fail",
        }
    }

    /// Whether a job in `status` already shows this write's effect.
    fn applied_in(&self, status: ChainJobStatus) -> bool {
        use ChainJobStatus::*;
        match self {
            Write::Submit(_) => true,
            Write::Assign { .. } => matches!(
                status,
                Assigned | Committed | Challenged | Finalized | Slashed
            ),
            Write::Commit(_) => matches!(status, Committed | Challenged | Finalized | Slashed),
            Write::Finalize { .. } => status == Finalized,
            Write::Fail { .. } => status == Failed,
        }
    }
}

/// Where a write stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Recorded, not yet known to be on chain.
    Pending {
        /// Send attempts so far.
        attempts: u32,
        /// The last failure.
        last_error: Option<String>,
    },
    /// On chain. The receipt is missing when the effect was found on chain
    /// rather than seen mined (a crash between send and record).
    Done {
        /// The receipt.
        receipt: Option<Receipt>,
    },
}

/// One recorded write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What to write.
    pub write: Write,
    /// Where it stands.
    pub state: State,
}

/// A persistent outbox in front of a [`ProofChain`].
#[derive(Debug)]
pub struct Outbox<C> {
    chain: C,
    path: PathBuf,
    entries: Mutex<Vec<Entry>>,
}

async fn applied<C: ProofChain>(chain: &C, w: &Write) -> Result<bool> {
    match chain.job_status(&w.job()).await {
        Ok(status) => Ok(w.applied_in(status)),
        // UnknownJob: `NotFound` once decoded.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Reverted) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn send<C: ProofChain>(chain: &C, w: &Write) -> Result<Receipt> {
    match w {
        Write::Submit(s) => chain.submit_job(s).await,
        Write::Assign { job, node } => chain.assign(job, node).await,
        Write::Commit(c) => chain.commit(c).await,
        Write::Finalize { job } => chain.finalize(job).await,
        Write::Fail { job } => chain.fail(job).await,
    }
}

impl<C: ProofChain> Outbox<C> {
    /// Opens the outbox persisted at `path` (empty if absent).
    pub fn open(chain: C, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let entries = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::new(
                    ErrorKind::Corrupted,
                    format!("chain outbox is malformed: {e}"),
                )
                .with_context("path", path.display().to_string())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err("read the chain outbox", &path, e)),
        };
        Ok(Outbox {
            chain,
            path,
            entries: Mutex::new(entries),
        })
    }

    /// The chain behind the outbox.
    pub fn chain(&self) -> &C {
        &self.chain
    }

    /// The file it persists to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn persist(&self, entries: &[Entry]) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(entries).map_err(|e| {
            Error::new(ErrorKind::Internal, "cannot encode the outbox").with_source(e)
        })?;
        write_atomic(&self.path, &bytes)
    }

    /// Every entry.
    pub async fn entries(&self) -> Vec<Entry> {
        self.entries.lock().await.clone()
    }

    /// Drops every entry of `job` — once the job is settled, which no write
    /// follows, so the outbox holds only the writes of live jobs (it is
    /// rewritten whole on each change).
    pub async fn forget(&self, job: &JobId) -> Result<()> {
        self.forget_where(|j| j == job).await
    }

    /// Drops every entry of the jobs `done` picks, in one pass (one write).
    pub async fn forget_where(&self, done: impl Fn(&JobId) -> bool) -> Result<()> {
        let mut entries = self.entries.lock().await;
        let before = entries.len();
        entries.retain(|e| !done(&e.write.job()));
        if entries.len() != before {
            self.persist(&entries)?;
        }
        Ok(())
    }

    /// Whether the write `action` (`submit`, `commit`, …) of `job` is known
    /// to be on chain — seen mined, or found there after a crash (then
    /// without a receipt).
    pub async fn is_done(&self, job: &JobId, action: &str) -> bool {
        self.entries.lock().await.iter().any(|e| {
            e.write.job() == *job
                && e.write.name() == action
                && matches!(e.state, State::Done { .. })
        })
    }

    /// Writes `w`: recorded first, then sent. Returns the receipt (`None`
    /// when the effect was found on chain already). A retryable failure
    /// leaves it pending (see [`flush`](Self::flush)) and is returned.
    pub async fn write(&self, w: Write) -> Result<Option<Receipt>> {
        let mut entries = self.entries.lock().await;
        let idx = match entries
            .iter()
            .position(|e| e.write.job() == w.job() && e.write.name() == w.name())
        {
            Some(i) => {
                if let State::Done { receipt } = &entries[i].state {
                    return Ok(receipt.clone());
                }
                i
            }
            None => {
                entries.push(Entry {
                    write: w,
                    state: State::Pending {
                        attempts: 0,
                        last_error: None,
                    },
                });
                self.persist(&entries)?;
                entries.len() - 1
            }
        };
        self.attempt(&mut entries, idx, false).await
    }

    /// Sends every pending write again (checking the chain first); returns
    /// how many are still pending. A write the chain refuses for good is
    /// dropped (see [`write`](Self::write)) and the others still go out;
    /// the first such refusal is returned after them.
    pub async fn flush(&self) -> Result<usize> {
        let mut entries = self.entries.lock().await;
        let mut refused = None;
        let mut i = 0;
        while i < entries.len() {
            if matches!(entries[i].state, State::Pending { .. }) {
                let before = entries.len();
                match self.attempt(&mut entries, i, true).await {
                    Ok(_) => {}
                    Err(e) if e.is_retryable() => {}
                    Err(e) => {
                        refused.get_or_insert(e);
                    }
                }
                if entries.len() < before {
                    continue; // entry i was dropped: the next one is at i
                }
            }
            i += 1;
        }
        if let Some(e) = refused {
            return Err(e);
        }
        Ok(entries
            .iter()
            .filter(|e| matches!(e.state, State::Pending { .. }))
            .count())
    }

    async fn attempt(
        &self,
        entries: &mut Vec<Entry>,
        i: usize,
        check_first: bool,
    ) -> Result<Option<Receipt>> {
        let w = entries[i].write.clone();
        if check_first && applied(&self.chain, &w).await? {
            entries[i].state = State::Done { receipt: None };
            self.persist(entries)?;
            return Ok(None);
        }
        match send(&self.chain, &w).await {
            Ok(r) => {
                entries[i].state = State::Done {
                    receipt: Some(r.clone()),
                };
                self.persist(entries)?;
                Ok(Some(r))
            }
            Err(e) if e.is_retryable() => {
                if let State::Pending {
                    attempts,
                    last_error,
                } = &mut entries[i].state
                {
                    *attempts += 1;
                    *last_error = Some(e.to_string());
                }
                self.persist(entries)?;
                Err(e)
            }
            Err(e) => {
                if applied(&self.chain, &w).await.unwrap_or(false) {
                    entries[i].state = State::Done { receipt: None };
                    self.persist(entries)?;
                    return Ok(None);
                }
                entries.remove(i);
                self.persist(entries)?;
                Err(e
                    .with_context("action", w.name())
                    .with_context("job_id", w.job().to_string()))
            }
        }
    }
}
