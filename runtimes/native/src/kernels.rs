//! Fixed-order CPU kernels: the arithmetic whose result could depend on
//! the thread count, the CPU's vector width or the C library.
//!
//! candle's CPU matmul goes through the `gemm` crate, which picks its
//! micro-kernel and blocking from the CPU features and cache sizes it
//! detects at run time (AVX2 or AVX-512 lanes, `kc` from the L1 size for
//! long reductions, dot-product kernels for vector shapes): the bits of a
//! product may then differ between machines, which would break replay on
//! a verifier's machine. So on CPU every reduction runs here, in one
//! documented order:
//!
//! - [`gemm`] (and [`matmul_nn`]): `c[i][j] = ((0 + a[i][0]·b[0][j]) +
//!   a[i][1]·b[1][j]) + …`, the `k` terms added in increasing order, each
//!   product rounded to `f32` before the addition (Rust never contracts
//!   `a * b + c` into a fused multiply-add, and the AVX-512 body multiplies
//!   and adds in two instructions). Rows are split across the rayon pool,
//!   but a row is always computed whole by one task, so the result is the
//!   same for any `RAYON_NUM_THREADS`; the vector lanes run along `j`
//!   (independent elements), so the vector width changes no sum either.
//!   The product packs its operands into panels (row-major or transposed
//!   operands alike, so no transposing copy is made) and keeps an
//!   `MR × NR` block of sums in registers; there is a body per instruction
//!   set ([`Isa`]: the baseline, AVX2, AVX-512F, chosen at run time), all
//!   giving the bits of the plain loop (tested).
//! - [`col_sum`]: `s[j] = ((0 + a[0][j]) + a[1][j]) + …`, rows in order.
//! - [`softmax_xent`] and [`mse`]: per-row arithmetic with `exp`/`ln` from
//!   the pure-Rust `libm` crate (the same bits on glibc, musl and every
//!   CPU), and the batch loss summed in row order in `f64`.
//!
//! Element-wise operations (add, multiply, divide, `sqrt`, `max`) are left
//! to candle: IEEE 754 rounds them correctly, so they give the same bits
//! whatever the vector width.

use artha_core::{Error, Result};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Below this many multiply-adds a product runs on the calling thread
/// (a choice of speed only: the result is the same either way).
const PAR_MIN_WORK: usize = 1 << 15;

/// The instruction sets [`matmul_nn`] has a compiled body for, chosen once
/// per process from what the CPU reports. They differ only in the vector
/// width and the register block, never in the order of any sum: each
/// element is `((0 + a·b) + a·b) + …` with every product rounded before
/// its addition (no fused multiply-add), so every body gives the same bits
/// (the tests compare each one available against the plain loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// The baseline of the target (SSE2 on x86-64).
    Generic,
    /// x86-64 with AVX2 (256-bit vectors).
    Avx2,
    /// x86-64 with AVX-512F (512-bit vectors).
    Avx512,
}

impl Isa {
    /// The best body this CPU can run.
    pub fn detect() -> Isa {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| Isa::available().last().copied().unwrap_or(Isa::Generic))
    }

    /// Every body this CPU can run, the best last (for tests and benchmarks).
    pub fn available() -> Vec<Isa> {
        Isa::detected().to_vec()
    }

    fn detected() -> &'static [Isa] {
        static ALL: std::sync::OnceLock<Vec<Isa>> = std::sync::OnceLock::new();
        ALL.get_or_init(Isa::probe)
    }

    fn probe() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut v = vec![Isa::Generic];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Isa::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    /// The register tile `(MR, NR)` of this body: a task computes `MR`
    /// whole rows of `c` (so the split never changes a sum), `NR` columns
    /// at a time.
    fn tile(self) -> (usize, usize) {
        match self {
            Isa::Avx512 => (8, 32),
            Isa::Avx2 => (6, 16),
            Isa::Generic => (4, 8),
        }
    }
}

/// How a matrix operand is stored.
#[derive(Debug, Clone, Copy)]
pub enum Operand<'a> {
    /// As the product reads it: `[rows, cols]` row-major.
    N(&'a [f32]),
    /// Transposed: the slice is `[cols, rows]` row-major (e.g. a
    /// `nn.Linear` weight `[out, in]` used as `Wᵀ`, or a batch `[n, d]`
    /// used as its transpose in a weight gradient).
    T(&'a [f32]),
}

impl Operand<'_> {
    fn slice(&self) -> &[f32] {
        match self {
            Operand::N(s) | Operand::T(s) => s,
        }
    }
}

