//! Auditing committed work without an engine (DESIGN §6): the canonical
//! step log, the choice of windows to audit from on-chain randomness, and
//! the check that a step log is the one a commitment binds.
//!
//! A training job publishes its **step log** — every step record's
//! canonical encoding ([`StepRecord::encode`], 117 bytes), concatenated in
//! step order — content-addressed in the store, and commits the Merkle root
//! over it ([`JobTree`]). Anyone holding the chain's commitment can then:
//! 1. fetch the log and check it rebuilds to the committed root
//!    ([`verify_step_log`]) — a node cannot serve a log other than the one
//!    it committed;
//! 2. derive the windows to audit from the chain's audit seed
//!    ([`audit_windows`], the same function as `ProofOfCompute.auditWindows`);
//! 3. replay each chosen window with the deterministic runtime and compare
//!    the records leaf by leaf ([`first_mismatch`]).
//!
//! ```
//! use artha_core::audit::{audit_windows, decode_step_log, encode_step_log, verify_step_log};
//! use artha_core::{Blake3Digest, JobTree, KeccakHash, StepRecord};
//! let recs: Vec<StepRecord> = (1..=10)
//!     .map(|s| StepRecord {
//!         step: s,
//!         epoch: 0,
//!         loss: 1.0 / s as f64,
//!         grad_digest: Blake3Digest::of(&s.to_le_bytes()),
//!         weight_digest: Blake3Digest::of(&[s as u8; 2]),
//!         batch_digest: Blake3Digest::of(b"batch"),
//!     })
//!     .collect();
//! let root = JobTree::build(&recs, 4).unwrap().root();
//! let log = encode_step_log(&recs);
//! assert_eq!(decode_step_log(&log).unwrap(), recs);
//! assert_eq!(verify_step_log(&log, 4, &root, 10).unwrap().len(), 10);
//! let chosen = audit_windows(&KeccakHash::of(b"seed"), &[7u8; 16], 3, 2);
//! assert_eq!(chosen.len(), 2);
//! ```

use serde::{Deserialize, Serialize};

use crate::{
    Blake3Digest, Error, ErrorKind, InferRecord, JobSpec, JobTree, KeccakHash, Result, StepRecord,
};

/// The format tag of a [`JobDocument`].
pub const JOB_DOCUMENT_FORMAT: &str = "artha-job/1";

/// What a job's on-chain `specCid` names: the spec as submitted and the
/// code that must run it — for a native runtime, the BLAKE3 digest of the
/// runtime program the submitter's engine trusts. A verifier replays only
/// with a runtime of that digest (another build may differ in its last
/// bits, and must not accuse an honest node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDocument {
    /// [`JOB_DOCUMENT_FORMAT`].
    pub format: String,
    /// The spec.
    pub spec: JobSpec,
    /// BLAKE3 of the native runtime program (absent for image runtimes,
    /// whose reference is in the spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_code: Option<Blake3Digest>,
}

impl JobDocument {
    /// The document of `spec` run by code `runtime_code`.
    pub fn new(spec: JobSpec, runtime_code: Option<Blake3Digest>) -> Self {
        JobDocument {
            format: JOB_DOCUMENT_FORMAT.into(),
            spec,
            runtime_code,
        }
    }

    /// Parses a document, checking its format (`InvalidInput` naming
    /// `job_document`).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let d: JobDocument = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid("job_document", e.to_string()))?;
        if d.format != JOB_DOCUMENT_FORMAT {
            return Err(Error::invalid(
                "job_document",
                format!("format must be {JOB_DOCUMENT_FORMAT}"),
            ));
        }
        Ok(d)
    }
}

/// Most records a step log may hold (2^24 ≈ 16.7 M steps, 1.96 GB): a log
/// is hostile input and is refused beyond this before anything is built.
pub const MAX_STEP_LOG_RECORDS: u64 = 1 << 24;

