//! The chain suite now lives in `artha_engine::testing::chain` (feature
//! `testing`); this re-exports it for the chain tests, with `run` the name
//! they know `run_all` by.
#![allow(unused_imports, unreachable_pub)]

pub use artha_engine::testing::chain::run_all as run;
pub use artha_engine::testing::chain::*;
