//! Values and errors across the boundary, and the shared runtime.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artha_core::{Error, ErrorKind};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The runtime of this process, and the process it was made in.
static RUNTIME: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);

/// The shared runtime; a new one in a forked child (the parent's is
/// leaked there: its threads are gone, and dropping it would wait for
/// them).
pub(crate) fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME
        .lock()
        .map_err(|_| PyRuntimeError::new_err("arthapy: the runtime lock is poisoned"))?;
    if let Some((owner, rt)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(rt.clone());
    }
    if let Some((_, old)) = slot.take() {
        std::mem::forget(old);
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("arthapy")
            .build()
            .map_err(|e| {
                PyRuntimeError::new_err(format!("arthapy: cannot start a runtime: {e}"))
            })?,
    );
    *slot = Some((pid, rt.clone()));
    Ok(rt)
}

/// Runs `fut` on the runtime with the GIL released, waking every 100 ms
/// so that Python can raise a pending signal (Ctrl-C) here.
pub(crate) fn block<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = Result<T, Error>> + Send,
    T: Send,
{
    let rt = runtime()?;
    let mut fut = std::pin::pin!(fut);
    loop {
        // The timer is made inside the runtime (it needs its clock).
        let step = py.detach(|| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(100), fut.as_mut()).await
            })
        });
        match step {
            Ok(r) => return r.map_err(|e| Python::attach(|py| to_exception(py, &e))),
            Err(_) => py.check_signals()?,
        }
    }
}

/// A Rust value as Python objects (its JSON form: dicts, lists, str, int,
/// float, bool, None).
pub(crate) fn to_py<T: Serialize>(py: Python<'_>, v: &T) -> PyResult<Py<PyAny>> {
    pythonize::pythonize(py, v)
        .map(Bound::unbind)
        .map_err(|e| PyRuntimeError::new_err(format!("arthapy: cannot convert a result: {e}")))
}

/// A Python value as `T`, through its JSON form; a value of the wrong
/// shape is a `TypeError` naming `what` and the path inside it.
pub(crate) fn from_py<T: DeserializeOwned>(what: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
    let json: serde_json::Value = pythonize::depythonize(v)
        .map_err(|e| PyTypeError::new_err(format!("{what}: not a JSON-like value: {e}")))?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            what.to_string()
        } else {
            format!("{what}.{path}")
        };
        PyTypeError::new_err(format!("{at}: {}", e.inner()))
    })
}

/// Keyword arguments as `T` (unknown names and wrong types are a
/// `TypeError` naming them, as Python's own calls do).
pub(crate) fn from_kwargs<T: DeserializeOwned + Default>(
    what: &str,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<T> {
    match kwargs {
        Some(k) => from_py(what, k.as_any()),
        None => Ok(T::default()),
    }
}

/// Text parsed by its type's strict parser; a `ValueError` subclass
/// (`arthapy.InvalidInput`) naming `field` otherwise.
pub(crate) fn parse<T: std::str::FromStr<Err = Error>>(
    py: Python<'_>,
    field: &str,
    s: &str,
) -> PyResult<T> {
    s.parse()
        .map_err(|e: Error| to_exception(py, &e.at_field(field)))
}

/// The exception class name of an error kind in `arthapy.errors`: its
/// name in CamelCase (`invalid_input` → `InvalidInput`).
fn class_name(kind: ErrorKind) -> String {
    kind.as_str()
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// An engine error as the `arthapy.errors` exception of its kind, with
/// `kind`, `field`, `context` and `retryable` attributes.
pub(crate) fn to_exception(py: Python<'_>, e: &Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let module = py.import("arthapy.errors")?;
        // A kind newer than the Python classes is an `Internal` error.
        let cls = module
            .getattr(class_name(e.kind()).as_str())
            .or_else(|_| module.getattr("Internal"))?;
        let ctx = PyDict::new(py);
        for (k, v) in e.context() {
            ctx.set_item(*k, v)?;
        }
        let exc = cls.call1((e.to_string(),))?;
        exc.setattr("kind", e.kind().as_str())?;
        exc.setattr("message", e.message())?;
        exc.setattr("field", e.context_value("field"))?;
        exc.setattr("context", ctx)?;
        exc.setattr("retryable", e.is_retryable())?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}
