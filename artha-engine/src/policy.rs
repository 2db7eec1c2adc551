//! Admission policy: who may submit, with how much, how often (DESIGN §3
//! `policy`).
//!
//! - **Identities** are `did:key` DIDs ([`Did`]); [`Identity`] holds a
//!   private key; its file is 0600 in the engine home.
//! - **Credentials** ([`Credential`], [`SignedCredential`]) and their
//!   signature check live in [`artha_core::identity`], so anyone can verify
//!   one without the engine; this module issues and admits them.
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
use std::sync::Mutex;

pub use artha_core::identity::{Credential, Did, SignedCredential};
use artha_core::{Amount, Error, ErrorKind, Result};
use ed25519_dalek::{Signer, SigningKey};

use crate::fsutil::{fsync_dir, io_err, rename_noreplace, unique_suffix};

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
        cred.verify_at(now)
            .map_err(|e| e.with_context("submitter", submitter.to_string()))?;
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
