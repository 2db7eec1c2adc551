//! Proofs of training (DESIGN §6): from runtime events to one on-chain
//! commitment, and the audit that checks it.
//!
//! 1. [`ProofRecorder`] takes a job's events in order and keeps only what
//!    is consistent: step numbers must run 1, 2, 3, … (or on from a resume
//!    point), epochs never go back, a `complete` event must agree with the
//!    steps seen (count and final weight digest). A runtime that breaks
//!    this is reported, never believed.
//! 2. [`ProofRecorder::finish`] groups the step records into windows of
//!    `proof_window` steps and builds the two-level keccak tree
//!    ([`artha_core::JobTree`]); the [`ProofManifest`] lists the window roots,
//!    the job root and the checkpoint CIDs at window boundaries, and is
//!    stored in the SVDB; the chain gets one [`Commitment`] (job root,
//!    counts, GPU-seconds **measured by the engine**, final weights,
//!    manifest CID) whatever the number of steps.
//! 3. After the commitment, [`audit_windows`] derives the windows to audit
//!    from randomness the worker could not know when it committed (the
//!    commit block's hash) mixed with the job id. A verifier replays each
//!    chosen window from its starting checkpoint and [`compare_window`]
//!    finds the first step whose leaf differs, with the proof a challenge
//!    needs.
//!
//! Detection: faking a fraction `f` of windows and being audited on `m`
//! of them is caught with probability `1 − (1 − f)^m`
//! ([`artha_core::proof::detection_probability`]); e.g. `m = 8` catches a
//! worker faking 25 % of its windows 90 % of the time, and a verifier
//! replays `m / windows` of the training compute.

use artha_core::protocol::RuntimeEvent;
use artha_core::{
    Blake3Digest, Cid, Commitment, Error, ErrorKind, JobId, JobTree, KeccakHash, Result, StepProof,
    StepRecord,
};
use serde::{Deserialize, Serialize};

/// A checkpoint the runtime reported, once stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// The step it was taken after.
    pub step: u64,
    /// Its content id in the store (None until pushed).
    pub cid: Option<Cid>,
    /// Path relative to the checkpoint directory.
    pub path: String,
}

/// Collects and checks a job's events.
#[derive(Debug, Clone)]
pub struct ProofRecorder {
    job: JobId,
    window: u32,
    first_step: u64,
    steps: Vec<StepRecord>,
    checkpoints: Vec<CheckpointRef>,
    claimed: Option<(u64, Blake3Digest)>,
}

/// What a job committed to, stored in the SVDB as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofManifest {
    /// Format tag.
    pub format: String,
    /// The job.
    pub job_id: JobId,
    /// Steps per window.
    pub window: u32,
    /// First step number (1 unless resumed from elsewhere).
    pub first_step: u64,
    /// Steps recorded.
    pub steps: u64,
    /// Root of each window, in order.
    pub window_roots: Vec<KeccakHash>,
    /// Root over the window roots.
    pub job_root: KeccakHash,
    /// Digest of the final weights.
    pub final_weights: Blake3Digest,
    /// Checkpoints, by step.
    pub checkpoints: Vec<CheckpointRef>,
    /// The canonical step log ([`artha_core::audit::encode_step_log`]) of
    /// a training job, or inference log
    /// ([`artha_core::audit::encode_infer_log`]) of an inference job, in the
    /// store: what anyone replays against (absent in manifests written
    /// before it was published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_log: Option<Cid>,
    /// The job's spec in the store (the same CID as on chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Cid>,
}

/// The manifest's format tag.
pub const MANIFEST_FORMAT: &str = "artha-proof-manifest/1";

impl ProofRecorder {
    /// A recorder for `job`, windows of `window` steps, expecting the first
    /// step to be number `first_step` (1 for a fresh run).
    pub fn new(job: JobId, window: u32, first_step: u64) -> Result<Self> {
        if window == 0 {
            return Err(Error::invalid("proof_window", "must be ≥ 1"));
        }
        Ok(ProofRecorder {
            job,
            window,
            first_step,
            steps: Vec::new(),
            checkpoints: Vec::new(),
            claimed: None,
        })
    }

    /// Steps recorded so far.
    pub fn steps(&self) -> &[StepRecord] {
        &self.steps
    }

    /// Checkpoints reported so far.
    pub fn checkpoints(&self) -> &[CheckpointRef] {
        &self.checkpoints
    }

    /// Records that the checkpoint at `path` was stored as `cid`.
    pub fn set_checkpoint_cid(&mut self, path: &str, cid: Cid) {
        for c in self.checkpoints.iter_mut().filter(|c| c.path == path) {
            c.cid = Some(cid);
        }
    }

