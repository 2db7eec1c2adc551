//! bench/verify.sh: detection of a node faking a fraction of its windows,
//! measured over simulated audits against the formula.
//!
//! `cargo run --release -p artha-core --example detection` prints
//! `windows faked m formula exact measured` for f = 10 %.

fn main() {
    let jobs = 20_000u32;
    for windows in [100u64, 1_000] {
        let faked = windows / 10;
        for m in [1u64, 8, 22, 44] {
            let formula = artha_core::proof::detection_probability(0.1, m as u32);
            let exact = artha_core::audit::detection_exact(windows, faked, m);
            let measured =
                artha_core::audit::simulate_detection(windows, faked as usize, m, jobs, 42 + m);
            println!(
                "windows {windows} faked {faked} m {m} formula {formula:.4} exact {exact:.4} measured {measured:.4} jobs {jobs}"
            );
        }
    }
}