/// The canonical step log: the records' encodings, concatenated.
pub fn encode_step_log(records: &[StepRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * StepRecord::ENCODED_LEN);
    for r in records {
        out.extend_from_slice(&r.encode());
    }
    out
}

/// Decodes a step log: whole records, each valid, numbered consecutively.
/// Errors are `InvalidInput` naming `step_log` and the offending record.
pub fn decode_step_log(bytes: &[u8]) -> Result<Vec<StepRecord>> {
    let n = StepRecord::ENCODED_LEN;
    if !bytes.len().is_multiple_of(n) {
        return Err(Error::invalid(
            "step_log",
            format!("length {} is not a multiple of {n}", bytes.len()),
        ));
    }
    if (bytes.len() / n) as u64 > MAX_STEP_LOG_RECORDS {
        return Err(Error::invalid(
            "step_log",
            format!("more than {MAX_STEP_LOG_RECORDS} records"),
        ));
    }
    let mut out: Vec<StepRecord> = Vec::with_capacity(bytes.len() / n);
    for (i, chunk) in bytes.chunks_exact(n).enumerate() {
        let r = StepRecord::decode(chunk).map_err(|e| {
            Error::invalid("step_log", format!("record {i}: {}", e.message()))
                .with_context("record", i.to_string())
        })?;
        if let Some(prev) = out.last()
            && r.step != prev.step + 1
        {
            return Err(Error::invalid(
                "step_log",
                format!("record {i} is step {}, after step {}", r.step, prev.step),
            )
            .with_context("record", i.to_string()));
        }
        out.push(r);
    }
    Ok(out)
}

/// Decodes a step log and checks it is the one committed: `steps` records
/// whose tree of `window`-step windows has root `job_root`. A log that
/// decodes but rebuilds to another root is `Corrupted` (the node served
/// something it did not commit).
pub fn verify_step_log(
    bytes: &[u8],
    window: u32,
    job_root: &KeccakHash,
    steps: u64,
) -> Result<Vec<StepRecord>> {
    let records = decode_step_log(bytes)?;
    if records.len() as u64 != steps {
        return Err(Error::new(
            ErrorKind::Corrupted,
            format!(
                "the step log holds {} records, the commitment {steps}",
                records.len()
            ),
        )
        .with_context("field", "step_log"));
    }
    let root = JobTree::build(&records, window)?.root();
    if root != *job_root {
        return Err(Error::new(
            ErrorKind::Corrupted,
            "the step log does not rebuild to the committed job root",
        )
        .with_context("field", "step_log")
        .with_context("committed_root", job_root.to_string())
        .with_context("log_root", root.to_string()));
    }
    Ok(records)
}

/// Chooses `min(count, windows)` distinct windows to audit, exactly as
/// `ProofOfCompute.auditWindows` does: candidate `i` is
/// `uint256(keccak256(abi.encode(seed, jobId, i))) mod windows` (the job id
/// as a left-aligned `bytes32`, `i` as a `uint256`), repeats skipped.
/// Deterministic: anyone with the seed derives the same choice.
pub fn audit_windows(seed: &KeccakHash, job: &[u8; 16], windows: u64, count: u64) -> Vec<u64> {
    let mut word = [0u8; 32];
    word[..16].copy_from_slice(job);
    audit_windows_word(seed, &word, windows, count)
}

/// [`audit_windows`] for a job id given as its whole `bytes32` word.
pub fn audit_windows_word(seed: &KeccakHash, job: &[u8; 32], windows: u64, count: u64) -> Vec<u64> {
    let want = count.min(windows) as usize;
    let mut chosen: Vec<u64> = Vec::with_capacity(want);
    let mut i: u64 = 0;
    while chosen.len() < want {
        let mut buf = [0u8; 96];
        buf[..32].copy_from_slice(seed.as_bytes());
        buf[32..64].copy_from_slice(job);
        buf[88..96].copy_from_slice(&i.to_be_bytes());
        let h = KeccakHash::of(&buf);
        let w = mod_be(h.as_bytes(), windows);
        if !chosen.contains(&w) {
            chosen.push(w);
        }
        i += 1;
    }
    chosen
}

