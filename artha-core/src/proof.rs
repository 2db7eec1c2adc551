//! Proof records and their canonical binary encoding.
//!
//! Every record has one fixed-layout encoding, identical in Rust, Python, JS
//! and Solidity, so the same record always hashes to the same Merkle leaf.
//! All integers are **little endian**; digests are raw 32 bytes; `loss` is
//! the IEEE-754 binary64 bit pattern (a runtime computing in f32 widens it,
//! which is exact).
//!
//! | record | bytes | layout |
//! |---|---|---|
//! | [`StepRecord`] | 117 | `0x01` · step u64 · epoch u32 · loss f64-bits u64 · grad_digest · weight_digest · batch_digest |
//! | [`InferRecord`] | 65 | `0x02` · input_digest · output_digest |
//! | [`CompleteRecord`] | 49 | `0x03` · steps u64 · gpu_seconds u64 · final_weights |
//!
//! The leading tag byte keeps records of different types from colliding. A
//! record's Merkle leaf is `keccak256(0x00 ‖ encoding)` (see
//! [`crate::merkle`]). Records with a non-finite loss are invalid: a runtime
//! reports an error event instead of such a step.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::{Blake3Digest, KeccakHash};
use crate::merkle;

/// Tag byte of a [`StepRecord`] encoding.
pub const STEP_TAG: u8 = 0x01;
/// Tag byte of an [`InferRecord`] encoding.
pub const INFER_TAG: u8 = 0x02;
/// Tag byte of a [`CompleteRecord`] encoding.
pub const COMPLETE_TAG: u8 = 0x03;

/// One training step, as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global step number, counted from 1 across epochs.
    pub step: u64,
    /// Epoch the step belongs to, counted from 0.
    pub epoch: u32,
    /// Training loss of the step's batch.
    pub loss: f64,
    /// Canonical tensor digest of the gradients of the step.
    pub grad_digest: Blake3Digest,
    /// Canonical tensor digest of the weights after the step's update.
    pub weight_digest: Blake3Digest,
    /// Digest of the batch the step consumed (sample indices or bytes).
    pub batch_digest: Blake3Digest,
}

/// One inference request, as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferRecord {
    /// Digest of the input.
    pub input_digest: Blake3Digest,
    /// Digest of the output.
    pub output_digest: Blake3Digest,
}

/// The end of a job: step count, GPU-seconds measured by the engine, final
/// weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteRecord {
    /// Steps run.
    pub steps: u64,
    /// GPU-seconds measured by the engine (never the runtime's claim).
    pub gpu_seconds: u64,
    /// Canonical tensor digest of the final weights.
    pub final_weights: Blake3Digest,
}

/// Reads fixed-size fields off the front of a byte slice.
struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        if self.bytes.len() < N {
            return Err(Error::invalid(self.what, "truncated encoding"));
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }
    fn u64(&mut self) -> Result<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn digest(&mut self) -> Result<Blake3Digest> {
        self.take::<32>().map(Blake3Digest::from_bytes)
    }
}

/// Checks the length and tag of an encoding, and returns a reader past the tag.
fn open<'a>(what: &'static str, bytes: &'a [u8], len: usize, tag: u8) -> Result<Reader<'a>> {
    if bytes.len() != len {
        return Err(Error::invalid(
            what,
            format!("encoding must be {len} bytes, got {}", bytes.len()),
        ));
    }
    if bytes[0] != tag {
        return Err(Error::invalid(
            what,
            format!("tag byte must be {tag:#04x}, got {:#04x}", bytes[0]),
        ));
    }
    Ok(Reader {
        what,
        bytes: &bytes[1..],
    })
}

impl StepRecord {
    /// Length of the canonical encoding.
    pub const ENCODED_LEN: usize = 117;

    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0] = STEP_TAG;
        out[1..9].copy_from_slice(&self.step.to_le_bytes());
        out[9..13].copy_from_slice(&self.epoch.to_le_bytes());
        out[13..21].copy_from_slice(&self.loss.to_bits().to_le_bytes());
        out[21..53].copy_from_slice(self.grad_digest.as_bytes());
        out[53..85].copy_from_slice(self.weight_digest.as_bytes());
        out[85..117].copy_from_slice(self.batch_digest.as_bytes());
        out
    }

    /// Decodes and checks a canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = open("step_record", bytes, Self::ENCODED_LEN, STEP_TAG)?;
        let rec = StepRecord {
            step: r.u64()?,
            epoch: r.u32()?,
            loss: f64::from_bits(r.u64()?),
            grad_digest: r.digest()?,
            weight_digest: r.digest()?,
            batch_digest: r.digest()?,
        };
        rec.validate()?;
        Ok(rec)
    }

    /// Rejects a non-finite loss.
    pub fn validate(&self) -> Result<()> {
        if !self.loss.is_finite() {
            return Err(Error::invalid("loss", "must be finite")
                .with_context("step", self.step.to_string()));
        }
        Ok(())
    }

    /// The record's Merkle leaf, `keccak256(0x00 ‖ encoding)`.
    pub fn leaf(&self) -> KeccakHash {
        merkle::leaf_hash(&self.encode())
    }
}

