//! `Job` and its event stream.

use std::sync::Arc;

use artha_core::{Error, JobEvent, JobId};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;

use crate::aio::awaitable;
use crate::convert::{block, to_py};
use crate::engine::{self, Handle, connection};

/// A submitted job of an engine.
#[pyclass(module = "arthapy._native", frozen)]
pub(crate) struct Job {
    h: Handle,
    id: JobId,
}

impl Job {
    pub(crate) fn new(h: Handle, id: JobId) -> Self {
        Job { h, id }
    }
}

/// One event as the typed Python event of `arthapy.events`.
fn event(py: Python<'_>, ev: &JobEvent) -> PyResult<Py<PyAny>> {
    let raw = to_py(py, ev)?;
    Ok(py
        .import("arthapy.events")?
        .getattr("from_dict")?
        .call1((raw,))?
        .unbind())
}

/// Runs `f` on the job's connection and id, blocking with the GIL
/// released ([`engine::call`]).
fn call<T, F, Fut>(py: Python<'_>, job: &Job, f: F) -> PyResult<Py<PyAny>>
where
    F: FnOnce(artha_engine::Connection, JobId) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + Send,
    T: serde::Serialize + Send,
{
    let id = job.id;
    engine::call(py, &job.h, move |c| f(c, id))
}

/// [`call`] as an asyncio awaitable ([`engine::call_async`]).
fn call_async<T, F, Fut>(py: Python<'_>, job: &Job, f: F) -> PyResult<Py<PyAny>>
where
    F: FnOnce(artha_engine::Connection, JobId) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    T: serde::Serialize + Send + 'static,
{
    let id = job.id;
    engine::call_async(py, &job.h, move |c| f(c, id))
}

#[pymethods]
impl Job {
    /// id -> str
    ///
    /// The job's id (`job-…`).
    #[getter]
    fn id(&self) -> String {
        self.id.to_string()
    }

    /// status() -> dict[str, Any]
    ///
    /// The job's status: phase, progress, artifacts, chain receipts,
    /// outcome (the JSON of `arthai job-status --json`).
    fn status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, self, |c, id| async move { c.status(&id).await })
    }

    /// status_async() -> Awaitable[dict[str, Any]]
    ///
    /// `status` as an awaitable.
    fn status_async(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call_async(py, self, |c, id| async move { c.status(&id).await })
    }

    /// wait() -> dict[str, Any]
    ///
    /// Waits until the job has ended; returns its outcome
    /// (`{"outcome": "completed"}`, or `failed` with `kind` and `reason`,
    /// or `cancelled`). Ctrl-C raises `KeyboardInterrupt`; the job goes on.
    fn wait(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, self, |c, id| async move { c.wait(&id).await })
    }

    /// wait_async() -> Awaitable[dict[str, Any]]
    ///
    /// `wait` as an awaitable.
    fn wait_async(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call_async(py, self, |c, id| async move { c.wait(&id).await })
    }

    /// logs(since: int = 0) -> list[dict[str, Any]]
    ///
    /// The job's output lines from sequence number `since`.
    #[pyo3(signature = (since = 0))]
    fn logs(&self, py: Python<'_>, since: u64) -> PyResult<Py<PyAny>> {
        call(py, self, |c, id| async move { c.logs(&id, since).await })
    }

    /// cancel() -> dict[str, Any]
    ///
    /// Cancels the job (a `Conflict` once it has finished running).
    fn cancel(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, self, |c, id| async move { c.cancel(&id).await })
    }

    /// cancel_async() -> Awaitable[dict[str, Any]]
    ///
    /// `cancel` as an awaitable.
    fn cancel_async(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call_async(py, self, |c, id| async move { c.cancel(&id).await })
    }

    /// release() -> dict[str, Any]
    ///
    /// Starts a job submitted with `hold=True` (a `Conflict` otherwise).
    fn release(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, self, |c, id| async move { c.release(&id).await })
    }

    /// proofs() -> dict[str, Any]
    ///
    /// The proof manifest the job committed: step count, window roots,
    /// job root.
    fn proofs(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, self, |c, id| async move { c.proofs(&id).await })
    }

    /// events(progress_only: bool = False) -> EventStream
    ///
    /// The job's events as they happen, from its first, ending after its
    /// terminal phase: an iterator and an async iterator of
    /// `arthapy.events` values.
    #[pyo3(signature = (progress_only = false))]
    fn events(&self, py: Python<'_>, progress_only: bool) -> PyResult<EventStream> {
        let c = connection(py, &self.h)?;
        let id = self.id;
        let stream = block(py, async move { c.events(&id, progress_only).await })?;
        Ok(EventStream {
            inner: Arc::new(tokio::sync::Mutex::new(Some(stream))),
        })
    }

    fn __repr__(&self) -> String {
        format!("Job({:?})", self.id.to_string())
    }
}

type Events = Arc<tokio::sync::Mutex<Option<BoxStream<'static, Result<JobEvent, Error>>>>>;

/// The next event, or `None` at the end (the stream is dropped then).
async fn next(inner: Events) -> Result<Option<JobEvent>, Error> {
    let mut guard = inner.lock().await;
    let Some(stream) = guard.as_mut() else {
        return Ok(None);
    };
    match stream.next().await {
        Some(Ok(ev)) => Ok(Some(ev)),
        Some(Err(e)) => Err(e),
        None => {
            *guard = None;
            Ok(None)
        }
    }
}

/// A job's events: `for ev in job.events()` or `async for ev in
/// job.events()`.
#[pyclass(module = "arthapy._native", frozen)]
pub(crate) struct EventStream {
    inner: Events,
}

#[pymethods]
impl EventStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.inner.clone();
        match block(py, next(inner))? {
            Some(ev) => event(py, &ev),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        awaitable(py, next(self.inner.clone()), |py, ev| match ev {
            Some(ev) => event(py, &ev),
            None => Err(PyStopAsyncIteration::new_err(())),
        })
    }
}
