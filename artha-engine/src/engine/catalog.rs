//! The engine's catalog of registered datasets and models: what an id
//! names in the store, and (for models) where it came from.
//!
//! The chain's `DatasetRegistry` and `ModelRegistry` are the public record;
//! the catalog is the engine's local index of the same facts (so a job can
//! resolve `dataset-…` to content without a chain query) in SQLite next to
//! the job ledger.

use std::path::Path;
use std::sync::Mutex;

use artha_core::{DatasetId, Error, ErrorKind, JobId, KeccakHash, ModelId, Result};
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
    /// Its licence text (`artha://…`), if it has one.
    #[serde(default)]
    pub license: Option<String>,
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
    /// keccak256 of the code that produced it (`0x…`), as registered.
    #[serde(default)]
    pub code_hash: String,
    /// When it was registered, ms since the epoch.
    pub created_ms: u64,
}

/// The code hash registered for a model when none is given: keccak256 of
/// its architecture label.
pub(crate) fn default_code_hash(architecture: &str) -> KeccakHash {
    KeccakHash::of(architecture.as_bytes())
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

/// Columns added after the first version, with their type: catalogs made
/// before them get them on open (NULL in existing rows).
const ADDED_COLUMNS: [(&str, &str, &str); 2] = [
    ("datasets", "license", "TEXT"),
    ("models", "code_hash", "TEXT"),
];

const DATASET_COLUMNS: &str = "id, uri, name, size, tags, license, created_ms";
const MODEL_COLUMNS: &str =
    "id, uri, name, architecture, version, parent, dataset, job, code_hash, created_ms";

/// A dataset row as stored (`DATASET_COLUMNS`).
type DatasetRow = (String, String, String, i64, String, Option<String>, i64);

fn dataset_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DatasetRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn dataset_entry(row: DatasetRow) -> Result<DatasetEntry> {
    let (id, uri, name, size, tags, license, created) = row;
    Ok(DatasetEntry {
        id: parse("dataset id", &id)?,
        uri,
        name,
        size: size as u64,
        tags,
        license,
        created_ms: created as u64,
    })
}

/// A model row as stored (`MODEL_COLUMNS`).
type ModelRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

fn model_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ModelRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn model_entry(row: ModelRow) -> Result<ModelEntry> {
    let (id, uri, name, architecture, version, parent, dataset, job, code_hash, created) = row;
    // Rows from before the column hold the default the engine registered.
    let code_hash = code_hash.unwrap_or_else(|| default_code_hash(&architecture).to_string());
    Ok(ModelEntry {
        id: parse("model id", &id)?,
        uri,
        name,
        architecture,
        version,
        parent: parse_opt("parent model id", parent)?,
        dataset: parse_opt("dataset id", dataset)?,
        job: parse_opt("job id", job)?,
        code_hash,
        created_ms: created as u64,
    })
}

impl Catalog {
    /// Opens (creating) the catalog at `path`; a catalog of an earlier
    /// version gets the columns it lacks (`license`, `code_hash`).
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .map_err(|e| db("open", e).with_context("path", path.display().to_string()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS datasets (
                id TEXT PRIMARY KEY, uri TEXT NOT NULL, name TEXT NOT NULL,
                size INTEGER NOT NULL, tags TEXT NOT NULL, created_ms INTEGER NOT NULL,
                license TEXT);
             CREATE TABLE IF NOT EXISTS models (
                id TEXT PRIMARY KEY, uri TEXT NOT NULL, name TEXT NOT NULL,
                architecture TEXT NOT NULL, version TEXT NOT NULL, parent TEXT,
                dataset TEXT, job TEXT, created_ms INTEGER NOT NULL, code_hash TEXT);",
        )
        .map_err(|e| db("create its tables", e))?;
        for (table, column, ty) in ADDED_COLUMNS {
            let has = conn
                .prepare(&format!(
                    "SELECT 1 FROM pragma_table_info('{table}') WHERE name = '{column}'"
                ))
                .and_then(|mut st| st.exists([]))
                .map_err(|e| db("read the schema", e))?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                    .map_err(|e| db("add a column", e).with_context("column", column))?;
            }
        }
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
                    &format!(
                        "INSERT INTO datasets ({DATASET_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"
                    ),
                    params![
                        d.id.to_string(),
                        d.uri,
                        d.name,
                        d.size as i64,
                        d.tags,
                        d.license,
                        d.created_ms as i64
                    ],
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
                    &format!(
                        "INSERT INTO models ({MODEL_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
                    ),
                    params![
                        m.id.to_string(),
                        m.uri,
                        m.name,
                        m.architecture,
                        m.version,
                        m.parent.map(|p| p.to_string()),
                        m.dataset.map(|d| d.to_string()),
                        m.job.map(|j| j.to_string()),
                        m.code_hash,
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
                    &format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE id = ?1"),
                    params![id.to_string()],
                    dataset_row,
                )
                .optional()
                .map_err(|e| db("read a dataset", e))?;
            row.map(dataset_entry).transpose()
        })
    }

    /// Every dataset, newest first.
    pub fn datasets(&self) -> Result<Vec<DatasetEntry>> {
        self.newest_first("datasets", DATASET_COLUMNS, dataset_row, dataset_entry)
    }

    /// A model by id.
    pub fn model(&self, id: &ModelId) -> Result<Option<ModelEntry>> {
        crate::fsutil::off_async(|| {
            let row = self
                .conn()
                .query_row(
                    &format!("SELECT {MODEL_COLUMNS} FROM models WHERE id = ?1"),
                    params![id.to_string()],
                    model_row,
                )
                .optional()
                .map_err(|e| db("read a model", e))?;
            row.map(model_entry).transpose()
        })
    }

    /// Every model, newest first.
    pub fn models(&self) -> Result<Vec<ModelEntry>> {
        self.newest_first("models", MODEL_COLUMNS, model_row, model_entry)
    }

    /// Every row of `table`, newest first, read by `row` and checked by
    /// `entry`.
    fn newest_first<R, T>(
        &self,
        table: &str,
        columns: &str,
        row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
        entry: fn(R) -> Result<T>,
    ) -> Result<Vec<T>> {
        crate::fsutil::off_async(|| {
            let what = format!("list {table}");
            let rows = {
                let conn = self.conn();
                let mut st = conn
                    .prepare(&format!(
                        "SELECT {columns} FROM {table} ORDER BY created_ms DESC, rowid DESC"
                    ))
                    .map_err(|e| db(&what, e))?;
                st.query_map([], row)
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| db(&what, e))?
            };
            rows.into_iter().map(entry).collect()
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
            license: Some(format!("artha://{}", Cid::of(b"licence"))),
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
            code_hash: KeccakHash::of(b"code").to_string(),
            created_ms: 9,
        };
        c.put_model(&m).unwrap();
        assert_eq!(c.model(&m.id).unwrap().unwrap(), m);
        assert_eq!(c.model_of_job(&job).unwrap().unwrap(), m);
        assert!(c.model(&ModelId::derive(&[b"q"])).unwrap().is_none());

        let newer = ModelEntry {
            id: ModelId::derive(&[b"n"]),
            created_ms: 10,
            ..m.clone()
        };
        c.put_model(&newer).unwrap();
        assert_eq!(c.models().unwrap(), vec![newer, m]);
        let d2 = DatasetEntry {
            id: DatasetId::derive(&[b"y"]),
            license: None,
            created_ms: 6,
            ..d.clone()
        };
        c.put_dataset(&d2).unwrap();
        assert_eq!(c.datasets().unwrap(), vec![d2, d]);
    }

    #[test]
    fn a_catalog_of_the_first_version_gains_the_new_columns_and_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.db");
        let ds = DatasetId::derive(&[b"x"]);
        let model = ModelId::derive(&[b"m"]);
        let uri = format!("artha://{}", Cid::of(b"a"));
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE datasets (
                    id TEXT PRIMARY KEY, uri TEXT NOT NULL, name TEXT NOT NULL,
                    size INTEGER NOT NULL, tags TEXT NOT NULL, created_ms INTEGER NOT NULL);
                 CREATE TABLE models (
                    id TEXT PRIMARY KEY, uri TEXT NOT NULL, name TEXT NOT NULL,
                    architecture TEXT NOT NULL, version TEXT NOT NULL, parent TEXT,
                    dataset TEXT, job TEXT, created_ms INTEGER NOT NULL);",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO datasets VALUES (?1, ?2, 'd', 3, 't', 1)",
                params![ds.to_string(), uri],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO models VALUES (?1, ?2, 'm', 'mlp', '1', NULL, ?3, NULL, 2)",
                params![model.to_string(), uri, ds.to_string()],
            )
            .unwrap();
        }
        for _ in 0..2 {
            let c = Catalog::open(&path).unwrap();
            let d = c.dataset(&ds).unwrap().unwrap();
            assert_eq!((d.license, d.size, d.tags.as_str()), (None, 3, "t"));
            let m = c.model(&model).unwrap().unwrap();
            assert_eq!(m.code_hash, default_code_hash("mlp").to_string());
            assert_eq!(m.dataset, Some(ds));
            assert_eq!(c.models().unwrap(), vec![m]);
        }
    }
}
