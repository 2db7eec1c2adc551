//! The models: a multi-layer perceptron and logistic (or linear)
//! regression, with an explicit backward pass.
//!
//! Parameters follow PyTorch's `nn.Linear` layout and naming, so a
//! checkpoint reads like the `state_dict` of
//! `fc = nn.ModuleList([nn.Linear(d0, d1), nn.Linear(d1, d2), …])`:
//! `fc.{i}.weight` of shape `[out, in]` and `fc.{i}.bias` of shape `[out]`.
//! Hidden layers use ReLU; the last layer is linear (logits for
//! classification, values for regression).
//!
//! Initialisation is PyTorch's default for `nn.Linear`, drawn from our own
//! counter-based generator: every element of parameter `p` is
//! `(2u − 1) · 1/√fan_in` with `u` = number `n` of stream `("init", p)`.
//!
//! The backward pass is written out rather than taken from an autograd
//! graph so that every reduction goes through the fixed-order kernels:
//! `dW = dZᵀ · A`, `db = Σ_rows dZ`, `dA = dZ · W`, `dZ_prev = dA ⊙ [Z_prev > 0]`.

use artha_core::{Blake3Digest, Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::Task;
use crate::digest::{NamedDigest, Sampler};
use crate::kernels::{matmul, sum_rows, tensor_err};
use crate::lm::{Lm, LmConfig};
use crate::rng::Stream;

/// Which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Linear layers with ReLU between them.
    Mlp,
    /// One linear layer: logistic regression (classification) or linear
    /// regression.
    Logreg,
    /// A decoder-only language model of the llama family ([`crate::lm`]).
    Llama,
}

impl std::str::FromStr for ModelKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mlp" => Ok(ModelKind::Mlp),
            "logreg" | "linear" => Ok(ModelKind::Logreg),
            "llama" => Ok(ModelKind::Llama),
            other => Err(Error::invalid(
                "ARTHA_MODEL_KIND",
                format!("`{other}` is not a model (mlp, logreg, llama)"),
            )),
        }
    }
}

/// Largest layer width accepted.
pub const MAX_WIDTH: usize = 1 << 16;
/// Most hidden layers accepted.
pub const MAX_HIDDEN_LAYERS: usize = 16;

/// The architecture: everything needed to rebuild the model from its
/// parameters. Stored in every checkpoint.
///
/// For `llama`, `lm` holds the language model's configuration and `task`
/// is `classify` (next-token), `inputs` and `outputs` the vocabulary,
/// `hidden` empty; the MLP's serialised form is unchanged (no `lm` key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Model family.
    pub kind: ModelKind,
    /// Classification or regression.
    pub task: Task,
    /// Input features.
    pub inputs: usize,
    /// Classes (classification) or target values (regression).
    pub outputs: usize,
    /// Hidden layer widths (empty for `logreg`).
    pub hidden: Vec<usize>,
    /// The language model (`llama` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm: Option<LmConfig>,
}

