//! Digests of what a step record names: gradients, weights, batches.
//!
//! A single tensor hashes to the canonical [`artha_core::tensor_digest`]
//! (`artha-tensor-v1\0` ‖ dtype code ‖ rank u32 ‖ dims u64 ‖ row-major
//! little-endian data). A model has many tensors, so a step record's
//! `grad_digest`, `weight_digest` and `batch_digest` are **named-tensor
//! digests**:
//!
//! ```text
//! BLAKE3( "artha-named-tensors-v1\0"        (23 bytes)
//!       ‖ count u32 LE
//!       ‖ for each tensor, in order:
//!           name length u32 LE ‖ name (UTF-8) ‖ tensor_digest (32 bytes) )
//! ```
//!
//! The order is the model's parameter order (`fc.0.weight`, `fc.0.bias`,
//! `fc.1.weight`, …, the order of a PyTorch `state_dict` for the same
//! module tree); a batch is `[("x", inputs), ("y", targets)]`. The Python
//! helper (`runtimes/python/artha_runtime`) computes the same bytes; the
//! shared vectors are in `runtimes/vectors.json`.
//!
//! Only the window ends and the job's last step ([`is_full_step`]) hash
//! every element. At the other steps a tensor of more than [`SAMPLE`]
//! elements enters its named digest by a *sampled* digest of `SAMPLE`
//! elements at positions drawn from the seed and the step ([`Sampler`]),
//! which keeps recording under 1 % of a step however large the model;
//! `runtimes/PROOFS.md` has the byte layout and the argument for why a
//! cheat cannot hide between samples (every step also records its loss in
//! full, a function of every weight).

use artha_core::hash::TENSOR_DOMAIN;
use artha_core::{Blake3Digest, DType, Error, ErrorKind, Result};
use candle_core::{CpuStorage, Storage, Tensor};

use crate::kernels::tensor_err;
use crate::rng::Stream;

/// From this many bytes on, tensor data is hashed on the rayon pool
/// (`blake3::Hasher::update_rayon`: the same digest, computed on several
/// cores). Below it, splitting costs more than it saves.
pub const PAR_HASH_MIN: usize = 1 << 20;

/// The canonical tensor digest ([`artha_core::tensor_digest`]) of `f32`
/// values, hashed straight from the slice: on little-endian machines the
/// in-memory bytes *are* the canonical little-endian encoding, so nothing
/// is copied, and large tensors are hashed on several cores. The result is
/// bit-identical to `tensor_digest(DType::F32, shape, le_bytes(values))`.
pub fn f32_digest(shape: &[usize], values: &[f32]) -> Result<Blake3Digest> {
    checked_numel(shape, values.len())?;
    let rank =
        u32::try_from(shape.len()).map_err(|_| Error::invalid("shape", "rank overflows u32"))?;
    let mut h = blake3::Hasher::new();
    h.update(TENSOR_DOMAIN);
    h.update(&[DType::F32.code()]);
    h.update(&rank.to_le_bytes());
    for &d in shape {
        h.update(&(d as u64).to_le_bytes());
    }
    update_le(&mut h, values);
    Ok(h.finalize().into())
}

#[cfg(target_endian = "little")]
fn update_le(h: &mut blake3::Hasher, values: &[f32]) {
    let bytes: &[u8] = bytemuck::cast_slice(values);
    if bytes.len() >= PAR_HASH_MIN {
        h.update_rayon(bytes);
    } else {
        h.update(bytes);
    }
}

#[cfg(not(target_endian = "little"))]
fn update_le(h: &mut blake3::Hasher, values: &[f32]) {
    let mut buf = Vec::with_capacity(16 * 1024);
    for chunk in values.chunks(4096) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        h.update(&buf);
    }
}

/// Domain tag of a named-tensor digest.
pub const NAMED_DOMAIN: &[u8; 23] = b"artha-named-tensors-v1\0";

/// Domain tag of a sampled step's named digest (`runtimes/PROOFS.md`).
pub const SAMPLED_DOMAIN: &[u8; 25] = b"artha-sampled-tensors-v1\0";

/// Elements a sampled step reads of a tensor; a tensor of at most this
/// many elements enters whole.
pub const SAMPLE: usize = 64;

