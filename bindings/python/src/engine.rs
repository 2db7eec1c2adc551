//! `Engine`, its `store`, `datasets` and `models`.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use artha_core::{
    ArthaUri, DatasetId, Error, ErrorKind, JobId, JobKind, JobRequest, JobSpec, ModelId,
};
use artha_engine::Connection;
use artha_engine::engine::{DatasetMeta, ModelRegistration};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::aio::awaitable;
use crate::convert::{block, from_kwargs, from_py, parse, to_exception, to_py};
use crate::job::Job;

/// The connection every object of one engine shares, and the process that
/// opened it.
#[derive(Debug)]
pub(crate) struct Shared {
    conn: RwLock<Option<Connection>>,
    pid: u32,
    home: PathBuf,
}

impl Shared {
    /// The connection, unless closed or opened in another process.
    pub(crate) fn conn(&self) -> Result<Connection, Error> {
        if self.pid != std::process::id() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "this engine was opened before fork() in the parent process; open it again in this process",
            )
            .with_context("home", self.home.display().to_string()));
        }
        self.conn
            .read()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| {
                Error::new(ErrorKind::Unavailable, "the engine is closed")
                    .with_context("home", self.home.display().to_string())
            })
    }
}

/// A shared connection handle.
pub(crate) type Handle = Arc<Shared>;

/// The connection of `h`, or the exception saying why there is none.
pub(crate) fn connection(py: Python<'_>, h: &Handle) -> PyResult<Connection> {
    h.conn().map_err(|e| to_exception(py, &e))
}

