//! Chains: where jobs, commitments and payments are recorded.
//!
//! - [`EvmBackend`]: what the engine needs from an EVM chain (deploy, send,
//!   call, balances, time). Two implementations:
//!   [`embedded::EmbeddedEvm`] (feature `embedded-chain`, default), an EVM
//!   inside the engine (revm) persisted under the engine home; and
//!   `rpc::RpcChain` (feature `evm`), any JSON-RPC endpoint with local
//!   signers, every request bounded by a connect and a request timeout,
//!   and the endpoint URL redacted in everything it prints (its credentials
//!   never show in errors).
//! - [`contracts::ArthaContracts`]: the six contracts on a backend, as one
//!   account sees and uses them ([`artha_core::ProofChain`] and
//!   [`artha_core::Registry`]); [`contracts::Attestor`], the admin's
//!   handle.
//! - [`parties::ChainParties`]: one client per party (submitter, scheduler,
//!   worker, verifier), routing each call to the party that makes it.
//! - [`setup`]: opening a chain for the engine (embedded or JSON-RPC), with
//!   one account per party and the admin's key kept out of them.
//! - [`outbox::Outbox`]: chain writes recorded before sending, retried after
//!   outages and restarts, never applied twice.

use alloy_primitives::{Address, B256, Bytes, U256};
use artha_core::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod contracts;
#[cfg(feature = "embedded-chain")]
pub mod embedded;
pub mod outbox;
pub mod parties;
#[cfg(feature = "evm")]
pub mod rpc;
pub mod setup;

/// The error for a reverted call, carrying the revert data (hex) in the
/// `revert_data` context so the contracts layer can name the custom error.
pub fn embedded_reverted(data: &[u8]) -> artha_core::Error {
    artha_core::Error::new(artha_core::ErrorKind::Reverted, "transaction reverted")
        .with_context("revert_data", format!("0x{}", hex::encode(data)))
}

/// One log entry of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Emitting contract.
    pub address: Address,
    /// Indexed topics.
    pub topics: Vec<B256>,
    /// Non-indexed data.
    pub data: Bytes,
}

/// The outcome of a mined transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvmReceipt {
    /// Transaction hash.
    pub tx_hash: B256,
    /// Block it was mined in.
    pub block_number: u64,
    /// That block's timestamp.
    pub timestamp: u64,
    /// Sender.
    pub from: Address,
    /// Callee (`None` for a deployment).
    pub to: Option<Address>,
    /// The deployed contract, for a deployment.
    pub contract_address: Option<Address>,
    /// Gas used (after refunds).
    pub gas_used: u64,
    /// Logs emitted.
    pub logs: Vec<LogEntry>,
    /// Return data of the call (empty where the backend cannot know it).
    pub output: Bytes,
}

/// A receipt, as the contracts layer uses it.
pub type TxReceipt = EvmReceipt;

/// What the engine needs from an EVM chain. Writes return once mined; a
/// revert is an error of kind `Reverted` with the revert data (hex) in the
/// `revert_data` context; an unreachable endpoint, or one that does not
/// answer in time, is `Unavailable` (retryable). Backends do not retry:
/// chain writes are retried by the outbox and the job driver, reads fail
/// fast.
#[async_trait]
pub trait EvmBackend: Send + Sync {
    /// Deploys `initcode` from `from`.
    async fn deploy(&self, from: Address, initcode: Bytes) -> Result<EvmReceipt>;
    /// Sends a call with value.
    async fn send(
        &self,
        from: Address,
        to: Address,
        data: Bytes,
        value: U256,
    ) -> Result<EvmReceipt>;
    /// A read-only call against the latest block.
    async fn call(&self, from: Address, to: Address, data: Bytes) -> Result<Bytes>;
    /// Balance of an account.
    async fn balance(&self, who: Address) -> Result<U256>;
    /// Timestamp of the latest block.
    async fn timestamp(&self) -> Result<u64>;
    /// The timestamp the next block is expected to get — what a contract's
    /// time checks will see. By default the later of the latest block's
    /// time plus one and the wall clock (right for a live chain and for
    /// anvil, whose `evm_increaseTime` here mines a block); a backend that
    /// knows better says so.
    async fn next_block_time(&self) -> Result<u64> {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(self.timestamp().await?.saturating_add(1).max(wall))
    }
    /// The receipt of a mined transaction, if the chain has it.
    async fn receipt(&self, tx: B256) -> Result<Option<EvmReceipt>>;
    /// Moves the chain clock forward (development chains only; others
    /// return `Unsupported`).
    async fn increase_time(&self, secs: u64) -> Result<()>;
}

#[cfg(feature = "embedded-chain")]
#[async_trait]
impl EvmBackend for embedded::EmbeddedEvm {
    async fn deploy(&self, from: Address, initcode: Bytes) -> Result<EvmReceipt> {
        embedded::EmbeddedEvm::deploy(self, from, initcode)
    }
    async fn send(
        &self,
        from: Address,
        to: Address,
        data: Bytes,
        value: U256,
    ) -> Result<EvmReceipt> {
        embedded::EmbeddedEvm::send(self, from, to, data, value)
    }
    async fn call(&self, from: Address, to: Address, data: Bytes) -> Result<Bytes> {
        embedded::EmbeddedEvm::call(self, from, to, data)
    }
    async fn balance(&self, who: Address) -> Result<U256> {
        embedded::EmbeddedEvm::balance(self, who)
    }
    async fn timestamp(&self) -> Result<u64> {
        Ok(self.last_timestamp())
    }
    async fn next_block_time(&self) -> Result<u64> {
        Ok(self.now())
    }
    async fn receipt(&self, tx: B256) -> Result<Option<EvmReceipt>> {
        embedded::EmbeddedEvm::try_receipt(self, &tx)
    }
    async fn increase_time(&self, secs: u64) -> Result<()> {
        // As anvil's `evm_increaseTime` then `evm_mine`: the clock moves
        // and an empty block carries it (so a later block hash, e.g. an
        // audit seed, exists without a transaction).
        self.advance_time(secs)?;
        self.mine_empty().map(|_| ())
    }
}

/// Forwards every [`EvmBackend`] call through a smart pointer or reference.
macro_rules! forward_backend {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<T: EvmBackend + ?Sized> EvmBackend for $ptr {
            async fn deploy(&self, from: Address, initcode: Bytes) -> Result<EvmReceipt> {
                (**self).deploy(from, initcode).await
            }
            async fn send(&self, from: Address, to: Address, data: Bytes, value: U256) -> Result<EvmReceipt> {
                (**self).send(from, to, data, value).await
            }
            async fn call(&self, from: Address, to: Address, data: Bytes) -> Result<Bytes> {
                (**self).call(from, to, data).await
            }
            async fn balance(&self, who: Address) -> Result<U256> {
                (**self).balance(who).await
            }
            async fn timestamp(&self) -> Result<u64> {
                (**self).timestamp().await
            }
            async fn next_block_time(&self) -> Result<u64> {
                (**self).next_block_time().await
            }
            async fn receipt(&self, tx: B256) -> Result<Option<EvmReceipt>> {
                (**self).receipt(tx).await
            }
            async fn increase_time(&self, secs: u64) -> Result<()> {
                (**self).increase_time(secs).await
            }
        }
    )*};
}
forward_backend!(std::sync::Arc<T>, &T);
