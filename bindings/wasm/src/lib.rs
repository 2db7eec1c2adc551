//! # artha-wasm
//!
//! The pure part of Artha ([`artha_core`]) for browsers and Node, without a
//! native module: content ids of bytes and files, job spec validation with
//! field errors, proof record encodings and Merkle/window verification,
//! and `did:key` credential verification. Built with `wasm-bindgen`; the
//! JavaScript API is documented in `bindings/wasm/README.md`.
//!
//! This crate converts arguments and results and maps errors, nothing
//! more: every rule lives in `artha-core`.
//!
//! - Data objects cross in their JSON form (the serde form of the Rust
//!   type: `snake_case` keys, hashes as text); function names are
//!   `camelCase`.
//! - Failures throw an `Error` with `kind`, `code` (`ARTHA_<KIND>`),
//!   `field`, `context` and `retryable` (see [`convert`]); arguments of the
//!   wrong JavaScript type throw a `TypeError` naming the argument.
//! - [`validate_spec`] does not throw for a bad spec: it returns
//!   `{ ok: false, errors: [{ field, message }, …] }`, so a form can show
//!   every problem at once.
#![deny(missing_docs)]

pub mod convert;
mod credential;
mod proofs;

use artha_core::{Amount, Cid, CostModel, DType, JobSpec, ValidationErrors, tensor_digest};
use js_sys::{Array, Object};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use convert::{JsResult, bytes, js_error, object_or_json, string, to_js, type_error, whole};

pub use credential::{parse_did, verify_credential};
pub use proofs::*;

/// The CID (`b3:` + 64 hex digits) of `data`, a `Uint8Array` or an
/// `ArrayBuffer`: the BLAKE3 digest of the bytes, as `artha_core::Cid::of`.
#[wasm_bindgen]
pub fn cid(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] data: JsValue,
) -> JsResult<String> {
    Ok(Cid::of(&bytes("data", &data)?).to_string())
}

/// Checks a CID's text form and returns it (strict: `b3:`, lower case, 64
/// digits); throws `invalid_input` with `field` `cid` otherwise.
#[wasm_bindgen(js_name = parseCid)]
pub fn parse_cid(
    #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
) -> JsResult<String> {
    string("text", &text)?
        .parse::<Cid>()
        .map(|c| c.to_string())
        .map_err(|e| js_error(&e))
}

/// Computes a CID chunk by chunk, for data too large to hold at once (a
/// browser `File` read through `file.stream()`).
#[wasm_bindgen]
#[derive(Debug, Default)]
pub struct CidHasher {
    hasher: blake3::Hasher,
    bytes: u64,
}

#[wasm_bindgen]
impl CidHasher {
    /// An empty hasher.
    #[wasm_bindgen(constructor)]
    pub fn new() -> CidHasher {
        CidHasher::default()
    }

    /// Adds the next chunk (`Uint8Array` or `ArrayBuffer`).
    pub fn update(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] chunk: JsValue,
    ) -> JsResult<()> {
        let data = bytes("chunk", &chunk)?;
        self.hasher.update(&data);
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// Bytes added so far.
    #[wasm_bindgen(getter, js_name = bytesHashed)]
    pub fn bytes_hashed(&self) -> f64 {
        self.bytes as f64
    }

    /// The CID of everything added so far. The hasher stays usable: more
    /// chunks may follow, and `finalize` may be called again.
    pub fn finalize(&self) -> String {
        Cid::from_digest(self.hasher.finalize().into()).to_string()
    }

    /// Forgets everything added.
    pub fn reset(&mut self) {
        self.hasher.reset();
        self.bytes = 0;
    }
}

