//! The job ledger: every job's lifecycle, persisted in SQLite (WAL).
//!
//! ```text
//! Submitted → Accepted → Scheduled → Staging → Running → Proving → Completed ─┐
//!     │           │          │          │         │         │                 ├→ Settled
//!     └───────────┴──────────┴──────────┴─────────┴─────────┴→ Failed ────────┤
//!     └───────────┴──────────┴──────────┴─────────┴→ Cancelled ───────────────┘
//! ```
//!
//! Every change is a compare-and-set transition in one SQLite transaction:
//! [`JobLedger::transition`] names the phase it expects, so two actors (a
//! cancel racing a completion, a restarted engine racing its old self) can
//! never both win; the loser gets a `Conflict` error and nothing changes.
//! Each transition is appended to the job's history with its time and
//! reason. SQLite's WAL journal and `synchronous=FULL` make a committed
//! transition survive a crash; on start the engine lists the
//! [non-terminal](JobPhase::is_terminal) jobs and reconciles them with the
//! executor and the chain.

use std::path::Path;
use std::sync::Mutex;

use artha_core::{Amount, Error, ErrorKind};
use artha_core::{ExecHandle, JobId, JobSpec, NodeId, Receipt, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

pub(crate) use artha_core::job::{
    Artifact, ChainAction, JobPhase, JobProgress, JobRecord, ReceiptRecord, Transition,
};

/// The SQLite-backed job ledger.
#[derive(Debug, Clone)]
pub(crate) struct JobLedger {
    conn: std::sync::Arc<Mutex<Connection>>,
}

/// A ledger error with its kind: busy → `Unavailable`; a full disk, a
/// quota or a file size limit → `ResourceExhausted` (SQLite reports some of
/// these as `SQLITE_FULL` and others, e.g. a failed write of the WAL index
/// or a short write, as a generic `SQLITE_IOERR` "disk I/O error": the OS
/// error left by the failed call tells them apart); corrupt →
/// `Corrupted`; anything else `Internal`.
fn db_error(what: &str, e: rusqlite::Error) -> Error {
    sqlite_error("job ledger", what, e)
}

/// The structured error of a failed SQLite call on the database `db`: busy
/// is `Unavailable`, a full disk (also when SQLite reports only a "disk I/O
/// error" and the OS said ENOSPC, EDQUOT or EFBIG) `ResourceExhausted`,
/// corruption `Corrupted`, anything else `Internal`. Call it right after the
/// failed call (it reads the OS error).
pub(crate) fn sqlite_error(db: &str, what: &str, e: rusqlite::Error) -> Error {
    // Read first: nothing below may touch the OS error of the failed call.
    let os = std::io::Error::last_os_error();
    let storage_full = |os: &std::io::Error| {
        matches!(
            os.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::FileTooLarge
        )
    };
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
            ErrorKind::Unavailable
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
            ErrorKind::ResourceExhausted
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::SystemIoFailure && storage_full(&os) =>
        {
            ErrorKind::ResourceExhausted
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseCorrupt => {
            ErrorKind::Corrupted
        }
        _ => ErrorKind::Internal,
    };
    if kind == ErrorKind::ResourceExhausted {
        return Error::new(
            kind,
            format!("{db}: cannot {what}: no space left (disk full, quota or file size limit)"),
        )
        .with_source(e);
    }
    Error::new(kind, format!("{db}: cannot {what}")).with_source(e)
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode a job field").with_source(e))
}

fn from_json<T: serde::de::DeserializeOwned>(job: &str, field: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::new(
            ErrorKind::Corrupted,
            format!("job ledger holds a malformed `{field}`: {e}"),
        )
        .with_context("job_id", job.to_string())
    })
}

/// Milliseconds since the Unix epoch.
/// The reason a held job carries (submitted with `hold`, waiting for
/// [`JobLedger::release`]).
pub(crate) const HELD: &str = "held: waiting for release";

