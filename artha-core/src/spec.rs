//! [`JobSpec`]: what a user asks the engine to run, versioned and validated.
//!
//! A spec is plain data (serde, JSON in files and over HTTP). It is checked
//! in two steps: [`JobSpec::validate`] checks everything the spec says about
//! itself and returns **every** problem with its field path;
//! [`JobSpec::validate_with`] also checks the budget against a
//! [`CostModel`]'s estimate.
//!
//! ```
//! use artha_core::{JobSpec, JobKind};
//! let spec: JobSpec = serde_json::from_str(r#"{
//!     "version": 1,
//!     "kind": "train",
//!     "runtime": {"native": "mlp"},
//!     "dataset": "artha://b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
//!     "hyper": {"epochs": 3, "batch_size": 64, "learning_rate": 0.001, "seed": 7},
//!     "resources": {"gpus": 1, "gpu_memory_mib": 1024, "cpu_millis": 1000,
//!                   "memory_mib": 512, "max_duration_secs": 600},
//!     "budget": "1 ARTH"
//! }"#).unwrap();
//! assert_eq!(spec.kind, JobKind::Train);
//! spec.validate().unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ValidationErrors};
use crate::ids::{DatasetId, ModelId};
use crate::money::{Amount, CostModel};
use crate::uri::ArthaUri;

/// The spec version this build reads and writes.
pub const SPEC_VERSION: u32 = 1;

/// Limits enforced by [`JobSpec::validate`].
pub mod limits {
    /// Most GPUs one job may ask for (one node's worth).
    pub const MAX_GPUS: u32 = 8;
    /// Most GPU memory per GPU, MiB (1 TiB).
    pub const MAX_GPU_MEMORY_MIB: u64 = 1 << 20;
    /// Most CPU, in thousandths of a core (256 cores).
    pub const MAX_CPU_MILLIS: u32 = 256_000;
    /// Most memory, MiB (4 TiB).
    pub const MAX_MEMORY_MIB: u64 = 4 << 20;
    /// Longest run, seconds (30 days).
    pub const MAX_DURATION_SECS: u64 = 30 * 24 * 3600;
    /// Most epochs.
    pub const MAX_EPOCHS: u32 = 100_000;
    /// Largest batch.
    pub const MAX_BATCH: u32 = 1 << 20;
    /// Largest learning rate accepted.
    pub const MAX_LEARNING_RATE: f64 = 10.0;
    /// Largest proof window, steps.
    pub const MAX_PROOF_WINDOW: u32 = 1_000_000;
    /// Most environment variables.
    pub const MAX_ENV: usize = 128;
    /// Longest environment variable name.
    pub const MAX_ENV_KEY: usize = 128;
    /// Longest environment variable value, bytes.
    pub const MAX_ENV_VALUE: usize = 4096;
    /// Most free-form hyper-parameters.
    pub const MAX_EXTRA: usize = 64;
    /// Longest free-form hyper-parameter value, bytes of its JSON text (it
    /// reaches the runtime as an environment variable).
    pub const MAX_EXTRA_VALUE: usize = 4096;
    /// Longest image reference or runtime id.
    pub const MAX_IMAGE: usize = 256;
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Train (or fine-tune) a model on a dataset.
    Train,
    /// Run a model over inputs.
    Infer,
    /// Run an agent program.
    Agent,
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobKind::Train => "train",
            JobKind::Infer => "infer",
            JobKind::Agent => "agent",
        })
    }
}

/// What runs the job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Runtime {
    /// A container image reference, run by the Docker executor.
    Image(String),
    /// A native runtime id (e.g. `mlp`), run by the process executor.
    Native(String),
}

/// A reference to an input: a registry id or a content URI.
///
/// Text form: `model-…` / `dataset-…` for registry ids, `artha://…` for
/// content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InputRef<Id> {
    /// A registered model or dataset.
    Id(Id),
    /// Content in the store.
    Uri(ArthaUri),
}