/// The canonical tensor digest (64 hex digits) of `data` (little-endian
/// elements in row-major order) with `dtype` (`"f32"`, `"f64"`, `"f16"`,
/// `"bf16"`, `"i64"`, `"i32"`, `"u8"`) and `shape` (array of whole
/// numbers), as `artha_core::tensor_digest`.
#[wasm_bindgen(js_name = tensorDigest)]
pub fn tensor_digest_js(
    #[wasm_bindgen(unchecked_param_type = "string")] dtype: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number[]")] shape: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] data: JsValue,
) -> JsResult<String> {
    let name = string("dtype", &dtype)?;
    let dtype: DType = serde_json::from_value(serde_json::Value::String(name.clone()))
        .map_err(|_| convert::invalid("dtype", format!("unknown dtype `{name}`")))?;
    if !Array::is_array(&shape) {
        return Err(type_error("shape", "expected an array of whole numbers"));
    }
    let shape: Vec<u64> = Array::from(&shape)
        .iter()
        .enumerate()
        .map(|(i, d)| whole(&format!("shape[{i}]"), &d, u64::MAX))
        .collect::<JsResult<_>>()?;
    let data = bytes("data", &data)?;
    tensor_digest(dtype, &shape, &data)
        .map(|d| d.to_string())
        .map_err(|e| js_error(&e))
}

/// One problem with a spec.
#[derive(Debug, Serialize)]
struct Problem {
    field: String,
    message: String,
}

/// What [`validate_spec`] returns.
#[derive(Debug, Serialize)]
struct Verdict {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    spec: Option<JobSpec>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<Problem>,
}

fn problems(v: &ValidationErrors) -> Vec<Problem> {
    v.errors()
        .iter()
        .map(|e| Problem {
            field: e.field.clone(),
            message: e.message.clone(),
        })
        .collect()
}

/// Validates a job spec given as an object or as JSON text.
///
/// Returns `{ ok: true, spec }` (`spec`: the spec with every default filled
/// in) or `{ ok: false, errors: [{ field, message }, …] }`. A spec that
/// parses lists **every** problem `JobSpec::validate` finds; a spec that
/// does not fit the schema (a wrong type, an unknown field, bad JSON)
/// lists the first such problem, since the rest cannot be read. Only an
/// argument that is neither an object nor a string throws (`TypeError`).
#[wasm_bindgen(
    js_name = validateSpec,
    unchecked_return_type = "{ ok: true, spec: object } | { ok: false, errors: { field: string, message: string }[] }"
)]
pub fn validate_spec(
    #[wasm_bindgen(unchecked_param_type = "object | string")] spec: JsValue,
) -> JsResult<JsValue> {
    let verdict = match object_or_json::<JobSpec>("spec", "", spec)? {
        Err(shape) => Verdict {
            ok: false,
            spec: None,
            errors: vec![Problem {
                field: shape.field,
                message: shape.message,
            }],
        },
        Ok(spec) => match spec.validate() {
            Ok(()) => Verdict {
                ok: true,
                spec: Some(spec),
                errors: Vec::new(),
            },
            Err(v) => Verdict {
                ok: false,
                spec: None,
                errors: problems(&v),
            },
        },
    };
    to_js(&verdict)
}

/// The cost of `gpuSeconds` at `rate` per GPU-second (an amount's text:
/// `"0.001 ARTH"` or `"1000000000000000 wei"`), exactly:
/// `{ wei: "<integer>", text: "<decimal> ARTH" }`.
#[wasm_bindgen(js_name = costOf, unchecked_return_type = "{ wei: string, text: string }")]
pub fn cost_of(
    #[wasm_bindgen(unchecked_param_type = "number | bigint", js_name = gpuSeconds)]
    gpu_seconds: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] rate: JsValue,
) -> JsResult<JsValue> {
    let secs = whole("gpuSeconds", &gpu_seconds, u64::MAX)?;
    let rate: Amount = string("rate", &rate)?
        .parse()
        .map_err(|e: artha_core::Error| convert::invalid("rate", e.message()))?;
    let cost = CostModel::new(rate).cost(secs).map_err(|e| js_error(&e))?;
    let out = Object::new();
    js_sys::Reflect::set(&out, &"wei".into(), &cost.wei().to_string().into())?;
    js_sys::Reflect::set(&out, &"text".into(), &cost.to_string().into())?;
    Ok(out.into())
}
