//! [`RpcChain`]: an [`EvmBackend`] over any JSON-RPC endpoint (anvil, a
//! testnet, a production chain), signing locally with the given keys
//! (alloy provider + local signers).
//!
//! Transactions are sent with the sender's key, gas estimated by the node
//! (so a revert surfaces before anything is broadcast, with its revert data)
//! and awaited until mined (at most 60 s).
//!
//! # Timeouts
//!
//! Every request (reads, writes, receipt polls, the check in
//! [`RpcChain::connect`]) is bounded: [`DEFAULT_CONNECT_TIMEOUT`] (5 s) to
//! open the TCP (and TLS) connection and [`DEFAULT_REQUEST_TIMEOUT`] (30 s)
//! for the whole request, answer included. An endpoint that accepts
//! connections but never answers fails the call after the request timeout
//! instead of hanging it. [`RpcChain::connect_with`] takes other values
//! ([`RpcTimeouts`]).
//!
//! # Errors and retries
//!
//! Transport failures (endpoint down, connection refused, either timeout,
//! an HTTP error status) are `Unavailable` and retryable; the message names
//! the operation (`JSON-RPC: cannot read a balance: …`) and the `endpoint`
//! context the redacted endpoint. A node's refusal is `InvalidInput`, a
//! revert `Reverted` (with its revert data). This module never retries by
//! itself: reads fail fast and the caller decides. Chain writes go through
//! the outbox ([`super::outbox::Outbox`]), which keeps a write that failed
//! retryably and sends it again later; the job driver's `chain_write`
//! retries retryable errors with exponential backoff (200 ms doubling to
//! 10 s), and a job whose driver fails retryably is driven again, with
//! backoff, a bounded number of times.
//!
//! # Credentials in the URL
//!
//! Endpoint URLs often carry secrets: `https://user:pass@host/`,
//! `https://host/v3/<api key>`, `?apikey=…`. Nothing this module produces
//! (errors, their context, `Debug`) contains the URL as given; it shows
//! [`redact_url`]'s form instead: `scheme://host[:port]`, with `/***` added
//! when the URL has a path, query or fragment (user info is dropped).
//! [`RpcChain::url`] still returns the whole URL for callers that need it;
//! print [`RpcChain::redacted_url`].

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{BlockNumberOrTag, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest;
use alloy::transports::{RpcError, TransportErrorKind};
use alloy_primitives::{Address, B256, Bytes, U256};
use artha_core::{Error, ErrorKind, Result};
use async_trait::async_trait;

use super::{EvmBackend, EvmReceipt, LogEntry, embedded_reverted};

/// How long a sent transaction may take to be mined.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default longest wait to open a connection to the endpoint.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default longest wait for one whole JSON-RPC request (connecting,
/// sending, and reading the whole answer).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The timeouts of every JSON-RPC request (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcTimeouts {
    /// Longest wait to open a TCP (and TLS) connection.
    pub connect: Duration,
    /// Longest wait for one whole request, answer included.
    pub request: Duration,
}

impl Default for RpcTimeouts {
    fn default() -> Self {
        RpcTimeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            request: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// The form of an endpoint URL that is safe to print: `scheme://host[:port]`,
/// plus `/***` when the URL has a path, query or fragment (which may hold an
/// API key); user info (`user:password@`) is dropped. A string that does not
/// parse as a URL is shown the same way as far as it can be read
/// (`scheme://host[:port]`, a port only if it is a number), else as `***`.
///
/// ```
/// use artha_engine::chain::rpc::redact_url;
/// assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
/// assert_eq!(redact_url("https://u:p@rpc.example/v3/KEY?x=1"), "https://rpc.example/***");
/// ```
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) if u.host_str().is_some() => {
            let mut out = format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default());
            if let Some(port) = u.port() {
                out.push_str(&format!(":{port}"));
            }
            if !matches!(u.path(), "" | "/") || u.query().is_some() || u.fragment().is_some() {
                out.push_str("/***");
            }
            out
        }
        _ => redact_unparsed(url),
    }
}

/// [`redact_url`] of a string that is not a URL with a host.
fn redact_unparsed(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_string();
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // A port that is not a number may be a password typed without its `@`.
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !host.ends_with(']') && !port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if !scheme_ok || !host_ok {
        return "***".to_string();
    }
    let mut out = format!("{scheme}://{host}");
    if !matches!(&rest[authority_end..], "" | "/") {
        out.push_str("/***");
    }
    out
}

/// An endpoint and what must never be shown of it.
#[derive(Clone)]
struct Endpoint {
    /// As given.
    url: String,
    /// [`redact_url`] of it.
    redacted: String,
    /// Text to replace in messages, longest first: the whole URL (as given
    /// and as parsed) by the redacted form, secret parts by `***`.
    scrub: Vec<(String, String)>,
}