impl InferRecord {
    /// Length of the canonical encoding.
    pub const ENCODED_LEN: usize = 65;

    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0] = INFER_TAG;
        out[1..33].copy_from_slice(self.input_digest.as_bytes());
        out[33..65].copy_from_slice(self.output_digest.as_bytes());
        out
    }

    /// Decodes a canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = open("infer_record", bytes, Self::ENCODED_LEN, INFER_TAG)?;
        Ok(InferRecord {
            input_digest: r.digest()?,
            output_digest: r.digest()?,
        })
    }

    /// The record's Merkle leaf.
    pub fn leaf(&self) -> KeccakHash {
        merkle::leaf_hash(&self.encode())
    }
}

impl CompleteRecord {
    /// Length of the canonical encoding.
    pub const ENCODED_LEN: usize = 49;

    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0] = COMPLETE_TAG;
        out[1..9].copy_from_slice(&self.steps.to_le_bytes());
        out[9..17].copy_from_slice(&self.gpu_seconds.to_le_bytes());
        out[17..49].copy_from_slice(self.final_weights.as_bytes());
        out
    }

    /// Decodes a canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = open("complete_record", bytes, Self::ENCODED_LEN, COMPLETE_TAG)?;
        Ok(CompleteRecord {
            steps: r.u64()?,
            gpu_seconds: r.u64()?,
            final_weights: r.digest()?,
        })
    }

    /// The record's Merkle leaf.
    pub fn leaf(&self) -> KeccakHash {
        merkle::leaf_hash(&self.encode())
    }
}

/// The probability that auditing `audited` windows, chosen uniformly, finds
/// at least one faked window when a fraction `faked_fraction` of them is
/// faked: `1 − (1 − f)^m`.
///
/// ```
/// let p = artha_core::proof::detection_probability(0.1, 30);
/// assert!((p - 0.9576).abs() < 1e-4);
/// ```
pub fn detection_probability(faked_fraction: f64, audited: u32) -> f64 {
    let f = faked_fraction.clamp(0.0, 1.0);
    1.0 - (1.0 - f).powi(i32::try_from(audited).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(b: u8) -> Blake3Digest {
        Blake3Digest::from_bytes([b; 32])
    }

    #[test]
    fn step_layout_is_fixed() {
        let r = StepRecord {
            step: 0x0102030405060708,
            epoch: 0x0a0b0c0d,
            loss: 1.5,
            grad_digest: d(0x11),
            weight_digest: d(0x22),
            batch_digest: d(0x33),
        };
        let e = r.encode();
        assert_eq!(e[0], 0x01);
        assert_eq!(&e[1..9], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&e[9..13], &[0x0d, 0x0c, 0x0b, 0x0a]);
        assert_eq!(&e[13..21], &1.5f64.to_bits().to_le_bytes());
        assert_eq!(e[21], 0x11);
        assert_eq!(e[53], 0x22);
        assert_eq!(e[116], 0x33);
        assert_eq!(StepRecord::decode(&e).unwrap(), r);
    }

    #[test]
    fn decode_rejects_bad_length_tag_and_nan() {
        let r = StepRecord {
            step: 1,
            epoch: 0,
            loss: f64::NAN,
            grad_digest: d(1),
            weight_digest: d(2),
            batch_digest: d(3),
        };
        let e = StepRecord::decode(&r.encode()).unwrap_err();
        assert_eq!(e.context_value("field"), Some("loss"));
        let mut ok = r;
        ok.loss = 0.25;
        let enc = ok.encode();
        assert!(StepRecord::decode(&enc[..116]).is_err());
        let mut wrong_tag = enc;
        wrong_tag[0] = 0x02;
        let e = StepRecord::decode(&wrong_tag).unwrap_err();
        assert!(e.to_string().contains("tag byte"), "{e}");
        assert!(InferRecord::decode(&enc).is_err());
        assert!(CompleteRecord::decode(&[]).is_err());
    }

    #[test]
    fn other_records_round_trip() {
        let i = InferRecord {
            input_digest: d(4),
            output_digest: d(5),
        };
        assert_eq!(InferRecord::decode(&i.encode()).unwrap(), i);
        let c = CompleteRecord {
            steps: 10,
            gpu_seconds: 4710,
            final_weights: d(6),
        };
        assert_eq!(CompleteRecord::decode(&c.encode()).unwrap(), c);
        assert_ne!(i.leaf(), c.leaf());
    }

    #[test]
    fn detection_probability_edges() {
        assert_eq!(detection_probability(0.0, 100), 0.0);
        assert_eq!(detection_probability(1.0, 1), 1.0);
        assert_eq!(detection_probability(0.5, 0), 0.0);
        assert!((detection_probability(0.01, 300) - 0.9510).abs() < 1e-3);
    }
}
