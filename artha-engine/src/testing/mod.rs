//! Conformance suites for the engine's seams (feature `testing`).
//!
//! Write your own [`BlobStore`](artha_core::BlobStore),
//! [`Executor`](artha_core::Executor) or EVM backend and run the same
//! behaviour checks the engine's own backends run, in the style of
//! `object_store`'s `integration` module:
//!
//! - [`store`]: the [`BlobStore`](artha_core::BlobStore) contract and the
//!   SVDB on top of it (round trips, dedup, materialize, pins and GC,
//!   corruption, missing content, path traversal, hostile manifests, tree
//!   limits). Run against [`LocalBlobStore`](crate::store::LocalBlobStore)
//!   and, with feature `s3`, [`S3BlobStore`](crate::store::S3BlobStore) on a
//!   real S3 server.
//! - [`executor`]: the [`Executor`](artha_core::Executor) contract (launch
//!   and the events file, exit codes, stop, logs, remove, list, a second
//!   launch of one job). Generic over the runtime: an [`ExecutorFixture`]
//!   says what to launch — a native program for
//!   [`ProcessExecutor`](crate::exec::ProcessExecutor), an image for
//!   [`DockerExecutor`](crate::exec::DockerExecutor).
//! - [`chain`]: the Artha contracts on an
//!   [`EvmBackend`](crate::chain::EvmBackend), driven through
//!   [`ProofChain`](artha_core::ProofChain) and the contract bindings
//!   (parties and roles, registries, submission, commitment and
//!   settlement, failure, challenges). Run against the embedded EVM and a real anvil. Its
//!   [`proof_chain_contract`](chain::proof_chain_contract) scenario uses
//!   only the [`ProofChain`](artha_core::ProofChain) trait, for a chain
//!   that is not an EVM backend.
//!
//! Each scenario is a public async function taking the implementation
//! under test; each module has a `run_all` that runs every scenario. A
//! scenario **panics** on the first failed check, as a test does, with a
//! message saying what was checked; `run_all` (and `run_scenario` in
//! [`store`] and [`executor`]) re-raise that panic with the suite's and
//! the scenario's names in front, e.g. ``store scenario `pins_and_gc`
//! failed: …``, so the failing scenario is named. Call them from
//! `#[tokio::test]` functions (a multi-threaded runtime: some scenarios
//! run tasks concurrently).
//!
//! The suites use real files under a temporary directory
//! ([`tempfile`], re-exported so your harness can use the same version),
//! and need no network of their own: services (an S3 server, dockerd,
//! anvil) are whatever your backend talks to.
//!
//! # Example: a custom blob store
//!
//! ```no_run
//! use artha_engine::store::{LocalBlobStore, StoreBackend, Svdb};
//! use artha_engine::testing::store::{self, CS, Harness, Tamper};
//!
//! // Your backend: a BlobStore that is also a StoreBackend (the defaults of
//! // StoreBackend are fine) and lets the suite damage a blob (Tamper).
//! // Here the local store stands in for it.
//! async fn make() -> Harness<LocalBlobStore> {
//!     let tmp = artha_engine::testing::tempfile::tempdir().unwrap();
//!     let dir = tmp.path().join("store");
//!     let open = move || Svdb::open_dir(&dir).unwrap().with_chunk_size(CS).unwrap();
//!     Harness { svdb: open(), tmp, links: true, reopen: Box::new(open) }
//! }
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn my_store_conforms() {
//!     store::run_all(make).await;
//! }
//! ```
//!
//! # Example: a custom executor
//!
//! ```no_run
//! use std::time::Duration;
//! use artha_core::Runtime;
//! use artha_engine::exec::ProcessExecutor;
//! use artha_engine::testing::executor::{self, ExecutorFixture};
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn my_executor_conforms() {
//!     let tmp = artha_engine::testing::tempfile::tempdir().unwrap();
//!     // The runtime must understand the `artha-testrt` script (see
//!     // `executor`): here the test runtime built by `cargo build -p artha-testrt`.
//!     let ex = ProcessExecutor::new(tmp.path())
//!         .with_runtime("testrt", "target/debug/artha-testrt", &[]);
//!     let fixture = ExecutorFixture {
//!         runtime: Runtime::Native("testrt".into()),
//!         jobs_root: tmp.path().to_path_buf(),
//!         stop_grace: Duration::from_secs(1),
//!     };
//!     executor::run_all(&ex, &fixture).await;
//! }
//! ```
//!
//! # Example: a custom EVM backend
//!
//! ```no_run
//! # #[cfg(feature = "embedded-chain")]
//! # async fn f() {
//! use std::sync::Arc;
//! use artha_engine::chain::embedded::EmbeddedEvm;
//! use artha_engine::testing::chain;
//!
//! // Any EvmBackend that signs for the five accounts (admin, scheduler,
//! // worker, submitter, verifier): deploys the contracts as the admin, runs
//! // every scenario with each write sent by its party. The accounts must
//! // hold funds (here the embedded chain mints them).
//! let evm = Arc::new(EmbeddedEvm::in_memory());
//! let accounts = chain::dev_accounts();
//! for a in accounts.all() {
//!     evm.fund(a, chain::FUNDING).unwrap();
//! }
//! chain::run_all(evm, accounts).await;
//! # }
//! ```
//!
//! In this repository `tests/run.sh` enables the feature
//! (`artha-engine/testing`) and the tests under `artha-engine/tests/`
//! (`store_local`, `store_s3`, `exec_process`, `exec_docker`,
//! `chain_embedded`, `chain_anvil`) run these suites on every backend.
#![allow(clippy::expect_used)] // a failed check panics with a message: that is the point

pub mod chain;
pub mod executor;
pub mod store;

pub use executor::ExecutorFixture;
pub use tempfile;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

/// Runs one scenario; a panic inside it is re-raised with the suite's and
/// the scenario's names in front of the original message.
pub(crate) async fn scenario<F: Future<Output = ()>>(suite: &str, name: &str, fut: F) {
    if let Err(payload) = AssertUnwindSafe(fut).catch_unwind().await {
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(a panic without a message)");
        panic!("{suite} scenario `{name}` failed: {msg}");
    }
}