/// Whether step `step` of a job records full digests (`runtimes/PROOFS.md`):
/// the window ends (`step % proof_window == 0`) and the job's last step.
/// Every other step records sampled ones.
pub fn is_full_step(step: u64, proof_window: u64, total_steps: u64) -> bool {
    step == total_steps || (proof_window > 0 && step.is_multiple_of(proof_window))
}

/// The positions a sampled step digest reads: `Stream(seed, "sample",
/// step)`, draw `t · S + i` for element `i` of the `t`-th tensor of a
/// named digest (`runtimes/PROOFS.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    stream: Stream,
}

impl Sampler {
    /// The sampler of step `step` of a run seeded `seed`.
    pub fn new(seed: u64, step: u64) -> Self {
        Sampler {
            stream: Stream::new(seed, "sample", step),
        }
    }

    /// Position `i` (of [`SAMPLE`]) read of the `ordinal`-th tensor, which
    /// has `numel` elements.
    pub fn position(&self, ordinal: usize, i: usize, numel: usize) -> usize {
        let n = (ordinal * SAMPLE + i) as u64;
        self.stream.below(n, numel as u64) as usize
    }
}

fn checked_numel(shape: &[usize], len: usize) -> Result<usize> {
    let elems = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::invalid("shape", "element count overflows"))?;
    if elems != len {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{len} values do not fill shape {shape:?}"),
        )
        .with_context("field", "data"));
    }
    Ok(elems)
}

/// Builds a named-tensor digest one tensor at a time: full (every tensor
/// by its canonical digest) or, at a sampled step, the sampled step digest
/// of `runtimes/PROOFS.md` ([`NamedDigest::sampled`]).
#[derive(Debug, Default)]
pub struct NamedDigest {
    parts: Vec<(String, Blake3Digest)>,
    scratch: Vec<u8>,
    sampled: Option<SampledEntries>,
}

/// A sampled step digest's entries so far.
#[derive(Debug)]
struct SampledEntries {
    sampler: Sampler,
    bytes: Vec<u8>,
    count: usize,
}

impl SampledEntries {
    /// Appends tensor `name` (`dtype`, `shape`, `numel` elements, element
    /// `p`'s little-endian bytes `elem(p)`): all its elements when it has
    /// at most [`SAMPLE`], else the [`SAMPLE`] at the sampler's positions.
    fn push<const N: usize>(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        numel: usize,
        elem: impl Fn(usize) -> [u8; N],
    ) -> Result<()> {
        let name_len = u32::try_from(name.len())
            .map_err(|_| Error::invalid("name", "longer than 2^32 bytes"))?;
        let rank = u32::try_from(shape.len())
            .map_err(|_| Error::invalid("shape", "rank overflows u32"))?;
        let b = &mut self.bytes;
        b.extend_from_slice(&name_len.to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b.push(dtype.code());
        b.extend_from_slice(&rank.to_le_bytes());
        for &d in shape {
            b.extend_from_slice(&(d as u64).to_le_bytes());
        }
        if numel <= SAMPLE {
            for p in 0..numel {
                b.extend_from_slice(&elem(p));
            }
        } else {
            for i in 0..SAMPLE {
                b.extend_from_slice(&elem(self.sampler.position(self.count, i, numel)));
            }
        }
        self.count += 1;
        Ok(())
    }
}

impl NamedDigest {
    /// An empty digest builder (full digests).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder for a sampled step's digest under `sampler`
    /// (`runtimes/PROOFS.md`); `None` is [`NamedDigest::new`].
    pub fn sampled(sampler: Option<Sampler>) -> Self {
        NamedDigest {
            sampled: sampler.map(|sampler| SampledEntries {
                sampler,
                bytes: Vec::with_capacity(4096),
                count: 0,
            }),
            ..Self::default()
        }
    }

    /// Adds a tensor given by its canonical digest (a full digest only: a
    /// sampled step's digest reads elements, so there it is an error).
    pub fn push_digest(&mut self, name: &str, digest: Blake3Digest) {
        self.parts.push((name.to_string(), digest));
    }

