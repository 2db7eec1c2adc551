//! # artha-engine
//!
//! The embeddable Artha engine. Programs, the `arthai` daemon and the Python
//! and Node bindings all drive the same engine through this crate.
//!
//! Modules:
//! - [`home`]: the engine's home directory, the on-disk layout every other
//!   module lives in, and the lock that keeps two engines off one home;
//! - [`engine`]: the composition root — the [`Engine`] and [`engine::Job`]
//!   handles and the builder with a slot per part (store, executors,
//!   scheduler, chain) — and `lifecycle`, one job's state machine with a
//!   module per phase (schedule → stage → run → prove → settle);
//! - [`config`]: `artha.toml` and the `ARTHA_*` overrides;
//! - [`chain`]: the EVM chain the contracts run on (embedded revm by default);
//! - [`exec`]: executors (Docker containers, native processes), GPU
//!   inventory and allocation, and the supervisor that follows a job's events;
//! - the job ledger (lifecycle, history, progress, artifacts, receipts) in
//!   SQLite, internal; its records are `artha_core::JobRecord`;
//! - [`policy`]: did:key identities, signed credentials, budget and rate checks;
//! - [`proofs`]: events → step records → window and job roots → one
//!   commitment; audit selection and replay comparison;
//! - [`sched`]: placement by hard constraints and a weighted score;
//! - [`store`]: the SVDB, content-addressed chunked storage (local files or
//!   S3) with manifests, dedup, verify-on-read, pins, GC and materialize.
//!
//! Feature flags: `docker` (default; the bollard-based Docker executor) and
//! `gpu` (NVML inventory; without it, or without a driver, the inventory is
//! configured), `s3` (the S3-compatible SVDB backend), `testing` (the
//! public conformance suites in `testing`, for custom backends).
#![deny(missing_docs)]

pub mod api;
pub mod chain;
pub mod config;
mod connect;
pub mod dispute;
pub mod engine;
pub mod exec;
mod fsutil;
pub mod home;
pub(crate) mod jobs;
mod lifecycle;
pub mod policy;
pub mod proofs;
pub mod quickstart;
#[cfg(feature = "client")]
pub mod remote;
pub mod sched;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verify;

pub use connect::{Connection, connect, connect_or};

pub use artha_core as core;
pub use engine::{Engine, EngineBuilder};
pub use home::EngineHome;
