//! [`EmbeddedEvm`]: an EVM node inside the engine (revm), so the contracts
//! run for real with no external service — the embedded default.
//!
//! It behaves like a single-node development chain (anvil's automine):
//! - every transaction is mined in its own block, immediately;
//! - block timestamps follow the wall clock (never going back, always
//!   advancing by at least one second per block), plus an offset that
//!   [`EmbeddedEvm::advance_time`] moves forward, so challenge periods
//!   expire in real time or on demand;
//! - transactions are not signed: the engine is the only client and names
//!   the sender. Gas is metered and reported, but the gas price is zero,
//!   so balances change only by the value the contracts move.
//!
//! Transaction hashes are `keccak256("artha-embedded-tx" ‖ chain id ‖ from
//! ‖ nonce ‖ to ‖ value ‖ data)`, unique per sender and nonce.
//!
//! # Persistence
//!
//! [`EmbeddedEvm::open`] keeps the chain in a SQLite database,
//! `<dir>/chain.db` (WAL, `synchronous=FULL`), with one table per kind of
//! thing — accounts, code by hash, storage slots, receipts by transaction
//! hash — and a one-row meta table (height, latest timestamp, time offset,
//! clock floor); see `embedded/sqlite.rs` for the schema.
//!
//! The design goal is a cost per transaction that does not grow with the
//! chain's history. The previous version kept everything (state and every
//! receipt) in memory and rewrote it as one `state.json` after every
//! transaction: at ~10 000 jobs the file was 68 MB and a submission took a
//! second. Now:
//! - **writes are the transaction's diff.** A transaction is executed with
//!   revm's `transact`, which leaves the database alone and returns the
//!   accounts it touched, created or self-destructed with their changed
//!   slots. Exactly those rows, the new code, the receipt and the meta row
//!   are written in **one** SQLite transaction, so a crash leaves the whole
//!   transaction or none of it, and `send` returns only once it is durable.
//!   The in-memory meta (height, clock) moves only after that commit, so
//!   memory and disk never disagree. A revert or a rejected transaction
//!   writes nothing.
//! - **reads go through to SQLite.** The EVM reads accounts and slots with
//!   keyed point queries (prepared statements; SQLite's page cache keeps the
//!   hot pages in memory), so opening is O(1) and memory does not grow with
//!   the state; only analysed contract code is cached (one entry per
//!   contract). Within a transaction revm's journal caches what it loaded.
//!   A read-only [`EmbeddedEvm::call`] runs on the same read path and
//!   discards its diff — no copy of the state is made for either.
//! - **receipts are rows keyed by hash**: [`EmbeddedEvm::receipt`] is one
//!   keyed read, and nothing about old receipts is held in memory.
//!
//! The cost that remains is a B-tree lookup per slot (logarithmic in the
//! state, not in the history) and SQLite's WAL checkpoint, which copies at
//! most ~1 000 pages back into the database every so often — bounded, and
//! independent of the chain's size. `docs/BENCHMARKS.md` ("Embedded chain:
//! cost per transaction") has the figures.
//!
//! **Migration.** A chain directory written by the previous version holds
//! `state.json` and no `chain.db`: [`EmbeddedEvm::open`] imports it once —
//! into a database built under a temporary name, synced, renamed into
//! place — and then renames `state.json` to `state.json.imported`. A crash
//! during the import leaves no database, so the next open imports again.
//! A malformed `state.json` or `chain.db` is an error of kind `Corrupted`
//! naming the file.
//!
//! [`EmbeddedEvm::in_memory`] keeps the same state in a revm `CacheDB` and
//! its receipts in a map, persisting nothing (tests, throwaway chains).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use artha_core::{Error, ErrorKind, Result};
use revm::bytecode::Bytecode;
use revm::context::result::{EVMError, ExecutionResult, Output};
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::{DBErrorMarker, WrapDatabaseRef};
use revm::primitives::{StorageKey, StorageValue, TxKind};
use revm::state::{AccountInfo, EvmState};
use revm::{Context, Database, DatabaseCommit, DatabaseRef, ExecuteEvm, MainBuilder, MainContext};

use super::{EvmReceipt, LogEntry};

mod sqlite;

use sqlite::SqliteStore;