/// Whether `r` is a held job.
pub(crate) fn is_held(r: &JobRecord) -> bool {
    r.phase == JobPhase::Accepted && r.reason.as_deref() == Some(HELD)
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    submitter   TEXT NOT NULL,
    spec        TEXT NOT NULL,
    phase       TEXT NOT NULL,
    reason      TEXT,
    node        TEXT,
    gpus        TEXT NOT NULL DEFAULT '[]',
    exec        TEXT,
    gpu_seconds INTEGER,
    artifacts   TEXT NOT NULL DEFAULT '[]',
    receipts    TEXT NOT NULL DEFAULT '[]',
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_phase ON jobs(phase);
CREATE TABLE IF NOT EXISTS transitions (
    job_id  TEXT NOT NULL REFERENCES jobs(id),
    seq     INTEGER NOT NULL,
    phase   TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,
    reason  TEXT,
    PRIMARY KEY (job_id, seq)
);
";

impl JobLedger {
    /// Opens (creating if needed) the ledger at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .map_err(|e| db_error("open", e).with_context("path", path.display().to_string()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(|e| db_error("configure", e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| db_error("configure", e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| db_error("create the schema", e))?;
        // Ledgers of earlier versions lack the later columns.
        for (column, ty) in [("progress", "TEXT"), ("price_per_step", "TEXT")] {
            let has = conn
                .prepare("SELECT 1 FROM pragma_table_info('jobs') WHERE name = ?1")
                .and_then(|mut st| st.exists([column]))
                .map_err(|e| db_error("read the schema", e))?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE jobs ADD COLUMN {column} {ty}"))
                    .map_err(|e| db_error("add a column", e).with_context("column", column))?;
            }
        }
        Ok(JobLedger {
            conn: std::sync::Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on this ledger on tokio's blocking pool, off the async
    /// workers (for writes on a job's hot path, e.g. progress per poll).
    pub(crate) async fn off_worker<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&JobLedger) -> Result<T> + Send + 'static,
    {
        let ledger = self.clone();
        crate::store::util::blocking(move || f(&ledger)).await
    }

    /// Runs `f` (SQLite work) off the async worker: see
    /// [`crate::fsutil::off_async`].
    fn off_async<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        crate::fsutil::off_async(f)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic mid-call cannot leave a half-applied change: every write is
        // one SQLite transaction, rolled back unless committed.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new job in phase `Submitted`. `AlreadyExists` if the id is
    /// taken (submissions are idempotent by job id).
    pub(crate) fn insert(&self, id: &JobId, submitter: &str, spec: &JobSpec) -> Result<()> {
        self.off_async(|| {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| db_error("begin", e))?;
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO jobs (id, submitter, spec, phase, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![id.to_string(), submitter, to_json(spec)?, JobPhase::Submitted.as_str(), now as i64],
            )
            .map_err(|e| db_error("insert a job", e))?;
        if inserted == 0 {
            return Err(
                Error::new(ErrorKind::AlreadyExists, "a job with this id exists")
                    .with_context("job_id", id.to_string()),
            );
        }
        tx.execute(
            "INSERT INTO transitions (job_id, seq, phase, at_ms, reason) VALUES (?1, 0, ?2, ?3, NULL)",
            params![id.to_string(), JobPhase::Submitted.as_str(), now as i64],
        )
        .map_err(|e| db_error("record a transition", e))?;
        tx.commit().map_err(|e| db_error("commit", e))
        })
    }

    /// Moves `id` from `from` to `to`, recording `reason`. `Conflict` when
    /// the job is not in `from` (someone else moved it) or the transition is
    /// illegal; `NotFound` for an unknown job. Nothing changes on error.
    pub(crate) fn transition(
        &self,
        id: &JobId,
        from: JobPhase,
        to: JobPhase,
        reason: Option<&str>,
    ) -> Result<()> {
        self.off_async(|| {
        if !from.can_become(to) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a job cannot go from {from} to {to}"),
            )
            .with_context("job_id", id.to_string()));
        }
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| db_error("begin", e))?;
        let changed = tx
            .execute(
                "UPDATE jobs SET phase = ?1, reason = COALESCE(?2, reason), updated_ms = ?3 WHERE id = ?4 AND phase = ?5",
                params![to.as_str(), reason, now as i64, id.to_string(), from.as_str()],
            )
            .map_err(|e| db_error("update a job", e))?;
        if changed == 0 {
            let actual: Option<String> = tx
                .query_row(
                    "SELECT phase FROM jobs WHERE id = ?1",
                    params![id.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| db_error("read a job", e))?;
            return Err(match actual {
                None => Error::new(ErrorKind::NotFound, "no such job")
                    .with_context("job_id", id.to_string()),
                Some(p) => Error::new(
                    ErrorKind::Conflict,
                    format!("job is {p}, not {from}; cannot move it to {to}"),
                )
                .with_context("job_id", id.to_string()),
            });
        }
        tx.execute(
            "INSERT INTO transitions (job_id, seq, phase, at_ms, reason)
             VALUES (?1, (SELECT COALESCE(MAX(seq), -1) + 1 FROM transitions WHERE job_id = ?1), ?2, ?3, ?4)",
            params![id.to_string(), to.as_str(), now as i64, reason],
        )
        .map_err(|e| db_error("record a transition", e))?;
        tx.commit().map_err(|e| db_error("commit", e))
        })
    }

    fn update(&self, id: &JobId, sql: &str, value: &dyn rusqlite::ToSql) -> Result<()> {
        self.off_async(|| {
            let n = self
                .conn()
                .execute(sql, params![value, now_ms() as i64, id.to_string()])
                .map_err(|e| db_error("update a job", e))?;
            if n == 0 {
                return Err(Error::new(ErrorKind::NotFound, "no such job")
                    .with_context("job_id", id.to_string()));
            }
            Ok(())
        })
    }

    /// Records the node and GPUs a job was placed on.
    pub(crate) fn set_placement(&self, id: &JobId, node: &NodeId, gpus: &[u32]) -> Result<()> {
        self.update(
            id,
            "UPDATE jobs SET node = ?1, updated_ms = ?2 WHERE id = ?3",
            &node.to_string(),
        )?;
        self.update(
            id,
            "UPDATE jobs SET gpus = ?1, updated_ms = ?2 WHERE id = ?3",
            &to_json(&gpus)?,
        )
    }

    /// Records (or clears) the executor handle.
    pub(crate) fn set_exec(&self, id: &JobId, exec: Option<&ExecHandle>) -> Result<()> {
        let v = exec.map(to_json).transpose()?;
        self.update(
            id,
            "UPDATE jobs SET exec = ?1, updated_ms = ?2 WHERE id = ?3",
            &v,
        )
    }

    /// Records what the job's runtime has reported so far (read by status
    /// in any process without reading the events file).
    pub(crate) fn set_progress(&self, id: &JobId, progress: &JobProgress) -> Result<()> {
        self.update(
            id,
            "UPDATE jobs SET progress = ?1, updated_ms = ?2 WHERE id = ?3",
            &to_json(progress)?,
        )
    }

    /// Records the price of one step fixed at submission.
    pub(crate) fn set_price_per_step(&self, id: &JobId, price: Amount) -> Result<()> {
        self.update(
            id,
            "UPDATE jobs SET price_per_step = ?1, updated_ms = ?2 WHERE id = ?3",
            &price.wei().to_string(),
        )
    }

    /// Records the GPU-seconds the engine measured.
    pub(crate) fn set_gpu_seconds(&self, id: &JobId, secs: u64) -> Result<()> {
        self.update(
            id,
            "UPDATE jobs SET gpu_seconds = ?1, updated_ms = ?2 WHERE id = ?3",
            &(secs as i64),
        )
    }

    /// Appends an artifact (ignored if one with the same kind and name exists,
    /// so re-recording after a restart is harmless).
    pub(crate) fn add_artifact(&self, id: &JobId, artifact: Artifact) -> Result<()> {
        self.append_unique(id, "artifacts", artifact, |a, b| {
            a.kind == b.kind && a.name == b.name
        })
    }

    /// Appends a chain receipt (ignored if the same action was recorded).
    pub(crate) fn add_receipt(
        &self,
        id: &JobId,
        action: ChainAction,
        receipt: Receipt,
    ) -> Result<()> {
        let record = ReceiptRecord { action, receipt };
        self.append_unique(id, "receipts", record, |a, b| a.action == b.action)
    }

    /// Appends `item` to the JSON list in `column` unless `same` finds it
    /// there already; one transaction.
    fn append_unique<T: Serialize + serde::de::DeserializeOwned>(
        &self,
        id: &JobId,
        column: &'static str,
        item: T,
        same: impl Fn(&T, &T) -> bool,
    ) -> Result<()> {
        self.off_async(|| {
            let mut conn = self.conn();
            let tx = conn.transaction().map_err(|e| db_error("begin", e))?;
            let text: String = tx
                .query_row(
                    &format!("SELECT {column} FROM jobs WHERE id = ?1"),
                    params![id.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| db_error("read a job", e))?
                .ok_or_else(|| {
                    Error::new(ErrorKind::NotFound, "no such job")
                        .with_context("job_id", id.to_string())
                })?;
            let mut list: Vec<T> = from_json(&id.to_string(), column, &text)?;
            if !list.iter().any(|x| same(x, &item)) {
                list.push(item);
                tx.execute(
                    &format!("UPDATE jobs SET {column} = ?1, updated_ms = ?2 WHERE id = ?3"),
                    params![to_json(&list)?, now_ms() as i64, id.to_string()],
                )
                .map_err(|e| db_error("update a job", e))?;
            }
            tx.commit().map_err(|e| db_error("commit", e))
        })
    }

    /// The job's record; `NotFound` if unknown.
    pub(crate) fn get(&self, id: &JobId) -> Result<JobRecord> {
        self.off_async(|| {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT submitter, spec, phase, reason, node, gpus, exec, gpu_seconds, artifacts, receipts, progress, price_per_step FROM jobs WHERE id = ?1",
                params![id.to_string()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                        r.get::<_, String>(8)?,
                        r.get::<_, String>(9)?,
                        r.get::<_, Option<String>>(10)?,
                        r.get::<_, Option<String>>(11)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| db_error("read a job", e))?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no such job").with_context("job_id", id.to_string()))?;
        let key = id.to_string();
        let mut stmt = conn
            .prepare("SELECT phase, at_ms, reason FROM transitions WHERE job_id = ?1 ORDER BY seq")
            .map_err(|e| db_error("read the history", e))?;
        let history = stmt
            .query_map(params![key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(|e| db_error("read the history", e))?
            .map(|row| {
                let (p, at, reason) = row.map_err(|e| db_error("read the history", e))?;
                Ok(Transition {
                    phase: JobPhase::parse(&p)?,
                    at_ms: at as u64,
                    reason,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(JobRecord {
            id: *id,
            submitter: row.0,
            spec: from_json(&key, "spec", &row.1)?,
            phase: JobPhase::parse(&row.2)?,
            reason: row.3,
            node: row.4.map(|n| n.parse()).transpose()?,
            gpus: from_json(&key, "gpus", &row.5)?,
            exec: row.6.map(|e| from_json(&key, "exec", &e)).transpose()?,
            gpu_seconds: row.7.map(|s| s as u64),
            artifacts: from_json(&key, "artifacts", &row.8)?,
            receipts: from_json(&key, "receipts", &row.9)?,
            history,
            progress: match row.10 {
                Some(p) => from_json(&key, "progress", &p)?,
                None => JobProgress::default(),
            },
            price_per_step: row
                .11
                .map(|p| {
                    p.parse::<u128>().map(Amount::from_wei).map_err(|_| {
                        Error::new(ErrorKind::Corrupted, "price_per_step is not a number of wei")
                            .with_context("job_id", key.clone())
                    })
                })
                .transpose()?,
        })
        })
    }

    /// Ids of jobs in `phases` (all jobs when empty), oldest first.
    pub(crate) fn list(&self, phases: &[JobPhase]) -> Result<Vec<JobId>> {
        self.off_async(|| {
            let conn = self.conn();
            // Filtered by the phase index in SQL: the engine lists the few
            // jobs in a phase (to settle, to resume) out of a history that
            // only grows.
            let names: Vec<&str> = phases.iter().map(|p| p.as_str()).collect();
            let sql = if names.is_empty() {
                "SELECT id FROM jobs ORDER BY created_ms, id".to_string()
            } else {
                let marks = vec!["?"; names.len()].join(", ");
                format!("SELECT id FROM jobs WHERE phase IN ({marks}) ORDER BY created_ms, id")
            };
            let mut stmt = conn.prepare(&sql).map_err(|e| db_error("list jobs", e))?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(names.iter()), |r| {
                    r.get::<_, String>(0)
                })
                .map_err(|e| db_error("list jobs", e))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(|e| db_error("list jobs", e))?.parse()?);
            }
            Ok(out)
        })
    }

    /// Lets a held job start: clears its hold (`Conflict` when it is not a
    /// held job: already released, started or ended; `NotFound` for an
    /// unknown job). Atomic, so two releases start it once.
    pub(crate) fn release(&self, id: &JobId) -> Result<()> {
        self.off_async(|| {
            let n = self
                .conn()
                .execute(
                    "UPDATE jobs SET reason = NULL, updated_ms = ?1 WHERE id = ?2 AND phase = 'accepted' AND reason = ?3",
                    params![now_ms() as i64, id.to_string(), HELD],
                )
                .map_err(|e| db_error("release a job", e))?;
            if n == 1 {
                return Ok(());
            }
            let r = self.get(id)?;
            Err(Error::new(
                ErrorKind::Conflict,
                format!("the job is {} and not held", r.phase),
            )
            .with_context("job_id", id.to_string()))
        })
    }

    /// Jobs the engine must reconcile after a restart (not terminal).
    pub(crate) fn unfinished(&self) -> Result<Vec<JobId>> {
        self.off_async(|| {
            let live: Vec<JobPhase> = JobPhase::ALL
                .into_iter()
                .filter(|p| !p.is_terminal())
                .collect();
            self.list(&live)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artha_core::{Amount, JobKind, KeccakHash, Runtime};

    fn spec() -> JobSpec {
        JobSpec::new(
            JobKind::Agent,
            Runtime::Native("mlp".into()),
            Amount::from_wei(5),
        )
    }

    fn id(n: u8) -> JobId {
        JobId::from_bytes([n; 16])
    }

    #[test]
    fn lifecycle_table() {
        use JobPhase::*;
        let happy = [
            Submitted, Accepted, Scheduled, Staging, Running, Proving, Completed, Settled,
        ];
        for w in happy.windows(2) {
            assert!(w[0].can_become(w[1]), "{} → {}", w[0], w[1]);
        }
        assert!(
            !Proving.can_become(Cancelled),
            "results are being committed"
        );
        assert!(!Completed.can_become(Failed));
        assert!(!Settled.can_become(Settled));
        assert!(!Running.can_become(Submitted));
        for p in JobPhase::ALL {
            assert_eq!(JobPhase::parse(p.as_str()).unwrap(), p);
        }
        assert!(JobPhase::parse("zombie").is_err());
    }

    #[test]
    fn transitions_are_compare_and_set_and_survive_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("jobs.db");
        {
            let l = JobLedger::open(&path).unwrap();
            l.insert(&id(1), "did:key:zX", &spec()).unwrap();
            assert_eq!(
                l.insert(&id(1), "did:key:zX", &spec()).unwrap_err().kind(),
                ErrorKind::AlreadyExists
            );
            l.transition(&id(1), JobPhase::Submitted, JobPhase::Accepted, None)
                .unwrap();
            // A stale actor expecting the old phase loses and changes nothing.
            let e = l
                .transition(&id(1), JobPhase::Submitted, JobPhase::Cancelled, Some("x"))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict);
            assert!(e.to_string().contains("job is accepted"), "{e}");
            let e = l
                .transition(&id(1), JobPhase::Accepted, JobPhase::Settled, None)
                .unwrap_err();
            assert!(
                e.to_string().contains("cannot go from accepted to settled"),
                "{e}"
            );
            assert_eq!(
                l.transition(&id(9), JobPhase::Submitted, JobPhase::Accepted, None)
                    .unwrap_err()
                    .kind(),
                ErrorKind::NotFound
            );
            l.set_placement(&id(1), &NodeId::from_bytes([4; 16]), &[2, 3])
                .unwrap();
            l.transition(&id(1), JobPhase::Accepted, JobPhase::Scheduled, None)
                .unwrap();
            l.transition(
                &id(1),
                JobPhase::Scheduled,
                JobPhase::Failed,
                Some("node lost"),
            )
            .unwrap();
            let r = Receipt {
                tx_hash: KeccakHash::of(b"tx"),
                block_number: 7,
                gas_used: 21_000,
            };
            l.add_receipt(&id(1), ChainAction::Submit, r.clone())
                .unwrap();
            l.add_receipt(&id(1), ChainAction::Submit, r).unwrap();
            let a = Artifact {
                kind: artha_core::ArtifactKind::Checkpoint,
                name: "step-10".into(),
                uri: "artha://b3:00".into(),
            };
            l.add_artifact(&id(1), a.clone()).unwrap();
            l.add_artifact(&id(1), a).unwrap();
            l.set_gpu_seconds(&id(1), 42).unwrap();
            l.insert(&id(2), "did:key:zY", &spec()).unwrap();
        }
        let l = JobLedger::open(&path).unwrap();
        let rec = l.get(&id(1)).unwrap();
        assert_eq!(rec.phase, JobPhase::Failed);
        assert_eq!(rec.reason.as_deref(), Some("node lost"));
        assert_eq!(rec.gpus, [2, 3]);
        assert_eq!(rec.receipts.len(), 1, "idempotent receipt");
        assert_eq!(rec.artifacts.len(), 1, "idempotent artifact");
        assert_eq!(rec.gpu_seconds, Some(42));
        let phases: Vec<JobPhase> = rec.history.iter().map(|t| t.phase).collect();
        assert_eq!(
            phases,
            [
                JobPhase::Submitted,
                JobPhase::Accepted,
                JobPhase::Scheduled,
                JobPhase::Failed
            ]
        );
        assert_eq!(l.unfinished().unwrap(), [id(2)]);
        assert_eq!(l.list(&[]).unwrap().len(), 2);
        assert_eq!(l.get(&id(3)).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn concurrent_cancel_and_progress_have_one_winner() {
        let tmp = tempfile::tempdir().unwrap();
        let l = std::sync::Arc::new(JobLedger::open(&tmp.path().join("jobs.db")).unwrap());
        l.insert(&id(1), "s", &spec()).unwrap();
        let a = {
            let l = l.clone();
            std::thread::spawn(move || {
                l.transition(&id(1), JobPhase::Submitted, JobPhase::Accepted, None)
                    .is_ok()
            })
        };
        let b = {
            let l = l.clone();
            std::thread::spawn(move || {
                l.transition(
                    &id(1),
                    JobPhase::Submitted,
                    JobPhase::Cancelled,
                    Some("user"),
                )
                .is_ok()
            })
        };
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(a ^ b, "exactly one wins");
        assert_eq!(l.get(&id(1)).unwrap().history.len(), 2);
    }
}
