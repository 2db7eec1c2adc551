//! Property tests: parsing round-trips, Merkle proofs, encoding stability.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use artha_core::merkle::{MerkleTree, leaf_hash};
use artha_core::{
    Amount, ArthaUri, Blake3Digest, Cid, CompleteRecord, InferRecord, JobId, KeccakHash, StepRecord,
};
use proptest::prelude::*;

fn digest() -> impl Strategy<Value = Blake3Digest> {
    any::<[u8; 32]>().prop_map(Blake3Digest::from_bytes)
}

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_. -]{1,20}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

proptest! {
    #[test]
    fn cid_text_round_trips(bytes in any::<[u8; 32]>()) {
        let cid = Cid::from_digest(Blake3Digest::from_bytes(bytes));
        let text = cid.to_string();
        prop_assert_eq!(text.len(), Cid::TEXT_LEN);
        prop_assert_eq!(text.parse::<Cid>().unwrap(), cid);
        let json = serde_json::to_string(&cid).unwrap();
        prop_assert_eq!(serde_json::from_str::<Cid>(&json).unwrap(), cid);
    }

    #[test]
    fn cid_parse_never_panics_and_is_canonical(s in "\\PC{0,80}") {
        if let Ok(cid) = s.parse::<Cid>() {
            prop_assert_eq!(cid.to_string(), s);
        }
    }

    #[test]
    fn uri_round_trips(bytes in any::<[u8; 32]>(), segs in proptest::collection::vec(segment(), 0..6)) {
        let cid = Cid::from_digest(Blake3Digest::from_bytes(bytes));
        let path = segs.join("/");
        let uri = ArthaUri::with_path(cid, &path).unwrap();
        let text = uri.to_string();
        let back: ArthaUri = text.parse().unwrap();
        prop_assert_eq!(&back, &uri);
        prop_assert_eq!(back.segments().count(), segs.len());
    }

    #[test]
    fn uri_parse_never_panics_and_is_canonical(tail in "\\PC{0,60}") {
        let s = format!("artha://{}/{}", Cid::of(b"x"), tail);
        if let Ok(uri) = s.parse::<ArthaUri>() {
            prop_assert_eq!(uri.to_string(), s);
            prop_assert!(uri.segments().all(|seg| seg != ".." && seg != "." && !seg.is_empty()));
        }
    }

    #[test]
    fn ids_round_trip(bytes in any::<[u8; 16]>()) {
        let id = JobId::from_bytes(bytes);
        prop_assert_eq!(id.to_string().parse::<JobId>().unwrap(), id);
    }

    #[test]
    fn amounts_round_trip(wei in any::<u128>()) {
        let a = Amount::from_wei(wei);
        prop_assert_eq!(a.to_string().parse::<Amount>().unwrap(), a);
        prop_assert_eq!(format!("{wei} wei").parse::<Amount>().unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), a);
    }

    #[test]
    fn step_encoding_is_stable(step in any::<u64>(), epoch in any::<u32>(),
                               loss in proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL,
                               g in digest(), w in digest(), b in digest()) {
        let r = StepRecord { step, epoch, loss, grad_digest: g, weight_digest: w, batch_digest: b };
        let enc = r.encode();
        prop_assert_eq!(enc.len(), 117);
        prop_assert_eq!(enc[0], 1);
        prop_assert_eq!(&enc[1..9], &step.to_le_bytes());
        let back = StepRecord::decode(&enc).unwrap();
        prop_assert_eq!(back.loss.to_bits(), loss.to_bits());
        prop_assert_eq!(back.encode(), enc);
        prop_assert_eq!(r.leaf(), leaf_hash(&enc));
    }

    #[test]
    fn other_encodings_round_trip(a in digest(), b in digest(), steps in any::<u64>(), secs in any::<u64>()) {
        let i = InferRecord { input_digest: a, output_digest: b };
        prop_assert_eq!(InferRecord::decode(&i.encode()).unwrap(), i);
        let c = CompleteRecord { steps, gpu_seconds: secs, final_weights: a };
        prop_assert_eq!(CompleteRecord::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn decode_rejects_garbage_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = StepRecord::decode(&bytes);
        let _ = InferRecord::decode(&bytes);
        let _ = CompleteRecord::decode(&bytes);
    }

    #[test]
    fn merkle_proofs_verify_and_detect_tampering(n in 1usize..70, pick in any::<prop::sample::Index>(),
                                                 flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let leaves: Vec<KeccakHash> = (0..n as u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let tree = MerkleTree::from_leaves(leaves.clone()).unwrap();
        let i = pick.index(n);
        let proof = tree.proof(i as u64).unwrap();
        prop_assert!(proof.verify(&tree.root(), &leaves[i]));
        prop_assert!(proof.siblings.len() <= 64 - (n as u64).leading_zeros() as usize);
        if !proof.siblings.is_empty() {
            let mut bad = proof.clone();
            let k = flip.index(bad.siblings.len());
            let mut b = *bad.siblings[k].as_bytes();
            b[0] ^= 1 << bit;
            bad.siblings[k] = KeccakHash::from_bytes(b);
            prop_assert!(!bad.verify(&tree.root(), &leaves[i]));
        }
        let mut wrong_count = proof.clone();
        wrong_count.leaf_count += 1;
        // A different leaf count changes the shape; it must not verify unless the
        // path happens to be identical (never for the last leaf of an odd level).
        if wrong_count.verify(&tree.root(), &leaves[i]) {
            prop_assert!(i + 1 < n);
        }
    }
}
