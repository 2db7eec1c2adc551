//! Typed hashes: [`Blake3Digest`] for bulk data (chunks, files, tensors),
//! [`KeccakHash`] for everything a contract must check (Merkle leaves, nodes
//! and roots).
//!
//! Text forms are strict so that one value has exactly one spelling:
//! - `Blake3Digest`: 64 lower-case hex digits, no prefix.
//! - `KeccakHash`: `0x` followed by 64 lower-case hex digits (the EVM
//!   convention for `bytes32`).
//!
//! Upper-case digits, odd or wrong lengths and stray characters are errors
//! that name the offending input.

use std::fmt;
use std::str::FromStr;

use sha3::{Digest as _, Keccak256};

use crate::error::{Error, ErrorKind, Result};

/// Decodes exactly 32 bytes from 64 lower-case hex digits.
///
/// `what` names the input in the error (`"cid"`, `"grad_digest"`, …).
pub fn parse_hex32(what: &str, s: &str) -> Result<[u8; 32]> {
    if s.len() != 64 {
        return Err(Error::invalid(
            what,
            format!("expected 64 hex digits, got {} characters", s.len()),
        ));
    }
    if let Some(pos) = s
        .bytes()
        .position(|b| !(b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    {
        return Err(Error::invalid(
            what,
            format!(
                "invalid character at position {pos}: only 0-9 and a-f (lower case) are allowed"
            ),
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|e| Error::invalid(what, "malformed hex").with_source(e))?;
    Ok(out)
}

macro_rules! digest_common {
    ($name:ident) => {
        impl $name {
            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            /// The raw 32 bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The all-zero value.
            pub const ZERO: $name = $name([0u8; 32]);

            /// Whether every byte is zero.
            pub fn is_zero(&self) -> bool {
                self.0 == [0u8; 32]
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(b: [u8; 32]) -> Self {
                $name(b)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        serde_as_str!($name);
    };
}

/// A BLAKE3 digest of bulk data: chunks, files, tensors, batches.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Blake3Digest([u8; 32]);
digest_common!(Blake3Digest);

impl Blake3Digest {
    /// BLAKE3 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Blake3Digest(*blake3::hash(data).as_bytes())
    }
}

impl From<blake3::Hash> for Blake3Digest {
    fn from(h: blake3::Hash) -> Self {
        Blake3Digest(*h.as_bytes())
    }
}

impl fmt::Display for Blake3Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for Blake3Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_hex32("blake3 digest", s).map(Blake3Digest)
    }
}

/// A keccak256 hash, as computed by the EVM: Merkle leaves, nodes and roots.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeccakHash([u8; 32]);
digest_common!(KeccakHash);

impl KeccakHash {
    /// keccak256 of the concatenation of `parts`.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut h = Keccak256::new();
        for p in parts {
            h.update(p);
        }
        KeccakHash(h.finalize().into())
    }

    /// keccak256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::of_parts(&[data])
    }
}

impl fmt::Display for KeccakHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl FromStr for KeccakHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let rest = s.strip_prefix("0x").ok_or_else(|| {
            Error::invalid(
                "keccak hash",
                "expected a 0x prefix followed by 64 hex digits",
            )
        })?;
        parse_hex32("keccak hash", rest).map(KeccakHash)
    }
}

/// A content id: the BLAKE3 digest of a stored object (a chunk, or a file or
/// directory manifest).
///
/// Text form: `b3:` followed by 64 lower-case hex digits. Parsing is strict:
/// the prefix is required, upper case is rejected, the length is exact.
///
/// ```
/// use artha_core::Cid;
/// let cid = Cid::of(b"hello");
/// let text = cid.to_string();
/// assert!(text.starts_with("b3:"));
/// assert_eq!(text.parse::<Cid>().unwrap(), cid);
/// assert!(text.to_uppercase().parse::<Cid>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid(Blake3Digest);

impl Cid {
    /// The text prefix of every CID.
    pub const PREFIX: &'static str = "b3:";

    /// Length of the text form.
    pub const TEXT_LEN: usize = 3 + 64;

    /// The CID of `data` (its BLAKE3 digest).
    pub fn of(data: &[u8]) -> Self {
        Cid(Blake3Digest::of(data))
    }

    /// Wraps a digest that was computed elsewhere (e.g. incrementally).
    pub const fn from_digest(d: Blake3Digest) -> Self {
        Cid(d)
    }

    /// The underlying digest.
    pub const fn digest(&self) -> &Blake3Digest {
        &self.0
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The 64 hex digits without the prefix (e.g. for file names).
    pub fn to_hex(&self) -> String {
        self.0.to_string()
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0)
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

impl FromStr for Cid {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(Error::invalid("cid", "must not be empty"));
        }
        let rest = s.strip_prefix(Self::PREFIX).ok_or_else(|| {
            Error::invalid("cid", "must start with `b3:`").with_context("input", truncate(s))
        })?;
        parse_hex32("cid", rest)
            .map(|b| Cid(Blake3Digest(b)))
            .map_err(|e| e.with_context("input", truncate(s)))
    }
}