/// `a [m, k] · b [k, n]`, both row-major, in the fixed order of the module
/// docs, with the best body for this CPU ([`Isa::detect`]).
pub fn matmul_nn(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    gemm(Isa::detect(), Operand::N(a), Operand::N(b), m, k, n)
}

/// [`matmul_nn`] with a chosen body (`isa` must be one of
/// [`Isa::available`]; another falls back to [`Isa::Generic`]).
pub fn matmul_nn_with(isa: Isa, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    gemm(isa, Operand::N(a), Operand::N(b), m, k, n)
}

/// `A · B` for `A` `[m, k]` and `B` `[k, n]` as the operands store them,
/// in the fixed order of the module docs,
/// `c[i][j] = ((0 + A[i][0]·B[0][j]) + A[i][1]·B[1][j]) + …` with `k`
/// increasing, whatever the layouts, the body or the thread count.
///
/// Operands shorter than their shapes are a caller's bug; they give a zero
/// product rather than a panic.
///
/// The product packs `B` once into panels of `NR` columns (`[k][NR]`,
/// zero-padded) and, per task, `MR` rows of `A` (`[k][MR]`, zero-padded),
/// then walks each panel with `MR × NR` running sums held in registers;
/// the padding's extra rows and columns are computed and dropped. Packing
/// moves numbers, it does not change any sum, and transposed operands are
/// read straight into the packs instead of being copied first.
pub fn gemm(isa: Isa, a: Operand<'_>, b: Operand<'_>, m: usize, k: usize, n: usize) -> Vec<f32> {
    let isa = if Isa::detected().contains(&isa) {
        isa
    } else {
        Isa::Generic
    };
    let mut c = vec![0f32; m * n];
    if m == 0 || n == 0 || k == 0 || a.slice().len() < m * k || b.slice().len() < k * n {
        return c; // an empty sum is 0
    }
    let (mr, nr) = isa.tile();
    let bp = pack_b(b, k, n, nr);
    let task = |(blk, cb): (usize, &mut [f32])| {
        let ap = pack_a(a, blk * mr, cb.len() / n, m, k, mr);
        rows_block(isa, &ap, &bp, cb, k, n);
    };
    if m.saturating_mul(n).saturating_mul(k) >= PAR_MIN_WORK {
        c.par_chunks_mut(mr * n).enumerate().for_each(task);
    } else {
        c.chunks_mut(mr * n).enumerate().for_each(task);
    }
    c
}

/// `B` `[k, n]` as panels of `nr` columns: panel `p` holds, for each `kk`,
/// `B[kk][p·nr .. p·nr + nr]` (zeros past column `n`).
fn pack_b(b: Operand<'_>, k: usize, n: usize, nr: usize) -> Vec<f32> {
    let panels = n.div_ceil(nr);
    let mut out = vec![0f32; panels * k * nr];
    for (p, panel) in out.chunks_exact_mut(k * nr).enumerate() {
        let j0 = p * nr;
        let w = nr.min(n - j0);
        match b {
            Operand::N(b) => {
                for (kk, dst) in panel.chunks_exact_mut(nr).enumerate() {
                    dst[..w].copy_from_slice(&b[kk * n + j0..kk * n + j0 + w]);
                }
            }
            Operand::T(bt) => {
                // B[kk][j] = bt[j][kk]
                for j in 0..w {
                    let col = &bt[(j0 + j) * k..(j0 + j + 1) * k];
                    for (kk, &v) in col.iter().enumerate() {
                        panel[kk * nr + j] = v;
                    }
                }
            }
        }
    }
    out
}

/// Rows `i0 .. i0 + rows` of `A` `[m, k]` interleaved by `kk`: `[k][mr]`
/// (zeros past the last row).
fn pack_a(a: Operand<'_>, i0: usize, rows: usize, m: usize, k: usize, mr: usize) -> Vec<f32> {
    let mut out = vec![0f32; k * mr];
    match a {
        Operand::N(a) => {
            for r in 0..rows {
                let row = &a[(i0 + r) * k..(i0 + r + 1) * k];
                for (kk, &v) in row.iter().enumerate() {
                    out[kk * mr + r] = v;
                }
            }
        }
        Operand::T(at) => {
            // A[i][kk] = at[kk][i]
            for (kk, dst) in out.chunks_exact_mut(mr).enumerate() {
                dst[..rows].copy_from_slice(&at[kk * m + i0..kk * m + i0 + rows]);
            }
        }
    }
    out
}

