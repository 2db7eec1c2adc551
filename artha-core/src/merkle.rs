//! keccak256 Merkle trees that a contract can check.
//!
//! - Leaf: `keccak256(0x00 ‖ record encoding)` ([`leaf_hash`]).
//! - Interior node: `keccak256(0x01 ‖ left ‖ right)` ([`node_hash`]).
//!   The distinct prefixes stop a leaf from being passed off as a node.
//! - Shape: built level by level, pairing adjacent nodes left to right; an
//!   unpaired last node is promoted unchanged to the next level. The root of
//!   one leaf is that leaf. There is no root of zero leaves.
//! - Inclusion proof: sibling hashes bottom-up. Verification takes the leaf
//!   index and the leaf count: at a level of `n` nodes, the last node of an
//!   odd level is promoted (no sibling consumed); otherwise the sibling is
//!   at `index ^ 1`. Then `index >>= 1`, `n = (n + 1) / 2`. A proof must use
//!   exactly all its siblings.
//!
//! Proofs of training use two levels: a **window root** is the tree over one
//! window's step leaves, and the **job root** is the same construction over
//! the window roots taken directly as level-0 nodes ([`JobTree`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::hash::KeccakHash;
use crate::proof::StepRecord;

/// Prefix of a leaf preimage.
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior-node preimage.
pub const NODE_PREFIX: u8 = 0x01;

/// `keccak256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> KeccakHash {
    KeccakHash::of_parts(&[&[LEAF_PREFIX], data])
}

/// `keccak256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &KeccakHash, right: &KeccakHash) -> KeccakHash {
    KeccakHash::of_parts(&[&[NODE_PREFIX], left.as_bytes(), right.as_bytes()])
}

/// A complete tree: every level kept, so proofs are cheap to cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` are the leaves; the last level holds the root alone.
    levels: Vec<Vec<KeccakHash>>,
}

/// A proof that a leaf sits at `index` of a tree of `leaf_count` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf, from 0.
    pub index: u64,
    /// Leaves in the tree.
    pub leaf_count: u64,
    /// Sibling hashes, bottom-up.
    pub siblings: Vec<KeccakHash>,
}

impl MerkleTree {
    /// Builds the tree over `leaves` (already hashed); an error when empty.
    pub fn from_leaves(leaves: Vec<KeccakHash>) -> Result<Self> {
        if leaves.is_empty() {
            return Err(Error::invalid(
                "leaves",
                "a Merkle tree needs at least one leaf",
            ));
        }
        let mut levels = vec![leaves];
        while let Some(level) = levels.last().filter(|l| l.len() > 1) {
            let next: Vec<KeccakHash> = level
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => node_hash(l, r),
                    [only] => *only,
                    _ => unreachable!("chunks(2) yields one or two items"),
                })
                .collect();
            levels.push(next);
        }
        Ok(MerkleTree { levels })
    }

    /// Builds the tree over the leaves of `records`.
    pub fn from_steps(records: &[StepRecord]) -> Result<Self> {
        Self::from_leaves(records.iter().map(StepRecord::leaf).collect())
    }

    /// The root.
    pub fn root(&self) -> KeccakHash {
        // `from_leaves` guarantees a non-empty last level.
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(KeccakHash::ZERO)
    }

    /// Number of leaves.
    pub fn leaf_count(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// The leaves.
    pub fn leaves(&self) -> &[KeccakHash] {
        &self.levels[0]
    }

    /// The inclusion proof of leaf `index`.
    pub fn proof(&self, index: u64) -> Result<MerkleProof> {
        if index >= self.leaf_count() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "leaf {index} is outside a tree of {} leaves",
                    self.leaf_count()
                ),
            )
            .with_context("field", "index"));
        }
        let mut siblings = Vec::new();
        let mut i = index as usize;
        for level in &self.levels[..self.levels.len() - 1] {
            let n = level.len();
            if !(i == n - 1 && n % 2 == 1) {
                siblings.push(level[i ^ 1]);
            }
            i >>= 1;
        }
        Ok(MerkleProof {
            index,
            leaf_count: self.leaf_count(),
            siblings,
        })
    }
}

impl MerkleProof {
    /// The root this proof and `leaf` lead to, or `None` when the proof is
    /// malformed (index out of range, too few or too many siblings).
    pub fn compute_root(&self, leaf: &KeccakHash) -> Option<KeccakHash> {
        if self.leaf_count == 0 || self.index >= self.leaf_count {
            return None;
        }
        let mut hash = *leaf;
        let mut index = self.index;
        let mut n = self.leaf_count;
        let mut siblings = self.siblings.iter();
        while n > 1 {
            if !(index == n - 1 && n % 2 == 1) {
                let sib = siblings.next()?;
                hash = if index.is_multiple_of(2) {
                    node_hash(&hash, sib)
                } else {
                    node_hash(sib, &hash)
                };
            }
            index >>= 1;
            n = n.div_ceil(2);
        }
        if siblings.next().is_some() {
            return None;
        }
        Some(hash)
    }

