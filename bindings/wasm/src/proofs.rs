//! Proof records, Merkle trees and job trees.

use artha_core::merkle::{self, JobTree, MerkleProof, MerkleTree, StepProof, leaf_hash};
use artha_core::{CompleteRecord, InferRecord, StepRecord};
use js_sys::Uint8Array;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::convert::{JsResult, bytes, js_error, keccak, keccaks, object, to_js, whole};

/// Encoding, decoding and leaf of one record type. The doc strings are
/// literals so that wasm-bindgen copies them into the `.d.ts`.
macro_rules! record_api {
    ($t:ty, $ts:literal,
     $encode:ident, $encode_js:literal, $encode_doc:literal,
     $decode:ident, $decode_js:literal, $decode_doc:literal,
     $leaf:ident, $leaf_js:literal, $leaf_doc:literal) => {
        #[doc = $encode_doc]
        #[wasm_bindgen(js_name = $encode_js)]
        pub fn $encode(
            #[wasm_bindgen(unchecked_param_type = $ts)] record: JsValue,
        ) -> JsResult<Uint8Array> {
            let r: $t = object("record", record)?;
            Ok(Uint8Array::from(&r.encode()[..]))
        }

        #[doc = $decode_doc]
        #[wasm_bindgen(js_name = $decode_js, unchecked_return_type = $ts)]
        pub fn $decode(
            #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] encoding: JsValue,
        ) -> JsResult<JsValue> {
            let b = bytes("encoding", &encoding)?;
            let r = <$t>::decode(&b)
                .map_err(|e| crate::convert::js_error_with_field(&e, "encoding"))?;
            to_js(&r)
        }

        #[doc = $leaf_doc]
        #[wasm_bindgen(js_name = $leaf_js)]
        pub fn $leaf(
            #[wasm_bindgen(unchecked_param_type = $ts)] record: JsValue,
        ) -> JsResult<String> {
            let r: $t = object("record", record)?;
            Ok(r.leaf().to_string())
        }
    };
}

record_api!(
    StepRecord,
    "{ step: number, epoch: number, loss: number, grad_digest: string, weight_digest: string, batch_digest: string }",
    encode_step_record,
    "encodeStepRecord",
    "The canonical encoding (117 bytes) of a step record given in its JSON form.",
    decode_step_record,
    "decodeStepRecord",
    "The step record (JSON form) of a canonical encoding; throws naming `encoding` when its length or tag is wrong.",
    step_record_leaf,
    "stepRecordLeaf",
    "The Merkle leaf (`0x…`) of a step record: keccak256(0x00 ‖ encoding)."
);
record_api!(
    InferRecord,
    "{ input_digest: string, output_digest: string }",
    encode_infer_record,
    "encodeInferRecord",
    "The canonical encoding (65 bytes) of an inference record given in its JSON form.",
    decode_infer_record,
    "decodeInferRecord",
    "The inference record (JSON form) of a canonical encoding; throws naming `encoding` when its length or tag is wrong.",
    infer_record_leaf,
    "inferRecordLeaf",
    "The Merkle leaf (`0x…`) of an inference record: keccak256(0x00 ‖ encoding)."
);
record_api!(
    CompleteRecord,
    "{ steps: number, gpu_seconds: number, final_weights: string }",
    encode_complete_record,
    "encodeCompleteRecord",
    "The canonical encoding (49 bytes) of a completion record given in its JSON form.",
    decode_complete_record,
    "decodeCompleteRecord",
    "The completion record (JSON form) of a canonical encoding; throws naming `encoding` when its length or tag is wrong.",
    complete_record_leaf,
    "completeRecordLeaf",
    "The Merkle leaf (`0x…`) of a completion record: keccak256(0x00 ‖ encoding)."
);

/// `keccak256(0x00 ‖ data)` (`0x…`): the leaf of an encoded record.
#[wasm_bindgen(js_name = leafHash)]
pub fn leaf_hash_js(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] data: JsValue,
) -> JsResult<String> {
    Ok(leaf_hash(&bytes("data", &data)?).to_string())
}

fn tree(field: &str, leaves: &JsValue) -> JsResult<MerkleTree> {
    MerkleTree::from_leaves(keccaks(field, leaves)?)
        .map_err(|e| crate::convert::invalid(field, e.message()))
}