impl ModelConfig {
    /// Layer widths from input to output.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.inputs];
        d.extend(&self.hidden);
        d.push(self.outputs);
        d
    }

    /// A language model's architecture.
    pub fn llama(lm: LmConfig) -> Self {
        ModelConfig {
            kind: ModelKind::Llama,
            task: Task::Classify,
            inputs: lm.vocab_size,
            outputs: lm.vocab_size,
            hidden: Vec::new(),
            lm: Some(lm),
        }
    }

    /// Parameter names, in canonical order.
    pub fn param_names(&self) -> Vec<String> {
        if let Some(lm) = &self.lm {
            return lm.param_names();
        }
        (0..self.dims().len() - 1)
            .flat_map(|i| [format!("fc.{i}.weight"), format!("fc.{i}.bias")])
            .collect()
    }

    /// Parameter shapes, in canonical order.
    pub fn param_shapes(&self) -> Vec<Vec<usize>> {
        if let Some(lm) = &self.lm {
            return lm.param_shapes();
        }
        self.dims()
            .windows(2)
            .flat_map(|w| [vec![w[1], w[0]], vec![w[1]]])
            .collect()
    }

    /// Number of scalar parameters.
    pub fn param_count(&self) -> usize {
        self.param_shapes()
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum()
    }

    /// Rejects empty or oversized layers and hidden layers on `logreg`.
    pub fn validate(&self) -> Result<()> {
        match (self.kind, &self.lm) {
            (ModelKind::Llama, Some(lm)) => {
                lm.validate()?;
                if self.inputs != lm.vocab_size
                    || self.outputs != lm.vocab_size
                    || !self.hidden.is_empty()
                    || self.task != Task::Classify
                {
                    return Err(Error::invalid(
                        "model",
                        "a language model's inputs and outputs are its vocabulary",
                    ));
                }
                return Ok(());
            }
            (ModelKind::Llama, None) => {
                return Err(Error::invalid(
                    "model",
                    "a llama model needs its language-model configuration",
                ));
            }
            (_, Some(_)) => {
                return Err(Error::invalid(
                    "model",
                    "only a llama model has a language-model configuration",
                ));
            }
            _ => {}
        }
        if self.kind == ModelKind::Logreg && !self.hidden.is_empty() {
            return Err(Error::invalid(
                "ARTHA_HIDDEN",
                "logistic regression has no hidden layers",
            ));
        }
        if self.hidden.len() > MAX_HIDDEN_LAYERS {
            return Err(Error::invalid(
                "ARTHA_HIDDEN",
                format!("at most {MAX_HIDDEN_LAYERS} hidden layers"),
            ));
        }
        for (what, w) in [("inputs", self.inputs), ("outputs", self.outputs)]
            .into_iter()
            .chain(self.hidden.iter().map(|&h| ("ARTHA_HIDDEN", h)))
        {
            if w == 0 || w > MAX_WIDTH {
                return Err(Error::invalid(
                    what,
                    format!("layer width {w} is not in 1..={MAX_WIDTH}"),
                ));
            }
        }
        if self.task == Task::Classify && self.outputs < 2 {
            return Err(Error::invalid(
                "ARTHA_CLASSES",
                "classification needs at least 2 classes",
            ));
        }
        Ok(())
    }
}

/// A model's parameters on a device.
#[derive(Debug, Clone)]
pub struct Model {
    config: ModelConfig,
    names: Vec<String>,
    params: Vec<Tensor>,
}

/// What the backward pass needs from the forward pass.
#[derive(Debug)]
pub struct Cache {
    /// The input of each layer.
    inputs: Vec<Tensor>,
    /// The pre-activation of each hidden layer.
    pre: Vec<Tensor>,
}