/// Chain id of the embedded chain (the same as anvil's default, 31337).
pub const CHAIN_ID: u64 = 31_337;
/// Gas limit of a block.
pub const BLOCK_GAS_LIMIT: u64 = 30_000_000;
/// Gas limit of a transaction: the per-transaction cap of EIP-7825 (2^24).
pub const TX_GAS_LIMIT: u64 = 1 << 24;

/// Height and clock: small, kept in memory, persisted with every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    block: u64,
    last_timestamp: u64,
    time_offset: u64,
    /// Earliest timestamp of the next block (set by `advance_time`).
    floor: u64,
}

impl Meta {
    fn fresh() -> Self {
        Meta {
            block: 0,
            last_timestamp: wall_clock(),
            time_offset: 0,
            floor: 0,
        }
    }
}

/// Where the state lives.
#[derive(Debug)]
enum Store {
    /// In memory only ([`EmbeddedEvm::in_memory`]).
    Memory {
        db: CacheDB<EmptyDB>,
        receipts: HashMap<B256, EvmReceipt>,
    },
    /// In SQLite ([`EmbeddedEvm::open`]).
    Sqlite(SqliteStore),
}

/// A store error carried through revm (which needs its own error trait).
#[derive(Debug)]
struct StoreError(Error);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl DBErrorMarker for StoreError {}

fn unreachable_db(e: std::convert::Infallible) -> StoreError {
    match e {}
}

impl DatabaseRef for Store {
    type Error = StoreError;

    fn basic_ref(&self, address: Address) -> std::result::Result<Option<AccountInfo>, StoreError> {
        match self {
            Store::Memory { db, .. } => db.basic_ref(address).map_err(unreachable_db),
            Store::Sqlite(s) => s.account(address).map_err(StoreError),
        }
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> std::result::Result<Bytecode, StoreError> {
        match self {
            Store::Memory { db, .. } => db.code_by_hash_ref(code_hash).map_err(unreachable_db),
            Store::Sqlite(s) => s.code(code_hash).map_err(StoreError),
        }
    }

    fn storage_ref(
        &self,
        address: Address,
        index: StorageKey,
    ) -> std::result::Result<StorageValue, StoreError> {
        match self {
            Store::Memory { db, .. } => db.storage_ref(address, index).map_err(unreachable_db),
            Store::Sqlite(s) => s.storage(address, index).map_err(StoreError),
        }
    }

    fn block_hash_ref(&self, number: u64) -> std::result::Result<B256, StoreError> {
        // As anvil's and revm's in-memory databases do: the hash of the
        // number (the embedded chain has no real block hashes).
        Ok(keccak256(number.to_string().as_bytes()))
    }
}

impl Store {
    /// Records a mined transaction: its diff, its receipt and the new meta,
    /// all or nothing.
    fn commit_tx(&mut self, changes: EvmState, receipt: &EvmReceipt, meta: &Meta) -> Result<()> {
        match self {
            Store::Memory { db, receipts } => {
                db.commit(changes);
                receipts.insert(receipt.tx_hash, receipt.clone());
                Ok(())
            }
            Store::Sqlite(s) => s.commit_tx(&changes, receipt, meta),
        }
    }

    fn put_account(&mut self, addr: Address, info: AccountInfo) -> Result<()> {
        match self {
            Store::Memory { db, .. } => {
                db.insert_account_info(addr, info);
                Ok(())
            }
            Store::Sqlite(s) => s.put_account(addr, &info),
        }
    }

    fn put_meta(&mut self, meta: &Meta) -> Result<()> {
        match self {
            Store::Memory { .. } => Ok(()),
            Store::Sqlite(s) => s.put_meta(meta),
        }
    }

    fn receipt(&self, tx_hash: &B256) -> Result<Option<EvmReceipt>> {
        match self {
            Store::Memory { receipts, .. } => Ok(receipts.get(tx_hash).cloned()),
            Store::Sqlite(s) => s.receipt(tx_hash),
        }
    }
}

#[derive(Debug)]
struct State {
    store: Store,
    meta: Meta,
}

/// An in-process EVM chain. See the module docs.
#[derive(Debug)]
pub struct EmbeddedEvm {
    state: Mutex<State>,
}

fn wall_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn evm_error(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("embedded EVM: cannot {what}: {detail}"),
    )
}

use super::embedded_reverted as reverted;

