//! A decoder-only language model of the llama family, trained
//! bit-deterministically: token embedding, RMSNorm, rotary positions,
//! causal multi-head attention, a SwiGLU MLP, and a tied or untied head.
//!
//! The specification (configuration, tokenizers, examples and batches,
//! parameter names and initialisation, the forward pass, inference) is
//! `runtimes/LM.md`; the torch runtime implements the same one. This
//! module holds the arithmetic: the forward pass and a hand-written
//! backward pass over plain `f32` slices.
//!
//! ## Determinism
//!
//! As for the MLP ([`crate::kernels`]), every sum has one documented order
//! whatever the thread count:
//!
//! - matrix products go through [`gemm`] (`k` in increasing order), which
//!   reads `W` of `y = x·Wᵀ` and `dy` of `dW = dyᵀ·x` transposed in place
//!   (the latter sums over the batch's positions in order);
//! - per-row work (RMSNorm, RoPE, SiLU, the loss) is split across the pool
//!   by whole rows, each row summed left to right; attention is split by
//!   `(sequence, head)` pairs, each computed whole by one task with keys
//!   and queries visited in increasing position;
//! - column sums (the RMSNorm weight gradients) add rows in order, and the
//!   embedding gradient adds the positions' rows in position order (after
//!   the head's product when the head is tied);
//! - `eˣ` is [`exp`], written from IEEE basic operations (vectorisable,
//!   the same bits everywhere); `ln`, `sin`, `cos`, `pow` come from the
//!   pure-Rust `libm` (RoPE tables in `f64`, rounded once to `f32`), and
//!   the batch loss is summed in position order in `f64`.
//!
//! Rust never fuses `a * b + c` into one instruction, so the vector width
//! the compiler picks does not change any result either.

use artha_core::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::{Isa, Operand, col_sum, gemm, matmul_nn};
use crate::rng::Stream;

/// How text becomes tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tokenizer {
    /// The bytes of the text (ids 0..256).
    #[default]
    Byte,
    /// The distinct characters of the training text, sorted by code point.
    Char,
}

/// Largest width, vocabulary or sequence length accepted.
pub const MAX_DIM: usize = 1 << 16;
/// Most layers accepted.
pub const MAX_LAYERS: usize = 256;

/// The architecture (Hugging Face `LlamaConfig` names). Stored in every
/// checkpoint of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmConfig {
    /// Token ids `0..vocab_size`.
    pub vocab_size: usize,
    /// Width `D`.
    pub hidden_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Heads `H` (`D % H == 0`, even head width).
    pub num_attention_heads: usize,
    /// SwiGLU width `F`.
    pub intermediate_size: usize,
    /// The longest sequence.
    pub max_position_embeddings: usize,
    /// ε of RMSNorm.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// The head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// How text becomes tokens.
    pub tokenizer: Tokenizer,
    /// The `char` tokenizer's alphabet (sorted characters; id = position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabet: Option<String>,
}

/// Parameters of one decoder layer, in canonical order.
const PER_LAYER: usize = 9;
const LAYER_PARAMS: [&str; PER_LAYER] = [
    "input_layernorm.weight",
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
];

