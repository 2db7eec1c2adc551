//! The run configuration, read from the environment (the runtime protocol
//! carries everything in environment variables; see the crate docs for the
//! full list).

use std::path::PathBuf;

use artha_core::protocol::{CHECKPOINT_MOUNT, DATA_MOUNT, EVENTS_PATH, MODEL_MOUNT};
use artha_core::{Error, ErrorKind, Result};
use serde::Deserialize;

use crate::data::Task;
use crate::model::ModelKind;
use crate::optim::{OptimizerConfig, OptimizerKind};

/// What the run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Train (or resume training) and checkpoint.
    Train,
    /// Serve predictions from a trained model.
    Infer,
}

/// Which device runs the tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU, with the fixed-order kernels (bit-reproducible anywhere).
    Cpu,
    /// CUDA device `n` (feature `cuda`).
    Cuda(usize),
}

/// Architecture choices from `$ARTHA_MODEL_DIR/config.json` (all optional;
/// the environment overrides them). A language model (`kind: "llama"`)
/// takes Hugging Face `LlamaConfig` names (`runtimes/LM.md`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// `mlp` or `logreg`.
    pub kind: Option<ModelKind>,
    /// `classify` or `regress`.
    pub task: Option<Task>,
    /// Hidden widths.
    pub hidden: Option<Vec<usize>>,
    /// Number of classes.
    pub classes: Option<usize>,
    /// LM: the tokenizer (`byte` or `char`).
    pub tokenizer: Option<crate::lm::Tokenizer>,
    /// LM: vocabulary size.
    pub vocab_size: Option<usize>,
    /// LM: width.
    pub hidden_size: Option<usize>,
    /// LM: decoder layers.
    pub num_hidden_layers: Option<usize>,
    /// LM: attention heads.
    pub num_attention_heads: Option<usize>,
    /// LM: SwiGLU width.
    pub intermediate_size: Option<usize>,
    /// LM: the longest sequence.
    pub max_position_embeddings: Option<usize>,
    /// LM: ε of RMSNorm.
    pub rms_norm_eps: Option<f64>,
    /// LM: RoPE base.
    pub rope_theta: Option<f64>,
    /// LM: the head is the embedding matrix.
    pub tie_word_embeddings: Option<bool>,
}

impl ModelFile {
    /// Whether the file sets any language-model field.
    pub fn has_lm_fields(&self) -> bool {
        self.tokenizer.is_some()
            || self.vocab_size.is_some()
            || self.hidden_size.is_some()
            || self.num_hidden_layers.is_some()
            || self.num_attention_heads.is_some()
            || self.intermediate_size.is_some()
            || self.max_position_embeddings.is_some()
            || self.rms_norm_eps.is_some()
            || self.rope_theta.is_some()
            || self.tie_word_embeddings.is_some()
    }

    /// The language model this file describes (defaults of
    /// `runtimes/LM.md`), with the char tokenizer's `alphabet`.
    pub fn lm_config(&self, alphabet: Option<String>) -> crate::lm::LmConfig {
        let tokenizer = self.tokenizer.unwrap_or_default();
        let hidden = self.hidden_size.unwrap_or(64);
        let default_vocab = match (&alphabet, tokenizer) {
            (Some(a), crate::lm::Tokenizer::Char) => a.chars().count(),
            _ => 256,
        };
        crate::lm::LmConfig {
            vocab_size: self.vocab_size.unwrap_or(default_vocab),
            hidden_size: hidden,
            num_hidden_layers: self.num_hidden_layers.unwrap_or(2),
            num_attention_heads: self.num_attention_heads.unwrap_or(4),
            intermediate_size: self.intermediate_size.unwrap_or(4 * hidden),
            max_position_embeddings: self.max_position_embeddings.unwrap_or(128),
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-5),
            rope_theta: self.rope_theta.unwrap_or(10_000.0),
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(true),
            tokenizer,
            alphabet: match tokenizer {
                crate::lm::Tokenizer::Char => alphabet,
                crate::lm::Tokenizer::Byte => None,
            },
        }
    }
}

