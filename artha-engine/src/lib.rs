//! # artha-engine
//!
//! The embeddable Artha engine. Programs, the `arthai` daemon and the Python
//! and Node bindings all drive the same engine through this crate.
//!
//! This release holds the engine's home directory ([`home`]): the on-disk
//! layout every other module (store, chain state, job database) lives in,
//! and the lock that keeps two engines from opening one home at once.
//! Storage, execution, chain and the job lifecycle arrive as modules of this
//! crate behind the feature flags listed in the repository's DESIGN notes.
#![deny(missing_docs)]

pub mod home;
pub mod quickstart;

pub use artha_core as core;
pub use home::EngineHome;