/// A big-endian 256-bit number modulo `m` (m ≥ 1).
fn mod_be(bytes: &[u8; 32], m: u64) -> u64 {
    let m = u128::from(m.max(1));
    let mut r: u128 = 0;
    for b in bytes {
        r = ((r << 8) | u128::from(*b)) % m;
    }
    r as u64
}

/// The first step whose replayed record differs from the committed one
/// (by canonical encoding, so a loss that differs in its last bit counts);
/// `None` when all agree. Records are compared by position.
pub fn first_mismatch(committed: &[StepRecord], replayed: &[StepRecord]) -> Option<usize> {
    committed
        .iter()
        .zip(replayed)
        .position(|(c, r)| c.encode() != r.encode())
        .or_else(|| {
            (committed.len() != replayed.len()).then(|| committed.len().min(replayed.len()))
        })
}

/// Simulates `jobs` audits: each job has `windows` windows of which
/// `faked` (a uniform random set) are faked, and is audited on `m` windows
/// drawn by [`audit_windows`] from a seed of its own; returns the share of
/// jobs caught. Deterministic for `rng_seed`. What `bench/verify.sh`
/// reports against `1 − (1 − f)^m`.
pub fn simulate_detection(windows: u64, faked: usize, m: u64, jobs: u32, rng_seed: u64) -> f64 {
    let mut rng = rng_seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let faked = faked.min(windows as usize);
    let mut caught = 0u32;
    for j in 0..jobs {
        let mut bad = Vec::with_capacity(faked);
        while bad.len() < faked {
            let w = next() % windows.max(1);
            if !bad.contains(&w) {
                bad.push(w);
            }
        }
        let seed = KeccakHash::of(&next().to_le_bytes());
        let mut job = [0u8; 16];
        job[..4].copy_from_slice(&j.to_le_bytes());
        if audit_windows(&seed, &job, windows, m)
            .iter()
            .any(|w| bad.contains(w))
        {
            caught += 1;
        }
    }
    f64::from(caught) / f64::from(jobs.max(1))
}

/// The exact probability that `m` distinct windows drawn uniformly from
/// `windows` hit at least one of `faked`: `1 − C(windows − faked, m) /
/// C(windows, m)` (≥ `1 − (1 − f)^m`, the with-replacement bound).
pub fn detection_exact(windows: u64, faked: u64, m: u64) -> f64 {
    let m = m.min(windows);
    1.0 - (0..m).fold(1.0, |p, i| {
        p * (windows.saturating_sub(faked).saturating_sub(i)) as f64 / (windows - i) as f64
    })
}

/// The canonical inference log: the `infer` records' encodings
/// ([`InferRecord::encode`], 65 bytes), concatenated in batch order.
pub fn encode_infer_log(records: &[InferRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * InferRecord::ENCODED_LEN);
    for r in records {
        out.extend_from_slice(&r.encode());
    }
    out
}

