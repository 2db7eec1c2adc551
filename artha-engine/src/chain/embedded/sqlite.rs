//! The SQLite store of the embedded chain (`<dir>/chain.db`, WAL).
//!
//! Tables (all keyed):
//! - `accounts(address → balance, nonce, code_hash)`: one row per existing
//!   account;
//! - `code(hash → bytes)`: contract code by hash (the original bytes,
//!   re-analysed on load);
//! - `storage((address, slot) → value)`: non-zero storage slots (a slot set
//!   to zero is deleted, as on a real chain);
//! - `receipts(tx_hash → block, body)`: one JSON [`EvmReceipt`] per mined
//!   transaction, in a rowid table (appended in mining order, so its pages
//!   are full) with a unique index on the hash. (As a `WITHOUT ROWID` table
//!   keyed by the random hash, its ~900-byte rows left two thirds of every
//!   page empty.) The other tables hold small rows and are `WITHOUT ROWID`;
//! - `meta`: one row (block height, latest timestamp, time offset, floor,
//!   and whether the chain was imported from a `state.json`).
//!
//! 256-bit words (balances, slots, values, hashes) are 32-byte big-endian
//! blobs; 64-bit counters are SQLite integers holding the bit pattern of the
//! `u64` (a lossless round trip).
//!
//! Reads go straight to SQLite (prepared statements, the page cache keeps
//! hot pages in memory); only contract code is cached here, analysed, since
//! there is one entry per deployed contract. A transaction's writes — its
//! state diff, its receipt and the new meta row — are one SQLite
//! transaction ([`SqliteStore::commit_tx`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, U256};
use artha_core::{Error, ErrorKind, Result};
use revm::bytecode::Bytecode;
use revm::database::{AccountState, CacheDB, EmptyDB};
use revm::primitives::KECCAK_EMPTY;
use revm::state::{AccountInfo, EvmState};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Deserialize;

use super::Meta;
use crate::chain::EvmReceipt;
use crate::fsutil::{fsync_dir, io_err, rename_noreplace, unique_suffix};

/// The database file under the chain directory.
pub(super) const DB_FILE: &str = "chain.db";
/// The single-file state of the previous version, imported once.
pub(super) const LEGACY_FILE: &str = "state.json";
/// What the legacy file is renamed to once imported.
pub(super) const IMPORTED_FILE: &str = "state.json.imported";
/// `PRAGMA user_version` of the current schema.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE accounts (
    address   BLOB PRIMARY KEY,
    balance   BLOB NOT NULL,
    nonce     INTEGER NOT NULL,
    code_hash BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE code (
    hash  BLOB PRIMARY KEY,
    bytes BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE storage (
    address BLOB NOT NULL,
    slot    BLOB NOT NULL,
    value   BLOB NOT NULL,
    PRIMARY KEY (address, slot)
) WITHOUT ROWID;
CREATE TABLE receipts (
    id      INTEGER PRIMARY KEY,
    tx_hash BLOB NOT NULL UNIQUE,
    block   INTEGER NOT NULL,
    body    TEXT NOT NULL
);
CREATE TABLE meta (
    id             INTEGER PRIMARY KEY CHECK (id = 0),
    block          INTEGER NOT NULL,
    last_timestamp INTEGER NOT NULL,
    time_offset    INTEGER NOT NULL,
    floor          INTEGER NOT NULL,
    imported_json  INTEGER NOT NULL DEFAULT 0
);
";

/// The structured error of a failed SQLite call on the chain database at
/// `path`: "not a database" and corruption are `Corrupted`; the rest as
/// [`crate::jobs::sqlite_error`] maps them (busy `Unavailable`, full disk
/// `ResourceExhausted`, else `Internal`).
pub(super) fn db_err(path: &Path, what: &str, e: rusqlite::Error) -> Error {
    let not_a_db = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase
    );
    let err = if not_a_db {
        Error::new(
            ErrorKind::Corrupted,
            format!("embedded chain database: cannot {what}: the file is not a SQLite database"),
        )
        .with_source(e)
    } else {
        crate::jobs::sqlite_error("embedded chain database", what, e)
    };
    err.with_context("path", path.display().to_string())
}

