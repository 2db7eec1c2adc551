//! The digests of a step record mean what the protocol says: the shared
//! vectors (`runtimes/vectors.json`, also checked by the Python helper)
//! match `digest.rs` and a second, independent implementation written
//! here from the spec, and a real run's weight and batch digests are those
//! of its checkpoint file and of the rows its permutation picked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use artha_core::{Blake3Digest, DType, tensor_digest};
use artha_runtime::digest::NamedDigest;
use common::{Job, blobs};
use safetensors::SafeTensors;

/// A sampled step's digest when every tensor has at most 64 elements (so
/// all are read whole), written from `runtimes/PROOFS.md`.
fn spec_sampled_whole(tensors: &[(&str, DType, Vec<u64>, Vec<u8>)]) -> Blake3Digest {
    let mut bytes = b"artha-sampled-tensors-v1\0".to_vec();
    for (name, dtype, shape, data) in tensors {
        bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(dtype.code());
        bytes.extend_from_slice(&(shape.len() as u32).to_le_bytes());
        for d in shape {
            bytes.extend_from_slice(&d.to_le_bytes());
        }
        bytes.extend_from_slice(data);
    }
    bytes.extend_from_slice(&(tensors.len() as u32).to_le_bytes());
    blake3::hash(&bytes).into()
}

/// The named-tensor digest, written from the spec in `digest.rs`.
fn spec_digest(tensors: &[(&str, DType, Vec<u64>, Vec<u8>)]) -> Blake3Digest {
    let mut bytes = b"artha-named-tensors-v1\0".to_vec();
    bytes.extend_from_slice(&(tensors.len() as u32).to_le_bytes());
    for (name, dtype, shape, data) in tensors {
        bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(tensor_digest(*dtype, shape, data).unwrap().as_bytes());
    }
    blake3::hash(&bytes).into()
}

#[test]
fn shared_vectors_match_digest_rs_and_the_spec() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(v["format"], "artha-runtime-vectors/1");
    let cases = v["named_tensors"].as_array().unwrap();
    assert!(cases.len() >= 3, "{} cases", cases.len());
    for case in cases {
        let mut ours = NamedDigest::new();
        let mut spec = Vec::new();
        for t in case["tensors"].as_array().unwrap() {
            let name = t["name"].as_str().unwrap();
            let shape: Vec<usize> = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let values = t["values"].as_array().unwrap();
            let (dtype, data) = match t["dtype"].as_str().unwrap() {
                "f32" => {
                    let vals: Vec<f32> =
                        values.iter().map(|x| x.as_f64().unwrap() as f32).collect();
                    ours.push_f32(name, &shape, &vals).unwrap();
                    (
                        DType::F32,
                        vals.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    )
                }
                "i64" => {
                    let vals: Vec<i64> = values.iter().map(|x| x.as_i64().unwrap()).collect();
                    ours.push_i64(name, &shape, &vals).unwrap();
                    (
                        DType::I64,
                        vals.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    )
                }
                other => panic!("dtype {other}"),
            };
            spec.push((name, dtype, shape.iter().map(|&d| d as u64).collect(), data));
        }
        let want = case["digest"].as_str().unwrap();
        assert_eq!(
            ours.finish().unwrap().to_string(),
            want,
            "{}",
            case["comment"]
        );
        assert_eq!(spec_digest(&spec).to_string(), want, "{}", case["comment"]);
    }
}

#[test]
fn a_runs_digests_are_those_of_its_weights_and_batches() {
    let t = blobs(31, 50, 3, 2, 2.0);
    let mut job = Job::new();
    job.data_file("train.csv", &t.csv());
    job.set(&[
        ("EPOCHS", "1"),
        ("BATCH_SIZE", "16"),
        ("ARTHA_SEED", "3"),
        ("ARTHA_HIDDEN", "5"),
    ]);
    let out = job.run_ok(&[]);
    let steps = out.steps();

    // Weight digest: the parameters in state_dict order, read from the
    // checkpoint with the safetensors crate.
    let bytes = job.checkpoint_bytes("final.safetensors");
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let names = ["fc.0.weight", "fc.0.bias", "fc.1.weight", "fc.1.bias"];
    let params: Vec<_> = names
        .iter()
        .map(|n| {
            let v = st.tensor(n).unwrap();
            let shape: Vec<u64> = v.shape().iter().map(|&d| d as u64).collect();
            (*n, DType::F32, shape, v.data().to_vec())
        })
        .collect();
    assert_eq!(params[0].2, [5, 3]);
    let weights = spec_digest(&params);
    assert_eq!(steps.last().unwrap().weight_digest, weights);
    assert_eq!(out.complete().1, weights);

    // Batch digest of step 1: rows 0..16 of epoch 0's permutation, as
    // `x` (f32 [16, 3]) and `y` (i64 [16]).
    let perm = artha_runtime::rng::permutation(3, 0, 50);
    let rows = &perm[..16];
    let x: Vec<u8> = rows
        .iter()
        .flat_map(|&i| t.x[i as usize].clone())
        .flat_map(f32::to_le_bytes)
        .collect();
    let y: Vec<u8> = rows
        .iter()
        .flat_map(|&i| (t.y[i as usize] as i64).to_le_bytes())
        .collect();
    let batch = spec_digest(&[
        ("x", DType::F32, vec![16, 3], x.clone()),
        ("y", DType::I64, vec![16], y.clone()),
    ]);
    // Step 1 is a sampled step (the default window is 100; the job's last
    // step is 4): every tensor of its batch has at most 64 elements, so the
    // sampled digest reads them all (runtimes/PROOFS.md).
    assert_eq!(
        steps[0].batch_digest,
        spec_sampled_whole(&[
            ("x", DType::F32, vec![16, 3], x),
            ("y", DType::I64, vec![16], y),
        ])
    );
    // With a window of 1 every step is full: the named-tensor digest.
    let every = job.run_with(&[], &[("ARTHA_PROOF_WINDOW", "1")]);
    every.assert_ok();
    assert_eq!(every.steps()[0].batch_digest, batch);
    // Step 4 is the short last batch: 2 rows.
    let rows = &perm[48..];
    let x: Vec<u8> = rows
        .iter()
        .flat_map(|&i| t.x[i as usize].clone())
        .flat_map(f32::to_le_bytes)
        .collect();
    let y: Vec<u8> = rows
        .iter()
        .flat_map(|&i| (t.y[i as usize] as i64).to_le_bytes())
        .collect();
    let batch = spec_digest(&[
        ("x", DType::F32, vec![2, 3], x),
        ("y", DType::I64, vec![2], y),
    ]);
    assert_eq!(steps[3].batch_digest, batch);
    // Every digest of a step differs from every other kind.
    for s in &steps {
        assert_ne!(s.grad_digest, s.weight_digest);
        assert_ne!(s.grad_digest, Blake3Digest::ZERO);
    }
}
