//! Identities and credentials (DESIGN §2, §3 `policy`): the pure part,
//! which anyone (a browser through `artha-wasm`, a binding, a verifier)
//! can check without the engine.
//!
//! - **Identities** are `did:key` DIDs over Ed25519 keys: `did:key:z` +
//!   base58btc(`0xed 0x01` ‖ 32-byte public key), the W3C CCG `did:key`
//!   method.
//! - **Credentials** ([`Credential`]) are issued by a DID to a subject DID:
//!   a budget cap per job, a submission rate limit per minute, and a
//!   validity window. The issuer signs [`Credential::signing_bytes`] =
//!   `"artha-credential-v1\0" ‖ JSON(credential)` (fields in declaration
//!   order) with Ed25519; [`SignedCredential::verify_signature`] checks it
//!   and [`SignedCredential::verify_at`] also the validity window.
//!
//! Private keys, key files and admission (trusted issuers, rate limits)
//! live in the engine.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{Amount, Error, ErrorKind, Result};

/// Multicodec prefix of an Ed25519 public key (`ed25519-pub`, varint 0xed).
pub const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];
/// Domain separation for credential signatures.
pub const CREDENTIAL_DOMAIN: &[u8] = b"artha-credential-v1\0";

/// A `did:key` identifier of an Ed25519 key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did {
    text: String,
    key: [u8; 32],
}

impl Did {
    /// The DID of a public key.
    pub fn from_key(key: &VerifyingKey) -> Self {
        let mut bytes = ED25519_MULTICODEC.to_vec();
        bytes.extend_from_slice(key.as_bytes());
        Did {
            text: format!("did:key:z{}", bs58::encode(bytes).into_string()),
            key: key.to_bytes(),
        }
    }

    /// The public key.
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_bytes(&self.key)
            .map_err(|e| Error::invalid("did", "not a valid Ed25519 point").with_source(e))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.text)
    }
}

impl FromStr for Did {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |msg: &str| {
            Error::invalid("did", msg.to_string())
                .with_context("input", s.chars().take(80).collect::<String>())
        };
        let rest = s
            .strip_prefix("did:key:z")
            .ok_or_else(|| bad("must start with `did:key:z` (base58btc)"))?;
        if rest.len() > 64 {
            return Err(bad("too long for an Ed25519 did:key"));
        }
        let bytes = bs58::decode(rest)
            .into_vec()
            .map_err(|_| bad("not base58btc"))?;
        if bytes.len() != 34 || bytes[..2] != ED25519_MULTICODEC {
            return Err(bad(
                "not an Ed25519 did:key (expected multicodec 0xed01 and 32 key bytes)",
            ));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[2..]);
        let did = Did {
            text: s.to_string(),
            key,
        };
        did.verifying_key()
            .map_err(|e| e.with_context("input", s.to_string()))?;
        Ok(did)
    }
}

impl Serialize for Did {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Did {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What an issuer allows a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// Who vouches.
    pub issuer: Did,
    /// Who may submit.
    pub subject: Did,
    /// Largest budget of one job.
    pub budget_cap: Amount,
    /// Most submissions per rolling minute.
    pub rate_limit_per_minute: u32,
    /// Valid from, seconds since the Unix epoch.
    pub not_before: u64,
    /// Valid until (exclusive), seconds since the Unix epoch.
    pub expires_at: u64,
}

impl Credential {
    /// The bytes the issuer signs: the domain tag, then the JSON of the
    /// credential.
    pub fn signing_bytes(&self) -> Result<Vec<u8>> {
        let mut out = CREDENTIAL_DOMAIN.to_vec();
        serde_json::to_writer(&mut out, self).map_err(|e| {
            Error::new(ErrorKind::Internal, "cannot encode a credential").with_source(e)
        })?;
        Ok(out)
    }
}

/// A credential with its issuer's Ed25519 signature (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCredential {
    /// The claims.
    pub credential: Credential,
    /// 64-byte signature, lower-case hex.
    pub signature: String,
}

impl SignedCredential {
    /// Checks the signature against the issuer's key.
    pub fn verify_signature(&self) -> Result<()> {
        let denied = |msg: &str| {
            Error::new(ErrorKind::PermissionDenied, msg.to_string())
                .with_context("field", "credential.signature")
                .with_context("issuer", self.credential.issuer.to_string())
        };
        let bytes = hex::decode(&self.signature).map_err(|_| denied("signature is not hex"))?;
        let sig: [u8; 64] = bytes
            .try_into()
            .map_err(|_| denied("signature must be 64 bytes"))?;
        let key = self.credential.issuer.verifying_key()?;
        key.verify(
            &self.credential.signing_bytes()?,
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| denied("signature does not match: the credential is forged or was altered"))
    }

    /// Checks the signature and that the credential is valid at `now`
    /// (seconds since the Unix epoch): `not_before ≤ now < expires_at`.
    pub fn verify_at(&self, now: u64) -> Result<()> {
        self.verify_signature()?;
        let c = &self.credential;
        if now < c.not_before {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("credential not valid before {}", c.not_before),
            )
            .with_context("field", "credential.not_before"));
        }
        if now >= c.expires_at {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("credential expired at {}", c.expires_at),
            )
            .with_context("field", "credential.expires_at"));
        }
        Ok(())
    }
}
