//! Engine calls as asyncio futures: the call runs on the shared runtime
//! and completes the future on its loop (`call_soon_threadsafe`);
//! cancelling the future aborts the call.

use std::future::Future;
use std::sync::Mutex;

use artha_core::Error;
use pyo3::prelude::*;
use tokio::task::AbortHandle;

use crate::convert::{runtime, to_exception};

/// Aborts the engine call behind an asyncio future that was cancelled.
#[pyclass(module = "arthapy._native")]
struct AbortOnCancel {
    handle: Mutex<Option<AbortHandle>>,
}

#[pymethods]
impl AbortOnCancel {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut.call_method0("cancelled")?.is_truthy()?
            && let Some(h) = self.handle.lock().ok().and_then(|mut h| h.take())
        {
            h.abort();
        }
        Ok(())
    }
}

/// An asyncio future of the running loop, completed with `convert` of
/// what `fut` returns (or the exception of its error).
pub(crate) fn awaitable<T, F, C>(py: Python<'_>, fut: F, convert: C) -> PyResult<Py<PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
    C: for<'py> FnOnce(Python<'py>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let resolve = py.import("arthapy._aio")?.getattr("resolve")?;
    let (lp, fu, re) = (
        event_loop.unbind(),
        future.clone().unbind(),
        resolve.unbind(),
    );
    let task = runtime()?.spawn(async move {
        let result = fut.await;
        Python::attach(|py| {
            let (ok, value): (bool, Py<PyAny>) = match result {
                Ok(v) => match convert(py, v) {
                    Ok(o) => (true, o),
                    Err(e) => (false, e.into_value(py).into_any()),
                },
                Err(e) => (false, to_exception(py, &e).into_value(py).into_any()),
            };
            // A closed loop has nobody left to tell.
            let _ = lp.bind(py).call_method1(
                "call_soon_threadsafe",
                (re.bind(py), fu.bind(py), ok, value),
            );
        });
    });
    let abort = AbortOnCancel {
        handle: Mutex::new(Some(task.abort_handle())),
    };
    future.call_method1("add_done_callback", (abort,))?;
    Ok(future.unbind())
}
