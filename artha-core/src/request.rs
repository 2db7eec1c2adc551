//! [`JobRequest`]: what a person names when submitting a job — the
//! `arthai train` flags, the keyword arguments of `arthapy`'s
//! `engine.train(...)`, the options object of `arthajs`'s
//! `engine.train({...})` — every field optional, laid over a [`JobSpec`].
//!
//! One type for every front end, so the CLI and the bindings cannot read
//! the same words differently. Its JSON form (the bindings pass their
//! arguments through it) refuses unknown fields by name.
//!
//! ```
//! use artha_core::{JobKind, JobRequest};
//! let req: JobRequest = serde_json::from_str(
//!     r#"{"dataset":"dataset-4c9cfd1664bab71123fb46ba1cc2e34b","epochs":3,"budget":"2.5 ARTH","hyper":{"hidden":"16"}}"#,
//! ).unwrap();
//! let spec = req.apply(JobKind::Train, None).unwrap();
//! assert_eq!(spec.hyper.epochs, 3);
//! assert_eq!(spec.budget.to_string(), "2.5 ARTH");
//! ```

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{
    Amount, DatasetId, Error, InputRef, JobKind, JobSpec, ModelId, Result, Runtime,
    ValidationErrors,
};

/// The per-GPU memory floor that asking for GPUs implies when no memory is
/// named (as `docker run --gpus N` asks for any N GPUs), MiB.
pub const DEFAULT_GPU_MEMORY_MIB: u64 = 1024;

/// The native runtime a request names when it names none.
pub const DEFAULT_RUNTIME: &str = "mlp";

/// A budget as a person writes it: a bare number is ARTH (`1000` =
/// `1000 ARTH`, as the reference's `--budget 1000`); `2.5 ARTH` and
/// `1000 wei` name the unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BudgetText {
    /// Whole ARTH.
    Arth(u64),
    /// Text with an optional unit.
    Text(String),
}

impl BudgetText {
    /// The amount, in wei.
    pub fn amount(&self) -> Result<Amount> {
        match self {
            BudgetText::Arth(n) => parse_budget(&n.to_string()),
            BudgetText::Text(t) => parse_budget(t),
        }
    }
}

/// Parses a budget as [`BudgetText`] describes; errors name `budget`.
pub fn parse_budget(b: &str) -> Result<Amount> {
    let t = b.trim();
    let text = if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        format!("{t} ARTH")
    } else if let Some(n) = t.strip_suffix("ARTH").or_else(|| t.strip_suffix("arth")) {
        format!("{} ARTH", n.trim())
    } else if let Some(n) = t.strip_suffix("wei") {
        format!("{} wei", n.trim())
    } else {
        t.to_string()
    };
    Amount::from_str(&text).map_err(|e| e.at_field("budget"))
}

/// A free-form hyper-parameter given as text (`KEY=VALUE` on a command
/// line): numbers and booleans are typed, the rest stay text.
pub fn typed_hyper_value(v: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(v)
        .ok()
        .filter(|j| j.is_number() || j.is_boolean())
        .unwrap_or_else(|| serde_json::Value::String(v.to_string()))
}

/// What a front end asks for; see the module docs. `None` leaves the base
/// spec's value (or the default) alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// A registered `model-…` id or an `artha://` URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A registered `dataset-…` id or an `artha://` URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// A native runtime id (`mlp`, `logreg`) or `image:<reference>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Passes over the dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    /// Samples per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Learning rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    /// Seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// Memory each GPU must have, MiB (default with `gpus`:
    /// [`DEFAULT_GPU_MEMORY_MIB`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_mib: Option<u64>,
    /// Longest run, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_secs: Option<u64>,
    /// Budget (see [`BudgetText`]); none means the estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetText>,
    /// Steps per proof window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_window: Option<u32>,
    /// Runtime-specific hyper-parameters, added to the spec's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hyper: BTreeMap<String, serde_json::Value>,
    /// Extra environment for the runtime, added to the spec's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

fn input_ref<Id: FromStr<Err = Error>>(field: &str, s: &str) -> Result<InputRef<Id>> {
    s.parse().map_err(|e: Error| e.at_field(field))
}

impl JobRequest {
    /// The runtime a runtime text names: `image:<reference>` or a native id.
    pub fn runtime_of(text: &str) -> Runtime {
        match text.strip_prefix("image:") {
            Some(img) => Runtime::Image(img.to_string()),
            None => Runtime::Native(text.to_string()),
        }
    }

