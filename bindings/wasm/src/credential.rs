//! `did:key` identities and signed credentials.

use artha_core::{Did, SignedCredential};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::convert::{JsResult, js_error, object_or_json, string, to_js, whole};

/// What [`parse_did`] returns.
#[derive(Debug, Serialize)]
struct DidView {
    did: String,
    public_key: String,
}

/// Parses a `did:key` (Ed25519) DID: `{ did, public_key }` (the key as 64
/// hex digits); throws `invalid_input` with `field` `did` otherwise.
#[wasm_bindgen(js_name = parseDid, unchecked_return_type = "{ did: string, public_key: string }")]
pub fn parse_did(
    #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
) -> JsResult<JsValue> {
    let did: Did = string("did", &text)?.parse().map_err(|e| js_error(&e))?;
    let key = did.verifying_key().map_err(|e| js_error(&e))?;
    to_js(&DidView {
        did: did.to_string(),
        public_key: hex::encode(key.as_bytes()),
    })
}

/// Verifies a signed credential (`{ credential: {…}, signature }`, as an
/// object or JSON text) at `nowSecs` (seconds since the Unix epoch; the
/// current time when omitted). Returns the credential's claims (`issuer`,
/// `subject`, `budget_cap`, `rate_limit_per_minute`, `not_before`,
/// `expires_at`).
///
/// Throws `permission_denied` naming `credential.signature` (forged or
/// altered), `credential.not_before` (not yet valid) or
/// `credential.expires_at` (expired), and `invalid_input` naming the field
/// of a malformed credential (`credential.issuer`, …).
#[wasm_bindgen(js_name = verifyCredential, unchecked_return_type = "{ issuer: string, subject: string, budget_cap: string, rate_limit_per_minute: number, not_before: number, expires_at: number }")]
pub fn verify_credential(
    #[wasm_bindgen(unchecked_param_type = "object | string")] signed: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "number | bigint", js_name = nowSecs)] now_secs: JsValue,
) -> JsResult<JsValue> {
    let now = if now_secs.is_undefined() || now_secs.is_null() {
        (js_sys::Date::now() / 1000.0).floor() as u64
    } else {
        whole("nowSecs", &now_secs, u64::MAX)?
    };
    let signed: SignedCredential = object_or_json("signed", "", signed)?.map_err(|mut shape| {
        // The credential's own paths are `credential.…`; its signature
        // is named as the core names it.
        if shape.field == "signature" {
            shape.field = "credential.signature".into();
        }
        shape.to_js()
    })?;
    signed.verify_at(now).map_err(|e| js_error(&e))?;
    to_js(&signed.credential)
}