    /// Takes one event; an `InvalidInput` error (naming the step) for an
    /// event inconsistent with what came before.
    pub fn record(&mut self, event: &RuntimeEvent) -> Result<()> {
        let bad = |msg: String, step: u64| {
            Error::invalid("events", msg).with_context("step", step.to_string())
        };
        match event {
            RuntimeEvent::Step(rec) => {
                if self.claimed.is_some() {
                    return Err(bad("step after `complete`".into(), rec.step));
                }
                rec.validate()?;
                let expected = self.first_step + self.steps.len() as u64;
                if rec.step != expected {
                    return Err(bad(
                        format!("expected step {expected}, got {}", rec.step),
                        rec.step,
                    ));
                }
                if let Some(prev) = self.steps.last()
                    && rec.epoch < prev.epoch
                {
                    return Err(bad(
                        format!("epoch went back from {} to {}", prev.epoch, rec.epoch),
                        rec.step,
                    ));
                }
                self.steps.push(*rec);
            }
            RuntimeEvent::Checkpoint { path, step } => {
                let last = self
                    .steps
                    .last()
                    .map_or(self.first_step.saturating_sub(1), |s| s.step);
                if *step > last {
                    return Err(bad(
                        format!("checkpoint claims step {step}, only {last} were run"),
                        *step,
                    ));
                }
                self.checkpoints.push(CheckpointRef {
                    step: *step,
                    cid: None,
                    path: path.clone(),
                });
            }
            RuntimeEvent::Complete {
                steps,
                final_weights,
            } => {
                let seen = self.steps.len() as u64;
                if *steps != seen {
                    return Err(bad(
                        format!("runtime claims {steps} steps, {seen} were reported"),
                        *steps,
                    ));
                }
                if let Some(last) = self.steps.last()
                    && last.weight_digest != *final_weights
                {
                    return Err(bad(
                        "final weights differ from the last step's weights".into(),
                        last.step,
                    ));
                }
                self.claimed = Some((*steps, *final_weights));
            }
            RuntimeEvent::Infer(_) | RuntimeEvent::Log { .. } | RuntimeEvent::Error { .. } => {}
        }
        Ok(())
    }

    /// Builds the manifest and the tree. `InvalidInput` when no step was run
    /// or the runtime never said `complete`.
    pub fn finish(&self) -> Result<(ProofManifest, JobTree)> {
        let (_, final_weights) = self
            .claimed
            .ok_or_else(|| Error::invalid("events", "the runtime never reported `complete`"))?;
        let tree = JobTree::build(&self.steps, self.window)?;
        let manifest = ProofManifest {
            format: MANIFEST_FORMAT.into(),
            job_id: self.job,
            window: self.window,
            first_step: self.first_step,
            steps: self.steps.len() as u64,
            window_roots: tree.window_roots().to_vec(),
            job_root: tree.root(),
            final_weights,
            checkpoints: self.checkpoints.clone(),
            step_log: None,
            spec: None,
        };
        Ok((manifest, tree))
    }
}

impl ProofRecorder {
    /// Builds the manifest of the steps recorded so far, for a run that
    /// ended without `complete` (it failed or was cancelled): the final
    /// weights are the last step's. `InvalidInput` when no step was run.
    pub fn finish_partial(&self) -> Result<ProofManifest> {
        let last = self
            .steps
            .last()
            .ok_or_else(|| Error::invalid("events", "no step was run"))?;
        let tree = JobTree::build(&self.steps, self.window)?;
        Ok(ProofManifest {
            format: MANIFEST_FORMAT.into(),
            job_id: self.job,
            window: self.window,
            first_step: self.first_step,
            steps: self.steps.len() as u64,
            window_roots: tree.window_roots().to_vec(),
            job_root: tree.root(),
            final_weights: last.weight_digest,
            checkpoints: self.checkpoints.clone(),
            step_log: None,
            spec: None,
        })
    }
}

impl ProofManifest {
    /// The on-chain commitment for this manifest stored as `manifest_cid`.
    pub fn commitment(&self, manifest_cid: Cid) -> Result<Commitment> {
        Ok(Commitment {
            job_id: self.job_id,
            job_root: self.job_root,
            window: self.window,
            windows: u32::try_from(self.window_roots.len())
                .map_err(|_| Error::invalid("windows", "more than 2^32 windows"))?,
            steps: self.steps,
            final_weights: self.final_weights,
            manifest: manifest_cid,
        })
    }