/// Decodes an inference log and checks it is the one committed: `batches`
/// records whose one-window tree (leaves in batch order, then the tree over
/// that window's root) has root `job_root`. `InvalidInput` naming
/// `infer_log` for a malformed log, `Corrupted` for another root.
pub fn verify_infer_log(
    bytes: &[u8],
    job_root: &KeccakHash,
    batches: u64,
) -> Result<Vec<InferRecord>> {
    let n = InferRecord::ENCODED_LEN;
    if !bytes.len().is_multiple_of(n) || (bytes.len() / n) as u64 > MAX_STEP_LOG_RECORDS {
        return Err(Error::invalid(
            "infer_log",
            format!(
                "length {} is not a whole number of {n}-byte records",
                bytes.len()
            ),
        ));
    }
    let records = bytes
        .chunks_exact(n)
        .enumerate()
        .map(|(i, c)| {
            InferRecord::decode(c).map_err(|e| {
                Error::invalid("infer_log", format!("record {i}: {}", e.message()))
                    .with_context("record", i.to_string())
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if records.len() as u64 != batches || records.is_empty() {
        return Err(Error::new(
            ErrorKind::Corrupted,
            format!(
                "the inference log holds {} records, the commitment {batches}",
                records.len()
            ),
        )
        .with_context("field", "infer_log"));
    }
    let window = crate::MerkleTree::from_leaves(records.iter().map(InferRecord::leaf).collect())?;
    let root = crate::MerkleTree::from_leaves(vec![window.root()])?.root();
    if root != *job_root {
        return Err(Error::new(
            ErrorKind::Corrupted,
            "the inference log does not rebuild to the committed job root",
        )
        .with_context("field", "infer_log"));
    }
    Ok(records)
}

/// The windows an auditor needs to replay to catch, with probability at
/// least `confidence`, a node that faked a fraction `faked` of its windows:
/// the least `m` with `1 − (1 − f)^m ≥ confidence`.
///
/// ```
/// // 44 windows catch a node faking 10 % of them 99 % of the time.
/// assert_eq!(artha_core::audit::sample_size(0.10, 0.99), 44);
/// ```
pub fn sample_size(faked: f64, confidence: f64) -> u32 {
    let f = faked.clamp(1e-9, 1.0);
    let c = confidence.clamp(0.0, 1.0 - 1e-12);
    if f >= 1.0 {
        return 1;
    }
    let m = ((1.0 - c).ln() / (1.0 - f).ln()).ceil();
    if m.is_finite() && m >= 1.0 {
        m.min(f64::from(u32::MAX)) as u32
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Blake3Digest;

    fn recs(n: u64) -> Vec<StepRecord> {
        (1..=n)
            .map(|s| StepRecord {
                step: s,
                epoch: 0,
                loss: s as f64,
                grad_digest: Blake3Digest::of(&s.to_le_bytes()),
                weight_digest: Blake3Digest::of(&(s * 7).to_le_bytes()),
                batch_digest: Blake3Digest::of(b"b"),
            })
            .collect()
    }

    #[test]
    fn log_round_trips_and_binds_the_root() {
        let r = recs(23);
        let root = JobTree::build(&r, 5).unwrap().root();
        let log = encode_step_log(&r);
        assert_eq!(verify_step_log(&log, 5, &root, 23).unwrap(), r);
        // Another window size, count or one flipped bit: refused.
        assert_eq!(
            verify_step_log(&log, 4, &root, 23).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
        assert_eq!(
            verify_step_log(&log, 5, &root, 22).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
        let mut bad = log.clone();
        bad[40] ^= 1;
        assert_eq!(
            verify_step_log(&bad, 5, &root, 23).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
    }

    #[test]
    fn inference_logs_bind_the_root() {
        let recs: Vec<InferRecord> = (0..5u8)
            .map(|i| InferRecord {
                input_digest: Blake3Digest::of(&[i]),
                output_digest: Blake3Digest::of(&[i, i]),
            })
            .collect();
        let window = crate::MerkleTree::from_leaves(recs.iter().map(InferRecord::leaf).collect())
            .unwrap()
            .root();
        let root = crate::MerkleTree::from_leaves(vec![window]).unwrap().root();
        let log = encode_infer_log(&recs);
        assert_eq!(verify_infer_log(&log, &root, 5).unwrap(), recs);
        let mut bad = log.clone();
        bad[70] ^= 1;
        assert_eq!(
            verify_infer_log(&bad, &root, 5).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
        assert_eq!(
            verify_infer_log(&log[..64], &root, 1)
                .unwrap_err()
                .context_value("field"),
            Some("infer_log")
        );
    }

    #[test]
    fn malformed_logs_name_the_record() {
        let r = recs(3);
        let log = encode_step_log(&r);
        let e = decode_step_log(&log[..100]).unwrap_err();
        assert_eq!(e.context_value("field"), Some("step_log"));
        let mut gap = r.clone();
        gap[2].step = 9;
        let e = decode_step_log(&encode_step_log(&gap)).unwrap_err();
        assert_eq!(e.context_value("record"), Some("2"));
        let mut tag = log.clone();
        tag[117] = 9;
        assert_eq!(
            decode_step_log(&tag).unwrap_err().context_value("record"),
            Some("1")
        );
    }

    #[test]
    fn audit_choice_is_distinct_in_range_and_seeded() {
        let s = KeccakHash::of(b"s");
        let a = audit_windows(&s, &[1; 16], 100, 8);
        assert_eq!(a.len(), 8);
        assert!(a.iter().all(|w| *w < 100));
        let mut d = a.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), 8);
        assert_eq!(a, audit_windows(&s, &[1; 16], 100, 8));
        assert_ne!(a, audit_windows(&KeccakHash::of(b"t"), &[1; 16], 100, 8));
        assert_ne!(a, audit_windows(&s, &[2; 16], 100, 8));
        let mut all = audit_windows(&s, &[1; 16], 5, 50);
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
    }

    /// The contract's own example (`testDrawWindowsExample` in
    /// contracts/test): seed `bytes32(1)`, job `bytes32(2)`, 10 windows,
    /// 5 drawn.
    #[test]
    fn the_draw_is_the_contracts() {
        let (mut seed, mut job) = ([0u8; 32], [0u8; 32]);
        seed[31] = 1;
        job[31] = 2;
        assert_eq!(
            audit_windows_word(&KeccakHash::from_bytes(seed), &job, 10, 5),
            [2, 7, 8, 4, 0]
        );
    }

    #[test]
    fn mod_of_a_big_endian_word() {
        let mut b = [0u8; 32];
        b[31] = 200;
        b[30] = 1; // 456
        assert_eq!(mod_be(&b, 100), 56);
        assert_eq!(mod_be(&[0xff; 32], 1), 0);
        // 2^3 ≡ 1 (mod 7) and 256 ≡ 1 (mod 3), so 2^256 ≡ 2 and 2^256 − 1 ≡ 1.
        assert_eq!(mod_be(&[0xff; 32], 7), 1);
    }

    #[test]
    fn mismatch_is_the_first_differing_position() {
        let a = recs(5);
        let mut b = a.clone();
        assert_eq!(first_mismatch(&a, &b), None);
        b[3].loss = f64::from_bits(b[3].loss.to_bits() ^ 1);
        assert_eq!(first_mismatch(&a, &b), Some(3));
        assert_eq!(first_mismatch(&a, &a[..4]), Some(4));
    }

    /// Many simulated jobs of 100 windows, a tenth of them faked at
    /// random, each audited on `m` windows drawn from its own seed: the
    /// share caught matches the exact probability within sampling error
    /// (4 σ), which is at least `1 − (1 − f)^m`.
    #[test]
    fn measured_detection_matches_the_formula() {
        let jobs = 4_000u32;
        for m in [1u64, 8, 22] {
            let measured = simulate_detection(100, 10, m, jobs, 0x9e37_79b9_7f4a_7c15);
            let exact = detection_exact(100, 10, m);
            let sigma = (exact * (1.0 - exact) / f64::from(jobs)).sqrt();
            assert!(
                (measured - exact).abs() <= 4.0 * sigma + 1e-9,
                "m = {m}: measured {measured}, expected {exact} ± {sigma}"
            );
            assert!(exact >= crate::proof::detection_probability(0.1, m as u32) - 1e-12);
        }
    }

    #[test]
    fn sample_sizes() {
        assert_eq!(sample_size(0.10, 0.99), 44);
        assert_eq!(sample_size(0.5, 0.99), 7);
        assert_eq!(sample_size(1.0, 0.99), 1);
        assert!(crate::proof::detection_probability(0.10, 44) >= 0.99);
        assert!(crate::proof::detection_probability(0.10, 43) < 0.99);
    }
}