/// A model input.
pub type ModelRef = InputRef<ModelId>;
/// A dataset input.
pub type DatasetRef = InputRef<DatasetId>;

impl<Id: fmt::Display> fmt::Display for InputRef<Id> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputRef::Id(id) => id.fmt(f),
            InputRef::Uri(u) => u.fmt(f),
        }
    }
}

impl<Id: FromStr<Err = Error>> FromStr for InputRef<Id> {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.starts_with(ArthaUri::SCHEME) {
            s.parse().map(InputRef::Uri)
        } else {
            s.parse().map(InputRef::Id)
        }
    }
}

impl<Id: fmt::Display> Serialize for InputRef<Id> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, Id: FromStr<Err = Error>> Deserialize<'de> for InputRef<Id> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Training hyper-parameters (also read by inference and agents where they
/// apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HyperParams {
    /// Passes over the dataset.
    #[serde(default = "one")]
    pub epochs: u32,
    /// Samples per step.
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// Optimizer learning rate; finite and in (0, 10].
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// Seed of every random choice the runtime makes; with a deterministic
    /// runtime it makes the job replayable.
    #[serde(default)]
    pub seed: u64,
    /// Runtime-specific parameters (optimizer name, hidden sizes, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn one() -> u32 {
    1
}
fn default_batch() -> u32 {
    32
}
fn default_lr() -> f64 {
    1e-3
}
fn default_proof_window() -> u32 {
    100
}
fn default_version() -> u32 {
    SPEC_VERSION
}

impl Default for HyperParams {
    fn default() -> Self {
        HyperParams {
            epochs: one(),
            batch_size: default_batch(),
            learning_rate: default_lr(),
            seed: 0,
            extra: BTreeMap::new(),
        }
    }
}

/// What the job needs from a node. A field left out of a spec takes its
/// default (see [`Resources::default`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// GPUs (0 for a CPU-only job, at most 8).
    pub gpus: u32,
    /// Memory needed on each GPU, MiB; 0 when `gpus` is 0.
    #[serde(default)]
    pub gpu_memory_mib: u64,
    /// CPU in thousandths of a core (1000 = one core).
    pub cpu_millis: u32,
    /// Memory limit, MiB.
    pub memory_mib: u64,
    /// Wall-clock limit, seconds; the job is stopped past it.
    pub max_duration_secs: u64,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            gpus: 0,
            gpu_memory_mib: 0,
            cpu_millis: 1000,
            memory_mib: 1024,
            max_duration_secs: 3600,
        }
    }
}

/// A request to run one job. See the module docs for the JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Spec format version; this build reads [`SPEC_VERSION`].
    #[serde(default = "default_version")]
    pub version: u32,
    /// Train, infer or agent.
    pub kind: JobKind,
    /// Image or native runtime.
    pub runtime: Runtime,
    /// Model to start from (required for inference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    /// Training data or inference inputs (required for train and infer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetRef>,
    /// Hyper-parameters.
    #[serde(default)]
    pub hyper: HyperParams,
    /// Resources.
    #[serde(default)]
    pub resources: Resources,
    /// Most the submitter will pay; locked in escrow at submission.
    pub budget: Amount,
    /// Steps per proof window (Merkle tree of step records).
    #[serde(default = "default_proof_window")]
    pub proof_window: u32,
    /// Extra environment for the runtime.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// Environment names the engine sets itself; a spec may not override them.
pub const RESERVED_ENV: &[&str] = &["EPOCHS", "BATCH_SIZE", "LEARNING_RATE"];