/// Runs `f` on the connection, blocking with the GIL released, and
/// converts its result.
pub(crate) fn call<T, F, Fut>(py: Python<'_>, h: &Handle, f: F) -> PyResult<Py<PyAny>>
where
    F: FnOnce(Connection) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + Send,
    T: serde::Serialize + Send,
{
    let c = connection(py, h)?;
    let v = block(py, f(c))?;
    to_py(py, &v)
}

/// [`call`] as an asyncio awaitable.
pub(crate) fn call_async<T, F, Fut>(py: Python<'_>, h: &Handle, f: F) -> PyResult<Py<PyAny>>
where
    F: FnOnce(Connection) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    T: serde::Serialize + Send + 'static,
{
    let c = connection(py, h)?;
    awaitable(py, f(c), |py, v| to_py(py, &v))
}

/// The engine of a home: embedded in this process, or the `arthai serve`
/// daemon serving the home (see `connect`).
#[pyclass(module = "arthapy._native", frozen)]
pub(crate) struct Engine {
    h: Handle,
}

fn open_with(py: Python<'_>, home: PathBuf, daemon: bool) -> PyResult<Engine> {
    let h2 = home.clone();
    let c = block(py, async move {
        if daemon {
            artha_engine::connect(&h2).await
        } else {
            artha_engine::Engine::open(&h2).await.map(Connection::Local)
        }
    })?;
    Ok(Engine {
        h: Arc::new(Shared {
            conn: RwLock::new(Some(c)),
            pid: std::process::id(),
            home,
        }),
    })
}

/// connect(home: str | os.PathLike[str]) -> Engine
///
/// The engine of `home`: the `arthai serve` daemon serving it when one
/// answers (many programs share one home through it), else an engine
/// embedded in this process, as the `arthai` CLI does.
#[pyfunction]
pub(crate) fn connect(py: Python<'_>, home: PathBuf) -> PyResult<Engine> {
    open_with(py, home, true)
}

fn submit(
    py: Python<'_>,
    h: &Handle,
    kind: JobKind,
    hold: bool,
    request: Option<&Bound<'_, PyDict>>,
) -> PyResult<Job> {
    submit_spec(py, h, spec_of(py, kind, request)?, hold)
}

/// The spec of `kind` that keyword arguments (a `JobRequest`) describe.
fn spec_of(
    py: Python<'_>,
    kind: JobKind,
    request: Option<&Bound<'_, PyDict>>,
) -> PyResult<JobSpec> {
    let req: JobRequest = from_kwargs("request", request)?;
    req.apply(kind, None).map_err(|e| to_exception(py, &e))
}

fn submit_spec(py: Python<'_>, h: &Handle, spec: JobSpec, hold: bool) -> PyResult<Job> {
    let c = connection(py, h)?;
    let s = block(py, async move { c.submit_with(spec, hold).await })?;
    Ok(Job::new(h.clone(), s.job_id))
}

#[pymethods]
impl Engine {
    /// open(home: str | os.PathLike[str]) -> Engine
    ///
    /// Opens the engine of `home` in this process (created when absent),
    /// with the defaults: local store, embedded chain, native runtime and
    /// Docker when a daemon answers.
    #[staticmethod]
    fn open(py: Python<'_>, home: PathBuf) -> PyResult<Engine> {
        open_with(py, home, false)
    }

    /// connect(home: str | os.PathLike[str]) -> Engine
    ///
    /// Same as `arthapy.connect(home)`.
    #[staticmethod]
    #[pyo3(name = "connect")]
    fn connect_static(py: Python<'_>, home: PathBuf) -> PyResult<Engine> {
        open_with(py, home, true)
    }

    /// is_remote -> bool
    ///
    /// Whether this is a client of an `arthai serve` daemon.
    #[getter]
    fn is_remote(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(connection(py, &self.h)?.is_remote())
    }

    /// home -> pathlib.Path
    ///
    /// The home directory.
    #[getter]
    fn home(&self) -> PathBuf {
        self.h.home.clone()
    }

    /// store -> Store
    ///
    /// The content-addressed store.
    #[getter]
    fn store(&self) -> Store {
        Store { h: self.h.clone() }
    }

    /// datasets -> Datasets
    ///
    /// The dataset registry.
    #[getter]
    fn datasets(&self) -> Datasets {
        Datasets { h: self.h.clone() }
    }

    /// models -> Models
    ///
    /// The model registry.
    #[getter]
    fn models(&self) -> Models {
        Models { h: self.h.clone() }
    }

    /// info() -> dict[str, Any]
    ///
    /// Who the engine is: version, home, identity (did:key), node, chain
    /// accounts.
    fn info(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.info().await })
    }

    /// train(*, hold: bool = False, **request: Any) -> Job
    ///
    /// Submits a training job. `request` names what `arthai train` takes:
    /// `dataset`, `model`, `runtime`, `epochs`, `batch_size`,
    /// `learning_rate`, `seed`, `gpus`, `gpu_memory_mib`,
    /// `max_duration_secs`, `budget` ("2.5 ARTH", "1000 wei", or whole
    /// ARTH; default the estimate), `proof_window`, `hyper`, `env`. With
    /// `hold`, the job is checked and recorded but starts on `release()`.
    #[pyo3(signature = (*, hold = false, **request))]
    fn train(
        &self,
        py: Python<'_>,
        hold: bool,
        request: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Job> {
        submit(py, &self.h, JobKind::Train, hold, request)
    }

    /// infer(*, hold: bool = False, **request: Any) -> Job
    ///
    /// Submits an inference job (`model` and `dataset` as inputs); the
    /// arguments are those of `train`.
    #[pyo3(signature = (*, hold = false, **request))]
    fn infer(
        &self,
        py: Python<'_>,
        hold: bool,
        request: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Job> {
        submit(py, &self.h, JobKind::Infer, hold, request)
    }

    /// submit(spec: dict[str, Any], *, hold: bool = False) -> Job
    ///
    /// Submits a full job spec (the JSON form `arthai train --spec` reads).
    #[pyo3(signature = (spec, *, hold = false))]
    fn submit(&self, py: Python<'_>, spec: &Bound<'_, PyAny>, hold: bool) -> PyResult<Job> {
        let spec: JobSpec = from_py("spec", spec)?;
        submit_spec(py, &self.h, spec, hold)
    }

    /// train_async(*, hold: bool = False, **request: Any) -> Awaitable[Job]
    ///
    /// `train` as an awaitable.
    #[pyo3(signature = (*, hold = false, **request))]
    fn train_async(
        &self,
        py: Python<'_>,
        hold: bool,
        request: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let spec = spec_of(py, JobKind::Train, request)?;
        let c = connection(py, &self.h)?;
        let h = self.h.clone();
        awaitable(
            py,
            async move { c.submit_with(spec, hold).await },
            move |py, s| Ok(Py::new(py, Job::new(h, s.job_id))?.into_any()),
        )
    }

    /// estimate(**request: Any) -> dict[str, Any]
    ///
    /// What a training job of `request` may cost and take (upper bounds).
    #[pyo3(signature = (**request))]
    fn estimate(&self, py: Python<'_>, request: Option<&Bound<'_, PyDict>>) -> PyResult<Py<PyAny>> {
        let spec = spec_of(py, JobKind::Train, request)?;
        call(py, &self.h, |c| async move { c.estimate(&spec).await })
    }

    /// job(id: str) -> Job
    ///
    /// The job with this id (checked when first used).
    fn job(&self, py: Python<'_>, id: &str) -> PyResult<Job> {
        Ok(Job::new(self.h.clone(), parse::<JobId>(py, "id", id)?))
    }

    /// jobs() -> list[dict[str, Any]]
    ///
    /// Every job, newest first.
    fn jobs(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.jobs().await })
    }

    /// settle() -> dict[str, Any]
    ///
    /// Settles every job whose challenge period has passed; says what is
    /// left.
    fn settle(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.settle().await })
    }

    /// settle_async() -> Awaitable[dict[str, Any]]
    ///
    /// `settle` as an awaitable.
    fn settle_async(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call_async(py, &self.h, |c| async move { c.settle().await })
    }

    /// due() -> list[dict[str, Any]]
    ///
    /// Committed jobs waiting for their challenge period, soonest first.
    fn due(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.due().await })
    }

    /// dev_advance(secs: int) -> int
    ///
    /// Moves a development chain's clock forward; returns the chain time.
    fn dev_advance(&self, py: Python<'_>, secs: u64) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.dev_advance(secs).await })
    }

    /// stats() -> dict[str, Any]
    ///
    /// Proof, settlement and resource statistics.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.stats().await })
    }

    /// nodes() -> list[dict[str, Any]]
    ///
    /// The nodes the engine knows.
    fn nodes(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.nodes().await })
    }

    /// close() -> None
    ///
    /// Closes the engine (an embedded one stops its jobs at a clean point;
    /// the next engine on the home carries them on). Later calls raise
    /// `arthapy.Unavailable`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.h.conn.write().ok().and_then(|mut c| c.take());
        if let Some(c) = taken {
            block(py, async move {
                c.close().await;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Engine(home={:?})", self.h.home.display().to_string())
    }
}

/// The content-addressed store of an engine (`engine.store`).
#[pyclass(module = "arthapy._native", frozen)]
pub(crate) struct Store {
    h: Handle,
}

#[pymethods]
impl Store {
    /// push(path: str | os.PathLike[str]) -> dict[str, Any]
    ///
    /// Pushes a file or tree into the store and pins it; returns its
    /// `artha://` URI, CID and sizes.
    fn push(&self, py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.push(&path).await })
    }

    /// get(uri: str, dest: str | os.PathLike[str]) -> dict[str, Any]
    ///
    /// Writes what `uri` names to `dest`, which must not exist.
    fn get(&self, py: Python<'_>, uri: &str, dest: PathBuf) -> PyResult<Py<PyAny>> {
        let uri: ArthaUri = parse(py, "uri", uri)?;
        call(py, &self.h, |c| async move { c.get(&uri, &dest).await })
    }

    /// ls(uri: str) -> dict[str, Any]
    ///
    /// What `uri` names; a directory's entries.
    fn ls(&self, py: Python<'_>, uri: &str) -> PyResult<Py<PyAny>> {
        let uri: ArthaUri = parse(py, "uri", uri)?;
        call(py, &self.h, |c| async move { c.ls(&uri).await })
    }
}

