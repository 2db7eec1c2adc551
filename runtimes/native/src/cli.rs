//! The command-line entry of the runtime (what `artha-runtime` runs).
//!
//! Usage: `artha-runtime [train|infer]` with the job described by the
//! environment of the runtime protocol (see the crate docs for every
//! variable). Events go to `$ARTHA_EVENTS`, progress to standard output, a
//! one-line reason to standard error on failure. Exit codes: 0 done; 2 bad
//! input; 3 the loss went non-finite; 4 a file could not be written; 1
//! anything else.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{EventSink, Mode, RunConfig, describe, exit_code};
use artha_core::protocol::{EVENTS_PATH, RuntimeEvent};
use artha_core::{Error, ErrorKind};

const USAGE: &str = "\
usage: artha-runtime [train|infer]

Artha's native runtime: trains (MLP, logistic/linear regression) or serves a
model over CSV/NPY data, bit-deterministically, speaking the runtime protocol.
The job is described by environment variables (EPOCHS, BATCH_SIZE,
LEARNING_RATE, ARTHA_SEED, ARTHA_EVENTS, ARTHA_MODEL_DIR, ARTHA_DATA_DIR,
ARTHA_CHECKPOINT_DIR, ARTHA_MODEL_KIND, ARTHA_TASK, ARTHA_HIDDEN,
ARTHA_OPTIMIZER, ARTHA_RESUME, ARTHA_MAX_STEPS, …; see the crate docs).

Exit codes: 0 done, 2 bad input, 3 non-finite loss, 4 cannot write, 1 other.";

/// What the command line asks for.
enum Command {
    Run(Option<Mode>),
    Help,
    Version,
}

fn parse_args(args: &[String]) -> Result<Command, Error> {
    match args {
        [] => Ok(Command::Run(None)),
        [a] if a == "train" => Ok(Command::Run(Some(Mode::Train))),
        [a] if a == "infer" => Ok(Command::Run(Some(Mode::Infer))),
        [a] if a == "-h" || a == "--help" || a == "help" => Ok(Command::Help),
        [a] if a == "-V" || a == "--version" => Ok(Command::Version),
        _ => Err(Error::invalid(
            "arguments",
            format!(
                "unexpected arguments `{}` (usage: artha-runtime [train|infer])",
                args.join(" ").chars().take(200).collect::<String>()
            ),
        )),
    }
}

/// The events file named by the environment, read on its own so that a
/// configuration error can still be reported there.
fn events_path() -> PathBuf {
    std::env::var("ARTHA_EVENTS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map_or_else(|| PathBuf::from(EVENTS_PATH), PathBuf::from)
}

/// Reports `e` as an `error` event (when the sink works) and on standard
/// error; returns the exit code.
fn fail(sink: &mut EventSink, e: &Error) -> ExitCode {
    let message = describe(e);
    say_err!("artha-runtime: error: {message}");
    if let Err(w) = sink
        .emit(&RuntimeEvent::Error { message })
        .and_then(|()| sink.flush())
    {
        say_err!(
            "artha-runtime: cannot report the error event: {}",
            describe(&w)
        );
    }
    ExitCode::from(exit_code(e))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The `artha-runtime` command: `args` are the arguments after the program
/// name. Embedders (e.g. `arthai runtime`) call this to carry the runtime
/// in their own executable.
pub fn main(args: &[String]) -> ExitCode {
    let command = parse_args(args);
    if let Ok(Command::Help) = command {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if let Ok(Command::Version) = command {
        println!("artha-runtime {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let events = events_path();
    let mut sink = match EventSink::open(&events) {
        Ok(s) => s,
        Err(e) => {
            say_err!("artha-runtime: error: {}", describe(&e));
            return ExitCode::from(4);
        }
    };
    let mode = match command {
        Ok(Command::Run(mode)) => mode,
        Ok(_) => None,
        Err(e) => return fail(&mut sink, &e),
    };
    let mut cfg = match RunConfig::from_env() {
        Ok(c) => c,
        Err(e) => return fail(&mut sink, &e),
    };
    if let Some(m) = mode {
        cfg.mode = m;
    }
    // A panic is a bug, but the engine must still hear why the job ended.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::run(&cfg, &mut sink)));
    match outcome {
        Ok(Ok(())) => match sink.flush() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                say_err!("artha-runtime: error: {}", describe(&e));
                ExitCode::from(4)
            }
        },
        Ok(Err(e)) => fail(&mut sink, &e),
        Err(p) => {
            let e = Error::new(
                ErrorKind::Internal,
                format!("internal error (panic): {}", panic_message(p.as_ref())),
            );
            fail(&mut sink, &e)
        }
    }
}
