//! The engine's catalog of registered datasets and models: what an id
//! names in the store, and (for models) where it came from.
//!
//! The chain's `DatasetRegistry` and `ModelRegistry` are the public record;
//! the catalog is the engine's local index of the same facts (so a job can
//! resolve `dataset-…` to content without a chain query) in SQLite next to
//! the job ledger.

use std::path::Path;
use std::sync::Mutex;

use artha_core::{DatasetId, Error, ErrorKind, JobId, ModelId, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// A registered dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetEntry {
    /// Its id.
    pub id: DatasetId,
    /// Its content.
    pub uri: String,
    /// Human name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Free-form tags, comma-separated.
    pub tags: String,
    /// When it was registered, ms since the epoch.
    pub created_ms: u64,
}

/// A registered model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Its id.
    pub id: ModelId,
    /// Its content.
    pub uri: String,
    /// Human name.
    pub name: String,
    /// Architecture, e.g. `mlp`.
    pub architecture: String,
    /// Version label.
    pub version: String,
    /// The model it was trained from, if any.
    pub parent: Option<ModelId>,
    /// The dataset it was trained on, if any.
    pub dataset: Option<DatasetId>,
    /// The job that trained it, if any.
    pub job: Option<JobId>,
    /// When it was registered, ms since the epoch.
    pub created_ms: u64,
}

/// The catalog (SQLite, WAL).
#[derive(Debug)]
pub struct Catalog {
    conn: Mutex<Connection>,
}

fn db(what: &str, e: rusqlite::Error) -> Error {
    crate::jobs::sqlite_error("catalog", what, e)
}

fn corrupt(field: &str, value: &str) -> Error {
    Error::new(
        ErrorKind::Corrupted,
        format!("catalog holds a malformed {field}"),
    )
    .with_context("value", value.to_string())
}

fn parse<T: std::str::FromStr>(field: &str, s: &str) -> Result<T> {
    s.parse().map_err(|_| corrupt(field, s))
}

fn parse_opt<T: std::str::FromStr>(field: &str, s: Option<String>) -> Result<Option<T>> {
    s.map(|v| parse(field, &v)).transpose()
}