    /// The spec of `kind`: `base` (a spec file) or a new spec on the named
    /// runtime (default [`DEFAULT_RUNTIME`]), with every named field laid
    /// over it. The budget is zero when neither names one (the engine
    /// fills in its estimate). Fields are parsed, not validated: see
    /// [`JobRequest::precheck`].
    pub fn apply(&self, kind: JobKind, base: Option<JobSpec>) -> Result<JobSpec> {
        let runtime = self.runtime.as_deref().map(Self::runtime_of);
        let mut spec = match base {
            Some(s) => s,
            None => JobSpec::new(
                kind,
                Runtime::Native(DEFAULT_RUNTIME.to_string()),
                Amount::ZERO,
            ),
        };
        if let Some(r) = runtime {
            spec.runtime = r;
        }
        spec.kind = kind;
        if let Some(m) = &self.model {
            spec.model = Some(input_ref::<ModelId>("model", m)?);
        }
        if let Some(d) = &self.dataset {
            spec.dataset = Some(input_ref::<DatasetId>("dataset", d)?);
        }
        let h = &mut spec.hyper;
        if let Some(v) = self.epochs {
            h.epochs = v;
        }
        if let Some(v) = self.batch_size {
            h.batch_size = v;
        }
        if let Some(v) = self.learning_rate {
            h.learning_rate = v;
        }
        if let Some(v) = self.seed {
            h.seed = v;
        }
        h.extra
            .extend(self.hyper.iter().map(|(k, v)| (k.clone(), v.clone())));
        let r = &mut spec.resources;
        if let Some(v) = self.gpus {
            r.gpus = v;
        }
        if let Some(v) = self.gpu_memory_mib {
            r.gpu_memory_mib = v;
        } else if r.gpus > 0 && r.gpu_memory_mib == 0 {
            r.gpu_memory_mib = DEFAULT_GPU_MEMORY_MIB;
        }
        if let Some(v) = self.max_duration_secs {
            r.max_duration_secs = v;
        }
        if let Some(v) = self.proof_window {
            spec.proof_window = v;
        }
        spec.env
            .extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(b) = &self.budget {
            spec.budget = b.amount()?;
        }
        Ok(spec)
    }

    /// Every problem `spec` has on its own, but a zero budget (the
    /// estimate fills it in) — what a front end checks before it reaches
    /// an engine.
    pub fn precheck(spec: &JobSpec) -> std::result::Result<(), ValidationErrors> {
        let mut probe = spec.clone();
        if probe.budget.is_zero() {
            probe.budget = Amount::from_wei(1);
        }
        probe.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn budgets_read_as_the_reference_writes_them() {
        let arth = Amount::parse_arth("1000").unwrap();
        assert_eq!(parse_budget("1000").unwrap(), arth);
        assert_eq!(parse_budget(" 1000 ARTH ").unwrap(), arth);
        assert_eq!(BudgetText::Arth(1000).amount().unwrap(), arth);
        assert_eq!(parse_budget("7 wei").unwrap(), Amount::from_wei(7));
        let e = parse_budget("lots").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.context()
                .iter()
                .any(|(k, v)| *k == "field" && v == "budget")
        );
    }

    #[test]
    fn a_request_lays_its_fields_over_the_base() {
        let mut base = JobSpec::new(
            JobKind::Infer,
            Runtime::Native("logreg".into()),
            Amount::from_wei(5),
        );
        base.hyper.epochs = 9;
        let req = JobRequest {
            batch_size: Some(8),
            gpus: Some(2),
            hyper: [("hidden".to_string(), typed_hyper_value("16"))].into(),
            ..JobRequest::default()
        };
        let spec = req.apply(JobKind::Train, Some(base)).unwrap();
        assert_eq!(spec.kind, JobKind::Train);
        assert_eq!(spec.runtime, Runtime::Native("logreg".into()));
        assert_eq!((spec.hyper.epochs, spec.hyper.batch_size), (9, 8));
        assert_eq!(spec.resources.gpu_memory_mib, DEFAULT_GPU_MEMORY_MIB);
        assert_eq!(spec.hyper.extra["hidden"], serde_json::json!(16));
        assert_eq!(spec.budget, Amount::from_wei(5));
        let img = JobRequest {
            runtime: Some("image:artha/torch:1".into()),
            ..JobRequest::default()
        }
        .apply(JobKind::Train, None)
        .unwrap();
        assert_eq!(img.runtime, Runtime::Image("artha/torch:1".into()));
        assert!(img.budget.is_zero());
    }

    #[test]
    fn bad_fields_are_named() {
        let e = serde_json::from_str::<JobRequest>(r#"{"epoch": 3}"#).unwrap_err();
        assert!(e.to_string().contains("epoch"), "{e}");
        let e = JobRequest {
            model: Some("weights.bin".into()),
            ..JobRequest::default()
        }
        .apply(JobKind::Train, None)
        .unwrap_err();
        assert!(
            e.context()
                .iter()
                .any(|(k, v)| *k == "field" && v == "model")
        );
    }
}
