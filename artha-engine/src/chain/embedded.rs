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
//!   so balances change only by the value the contracts move;
//! - state (accounts, storage, code), the block height and every receipt
//!   are written atomically under the engine home after each block and
//!   reloaded on open, so a restarted engine sees the same chain.
//!
//! Transaction hashes are `keccak256("artha-embedded-tx" ‖ chain id ‖ from
//! ‖ nonce ‖ to ‖ value ‖ data)`, unique per sender and nonce.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use artha_core::{Error, ErrorKind, Result};
use revm::context::result::{ExecutionResult, Output};
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::TxKind;
use revm::state::AccountInfo;
use revm::{Context, DatabaseRef, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};
use serde::{Deserialize, Serialize};

use super::{EvmReceipt, LogEntry};
use crate::fsutil::{io_err, write_atomic};

/// Chain id of the embedded chain (the same as anvil's default, 31337).
pub const CHAIN_ID: u64 = 31_337;
/// Gas limit of a block.
pub const BLOCK_GAS_LIMIT: u64 = 30_000_000;
/// Gas limit of a transaction: the per-transaction cap of EIP-7825 (2^24).
pub const TX_GAS_LIMIT: u64 = 1 << 24;

#[derive(Debug, Serialize, Deserialize)]
struct State {
    db: CacheDB<EmptyDB>,
    block: u64,
    last_timestamp: u64,
    time_offset: u64,
    /// Earliest timestamp of the next block (set by `advance_time`).
    #[serde(default)]
    floor: u64,
    receipts: Vec<EvmReceipt>,
}

/// An in-process EVM chain. See the module docs.
#[derive(Debug)]
pub struct EmbeddedEvm {
    path: Option<PathBuf>,
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
            path: None,
            state: Mutex::new(State {
                db: CacheDB::new(EmptyDB::new()),
                block: 0,
                last_timestamp: wall_clock(),
                time_offset: 0,
                floor: 0,
                receipts: Vec::new(),
            }),
        }
    }

    /// Opens the chain persisted in `dir` (`state.json`), or starts a new one
    /// there.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create the chain directory", dir, e))?;
        let path = dir.join("state.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Corrupted,
                    format!("embedded chain state is malformed: {e}"),
                )
                .with_context("path", path.display().to_string())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh = EmbeddedEvm::in_memory();
                fresh.state.into_inner().unwrap_or_else(|p| p.into_inner())
            }
            Err(e) => return Err(io_err("read the embedded chain state", &path, e)),
        };
        Ok(EmbeddedEvm {
            path: Some(path),
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every mutation is applied to a copy of the database and swapped in
        // only when complete, so a poisoned lock still guards a whole state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, st: &State) -> Result<()> {
        if let Some(path) = &self.path {
            let bytes = serde_json::to_vec(st).map_err(|e| evm_error("encode the state", e))?;
            write_atomic(path, &bytes)?;
        }
        Ok(())
    }

    /// Credits `wei` to `addr` (the development faucet of a local chain).
    pub fn fund(&self, addr: Address, wei: U256) -> Result<()> {
        let mut st = self.lock();
        let mut info = st
            .db
            .basic_ref(addr)
            .map_err(|e| evm_error("read an account", e))?
            .unwrap_or_default();
        info.balance = info.balance.saturating_add(wei);
        st.db.insert_account_info(addr, AccountInfo { ..info });
        self.persist(&st)
    }

    /// The balance of `addr`.
    pub fn balance(&self, addr: Address) -> Result<U256> {
        let st = self.lock();
        Ok(st
            .db
            .basic_ref(addr)
            .map_err(|e| evm_error("read an account", e))?
            .map(|a| a.balance)
            .unwrap_or_default())
    }

    /// The latest block number.
    pub fn block_number(&self) -> u64 {
        self.lock().block
    }

    /// The timestamp of the latest block.
    pub fn last_timestamp(&self) -> u64 {
        self.lock().last_timestamp
    }

    /// The timestamp the next block will get.
    pub fn now(&self) -> u64 {
        let st = self.lock();
        Self::next_timestamp(&st)
    }

    fn next_timestamp(st: &State) -> u64 {
        (wall_clock() + st.time_offset)
            .max(st.last_timestamp + 1)
            .max(st.floor)
    }

    /// Moves the chain clock forward by `secs` (like anvil's
    /// `evm_increaseTime`): the next block is at least `secs` after the
    /// latest one, and later blocks keep the offset.
    pub fn advance_time(&self, secs: u64) -> Result<()> {
        let mut st = self.lock();
        st.time_offset = st.time_offset.saturating_add(secs);
        st.floor = st.floor.max(st.last_timestamp.saturating_add(secs));
        self.persist(&st)
    }

    /// The receipt of `tx_hash`, if mined here.
    pub fn receipt(&self, tx_hash: &B256) -> Option<EvmReceipt> {
        self.lock()
            .receipts
            .iter()
            .find(|r| r.tx_hash == *tx_hash)
            .cloned()
    }

    /// Runs a read-only call against the latest state.
    pub fn call(&self, from: Address, to: Address, data: Bytes) -> Result<Bytes> {
        let st = self.lock();
        let mut db = st.db.clone();
        let ts = Self::next_timestamp(&st);
        let nonce = db
            .basic_ref(from)
            .map_err(|e| evm_error("read an account", e))?
            .map_or(0, |a| a.nonce);
        let tx = Self::tx(from, TxKind::Call(to), data, U256::ZERO, nonce)?;
        let mut evm = Self::evm(&mut db, st.block + 1, ts);
        let out = evm
            .transact(tx)
            .map_err(|e| evm_error("execute a call", e))?;
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

    fn evm(
        db: &mut CacheDB<EmptyDB>,
        number: u64,
        timestamp: u64,
    ) -> revm::MainnetEvm<revm::handler::MainnetContext<&mut CacheDB<EmptyDB>>> {
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
        let number = st.block + 1;
        let timestamp = Self::next_timestamp(&st);
        let mut db = st.db.clone();
        let nonce = db
            .basic_ref(from)
            .map_err(|e| evm_error("read an account", e))?
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
        let result = {
            let mut evm = Self::evm(&mut db, number, timestamp);
            evm.transact_commit(tx).map_err(|e| match e {
                revm::context::result::EVMError::Transaction(t) => Error::new(
                    ErrorKind::InsufficientFunds,
                    format!("transaction rejected: {t:?}"),
                )
                .with_context("from", from.to_string()),
                other => evm_error("execute a transaction", format!("{other:?}")),
            })?
        };
        let (gas_used, logs, output, contract_address) = match result {
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
        db.cache.logs.clear();
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
        let previous = std::mem::replace(&mut st.db, db);
        st.block = number;
        st.last_timestamp = timestamp;
        st.receipts.push(receipt.clone());
        if let Err(e) = self.persist(&st) {
            // Not durable: undo, so memory and disk agree.
            st.db = previous;
            st.block -= 1;
            st.receipts.pop();
            return Err(e);
        }
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
        std::fs::write(tmp.path().join("state.json"), b"{oops").unwrap();
        assert_eq!(
            EmbeddedEvm::open(tmp.path()).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
    }
}