    /// Adds an `f32` tensor.
    pub fn push_f32(&mut self, name: &str, shape: &[usize], values: &[f32]) -> Result<()> {
        if let Some(s) = self.sampled.as_mut() {
            let n = checked_numel(shape, values.len())?;
            return s.push(name, DType::F32, shape, n, |p| values[p].to_le_bytes());
        }
        let d = f32_digest(shape, values)?;
        self.push_digest(name, d);
        Ok(())
    }

    /// Adds an `i64` tensor.
    pub fn push_i64(&mut self, name: &str, shape: &[usize], values: &[i64]) -> Result<()> {
        if let Some(s) = self.sampled.as_mut() {
            let n = checked_numel(shape, values.len())?;
            return s.push(name, DType::I64, shape, n, |p| values[p].to_le_bytes());
        }
        self.scratch.clear();
        for v in values {
            self.scratch.extend_from_slice(&v.to_le_bytes());
        }
        let d = artha_core::tensor_digest(DType::I64, &dims(shape), &self.scratch)?;
        self.push_digest(name, d);
        Ok(())
    }

    /// Adds an `f32` candle tensor: hashed in place when it is a
    /// contiguous CPU tensor, else read back from its device first.
    pub fn push_tensor(&mut self, name: &str, t: &Tensor) -> Result<()> {
        {
            let (storage, layout) = t.storage_and_layout();
            if let (Storage::Cpu(CpuStorage::F32(v)), Some((start, end))) =
                (&*storage, layout.contiguous_offsets())
                && let Some(values) = v.get(start..end)
            {
                return self.push_f32(name, t.dims(), values);
            }
        }
        let values = t
            .flatten_all()
            .and_then(|f| f.to_vec1::<f32>())
            .map_err(tensor_err("read back"))?;
        self.push_f32(name, t.dims(), &values)
    }

    /// The digest over everything pushed, in order.
    pub fn finish(&self) -> Result<Blake3Digest> {
        if let Some(s) = &self.sampled {
            if !self.parts.is_empty() {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "a sampled step digest reads tensors, not their digests",
                ));
            }
            let count = u32::try_from(s.count)
                .map_err(|_| artha_core::Error::invalid("tensors", "more than 2^32 tensors"))?;
            let mut h = blake3::Hasher::new();
            h.update(SAMPLED_DOMAIN);
            h.update(&s.bytes);
            h.update(&count.to_le_bytes());
            return Ok(h.finalize().into());
        }
        let count = u32::try_from(self.parts.len())
            .map_err(|_| artha_core::Error::invalid("tensors", "more than 2^32 tensors"))?;
        let mut h = blake3::Hasher::new();
        h.update(NAMED_DOMAIN);
        h.update(&count.to_le_bytes());
        for (name, d) in &self.parts {
            let len = u32::try_from(name.len())
                .map_err(|_| artha_core::Error::invalid("name", "longer than 2^32 bytes"))?;
            h.update(&len.to_le_bytes());
            h.update(name.as_bytes());
            h.update(d.as_bytes());
        }
        Ok(h.finalize().into())
    }
}

