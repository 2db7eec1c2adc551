//! `arthapy.core`: the pure part (`artha-core`) — content ids, spec
//! validation, the canonical proof records, Merkle and window proofs,
//! did:key credentials — for checking what an engine, a node or a chain
//! claims without an engine. The same functions as `artha-wasm`.

use artha_core::merkle::{JobTree, MerkleProof, MerkleTree, leaf_hash, verify_window};
use artha_core::{
    Amount, Cid, CompleteRecord, CostModel, DType, InferRecord, JobSpec, KeccakHash,
    SignedCredential, StepRecord, tensor_digest,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{from_py, parse, to_exception, to_py};

fn hashes(py: Python<'_>, field: &str, items: Vec<String>) -> PyResult<Vec<KeccakHash>> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| parse::<KeccakHash>(py, &format!("{field}[{i}]"), s))
        .collect()
}

/// cid(data: bytes) -> str
///
/// The content id (`b3:` + hex BLAKE3) of `data`, as the store names a
/// one-chunk blob.
#[pyfunction]
fn cid(data: &[u8]) -> String {
    Cid::of(data).to_string()
}

/// tensor_digest(data: bytes, dtype: str, shape: list[int]) -> str
///
/// The digest of a tensor's little-endian bytes with its dtype and shape,
/// as runtimes record weights and gradients.
#[pyfunction]
#[pyo3(name = "tensor_digest")]
fn tensor_digest_of(
    py: Python<'_>,
    data: &[u8],
    dtype: &Bound<'_, PyAny>,
    shape: Vec<u64>,
) -> PyResult<String> {
    let dtype: DType = from_py("dtype", dtype)?;
    tensor_digest(dtype, &shape, data)
        .map(|d| d.to_string())
        .map_err(|e| to_exception(py, &e))
}

/// record_leaf(kind: str, record: dict[str, Any]) -> dict[str, str]
///
/// The canonical encoding (`0x…`) and Merkle leaf of a proof record of
/// `kind` `step`, `infer` or `complete`.
#[pyfunction]
fn record_leaf(py: Python<'_>, kind: &str, record: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let (encoding, leaf) = match kind {
        "step" => {
            let r: StepRecord = from_py("record", record)?;
            r.validate().map_err(|e| to_exception(py, &e))?;
            (r.encode().to_vec(), r.leaf())
        }
        "infer" => {
            let r: InferRecord = from_py("record", record)?;
            (r.encode().to_vec(), r.leaf())
        }
        "complete" => {
            let r: CompleteRecord = from_py("record", record)?;
            (r.encode().to_vec(), r.leaf())
        }
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "kind: `{other}` is not one of step, infer, complete"
            )));
        }
    };
    let out = PyDict::new(py);
    out.set_item("encoding", format!("0x{}", hex_of(&encoding)))?;
    out.set_item("leaf", leaf.to_string())?;
    Ok(out.into_any().unbind())
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// leaf_hash(data: bytes) -> str
///
/// keccak256 leaf of raw bytes, as the contracts hash leaves.
#[pyfunction]
#[pyo3(name = "leaf_hash")]
fn leaf(data: &[u8]) -> String {
    leaf_hash(data).to_string()
}

/// merkle_root(leaves: list[str]) -> str
///
/// The root of the keccak Merkle tree over `leaves` (`0x…` each).
#[pyfunction]
fn merkle_root(py: Python<'_>, leaves: Vec<String>) -> PyResult<String> {
    let tree =
        MerkleTree::from_leaves(hashes(py, "leaves", leaves)?).map_err(|e| to_exception(py, &e))?;
    Ok(tree.root().to_string())
}

/// merkle_proof(leaves: list[str], index: int) -> dict[str, Any]
///
/// The inclusion proof of leaf `index`: `index`, `leaf_count`, `siblings`.
#[pyfunction]
fn merkle_proof(py: Python<'_>, leaves: Vec<String>, index: u64) -> PyResult<Py<PyAny>> {
    let tree =
        MerkleTree::from_leaves(hashes(py, "leaves", leaves)?).map_err(|e| to_exception(py, &e))?;
    to_py(py, &tree.proof(index).map_err(|e| to_exception(py, &e))?)
}

/// verify_merkle_proof(leaf: str, proof: dict[str, Any], root: str) -> bool
///
/// Whether `proof` takes `leaf` to `root`.
#[pyfunction]
fn verify_merkle_proof(
    py: Python<'_>,
    leaf: &str,
    proof: &Bound<'_, PyAny>,
    root: &str,
) -> PyResult<bool> {
    let proof: MerkleProof = from_py("proof", proof)?;
    Ok(proof.verify(&parse(py, "root", root)?, &parse(py, "leaf", leaf)?))
}

/// job_tree(step_leaves: list[str], window: int) -> dict[str, Any]
///
/// The job root and window roots over step leaves in windows of `window`
/// steps, as the engine commits them.
#[pyfunction]
fn job_tree(py: Python<'_>, step_leaves: Vec<String>, window: u32) -> PyResult<Py<PyAny>> {
    let tree = JobTree::from_step_leaves(hashes(py, "step_leaves", step_leaves)?, window)
        .map_err(|e| to_exception(py, &e))?;
    let out = PyDict::new(py);
    out.set_item("job_root", tree.root().to_string())?;
    let roots: Vec<String> = tree
        .window_roots()
        .iter()
        .map(ToString::to_string)
        .collect();
    out.set_item("window_roots", roots)?;
    Ok(out.into_any().unbind())
}