/// The root of the Merkle tree over `leaves` (array of `0x…` hashes, at
/// least one).
#[wasm_bindgen(js_name = merkleRoot)]
pub fn merkle_root(
    #[wasm_bindgen(unchecked_param_type = "string[]")] leaves: JsValue,
) -> JsResult<String> {
    Ok(tree("leaves", &leaves)?.root().to_string())
}

/// The inclusion proof `{ index, leaf_count, siblings }` of leaf `index`.
#[wasm_bindgen(js_name = merkleProof, unchecked_return_type = "{ index: number, leaf_count: number, siblings: string[] }")]
pub fn merkle_proof(
    #[wasm_bindgen(unchecked_param_type = "string[]")] leaves: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] index: JsValue,
) -> JsResult<JsValue> {
    let t = tree("leaves", &leaves)?;
    let index = whole("index", &index, u64::MAX)?;
    to_js(&t.proof(index).map_err(|e| js_error(&e))?)
}

/// Whether `proof` (`{ index, leaf_count, siblings }`) places `leaf` under
/// `root`. A proof of the wrong shape (index out of range, too few or too
/// many siblings) is `false`; a value that is not a proof or a hash throws.
#[wasm_bindgen(js_name = verifyMerkleProof)]
pub fn verify_merkle_proof(
    #[wasm_bindgen(unchecked_param_type = "string")] leaf: JsValue,
    #[wasm_bindgen(
        unchecked_param_type = "{ index: number, leaf_count: number, siblings: string[] }"
    )]
    proof: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] root: JsValue,
) -> JsResult<bool> {
    let leaf = keccak("leaf", &leaf)?;
    let proof: MerkleProof = object("proof", proof)?;
    let root = keccak("root", &root)?;
    Ok(proof.verify(&root, &leaf))
}

/// What [`job_tree`] returns.
#[derive(Debug, Serialize)]
struct JobTreeView {
    window: u32,
    window_roots: Vec<artha_core::KeccakHash>,
    job_root: artha_core::KeccakHash,
}

fn build_job_tree(step_leaves: &JsValue, window: &JsValue) -> JsResult<JobTree> {
    let leaves = keccaks("stepLeaves", step_leaves)?;
    let window = whole("window", window, u64::from(u32::MAX))? as u32;
    JobTree::from_step_leaves(leaves, window).map_err(|e| {
        let field = match e.context_value("field") {
            Some("proof_window") => "window",
            _ => "stepLeaves",
        };
        crate::convert::invalid(field, e.message())
    })
}

/// The two-level tree of a training job over its step leaves (in step
/// order) grouped `window` at a time: `{ window, window_roots, job_root }`;
/// `job_root` is what the job commits on chain.
#[wasm_bindgen(
    js_name = jobTree,
    unchecked_return_type = "{ window: number, window_roots: string[], job_root: string }"
)]
pub fn job_tree(
    #[wasm_bindgen(unchecked_param_type = "string[]", js_name = stepLeaves)] step_leaves: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] window: JsValue,
) -> JsResult<JsValue> {
    let t = build_job_tree(&step_leaves, &window)?;
    to_js(&JobTreeView {
        window: t.window_size(),
        window_roots: t.window_roots().to_vec(),
        job_root: t.root(),
    })
}

/// The proof that the step at `position` (from 0) is under the job root:
/// `{ window_index, window_root, window_proof, step_proof }`.
#[wasm_bindgen(js_name = proveStep, unchecked_return_type = "{ window_index: number, window_root: string, window_proof: { index: number, leaf_count: number, siblings: string[] }, step_proof: { index: number, leaf_count: number, siblings: string[] } }")]
pub fn prove_step(
    #[wasm_bindgen(unchecked_param_type = "string[]", js_name = stepLeaves)] step_leaves: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] window: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] position: JsValue,
) -> JsResult<JsValue> {
    let t = build_job_tree(&step_leaves, &window)?;
    let position = whole("position", &position, u64::MAX)?;
    let proof = t
        .prove_step(position)
        .map_err(|e| crate::convert::invalid("position", e.message()))?;
    to_js(&proof)
}

