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
//! - [`matmul_nn`]: `c[i][j] = ((0 + a[i][0]·b[0][j]) + a[i][1]·b[1][j]) + …`,
//!   the `k` terms added in increasing order, each product rounded to `f32`
//!   before the addition (Rust never contracts `a * b + c` into a fused
//!   multiply-add). Rows are split across the rayon pool, but a row is
//!   always computed whole by one task, so the result is the same for any
//!   `RAYON_NUM_THREADS`; the inner loop runs along `j` (independent
//!   elements), which the compiler vectorises without changing any sum.
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

    /// Rows of `c` one task computes (a task computes whole rows, so the
    /// split never changes a sum).
    fn rows_per_task(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Generic | Isa::Avx2 => 4,
        }
    }
}

/// `a [m, k] · b [k, n]`, both row-major, in the fixed order of the module
/// docs, with the best body for this CPU ([`Isa::detect`]).
///
/// Register-blocked: a task takes a few rows and walks them in blocks of
/// columns whose running sums stay in registers while `k` goes up, instead
/// of storing and reloading a row of `c` for every `k`. Each element still
/// starts at `0` and adds `a[i][k]·b[k][j]` for `k` in increasing order, so
/// the bits are those of the plain loop (the tests check it against one).
pub fn matmul_nn(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    matmul_nn_with(Isa::detect(), a, b, m, k, n)
}

/// [`matmul_nn`] with a chosen body (`isa` must be one of
/// [`Isa::available`]; another falls back to [`Isa::Generic`]).
pub fn matmul_nn_with(isa: Isa, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let isa = if Isa::available().contains(&isa) {
        isa
    } else {
        Isa::Generic
    };
    let mut c = vec![0f32; m * n];
    if m == 0 || n == 0 {
        return c;
    }
    let mr = isa.rows_per_task();
    let task = |(blk, cb): (usize, &mut [f32])| {
        let i0 = blk * mr;
        let nrows = cb.len() / n;
        rows_block(isa, &a[i0 * k..(i0 + nrows) * k], b, cb, k, n);
    };
    if m.saturating_mul(n).saturating_mul(k) >= PAR_MIN_WORK {
        c.par_chunks_mut(mr * n).enumerate().for_each(task);
    } else {
        c.chunks_mut(mr * n).enumerate().for_each(task);
    }
    c
}

/// One task's rows `cb` of `c` (from the rows `ab` of `a`), with `isa`'s body.
#[allow(unsafe_code)]
fn rows_block(isa: Isa, ab: &[f32], b: &[f32], cb: &mut [f32], k: usize, n: usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only used where `is_x86_feature_detected!`
        // reported AVX-512F (`matmul_nn_with` checks `Isa::available`).
        Isa::Avx512 => unsafe { rows_avx512(ab, b, cb, k, n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2.
        Isa::Avx2 => unsafe { rows_avx2(ab, b, cb, k, n) },
        _ => rows_impl::<4, 16>(ab, b, cb, k, n),
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512(ab: &[f32], b: &[f32], cb: &mut [f32], k: usize, n: usize) {
    rows_impl::<8, 32>(ab, b, cb, k, n);
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(ab: &[f32], b: &[f32], cb: &mut [f32], k: usize, n: usize) {
    rows_impl::<4, 16>(ab, b, cb, k, n);
}

/// Rows `cb` of `c` in `MR × NR` register blocks, then the edges (the last
/// columns, or a last block of fewer rows) by the plain row-wise loop, in
/// the same order. Inlined into each instruction set's body.
#[inline(always)]
fn rows_impl<const MR: usize, const NR: usize>(
    ab: &[f32],
    b: &[f32],
    cb: &mut [f32],
    k: usize,
    n: usize,
) {
    let nrows = cb.len() / n;
    let mut j0 = 0;
    while j0 + NR <= n && nrows == MR {
        block::<MR, NR>(ab, b, cb, k, n, j0);
        j0 += NR;
    }
    if j0 < n {
        for (r, ci) in cb.chunks_mut(n).enumerate() {
            let ai = &ab[r * k..(r + 1) * k];
            for (kk, &aik) in ai.iter().enumerate() {
                let bk = &b[kk * n + j0..(kk + 1) * n];
                for (cij, &bkj) in ci[j0..].iter_mut().zip(bk) {
                    *cij += aik * bkj;
                }
            }
        }
    }
}

/// One `MR × NR` block of `c` (rows of `ab`, columns `j0..j0 + NR`), its
/// sums held in registers over the whole `k` loop.
#[inline(always)]
fn block<const MR: usize, const NR: usize>(
    ab: &[f32],
    b: &[f32],
    cb: &mut [f32],
    k: usize,
    n: usize,
    j0: usize,
) {
    let mut acc = [[0f32; NR]; MR];
    for kk in 0..k {
        let Some(bk) = b[kk * n + j0..].first_chunk::<NR>() else {
            return; // unreachable: the caller keeps j0 + NR <= n
        };
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let ar = ab[r * k + kk];
            for (x, &bkj) in acc_r.iter_mut().zip(bk) {
                *x += ar * bkj;
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        cb[r * n + j0..r * n + j0 + NR].copy_from_slice(acc_r);
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

/// [`matmul_nn`] as a candle operation.
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
        let c = matmul_nn(f32_slice(s1, l1)?, f32_slice(s2, l2)?, m, k, n);
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
    let r = if a.device().is_cpu() {
        a.contiguous()
            .and_then(|a| b.contiguous().map(|b| (a, b)))
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
