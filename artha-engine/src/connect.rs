//! [`connect`]: the engine of a home — the client of the `arthai serve`
//! that serves it when one answers, else an embedded engine opened here
//! (the lancedb local/remote pattern). [`Connection`] has one API for
//! both, in the values of [`crate::api`]; the CLI and the bindings use only
//! it, so many shells and programs share one home through its daemon.

use std::path::Path;

use artha_core::{
    ArthaUri, DatasetId, Error, ErrorKind, JobEvent, JobId, JobOutcome, JobPhase, JobSpec,
    JobStatus, LogLine, ModelId, Result,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::api::{DueJob, EngineInfo, JobEstimate, JobSummary, SettleReport, Stats, Submitted};
use crate::engine::{DatasetEntry, DatasetMeta, Engine, ModelEntry, ModelRegistration, NodeInfo};
use crate::proofs::ProofManifest;
use crate::store::{LayoutReport, Listing, PushReport};

/// The engine of a home, embedded or through its daemon.
#[derive(Debug, Clone)]
pub enum Connection {
    /// An engine in this process.
    Local(Engine),
    /// The client of the daemon serving the home.
    #[cfg(feature = "client")]
    Remote(crate::remote::RemoteEngine),
}

/// The daemon serving `home` when one answers, else the engine opened
/// here with the defaults ([`Engine::open`]). Without the `client`
/// feature, always the embedded engine.
pub async fn connect(home: impl AsRef<Path>) -> Result<Connection> {
    let home = home.as_ref();
    connect_or(home, async || Engine::open(home).await).await
}

/// [`connect`], opening the embedded engine with `open` when no daemon
/// serves `home` (e.g. an [`EngineBuilder`](crate::EngineBuilder) with
/// options of one's own).
pub async fn connect_or(
    home: &Path,
    open: impl AsyncFnOnce() -> Result<Engine>,
) -> Result<Connection> {
    #[cfg(feature = "client")]
    if let Some(r) = crate::remote::discover(home).await? {
        return Ok(Connection::Remote(r));
    }
    let _ = home;
    open().await.map(Connection::Local)
}

macro_rules! both {
    ($self:ident, $e:ident => $local:expr, $r:ident => $remote:expr) => {
        match $self {
            Connection::Local($e) => $local,
            #[cfg(feature = "client")]
            Connection::Remote($r) => $remote,
        }
    };
}

impl Connection {
    /// Whether this is a daemon's client.
    pub fn is_remote(&self) -> bool {
        !matches!(self, Connection::Local(_))
    }

    /// The daemon's URL, for a remote connection.
    pub fn url(&self) -> Option<&str> {
        both!(self, _e => None, r => Some(r.url()))
    }

    /// Who the engine is.
    pub async fn info(&self) -> Result<EngineInfo> {
        both!(self, e => Ok(e.info()), r => r.info().await)
    }

    /// Submits a job (a zero budget means the estimate); returns its id,
    /// status and estimate.
    pub async fn submit(&self, spec: JobSpec) -> Result<Submitted> {
        self.submit_with(spec, false).await
    }

    /// Submits a job held (checked and recorded; it starts on
    /// [`release`](Self::release)), as `sbatch --hold` does.
    pub async fn submit_held(&self, spec: JobSpec) -> Result<Submitted> {
        self.submit_with(spec, true).await
    }

    /// [`submit`](Self::submit), or [`submit_held`](Self::submit_held)
    /// when `hold` (the front ends' `--hold` / `hold=True` / `{hold}`).
    pub async fn submit_with(&self, spec: JobSpec, hold: bool) -> Result<Submitted> {
        both!(self, e => e.submit_estimated(spec, hold).await, r => r.submit(&spec, hold).await)
    }

    /// Starts a held job (`Conflict` when it is not held).
    pub async fn release(&self, job: &JobId) -> Result<JobStatus> {
        both!(self, e => e.release(job).await, r => r.release(job).await)
    }

    /// What `spec` may cost and take.
    pub async fn estimate(&self, spec: &JobSpec) -> Result<JobEstimate> {
        both!(self, e => e.estimate(spec), r => r.estimate(spec).await)
    }

    /// A job's status.
    pub async fn status(&self, job: &JobId) -> Result<JobStatus> {
        both!(self, e => e.status(job), r => r.status(job).await)
    }

    /// Every job, newest first.
    pub async fn jobs(&self) -> Result<Vec<JobSummary>> {
        both!(self, e => e.summaries(), r => r.summaries().await)
    }

    /// A job's output lines from `since`.
    pub async fn logs(&self, job: &JobId, since: u64) -> Result<Vec<LogLine>> {
        both!(self, e => e.logs(job, since).await, r => r.logs(job, since).await)
    }

    /// A job's output lines from `since` as they come, until it ends.
    pub async fn follow_logs(
        &self,
        job: &JobId,
        since: u64,
    ) -> Result<BoxStream<'static, Result<LogLine>>> {
        both!(self, e => {
            let events = e.job(job)?.events();
            Ok(events
                .filter_map(move |ev| async move {
                    match ev {
                        Ok(JobEvent::Log(l)) if l.seq >= since => Some(Ok(l)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    }
                })
                .boxed())
        }, r => r.follow_logs(job, since).await)
    }

    /// A job's events as they happen; phases and progress only with
    /// `progress_only`.
    pub async fn events(
        &self,
        job: &JobId,
        progress_only: bool,
    ) -> Result<BoxStream<'static, Result<JobEvent>>> {
        both!(self, e => {
            let j = e.job(job)?;
            Ok(if progress_only { j.progress_events().boxed() } else { j.events().boxed() })
        }, r => r.events(job, progress_only).await)
    }

    /// Waits until a job has ended, and returns how.
    #[allow(irrefutable_let_patterns)] // without `client`, always local
    pub async fn wait(&self, job: &JobId) -> Result<JobOutcome> {
        if let Connection::Local(e) = self {
            return e.job(job)?.wait().await;
        }
        let mut events = self.events(job, true).await?;
        while let Some(ev) = events.next().await {
            if let JobEvent::Phase { phase, .. } = ev?
                && phase.is_terminal()
            {
                break;
            }
        }
        let st = self.status(job).await?;
        st.outcome.ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "the daemon's stream ended before the job did (was the daemon stopped?)",
            )
            .with_context("job_id", job.to_string())
        })
    }

    /// Cancels a job that has not finished running.
    pub async fn cancel(&self, job: &JobId) -> Result<JobStatus> {
        both!(self, e => e.job(job)?.cancel().await, r => r.cancel(job).await)
    }

    /// The proof manifest a job committed.
    pub async fn proofs(&self, job: &JobId) -> Result<ProofManifest> {
        both!(self, e => e.proofs(job).await, r => r.proofs(job).await)
    }

    /// One round of the verifier mode: audits (and, when asked, disputes)
    /// every ended job of the home not in `done`, adding each one audited —
    /// or found never committed — to `done`. A job whose audit seed's block
    /// is not mined yet, or whose chain is briefly unavailable, is left for
    /// the next round.
    pub async fn verify_pending(
        &self,
        req: &crate::dispute::VerifyRequest,
        done: &mut std::collections::HashSet<JobId>,
    ) -> Result<Vec<crate::dispute::VerifyOutcome>> {
        let mut out = Vec::new();
        for s in self.jobs().await? {
            let ended = matches!(
                s.phase,
                JobPhase::Completed | JobPhase::Failed | JobPhase::Cancelled | JobPhase::Settled
            );
            if !ended || done.contains(&s.job_id) {
                continue;
            }
            match self.verify(&s.job_id, req).await {
                Ok(o) => {
                    done.insert(s.job_id);
                    out.push(o);
                }
                // Never committed (refunded), or gone.
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    done.insert(s.job_id);
                }
                Err(e) if e.kind() == ErrorKind::Conflict || e.is_retryable() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Audits a committed job by replay and, when asked, disputes it
    /// ([`Engine::verify_job`]).
    pub async fn verify(
        &self,
        job: &JobId,
        req: &crate::dispute::VerifyRequest,
    ) -> Result<crate::dispute::VerifyOutcome> {
        both!(self, e => e.verify_job(job, req).await, r => r.verify(job, req).await)
    }

    /// Settles every job whose challenge period passed; says what is left.
    pub async fn settle(&self) -> Result<SettleReport> {
        both!(self, e => e.settle().await, r => r.settle().await)
    }

    /// Committed jobs waiting for their challenge period, soonest first.
    pub async fn due(&self) -> Result<Vec<DueJob>> {
        both!(self, e => e.due().await, r => r.due().await)
    }

    /// Moves a development chain's clock forward; returns the chain time
    /// after. `Unsupported` on other chains.
    pub async fn dev_advance(&self, secs: u64) -> Result<u64> {
        both!(self, e => e.dev_advance_time(secs).await, r => r.dev_advance(secs).await)
    }

    /// Proof, settlement and resource statistics.
    pub async fn stats(&self) -> Result<Stats> {
        both!(self, e => e.stats().await, r => r.stats().await)
    }

    /// Pushes a file or tree into the home's store and pins it.
    pub async fn push(&self, path: &Path) -> Result<PushReport> {
        both!(self, e => e.push(path).await, r => r.push(path).await)
    }

    /// Writes what `uri` names to `dest` (which must not exist) on this
    /// host (through a daemon: on the daemon's host, which serves loopback
    /// callers only).
    pub async fn get(&self, uri: &ArthaUri, dest: &Path) -> Result<LayoutReport> {
        both!(self, e => e.store().get(uri, dest).await, r => r.get_to(uri, dest).await)
    }

    /// What `uri` names; a directory's entries.
    pub async fn ls(&self, uri: &ArthaUri) -> Result<Listing> {
        both!(self, e => e.store().ls(uri).await, r => r.ls(uri).await)
    }

    /// Registers stored content as a dataset.
    pub async fn register_dataset(
        &self,
        uri: &ArthaUri,
        meta: &DatasetMeta,
    ) -> Result<DatasetEntry> {
        both!(self, e => e.register_dataset(uri, meta).await, r => r.register_dataset(uri, meta).await)
    }

    /// Registers stored content as a model.
    pub async fn register_model(
        &self,
        uri: &ArthaUri,
        reg: &ModelRegistration,
    ) -> Result<ModelEntry> {
        both!(self, e => e.register_model(uri, reg).await, r => r.register_model(uri, reg).await)
    }

    /// Every registered dataset, newest first.
    pub async fn datasets(&self) -> Result<Vec<DatasetEntry>> {
        both!(self, e => e.datasets(), r => r.datasets().await)
    }

    /// Every registered model, newest first.
    pub async fn models(&self) -> Result<Vec<ModelEntry>> {
        both!(self, e => e.models(), r => r.models().await)
    }

    /// A dataset, checked against the chain.
    pub async fn dataset(&self, id: &DatasetId) -> Result<DatasetEntry> {
        both!(self, e => e.dataset(id).await, r => r.dataset(id).await)
    }

    /// A model, checked against the chain.
    pub async fn model(&self, id: &ModelId) -> Result<ModelEntry> {
        both!(self, e => e.model(id).await, r => r.model(id).await)
    }

    /// A model and its ancestors, nearest first.
    pub async fn lineage(&self, id: &ModelId) -> Result<Vec<ModelEntry>> {
        both!(self, e => e.lineage(id).await, r => r.lineage(id).await)
    }

    /// The nodes the engine knows.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        both!(self, e => e.nodes().await, r => r.nodes().await)
    }

    /// Closes the connection; an embedded engine is shut down (its jobs
    /// stop at a clean point and carry on with the next engine on the
    /// home).
    #[allow(irrefutable_let_patterns)] // without `client`, always local
    pub async fn close(self) {
        if let Connection::Local(e) = self {
            e.shutdown().await;
        }
    }
}