fn corrupted(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Corrupted,
        format!("embedded chain database is malformed: {what}"),
    )
    .with_context("path", path.display().to_string())
}

fn word(path: &Path, what: &str, bytes: &[u8]) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| corrupted(path, format!("{what} is {} bytes, not 32", bytes.len())))
}

fn to_i64(v: u64) -> i64 {
    // Bit pattern, undone by `to_u64`.
    v as i64
}

fn to_u64(v: i64) -> u64 {
    v as u64
}

/// The chain state in SQLite. See the module docs.
#[derive(Debug)]
pub(super) struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Analysed code by hash (one entry per deployed contract).
    code: RefCell<HashMap<B256, Bytecode>>,
}

/// Opens `path` with the connection settings of the store: WAL, fsync at
/// every commit (a mined transaction is durable when `send` returns).
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| db_err(path, "open", e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| db_err(path, "configure", e))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        .map_err(|e| db_err(path, "configure", e))?;
    Ok(conn)
}

/// Reads the meta row.
fn read_meta(conn: &Connection, path: &Path) -> Result<(Meta, bool)> {
    conn.query_row(
        "SELECT block, last_timestamp, time_offset, floor, imported_json FROM meta WHERE id = 0",
        [],
        |r| {
            Ok((
                Meta {
                    block: to_u64(r.get(0)?),
                    last_timestamp: to_u64(r.get(1)?),
                    time_offset: to_u64(r.get(2)?),
                    floor: to_u64(r.get(3)?),
                },
                r.get::<_, i64>(4)? != 0,
            ))
        },
    )
    .optional()
    .map_err(|e| db_err(path, "read the chain metadata", e))?
    .ok_or_else(|| corrupted(path, "no metadata row"))
}

/// Creates the schema and the meta row in `conn` (an empty database).
fn init_schema(conn: &mut Connection, path: &Path, meta: &Meta, imported: bool) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| db_err(path, "begin", e))?;
    tx.execute_batch(SCHEMA)
        .map_err(|e| db_err(path, "create the schema", e))?;
    tx.execute(
        "INSERT INTO meta (id, block, last_timestamp, time_offset, floor, imported_json)
         VALUES (0, ?1, ?2, ?3, ?4, ?5)",
        params![
            to_i64(meta.block),
            to_i64(meta.last_timestamp),
            to_i64(meta.time_offset),
            to_i64(meta.floor),
            i64::from(imported)
        ],
    )
    .map_err(|e| db_err(path, "write the chain metadata", e))?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(|e| db_err(path, "set the schema version", e))?;
    tx.commit().map_err(|e| db_err(path, "commit", e))
}

