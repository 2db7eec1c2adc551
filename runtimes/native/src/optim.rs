//! Optimizers whose whole state can be saved and restored: AdamW and SGD
//! (with optional momentum and weight decay), following PyTorch's update
//! rules.
//!
//! - AdamW (`torch.optim.AdamW`): `w ← w·(1 − lr·wd)`;
//!   `m ← β₁m + (1−β₁)g`; `v ← β₂v + (1−β₂)g²`;
//!   `w ← w − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`.
//! - SGD (`torch.optim.SGD`): `g ← g + wd·w`; with momentum μ,
//!   `b ← g` at the first step and `b ← μb + g` after, `g ← b`; `w ← w − lr·g`.
//!
//! Scalars (`β^t`, bias corrections) are computed in `f64` by exponentiation
//! by squaring, never `powi`/`powf` (whose results may differ between
//! platforms); tensors are updated element-wise, which IEEE 754 rounds the
//! same everywhere.

use artha_core::{Error, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::kernels::tensor_err;

/// Which optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam with decoupled weight decay.
    Adamw,
    /// Stochastic gradient descent.
    Sgd,
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "adamw" | "adam" => Ok(OptimizerKind::Adamw),
            "sgd" => Ok(OptimizerKind::Sgd),
            other => Err(Error::invalid(
                "ARTHA_OPTIMIZER",
                format!("`{other}` is not an optimizer (adamw, sgd)"),
            )),
        }
    }
}

/// Optimizer hyper-parameters (stored in checkpoints; a resume must use the
/// same ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub lr: f64,
    /// Weight decay (decoupled for AdamW, L2 for SGD).
    pub weight_decay: f64,
    /// SGD momentum (0 = none).
    pub momentum: f64,
    /// AdamW β₁.
    pub beta1: f64,
    /// AdamW β₂.
    pub beta2: f64,
    /// AdamW ε.
    pub eps: f64,
}

impl OptimizerConfig {
    /// PyTorch's defaults for `kind` at learning rate `lr`
    /// (AdamW: β = (0.9, 0.999), ε = 1e-8, weight decay 0.01; SGD: none).
    pub fn defaults(kind: OptimizerKind, lr: f64) -> Self {
        OptimizerConfig {
            kind,
            lr,
            weight_decay: if kind == OptimizerKind::Adamw {
                0.01
            } else {
                0.0
            },
            momentum: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// Rejects values outside their ranges.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, v: f64, ok: bool| {
            if v.is_finite() && ok {
                Ok(())
            } else {
                Err(Error::invalid(name, format!("{v} is out of range")))
            }
        };
        check("LEARNING_RATE", self.lr, self.lr > 0.0)?;
        check(
            "ARTHA_WEIGHT_DECAY",
            self.weight_decay,
            self.weight_decay >= 0.0,
        )?;
        check(
            "ARTHA_MOMENTUM",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
        )?;
        check("beta1", self.beta1, (0.0..1.0).contains(&self.beta1))?;
        check("beta2", self.beta2, (0.0..1.0).contains(&self.beta2))?;
        check("eps", self.eps, self.eps > 0.0)
    }

    /// Names of the state tensors kept per parameter.
    pub fn state_slots(&self) -> &'static [&'static str] {
        match self.kind {
            OptimizerKind::Adamw => &["exp_avg", "exp_avg_sq"],
            OptimizerKind::Sgd if self.momentum > 0.0 => &["momentum_buffer"],
            OptimizerKind::Sgd => &[],
        }
    }
}

/// `base^exp` by squaring: the same bits on every platform.
pub fn pow_u64(base: f64, mut exp: u64) -> f64 {
    let mut acc = 1.0f64;
    let mut b = base;
    while exp > 0 {
        if exp & 1 == 1 {
            acc *= b;
        }
        b *= b;
        exp >>= 1;
    }
    acc
}

/// An optimizer and its state.
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    /// Updates applied so far.
    t: u64,
    /// Per parameter, one tensor per state slot.
    state: Vec<Vec<Tensor>>,
}