    /// Whether `leaf` is at `self.index` of the tree with `root`.
    pub fn verify(&self, root: &KeccakHash, leaf: &KeccakHash) -> bool {
        self.compute_root(leaf).as_ref() == Some(root)
    }
}

/// The two-level commitment of a training job: step leaves grouped into
/// windows of `window` steps, a tree per window, and a tree over the
/// window roots whose root is committed on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTree {
    window: u32,
    windows: Vec<MerkleTree>,
    top: MerkleTree,
}

/// Where a step sits in a [`JobTree`] and how to prove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepProof {
    /// Window index, from 0.
    pub window_index: u64,
    /// Root of that window.
    pub window_root: KeccakHash,
    /// Proof of the window root in the job tree.
    pub window_proof: MerkleProof,
    /// Proof of the step leaf in the window tree.
    pub step_proof: MerkleProof,
}

impl JobTree {
    /// Groups `records` (in step order) into windows of `window` steps and
    /// builds both levels.
    pub fn build(records: &[StepRecord], window: u32) -> Result<Self> {
        if records.is_empty() {
            return Err(Error::invalid(
                "records",
                "a job tree needs at least one step",
            ));
        }
        Self::from_step_leaves(records.iter().map(StepRecord::leaf).collect(), window)
    }

    /// [`build`](Self::build) from the step leaves (already hashed, in step
    /// order): what a verifier holding only leaves (a browser, a contract
    /// mirror) uses to recompute the window roots and the job root.
    pub fn from_step_leaves(leaves: Vec<KeccakHash>, window: u32) -> Result<Self> {
        if window == 0 {
            return Err(Error::invalid("proof_window", "must be ≥ 1"));
        }
        if leaves.is_empty() {
            return Err(Error::invalid(
                "step_leaves",
                "a job tree needs at least one step",
            ));
        }
        let windows = leaves
            .chunks(window as usize)
            .map(|w| MerkleTree::from_leaves(w.to_vec()))
            .collect::<Result<Vec<_>>>()?;
        let top = MerkleTree::from_leaves(windows.iter().map(MerkleTree::root).collect())?;
        Ok(JobTree {
            window,
            windows,
            top,
        })
    }

    /// The job root (committed on chain).
    pub fn root(&self) -> KeccakHash {
        self.top.root()
    }

    /// Steps per window.
    pub fn window_size(&self) -> u32 {
        self.window
    }

    /// The window roots, in order.
    pub fn window_roots(&self) -> &[KeccakHash] {
        self.top.leaves()
    }

    /// The tree of window `i`.
    pub fn window(&self, i: usize) -> Option<&MerkleTree> {
        self.windows.get(i)
    }

    /// The proof that step number `position` (0-based position in the
    /// records given to [`build`](Self::build)) is in the job root.
    pub fn prove_step(&self, position: u64) -> Result<StepProof> {
        let window_index = position / u64::from(self.window);
        let in_window = position % u64::from(self.window);
        let tree = self.windows.get(window_index as usize).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no step at position {position}"),
            )
        })?;
        Ok(StepProof {
            window_index,
            window_root: tree.root(),
            window_proof: self.top.proof(window_index)?,
            step_proof: tree.proof(in_window)?,
        })
    }
}

impl StepProof {
    /// Whether `leaf` is proven under `job_root`.
    pub fn verify(&self, job_root: &KeccakHash, leaf: &KeccakHash) -> bool {
        self.window_proof.index == self.window_index
            && self.step_proof.verify(&self.window_root, leaf)
            && self.window_proof.verify(job_root, &self.window_root)
    }
}

