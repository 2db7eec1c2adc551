//! Conversions between JavaScript values and `artha-core` types, and the
//! mapping of errors onto JavaScript `Error` objects.
//!
//! - An [`artha_core::Error`] becomes an `Error` whose `message` is the
//!   error's text and which carries `kind` (`invalid_input`, …), `code`
//!   (`ARTHA_` + the kind in upper case), `field` (the input at fault, or
//!   `null`), `context` (an object of the error's context pairs, the first
//!   value of each key) and `retryable`.
//! - An argument of the wrong JavaScript type (a number where bytes are
//!   expected, a missing argument) becomes a `TypeError` with the same
//!   properties; its `field` is the argument's name.
//! - Structured arguments (records, proofs, specs, credentials) are read
//!   through serde from their exact JSON value ([`json_of`]); a value that does not fit names the
//!   path of the offending field (`record.step`, `resources.gpus`).

use artha_core::{Error, ErrorKind, KeccakHash};
use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};

/// Sets `obj[key] = value`; a failure (a frozen object) is ignored because
/// the object was created here.
fn set(obj: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// Adds `kind`, `code`, `field`, `context` and `retryable` to `target`.
fn decorate(target: &JsValue, kind: ErrorKind, field: Option<&str>, e: Option<&Error>) {
    set(target, "kind", &JsValue::from_str(kind.as_str()));
    set(
        target,
        "code",
        &JsValue::from_str(&format!("ARTHA_{}", kind.as_str().to_ascii_uppercase())),
    );
    set(
        target,
        "field",
        &field.map(JsValue::from_str).unwrap_or(JsValue::NULL),
    );
    let context = Object::new();
    let mut retryable = kind.is_retryable_by_default();
    if let Some(e) = e {
        for (k, v) in e.context() {
            if !Reflect::has(&context, &JsValue::from_str(k)).unwrap_or(false) {
                set(&context, k, &JsValue::from_str(v));
            }
        }
        retryable = e.is_retryable();
    }
    set(target, "context", &context);
    set(target, "retryable", &JsValue::from_bool(retryable));
}

/// The JavaScript `Error` for an Artha error.
pub(crate) fn js_error(e: &Error) -> JsValue {
    let err: JsValue = js_sys::Error::new(&e.to_string()).into();
    decorate(&err, e.kind(), e.context_value("field"), Some(e));
    err
}

/// The JavaScript `Error` for an Artha error, with `field` replaced (the
/// core names its own parameters; JavaScript sees the argument's name).
pub(crate) fn js_error_with_field(e: &Error, field: &str) -> JsValue {
    let err: JsValue = js_sys::Error::new(&e.to_string()).into();
    decorate(&err, e.kind(), Some(field), Some(e));
    err
}

/// A `TypeError` about argument `field`.
pub(crate) fn type_error(field: &str, message: &str) -> JsValue {
    let err: JsValue = js_sys::TypeError::new(&format!("{field}: {message}")).into();
    decorate(&err, ErrorKind::InvalidInput, Some(field), None);
    err
}

/// An `invalid_input` error about `field`.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> JsValue {
    js_error(&Error::invalid(field, message))
}

/// Result of the exported functions: the error is what JavaScript throws.
pub(crate) type JsResult<T> = Result<T, JsValue>;

/// Bytes from a `Uint8Array` (a Node `Buffer` is one) or an `ArrayBuffer`.
pub(crate) fn bytes(field: &str, value: &JsValue) -> JsResult<Vec<u8>> {
    if let Some(a) = value.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(b) = value.dyn_ref::<ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    Err(type_error(field, "expected a Uint8Array or an ArrayBuffer"))
}

/// A string argument.
pub(crate) fn string(field: &str, value: &JsValue) -> JsResult<String> {
    value
        .as_string()
        .ok_or_else(|| type_error(field, "expected a string"))
}

/// A whole number in `0..=max` (at most 2^53 − 1: larger numbers are not
/// exact in JavaScript). A `bigint` is accepted too.
pub(crate) fn whole(field: &str, value: &JsValue, max: u64) -> JsResult<u64> {
    let max = max.min((1u64 << 53) - 1);
    if value.is_bigint() {
        let text = js_sys::BigInt::from(value.clone())
            .to_string(10)
            .map(String::from)
            .map_err(|_| type_error(field, "expected a whole number"))?;
        return match text.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(invalid(field, format!("must be between 0 and {max}"))),
        };
    }
    let n = value
        .as_f64()
        .ok_or_else(|| type_error(field, "expected a number"))?;
    if !n.is_finite() || n.fract() != 0.0 {
        return Err(type_error(field, "expected a whole number"));
    }
    if n < 0.0 || n > max as f64 {
        return Err(invalid(field, format!("must be between 0 and {max}")));
    }
    Ok(n as u64)
}

