//! Admission policy: who may submit, with how much, how often (DESIGN §3
//! `policy`).
//!
//! - **Identities** are `did:key` DIDs over Ed25519 keys: `did:key:z` +
//!   base58btc(`0xed 0x01` ‖ 32-byte public key), the W3C CCG `did:key`
//!   method. [`Identity`] holds a private key; its file is 0600 in the
//!   engine home.
//! - **Credentials** ([`Credential`]) are issued by a trusted DID to a
//!   subject DID: a budget cap per job, a submission rate limit per minute,
//!   and a validity window. The issuer signs
//!   `"artha-credential-v1\0" ‖ JSON(credential)` (fields in declaration
//!   order, as serialized by this module) with Ed25519.
//! - [`Policy::admit`] checks, in order: issuer trusted, signature valid,
//!   validity window, subject = submitter, budget ≤ cap, budget ≥ estimate,
//!   rate limit. Each failure is an error naming what failed; a refused
//!   submission does not count against the rate limit.
//! - The embedded default ([`Policy::local`]) creates a local identity on
//!   first use, trusts it as an issuer and issues it a credential, so a
//!   single-user engine works with no set-up, as Docker does for its socket
//!   owner.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use artha_core::{Amount, Error, ErrorKind, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::fsutil::{fsync_dir, io_err, rename_noreplace, unique_suffix};

/// Multicodec prefix of an Ed25519 public key (`ed25519-pub`, varint 0xed).
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];
/// Domain separation for credential signatures.
const CREDENTIAL_DOMAIN: &[u8] = b"artha-credential-v1\0";

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

/// A private key and its DID.
pub struct Identity {
    key: SigningKey,
    did: Did,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        write!(f, "Identity({})", self.did)
    }
}

/// Writes a secret file at `path`, created with mode 0600 from the start (a
/// temporary file beside it, opened with that mode, never readable by
/// others even for a moment), fsynced, and moved into place without
/// replacing an existing file. Returns `false` (and writes nothing) when
/// `path` already exists.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<bool> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", unique_suffix()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err("write the identity key", path, e));
    }
    match rename_noreplace(&tmp, path) {
        Ok(()) => {}
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                return Ok(false);
            }
            return Err(io_err("write the identity key", path, e));
        }
    }
    fsync_dir(dir).map_err(|e| io_err("write the identity key", path, e))?;
    Ok(true)
}

