//! Error mapping: an [`artha_core::Error`] becomes a JavaScript `Error`
//! with `code` = `ARTHA_<KIND>`, `kind`, `field`, `context` and
//! `retryable`; an argument of the wrong JavaScript type becomes a
//! `TypeError` carrying the same properties (kind `invalid_input`, `field`
//! = the argument's name).

#![forbid(unsafe_code)]

use artha_core::{Error, ErrorKind};
use napi::bindgen_prelude::{Env, Function, JsObjectValue, Object, Unknown};
use napi::{JsValue, Status};

/// Why a call failed, before it becomes a JavaScript value.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The engine (or a conversion into its types) refused.
    Artha(Error),
    /// A JavaScript argument of the wrong type or value.
    Type {
        /// The argument (or option) at fault.
        arg: String,
        /// What was wrong.
        message: String,
    },
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Artha(e)
    }
}

impl Failure {
    /// A `TypeError` naming `arg`.
    pub(crate) fn type_error(arg: &str, message: impl Into<String>) -> Self {
        Failure::Type {
            arg: arg.to_string(),
            message: message.into(),
        }
    }
}

/// What every call after `close()` fails with.
pub(crate) fn closed() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "the engine is closed (close() was called); open or connect a new one",
    )
}

/// `ARTHA_INVALID_INPUT` for `invalid_input`.
pub(crate) fn code_of(kind: ErrorKind) -> String {
    format!("ARTHA_{}", kind.as_str().to_ascii_uppercase())
}

/// The JavaScript error for `f`, as a [`napi::Error`] holding it (a
/// rejected promise or a throw hands the object itself to JavaScript).
pub(crate) fn to_napi(env: &Env, f: &Failure) -> napi::Error {
    match build(env, f) {
        Ok(obj) => napi::Error::from(obj),
        Err(e) => napi::Error::new(
            Status::GenericFailure,
            format!(
                "{} (and building its JavaScript error failed: {e})",
                message_of(f)
            ),
        ),
    }
}

fn message_of(f: &Failure) -> String {
    match f {
        Failure::Artha(e) => e.to_string(),
        Failure::Type { message, .. } => message.clone(),
    }
}

fn build<'e>(env: &'e Env, f: &Failure) -> napi::Result<Unknown<'e>> {
    let global = env.get_global()?;
    let (ctor_name, kind, field, context, retryable) = match f {
        Failure::Artha(e) => {
            let mut context = serde_json::Map::new();
            for (k, v) in e.context() {
                context
                    .entry((*k).to_string())
                    .or_insert_with(|| serde_json::Value::String(v.clone()));
            }
            (
                "Error",
                e.kind(),
                e.context_value("field").map(str::to_string),
                context,
                e.is_retryable(),
            )
        }
        Failure::Type { arg, .. } => {
            let mut context = serde_json::Map::new();
            context.insert("field".into(), serde_json::Value::String(arg.clone()));
            (
                "TypeError",
                ErrorKind::InvalidInput,
                Some(arg.clone()),
                context,
                false,
            )
        }
    };
    let ctor: Function<'_, String, Unknown<'_>> = global.get_named_property(ctor_name)?;
    let err = ctor.new_instance(message_of(f))?;
    let mut obj: Object<'_> = err.coerce_to_object()?;
    obj.set("code", code_of(kind))?;
    obj.set("kind", kind.as_str())?;
    obj.set("field", field)?;
    obj.set("context", env.to_js_value(&context)?)?;
    obj.set("retryable", retryable)?;
    Ok(err)
}
