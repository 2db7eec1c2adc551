//! Argument conversion: JavaScript values (already read as JSON) into the
//! engine's Rust types.
//!
//! - An argument of the wrong JavaScript type (a number where a path
//!   goes, an array where an options object goes) is a `TypeError` naming
//!   the argument.
//! - An options object is deserialized into the Rust type whole (serde,
//!   `deny_unknown_fields`): an unknown key, or a key whose value the type
//!   refuses, is an `invalid_input` error whose `field` is that key — the
//!   same error the REST API and `arthapy` give, so the behaviour suite
//!   reads one answer from every front end.

#![forbid(unsafe_code)]

use std::str::FromStr;

use artha_core::{ArthaUri, Error};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::errors::Failure;

/// A string argument.
pub(crate) fn string(v: Value, arg: &str) -> Result<String, Failure> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(Failure::type_error(
            arg,
            format!("`{arg}` must be a string, not {}", js_type_name(&other)),
        )),
    }
}

/// An id or URI argument: a string, parsed; a malformed one is an
/// `invalid_input` error whose `field` is the argument (not the parser's
/// own name for it), as in `arthapy`.
pub(crate) fn parsed<T: FromStr<Err = Error>>(v: Value, arg: &str) -> Result<T, Failure> {
    let s = string(v, arg)?;
    s.parse::<T>().map_err(|e| Failure::Artha(e.at_field(arg)))
}

/// An `artha://` URI argument.
pub(crate) fn uri(v: Value, arg: &str) -> Result<ArthaUri, Failure> {
    parsed(v, arg)
}

/// A non-negative whole number argument (`undefined` is `default`).
pub(crate) fn count(v: Value, arg: &str, default: Option<u64>) -> Result<u64, Failure> {
    match (&v, default) {
        (Value::Null, Some(d)) => return Ok(d),
        (Value::Number(n), _) => {
            if let Some(n) = n.as_u64() {
                return Ok(n);
            }
        }
        _ => {}
    }
    Err(Failure::type_error(
        arg,
        format!(
            "`{arg}` must be a non-negative whole number, not {}",
            match &v {
                Value::Number(n) => n.to_string(),
                other => js_type_name(other).to_string(),
            }
        ),
    ))
}

/// An options object (`undefined` or `null`: every option at its
/// default) deserialized into `T`; see the module docs.
pub(crate) fn object<T: DeserializeOwned>(v: Value, arg: &str) -> Result<T, Failure> {
    let map = match v {
        Value::Null => serde_json::Map::new(),
        Value::Object(m) => m,
        other => {
            return Err(Failure::type_error(
                arg,
                format!("`{arg}` must be an object, not {}", js_type_name(&other)),
            ));
        }
    };
    match serde_json::from_value::<T>(Value::Object(map.clone())) {
        Ok(t) => Ok(t),
        Err(e) => Err(Failure::Artha(Error::invalid(
            field_at_fault::<T>(&map, &e).unwrap_or_else(|| arg.to_string()),
            format!("`{arg}`: {e}"),
        ))),
    }
}

/// The key of `map` that `T` refuses: the one the message names in
/// backquotes (an unknown or missing field), else the first key that
/// fails on its own.
fn field_at_fault<T: DeserializeOwned>(
    map: &serde_json::Map<String, Value>,
    e: &serde_json::Error,
) -> Option<String> {
    let msg = e.to_string();
    if msg.starts_with("unknown field") || msg.starts_with("missing field") {
        let start = msg.find('`')? + 1;
        let len = msg[start..].find('`')?;
        return Some(msg[start..start + len].to_string());
    }
    map.iter()
        .find(|(k, v)| {
            let mut one = serde_json::Map::new();
            one.insert((*k).clone(), (*v).clone());
            serde_json::from_value::<T>(Value::Object(one)).is_err_and(|e| {
                let m = e.to_string();
                !m.starts_with("missing field")
            })
        })
        .map(|(k, _)| k.clone())
}

fn js_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "undefined or null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `{hold}` of `train`, `infer` and `submit`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SubmitOptions {
    /// Record the job but start it only on `release()`.
    pub(crate) hold: bool,
}

/// `{progressOnly}` of `job.events`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct EventOptions {
    /// Phases and progress only.
    pub(crate) progress_only: bool,
}
