//! Chains: where jobs, commitments and payments are recorded.
//!
//! - [`embedded`] (feature `embedded-chain`, default): an EVM inside the
//!   engine (revm), persisted under the engine home.
#[cfg(feature = "embedded-chain")]
pub mod embedded;
