//! The runtime protocol: what a job sees and what it reports (DESIGN §5).
//!
//! A job gets four mounts, a fixed environment, and writes one JSON object
//! per line to `$ARTHA_EVENTS`. This module holds the names and the event
//! grammar so the engine, the runtimes and the bindings agree on them.
//! Event lines are untrusted input: [`RuntimeEvent::parse_line`] validates
//! each one and names the problem.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::Blake3Digest;
use crate::ids::JobId;
use crate::proof::{InferRecord, StepRecord};
use crate::spec::JobSpec;

/// Container path of the model input (read-only).
pub const MODEL_MOUNT: &str = "/model";
/// Container path of the data input (read-only).
pub const DATA_MOUNT: &str = "/data";
/// Container path of the checkpoint directory (read-write).
pub const CHECKPOINT_MOUNT: &str = "/checkpoints";
/// Container path of the engine's exchange directory (read-write).
pub const ARTHA_MOUNT: &str = "/artha";
/// Container path of the events file.
pub const EVENTS_PATH: &str = "/artha/events.jsonl";

/// Longest accepted events line, bytes.
pub const MAX_EVENT_LINE: usize = 64 * 1024;

/// The environment the engine gives every job (before the spec's own
/// `env`, which may not override these names).
pub fn runtime_env(job_id: &JobId, spec: &JobSpec) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("ARTHA_JOB_ID".into(), job_id.to_string());
    env.insert("ARTHA_JOB_KIND".into(), spec.kind.to_string());
    env.insert("EPOCHS".into(), spec.hyper.epochs.to_string());
    env.insert("BATCH_SIZE".into(), spec.hyper.batch_size.to_string());
    env.insert(
        "LEARNING_RATE".into(),
        format!("{:?}", spec.hyper.learning_rate),
    );
    env.insert("ARTHA_SEED".into(), spec.hyper.seed.to_string());
    env.insert("ARTHA_PROOF_WINDOW".into(), spec.proof_window.to_string());
    env.insert("ARTHA_EVENTS".into(), EVENTS_PATH.into());
    for (k, v) in &spec.env {
        env.entry(k.clone()).or_insert_with(|| v.clone());
    }
    env
}

/// One line of `$ARTHA_EVENTS`.
///
/// JSON form: an object with an `"event"` tag, e.g.
/// `{"event":"step","step":1,"epoch":0,"loss":0.69,"grad_digest":"…","weight_digest":"…","batch_digest":"…"}`.
/// Digests are 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase", deny_unknown_fields)]
pub enum RuntimeEvent {
    /// A training step.
    Step(StepRecord),
    /// A checkpoint was written.
    Checkpoint {
        /// Path relative to the checkpoint directory.
        path: String,
        /// Step the checkpoint was taken after.
        step: u64,
    },
    /// An inference request was served.
    Infer(InferRecord),
    /// Free-form progress text.
    Log {
        /// The message.
        message: String,
    },
    /// The runtime finished; its claims are checked, never trusted.
    Complete {
        /// The job's step count: the number of the last step (a run
        /// resumed from the checkpoint after step `k` that runs `n` more
        /// reports `k + n`).
        steps: u64,
        /// Digest of the final weights.
        final_weights: Blake3Digest,
    },
    /// The runtime failed.
    Error {
        /// Why.
        message: String,
    },
}

impl RuntimeEvent {
    /// Parses and checks one events line; the error names the line number.
    pub fn parse_line(line_no: u64, line: &str) -> Result<Self> {
        let at = |e: Error| e.with_context("line", line_no.to_string());
        if line.len() > MAX_EVENT_LINE {
            return Err(at(Error::invalid(
                "events",
                format!("line longer than {MAX_EVENT_LINE} bytes"),
            )));
        }
        let ev: RuntimeEvent = serde_json::from_str(line)
            .map_err(|e| at(Error::invalid("events", format!("malformed event: {e}"))))?;
        match &ev {
            RuntimeEvent::Step(s) => s.validate().map_err(at)?,
            RuntimeEvent::Checkpoint { path, .. } => crate::uri::validate_path(path)
                .map_err(|e| at(e.with_context("event", "checkpoint")))?,
            _ => {}
        }
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Amount;
    use crate::spec::{JobKind, Runtime};

    #[test]
    fn env_has_protocol_names_and_spec_env() {
        let mut spec = JobSpec::new(
            JobKind::Train,
            Runtime::Native("mlp".into()),
            Amount::from_wei(1),
        );
        spec.env.insert("HF_HOME".into(), "/tmp/hf".into());
        let env = runtime_env(&JobId::from_bytes([1; 16]), &spec);
        assert_eq!(env["EPOCHS"], "1");
        assert_eq!(env["LEARNING_RATE"], "0.001");
        assert_eq!(env["ARTHA_EVENTS"], EVENTS_PATH);
        assert_eq!(env["HF_HOME"], "/tmp/hf");
    }

    #[test]
    fn events_parse_and_reject() {
        let d = "ab".repeat(32);
        let line = format!(
            r#"{{"event":"step","step":1,"epoch":0,"loss":0.5,"grad_digest":"{d}","weight_digest":"{d}","batch_digest":"{d}"}}"#
        );
        assert!(matches!(
            RuntimeEvent::parse_line(1, &line).unwrap(),
            RuntimeEvent::Step(_)
        ));
        let ck = r#"{"event":"checkpoint","path":"step-10.safetensors","step":10}"#;
        assert!(RuntimeEvent::parse_line(2, ck).is_ok());
        for (bad, needle) in [
            ("not json", "malformed"),
            (r#"{"event":"teleport"}"#, "malformed"),
            (r#"{"event":"checkpoint","path":"../x","step":1}"#, "`..`"),
            (&line.replace(&d, &d.to_uppercase()) as &str, "malformed"),
        ] {
            let e = RuntimeEvent::parse_line(7, bad).unwrap_err();
            assert!(e.to_string().contains(needle), "{bad}: {e}");
            assert_eq!(e.context_value("line"), Some("7"));
        }
    }
}