serde_as_str!(Cid);

/// Shortens untrusted input before it goes into an error message.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Element type of a tensor, for [`tensor_digest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DType {
    /// IEEE-754 binary32.
    F32,
    /// IEEE-754 binary64.
    F64,
    /// IEEE-754 binary16.
    F16,
    /// bfloat16.
    Bf16,
    /// Signed 64-bit integer.
    I64,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned byte.
    U8,
}

impl DType {
    /// The one-byte code used in the canonical tensor header.
    pub const fn code(self) -> u8 {
        match self {
            DType::F32 => 1,
            DType::F64 => 2,
            DType::F16 => 3,
            DType::Bf16 => 4,
            DType::I64 => 5,
            DType::I32 => 6,
            DType::U8 => 7,
        }
    }

    /// Size of one element in bytes.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::F16 | DType::Bf16 => 2,
            DType::U8 => 1,
        }
    }
}

/// Domain tag that starts every canonical tensor encoding.
pub const TENSOR_DOMAIN: &[u8; 16] = b"artha-tensor-v1\0";

/// The canonical BLAKE3 digest of a tensor, identical in Rust, Python
/// (numpy/torch) and JS.
///
/// Hashed bytes: the 16-byte domain tag `artha-tensor-v1\0`, the dtype code
/// (one byte, see [`DType::code`]), the rank as u32 little endian, each
/// dimension as u64 little endian, then the elements in row-major (C) order,
/// each little endian. `data_le` must already be in that order and byte
/// order; its length must equal the product of `shape` times the element
/// size.
pub fn tensor_digest(dtype: DType, shape: &[u64], data_le: &[u8]) -> Result<Blake3Digest> {
    let elems = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::invalid("shape", "element count overflows u64"))?;
    let expected = elems
        .checked_mul(dtype.size() as u64)
        .ok_or_else(|| Error::invalid("shape", "byte size overflows u64"))?;
    if expected != data_le.len() as u64 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "tensor data is {} bytes but shape {:?} of {:?} needs {}",
                data_le.len(),
                shape,
                dtype,
                expected
            ),
        )
        .with_context("field", "data"));
    }
    let rank =
        u32::try_from(shape.len()).map_err(|_| Error::invalid("shape", "rank overflows u32"))?;
    let mut h = blake3::Hasher::new();
    h.update(TENSOR_DOMAIN);
    h.update(&[dtype.code()]);
    h.update(&rank.to_le_bytes());
    for d in shape {
        h.update(&d.to_le_bytes());
    }
    h.update(data_le);
    Ok(h.finalize().into())
}

/// [`tensor_digest`] of an `f32` tensor given as values.
pub fn tensor_digest_f32(shape: &[u64], values: &[f32]) -> Result<Blake3Digest> {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    tensor_digest(DType::F32, shape, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_rejects_every_malformed_form() {
        let good = Cid::of(b"x").to_string();
        assert!(good.parse::<Cid>().is_ok());
        for bad in [
            "",
            "b3:",
            &good[3..],                       // no prefix
            &good.to_uppercase(),             // upper case
            &format!("{}0", good),            // too long
            &good[..good.len() - 1],          // odd length
            &format!("B3:{}", &good[3..]),    // upper-case prefix
            &format!("b3:{}g", &good[3..66]), // non-hex
            &format!(" {good}"),              // whitespace
        ] {
            let e = bad.parse::<Cid>().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert_eq!(e.context_value("field"), Some("cid"), "{bad}");
        }
    }

    #[test]
    fn keccak_matches_known_vector() {
        // keccak256("") from the Ethereum yellow paper.
        assert_eq!(
            KeccakHash::of(b"").to_string(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert!(
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
                .parse::<KeccakHash>()
                .is_err()
        );
    }

    #[test]
    fn blake3_matches_known_vector() {
        // BLAKE3("") from the reference implementation's test vectors.
        assert_eq!(
            Blake3Digest::of(b"").to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn tensor_digest_checks_length_and_depends_on_shape() {
        let a = tensor_digest_f32(&[2, 3], &[1.0; 6]).unwrap();
        let b = tensor_digest_f32(&[3, 2], &[1.0; 6]).unwrap();
        assert_ne!(a, b);
        let e = tensor_digest(DType::F32, &[2, 3], &[0u8; 23]).unwrap_err();
        assert_eq!(e.context_value("field"), Some("data"));
        assert!(tensor_digest(DType::F32, &[u64::MAX, 2], &[]).is_err());
    }
}