/// The dataset registry of an engine (`engine.datasets`).
#[pyclass(module = "arthapy._native", frozen)]
pub(crate) struct Datasets {
    h: Handle,
}

#[pymethods]
impl Datasets {
    /// register(uri: str, **meta: Any) -> dict[str, Any]
    ///
    /// Registers stored content as a dataset: `name`, `tags` (comma
    /// separated), `license` (the `artha://` URI of its stored licence).
    #[pyo3(signature = (uri, **meta))]
    fn register(
        &self,
        py: Python<'_>,
        uri: &str,
        meta: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let uri: ArthaUri = parse(py, "uri", uri)?;
        let meta: DatasetMeta = from_kwargs("meta", meta)?;
        call(py, &self.h, |c| async move {
            c.register_dataset(&uri, &meta).await
        })
    }

    /// list() -> list[dict[str, Any]]
    ///
    /// Every registered dataset, newest first.
    fn list(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.datasets().await })
    }

    /// get(id: str) -> dict[str, Any]
    ///
    /// A dataset, checked against the chain.
    fn get(&self, py: Python<'_>, id: &str) -> PyResult<Py<PyAny>> {
        let id: DatasetId = parse(py, "id", id)?;
        call(py, &self.h, |c| async move { c.dataset(&id).await })
    }
}

/// The model registry of an engine (`engine.models`).
#[pyclass(module = "arthapy._native", frozen)]
pub(crate) struct Models {
    h: Handle,
}

#[pymethods]
impl Models {
    /// register(uri: str, **registration: Any) -> dict[str, Any]
    ///
    /// Registers stored content as a model: `name`, `architecture`,
    /// `version`, `parent` (a model id), `dataset` (a dataset id),
    /// `code_hash` (0x + 64 hex).
    #[pyo3(signature = (uri, **registration))]
    fn register(
        &self,
        py: Python<'_>,
        uri: &str,
        registration: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let uri: ArthaUri = parse(py, "uri", uri)?;
        let reg: ModelRegistration = from_kwargs("registration", registration)?;
        call(py, &self.h, |c| async move {
            c.register_model(&uri, &reg).await
        })
    }

    /// list() -> list[dict[str, Any]]
    ///
    /// Every registered model, newest first.
    fn list(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        call(py, &self.h, |c| async move { c.models().await })
    }

    /// get(id: str) -> dict[str, Any]
    ///
    /// A model, checked against the chain.
    fn get(&self, py: Python<'_>, id: &str) -> PyResult<Py<PyAny>> {
        let id: ModelId = parse(py, "id", id)?;
        call(py, &self.h, |c| async move { c.model(&id).await })
    }

    /// lineage(id: str) -> list[dict[str, Any]]
    ///
    /// A model and its ancestors, nearest first.
    fn lineage(&self, py: Python<'_>, id: &str) -> PyResult<Py<PyAny>> {
        let id: ModelId = parse(py, "id", id)?;
        call(py, &self.h, |c| async move { c.lineage(&id).await })
    }
}
