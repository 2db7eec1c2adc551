//! The chain suite on a real anvil over JSON-RPC (started on loopback by
//! tests/run.sh, which exports `ARTHA_TEST_ANVIL_URL`), and opening a chain
//! with one key per party ([`open_rpc`]).
#![cfg(feature = "evm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chain_suite;

use artha_core::{ErrorKind, Party, ProofChain, Registry};
use artha_engine::chain::rpc::{RpcChain, key_address};
use artha_engine::chain::setup::{PartyKeys, open_rpc};
use chain_suite::*;

/// anvil's development keys (from its well-known test mnemonic), in the
/// order it prints them.
const KEYS: [&str; 10] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
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

fn addr(key: &str) -> alloy_primitives::Address {
    key_address("key", key).unwrap()
}

/// Party keys from anvil's keys `first..first + 5` (admin first).
fn party_keys(first: usize, admin: bool) -> PartyKeys {
    let k = |i: usize| format!("0x{}", KEYS[first + i]);
    PartyKeys {
        admin: admin.then(|| k(0)),
        scheduler: k(1),
        worker: k(2),
        submitter: k(3),
        verifier: k(4),
    }
}

#[tokio::test]
async fn suite_runs_on_anvil() {
    let Some(url) = anvil_url() else { return };
    // Keys 0–4: anvil's chain is shared by the tests of this file, and each
    // test sends from its own accounts (nonces are per account).
    // Three jurors of their own (funded by the admin in the suite).
    let jurors: Vec<String> = (1..=3)
        .map(|i| {
            hex::encode(alloy_primitives::keccak256(
                format!("artha anvil juror {i}").as_bytes(),
            ))
        })
        .collect();
    let mut keys: Vec<&str> = KEYS[..5].to_vec();
    keys.extend(jurors.iter().map(String::as_str));
    let chain = RpcChain::connect(&url, &keys).await.unwrap();
    run(
        chain,
        Accounts {
            admin: addr(KEYS[0]),
            scheduler: addr(KEYS[1]),
            worker: addr(KEYS[2]),
            submitter: addr(KEYS[3]),
            verifier: addr(KEYS[4]),
            jurors: [addr(&jurors[0]), addr(&jurors[1]), addr(&jurors[2])],
        },
    )
    .await;
}

#[tokio::test]
async fn parties_open_with_their_own_keys_and_the_admin_key_only_deploys() {
    let Some(url) = anvil_url() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // Keys 5–9.
    let with_admin = party_keys(5, true);
    let without = party_keys(5, false);

    // Without the admin key and with nothing saved: nothing to use.
    let e = open_rpc(&url, &without, Default::default(), tmp.path())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.context_value("path").is_some(), "{e}");

    // The admin key deploys (and saves); the setup has an attestor.
    let s = open_rpc(&url, &with_admin, Default::default(), tmp.path())
        .await
        .unwrap();
    let attestor = s.attestor.as_ref().expect("admin key given");
    assert_eq!(attestor.address(), addr(KEYS[5]));
    for (party, key) in [
        (Party::Scheduler, KEYS[6]),
        (Party::Worker, KEYS[7]),
        (Party::Submitter, KEYS[8]),
        (Party::Verifier, KEYS[9]),
    ] {
        assert_eq!(s.parties.get(party).account(), addr(key).to_string());
        assert_eq!(s.contracts(party).address(), addr(key));
    }
    let saved: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(saved[0].starts_with("deployment-rpc-"), "{saved:?}");
    let text = std::fs::read_to_string(tmp.path().join(&saved[0])).unwrap();
    assert!(!text.contains("accounts"), "no accounts saved: {text}");

    // The worker registers; it is eligible once the attestor certifies it.
    let worker = s.contracts(Party::Worker);
    worker
        .register_node(
            &node(),
            1,
            1024,
            artha_core::Amount::from_wei(RATE),
            "anvil",
            &["mlp"],
            arth(1),
        )
        .await
        .unwrap();
    assert!(!s.parties.node(&node()).await.unwrap().eligible);
    attestor.certify(&node()).await.unwrap();
    assert!(s.parties.node(&node()).await.unwrap().eligible);

    // Reopened without the admin key: the same contracts, no attestor, and
    // no client that can send as the admin.
    let again = open_rpc(&url, &without, Default::default(), tmp.path())
        .await
        .unwrap();
    assert_eq!(again.deployment, s.deployment);
    assert!(again.attestor.is_none());
    let as_admin = again.contracts(Party::Worker).as_account(addr(KEYS[5]));
    let e = as_admin
        .assign(&artha_core::JobId::from_bytes([1; 16]), &node())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.message().contains("no signing key"), "{e}");
    // Revoking needs the attestor: the worker's own key cannot.
    let as_worker = artha_engine::chain::contracts::Attestor::attach(
        again.backend.clone(),
        again.deployment,
        addr(KEYS[7]),
        again.params,
    );
    let e = as_worker.revoke(&node()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    // A key that is not one names its role.
    let mut bad = without.clone();
    bad.verifier = "0x1234".into();
    let e = open_rpc(&url, &bad, Default::default(), tmp.path())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.context_value("field"), Some("keys.verifier"));
    assert!(!format!("{e:?}").contains("1234"), "{e:?}");
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