impl EmbeddedEvm {
    /// A chain kept in memory only.
    pub fn in_memory() -> Self {
        EmbeddedEvm {
            state: Mutex::new(State {
                store: Store::Memory {
                    db: CacheDB::new(EmptyDB::new()),
                    receipts: HashMap::new(),
                },
                meta: Meta::fresh(),
            }),
        }
    }

    /// Opens the chain persisted in `dir` (`chain.db`), or starts a new one
    /// there. A `state.json` left by the previous version (and no
    /// `chain.db`) is imported first; see the module docs.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::fsutil::io_err("create the chain directory", dir, e))?;
        let (store, meta) = SqliteStore::open(dir, Meta::fresh())?;
        Ok(EmbeddedEvm {
            state: Mutex::new(State {
                store: Store::Sqlite(store),
                meta,
            }),
        })
    }

    /// The database file, for a chain opened from a directory.
    pub fn database_path(&self) -> Option<std::path::PathBuf> {
        match &self.lock().store {
            Store::Memory { .. } => None,
            Store::Sqlite(s) => Some(s.path().to_path_buf()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Memory changes only after the store has committed (and a SQLite
        // transaction not committed is rolled back), so a poisoned lock
        // still guards a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Credits `wei` to `addr` (the development faucet of a local chain).
    pub fn fund(&self, addr: Address, wei: U256) -> Result<()> {
        let mut st = self.lock();
        let mut info = st
            .store
            .basic_ref(addr)
            .map_err(|e| e.0)?
            .unwrap_or_default();
        info.balance = info.balance.saturating_add(wei);
        st.store.put_account(addr, info)
    }

    /// The balance of `addr`.
    pub fn balance(&self, addr: Address) -> Result<U256> {
        let st = self.lock();
        Ok(st
            .store
            .basic_ref(addr)
            .map_err(|e| e.0)?
            .map(|a| a.balance)
            .unwrap_or_default())
    }

    /// The latest block number.
    pub fn block_number(&self) -> u64 {
        self.lock().meta.block
    }

    /// The timestamp of the latest block.
    pub fn last_timestamp(&self) -> u64 {
        self.lock().meta.last_timestamp
    }

    /// The timestamp the next block will get.
    pub fn now(&self) -> u64 {
        Self::next_timestamp(&self.lock().meta)
    }

    fn next_timestamp(m: &Meta) -> u64 {
        (wall_clock().saturating_add(m.time_offset))
            .max(m.last_timestamp.saturating_add(1))
            .max(m.floor)
    }

    /// Moves the chain clock forward by `secs` (like anvil's
    /// `evm_increaseTime`): the next block is at least `secs` after the
    /// latest one, and later blocks keep the offset.
    pub fn advance_time(&self, secs: u64) -> Result<()> {
        let mut st = self.lock();
        let mut meta = st.meta;
        meta.time_offset = meta.time_offset.saturating_add(secs);
        meta.floor = meta.floor.max(meta.last_timestamp.saturating_add(secs));
        st.store.put_meta(&meta)?;
        st.meta = meta;
        Ok(())
    }

    /// Mines an empty block at the next timestamp; returns its number.
    pub fn mine_empty(&self) -> Result<u64> {
        let mut st = self.lock();
        let meta = Meta {
            block: st.meta.block + 1,
            last_timestamp: Self::next_timestamp(&st.meta),
            ..st.meta
        };
        st.store.put_meta(&meta)?;
        st.meta = meta;
        Ok(meta.block)
    }

    /// The receipt of `tx_hash`, if mined here. A failed read of the
    /// database is `None` here; [`EmbeddedEvm::try_receipt`] reports it.
    pub fn receipt(&self, tx_hash: &B256) -> Option<EvmReceipt> {
        self.try_receipt(tx_hash).ok().flatten()
    }

    /// The receipt of `tx_hash`, if mined here: one keyed read.
    pub fn try_receipt(&self, tx_hash: &B256) -> Result<Option<EvmReceipt>> {
        self.lock().store.receipt(tx_hash)
    }

    /// Runs a read-only call against the latest state.
    pub fn call(&self, from: Address, to: Address, data: Bytes) -> Result<Bytes> {
        let st = self.lock();
        let ts = Self::next_timestamp(&st.meta);
        let nonce = st
            .store
            .basic_ref(from)
            .map_err(|e| e.0)?
            .map_or(0, |a| a.nonce);
        let tx = Self::tx(from, TxKind::Call(to), data, U256::ZERO, nonce)?;
        let mut evm = Self::evm(WrapDatabaseRef(&st.store), st.meta.block + 1, ts);
        let out = evm.transact(tx).map_err(|e| match e {
            EVMError::Database(e) => e.0,
            other => evm_error("execute a call", other),
        })?;
        match out.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(reverted(&output)),
            ExecutionResult::Halt { reason, .. } => Err(Error::new(
                ErrorKind::Reverted,
                format!("call halted: {reason:?}"),
            )),
        }
    }

    /// Deploys `initcode` from `from`; the receipt names the new contract.
    pub fn deploy(&self, from: Address, initcode: Bytes) -> Result<EvmReceipt> {
        self.mine(from, TxKind::Create, initcode, U256::ZERO)
    }

    /// Sends a transaction calling `to` with `data` and `value`, mined at
    /// once. A revert is an error of kind `Reverted` carrying the revert data
    /// (and mines nothing: the state is unchanged).
    pub fn send(&self, from: Address, to: Address, data: Bytes, value: U256) -> Result<EvmReceipt> {
        self.mine(from, TxKind::Call(to), data, value)
    }

    fn tx(from: Address, kind: TxKind, data: Bytes, value: U256, nonce: u64) -> Result<TxEnv> {
        TxEnv::builder()
            .caller(from)
            .kind(kind)
            .data(data)
            .value(value)
            .gas_limit(TX_GAS_LIMIT)
            .gas_price(0)
            .nonce(nonce)
            .chain_id(Some(CHAIN_ID))
            .build()
            .map_err(|e| evm_error("build a transaction", format!("{e:?}")))
    }

    fn evm<DB: Database>(
        db: DB,
        number: u64,
        timestamp: u64,
    ) -> revm::MainnetEvm<revm::handler::MainnetContext<DB>> {
        Context::mainnet()
            .with_db(db)
            .modify_block_chained(|b: &mut BlockEnv| {
                b.number = U256::from(number);
                b.timestamp = U256::from(timestamp);
                b.gas_limit = BLOCK_GAS_LIMIT;
                b.basefee = 0;
            })
            .modify_cfg_chained(|c: &mut CfgEnv| {
                c.chain_id = CHAIN_ID;
            })
            .build_mainnet()
    }

    fn mine(&self, from: Address, kind: TxKind, data: Bytes, value: U256) -> Result<EvmReceipt> {
        let mut st = self.lock();
        let number = st.meta.block + 1;
        let timestamp = Self::next_timestamp(&st.meta);
        let nonce = st
            .store
            .basic_ref(from)
            .map_err(|e| e.0)?
            .map_or(0, |a| a.nonce);
        let to = match kind {
            TxKind::Call(a) => Some(a),
            TxKind::Create => None,
        };
        let mut pre = b"artha-embedded-tx".to_vec();
        pre.extend_from_slice(&CHAIN_ID.to_be_bytes());
        pre.extend_from_slice(from.as_slice());
        pre.extend_from_slice(&nonce.to_be_bytes());
        pre.extend_from_slice(to.unwrap_or_default().as_slice());
        pre.extend_from_slice(&value.to_be_bytes::<32>());
        pre.extend_from_slice(&data);
        let tx_hash = keccak256(&pre);
        let tx = Self::tx(from, kind, data, value, nonce)?;
        // Executed against the store read-only: the diff comes back and is
        // applied below, only if the transaction succeeded.
        let out = {
            let mut evm = Self::evm(WrapDatabaseRef(&st.store), number, timestamp);
            evm.transact(tx).map_err(|e| match e {
                EVMError::Transaction(t) => Error::new(
                    ErrorKind::InsufficientFunds,
                    format!("transaction rejected: {t:?}"),
                )
                .with_context("from", from.to_string()),
                EVMError::Database(e) => e.0,
                other => evm_error("execute a transaction", format!("{other:?}")),
            })?
        };
        let (gas_used, logs, output, contract_address) = match out.result {
            ExecutionResult::Success {
                gas, logs, output, ..
            } => {
                let created = match &output {
                    Output::Create(_, addr) => *addr,
                    Output::Call(_) => None,
                };
                (gas.spent_sub_refunded(), logs, output.into_data(), created)
            }
            ExecutionResult::Revert { output, .. } => return Err(reverted(&output)),
            ExecutionResult::Halt { reason, .. } => {
                return Err(Error::new(
                    ErrorKind::Reverted,
                    format!("transaction halted: {reason:?}"),
                ));
            }
        };
        let receipt = EvmReceipt {
            tx_hash,
            block_number: number,
            timestamp,
            from,
            to,
            contract_address,
            gas_used,
            logs: logs
                .into_iter()
                .map(|l| LogEntry {
                    address: l.address,
                    topics: l.data.topics().to_vec(),
                    data: l.data.data.clone(),
                })
                .collect(),
            output,
        };
        let meta = Meta {
            block: number,
            last_timestamp: timestamp,
            ..st.meta
        };
        // Durable (or, in memory, applied) before the height moves: on an
        // error nothing changed.
        st.store.commit_tx(out.state, &receipt, &meta)?;
        st.meta = meta;
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Init code of a contract whose runtime returns its storage slot 0 on
    /// any call with empty data, and stores calldata word 0 into slot 0 and
    /// emits a LOG0 of it otherwise; reverts with `0xdead` when the word is
    /// zero. Hand-assembled:
    ///
    /// runtime: CALLDATASIZE ISZERO PUSH1 get JUMPI
    ///          PUSH1 0 CALLDATALOAD DUP1 ISZERO PUSH1 bad JUMPI
    ///          DUP1 PUSH1 0 SSTORE PUSH1 0 MSTORE PUSH1 32 PUSH1 0 LOG0 STOP
    ///   bad:   JUMPDEST PUSH2 0xdead PUSH1 0 MSTORE PUSH1 2 PUSH1 30 REVERT
    ///   get:   JUMPDEST PUSH1 0 SLOAD PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
    fn initcode() -> Bytes {
        let mut code: Vec<u8> = Vec::new();
        code.extend([0x36, 0x15, 0x60, 0x00, 0x57]); // CALLDATASIZE ISZERO PUSH1 get JUMPI (patched)
        code.extend([0x60, 0x00, 0x35, 0x80, 0x15, 0x60, 0x00, 0x57]); // PUSH1 0 CALLDATALOAD DUP1 ISZERO PUSH1 bad JUMPI (patched)
        code.extend([
            0x80, 0x60, 0x00, 0x55, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xa0, 0x00,
        ]);
        let bad = code.len() as u8;
        code.extend([
            0x5b, 0x61, 0xde, 0xad, 0x60, 0x00, 0x52, 0x60, 0x02, 0x60, 0x1e, 0xfd,
        ]);
        let get = code.len() as u8;
        code.extend([
            0x5b, 0x60, 0x00, 0x54, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3,
        ]);
        code[3] = get;
        code[11] = bad;
        // Init: CODECOPY runtime to memory 0 and RETURN it.
        let n = code.len() as u8;
        let mut init = vec![
            0x60, n, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, n, 0x60, 0x00, 0xf3,
        ];
        init.extend(code);
        Bytes::from(init)
    }

    fn word(v: u8) -> Bytes {
        let mut w = [0u8; 32];
        w[31] = v;
        Bytes::from(w.to_vec())
    }

    #[test]
    fn deploy_send_call_revert_and_persist() {
        let tmp = tempfile::tempdir().unwrap();
        let alice = Address::repeat_byte(0xa1);
        let (addr, h1) = {
            let chain = EmbeddedEvm::open(tmp.path()).unwrap();
            chain.fund(alice, U256::from(10u64.pow(18))).unwrap();
            let d = chain.deploy(alice, initcode()).unwrap();
            let addr = d.contract_address.unwrap();
            assert_eq!(d.block_number, 1);
            let r = chain.send(alice, addr, word(7), U256::ZERO).unwrap();
            assert_eq!(r.block_number, 2);
            assert!(r.timestamp > d.timestamp);
            assert_eq!(r.logs.len(), 1);
            assert_eq!(r.logs[0].data, word(7));
            assert!(r.gas_used > 20_000, "an SSTORE was metered: {}", r.gas_used);
            assert_eq!(chain.call(alice, addr, Bytes::new()).unwrap(), word(7));
            // A revert changes nothing and mines nothing.
            let e = chain.send(alice, addr, word(0), U256::ZERO).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Reverted);
            assert_eq!(e.context_value("revert_data"), Some("0xdead"));
            assert_eq!(chain.block_number(), 2);
            assert_eq!(chain.call(alice, addr, Bytes::new()).unwrap(), word(7));
            (addr, r.tx_hash)
        };
        // Reopen: same state, same receipts, same height.
        let chain = EmbeddedEvm::open(tmp.path()).unwrap();
        assert_eq!(chain.block_number(), 2);
        assert_eq!(chain.call(alice, addr, Bytes::new()).unwrap(), word(7));
        assert_eq!(chain.receipt(&h1).unwrap().block_number, 2);
        assert_eq!(
            chain.balance(alice).unwrap(),
            U256::from(10u64.pow(18)),
            "gas price is zero"
        );
    }

    #[test]
    fn clock_advances_and_value_moves() {
        let chain = EmbeddedEvm::in_memory();
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        chain.fund(a, U256::from(100u64)).unwrap();
        let t0 = chain.now();
        chain.advance_time(3600).unwrap();
        assert!(chain.now() >= t0 + 3599);
        let r = chain.send(a, b, Bytes::new(), U256::from(40u64)).unwrap();
        assert!(r.timestamp >= t0 + 3599);
        assert_eq!(chain.balance(b).unwrap(), U256::from(40u64));
        let e = chain
            .send(a, b, Bytes::new(), U256::from(100u64))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InsufficientFunds);
        assert_eq!(chain.balance(a).unwrap(), U256::from(60u64));
    }

    #[test]
    fn corrupted_state_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let legacy = tmp.path().join("state.json");
        std::fs::write(&legacy, b"{oops").unwrap();
        let e = EmbeddedEvm::open(tmp.path()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        assert_eq!(e.context_value("path"), Some(legacy.to_str().unwrap()));
        // Nothing was imported, nothing renamed, no temporary file left.
        assert!(legacy.exists());
        assert!(!tmp.path().join("chain.db").exists());
        assert_eq!(tmp_files(tmp.path()), Vec::<String>::new());
    }

    fn wall() -> u64 {
        wall_clock()
    }

    /// The `state.json` the previous version would have written for
    /// `chain` (an in-memory chain: the same `CacheDB` it kept, committed
    /// the same way), with an account that was looked up and found absent
    /// as `transact_commit` used to cache it.
    fn legacy_json(chain: &EmbeddedEvm) -> Vec<u8> {
        let st = chain.lock();
        let Store::Memory { db, receipts } = &st.store else {
            panic!("in memory")
        };
        let mut db = db.clone();
        db.cache.accounts.insert(
            Address::repeat_byte(0x99),
            revm::database::DbAccount::new_not_existing(),
        );
        let mut receipts: Vec<EvmReceipt> = receipts.values().cloned().collect();
        receipts.sort_by_key(|r| r.block_number);
        serde_json::to_vec(&serde_json::json!({
            "db": db,
            "block": st.meta.block,
            "last_timestamp": st.meta.last_timestamp,
            "time_offset": st.meta.time_offset,
            "floor": st.meta.floor,
            "receipts": receipts,
        }))
        .unwrap()
    }

    fn tmp_files(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") || n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn legacy_state_json_is_imported_once() {
        let (alice, bob) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb0));
        let old = EmbeddedEvm::in_memory();
        old.fund(alice, U256::from(10u64.pow(18))).unwrap();
        let d = old.deploy(alice, initcode()).unwrap();
        let addr = d.contract_address.unwrap();
        let r = old.send(alice, addr, word(7), U256::ZERO).unwrap();
        old.advance_time(3_600).unwrap();
        let t = old
            .send(alice, bob, Bytes::new(), U256::from(5u64))
            .unwrap();

        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("state.json"), legacy_json(&old)).unwrap();
        let chain = EmbeddedEvm::open(tmp.path()).unwrap();
        assert!(!tmp.path().join("state.json").exists());
        assert!(tmp.path().join("state.json.imported").exists());
        assert!(tmp.path().join("chain.db").exists());
        assert_eq!(tmp_files(tmp.path()), Vec::<String>::new());
        assert_eq!(chain.block_number(), 3);
        assert_eq!(chain.last_timestamp(), old.last_timestamp());
        assert!(chain.now() >= wall() + 3_599, "the time offset is imported");
        assert_eq!(chain.call(alice, addr, Bytes::new()).unwrap(), word(7));
        assert_eq!(chain.balance(bob).unwrap(), U256::from(5u64));
        assert_eq!(chain.balance(alice).unwrap(), old.balance(alice).unwrap());
        for h in [d.tx_hash, r.tx_hash, t.tx_hash] {
            assert_eq!(chain.receipt(&h), old.receipt(&h));
            assert!(chain.receipt(&h).is_some());
        }
        // The nonce came along: the next transaction is alice's fourth.
        let next = chain.send(alice, addr, word(9), U256::ZERO).unwrap();
        assert_eq!(next.block_number, 4);
        assert_eq!(
            next.tx_hash,
            old.send(alice, addr, word(9), U256::ZERO).unwrap().tx_hash
        );
        drop(chain);

        // A crash between the two renames leaves both files: the database
        // stands (nothing is imported again) and state.json is retired.
        std::fs::copy(
            tmp.path().join("state.json.imported"),
            tmp.path().join("state.json"),
        )
        .unwrap();
        let chain = EmbeddedEvm::open(tmp.path()).unwrap();
        assert_eq!(chain.block_number(), 4);
        assert_eq!(chain.call(alice, addr, Bytes::new()).unwrap(), word(9));
        assert!(!tmp.path().join("state.json").exists());
    }

    /// A write that fails half-way (here a trigger that refuses the
    /// receipt, written after the accounts and slots) leaves nothing: not
    /// in the database, not in memory; and the chain goes on afterwards.
    #[test]
    fn a_failed_write_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let alice = Address::repeat_byte(0xa1);
        let chain = EmbeddedEvm::open(tmp.path()).unwrap();
        chain.fund(alice, U256::from(1_000u64)).unwrap();
        let addr = chain
            .deploy(alice, initcode())
            .unwrap()
            .contract_address
            .unwrap();
        chain.send(alice, addr, word(7), U256::ZERO).unwrap();
        let side = rusqlite::Connection::open(tmp.path().join("chain.db")).unwrap();
        for (table, op) in [("receipts", "INSERT"), ("meta", "UPDATE")] {
            side.execute_batch(&format!(
                "CREATE TRIGGER refuse BEFORE {op} ON {table} BEGIN SELECT RAISE(ABORT, 'injected'); END;"
            ))
            .unwrap();
            let e = chain
                .send(alice, addr, word(9), U256::from(1u64))
                .unwrap_err();
            assert!(format!("{e:?}").contains("injected"), "{e:?}");
            assert_eq!(chain.block_number(), 2);
            assert_eq!(chain.call(alice, addr, Bytes::new()).unwrap(), word(7));
            assert_eq!(chain.balance(addr).unwrap(), U256::ZERO);
            assert_eq!(chain.balance(alice).unwrap(), U256::from(1_000u64));
            let reopened = EmbeddedEvm::open(tmp.path()).unwrap();
            assert_eq!(reopened.block_number(), 2);
            assert_eq!(reopened.call(alice, addr, Bytes::new()).unwrap(), word(7));
            side.execute_batch("DROP TRIGGER refuse;").unwrap();
        }
        let r = chain.send(alice, addr, word(9), U256::from(1u64)).unwrap();
        assert_eq!(r.block_number, 3);
        assert_eq!(chain.call(alice, addr, Bytes::new()).unwrap(), word(9));
        assert_eq!(chain.balance(addr).unwrap(), U256::from(1u64));
        // The failed attempts used no nonce: the hash is that of nonce 2.
        let mut h = b"artha-embedded-tx".to_vec();
        h.extend_from_slice(&CHAIN_ID.to_be_bytes());
        h.extend_from_slice(alice.as_slice());
        h.extend_from_slice(&2u64.to_be_bytes());
        h.extend_from_slice(addr.as_slice());
        h.extend_from_slice(&U256::from(1u64).to_be_bytes::<32>());
        h.extend_from_slice(&word(9));
        assert_eq!(r.tx_hash, keccak256(&h));
    }

    #[test]
    fn a_malformed_row_is_corrupted() {
        let tmp = tempfile::tempdir().unwrap();
        let alice = Address::repeat_byte(0xa1);
        EmbeddedEvm::open(tmp.path())
            .unwrap()
            .fund(alice, U256::from(1u64))
            .unwrap();
        let db = tmp.path().join("chain.db");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute("UPDATE accounts SET balance = x'0102'", [])
            .unwrap();
        let e = EmbeddedEvm::open(tmp.path())
            .unwrap()
            .balance(alice)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        assert_eq!(e.context_value("path"), Some(db.to_str().unwrap()));
    }
}