/// Why a native runtime (a process on the host, not in a container) may not
/// receive the variable `name` from a spec, or `None` when it may.
///
/// A native job's environment is an allow-list: a user variable is passed
/// only when its name is not one that changes what the host's loader,
/// shell or an interpreter executes. Refused are the dynamic loader's
/// variables (`LD_*`, `DYLD_*`, `GLIBC_TUNABLES`, `MALLOC_*`, `GCONV_PATH`,
/// `LOCPATH`, `NLSPATH`, `HOSTALIASES`, `RES_OPTIONS`, `LOCALDOMAIN`),
/// every search path (a name that is or ends in `PATH`: `PATH`,
/// `PYTHONPATH`, `CLASSPATH`, `LIBRARY_PATH`, …), interpreter start-up
/// hooks (`PYTHON*`, `PERL*`, `RUBY*`, `NODE_*`, `JAVA_*`, `_JAVA_*`,
/// `JDK_*`, `BASH_*`, `ENV`, `IFS`, `SHELLOPTS`, `PS4`), the process's
/// identity and scratch places (`HOME`, `SHELL`, `USER`, `LOGNAME`,
/// `TMPDIR`), and what the engine sets itself (`CUDA_VISIBLE_DEVICES`,
/// `ARTHA_*`). Everything else (`OMP_NUM_THREADS`, `RAYON_NUM_THREADS`,
/// `HF_HOME`, `MY_SETTING`, …) passes. Container runtimes are not limited
/// by this rule: their environment is the image's own business.
pub fn native_env_refusal(name: &str) -> Option<&'static str> {
    const PREFIXES: &[(&str, &str)] = &[
        ("LD_", "dynamic loader variables"),
        ("DYLD_", "dynamic loader variables"),
        ("MALLOC_", "allocator hooks"),
        ("GLIBC_", "C library tunables"),
        ("PYTHON", "interpreter start-up variables"),
        ("PERL", "interpreter start-up variables"),
        ("RUBY", "interpreter start-up variables"),
        ("NODE_", "interpreter start-up variables"),
        ("JAVA_", "interpreter start-up variables"),
        ("_JAVA_", "interpreter start-up variables"),
        ("JDK_", "interpreter start-up variables"),
        ("BASH_", "shell start-up variables"),
        ("ARTHA_", "variables the engine sets"),
    ];
    const NAMES: &[(&str, &str)] = &[
        ("GCONV_PATH", "loader search paths"),
        ("LOCPATH", "loader search paths"),
        ("NLSPATH", "loader search paths"),
        ("HOSTALIASES", "resolver configuration"),
        ("RES_OPTIONS", "resolver configuration"),
        ("LOCALDOMAIN", "resolver configuration"),
        ("ENV", "shell start-up variables"),
        ("IFS", "shell start-up variables"),
        ("SHELLOPTS", "shell start-up variables"),
        ("PS4", "shell start-up variables"),
        ("HOME", "the process's identity"),
        ("SHELL", "the process's identity"),
        ("USER", "the process's identity"),
        ("LOGNAME", "the process's identity"),
        ("TMPDIR", "the process's scratch place"),
        ("CUDA_VISIBLE_DEVICES", "variables the engine sets"),
    ];
    let upper = name.to_ascii_uppercase();
    if let Some((_, why)) = PREFIXES.iter().find(|(p, _)| upper.starts_with(p)) {
        return Some(why);
    }
    if let Some((_, why)) = NAMES.iter().find(|(n, _)| upper == *n) {
        return Some(why);
    }
    if upper.ends_with("PATH") {
        return Some("search paths");
    }
    None
}

impl JobSpec {
    /// A spec of `kind` on `runtime` with default hyper-parameters and
    /// resources.
    pub fn new(kind: JobKind, runtime: Runtime, budget: Amount) -> Self {
        JobSpec {
            version: SPEC_VERSION,
            kind,
            runtime,
            model: None,
            dataset: None,
            hyper: HyperParams::default(),
            resources: Resources::default(),
            budget,
            proof_window: default_proof_window(),
            env: BTreeMap::new(),
        }
    }