/// A keccak hash (`0x` + 64 lower-case hex digits).
pub(crate) fn keccak(field: &str, value: &JsValue) -> JsResult<KeccakHash> {
    string(field, value)?
        .parse::<KeccakHash>()
        .map_err(|e| invalid(field, e.message()))
}

/// An array of keccak hashes; elements are named `field[i]`.
pub(crate) fn keccaks(field: &str, value: &JsValue) -> JsResult<Vec<KeccakHash>> {
    if !Array::is_array(value) {
        return Err(type_error(field, "expected an array of 0x-prefixed hashes"));
    }
    Array::from(value)
        .iter()
        .enumerate()
        .map(|(i, v)| keccak(&format!("{field}[{i}]"), &v))
        .collect()
}

/// The field path of a serde error: `prefix` joined with the path where
/// the deserializer stopped (which ends with the name of an unknown field
/// when the error is about one).
pub(crate) fn field_path(prefix: &str, path: &str) -> String {
    // `.` is the root; `?` a segment the deserializer could not name (bad
    // JSON syntax before a key was read).
    let path = path
        .split('.')
        .filter(|seg| !seg.is_empty() && *seg != "?")
        .collect::<Vec<_>>()
        .join(".");
    let path = path.as_str();
    match (prefix.is_empty(), path.is_empty()) {
        (true, true) => "value".to_string(),
        (true, false) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// Where reading a structured value failed and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShapeError {
    /// Dotted path of the field at fault.
    pub(crate) field: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl ShapeError {
    fn of<E: std::fmt::Display>(prefix: &str, e: serde_path_to_error::Error<E>) -> Self {
        let message = e.inner().to_string();
        ShapeError {
            field: field_path(prefix, &e.path().to_string()),
            message,
        }
    }

    /// The error JavaScript sees.
    pub(crate) fn to_js(&self) -> JsValue {
        invalid(&self.field, self.message.clone())
    }
}

/// Reads a `T` from JSON text; errors name the field path under `prefix`.
pub(crate) fn from_json_text<T: DeserializeOwned>(
    prefix: &str,
    text: &str,
) -> Result<T, ShapeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ShapeError::of(prefix, e))?;
    de.end().map_err(|e| ShapeError {
        field: if prefix.is_empty() {
            "value".into()
        } else {
            prefix.into()
        },
        message: e.to_string(),
    })?;
    Ok(value)
}

/// Deepest nesting [`json_of`] follows (a cycle ends there).
const MAX_DEPTH: usize = 64;