impl SqliteStore {
    /// Opens the store in `dir`, creating it (with `fresh` as its meta) or
    /// importing `state.json` first where needed. Returns the store and its
    /// meta.
    pub(super) fn open(dir: &Path, fresh: Meta) -> Result<(Self, Meta)> {
        let path = dir.join(DB_FILE);
        let legacy = dir.join(LEGACY_FILE);
        let exists = match std::fs::symlink_metadata(&path) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err("inspect the embedded chain database", &path, e)),
        };
        if !exists && std::fs::symlink_metadata(&legacy).is_ok() {
            import_legacy(dir, &legacy, &path)?;
        }
        let mut conn = connect(&path)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| db_err(&path, "read the schema version", e))?;
        let meta = match version {
            SCHEMA_VERSION => read_meta(&conn, &path)?.0,
            0 => {
                // New, or created by an open that stopped before its schema
                // transaction committed: empty either way.
                let tables: i64 = conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                    .map_err(|e| db_err(&path, "read the schema", e))?;
                if tables != 0 {
                    return Err(corrupted(&path, "tables without a schema version"));
                }
                init_schema(&mut conn, &path, &fresh, false)?;
                fresh
            }
            v => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "embedded chain database has schema version {v}; this engine reads \
                         version {SCHEMA_VERSION}"
                    ),
                )
                .with_context("path", path.display().to_string()));
            }
        };
        // An import that stopped between its two renames: finish it.
        if exists && read_meta(&conn, &path)?.1 && std::fs::symlink_metadata(&legacy).is_ok() {
            retire_legacy(dir, &legacy)?;
        }
        Ok((
            SqliteStore {
                conn,
                path,
                code: RefCell::new(HashMap::new()),
            },
            meta,
        ))
    }

    /// Where the database is.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str, e: rusqlite::Error) -> Error {
        db_err(&self.path, what, e)
    }

    /// The account at `addr`, with its code, if it exists.
    pub(super) fn account(&self, addr: Address) -> Result<Option<AccountInfo>> {
        let row = self
            .conn
            .prepare_cached("SELECT balance, nonce, code_hash FROM accounts WHERE address = ?1")
            .and_then(|mut s| {
                s.query_row(params![addr.as_slice()], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.err("read an account", e))?;
        let Some((balance, nonce, code_hash)) = row else {
            return Ok(None);
        };
        let balance = U256::from_be_bytes(word(&self.path, "a balance", &balance)?);
        let code_hash = B256::from(word(&self.path, "a code hash", &code_hash)?);
        let code = self.code(code_hash)?;
        Ok(Some(AccountInfo {
            balance,
            nonce: to_u64(nonce),
            code_hash,
            code: Some(code),
            ..Default::default()
        }))
    }

    /// The code of hash `hash` (empty for the empty hash).
    pub(super) fn code(&self, hash: B256) -> Result<Bytecode> {
        if hash == KECCAK_EMPTY || hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        if let Some(c) = self.code.borrow().get(&hash) {
            return Ok(c.clone());
        }
        let bytes: Vec<u8> = self
            .conn
            .prepare_cached("SELECT bytes FROM code WHERE hash = ?1")
            .and_then(|mut s| {
                s.query_row(params![hash.as_slice()], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.err("read contract code", e))?
            .ok_or_else(|| corrupted(&self.path, format!("no code for hash {hash}")))?;
        let code = Bytecode::new_raw_checked(bytes.into())
            .map_err(|e| corrupted(&self.path, format!("code {hash}: {e:?}")))?;
        self.code.borrow_mut().insert(hash, code.clone());
        Ok(code)
    }

    /// The value of storage slot `slot` of `addr` (zero if unset).
    pub(super) fn storage(&self, addr: Address, slot: U256) -> Result<U256> {
        let v: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT value FROM storage WHERE address = ?1 AND slot = ?2")
            .and_then(|mut s| {
                s.query_row(
                    params![addr.as_slice(), slot.to_be_bytes::<32>().as_slice()],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(|e| self.err("read a storage slot", e))?;
        match v {
            Some(v) => Ok(U256::from_be_bytes(word(&self.path, "a slot value", &v)?)),
            None => Ok(U256::ZERO),
        }
    }

    /// The receipt of `tx_hash`: one keyed read.
    pub(super) fn receipt(&self, tx_hash: &B256) -> Result<Option<EvmReceipt>> {
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM receipts WHERE tx_hash = ?1")
            .and_then(|mut s| {
                s.query_row(params![tx_hash.as_slice()], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.err("read a receipt", e))?;
        body.map(|b| {
            serde_json::from_str(&b)
                .map_err(|e| corrupted(&self.path, format!("receipt {tx_hash}: {e}")))
        })
        .transpose()
    }

    /// Writes one account's info (the faucet).
    pub(super) fn put_account(&mut self, addr: Address, info: &AccountInfo) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(&self.path, "begin", e))?;
        write_account(&tx, &self.path, addr, info)?;
        tx.commit().map_err(|e| db_err(&self.path, "commit", e))
    }

    /// Writes the meta row.
    pub(super) fn put_meta(&mut self, meta: &Meta) -> Result<()> {
        write_meta(&self.conn, &self.path, meta)
    }

    /// Writes what one transaction changed — the accounts it touched,
    /// created or self-destructed, their changed slots, new code — with
    /// its receipt and the new meta row, as one SQLite transaction: after a
    /// crash the database holds all of it or none of it.
    pub(super) fn commit_tx(
        &mut self,
        changes: &EvmState,
        receipt: &EvmReceipt,
        meta: &Meta,
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(&path, "begin", e))?;
        for (addr, account) in changes {
            if !account.is_touched() {
                continue;
            }
            if account.is_selfdestructed() {
                tx.prepare_cached("DELETE FROM accounts WHERE address = ?1")
                    .and_then(|mut s| s.execute(params![addr.as_slice()]))
                    .map_err(|e| db_err(&path, "delete an account", e))?;
                clear_storage(&tx, &path, *addr)?;
                continue;
            }
            if account.is_created() {
                clear_storage(&tx, &path, *addr)?;
            }
            write_account(&tx, &path, *addr, &account.info)?;
            for (slot, value) in account.changed_storage_slots() {
                write_slot(&tx, &path, *addr, *slot, value.present_value())?;
            }
        }
        write_receipt(&tx, &path, receipt)?;
        write_meta(&tx, &path, meta)?;
        tx.commit().map_err(|e| db_err(&path, "commit", e))
    }
}

fn clear_storage(conn: &Connection, path: &Path, addr: Address) -> Result<()> {
    conn.prepare_cached("DELETE FROM storage WHERE address = ?1")
        .and_then(|mut s| s.execute(params![addr.as_slice()]))
        .map(|_| ())
        .map_err(|e| db_err(path, "clear an account's storage", e))
}

fn write_account(conn: &Connection, path: &Path, addr: Address, info: &AccountInfo) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO accounts (address, balance, nonce, code_hash) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (address) DO UPDATE SET
             balance = excluded.balance, nonce = excluded.nonce, code_hash = excluded.code_hash",
    )
    .and_then(|mut s| {
        s.execute(params![
            addr.as_slice(),
            info.balance.to_be_bytes::<32>().as_slice(),
            to_i64(info.nonce),
            info.code_hash.as_slice()
        ])
    })
    .map_err(|e| db_err(path, "write an account", e))?;
    if let Some(code) = &info.code
        && info.code_hash != KECCAK_EMPTY
        && !code.is_empty()
    {
        conn.prepare_cached("INSERT OR IGNORE INTO code (hash, bytes) VALUES (?1, ?2)")
            .and_then(|mut s| {
                s.execute(params![
                    info.code_hash.as_slice(),
                    code.original_bytes().as_ref()
                ])
            })
            .map_err(|e| db_err(path, "write contract code", e))?;
    }
    Ok(())
}

fn write_slot(
    conn: &Connection,
    path: &Path,
    addr: Address,
    slot: U256,
    value: U256,
) -> Result<()> {
    let key = slot.to_be_bytes::<32>();
    let r = if value.is_zero() {
        conn.prepare_cached("DELETE FROM storage WHERE address = ?1 AND slot = ?2")
            .and_then(|mut s| s.execute(params![addr.as_slice(), key.as_slice()]))
    } else {
        conn.prepare_cached(
            "INSERT INTO storage (address, slot, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (address, slot) DO UPDATE SET value = excluded.value",
        )
        .and_then(|mut s| {
            s.execute(params![
                addr.as_slice(),
                key.as_slice(),
                value.to_be_bytes::<32>().as_slice()
            ])
        })
    };
    r.map(|_| ())
        .map_err(|e| db_err(path, "write a storage slot", e))
}

fn write_receipt(conn: &Connection, path: &Path, receipt: &EvmReceipt) -> Result<()> {
    let body = serde_json::to_string(receipt).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            "embedded chain: cannot encode a receipt",
        )
        .with_source(e)
    })?;
    conn.prepare_cached("INSERT INTO receipts (tx_hash, block, body) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| {
            s.execute(params![
                receipt.tx_hash.as_slice(),
                to_i64(receipt.block_number),
                body
            ])
        })
        .map(|_| ())
        .map_err(|e| db_err(path, "write a receipt", e))
}

