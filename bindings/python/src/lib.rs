//! `arthapy._native`: the Artha engine for Python (PyO3, abi3).
//!
//! Conversions and error mapping only (DESIGN §1, §10): every call goes to
//! [`artha_engine::Connection`], values cross as the JSON form of their
//! Rust types (via `pythonize`), keyword arguments of jobs are
//! [`artha_core::JobRequest`], and engine errors become the exception
//! classes of `arthapy.errors` (one per `ErrorKind`). The pure-Python part
//! of the package (`python/arthapy/`) holds the exception classes, the
//! typed events and the re-exports.
//!
//! - **One runtime.** A multi-threaded tokio runtime is made on first use
//!   and shared by every call. After `fork()` the child makes its own (the
//!   parent's threads do not exist there); an engine opened before the
//!   fork belongs to the parent and refuses calls from the child.
//! - **The GIL is released** while the engine works; blocking calls wake
//!   every 100 ms to let Python deliver signals, so Ctrl-C interrupts
//!   `wait()` with `KeyboardInterrupt` (the job goes on).
//! - **Awaitables.** `*_async` methods return asyncio futures completed
//!   from the runtime (cancelling one aborts the engine call, not the job).
#![deny(missing_docs)]

mod aio;
mod convert;
mod core;
mod engine;
mod job;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::Store>()?;
    m.add_class::<engine::Datasets>()?;
    m.add_class::<engine::Models>()?;
    m.add_class::<job::Job>()?;
    m.add_class::<job::EventStream>()?;
    m.add_function(wrap_pyfunction!(engine::connect, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let core = PyModule::new(m.py(), "core")?;
    core::register(&core)?;
    m.add_submodule(&core)?;
    Ok(())
}