/// Everything a run needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Train or infer.
    pub mode: Mode,
    /// `ARTHA_JOB_ID` (for messages only).
    pub job_id: String,
    /// `EPOCHS`.
    pub epochs: u32,
    /// `BATCH_SIZE`.
    pub batch_size: usize,
    /// `ARTHA_SEED`.
    pub seed: u64,
    /// `ARTHA_PROOF_WINDOW`.
    pub proof_window: u64,
    /// Optimizer (`ARTHA_OPTIMIZER`, `LEARNING_RATE`, `ARTHA_WEIGHT_DECAY`,
    /// `ARTHA_MOMENTUM`).
    pub optimizer: OptimizerConfig,
    /// `ARTHA_MODEL_KIND` (else `config.json`, else `mlp`).
    pub kind: Option<ModelKind>,
    /// `ARTHA_TASK` (else `config.json`, else `classify`).
    pub task: Option<Task>,
    /// `ARTHA_HIDDEN`, comma-separated widths (else `config.json`, else `64`).
    pub hidden: Option<Vec<usize>>,
    /// `ARTHA_CLASSES` (else `config.json`, else the largest label + 1).
    pub classes: Option<usize>,
    /// `ARTHA_CHECKPOINT_EVERY` (default: the proof window).
    pub checkpoint_every: u64,
    /// `ARTHA_RESUME`: `latest` or a checkpoint path.
    pub resume: Option<String>,
    /// `ARTHA_MAX_STEPS`: stop after this global step.
    pub max_steps: Option<u64>,
    /// `ARTHA_DATA_FILE`: the data file's name in the data directory.
    pub data_file: Option<String>,
    /// `ARTHA_WEIGHTS`: the weights file's name in the model directory
    /// (inference; default `model.safetensors`, `final.safetensors` or the
    /// only `.safetensors` file there).
    pub weights: Option<String>,
    /// `ARTHA_LOG_EVERY`: progress line every N steps (0 = per epoch only).
    pub log_every: Option<u64>,
    /// `ARTHA_DEVICE`: `cpu` (default) or `cuda[:N]`.
    pub device: DeviceChoice,
    /// `ARTHA_SEQ_LEN`: a language model's training sequence length
    /// (default: its `max_position_embeddings`).
    pub seq_len: Option<usize>,
    /// `ARTHA_MAX_NEW_TOKENS`: tokens a language model generates per
    /// prompt (default 64).
    pub max_new_tokens: usize,
    /// `ARTHA_TEMPERATURE`: 0 (default) is greedy; above, seeded sampling.
    pub temperature: f64,
    /// `ARTHA_MODEL_DIR` (default `/model`).
    pub model_dir: PathBuf,
    /// `ARTHA_DATA_DIR` (default `/data`).
    pub data_dir: PathBuf,
    /// `ARTHA_CHECKPOINT_DIR` (default `/checkpoints`).
    pub checkpoint_dir: PathBuf,
    /// `ARTHA_OUTPUT_DIR`: where inference writes `predictions.csv`
    /// (default: the checkpoint directory).
    pub output_dir: PathBuf,
    /// `ARTHA_EVENTS` (default `/artha/events.jsonl`).
    pub events: PathBuf,
}

/// Largest batch accepted.
pub const MAX_BATCH: usize = 1 << 20;

fn parse<T: std::str::FromStr>(name: &str, v: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    v.trim().parse::<T>().map_err(|e| {
        Error::invalid(
            name,
            format!(
                "`{}` is not valid: {e}",
                v.chars().take(64).collect::<String>()
            ),
        )
    })
}