/// The JSON value of a JavaScript value, exactly: `-0` stays a negative
/// zero, whole numbers up to 2^53 become integers, a `bigint` becomes an
/// integer, `undefined` properties are left out (as `JSON.stringify` does).
/// Anything JSON cannot hold (`NaN`, functions, typed arrays, cycles) is an
/// error naming its path.
pub(crate) fn json_of(
    path: &str,
    value: &JsValue,
    depth: usize,
) -> Result<serde_json::Value, ShapeError> {
    use serde_json::Value;
    let bad = |message: &str| ShapeError {
        field: if path.is_empty() {
            "value".into()
        } else {
            path.into()
        },
        message: message.into(),
    };
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else if key.starts_with('[') {
            format!("{path}{key}")
        } else {
            format!("{path}.{key}")
        }
    };
    if depth > MAX_DEPTH {
        return Err(bad("nested too deeply (or a cycle)"));
    }
    if value.is_null() || value.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Some(s) = value.as_string() {
        return Ok(Value::String(s));
    }
    if let Some(n) = value.as_f64() {
        const SAFE: f64 = 9_007_199_254_740_991.0;
        if !n.is_finite() {
            return Err(bad("must be a finite number"));
        }
        let negative_zero = n == 0.0 && n.is_sign_negative();
        if n.fract() == 0.0 && n.abs() <= SAFE && !negative_zero {
            return Ok(if n >= 0.0 {
                Value::from(n as u64)
            } else {
                Value::from(n as i64)
            });
        }
        return serde_json::Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| bad("must be a finite number"));
    }
    if value.is_bigint() {
        let text: String = js_sys::BigInt::from(value.clone())
            .to_string(10)
            .map(String::from)
            .map_err(|_| bad("unreadable bigint"))?;
        if let Ok(n) = text.parse::<u64>() {
            return Ok(Value::from(n));
        }
        return text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad("bigint outside the 64-bit range"));
    }
    if Array::is_array(value) {
        return Array::from(value)
            .iter()
            .enumerate()
            .map(|(i, v)| json_of(&join(&format!("[{i}]")), &v, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if value.is_object() && !value.is_function() && !ArrayBuffer::is_view(value) {
        let mut map = serde_json::Map::new();
        for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
            let Some(k) = key.as_string() else { continue };
            let v = Reflect::get(value, &key).map_err(|_| bad("unreadable property"))?;
            if v.is_undefined() {
                continue;
            }
            map.insert(k.clone(), json_of(&join(&k), &v, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    Err(bad("not a JSON value"))
}

/// Reads a `T` from a JavaScript object through its exact JSON value (so
/// unknown fields are refused as they are in JSON text); errors name the
/// field path under `prefix`.
pub(crate) fn from_object<T: DeserializeOwned>(
    prefix: &str,
    value: JsValue,
) -> Result<T, ShapeError> {
    let json = json_of(prefix, &value, 0)?;
    serde_path_to_error::deserialize(json).map_err(|e| ShapeError::of(prefix, e))
}

/// Reads a `T` from an object or from its JSON text; anything else is a
/// `TypeError` naming `arg`.
pub(crate) fn object_or_json<T: DeserializeOwned>(
    arg: &str,
    prefix: &str,
    value: JsValue,
) -> JsResult<Result<T, ShapeError>> {
    if let Some(text) = value.as_string() {
        return Ok(from_json_text(prefix, &text));
    }
    if value.is_object() && !Array::is_array(&value) {
        return Ok(from_object(prefix, value));
    }
    Err(type_error(arg, "expected an object or its JSON text"))
}

/// Reads a `T` from an object argument.
pub(crate) fn object<T: DeserializeOwned>(arg: &str, value: JsValue) -> JsResult<T> {
    if !value.is_object() || Array::is_array(&value) {
        return Err(type_error(arg, "expected an object"));
    }
    from_object(arg, value).map_err(|e| e.to_js())
}

/// The JavaScript form of `value`: its JSON, parsed (plain objects, arrays,
/// strings and numbers).
pub(crate) fn to_js<T: Serialize>(value: &T) -> JsResult<JsValue> {
    let text = serde_json::to_string(value).map_err(|e| {
        js_error(&Error::new(
            ErrorKind::Internal,
            format!("cannot encode: {e}"),
        ))
    })?;
    js_sys::JSON::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_join_prefix_and_path() {
        assert_eq!(field_path("", "."), "value");
        assert_eq!(field_path("record", "."), "record");
        assert_eq!(field_path("record", "step"), "record.step");
        assert_eq!(field_path("", "resources.gpus"), "resources.gpus");
        assert_eq!(field_path("", "?"), "value");
        assert_eq!(field_path("spec", "hyper.?"), "spec.hyper");
    }

    #[test]
    fn json_text_errors_name_the_path() {
        let e = from_json_text::<artha_core::JobSpec>("", r#"{"kind":"train","runtime":{"native":"mlp"},"budget":"1 ARTH","resources":{"gpus":"two"}}"#)
            .unwrap_err();
        assert_eq!(e.field, "resources.gpus");
        let e = from_json_text::<artha_core::JobSpec>(
            "",
            r#"{"kind":"train","runtime":{"native":"mlp"},"budget":"1 ARTH","resources":{"gpu":1}}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "resources.gpu");
        let e = from_json_text::<artha_core::JobSpec>("", r#"{"colour":1}"#).unwrap_err();
        assert_eq!(e.field, "colour");
        let e = from_json_text::<artha_core::JobSpec>("", r#"{"kind":"cook"}"#).unwrap_err();
        assert_eq!(e.field, "kind");
        let e = from_json_text::<artha_core::JobSpec>("", "{} trailing").unwrap_err();
        assert_eq!(e.field, "value");
        let e = from_json_text::<artha_core::SignedCredential>(
            "",
            r#"{"credential":{"issuer":"did:key:zNope"},"signature":""}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "credential.issuer");
    }
}