fn dims(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

/// The named-tensor digest of `(name, tensor)` pairs, in order.
pub fn tensors_digest<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
) -> Result<Blake3Digest> {
    let mut d = NamedDigest::new();
    for (name, t) in items {
        d.push_tensor(name, t)?;
    }
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds a tensor of `runtimes/vectors.json` (`name`, `dtype`, `shape`,
    /// `values`).
    fn push_json(d: &mut NamedDigest, t: &serde_json::Value) {
        let name = t["name"].as_str().unwrap();
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let values = t["values"].as_array().unwrap();
        match t["dtype"].as_str().unwrap() {
            "f32" => {
                let vals: Vec<f32> = values.iter().map(|x| x.as_f64().unwrap() as f32).collect();
                d.push_f32(name, &shape, &vals).unwrap();
            }
            "i64" => {
                let vals: Vec<i64> = values.iter().map(|x| x.as_i64().unwrap()).collect();
                d.push_i64(name, &shape, &vals).unwrap();
            }
            other => panic!("dtype {other}"),
        }
    }

    /// Pins the shared vectors that the Python helper checks too.
    #[test]
    fn named_digest_matches_the_shared_vectors() {
        let text = include_str!("../../vectors.json");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let cases = v["named_tensors"].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let mut d = NamedDigest::new();
            for t in case["tensors"].as_array().unwrap() {
                push_json(&mut d, t);
            }
            assert_eq!(
                d.finish().unwrap().to_string(),
                case["digest"].as_str().unwrap(),
                "{}",
                case["comment"]
            );
        }
    }

    /// The sampled step digests of `runtimes/PROOFS.md` match the shared
    /// vectors the Python helper generates from its own implementation.
    #[test]
    fn sampled_digests_match_the_shared_vectors() {
        let text = include_str!("../../vectors.json");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let cases = v["sampled_named_tensors"].as_array().unwrap();
        assert!(cases.len() >= 3);
        for case in cases {
            let seed = case["seed"].as_u64().unwrap();
            let step = case["step"].as_u64().unwrap();
            let mut sampled = NamedDigest::sampled(Some(Sampler::new(seed, step)));
            let mut full = NamedDigest::new();
            for t in case["tensors"].as_array().unwrap() {
                push_json(&mut sampled, t);
                push_json(&mut full, t);
            }
            let comment = case["comment"].as_str().unwrap();
            assert_eq!(
                sampled.finish().unwrap().to_string(),
                case["digest"].as_str().unwrap(),
                "{comment}"
            );
            assert_eq!(
                full.finish().unwrap().to_string(),
                case["full_digest"].as_str().unwrap(),
                "{comment}"
            );
        }
    }

    /// The in-place (and, for large tensors, parallel) hashing gives the
    /// canonical digest of artha-core, for CPU tensors in place, strided
    /// tensors and plain slices alike.
    #[test]
    fn f32_digest_is_the_canonical_tensor_digest() {
        let s = crate::rng::Stream::new(5, "test", 0);
        for shape in [
            vec![],
            vec![0],
            vec![3],
            vec![7, 5],
            vec![300, 257],
            vec![2, 3, 50_000],
        ] {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n as u64).map(|i| s.f32_at(i) - 0.5).collect();
            let le: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            let want = artha_core::tensor_digest(DType::F32, &dims(&shape), &le).unwrap();
            assert_eq!(f32_digest(&shape, &v).unwrap(), want, "{shape:?}");
            let t =
                Tensor::from_vec(v.clone(), shape.as_slice(), &candle_core::Device::Cpu).unwrap();
            let mut a = NamedDigest::new();
            a.push_tensor("t", &t).unwrap();
            let mut b = NamedDigest::new();
            b.push_digest("t", want);
            assert_eq!(a.finish().unwrap(), b.finish().unwrap(), "{shape:?}");
        }
        // A transposed (non-contiguous) tensor is read back in row-major order.
        let t = Tensor::from_vec(
            (0..6).map(|i| i as f32).collect::<Vec<_>>(),
            (2, 3),
            &candle_core::Device::Cpu,
        )
        .unwrap()
        .t()
        .unwrap();
        let mut a = NamedDigest::new();
        a.push_tensor("t", &t).unwrap();
        let mut b = NamedDigest::new();
        b.push_f32("t", &[3, 2], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
            .unwrap();
        assert_eq!(a.finish().unwrap(), b.finish().unwrap());
        assert!(f32_digest(&[2, 2], &[1.0; 3]).is_err());
    }

    #[test]
    fn order_names_and_values_all_matter() {
        let dg = |items: &[(&str, &[f32])]| {
            let mut d = NamedDigest::new();
            for (n, v) in items {
                d.push_f32(n, &[v.len()], v).unwrap();
            }
            d.finish().unwrap()
        };
        let base = dg(&[("a", &[1.0]), ("b", &[2.0])]);
        assert_ne!(base, dg(&[("b", &[2.0]), ("a", &[1.0])]));
        assert_ne!(base, dg(&[("a", &[1.0]), ("c", &[2.0])]));
        assert_ne!(base, dg(&[("a", &[1.0]), ("b", &[2.5])]));
        // Name boundaries are length-prefixed: "ab"+"" differs from "a"+"b".
        assert_ne!(dg(&[("ab", &[]), ("", &[])]), dg(&[("a", &[]), ("b", &[])]));
        let mut bad = NamedDigest::new();
        assert!(bad.push_f32("x", &[3], &[1.0]).is_err());
    }
}
