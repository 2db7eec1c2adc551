//! Cross-language test vectors: `tests/vectors/proofs.json`.
//!
//! The file is generated from this crate's implementation and committed;
//! the Solidity, Python and JS sides check themselves against it. Here we
//! (1) regenerate and require byte equality with the committed file, and
//! (2) independently re-check every entry of the committed file.
//!
//! To regenerate after a deliberate format change:
//! `ARTHA_BLESS_VECTORS=1 cargo test -p artha-core --test vectors`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use artha_core::merkle::{JobTree, MerkleProof, MerkleTree, leaf_hash};
use artha_core::{
    Amount, Blake3Digest, Cid, CompleteRecord, CostModel, DType, InferRecord, KeccakHash,
    StepRecord, tensor_digest,
};
use serde_json::{Value, json};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/proofs.json");

fn digest(label: &str, i: u64) -> Blake3Digest {
    Blake3Digest::of(format!("{label}-{i}").as_bytes())
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn steps() -> Vec<StepRecord> {
    let losses = [
        0.5,
        std::f64::consts::LN_10,
        -0.0,
        1e-300,
        123456.789,
        0.1,
        7.0,
        std::f64::consts::LN_2,
        3.0e10,
    ];
    (0..9u64)
        .map(|i| StepRecord {
            step: if i == 8 { (1u64 << 53) - 1 } else { i + 1 },
            epoch: (i / 4) as u32,
            loss: losses[i as usize],
            grad_digest: digest("grad", i),
            weight_digest: digest("weight", i),
            batch_digest: digest("batch", i),
        })
        .collect()
}

fn generate() -> Value {
    let step_records: Vec<Value> = steps()
        .iter()
        .map(|r| {
            json!({
                "step": r.step, "epoch": r.epoch, "loss": r.loss,
                "grad_digest": r.grad_digest, "weight_digest": r.weight_digest,
                "batch_digest": r.batch_digest,
                "encoding": hex0x(&r.encode()), "leaf": r.leaf(),
            })
        })
        .collect();
    let infer_records: Vec<Value> = (0..3u64)
        .map(|i| {
            let r = InferRecord {
                input_digest: digest("in", i),
                output_digest: digest("out", i),
            };
            json!({
                "input_digest": r.input_digest, "output_digest": r.output_digest,
                "encoding": hex0x(&r.encode()), "leaf": r.leaf(),
            })
        })
        .collect();
    let complete_records: Vec<Value> = [(10u64, 4710u64), (1_000_000, 86_400), (0, 0)]
        .iter()
        .enumerate()
        .map(|(i, &(steps, gpu_seconds))| {
            let r = CompleteRecord {
                steps,
                gpu_seconds,
                final_weights: digest("final", i as u64),
            };
            json!({
                "steps": r.steps, "gpu_seconds": r.gpu_seconds, "final_weights": r.final_weights,
                "encoding": hex0x(&r.encode()), "leaf": r.leaf(),
            })
        })
        .collect();
    let merkle: Vec<Value> = [1usize, 2, 3, 5, 8, 13]
        .iter()
        .map(|&n| {
            let leaves: Vec<KeccakHash> = (0..n as u64)
                .map(|i| leaf_hash(format!("leaf-{n}-{i}").as_bytes()))
                .collect();
            let tree = MerkleTree::from_leaves(leaves.clone()).unwrap();
            let proofs: Vec<Value> = (0..n as u64)
                .map(|i| {
                    let p = tree.proof(i).unwrap();
                    json!({ "index": p.index, "siblings": p.siblings })
                })
                .collect();
            json!({ "leaves": leaves, "root": tree.root(), "proofs": proofs })
        })
        .collect();
    let records = steps();
    let jt = JobTree::build(&records, 4).unwrap();
    let job_trees = vec![json!({
        "window": 4,
        "step_leaves": records.iter().map(StepRecord::leaf).collect::<Vec<_>>(),
        "window_roots": jt.window_roots(),
        "job_root": jt.root(),
    })];
    let cids: Vec<Value> = [&b""[..], b"artha", &[0u8; 1025][..]]
        .iter()
        .map(|d| json!({ "data_hex": hex::encode(d), "cid": Cid::of(d) }))
        .collect();
    let f32s: Vec<u8> = [1.0f32, -2.5, 0.0, 3.25, f32::MIN_POSITIVE, 1e30]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let f64s: Vec<u8> = [0.5f64, -1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let i64s: Vec<u8> = [7i64, -7, i64::MAX]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let tensors: Vec<Value> = [
        (DType::F32, vec![2u64, 3], f32s),
        (DType::F64, vec![2], f64s),
        (DType::I64, vec![3, 1], i64s),
        (DType::U8, vec![0], vec![]),
        (DType::F32, vec![], 1.5f32.to_le_bytes().to_vec()),
    ]
    .into_iter()
    .map(|(dtype, shape, data)| {
        json!({
            "dtype": dtype, "shape": shape, "data_hex": hex::encode(&data),
            "digest": tensor_digest(dtype, &shape, &data).unwrap(),
        })
    })
    .collect();
    let money: Vec<Value> = [
        (4710u64, 1_000_000_000_000_000u128),
        (1, 1),
        (86_400 * 8, 2_500_000_000_000),
    ]
    .iter()
    .map(|&(s, rate)| {
        let cost = CostModel::new(Amount::from_wei(rate)).cost(s).unwrap();
        json!({ "gpu_seconds": s, "rate_wei": rate.to_string(), "cost_wei": cost.wei().to_string(),
                    "cost": cost })
    })
    .collect();
    json!({
        "format": "artha-proof-vectors/1",
        "encoding": "integers little endian; leaf = keccak256(0x00 || record); node = keccak256(0x01 || left || right); unpaired last node promoted",
        "step_records": step_records,
        "infer_records": infer_records,
        "complete_records": complete_records,
        "merkle": merkle,
        "job_trees": job_trees,
        "cids": cids,
        "tensors": tensors,
        "money": money,
    })
}

fn committed() -> Value {
    let text = std::fs::read_to_string(PATH).expect("vectors file exists");
    serde_json::from_str(&text).expect("vectors file is JSON")
}

#[test]
fn committed_vectors_match_the_implementation() {
    let fresh = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("ARTHA_BLESS_VECTORS").is_some() {
        std::fs::write(PATH, &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(PATH)
        .expect("run with ARTHA_BLESS_VECTORS=1 to create the vectors file");
    assert!(
        on_disk == fresh,
        "tests/vectors/proofs.json differs from the implementation: the canonical encoding changed. \
         If deliberate, regenerate with ARTHA_BLESS_VECTORS=1 and update Solidity/Python/JS."
    );
}

fn s(v: &Value) -> &str {
    v.as_str().expect("string")
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(s(v).trim_start_matches("0x")).expect("hex")
}

#[test]
fn every_committed_entry_checks_out() {
    let v = committed();
    assert_eq!(v["format"], "artha-proof-vectors/1");
    for e in v["step_records"].as_array().unwrap() {
        let rec = StepRecord::decode(&bytes(&e["encoding"])).unwrap();
        assert_eq!(rec.step, e["step"].as_u64().unwrap());
        assert_eq!(rec.epoch as u64, e["epoch"].as_u64().unwrap());
        assert_eq!(rec.loss.to_bits(), e["loss"].as_f64().unwrap().to_bits());
        assert_eq!(rec.grad_digest, s(&e["grad_digest"]).parse().unwrap());
        assert_eq!(rec.leaf(), s(&e["leaf"]).parse().unwrap());
        assert_eq!(leaf_hash(&bytes(&e["encoding"])), rec.leaf());
    }
    for e in v["infer_records"].as_array().unwrap() {
        let rec = InferRecord::decode(&bytes(&e["encoding"])).unwrap();
        assert_eq!(rec.leaf(), s(&e["leaf"]).parse().unwrap());
    }
    for e in v["complete_records"].as_array().unwrap() {
        let rec = CompleteRecord::decode(&bytes(&e["encoding"])).unwrap();
        assert_eq!(rec.gpu_seconds, e["gpu_seconds"].as_u64().unwrap());
        assert_eq!(rec.leaf(), s(&e["leaf"]).parse().unwrap());
    }
    for case in v["merkle"].as_array().unwrap() {
        let leaves: Vec<KeccakHash> = case["leaves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| s(l).parse().unwrap())
            .collect();
        let root: KeccakHash = s(&case["root"]).parse().unwrap();
        assert_eq!(
            MerkleTree::from_leaves(leaves.clone()).unwrap().root(),
            root
        );
        for p in case["proofs"].as_array().unwrap() {
            let proof = MerkleProof {
                index: p["index"].as_u64().unwrap(),
                leaf_count: leaves.len() as u64,
                siblings: p["siblings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| s(x).parse().unwrap())
                    .collect(),
            };
            assert!(proof.verify(&root, &leaves[proof.index as usize]));
        }
    }
    for jt in v["job_trees"].as_array().unwrap() {
        let wr: Vec<KeccakHash> = jt["window_roots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| s(x).parse().unwrap())
            .collect();
        let top = MerkleTree::from_leaves(wr).unwrap();
        assert_eq!(top.root(), s(&jt["job_root"]).parse().unwrap());
    }
    for c in v["cids"].as_array().unwrap() {
        assert_eq!(
            Cid::of(&bytes(&c["data_hex"])),
            s(&c["cid"]).parse().unwrap()
        );
    }
    for t in v["tensors"].as_array().unwrap() {
        let dtype: DType = serde_json::from_value(t["dtype"].clone()).unwrap();
        let shape: Vec<u64> = serde_json::from_value(t["shape"].clone()).unwrap();
        let d = tensor_digest(dtype, &shape, &bytes(&t["data_hex"])).unwrap();
        assert_eq!(d, s(&t["digest"]).parse().unwrap());
    }
    for m in v["money"].as_array().unwrap() {
        let rate: u128 = s(&m["rate_wei"]).parse().unwrap();
        let cost = CostModel::new(Amount::from_wei(rate))
            .cost(m["gpu_seconds"].as_u64().unwrap())
            .unwrap();
        assert_eq!(cost.wei().to_string(), s(&m["cost_wei"]));
    }
    // The seed example from the design: 4 710 GPU-s × 0.001 ARTH = 4.71 ARTH.
    assert_eq!(v["money"][0]["cost_wei"], "4710000000000000000");
    assert_eq!(v["money"][0]["cost"], "4.71 ARTH");
}