impl Endpoint {
    fn new(url: &str) -> Self {
        let redacted = redact_url(url);
        let mut scrub = vec![(url.to_string(), redacted.clone())];
        if let Ok(u) = reqwest::Url::parse(url) {
            scrub.push((u.as_str().to_string(), redacted.clone()));
            scrub.push((
                u.as_str().trim_end_matches('/').to_string(),
                redacted.clone(),
            ));
            // Parts that may be secrets, should one be printed on its own.
            // Very short ones are left out: replacing them would garble
            // messages and hide next to nothing.
            let mut parts = vec![u.username().to_string()];
            parts.extend(u.password().map(str::to_string));
            parts.extend(u.query().map(str::to_string));
            parts.extend(u.fragment().map(str::to_string));
            if !matches!(u.path(), "" | "/") {
                parts.push(u.path().to_string());
                parts.extend(
                    u.path()
                        .split('/')
                        .filter(|s| s.len() >= 8)
                        .map(str::to_string),
                );
            }
            for p in parts {
                if p.len() >= 4 {
                    scrub.push((p, "***".to_string()));
                }
            }
        }
        scrub.retain(|(from, _)| !from.is_empty());
        scrub.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        Endpoint {
            url: url.to_string(),
            redacted,
            scrub,
        }
    }

    /// `text` with the URL and its secret parts replaced.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (from, to) in &self.scrub {
            if out.contains(from.as_str()) {
                out = out.replace(from.as_str(), to);
            }
        }
        out
    }

    /// An error of this endpoint: the message scrubbed, the endpoint
    /// (redacted) in the `endpoint` context.
    fn error(&self, kind: ErrorKind, message: &str) -> Error {
        Error::new(kind, self.scrub(message)).with_context("endpoint", self.redacted.clone())
    }
}