/// One task's rows `cb` of `c` from the packed `ap` and `bp`, with
/// `isa`'s body.
#[allow(unsafe_code)]
fn rows_block(isa: Isa, ap: &[f32], bp: &[f32], cb: &mut [f32], k: usize, n: usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only used where `is_x86_feature_detected!`
        // reported AVX-512F (`gemm` checks `Isa::available`).
        Isa::Avx512 => unsafe { rows_avx512(ap, bp, cb, k, n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2.
        Isa::Avx2 => unsafe { rows_avx2(ap, bp, cb, k, n) },
        _ => rows_impl::<4, 8>(ap, bp, cb, k, n),
    }
}

/// The AVX-512 body, written with intrinsics: the loop vectoriser turns
/// the generic body into gathers and scatters under AVX-512. Each row's
/// `NR = 32` running sums are two 16-lane registers; every step multiplies
/// (`vmulps`) then adds (`vaddps`) — two roundings, as the plain loop, never
/// a fused multiply-add.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512(ap: &[f32], bp: &[f32], cb: &mut [f32], k: usize, n: usize) {
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_loadu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps,
        _mm512_storeu_ps,
    };
    const MR: usize = 8;
    const NR: usize = 32;
    let nrows = cb.len() / n;
    for (p, panel) in bp.chunks_exact(k * NR).enumerate() {
        let mut acc: [[__m512; 2]; MR] = [[_mm512_setzero_ps(); 2]; MR];
        for (a_k, b_k) in ap.chunks_exact(MR).zip(panel.chunks_exact(NR)) {
            // SAFETY: `b_k` has exactly NR = 32 elements (chunks_exact).
            let (b0, b1) = unsafe {
                (
                    _mm512_loadu_ps(b_k.as_ptr()),
                    _mm512_loadu_ps(b_k.as_ptr().add(16)),
                )
            };
            for (acc_r, &ar) in acc.iter_mut().zip(a_k) {
                let a = _mm512_set1_ps(ar);
                acc_r[0] = _mm512_add_ps(acc_r[0], _mm512_mul_ps(a, b0));
                acc_r[1] = _mm512_add_ps(acc_r[1], _mm512_mul_ps(a, b1));
            }
        }
        let j0 = p * NR;
        let w = NR.min(n - j0);
        for (r, acc_r) in acc.iter().enumerate().take(nrows) {
            let out = &mut cb[r * n + j0..r * n + j0 + w];
            if let Some(out) = out.first_chunk_mut::<NR>() {
                // SAFETY: `out` has NR = 32 elements.
                unsafe {
                    _mm512_storeu_ps(out.as_mut_ptr(), acc_r[0]);
                    _mm512_storeu_ps(out.as_mut_ptr().add(16), acc_r[1]);
                }
            } else {
                let mut row = [0f32; NR];
                // SAFETY: `row` has NR = 32 elements.
                unsafe {
                    _mm512_storeu_ps(row.as_mut_ptr(), acc_r[0]);
                    _mm512_storeu_ps(row.as_mut_ptr().add(16), acc_r[1]);
                }
                out.copy_from_slice(&row[..w]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(ap: &[f32], bp: &[f32], cb: &mut [f32], k: usize, n: usize) {
    rows_impl::<6, 16>(ap, bp, cb, k, n);
}

/// The rows `cb` (at most `MR`) of `c`, panel by panel: `MR × NR` sums in
/// registers over the whole `k` loop, then the valid part stored. Inlined
/// into each instruction set's body.
#[inline(always)]
fn rows_impl<const MR: usize, const NR: usize>(
    ap: &[f32],
    bp: &[f32],
    cb: &mut [f32],
    k: usize,
    n: usize,
) {
    let nrows = cb.len() / n;
    for (p, panel) in bp.chunks_exact(k * NR).enumerate() {
        let mut acc = [[0f32; NR]; MR];
        for (a_k, b_k) in ap.chunks_exact(MR).zip(panel.chunks_exact(NR)) {
            let (Some(a_k), Some(b_k)) = (a_k.first_chunk::<MR>(), b_k.first_chunk::<NR>()) else {
                return; // unreachable: chunks_exact gives whole chunks
            };
            for r in 0..MR {
                let ar = a_k[r];
                for j in 0..NR {
                    acc[r][j] += ar * b_k[j];
                }
            }
        }
        let j0 = p * NR;
        let w = NR.min(n - j0);
        for (r, acc_r) in acc.iter().enumerate().take(nrows) {
            cb[r * n + j0..r * n + j0 + w].copy_from_slice(&acc_r[..w]);
        }
    }
}

/// Column sums of `a [m, n]`, rows added in order.
pub fn col_sum(a: &[f32], m: usize, n: usize) -> Vec<f32> {
    let mut s = vec![0f32; n];
    if n == 0 {
        return s;
    }
    for row in a.chunks_exact(n).take(m) {
        for (sj, &x) in s.iter_mut().zip(row) {
            *sj += x;
        }
    }
    s
}

/// Mean softmax cross-entropy of `logits [rows, classes]` against class
/// indices, and its gradient with respect to the logits
/// (`(softmax − onehot) / rows`).
///
/// Per row: `m = max`, `e_j = exp(z_j − m)`, `s = Σ e_j` (in order),
/// `loss = ln s − (z_y − m)`, `grad_j = (e_j / s − [j = y]) / rows`.
/// Errors when a label is out of range.
pub fn softmax_xent(logits: &[f32], labels: &[i64], classes: usize) -> Result<(f64, Vec<f32>)> {
    let rows = labels.len();
    if classes == 0 || logits.len() != rows * classes {
        return Err(Error::invalid(
            "logits",
            format!(
                "{} values do not make {rows} rows of {classes} classes",
                logits.len()
            ),
        ));
    }
    let mut grad = vec![0f32; logits.len()];
    let mut total = 0f64;
    let inv_rows = 1.0 / rows as f32;
    for (r, (z, g)) in logits
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes))
        .enumerate()
    {
        let y = usize::try_from(labels[r])
            .ok()
            .filter(|&y| y < classes)
            .ok_or_else(|| {
                Error::invalid(
                    "labels",
                    format!(
                        "label {} is not a class of a model with {classes} classes",
                        labels[r]
                    ),
                )
            })?;
        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0f32;
        for (gj, &zj) in g.iter_mut().zip(z) {
            let e = libm::expf(zj - m);
            *gj = e;
            s += e;
        }
        let loss = libm::logf(s) - (z[y] - m);
        total += f64::from(loss);
        for (j, gj) in g.iter_mut().enumerate() {
            let p = *gj / s;
            *gj = (if j == y { p - 1.0 } else { p }) * inv_rows;
        }
    }
    Ok((total / rows as f64, grad))
}

/// Mean squared error of `pred` against `target` (same length), and its
/// gradient `2 (pred − target) / len`.
pub fn mse(pred: &[f32], target: &[f32]) -> Result<(f64, Vec<f32>)> {
    if pred.len() != target.len() || pred.is_empty() {
        return Err(Error::invalid(
            "targets",
            format!(
                "{} predictions against {} targets",
                pred.len(),
                target.len()
            ),
        ));
    }
    let scale = 2.0 / pred.len() as f32;
    let mut total = 0f64;
    let grad = pred
        .iter()
        .zip(target)
        .map(|(&p, &t)| {
            let d = p - t;
            total += f64::from(d * d);
            d * scale
        })
        .collect();
    Ok((total / pred.len() as f64, grad))
}

/// Row-wise softmax (for inference outputs), in the order of
/// [`softmax_xent`].
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut out = vec![0f32; logits.len()];
    if classes == 0 {
        return out;
    }
    for (z, o) in logits
        .chunks_exact(classes)
        .zip(out.chunks_exact_mut(classes))
    {
        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0f32;
        for (oj, &zj) in o.iter_mut().zip(z) {
            *oj = libm::expf(zj - m);
            s += *oj;
        }
        for oj in o.iter_mut() {
            *oj /= s;
        }
    }
    out
}

/// The contiguous `f32` slice of a CPU storage under `layout`.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    let (start, end) = l.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg("fixed-order kernels need contiguous input".into())
    })?;
    data.get(start..end)
        .ok_or_else(|| candle_core::Error::Msg("layout outside its storage".into()))
}