    /// Checks everything the spec says about itself; returns every problem,
    /// each with its field path.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut v = ValidationErrors::new();
        self.check(&mut v);
        v.into_result()
    }

    /// [`validate`](Self::validate), plus `budget ≥ cost_model.estimate(self)`.
    pub fn validate_with(&self, cost_model: &CostModel) -> Result<(), ValidationErrors> {
        let mut v = ValidationErrors::new();
        self.check(&mut v);
        match cost_model.estimate(self) {
            Ok(est) if self.budget < est.cost => v.push(
                "budget",
                format!(
                    "{} is below the estimate {} ({} GPU-s × {})",
                    self.budget, est.cost, est.gpu_seconds, cost_model.rate_per_gpu_second
                ),
            ),
            Ok(_) => {}
            Err(e) => v.push("budget", format!("cannot estimate cost: {}", e.message())),
        }
        v.into_result()
    }

    fn check(&self, v: &mut ValidationErrors) {
        use limits::*;
        if self.version != SPEC_VERSION {
            v.push(
                "version",
                format!(
                    "unsupported version {}; this build reads {SPEC_VERSION}",
                    self.version
                ),
            );
        }
        match &self.runtime {
            Runtime::Image(image) => check_image(v, image),
            Runtime::Native(id) => {
                if id.is_empty() || id.len() > 64 {
                    v.push("runtime.native", "must be 1 to 64 characters");
                } else if !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                {
                    v.push("runtime.native", "may hold only a-z, 0-9 and `-`");
                }
            }
        }
        match self.kind {
            JobKind::Train if self.dataset.is_none() => {
                v.push("dataset", "required for a train job")
            }
            JobKind::Infer => {
                if self.model.is_none() {
                    v.push("model", "required for an infer job");
                }
                if self.dataset.is_none() {
                    v.push("dataset", "required for an infer job (the inputs)");
                }
            }
            _ => {}
        }

        let h = &self.hyper;
        if h.epochs == 0 || h.epochs > MAX_EPOCHS {
            v.push(
                "hyper.epochs",
                format!("must be between 1 and {MAX_EPOCHS}"),
            );
        }
        if h.batch_size == 0 || h.batch_size > MAX_BATCH {
            v.push(
                "hyper.batch_size",
                format!("must be between 1 and {MAX_BATCH}"),
            );
        }
        if !h.learning_rate.is_finite() {
            v.push("hyper.learning_rate", "must be a finite number");
        } else if h.learning_rate <= 0.0 || h.learning_rate > MAX_LEARNING_RATE {
            v.push(
                "hyper.learning_rate",
                format!("must be > 0 and ≤ {MAX_LEARNING_RATE}"),
            );
        }
        if h.extra.len() > MAX_EXTRA {
            v.push("hyper.extra", format!("at most {MAX_EXTRA} entries"));
        }
        for k in h.extra.keys() {
            if k.is_empty()
                || k.len() > 64
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                v.push(
                    format!("hyper.extra.{k}"),
                    "key must be 1 to 64 characters of a-z, 0-9 and `_`",
                );
            }
        }
        for (k, val) in &h.extra {
            if val.to_string().len() > MAX_EXTRA_VALUE {
                v.push(
                    format!("hyper.extra.{k}"),
                    format!("value longer than {MAX_EXTRA_VALUE} bytes"),
                );
            }
        }

        let r = &self.resources;
        if r.gpus > MAX_GPUS {
            v.push("resources.gpus", format!("must be ≤ {MAX_GPUS}"));
        }
        if r.gpus == 0 && r.gpu_memory_mib != 0 {
            v.push(
                "resources.gpu_memory_mib",
                "must be 0 when resources.gpus is 0",
            );
        }
        if r.gpus > 0 && r.gpu_memory_mib == 0 {
            v.push(
                "resources.gpu_memory_mib",
                "must be ≥ 1 when GPUs are requested",
            );
        }
        if r.gpu_memory_mib > MAX_GPU_MEMORY_MIB {
            v.push(
                "resources.gpu_memory_mib",
                format!("must be ≤ {MAX_GPU_MEMORY_MIB}"),
            );
        }
        if r.cpu_millis == 0 || r.cpu_millis > MAX_CPU_MILLIS {
            v.push(
                "resources.cpu_millis",
                format!("must be between 1 and {MAX_CPU_MILLIS}"),
            );
        }
        if r.memory_mib < 4 || r.memory_mib > MAX_MEMORY_MIB {
            v.push(
                "resources.memory_mib",
                format!("must be between 4 and {MAX_MEMORY_MIB}"),
            );
        }
        if r.max_duration_secs == 0 || r.max_duration_secs > MAX_DURATION_SECS {
            v.push(
                "resources.max_duration_secs",
                format!("must be between 1 and {MAX_DURATION_SECS}"),
            );
        }

        if self.budget.is_zero() {
            v.push("budget", "must be greater than zero");
        }
        if self.proof_window == 0 || self.proof_window > MAX_PROOF_WINDOW {
            v.push(
                "proof_window",
                format!("must be between 1 and {MAX_PROOF_WINDOW}"),
            );
        }

        if self.env.len() > MAX_ENV {
            v.push("env", format!("at most {MAX_ENV} variables"));
        }
        for (k, val) in &self.env {
            let field = format!("env.{k}");
            let valid_name = !k.is_empty()
                && k.len() <= MAX_ENV_KEY
                && !k.as_bytes()[0].is_ascii_digit()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                v.push(
                    field.clone(),
                    "name must match [A-Za-z_][A-Za-z0-9_]{0,127}",
                );
            } else if k.starts_with("ARTHA_") || RESERVED_ENV.contains(&k.as_str()) {
                v.push(
                    field.clone(),
                    "is set by the engine and may not be overridden",
                );
            } else if let (Runtime::Native(_), Some(why)) = (&self.runtime, native_env_refusal(k)) {
                v.push(
                    field.clone(),
                    format!("not allowed for a native runtime ({why} run code on the host)"),
                );
            }
            if val.len() > MAX_ENV_VALUE {
                v.push(
                    field.clone(),
                    format!("value longer than {MAX_ENV_VALUE} bytes"),
                );
            }
            if val.contains('\0') {
                v.push(field, "value contains NUL");
            }
        }
    }
}

