//! `artha-runtime`: the native deterministic trainer and inferencer (see
//! [`artha_runtime::cli`]).
#![deny(missing_docs)]

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    artha_runtime::cli::main(&args)
}