/// Whether a 2-D layout is row-major or the transpose of a row-major
/// matrix (what [`gemm`] reads without a copy).
fn is_plain_or_transposed(l: &Layout) -> bool {
    match (l.shape().dims(), l.stride()) {
        ([r, c], [s0, s1]) => (*s0 == *c && *s1 == 1) || (*s0 == 1 && *s1 == *r),
        _ => false,
    }
}

/// The operand a 2-D CPU layout stores: row-major, or the transpose of a
/// row-major matrix (`t()` of a contiguous tensor).
fn operand<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<Operand<'a>> {
    let data = s.as_slice::<f32>()?;
    let (r, c) = l.shape().dims2()?;
    let off = l.start_offset();
    let slice = data
        .get(off..off + r * c)
        .ok_or_else(|| candle_core::Error::Msg("layout outside its storage".into()))?;
    match l.stride() {
        [s0, 1] if *s0 == c => Ok(Operand::N(slice)),
        [1, s1] if *s1 == r => Ok(Operand::T(slice)),
        _ => Err(candle_core::Error::Msg(
            "the fixed-order product reads row-major or transposed operands".into(),
        )),
    }
}

/// [`gemm`] as a candle operation.
#[derive(Debug, Clone, Copy)]
struct FixedMatMul;

impl CustomOp2 for FixedMatMul {
    fn name(&self) -> &'static str {
        "artha-fixed-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, k) = l1.shape().dims2()?;
        let (k2, n) = l2.shape().dims2()?;
        if k != k2 {
            return Err(candle_core::Error::Msg(format!(
                "matmul shapes [{m}, {k}] · [{k2}, {n}] do not chain"
            )));
        }
        let c = gemm(Isa::detect(), operand(s1, l1)?, operand(s2, l2)?, m, k, n);
        Ok((CpuStorage::F32(c), Shape::from((m, n))))
    }
}