    /// Checks the manifest is self-consistent: the job root is the tree
    /// over the window roots, and the window count fits the step count.
    pub fn validate(&self) -> Result<()> {
        if self.format != MANIFEST_FORMAT {
            return Err(Error::invalid(
                "format",
                format!("expected {MANIFEST_FORMAT}"),
            ));
        }
        let expected_windows = self.steps.div_ceil(u64::from(self.window.max(1)));
        if self.window == 0 || self.window_roots.len() as u64 != expected_windows {
            return Err(Error::invalid(
                "window_roots",
                "count does not match steps / window",
            ));
        }
        let top = artha_core::MerkleTree::from_leaves(self.window_roots.clone())?;
        if top.root() != self.job_root {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "job root is not the root of the window roots",
            ));
        }
        Ok(())
    }

    /// The steps of window `w` as 1-based step numbers `[start, end]`.
    pub fn window_steps(&self, w: u64) -> Option<(u64, u64)> {
        let n = self.window_roots.len() as u64;
        if w >= n {
            return None;
        }
        let start = self.first_step + w * u64::from(self.window);
        let end = (start + u64::from(self.window) - 1).min(self.first_step + self.steps - 1);
        Some((start, end))
    }

    /// The latest checkpoint at or before the start of window `w` (where
    /// a replay of that window begins); `None` means from the initial model.
    pub fn checkpoint_before(&self, w: u64) -> Option<&CheckpointRef> {
        let (start, _) = self.window_steps(w)?;
        self.checkpoints
            .iter()
            .filter(|c| c.step < start)
            .max_by_key(|c| c.step)
    }
}

/// Chooses up to `count` distinct windows to audit from the chain's audit
/// seed ([`artha_core::audit::audit_windows`], the same choice as
/// `ProofOfCompute.auditWindows`). Deterministic, so anyone can re-derive it.
pub fn audit_windows(seed: &KeccakHash, job: &JobId, windows: u64, count: u64) -> Vec<u64> {
    artha_core::audit::audit_windows(seed, job.as_bytes(), windows, count)
}

/// The first difference between a window's committed records and a replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The committed record.
    pub committed: StepRecord,
    /// What the replay produced for the same step.
    pub replayed: StepRecord,
    /// Proof of the committed record under the job root.
    pub proof: StepProof,
}