/// verify_window(job_root: str, window_index: int, step_leaves: list[str], window_proof: dict[str, Any]) -> str
///
/// Checks a claim that `step_leaves` are window `window_index` of the job
/// committed as `job_root`; returns the window's root, or raises
/// `arthapy.InvalidInput` (a malformed claim) or `arthapy.Corrupted` (a
/// claim that does not lead to `job_root`).
#[pyfunction]
#[pyo3(name = "verify_window")]
fn verify_window_claim(
    py: Python<'_>,
    job_root: &str,
    window_index: u64,
    step_leaves: Vec<String>,
    window_proof: &Bound<'_, PyAny>,
) -> PyResult<String> {
    let proof: MerkleProof = from_py("window_proof", window_proof)?;
    verify_window(
        &parse(py, "job_root", job_root)?,
        window_index,
        &hashes(py, "step_leaves", step_leaves)?,
        &proof,
    )
    .map(|root| root.to_string())
    .map_err(|e| to_exception(py, &e))
}

/// verify_step_log(step_log: bytes, window: int, job_root: str, steps: int) -> list[dict[str, Any]]
///
/// Checks a step log (the 117-byte encodings of a job's step records,
/// concatenated, as the node publishes it) against the chain's commitment:
/// `steps` records whose tree of `window`-step windows has root `job_root`.
/// Returns the records; raises `arthapy.InvalidInput` (a malformed log,
/// `field` `step_log`) or `arthapy.Corrupted` (not the committed log).
#[pyfunction]
fn verify_step_log(
    py: Python<'_>,
    step_log: &[u8],
    window: u32,
    job_root: &str,
    steps: u64,
) -> PyResult<Py<PyAny>> {
    let root = parse(py, "job_root", job_root)?;
    let records = artha_core::audit::verify_step_log(step_log, window, &root, steps)
        .map_err(|e| to_exception(py, &e))?;
    to_py(py, &records)
}

/// audit_windows(seed: str, job_id: str, windows: int, count: int) -> list[int]
///
/// The windows an audit replays: `min(count, windows)` distinct indices
/// drawn from the chain's audit seed and the job, as
/// `ProofOfCompute.auditWindows` draws them.
#[pyfunction]
fn audit_windows(
    py: Python<'_>,
    seed: &str,
    job_id: &str,
    windows: u64,
    count: u64,
) -> PyResult<Vec<u64>> {
    let seed = parse(py, "seed", seed)?;
    let job: artha_core::JobId = parse(py, "job_id", job_id)?;
    if windows == 0 {
        return Err(to_exception(
            py,
            &artha_core::Error::invalid("windows", "must be ≥ 1"),
        ));
    }
    Ok(artha_core::audit::audit_windows(
        &seed,
        job.as_bytes(),
        windows,
        count,
    ))
}

/// validate_spec(spec: dict[str, Any]) -> list[dict[str, str]]
///
/// Every problem of a job spec, each with its field path and message
/// (empty when it is valid).
#[pyfunction]
fn validate_spec(py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let spec: JobSpec = from_py("spec", spec)?;
    let problems = match spec.validate() {
        Ok(()) => Vec::new(),
        Err(v) => v.errors().to_vec(),
    };
    to_py(py, &problems)
}

/// verify_credential(credential: dict[str, Any], now: int) -> dict[str, Any]
///
/// Checks a signed did:key credential's signature and validity at `now`
/// (Unix seconds); returns its claims, or raises
/// `arthapy.PermissionDenied` naming the field at fault.
#[pyfunction]
fn verify_credential(
    py: Python<'_>,
    credential: &Bound<'_, PyAny>,
    now: u64,
) -> PyResult<Py<PyAny>> {
    let c: SignedCredential = from_py("credential", credential)?;
    c.verify_at(now).map_err(|e| to_exception(py, &e))?;
    to_py(py, &c.credential)
}

/// cost(gpu_seconds: int, rate_wei: str) -> str
///
/// What `gpu_seconds` cost at `rate_wei` per GPU-second, in wei (exact
/// integers, as the contracts compute it).
#[pyfunction]
fn cost(py: Python<'_>, gpu_seconds: u64, rate_wei: &str) -> PyResult<String> {
    let rate: u128 = rate_wei.parse().map_err(|_| {
        pyo3::exceptions::PyValueError::new_err("rate_wei: not a whole number of wei")
    })?;
    let model = CostModel {
        rate_per_gpu_second: Amount::from_wei(rate),
    };
    model
        .cost(gpu_seconds)
        .map(|a| a.wei().to_string())
        .map_err(|e| to_exception(py, &e))
}

/// Adds the functions to `m`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cid, m)?)?;
    m.add_function(wrap_pyfunction!(tensor_digest_of, m)?)?;
    m.add_function(wrap_pyfunction!(record_leaf, m)?)?;
    m.add_function(wrap_pyfunction!(leaf, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_proof, m)?)?;
    m.add_function(wrap_pyfunction!(verify_merkle_proof, m)?)?;
    m.add_function(wrap_pyfunction!(job_tree, m)?)?;
    m.add_function(wrap_pyfunction!(verify_window_claim, m)?)?;
    m.add_function(wrap_pyfunction!(verify_step_log, m)?)?;
    m.add_function(wrap_pyfunction!(audit_windows, m)?)?;
    m.add_function(wrap_pyfunction!(validate_spec, m)?)?;
    m.add_function(wrap_pyfunction!(verify_credential, m)?)?;
    m.add_function(wrap_pyfunction!(cost, m)?)?;
    Ok(())
}