fn check_image(v: &mut ValidationErrors, image: &str) {
    if image.is_empty() {
        v.push("runtime.image", "must not be empty");
        return;
    }
    if image.len() > limits::MAX_IMAGE {
        v.push(
            "runtime.image",
            format!("longer than {} characters", limits::MAX_IMAGE),
        );
    }
    // Docker reference grammar, simplified: lower-case name components,
    // optional registry host:port, `:tag` and/or `@sha256:…`.
    if !image
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:@".contains(&b))
    {
        v.push(
            "runtime.image",
            "may hold only a-z, 0-9 and `. _ - / : @` (Docker reference syntax)",
        );
    } else if image.starts_with(['.', '-', '/', ':', '@']) || image.ends_with(['/', ':', '@']) {
        v.push("runtime.image", "is not a valid image reference");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Cid;

    fn good() -> JobSpec {
        let mut s = JobSpec::new(
            JobKind::Train,
            Runtime::Native("mlp".into()),
            Amount::from_arth(10).unwrap(),
        );
        s.dataset = Some(InputRef::Uri(ArthaUri::new(Cid::of(b"data"))));
        s.resources.gpus = 1;
        s.resources.gpu_memory_mib = 1024;
        s
    }

    fn problems(s: &JobSpec) -> Vec<String> {
        match s.validate() {
            Ok(()) => vec![],
            Err(e) => e.errors().iter().map(|e| e.field.clone()).collect(),
        }
    }

    #[test]
    fn good_spec_passes_and_round_trips() {
        let s = good();
        s.validate().unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let back: JobSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let mut s = good();
        s.version = 2;
        s.hyper.epochs = 0;
        s.hyper.batch_size = 0;
        s.hyper.learning_rate = f64::NAN;
        s.resources.gpus = 9;
        s.resources.cpu_millis = 0;
        s.resources.memory_mib = 0;
        s.resources.max_duration_secs = 0;
        s.proof_window = 0;
        s.budget = Amount::ZERO;
        s.dataset = None;
        let p = problems(&s);
        for f in [
            "version",
            "hyper.epochs",
            "hyper.batch_size",
            "hyper.learning_rate",
            "resources.gpus",
            "resources.cpu_millis",
            "resources.memory_mib",
            "resources.max_duration_secs",
            "proof_window",
            "budget",
            "dataset",
        ] {
            assert!(p.iter().any(|x| x == f), "missing {f} in {p:?}");
        }
        let e = s.validate().unwrap_err();
        assert!(e.to_string().contains("resources.gpus: must be ≤ 8"), "{e}");
    }

    #[test]
    fn learning_rate_rules() {
        for (lr, ok) in [
            (-0.1, false),
            (0.0, false),
            (f64::INFINITY, false),
            (f64::NEG_INFINITY, false),
            (f64::NAN, false),
            (11.0, false),
            (1e-9, true),
            (10.0, true),
        ] {
            let mut s = good();
            s.hyper.learning_rate = lr;
            assert_eq!(problems(&s).is_empty(), ok, "lr {lr}");
            if !ok {
                assert_eq!(problems(&s), ["hyper.learning_rate"]);
            }
        }
    }

    #[test]
    fn resource_rules() {
        let mut s = good();
        s.resources.gpus = 0;
        assert_eq!(problems(&s), ["resources.gpu_memory_mib"]);
        s.resources.gpu_memory_mib = 0;
        assert!(problems(&s).is_empty(), "CPU-only job is valid");
        s.resources.gpus = 2;
        assert_eq!(problems(&s), ["resources.gpu_memory_mib"]);
        s.resources.gpu_memory_mib = limits::MAX_GPU_MEMORY_MIB + 1;
        assert_eq!(problems(&s), ["resources.gpu_memory_mib"]);
        let mut s = good();
        s.resources.cpu_millis = limits::MAX_CPU_MILLIS + 1;
        s.resources.memory_mib = u64::MAX;
        s.resources.max_duration_secs = u64::MAX;
        assert_eq!(
            problems(&s),
            [
                "resources.cpu_millis",
                "resources.memory_mib",
                "resources.max_duration_secs"
            ]
        );
    }

    #[test]
    fn kind_requirements() {
        let mut s = good();
        s.kind = JobKind::Infer;
        assert_eq!(problems(&s), ["model"]);
        s.dataset = None;
        assert_eq!(problems(&s), ["model", "dataset"]);
        s.kind = JobKind::Agent;
        assert!(problems(&s).is_empty());
    }

    #[test]
    fn runtime_rules() {
        for (rt, field) in [
            (Runtime::Image(String::new()), "runtime.image"),
            (Runtime::Image("Torch:Latest".into()), "runtime.image"),
            (Runtime::Image("torch latest".into()), "runtime.image"),
            (Runtime::Image("x".repeat(300)), "runtime.image"),
            (Runtime::Image("-torch".into()), "runtime.image"),
            (Runtime::Native(String::new()), "runtime.native"),
            (Runtime::Native("MLP".into()), "runtime.native"),
            (Runtime::Native("a".repeat(65)), "runtime.native"),
        ] {
            let mut s = good();
            s.runtime = rt;
            assert_eq!(problems(&s), [field]);
        }
        let mut s = good();
        s.runtime = Runtime::Image("artha/torch-runtime:v1".into());
        assert!(problems(&s).is_empty());
    }

    #[test]
    fn env_rules() {
        let mut s = good();
        s.env.insert("GOOD_NAME".into(), "x".into());
        s.env.insert("1BAD".into(), "x".into());
        s.env.insert(String::new(), "x".into());
        s.env.insert("HAS-DASH".into(), "x".into());
        s.env.insert("ARTHA_JOB_ID".into(), "x".into());
        s.env.insert("EPOCHS".into(), "x".into());
        s.env
            .insert("BIG".into(), "x".repeat(limits::MAX_ENV_VALUE + 1));
        s.env.insert("NUL".into(), "a\0b".into());
        let p = problems(&s);
        assert_eq!(
            p,
            [
                "env.",
                "env.1BAD",
                "env.ARTHA_JOB_ID",
                "env.BIG",
                "env.EPOCHS",
                "env.HAS-DASH",
                "env.NUL"
            ]
        );
    }

    #[test]
    fn native_runtimes_refuse_loader_and_path_variables() {
        let mut s = good();
        s.runtime = Runtime::Native("mlp".into());
        for k in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "ld_audit",
            "PATH",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "CLASSPATH",
            "GCONV_PATH",
            "GLIBC_TUNABLES",
            "NODE_OPTIONS",
            "HOME",
            "BASH_ENV",
            "OMP_NUM_THREADS",
            "MY_SETTING",
        ] {
            s.env.insert(k.into(), "x".into());
        }
        let p = problems(&s);
        assert_eq!(p.len(), 12, "{p:?}");
        assert!(!p.contains(&"env.OMP_NUM_THREADS".to_string()));
        assert!(!p.contains(&"env.MY_SETTING".to_string()));
        assert!(p.contains(&"env.LD_PRELOAD".to_string()));
        // A container keeps its own environment rules.
        s.runtime = Runtime::Image("artha/torch-runtime:v1".into());
        s.env.remove("ld_audit");
        assert!(problems(&s).is_empty(), "{:?}", problems(&s));
    }

    #[test]
    fn extra_values_are_bounded() {
        let mut s = good();
        s.hyper.extra.insert(
            "big".into(),
            serde_json::json!("x".repeat(limits::MAX_EXTRA_VALUE)),
        );
        assert_eq!(problems(&s), ["hyper.extra.big"]);
    }

    #[test]
    fn extra_rules() {
        let mut s = good();
        for i in 0..=limits::MAX_EXTRA {
            s.hyper.extra.insert(format!("k{i}"), serde_json::json!(i));
        }
        assert_eq!(problems(&s), ["hyper.extra"]);
    }

    #[test]
    fn budget_below_estimate() {
        let mut s = good();
        s.resources.max_duration_secs = 4_710;
        let m = CostModel::new(Amount::parse_arth("0.001").unwrap());
        s.budget = Amount::parse_arth("4.71").unwrap();
        s.validate_with(&m).unwrap();
        s.budget = Amount::from_wei(4_709_999_999_999_999_999);
        let e = s.validate_with(&m).unwrap_err();
        assert_eq!(e.errors()[0].field, "budget");
        assert!(
            e.to_string().contains("below the estimate 4.71 ARTH"),
            "{e}"
        );
    }

    #[test]
    fn json_errors_name_the_field() {
        let bad_budget = r#"{"kind":"train","runtime":{"native":"mlp"},"budget":"5"}"#;
        let e = serde_json::from_str::<JobSpec>(bad_budget)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unit is required"), "{e}");
        let unknown = r#"{"kind":"train","runtime":{"native":"mlp"},"budget":"5 ARTH","gpus":1}"#;
        let e = serde_json::from_str::<JobSpec>(unknown)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `gpus`"), "{e}");
        let bad_ref = r#"{"kind":"train","runtime":{"native":"mlp"},"budget":"5 ARTH","dataset":"artha://b3:00/../x"}"#;
        let e = serde_json::from_str::<JobSpec>(bad_ref)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cid"), "{e}");
    }

    #[test]
    fn input_refs_parse_both_forms() {
        let id = DatasetId::from_bytes([1; 16]);
        let r: DatasetRef = id.to_string().parse().unwrap();
        assert_eq!(r, InputRef::Id(id));
        let u = ArthaUri::new(Cid::of(b"d"));
        let r: DatasetRef = u.to_string().parse().unwrap();
        assert_eq!(r, InputRef::Uri(u));
        assert!("model-00".parse::<DatasetRef>().is_err());
    }
}
