//! # artha-core
//!
//! The vocabulary of Artha, shared by the engine, the bindings, the runtimes
//! and the browser:
//!
//! - content ids and URIs: [`Cid`] (`b3:<hex>`), [`ArthaUri`] (`artha://<cid>[/path]`);
//! - typed hashes: [`Blake3Digest`] for bulk data, [`KeccakHash`] for Merkle trees;
//! - identities and credentials: [`Did`] (`did:key`), [`SignedCredential`];
//! - typed ids: [`JobId`], [`NodeId`], [`ModelId`], [`DatasetId`];
//! - jobs: [`JobSpec`] with [`JobSpec::validate`], and [`JobRequest`], what
//!   a front end (CLI flags, binding arguments) lays over one;
//! - money in integer base units: [`Amount`], [`CostModel`];
//! - proofs: [`StepRecord`], [`InferRecord`], [`CompleteRecord`] with a canonical
//!   encoding, and keccak Merkle trees ([`merkle`]);
//! - the runtime protocol ([`protocol`]);
//! - the engine's seams: [`BlobStore`], [`Executor`], [`Scheduler`], [`ProofChain`];
//! - structured errors: [`Error`], [`ErrorKind`].
//!
//! The crate does no I/O and pulls in no async runtime; it builds for
//! `wasm32-unknown-unknown`.
#![deny(missing_docs)]

/// Implements serde for a type through its `Display` / `FromStr` text form,
/// so JSON carries exactly the strict text form and parsing errors are the
/// type's own.
macro_rules! serde_as_str {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub mod audit;
pub mod error;
pub mod hash;
pub mod identity;
pub mod ids;
pub mod job;
pub mod merkle;
pub mod money;
pub mod proof;
pub mod protocol;
pub mod request;
pub mod spec;
pub mod traits;
pub mod uri;

pub use error::{Error, ErrorKind, FieldError, Result, ValidationErrors};
pub use hash::{Blake3Digest, Cid, DType, KeccakHash, tensor_digest, tensor_digest_f32};
pub use identity::{Credential, Did, SignedCredential};
pub use ids::{DatasetId, JobId, ModelId, NodeId};
pub use job::{
    Artifact, ArtifactKind, ChainAction, JobEvent, JobOutcome, JobPhase, JobProgress, JobRecord,
    JobStatus, ReceiptRecord, ReceiptType, ReceiptView, Transition,
};
pub use merkle::{JobTree, MerkleProof, MerkleTree, StepProof};
pub use money::{Amount, CostModel, Estimate};
pub use proof::{CompleteRecord, InferRecord, StepRecord};
pub use protocol::RuntimeEvent;
pub use request::{BudgetText, JobRequest};
pub use spec::{
    DatasetRef, HyperParams, InputRef, JobKind, JobSpec, ModelRef, Resources, Runtime,
    native_env_refusal,
};
pub use traits::{
    BlobStore, Chain, ChainCommitment, ChainJobStatus, ChainSubmission, Challenge, Commitment,
    DatasetRegistration, Escrow, ExecHandle, ExecState, Executor, ExitReason, JobTerms, LaunchSpec,
    Limits, LogLine, MaybeSend, MaybeSync, ModelRecord, Mounts, NodeRegistration, NodeStanding,
    NodeView, Party, Placement, PlacementRequest, ProofChain, Receipt, Registry, Scheduler,
};
pub use uri::ArthaUri;