impl RunConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let num = |k: &str| -> Result<Option<u64>> { get(k).map(|v| parse(k, &v)).transpose() };
        let float = |k: &str| -> Result<Option<f64>> { get(k).map(|v| parse(k, &v)).transpose() };
        let mode = match get("ARTHA_MODE")
            .or_else(|| get("ARTHA_JOB_KIND"))
            .as_deref()
        {
            None | Some("train") => Mode::Train,
            Some("infer") => Mode::Infer,
            Some(other) => {
                return Err(Error::invalid(
                    "ARTHA_MODE",
                    format!("`{other}` is not a mode of this runtime (train, infer)"),
                ));
            }
        };
        let epochs = num("EPOCHS")?.unwrap_or(1);
        let epochs = u32::try_from(epochs).map_err(|_| Error::invalid("EPOCHS", "too large"))?;
        let batch_size = num("BATCH_SIZE")?.unwrap_or(32) as usize;
        if batch_size == 0 || batch_size > MAX_BATCH {
            return Err(Error::invalid(
                "BATCH_SIZE",
                format!("must be in 1..={MAX_BATCH}"),
            ));
        }
        let proof_window = num("ARTHA_PROOF_WINDOW")?.unwrap_or(100);
        if proof_window == 0 {
            return Err(Error::invalid("ARTHA_PROOF_WINDOW", "must be ≥ 1"));
        }
        let kind_opt: OptimizerKind = get("ARTHA_OPTIMIZER")
            .map(|v| v.trim().parse())
            .transpose()?
            .unwrap_or(OptimizerKind::Adamw);
        let mut optimizer =
            OptimizerConfig::defaults(kind_opt, float("LEARNING_RATE")?.unwrap_or(1e-3));
        if let Some(wd) = float("ARTHA_WEIGHT_DECAY")? {
            optimizer.weight_decay = wd;
        }
        if let Some(m) = float("ARTHA_MOMENTUM")? {
            optimizer.momentum = m;
        }
        optimizer.validate()?;
        let hidden = get("ARTHA_HIDDEN")
            .map(|v| {
                v.split(',')
                    .map(|w| parse::<usize>("ARTHA_HIDDEN", w))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        let task = match get("ARTHA_TASK").as_deref() {
            None => None,
            Some("classify" | "classification") => Some(Task::Classify),
            Some("regress" | "regression") => Some(Task::Regress),
            Some(other) => {
                return Err(Error::invalid(
                    "ARTHA_TASK",
                    format!("`{other}` is not a task (classify, regress)"),
                ));
            }
        };
        let checkpoint_every = num("ARTHA_CHECKPOINT_EVERY")?.unwrap_or(proof_window);
        let device = match get("ARTHA_DEVICE").as_deref() {
            None | Some("cpu") => DeviceChoice::Cpu,
            Some("cuda") => DeviceChoice::Cuda(0),
            Some(s) if s.starts_with("cuda:") => {
                DeviceChoice::Cuda(parse("ARTHA_DEVICE", &s[5..])?)
            }
            Some(other) => {
                return Err(Error::invalid(
                    "ARTHA_DEVICE",
                    format!("`{other}` is not a device (cpu, cuda, cuda:N)"),
                ));
            }
        };
        let temperature = float("ARTHA_TEMPERATURE")?.unwrap_or(0.0);
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(Error::invalid(
                "ARTHA_TEMPERATURE",
                "must be finite and ≥ 0",
            ));
        }
        let max_new_tokens = num("ARTHA_MAX_NEW_TOKENS")?.unwrap_or(64);
        if max_new_tokens > 1 << 20 {
            return Err(Error::invalid("ARTHA_MAX_NEW_TOKENS", "at most 1048576"));
        }
        let seq_len = num("ARTHA_SEQ_LEN")?;
        if seq_len == Some(0) {
            return Err(Error::invalid("ARTHA_SEQ_LEN", "must be ≥ 1"));
        }
        let dir = |k: &str, default: &str| PathBuf::from(get(k).unwrap_or_else(|| default.into()));
        let checkpoint_dir = dir("ARTHA_CHECKPOINT_DIR", CHECKPOINT_MOUNT);
        Ok(RunConfig {
            mode,
            job_id: get("ARTHA_JOB_ID").unwrap_or_else(|| "local".into()),
            epochs,
            batch_size,
            seed: num("ARTHA_SEED")?.unwrap_or(0),
            proof_window,
            optimizer,
            kind: get("ARTHA_MODEL_KIND")
                .map(|v| v.trim().parse())
                .transpose()?,
            task,
            hidden,
            classes: num("ARTHA_CLASSES")?.map(|c| c as usize),
            checkpoint_every,
            resume: get("ARTHA_RESUME"),
            max_steps: num("ARTHA_MAX_STEPS")?,
            data_file: get("ARTHA_DATA_FILE"),
            weights: get("ARTHA_WEIGHTS"),
            log_every: num("ARTHA_LOG_EVERY")?,
            device,
            seq_len: seq_len.map(|l| l as usize),
            max_new_tokens: max_new_tokens as usize,
            temperature,
            model_dir: dir("ARTHA_MODEL_DIR", MODEL_MOUNT),
            data_dir: dir("ARTHA_DATA_DIR", DATA_MOUNT),
            output_dir: get("ARTHA_OUTPUT_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| checkpoint_dir.clone()),
            checkpoint_dir,
            events: dir("ARTHA_EVENTS", EVENTS_PATH),
        })
    }

    /// Reads `$ARTHA_MODEL_DIR/config.json` when it exists.
    pub fn model_file(&self) -> Result<ModelFile> {
        let p = self.model_dir.join("config.json");
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid("config.json", format!("malformed model configuration: {e}"))
                    .with_context("file", p.display().to_string())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ModelFile::default()),
            Err(e) => Err(Error::new(ErrorKind::Internal, "cannot read config.json")
                .with_context("file", p.display().to_string())
                .with_source(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<RunConfig> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RunConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_protocol() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.mode, Mode::Train);
        assert_eq!((c.epochs, c.batch_size, c.seed), (1, 32, 0));
        assert_eq!(c.optimizer.kind, OptimizerKind::Adamw);
        assert_eq!(c.optimizer.lr, 1e-3);
        assert_eq!(c.checkpoint_every, 100);
        assert_eq!(c.model_dir, PathBuf::from("/model"));
        assert_eq!(c.events, PathBuf::from("/artha/events.jsonl"));
        assert_eq!(c.output_dir, PathBuf::from("/checkpoints"));
    }

    #[test]
    fn values_are_read_and_checked() {
        let c = cfg(&[
            ("ARTHA_JOB_KIND", "infer"),
            ("EPOCHS", "3"),
            ("BATCH_SIZE", "16"),
            ("LEARNING_RATE", "0.05"),
            ("ARTHA_SEED", "42"),
            ("ARTHA_PROOF_WINDOW", "10"),
            ("ARTHA_OPTIMIZER", "sgd"),
            ("ARTHA_MOMENTUM", "0.9"),
            ("ARTHA_HIDDEN", "32, 16"),
            ("ARTHA_MODEL_KIND", "mlp"),
            ("ARTHA_TASK", "regress"),
            ("ARTHA_DEVICE", "cuda:1"),
        ])
        .unwrap();
        assert_eq!(c.mode, Mode::Infer);
        assert_eq!(c.checkpoint_every, 10);
        assert_eq!(c.hidden, Some(vec![32, 16]));
        assert_eq!(c.optimizer.momentum, 0.9);
        assert_eq!(c.task, Some(Task::Regress));
        assert_eq!(c.device, DeviceChoice::Cuda(1));
        for (pairs, var) in [
            (&[("EPOCHS", "x")][..], "EPOCHS"),
            (&[("BATCH_SIZE", "0")], "BATCH_SIZE"),
            (&[("LEARNING_RATE", "-1")], "LEARNING_RATE"),
            (&[("LEARNING_RATE", "nan")], "LEARNING_RATE"),
            (&[("ARTHA_OPTIMIZER", "lbfgs")], "ARTHA_OPTIMIZER"),
            (&[("ARTHA_MODE", "agent")], "ARTHA_MODE"),
            (&[("ARTHA_HIDDEN", "8,x")], "ARTHA_HIDDEN"),
            (&[("ARTHA_DEVICE", "tpu")], "ARTHA_DEVICE"),
            (&[("ARTHA_PROOF_WINDOW", "0")], "ARTHA_PROOF_WINDOW"),
        ] {
            let e = cfg(pairs).unwrap_err();
            assert_eq!(e.context_value("field"), Some(var), "{e}");
        }
    }
}