/// [`col_sum`] as a candle operation.
#[derive(Debug, Clone, Copy)]
struct FixedColSum;

impl CustomOp1 for FixedColSum {
    fn name(&self) -> &'static str {
        "artha-fixed-col-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, n) = l.shape().dims2()?;
        let out = col_sum(f32_slice(s, l)?, m, n);
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }
}

/// Maps a candle error into the runtime's error type, naming the operation.
pub(crate) fn tensor_err(op: &'static str) -> impl Fn(candle_core::Error) -> Error {
    move |e| {
        Error::new(
            artha_core::ErrorKind::Internal,
            format!("tensor operation `{op}` failed: {e}"),
        )
    }
}

/// `a · b` for 2-D `f32` tensors: the fixed-order kernel on CPU, candle's
/// own matmul on other devices.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    // A transposed view (`t()` of a row-major tensor) is read as it is.
    let ready = |t: &Tensor| {
        if is_plain_or_transposed(t.layout()) {
            Ok(t.clone())
        } else {
            t.contiguous()
        }
    };
    let r = if a.device().is_cpu() {
        ready(a)
            .and_then(|a| ready(b).map(|b| (a, b)))
            .and_then(|(a, b)| a.apply_op2_no_bwd(&b, &FixedMatMul))
    } else {
        a.matmul(b)
    };
    r.map_err(tensor_err("matmul"))
}