impl Catalog {
    /// Opens (creating) the catalog at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .map_err(|e| db("open", e).with_context("path", path.display().to_string()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS datasets (
                id TEXT PRIMARY KEY, uri TEXT NOT NULL, name TEXT NOT NULL,
                size INTEGER NOT NULL, tags TEXT NOT NULL, created_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS models (
                id TEXT PRIMARY KEY, uri TEXT NOT NULL, name TEXT NOT NULL,
                architecture TEXT NOT NULL, version TEXT NOT NULL, parent TEXT,
                dataset TEXT, job TEXT, created_ms INTEGER NOT NULL);",
        )
        .map_err(|e| db("create its tables", e))?;
        Ok(Catalog {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a dataset; `AlreadyExists` when the id is taken by other
    /// content (the same content again is a no-op).
    pub fn put_dataset(&self, d: &DatasetEntry) -> Result<()> {
        crate::fsutil::off_async(|| {
            if let Some(old) = self.dataset(&d.id)? {
                return if old.uri == d.uri {
                    Ok(())
                } else {
                    Err(
                        Error::new(ErrorKind::AlreadyExists, "dataset id names other content")
                            .with_context("dataset_id", d.id.to_string()),
                    )
                };
            }
            self.conn()
            .execute(
                "INSERT INTO datasets (id, uri, name, size, tags, created_ms) VALUES (?1,?2,?3,?4,?5,?6)",
                params![d.id.to_string(), d.uri, d.name, d.size as i64, d.tags, d.created_ms as i64],
            )
            .map_err(|e| db("record a dataset", e))?;
            Ok(())
        })
    }

    /// Records a model (same rules as [`put_dataset`](Self::put_dataset)).
    pub fn put_model(&self, m: &ModelEntry) -> Result<()> {
        crate::fsutil::off_async(|| {
            if let Some(old) = self.model(&m.id)? {
                return if old.uri == m.uri {
                    Ok(())
                } else {
                    Err(
                        Error::new(ErrorKind::AlreadyExists, "model id names other content")
                            .with_context("model_id", m.id.to_string()),
                    )
                };
            }
            self.conn()
            .execute(
                "INSERT INTO models (id, uri, name, architecture, version, parent, dataset, job, created_ms)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                params![
                    m.id.to_string(),
                    m.uri,
                    m.name,
                    m.architecture,
                    m.version,
                    m.parent.map(|p| p.to_string()),
                    m.dataset.map(|d| d.to_string()),
                    m.job.map(|j| j.to_string()),
                    m.created_ms as i64
                ],
            )
            .map_err(|e| db("record a model", e))?;
            Ok(())
        })
    }

    /// A dataset by id.
    pub fn dataset(&self, id: &DatasetId) -> Result<Option<DatasetEntry>> {
        crate::fsutil::off_async(|| {
            let row = self
                .conn()
                .query_row(
                    "SELECT uri, name, size, tags, created_ms FROM datasets WHERE id = ?1",
                    params![id.to_string()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| db("read a dataset", e))?;
            Ok(row.map(|(uri, name, size, tags, created)| DatasetEntry {
                id: *id,
                uri,
                name,
                size: size as u64,
                tags,
                created_ms: created as u64,
            }))
        })
    }

    /// A model by id.
    pub fn model(&self, id: &ModelId) -> Result<Option<ModelEntry>> {
        crate::fsutil::off_async(|| {
            type Row = (
                String,
                String,
                String,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                i64,
            );
            let row: Option<Row> = self
            .conn()
            .query_row(
                "SELECT uri, name, architecture, version, parent, dataset, job, created_ms FROM models WHERE id = ?1",
                params![id.to_string()],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| db("read a model", e))?;
            let Some((uri, name, architecture, version, parent, dataset, job, created)) = row
            else {
                return Ok(None);
            };
            Ok(Some(ModelEntry {
                id: *id,
                uri,
                name,
                architecture,
                version,
                parent: parse_opt("parent model id", parent)?,
                dataset: parse_opt("dataset id", dataset)?,
                job: parse_opt("job id", job)?,
                created_ms: created as u64,
            }))
        })
    }

    /// The model a job trained, if it was registered.
    pub fn model_of_job(&self, job: &JobId) -> Result<Option<ModelEntry>> {
        crate::fsutil::off_async(|| {
            let id: Option<String> = self
                .conn()
                .query_row(
                    "SELECT id FROM models WHERE job = ?1",
                    params![job.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| db("find a job's model", e))?;
            match id {
                Some(id) => self.model(&parse("model id", &id)?),
                None => Ok(None),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artha_core::Cid;

    #[test]
    fn records_and_refuses_reuse_of_an_id_for_other_content() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Catalog::open(&tmp.path().join("c.db")).unwrap();
        let id = DatasetId::derive(&[b"x"]);
        let d = DatasetEntry {
            id,
            uri: format!("artha://{}", Cid::of(b"a")),
            name: "a".into(),
            size: 1,
            tags: String::new(),
            created_ms: 5,
        };
        c.put_dataset(&d).unwrap();
        c.put_dataset(&d).unwrap();
        assert_eq!(c.dataset(&id).unwrap().unwrap(), d);
        let other = DatasetEntry {
            uri: format!("artha://{}", Cid::of(b"b")),
            ..d.clone()
        };
        let e = c.put_dataset(&other).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(c.dataset(&id).unwrap().unwrap(), d);

        let job = JobId::derive(&[b"j"]);
        let m = ModelEntry {
            id: ModelId::derive(&[b"m"]),
            uri: d.uri.clone(),
            name: "m".into(),
            architecture: "mlp".into(),
            version: "1".into(),
            parent: Some(ModelId::derive(&[b"p"])),
            dataset: Some(id),
            job: Some(job),
            created_ms: 9,
        };
        c.put_model(&m).unwrap();
        assert_eq!(c.model(&m.id).unwrap().unwrap(), m);
        assert_eq!(c.model_of_job(&job).unwrap().unwrap(), m);
        assert!(c.model(&ModelId::derive(&[b"q"])).unwrap().is_none());
    }
}