impl LmConfig {
    /// Head width `D / H`.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Checks the shapes (every error names its field).
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (field, v) in positive {
            let max = if field == "num_hidden_layers" {
                MAX_LAYERS
            } else {
                MAX_DIM
            };
            if v == 0 || v > max {
                return Err(Error::invalid(field, format!("{v} is not in 1..={max}")));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::invalid(
                "num_attention_heads",
                format!(
                    "{} heads do not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(Error::invalid(
                "num_attention_heads",
                format!(
                    "the head width {} is odd: rotary positions rotate pairs",
                    self.head_dim()
                ),
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(Error::invalid("rms_norm_eps", "must be finite and > 0"));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(Error::invalid("rope_theta", "must be finite and > 1"));
        }
        let need = match (self.tokenizer, &self.alphabet) {
            (Tokenizer::Byte, None) => 256,
            (Tokenizer::Byte, Some(_)) => {
                return Err(Error::invalid(
                    "alphabet",
                    "only the char tokenizer has an alphabet",
                ));
            }
            (Tokenizer::Char, Some(a)) => a.chars().count(),
            (Tokenizer::Char, None) => 0,
        };
        if self.vocab_size < need {
            return Err(Error::invalid(
                "vocab_size",
                format!(
                    "{} is smaller than the {need} tokens of the {:?} tokenizer{}",
                    self.vocab_size,
                    self.tokenizer,
                    if self.tokenizer == Tokenizer::Char {
                        " (the data's distinct characters)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(())
    }

    /// Parameter names, canonical order (`runtimes/LM.md`).
    pub fn param_names(&self) -> Vec<String> {
        let mut n = vec!["model.embed_tokens.weight".to_string()];
        for i in 0..self.num_hidden_layers {
            n.extend(LAYER_PARAMS.iter().map(|p| format!("model.layers.{i}.{p}")));
        }
        n.push("model.norm.weight".into());
        if !self.tie_word_embeddings {
            n.push("lm_head.weight".into());
        }
        n
    }

    /// Parameter shapes, canonical order.
    pub fn param_shapes(&self) -> Vec<Vec<usize>> {
        let (v, d, f) = (self.vocab_size, self.hidden_size, self.intermediate_size);
        let mut s = vec![vec![v, d]];
        for _ in 0..self.num_hidden_layers {
            s.extend([
                vec![d],
                vec![d, d],
                vec![d, d],
                vec![d, d],
                vec![d, d],
                vec![d],
                vec![f, d],
                vec![f, d],
                vec![d, f],
            ]);
        }
        s.push(vec![d]);
        if !self.tie_word_embeddings {
            s.push(vec![v, d]);
        }
        s
    }

    /// Initial values of parameter `p` (`runtimes/LM.md`): norm weights
    /// 1, everything else uniform with standard deviation 0.02.
    pub fn init_values(&self, p: usize, seed: u64) -> Vec<f32> {
        let n: usize = self.param_shapes()[p].iter().product();
        if self.param_shapes()[p].len() == 1 {
            return vec![1.0; n];
        }
        let bound = (0.02f64 * 3f64.sqrt()) as f32;
        let s = Stream::new(seed, "init", p as u64);
        (0..n as u64)
            .map(|i| (s.f32_at(i) * 2.0 - 1.0) * bound)
            .collect()
    }

    /// The tokenizer of this model.
    pub fn encoder(&self) -> Encoder {
        encoder(self.tokenizer, self.alphabet.as_deref())
    }
}

/// Turns text into tokens and back (`runtimes/LM.md`).
#[derive(Debug, Clone)]
pub struct Encoder {
    tokenizer: Tokenizer,
    alphabet: Vec<char>,
}

/// The encoder of `tokenizer` (`alphabet`: the char tokenizer's).
pub fn encoder(tokenizer: Tokenizer, alphabet: Option<&str>) -> Encoder {
    Encoder {
        tokenizer,
        alphabet: alphabet.unwrap_or("").chars().collect(),
    }
}

impl Encoder {
    /// Tokens of `text`; invalid UTF-8 (char tokenizer) or a character
    /// outside the alphabet is an error naming `field`.
    pub fn encode(&self, text: &[u8], field: &str) -> Result<Vec<u32>> {
        match self.tokenizer {
            Tokenizer::Byte => Ok(text.iter().map(|&b| u32::from(b)).collect()),
            Tokenizer::Char => {
                let s = std::str::from_utf8(text).map_err(|e| {
                    Error::invalid(
                        field,
                        format!("not UTF-8 (the char tokenizer reads text): {e}"),
                    )
                })?;
                s.chars()
                    .map(|c| {
                        self.alphabet
                            .binary_search(&c)
                            .map(|i| i as u32)
                            .map_err(|_| {
                                Error::invalid(
                                    field,
                                    format!("the character {c:?} is not in the model's alphabet"),
                                )
                            })
                    })
                    .collect()
            }
        }
    }

    /// Text of `tokens` (bytes decoded lossily; ids outside the alphabet
    /// as U+FFFD).
    pub fn decode(&self, tokens: &[u32]) -> String {
        match self.tokenizer {
            Tokenizer::Byte => {
                let bytes: Vec<u8> = tokens.iter().map(|&t| t.min(255) as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Tokenizer::Char => tokens
                .iter()
                .map(|&t| self.alphabet.get(t as usize).copied().unwrap_or('\u{FFFD}'))
                .collect(),
        }
    }
}

/// The sorted distinct characters of `text` (the char tokenizer's
/// alphabet); invalid UTF-8 is an error naming `field`.
pub fn alphabet_of(text: &[u8], field: &str) -> Result<String> {
    let s = std::str::from_utf8(text).map_err(|e| {
        Error::invalid(
            field,
            format!("not UTF-8 (the char tokenizer reads text): {e}"),
        )
    })?;
    let mut chars: Vec<char> = s.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    Ok(chars.into_iter().collect())
}

/// Below this many elements, per-row work stays on the calling thread.
const PAR_ROWS_MIN: usize = 1 << 14;

/// Runs `f(row index, row)` over the rows of `out` (`width` wide), on the
/// pool when there is enough work. Each row is written by one call, so the
/// result never depends on the split.
fn rows_mut(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if width == 0 {
        return;
    }
    if out.len() >= PAR_ROWS_MIN {
        out.par_chunks_mut(width)
            .enumerate()
            .for_each(|(r, row)| f(r, row));
    } else {
        out.chunks_mut(width)
            .enumerate()
            .for_each(|(r, row)| f(r, row));
    }
}

/// `x [n, inp] · Wᵀ` for `W [out, inp]` (read transposed, not copied).
fn linear(x: &[f32], w: &[f32], n: usize, inp: usize, out: usize) -> Vec<f32> {
    gemm(Isa::detect(), Operand::N(x), Operand::T(w), n, inp, out)
}

/// The gradients of [`linear`]: `(dx = dy · W, dW = dyᵀ · x)`.
fn linear_back(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    n: usize,
    inp: usize,
    out: usize,
) -> (Vec<f32>, Vec<f32>) {
    let dx = matmul_nn(dy, w, n, out, inp);
    let dw = gemm(Isa::detect(), Operand::T(dy), Operand::N(x), out, n, inp);
    (dx, dw)
}

fn add_into(a: &mut [f32], b: &[f32]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// RMSNorm of the rows of `x [n, d]`: the normed rows `x · r · w` and the
/// per-row `r = 1 / √(mean(x²) + ε)`.
fn rmsnorm(x: &[f32], w: &[f32], d: usize, eps: f32) -> (Vec<f32>, Vec<f32>) {
    let n = x.len() / d;
    let mut inv = vec![0f32; n];
    for (r, row) in x.chunks_exact(d).enumerate() {
        let mut ss = 0f32;
        for &v in row {
            ss += v * v;
        }
        inv[r] = 1.0 / (ss / d as f32 + eps).sqrt();
    }
    let mut y = vec![0f32; x.len()];
    rows_mut(&mut y, d, |r, out| {
        let row = &x[r * d..(r + 1) * d];
        for ((o, &v), &g) in out.iter_mut().zip(row).zip(w) {
            *o = v * inv[r] * g;
        }
    });
    (y, inv)
}

/// The gradients of [`rmsnorm`]: `(dx, dw)`.
///
/// With `g = dy ⊙ w`: `dx = r·g − x · r³ · (Σ_j g_j x_j) / d`, and
/// `dw = Σ_rows dy ⊙ x · r` (rows in order).
fn rmsnorm_back(dy: &[f32], x: &[f32], w: &[f32], inv: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
    let n = x.len() / d;
    let mut dx = vec![0f32; x.len()];
    rows_mut(&mut dx, d, |r, out| {
        let (xr, dyr, ir) = (&x[r * d..(r + 1) * d], &dy[r * d..(r + 1) * d], inv[r]);
        let mut dot = 0f32;
        for ((&g, &wj), &xj) in dyr.iter().zip(w).zip(xr) {
            dot += g * wj * xj;
        }
        let coef = ir * ir * ir * dot / d as f32;
        for (((o, &g), &wj), &xj) in out.iter_mut().zip(dyr).zip(w).zip(xr) {
            *o = ir * (g * wj) - xj * coef;
        }
    });
    let mut scaled = vec![0f32; x.len()];
    rows_mut(&mut scaled, d, |r, out| {
        for ((o, &g), &xj) in out
            .iter_mut()
            .zip(&dy[r * d..(r + 1) * d])
            .zip(&x[r * d..(r + 1) * d])
        {
            *o = g * (xj * inv[r]);
        }
    });
    (dx, col_sum(&scaled, n, d))
}

/// The rotary tables `cos`, `sin` `[len, hd/2]` (computed in `f64`).
fn rope_tables(len: usize, hd: usize, theta: f64) -> (Vec<f32>, Vec<f32>) {
    let half = hd / 2;
    let mut c = vec![0f32; len * half];
    let mut s = vec![0f32; len * half];
    for t in 0..len {
        for j in 0..half {
            let inv_freq = libm::pow(theta, -(2.0 * j as f64) / hd as f64);
            let a = t as f64 * inv_freq;
            c[t * half + j] = libm::cos(a) as f32;
            s[t * half + j] = libm::sin(a) as f32;
        }
    }
    (c, s)
}

/// Rotates one head vector at position `t` (`inverse` rotates back: the
/// gradient of the rotation is its transpose).
fn rope_one(v: &mut [f32], cos: &[f32], sin: &[f32], inverse: bool) {
    let half = v.len() / 2;
    for j in 0..half {
        let (a, b) = (v[j], v[j + half]);
        let (c, s) = (cos[j], if inverse { -sin[j] } else { sin[j] });
        v[j] = a * c - b * s;
        v[j + half] = b * c + a * s;
    }
}

/// The batch's dimensions.
#[derive(Debug, Clone, Copy)]
struct Dims {
    /// Sequences.
    b: usize,
    /// Positions per sequence.
    l: usize,
    d: usize,
    h: usize,
    hd: usize,
    f: usize,
    v: usize,
}

impl Dims {
    fn n(&self) -> usize {
        self.b * self.l
    }
}

/// `[b·l, d]` rows to head-major `[b, h, l, hd]`, rotating `q`/`k` heads.
fn to_heads(x: &[f32], dm: Dims, rope: Option<(&[f32], &[f32])>) -> Vec<f32> {
    let Dims { l, h, hd, d, .. } = dm;
    let mut out = vec![0f32; x.len()];
    let half = hd / 2;
    let chunk = l * hd;
    let fill = |bh: usize, o: &mut [f32]| {
        let (bi, hi) = (bh / h, bh % h);
        for t in 0..l {
            let src = &x[(bi * l + t) * d + hi * hd..(bi * l + t) * d + (hi + 1) * hd];
            let dst = &mut o[t * hd..(t + 1) * hd];
            dst.copy_from_slice(src);
            if let Some((c, s)) = rope {
                rope_one(
                    dst,
                    &c[t * half..(t + 1) * half],
                    &s[t * half..(t + 1) * half],
                    false,
                );
            }
        }
    };
    if x.len() >= PAR_ROWS_MIN {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, o)| fill(i, o));
    } else {
        out.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, o)| fill(i, o));
    }
    out
}

/// Head-major `[b, h, l, hd]` back to `[b·l, d]` rows, rotating back
/// (the gradient of `q`/`k` with respect to their unrotated values).
fn from_heads(x: &[f32], dm: Dims, rope: Option<(&[f32], &[f32])>) -> Vec<f32> {
    let Dims { l, h, hd, d, .. } = dm;
    let half = hd / 2;
    let mut out = vec![0f32; x.len()];
    rows_mut(&mut out, d, |row, o| {
        let (bi, t) = (row / l, row % l);
        for hi in 0..h {
            let src = &x[((bi * h + hi) * l + t) * hd..((bi * h + hi) * l + t + 1) * hd];
            let dst = &mut o[hi * hd..(hi + 1) * hd];
            dst.copy_from_slice(src);
            if let Some((c, s)) = rope {
                rope_one(
                    dst,
                    &c[t * half..(t + 1) * half],
                    &s[t * half..(t + 1) * half],
                    true,
                );
            }
        }
    });
    out
}

/// Causal attention per `(sequence, head)`: the outputs `[b, h, l, hd]`
/// and the probabilities `[b, h, l, l]` (zero above the diagonal).
///
/// Per pair, as matrix products through [`gemm`] (so the sums over the
/// head width and over positions run in increasing order, vectorised
/// across the other index): `S = Q·Kᵀ · (1/√hd)` for keys `s ≤ t`, each
/// row's softmax over `s ≤ t` (max, `exp`, sum in order, divide), and
/// `O = P·V` over all `l` positions — the masked ones add `0·v`.
fn attention(q: &[f32], k: &[f32], v: &[f32], dm: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { l, hd, .. } = dm;
    let scale = 1.0 / (hd as f32).sqrt();
    let pairs = q.len() / (l * hd);
    let mut out = vec![0f32; q.len()];
    let mut probs = vec![0f32; pairs * l * l];
    let isa = Isa::detect();
    let one = |(i, (o, p)): (usize, (&mut [f32], &mut [f32]))| {
        let r = i * l * hd..(i + 1) * l * hd;
        let (qh, kh, vh) = (&q[r.clone()], &k[r.clone()], &v[r]);
        let scores = gemm(isa, Operand::N(qh), Operand::T(kh), l, hd, l);
        for t in 0..l {
            let pt = &mut p[t * l..(t + 1) * l];
            let st = &scores[t * l..(t + 1) * l];
            let mut m = f32::NEG_INFINITY;
            for (x, &sc) in pt[..=t].iter_mut().zip(st) {
                *x = sc * scale;
                m = m.max(*x);
            }
            let mut sum = 0f32;
            for x in pt[..=t].iter_mut() {
                *x = exp(*x - m);
                sum += *x;
            }
            for x in pt[..=t].iter_mut() {
                *x /= sum;
            }
        }
        o.copy_from_slice(&gemm(isa, Operand::N(p), Operand::N(vh), l, l, hd));
    };
    if q.len() >= PAR_ROWS_MIN {
        out.par_chunks_mut(l * hd)
            .zip(probs.par_chunks_mut(l * l))
            .enumerate()
            .for_each(one);
    } else {
        out.chunks_mut(l * hd)
            .zip(probs.chunks_mut(l * l))
            .enumerate()
            .for_each(one);
    }
    (out, probs)
}

/// One `(sequence, head)`'s `dq`, `dk`, `dv` slices.
type Grads3<'a> = ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]);

/// The gradients of [`attention`] with respect to `q`, `k`, `v`
/// (head-major, rotated). Per `(sequence, head)`, through [`gemm`]:
/// `dP = dO·Vᵀ`; `dS = P ⊙ (dP − Σ_s P ⊙ dP) · (1/√hd)` (the row sum over
/// `s ≤ t` in order); `dQ = dS·K`, `dK = dSᵀ·Q`, `dV = Pᵀ·dO`.
fn attention_back(
    dout: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    dm: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { l, hd, .. } = dm;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut dq = vec![0f32; q.len()];
    let mut dk = vec![0f32; q.len()];
    let mut dv = vec![0f32; q.len()];
    let isa = Isa::detect();
    let one = |(i, ((dqh, dkh), dvh)): (usize, Grads3<'_>)| {
        let r = i * l * hd..(i + 1) * l * hd;
        let (qh, kh, vh, doh) = (&q[r.clone()], &k[r.clone()], &v[r.clone()], &dout[r]);
        let p = &probs[i * l * l..(i + 1) * l * l];
        let mut ds = gemm(isa, Operand::N(doh), Operand::T(vh), l, hd, l);
        for t in 0..l {
            let pt = &p[t * l..(t + 1) * l];
            let dst = &mut ds[t * l..(t + 1) * l];
            let mut acc = 0f32;
            for (&pv, &dp) in pt[..=t].iter().zip(&dst[..=t]) {
                acc += pv * dp;
            }
            for (x, &pv) in dst[..=t].iter_mut().zip(pt) {
                *x = pv * (*x - acc) * scale;
            }
            for x in dst[t + 1..].iter_mut() {
                *x = 0.0;
            }
        }
        dqh.copy_from_slice(&gemm(isa, Operand::N(&ds), Operand::N(kh), l, l, hd));
        dkh.copy_from_slice(&gemm(isa, Operand::T(&ds), Operand::N(qh), l, l, hd));
        dvh.copy_from_slice(&gemm(isa, Operand::T(p), Operand::N(doh), l, l, hd));
    };
    if q.len() >= PAR_ROWS_MIN {
        dq.par_chunks_mut(l * hd)
            .zip(dk.par_chunks_mut(l * hd))
            .zip(dv.par_chunks_mut(l * hd))
            .enumerate()
            .for_each(one);
    } else {
        dq.chunks_mut(l * hd)
            .zip(dk.chunks_mut(l * hd))
            .zip(dv.chunks_mut(l * hd))
            .enumerate()
            .for_each(one);
    }
    (dq, dk, dv)
}

/// `eˣ` in `f32` from IEEE 754 basic operations only (so the same bits on
/// every machine, and vectorisable): `x = k·ln 2 + r` with `k` rounded to
/// nearest by the `1.5·2²³` trick and `ln 2` split in two (Cody–Waite),
/// `eʳ` by a degree-6 Taylor polynomial in Horner form (`|r| ≤ ln 2 / 2`,
/// relative error below 2·10⁻⁷), scaled by `2ᵏ` through the exponent
/// bits. Inputs are clamped to `[−87.3, 88.7]`: below, the result is `0`
/// (where `libm` would give a subnormal), above it is `+∞`; NaN stays NaN.
/// The language model's SiLU, softmax and loss use it; the MLP keeps
/// `libm::expf`, whose bits its recorded jobs were made with.
#[inline]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75; // ln 2 to 16 significant bits: k·LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6;
    const SHIFTER: f32 = 12_582_912.0; // 1.5 · 2²³
    if x.is_nan() {
        return x;
    }
    if x > 88.7 {
        return f32::INFINITY;
    }
    if x < -87.3 {
        return 0.0;
    }
    let t = x * LOG2E + SHIFTER;
    let k = t - SHIFTER; // round(x / ln 2), exactly an integer
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // k is in −126..=128 here; 2ᵏ as two factors keeps both normal.
    let ki = k as i32;
    let half = ki / 2;
    let scale = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    p * scale(half) * scale(ki - half)
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// What one layer's backward pass needs.
struct LayerCache {
    x_in: Vec<f32>,
    inv1: Vec<f32>,
    h1: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    probs: Vec<f32>,
    attn: Vec<f32>,
    x_mid: Vec<f32>,
    inv2: Vec<f32>,
    h2: Vec<f32>,
    gate: Vec<f32>,
    /// `σ(gate)`.
    sig: Vec<f32>,
    up: Vec<f32>,
    act: Vec<f32>,
}

/// What the loss and the backward pass need from the forward pass.
struct Forward {
    layers: Vec<LayerCache>,
    /// The rotary tables `(cos, sin)` of the batch's positions.
    rope: (Vec<f32>, Vec<f32>),
    x_final: Vec<f32>,
    inv_f: Vec<f32>,
    h_final: Vec<f32>,
    logits: Vec<f32>,
}

/// The model's parameters as slices, canonical order.
#[derive(Debug)]
pub struct Lm<'a> {
    cfg: &'a LmConfig,
    p: Vec<&'a [f32]>,
}

impl<'a> Lm<'a> {
    /// The model over `params` (canonical order, checked against the
    /// configuration's shapes).
    pub fn new(cfg: &'a LmConfig, params: &'a [Vec<f32>]) -> Result<Self> {
        let shapes = cfg.param_shapes();
        if shapes.len() != params.len()
            || shapes
                .iter()
                .zip(params)
                .any(|(s, p)| s.iter().product::<usize>() != p.len())
        {
            return Err(Error::invalid(
                "checkpoint",
                "parameter shapes do not match the model configuration",
            ));
        }
        Ok(Lm {
            cfg,
            p: params.iter().map(Vec::as_slice).collect(),
        })
    }

    fn dims(&self, b: usize, l: usize) -> Dims {
        let c = self.cfg;
        Dims {
            b,
            l,
            d: c.hidden_size,
            h: c.num_attention_heads,
            hd: c.head_dim(),
            f: c.intermediate_size,
            v: c.vocab_size,
        }
    }

    fn layer(&self, i: usize, j: usize) -> &'a [f32] {
        self.p[1 + PER_LAYER * i + j]
    }

    fn final_norm(&self) -> &'a [f32] {
        self.p[1 + PER_LAYER * self.cfg.num_hidden_layers]
    }

    fn head(&self) -> &'a [f32] {
        if self.cfg.tie_word_embeddings {
            self.p[0]
        } else {
            self.p[2 + PER_LAYER * self.cfg.num_hidden_layers]
        }
    }

    fn check_tokens(&self, tokens: &[u32], field: &str) -> Result<()> {
        match tokens.iter().find(|&&t| t as usize >= self.cfg.vocab_size) {
            Some(t) => Err(Error::invalid(
                field,
                format!(
                    "token {t} is outside the vocabulary of {} (vocab_size)",
                    self.cfg.vocab_size
                ),
            )),
            None => Ok(()),
        }
    }

    /// The forward pass over `tokens [b, l]`.
    fn forward(&self, tokens: &[u32], b: usize, l: usize) -> Result<Forward> {
        let dm = self.dims(b, l);
        let Dims { d, f, v, .. } = dm;
        let n = dm.n();
        if tokens.len() != n || l == 0 || l > self.cfg.max_position_embeddings {
            return Err(Error::invalid(
                "ARTHA_SEQ_LEN",
                format!(
                    "sequences of {l} tokens: must be in 1..={} (max_position_embeddings)",
                    self.cfg.max_position_embeddings
                ),
            ));
        }
        self.check_tokens(tokens, "data")?;
        let eps = self.cfg.rms_norm_eps as f32;
        let (cos, sin) = rope_tables(l, dm.hd, self.cfg.rope_theta);
        let rope = Some((cos.as_slice(), sin.as_slice()));
        let mut x = vec![0f32; n * d];
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            row.copy_from_slice(&self.p[0][t as usize * d..(t as usize + 1) * d]);
        }
        let mut layers = Vec::with_capacity(self.cfg.num_hidden_layers);
        for i in 0..self.cfg.num_hidden_layers {
            let (h1, inv1) = rmsnorm(&x, self.layer(i, 0), d, eps);
            let q = to_heads(&linear(&h1, self.layer(i, 1), n, d, d), dm, rope);
            let k = to_heads(&linear(&h1, self.layer(i, 2), n, d, d), dm, rope);
            let vv = to_heads(&linear(&h1, self.layer(i, 3), n, d, d), dm, None);
            let (o, probs) = attention(&q, &k, &vv, dm);
            let attn = from_heads(&o, dm, None);
            let mut x_mid = linear(&attn, self.layer(i, 4), n, d, d);
            for (m, &xi) in x_mid.iter_mut().zip(&x) {
                *m += xi;
            }
            let (h2, inv2) = rmsnorm(&x_mid, self.layer(i, 5), d, eps);
            let gate = linear(&h2, self.layer(i, 6), n, d, f);
            let up = linear(&h2, self.layer(i, 7), n, d, f);
            let mut sig = vec![0f32; n * f];
            rows_mut(&mut sig, f, |r, out| {
                for (o, &gj) in out.iter_mut().zip(&gate[r * f..(r + 1) * f]) {
                    *o = sigmoid(gj);
                }
            });
            let mut act = vec![0f32; n * f];
            rows_mut(&mut act, f, |r, out| {
                let rr = r * f..(r + 1) * f;
                for (((o, &gj), &sj), &uj) in out
                    .iter_mut()
                    .zip(&gate[rr.clone()])
                    .zip(&sig[rr.clone()])
                    .zip(&up[rr])
                {
                    *o = gj * sj * uj;
                }
            });
            let mut x_out = linear(&act, self.layer(i, 8), n, f, d);
            for (o, &m) in x_out.iter_mut().zip(&x_mid) {
                *o += m;
            }
            let x_in = std::mem::replace(&mut x, x_out);
            layers.push(LayerCache {
                x_in,
                inv1,
                h1,
                q,
                k,
                v: vv,
                probs,
                attn,
                x_mid,
                inv2,
                h2,
                gate,
                sig,
                up,
                act,
            });
        }
        let (h_final, inv_f) = rmsnorm(&x, self.final_norm(), d, eps);
        let logits = linear(&h_final, self.head(), n, d, v);
        Ok(Forward {
            layers,
            rope: (cos, sin),
            x_final: x,
            inv_f,
            h_final,
            logits,
        })
    }

    /// The logits `[l, vocab]` of one sequence (inference).
    pub fn logits(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        Ok(self.forward(tokens, 1, tokens.len())?.logits)
    }

    /// One training step's loss (the mean cross-entropy over the `b·l`
    /// positions) and the gradient of every parameter, canonical order.
    pub fn loss_and_grads(
        &self,
        inputs: &[u32],
        targets: &[u32],
        b: usize,
        l: usize,
    ) -> Result<(f64, Vec<Vec<f32>>)> {
        let dm = self.dims(b, l);
        let Dims { d, f, v, .. } = dm;
        let n = dm.n();
        self.check_tokens(targets, "data")?;
        if targets.len() != n {
            return Err(Error::invalid(
                "data",
                "targets do not match the inputs' shape",
            ));
        }
        let fw = self.forward(inputs, b, l)?;
        let (loss, dlogits) = xent(&fw.logits, targets, v);
        let mut grads: Vec<Vec<f32>> = vec![Vec::new(); self.p.len()];
        // Head.
        let (dh, dhead) = linear_back(&dlogits, &fw.h_final, self.head(), n, d, v);
        let head_slot = if self.cfg.tie_word_embeddings {
            0
        } else {
            2 + PER_LAYER * self.cfg.num_hidden_layers
        };
        grads[head_slot] = dhead;
        let (mut dx, dnorm) = rmsnorm_back(&dh, &fw.x_final, self.final_norm(), &fw.inv_f, d);
        grads[1 + PER_LAYER * self.cfg.num_hidden_layers] = dnorm;
        let rope = Some((fw.rope.0.as_slice(), fw.rope.1.as_slice()));
        for (i, c) in fw.layers.iter().enumerate().rev() {
            let g = |j: usize| 1 + PER_LAYER * i + j;
            // MLP: x_out = x_mid + act·Wdᵀ
            let (dact, dwd) = linear_back(&dx, &c.act, self.layer(i, 8), n, f, d);
            grads[g(8)] = dwd;
            let mut dgate = vec![0f32; n * f];
            let mut dup = vec![0f32; n * f];
            rows_mut(&mut dgate, f, |r, out| {
                let rr = r * f..(r + 1) * f;
                for (((o, (&da, &gj)), &s), &uj) in out
                    .iter_mut()
                    .zip(dact[rr.clone()].iter().zip(&c.gate[rr.clone()]))
                    .zip(&c.sig[rr.clone()])
                    .zip(&c.up[rr])
                {
                    *o = da * uj * (s * (1.0 + gj * (1.0 - s)));
                }
            });
            rows_mut(&mut dup, f, |r, out| {
                let rr = r * f..(r + 1) * f;
                for (((o, &da), &gj), &s) in out
                    .iter_mut()
                    .zip(&dact[rr.clone()])
                    .zip(&c.gate[rr.clone()])
                    .zip(&c.sig[rr])
                {
                    *o = da * (gj * s);
                }
            });
            let (mut dh2, dwg) = linear_back(&dgate, &c.h2, self.layer(i, 6), n, d, f);
            let (dh2u, dwu) = linear_back(&dup, &c.h2, self.layer(i, 7), n, d, f);
            add_into(&mut dh2, &dh2u);
            grads[g(6)] = dwg;
            grads[g(7)] = dwu;
            let (dxm, dpost) = rmsnorm_back(&dh2, &c.x_mid, self.layer(i, 5), &c.inv2, d);
            grads[g(5)] = dpost;
            add_into(&mut dx, &dxm); // dx is now d(loss)/d(x_mid)
            // Attention: x_mid = x_in + attn·Woᵀ
            let (dattn, dwo) = linear_back(&dx, &c.attn, self.layer(i, 4), n, d, d);
            grads[g(4)] = dwo;
            let dout = to_heads(&dattn, dm, None);
            let (dq, dk, dv) = attention_back(&dout, &c.q, &c.k, &c.v, &c.probs, dm);
            let dq = from_heads(&dq, dm, rope);
            let dk = from_heads(&dk, dm, rope);
            let dv = from_heads(&dv, dm, None);
            let (mut dh1, dwq) = linear_back(&dq, &c.h1, self.layer(i, 1), n, d, d);
            let (dh1k, dwk) = linear_back(&dk, &c.h1, self.layer(i, 2), n, d, d);
            let (dh1v, dwv) = linear_back(&dv, &c.h1, self.layer(i, 3), n, d, d);
            add_into(&mut dh1, &dh1k);
            add_into(&mut dh1, &dh1v);
            grads[g(1)] = dwq;
            grads[g(2)] = dwk;
            grads[g(3)] = dwv;
            let (dxi, dinp) = rmsnorm_back(&dh1, &c.x_in, self.layer(i, 0), &c.inv1, d);
            grads[g(0)] = dinp;
            add_into(&mut dx, &dxi); // d(loss)/d(x_in)
        }
        // Embedding: after the head's product when tied, rows in position order.
        let mut demb = std::mem::take(&mut grads[0]);
        if demb.is_empty() {
            demb = vec![0f32; v * d];
        }
        for (row, &t) in dx.chunks_exact(d).zip(inputs) {
            add_into(&mut demb[t as usize * d..(t as usize + 1) * d], row);
        }
        grads[0] = demb;
        Ok((loss, grads))
    }
}

/// Mean cross-entropy of `logits [n, v]` against `targets` and its
/// gradient: per row as [`crate::kernels::softmax_xent`], rows on the
/// pool, the loss summed in row order in `f64`.
fn xent(logits: &[f32], targets: &[u32], v: usize) -> (f64, Vec<f32>) {
    let n = targets.len();
    let inv_n = 1.0 / n as f32;
    let mut grad = vec![0f32; logits.len()];
    let mut losses = vec![0f64; n];
    let one = |((r, g), loss): ((usize, &mut [f32]), &mut f64)| {
        let z = &logits[r * v..(r + 1) * v];
        let y = targets[r] as usize;
        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0f32;
        for (gj, &zj) in g.iter_mut().zip(z) {
            let e = exp(zj - m);
            *gj = e;
            s += e;
        }
        *loss = f64::from(libm::logf(s) - (z[y] - m));
        for (j, gj) in g.iter_mut().enumerate() {
            let p = *gj / s;
            *gj = (if j == y { p - 1.0 } else { p }) * inv_n;
        }
    };
    if logits.len() >= PAR_ROWS_MIN {
        grad.par_chunks_mut(v)
            .enumerate()
            .zip(losses.par_iter_mut())
            .for_each(one);
    } else {
        grad.chunks_mut(v)
            .enumerate()
            .zip(losses.iter_mut())
            .for_each(one);
    }
    let total: f64 = losses.iter().fold(0.0, |a, &b| a + b);
    (total / n as f64, grad)
}

/// Picks the next token from the last position's `logits`: the arg-max
/// (lowest id on ties) at temperature 0, else by inverse CDF of
/// `softmax(logits / T)` with the uniform `u`.
pub fn pick(logits: &[f32], temperature: f64, u: f32) -> u32 {
    if temperature <= 0.0 {
        let mut best = 0;
        for (i, &z) in logits.iter().enumerate() {
            if z > logits[best] {
                best = i;
            }
        }
        return best as u32;
    }
    let t = temperature as f32;
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|&z| exp((z - m) / t)).collect();
    let total: f64 = e.iter().fold(0.0, |a, &x| a + f64::from(x));
    let target = f64::from(u) * total;
    let mut acc = 0f64;
    for (i, &x) in e.iter().enumerate() {
        acc += f64::from(x);
        if target < acc {
            return i as u32;
        }
    }
    (e.len().saturating_sub(1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(tied: bool) -> LmConfig {
        LmConfig {
            vocab_size: 11,
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 12,
            max_position_embeddings: 6,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            tie_word_embeddings: tied,
            tokenizer: Tokenizer::Char,
            alphabet: Some("abcdefghijk".into()),
        }
    }

    /// Weights with non-trivial norms (the init sets them to 1) and a
    /// larger spread than the init, so every path carries gradient.
    fn params(cfg: &LmConfig, seed: u64) -> Vec<Vec<f32>> {
        (0..cfg.param_shapes().len())
            .map(|p| {
                let s = Stream::new(seed, "test", p as u64);
                let n: usize = cfg.param_shapes()[p].iter().product();
                (0..n as u64)
                    .map(|i| {
                        let u = s.f32_at(i) * 2.0 - 1.0;
                        if cfg.param_shapes()[p].len() == 1 {
                            1.0 + 0.3 * u
                        } else {
                            0.4 * u
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The hand-written backward pass agrees with central differences of
    /// the loss, for every parameter (a sample of elements of each), tied
    /// and untied.
    #[test]
    fn gradients_match_finite_differences() {
        for tied in [true, false] {
            let cfg = tiny(tied);
            cfg.validate().unwrap();
            let p = params(&cfg, 7);
            let (b, l) = (2, 5);
            let inputs: Vec<u32> = (0..(b * l) as u32).map(|i| (i * 7 + 3) % 11).collect();
            let targets: Vec<u32> = (0..(b * l) as u32).map(|i| (i * 5 + 1) % 11).collect();
            let (_, grads) = Lm::new(&cfg, &p)
                .unwrap()
                .loss_and_grads(&inputs, &targets, b, l)
                .unwrap();
            let names = cfg.param_names();
            for (pi, g) in grads.iter().enumerate() {
                assert_eq!(g.len(), p[pi].len(), "{}", names[pi]);
                for e in (0..g.len()).step_by((g.len() / 5).max(1)) {
                    let probe = |delta: f32| {
                        let mut q = p.clone();
                        q[pi][e] += delta;
                        Lm::new(&cfg, &q)
                            .unwrap()
                            .loss_and_grads(&inputs, &targets, b, l)
                            .unwrap()
                            .0
                    };
                    let eps = 1e-2f32;
                    let num = (probe(eps) - probe(-eps)) / (2.0 * f64::from(eps));
                    let got = f64::from(g[e]);
                    assert!(
                        (num - got).abs() < 3e-3 + 3e-2 * num.abs(),
                        "tied {tied}: {} [{e}]: numeric {num}, backward {got}",
                        names[pi]
                    );
                }
            }
        }
    }

    /// A causal model: the logits at position t do not depend on later tokens.
    #[test]
    fn attention_is_causal() {
        let cfg = tiny(true);
        let p = params(&cfg, 3);
        let lm = Lm::new(&cfg, &p).unwrap();
        let a = lm.logits(&[1, 2, 3, 4, 5]).unwrap();
        let b = lm.logits(&[1, 2, 3, 9, 0]).unwrap();
        assert_eq!(a[..3 * 11], b[..3 * 11]);
        assert_ne!(a[3 * 11..], b[3 * 11..]);
    }

    #[test]
    fn shapes_are_checked_by_field() {
        let field = |c: LmConfig| {
            c.validate()
                .unwrap_err()
                .context_value("field")
                .map(String::from)
        };
        let mut c = tiny(true);
        c.num_attention_heads = 3;
        assert_eq!(field(c).as_deref(), Some("num_attention_heads"));
        let mut c = tiny(true);
        c.num_hidden_layers = 0;
        assert_eq!(field(c).as_deref(), Some("num_hidden_layers"));
        let mut c = tiny(true);
        c.vocab_size = 10; // the alphabet has 11 characters
        assert_eq!(field(c).as_deref(), Some("vocab_size"));
        let mut c = tiny(true);
        c.tokenizer = Tokenizer::Byte;
        c.alphabet = None;
        assert_eq!(field(c).as_deref(), Some("vocab_size"));
        let mut c = tiny(true);
        c.hidden_size = 6; // head width 3 is odd
        assert_eq!(field(c).as_deref(), Some("num_attention_heads"));
        let names = tiny(false).param_names();
        assert_eq!(names.len(), 1 + 2 * 9 + 2);
        assert_eq!(names[1], "model.layers.0.input_layernorm.weight");
        assert_eq!(names.last().map(String::as_str), Some("lm_head.weight"));
    }

    #[test]
    fn tokenizers_round_trip_and_refuse_bad_text() {
        let e = encoder(Tokenizer::Char, Some("abc"));
        assert_eq!(e.encode(b"cab", "data").unwrap(), vec![2, 0, 1]);
        assert_eq!(e.decode(&[2, 0, 1, 9]), "cab\u{FFFD}");
        let err = e.encode(b"abd", "data").unwrap_err();
        assert_eq!(err.context_value("field"), Some("data"));
        let err = e.encode(&[0x61, 0xff], "data").unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
        assert_eq!(alphabet_of("hello".as_bytes(), "data").unwrap(), "ehlo");
        let b = encoder(Tokenizer::Byte, None);
        assert_eq!(b.encode("é".as_bytes(), "data").unwrap(), vec![0xc3, 0xa9]);
        assert_eq!(b.decode(&[0xc3, 0xa9]), "é");
    }

    /// [`exp`] is within 3·10⁻⁷ relative of the correctly rounded value
    /// over the range softmax and SiLU use, and handles the edges.
    #[test]
    fn exp_is_accurate_and_total() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn picking_is_greedy_or_seeded() {
        assert_eq!(pick(&[0.0, 2.0, 2.0, 1.0], 0.0, 0.5), 1);
        let z = [0.0f32, 1.0, 0.5];
        // u near 0 takes the first token, near 1 the last.
        assert_eq!(pick(&z, 1.0, 0.0), 0);
        assert_eq!(pick(&z, 1.0, 0.999_999), 2);
    }
}
