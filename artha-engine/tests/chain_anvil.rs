//! The public chain suite (`artha_engine::testing::chain`) on a real anvil
//! over JSON-RPC (started on loopback by tests/run.sh, which exports
//! `ARTHA_TEST_ANVIL_URL`).
#![cfg(feature = "evm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use artha_core::ErrorKind;
use artha_engine::chain::contracts::Accounts;
use artha_engine::chain::rpc::RpcChain;

/// anvil's first three development keys (from its well-known test mnemonic).
const KEYS: [&str; 3] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
];

fn anvil_url() -> Option<String> {
    match std::env::var("ARTHA_TEST_ANVIL_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ARTHA_TEST_ANVIL_URL is not set: under CI the anvil suite must run"
            );
            eprintln!("skipping: ARTHA_TEST_ANVIL_URL not set (run via tests/run.sh)");
            None
        }
    }
}

#[tokio::test]
async fn suite_runs_on_anvil() {
    let Some(url) = anvil_url() else { return };
    let chain = RpcChain::connect(&url, &KEYS).await.unwrap();
    let addrs: Vec<_> = KEYS
        .iter()
        .map(|k| {
            k.parse::<alloy::signers::local::PrivateKeySigner>()
                .unwrap()
                .address()
        })
        .collect();
    artha_engine::testing::chain::run_all(
        chain,
        Accounts {
            admin: addrs[0],
            operator: addrs[1],
            submitter: addrs[2],
        },
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_and_retryable() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = RpcChain::connect(&format!("http://127.0.0.1:{port}"), &KEYS)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    let e = RpcChain::connect("not a url", &KEYS).await.unwrap_err();
    assert_eq!(e.context_value("field"), Some("rpc_url"));
    let e = RpcChain::connect("http://127.0.0.1:1", &["zz"])
        .await
        .unwrap_err();
    assert_eq!(e.context_value("field"), Some("keys[0]"));
}
