//! [`RpcChain`]: an [`EvmBackend`] over any JSON-RPC endpoint (anvil, a
//! testnet, a production chain), signing locally with the given keys
//! (alloy provider + local signers).
//!
//! Transactions are sent with the sender's key, gas estimated by the node
//! (so a revert surfaces before anything is broadcast, with its revert data)
//! and awaited until mined. Transport failures (endpoint down, connection
//! refused, timeout) are `Unavailable` and retryable; the outbox keeps the
//! write and sends it again later.

use std::collections::BTreeMap;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{BlockNumberOrTag, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportErrorKind};
use alloy_primitives::{Address, B256, Bytes, U256};
use artha_core::{Error, ErrorKind, Result};
use async_trait::async_trait;

use super::{EvmBackend, EvmReceipt, LogEntry, embedded_reverted};

/// How long a sent transaction may take to be mined.
const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A JSON-RPC chain with local signers.
#[derive(Debug, Clone)]
pub struct RpcChain {
    provider: DynProvider,
    url: String,
    senders: BTreeMap<Address, ()>,
}

fn rpc_error(what: &str, e: RpcError<TransportErrorKind>) -> Error {
    if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data()) {
        return embedded_reverted(&data);
    }
    let kind = match &e {
        RpcError::Transport(_) => ErrorKind::Unavailable,
        RpcError::ErrorResp(p) if p.message.contains("revert") => ErrorKind::Reverted,
        RpcError::ErrorResp(_) => ErrorKind::InvalidInput,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("JSON-RPC: cannot {what}: {e}"))
}

impl RpcChain {
    /// Connects to `url` with `keys` (hex private keys) as the accounts it
    /// may send from; checks the endpoint answers.
    pub async fn connect(url: &str, keys: &[&str]) -> Result<Self> {
        let parsed: alloy::transports::http::reqwest::Url = url.parse().map_err(|e| {
            Error::invalid("rpc_url", format!("not a URL: {e}"))
                .with_context("url", url.to_string())
        })?;
        let mut wallet: Option<EthereumWallet> = None;
        let mut senders = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            let signer: PrivateKeySigner = k.trim_start_matches("0x").parse().map_err(|_| {
                Error::invalid(
                    format!("keys[{i}]"),
                    "not a secp256k1 private key (64 hex digits)",
                )
            })?;
            senders.insert(signer.address(), ());
            match wallet.as_mut() {
                Some(w) => w.register_signer(signer),
                None => wallet = Some(EthereumWallet::from(signer)),
            }
        }
        let wallet =
            wallet.ok_or_else(|| Error::invalid("keys", "at least one signing key is needed"))?;
        // Nonces are read from the node for every transaction (not cached):
        // a transaction refused at gas estimation (a revert) must not use up a
        // nonce, or every later one from that sender would wait behind a gap.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(wallet)
            .connect_http(parsed)
            .erased();
        provider
            .get_chain_id()
            .await
            .map_err(|e| rpc_error("reach the endpoint", e).with_context("url", url.to_string()))?;
        Ok(RpcChain {
            provider,
            url: url.to_string(),
            senders,
        })
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn mine(&self, tx: TransactionRequest) -> Result<EvmReceipt> {
        let from = tx.from.unwrap_or_default();
        if !self.senders.contains_key(&from) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "no signing key for this sender",
            )
            .with_context("from", from.to_string()));
        }
        let pending = self
            .provider
            .send_transaction(tx)
            .await
            .map_err(|e| rpc_error("send a transaction", e))?;
        let hash = *pending.tx_hash();
        // Poll for the receipt ourselves: bounded, and independent of block
        // subscriptions (an automining dev chain mines before a watcher starts).
        let deadline = std::time::Instant::now() + RECEIPT_TIMEOUT;
        let r: TransactionReceipt = loop {
            match self.provider.get_transaction_receipt(hash).await {
                Ok(Some(r)) => break r,
                Ok(None) | Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                _ => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "JSON-RPC: transaction sent but not mined in time",
                    )
                    .with_context("tx_hash", hash.to_string()));
                }
            }
        };
        if !r.status() {
            return Err(
                Error::new(ErrorKind::Reverted, "transaction reverted after inclusion")
                    .with_context("tx_hash", r.transaction_hash.to_string()),
            );
        }
        Ok(self.convert(&r).await)
    }

    async fn convert(&self, r: &TransactionReceipt) -> EvmReceipt {
        let block = r.block_number.unwrap_or_default();
        let timestamp = match self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(block))
            .await
        {
            Ok(Some(b)) => b.header.timestamp,
            _ => 0,
        };
        EvmReceipt {
            tx_hash: r.transaction_hash,
            block_number: block,
            timestamp,
            from: r.from,
            to: r.to,
            contract_address: r.contract_address,
            gas_used: r.gas_used,
            logs: r
                .inner
                .logs()
                .iter()
                .map(|l| LogEntry {
                    address: l.address(),
                    topics: l.topics().to_vec(),
                    data: l.data().data.clone(),
                })
                .collect(),
            output: Bytes::new(),
        }
    }
}

#[async_trait]
impl EvmBackend for RpcChain {
    async fn deploy(&self, from: Address, initcode: Bytes) -> Result<EvmReceipt> {
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_deploy_code(initcode);
        self.mine(tx).await
    }

    async fn send(
        &self,
        from: Address,
        to: Address,
        data: Bytes,
        value: U256,
    ) -> Result<EvmReceipt> {
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_input(data)
            .with_value(value);
        self.mine(tx).await
    }

    async fn call(&self, from: Address, to: Address, data: Bytes) -> Result<Bytes> {
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_input(data);
        self.provider
            .call(tx)
            .await
            .map_err(|e| rpc_error("call", e))
    }

    async fn balance(&self, who: Address) -> Result<U256> {
        self.provider
            .get_balance(who)
            .await
            .map_err(|e| rpc_error("read a balance", e))
    }

    async fn timestamp(&self) -> Result<u64> {
        let b = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| rpc_error("read the latest block", e))?
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "JSON-RPC: no latest block"))?;
        Ok(b.header.timestamp)
    }

    async fn receipt(&self, tx: B256) -> Result<Option<EvmReceipt>> {
        match self
            .provider
            .get_transaction_receipt(tx)
            .await
            .map_err(|e| rpc_error("read a receipt", e))?
        {
            Some(r) => Ok(Some(self.convert(&r).await)),
            None => Ok(None),
        }
    }

    async fn increase_time(&self, secs: u64) -> Result<()> {
        let _: serde_json::Value = self
            .provider
            .raw_request("evm_increaseTime".into(), (secs,))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unsupported,
                    format!("the chain cannot move its clock: {e}"),
                )
            })?;
        let _: serde_json::Value = self
            .provider
            .raw_request("evm_mine".into(), ())
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unsupported,
                    format!("the chain cannot mine on demand: {e}"),
                )
            })?;
        Ok(())
    }
}