/// Compares the committed records of window `w` with a replay of it.
/// `committed` is the job's full step log (it must rebuild to the
/// manifest's job root, or the log is rejected as `Corrupted`).
/// Returns the first mismatch, or `None` when every leaf agrees.
pub fn compare_window(
    manifest: &ProofManifest,
    committed: &[StepRecord],
    w: u64,
    replayed: &[StepRecord],
) -> Result<Option<Mismatch>> {
    let tree = JobTree::build(committed, manifest.window)?;
    if tree.root() != manifest.job_root {
        return Err(Error::new(
            ErrorKind::Corrupted,
            "the step log does not match the committed job root",
        )
        .with_context("job_id", manifest.job_id.to_string()));
    }
    let (start, end) = manifest
        .window_steps(w)
        .ok_or_else(|| Error::invalid("window", format!("no window {w}")))?;
    let expected = (end - start + 1) as usize;
    if replayed.len() != expected {
        return Err(Error::invalid(
            "replayed",
            format!(
                "window {w} has {expected} steps, replay gave {}",
                replayed.len()
            ),
        ));
    }
    for (k, rep) in replayed.iter().enumerate() {
        let pos = (start - manifest.first_step) + k as u64;
        let com = committed[pos as usize];
        if rep.step != com.step {
            return Err(Error::invalid(
                "replayed",
                format!("replay step {} where {} was expected", rep.step, com.step),
            ));
        }
        if rep.leaf() != com.leaf() {
            return Ok(Some(Mismatch {
                committed: com,
                replayed: *rep,
                proof: tree.prove_step(pos)?,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: u64, epoch: u32, salt: &str) -> StepRecord {
        let d = |k: &str| Blake3Digest::of(format!("{k}-{step}-{salt}").as_bytes());
        StepRecord {
            step,
            epoch,
            loss: 1.0 / step as f64,
            grad_digest: d("g"),
            weight_digest: d("w"),
            batch_digest: d("b"),
        }
    }

    fn run(n: u64, window: u32) -> ProofRecorder {
        let mut r = ProofRecorder::new(JobId::from_bytes([1; 16]), window, 1).unwrap();
        for s in 1..=n {
            r.record(&RuntimeEvent::Step(rec(s, (s / 10) as u32, "honest")))
                .unwrap();
            if s % window as u64 == 0 {
                r.record(&RuntimeEvent::Checkpoint {
                    path: format!("step-{s}.safetensors"),
                    step: s,
                })
                .unwrap();
            }
        }
        let last = rec(n, (n / 10) as u32, "honest").weight_digest;
        r.record(&RuntimeEvent::Complete {
            steps: n,
            final_weights: last,
        })
        .unwrap();
        r
    }

    #[test]
    fn manifest_and_commitment_do_not_grow_with_steps() {
        let (m, tree) = run(25, 10).finish().unwrap();
        m.validate().unwrap();
        assert_eq!(m.window_roots.len(), 3);
        assert_eq!(m.window_steps(2), Some((21, 25)));
        assert_eq!(m.checkpoint_before(2).unwrap().step, 20);
        assert!(
            m.checkpoint_before(0).is_none(),
            "window 0 replays from the initial model"
        );
        let c = m.commitment(Cid::of(b"manifest")).unwrap();
        assert_eq!((c.job_root, c.windows, c.steps), (tree.root(), 3, 25));
    }

    #[test]
    fn inconsistent_runtimes_are_refused() {
        let mut r = ProofRecorder::new(JobId::from_bytes([1; 16]), 4, 1).unwrap();
        r.record(&RuntimeEvent::Step(rec(1, 0, "x"))).unwrap();
        assert!(
            r.record(&RuntimeEvent::Step(rec(3, 0, "x")))
                .unwrap_err()
                .to_string()
                .contains("expected step 2")
        );
        r.record(&RuntimeEvent::Step(rec(2, 1, "x"))).unwrap();
        assert!(
            r.record(&RuntimeEvent::Step(rec(3, 0, "x")))
                .unwrap_err()
                .to_string()
                .contains("epoch went back")
        );
        assert!(
            r.record(&RuntimeEvent::Checkpoint {
                path: "c".into(),
                step: 5
            })
            .is_err()
        );
        assert!(r.finish().is_err(), "no complete yet");
        let e = r
            .record(&RuntimeEvent::Complete {
                steps: 9,
                final_weights: rec(2, 1, "x").weight_digest,
            })
            .unwrap_err();
        assert!(e.to_string().contains("claims 9 steps"));
        let e = r
            .record(&RuntimeEvent::Complete {
                steps: 2,
                final_weights: Blake3Digest::ZERO,
            })
            .unwrap_err();
        assert!(e.to_string().contains("final weights"));
        r.record(&RuntimeEvent::Complete {
            steps: 2,
            final_weights: rec(2, 1, "x").weight_digest,
        })
        .unwrap();
        assert!(
            r.record(&RuntimeEvent::Step(rec(3, 1, "x"))).is_err(),
            "nothing after complete"
        );
        let mut nan = rec(1, 0, "x");
        nan.loss = f64::NAN;
        let mut fresh = ProofRecorder::new(JobId::from_bytes([1; 16]), 4, 1).unwrap();
        assert!(fresh.record(&RuntimeEvent::Step(nan)).is_err());
    }

    #[test]
    fn audit_choice_is_deterministic_distinct_and_seed_dependent() {
        let job = JobId::from_bytes([5; 16]);
        let a = audit_windows(&KeccakHash::of(b"block-1"), &job, 100, 8);
        assert_eq!(a, audit_windows(&KeccakHash::of(b"block-1"), &job, 100, 8));
        assert_ne!(a, audit_windows(&KeccakHash::of(b"block-2"), &job, 100, 8));
        let mut d = a.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 8);
        assert!(a.iter().all(|w| *w < 100));
        assert_eq!(audit_windows(&KeccakHash::ZERO, &job, 3, 10).len(), 3);
    }

    #[test]
    fn replay_finds_the_faked_step_with_a_valid_proof() {
        let honest = run(25, 10);
        let (m, _) = honest.finish().unwrap();
        let log = honest.steps().to_vec();
        let replay_ok: Vec<StepRecord> = log[10..20].to_vec();
        assert_eq!(compare_window(&m, &log, 1, &replay_ok).unwrap(), None);

        // The worker faked step 15 (committed) — the honest replay differs there.
        let mut faked_log = log.clone();
        faked_log[14] = rec(15, 1, "faked");
        let (fm, _) = {
            let mut r = ProofRecorder::new(JobId::from_bytes([1; 16]), 10, 1).unwrap();
            for s in &faked_log {
                r.record(&RuntimeEvent::Step(*s)).unwrap();
            }
            r.record(&RuntimeEvent::Complete {
                steps: 25,
                final_weights: faked_log[24].weight_digest,
            })
            .unwrap();
            r.finish().unwrap()
        };
        let mm = compare_window(&fm, &faked_log, 1, &replay_ok)
            .unwrap()
            .unwrap();
        assert_eq!(mm.committed.step, 15);
        assert!(mm.proof.verify(&fm.job_root, &mm.committed.leaf()));
        assert!(!mm.proof.verify(&fm.job_root, &mm.replayed.leaf()));

        // A log that does not match the commitment is rejected outright.
        let e = compare_window(&m, &faked_log, 1, &replay_ok).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        assert!(compare_window(&m, &log, 1, &replay_ok[..3]).is_err());
        assert!(compare_window(&m, &log, 7, &replay_ok).is_err());
    }

    #[test]
    fn detection_figure_in_the_docs_holds() {
        let p = artha_core::proof::detection_probability(0.25, 8);
        assert!((p - 0.8999).abs() < 1e-3, "{p}");
    }
}