impl Identity {
    /// A fresh identity from the OS random source.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("no OS randomness: {e}")))?;
        Ok(Self::from_seed(seed))
    }

    /// The identity of a 32-byte Ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let did = Did::from_key(&key.verifying_key());
        Identity { key, did }
    }

    /// Loads the identity at `path` (hex seed), or creates one there with
    /// mode 0600.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let seed = artha_core::hash::parse_hex32("identity key", text.trim())
                    .map_err(|e| e.with_context("path", path.display().to_string()))?;
                Ok(Self::from_seed(seed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Self::generate()?;
                if write_secret(path, hex::encode(id.key.to_bytes()).as_bytes())? {
                    Ok(id)
                } else {
                    // Another process created it meanwhile: use that one.
                    Self::load_or_create(path)
                }
            }
            Err(e) => Err(io_err("read the identity key", path, e)),
        }
    }

    /// The DID.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// Issues `credential` (its `issuer` must be this identity).
    pub fn issue(&self, credential: Credential) -> Result<SignedCredential> {
        if credential.issuer != self.did {
            return Err(Error::invalid(
                "issuer",
                "a credential must be signed by its issuer",
            ));
        }
        let signature = hex::encode(self.sign(&credential.signing_bytes()?));
        Ok(SignedCredential {
            credential,
            signature,
        })
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
    fn signing_bytes(&self) -> Result<Vec<u8>> {
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
}

/// Admission control for job submissions.
#[derive(Debug)]
pub struct Policy {
    trusted: BTreeSet<Did>,
    recent: Mutex<HashMap<Did, VecDeque<u64>>>,
}

impl Policy {
    /// A policy trusting `issuers`.
    pub fn new(issuers: impl IntoIterator<Item = Did>) -> Self {
        Policy {
            trusted: issuers.into_iter().collect(),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Trusts `issuer` as well.
    pub fn trust(&mut self, issuer: Did) {
        self.trusted.insert(issuer);
    }

    /// The embedded default: loads or creates the local identity at
    /// `key_path`, trusts it, and returns it with a credential it issued
    /// itself (cap `budget_cap`, 600 submissions a minute, valid ten years
    /// from `now`).
    pub fn local(
        key_path: &Path,
        budget_cap: Amount,
        now: u64,
    ) -> Result<(Self, Identity, SignedCredential)> {
        let id = Identity::load_or_create(key_path)?;
        let cred = id.issue(Credential {
            issuer: id.did().clone(),
            subject: id.did().clone(),
            budget_cap,
            rate_limit_per_minute: 600,
            not_before: now.saturating_sub(60),
            expires_at: now.saturating_add(10 * 365 * 86_400),
        })?;
        Ok((Policy::new([id.did().clone()]), id, cred))
    }

    /// Admits (or refuses) a submission by `submitter` with `budget` for a
    /// job estimated at `estimate`, at time `now` (seconds since the epoch).
    /// An admitted submission counts against the rate limit.
    pub fn admit(
        &self,
        submitter: &Did,
        cred: &SignedCredential,
        budget: Amount,
        estimate: Amount,
        now: u64,
    ) -> Result<()> {
        let c = &cred.credential;
        let denied = |field: &str, msg: String| {
            Error::new(ErrorKind::PermissionDenied, msg)
                .with_context("field", field.to_string())
                .with_context("submitter", submitter.to_string())
        };
        if !self.trusted.contains(&c.issuer) {
            return Err(denied(
                "credential.issuer",
                format!("issuer {} is not trusted by this engine", c.issuer),
            ));
        }
        cred.verify_signature()?;
        if now < c.not_before {
            return Err(denied(
                "credential.not_before",
                format!("credential is not valid before {}", c.not_before),
            ));
        }
        if now >= c.expires_at {
            return Err(denied(
                "credential.expires_at",
                format!("credential expired at {}", c.expires_at),
            ));
        }
        if &c.subject != submitter {
            return Err(denied(
                "credential.subject",
                format!("credential was issued to {}, not the submitter", c.subject),
            ));
        }
        if budget > c.budget_cap {
            return Err(denied(
                "budget",
                format!("{budget} is over the credential's cap of {}", c.budget_cap),
            ));
        }
        if budget < estimate {
            return Err(Error::new(
                ErrorKind::InsufficientFunds,
                format!("budget {budget} is below the cost estimate {estimate}"),
            )
            .with_context("field", "budget"));
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let window = recent.entry(submitter.clone()).or_default();
        while window.front().is_some_and(|t| *t + 60 <= now) {
            window.pop_front();
        }
        if window.len() >= c.rate_limit_per_minute as usize {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "rate limit of {} submissions a minute reached",
                    c.rate_limit_per_minute
                ),
            )
            .with_context("submitter", submitter.to_string())
            .with_retryable(true));
        }
        window.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn arth(n: u128) -> Amount {
        Amount::from_arth(n).unwrap()
    }

    fn setup() -> (Identity, Identity, Policy) {
        let issuer = Identity::from_seed([1; 32]);
        let user = Identity::from_seed([2; 32]);
        let policy = Policy::new([issuer.did().clone()]);
        (issuer, user, policy)
    }

    fn cred(issuer: &Identity, subject: &Did) -> Credential {
        Credential {
            issuer: issuer.did().clone(),
            subject: subject.clone(),
            budget_cap: arth(100),
            rate_limit_per_minute: 2,
            not_before: NOW - 10,
            expires_at: NOW + 3600,
        }
    }

    #[test]
    fn did_key_round_trips_and_matches_the_spec_prefix() {
        let id = Identity::from_seed([7; 32]);
        let text = id.did().to_string();
        assert!(
            text.starts_with("did:key:z6Mk"),
            "Ed25519 did:keys start with z6Mk: {text}"
        );
        assert_eq!(text.parse::<Did>().unwrap(), *id.did());
        for bad in [
            "",
            "did:web:example.com",
            "did:key:z",
            "did:key:zIII",
            "did:key:z6Mk0OIl",
            &text[..text.len() - 2],
        ] {
            let e = bad.parse::<Did>().unwrap_err();
            assert_eq!(e.context_value("field"), Some("did"), "{bad}");
        }
    }

    #[test]
    fn admits_a_valid_credential_and_enforces_every_rule() {
        let (issuer, user, policy) = setup();
        let good = issuer.issue(cred(&issuer, user.did())).unwrap();
        policy
            .admit(user.did(), &good, arth(10), arth(5), NOW)
            .unwrap();

        let stranger = Identity::from_seed([3; 32]);
        let untrusted = stranger.issue(cred(&stranger, user.did())).unwrap();
        let e = policy
            .admit(user.did(), &untrusted, arth(10), arth(5), NOW)
            .unwrap_err();
        assert_eq!(e.context_value("field"), Some("credential.issuer"));

        let mut forged = good.clone();
        forged.credential.budget_cap = arth(1_000_000);
        let e = policy
            .admit(user.did(), &forged, arth(10), arth(5), NOW)
            .unwrap_err();
        assert!(e.to_string().contains("forged"), "{e}");
        let mut garbage = good.clone();
        garbage.signature = "zz".into();
        assert_eq!(
            policy
                .admit(user.did(), &garbage, arth(10), arth(5), NOW)
                .unwrap_err()
                .kind(),
            ErrorKind::PermissionDenied
        );

        let e = policy
            .admit(user.did(), &good, arth(10), arth(5), NOW + 3600)
            .unwrap_err();
        assert_eq!(e.context_value("field"), Some("credential.expires_at"));
        let e = policy
            .admit(user.did(), &good, arth(10), arth(5), NOW - 11)
            .unwrap_err();
        assert_eq!(e.context_value("field"), Some("credential.not_before"));
        let e = policy
            .admit(stranger.did(), &good, arth(10), arth(5), NOW)
            .unwrap_err();
        assert_eq!(e.context_value("field"), Some("credential.subject"));
        let e = policy
            .admit(user.did(), &good, arth(101), arth(5), NOW)
            .unwrap_err();
        assert_eq!(e.context_value("field"), Some("budget"));
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let e = policy
            .admit(user.did(), &good, arth(4), arth(5), NOW)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InsufficientFunds);
    }

    #[test]
    fn rate_limit_rolls_and_refusals_do_not_count() {
        let (issuer, user, policy) = setup();
        let good = issuer.issue(cred(&issuer, user.did())).unwrap();
        // A refused submission changes nothing.
        assert!(
            policy
                .admit(user.did(), &good, arth(1), arth(5), NOW)
                .is_err()
        );
        policy
            .admit(user.did(), &good, arth(10), arth(5), NOW)
            .unwrap();
        policy
            .admit(user.did(), &good, arth(10), arth(5), NOW + 1)
            .unwrap();
        let e = policy
            .admit(user.did(), &good, arth(10), arth(5), NOW + 2)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ResourceExhausted);
        assert!(e.is_retryable());
        policy
            .admit(user.did(), &good, arth(10), arth(5), NOW + 60)
            .unwrap();
    }

    #[test]
    fn issue_refuses_a_foreign_issuer_field() {
        let (issuer, user, _) = setup();
        assert!(user.issue(cred(&issuer, user.did())).is_err());
    }

    #[test]
    fn secret_files_are_0600_and_never_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("k");
        assert!(write_secret(&p, b"one").unwrap());
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!write_secret(&p, b"two").unwrap(), "an existing key stays");
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn local_default_persists_its_key_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("identity.key");
        let (policy, id, cred) = Policy::local(&p, arth(1000), NOW).unwrap();
        policy
            .admit(id.did(), &cred, arth(1), arth(1), NOW)
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (_, again, _) = Policy::local(&p, arth(1000), NOW).unwrap();
        assert_eq!(again.did(), id.did(), "same identity after restart");
        assert!(
            !format!("{id:?}").contains(&std::fs::read_to_string(&p).unwrap()),
            "key never printed"
        );
        std::fs::write(&p, "not hex").unwrap();
        assert!(Identity::load_or_create(&p).is_err());
    }
}