/// Column sums of a 2-D `f32` tensor (shape `[n]`): fixed order on CPU.
pub fn sum_rows(a: &Tensor) -> Result<Tensor> {
    let r = if a.device().is_cpu() {
        a.contiguous()
            .and_then(|a| a.apply_op1_no_bwd(&FixedColSum))
    } else {
        a.sum(0)
    };
    r.map_err(tensor_err("sum"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f32;
                for kk in 0..k {
                    acc += a[i * k + kk] * b[kk * n + j];
                }
                c[i * n + j] = acc;
            }
        }
        c
    }

    fn data(len: usize, salt: u64) -> Vec<f32> {
        let s = crate::rng::Stream::new(salt, "test", 0);
        (0..len as u64).map(|n| s.f32_at(n) * 2.0 - 1.0).collect()
    }

    #[test]
    fn matmul_is_the_documented_sum_order_bit_for_bit() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 2),
            (64, 33, 17),
            (130, 70, 40),
            (0, 3, 2),
            (4, 7, 16),
            (8, 784, 128),
            (9, 3, 33),
            (17, 40, 70),
            (16, 65, 64),
            (5, 0, 20),
        ] {
            let a = data(m * k, 1);
            let b = data(k * n, 2);
            let want = naive(&a, &b, m, k, n);
            for isa in Isa::available() {
                let got = matmul_nn_with(isa, &a, &b, m, k, n);
                assert_eq!(
                    want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "{m}x{k}x{n} {isa:?}"
                );
            }
        }
    }

    /// Transposed operands give the bits of the plain product of the
    /// transposed copies, on every body.
    #[test]
    fn transposed_operands_are_the_same_product() {
        let t = |x: &[f32], r: usize, c: usize| {
            let mut o = vec![0f32; x.len()];
            for i in 0..r {
                for j in 0..c {
                    o[j * r + i] = x[i * c + j];
                }
            }
            o
        };
        for &(m, k, n) in &[(1, 1, 1), (7, 13, 9), (33, 64, 70), (5, 0, 3), (64, 9, 1)] {
            let a = data(m * k, 7);
            let b = data(k * n, 8);
            let (at, bt) = (t(&a, m, k), t(&b, k, n));
            let want = naive(&a, &b, m, k, n);
            for isa in Isa::available() {
                for (oa, ob) in [
                    (Operand::N(&a), Operand::T(&bt)),
                    (Operand::T(&at), Operand::N(&b)),
                    (Operand::T(&at), Operand::T(&bt)),
                ] {
                    let got = gemm(isa, oa, ob, m, k, n);
                    assert_eq!(
                        want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        "{m}x{k}x{n} {isa:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn matmul_is_the_same_on_any_pool_size() {
        let (m, k, n) = (200, 96, 50);
        let a = data(m * k, 3);
        let b = data(k * n, 4);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| matmul_nn(&a, &b, m, k, n));
        for threads in [2, 3, 7] {
            let many = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| matmul_nn(&a, &b, m, k, n));
            assert_eq!(one, many, "{threads} threads");
        }
    }

    #[test]
    fn tensor_ops_match_the_slice_kernels() {
        let dev = Device::Cpu;
        let a = Tensor::from_vec(data(12, 5), (4, 3), &dev).unwrap();
        let b = Tensor::from_vec(data(6, 6), (3, 2), &dev).unwrap();
        let c = matmul(&a, &b).unwrap();
        assert_eq!(c.dims(), &[4, 2]);
        let want = matmul_nn(&data(12, 5), &data(6, 6), 4, 3, 2);
        assert_eq!(c.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
        // Transposed (strided) input is made contiguous first.
        let at = a.t().unwrap();
        assert_eq!(matmul(&at, &a).unwrap().dims(), &[3, 3]);
        let s = sum_rows(&a).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(s, col_sum(&data(12, 5), 4, 3));
        assert!(matmul(&a, &a).is_err());
    }

    #[test]
    fn softmax_xent_matches_the_textbook_values() {
        // Uniform logits over 4 classes: loss ln 4, gradient (1/4 − onehot)/rows.
        let (loss, grad) = softmax_xent(&[0.0; 8], &[0, 3], 4).unwrap();
        assert!((loss - 4f64.ln()).abs() < 1e-6);
        assert!((grad[0] - (-0.375)).abs() < 1e-7);
        assert!((grad[1] - 0.125).abs() < 1e-7);
        assert!((grad[7] - (-0.375)).abs() < 1e-7);
        let e = softmax_xent(&[0.0; 2], &[2], 2).unwrap_err();
        assert!(e.to_string().contains("not a class"), "{e}");
        let p = softmax_rows(&[1.0, 1.0, 1000.0, 0.0], 2);
        assert_eq!(p, vec![0.5, 0.5, 1.0, 0.0]);
    }

    #[test]
    fn mse_and_its_gradient() {
        let (loss, grad) = mse(&[1.0, 3.0], &[0.0, 1.0]).unwrap();
        assert!((loss - 2.5).abs() < 1e-12);
        assert_eq!(grad, vec![1.0, 2.0]);
        assert!(mse(&[1.0], &[]).is_err());
    }
}