/// Checks a claim about one whole window of a job: that the steps with
/// leaves `step_leaves` (in step order) form window `window_index`, whose
/// root `window_proof` places under the committed `job_root`.
///
/// This is what an auditor (a challenger, a browser) runs after fetching a
/// window's step records: it recomputes the window root from the leaves
/// and checks its inclusion proof, so neither the window root nor the
/// window's contents are taken on trust. Returns the recomputed window
/// root. Errors name the field at fault: `step_leaves` (empty),
/// `window_proof.index` (not `window_index`), `window_proof` (malformed or
/// not leading to `job_root`); the mismatch is [`ErrorKind::Corrupted`].
///
/// ```
/// use artha_core::merkle::{JobTree, leaf_hash, verify_window};
/// let leaves: Vec<_> = (0..10u8).map(|i| leaf_hash(&[i])).collect();
/// let tree = JobTree::from_step_leaves(leaves.clone(), 4).unwrap();
/// let proof = tree.prove_step(4).unwrap().window_proof;
/// verify_window(&tree.root(), 1, &leaves[4..8], &proof).unwrap();
/// assert!(verify_window(&tree.root(), 1, &leaves[4..7], &proof).is_err());
/// ```
pub fn verify_window(
    job_root: &KeccakHash,
    window_index: u64,
    step_leaves: &[KeccakHash],
    window_proof: &MerkleProof,
) -> Result<KeccakHash> {
    if window_proof.index != window_index {
        return Err(Error::invalid(
            "window_proof.index",
            format!(
                "proof is for window {}, not window {window_index}",
                window_proof.index
            ),
        ));
    }
    let window_root = MerkleTree::from_leaves(step_leaves.to_vec())
        .map_err(|_| Error::invalid("step_leaves", "a window holds at least one step"))?
        .root();
    match window_proof.compute_root(&window_root) {
        None => Err(Error::invalid(
            "window_proof",
            format!(
                "malformed proof: index {} of {} windows with {} siblings",
                window_proof.index,
                window_proof.leaf_count,
                window_proof.siblings.len()
            ),
        )),
        Some(root) if root != *job_root => Err(Error::new(
            ErrorKind::Corrupted,
            "the window's steps do not lead to the committed job root",
        )
        .with_context("field", "window_proof")
        .with_context("job_root", job_root.to_string())
        .with_context("computed_root", root.to_string())),
        Some(_) => Ok(window_root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<KeccakHash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_le_bytes()))
            .collect()
    }

    #[test]
    fn shapes_by_hand() {
        let l = leaves(3);
        let t = MerkleTree::from_leaves(l.clone()).unwrap();
        assert_eq!(t.root(), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        let one = MerkleTree::from_leaves(leaves(1)).unwrap();
        assert_eq!(one.root(), leaves(1)[0]);
        assert!(one.proof(0).unwrap().siblings.is_empty());
        assert!(MerkleTree::from_leaves(vec![]).is_err());
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails() {
        for n in 1..=17 {
            let l = leaves(n);
            let t = MerkleTree::from_leaves(l.clone()).unwrap();
            for (i, leaf) in l.iter().enumerate() {
                let p = t.proof(i as u64).unwrap();
                assert!(p.verify(&t.root(), leaf), "n={n} i={i}");
                let other = leaf_hash(b"other");
                assert!(!p.verify(&t.root(), &other));
                let mut extra = p.clone();
                extra.siblings.push(KeccakHash::ZERO);
                assert!(!extra.verify(&t.root(), leaf));
                if n > 1 {
                    let mut moved = p.clone();
                    moved.index = (moved.index + 1) % n as u64;
                    assert!(!moved.verify(&t.root(), leaf), "n={n} i={i}");
                }
            }
            assert!(t.proof(n as u64).is_err());
        }
    }

    #[test]
    fn leaf_cannot_pose_as_node() {
        let l = leaves(2);
        let t = MerkleTree::from_leaves(l.clone()).unwrap();
        let mut preimage = l[0].as_bytes().to_vec();
        preimage.extend_from_slice(l[1].as_bytes());
        assert_ne!(leaf_hash(&preimage), t.root());
    }

    #[test]
    fn job_tree_from_leaves_matches_build_and_windows_verify() {
        let records: Vec<StepRecord> = (1..=9u64)
            .map(|step| StepRecord {
                step,
                epoch: 0,
                loss: step as f64,
                grad_digest: crate::Blake3Digest::of(&step.to_le_bytes()),
                weight_digest: crate::Blake3Digest::of(b"w"),
                batch_digest: crate::Blake3Digest::of(b"b"),
            })
            .collect();
        let leaves: Vec<KeccakHash> = records.iter().map(StepRecord::leaf).collect();
        let built = JobTree::build(&records, 4).unwrap();
        let from_leaves = JobTree::from_step_leaves(leaves.clone(), 4).unwrap();
        assert_eq!(built, from_leaves);
        assert_eq!(built.window_roots().len(), 3);
        for (w, chunk) in leaves.chunks(4).enumerate() {
            let proof = built.prove_step(w as u64 * 4).unwrap().window_proof;
            let root = verify_window(&built.root(), w as u64, chunk, &proof).unwrap();
            assert_eq!(root, built.window_roots()[w]);
            // A dropped, swapped or foreign step, a wrong index, a wrong root.
            let e = verify_window(&built.root(), w as u64, &chunk[1..], &proof);
            if chunk.len() > 1 {
                assert_eq!(e.unwrap_err().kind(), ErrorKind::Corrupted);
            }
            let mut swapped = chunk.to_vec();
            swapped[0] = leaf_hash(b"forged");
            let e = verify_window(&built.root(), w as u64, &swapped, &proof).unwrap_err();
            assert_eq!(e.context_value("field"), Some("window_proof"));
            let e = verify_window(&built.root(), w as u64 + 1, chunk, &proof).unwrap_err();
            assert_eq!(e.context_value("field"), Some("window_proof.index"));
            let e = verify_window(&built.root(), w as u64, &[], &proof).unwrap_err();
            assert_eq!(e.context_value("field"), Some("step_leaves"));
            let e = verify_window(&leaf_hash(b"x"), w as u64, chunk, &proof).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupted);
        }
        assert!(JobTree::from_step_leaves(vec![], 4).is_err());
        assert!(JobTree::from_step_leaves(leaves, 0).is_err());
    }
}