/// Whether `stepProof` (as [`prove_step`] returns) places the step leaf
/// `leaf` under `jobRoot`.
#[wasm_bindgen(js_name = verifyStepProof)]
pub fn verify_step_proof(
    #[wasm_bindgen(unchecked_param_type = "string")] leaf: JsValue,
    #[wasm_bindgen(
        unchecked_param_type = "{ window_index: number, window_root: string, window_proof: { index: number, leaf_count: number, siblings: string[] }, step_proof: { index: number, leaf_count: number, siblings: string[] } }"
    )]
    step_proof: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string", js_name = jobRoot)] job_root: JsValue,
) -> JsResult<bool> {
    let leaf = keccak("leaf", &leaf)?;
    let proof: StepProof = object("stepProof", step_proof)?;
    let root = keccak("jobRoot", &job_root)?;
    Ok(proof.verify(&root, &leaf))
}

/// Checks a claim about one whole window: the steps with leaves
/// `stepLeaves` are window `windowIndex`, and `windowProof` places their
/// root under the committed `jobRoot`. Returns the window root; throws
/// `corrupted` (field `windowProof`) when the steps do not lead to the
/// root, `invalid_input` naming `windowProof.index`, `windowProof` or
/// `stepLeaves` when the claim is malformed.
#[wasm_bindgen(js_name = verifyWindow)]
pub fn verify_window(
    #[wasm_bindgen(unchecked_param_type = "string", js_name = jobRoot)] job_root: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number", js_name = windowIndex)] window_index: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string[]", js_name = stepLeaves)] step_leaves: JsValue,
    #[wasm_bindgen(
        unchecked_param_type = "{ index: number, leaf_count: number, siblings: string[] }"
    )]
    window_proof: JsValue,
) -> JsResult<String> {
    let root = keccak("jobRoot", &job_root)?;
    let index = whole("windowIndex", &window_index, u64::MAX)?;
    let leaves = keccaks("stepLeaves", &step_leaves)?;
    let proof: MerkleProof = object("windowProof", window_proof)?;
    merkle::verify_window(&root, index, &leaves, &proof)
        .map(|r| r.to_string())
        .map_err(|e| {
            // The core names its parameters; JavaScript sees its own.
            let field = match e.context_value("field") {
                Some("step_leaves") => "stepLeaves",
                Some("window_proof.index") => "windowProof.index",
                _ => "windowProof",
            };
            crate::convert::js_error_with_field(&e, field)
        })
}

/// Checks a step log (the 117-byte encodings of a job's step records,
/// concatenated, as the node publishes it) against the chain's commitment:
/// `steps` records whose tree of `window`-step windows has root `jobRoot`
/// (`artha_core::audit::verify_step_log`). Returns the records (JSON form).
/// Throws `invalid_input` naming `stepLog` for a malformed log and
/// `corrupted` naming `stepLog` when it is not the committed one.
#[wasm_bindgen(js_name = verifyStepLog, unchecked_return_type = "object[]")]
pub fn verify_step_log(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer", js_name = stepLog)]
    step_log: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] window: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string", js_name = jobRoot)] job_root: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] steps: JsValue,
) -> JsResult<JsValue> {
    let log = bytes("stepLog", &step_log)?;
    let window = whole("window", &window, u64::from(u32::MAX))? as u32;
    let root = keccak("jobRoot", &job_root)?;
    let steps = whole("steps", &steps, u64::MAX)?;
    let records = artha_core::audit::verify_step_log(&log, window, &root, steps)
        .map_err(|e| crate::convert::js_error_with_field(&e, "stepLog"))?;
    to_js(&records)
}

/// The windows an audit replays: `min(count, windows)` distinct indices
/// drawn from the chain's audit seed (`0x…`) and the job (`job-…`), the
/// same as `ProofOfCompute.auditWindows`.
#[wasm_bindgen(js_name = auditWindows, unchecked_return_type = "number[]")]
pub fn audit_windows(
    #[wasm_bindgen(unchecked_param_type = "string")] seed: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string", js_name = jobId)] job_id: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] windows: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] count: JsValue,
) -> JsResult<JsValue> {
    let seed = keccak("seed", &seed)?;
    let job: artha_core::JobId = crate::convert::string("jobId", &job_id)?
        .parse()
        .map_err(|e: artha_core::Error| crate::convert::js_error_with_field(&e, "jobId"))?;
    let windows = whole("windows", &windows, u64::from(u32::MAX))?;
    let count = whole("count", &count, u64::from(u32::MAX))?;
    if windows == 0 {
        return Err(crate::convert::invalid("windows", "must be ≥ 1"));
    }
    to_js(&artha_core::audit::audit_windows(
        &seed,
        job.as_bytes(),
        windows,
        count,
    ))
}