impl Model {
    /// A freshly initialised model (see the module docs).
    pub fn init(config: ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let mut params = Vec::new();
        if let Some(lm) = &config.lm {
            for (p, shape) in config.param_shapes().into_iter().enumerate() {
                let values = lm.init_values(p, seed);
                params.push(Tensor::from_vec(values, shape, device).map_err(tensor_err("init"))?);
            }
            return Ok(Model {
                names: config.param_names(),
                config,
                params,
            });
        }
        for (p, shape) in config.param_shapes().into_iter().enumerate() {
            // Weights [out, in] and biases [out] of layer l share fan_in = in.
            let fan_in = config.dims()[p / 2];
            let bound = 1.0f32 / (fan_in as f32).sqrt();
            let s = Stream::new(seed, "init", p as u64);
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n as u64)
                .map(|i| (s.f32_at(i) * 2.0 - 1.0) * bound)
                .collect();
            params.push(Tensor::from_vec(values, shape, device).map_err(tensor_err("init"))?);
        }
        Ok(Model {
            names: config.param_names(),
            config,
            params,
        })
    }

    /// A model from given parameters (canonical order), checking shapes.
    pub fn from_params(config: ModelConfig, params: Vec<Tensor>) -> Result<Self> {
        config.validate()?;
        let shapes = config.param_shapes();
        if shapes.len() != params.len()
            || shapes
                .iter()
                .zip(&params)
                .any(|(s, p)| p.dims() != s.as_slice())
        {
            return Err(Error::invalid(
                "checkpoint",
                "parameter shapes do not match the model configuration",
            ));
        }
        Ok(Model {
            names: config.param_names(),
            config,
            params,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Parameter names, canonical order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Parameters, canonical order.
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// Mutable parameters (for the optimizer).
    pub fn params_mut(&mut self) -> &mut [Tensor] {
        &mut self.params
    }

    /// Named-tensor digest of the parameters (the `weight_digest`).
    pub fn digest(&self) -> Result<Blake3Digest> {
        let mut d = NamedDigest::new();
        for (n, p) in self.names.iter().zip(&self.params) {
            d.push_tensor(n, p)?;
        }
        d.finish()
    }

    /// The parameters as host vectors (canonical order).
    pub fn host_params(&self) -> Result<Vec<Vec<f32>>> {
        self.params
            .iter()
            .map(|p| {
                p.flatten_all()
                    .and_then(|f| f.to_vec1::<f32>())
                    .map_err(tensor_err("read back"))
            })
            .collect()
    }

    /// A language model's training step on `inputs`/`targets` `[b, l]`:
    /// the mean loss and the gradients (canonical order) as tensors on
    /// the model's device.
    pub fn lm_step(
        &self,
        inputs: &[u32],
        targets: &[u32],
        b: usize,
        l: usize,
    ) -> Result<(f64, Vec<Tensor>)> {
        let lmc = self.lm_config()?;
        let host = self.host_params()?;
        let (loss, grads) = Lm::new(lmc, &host)?.loss_and_grads(inputs, targets, b, l)?;
        let device = self.params.first().map(Tensor::device).cloned();
        let device = device.unwrap_or(candle_core::Device::Cpu);
        let grads = grads
            .into_iter()
            .zip(self.config.param_shapes())
            .map(|(g, shape)| Tensor::from_vec(g, shape, &device).map_err(tensor_err("grad")))
            .collect::<Result<Vec<_>>>()?;
        Ok((loss, grads))
    }

    /// The language model's configuration (an error for other models).
    pub fn lm_config(&self) -> Result<&LmConfig> {
        self.config
            .lm
            .as_ref()
            .ok_or_else(|| Error::invalid("ARTHA_MODEL_KIND", "this model is not a language model"))
    }

    /// Outputs for `x [rows, inputs]`, and what [`Model::backward`] needs.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Cache)> {
        if self.config.lm.is_some() {
            return Err(Error::invalid(
                "data",
                "a language model reads tokens, not feature rows",
            ));
        }
        let layers = self.params.len() / 2;
        let mut a = x.clone();
        let mut cache = Cache {
            inputs: Vec::with_capacity(layers),
            pre: Vec::with_capacity(layers),
        };
        for l in 0..layers {
            let (w, b) = (&self.params[2 * l], &self.params[2 * l + 1]);
            let wt = w.t().map_err(tensor_err("transpose"))?;
            let z = matmul(&a, &wt)?
                .broadcast_add(b)
                .map_err(tensor_err("add bias"))?;
            cache.inputs.push(a);
            if l + 1 < layers {
                a = z.relu().map_err(tensor_err("relu"))?;
                cache.pre.push(z);
            } else {
                a = z;
            }
        }
        Ok((a, cache))
    }

    /// Gradients of the loss with respect to every parameter (canonical
    /// order), given the gradient `dout` with respect to the outputs.
    pub fn backward(&self, cache: &Cache, dout: Tensor) -> Result<Vec<Tensor>> {
        let layers = self.params.len() / 2;
        let mut grads: Vec<Option<Tensor>> = vec![None; 2 * layers];
        let mut dz = dout;
        for l in (0..layers).rev() {
            let dzt = dz.t().map_err(tensor_err("transpose"))?;
            grads[2 * l] = Some(matmul(&dzt, &cache.inputs[l])?);
            grads[2 * l + 1] = Some(sum_rows(&dz)?);
            if l > 0 {
                let da = matmul(&dz, &self.params[2 * l])?;
                let mask = cache.pre[l - 1]
                    .gt(0f32)
                    .and_then(|m| m.to_dtype(DType::F32))
                    .map_err(tensor_err("relu mask"))?;
                dz = da.mul(&mask).map_err(tensor_err("relu backward"))?;
            }
        }
        grads
            .into_iter()
            .map(|g| {
                g.ok_or_else(|| Error::new(artha_core::ErrorKind::Internal, "missing gradient"))
            })
            .collect()
    }
}

/// Named-tensor digest of gradients (the `grad_digest`).
pub fn grads_digest(names: &[String], grads: &[Tensor]) -> Result<Blake3Digest> {
    params_digest(names, grads, None)
}

/// Named-tensor digest of parameter-shaped tensors (weights or gradients),
/// full or, with a sampler, sampled (`runtimes/PROOFS.md`).
pub fn params_digest(
    names: &[String],
    tensors: &[Tensor],
    sampler: Option<Sampler>,
) -> Result<Blake3Digest> {
    let mut d = NamedDigest::sampled(sampler);
    for (n, g) in names.iter().zip(tensors) {
        d.push_tensor(n, g)?;
    }
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(hidden: Vec<usize>) -> ModelConfig {
        ModelConfig {
            kind: if hidden.is_empty() {
                ModelKind::Logreg
            } else {
                ModelKind::Mlp
            },
            task: Task::Regress,
            inputs: 3,
            outputs: 2,
            hidden,
            lm: None,
        }
    }

    #[test]
    fn names_shapes_and_counts() {
        let c = cfg(vec![4]);
        assert_eq!(
            c.param_names(),
            ["fc.0.weight", "fc.0.bias", "fc.1.weight", "fc.1.bias"]
        );
        assert_eq!(
            c.param_shapes(),
            vec![vec![4, 3], vec![4], vec![2, 4], vec![2]]
        );
        assert_eq!(c.param_count(), 12 + 4 + 8 + 2);
        let mut bad = cfg(vec![0]);
        assert!(bad.validate().is_err());
        bad = cfg(vec![]);
        bad.hidden = vec![3];
        bad.kind = ModelKind::Logreg;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn init_is_seeded_and_bounded() {
        let a = Model::init(cfg(vec![4]), 1, &Device::Cpu).unwrap();
        let b = Model::init(cfg(vec![4]), 1, &Device::Cpu).unwrap();
        let c = Model::init(cfg(vec![4]), 2, &Device::Cpu).unwrap();
        assert_eq!(a.digest().unwrap(), b.digest().unwrap());
        assert_ne!(a.digest().unwrap(), c.digest().unwrap());
        let w: Vec<f32> = a.params()[0].flatten_all().unwrap().to_vec1().unwrap();
        let bound = 1.0 / 3f32.sqrt();
        assert!(w.iter().all(|x| x.abs() <= bound));
    }

    /// The hand-written backward pass agrees with finite differences of the
    /// forward pass (in f64 on the sum of squared outputs / 2).
    #[test]
    fn backward_matches_finite_differences() {
        let model = Model::init(cfg(vec![5]), 3, &Device::Cpu).unwrap();
        let x = Tensor::from_vec(
            vec![0.5f32, -1.0, 2.0, 1.5, 0.25, -0.75],
            (2, 3),
            &Device::Cpu,
        )
        .unwrap();
        let loss = |m: &Model| -> f64 {
            let (y, _) = m.forward(&x).unwrap();
            let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
            v.iter().map(|&a| f64::from(a) * f64::from(a) / 2.0).sum()
        };
        let (y, cache) = model.forward(&x).unwrap();
        let grads = model.backward(&cache, y).unwrap();
        for (p, g) in grads.iter().enumerate() {
            let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f32> = model.params()[p].flatten_all().unwrap().to_vec1().unwrap();
            for i in 0..base.len() {
                let eps = 1e-2f32;
                let probe = |delta: f32| {
                    let mut v = base.clone();
                    v[i] += delta;
                    let mut m = model.clone();
                    m.params_mut()[p] =
                        Tensor::from_vec(v, model.params()[p].dims(), &Device::Cpu).unwrap();
                    loss(&m)
                };
                let num = (probe(eps) - probe(-eps)) / (2.0 * f64::from(eps));
                assert!(
                    (num - f64::from(g[i])).abs() < 2e-2 * (1.0 + num.abs()),
                    "param {p} element {i}: numeric {num}, backward {}",
                    g[i]
                );
            }
        }
    }
}