impl Optimizer {
    /// A fresh optimizer (zero state) for `params`.
    pub fn new(config: OptimizerConfig, params: &[Tensor]) -> Result<Self> {
        config.validate()?;
        let slots = config.state_slots().len();
        let state = params
            .iter()
            .map(|p| {
                (0..slots)
                    .map(|_| p.zeros_like().map_err(tensor_err("zeros")))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Optimizer {
            config,
            t: 0,
            state,
        })
    }

    /// An optimizer restored from saved state (`state[p][slot]`).
    pub fn restore(config: OptimizerConfig, t: u64, state: Vec<Vec<Tensor>>) -> Result<Self> {
        config.validate()?;
        if state.iter().any(|s| s.len() != config.state_slots().len()) {
            return Err(Error::invalid(
                "checkpoint",
                "optimizer state is incomplete",
            ));
        }
        Ok(Optimizer { config, t, state })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Updates applied so far.
    pub fn t(&self) -> u64 {
        self.t
    }

    /// The state tensors, `state[p][slot]`.
    pub fn state(&self) -> &[Vec<Tensor>] {
        &self.state
    }

    /// Applies one update to `params` from `grads` (same order and shapes).
    pub fn step(&mut self, params: &mut [Tensor], grads: &[Tensor]) -> Result<()> {
        if params.len() != grads.len() || params.len() != self.state.len() {
            return Err(Error::new(
                artha_core::ErrorKind::Internal,
                "optimizer given a different number of parameters",
            ));
        }
        self.t += 1;
        let c = &self.config;
        let e = tensor_err("optimizer update");
        match c.kind {
            OptimizerKind::Adamw => {
                let bc1 = 1.0 - pow_u64(c.beta1, self.t);
                let bc2 = 1.0 - pow_u64(c.beta2, self.t);
                let step_size = c.lr / bc1;
                let inv_sqrt_bc2 = 1.0 / bc2.sqrt();
                for ((w, g), st) in params.iter_mut().zip(grads).zip(self.state.iter_mut()) {
                    let m = st[0]
                        .affine(c.beta1, 0.0)
                        .and_then(|m| m.add(&g.affine(1.0 - c.beta1, 0.0)?))
                        .map_err(&e)?;
                    let v = st[1]
                        .affine(c.beta2, 0.0)
                        .and_then(|v| v.add(&g.sqr()?.affine(1.0 - c.beta2, 0.0)?))
                        .map_err(&e)?;
                    let denom = v
                        .sqrt()
                        .and_then(|d| d.affine(inv_sqrt_bc2, c.eps))
                        .map_err(&e)?;
                    let upd = m
                        .div(&denom)
                        .and_then(|u| u.affine(step_size, 0.0))
                        .map_err(&e)?;
                    let decayed = if c.weight_decay > 0.0 {
                        w.affine(1.0 - c.lr * c.weight_decay, 0.0).map_err(&e)?
                    } else {
                        w.clone()
                    };
                    *w = decayed.sub(&upd).map_err(&e)?;
                    st[0] = m;
                    st[1] = v;
                }
            }
            OptimizerKind::Sgd => {
                for ((w, g), st) in params.iter_mut().zip(grads).zip(self.state.iter_mut()) {
                    let mut d = if c.weight_decay > 0.0 {
                        g.add(&w.affine(c.weight_decay, 0.0).map_err(&e)?)
                            .map_err(&e)?
                    } else {
                        g.clone()
                    };
                    if c.momentum > 0.0 {
                        let buf = if self.t == 1 {
                            d
                        } else {
                            st[0]
                                .affine(c.momentum, 0.0)
                                .and_then(|b| b.add(&d))
                                .map_err(&e)?
                        };
                        st[0] = buf.clone();
                        d = buf;
                    }
                    *w = w.sub(&d.affine(c.lr, 0.0).map_err(&e)?).map_err(&e)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_vec(v.to_vec(), v.len(), &Device::Cpu).unwrap()
    }
    fn v(t: &Tensor) -> Vec<f32> {
        t.to_vec1().unwrap()
    }

    #[test]
    fn pow_by_squaring() {
        assert_eq!(pow_u64(0.5, 0), 1.0);
        assert_eq!(pow_u64(0.5, 3), 0.125);
        assert!((pow_u64(0.999, 1000) - 0.999f64.powf(1000.0)).abs() < 1e-12);
    }

    #[test]
    fn sgd_matches_hand_computation() {
        let mut cfg = OptimizerConfig::defaults(OptimizerKind::Sgd, 0.5);
        cfg.momentum = 0.9;
        let mut w = vec![t(&[1.0, -1.0])];
        let mut opt = Optimizer::new(cfg, &w).unwrap();
        opt.step(&mut w, &[t(&[1.0, 2.0])]).unwrap();
        assert_eq!(v(&w[0]), vec![0.5, -2.0]);
        // b = 0.9·[1, 2] + [1, 2] = [1.9, 3.8]
        opt.step(&mut w, &[t(&[1.0, 2.0])]).unwrap();
        assert_eq!(v(&w[0]), vec![0.5 - 0.95, -2.0 - 1.9]);
        assert_eq!(opt.t(), 2);
    }

    #[test]
    fn adamw_first_step_moves_by_lr() {
        // At t = 1 the bias-corrected update is lr · g/|g| (plus decay).
        let mut cfg = OptimizerConfig::defaults(OptimizerKind::Adamw, 0.1);
        cfg.weight_decay = 0.0;
        let mut w = vec![t(&[1.0, 1.0])];
        let mut opt = Optimizer::new(cfg, &w).unwrap();
        opt.step(&mut w, &[t(&[3.0, -0.5])]).unwrap();
        let got = v(&w[0]);
        assert!(
            (got[0] - 0.9).abs() < 1e-6 && (got[1] - 1.1).abs() < 1e-6,
            "{got:?}"
        );
        assert_eq!(opt.state()[0].len(), 2);
    }

    #[test]
    fn bad_hyper_parameters_are_named() {
        let mut cfg = OptimizerConfig::defaults(OptimizerKind::Sgd, 0.0);
        assert!(
            Optimizer::new(cfg.clone(), &[])
                .unwrap_err()
                .to_string()
                .contains("LEARNING_RATE")
        );
        cfg.lr = 0.1;
        cfg.momentum = 1.5;
        assert!(
            Optimizer::new(cfg, &[])
                .unwrap_err()
                .to_string()
                .contains("ARTHA_MOMENTUM")
        );
    }
}
