//! The credential fixture the JavaScript tests check (`tests/fixtures/credentials.json`).
//!
//! Like `artha-core/tests/vectors.rs`: the file is generated here from
//! fixed keys and committed; this test regenerates it and requires byte
//! equality, so the fixture cannot drift from `artha-core`'s signing
//! format. After a deliberate change:
//! `ARTHA_BLESS_VECTORS=1 cargo test -p artha-wasm --test fixtures`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use artha_core::{Amount, Credential, Did, SignedCredential};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/credentials.json"
);

fn sign(key: &SigningKey, credential: Credential) -> SignedCredential {
    let sig = key.sign(&credential.signing_bytes().unwrap());
    SignedCredential {
        credential,
        signature: hex::encode(sig.to_bytes()),
    }
}

fn generate() -> Value {
    let issuer = SigningKey::from_bytes(&[7u8; 32]);
    let subject = SigningKey::from_bytes(&[9u8; 32]);
    let impostor = SigningKey::from_bytes(&[11u8; 32]);
    let credential = Credential {
        issuer: Did::from_key(&issuer.verifying_key()),
        subject: Did::from_key(&subject.verifying_key()),
        budget_cap: "2.5 ARTH".parse().unwrap(),
        rate_limit_per_minute: 30,
        not_before: 1_700_000_000,
        expires_at: 1_900_000_000,
    };
    let valid = sign(&issuer, credential.clone());
    // Signed by another key while naming the issuer.
    let forged = sign(&impostor, credential.clone());
    // A valid signature over different claims.
    let mut altered = valid.clone();
    altered.credential.budget_cap = Amount::from_arth(1000).unwrap();

    let now = 1_800_000_000u64;
    valid.verify_at(now).unwrap();
    for bad in [&forged, &altered] {
        let e = bad.verify_at(now).unwrap_err();
        assert_eq!(e.context_value("field"), Some("credential.signature"));
    }
    let e = valid.verify_at(credential.expires_at).unwrap_err();
    assert_eq!(e.context_value("field"), Some("credential.expires_at"));
    let e = valid.verify_at(credential.not_before - 1).unwrap_err();
    assert_eq!(e.context_value("field"), Some("credential.not_before"));

    json!({
        "format": "artha-wasm-credentials/1",
        "now": now,
        "issuer_public_key": hex::encode(issuer.verifying_key().as_bytes()),
        "valid": valid,
        "forged": forged,
        "altered": altered,
    })
}

#[test]
fn committed_credential_fixture_matches() {
    let fresh = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("ARTHA_BLESS_VECTORS").is_some() {
        std::fs::write(PATH, &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(PATH)
        .expect("run with ARTHA_BLESS_VECTORS=1 to create the fixture");
    assert!(
        on_disk == fresh,
        "tests/fixtures/credentials.json differs from what artha-core signs; \
         if deliberate, regenerate with ARTHA_BLESS_VECTORS=1"
    );
}
