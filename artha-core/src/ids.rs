//! Typed identifiers: [`JobId`], [`NodeId`], [`ModelId`], [`DatasetId`].
//!
//! Each is 16 bytes shown as a fixed prefix and 32 lower-case hex digits
//! (`job-0123…`, `node-…`, `model-…`, `dataset-…`), so an id of one kind
//! can never be passed where another is expected, in Rust or in text.
//! Ids are minted by the engine, either from fresh randomness
//! ([`JobId::from_bytes`]) or derived deterministically from their inputs
//! ([`JobId::derive`]), which makes re-submitting the same thing idempotent.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::hash::truncate;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// Text prefix of this id kind.
            pub const PREFIX: &'static str = $prefix;

            /// Wraps 16 raw bytes.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// An id derived from `parts` (BLAKE3 in derive-key mode with a
            /// context naming the id kind, truncated to 16 bytes): the same
            /// parts always give the same id.
            pub fn derive(parts: &[&[u8]]) -> Self {
                let mut h = blake3::Hasher::new_derive_key(concat!("artha ", $prefix, "id v1"));
                for p in parts {
                    h.update(&(p.len() as u64).to_le_bytes());
                    h.update(p);
                }
                let mut out = [0u8; 16];
                out.copy_from_slice(&h.finalize().as_bytes()[..16]);
                $name(out)
            }

            /// The id as a 32-byte word (left-aligned, zero-padded), as stored
            /// in a contract's `bytes32` field.
            pub fn to_word(&self) -> [u8; 32] {
                let mut w = [0u8; 32];
                w[..16].copy_from_slice(&self.0);
                w
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                let rest = s.strip_prefix($prefix).ok_or_else(|| {
                    Error::invalid($field, concat!("must start with `", $prefix, "`"))
                        .with_context("input", truncate(s))
                })?;
                if rest.len() != 32
                    || !rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(Error::invalid(
                        $field,
                        concat!("expected `", $prefix, "` followed by 32 lower-case hex digits"),
                    )
                    .with_context("input", truncate(s)));
                }
                let mut out = [0u8; 16];
                hex::decode_to_slice(rest, &mut out)
                    .map_err(|e| Error::invalid($field, "malformed hex").with_source(e))?;
                Ok($name(out))
            }
        }

        serde_as_str!($name);
    };
}

typed_id!(
    /// Identifies one job across the engine, the executor and the chain.
    JobId, "job-", "job_id"
);
typed_id!(
    /// Identifies a compute node (its operator registers it on chain).
    NodeId, "node-", "node_id"
);
typed_id!(
    /// Identifies a registered model version.
    ModelId, "model-", "model_id"
);
typed_id!(
    /// Identifies a registered dataset.
    DatasetId, "dataset-", "dataset_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_do_not_mix() {
        let j = JobId::derive(&[b"alice", b"1"]);
        assert_eq!(j.to_string().parse::<JobId>().unwrap(), j);
        assert!(j.to_string().starts_with("job-"));
        assert!(j.to_string().parse::<ModelId>().is_err());
        let m = ModelId::derive(&[b"alice", b"1"]);
        assert_ne!(m.as_bytes(), j.as_bytes(), "kind is part of the derivation");
    }

    #[test]
    fn derive_is_unambiguous_about_part_boundaries() {
        assert_ne!(JobId::derive(&[b"ab", b"c"]), JobId::derive(&[b"a", b"bc"]));
    }

    #[test]
    fn rejects_malformed() {
        let j = JobId::from_bytes([0xab; 16]).to_string();
        for bad in [
            "",
            "job-",
            "job-xyz",
            &j.to_uppercase(),
            &format!("{j}0"),
            &j[..j.len() - 1],
        ] {
            let e = bad.parse::<JobId>().unwrap_err();
            assert_eq!(e.context_value("field"), Some("job_id"), "{bad}");
        }
    }
}