/// What went wrong in an HTTP request, without the URL (reqwest's own
/// message includes it, credentials and all).
fn describe_http(e: &reqwest::Error, timeouts: &RpcTimeouts) -> String {
    use std::error::Error as _;
    let mut out = if e.is_timeout() && e.is_connect() {
        format!(
            "no connection within {:?} (connect timeout)",
            timeouts.connect
        )
    } else if e.is_timeout() {
        format!("no answer within {:?} (request timeout)", timeouts.request)
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_builder() {
        "cannot build the request (is the URL http:// or https://?)".to_string()
    } else if e.is_decode() || e.is_body() {
        "cannot read the answer".to_string()
    } else {
        "the HTTP request failed".to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

/// A JSON-RPC chain with local signers.
#[derive(Clone)]
pub struct RpcChain {
    provider: DynProvider,
    endpoint: Endpoint,
    timeouts: RpcTimeouts,
    senders: BTreeMap<Address, ()>,
}

impl std::fmt::Debug for RpcChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL as given: it may carry credentials.
        f.debug_struct("RpcChain")
            .field("url", &self.endpoint.redacted)
            .field("timeouts", &self.timeouts)
            .field("senders", &self.senders.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The error of a failed JSON-RPC call: `what` names the operation.
fn rpc_error(
    endpoint: &Endpoint,
    timeouts: &RpcTimeouts,
    what: &str,
    e: RpcError<TransportErrorKind>,
) -> Error {
    if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data()) {
        return embedded_reverted(&data);
    }
    let http = match &e {
        RpcError::Transport(TransportErrorKind::Custom(b)) => b.downcast_ref::<reqwest::Error>(),
        _ => None,
    };
    let kind = match &e {
        _ if http.is_some_and(reqwest::Error::is_builder) => ErrorKind::InvalidInput,
        RpcError::Transport(_) => ErrorKind::Unavailable,
        RpcError::ErrorResp(p) if p.message.contains("revert") => ErrorKind::Reverted,
        RpcError::ErrorResp(_) => ErrorKind::InvalidInput,
        _ => ErrorKind::Unavailable,
    };
    let detail = match http {
        Some(h) => describe_http(h, timeouts),
        None => e.to_string(),
    };
    endpoint.error(kind, &format!("JSON-RPC: cannot {what}: {detail}"))
}

/// The account of a hex private key (`0x` optional); `InvalidInput` naming
/// `field` when it is not one (the key itself is never shown).
pub fn key_address(field: &str, key: &str) -> Result<Address> {
    signer(field, key).map(|s| s.address())
}

fn signer(field: &str, key: &str) -> Result<PrivateKeySigner> {
    key.trim()
        .trim_start_matches("0x")
        .parse()
        .map_err(|_| Error::invalid(field, "not a secp256k1 private key (64 hex digits)"))
}

impl RpcChain {
    /// Connects to `url` with `keys` (hex private keys) — the accounts it
    /// can sign for, one per party that uses it; a transaction from any
    /// other account is refused (`PermissionDenied`) before it is sent —
    /// with the default [`RpcTimeouts`]; checks the endpoint answers.
    pub async fn connect(url: &str, keys: &[&str]) -> Result<Self> {
        Self::connect_with(url, keys, RpcTimeouts::default()).await
    }

    /// [`connect`](Self::connect) with the given timeouts for every request.
    pub async fn connect_with(url: &str, keys: &[&str], timeouts: RpcTimeouts) -> Result<Self> {
        let endpoint = Endpoint::new(url);
        let parsed: reqwest::Url = url.parse().map_err(|e| {
            Error::invalid("rpc_url", format!("not a URL: {e}"))
                .with_context("endpoint", endpoint.redacted.clone())
        })?;
        let mut wallet: Option<EthereumWallet> = None;
        let mut senders = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            let signer = signer(&format!("keys[{i}]"), k)?;
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
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("cannot build the HTTP client: {}", e.without_url()),
                )
            })?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(wallet)
            .connect_reqwest(http, parsed)
            .erased();
        provider
            .get_chain_id()
            .await
            .map_err(|e| rpc_error(&endpoint, &timeouts, "reach the endpoint", e))?;
        Ok(RpcChain {
            provider,
            endpoint,
            timeouts,
            senders,
        })
    }

    /// The endpoint as given, credentials included: do not print it (print
    /// [`redacted_url`](Self::redacted_url)).
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// The endpoint in a form safe to print ([`redact_url`]).
    pub fn redacted_url(&self) -> &str {
        &self.endpoint.redacted
    }

    /// The timeouts of every request.
    pub fn timeouts(&self) -> RpcTimeouts {
        self.timeouts
    }

    /// The accounts it can sign for (one per distinct key), in address order.
    pub fn accounts(&self) -> Vec<Address> {
        self.senders.keys().copied().collect()
    }

    /// [`rpc_error`] for this chain.
    fn err(&self, what: &str, e: RpcError<TransportErrorKind>) -> Error {
        rpc_error(&self.endpoint, &self.timeouts, what, e)
    }

    async fn mine(&self, tx: TransactionRequest) -> Result<EvmReceipt> {
        let from = tx.from.unwrap_or_default();
        if !self.senders.contains_key(&from) {
            return Err(self
                .endpoint
                .error(
                    ErrorKind::PermissionDenied,
                    "no signing key for this sender",
                )
                .with_context("from", from.to_string()));
        }
        let pending = self
            .provider
            .send_transaction(tx)
            .await
            .map_err(|e| self.err("send a transaction", e))?;
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
                    return Err(self
                        .endpoint
                        .error(
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
            .map_err(|e| self.err("call", e))
    }

    async fn balance(&self, who: Address) -> Result<U256> {
        self.provider
            .get_balance(who)
            .await
            .map_err(|e| self.err("read a balance", e))
    }

    async fn timestamp(&self) -> Result<u64> {
        let b = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| self.err("read the latest block", e))?
            .ok_or_else(|| {
                self.endpoint
                    .error(ErrorKind::Unavailable, "JSON-RPC: no latest block")
            })?;
        Ok(b.header.timestamp)
    }

    async fn receipt(&self, tx: B256) -> Result<Option<EvmReceipt>> {
        match self
            .provider
            .get_transaction_receipt(tx)
            .await
            .map_err(|e| self.err("read a receipt", e))?
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
                self.endpoint.error(
                    ErrorKind::Unsupported,
                    &format!("the chain cannot move its clock: {e}"),
                )
            })?;
        let _: serde_json::Value = self
            .provider
            .raw_request("evm_mine".into(), ())
            .await
            .map_err(|e| {
                self.endpoint.error(
                    ErrorKind::Unsupported,
                    &format!("the chain cannot mine on demand: {e}"),
                )
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// anvil's first dev key.
    const KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    /// Secrets of the URLs below, none of which may be shown.
    const SECRETS: &[&str] = &["s3cretpass", "apikey0123456789", "qtoken987", "frag0secret"];

    fn with_secrets(port: u16) -> String {
        format!(
            "http://alice:s3cretpass@127.0.0.1:{port}/v3/apikey0123456789?token=qtoken987#frag0secret"
        )
    }

    /// Everything an error shows: message, context, Display, Debug.
    fn assert_no_secret(e: &Error) {
        let all = format!("{e} {e:?} {:?}", e.context());
        for s in SECRETS.iter().chain(&["alice"]) {
            assert!(!all.contains(s), "{s} shown in {all}");
        }
    }

    fn short() -> RpcTimeouts {
        RpcTimeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(1),
        }
    }

    /// A port nothing listens on.
    async fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    }

    /// A JSON-RPC endpoint that answers `eth_chainId` and nothing else: any
    /// other request gets no answer, its connection held open.
    async fn half_dead_endpoint() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve(s));
            }
        });
        port
    }

    async fn serve(mut s: TcpStream) {
        let mut buf = Vec::new();
        loop {
            // One request: headers, then Content-Length bytes of body.
            let (head_end, len) = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (i + 4, len);
                }
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            while buf.len() < head_end + len {
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let req: serde_json::Value =
                serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or_default();
            buf.drain(..head_end + len);
            if req["method"] != "eth_chainId" {
                // Hold the connection, never answer.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            let body = serde_json::json!({"jsonrpc": "2.0", "id": req["id"], "result": "0x7a69"})
                .to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// Fails the test instead of hanging it.
    async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(20), f)
            .await
            .expect("hung: the RPC timeouts did not fire")
    }

    #[test]
    fn redaction_keeps_scheme_host_and_port_only() {
        for (url, shown) in [
            ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
            ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
            ("https://rpc.example", "https://rpc.example"),
            ("https://rpc.example:443/", "https://rpc.example"),
            ("http://user:secret@127.0.0.1:1/", "http://127.0.0.1:1"),
            (
                "https://mainnet.infura.io/v3/abcdef",
                "https://mainnet.infura.io/***",
            ),
            ("https://rpc.example/?apikey=k", "https://rpc.example/***"),
            ("http://[::1]:8545", "http://[::1]:8545"),
            // Not URLs: as much as can be read safely.
            ("http://u:secret@127.0.0.1:nope/key", "http://127.0.0.1/***"),
            (
                "http://u:secret@127.0.0.1:99999/key",
                "http://127.0.0.1:99999/***",
            ),
            ("http://user:secret", "http://user"),
            ("http://[::1]:bad", "http://[::1]"),
            ("http://u:pa ss@ho st/", "***"),
            ("not a url", "***"),
            ("", "***"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn scrubbing_removes_the_url_and_its_parts() {
        let url = with_secrets(8545);
        let ep = Endpoint::new(&url);
        let parsed = reqwest::Url::parse(&url).unwrap();
        let text = format!(
            "error sending request for url ({parsed}) / {url} / s3cretpass / token=qtoken987 / apikey0123456789"
        );
        let out = ep.scrub(&text);
        for s in SECRETS {
            assert!(!out.contains(s), "{s} in {out}");
        }
        assert!(out.contains("http://127.0.0.1:8545/***"), "{out}");
    }

    #[tokio::test]
    async fn credentials_in_the_url_are_never_shown() {
        // Connection refused.
        let url = with_secrets(closed_port().await);
        let e = bounded(RpcChain::connect_with(&url, &[KEY], short()))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable());
        assert!(e.message().contains("reach the endpoint"), "{e}");
        assert_no_secret(&e);
        assert!(
            e.context_value("endpoint")
                .is_some_and(|v| v.ends_with("/***")),
            "{e}"
        );
        // Not a URL.
        let e = bounded(RpcChain::connect_with(
            "http://alice:s3cretpass@127.0.0.1:99999999/apikey0123456789",
            &[KEY],
            short(),
        ))
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_no_secret(&e);
    }

    #[tokio::test]
    async fn an_endpoint_that_never_answers_fails_connect_in_time() {
        // Accepts connections, reads nothing, answers nothing.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = with_secrets(l.local_addr().unwrap().port());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let started = std::time::Instant::now();
        let e = bounded(RpcChain::connect_with(&url, &[KEY], short()))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable(), "{e}");
        assert!(e.message().contains("cannot reach the endpoint"), "{e}");
        assert!(e.message().contains("request timeout"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(15));
        assert_no_secret(&e);
    }

    #[tokio::test]
    async fn every_call_is_bounded_and_names_its_operation() {
        let url = with_secrets(half_dead_endpoint().await);
        let chain = bounded(RpcChain::connect_with(&url, &[KEY], short()))
            .await
            .unwrap();
        assert_eq!(chain.url(), url);
        assert_eq!(chain.redacted_url(), redact_url(&url));
        assert_eq!(chain.timeouts(), short());
        let debug = format!("{chain:?}");
        for s in SECRETS {
            assert!(!debug.contains(s), "{s} in {debug}");
        }
        let e = bounded(chain.balance(Address::ZERO)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable(), "{e}");
        assert!(e.message().contains("cannot read a balance"), "{e}");
        assert!(e.message().contains("request timeout"), "{e}");
        assert_no_secret(&e);
        let e = bounded(chain.timestamp()).await.unwrap_err();
        assert!(e.message().contains("cannot read the latest block"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    }

    #[test]
    fn default_timeouts() {
        assert_eq!(
            RpcTimeouts::default(),
            RpcTimeouts {
                connect: Duration::from_secs(5),
                request: Duration::from_secs(30),
            }
        );
    }
}
