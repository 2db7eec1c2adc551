//! The fixed-order matrix product on each instruction set this CPU has
//! (`kernels::Isa`): the same bits, different speed. Prints GFLOP/s for
//! the shapes the MLP and the LM of `bench/runtimes.sh` multiply, and
//! checks that every body gives the generic body's bits.
//!
//! Run: `cargo run --release -p artha-runtime --example matmul`
//! (`RAYON_NUM_THREADS` sets the threads).

use std::time::Instant;

use artha_runtime::kernels::{Isa, matmul_nn_with};
use artha_runtime::rng::Stream;

fn data(len: usize, salt: u64) -> Vec<f32> {
    let s = Stream::new(salt, "bench", 0);
    (0..len as u64).map(|n| s.f32_at(n) * 2.0 - 1.0).collect()
}

fn main() {
    let shapes = [
        (64, 784, 128, "MLP layer 1 forward (batch 64)"),
        (128, 64, 784, "MLP layer 1 weight gradient"),
        (1024, 64, 64, "LM projection (16 x 64 tokens, width 64)"),
        (1024, 64, 256, "LM SwiGLU up (width 64 -> 256)"),
        (1024, 256, 64, "LM SwiGLU down"),
        (256, 1024, 64, "LM weight gradient (over 1024 tokens)"),
    ];
    println!("threads: {}", rayon::current_num_threads());
    for (m, k, n, what) in shapes {
        let (a, b) = (data(m * k, 1), data(k * n, 2));
        let reference = matmul_nn_with(Isa::Generic, &a, &b, m, k, n);
        let mut line = format!("{what:<44} [{m}x{k}]·[{k}x{n}]:");
        for isa in Isa::available() {
            let c = matmul_nn_with(isa, &a, &b, m, k, n);
            assert!(
                c.iter()
                    .zip(&reference)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{isa:?} differs from the generic body"
            );
            let reps = (2e8 / (m * k * n) as f64).ceil() as usize;
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(matmul_nn_with(isa, &a, &b, m, k, n));
            }
            let secs = t.elapsed().as_secs_f64() / reps as f64;
            let gflops = 2.0 * (m * k * n) as f64 / secs / 1e9;
            line.push_str(&format!("  {isa:?} {gflops:6.1}"));
        }
        println!("{line}  GFLOP/s (same bits)");
    }
}