fn write_meta(conn: &Connection, path: &Path, meta: &Meta) -> Result<()> {
    conn.prepare_cached(
        "UPDATE meta SET block = ?1, last_timestamp = ?2, time_offset = ?3, floor = ?4
         WHERE id = 0",
    )
    .and_then(|mut s| {
        s.execute(params![
            to_i64(meta.block),
            to_i64(meta.last_timestamp),
            to_i64(meta.time_offset),
            to_i64(meta.floor)
        ])
    })
    .map_err(|e| db_err(path, "write the chain metadata", e))
    .and_then(|n| {
        if n == 1 {
            Ok(())
        } else {
            Err(corrupted(path, "no metadata row"))
        }
    })
}

/// The whole-state file of the previous version.
#[derive(Deserialize)]
struct LegacyState {
    db: CacheDB<EmptyDB>,
    block: u64,
    last_timestamp: u64,
    time_offset: u64,
    #[serde(default)]
    floor: u64,
    receipts: Vec<EvmReceipt>,
}

/// Imports `legacy` (a `state.json`) into a new database at `path`: built
/// under a temporary name in the same directory, made durable, renamed into
/// place, and only then `state.json` is renamed to `state.json.imported`. A
/// crash at any point leaves either no database (the import runs again) or
/// a complete one.
fn import_legacy(dir: &Path, legacy: &Path, path: &Path) -> Result<()> {
    let bytes =
        std::fs::read(legacy).map_err(|e| io_err("read the embedded chain state", legacy, e))?;
    let state: LegacyState = serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::Corrupted,
            format!("embedded chain state is malformed: {e}"),
        )
        .with_context("path", legacy.display().to_string())
    })?;
    drop(bytes);
    let tmp = dir.join(format!(".{DB_FILE}.{}.tmp", unique_suffix()));
    let build = || -> Result<()> {
        let mut conn = Connection::open(&tmp).map_err(|e| db_err(&tmp, "create", e))?;
        let meta = Meta {
            block: state.block,
            last_timestamp: state.last_timestamp,
            time_offset: state.time_offset,
            floor: state.floor,
        };
        init_schema(&mut conn, &tmp, &meta, true)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(&tmp, "begin", e))?;
        for (hash, code) in &state.db.cache.contracts {
            if *hash == KECCAK_EMPTY || code.is_empty() {
                continue;
            }
            tx.prepare_cached("INSERT OR IGNORE INTO code (hash, bytes) VALUES (?1, ?2)")
                .and_then(|mut s| {
                    s.execute(params![hash.as_slice(), code.original_bytes().as_ref()])
                })
                .map_err(|e| db_err(&tmp, "write contract code", e))?;
        }
        for (addr, account) in &state.db.cache.accounts {
            if matches!(account.account_state, AccountState::NotExisting) {
                // Looked up and absent: no account.
                continue;
            }
            write_account(&tx, &tmp, *addr, &account.info)?;
            for (slot, value) in &account.storage {
                if !value.is_zero() {
                    write_slot(&tx, &tmp, *addr, *slot, *value)?;
                }
            }
        }
        for r in &state.receipts {
            write_receipt(&tx, &tmp, r)?;
        }
        tx.commit().map_err(|e| db_err(&tmp, "commit", e))?;
        conn.close().map_err(|(_, e)| db_err(&tmp, "close", e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err("sync the imported chain database", &tmp, e))?;
        match rename_noreplace(&tmp, path) {
            Ok(()) => {}
            // Another open imported it first: theirs stands.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&tmp);
            }
            Err(e) => return Err(io_err("install the imported chain database", path, e)),
        }
        fsync_dir(dir).map_err(|e| io_err("sync the chain directory", dir, e))
    };
    if let Err(e) = build() {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(dir.join(format!(
            "{}-journal",
            tmp.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        )));
        return Err(e);
    }
    retire_legacy(dir, legacy)
}

/// Renames an imported `state.json` out of the way.
fn retire_legacy(dir: &Path, legacy: &Path) -> Result<()> {
    let to = dir.join(IMPORTED_FILE);
    std::fs::rename(legacy, &to)
        .map_err(|e| io_err("rename the imported chain state", legacy, e))?;
    fsync_dir(dir).map_err(|e| io_err("sync the chain directory", dir, e))
}
